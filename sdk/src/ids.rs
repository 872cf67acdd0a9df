//! National identifiers and their check algorithms (GB 11643, GB 32100, GB 11714, real estate).
//!
//! Shared by adapters and by the gateway's pre-review, so a number is judged the same way
//! everywhere. Each check returns the first reason a value fails, as a stable code plus a message.

use std::fmt;

/// Why an identifier is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdProblem {
    /// Stable machine code: `length`, `format`, `date`, `checksum`.
    pub code: &'static str,
    /// Human-readable reason.
    pub message: String,
}

impl IdProblem {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        IdProblem {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for IdProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for IdProblem {}

/// A calendar date, year-month-day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// Year, e.g. 1991.
    pub year: u16,
    /// Month 1-12.
    pub month: u8,
    /// Day 1-31.
    pub day: u8,
}

impl Date {
    /// A date if it exists in the Gregorian calendar.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (day >= 1 && day <= days).then_some(Date { year, month, day })
    }

    /// Today in UTC+8 (Beijing time), from the system clock.
    pub fn today() -> Date {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            + 8 * 3600;
        Date::from_days_since_epoch((secs / 86_400) as i64)
    }

    /// Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    pub fn from_days_since_epoch(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
        Date { year, month, day }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// What a valid 18-character resident identity number tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidentId {
    /// The 6-digit address code of first registration.
    pub region: String,
    /// Date of birth.
    pub birth_date: Date,
    /// True when the sequence code is odd.
    pub male: bool,
}

const RESIDENT_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const RESIDENT_CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// Check a resident identity number (GB 11643-1999) as of today.
pub fn resident_id(value: &str) -> Result<ResidentId, IdProblem> {
    resident_id_on(value, Date::today())
}

/// Check a resident identity number as of a given day (the birth date may not be after it).
///
/// Unknown region codes are accepted: codes change over the years, issued numbers never do.
pub fn resident_id_on(value: &str, today: Date) -> Result<ResidentId, IdProblem> {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() != 18 {
        return Err(IdProblem::new(
            "length",
            format!("居民身份号码应为18位，实为{}位", chars.len()),
        ));
    }
    if !chars[..17].iter().all(char::is_ascii_digit)
        || !(chars[17].is_ascii_digit() || chars[17] == 'X')
    {
        return Err(IdProblem::new(
            "format",
            "居民身份号码前17位应为数字，末位为数字或大写X",
        ));
    }
    let digit = |i: usize| chars[i].to_digit(10).unwrap_or(0);
    let number = |range: std::ops::Range<usize>| range.fold(0u32, |n, i| n * 10 + digit(i));
    let birth = Date::new(
        number(6..10) as u16,
        number(10..12) as u8,
        number(12..14) as u8,
    )
    .ok_or_else(|| IdProblem::new("date", "居民身份号码中的出生日期不存在"))?;
    if birth > today || birth.year < 1900 {
        return Err(IdProblem::new(
            "date",
            "居民身份号码中的出生日期不在合理范围内",
        ));
    }
    let sum: u32 = (0..17).map(|i| digit(i) * RESIDENT_WEIGHTS[i]).sum();
    if RESIDENT_CHECK[(sum % 11) as usize] != chars[17] {
        return Err(IdProblem::new("checksum", "居民身份号码校验位错误"));
    }
    Ok(ResidentId {
        region: value[..6].to_string(),
        birth_date: birth,
        male: digit(16) % 2 == 1,
    })
}

const CREDIT_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// A character's value in the credit code's alphabet (its place in [`CREDIT_ALPHABET`]): by
/// its code point, not by searching the alphabet, as every character of every code is read.
fn credit_value(c: char) -> Option<u32> {
    let value = match c {
        '0'..='9' => c as u32 - '0' as u32,
        'A'..='H' => c as u32 - 'A' as u32 + 10,
        'J'..='N' => c as u32 - 'J' as u32 + 18,
        'P'..='R' => c as u32 - 'P' as u32 + 23,
        'T' | 'U' => c as u32 - 'T' as u32 + 26,
        'W'..='Y' => c as u32 - 'W' as u32 + 28,
        _ => return None,
    };
    Some(value)
}

