//! The tax department's protocol as pure functions: payload checks, request bodies, the signed
//! canonical string, and reading answers. Nothing here calls the host, so all of it runs in
//! native unit tests.
//!
//! Materials (申请材料) go first: each file is uploaded on its own (`POST /api/v1/wjsc`, a
//! `multipart/form-data` form, [`upload_form`]) and answered with a file id (`wjid`); the
//! application then lists the file ids (`fjlb`), the licences the department need not ask for
//! (`dzzz`, by GB/T 36904 identifier) and the materials promised for later (`rqcl`)
//! ([`MaterialLists`]). An upload is signed over the SM3 of its whole body instead of the body
//! itself ([`Credentials::upload_headers`]), since the adapter never holds the file.

use sdk::http::{Multipart, Slice};
pub use sdk::payload::Person;
use sdk::payload::{Checker, FieldProblem, person, present};
use sdk::{
    AdapterError, FieldError, FileInfo, Material, MaterialSource, Receipt, Rejection, StatusReport,
    StepState,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// 税务登记.
pub const REGISTRATION: &str = "tax.registration";
/// 契税申报 (second-hand home purchase).
pub const DEED_TAX: &str = "tax.deed-tax";
/// 清税查询.
pub const CLEARANCE: &str = "tax.clearance";

/// Operation paths.
pub const SWDJ_PATH: &str = "/api/v1/swdj";
/// 契税申报 path.
pub const QSSB_PATH: &str = "/api/v1/qssb";
/// 清税查询 path.
pub const QSCX_PATH: &str = "/api/v1/qscx";
/// 文件上传 path.
pub const WJSC_PATH: &str = "/api/v1/wjsc";

/// The upload form of one material's file: the application's request id (`qqid`), the
/// material's code and name, the file's SM3 (which the department checks against what
/// arrives), and the file itself, streamed by the host.
pub fn upload_form(qqid: &str, material: &Material, file: &FileInfo) -> Multipart {
    Multipart::form_data()
        .field("qqid", qqid)
        .field("clbm", &material.code)
        .field("clmc", &material.name)
        .field("wjsm3", &file.sm3)
        .file(
            "file",
            &format!("{}.{}", material.code, extension(&file.media_type)),
            &file.media_type,
            Slice::new(&material.code, 0, file.size),
        )
}

/// The file name extension of a material's media type.
pub fn extension(media_type: &str) -> &'static str {
    match media_type {
        "application/pdf" => "pdf",
        "application/ofd" => "ofd",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        _ => "bin",
    }
}

/// What an application says of its materials: the files uploaded (code, name, file id), the
/// licences the gateway holds in their place (免提交) and the materials promised for later
/// (容缺受理).
#[derive(Debug, Clone, Default)]
pub struct MaterialLists {
    /// `fjlb`: (code, name, file id).
    pub files: Vec<(String, String, String)>,
    /// `dzzz`: the material's code and name, and the licence.
    pub licences: Vec<(String, String, sdk::LicenceRef)>,
    /// `rqcl`: code, name, the date promised (when set).
    pub promised: Vec<(String, String, Option<String>)>,
}

impl MaterialLists {
    /// The lists of `materials`, files named by the ids `uploaded` gives for their codes.
    pub fn of(materials: &[Material], uploaded: &[(String, String)]) -> MaterialLists {
        let mut lists = MaterialLists::default();
        for m in materials {
            let (code, name) = (m.code.clone(), m.name.clone());
            match &m.source {
                MaterialSource::File(_) => {
                    if let Some((_, id)) = uploaded.iter().find(|(c, _)| *c == m.code) {
                        lists.files.push((code, name, id.clone()));
                    }
                }
                MaterialSource::Licence(l) => lists.licences.push((code, name, l.clone())),
                MaterialSource::Promised(due) => lists.promised.push((code, name, due.clone())),
            }
        }
        lists
    }

    /// Add the lists to an application body (`swdj`, `qssb`); an empty list is left out, so an
    /// application without materials is what it always was.
    pub fn add_to(&self, body: &mut Value) {
        if !self.files.is_empty() {
            body["fjlb"] = self
                .files
                .iter()
                .map(|(code, name, id)| json!({"clbm": code, "clmc": name, "wjid": id}))
                .collect();
        }
        if !self.licences.is_empty() {
            body["dzzz"] = self
                .licences
                .iter()
                .map(|(code, name, l)| {
                    json!({"clbm": code, "clmc": name, "zzbs": l.id, "zzlx": l.kind, "zzbh": l.number})
                })
                .collect();
        }
        if !self.promised.is_empty() {
            body["rqcl"] = self
                .promised
                .iter()
                .map(|(code, name, due)| json!({"clbm": code, "clmc": name, "cnrq": due}))
                .collect();
        }
    }
}

/// The file id of an upload (`wjsc`), or what the department's refusal means:
/// - `3001` empty, `3002` over its size limit, `3004` a type it does not take: the applicant's
///   material, `InvalidInput` on `materials.<code>` (`empty`, `too_large`, `format`), never
///   retried;
/// - `3003` the file's SM3 is not the one declared: the bytes the host streamed are not those
///   the gateway recorded, `Internal`;
/// - `4014` (HTTP 401) the body is not the one signed, altered on the way: `Unavailable`, so the
///   upload is made again.
pub fn read_uploaded(code: &str, status: u16, body: &[u8]) -> Result<String, AdapterError> {
    let data = read_answer(status, body)?.map_err(|(department_code, msg)| {
        let problem = |kind: &str| {
            AdapterError::InvalidInput(vec![FieldError::new(
                format!("materials.{code}"),
                kind,
                format!("税务部门拒收该材料：{msg}"),
            )])
        };
        match department_code.as_str() {
            "3001" => problem("empty"),
            "3002" => problem("too_large"),
            "3004" => problem("format"),
            "3003" => AdapterError::Internal(format!(
                "the department found another SM3 in material `{code}` than the one declared ({department_code} {msg})"
            )),
            _ => rejected(department_code, msg),
        }
    })?;
    Ok(text(&data, "wjid")?.to_string())
}

