//! Property tests (fuzz targets) for reading the department's answers: any status and any body,
//! near-valid answers (a field dropped or replaced, the bytes cut short or changed), and every
//! reader answers with a value or an error of the kind its doc promises, never a panic.
//! 256 cases per property, or `PROPTEST_CASES`:
//! `PROPTEST_CASES=100000 cargo test -p example-adapter --test fuzz`.

use example_adapter::protocol::{json_of, read_record, read_status, read_submitted};
use proptest::prelude::*;
use sdk::AdapterError;
use sdk::testing::fuzz;
use serde_json::{Value, json};

/// Answers the department really gives, to start mutations from.
fn valid_answers() -> Vec<Value> {
    vec![
        json!({"applicationNo": "A1", "status": "RECEIVED"}),
        json!({"applicationNo": "A1", "status": "PROCESSING", "message": "审核中"}),
        json!({"applicationNo": "A1", "status": "APPROVED", "certificateNo": "C9"}),
        json!({"applicationNo": "A1", "status": "RETURNED", "message": "请补正材料"}),
        json!({"name": "张三", "idNumber": "11010519491231002X", "address": "福州市鼓楼区五四路2号",
            "registeredOn": "2020-01-01"}),
        json!({"code": "E1", "message": "申请重复"}),
    ]
}

/// The department's codes and words, among the generated strings.
const WORDS: &[&str] = &[
    "RECEIVED",
    "PROCESSING",
    "APPROVED",
    "REJECTED",
    "RETURNED",
    "",
];

/// The statuses the readers treat apart.
const STATUSES: &[u16] = &[201, 400, 401, 404, 500, 503];

/// The bodies the readers are fed: this department answers JSON. A department answering in
/// another shape keeps every property below and changes only this function (and
/// `valid_answers`), e.g. GBK XML:
/// `fuzz::xml_body(vec![r#"<?xml version="1.0" encoding="GBK"?><rsp><code>0000</code></rsp>"#.into()], fuzz::Declared::Gbk, WORDS)`,
/// or a GB18030 form (`retcode=0000&lsh=…`):
/// `fuzz::form_body(vec![vec![("retcode".into(), "0000".into())]], sdk::encoding::Charset::Gb18030, WORDS)`.
fn body() -> impl Strategy<Value = Vec<u8>> {
    fuzz::json_body(valid_answers(), WORDS)
}

/// The kinds of error an answer may become (see `json_of`): 5xx is `Unavailable`, 401 `Internal`
/// (the API key), other 4xx `Rejected` when they carry a code, anything unreadable `Protocol`;
/// never a timeout or an input problem, which reading an answer cannot find.
fn check_kind(status: u16, body: &[u8], error: &AdapterError) -> Result<(), TestCaseError> {
    let ok = match error {
        AdapterError::Unavailable(_) => status >= 500,
        _ if status >= 500 => false,
        AdapterError::Internal(_) => status == 401,
        _ if status == 401 => false,
        AdapterError::Rejected(r) => (400..500).contains(&status) && !r.code.is_empty(),
        AdapterError::Protocol(_) => status != 404,
        AdapterError::Timeout(_) | AdapterError::InvalidInput(_) => false,
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
        if let Err(e) = json_of(status, &body) {
            check_kind(status, &body, &e)?;
        }
        match read_submitted(status, &body) {
            Ok(receipt) => prop_assert!(serde_json::from_str::<Value>(&receipt.outputs).is_ok()),
            Err(e) => check_kind(status, &body, &e)?,
        }
        match read_status(status, &body) {
            Ok(report) => prop_assert!(serde_json::from_str::<Value>(&report.outputs).is_ok()),
            Err(e) => check_kind(status, &body, &e)?,
        }
        if let Err(e) = read_record(status, &body) {
            check_kind(status, &body, &e)?;
        }
    }

    #[test]
    fn unreadable_bodies_are_protocol_errors(body in fuzz::bytes()) {
        prop_assume!(serde_json::from_slice::<Value>(&body).is_err());
        prop_assert!(matches!(read_submitted(200, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_status(200, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_record(200, &body), Err(AdapterError::Protocol(_))));
    }
}
