//! The market-regulation system's protocol as pure functions: payload checks, OAuth2 token
//! requests and answers, licence and food permit applications, callbacks and enterprise
//! lookups. Nothing here calls the host.

pub use sdk::payload::Person;
use sdk::payload::{Checker, FieldProblem, person, present};
use sdk::{AdapterError, FieldError, Receipt, Rejection, StatusReport, StepState};
use serde::Deserialize;
use serde_json::{Value, json};

/// 营业执照设立登记.
pub const BUSINESS_LICENCE: &str = "market-regulation.business-licence";
/// 食品经营许可.
pub const FOOD_PERMIT: &str = "market-regulation.food-permit";
/// 企业登记信息查询.
pub const ENTERPRISE: &str = "market-regulation.enterprise";

/// Token endpoint.
pub const TOKEN_PATH: &str = "/oauth/token";
/// Licence applications.
pub const LICENCES_PATH: &str = "/api/licences";
/// Food business permit applications.
pub const FOOD_PERMITS_PATH: &str = "/api/food-permits";
/// Cache key of the access token.
/// The host key (`hmac`) that checks the department's callback signatures.
pub const CALLBACK_KEY: &str = "callback-secret";

pub const TOKEN_CACHE_KEY: &str = "token";
/// The token is dropped from the cache this long before the department expires it.
pub const TOKEN_MARGIN_SECS: u64 = 30;

/// Unified payload of `market-regulation.business-licence`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Licence {
    pub enterprise_name: Option<String>,
    pub address: Option<String>,
    pub legal_representative: Option<Person>,
    /// 万元.
    pub registered_capital: Option<f64>,
    pub business_scope: Option<String>,
}

/// Unified payload of `market-regulation.food-permit`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FoodPermit {
    pub credit_code: Option<String>,
    pub enterprise_name: Option<String>,
    pub address: Option<String>,
    pub legal_representative: Option<Person>,
    /// 经营项目, e.g. `热食类食品制售`.
    pub business_items: Option<Vec<String>>,
    /// 经营场所面积, m².
    pub premises_area: Option<f64>,
}

/// Unified query of `market-regulation.enterprise`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EnterpriseQuery {
    pub credit_code: Option<String>,
}

impl Licence {
    /// Every problem the department would have with this application.
    pub fn check(&self) -> Vec<FieldProblem> {
        let mut c = Checker::new();
        c.required("enterprise_name", present(&self.enterprise_name));
        c.required("address", present(&self.address));
        let (name, id_number) = person(&self.legal_representative);
        c.required("legal_representative.name", name);
        c.required("legal_representative.id_number", id_number);
        c.resident_id("legal_representative.id_number", id_number);
        match self.registered_capital {
            None => c.problem("registered_capital", "required", "必填项"),
            Some(v) if !(v.is_finite() && v > 0.0) => {
                c.problem("registered_capital", "range", "注册资本须大于0万元")
            }
            Some(_) => {}
        }
        c.required("business_scope", present(&self.business_scope));
        c.into_problems()
    }

    /// The `POST /api/licences` body; `requestId` is the submission's idempotency key.
    pub fn body(&self, request_id: &str, callback_url: &str) -> Value {
        let (name, id_number) = person(&self.legal_representative);
        json!({
            "requestId": request_id,
            "name": present(&self.enterprise_name).unwrap_or_default(),
            "address": present(&self.address).unwrap_or_default(),
            "legalRepresentative": {"name": name.unwrap_or_default(), "idNumber": id_number.unwrap_or_default()},
            "registeredCapital": self.registered_capital.unwrap_or_default(),
            "businessScope": present(&self.business_scope).unwrap_or_default(),
            "callbackUrl": callback_url,
        })
    }
}

impl FoodPermit {
    /// The business items, trimmed.
    fn items(&self) -> Vec<&str> {
        self.business_items
            .iter()
            .flatten()
            .map(|i| i.trim())
            .collect()
    }

