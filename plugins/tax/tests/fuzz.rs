//! Property tests (fuzz targets) for reading the tax department's answers: any status and any
//! body, near-valid answers (a field dropped or replaced, the bytes cut short or changed), and
//! every reader answers with a value or an error of the kind its doc promises, never a panic.
//! 256 cases per property, or `PROPTEST_CASES`:
//! `PROPTEST_CASES=100000 cargo test -p tax-adapter --test fuzz`.

use proptest::prelude::*;
use sdk::AdapterError;
use serde_json::{Value, json};
use tax_adapter::protocol::{
    read_answer, read_clearance, read_deed_tax, read_deed_tax_status, read_registration,
    read_status,
};

/// Answers the department really gives, to start mutations from.
fn valid_answers() -> Vec<Value> {
    vec![
        json!({"code": "0000", "msg": "成功", "data": {"slh": "SW2025010100000001"}}),
        json!({"code": "0000", "msg": "成功", "data": {"slh": "SW1", "zt": "01", "ztmc": "受理中", "swdjxx": null}}),
        json!({"code": "0000", "msg": "成功", "data": {"slh": "SW1", "zt": "02", "ztmc": "已办结",
            "swdjxx": {"nsrsbh": "91350100M000100Y43", "djrq": "2025-06-15"}}}),
        json!({"code": "0000", "msg": "成功", "data": {"slh": "QS1", "zt": "02", "ztmc": "已办结",
            "qsxx": {"wspzh": "WS1", "ynse": "30000.00"}}}),
        json!({"code": "0000", "msg": "成功", "data": {"slh": "SW1", "zt": "03", "ztmc": "不予受理"}}),
        json!({"code": "0000", "msg": "成功", "data": {"nsrsbh": "91350100M000100Y43",
            "nsrmc": "福州演示餐饮有限公司", "qszt": "Y", "qjje": "0.00"}}),
        json!({"code": "2002", "msg": "纳税人不存在", "data": null}),
        json!({"code": "4011", "msg": "签名错误"}),
        json!({"code": "4013", "msg": "nonce重复"}),
    ]
}

/// Any JSON value, with the department's own codes and words among the leaves.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("0000"),
            Just("01"),
            Just("02"),
            Just("03"),
            Just("Y"),
            Just("N"),
            Just("")
        ]
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

/// The kinds of error a tax answer may become (see `read_answer` and `authentication_error`):
/// 5xx is `Unavailable`, a body that is not JSON is `Protocol`, a 401 is `Internal` or (a
/// repeated nonce) `Unavailable`, a business refusal is `Rejected` on a 200; never a timeout or
/// an input problem, which reading an answer cannot find.
fn check_kind(status: u16, body: &[u8], error: &AdapterError) -> Result<(), TestCaseError> {
    let json = serde_json::from_slice::<Value>(body).is_ok();
    let ok = match error {
        AdapterError::Unavailable(_) => status >= 500 || status == 401,
        _ if status >= 500 => false,
        AdapterError::Protocol(_) => true,
        _ if !json => false,
        AdapterError::Internal(_) => status == 401,
        AdapterError::Rejected(r) => status == 200 && !r.code.is_empty(),
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
        if let Err(e) = read_answer(status, &body) {
            check_kind(status, &body, &e)?;
        }
        if let Err(e) = read_registration(status, &body) {
            check_kind(status, &body, &e)?;
        }
        if let Err(e) = read_deed_tax(status, &body) {
            check_kind(status, &body, &e)?;
        }
        if let Err(e) = read_clearance(status, &body) {
            check_kind(status, &body, &e)?;
        }
        match read_status("SW1", status, &body) {
            Ok(report) => prop_assert!(serde_json::from_str::<Value>(&report.outputs).is_ok()),
            Err(e) => check_kind(status, &body, &e)?,
        }
        match read_deed_tax_status("QS1", status, &body) {
            Ok(report) => prop_assert!(serde_json::from_str::<Value>(&report.outputs).is_ok()),
            Err(e) => check_kind(status, &body, &e)?,
        }
    }

    #[test]
    fn unreadable_bodies_are_protocol_errors(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        prop_assume!(serde_json::from_slice::<Value>(&body).is_err());
        prop_assert!(matches!(read_registration(200, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_clearance(200, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_status("SW1", 200, &body), Err(AdapterError::Protocol(_))));
    }
}
