//! Masking personal identifiers and scrubbing secrets in anything that reaches logs, traces,
//! error messages or screens.
//!
//! Identity numbers (18 characters, the last a digit or X; and the 15-digit first-generation
//! ones) and mobile numbers (11 digits starting with 1, also after `86`) are recognised by their
//! shape, in ASCII or full-width digits (`１１０…`), whole, split into groups by spaces or hyphens
//! (`139 1234 5678`, `110105-19491231-002X`) or glued to letters (`tel13912345678`). A number
//! that is not cleanly set apart must look the part (a real birth date inside an identity number,
//! `13`–`19` at the head of a mobile number), so dates, references, hex digests and trace ids
//! stay readable; unified social credit codes are not personal and stay readable too.
//!
//! Names have no shape, so they are masked by value: a request (and a delivery) runs in a
//! [`scope`], the names in the JSON it carries are [`noted`](note_names) there, and every text
//! redacted within that scope has them masked (`张三丰` → `张**`) — the log writer, error
//! messages, a department's error text echoing the applicant.
//!
//! Secrets the gateway holds for departments ([`set_secrets`]) are replaced by `[secret]` in
//! every text redacted, in any scope, also when an adapter echoes one back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

tokio::task_local! {
    static NAMES: Arc<Mutex<Vec<String>>>;
}

/// What a secret is replaced with.
pub const SECRET_MASK: &str = "[secret]";

/// Secrets shorter than this are not scrubbed: replacing every `abc` in every log line would
/// hide more than it protects (the config check warns about them).
pub const MIN_SECRET_CHARS: usize = 4;

/// Every secret by owner (`departments.tax` …), and all of them flattened, longest first.
struct Secrets {
    by_owner: BTreeMap<String, Vec<String>>,
    all: Arc<Vec<String>>,
}

static SECRETS: RwLock<Option<Secrets>> = RwLock::new(None);

/// The secrets `owner` holds from now on (replacing what it held before); each is scrubbed
/// from every text [`redact`]ed, as written and as written inside a JSON string.
pub fn set_secrets(owner: &str, values: impl IntoIterator<Item = String>) {
    let mut values: Vec<String> = values
        .into_iter()
        .filter(|v| v.chars().count() >= MIN_SECRET_CHARS)
        .collect();
    values.sort();
    values.dedup();
    let mut guard = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    let secrets = guard.get_or_insert_with(|| Secrets {
        by_owner: BTreeMap::new(),
        all: Arc::default(),
    });
    if values.is_empty() {
        secrets.by_owner.remove(owner);
    } else {
        secrets.by_owner.insert(owner.to_string(), values);
    }
    let mut all: Vec<String> = Vec::new();
    for value in secrets.by_owner.values().flatten() {
        // A secret with a quote or a backslash appears escaped in a JSON log line or answer.
        let escaped = serde_json::to_string(value).unwrap_or_default();
        let escaped = escaped[1..escaped.len() - 1].to_string();
        for form in [value.clone(), escaped] {
            if !all.contains(&form) {
                all.push(form);
            }
        }
    }
    // Longest first, so a secret containing another is scrubbed whole.
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.all = Arc::new(all);
}

fn secrets() -> Option<Arc<Vec<String>>> {
    let guard = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    guard
        .as_ref()
        .map(|s| s.all.clone())
        .filter(|all| !all.is_empty())
}

/// `text` with every secret held replaced by [`SECRET_MASK`] (nothing else changed): for
/// answers that carry data as it is, such as a lookup's result.
pub fn scrub_secrets(text: &str) -> std::borrow::Cow<'_, str> {
    let Some(all) = secrets() else {
        return std::borrow::Cow::Borrowed(text);
    };
    if !all.iter().any(|s| text.contains(s.as_str())) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for secret in all.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), SECRET_MASK);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Run `f` with a set of names to mask, empty at first.
// Not an `async fn`: one would hold `f` twice, as its argument and inside the scope's future,
// and `f` is often a whole request's work, which every layer above moves
// (BENCHMARKS.md, "Where the copies go").
pub fn scope<F: Future>(f: F) -> impl Future<Output = F::Output> {
    NAMES.scope(Arc::default(), f)
}

/// The names noted in the current scope, to carry to work done for it on another thread.
#[derive(Clone, Default)]
pub struct Noted(Arc<Mutex<Vec<String>>>);

/// The current scope's names (an empty set outside any scope).
pub fn noted() -> Noted {
    Noted(NAMES.try_with(Arc::clone).unwrap_or_default())
}

/// Run `f` in the scope `noted` came from: it masks the same names, and notes into them.
pub fn within<F: Future>(noted: Noted, f: F) -> impl Future<Output = F::Output> {
    NAMES.scope(noted.0, f)
}

