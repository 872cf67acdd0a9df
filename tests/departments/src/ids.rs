//! Identifier checks the departments enforce, and the masking used whenever one is logged.
//!
//! Each department checks only what its real counterpart is known to check; the algorithms are
//! those of `/work/shared/domain.md` (GB 11643, GB 32100, GB 11714).

use time::{Date, Month};

/// Weights of GB 11643 for positions 1..17 of a resident identity number.
const RESIDENT_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const RESIDENT_CHECK: &[u8; 11] = b"10X98765432";

/// The 31 characters of GB 32100: I, O, S, V and Z are left out to avoid misreading.
pub const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// True when `id` is a well-formed 18-character resident identity number (GB 11643-1999):
/// digits, a real birth date not in the future, and the right check character.
///
/// The region code is not checked: codes change over the years but issued numbers never do.
pub fn resident_id_valid(id: &str) -> bool {
    let b = id.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let num = |r: std::ops::Range<usize>| id[r].parse::<u32>().ok();
    let (Some(y), Some(m), Some(d)) = (num(6..10), num(10..12), num(12..14)) else {
        return false;
    };
    let birth = Month::try_from(m as u8)
        .ok()
        .and_then(|m| Date::from_calendar_date(y as i32, m, d as u8).ok());
    match birth {
        Some(birth) if birth <= crate::common::beijing_now().date() => {}
        _ => return false,
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(RESIDENT_WEIGHTS)
        .map(|(c, w)| u32::from(c - b'0') * w)
        .sum();
    RESIDENT_CHECK[(sum % 11) as usize] == b[17].to_ascii_uppercase()
}

/// GB 32100 check character for the first 17 characters, or `None` if one is outside the
/// alphabet.
pub fn uscc_check(first17: &str) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.bytes().zip(USCC_WEIGHTS) {
        sum += USCC_ALPHABET.iter().position(|&a| a == c)? as u32 * w;
    }
    Some(USCC_ALPHABET[((31 - sum % 31) % 31) as usize] as char)
}

/// True when `code` is an 18-character unified social credit code whose check character is
/// right (GB 32100-2015). Lower case is not accepted: the standard has none.
pub fn uscc_valid(code: &str) -> bool {
    code.len() == 18
        && code.is_ascii()
        && uscc_check(&code[..17]) == Some(code.as_bytes()[17] as char)
}

/// GB 11714 check character for an 8-character organisation code body (0-9, A-Z).
pub fn org_code_check(body8: &str) -> Option<char> {
    if body8.len() != 8 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in body8.bytes().zip(ORG_WEIGHTS) {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            _ => return None,
        };
        sum += u32::from(v) * w;
    }
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        n => char::from(b'0' + n as u8),
    })
}

/// Builds a unified social credit code from an 8-character prefix (authority, type, region) and
/// an 8-character organisation code body, adding both check characters.
pub fn make_uscc(prefix8: &str, body8: &str) -> Option<String> {
    let first17 = format!("{prefix8}{body8}{}", org_code_check(body8)?);
    let check = uscc_check(&first17)?;
    Some(format!("{first17}{check}"))
}

/// True when `s` has the shape of a 28-character 不动产单元号:
/// `^\d{12}[GJZ][A-HSWXY]\d{5}[FLQW]\d{8}$`.
pub fn unit_number_valid(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() == 28
        && digits(0..12)
        && b"GJZ".contains(&b[12])
        && matches!(b[13], b'A'..=b'H' | b'S' | b'W' | b'X' | b'Y')
        && digits(14..19)
        && b"FLQW".contains(&b[19])
        && digits(20..28)
}

/// Masks an identifier for logs: the first and last four characters stay, the rest become `*`
/// (`11010519491231002X` → `1101**********002X`), so a log line can be matched to a case
/// without carrying the number.
pub fn mask(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars[..4]
        .iter()
        .chain(std::iter::repeat_n(&'*', n - 8))
        .chain(&chars[n - 4..])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_ids() {
        for ok in [
            "11010519491231002X",
            "34052419800101001X",
            "360426199101010071",
        ] {
            assert!(resident_id_valid(ok), "{ok}");
        }
        assert!(resident_id_valid("11010519491231002x"));
        assert!(!resident_id_valid("110105194912310021"), "wrong check");
        assert!(!resident_id_valid("110105194902300028"), "30 February");
        assert!(!resident_id_valid("1101051949123100"), "short");
        assert!(
            !resident_id_valid("11010529991231002X"),
            "future birth date"
        );
    }

    #[test]
    fn credit_codes() {
        for ok in [
            "91110000600037341L",
            "91350100M000100Y43",
            "91110108551385082Q",
        ] {
            assert!(uscc_valid(ok), "{ok}");
        }
        assert!(
            !uscc_valid("91350100M0001TGQXM"),
            "pilot code failing the checksum"
        );
        assert!(!uscc_valid("91350100M000100Y44"));
        assert!(!uscc_valid("91350100M000100Y4"));
        assert_eq!(org_code_check("M000100Y"), Some('4'));
        let made = make_uscc("91350100", "AB12CD34").unwrap();
        assert!(uscc_valid(&made));
        assert_eq!(
            org_code_check(&made[8..16]),
            Some(made.as_bytes()[16] as char)
        );
    }

    #[test]
    fn unit_numbers() {
        assert!(unit_number_valid("351001012010GB01859F00040015"));
        assert!(!unit_number_valid("351001012010GI01859F00040015"));
        assert!(!unit_number_valid("351001012010GB01859F0004001"));
    }

    #[test]
    fn masking() {
        assert_eq!(mask("11010519491231002X"), "1101**********002X");
        assert_eq!(mask("123"), "***");
    }
}
