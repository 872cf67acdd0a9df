//! Property tests (fuzz targets) for reading the market-regulation department's answers: any
//! status and any body, near-valid answers (a field dropped or replaced, the bytes cut short or
//! changed), callbacks with any headers, and every reader answers with a value or an error of the
//! kind its doc promises, never a panic. 256 cases per property, or `PROPTEST_CASES`:
//! `PROPTEST_CASES=100000 cargo test -p market-regulation-adapter --test fuzz`.

use market_regulation_adapter::protocol::{
    api_error, read_callback, read_enterprise, read_permit_status, read_permit_submitted,
    read_status, read_submitted, read_token,
};
use proptest::prelude::*;
use sdk::AdapterError;
use sdk::testing::fuzz;
use serde_json::{Value, json};

const SECRET: &str = "callback-secret";

/// Answers the department really gives, to start mutations from.
fn valid_answers() -> Vec<Value> {
    vec![
        json!({"access_token": "t0k", "token_type": "Bearer", "expires_in": 7200}),
        json!({"applicationNo": "SCJG1", "status": "ACCEPTED"}),
        json!({"applicationNo": "SCJG1", "requestId": "k", "status": "APPROVED",
            "uscc": "91110000600037341L", "licenceNo": "L1", "name": "福州测试科技有限公司"}),
        json!({"applicationNo": "SPJY1", "status": "APPROVED", "permitNo": "JY13501000000001"}),
        json!({"applicationNo": "SCJG1", "status": "REJECTED", "message": "名称不符合规定"}),
        json!({"uscc": "91350100M000100Y43", "name": "福州测试科技有限公司", "address": "福州市鼓楼区五四路1号",
            "legalRepresentative": "张三", "registeredCapital": 100, "status": "存续"}),
        json!({"error": "name_taken", "message": "企业名称已被占用"}),
        json!({"error": "invalid_client"}),
    ]
}

/// The department's codes and words, among the generated strings.
const WORDS: &[&str] = &[
    "ACCEPTED",
    "PROCESSING",
    "APPROVED",
    "REJECTED",
    "RETURNED",
    "JY13501000000001",
    "91110000600037341L",
    "",
];

/// The statuses the readers treat apart.
const STATUSES: &[u16] = &[201, 400, 401, 404, 409, 422, 500, 503];

fn body() -> impl Strategy<Value = Vec<u8>> {
    fuzz::json_body(valid_answers(), WORDS)
}

/// The kinds of error an API answer may become (see `api_error`): 5xx is `Unavailable`, 404 and
/// 409 `Rejected`, 422 `InvalidInput`, anything else unreadable `Protocol`; never a timeout, and
/// never `Internal` (only wrong client credentials at the token endpoint are).
fn check_api_kind(status: u16, body: &[u8], error: &AdapterError) -> Result<(), TestCaseError> {
    let ok = match error {
        AdapterError::Unavailable(_) => status >= 500,
        _ if status >= 500 => false,
        AdapterError::Rejected(r) => matches!(status, 404 | 409) && !r.code.is_empty(),
        AdapterError::InvalidInput(problems) => status == 422 && problems.len() == 1,
        AdapterError::Protocol(_) => !matches!(status, 404 | 409 | 422),
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
        check_api_kind(status, &body, &api_error(status, &body))?;
        match read_token(status, &body) {
            Ok(token) => prop_assert!(!token.access_token.is_empty() && token.ttl_ms >= 1000),
            Err(e) => {
                let ok = match &e {
                    AdapterError::Unavailable(_) => status >= 500,
                    AdapterError::Internal(_) => matches!(status, 400 | 401),
                    AdapterError::Protocol(_) => status < 500 && !matches!(status, 400 | 401),
                    _ => false,
                };
                prop_assert!(ok, "token: HTTP {}: {:?}", status, e);
            }
        }
        for read in [read_submitted, read_permit_submitted] {
            match read(status, &body) {
                Ok(receipt) => prop_assert!(serde_json::from_str::<Value>(&receipt.outputs).is_ok()),
                Err(e) => check_api_kind(status, &body, &e)?,
            }
        }
        for read in [read_status, read_permit_status] {
            match read(status, &body) {
                Ok(report) => prop_assert!(serde_json::from_str::<Value>(&report.outputs).is_ok()),
                Err(e) => check_api_kind(status, &body, &e)?,
            }
        }
        if let Err(e) = read_enterprise(status, &body) {
            check_api_kind(status, &body, &e)?;
        }
    }

    #[test]
    fn unsigned_callbacks_are_refused_and_signed_ones_read(
        body in body(),
        headers in proptest::collection::vec(("[A-Za-z-]{1,12}", any::<String>()), 0..4),
        sign in any::<bool>(),
    ) {
        let mut headers = headers;
        if sign {
            headers.push(("x-signature".into(), sdk::sign::hmac_sha256_hex(SECRET.as_bytes(), &body)));
        }
        let signed = sign
            || headers.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case("X-Signature")
                    && sdk::sign::verify_hmac_sha256_hex(SECRET.as_bytes(), &body, v.trim())
            });
        let genuine = |sig: &str| Ok(sdk::sign::verify_hmac_sha256_hex(SECRET.as_bytes(), &body, sig));
        match read_callback(&headers, &body, genuine) {
            Ok(report) => prop_assert!(signed && !report.reference.is_empty()),
            Err(AdapterError::InvalidInput(problems)) => {
                prop_assert!(!signed);
                prop_assert_eq!(problems[0].field.as_str(), "X-Signature");
            }
            Err(AdapterError::Protocol(_)) => prop_assert!(signed),
            Err(other) => prop_assert!(false, "callback: {:?}", other),
        }
    }

    #[test]
    fn unreadable_bodies_are_protocol_errors(body in fuzz::bytes()) {
        prop_assume!(serde_json::from_slice::<Value>(&body).is_err());
        prop_assert!(matches!(read_token(200, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_submitted(202, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_permit_status(200, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_enterprise(200, &body), Err(AdapterError::Protocol(_))));
    }
}