/// Note the personal names in `value` (strings under `name`, `*_name` except
/// `enterprise_name`, `legal_representative`, `owner`, `contact`), to be masked for the rest of
/// the current scope. Outside any scope this does nothing.
pub fn note_names(value: &serde_json::Value) {
    let _ = NAMES.try_with(|names| {
        let mut names = names.lock().unwrap_or_else(|e| e.into_inner());
        collect(value, None, &mut names);
    });
}

fn is_name_key(key: &str) -> bool {
    (key == "name" || key.ends_with("_name") || key.ends_with("姓名")) && key != "enterprise_name"
        || matches!(key, "legal_representative" | "owner" | "contact")
}

fn collect(value: &serde_json::Value, key: Option<&str>, names: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) if key.is_some_and(is_name_key) => {
            let s = s.trim();
            // One character would mask that character everywhere; short ASCII words are too
            // likely to be something else.
            let long_enough = s.chars().count() >= 2 && (!s.is_ascii() || s.len() >= 4);
            if long_enough && names.len() < 64 && !names.iter().any(|n| n == s) {
                names.push(s.to_string());
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, key, names)),
        serde_json::Value::Object(fields) => {
            for (k, v) in fields {
                collect(v, Some(k), names);
            }
        }
        _ => {}
    }
}

/// A name as it may be shown or recorded: its first character, the rest starred.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    let first = chars.next().unwrap_or_default();
    std::iter::once(first).chain(chars.map(|_| '*')).collect()
}

/// A mobile number as it may be shown or recorded: `13912345678` → `139****5678` (the shape
/// [`redact`] gives one in a text); anything else fully starred.
pub fn mask_phone(phone: &str) -> String {
    if phone.len() == 11 && phone.is_ascii() {
        format!("{}****{}", &phone[..3], &phone[7..])
    } else {
        "*".repeat(phone.chars().count().min(11))
    }
}

/// `text` with every secret held scrubbed, every identity number and mobile number masked, and
/// every name noted in the current scope masked.
pub fn redact(text: &str) -> String {
    let masked = redact_numbers(&scrub_secrets(text));
    // Only the noted names this text holds, longest first, so a name containing another is
    // masked whole (every text an adapter returns passes here: most hold none).
    let mut found: Vec<String> = NAMES
        .try_with(|names| {
            let names = names.lock().unwrap_or_else(|e| e.into_inner());
            names
                .iter()
                .filter(|n| masked.contains(n.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if found.is_empty() {
        return masked;
    }
    found.sort_by_key(|n| std::cmp::Reverse(n.len()));
    found.iter().fold(masked, |text, name| {
        if text.contains(name.as_str()) {
            text.replace(name.as_str(), &mask_name(name))
        } else {
            text
        }
    })
}

/// The value of an ASCII or full-width decimal digit.
fn digit(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '０'..='９' => Some((c as u32 - '０' as u32) as u8),
        _ => None,
    }
}

/// The check character X of an identity number, ASCII or full-width.
fn is_x(c: char) -> bool {
    matches!(c, 'X' | 'x' | 'Ｘ' | 'ｘ')
}

/// What may stand between two groups of one number: a space or a hyphen (ASCII, full-width,
/// no-break, ideographic, or one of the Unicode dashes).
fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '-' | '\u{00a0}' | '\u{3000}' | '－' | '\u{2010}'..='\u{2015}' | '\u{2212}'
    )
}

/// A letter or digit a number can be glued to (ASCII or full-width).
fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '０'..='９' | 'Ａ'..='Ｚ' | 'ａ'..='ｚ')
}

/// One group of digits of a candidate number: where it starts and ends in the text.
struct Group {
    start: usize,
    end: usize,
}