    /// Every problem the department would have with this application.
    pub fn check(&self) -> Vec<FieldProblem> {
        let mut c = Checker::new();
        let credit_code = present(&self.credit_code);
        c.required("credit_code", credit_code);
        // The department refuses any code failing GB 32100, pilot codes included.
        c.credit_code("credit_code", credit_code);
        c.required("enterprise_name", present(&self.enterprise_name));
        c.required("address", present(&self.address));
        let (name, id_number) = person(&self.legal_representative);
        c.required("legal_representative.name", name);
        c.required("legal_representative.id_number", id_number);
        c.resident_id("legal_representative.id_number", id_number);
        match &self.business_items {
            None => c.problem("business_items", "required", "必填项"),
            Some(items) if items.is_empty() => {
                c.problem("business_items", "required", "至少填写一项经营项目")
            }
            Some(_) => {
                for (i, item) in self.items().iter().enumerate() {
                    c.required(&format!("business_items.{i}"), Some(item));
                }
            }
        }
        match self.premises_area {
            None => c.problem("premises_area", "required", "必填项"),
            Some(v) if !(v.is_finite() && v > 0.0) => {
                c.problem("premises_area", "range", "经营场所面积须大于0平方米")
            }
            Some(_) => {}
        }
        c.into_problems()
    }

    /// The `POST /api/food-permits` body; `requestId` is the submission's idempotency key.
    pub fn body(&self, request_id: &str) -> Value {
        let (name, id_number) = person(&self.legal_representative);
        json!({
            "requestId": request_id,
            "uscc": present(&self.credit_code).unwrap_or_default(),
            "name": present(&self.enterprise_name).unwrap_or_default(),
            "address": present(&self.address).unwrap_or_default(),
            "legalRepresentative": {"name": name.unwrap_or_default(), "idNumber": id_number.unwrap_or_default()},
            "businessItems": self.items(),
            "premisesArea": self.premises_area.unwrap_or_default(),
        })
    }
}

/// Parse and check a `market-regulation.food-permit` payload.
pub fn food_permit(payload: &str) -> Result<FoodPermit, Vec<FieldProblem>> {
    sdk::payload::parse_checked(payload, FoodPermit::check)
}

/// Parse and check a `market-regulation.business-licence` payload.
pub fn licence(payload: &str) -> Result<Licence, Vec<FieldProblem>> {
    sdk::payload::parse_checked(payload, Licence::check)
}

/// `validate` for any matter name.
pub fn validate(matter: &str, payload: &str) -> Vec<FieldProblem> {
    match matter {
        BUSINESS_LICENCE => licence(payload).err().unwrap_or_default(),
        FOOD_PERMIT => food_permit(payload).err().unwrap_or_default(),
        other => vec![unknown_matter(other)],
    }
}

/// The one problem reported for a matter this adapter does not serve.
pub fn unknown_matter(matter: &str) -> FieldProblem {
    FieldProblem {
        field: String::new(),
        code: "unknown_matter".into(),
        message: format!("市场监管部门不办理事项「{matter}」"),
    }
}

/// The credit code of an enterprise query, upper-cased. A code that only fails its check
/// character is passed on: early pilot codes do, and the department knows its own register.
pub fn enterprise_query(query: &str) -> Result<String, Vec<FieldProblem>> {
    let q: EnterpriseQuery = sdk::payload::parse(query).map_err(|e| e.problems)?;
    let problem = |code: &str, message: String| {
        vec![FieldProblem {
            field: "credit_code".into(),
            code: code.into(),
            message,
        }]
    };
    let Some(code) = present(&q.credit_code).map(str::to_ascii_uppercase) else {
        return Err(problem("required", "必填项".into()));
    };
    match sdk::ids::credit_code(&code) {
        Err(p) if p.code != "checksum" => Err(problem(p.code, p.message)),
        _ => Ok(code),
    }
}

/// The path of one enterprise.
pub fn enterprise_path(credit_code: &str) -> String {
    format!("/api/enterprises/{}", percent_encode(credit_code))
}

/// The path of one licence application.
pub fn licence_path(application_no: &str) -> String {
    format!("{LICENCES_PATH}/{}", percent_encode(application_no))
}

/// The path of one food permit application.
pub fn food_permit_path(application_no: &str) -> String {
    format!("{FOOD_PERMITS_PATH}/{}", percent_encode(application_no))
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

/// The `application/x-www-form-urlencoded` body of the client-credentials grant.
pub fn token_form(client_id: &str, client_secret: &str) -> String {
    let enc = |v: &str| percent_encode(v).replace("%20", "+");
    format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        enc(client_id),
        enc(client_secret)
    )
}

/// An access token and how long to cache it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub access_token: String,
    pub ttl_ms: u32,
}

/// Cache lifetime of a token valid for `expires_in` seconds: 30 s less, at least 1 s.
pub fn token_ttl_ms(expires_in: u64) -> u32 {
    let secs = expires_in.saturating_sub(TOKEN_MARGIN_SECS).max(1);
    u32::try_from(secs.saturating_mul(1000)).unwrap_or(u32::MAX)
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    message: String,
}

