//! The department's protocol as pure functions: payload checks, request bodies, reading answers,
//! schemas. Nothing here calls the host, so all of it is unit-tested natively.
//!
//! The department's API (replace with the real one):
//! - `POST /api/applications` `{"requestId", "applicantName", "applicantIdNumber", "address",
//!   "description"}` → `202 {"applicationNo", "status"}`; the same `requestId` twice is one
//!   application.
//! - `GET /api/applications/{applicationNo}` → `200 {"applicationNo", "status", "message"?,
//!   "certificateNo"?}`; `status` is `RECEIVED`, `PROCESSING`, `APPROVED` (with
//!   `certificateNo`), `REJECTED`, `RETURNED` (with `supplement`: `{"fields": [{"field",
//!   "reason"}], "materials": [{"code", "reason"}], "dueDate"}`, what the applicant must
//!   supplement, 补正) or `WITHDRAWN`.
//! - `POST /api/applications/{applicationNo}/supplements` `{"requestId", "fields", "files"}` →
//!   `202 {"applicationNo", "status"}`: the corrected fields (by the department's names) and
//!   the files uploaded for the supplement; the same `requestId` twice is one supplement.
//! - `POST /api/applications/{applicationNo}/withdrawal` `{"requestId", "reason"}` → `200` the
//!   application document after it: `WITHDRAWN`, or its decision if it came first.
//! - `POST /api/records/query` `{"idNumber"}` → `200 {"name", "idNumber", "address",
//!   "registeredOn"}`, or `404` when there is no record.
//! - `POST /api/files`, a `multipart/form-data` form with `code` and `file` → `201 {"fileId"}`:
//!   each material uploaded before its application, which lists them as
//!   `"files": [{"code", "fileId"}]`.
//! - Errors: `4xx {"code", "message"}`; `401` is a wrong `X-Api-Key`; `5xx` is the department
//!   failing.

use sdk::lifecycle::FieldMap;
pub use sdk::payload::Person;
use sdk::payload::{Checker, FieldProblem, person, present};
use sdk::{
    AdapterError, FieldError, MaterialRequest, Receipt, Rejection, StatusReport, StepState,
    SupplementRequest,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The department id: `[departments.example]` in the gateway config.
pub const DEPARTMENT: &str = "example";
/// The matter's catalogue code.
pub const APPLICATION: &str = "example.application";
/// The lookup's name.
pub const RECORD: &str = "example.record";

/// Where applications are filed.
pub const APPLICATIONS_PATH: &str = "/api/applications";
/// Where records are queried.
pub const RECORDS_PATH: &str = "/api/records/query";
/// Where materials are uploaded.
pub const FILES_PATH: &str = "/api/files";

/// Unified payload of the matter: what the portal's form gives, in the gateway's field names.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Application {
    /// The applicant (name and resident identity number).
    pub applicant: Option<Person>,
    /// The address the application concerns.
    pub address: Option<String>,
    /// Free text.
    pub description: Option<String>,
}

impl Application {
    /// Every problem the department would have with this application.
    pub fn check(&self) -> Vec<FieldProblem> {
        let mut c = Checker::new();
        let (name, id_number) = person(&self.applicant);
        c.required("applicant.name", name);
        c.required("applicant.id_number", id_number);
        c.resident_id("applicant.id_number", id_number);
        c.required("address", present(&self.address));
        c.into_problems()
    }

    /// The `POST /api/applications` body; `request_id` is the submission's idempotency key.
    pub fn body(&self, request_id: &str) -> Value {
        let (name, id_number) = person(&self.applicant);
        json!({
            "requestId": request_id,
            "applicantName": name.unwrap_or_default(),
            "applicantIdNumber": id_number.unwrap_or_default(),
            "address": present(&self.address).unwrap_or_default(),
            "description": present(&self.description).unwrap_or_default(),
        })
    }
}

/// The application's `files` field: each uploaded material's code and the department's id.
pub fn files(uploaded: &[(String, String)]) -> Value {
    uploaded
        .iter()
        .map(|(code, id)| json!({ "code": code, "fileId": id }))
        .collect()
}

