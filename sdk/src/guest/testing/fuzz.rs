//! What a department might answer, as proptest strategies, for an adapter's property tests (its
//! fuzz targets): every reader must turn any answer into a value or an error of the kind its doc
//! promises, and never panic.
//!
//! Noise alone rarely gets past a reader's first check, so the strategies start from what the
//! department really sends: its real answers, mutated once ([`near_valid_json`],
//! [`near_valid_xml`]), and its own codes and words among the generated leaves ([`json`],
//! [`text`]), which are what steer a reader into its branches. The department's answers, words
//! and notable statuses are all an adapter passes in; the arbitrary values around them are the
//! same for every adapter.
//!
//! Feature `fuzz`, natively only (like the rest of [`testing`](super)). An adapter turns it on
//! for its tests alone, so its component never links proptest:
//!
//! ```toml
//! [dev-dependencies]
//! gateway-sdk = { path = "../../sdk", features = ["fuzz"] }
//! proptest.workspace = true
//! ```
//!
//! The strategies, by what they generate:
//! - [`json_body`], [`xml_body`], [`form_body`]: the bodies to feed a JSON, an XML or a form
//!   (`application/x-www-form-urlencoded`, GB18030 or GBK) department's readers: mostly
//!   near-valid answers, the rest any JSON value or a real answer unchanged, and random bytes.
//! - [`near_valid_json`], [`near_valid_xml`], [`near_valid_form`]: one real answer with one mutation (a node or a span
//!   dropped, a value or a text replaced, the bytes cut short or one changed, the wrong encoding).
//! - [`json`], [`text`]: any JSON value, any text, with the department's words among them.
//! - [`status`]: an HTTP status: mostly 200, then the statuses the department uses, then any.
//! - [`bytes`]: up to 200 random bytes.
//!
//! And the mutations themselves, for properties of an adapter's own: [`pointers`], [`remove`],
//! [`cut_short`], [`change_byte`], [`Declared`].
//!
//! ```
//! use proptest::prelude::*;
//! use sdk::testing::fuzz;
//! use serde_json::json;
//!
//! /// A reader of the department's answers, as an adapter's `protocol` module has them.
//! fn read_state(status: u16, body: &[u8]) -> Result<String, String> {
//!     if status != 200 {
//!         return Err(format!("HTTP {status}"));
//!     }
//!     let answer: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
//!     answer["zt"].as_str().map(str::to_string).ok_or_else(|| "no zt".into())
//! }
//!
//! proptest!(|(
//!     status in fuzz::status(&[401, 500, 503]),
//!     body in fuzz::json_body(vec![json!({"code": "0000", "zt": "02"})], &["0000", "01", "02"]),
//! )| {
//!     if let Ok(state) = read_state(status, &body) {
//!         prop_assert_eq!(status, 200);
//!         prop_assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok(), "{}", state);
//!     }
//! });
//! ```
//!
//! Each property runs proptest's 256 cases, or `PROPTEST_CASES` when set (a longer run:
//! `PROPTEST_CASES=100000 cargo test -p tax-adapter --test fuzz`).

use proptest::prelude::*;
use serde_json::Value;

