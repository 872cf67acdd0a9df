//! The real-estate registry's protocol as pure functions: payload checks, SOAP 1.1 envelopes in
//! GBK, and reading answers and faults. Nothing here calls the host.
//!
//! A transfer's materials (申请材料) travel in its envelope: each uploaded file as an entry of
//! `fjlb` whose content is an `xop:Include` of a MIME part of an MTOM/XOP package
//! (`multipart/related; type="application/xop+xml"`), the licences the registry need not ask
//! for in `dzzz` (by GB/T 36904 identifier), the materials promised for later in `rqcl`
//! ([`materials_xml`], [`attachments`]).

pub use sdk::payload::Person;
use sdk::payload::{Checker, FieldProblem, person, present};
use sdk::xml::{Node, SoapFault, escape};
use sdk::{
    AdapterError, FieldError, Material, MaterialSource, Receipt, Rejection, StatusReport, StepState,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// 二手房转移登记.
pub const TRANSFER: &str = "real-estate.transfer";
/// 不动产登记信息查询.
pub const PROPERTY: &str = "real-estate.property";

/// The one endpoint of the web service.
pub const SERVICE_PATH: &str = "/services/BdcService";
/// Operation namespace.
pub const BDC_NS: &str = "http://bdc.gov.cn/ws";
/// `Content-Type` of every request.
pub const CONTENT_TYPE: &str = "text/xml; charset=GBK";

/// Unified payload of `real-estate.transfer`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Transfer {
    pub unit_number: Option<String>,
    pub certificate_number: Option<String>,
    pub seller: Option<Person>,
    pub buyer: Option<Person>,
    pub price: Option<f64>,
}

/// Unified query of `real-estate.property`: exactly one of the two.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PropertyQuery {
    pub certificate_number: Option<String>,
    pub unit_number: Option<String>,
}

/// Text the department can only take in GBK.
fn check_gbk(c: &mut Checker, field: &str, value: Option<&str>) {
    if value.is_some_and(|v| sdk::xml::encode_gbk(v).is_err()) {
        c.problem(field, "encoding", "含有GBK编码无法表示的字符");
    }
}

fn check_unit(c: &mut Checker, field: &str, value: Option<&str>) {
    if let Some(Err(p)) = value.map(sdk::ids::real_estate_unit) {
        c.problem(field, p.code, p.message);
    }
}

fn check_certificate(c: &mut Checker, field: &str, value: Option<&str>) {
    if let Some(Err(p)) = value.map(sdk::ids::real_estate_certificate) {
        c.problem(field, p.code, p.message);
    }
}

/// Price in yuan as the department writes it: two decimals.
pub fn format_price(price: f64) -> String {
    format!("{price:.2}")
}

impl Transfer {
    /// Every problem the registry would have with this transfer.
    pub fn check(&self) -> Vec<FieldProblem> {
        let mut c = Checker::new();
        let unit = present(&self.unit_number);
        c.required("unit_number", unit);
        check_unit(&mut c, "unit_number", unit);
        let certificate = present(&self.certificate_number);
        c.required("certificate_number", certificate);
        check_certificate(&mut c, "certificate_number", certificate);
        check_gbk(&mut c, "certificate_number", certificate);
        for (role, who) in [("seller", &self.seller), ("buyer", &self.buyer)] {
            let (name, id_number) = person(who);
            let name_field = format!("{role}.name");
            let id_field = format!("{role}.id_number");
            c.required(&name_field, name);
            check_gbk(&mut c, &name_field, name);
            c.required(&id_field, id_number);
            c.resident_id(&id_field, id_number);
        }
        let (_, seller_id) = person(&self.seller);
        let (_, buyer_id) = person(&self.buyer);
        if matches!((seller_id, buyer_id), (Some(s), Some(b)) if s.eq_ignore_ascii_case(b)) {
            c.problem("buyer.id_number", "rule", "受让方不能与转让方为同一人");
        }
        match self.price {
            None => c.problem("price", "required", "必填项"),
            Some(p) if !(p.is_finite() && p > 0.0) => {
                c.problem("price", "range", "成交价格须大于0元")
            }
            // The registry reads the price as yuan with two decimals.
            Some(p) if format_price(p).parse::<f64>().is_ok_and(|q| q <= 0.0) => {
                c.problem("price", "range", "成交价格须至少为0.01元")
            }
            Some(_) => {}
        }
        c.into_problems()
    }