/// A blank `error` is no code: the answer is read as if it had none (`conflict`, `invalid` …).
fn error_body(body: &[u8]) -> Option<ErrorBody> {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .filter(|e| !e.error.is_empty())
}

fn unavailable(status: u16) -> AdapterError {
    AdapterError::Unavailable(format!("department answered HTTP {status}"))
}

/// Read the token endpoint's answer.
///
/// Wrong client credentials (401 `invalid_client`) are a configuration the adapter cannot fix and
/// retrying will not cure: `Internal`, naming the settings to check.
pub fn read_token(status: u16, body: &[u8]) -> Result<Token, AdapterError> {
    #[derive(Deserialize)]
    struct Answer {
        access_token: String,
        #[serde(default)]
        expires_in: Option<u64>,
    }
    match status {
        500.. => Err(unavailable(status)),
        200..=299 => {
            let answer: Answer = serde_json::from_slice(body)
                .map_err(|e| AdapterError::Protocol(format!("unreadable token answer: {e}")))?;
            if answer.access_token.is_empty() {
                return Err(AdapterError::Protocol(
                    "token answer has an empty access_token".into(),
                ));
            }
            Ok(Token {
                access_token: answer.access_token,
                ttl_ms: token_ttl_ms(answer.expires_in.unwrap_or(0)),
            })
        }
        400 | 401 => {
            let error = error_body(body).map_or_else(|| format!("HTTP {status}"), |e| e.error);
            Err(AdapterError::Internal(format!(
                "department refused the client credentials ({error}): check client-id and client-secret"
            )))
        }
        _ => Err(AdapterError::Protocol(format!(
            "token endpoint answered HTTP {status}"
        ))),
    }
}

/// The error of an API answer that is not 2xx (401 is handled by the caller's retry):
/// 404 `not_found`, 409 refusals (`name_taken` ...), 422 invalid fields, 5xx unavailable.
pub fn api_error(status: u16, body: &[u8]) -> AdapterError {
    let parsed = error_body(body);
    let message = parsed
        .as_ref()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    match status {
        500.. => unavailable(status),
        401 => AdapterError::Protocol(format!(
            "department refused a freshly issued token ({})",
            parsed.map_or_else(|| "HTTP 401".into(), |e| e.error)
        )),
        404 => AdapterError::Rejected(Rejection {
            code: "not_found".into(),
            message: or(message, "未查询到"),
        }),
        409 => AdapterError::Rejected(Rejection {
            code: parsed.map_or_else(|| "conflict".into(), |e| e.error),
            message,
        }),
        422 => AdapterError::InvalidInput(vec![FieldError::new(
            "",
            parsed.map_or_else(|| "invalid".into(), |e| e.error),
            or(message, "市场监管部门认为申请字段有误"),
        )]),
        _ => AdapterError::Protocol(match parsed {
            // 400: the request was wrong (an application naming a file not uploaded …).
            Some(e) => format!(
                "department answered HTTP {status} {} {}",
                e.error, e.message
            ),
            None => format!("department answered HTTP {status}"),
        }),
    }
}

fn or(message: String, fallback: &str) -> String {
    if message.is_empty() {
        fallback.to_string()
    } else {
        message
    }
}

fn json_of(status: u16, body: &[u8]) -> Result<Value, AdapterError> {
    if !(200..300).contains(&status) {
        return Err(api_error(status, body));
    }
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            AdapterError::Protocol(format!(
                "department answered HTTP {status} with a body that is not a JSON object"
            ))
        })
}

fn text<'a>(data: &'a Value, field: &str) -> Result<&'a str, AdapterError> {
    data.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AdapterError::Protocol(format!("department answer has no `{field}`")))
}

/// The department's application status as a step state.
pub fn state_of(status: &str) -> Result<StepState, AdapterError> {
    match status {
        "ACCEPTED" => Ok(StepState::Accepted),
        "PROCESSING" => Ok(StepState::Processing),
        "APPROVED" => Ok(StepState::Approved),
        "REJECTED" => Ok(StepState::Rejected),
        "RETURNED" => Ok(StepState::Returned),
        "WITHDRAWN" => Ok(StepState::Withdrawn),
        other => Err(AdapterError::Protocol(format!(
            "unknown application status {other}"
        ))),
    }
}

