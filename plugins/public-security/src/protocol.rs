//! The public-security system's protocol as pure functions: payload checks, `<request>`
//! documents (a filing's materials inside, files as base64 the host streams), and reading
//! `<response>` documents. Nothing here calls the host.

use sdk::http::Body;
pub use sdk::payload::Person;
use sdk::payload::{Checker, FieldProblem, person, present};
use sdk::xml::Node;
use sdk::{
    AdapterError, FieldError, Material, MaterialSource, Receipt, Rejection, StatusReport, StepState,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// 刻章备案.
pub const SEAL_FILING: &str = "public-security.seal-filing";
/// 身份核查.
pub const IDENTITY: &str = "public-security.identity";

/// 身份核查 path.
pub const SFHC_PATH: &str = "/gaxt/sfhc";
/// 刻章备案 path.
pub const KZBA_PATH: &str = "/gaxt/kzba";
/// `Content-Type` of every request.
pub const CONTENT_TYPE: &str = "application/xml; charset=UTF-8";
/// The seal kind filed when the payload names none.
pub const DEFAULT_SEAL: &str = "法定名称章";

/// Unified payload of `public-security.seal-filing`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SealFiling {
    pub credit_code: Option<String>,
    pub enterprise_name: Option<String>,
    pub legal_representative: Option<Person>,
    pub seal_types: Option<Vec<String>>,
}

impl SealFiling {
    /// The seal kinds to file, trimmed; the default when the payload names none.
    pub fn seal_types(&self) -> Vec<String> {
        match &self.seal_types {
            None => vec![DEFAULT_SEAL.to_string()],
            Some(kinds) => kinds.iter().map(|k| k.trim().to_string()).collect(),
        }
    }

    /// Every problem the department would have with this filing.
    pub fn check(&self) -> Vec<FieldProblem> {
        let mut c = Checker::new();
        let credit_code = present(&self.credit_code);
        c.required("credit_code", credit_code);
        c.credit_code("credit_code", credit_code);
        c.required("enterprise_name", present(&self.enterprise_name));
        let (name, id_number) = person(&self.legal_representative);
        c.required("legal_representative.name", name);
        c.required("legal_representative.id_number", id_number);
        c.resident_id("legal_representative.id_number", id_number);
        let kinds = self.seal_types();
        if kinds.is_empty() {
            c.problem("seal_types", "required", "至少备案一种印章");
        }
        for (i, kind) in kinds.iter().enumerate() {
            let field = format!("seal_types.{i}");
            if kind.is_empty() {
                c.problem(&field, "required", "印章类型不能为空");
            } else if kind.contains([',', '，']) {
                c.problem(&field, "format", "印章类型不能含有逗号，每种印章单独列出");
            } else if kinds[..i].contains(kind) {
                c.problem(&field, "rule", "印章类型重复");
            }
        }
        c.into_problems()
    }

    /// The `POST /gaxt/kzba` document without materials; `requestId` is the submission's
    /// idempotency key.
    pub fn request(&self, request_id: &str) -> String {
        format!(
            "{XML_DECLARATION}<request>{}</request>",
            self.fields(request_id)
        )
    }

    /// The `POST /gaxt/kzba` body with the filing's materials in `<cllb>` ([`material_list`]):
    /// the files' bytes are slices the host streams as base64, never in the adapter. Without
    /// materials, the same document as [`SealFiling::request`].
    pub fn request_with(&self, request_id: &str, materials: &[Material]) -> Body {
        if materials.is_empty() {
            return Body::from(self.request(request_id));
        }
        Body::new()
            .text(XML_DECLARATION)
            .text("<request>")
            .text(&self.fields(request_id))
            .append(material_list(materials))
            .text("</request>")
    }

    fn fields(&self, request_id: &str) -> String {
        let (name, id_number) = person(&self.legal_representative);
        let kinds = self.seal_types().join(",");
        sdk::xml::elements(&[
            ("requestId", request_id),
            ("tyshxydm", present(&self.credit_code).unwrap_or_default()),
            ("qymc", present(&self.enterprise_name).unwrap_or_default()),
            ("fddbr", name.unwrap_or_default()),
            ("fddbrsfzh", id_number.unwrap_or_default()),
            ("yzlx", &kinds),
        ])
    }
}

/// The declaration every document starts with.
pub const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