    /// The `submitTransfer` parameters with the transfer's materials ([`materials_xml`]);
    /// `ywh` is the submission's idempotency key.
    pub fn envelope_with(
        &self,
        ywh: &str,
        materials: &[Material],
    ) -> Result<Vec<u8>, AdapterError> {
        let lists = materials_xml(materials);
        if lists.is_empty() {
            return self.envelope(ywh);
        }
        let xml = String::from_utf8(self.xml(ywh)).expect("built as UTF-8");
        let close = "</bdc:submitTransfer>";
        let at = xml.rfind(close).expect("the operation element closes");
        to_gbk(&format!("{}{lists}{}", &xml[..at], &xml[at..]))
    }

    /// The `submitTransfer` parameters; `ywh` is the submission's idempotency key.
    pub fn envelope(&self, ywh: &str) -> Result<Vec<u8>, AdapterError> {
        to_gbk(&String::from_utf8(self.xml(ywh)).expect("built as UTF-8"))
    }

    /// The `submitTransfer` envelope as text (UTF-8 bytes, declaring GBK).
    fn xml(&self, ywh: &str) -> Vec<u8> {
        let (seller_name, seller_id) = person(&self.seller);
        let (buyer_name, buyer_id) = person(&self.buyer);
        let price = format_price(self.price.unwrap_or_default());
        sdk::xml::soap_envelope(
            "GBK",
            "bdc",
            BDC_NS,
            "submitTransfer",
            &[
                ("ywh", ywh),
                ("bdcdyh", present(&self.unit_number).unwrap_or_default()),
                (
                    "bdcqzh",
                    present(&self.certificate_number).unwrap_or_default(),
                ),
                ("zrfxm", seller_name.unwrap_or_default()),
                ("zrfzjh", seller_id.unwrap_or_default()),
                ("srfxm", buyer_name.unwrap_or_default()),
                ("srfzjh", buyer_id.unwrap_or_default()),
                ("jyjg", &price),
            ],
        )
        .into_bytes()
    }
}

/// The Content-ID of a material's MIME part in an MTOM package (material codes are letters,
/// digits, `-` and `_`: nothing to escape).
pub fn content_id(code: &str) -> String {
    format!("{code}@bdc.gateway")
}

/// The MIME parts an MTOM package carries for `materials`: one per distinct file (by SM3),
/// named after the first material with those bytes: (Content-ID, the material). A material
/// whose bytes another already carries refers to that part.
pub fn attachments(materials: &[Material]) -> Vec<(String, &Material)> {
    let mut parts: Vec<(String, &Material)> = Vec::new();
    for m in materials {
        let Some(file) = m.file() else { continue };
        let carried = parts
            .iter()
            .any(|(_, p)| p.file().is_some_and(|f| f.sm3 == file.sm3));
        if !carried {
            parts.push((content_id(&m.code), m));
        }
    }
    parts
}

/// The Content-ID of the part carrying a file with this SM3.
fn part_of<'a>(parts: &'a [(String, &Material)], sm3: &str) -> Option<&'a str> {
    parts
        .iter()
        .find(|(_, m)| m.file().is_some_and(|f| f.sm3 == sm3))
        .map(|(id, _)| id.as_str())
}