/// Any JSON value up to four levels deep, with the department's `words` (its codes, states,
/// identifiers) among the strings.
///
/// Leaves are `null`, booleans, integers, floats and [`text`], each as likely; arrays and
/// objects have up to four members (object keys `[a-z]{1,6}`), at most 32 nodes in all.
pub fn json(words: &[&str]) -> impl Strategy<Value = Value> + use<> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text(words).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            proptest::collection::btree_map("[a-z]{1,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Text as departments and applicants write it, each kind as likely: one of the department's
/// `words` (the empty string always among them), Chinese with digits and capitals, markup and
/// control characters, or any string at all.
pub fn text(words: &[&str]) -> impl Strategy<Value = String> + use<> {
    let mut words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    if !words.iter().any(String::is_empty) {
        words.push(String::new());
    }
    prop_oneof![
        proptest::sample::select(words),
        "[\\u{4e00}-\\u{9fa5}0-9A-Z.]{0,12}",
        "[<>&;/\"'\\x00-\\x1f]{0,6}",
        any::<String>(),
    ]
}

/// An HTTP status: 200 three times in five, one of the department's `notable` statuses (those
/// its readers treat apart: 401, 404, 5xx ...) once in five, any `u16` else.
pub fn status(notable: &[u16]) -> impl Strategy<Value = u16> + use<> {
    let notable = if notable.is_empty() {
        vec![200]
    } else {
        notable.to_vec()
    };
    prop_oneof![
        3 => Just(200u16),
        1 => proptest::sample::select(notable),
        1 => any::<u16>(),
    ]
}

/// Up to 200 random bytes: mostly not JSON, not XML, not UTF-8.
pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..200)
}

/// The body to feed a JSON department's readers: a [`near_valid_json`] answer three times in
/// five, any [`json`] value once, random [`bytes`] once.
///
/// `answers` are bodies the department really gives (successes and refusals; not empty), `words`
/// its codes and words, as for [`json`].
pub fn json_body(answers: Vec<Value>, words: &[&str]) -> impl Strategy<Value = Vec<u8>> + use<> {
    prop_oneof![
        3 => near_valid_json(answers, words),
        1 => json(words).prop_map(|v| v.to_string().into_bytes()),
        1 => bytes(),
    ]
}

/// A near-valid JSON body: one of `answers` (not empty) with one mutation, each as likely: a
/// node [`remove`]d (the root: the answer becomes `null`), a node replaced by any [`json`]
/// value, the serialised bytes [`cut_short`], or one of them changed ([`change_byte`]).
pub fn near_valid_json(
    answers: Vec<Value>,
    words: &[&str],
) -> impl Strategy<Value = Vec<u8>> + use<> {
    (
        proptest::sample::select(answers),
        any::<usize>(),
        0u8..4,
        json(words),
        any::<usize>(),
    )
        .prop_map(|(mut answer, pick, op, replacement, at)| {
            let all = pointers(&answer);
            let node = &all[pick % all.len()];
            match op {
                0 => {
                    if !remove(&mut answer, node) {
                        answer = Value::Null;
                    }
                    answer.to_string().into_bytes()
                }
                1 => {
                    *answer.pointer_mut(node).expect("a pointer of this answer") = replacement;
                    answer.to_string().into_bytes()
                }
                2 => cut_short(answer.to_string().into_bytes(), at),
                // The new byte from bits of `at` that the position modulo a short length ignores.
                _ => change_byte(answer.to_string().into_bytes(), at, (at >> 8) as u8),
            }
        })
}

