//! Property tests (fuzz targets) for reading the public-security department's XML answers: any
//! status and any bytes, near-valid answers (elements dropped, text put in, bytes cut short or
//! changed, a wrong encoding), and every reader answers with a value or an error of the kind its
//! doc promises, never a panic. 256 cases per property, or `PROPTEST_CASES`:
//! `PROPTEST_CASES=100000 cargo test -p public-security-adapter --test fuzz`.

use proptest::prelude::*;
use public_security_adapter::protocol::{read_filing, read_identity, read_response};
use sdk::AdapterError;

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

fn encoded(answer: &str) -> Vec<u8> {
    answer.as_bytes().to_vec()
}

/// The answer's text in GBK while it declares UTF-8.
fn misencoded(answer: &str) -> Vec<u8> {
    sdk::xml::encode_gbk(answer).expect("the answers are GBK text")
}

/// Text for element content: Chinese, the department's codes, markup, control characters.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(WORDS.to_vec()).prop_map(str::to_string),
        "[\\u{4e00}-\\u{9fa5}0-9A-Z.]{0,12}",
        "[<>&;/\"'\\x00-\\x1f]{0,6}",
        any::<String>(),
    ]
}

/// A near-valid body: a valid answer with a span between two tags dropped (elements lost, tags
/// left unbalanced), text put in at a tag, its bytes cut short or one changed, one element's text
/// replaced, or its text in an encoding other than the one it declares.
fn near_valid() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(valid_answers()),
        0u8..6,
        any::<usize>(),
        any::<usize>(),
        any_text(),
    )
        .prop_map(|(answer, op, a, b, text)| {
            let tags: Vec<usize> = answer.match_indices('<').map(|(i, _)| i).collect();
            let (from, to) = {
                let (x, y) = (tags[a % tags.len()], tags[b % tags.len()]);
                (x.min(y), x.max(y))
            };
            match op {
                0 => format!("{}{}", &answer[..from], &answer[to..]).into_bytes(),
                1 => format!("{}{text}{}", &answer[..from], &answer[from..]).into_bytes(),
                2 => {
                    let mut bytes = encoded(&answer);
                    bytes.truncate(a % bytes.len());
                    bytes
                }
                3 => {
                    let mut bytes = encoded(&answer);
                    let i = a % bytes.len();
                    bytes[i] = b as u8;
                    bytes
                }
                4 => {
                    // The text of one element replaced (`>text<`).
                    let ends: Vec<usize> = answer.match_indices('>').map(|(i, _)| i + 1).collect();
                    let start = ends[a % ends.len()];
                    let end = answer[start..]
                        .find('<')
                        .map_or(answer.len(), |i| start + i);
                    format!("{}{text}{}", &answer[..start], &answer[end..]).into_bytes()
                }
                _ => misencoded(&answer),
            }
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => near_valid(),
        1 => proptest::sample::select(valid_answers()).prop_map(|a| encoded(&a)),
        1 => proptest::collection::vec(any::<u8>(), 0..200),
    ]
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        3 => Just(200u16),
        1 => prop_oneof![Just(201u16), Just(400), Just(404), Just(500), Just(503)],
        1 => any::<u16>(),
    ]
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
    fn every_reader_answers_any_answer(status in status(), body in body()) {
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
    fn unreadable_bodies_are_protocol_errors(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let readable = sdk::xml::decode(&body).and_then(|t| sdk::xml::Node::parse(&t));
        prop_assume!(readable.is_err());
        prop_assert!(matches!(read_response(200, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_identity(200, &body), Err(AdapterError::Protocol(_))));
        prop_assert!(matches!(read_filing(200, &body), Err(AdapterError::Protocol(_))));
    }
}