/// A status report from an application document (`GET /api/licences/{no}` or a callback).
/// Once approved, the outputs carry the issued credit code and licence number.
pub fn report_of(data: &Value) -> Result<StatusReport, AdapterError> {
    let reference = text(data, "applicationNo")?;
    let state = state_of(text(data, "status")?)?;
    let mut report = StatusReport::new(reference, state);
    report.message = data
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string);
    if state == StepState::Approved {
        let uscc = text(data, "uscc")?;
        sdk::ids::credit_code(uscc)
            .map_err(|p| AdapterError::Protocol(format!("issued credit code is not valid: {p}")))?;
        let mut outputs = json!({ "credit_code": uscc, "licence_no": text(data, "licenceNo")? });
        if let Some(name) = data.get("name").and_then(Value::as_str) {
            outputs["enterprise_name"] = name.into();
        }
        report.outputs = outputs.to_string();
    }
    if state == StepState::Returned {
        report.requested = Some(crate::lifecycle::requested(data)?);
    }
    Ok(report)
}

/// The receipt of `POST /api/licences` (202 `ACCEPTED`).
pub fn read_submitted(status: u16, body: &[u8]) -> Result<Receipt, AdapterError> {
    let report = report_of(&json_of(status, body)?)?;
    Ok(Receipt {
        reference: report.reference,
        state: report.state,
        message: report.message,
        outputs: report.outputs,
        requested: report.requested,
    })
}

/// The report of `GET /api/licences/{applicationNo}`.
pub fn read_status(status: u16, body: &[u8]) -> Result<StatusReport, AdapterError> {
    report_of(&json_of(status, body)?)
}

/// A status report from a food permit document (`POST` answer or `GET /api/food-permits/{no}`).
/// Once approved, the outputs carry the permit number (`JY` and 14 digits).
pub fn permit_report_of(data: &Value) -> Result<StatusReport, AdapterError> {
    let reference = text(data, "applicationNo")?;
    let state = state_of(text(data, "status")?)?;
    let mut report = StatusReport::new(reference, state);
    report.message = data
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string);
    if state == StepState::Approved {
        let permit_no = text(data, "permitNo")?;
        let well_formed = permit_no
            .strip_prefix("JY")
            .is_some_and(|digits| digits.len() == 14 && digits.bytes().all(|b| b.is_ascii_digit()));
        if !well_formed {
            return Err(AdapterError::Protocol(format!(
                "issued food permit number is not JY and 14 digits: {permit_no}"
            )));
        }
        report.outputs = json!({ "permit_no": permit_no }).to_string();
    }
    Ok(report)
}

/// The receipt of `POST /api/food-permits` (202 `ACCEPTED`).
pub fn read_permit_submitted(status: u16, body: &[u8]) -> Result<Receipt, AdapterError> {
    let report = permit_report_of(&json_of(status, body)?)?;
    Ok(Receipt {
        reference: report.reference,
        state: report.state,
        message: report.message,
        outputs: report.outputs,
        requested: report.requested,
    })
}

/// The report of `GET /api/food-permits/{applicationNo}`.
pub fn read_permit_status(status: u16, body: &[u8]) -> Result<StatusReport, AdapterError> {
    permit_report_of(&json_of(status, body)?)
}

/// Read a callback: its `X-Signature` must be the hex HMAC-SHA256 of the raw body under the
/// callback secret — `genuine` says whether a signature is (the adapter asks the host, which
/// holds the secret) — else it is `InvalidInput` on `X-Signature`.
pub fn read_callback(
    headers: &[(String, String)],
    body: &[u8],
    genuine: impl FnOnce(&str) -> Result<bool, AdapterError>,
) -> Result<StatusReport, AdapterError> {
    let signature = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("X-Signature"))
        .map(|(_, v)| v.trim());
    let verified = match signature {
        Some(signature) => genuine(signature)?,
        None => false,
    };
    if !verified {
        let message = if signature.is_none() {
            "回调缺少签名"
        } else {
            "回调签名不正确"
        };
        return Err(AdapterError::InvalidInput(vec![FieldError::new(
            "X-Signature",
            "signature",
            message,
        )]));
    }
    let data: Value = serde_json::from_slice(body)
        .map_err(|e| AdapterError::Protocol(format!("callback body is not JSON: {e}")))?;
    report_of(&data)
}

/// The unified answer of `market-regulation.enterprise`.
pub fn read_enterprise(status: u16, body: &[u8]) -> Result<Value, AdapterError> {
    let data = json_of(status, body)?;
    let field = |name: &str| data.get(name).cloned().unwrap_or(Value::Null);
    Ok(json!({
        "credit_code": text(&data, "uscc")?,
        "name": text(&data, "name")?,
        "address": field("address"),
        "legal_representative": field("legalRepresentative"),
        "registered_capital": field("registeredCapital"),
        "status": field("status"),
    }))
}