/// `<cllb>`, the materials of a request, each a `<cl>` with its code (`clbm`) and name (`clmc`)
/// and one of:
/// - a file: its type (`wjlx`), size in bytes (`wjdx`), SM3 (`sm3`, which the department
///   checks against the decoded bytes) and its content in base64 (`nr`), streamed by the host;
/// - a 免提交 licence: its GB/T 36904 identifier (`dzzzbs`), kind (`zzlx`) and number (`zzbh`);
/// - a promise (容缺受理): `rqsl` 1, and the date promised (`cnrq`) once one is set.
pub fn material_list(materials: &[Material]) -> Body {
    let mut body = Body::new().text("<cllb>");
    for material in materials {
        body = body.text(&format!(
            "<cl>{}",
            sdk::xml::elements(&[("clbm", &material.code), ("clmc", &material.name)])
        ));
        body = match &material.source {
            MaterialSource::File(file) => body
                .text(&sdk::xml::elements(&[
                    ("wjlx", &file.media_type),
                    ("wjdx", &file.size.to_string()),
                    ("sm3", &file.sm3),
                ]))
                .text("<nr>")
                .material(sdk::http::Slice::new(&material.code, 0, file.size).base64())
                .text("</nr>"),
            MaterialSource::Licence(licence) => body.text(&sdk::xml::elements(&[
                ("dzzzbs", &licence.id),
                ("zzlx", &licence.kind),
                ("zzbh", &licence.number),
            ])),
            MaterialSource::Promised(due) => {
                let mut fields = vec![("rqsl", "1")];
                if let Some(due) = due {
                    fields.push(("cnrq", due));
                }
                body.text(&sdk::xml::elements(&fields))
            }
        };
        body = body.text("</cl>");
    }
    body.text("</cllb>")
}

/// A `<request>` document with these children, UTF-8.
pub fn document(children: &[(&str, &str)]) -> String {
    format!(
        "{XML_DECLARATION}<request>{}</request>",
        sdk::xml::elements(children)
    )
}

/// Parse and check a `public-security.seal-filing` payload.
pub fn seal_filing(payload: &str) -> Result<SealFiling, Vec<FieldProblem>> {
    sdk::payload::parse_checked(payload, SealFiling::check)
}

/// `validate` for any matter name.
pub fn validate(matter: &str, payload: &str) -> Vec<FieldProblem> {
    match matter {
        SEAL_FILING => seal_filing(payload).err().unwrap_or_default(),
        other => vec![unknown_matter(other)],
    }
}

/// The one problem reported for a matter this adapter does not serve.
pub fn unknown_matter(matter: &str) -> FieldProblem {
    FieldProblem {
        field: String::new(),
        code: "unknown_matter".into(),
        message: format!("公安部门不办理事项「{matter}」"),
    }
}

/// The `POST /gaxt/sfhc` document for an identity query, or every problem with the query.
/// `request_id` only labels the call (a lookup creates nothing).
pub fn identity_request(query: &str, request_id: &str) -> Result<String, Vec<FieldProblem>> {
    let q: Person = sdk::payload::parse(query).map_err(|e| e.problems)?;
    let mut c = Checker::new();
    let (name, id_number) = (present(&q.name), present(&q.id_number));
    c.required("name", name);
    c.required("id_number", id_number);
    c.resident_id("id_number", id_number);
    c.finish().map_err(|e| e.problems)?;
    Ok(document(&[
        ("requestId", request_id),
        ("xm", name.unwrap_or_default()),
        ("gmsfhm", id_number.unwrap_or_default()),
    ]))
}