/// The JSON pointers (RFC 6901) of every node of `value`: the root (`""`) first, then depth first.
pub fn pointers(value: &Value) -> Vec<String> {
    fn walk(value: &Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let key = key.replace('~', "~0").replace('/', "~1");
                    walk(child, format!("{at}/{key}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

/// Remove the node at JSON `pointer` from its object or array; `false` when there is none, or
/// when it is the root (which has no parent to lose it from).
pub fn remove(value: &mut Value, pointer: &str) -> bool {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return false;
    };
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => map
            .remove(&key.replace("~1", "/").replace("~0", "~"))
            .is_some(),
        Some(Value::Array(items)) => match key.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// `bytes` cut to their first `at % len`: an answer that stopped short (a body truncated by a
/// proxy, a connection closed early). Empty bytes stay empty.
pub fn cut_short(mut bytes: Vec<u8>, at: usize) -> Vec<u8> {
    if !bytes.is_empty() {
        bytes.truncate(at % bytes.len());
    }
    bytes
}

/// `bytes` with the one at `at % len` set to `to` (which may be what it was). Empty bytes stay
/// empty.
pub fn change_byte(mut bytes: Vec<u8>, at: usize, to: u8) -> Vec<u8> {
    if !bytes.is_empty() {
        let i = at % bytes.len();
        bytes[i] = to;
    }
    bytes
}

/// The encoding a department's XML answers declare (`<?xml ... encoding="…"?>`): near-valid
/// bodies are sent in it, and one mutation sends the text in the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    /// `encoding="UTF-8"` (or no declaration).
    Utf8,
    /// `encoding="GBK"`.
    Gbk,
}

impl Declared {
    /// `text` in the encoding declared. Panics on characters GBK cannot carry: the answers given
    /// to [`near_valid_xml`] are the department's own, which it can send.
    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Declared::Utf8 => text.as_bytes().to_vec(),
            Declared::Gbk => crate::xml::encode_gbk(text).expect("the answers are GBK text"),
        }
    }

    /// `text` in the other encoding than the one declared: GBK bytes under a UTF-8 declaration,
    /// UTF-8 bytes under a GBK one.
    pub fn misencode(self, text: &str) -> Vec<u8> {
        match self {
            Declared::Utf8 => Declared::Gbk.encode(text),
            Declared::Gbk => Declared::Utf8.encode(text),
        }
    }
}

/// The body to feed an XML department's readers: a [`near_valid_xml`] answer three times in
/// five, one of `answers` unchanged once, random [`bytes`] once.
///
/// `answers` are whole documents the department really gives (declaration included; not empty),
/// all declaring `declared`; `words` its codes and words, as for [`text`].
pub fn xml_body(
    answers: Vec<String>,
    declared: Declared,
    words: &[&str],
) -> impl Strategy<Value = Vec<u8>> + use<> {
    prop_oneof![
        3 => near_valid_xml(answers.clone(), declared, words),
        1 => proptest::sample::select(answers).prop_map(move |a| declared.encode(&a)),
        1 => bytes(),
    ]
}

/// A near-valid XML body: one of `answers` (not empty) with one mutation, each as likely:
/// - the span between two tags dropped (elements lost, tags left unbalanced);
/// - a [`text`] put in before a tag;
/// - the encoded bytes [`cut_short`], or one of them changed ([`change_byte`]);
/// - the text of one element (from a `>` to the next `<`) replaced by a [`text`];
/// - the document in the other encoding than the one it declares ([`Declared::misencode`]).
///
/// The markup mutations edit the text and send it as UTF-8, so under a GBK declaration they
/// also try reading UTF-8 as GBK.
pub fn near_valid_xml(
    answers: Vec<String>,
    declared: Declared,
    words: &[&str],
) -> impl Strategy<Value = Vec<u8>> + use<> {
    (
        proptest::sample::select(answers),
        0u8..6,
        any::<usize>(),
        any::<usize>(),
        text(words),
    )
        .prop_map(move |(answer, op, a, b, text)| {
            let tags: Vec<usize> = answer.match_indices('<').map(|(i, _)| i).collect();
            let (from, to) = match tags.len() {
                0 => (0, 0),
                n => {
                    let (x, y) = (tags[a % n], tags[b % n]);
                    (x.min(y), x.max(y))
                }
            };
            match op {
                0 => format!("{}{}", &answer[..from], &answer[to..]).into_bytes(),
                1 => format!("{}{text}{}", &answer[..from], &answer[from..]).into_bytes(),
                2 => cut_short(declared.encode(&answer), a),
                3 => change_byte(declared.encode(&answer), a, b as u8),
                4 => {
                    let ends: Vec<usize> = answer.match_indices('>').map(|(i, _)| i + 1).collect();
                    let start = match ends.len() {
                        0 => 0,
                        n => ends[a % n],
                    };
                    let end = answer[start..]
                        .find('<')
                        .map_or(answer.len(), |i| start + i);
                    format!("{}{text}{}", &answer[..start], &answer[end..]).into_bytes()
                }
                _ => declared.misencode(&answer),
            }
        })
}

/// The body to feed a form department's readers (`application/x-www-form-urlencoded` answers,
/// often in GB18030): a [`near_valid_form`] answer three times in five, one of `answers`
/// unchanged once, random [`bytes`] once.
///
/// `answers` are the department's real answers as their pairs, in order (not empty); `charset`
/// the one it sends them in; `words` its codes and words, as for [`text`].
pub fn form_body(
    answers: Vec<Vec<(String, String)>>,
    charset: crate::encoding::Charset,
    words: &[&str],
) -> impl Strategy<Value = Vec<u8>> + use<> {
    let encode = move |pairs: &[(String, String)]| {
        crate::encoding::form_encode(pairs, charset)
            .expect("the answers are the department's own, in its charset")
            .into_bytes()
    };
    prop_oneof![
        3 => near_valid_form(answers.clone(), charset, words),
        1 => proptest::sample::select(answers).prop_map(move |a| encode(&a)),
        1 => bytes(),
    ]
}

/// A near-valid form body: one of `answers` (not empty) with one mutation, each as likely: a
/// pair dropped, a value replaced by a [`text`], the encoded bytes [`cut_short`] or one of them
/// changed ([`change_byte`]), or the form encoded in UTF-8 when the department's charset is
/// another (or in GB18030 when it is UTF-8).
pub fn near_valid_form(
    answers: Vec<Vec<(String, String)>>,
    charset: crate::encoding::Charset,
    words: &[&str],
) -> impl Strategy<Value = Vec<u8>> + use<> {
    use crate::encoding::{Charset, form_encode};
    (
        proptest::sample::select(answers),
        0u8..5,
        any::<usize>(),
        text(words),
    )
        .prop_map(move |(mut answer, op, at, text)| {
            let encode = |pairs: &[(String, String)], charset: Charset| {
                // A generated text GBK cannot carry goes as GB18030, which carries everything.
                form_encode(pairs, charset)
                    .or_else(|_| form_encode(pairs, Charset::Gb18030))
                    .expect("GB18030 encodes any text")
                    .into_bytes()
            };
            match op {
                0 => {
                    if !answer.is_empty() {
                        let i = at % answer.len();
                        answer.remove(i);
                    }
                    encode(&answer, charset)
                }
                1 => {
                    if !answer.is_empty() {
                        let i = at % answer.len();
                        answer[i].1 = text;
                    }
                    encode(&answer, charset)
                }
                2 => cut_short(encode(&answer, charset), at),
                3 => change_byte(encode(&answer, charset), at, (at >> 8) as u8),
                _ => encode(
                    &answer,
                    if charset == Charset::Utf8 {
                        Charset::Gb18030
                    } else {
                        Charset::Utf8
                    },
                ),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_name_every_node_and_escape_keys() {
        let value = json!({"a/b": [1, {"c~": null}], "d": 2});
        assert_eq!(
            pointers(&value),
            ["", "/a~1b", "/a~1b/0", "/a~1b/1", "/a~1b/1/c~0", "/d"]
        );
        for pointer in pointers(&value) {
            assert!(value.pointer(&pointer).is_some(), "{pointer}");
        }
    }

    #[test]
    fn remove_drops_members_and_items_but_not_the_root() {
        let mut value = json!({"a/b": [1, {"c~": null}], "d": 2});
        assert!(remove(&mut value, "/a~1b/1/c~0"));
        assert!(remove(&mut value, "/a~1b/0"));
        assert!(!remove(&mut value, "/a~1b/5"));
        assert!(!remove(&mut value, "/missing/x"));
        assert!(!remove(&mut value, ""));
        assert_eq!(value, json!({"a/b": [{}], "d": 2}));
    }

    #[test]
    fn byte_mutations_wrap_their_position_and_leave_empty_bytes_alone() {
        assert_eq!(cut_short(b"abcd".to_vec(), 6), b"ab");
        assert_eq!(cut_short(Vec::new(), 3), b"");
        assert_eq!(change_byte(b"abcd".to_vec(), 5, b'X'), b"aXcd");
        assert_eq!(change_byte(Vec::new(), 5, b'X'), b"");
    }

    #[test]
    fn declared_encodings_and_their_opposites() {
        let answer = r#"<?xml version="1.0" encoding="GBK"?><zt>登簿</zt>"#;
        let gbk = Declared::Gbk.encode(answer);
        assert_eq!(crate::xml::decode(&gbk).unwrap(), answer);
        assert_eq!(Declared::Gbk.misencode(answer), answer.as_bytes());
        assert_eq!(Declared::Utf8.misencode(answer), gbk);
    }

    /// `n` values of `strategy`, from a fixed seed: the same every run.
    fn sample<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        (0..n)
            .map(|_| strategy.new_tree(&mut runner).expect("a value").current())
            .collect()
    }

    #[test]
    fn the_department_words_and_the_empty_string_are_among_the_texts() {
        let texts = sample(text(&["E201"]), 1000);
        // One kind in four is a word, and there are two: about 125 of each.
        let e201 = texts.iter().filter(|t| *t == "E201").count();
        assert!((60..250).contains(&e201), "{e201} of 1000");
        assert!(texts.iter().filter(|t| t.is_empty()).count() >= 60);
    }

    #[test]
    fn statuses_are_mostly_200_then_the_notable_ones() {
        let statuses = sample(status(&[401]), 1000);
        let ok = statuses.iter().filter(|s| **s == 200).count();
        let unauthorised = statuses.iter().filter(|s| **s == 401).count();
        assert!((500..700).contains(&ok), "{ok} of 1000");
        assert!((120..280).contains(&unauthorised), "{unauthorised} of 1000");
    }

    #[test]
    fn near_valid_json_mutates_the_tree_and_the_bytes() {
        let answer = json!({"code": "0000", "data": {"slh": "SW1"}});
        let bodies = sample(near_valid_json(vec![answer.clone()], &[]), 1000);
        // A node dropped or replaced (half the mutations) leaves JSON; cut short it is not.
        let json = bodies
            .iter()
            .filter(|b| serde_json::from_slice::<Value>(b).is_ok())
            .count();
        assert!((450..800).contains(&json), "{json} of 1000 bodies are JSON");
        let unchanged = answer.to_string().into_bytes();
        assert!(bodies.iter().filter(|b| **b == unchanged).count() < 100);
    }

    proptest! {
        #[test]
        fn near_valid_xml_takes_answers_without_markup(
            body in near_valid_xml(vec!["登簿".to_string()], Declared::Gbk, &[]),
        ) {
            // At most the answer and one inserted text (proptest strings: up to 100 chars).
            prop_assert!(body.len() <= "登簿".len() + 4 * 100);
        }
    }

    #[test]
    fn form_bodies_are_mostly_near_the_departments_answers() {
        use crate::encoding::{Charset, form_parse};
        use proptest::strategy::ValueTree;
        let answer = vec![
            ("retcode".to_string(), "0000".to_string()),
            ("lsh".to_string(), "20261204000000000001".to_string()),
            ("msg".to_string(), "受理成功".to_string()),
        ];
        let strategy = form_body(vec![answer.clone()], Charset::Gb18030, &["0000", "9999"]);
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let (mut whole, mut one_pair_less, mut unreadable) = (0, 0, 0);
        for _ in 0..500 {
            let body = strategy.new_tree(&mut runner).unwrap().current();
            match form_parse(&body, Charset::Gb18030) {
                Ok(pairs) if pairs == answer => whole += 1,
                Ok(pairs) if pairs.len() == 2 => one_pair_less += 1,
                Ok(_) => {}
                Err(_) => unreadable += 1,
            }
        }
        assert!(
            whole > 50 && one_pair_less > 20 && unreadable > 20,
            "{whole} {one_pair_less} {unreadable}"
        );
    }
}