/// The check character of a unified social credit code from its first 17 characters.
pub fn credit_code_check_char(first17: &str) -> Option<char> {
    let mut chars = first17.chars();
    let mut sum = 0;
    for weight in CREDIT_WEIGHTS {
        sum += credit_value(chars.next()?)? * weight;
    }
    if chars.next().is_some() {
        return None;
    }
    CREDIT_ALPHABET
        .as_bytes()
        .get(((31 - sum % 31) % 31) as usize)
        .map(|&b| char::from(b))
}

/// Check a unified social credit code (GB 32100-2015): alphabet, length and check character.
///
/// Some early pilot codes fail the checksum and are still legal; callers decide whether a
/// `checksum` problem is an error (new registrations) or a question for the department.
pub fn credit_code(value: &str) -> Result<(), IdProblem> {
    let len = value.chars().count();
    if len != 18 {
        return Err(IdProblem::new(
            "length",
            format!("统一社会信用代码应为18位，实为{len}位"),
        ));
    }
    if let Some(bad) = value.chars().find(|c| credit_value(*c).is_none()) {
        return Err(IdProblem::new(
            "format",
            format!("统一社会信用代码含有不允许的字符「{bad}」"),
        ));
    }
    let expected = credit_code_check_char(&value[..17]);
    if expected != value.chars().nth(17) {
        return Err(IdProblem::new("checksum", "统一社会信用代码校验位错误"));
    }
    Ok(())
}

/// The check character of a 9-character organisation code (GB 11714) from its first 8.
pub fn organisation_code_check_char(first8: &str) -> Option<char> {
    let values: Option<Vec<u32>> = first8
        .chars()
        .map(|c| match c {
            '0'..='9' => c.to_digit(10),
            'A'..='Z' => Some(c as u32 - 'A' as u32 + 10),
            _ => None,
        })
        .collect();
    let values = values.filter(|v| v.len() == 8)?;
    let sum: u32 = values.iter().zip(ORG_WEIGHTS).map(|(v, w)| v * w).sum();
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        n => char::from_digit(n, 10)?,
    })
}

