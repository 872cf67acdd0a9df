//! Property tests (fuzz targets) for reading the department's answers: any status and any body,
//! near-valid answers (a field dropped or replaced, the bytes cut short or changed), and every
//! reader answers with a value or an error of the kind its doc promises, never a panic.
//! 256 cases per property, or `PROPTEST_CASES`:
//! `PROPTEST_CASES=100000 cargo test -p example-adapter --test fuzz`.

use example_adapter::protocol::{json_of, read_record, read_status, read_submitted};
use proptest::prelude::*;
use sdk::AdapterError;
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

/// Any JSON value, with the department's own codes and words among the leaves.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        proptest::sample::select(vec![
            "RECEIVED",
            "PROCESSING",
            "APPROVED",
            "REJECTED",
            "RETURNED",
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
    fn every_reader_answers_any_answer(status in status(), body in body()) {
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
    fn unreadable_bodies_are_protocol_errors(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        prop_assume!(serde_json::from_slice::<Value>(&body).is_err());
        prop_assert!(matches!(read_submitted(200, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_status(200, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_record(200, &body), Err(AdapterError::Protocol(_))));
    }
}
