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
