//! Property tests (the sdk's fuzz targets): identifier checks, payload reading and the XML
//! readers take whatever a portal or a department sends, so on any input they answer and never
//! panic. Each property runs proptest's default 256 cases, or `PROPTEST_CASES` when set:
//! `PROPTEST_CASES=100000 cargo test -p gateway-sdk --test fuzz` runs longer.

use proptest::prelude::*;
use sdk::ids::{self, Date};
use sdk::payload::{Checker, Person, parse_checked};
use sdk::xml::{self, Node};
use serde::Deserialize;

/// A fixed day, so generated birth dates are judged the same whenever the test runs.
const TODAY: Date = Date {
    year: 2026,
    month: 11,
    day: 22,
};

const RESIDENT_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const RESIDENT_CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
const CREDIT_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Text that looks like what applicants and departments send: Chinese, ASCII, control
/// characters, characters GBK has no code for, markup.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9A-Z]{0,20}",
        "[\\u{4e00}-\\u{9fa5}（）()·]{0,12}",
        "[\\x00-\\x1f<>&\"'\\\\]{0,8}",
        "[😀\\u{e000}\\u{10ffff}]{1,4}",
    ]
}

/// A valid resident identity number: a birth date that exists, its check character computed.
fn resident_id() -> impl Strategy<Value = String> {
    ("[0-9]{6}", 1900u16..=2025, 1u8..=12, 1u8..=28, "[0-9]{3}").prop_map(
        |(region, year, month, day, sequence)| {
            let first17 = format!("{region}{year:04}{month:02}{day:02}{sequence}");
            let sum: u32 = first17
                .chars()
                .zip(RESIDENT_WEIGHTS)
                .map(|(c, w)| c.to_digit(10).unwrap() * w)
                .sum();
            format!("{first17}{}", RESIDENT_CHECK[(sum % 11) as usize])
        },
    )
}

/// A valid unified social credit code: 17 characters of its alphabet and the computed check.
fn credit_code() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(CREDIT_ALPHABET.as_bytes()), 17).prop_map(
        |first17| {
            let first17 = String::from_utf8(first17).unwrap();
            let check =
                ids::credit_code_check_char(&first17).expect("17 characters of the alphabet");
            format!("{first17}{check}")
        },
    )
}

/// Replace the character at `at` (modulo the length) by another from `alphabet`.
fn mutate_one(value: &str, at: usize, pick: usize, alphabet: &str) -> String {
    let mut chars: Vec<char> = value.chars().collect();
    let at = at % chars.len();
    let others: Vec<char> = alphabet.chars().filter(|c| *c != chars[at]).collect();
    chars[at] = others[pick % others.len()];
    chars.into_iter().collect()
}