/// Unified payload of `tax.registration`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Registration {
    pub credit_code: Option<String>,
    pub enterprise_name: Option<String>,
    pub legal_representative: Option<Person>,
    pub address: Option<String>,
    pub business_scope: Option<String>,
}

/// Unified payload of `tax.deed-tax`: the buyer (承受方) pays deed tax on a second-hand home.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeedTax {
    pub buyer: Option<Person>,
    pub seller: Option<Person>,
    pub unit_number: Option<String>,
    pub certificate_number: Option<String>,
    /// 成交价格, yuan.
    pub price: Option<f64>,
    /// 面积, m².
    pub area: Option<f64>,
}

/// Unified query of `tax.clearance`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClearanceQuery {
    pub taxpayer_id: Option<String>,
}

impl Registration {
    fn representative(&self) -> (Option<&str>, Option<&str>) {
        self.legal_representative
            .as_ref()
            .map_or((None, None), |p| (present(&p.name), present(&p.id_number)))
    }

    /// Every problem the department would have with this registration.
    pub fn check(&self) -> Vec<FieldProblem> {
        let mut c = Checker::new();
        let credit_code = present(&self.credit_code);
        c.required("credit_code", credit_code);
        c.credit_code("credit_code", credit_code);
        c.required("enterprise_name", present(&self.enterprise_name));
        let (name, id_number) = self.representative();
        c.required("legal_representative.name", name);
        c.required("legal_representative.id_number", id_number);
        c.resident_id("legal_representative.id_number", id_number);
        c.required("address", present(&self.address));
        c.required("business_scope", present(&self.business_scope));
        c.into_problems()
    }

    /// The `POST /api/v1/swdj` body; `qqid` is the submission's idempotency key.
    pub fn body(&self, qqid: &str) -> Value {
        let (name, id_number) = self.representative();
        json!({
            "qqid": qqid,
            "nsrsbh": present(&self.credit_code).unwrap_or_default(),
            "nsrmc": present(&self.enterprise_name).unwrap_or_default(),
            "fddbrxm": name.unwrap_or_default(),
            "fddbrsfzjhm": id_number.unwrap_or_default(),
            "scjydz": present(&self.address).unwrap_or_default(),
            "jyfw": present(&self.business_scope).unwrap_or_default(),
        })
    }
}

/// An amount as the department writes it (`jyjg`, `mj`): two decimals.
pub fn two_decimals(value: f64) -> String {
    format!("{value:.2}")
}

/// A positive amount that stays positive once written with two decimals.
fn check_positive(c: &mut Checker, field: &str, value: Option<f64>, what: &str) {
    match value {
        None => c.problem(field, "required", "必填项"),
        Some(v) if !(v.is_finite() && v > 0.0) => {
            c.problem(field, "range", format!("{what}须大于0"))
        }
        // The department reads two decimals: 0.004 would arrive as 0.00.
        Some(v) if two_decimals(v).parse::<f64>().is_ok_and(|q| q <= 0.0) => {
            c.problem(field, "range", format!("{what}须至少为0.01"))
        }
        Some(_) => {}
    }
}

impl DeedTax {
    /// Every problem the department would have with this return.
    pub fn check(&self) -> Vec<FieldProblem> {
        let mut c = Checker::new();
        for (role, who) in [("buyer", &self.buyer), ("seller", &self.seller)] {
            let (name, id_number) = person(who);
            let id_field = format!("{role}.id_number");
            c.required(&format!("{role}.name"), name);
            c.required(&id_field, id_number);
            c.resident_id(&id_field, id_number);
        }
        let (_, buyer_id) = person(&self.buyer);
        let (_, seller_id) = person(&self.seller);
        if matches!((buyer_id, seller_id), (Some(b), Some(s)) if b.eq_ignore_ascii_case(s)) {
            c.problem("buyer.id_number", "rule", "承受方不能与转让方为同一人");
        }
        let unit = present(&self.unit_number);
        c.required("unit_number", unit);
        if let Some(Err(p)) = unit.map(sdk::ids::real_estate_unit) {
            c.problem("unit_number", p.code, p.message);
        }
        let certificate = present(&self.certificate_number);
        c.required("certificate_number", certificate);
        if let Some(Err(p)) = certificate.map(sdk::ids::real_estate_certificate) {
            c.problem("certificate_number", p.code, p.message);
        }
        check_positive(&mut c, "price", self.price, "成交价格（元）");
        check_positive(&mut c, "area", self.area, "面积（平方米）");
        c.into_problems()
    }

    /// The `POST /api/v1/qssb` body; `qqid` is the submission's idempotency key.
    pub fn body(&self, qqid: &str) -> Value {
        let (buyer_name, buyer_id) = person(&self.buyer);
        let (seller_name, seller_id) = person(&self.seller);
        json!({
            "qqid": qqid,
            "nsrxm": buyer_name.unwrap_or_default(),
            "nsrsfzjhm": buyer_id.unwrap_or_default(),
            "zrfxm": seller_name.unwrap_or_default(),
            "zrfsfzjhm": seller_id.unwrap_or_default(),
            "bdcdyh": present(&self.unit_number).unwrap_or_default(),
            "bdcqzh": present(&self.certificate_number).unwrap_or_default(),
            "jyjg": two_decimals(self.price.unwrap_or_default()),
            "mj": two_decimals(self.area.unwrap_or_default()),
        })
    }
}

/// Parse and check a `tax.deed-tax` payload: the return, or every problem.
pub fn deed_tax(payload: &str) -> Result<DeedTax, Vec<FieldProblem>> {
    sdk::payload::parse_checked(payload, DeedTax::check)
}

/// Parse and check a `tax.registration` payload: the registration, or every problem.
pub fn registration(payload: &str) -> Result<Registration, Vec<FieldProblem>> {
    sdk::payload::parse_checked(payload, Registration::check)
}

/// `validate` for any matter name.
pub fn validate(matter: &str, payload: &str) -> Vec<FieldProblem> {
    match matter {
        REGISTRATION => registration(payload).err().unwrap_or_default(),
        DEED_TAX => deed_tax(payload).err().unwrap_or_default(),
        other => vec![unknown_matter(other)],
    }
}

