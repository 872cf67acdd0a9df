//! Property tests (fuzz targets) for reading the tax department's answers: any status and any
//! body, near-valid answers (a field dropped or replaced, the bytes cut short or changed), and
//! every reader answers with a value or an error of the kind its doc promises, never a panic.
//! 256 cases per property, or `PROPTEST_CASES`:
//! `PROPTEST_CASES=100000 cargo test -p tax-adapter --test fuzz`.

use proptest::prelude::*;
use sdk::AdapterError;
use sdk::testing::fuzz;
use serde_json::{Value, json};
use tax_adapter::lifecycle::read_action;
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
        json!({"code": "0000", "msg": "成功", "data": {"slh": "SW1", "zt": "04", "ztmc": "退回补正",
            "bzxx": {"bzyy": "请补正", "bzqx": "2026-12-18",
                "bzzd": [{"zdmc": "scjydz", "yy": "生产经营地址须具体到门牌号"}],
                "bzcl": [{"clbm": "premises-proof", "clmc": "经营场所证明", "yy": "请提供"}]}}}),
        json!({"code": "0000", "msg": "成功", "data": {"slh": "SW1", "zt": "05", "ztmc": "已撤回"}}),
        json!({"code": "2008", "msg": "当前状态不可补正：已办结", "data": null}),
        json!({"code": "0000", "msg": "成功", "data": {"nsrsbh": "91350100M000100Y43",
            "nsrmc": "福州演示餐饮有限公司", "qszt": "Y", "qjje": "0.00"}}),
        json!({"code": "2002", "msg": "纳税人不存在", "data": null}),
        json!({"code": "4011", "msg": "签名错误"}),
        json!({"code": "4013", "msg": "nonce重复"}),
    ]
}

/// The department's codes and words, among the generated strings.
const WORDS: &[&str] = &[
    "0000", "01", "02", "03", "04", "05", "1001", "3005", "3006", "Y", "N", "",
];

/// The statuses the readers treat apart.
const STATUSES: &[u16] = &[201, 400, 401, 404, 500, 503];

fn body() -> impl Strategy<Value = Vec<u8>> {
    fuzz::json_body(valid_answers(), WORDS)
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

/// The department's code in a body, when it has one.
fn code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_string))
}

/// What an application's answer may become (`read_registration`, and `read_deed_tax` through
/// it): besides the kinds of any answer, a file the department lost (`3005`) is `Unavailable`
/// and a licence whose check character fails (`3006`) `Internal`, both on a 200.
fn check_application_kind(
    status: u16,
    body: &[u8],
    error: &AdapterError,
) -> Result<(), TestCaseError> {
    let own = status == 200
        && matches!(
            (error, code(body).as_deref()),
            (AdapterError::Unavailable(_), Some("3005"))
                | (AdapterError::Internal(_), Some("3006"))
        );
    if own {
        Ok(())
    } else {
        check_kind(status, body, error)
    }
}

proptest! {
    #[test]
    fn every_reader_answers_any_answer(status in fuzz::status(STATUSES), body in body()) {
        if let Err(e) = read_answer(status, &body) {
            check_kind(status, &body, &e)?;
        }
        if let Err(e) = read_registration(status, &body) {
            check_application_kind(status, &body, &e)?;
        }
        if let Err(e) = read_deed_tax(status, &body) {
            check_application_kind(status, &body, &e)?;
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
        // A return is read with what it asks, or not at all.
        if let Ok(report) = read_status("SW1", status, &body) {
            prop_assert_eq!(
                report.requested.is_some(),
                report.state == sdk::StepState::Returned
            );
        }
    }

    /// The answers of a supplement and a withdrawal: besides the kinds of any answer, a request
    /// the department could not read (`1001`) is `Internal`, a file it lost (`3005`)
    /// `Unavailable`, both on a 200.
    #[test]
    fn supplement_and_withdrawal_answers_are_read(status in fuzz::status(STATUSES), body in body()) {
        if let Err(e) = read_action(status, &body) {
            let own = status == 200
                && matches!(
                    (&e, code(&body).as_deref()),
                    (AdapterError::Internal(_), Some("1001"))
                        | (AdapterError::Unavailable(_), Some("3005"))
                );
            if !own {
                check_kind(status, &body, &e)?;
            }
        }
    }

    #[test]
    fn unreadable_bodies_are_protocol_errors(body in fuzz::bytes()) {
        prop_assume!(serde_json::from_slice::<Value>(&body).is_err());
        prop_assert!(matches!(read_registration(200, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_clearance(200, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_status("SW1", 200, &body), Err(AdapterError::Protocol(_))));
    }
}