/// Read a `<response>`: the document when `code` is `00`, else the refusal as an error.
///
/// - HTTP 5xx is the department being unavailable; other non-200 answers and bodies that are not
///   a `<response>` document with a `<code>` are protocol errors.
/// - `10` (参数错误) blames the request's fields: `InvalidInput`, with the department's message.
/// - `30` (材料校验失败: a file's decoded bytes are not the SM3 or size sent with them) and `31`
///   (材料内容编码错误: not base64) say the bytes were damaged on the way, nothing the applicant
///   did: `Protocol`, so the gateway sends again and, should it persist, an operator looks.
/// - `20` (统一社会信用代码校验失败) and any other code are refusals on the merits: `Rejected` with
///   the department's code.
pub fn read_response(status: u16, body: &[u8]) -> Result<Node, AdapterError> {
    if status >= 500 {
        return Err(AdapterError::Unavailable(format!(
            "department answered HTTP {status}"
        )));
    }
    if status != 200 {
        return Err(AdapterError::Protocol(format!(
            "department answered HTTP {status}"
        )));
    }
    let node = sdk::xml::decode(body).and_then(|text| Node::parse(&text))?;
    if node.name != "response" {
        return Err(AdapterError::Protocol(format!(
            "expected <response>, found <{}>",
            node.name
        )));
    }
    // An empty <code> says nothing: as unreadable as a missing one, not a refusal.
    let code = node
        .child("code")
        .map(|c| c.text.clone())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| AdapterError::Protocol("answer has no <code>".into()))?;
    let message = node
        .child("message")
        .map(|m| m.text.clone())
        .unwrap_or_default();
    match code.as_str() {
        "00" => Ok(node),
        "10" => Err(AdapterError::InvalidInput(vec![FieldError::new(
            "", "invalid", message,
        )])),
        "30" | "31" => Err(AdapterError::Protocol(format!(
            "department refused a material as damaged in transit ({code} {message})"
        ))),
        _ => Err(AdapterError::Rejected(Rejection { code, message })),
    }
}

fn required<'a>(node: &'a Node, name: &str) -> Result<&'a str, AdapterError> {
    node.child(name)
        .map(|c| c.text.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AdapterError::Protocol(format!("answer has no <{name}>")))
}

/// The unified answer of `public-security.identity`.
pub fn read_identity(status: u16, body: &[u8]) -> Result<Value, AdapterError> {
    let node = read_response(status, body)?;
    let result = match required(&node, "result")? {
        "1" => "match",
        "2" => "mismatch",
        "3" => "not_found",
        other => {
            return Err(AdapterError::Protocol(format!(
                "unknown identity result {other}"
            )));
        }
    };
    Ok(json!({ "result": result }))
}

/// The outputs of a filing: its 备案编号.
pub fn filing_outputs(babh: &str) -> String {
    json!({ "filing_no": babh }).to_string()
}

/// The receipt of `POST /gaxt/kzba`: filing is immediate, so the receipt is already approved,
/// unless the department returned it for a supplement (`blzt` 2, read with what it asks:
/// [`crate::lifecycle::read_filing_state`]).
pub fn read_filing(status: u16, body: &[u8]) -> Result<Receipt, AdapterError> {
    crate::lifecycle::read_filing_state(status, body)
}

/// The status of a filing: filings are final once numbered, and the department has no status call.
pub fn filing_status(reference: &str) -> StatusReport {
    StatusReport {
        reference: reference.to_string(),
        state: StepState::Approved,
        message: None,
        outputs: filing_outputs(reference),
        requested: None,
    }
}

/// Input schema of `public-security.seal-filing`.
pub fn seal_filing_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "刻章备案",
        "type": "object",
        "required": ["credit_code", "enterprise_name", "legal_representative"],
        "properties": {
            "credit_code": {"type": "string", "title": "统一社会信用代码", "minLength": 1},
            "enterprise_name": {"type": "string", "title": "企业名称", "minLength": 1},
            "legal_representative": {
                "type": "object",
                "title": "法定代表人",
                "required": ["name", "id_number"],
                "properties": {
                    "name": {"type": "string", "title": "姓名", "minLength": 1},
                    "id_number": {"type": "string", "title": "居民身份号码", "minLength": 1}
                }
            },
            "seal_types": {
                "type": "array",
                "title": "印章类型",
                "items": {"type": "string", "title": "印章类型", "minLength": 1},
                "minItems": 1,
                "default": [DEFAULT_SEAL]
            }
        }
    })
}