proptest! {
    #[test]
    fn identifier_checks_answer_any_text(value in text()) {
        let _ = ids::resident_id_on(&value, TODAY);
        let _ = ids::resident_id(&value);
        let _ = ids::credit_code(&value);
        let _ = ids::real_estate_unit(&value);
        let _ = ids::real_estate_certificate(&value);
        let _ = ids::credit_code_check_char(&value);
        let _ = ids::organisation_code_check_char(&value);
        let masked = ids::mask(&value);
        prop_assert_eq!(masked.chars().count(), value.chars().count());
    }

    #[test]
    fn generated_resident_ids_pass_and_one_changed_character_fails(
        id in resident_id(), at in 0usize..18, pick in any::<usize>()
    ) {
        let checked = ids::resident_id_on(&id, TODAY);
        prop_assert!(checked.is_ok(), "{}: {:?}", id, checked);
        // Weights and the modulus 11 are coprime: any single substitution changes the check.
        let alphabet = if at == 17 { "0123456789X" } else { "0123456789" };
        let changed = mutate_one(&id, at, pick, alphabet);
        prop_assert!(ids::resident_id_on(&changed, TODAY).is_err(), "{} accepted", changed);
    }

    #[test]
    fn generated_credit_codes_pass_and_one_changed_character_fails(
        code in credit_code(), at in 0usize..18, pick in any::<usize>(), outside in "[a-zIOSVZ中]"
    ) {
        prop_assert!(ids::credit_code(&code).is_ok(), "{}", code);
        let changed = mutate_one(&code, at, pick, CREDIT_ALPHABET);
        prop_assert_eq!(ids::credit_code(&changed).map_err(|p| p.code), Err("checksum"));
        let foreign = mutate_one(&code, at, 0, &outside);
        prop_assert_eq!(ids::credit_code(&foreign).map_err(|p| p.code), Err("format"));
    }

    #[test]
    fn payloads_are_read_or_refused_with_field_problems(body in json_text()) {
        #[derive(Debug, Default, Deserialize)]
        #[serde(default)]
        struct Payload {
            credit_code: Option<String>,
            legal_representative: Option<Person>,
            price: Option<f64>,
        }
        let result = parse_checked(&body, |p: &Payload| {
            let mut c = Checker::new();
            let (name, id_number) = sdk::payload::person(&p.legal_representative);
            c.required("legal_representative.name", name);
            c.resident_id("legal_representative.id_number", id_number);
            c.credit_code("credit_code", sdk::payload::present(&p.credit_code));
            c.into_problems()
        });
        if let Err(problems) = result {
            prop_assert!(!problems.is_empty());
            for p in &problems {
                prop_assert!(!p.code.is_empty() && !p.message.is_empty(), "{:?}", p);
            }
        }
    }

    #[test]
    fn xml_readers_answer_any_bytes(bytes in xml_bytes()) {
        let _ = xml::declared_encoding(&bytes);
        let _ = xml::decode_gbk(&bytes);
        if let Ok(text) = xml::decode(&bytes) {
            if let Ok(root) = Node::parse(&text) {
                let _ = root.require("code");
                if let Ok(Err(fault)) = xml::soap_body(&root) {
                    let _ = (fault.is_client(), fault.detail("errorCode"));
                }
            }
        }
    }

    #[test]
    fn gbk_round_trips_what_it_encodes(value in text()) {
        if let Ok(bytes) = xml::encode_gbk(&value) {
            prop_assert_eq!(xml::decode_gbk(&bytes), Ok(value));
        }
    }
}

/// JSON texts: arbitrary values with the payload's field names, and arbitrary text.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
        resident_id().prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(6, 48, 6, |inner| {
        let key = prop_oneof![
            Just("credit_code".to_string()),
            Just("legal_representative".to_string()),
            Just("name".to_string()),
            Just("id_number".to_string()),
            Just("price".to_string()),
            text(),
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        4 => value.prop_map(|v| v.to_string()),
        1 => text(),
        1 => (1usize..2000).prop_map(|depth| "[".repeat(depth)),
        1 => Just("1e999".to_string()),
    ]
}

/// Bytes for the XML readers: arbitrary, GBK-encoded documents, envelopes and faults, and those
/// cut short, under any encoding declaration.
fn xml_bytes() -> impl Strategy<Value = Vec<u8>> {
    let declaration = prop_oneof![
        Just(String::new()),
        Just(r#"<?xml version="1.0" encoding="GBK"?>"#.to_string()),
        Just(r#"<?xml version="1.0" encoding="UTF-8"?>"#.to_string()),
        Just(r#"<?xml version="1.0" encoding="UTF-16"?>"#.to_string()),
        "<\\?xml version=\"1.0\" encoding=['\"]?[a-zA-Z0-9-]{0,12}['\"]?\\?>",
        Just("<?xml encoding=".to_string()),
    ];
    let body = prop_oneof![
        text().prop_map(|t| format!(
            "<soap:Envelope xmlns:soap=\"{}\"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode>\
             <faultstring>{t}</faultstring><detail><errorCode>{t}</errorCode></detail></soap:Fault>\
             </soap:Body></soap:Envelope>",
            xml::SOAP_ENV
        )),
        text().prop_map(|t| format!("<response><code>00</code><message>{t}</message></response>")),
        text().prop_map(|t| format!("<a><![CDATA[{t}]]>&amp;&#x4e2d;&bogus;<b/></a>")),
        text(),
    ];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        // Nesting as deep as a department answer within the host's size limit can reach.
        (1usize..100_000).prop_map(|depth| format!(
            "{}{}",
            "<a>".repeat(depth),
            "</a>".repeat(depth)
        )
        .into_bytes()),
        (declaration, body, any::<bool>(), any::<usize>()).prop_map(|(decl, body, gbk, cut)| {
            let doc = format!("{decl}{body}");
            let mut bytes = if gbk {
                xml::encode_gbk(&doc).unwrap_or_else(|_| doc.clone().into_bytes())
            } else {
                doc.into_bytes()
            };
            if cut % 3 == 0 {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            bytes
        }),
    ]
}