/// The department's id of a file uploaded with `POST /api/files`.
pub fn read_uploaded(status: u16, body: &[u8]) -> Result<String, AdapterError> {
    Ok(text(&json_of(status, body)?, "fileId")?.to_string())
}

/// Parse and check the matter's payload: the application, or every problem.
pub fn application(payload: &str) -> Result<Application, Vec<FieldProblem>> {
    sdk::payload::parse_checked(payload, Application::check)
}

/// `validate` for any matter name.
pub fn validate(matter: &str, payload: &str) -> Vec<FieldProblem> {
    match matter {
        APPLICATION => application(payload).err().unwrap_or_default(),
        other => vec![unknown_matter(other)],
    }
}

/// The one problem reported for a matter this adapter does not serve.
pub fn unknown_matter(matter: &str) -> FieldProblem {
    FieldProblem {
        field: String::new(),
        code: "unknown_matter".into(),
        message: format!("示例部门不办理事项「{matter}」"),
    }
}

/// Unified query of the lookup.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RecordQuery {
    /// Resident identity number.
    pub id_number: Option<String>,
}

/// Read a record query: the identity number, upper-cased, or every problem.
pub fn record_query(query: &str) -> Result<String, Vec<FieldProblem>> {
    let q: RecordQuery = sdk::payload::parse(query).map_err(|e| e.problems)?;
    // A lower-case check letter `x` is common in typed-in queries; the department wants `X`.
    let id_number = present(&q.id_number).map(str::to_ascii_uppercase);
    let mut c = Checker::new();
    c.required("id_number", id_number.as_deref());
    c.resident_id("id_number", id_number.as_deref());
    c.finish().map_err(|e| e.problems)?;
    Ok(id_number.unwrap_or_default())
}

/// The `POST /api/records/query` body.
pub fn record_body(id_number: &str) -> Value {
    json!({ "idNumber": id_number })
}

/// The path of one application.
pub fn application_path(application_no: &str) -> String {
    format!("/api/applications/{}", percent_encode(application_no))
}

/// Percent-encode everything but RFC 3986 unreserved characters: a reference from the
/// department must not be able to change the path it is put in.
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

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// A 2xx answer's JSON, or the error its status means: 5xx `Unavailable`, 401 `Internal` (the
/// configured `api-key` is wrong: retrying cannot help), 404 `Rejected{not_found}`, other 4xx
/// `Rejected` with the department's code, unreadable JSON `Protocol`.
pub fn json_of(status: u16, body: &[u8]) -> Result<Value, AdapterError> {
    if status >= 500 {
        return Err(AdapterError::Unavailable(format!(
            "department answered HTTP {status}"
        )));
    }
    if (200..300).contains(&status) {
        return serde_json::from_slice(body).map_err(|e| {
            AdapterError::Protocol(format!("department answered unreadable JSON: {e}"))
        });
    }
    let error: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let (code, message) = error.map_or((String::new(), String::new()), |e| (e.code, e.message));
    match status {
        401 => Err(AdapterError::Internal(format!(
            "department refused the API key ({code} {message}): check the `api-key` setting"
        ))),
        404 => Err(AdapterError::Rejected(Rejection {
            code: "not_found".into(),
            message: if message.is_empty() {
                "未查询到".into()
            } else {
                message
            },
        })),
        400..500 if !code.is_empty() => Err(AdapterError::Rejected(Rejection { code, message })),
        _ => Err(AdapterError::Protocol(format!(
            "department answered HTTP {status}"
        ))),
    }
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
        "RECEIVED" => Ok(StepState::Accepted),
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

/// A report from an application document; once approved, the outputs carry the certificate.
pub fn report_of(data: &Value) -> Result<StatusReport, AdapterError> {
    let mut report = StatusReport::new(
        text(data, "applicationNo")?,
        state_of(text(data, "status")?)?,
    );
    report.message = data
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string);
    if report.state == StepState::Approved {
        report.outputs = json!({ "certificate_no": text(data, "certificateNo")? }).to_string();
    }
    if report.state == StepState::Returned {
        report.requested = Some(requested(data)?);
    }
    Ok(report)
}