/// Check a 28-character real estate unit number (不动产单元号):
/// `^\d{12}[GJZ][A-HSWXY]\d{5}[FLQW]\d{8}$`.
pub fn real_estate_unit(value: &str) -> Result<(), IdProblem> {
    let b = value.as_bytes();
    if b.len() != 28 || !value.is_ascii() {
        return Err(IdProblem::new("length", "不动产单元号应为28位"));
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = digits(0..12)
        && b"GJZ".contains(&b[12])
        && (matches!(b[13], b'A'..=b'H') || b"SWXY".contains(&b[13]))
        && digits(14..19)
        && b"FLQW".contains(&b[19])
        && digits(20..28);
    if ok {
        Ok(())
    } else {
        Err(IdProblem::new("format", "不动产单元号格式错误"))
    }
}

/// Check a real estate title certificate number (不动产权证书号), e.g. `闽(2019)平潭不动产权第0011364号`.
/// Both full-width and ASCII parentheses occur; the serial has 6 or 7 digits.
pub fn real_estate_certificate(value: &str) -> Result<(), IdProblem> {
    let bad = || {
        IdProblem::new(
            "format",
            "不动产权证书号应形如 闽(2019)平潭不动产权第0011364号",
        )
    };
    let normalised = value.replace('（', "(").replace('）', ")");
    let mut chars = normalised.chars();
    let province = chars.next().ok_or_else(bad)?;
    if province.is_ascii() {
        return Err(bad());
    }
    let rest: String = chars.collect();
    let rest = rest.strip_prefix('(').ok_or_else(bad)?;
    let (year, rest) = rest.split_once(')').ok_or_else(bad)?;
    if year.len() != 4 || !year.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let (place, rest) = rest.split_once("不动产权第").ok_or_else(bad)?;
    let serial = rest.strip_suffix('号').ok_or_else(bad)?;
    let serial_ok = (6..=7).contains(&serial.len()) && serial.bytes().all(|c| c.is_ascii_digit());
    if place.is_empty() || !serial_ok {
        return Err(bad());
    }
    Ok(())
}

/// Mask an identifier for logs and messages: keep the first 4 and last 4 characters of long
/// values (`1101**********002X`), everything but the first of short ones.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() >= 12 {
        let mut out: String = chars[..4].iter().collect();
        out.extend(std::iter::repeat_n('*', chars.len() - 8));
        out.extend(&chars[chars.len() - 4..]);
        out
    } else {
        let mut out: String = chars.iter().take(1).collect();
        out.extend(std::iter::repeat_n('*', chars.len().saturating_sub(1)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: Date = Date {
        year: 2026,
        month: 11,
        day: 22,
    };

    #[test]
    fn resident_ids_from_the_standard_pass() {
        for id in [
            "11010519491231002X",
            "34052419800101001X",
            "360426199101010071",
        ] {
            resident_id_on(id, TODAY).unwrap_or_else(|e| panic!("{id}: {e}"));
        }
        let r = resident_id_on("360426199101010071", TODAY).unwrap();
        assert_eq!(r.birth_date, Date::new(1991, 1, 1).unwrap());
        assert!(r.male);
        assert!(!resident_id_on("11010519491231002X", TODAY).unwrap().male);
    }

    #[test]
    fn resident_id_failures_name_their_reason() {
        let code = |id: &str| resident_id_on(id, TODAY).unwrap_err().code;
        assert_eq!(code("110105194912310021"), "checksum");
        assert_eq!(code("11010519491231002"), "length");
        assert_eq!(code("11010519491231002x"), "format");
        assert_eq!(code("110105194902300021"), "date"); // 30 February
        assert_eq!(code("110105209901010011"), "date"); // born in the future
        // An unknown region code is not a reason to refuse an issued number.
        let first17 = "99999919800101001";
        let sum: u32 = first17
            .chars()
            .zip(RESIDENT_WEIGHTS)
            .map(|(c, w)| c.to_digit(10).unwrap() * w)
            .sum();
        let id = format!("{first17}{}", RESIDENT_CHECK[(sum % 11) as usize]);
        assert!(resident_id_on(&id, TODAY).is_ok());
    }

    #[test]
    fn credit_codes_from_the_standard_pass() {
        for code in [
            "91110000600037341L",
            "91350100M000100Y43",
            "91110108551385082Q",
        ] {
            credit_code(code).unwrap_or_else(|e| panic!("{code}: {e}"));
        }
    }

    #[test]
    fn credit_code_failures_name_their_reason() {
        assert_eq!(
            credit_code("91110000600037341M").unwrap_err().code,
            "checksum"
        );
        assert_eq!(
            credit_code("91350100M0001TGQXM").unwrap_err().code,
            "checksum"
        ); // legal pilot code
        assert_eq!(credit_code("91110000600037341").unwrap_err().code, "length");
        assert_eq!(
            credit_code("9111000060003734IL").unwrap_err().code,
            "format"
        );
    }

    #[test]
    fn a_credit_characters_value_is_its_place_in_the_alphabet() {
        for c in (0u8..=127).map(char::from) {
            let place = CREDIT_ALPHABET.find(c).map(|i| i as u32);
            assert_eq!(credit_value(c), place, "{c:?}");
        }
        assert_eq!(credit_value('中'), None);
        assert_eq!(credit_code_check_char("91350100M000100Y"), None);
        assert_eq!(credit_code_check_char("91350100M000100Y43"), None);
        assert_eq!(credit_code_check_char("91350100M000100Y4"), Some('3'));
    }

    #[test]
    fn organisation_code_check() {
        // The organisation code inside 91110000600037341L is 600037341.
        assert_eq!(organisation_code_check_char("60003734"), Some('1'));
    }

    #[test]
    fn real_estate_identifiers() {
        assert!(real_estate_unit("351001012010GB01859F00040015").is_ok());
        assert!(real_estate_unit("351001012010GI01859F00040015").is_err());
        assert!(real_estate_unit("35100101201").is_err());
        assert!(real_estate_certificate("闽(2019)平潭不动产权第0011364号").is_ok());
        assert!(real_estate_certificate("闽（2019）平潭不动产权第001136号").is_ok());
        assert!(real_estate_certificate("闽(19)平潭不动产权第0011364号").is_err());
        assert!(real_estate_certificate("闽(2019)平潭不动产权第11号").is_err());
    }

    #[test]
    fn masking_keeps_only_the_ends() {
        assert_eq!(mask("11010519491231002X"), "1101**********002X");
        assert_eq!(mask("张三"), "张*");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(
            Date::from_days_since_epoch(0),
            Date::new(1970, 1, 1).unwrap()
        );
        assert_eq!(
            Date::from_days_since_epoch(20_414),
            Date::new(2025, 11, 22).unwrap()
        );
    }
}

/// The root of every electronic licence identifier (GB/T 36904-2018): the OID arc of 电子证照.
pub const LICENCE_ROOT: &str = "1.2.156.3005.2";

const LICENCE_ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn licence_value(c: char) -> Option<u32> {
    match c {
        '0'..='9' => c.to_digit(10),
        'A'..='Z' => Some(c as u32 - 'A' as u32 + 10),
        _ => None,
    }
}

/// The check character of an electronic licence identifier (GB/T 36904-2018): ISO/IEC 7064
/// MOD 37,36 (the hybrid system of GB/T 17710) over 0-9, A-Z (values 0-35).
///
/// `parts_without_dots` is the type code, issuing authority code, serial and version written
/// together without their dots — **not** the root `1.2.156.3005.2`: the standard's example
/// `1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U` checks to `U`
/// only that way (with the root included it would be `7`), as do the identifiers found in
/// public government code. `None` for an empty input or a character outside 0-9, A-Z.
pub fn licence_check_char(parts_without_dots: &str) -> Option<char> {
    if parts_without_dots.is_empty() {
        return None;
    }
    let mut p: u32 = 36;
    for c in parts_without_dots.chars() {
        p = (p + licence_value(c)?) % 36;
        if p == 0 {
            p = 36;
        }
        p = (2 * p) % 37;
    }
    Some(LICENCE_ALPHABET[((37 - p) % 36) as usize] as char)
}

/// Check a whole electronic licence identifier (GB/T 36904-2018):
/// `1.2.156.3005.2.<type code>.<issuing authority>.<serial>.<version>.<check>`, where the type
/// code is a unified social credit code and 3 digits, the issuing authority a unified social
/// credit code, the serial 1-64 characters of 0-9 A-Z, the version 3 digits, and the check
/// character [`licence_check_char`] of the four parts between root and check.
pub fn licence_id(value: &str) -> Result<(), IdProblem> {
    let rest = value
        .strip_prefix(LICENCE_ROOT)
        .and_then(|r| r.strip_prefix('.'))
        .ok_or_else(|| IdProblem::new("format", "电子证照标识应以 1.2.156.3005.2. 开头"))?;
    let parts: Vec<&str> = rest.split('.').collect();
    let [type_code, authority, serial, version, check] = parts[..] else {
        return Err(IdProblem::new(
            "format",
            "电子证照标识应由证照类型代码、颁发机构代码、流水号、版本号和校验位组成，以点分隔",
        ));
    };
    if type_code.len() != 21 || !type_code.is_ascii() {
        return Err(IdProblem::new(
            "length",
            "证照类型代码应为21位：统一社会信用代码加3位数字",
        ));
    }
    credit_code(&type_code[..18]).map_err(|p| IdProblem {
        code: p.code,
        message: format!("证照类型代码中的{}", p.message),
    })?;
    if !type_code[18..].bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdProblem::new("format", "证照类型代码末3位应为数字"));
    }
    credit_code(authority).map_err(|p| IdProblem {
        code: p.code,
        message: format!("证照颁发机构代码（{}）", p.message),
    })?;
    if serial.is_empty() || serial.len() > 64 || !serial.chars().all(|c| licence_value(c).is_some())
    {
        return Err(IdProblem::new(
            "format",
            "电子证照流水号应为1至64位数字或大写字母",
        ));
    }
    if version.len() != 3 || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdProblem::new("format", "电子证照版本号应为3位数字"));
    }
    let mut chars = check.chars();
    let (Some(given), None) = (chars.next(), chars.next()) else {
        return Err(IdProblem::new("format", "电子证照校验位应为1位"));
    };
    let expected = licence_check_char(&format!("{type_code}{authority}{serial}{version}"));
    if expected != Some(given) {
        return Err(IdProblem::new("checksum", "电子证照标识校验位错误"));
    }
    Ok(())
}