/// The materials' elements of a `submitTransfer` (empty when there are none):
/// `<fjlb><fj><clbm/><clmc/><wjlx/><wjdx/><wjsm3/><nr><xop:Include href="cid:…"/></nr></fj></fjlb>`
/// for files, `<dzzz><zz><clbm/><clmc/><zzbs/><zzlx/><zzbh/></zz></dzzz>` for licences,
/// `<rqcl><cl><clbm/><clmc/><cnrq/></cl></rqcl>` for promised materials.
pub fn materials_xml(materials: &[Material]) -> String {
    let parts = attachments(materials);
    let (mut files, mut licences, mut promised) = (String::new(), String::new(), String::new());
    for m in materials {
        let head = sdk::xml::elements(&[("clbm", &m.code), ("clmc", &m.name)]);
        match &m.source {
            MaterialSource::File(f) => {
                let cid = part_of(&parts, &f.sm3).expect("every file has a part");
                let size = f.size.to_string();
                files.push_str(&format!(
                    "<fj>{head}{}<nr>{}</nr></fj>",
                    sdk::xml::elements(&[
                        ("wjlx", &f.media_type),
                        ("wjdx", &size),
                        ("wjsm3", &f.sm3)
                    ]),
                    sdk::http::xop_include(cid)
                ));
            }
            MaterialSource::Licence(l) => licences.push_str(&format!(
                "<zz>{head}{}</zz>",
                sdk::xml::elements(&[("zzbs", &l.id), ("zzlx", &l.kind), ("zzbh", &l.number)])
            )),
            MaterialSource::Promised(due) => promised.push_str(&format!(
                "<cl>{head}<cnrq>{}</cnrq></cl>",
                escape(due.as_deref().unwrap_or_default())
            )),
        }
    }
    let list = |name: &str, items: String| {
        if items.is_empty() {
            String::new()
        } else {
            format!("<{name}>{items}</{name}>")
        }
    };
    [
        list("fjlb", files),
        list("dzzz", licences),
        list("rqcl", promised),
    ]
    .concat()
}

/// Parse and check a `real-estate.transfer` payload.
pub fn transfer(payload: &str) -> Result<Transfer, Vec<FieldProblem>> {
    sdk::payload::parse_checked(payload, Transfer::check)
}

/// `validate` for any matter name.
pub fn validate(matter: &str, payload: &str) -> Vec<FieldProblem> {
    match matter {
        TRANSFER => transfer(payload).err().unwrap_or_default(),
        other => vec![unknown_matter(other)],
    }
}

/// The one problem reported for a matter this adapter does not serve.
pub fn unknown_matter(matter: &str) -> FieldProblem {
    FieldProblem {
        field: String::new(),
        code: "unknown_matter".into(),
        message: format!("不动产登记部门不办理事项「{matter}」"),
    }
}

/// A property query as its operation name and GBK envelope, or every problem.
pub fn property_request(query: &str) -> Result<(&'static str, Vec<u8>), Vec<FieldProblem>> {
    let q: PropertyQuery = sdk::payload::parse(query).map_err(|e| e.problems)?;
    let mut c = Checker::new();
    let (operation, field, value) = match (present(&q.certificate_number), present(&q.unit_number))
    {
        (Some(certificate), None) => {
            check_certificate(&mut c, "certificate_number", Some(certificate));
            check_gbk(&mut c, "certificate_number", Some(certificate));
            ("queryByCertificate", "bdcqzh", certificate)
        }
        (None, Some(unit)) => {
            check_unit(&mut c, "unit_number", Some(unit));
            ("queryByUnit", "bdcdyh", unit)
        }
        (Some(_), Some(_)) => {
            c.problem("", "rule", "不动产权证书号与不动产单元号只能填写一项");
            return Err(c.into_problems());
        }
        (None, None) => {
            c.problem("", "required", "须填写不动产权证书号或不动产单元号");
            return Err(c.into_problems());
        }
    };
    c.finish().map_err(|e| e.problems)?;
    let xml = sdk::xml::soap_envelope("GBK", "bdc", BDC_NS, operation, &[(field, value)]);
    // Checked above: every character is GBK.
    let bytes = sdk::xml::encode_gbk(&xml).map_err(|e| {
        vec![FieldProblem {
            field: String::new(),
            code: "encoding".into(),
            message: e.to_string(),
        }]
    })?;
    Ok((operation, bytes))
}

/// The `queryStatus` request.
pub fn status_request(slbh: &str) -> Result<Vec<u8>, AdapterError> {
    envelope("queryStatus", &[("slbh", slbh)])
}

/// A GBK-encoded SOAP request for `operation`.
pub fn envelope(operation: &str, children: &[(&str, &str)]) -> Result<Vec<u8>, AdapterError> {
    to_gbk(&sdk::xml::soap_envelope(
        "GBK", "bdc", BDC_NS, operation, children,
    ))
}

/// An envelope's text in GBK; a character GBK lacks is the applicant's input.
fn to_gbk(xml: &str) -> Result<Vec<u8>, AdapterError> {
    sdk::xml::encode_gbk(xml).map_err(|_| {
        AdapterError::InvalidInput(vec![FieldError::new(
            "",
            "encoding",
            "含有GBK编码无法表示的字符",
        )])
    })
}