/// The fields the department takes in a supplement (补正): (the gateway's dotted path, the
/// department's name). A supplement's payload holds only what the applicant changed, in the
/// gateway's names; what a return asks comes back in the department's.
pub const SUPPLEMENT_FIELDS: FieldMap = FieldMap(&[
    ("applicant.name", "applicantName"),
    ("address", "address"),
    ("description", "description"),
]);

/// Where an application's supplement goes.
pub fn supplement_path(application_no: &str) -> String {
    format!("{}/supplements", application_path(application_no))
}

/// Where an application's withdrawal goes.
pub fn withdrawal_path(application_no: &str) -> String {
    format!("{}/withdrawal", application_path(application_no))
}

/// The supplement's body without its files: the corrected fields by the department's names,
/// or every problem (a field the department does not take in a supplement, a blank value).
pub fn supplement_body(request_id: &str, payload: &str) -> Result<Value, Vec<FieldProblem>> {
    let corrections = SUPPLEMENT_FIELDS
        .corrections(payload)
        .map_err(|e| e.problems)?;
    let fields: serde_json::Map<String, Value> = corrections
        .into_iter()
        .map(|(name, _, value)| (name.to_string(), Value::String(value)))
        .collect();
    Ok(json!({"requestId": request_id, "fields": fields}))
}

/// The withdrawal's body; the applicant's reason, or a default when blank.
pub fn withdrawal_body(request_id: &str, reason: &str) -> Value {
    let reason = match reason.trim() {
        "" => "申请人主动撤回",
        reason => reason,
    };
    json!({"requestId": request_id, "reason": reason})
}

