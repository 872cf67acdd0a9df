//! Masking personal identifiers in anything that reaches logs, traces or error messages.
//!
//! Identity numbers (18 characters, the last a digit or X) and mobile numbers (11 digits
//! starting with 1) are recognised by their shape; unified social credit codes are not personal
//! and stay readable. Names have no shape, so they are masked by value: a request (and a
//! delivery) runs in a [`scope`], the names in the JSON it carries are [`noted`](note_names)
//! there, and every text redacted within that scope has them masked (`张三丰` → `张**`) — the
//! log writer, error messages, a department's error text echoing the applicant.

use std::sync::{Arc, Mutex};

tokio::task_local! {
    static NAMES: Arc<Mutex<Vec<String>>>;
}

/// Run `f` with a set of names to mask, empty at first.
pub async fn scope<F: Future>(f: F) -> F::Output {
    NAMES.scope(Arc::default(), f).await
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

/// A name as it may be shown: its first character, the rest starred.
fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    let first = chars.next().unwrap_or_default();
    std::iter::once(first).chain(chars.map(|_| '*')).collect()
}

/// `text` with every identity number and mobile number masked, and every name noted in the
/// current scope.
pub fn redact(text: &str) -> String {
    let masked = redact_numbers(text);
    NAMES
        .try_with(|names| {
            let names = names.lock().unwrap_or_else(|e| e.into_inner());
            // Longest first, so a name containing another is masked whole.
            let mut sorted: Vec<&String> = names.iter().collect();
            sorted.sort_by_key(|n| std::cmp::Reverse(n.len()));
            sorted.iter().fold(masked.clone(), |text, name| {
                if text.contains(name.as_str()) {
                    text.replace(name.as_str(), &mask_name(name))
                } else {
                    text
                }
            })
        })
        .unwrap_or(masked)
}

fn redact_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let run_end = chars[i..]
            .iter()
            .position(|c| !c.is_ascii_digit())
            .map_or(chars.len(), |p| i + p);
        let run = run_end - i;
        let boundary_before = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        if run == 0 || !boundary_before {
            // Copy the whole alphanumeric word so digits inside it are not mistaken for a number.
            let word_end = chars[i..]
                .iter()
                .position(|c| !c.is_ascii_alphanumeric())
                .map_or(chars.len(), |p| i + p)
                .max(i + 1);
            out.extend(&chars[i..word_end]);
            i = word_end;
            continue;
        }
        let x_end = run_end < chars.len() && matches!(chars[run_end], 'X' | 'x');
        let after = |end: usize| end >= chars.len() || !chars[end].is_ascii_alphanumeric();
        let identity = (run == 18 && after(run_end)) || (run == 17 && x_end && after(run_end + 1));
        let id_len = if identity {
            Some(18)
        } else if run == 11 && chars[i] == '1' && after(run_end) {
            Some(11)
        } else {
            None
        };
        match id_len {
            Some(18) => {
                let value: String = chars[i..i + 18].iter().collect();
                out.push_str(&sdk::ids::mask(&value));
                i += 18;
            }
            Some(len) => {
                // Mobile numbers keep the carrier prefix and the last four, as printed on receipts.
                out.extend(&chars[i..i + 3]);
                out.push_str("****");
                out.extend(&chars[i + 7..i + len]);
                i += len;
            }
            None => {
                out.extend(&chars[i..run_end]);
                i = run_end;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn other_values_stay_readable() {
        assert_eq!(
            redact("91350100M000100Y43 case 42 SW20261122000001"),
            "91350100M000100Y43 case 42 SW20261122000001"
        );
        assert_eq!(redact("12345"), "12345");
    }
}