/// Whether `d` (digits, as values) read at `at` is a plausible date: `YYYYMMDD` when `century`,
/// else `YYMMDD`.
fn is_date(d: &[u8], at: usize, century: bool) -> bool {
    let n = |i: usize, len: usize| {
        d[at + i..at + i + len]
            .iter()
            .fold(0u32, |v, x| v * 10 + u32::from(*x))
    };
    let (year_len, year_ok) = if century {
        (4, (1900..=2099).contains(&n(0, 4)))
    } else {
        (2, true)
    };
    let month = n(year_len, 2);
    let day = n(year_len + 2, 2);
    year_ok && (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// How a candidate number is set apart from its surroundings.
#[derive(Clone, Copy)]
struct Context {
    /// One group, nothing glued to it, no more groups around it.
    clean: bool,
    /// The word it is glued into is a long hex token (a digest, a trace or request id).
    in_hex_token: bool,
}

/// The masked form of a candidate, if it is a personal number: `digits` are its digit values,
/// `x` whether an X check character follows them.
fn masked_number(digits: &[u8], x: bool, context: Context) -> Option<String> {
    let text = |d: &[u8]| d.iter().map(|v| char::from(b'0' + v)).collect::<String>();
    if !context.clean && context.in_hex_token {
        return None;
    }
    let mobile =
        |d: &[u8]| d.len() == 11 && d[0] == 1 && (context.clean || (3..=9).contains(&d[1]));
    match (digits.len(), x) {
        (18, false) | (17, true) => {
            if !context.clean && !is_date(digits, 6, true) {
                return None;
            }
            let mut value = text(digits);
            if x {
                value.push('X');
            }
            Some(sdk::ids::mask(&value))
        }
        (15, false) if is_date(digits, 6, false) => Some(sdk::ids::mask(&text(digits))),
        (11, false) if mobile(digits) => {
            let value = text(digits);
            Some(format!("{}****{}", &value[..3], &value[7..]))
        }
        // A mobile number with the country code glued on: 86 139 1234 5678.
        (13, false) if digits[..2] == [8, 6] && (3..=9).contains(&digits[3]) && digits[2] == 1 => {
            let value = text(&digits[2..]);
            Some(format!("86{}****{}", &value[..3], &value[7..]))
        }
        _ => None,
    }
}

/// Whether the alphanumeric token around `at` (hyphens included, as in a UUID) is made of hex
/// digits only and long enough to be an id or a digest rather than a word.
fn in_hex_token(chars: &[char], at: usize) -> bool {
    let part = |c: &char| c.is_ascii_alphanumeric() || *c == '-';
    let start = chars[..at]
        .iter()
        .rposition(|c| !part(c))
        .map_or(0, |p| p + 1);
    let end = chars[at..]
        .iter()
        .position(|c| !part(c))
        .map_or(chars.len(), |p| at + p);
    let token = &chars[start..end];
    token.iter().filter(|c| **c != '-').count() >= 16
        && token.iter().all(|c| c.is_ascii_hexdigit() || *c == '-')
}

fn redact_numbers(text: &str) -> String {
    // The shortest number masked is a mobile number's 11 digits: fewer in the whole text, and
    // there is nothing to look for.
    if text
        .chars()
        .filter(|c| digit(*c).is_some())
        .take(11)
        .count()
        < 11
    {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts_group = digit(chars[i]).is_some() && (i == 0 || digit(chars[i - 1]).is_none());
        if !starts_group {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // The groups from here: digits, then one separator and more digits, and so on.
        let mut groups = Vec::new();
        let mut at = i;
        loop {
            let end = chars[at..]
                .iter()
                .position(|c| digit(*c).is_none())
                .map_or(chars.len(), |p| at + p);
            groups.push(Group { start: at, end });
            let continues = end + 1 < chars.len()
                && is_separator(chars[end])
                && digit(chars[end + 1]).is_some();
            if !continues || groups.len() == 8 {
                break;
            }
            at = end + 1;
        }
        let before = i.checked_sub(1).map(|p| chars[p]);
        let continued_before =
            before.is_some_and(is_separator) && i >= 2 && digit(chars[i - 2]).is_some();
        let glued_before = before.is_some_and(is_word);
        // The longest candidate from here that is a personal number wins.
        let mut digits: Vec<u8> = Vec::new();
        let mut best: Option<(usize, String)> = None;
        for (k, group) in groups.iter().enumerate() {
            digits.extend(
                chars[group.start..group.end]
                    .iter()
                    .filter_map(|c| digit(*c)),
            );
            if digits.len() > 18 {
                break;
            }
            let x = group.end < chars.len() && is_x(chars[group.end]);
            for with_x in [false, true] {
                if with_x && !x {
                    continue;
                }
                let end = group.end + usize::from(with_x);
                let after = chars.get(end).copied();
                let continued_after = k + 1 < groups.len();
                let glued_after = after.is_some_and(is_word);
                let context = Context {
                    clean: k == 0
                        && !glued_before
                        && !glued_after
                        && !continued_before
                        && !continued_after,
                    in_hex_token: (glued_before || glued_after) && in_hex_token(&chars, i),
                };
                if let Some(masked) = masked_number(&digits, with_x, context) {
                    best = Some((end, masked));
                }
            }
        }
        match best {
            Some((end, masked)) => {
                out.push_str(&masked);
                i = end;
            }
            None => {
                out.extend(&chars[i..groups[0].end]);
                i = groups[0].end;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_keeps_its_head_and_tail_anything_else_is_starred() {
        assert_eq!(mask_phone("13912345678"), "139****5678");
        assert_eq!(mask_phone("+8613912345678"), "***********");
    }

    #[tokio::test]
    async fn names_noted_in_a_scope_are_masked_there_only() {
        let form = serde_json::json!({
            "enterprise_name": "福州市某某科技有限公司",
            "legal_representative": {"name": "张三丰", "id_number": "11010519491231002X"},
            "buyer": {"name": "李四"},
            "contact_name": "Wang Wu",
            "seal_types": ["公章"],
        });
        let inside = scope(async {
            note_names(&form);
            redact("转让方张三丰与登记权利人李四不一致; contact Wang Wu; 福州市某某科技有限公司")
        })
        .await;
        assert_eq!(
            inside,
            "转让方张**与登记权利人李*不一致; contact W******; 福州市某某科技有限公司"
        );
        // Another request's scope, and no scope at all, know nothing of these names.
        assert_eq!(scope(async { redact("张三丰") }).await, "张三丰");
        note_names(&form);
        assert_eq!(redact("张三丰"), "张三丰");
    }

    #[test]
    fn identity_and_phone_numbers_are_masked() {
        assert_eq!(
            redact("id=11010519491231002X ok"),
            "id=1101**********002X ok"
        );
        assert_eq!(redact("360426199101010071"), "3604**********0071");
        assert_eq!(redact("tel 13800138000."), "tel 138****8000.");
        assert_eq!(
            redact("{\"id_number\":\"34052419800101001X\"}"),
            "{\"id_number\":\"3405**********001X\"}"
        );
    }

    #[test]
    fn first_generation_identity_numbers_are_masked() {
        // 15 digits: region, YYMMDD, sequence; no check character.
        assert_eq!(redact("身份证110105491231002号"), "身份证1101*******1002号");
        assert_eq!(redact("id 110105491231002"), "id 1101*******1002");
    }

    #[test]
    fn full_width_digits_are_masked() {
        assert_eq!(
            redact("证件号１１０１０５１９４９１２３１００２Ｘ"),
            "证件号1101**********002X"
        );
        assert_eq!(redact("手机１３９１２３４５６７８"), "手机139****5678");
        assert_eq!(redact("１１０１０５４９１２３１００２"), "1101*******1002");
    }

    #[test]
    fn split_numbers_are_masked() {
        for (text, masked) in [
            ("tel 139 1234 5678 ok", "tel 139****5678 ok"),
            ("tel 139-1234-5678", "tel 139****5678"),
            ("+86 139 1234 5678", "+86139****5678"),
            ("110105 19491231 002X", "1101**********002X"),
            ("110105-19491231-002X.", "1101**********002X."),
            ("1101 0519 4912 3100 2X", "1101**********002X"),
            ("110105 491231 002", "1101*******1002"),
            ("１３９　１２３４　５６７８", "139****5678"),
            // A number before it does not hide it.
            ("case 42 13912345678", "case 42 139****5678"),
            ("2024-01-01 13912345678", "2024-01-01 139****5678"),
        ] {
            assert_eq!(redact(text), masked, "{text}");
        }
    }

    #[test]
    fn numbers_glued_to_letters_are_masked() {
        for (text, masked) in [
            ("ID11010519491231002X", "ID1101**********002X"),
            ("sfzh11010519491231002Xend", "sfzh1101**********002Xend"),
            ("tel13912345678", "tel139****5678"),
            ("13912345678abc", "139****5678abc"),
            ("x110105491231002y", "x1101*******1002y"),
            ("+8613912345678", "+86139****5678"),
            (
                "11010519491231002X13912345678",
                "1101**********002X139****5678",
            ),
        ] {
            assert_eq!(redact(text), masked, "{text}");
        }
    }

    #[test]
    fn other_values_stay_readable() {
        for text in [
            "91350100M000100Y43 case 42 SW20261122000001",
            "12345",
            "91110000600037341L 91110108551385082Q 12100000400000398U",
            "351001012010GB01859F00040015",
            "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U",
            "2026-01-21T10:00:00.123456Z 2024-01-01",
            "010-12345678",
            "at 1767225600000 ms",
            // Hex ids and digests: a run of digits inside them is no phone number.
            "trace_id=4bf92f3577b34da613912345678e0e47",
            "request_id=550e8400-e29b-41d4-a716-13912345678a",
            "digest 0a13912345678ffe0a13912345678ffe0a13912345678ffe",
            // Not dates inside: not identity numbers once split or glued.
            "ref 110105 99991399 0021",
            "a10010010010b",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn secrets_are_scrubbed_everywhere() {
        set_secrets(
            "test.secrets",
            ["s3cr\"et-value".to_string(), "abc".to_string()],
        );
        assert_eq!(
            redact("token s3cr\"et-value and abc"),
            "token [secret] and abc",
            "too short to scrub: abc"
        );
        // As it appears inside a JSON string (a JSON log line, an answer).
        let json = serde_json::json!({"echo": "s3cr\"et-value"}).to_string();
        assert_eq!(redact(&json), r#"{"echo":"[secret]"}"#);
        assert_eq!(scrub_secrets("x s3cr\"et-value"), "x [secret]");
        set_secrets("test.secrets", []);
        assert_eq!(redact("s3cr\"et-value"), "s3cr\"et-value");
    }
}