/// The `SOAPAction` header value for `operation`.
pub fn soap_action(operation: &str) -> String {
    format!("\"urn:bdc:{operation}\"")
}

/// Which call a fault answers: `E104` means `not_found` for a lookup, and keeps its code otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Lookup,
    Submit,
    Status,
}

/// A fault as an adapter error.
///
/// - `soap:Server` faults are the service failing: `Unavailable`.
/// - `E100` (encoding) and `E103` (SOAPAction/operation) blame the envelope the adapter built:
///   `Internal` (an adapter bug, not the applicant's).
/// - `E101` (unit number format) is the applicant's input: `InvalidInput`.
/// - A material the registry refuses (`E107` a type it does not take, `E109` empty, `E111`
///   over its size limit) is the applicant's: `InvalidInput` on `materials.<clbm>` (the
///   fault's `clbm` detail) with `format`, `empty`, `too_large`.
/// - `E106` (an `xop:Include` without its part), `E110` (a package it cannot read) and `E112`
///   (a licence identifier whose check character fails) blame what the adapter or the gateway
///   built: `Internal`.
/// - `E108` (an attachment whose size or SM3 is not the declared one: altered on the way) is
///   `Unavailable`, so the package is sent again.
/// - `E104` on a lookup is `Rejected{not_found}`; every other coded client fault (`E102`, `E104`
///   on a submission, `E105`, `E201` ...) is `Rejected` with the department's code.
/// - A client fault without an error code is an answer the adapter cannot read: `Protocol`.
pub fn fault_error(fault: &SoapFault, call: Call) -> AdapterError {
    let reason = fault.reason.clone();
    if !fault.is_client() {
        return AdapterError::Unavailable(format!("department fault {}: {reason}", fault.code));
    }
    let rejected = |code: &str| {
        AdapterError::Rejected(Rejection {
            code: code.into(),
            message: reason.clone(),
        })
    };
    // An empty error code is no code: a refusal needs the department's reason to record.
    match fault.detail("errorCode").filter(|c| !c.is_empty()) {
        None => AdapterError::Protocol(format!("client fault without an error code: {reason}")),
        Some(code @ ("E100" | "E103")) => {
            AdapterError::Internal(format!("department refused the envelope ({code} {reason})"))
        }
        Some("E101") => AdapterError::InvalidInput(vec![FieldError::new(
            "unit_number",
            "format",
            reason.clone(),
        )]),
        Some(code @ ("E107" | "E109" | "E111")) => {
            let field = fault
                .detail("clbm")
                .filter(|c| !c.is_empty())
                .map_or_else(|| "materials".to_string(), |c| format!("materials.{c}"));
            let kind = match code {
                "E107" => "format",
                "E109" => "empty",
                _ => "too_large",
            };
            AdapterError::InvalidInput(vec![FieldError::new(
                field,
                kind,
                format!("不动产登记部门拒收该材料：{reason}"),
            )])
        }
        Some(code @ ("E106" | "E110" | "E112")) => AdapterError::Internal(format!(
            "department refused the materials as sent ({code} {reason})"
        )),
        Some(code @ "E108") => AdapterError::Unavailable(format!(
            "department received an attachment other than the one declared ({code} {reason}); sent again"
        )),
        Some("E104") if call == Call::Lookup => rejected("not_found"),
        Some(code) => rejected(code),
    }
}

/// Read an answer: the operation's response element (`expected`, e.g. `queryResponse`), or the
/// fault it carries as an error. HTTP 5xx without a readable SOAP fault is `Unavailable`; a
/// 2xx body that is not a SOAP envelope is `Protocol`.
pub fn read_answer(
    status: u16,
    body: &[u8],
    expected: &str,
    call: Call,
) -> Result<Node, AdapterError> {
    let parsed = sdk::xml::decode(body)
        .and_then(|text| Node::parse(&text))
        .and_then(|root| sdk::xml::soap_body(&root));
    match parsed {
        Ok(Err(fault)) => Err(fault_error(&fault, call)),
        _ if status >= 500 => Err(AdapterError::Unavailable(format!(
            "department answered HTTP {status}"
        ))),
        Err(e) => Err(AdapterError::Protocol(format!(
            "department answered HTTP {status} with unreadable XML: {e}"
        ))),
        Ok(Ok(_)) if !(200..300).contains(&status) => Err(AdapterError::Protocol(format!(
            "department answered HTTP {status}"
        ))),
        Ok(Ok(node)) if node.name != expected => Err(AdapterError::Protocol(format!(
            "expected <{expected}> in the SOAP body, found <{}>",
            node.name
        ))),
        Ok(Ok(node)) => Ok(node),
    }
}