/// The one problem reported for a matter this adapter does not serve.
pub fn unknown_matter(matter: &str) -> FieldProblem {
    FieldProblem {
        field: String::new(),
        code: "unknown_matter".into(),
        message: format!("税务部门不办理事项「{matter}」"),
    }
}

/// Read a clearance query: the taxpayer id (a credit code or a resident ID number), upper-cased.
///
/// A credit code that only fails its check character is passed on: early pilot codes do, and
/// the department knows its own taxpayers.
pub fn clearance_query(query: &str) -> Result<String, Vec<FieldProblem>> {
    let q: ClearanceQuery = sdk::payload::parse(query).map_err(|e| e.problems)?;
    let problem = |code: &str, message: &str| FieldProblem {
        field: "taxpayer_id".into(),
        code: code.into(),
        message: message.into(),
    };
    let Some(id) = present(&q.taxpayer_id).map(str::to_ascii_uppercase) else {
        return Err(vec![problem("required", "必填项")]);
    };
    let as_resident = sdk::ids::resident_id(&id);
    let as_credit = sdk::ids::credit_code(&id);
    let credit_ok = matches!(
        &as_credit,
        Ok(())
            | Err(sdk::ids::IdProblem {
                code: "checksum",
                ..
            })
    );
    if as_resident.is_ok() || credit_ok {
        Ok(id)
    } else {
        Err(vec![problem(
            "format",
            "纳税人识别号应为统一社会信用代码或居民身份号码",
        )])
    }
}

/// The `POST /api/v1/qscx` body.
#[derive(Debug, Serialize)]
pub struct ClearanceBody<'a> {
    /// 纳税人识别号.
    pub nsrsbh: &'a str,
}

/// The `POST /api/v1/qscx` body for a taxpayer.
pub fn clearance_body(taxpayer_id: &str) -> ClearanceBody<'_> {
    ClearanceBody {
        nsrsbh: taxpayer_id,
    }
}

/// The `GET` path of 受理状态 for a 受理号.
pub fn status_path(slh: &str) -> String {
    format!("/api/v1/slzt?slh={}", percent_encode(slh))
}