/// Input schema of `market-regulation.business-licence`.
pub fn licence_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "营业执照设立登记",
        "type": "object",
        "required": ["enterprise_name", "address", "legal_representative", "registered_capital", "business_scope"],
        "properties": {
            "enterprise_name": {"type": "string", "title": "企业名称", "minLength": 1},
            "address": {"type": "string", "title": "住所", "minLength": 1},
            "legal_representative": {
                "type": "object",
                "title": "法定代表人",
                "required": ["name", "id_number"],
                "properties": {
                    "name": {"type": "string", "title": "姓名", "minLength": 1},
                    "id_number": {"type": "string", "title": "居民身份号码", "minLength": 1, "format": "resident-id"}
                }
            },
            "registered_capital": {"type": "number", "title": "注册资本（万元）"},
            "business_scope": {"type": "string", "title": "经营范围", "minLength": 1}
        }
    })
}

/// Input schema of `market-regulation.food-permit`.
pub fn food_permit_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "食品经营许可",
        "type": "object",
        "required": ["credit_code", "enterprise_name", "address", "legal_representative", "business_items", "premises_area"],
        "properties": {
            "credit_code": {"type": "string", "title": "统一社会信用代码", "minLength": 1, "format": "credit-code"},
            "enterprise_name": {"type": "string", "title": "经营者名称", "minLength": 1},
            "address": {"type": "string", "title": "经营场所", "minLength": 1},
            "legal_representative": {
                "type": "object",
                "title": "法定代表人（负责人）",
                "required": ["name", "id_number"],
                "properties": {
                    "name": {"type": "string", "title": "姓名", "minLength": 1},
                    "id_number": {"type": "string", "title": "居民身份号码", "minLength": 1, "format": "resident-id"}
                }
            },
            "business_items": {
                "type": "array",
                "title": "经营项目",
                "items": {"type": "string", "title": "经营项目（如 热食类食品制售）", "minLength": 1},
                "minItems": 1
            },
            "premises_area": {"type": "number", "title": "经营场所面积（平方米）"}
        }
    })
}

