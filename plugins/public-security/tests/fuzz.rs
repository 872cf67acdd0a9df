//! Property tests (fuzz targets) for reading the public-security department's XML answers: any
//! status and any bytes, near-valid answers (elements dropped, text put in, bytes cut short or
//! changed, a wrong encoding), and every reader answers with a value or an error of the kind its
//! doc promises, never a panic. 256 cases per property, or `PROPTEST_CASES`:
//! `PROPTEST_CASES=100000 cargo test -p public-security-adapter --test fuzz`.

use proptest::prelude::*;
use public_security_adapter::protocol::{read_filing, read_identity, read_response};
use sdk::AdapterError;
use sdk::testing::fuzz::{self, Declared};

/// The department's codes and words, among the generated texts.
const WORDS: &[&str] = &[
    "00",
    "10",
    "20",
    "1",
    "2",
    "3",
    "",
    "成功",
    "GA2025010100000001",
];

/// Answers the department really gives (UTF-8, as declared), to start mutations from.
fn valid_answers() -> Vec<String> {
    [
        "<code>00</code><message>成功</message><babh>GA2025010100000001</babh>",
        "<code>00</code><message>成功</message><result>1</result>",
        "<code>00</code><result>3</result>",
        "<code>10</code><message>参数错误：身份证号</message>",
        "<code>20</code><message>统一社会信用代码校验失败</message>",
    ]
    .iter()
    .map(|inner| format!(r#"<?xml version="1.0" encoding="UTF-8"?><response>{inner}</response>"#))
    .collect()
}

/// The statuses the readers treat apart.
const STATUSES: &[u16] = &[201, 400, 404, 500, 503];

fn body() -> impl Strategy<Value = Vec<u8>> {
    fuzz::xml_body(valid_answers(), Declared::Utf8, WORDS)
}

/// The kinds of error an answer may become (see `read_response`): 5xx is `Unavailable`, another
/// status or an unreadable body `Protocol`, code 10 one `InvalidInput`, another code `Rejected`
/// with that code; never a timeout or `Internal`.
fn check_kind(status: u16, body: &[u8], error: &AdapterError) -> Result<(), TestCaseError> {
    let ok = match error {
        AdapterError::Unavailable(_) => status >= 500,
        _ if status >= 500 => false,
        AdapterError::Protocol(_) => true,
        _ if status != 200 => false,
        AdapterError::InvalidInput(problems) => problems.len() == 1,
        AdapterError::Rejected(r) => !r.code.is_empty() && r.code != "00" && r.code != "10",
        AdapterError::Timeout(_) | AdapterError::Internal(_) => false,
    };
    prop_assert!(
        ok,
        "HTTP {} {:?}: {:?}",
        status,
        String::from_utf8_lossy(body),
        error
    );
    Ok(())
}

proptest! {
    #[test]
    fn every_reader_answers_any_answer(status in fuzz::status(STATUSES), body in body()) {
        if let Err(e) = read_response(status, &body) {
            check_kind(status, &body, &e)?;
        }
        match read_identity(status, &body) {
            Ok(answer) => prop_assert!(answer["result"].is_string()),
            Err(e) => check_kind(status, &body, &e)?,
        }
        match read_filing(status, &body) {
            Ok(receipt) => prop_assert!(!receipt.reference.is_empty()),
            Err(e) => check_kind(status, &body, &e)?,
        }
    }

    #[test]
    fn unreadable_bodies_are_protocol_errors(body in fuzz::bytes()) {
        let readable = sdk::xml::decode(&body).and_then(|t| sdk::xml::Node::parse(&t));
        prop_assume!(readable.is_err());
        prop_assert!(matches!(read_response(200, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_identity(200, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_filing(200, &body), Err(AdapterError::Protocol(_))));
    }
}