fn required<'a>(node: &'a Node, name: &str) -> Result<&'a str, AdapterError> {
    node.require(name)
        .map_err(AdapterError::from)
        .and_then(|t| {
            if t.is_empty() {
                Err(AdapterError::Protocol(format!(
                    "answer has an empty <{name}>"
                )))
            } else {
                Ok(t)
            }
        })
}

/// The department's 状态 (`zt`) as a step state.
pub fn state_of(zt: &str) -> Result<StepState, AdapterError> {
    match zt {
        "受理" => Ok(StepState::Accepted),
        "审核" => Ok(StepState::Processing),
        "登簿" => Ok(StepState::Approved),
        "退回" => Ok(StepState::Returned),
        "已撤回" => Ok(StepState::Withdrawn),
        other => Err(AdapterError::Protocol(format!("unknown state zt={other}"))),
    }
}

/// The receipt of `submitTransfer`.
pub fn read_transfer(status: u16, body: &[u8]) -> Result<Receipt, AdapterError> {
    let node = read_answer(status, body, "submitTransferResponse", Call::Submit)?;
    let mut receipt = Receipt::accepted(required(&node, "slbh")?);
    if let Some(zt) = node.text_of("zt").filter(|z| !z.is_empty()) {
        receipt.state = state_of(zt)?;
        receipt.message = Some(zt.to_string());
    }
    Ok(receipt)
}

/// The report of `queryStatus`.
pub fn read_status(
    reference: &str,
    status: u16,
    body: &[u8],
) -> Result<StatusReport, AdapterError> {
    let node = read_answer(status, body, "queryStatusResponse", Call::Status)?;
    let zt = required(&node, "zt")?;
    let mut report = StatusReport::new(reference, state_of(zt)?);
    report.message = Some(zt.to_string());
    if report.state == StepState::Approved {
        report.outputs = json!({ "certificate_number": required(&node, "xbdcqzh")? }).to_string();
    }
    if report.state == StepState::Returned {
        report.requested = crate::lifecycle::requested(&node)?;
    }
    Ok(report)
}

/// The unified answer of `real-estate.property`.
pub fn read_property(status: u16, body: &[u8]) -> Result<Value, AdapterError> {
    let node = read_answer(status, body, "queryResponse", Call::Lookup)?;
    let record = node
        .child("record")
        .ok_or_else(|| AdapterError::Protocol("answer has no <record>".into()))?;
    let mj = required(record, "mj")?;
    let area: f64 = mj
        .parse()
        .map_err(|_| AdapterError::Protocol(format!("area <mj> is not a number: {mj}")))?;
    let text = |name| record.text_of(name).unwrap_or_default();
    Ok(json!({
        "unit_number": required(record, "bdcdyh")?,
        "certificate_number": required(record, "bdcqzh")?,
        "owner": {"name": required(record, "qlr")?, "id_number": text("qlrzjh")},
        "location": text("zl"),
        "area": area,
        "use": text("yt"),
        "registered_on": text("djsj"),
    }))
}

/// Input schema of `real-estate.transfer`.
pub fn transfer_schema() -> Value {
    let person = |title: &str| {
        json!({
            "type": "object",
            "title": title,
            "required": ["name", "id_number"],
            "properties": {
                "name": {"type": "string", "title": "姓名", "minLength": 1},
                "id_number": {"type": "string", "title": "居民身份号码", "minLength": 1}
            }
        })
    };
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "二手房转移登记",
        "type": "object",
        "required": ["unit_number", "certificate_number", "seller", "buyer", "price"],
        "properties": {
            "unit_number": {"type": "string", "title": "不动产单元号", "minLength": 1},
            "certificate_number": {"type": "string", "title": "不动产权证书号", "minLength": 1},
            "seller": person("转让方"),
            "buyer": person("受让方"),
            "price": {"type": "number", "title": "成交价格（元）"}
        }
    })
}

