//! The public-security adapter's exports against a scripted department (`sdk::testing`): UTF-8
//! XML documents (the host does the mutual TLS, so the adapter only names paths).

use public_security_adapter::PublicSecurity;
use public_security_adapter::protocol::IDENTITY;
use sdk::testing::{Exchange, Harness};
use sdk::{Adapter, AdapterError};
use serde_json::{Value, json};

fn answer(inner: &str) -> String {
    format!(r#"<?xml version="1.0" encoding="UTF-8"?><response>{inner}</response>"#)
}

fn identity_lookup() -> Result<String, AdapterError> {
    PublicSecurity::lookup(
        IDENTITY.into(),
        json!({"name": "张三", "id_number": "11010519491231002X"}).to_string(),
    )
}

#[test]
fn identity_is_verified_with_an_xml_request() {
    let harness = Harness::new().expect(
        Exchange::post("/gaxt/sfhc")
            .header("Content-Type", "application/xml; charset=UTF-8")
            .body_xml(|request| {
                assert_eq!(request.name, "request");
                assert_eq!(request.text_of("xm"), Some("张三"));
                assert_eq!(request.text_of("gmsfhm"), Some("11010519491231002X"));
                // A fresh label per call: nothing for the department to confuse.
                assert_eq!(request.text_of("requestId").map(str::len), Some(32));
            })
            .respond(200, answer("<code>00</code><result>1</result>")),
    );
    let result: Value = serde_json::from_str(&identity_lookup().unwrap()).unwrap();
    assert_eq!(result, json!({"result": "match"}));
    harness.finish();
}

#[test]
fn refusals_and_outages() {
    let harness = Harness::new()
        .expect(
            Exchange::post("/gaxt/sfhc")
                .respond(200, answer("<code>10</code><message>参数错误</message>")),
        )
        .expect(Exchange::post("/gaxt/sfhc").respond(503, ""))
        .expect(
            Exchange::post("/gaxt/sfhc").fail(sdk::http::HttpError::Unavailable(
                "TLS handshake failed".into(),
            )),
        );
    assert!(matches!(
        identity_lookup(),
        Err(AdapterError::InvalidInput(_))
    ));
    assert!(matches!(
        identity_lookup(),
        Err(AdapterError::Unavailable(_))
    ));
    assert!(matches!(identity_lookup(), Err(AdapterError::Unavailable(m)) if m.contains("TLS")));
    harness.finish();
}

const FILING: &str = r#"{"credit_code":"91350100M000100Y43","enterprise_name":"福州测试科技有限公司",
    "legal_representative":{"name":"张三","id_number":"11010519491231002X"}}"#;

/// Bytes that are not a pattern: more than one of the host's reads, not a multiple of 3.
fn impression() -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G'];
    bytes.extend((0..(1 << 20) + 5).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    bytes
}

#[test]
fn a_filing_carries_its_materials_as_base64_the_host_streams() {
    use public_security_adapter::protocol::SEAL_FILING;
    let bytes = impression();
    let sm3 = sdk::sign::sm3_hex(&bytes);
    let expected = bytes.clone();
    let harness = Harness::new()
        .material("seal-impression", "印章印模", "image/png", bytes)
        .licence(
            "business-licence",
            "营业执照",
            sdk::LicenceRef {
                id: "1.2.156.3005.2.11350100003501011L001.11350100003501011L.2025AB.001.X".into(),
                kind: "business_licence".into(),
                number: "350100000000001".into(),
            },
        )
        .expect(
            Exchange::post("/gaxt/kzba")
                .header("Content-Type", "application/xml; charset=UTF-8")
                .streams("seal-impression")
                .body_xml(move |request| {
                    assert_eq!(request.text_of("requestId"), Some("case-1:seal"));
                    let list = request.child("cllb").expect("the materials");
                    let file = list
                        .children
                        .iter()
                        .find(|c| c.text_of("clbm") == Some("seal-impression"))
                        .unwrap();
                    assert_eq!(file.text_of("sm3"), Some(sm3.as_str()));
                    assert_eq!(
                        file.text_of("wjdx"),
                        Some(expected.len().to_string().as_str())
                    );
                    let decoded = sdk::sign::base64_decode(file.text_of("nr").unwrap()).unwrap();
                    assert!(decoded == expected, "the base64 is the file's");
                    let licence = list
                        .children
                        .iter()
                        .find(|c| c.text_of("clbm") == Some("business-licence"))
                        .unwrap();
                    assert_eq!(licence.text_of("zzlx"), Some("business_licence"));
                    assert!(licence.child("nr").is_none(), "a licence has no file");
                })
                .respond(
                    200,
                    answer("<code>00</code><message>成功</message><babh>GA1</babh>"),
                ),
        );
    let receipt = PublicSecurity::submit(sdk::Submission {
        case_id: "case-1".into(),
        matter: SEAL_FILING.into(),
        idempotency_key: "case-1:seal".into(),
        payload: FILING.into(),
        callback_url: String::new(),
        materials: harness.materials(),
    })
    .unwrap();
    assert_eq!(receipt.reference, "GA1");
    // The adapter read nothing: the host streamed the file into the request.
    assert!(harness.reads().is_empty(), "{:?}", harness.reads());
    harness.finish();
}