/// What a returned application's `supplement` asks, in the gateway's names.
pub fn requested(data: &Value) -> Result<SupplementRequest, AdapterError> {
    let supplement = data
        .get("supplement")
        .filter(|s| s.is_object())
        .ok_or_else(|| AdapterError::Protocol("RETURNED without `supplement`".into()))?;
    let list = |name: &str| {
        supplement
            .get(name)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut fields = Vec::new();
    for entry in list("fields") {
        let field = SUPPLEMENT_FIELDS.unified(text(&entry, "field")?);
        fields.push(FieldError::new(field, "rule", text(&entry, "reason")?));
    }
    let mut materials = Vec::new();
    for entry in list("materials") {
        materials.push(MaterialRequest::new(
            text(&entry, "code")?,
            text(&entry, "reason")?,
        ));
    }
    Ok(SupplementRequest {
        fields,
        materials,
        due: supplement
            .get("dueDate")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// The receipt of `POST /api/applications`.
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

/// The report of `GET /api/applications/{applicationNo}`.
pub fn read_status(status: u16, body: &[u8]) -> Result<StatusReport, AdapterError> {
    report_of(&json_of(status, body)?)
}

/// The unified answer of the lookup, in the gateway's field names.
pub fn read_record(status: u16, body: &[u8]) -> Result<Value, AdapterError> {
    let data = json_of(status, body)?;
    let field = |name: &str| data.get(name).cloned().unwrap_or(Value::Null);
    Ok(json!({
        "name": text(&data, "name")?,
        "id_number": text(&data, "idNumber")?,
        "address": field("address"),
        "registered_on": field("registeredOn"),
    }))
}

/// Input schema of the matter (JSON Schema 2020-12, Chinese titles for the portal's form).
/// `format: resident-id` makes the gateway check the identity number's check digit too.
pub fn application_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "示例部门申请",
        "type": "object",
        "required": ["applicant", "address"],
        "properties": {
            "applicant": {
                "title": "申请人",
                "type": "object",
                "required": ["name", "id_number"],
                "properties": {
                    "name": {"title": "姓名", "type": "string", "minLength": 1},
                    "id_number": {"title": "居民身份号码", "type": "string", "format": "resident-id"}
                }
            },
            "address": {"title": "地址", "type": "string", "minLength": 1},
            "description": {"title": "说明", "type": "string"}
        }
    })
}

/// Query schema of the lookup.
pub fn record_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "示例部门登记信息查询",
        "type": "object",
        "required": ["id_number"],
        "properties": {
            "id_number": {"title": "居民身份号码", "type": "string", "format": "resident-id"}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"applicant":{"name":"张三","id_number":"11010519491231002X"},
        "address":"福州市鼓楼区五四路2号","description":"新装"}"#;

    fn codes(problems: &[FieldProblem]) -> Vec<(&str, &str)> {
        problems
            .iter()
            .map(|p| (p.field.as_str(), p.code.as_str()))
            .collect()
    }

    #[test]
    fn a_good_application_maps_to_the_department_fields() {
        let body = application(GOOD).unwrap().body("key-1");
        assert_eq!(body["requestId"], "key-1");
        assert_eq!(body["applicantIdNumber"], "11010519491231002X");
        assert_eq!(body["address"], "福州市鼓楼区五四路2号");
    }

    #[test]
    fn validation_reports_every_problem_at_once() {
        let bad = r#"{"applicant":{"name":"","id_number":"110105194912310021"}}"#;
        assert_eq!(
            codes(&validate(APPLICATION, bad)),
            vec![
                ("applicant.name", "required"),
                ("applicant.id_number", "checksum"),
                ("address", "required"),
            ]
        );
        assert!(validate(APPLICATION, GOOD).is_empty());
        assert_eq!(
            codes(&validate("example.other", GOOD)),
            vec![("", "unknown_matter")]
        );
    }

    #[test]
    fn answers_map_to_error_kinds() {
        assert!(matches!(
            json_of(503, b""),
            Err(AdapterError::Unavailable(_))
        ));
        assert!(matches!(
            json_of(401, b"{}"),
            Err(AdapterError::Internal(_))
        ));
        assert!(matches!(
            json_of(404, b"{}"),
            Err(AdapterError::Rejected(Rejection { code, .. })) if code == "not_found"
        ));
        assert!(matches!(
            json_of(409, r#"{"code":"duplicate","message":"重复申请"}"#.as_bytes()),
            Err(AdapterError::Rejected(Rejection { code, .. })) if code == "duplicate"
        ));
        assert!(matches!(
            json_of(200, b"<html>"),
            Err(AdapterError::Protocol(_))
        ));
        let approved = read_status(
            200,
            br#"{"applicationNo":"A1","status":"APPROVED","certificateNo":"C9"}"#,
        )
        .unwrap();
        assert_eq!(approved.state, StepState::Approved);
        assert_eq!(approved.outputs, r#"{"certificate_no":"C9"}"#);
    }

    #[test]
    fn returns_supplements_and_withdrawals() {
        let doc = json!({"applicationNo": "A-1", "status": "RETURNED", "supplement": {
            "fields": [{"field": "applicantName", "reason": "与身份证件不一致"}],
            "materials": [{"code": "floor-plan", "reason": "图纸不清晰"}],
            "dueDate": "2027-01-02"}});
        let report = report_of(&doc).unwrap();
        assert_eq!(report.state, StepState::Returned);
        let asked = report.requested.unwrap();
        assert_eq!(asked.fields[0].field, "applicant.name");
        assert_eq!(asked.materials[0].code, "floor-plan");
        assert_eq!(asked.due.as_deref(), Some("2027-01-02"));
        assert!(report_of(&json!({"applicationNo": "A-1", "status": "RETURNED"})).is_err());
        assert_eq!(
            supplement_body("K", r#"{"applicant": {"name": "张三"}}"#).unwrap(),
            json!({"requestId": "K", "fields": {"applicantName": "张三"}})
        );
        let problems = supplement_body("K", r#"{"applicant": {"id_number": "x"}}"#).unwrap_err();
        assert_eq!(problems[0].field, "applicant.id_number");
        assert_eq!(
            supplement_path("A/1"),
            "/api/applications/A%2F1/supplements"
        );
        assert_eq!(withdrawal_body("K", " ")["reason"], "申请人主动撤回");
    }

    #[test]
    fn references_cannot_change_the_path() {
        assert_eq!(application_path("A1/../x"), "/api/applications/A1%2F..%2Fx");
    }

    #[test]
    fn schemas_are_titled_json_schema() {
        for schema in [application_schema(), record_schema()] {
            assert_eq!(
                schema["$schema"],
                "https://json-schema.org/draft/2020-12/schema"
            );
            assert!(schema["title"].is_string());
        }
    }
}
