//! Masking personal identifiers in anything that reaches logs, traces or error messages.
//!
//! Identity numbers (18 characters, the last a digit or X), unified social credit codes are not
//! personal and stay readable; mobile numbers (11 digits starting with 1) are masked too.

/// `text` with every identity number and mobile number masked.
pub fn redact(text: &str) -> String {
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
    use super::redact;

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