/// Percent-encode everything but RFC 3986 unreserved characters.
pub fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The signature algorithms the department accepts (`X-Sign-Method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMethod {
    HmacSha256,
    HmacSm3,
}

impl SignMethod {
    /// From the optional `sign-method` setting; absent means HMAC-SHA256.
    pub fn from_setting(setting: Option<&str>) -> Result<SignMethod, AdapterError> {
        match setting.map(str::trim) {
            None | Some("") => Ok(SignMethod::HmacSha256),
            Some(s) if s.eq_ignore_ascii_case("HMAC-SHA256") => Ok(SignMethod::HmacSha256),
            Some(s) if s.eq_ignore_ascii_case("HMAC-SM3") => Ok(SignMethod::HmacSm3),
            Some(other) => Err(AdapterError::Internal(format!(
                "department setting `sign-method` is `{other}`: expected HMAC-SHA256 or HMAC-SM3"
            ))),
        }
    }

    /// The `X-Sign-Method` header value.
    pub fn header_value(self) -> &'static str {
        match self {
            SignMethod::HmacSha256 => "HMAC-SHA256",
            SignMethod::HmacSm3 => "HMAC-SM3",
        }
    }

    /// Lowercase hex HMAC of `message` under the app secret the gateway holds (key
    /// [`APP_SECRET_KEY`]): the adapter never sees the secret.
    pub fn sign_with_host_key(self, message: &[u8]) -> Result<String, AdapterError> {
        let algorithm = match self {
            SignMethod::HmacSha256 => sdk::crypto::Mac::HmacSha256,
            SignMethod::HmacSm3 => sdk::crypto::Mac::HmacSm3,
        };
        Ok(sdk::crypto::mac_hex(APP_SECRET_KEY, algorithm, message)?)
    }

    /// Lowercase hex HMAC of `message` with `secret` in hand (what the department computes,
    /// for tests).
    pub fn sign(self, secret: &[u8], message: &[u8]) -> String {
        match self {
            SignMethod::HmacSha256 => sdk::sign::hmac_sha256_hex(secret, message),
            SignMethod::HmacSm3 => sdk::sign::hmac_sm3_hex(secret, message),
        }
    }
}

/// `METHOD \n PATH_AND_QUERY \n TIMESTAMP \n NONCE \n BODY`, BODY raw (empty for GET).
pub fn canonical(
    method: &str,
    path_and_query: &str,
    timestamp: u64,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!("{method}\n{path_and_query}\n{timestamp}\n{nonce}\n").into_bytes();
    out.extend_from_slice(body);
    out
}

/// The name of the department's HMAC app secret among the keys the gateway holds
/// (`[departments.tax.keys.app-secret]`, kind `hmac`).
pub const APP_SECRET_KEY: &str = "app-secret";

/// What signs one request: the app key and the method; the secret stays in the gateway.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub app_key: String,
    pub method: SignMethod,
}

impl Credentials {
    /// The five authentication headers for one request.
    pub fn headers(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        timestamp: u64,
        nonce: &str,
    ) -> Result<Vec<(String, String)>, AdapterError> {
        let canonical = canonical(method, path_and_query, timestamp, nonce, body);
        Ok(vec![
            ("X-App-Key".into(), self.app_key.clone()),
            ("X-Timestamp".into(), timestamp.to_string()),
            ("X-Nonce".into(), nonce.to_string()),
            ("X-Sign-Method".into(), self.method.header_value().into()),
            (
                "X-Signature".into(),
                self.method.sign_with_host_key(&canonical)?,
            ),
        ])
    }

    /// The authentication headers of an upload, whose body the adapter does not hold: the
    /// canonical string ends with the hex SM3 of the body instead of the body, and the digest
    /// travels as `X-Content-SM3` (the department checks it against what arrives).
    pub fn upload_headers(
        &self,
        method: &str,
        path_and_query: &str,
        body_sm3: &str,
        timestamp: u64,
        nonce: &str,
    ) -> Result<Vec<(String, String)>, AdapterError> {
        let mut headers = self.headers(
            method,
            path_and_query,
            body_sm3.as_bytes(),
            timestamp,
            nonce,
        )?;
        headers.push(("X-Content-SM3".into(), body_sm3.to_string()));
        Ok(headers)
    }
}

/// A department answer that is well-formed: `Ok(data)` for code 0000, else `Err((code, msg))`.
pub type Answer<T = Value> = Result<T, (String, String)>;

/// The envelope of every answer. `data` is kept as the answer's own text until the code says
/// what it holds: a refusal's `data` is never read, and a reader with a type of its own parses
/// it straight into that type, never through a [`Value`].
#[derive(Deserialize)]
struct Envelope<'a> {
    code: String,
    #[serde(default)]
    msg: String,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

/// Read any answer into its `data` or its business refusal. HTTP 5xx is the department being
/// unavailable; a body that is not the department's JSON is a protocol error.
pub fn read_answer(status: u16, body: &[u8]) -> Result<Answer, AdapterError> {
    Ok(read_answer_as::<Value>(status, body)?.map(Option::unwrap_or_default))
}

/// [`read_answer`] with `data` read into `T` (`None` when absent or `null`); `data` that is
/// not a `T` is a protocol error.
pub fn read_answer_as<T: DeserializeOwned>(
    status: u16,
    body: &[u8],
) -> Result<Answer<Option<T>>, AdapterError> {
    if status >= 500 {
        return Err(AdapterError::Unavailable(format!(
            "department answered HTTP {status}"
        )));
    }
    // Only an object with a non-empty `code` is the department's envelope: serde would also read
    // an array (`[""]`) as one, and an empty code would become a refusal without a reason.
    let not_json = |e: String| {
        AdapterError::Protocol(format!(
            "department answered HTTP {status} with a body that is not its JSON: {e}"
        ))
    };
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(not_json("not a JSON object".into()));
    }
    let envelope = serde_json::from_slice::<Envelope>(body).map_err(|e| not_json(e.to_string()))?;
    if envelope.code.is_empty() {
        return Err(not_json("empty `code`".into()));
    }
    if status == 401 {
        return Err(authentication_error(&envelope.code, &envelope.msg));
    }
    if status != 200 {
        return Err(AdapterError::Protocol(format!(
            "department answered HTTP {status} ({} {})",
            envelope.code, envelope.msg
        )));
    }
    if envelope.code != "0000" {
        return Ok(Err((envelope.code, envelope.msg)));
    }
    let data = envelope
        .data
        .map(|raw| serde_json::from_str(raw.get()))
        .transpose()
        .map_err(|e| AdapterError::Protocol(format!("department answer's `data`: {e}")))?;
    Ok(Ok(data))
}

/// HTTP 401 refusals. 4011 (bad signature or unknown app key) and 4012 (timestamp outside the
/// window) mean the configured credentials or the host clock are wrong: retrying cannot help and
/// an operator must act, so they are `Internal`. 4013 (nonce seen before) is cured by the fresh
/// nonce the next attempt carries, so it is `Unavailable` (worth retrying).
fn authentication_error(code: &str, msg: &str) -> AdapterError {
    match code {
        "4013" => AdapterError::Unavailable(format!(
            "department refused a repeated nonce ({code} {msg})"
        )),
        "4012" => AdapterError::Internal(format!(
            "department refused the request timestamp ({code} {msg}): check the host clock"
        )),
        "4014" => AdapterError::Unavailable(format!(
            "department received an upload other than the one signed ({code} {msg}); sent again"
        )),
        _ => AdapterError::Internal(format!(
            "department refused the request signature ({code} {msg}): check app-key, the key app-secret and sign-method"
        )),
    }
}

fn rejected(code: String, message: String) -> AdapterError {
    AdapterError::Rejected(Rejection { code, message })
}

fn text<'a>(data: &'a Value, field: &str) -> Result<&'a str, AdapterError> {
    required(data.get(field).and_then(Value::as_str), field)
}

/// A field the answer must hold, not empty (borrowed from a `Value`, or owned and moved on).
fn required<S: AsRef<str>>(value: Option<S>, field: &str) -> Result<S, AdapterError> {
    value
        .filter(|s| !s.as_ref().is_empty())
        .ok_or_else(|| AdapterError::Protocol(format!("department answer has no `{field}`")))
}

/// The receipt of `POST /api/v1/swdj`: accepted under its 受理号. Refusals are the
/// department's on the merits (`Rejected`), but for the materials list: `3005` (a file id it
/// does not hold for this application: it lost the upload) is `Unavailable`, so the next
/// attempt uploads again; `3006` (a licence identifier whose check character fails: the
/// gateway's licence) is `Internal`.
pub fn read_registration(status: u16, body: &[u8]) -> Result<Receipt, AdapterError> {
    let data = read_answer(status, body)?.map_err(|(code, msg)| match code.as_str() {
        "3005" => AdapterError::Unavailable(format!(
            "department does not hold an uploaded file ({code} {msg}); uploaded again"
        )),
        "3006" => AdapterError::Internal(format!(
            "department refused a licence identifier ({code} {msg})"
        )),
        _ => rejected(code, msg),
    })?;
    Ok(Receipt::accepted(text(&data, "slh")?))
}

/// The receipt of `POST /api/v1/qssb`: accepted under its 受理号, like a registration.
pub fn read_deed_tax(status: u16, body: &[u8]) -> Result<Receipt, AdapterError> {
    read_registration(status, body)
}

/// The report of `GET /api/v1/slzt` for a registration: once 02, the outputs carry the
/// taxpayer id and the registration date.
pub fn read_status(
    reference: &str,
    status: u16,
    body: &[u8],
) -> Result<StatusReport, AdapterError> {
    read_slzt(reference, status, body, "swdjxx", |info| {
        Ok(json!({
            "taxpayer_id": text(info, "nsrsbh")?,
            "registered_on": text(info, "djrq")?,
        }))
    })
}

/// The report of `GET /api/v1/slzt` for a 契税申报: once 02, the outputs carry the 完税凭证号
/// and the tax due (yuan, as the department wrote it).
pub fn read_deed_tax_status(
    reference: &str,
    status: u16,
    body: &[u8],
) -> Result<StatusReport, AdapterError> {
    read_slzt(reference, status, body, "qsxx", |info| {
        let due = text(info, "ynse")?;
        if !is_amount(due) {
            return Err(AdapterError::Protocol(format!(
                "tax due `ynse` is not an amount: {due}"
            )));
        }
        Ok(json!({
            "tax_receipt_no": text(info, "wspzh")?,
            "tax_due": due,
        }))
    })
}

/// `^\d+\.\d{2}$`: how the department writes yuan.
fn is_amount(value: &str) -> bool {
    value.split_once('.').is_some_and(|(whole, fraction)| {
        !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && fraction.len() == 2
            && fraction.bytes().all(|b| b.is_ascii_digit())
    })
}

/// `slzt` for any matter: the state from `zt`, and on 02 the outputs read from the matter's
/// information object (`info`).
fn read_slzt(
    reference: &str,
    status: u16,
    body: &[u8],
    info: &str,
    outputs: impl FnOnce(&Value) -> Result<Value, AdapterError>,
) -> Result<StatusReport, AdapterError> {
    let data = read_answer(status, body)?.map_err(|(code, msg)| rejected(code, msg))?;
    let message = data.get("ztmc").and_then(Value::as_str).map(str::to_string);
    let mut report = StatusReport::new(reference, StepState::Accepted);
    report.message = message;
    match text(&data, "zt")? {
        "01" => report.state = StepState::Processing,
        "02" => {
            let info = data
                .get(info)
                .filter(|v| v.is_object())
                .ok_or_else(|| AdapterError::Protocol(format!("status 02 without `{info}`")))?;
            report.state = StepState::Approved;
            report.outputs = outputs(info)?.to_string();
        }
        "03" => report.state = StepState::Rejected,
        "04" => {
            report.state = StepState::Returned;
            report.requested = Some(crate::lifecycle::requested(
                data.get("bzxx").unwrap_or(&Value::Null),
            )?);
        }
        "05" => report.state = StepState::Withdrawn,
        other => {
            return Err(AdapterError::Protocol(format!(
                "unknown status code zt={other}"
            )));
        }
    }
    Ok(report)
}

/// The department's `data` of `POST /api/v1/qscx`. Each field is optional here so that a
/// missing one is named in the protocol error ([`required`]).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ClearanceData {
    nsrsbh: Option<String>,
    nsrmc: Option<String>,
    qszt: Option<String>,
    qjje: Option<String>,
}

/// The unified answer of `tax.clearance`.
#[derive(Debug, PartialEq, Serialize)]
pub struct Clearance {
    /// The taxpayer's id as the department holds it.
    pub taxpayer_id: String,
    /// The taxpayer's registered name.
    pub name: String,
    /// Whether every tax is paid (清税).
    pub cleared: bool,
    /// What is owed, yuan, as the department wrote it.
    pub arrears: String,
}

/// The unified answer of `tax.clearance`; 2002 (纳税人不存在) is `not_found`.
pub fn read_clearance(status: u16, body: &[u8]) -> Result<Clearance, AdapterError> {
    let data = read_answer_as::<ClearanceData>(status, body)?
        .map_err(|(code, msg)| match code.as_str() {
            "2002" => rejected("not_found".into(), msg),
            _ => rejected(code, msg),
        })?
        .unwrap_or_default();
    let cleared = match required(data.qszt, "qszt")?.as_str() {
        "Y" => true,
        "N" => false,
        other => {
            return Err(AdapterError::Protocol(format!(
                "unknown clearance state qszt={other}"
            )));
        }
    };
    Ok(Clearance {
        taxpayer_id: required(data.nsrsbh, "nsrsbh")?,
        name: required(data.nsrmc, "nsrmc")?,
        cleared,
        arrears: required(data.qjje, "qjje")?,
    })
}

/// Input schema of `tax.registration`.
pub fn registration_schema() -> Value {
    let person = json!({
        "type": "object",
        "title": "法定代表人",
        "required": ["name", "id_number"],
        "properties": {
            "name": {"type": "string", "title": "姓名", "minLength": 1},
            "id_number": {"type": "string", "title": "居民身份号码", "minLength": 1, "format": "resident-id"}
        }
    });
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "税务登记",
        "type": "object",
        "required": ["credit_code", "enterprise_name", "legal_representative", "address", "business_scope"],
        "properties": {
            "credit_code": {"type": "string", "title": "统一社会信用代码", "minLength": 1, "format": "credit-code"},
            "enterprise_name": {"type": "string", "title": "纳税人名称", "minLength": 1},
            "legal_representative": person,
            "address": {"type": "string", "title": "生产经营地址", "minLength": 1},
            "business_scope": {"type": "string", "title": "经营范围", "minLength": 1}
        }
    })
}

/// Input schema of `tax.deed-tax`.
pub fn deed_tax_schema() -> Value {
    let person = |title: &str| {
        json!({
            "type": "object",
            "title": title,
            "required": ["name", "id_number"],
            "properties": {
                "name": {"type": "string", "title": "姓名", "minLength": 1},
                "id_number": {"type": "string", "title": "居民身份号码", "minLength": 1, "format": "resident-id"}
            }
        })
    };
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "契税申报",
        "type": "object",
        "required": ["buyer", "seller", "unit_number", "certificate_number", "price", "area"],
        "properties": {
            "buyer": person("承受方（买方）"),
            "seller": person("转让方（卖方）"),
            "unit_number": {"type": "string", "title": "不动产单元号", "minLength": 1, "format": "real-estate-unit"},
            "certificate_number": {"type": "string", "title": "不动产权证书号", "minLength": 1, "format": "real-estate-certificate"},
            "price": {"type": "number", "title": "成交价格（元）"},
            "area": {"type": "number", "title": "面积（平方米）"}
        }
    })
}

/// Query schema of `tax.clearance`.
pub fn clearance_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "清税查询",
        "type": "object",
        "required": ["taxpayer_id"],
        // Shown in the gateway's API document as this lookup's example query.
        "examples": [{"taxpayer_id": "91350100M000100Y43"}],
        "properties": {
            "taxpayer_id": {"type": "string", "title": "纳税人识别号（统一社会信用代码或居民身份号码）", "minLength": 1}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"credit_code":"91350100M000100Y43","enterprise_name":"福州测试科技有限公司",
        "legal_representative":{"name":"张三","id_number":"11010519491231002X"},
        "address":"福州市鼓楼区五四路1号","business_scope":"软件开发"}"#;

    fn codes(problems: &[FieldProblem]) -> Vec<(&str, &str)> {
        problems
            .iter()
            .map(|p| (p.field.as_str(), p.code.as_str()))
            .collect()
    }

    #[test]
    fn a_good_registration_maps_to_the_department_fields() {
        let r = registration(GOOD).unwrap();
        let body = r.body("key-1");
        assert_eq!(
            body,
            json!({"qqid": "key-1", "nsrsbh": "91350100M000100Y43", "nsrmc": "福州测试科技有限公司",
                "fddbrxm": "张三", "fddbrsfzjhm": "11010519491231002X",
                "scjydz": "福州市鼓楼区五四路1号", "jyfw": "软件开发"})
        );
    }

    #[test]
    fn validation_reports_every_problem_at_once() {
        let payload = r#"{"credit_code":"91350100M000100Y44","enterprise_name":" ",
            "legal_representative":{"name":"张三","id_number":"110105194912310021"},"address":"x"}"#;
        let problems = validate(REGISTRATION, payload);
        assert_eq!(
            codes(&problems),
            vec![
                ("credit_code", "checksum"),
                ("enterprise_name", "required"),
                ("legal_representative.id_number", "checksum"),
                ("business_scope", "required"),
            ]
        );
        let missing = validate(REGISTRATION, "{}");
        assert!(codes(&missing).contains(&("legal_representative.id_number", "required")));
        assert_eq!(missing.len(), 6, "{missing:?}");
    }

    #[test]
    fn unknown_matters_are_one_problem() {
        assert_eq!(
            codes(&validate("tax.other", "{}")),
            vec![("", "unknown_matter")]
        );
    }

    #[test]
    fn canonical_string_and_signature() {
        let c = canonical("GET", "/api/v1/slzt?slh=SW1", 1_700_000_000, "abc", b"");
        assert_eq!(c, b"GET\n/api/v1/slzt?slh=SW1\n1700000000\nabc\n");
        let creds = Credentials {
            app_key: "gw-demo".into(),
            method: SignMethod::HmacSm3,
        };
        let harness = sdk::testing::Harness::new().key(
            APP_SECRET_KEY,
            sdk::testing::TestKey::hmac("tax-demo-secret"),
        );
        let headers = creds
            .headers(
                "POST",
                "/api/v1/qscx",
                b"{}",
                1_700_000_000,
                "n0nce0000000000000",
            )
            .unwrap();
        harness.finish();
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
                .unwrap()
        };
        assert_eq!(get("X-App-Key"), "gw-demo");
        assert_eq!(get("X-Timestamp"), "1700000000");
        assert_eq!(get("X-Sign-Method"), "HMAC-SM3");
        let expected = sdk::sign::hmac_sm3_hex(
            b"tax-demo-secret",
            b"POST\n/api/v1/qscx\n1700000000\nn0nce0000000000000\n{}",
        );
        assert_eq!(get("X-Signature"), expected);
        let sha = SignMethod::HmacSha256.sign(b"k", b"m");
        assert_eq!(sha, sdk::sign::hmac_sha256_hex(b"k", b"m"));
        assert_ne!(sha, SignMethod::HmacSm3.sign(b"k", b"m"));
    }

    #[test]
    fn sign_method_setting() {
        assert_eq!(
            SignMethod::from_setting(None).unwrap(),
            SignMethod::HmacSha256
        );
        assert_eq!(
            SignMethod::from_setting(Some("HMAC-SM3")).unwrap(),
            SignMethod::HmacSm3
        );
        assert!(matches!(
            SignMethod::from_setting(Some("MD5")),
            Err(AdapterError::Internal(_))
        ));
    }

    #[test]
    fn answers_without_an_envelope_are_protocol_errors() {
        // Found by the property tests (tests/fuzz.rs): these were refusals with an empty code.
        for body in [&br#"[""]"#[..], br#"["2001","x"]"#, br#"{"code":""}"#] {
            assert!(
                matches!(read_registration(200, body), Err(AdapterError::Protocol(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn registration_answers() {
        let ok = r#"{"code":"0000","msg":"成功","data":{"slh":"SW2025010100000001"}}"#.as_bytes();
        let receipt = read_registration(200, ok).unwrap();
        assert_eq!(receipt.reference, "SW2025010100000001");
        assert_eq!(receipt.state, StepState::Accepted);
        let refused = r#"{"code":"2001","msg":"纳税人识别号格式错误","data":null}"#.as_bytes();
        match read_registration(200, refused) {
            Err(AdapterError::Rejected(r)) => assert_eq!(r.code, "2001"),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(read_registration(503, b""), Err(AdapterError::Unavailable(m)) if m.contains("503"))
        );
        assert!(matches!(
            read_registration(500, b""),
            Err(AdapterError::Unavailable(_))
        ));
        assert!(matches!(
            read_registration(200, b"\xff<<garbage"),
            Err(AdapterError::Protocol(_))
        ));
        assert!(matches!(
            read_registration(200, br#"{"code":"0000","data":{}}"#),
            Err(AdapterError::Protocol(_))
        ));
        let bad_sig = r#"{"code":"4011","msg":"签名错误"}"#.as_bytes();
        assert!(matches!(
            read_registration(401, bad_sig),
            Err(AdapterError::Internal(_))
        ));
        let replay = r#"{"code":"4013","msg":"nonce重复"}"#.as_bytes();
        assert!(matches!(
            read_registration(401, replay),
            Err(AdapterError::Unavailable(_))
        ));
    }

    #[test]
    fn status_answers() {
        let processing = r#"{"code":"0000","msg":"成功","data":{"slh":"SW1","zt":"01","ztmc":"受理中","swdjxx":null}}"#.as_bytes();
        let r = read_status("SW1", 200, processing).unwrap();
        assert_eq!((r.state, r.outputs.as_str()), (StepState::Processing, "{}"));
        let done = r#"{"code":"0000","msg":"成功","data":{"slh":"SW1","zt":"02","ztmc":"已办结",
            "swdjxx":{"nsrsbh":"91350100M000100Y43","djrq":"2025-06-15"}}}"#
            .as_bytes();
        let r = read_status("SW1", 200, done).unwrap();
        assert_eq!(r.state, StepState::Approved);
        assert_eq!(r.reference, "SW1");
        let outputs: Value = serde_json::from_str(&r.outputs).unwrap();
        assert_eq!(
            outputs,
            json!({"taxpayer_id": "91350100M000100Y43", "registered_on": "2025-06-15"})
        );
        let refused = r#"{"code":"0000","msg":"成功","data":{"slh":"SW1","zt":"03","ztmc":"不予受理","swdjxx":null}}"#.as_bytes();
        let r = read_status("SW1", 200, refused).unwrap();
        assert_eq!(
            (r.state, r.message.as_deref()),
            (StepState::Rejected, Some("不予受理"))
        );
        let unknown = r#"{"code":"2004","msg":"受理号不存在","data":null}"#.as_bytes();
        assert!(
            matches!(read_status("SW9", 200, unknown), Err(AdapterError::Rejected(r)) if r.code == "2004")
        );
        let no_info = br#"{"code":"0000","data":{"slh":"SW1","zt":"02","swdjxx":null}}"#;
        assert!(matches!(
            read_status("SW1", 200, no_info),
            Err(AdapterError::Protocol(_))
        ));
    }

    #[test]
    fn upload_answers() {
        let ok = r#"{"code":"0000","msg":"成功","data":{"wjid":"WJ1","wjdx":10}}"#.as_bytes();
        assert_eq!(read_uploaded("lease", 200, ok).unwrap(), "WJ1");
        for (code, kind) in [("3001", "empty"), ("3002", "too_large"), ("3004", "format")] {
            let body = format!(r#"{{"code":"{code}","msg":"拒收","data":null}}"#);
            match read_uploaded("lease", 200, body.as_bytes()) {
                Err(AdapterError::InvalidInput(p)) => {
                    assert_eq!(
                        (p[0].field.as_str(), p[0].code.as_str()),
                        ("materials.lease", kind)
                    )
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        assert!(matches!(
            read_uploaded("lease", 200, br#"{"code":"3003","msg":"x"}"#),
            Err(AdapterError::Internal(m)) if m.contains("lease")
        ));
        assert!(matches!(
            read_uploaded("lease", 401, br#"{"code":"4014","msg":"x"}"#),
            Err(AdapterError::Unavailable(_))
        ));
        assert!(matches!(
            read_uploaded("lease", 200, br#"{"code":"0000","data":{}}"#),
            Err(AdapterError::Protocol(_))
        ));
    }

    #[test]
    fn status_path_is_encoded() {
        assert_eq!(status_path("SW2025"), "/api/v1/slzt?slh=SW2025");
        assert_eq!(status_path("a b&c"), "/api/v1/slzt?slh=a%20b%26c");
    }

    #[test]
    fn clearance_queries_and_answers() {
        assert_eq!(
            clearance_query(r#"{"taxpayer_id":"11010519491231002x"}"#).unwrap(),
            "11010519491231002X"
        );
        assert_eq!(
            clearance_query(r#"{"taxpayer_id":"91350100M000100Y43"}"#).unwrap(),
            "91350100M000100Y43"
        );
        let bad = clearance_query(r#"{"taxpayer_id":"123"}"#).unwrap_err();
        assert_eq!(codes(&bad), vec![("taxpayer_id", "format")]);
        assert_eq!(
            codes(&clearance_query("{}").unwrap_err()),
            vec![("taxpayer_id", "required")]
        );

        let arrears = r#"{"code":"0000","msg":"成功","data":{"nsrsbh":"91110108551385082Q",
            "nsrmc":"北京欠税商贸有限公司","qszt":"N","qjje":"12800.00"}}"#;
        assert_eq!(
            serde_json::to_value(read_clearance(200, arrears.as_bytes()).unwrap()).unwrap(),
            json!({"taxpayer_id": "91110108551385082Q", "name": "北京欠税商贸有限公司",
                "cleared": false, "arrears": "12800.00"})
        );
        let nameless = r#"{"code":"0000","data":{"nsrsbh":"91110108551385082Q","qszt":"Y",
            "qjje":"0.00"}}"#;
        assert!(
            matches!(read_clearance(200, nameless.as_bytes()), Err(AdapterError::Protocol(m)) if m.contains("`nsrmc`"))
        );
        let dataless = r#"{"code":"0000","msg":"成功"}"#;
        assert!(
            matches!(read_clearance(200, dataless.as_bytes()), Err(AdapterError::Protocol(m)) if m.contains("`qszt`"))
        );
        let mistyped = r#"{"code":"0000","data":{"nsrsbh":7}}"#;
        assert!(matches!(
            read_clearance(200, mistyped.as_bytes()),
            Err(AdapterError::Protocol(_))
        ));
        let missing = r#"{"code":"2002","msg":"纳税人不存在","data":null}"#.as_bytes();
        assert!(
            matches!(read_clearance(200, missing), Err(AdapterError::Rejected(r)) if r.code == "not_found")
        );
    }

    const DEED: &str = r#"{"buyer":{"name":"李四","id_number":"34052419800101001X"},
        "seller":{"name":"张三","id_number":"11010519491231002X"},
        "unit_number":"351001012010GB01859F00040015",
        "certificate_number":"闽(2019)平潭不动产权第0011364号","price":1200000,"area":89.56}"#;

    #[test]
    fn a_good_deed_tax_return_maps_to_the_department_fields() {
        assert!(validate(DEED_TAX, DEED).is_empty());
        let d = deed_tax(DEED).unwrap();
        assert_eq!(
            d.body("key-2"),
            json!({"qqid": "key-2", "nsrxm": "李四", "nsrsfzjhm": "34052419800101001X",
                "zrfxm": "张三", "zrfsfzjhm": "11010519491231002X",
                "bdcdyh": "351001012010GB01859F00040015",
                "bdcqzh": "闽(2019)平潭不动产权第0011364号",
                "jyjg": "1200000.00", "mj": "89.56"})
        );
        assert_eq!(two_decimals(1234567.891), "1234567.89");
        assert_eq!(two_decimals(90.0), "90.00");
    }

    #[test]
    fn deed_tax_validation_reports_every_problem_at_once() {
        let payload = r#"{"buyer":{"name":"张三","id_number":"11010519491231002X"},
            "seller":{"name":" ","id_number":"11010519491231002x"},
            "unit_number":"351001012010GI01859F00040015",
            "certificate_number":"闽(19)平潭不动产权第0011364号","price":0,"area":0.001}"#;
        assert_eq!(
            codes(&validate(DEED_TAX, payload)),
            vec![
                ("seller.name", "required"),
                ("seller.id_number", "format"),
                ("buyer.id_number", "rule"),
                ("unit_number", "format"),
                ("certificate_number", "format"),
                ("price", "range"),
                ("area", "range"),
            ]
        );
        let bad_ids = DEED
            .replace("34052419800101001X", "340524198001010011")
            .replace("11010519491231002X", "1101051949123100");
        assert_eq!(
            codes(&validate(DEED_TAX, &bad_ids)),
            vec![
                ("buyer.id_number", "checksum"),
                ("seller.id_number", "length")
            ]
        );
        let missing = validate(DEED_TAX, "{}");
        assert_eq!(
            codes(&missing),
            vec![
                ("buyer.name", "required"),
                ("buyer.id_number", "required"),
                ("seller.name", "required"),
                ("seller.id_number", "required"),
                ("unit_number", "required"),
                ("certificate_number", "required"),
                ("price", "required"),
                ("area", "required"),
            ]
        );
        // Full-width parentheses are the same certificate.
        assert!(validate(DEED_TAX, &DEED.replace("(2019)", "（2019）")).is_empty());
    }

    #[test]
    fn deed_tax_answers() {
        let ok = r#"{"code":"0000","msg":"成功","data":{"slh":"QS2025010100000001"}}"#.as_bytes();
        let receipt = read_deed_tax(200, ok).unwrap();
        assert_eq!(
            (receipt.reference.as_str(), receipt.state),
            ("QS2025010100000001", StepState::Accepted)
        );
        let refused =
            r#"{"code":"2006","msg":"承受方与转让方不能为同一人","data":null}"#.as_bytes();
        assert!(
            matches!(read_deed_tax(200, refused), Err(AdapterError::Rejected(r)) if r.code == "2006")
        );
        assert!(matches!(
            read_deed_tax(503, b""),
            Err(AdapterError::Unavailable(_))
        ));

        let waiting = r#"{"code":"0000","msg":"成功","data":{"slh":"QS1","zt":"01","ztmc":"受理中","qsxx":null}}"#;
        let r = read_deed_tax_status("QS1", 200, waiting.as_bytes()).unwrap();
        assert_eq!((r.state, r.outputs.as_str()), (StepState::Processing, "{}"));
        let done = r#"{"code":"0000","msg":"成功","data":{"slh":"QS1","zt":"02","ztmc":"已办结",
            "qsxx":{"wspzh":"3512025061500000007","ynse":"12000.00"}}}"#;
        let r = read_deed_tax_status("QS1", 200, done.as_bytes()).unwrap();
        assert_eq!(
            (r.state, r.reference.as_str()),
            (StepState::Approved, "QS1")
        );
        assert_eq!(
            serde_json::from_str::<Value>(&r.outputs).unwrap(),
            json!({"tax_receipt_no": "3512025061500000007", "tax_due": "12000.00"})
        );
        // A registration's answer is not a deed-tax answer, and the reverse.
        assert!(matches!(
            read_status("QS1", 200, done.as_bytes()),
            Err(AdapterError::Protocol(m)) if m.contains("swdjxx")
        ));
        for bad in [
            r#"{"code":"0000","data":{"slh":"QS1","zt":"02","qsxx":null}}"#,
            r#"{"code":"0000","data":{"slh":"QS1","zt":"02","qsxx":{"wspzh":"1"}}}"#,
            r#"{"code":"0000","data":{"slh":"QS1","zt":"02","qsxx":{"wspzh":"1","ynse":"12000"}}}"#,
            r#"{"code":"0000","data":{"slh":"QS1","zt":"09","qsxx":null}}"#,
        ] {
            assert!(
                matches!(
                    read_deed_tax_status("QS1", 200, bad.as_bytes()),
                    Err(AdapterError::Protocol(_))
                ),
                "{bad}"
            );
        }
        let unknown = r#"{"code":"2004","msg":"受理号不存在","data":null}"#.as_bytes();
        assert!(
            matches!(read_deed_tax_status("QS9", 200, unknown), Err(AdapterError::Rejected(r)) if r.code == "2004")
        );
    }

    #[test]
    fn schemas_mark_identifiers_with_their_formats() {
        let s = registration_schema();
        assert_eq!(s["properties"]["credit_code"]["format"], "credit-code");
        assert_eq!(
            s["properties"]["legal_representative"]["properties"]["id_number"]["format"],
            "resident-id"
        );
        let d = deed_tax_schema();
        assert_eq!(d["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(d["title"], "契税申报");
        for role in ["buyer", "seller"] {
            assert_eq!(
                d["properties"][role]["properties"]["id_number"]["format"],
                "resident-id"
            );
        }
        assert_eq!(d["properties"]["unit_number"]["format"], "real-estate-unit");
        assert_eq!(
            d["properties"]["certificate_number"]["format"],
            "real-estate-certificate"
        );
        assert_eq!(d["properties"]["price"]["type"], "number");
        assert_eq!(
            d["required"],
            json!([
                "buyer",
                "seller",
                "unit_number",
                "certificate_number",
                "price",
                "area"
            ])
        );
        // Either a credit code or a resident ID: no single format applies.
        assert!(
            clearance_schema()["properties"]["taxpayer_id"]
                .get("format")
                .is_none()
        );
    }

    #[test]
    fn schemas_are_titled_json_schema() {
        let s = registration_schema();
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(
            s["properties"]["legal_representative"]["properties"]["id_number"]["title"],
            "居民身份号码"
        );
        assert_eq!(clearance_schema()["required"], json!(["taxpayer_id"]));
    }
}