/// Query schema of `real-estate.property`.
pub fn property_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "不动产登记信息查询",
        "type": "object",
        "properties": {
            "certificate_number": {"type": "string", "title": "不动产权证书号", "minLength": 1},
            "unit_number": {"type": "string", "title": "不动产单元号", "minLength": 1}
        },
        "oneOf": [
            {"required": ["certificate_number"], "not": {"required": ["unit_number"]}},
            {"required": ["unit_number"], "not": {"required": ["certificate_number"]}}
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"unit_number":"351001012010GB01859F00040015",
        "certificate_number":"闽(2019)平潭不动产权第0011364号",
        "seller":{"name":"张三","id_number":"11010519491231002X"},
        "buyer":{"name":"李四","id_number":"34052419800101001X"},"price":1500000}"#;

    fn codes(problems: &[FieldProblem]) -> Vec<(&str, &str)> {
        problems
            .iter()
            .map(|p| (p.field.as_str(), p.code.as_str()))
            .collect()
    }

    fn gbk_envelope(inner: &str) -> Vec<u8> {
        let xml = format!(
            r#"<?xml version="1.0" encoding="GBK"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:bdc="http://bdc.gov.cn/ws"><soap:Body>{inner}</soap:Body></soap:Envelope>"#
        );
        sdk::xml::encode_gbk(&xml).unwrap()
    }

    fn fault(code: &str, reason: &str, error_code: Option<&str>) -> Vec<u8> {
        let detail = error_code.map_or(String::new(), |c| {
            format!("<detail><bdc:errorCode>{c}</bdc:errorCode></detail>")
        });
        gbk_envelope(&format!(
            "<soap:Fault><faultcode>{code}</faultcode><faultstring>{reason}</faultstring>{detail}</soap:Fault>"
        ))
    }

    #[test]
    fn transfer_envelope_is_gbk_soap_with_the_department_fields() {
        let t = transfer(GOOD).unwrap();
        let bytes = t.envelope("key-1").unwrap();
        assert!(bytes.starts_with(br#"<?xml version="1.0" encoding="GBK"?>"#));
        assert!(
            std::str::from_utf8(&bytes).is_err(),
            "Chinese text must be GBK, not UTF-8"
        );
        let root = Node::parse(&sdk::xml::decode(&bytes).unwrap()).unwrap();
        let op = sdk::xml::soap_body(&root).unwrap().unwrap();
        assert_eq!(op.name, "submitTransfer");
        let fields: Vec<(&str, &str)> = op
            .children
            .iter()
            .map(|c| (c.name.as_str(), c.text.as_str()))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("ywh", "key-1"),
                ("bdcdyh", "351001012010GB01859F00040015"),
                ("bdcqzh", "闽(2019)平潭不动产权第0011364号"),
                ("zrfxm", "张三"),
                ("zrfzjh", "11010519491231002X"),
                ("srfxm", "李四"),
                ("srfzjh", "34052419800101001X"),
                ("jyjg", "1500000.00"),
            ]
        );
        let text = sdk::xml::decode(&bytes).unwrap();
        assert!(
            text.contains(r#"<bdc:submitTransfer>"#)
                && text.contains(r#"xmlns:bdc="http://bdc.gov.cn/ws""#)
        );
        assert_eq!(soap_action("submitTransfer"), "\"urn:bdc:submitTransfer\"");
    }

    #[test]
    fn validation_reports_every_problem_at_once() {
        let payload = r#"{"unit_number":"351001012010GI01859F00040015","certificate_number":"闽(19)平潭",
            "seller":{"name":"张三","id_number":"11010519491231002X"},
            "buyer":{"name":"","id_number":"11010519491231002X"},"price":0}"#;
        assert_eq!(
            codes(&validate(TRANSFER, payload)),
            vec![
                ("unit_number", "format"),
                ("certificate_number", "format"),
                ("buyer.name", "required"),
                ("buyer.id_number", "rule"),
                ("price", "range"),
            ]
        );
        let emoji = GOOD.replace("李四", "李四😀");
        assert_eq!(
            codes(&validate(TRANSFER, &emoji)),
            vec![("buyer.name", "encoding")]
        );
        assert_eq!(validate(TRANSFER, "{}").len(), 7);
        assert!(validate(TRANSFER, GOOD).is_empty());
        assert_eq!(
            codes(&validate("real-estate.mortgage", GOOD)),
            vec![("", "unknown_matter")]
        );
        let tiny = GOOD.replace("1500000", "0.001");
        assert_eq!(codes(&validate(TRANSFER, &tiny)), vec![("price", "range")]);
    }

    #[test]
    fn property_queries_pick_the_operation() {
        let (op, by_cert) =
            property_request(r#"{"certificate_number":"闽（2019）平潭不动产权第0011364号"}"#)
                .unwrap();
        assert_eq!(op, "queryByCertificate");
        let text = sdk::xml::decode(&by_cert).unwrap();
        assert!(
            text.contains(
                "<bdc:queryByCertificate><bdcqzh>闽（2019）平潭不动产权第0011364号</bdcqzh>"
            ),
            "{text}"
        );
        let (op, by_unit) =
            property_request(r#"{"unit_number":"351001012010GB01859F00040015"}"#).unwrap();
        assert_eq!(op, "queryByUnit");
        assert!(
            sdk::xml::decode(&by_unit)
                .unwrap()
                .contains("<bdc:queryByUnit><bdcdyh>351001012010GB01859F00040015</bdcdyh>")
        );
        let both = r#"{"unit_number":"351001012010GB01859F00040015","certificate_number":"闽(2019)平潭不动产权第0011364号"}"#;
        assert_eq!(
            codes(&property_request(both).unwrap_err()),
            vec![("", "rule")]
        );
        assert_eq!(
            codes(&property_request("{}").unwrap_err()),
            vec![("", "required")]
        );
        assert_eq!(
            codes(&property_request(r#"{"unit_number":"123"}"#).unwrap_err()),
            vec![("unit_number", "length")]
        );
    }

    #[test]
    fn property_answers() {
        let body = gbk_envelope(
            "<bdc:queryResponse><record><bdcdyh>351001012010GB01859F00040015</bdcdyh><bdcqzh>闽(2019)平潭不动产权第0011364号</bdcqzh>\
             <qlr>张三</qlr><qlrzjh>11010519491231002X</qlrzjh><zl>平潭县潭城镇西航路18号1幢401室</zl><mj>89.56</mj>\
             <yt>住宅</yt><djsj>2019-06-18</djsj></record></bdc:queryResponse>",
        );
        assert_eq!(
            read_property(200, &body).unwrap(),
            json!({"unit_number": "351001012010GB01859F00040015", "certificate_number": "闽(2019)平潭不动产权第0011364号",
                "owner": {"name": "张三", "id_number": "11010519491231002X"},
                "location": "平潭县潭城镇西航路18号1幢401室", "area": 89.56, "use": "住宅", "registered_on": "2019-06-18"})
        );
        let missing = fault("soap:Client", "未查询到不动产登记信息", Some("E104"));
        assert!(
            matches!(read_property(500, &missing), Err(AdapterError::Rejected(r)) if r.code == "not_found")
        );
        let no_record = gbk_envelope("<bdc:queryResponse></bdc:queryResponse>");
        assert!(matches!(
            read_property(200, &no_record),
            Err(AdapterError::Protocol(_))
        ));
    }

    #[test]
    fn a_client_fault_with_an_empty_error_code_is_a_protocol_error() {
        // Found by the property tests (tests/fuzz.rs): this was a refusal with an empty code.
        let empty = fault("soap:Client", "受理", Some(""));
        assert!(matches!(
            read_transfer(200, &empty),
            Err(AdapterError::Protocol(_))
        ));
    }

    #[test]
    fn transfer_answers_and_faults() {
        let ok = gbk_envelope(
            "<bdc:submitTransferResponse><slbh>BDC2025010100000001</slbh><zt>受理</zt></bdc:submitTransferResponse>",
        );
        let receipt = read_transfer(200, &ok).unwrap();
        assert_eq!(
            (receipt.reference.as_str(), receipt.state),
            ("BDC2025010100000001", StepState::Accepted)
        );

        let e201 = fault("soap:Client", "转让方与登记权利人不一致", Some("E201"));
        match read_transfer(500, &e201) {
            Err(AdapterError::Rejected(r)) => {
                assert_eq!(r.code, "E201");
                assert_eq!(r.message, "转让方与登记权利人不一致");
            }
            other => panic!("{other:?}"),
        }
        let e104 = fault("soap:Client", "未查询到不动产登记信息", Some("E104"));
        assert!(
            matches!(read_transfer(500, &e104), Err(AdapterError::Rejected(r)) if r.code == "E104")
        );
        let server = fault("soap:Server", "系统繁忙", None);
        assert!(matches!(
            read_transfer(500, &server),
            Err(AdapterError::Unavailable(_))
        ));
        let encoding = fault("soap:Client", "编码错误：请使用GBK编码", Some("E100"));
        assert!(matches!(
            read_transfer(500, &encoding),
            Err(AdapterError::Internal(_))
        ));
        let e101 = fault("soap:Client", "不动产单元号格式错误", Some("E101"));
        assert!(
            matches!(read_transfer(500, &e101), Err(AdapterError::InvalidInput(f)) if f[0].field == "unit_number")
        );
        assert!(
            matches!(read_transfer(500, b""), Err(AdapterError::Unavailable(m)) if m.contains("500"))
        );
        assert!(
            matches!(read_transfer(503, b""), Err(AdapterError::Unavailable(m)) if m.contains("503"))
        );
        let garbage = b"\xff\xfe<<<\x00 upstream exploded {not: json] </not-xml";
        assert!(matches!(
            read_transfer(200, garbage),
            Err(AdapterError::Protocol(_))
        ));
        let wrong = gbk_envelope(
            "<bdc:queryStatusResponse><slbh>x</slbh><zt>受理</zt></bdc:queryStatusResponse>",
        );
        assert!(matches!(
            read_transfer(200, &wrong),
            Err(AdapterError::Protocol(_))
        ));
        let no_slbh =
            gbk_envelope("<bdc:submitTransferResponse><zt>受理</zt></bdc:submitTransferResponse>");
        assert!(matches!(
            read_transfer(200, &no_slbh),
            Err(AdapterError::Protocol(_))
        ));
    }

    #[test]
    fn status_answers() {
        let at = |zt: &str, extra: &str| {
            gbk_envelope(&format!(
                "<bdc:queryStatusResponse><slbh>BDC1</slbh><zt>{zt}</zt>{extra}</bdc:queryStatusResponse>"
            ))
        };
        assert_eq!(
            read_status("BDC1", 200, &at("受理", "")).unwrap().state,
            StepState::Accepted
        );
        assert_eq!(
            read_status("BDC1", 200, &at("审核", "")).unwrap().state,
            StepState::Processing
        );
        assert_eq!(
            read_status("BDC1", 200, &at("退回", "")).unwrap().state,
            StepState::Returned
        );
        let done = read_status(
            "BDC1",
            200,
            &at("登簿", "<xbdcqzh>闽(2025)平潭不动产权第0000001号</xbdcqzh>"),
        )
        .unwrap();
        assert_eq!(
            (done.reference.as_str(), done.state),
            ("BDC1", StepState::Approved)
        );
        let outputs: Value = serde_json::from_str(&done.outputs).unwrap();
        assert_eq!(
            outputs,
            json!({"certificate_number": "闽(2025)平潭不动产权第0000001号"})
        );
        assert!(matches!(
            read_status("BDC1", 200, &at("登簿", "")),
            Err(AdapterError::Protocol(_))
        ));
        assert!(matches!(
            read_status("BDC1", 200, &at("注销", "")),
            Err(AdapterError::Protocol(_))
        ));
        let request = sdk::xml::decode(&status_request("BDC1").unwrap()).unwrap();
        assert!(request.contains("<bdc:queryStatus><slbh>BDC1</slbh></bdc:queryStatus>"));
    }

    #[test]
    fn schemas_are_titled_json_schema() {
        let s = transfer_schema();
        assert_eq!(s["properties"]["seller"]["title"], "转让方");
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(property_schema()["oneOf"].as_array().map(Vec::len), Some(2));
    }
}