#[cfg(test)]
mod licence_tests {
    use super::*;

    const EXAMPLE: &str =
        "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U";

    #[test]
    fn the_standard_example_checks_to_u() {
        assert_eq!(
            licence_check_char("11100000000013338W01111430000006122244L20230000403001"),
            Some('U')
        );
        assert_eq!(licence_id(EXAMPLE), Ok(()));
        // The root is not part of the checked text: with it the check would be `7`.
        assert_eq!(
            licence_check_char("121563005211100000000013338W01111430000006122244L20230000403001"),
            Some('7')
        );
    }

    #[test]
    fn identifiers_from_public_government_code_pass() {
        for id in [
            "1.2.156.3005.2.11100000000013338W087.11370800MB28559184.37080001202411010001.001.3",
            "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.002.S",
            "1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.002.0",
        ] {
            licence_id(id).unwrap_or_else(|e| panic!("{id}: {e}"));
        }
    }

    #[test]
    fn every_changed_check_character_is_refused() {
        let body = &EXAMPLE[..EXAMPLE.len() - 1];
        for c in LICENCE_ALPHABET
            .iter()
            .map(|b| *b as char)
            .filter(|c| *c != 'U')
        {
            assert_eq!(
                licence_id(&format!("{body}{c}")).unwrap_err().code,
                "checksum",
                "{c}"
            );
        }
        // A single changed character of the serial is caught too.
        let tampered = EXAMPLE.replace("20230000403", "20230000404");
        assert_eq!(licence_id(&tampered).unwrap_err().code, "checksum");
    }

    #[test]
    fn malformed_identifiers_name_their_reason() {
        let code = |id: &str| licence_id(id).unwrap_err().code;
        assert_eq!(
            code("1.2.156.3005.3.11100000000013338W011.11430000006122244L.20230000403.001.U"),
            "format"
        );
        assert_eq!(
            code("1.2.156.3005.2.11100000000013338W011.11430000006122244L.001.U"),
            "format"
        );
        assert_eq!(
            code("1.2.156.3005.2.11100000000013338W01.11430000006122244L.20230000403.001.U"),
            "length"
        );
        assert_eq!(
            code("1.2.156.3005.2.11100000000013338X011.11430000006122244L.20230000403.001.U"),
            "checksum"
        );
        assert_eq!(
            code("1.2.156.3005.2.11100000000013338W011.11430000006122244L.2023000040a.001.U"),
            "format"
        );
        assert_eq!(
            code("1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.01.U"),
            "format"
        );
        assert_eq!(
            code("1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.UU"),
            "format"
        );
        assert_eq!(licence_check_char(""), None);
        assert_eq!(licence_check_char("abc"), None);
    }
}
