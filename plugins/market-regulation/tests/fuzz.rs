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

/// Any JSON value, with the department's own codes and words among the leaves.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        proptest::sample::select(vec![
            "ACCEPTED",
            "PROCESSING",
            "APPROVED",
            "REJECTED",
            "RETURNED",
            "JY13501000000001",
            "91110000600037341L",
            ""
        ])
        .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        "[\\u{4e00}-\\u{9fa5}0-9.]{0,10}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            proptest::collection::btree_map("[a-z]{1,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON pointers of every node of `value`.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A near-valid body: one node of a valid answer dropped or replaced, or its bytes cut short or
/// one byte changed.
fn near_valid() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(valid_answers()),
        any::<usize>(),
        0u8..4,
        any_json(),
        any::<usize>(),
    )
        .prop_map(|(mut answer, pick, op, replacement, cut)| {
            let mut all = Vec::new();
            pointers(&answer, String::new(), &mut all);
            let at = &all[pick % all.len()];
            match op {
                0 => {
                    let (parent, key) = at.rsplit_once('/').unwrap_or(("", ""));
                    match answer.pointer_mut(parent) {
                        Some(Value::Object(map)) if !at.is_empty() => {
                            map.remove(&key.replace("~1", "/").replace("~0", "~"));
                        }
                        Some(Value::Array(items)) => {
                            if let Ok(i) = key.parse::<usize>() {
                                items.remove(i);
                            }
                        }
                        _ => answer = Value::Null,
                    }
                    answer.to_string().into_bytes()
                }
                1 => {
                    *answer.pointer_mut(at).expect("a pointer of this answer") = replacement;
                    answer.to_string().into_bytes()
                }
                2 => {
                    let mut bytes = answer.to_string().into_bytes();
                    bytes.truncate(cut % bytes.len());
                    bytes
                }
                _ => {
                    let mut bytes = answer.to_string().into_bytes();
                    let i = cut % bytes.len();
                    bytes[i] = (cut >> 8) as u8;
                    bytes
                }
            }
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => near_valid(),
        1 => any_json().prop_map(|v| v.to_string().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..200),
    ]
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        3 => Just(200u16),
        1 => prop_oneof![Just(201u16), Just(400), Just(401), Just(404), Just(500), Just(503)],
        1 => any::<u16>(),
    ]
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
    fn every_reader_answers_any_answer(status in status(), body in body()) {
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
                    && v.trim() == sdk::sign::hmac_sha256_hex(SECRET.as_bytes(), &body)
            });
        match read_callback(&headers, &body, SECRET) {
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
    fn unreadable_bodies_are_protocol_errors(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        prop_assume!(serde_json::from_slice::<Value>(&body).is_err());
        prop_assert!(matches!(read_token(200, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_submitted(202, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_permit_status(200, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_enterprise(200, &body), Err(AdapterError::Protocol(_))));
    }
}