/// Query schema of `public-security.identity`.
pub fn identity_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "身份核查",
        "type": "object",
        "required": ["name", "id_number"],
        "properties": {
            "name": {"type": "string", "title": "姓名", "minLength": 1},
            "id_number": {"type": "string", "title": "公民身份号码", "minLength": 1}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"credit_code":"91350100M000100Y43","enterprise_name":"福州测试科技有限公司",
        "legal_representative":{"name":"张三","id_number":"11010519491231002X"}}"#;

    fn codes(problems: &[FieldProblem]) -> Vec<(&str, &str)> {
        problems
            .iter()
            .map(|p| (p.field.as_str(), p.code.as_str()))
            .collect()
    }

    fn response(inner: &str) -> Vec<u8> {
        format!(r#"<?xml version="1.0" encoding="UTF-8"?><response>{inner}</response>"#)
            .into_bytes()
    }

    #[test]
    fn filing_request_uses_the_department_fields_and_the_default_seal() {
        let f = seal_filing(GOOD).unwrap();
        assert_eq!(
            f.request("key-1"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><request><requestId>key-1</requestId>\
             <tyshxydm>91350100M000100Y43</tyshxydm><qymc>福州测试科技有限公司</qymc><fddbr>张三</fddbr>\
             <fddbrsfzh>11010519491231002X</fddbrsfzh><yzlx>法定名称章</yzlx></request>"
        );
        let two = GOOD.replace("}}", r#"},"seal_types":["法定名称章"," 财务专用章"]}"#);
        let f = seal_filing(&two).unwrap();
        assert!(
            f.request("k")
                .contains("<yzlx>法定名称章,财务专用章</yzlx>")
        );
        let escaped = GOOD.replace("福州测试科技有限公司", "A&B<公司>");
        assert!(
            seal_filing(&escaped)
                .unwrap()
                .request("k")
                .contains("<qymc>A&amp;B&lt;公司&gt;</qymc>")
        );
    }

    #[test]
    fn validation_reports_every_problem_at_once() {
        let payload = r#"{"credit_code":"9135010","legal_representative":{"name":"张三","id_number":"110105194912310021"},
            "seal_types":["法定名称章","财务章,合同章",""," 法定名称章"]}"#;
        assert_eq!(
            codes(&validate(SEAL_FILING, payload)),
            vec![
                ("credit_code", "length"),
                ("enterprise_name", "required"),
                ("legal_representative.id_number", "checksum"),
                ("seal_types.1", "format"),
                ("seal_types.2", "required"),
                ("seal_types.3", "rule"),
            ]
        );
        let empty = GOOD.replace("}}", r#"},"seal_types":[]}"#);
        assert_eq!(
            codes(&validate(SEAL_FILING, &empty)),
            vec![("seal_types", "required")]
        );
        assert!(validate(SEAL_FILING, GOOD).is_empty());
        assert_eq!(
            codes(&validate("public-security.other", GOOD)),
            vec![("", "unknown_matter")]
        );
    }

    #[test]
    fn materials_go_inside_the_filing_with_files_streamed_as_base64() {
        use sdk::http::{Encoding, Part};
        let materials = vec![
            sdk::testing::material_file("seal-impression", "印章印模", "image/png", b"PNG!"),
            Material {
                code: "business-licence".into(),
                name: "营业执照".into(),
                source: MaterialSource::Licence(sdk::LicenceRef {
                    id: "1.2.156.3005.2.X".into(),
                    kind: "business_licence".into(),
                    number: "N<1>".into(),
                }),
            },
            Material {
                code: "later".into(),
                name: "某材料".into(),
                source: MaterialSource::Promised(Some("2025-07-01".into())),
            },
        ];
        let f = seal_filing(GOOD).unwrap();
        let body = f.request_with("key-1", &materials);
        let [Part::Bytes(head), Part::Material(slice), Part::Bytes(tail)] = body.parts() else {
            panic!("{:?}", body.parts());
        };
        assert_eq!(
            (
                slice.code.as_str(),
                slice.offset,
                slice.length,
                slice.encoding
            ),
            ("seal-impression", 0, Some(4), Encoding::Base64)
        );
        let head = String::from_utf8(head.clone()).unwrap();
        assert!(head.starts_with(&f.request("key-1").replace("</request>", "")));
        assert!(head.ends_with(&format!(
            "<cllb><cl><clbm>seal-impression</clbm><clmc>印章印模</clmc><wjlx>image/png</wjlx>\
             <wjdx>4</wjdx><sm3>{}</sm3><nr>",
            sdk::sign::sm3_hex(b"PNG!")
        )));
        assert_eq!(
            String::from_utf8(tail.clone()).unwrap(),
            "</nr></cl><cl><clbm>business-licence</clbm><clmc>营业执照</clmc>\
             <dzzzbs>1.2.156.3005.2.X</dzzzbs><zzlx>business_licence</zzlx><zzbh>N&lt;1&gt;</zzbh></cl>\
             <cl><clbm>later</clbm><clmc>某材料</clmc><rqsl>1</rqsl><cnrq>2025-07-01</cnrq></cl>\
             </cllb></request>"
        );
        // Without materials, the document is the one filings always had.
        assert_eq!(
            f.request_with("key-1", &[]).as_bytes(),
            Some(f.request("key-1").as_bytes())
        );
    }

    #[test]
    fn damaged_materials_are_for_the_gateway_to_send_again() {
        for code in ["30", "31"] {
            let body = response(&format!(
                "<code>{code}</code><message>材料校验失败：印章印模</message>"
            ));
            assert!(
                matches!(read_filing(200, &body), Err(AdapterError::Protocol(m)) if m.contains(code) && m.contains("印章印模"))
            );
        }
    }

    #[test]
    fn an_empty_code_is_a_protocol_error() {
        // Found by the property tests (tests/fuzz.rs): this was a refusal with an empty code.
        let empty = response("<code></code><message>成功</message>");
        assert!(matches!(
            read_response(200, &empty),
            Err(AdapterError::Protocol(_))
        ));
    }

    #[test]
    fn filing_answers() {
        let receipt = read_filing(
            200,
            &response("<code>00</code><message>成功</message><babh>GA2025010100000001</babh>"),
        )
        .unwrap();
        assert_eq!(receipt.reference, "GA2025010100000001");
        assert_eq!(receipt.state, StepState::Approved);
        assert_eq!(receipt.outputs, r#"{"filing_no":"GA2025010100000001"}"#);
        let bad_uscc = response("<code>20</code><message>统一社会信用代码校验失败</message>");
        assert!(
            matches!(read_filing(200, &bad_uscc), Err(AdapterError::Rejected(r)) if r.code == "20")
        );
        let bad_param = response("<code>10</code><message>参数错误：缺少qymc</message>");
        assert!(
            matches!(read_filing(200, &bad_param), Err(AdapterError::InvalidInput(f)) if f[0].message.contains("qymc"))
        );
        assert!(
            matches!(read_filing(503, b""), Err(AdapterError::Unavailable(m)) if m.contains("503"))
        );
        let garbage = b"\xff\xfe<<<\x00 upstream exploded {not: json] </not-xml";
        assert!(matches!(
            read_filing(200, garbage),
            Err(AdapterError::Protocol(_))
        ));
        assert!(matches!(
            read_filing(200, &response("<code>00</code>")),
            Err(AdapterError::Protocol(_))
        ));
        assert!(matches!(
            read_filing(200, b"<other/>"),
            Err(AdapterError::Protocol(_))
        ));
        let status = filing_status("GA1");
        assert_eq!(
            (status.state, status.outputs.as_str()),
            (StepState::Approved, r#"{"filing_no":"GA1"}"#)
        );
    }

    #[test]
    fn identity_queries_and_answers() {
        let doc =
            identity_request(r#"{"name":"张三","id_number":"11010519491231002X"}"#, "r1").unwrap();
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><request><requestId>r1</requestId><xm>张三</xm>\
             <gmsfhm>11010519491231002X</gmsfhm></request>"
        );
        let problems = identity_request(r#"{"id_number":"11010519491231002"}"#, "r1").unwrap_err();
        assert_eq!(
            codes(&problems),
            vec![("name", "required"), ("id_number", "length")]
        );
        for (code, result) in [("1", "match"), ("2", "mismatch"), ("3", "not_found")] {
            let body = response(&format!(
                "<code>00</code><message>成功</message><result>{code}</result>"
            ));
            assert_eq!(
                read_identity(200, &body).unwrap(),
                json!({ "result": result })
            );
        }
        let odd = response("<code>00</code><result>9</result>");
        assert!(matches!(
            read_identity(200, &odd),
            Err(AdapterError::Protocol(_))
        ));
    }

    #[test]
    fn schemas_are_titled_json_schema() {
        let s = seal_filing_schema();
        assert_eq!(
            s["properties"]["seal_types"]["default"],
            json!(["法定名称章"])
        );
        assert_eq!(s["title"], "刻章备案");
        assert_eq!(identity_schema()["required"], json!(["name", "id_number"]));
    }
}