/// Query schema of `market-regulation.enterprise`.
pub fn enterprise_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "企业登记信息查询",
        "type": "object",
        "required": ["credit_code"],
        "properties": {
            "credit_code": {"type": "string", "title": "统一社会信用代码", "minLength": 1}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"enterprise_name":"福州新设科技有限公司","address":"福州市鼓楼区五四路2号",
        "legal_representative":{"name":"李四","id_number":"34052419800101001X"},
        "registered_capital":100,"business_scope":"软件开发"}"#;

    fn codes(problems: &[FieldProblem]) -> Vec<(&str, &str)> {
        problems
            .iter()
            .map(|p| (p.field.as_str(), p.code.as_str()))
            .collect()
    }

    #[test]
    fn licence_body_uses_the_department_fields() {
        let l = licence(GOOD).unwrap();
        assert_eq!(
            l.body("key-1", "https://gw.example/callbacks/market-regulation"),
            json!({"requestId": "key-1", "name": "福州新设科技有限公司", "address": "福州市鼓楼区五四路2号",
                "legalRepresentative": {"name": "李四", "idNumber": "34052419800101001X"},
                "registeredCapital": 100.0, "businessScope": "软件开发",
                "callbackUrl": "https://gw.example/callbacks/market-regulation"})
        );
    }

    #[test]
    fn validation_reports_every_problem_at_once() {
        let payload = r#"{"enterprise_name":"x","legal_representative":{"id_number":"34052419800101001Y"},
            "registered_capital":-5}"#;
        assert_eq!(
            codes(&validate(BUSINESS_LICENCE, payload)),
            vec![
                ("address", "required"),
                ("legal_representative.name", "required"),
                ("legal_representative.id_number", "format"),
                ("registered_capital", "range"),
                ("business_scope", "required"),
            ]
        );
        assert!(validate(BUSINESS_LICENCE, GOOD).is_empty());
        assert_eq!(validate(BUSINESS_LICENCE, "{}").len(), 6);
        assert_eq!(
            codes(&validate("market-regulation.other", GOOD)),
            vec![("", "unknown_matter")]
        );
    }

    #[test]
    fn tokens() {
        assert_eq!(
            token_form("gw-demo", "mr demo&secret"),
            "grant_type=client_credentials&client_id=gw-demo&client_secret=mr+demo%26secret"
        );
        assert_eq!(token_ttl_ms(600), 570_000);
        assert_eq!(token_ttl_ms(30), 1_000);
        assert_eq!(token_ttl_ms(0), 1_000);
        assert_eq!(token_ttl_ms(u64::MAX), u32::MAX);
        let t = read_token(
            200,
            br#"{"access_token":"abc","token_type":"Bearer","expires_in":600}"#,
        )
        .unwrap();
        assert_eq!(
            t,
            Token {
                access_token: "abc".into(),
                ttl_ms: 570_000
            }
        );
        assert!(
            matches!(read_token(401, br#"{"error":"invalid_client"}"#), Err(AdapterError::Internal(m)) if m.contains("invalid_client"))
        );
        assert!(matches!(
            read_token(503, b""),
            Err(AdapterError::Unavailable(_))
        ));
        assert!(matches!(
            read_token(200, b"garbage"),
            Err(AdapterError::Protocol(_))
        ));
    }

    #[test]
    fn submission_answers() {
        let r = read_submitted(
            202,
            br#"{"applicationNo":"SCJG2025010100000001","status":"ACCEPTED"}"#,
        )
        .unwrap();
        assert_eq!(
            (r.reference.as_str(), r.state, r.outputs.as_str()),
            ("SCJG2025010100000001", StepState::Accepted, "{}")
        );
        let taken = r#"{"error":"name_taken","message":"企业名称已被登记"}"#;
        match read_submitted(409, taken.as_bytes()) {
            Err(AdapterError::Rejected(r)) => assert_eq!(
                (r.code.as_str(), r.message.as_str()),
                ("name_taken", "企业名称已被登记")
            ),
            other => panic!("{other:?}"),
        }
        let invalid = r#"{"error":"invalid","message":"注册资本须为正数"}"#;
        assert!(
            matches!(read_submitted(422, invalid.as_bytes()), Err(AdapterError::InvalidInput(f)) if f[0].message == "注册资本须为正数")
        );
        assert!(
            matches!(read_submitted(502, b""), Err(AdapterError::Unavailable(m)) if m.contains("502"))
        );
        assert!(matches!(
            read_submitted(200, b"\xff\xfe<<<"),
            Err(AdapterError::Protocol(_))
        ));
        assert!(matches!(
            read_submitted(202, br#"{"status":"ACCEPTED"}"#),
            Err(AdapterError::Protocol(_))
        ));
        assert!(matches!(
            read_submitted(401, br#"{"error":"invalid_token"}"#),
            Err(AdapterError::Protocol(_))
        ));
    }

    #[test]
    fn status_answers() {
        let waiting =
            read_status(200, br#"{"applicationNo":"SCJG1","status":"ACCEPTED"}"#).unwrap();
        assert_eq!(
            (waiting.reference.as_str(), waiting.state),
            ("SCJG1", StepState::Accepted)
        );
        let done = br#"{"applicationNo":"SCJG1","status":"APPROVED","uscc":"91110000600037341L","licenceNo":"L1"}"#;
        let r = read_status(200, done).unwrap();
        assert_eq!(r.state, StepState::Approved);
        assert_eq!(
            serde_json::from_str::<Value>(&r.outputs).unwrap(),
            json!({"credit_code": "91110000600037341L", "licence_no": "L1"})
        );
        let bad_code = br#"{"applicationNo":"SCJG1","status":"APPROVED","uscc":"91110000600037341M","licenceNo":"L1"}"#;
        assert!(matches!(
            read_status(200, bad_code),
            Err(AdapterError::Protocol(_))
        ));
        assert!(
            matches!(read_status(404, br#"{"error":"not_found"}"#), Err(AdapterError::Rejected(r)) if r.code == "not_found")
        );
        assert!(matches!(
            read_status(200, br#"{"applicationNo":"SCJG1","status":"LOST"}"#),
            Err(AdapterError::Protocol(_))
        ));
        assert_eq!(licence_path("SCJG1"), "/api/licences/SCJG1");
        assert_eq!(licence_path("../x"), "/api/licences/..%2Fx");
    }

    #[test]
    fn callbacks_are_verified() {
        let body = br#"{"applicationNo":"SCJG1","requestId":"k","status":"APPROVED","uscc":"91110000600037341L","licenceNo":"L1"}"#;
        let sig = sdk::sign::hmac_sha256_hex(b"mr-callback-secret", body);
        let headers = vec![("x-signature".to_string(), sig.to_uppercase())];
        let under = |secret: &'static str, body: &'static [u8]| {
            move |sig: &str| {
                Ok(sdk::sign::verify_hmac_sha256_hex(
                    secret.as_bytes(),
                    body,
                    sig,
                ))
            }
        };
        let r = read_callback(&headers, body, under("mr-callback-secret", body)).unwrap();
        assert_eq!(
            (r.reference.as_str(), r.state),
            ("SCJG1", StepState::Approved)
        );
        assert_eq!(
            serde_json::from_str::<Value>(&r.outputs).unwrap()["credit_code"],
            "91110000600037341L"
        );

        let wrong = read_callback(&headers, body, under("other-secret", body)).unwrap_err();
        let missing = read_callback(&[], body, under("mr-callback-secret", body)).unwrap_err();
        let cut = &body[..body.len() - 1];
        let tampered = read_callback(&headers, cut, under("mr-callback-secret", cut)).unwrap_err();
        for e in [wrong, missing, tampered] {
            match e {
                AdapterError::InvalidInput(f) => assert_eq!(
                    (f[0].field.as_str(), f[0].code.as_str()),
                    ("X-Signature", "signature")
                ),
                other => panic!("{other:?}"),
            }
        }
        let not_json = b"not json";
        let sig = sdk::sign::hmac_sha256_hex(b"s", not_json);
        assert!(matches!(
            read_callback(
                &[("X-Signature".into(), sig)],
                not_json,
                under("s", not_json)
            ),
            Err(AdapterError::Protocol(_))
        ));
    }

    #[test]
    fn enterprise_queries_and_answers() {
        assert_eq!(
            enterprise_query(r#"{"credit_code":"91350100m000100y43"}"#).unwrap(),
            "91350100M000100Y43"
        );
        // A pilot code failing only its check character goes to the department.
        assert!(enterprise_query(r#"{"credit_code":"91350100M0001TGQXM"}"#).is_ok());
        assert_eq!(
            codes(&enterprise_query(r#"{"credit_code":"913501"}"#).unwrap_err()),
            vec![("credit_code", "length")]
        );
        assert_eq!(
            codes(&enterprise_query("{}").unwrap_err()),
            vec![("credit_code", "required")]
        );
        assert_eq!(
            enterprise_path("91350100M000100Y43"),
            "/api/enterprises/91350100M000100Y43"
        );

        let body = r#"{"uscc":"91350100M000100Y43","name":"福州测试科技有限公司","address":"福州市鼓楼区五四路1号",
            "legalRepresentative":"张三","registeredCapital":500,"status":"存续"}"#;
        assert_eq!(
            read_enterprise(200, body.as_bytes()).unwrap(),
            json!({"credit_code": "91350100M000100Y43", "name": "福州测试科技有限公司", "address": "福州市鼓楼区五四路1号",
                "legal_representative": "张三", "registered_capital": 500, "status": "存续"})
        );
        assert!(
            matches!(read_enterprise(404, br#"{"error":"not_found"}"#), Err(AdapterError::Rejected(r)) if r.code == "not_found")
        );
    }

    const PERMIT: &str = r#"{"credit_code":"91350100M000100Y43","enterprise_name":"福州测试科技有限公司",
        "address":"福州市鼓楼区五四路1号","legal_representative":{"name":"张三","id_number":"11010519491231002X"},
        "business_items":["热食类食品制售"," 冷食类食品制售 "],"premises_area":120.5}"#;

    #[test]
    fn food_permit_body_uses_the_department_fields() {
        assert!(validate(FOOD_PERMIT, PERMIT).is_empty());
        assert_eq!(
            food_permit(PERMIT).unwrap().body("key-3"),
            json!({"requestId": "key-3", "uscc": "91350100M000100Y43", "name": "福州测试科技有限公司",
                "address": "福州市鼓楼区五四路1号",
                "legalRepresentative": {"name": "张三", "idNumber": "11010519491231002X"},
                "businessItems": ["热食类食品制售", "冷食类食品制售"], "premisesArea": 120.5})
        );
    }

    #[test]
    fn food_permit_validation_reports_every_problem_at_once() {
        // A pilot code failing its check character is refused here: the department refuses it.
        let payload = r#"{"credit_code":"91350100M0001TGQXM","enterprise_name":"x",
            "legal_representative":{"name":"张三","id_number":"110105194912310021"},
            "business_items":["热食类食品制售"," "],"premises_area":0}"#;
        assert_eq!(
            codes(&validate(FOOD_PERMIT, payload)),
            vec![
                ("credit_code", "checksum"),
                ("address", "required"),
                ("legal_representative.id_number", "checksum"),
                ("business_items.1", "required"),
                ("premises_area", "range"),
            ]
        );
        let no_items = PERMIT.replace(r#"["热食类食品制售"," 冷食类食品制售 "]"#, "[]");
        assert_eq!(
            codes(&validate(FOOD_PERMIT, &no_items)),
            vec![("business_items", "required")]
        );
        let missing = validate(FOOD_PERMIT, "{}");
        assert_eq!(missing.len(), 7, "{missing:?}");
        assert!(codes(&missing).contains(&("premises_area", "required")));
        // The licence's payload is not a permit's, and the reverse.
        assert!(!validate(FOOD_PERMIT, GOOD).is_empty());
    }

    #[test]
    fn food_permit_answers() {
        let r = read_permit_submitted(
            202,
            br#"{"applicationNo":"SPJY2025010100000001","status":"ACCEPTED"}"#,
        )
        .unwrap();
        assert_eq!(
            (r.reference.as_str(), r.state, r.outputs.as_str()),
            ("SPJY2025010100000001", StepState::Accepted, "{}")
        );
        let bad_code = r#"{"error":"invalid","message":"统一社会信用代码校验失败"}"#;
        assert!(
            matches!(read_permit_submitted(422, bad_code.as_bytes()), Err(AdapterError::InvalidInput(f)) if f[0].message == "统一社会信用代码校验失败")
        );
        assert!(matches!(
            read_permit_submitted(503, b""),
            Err(AdapterError::Unavailable(_))
        ));

        let waiting =
            read_permit_status(200, br#"{"applicationNo":"SPJY1","status":"ACCEPTED"}"#).unwrap();
        assert_eq!(
            (waiting.reference.as_str(), waiting.state),
            ("SPJY1", StepState::Accepted)
        );
        let done =
            br#"{"applicationNo":"SPJY1","status":"APPROVED","permitNo":"JY13501020000017"}"#;
        let r = read_permit_status(200, done).unwrap();
        assert_eq!(r.state, StepState::Approved);
        assert_eq!(
            serde_json::from_str::<Value>(&r.outputs).unwrap(),
            json!({"permit_no": "JY13501020000017"})
        );
        for bad in [
            &br#"{"applicationNo":"SPJY1","status":"APPROVED"}"#[..],
            br#"{"applicationNo":"SPJY1","status":"APPROVED","permitNo":"JY1350102"}"#,
            br#"{"applicationNo":"SPJY1","status":"APPROVED","permitNo":"XK13501020000017"}"#,
            br#"{"applicationNo":"SPJY1","status":"LOST"}"#,
        ] {
            assert!(
                matches!(read_permit_status(200, bad), Err(AdapterError::Protocol(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // The licence reader wants a credit code: a permit approval is not a licence approval.
        assert!(matches!(
            read_status(200, done),
            Err(AdapterError::Protocol(_))
        ));
        assert!(
            matches!(read_permit_status(404, br#"{"error":"not_found"}"#), Err(AdapterError::Rejected(r)) if r.code == "not_found")
        );
        assert_eq!(food_permit_path("SPJY1"), "/api/food-permits/SPJY1");
        assert_eq!(food_permit_path("../x"), "/api/food-permits/..%2Fx");
    }

    #[test]
    fn schemas_mark_identifiers_with_their_formats() {
        let l = licence_schema();
        assert_eq!(
            l["properties"]["legal_representative"]["properties"]["id_number"]["format"],
            "resident-id"
        );
        let p = food_permit_schema();
        assert_eq!(p["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(p["title"], "食品经营许可");
        assert_eq!(p["properties"]["credit_code"]["format"], "credit-code");
        assert_eq!(
            p["properties"]["legal_representative"]["properties"]["id_number"]["format"],
            "resident-id"
        );
        assert_eq!(p["properties"]["business_items"]["minItems"], 1);
        // Lookups pass pilot codes failing only the checksum on to the department: no format.
        assert!(
            enterprise_schema()["properties"]["credit_code"]
                .get("format")
                .is_none()
        );
    }

    #[test]
    fn schemas_are_titled_json_schema() {
        let s = licence_schema();
        assert_eq!(
            s["properties"]["registered_capital"]["title"],
            "注册资本（万元）"
        );
        assert_eq!(enterprise_schema()["required"], json!(["credit_code"]));
    }
}
