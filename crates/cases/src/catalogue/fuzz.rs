//! Property tests (fuzz targets) for form checking: whatever JSON a portal sends as a form,
//! `check_form` answers with field problems (never a panic), a valid form has none, and a form
//! missing a required field has that `required` problem. 256 cases per property, or
//! `PROPTEST_CASES`: `PROPTEST_CASES=100000 cargo test -p gateway --lib fuzz`.

use super::*;
use proptest::prelude::*;
use serde_json::json;

/// A form with every kind of check the catalogue's schemas use: required nested objects, the
/// four identifier formats, lengths, ranges, enums, arrays, no unknown fields.
fn service() -> Service {
    let form = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["enterprise_name", "credit_code", "legal_representative", "registered_capital"],
        "properties": {
            "enterprise_name": {"type": "string", "title": "企业名称", "minLength": 1, "maxLength": 50},
            "credit_code": {"type": "string", "title": "统一社会信用代码", "format": "credit-code"},
            "legal_representative": {
                "type": "object",
                "required": ["name", "id_number"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "id_number": {"type": "string", "format": "resident-id"}
                }
            },
            "registered_capital": {"type": "number", "exclusiveMinimum": 0},
            "unit_number": {"type": "string", "format": "real-estate-unit"},
            "certificate_number": {"type": "string", "format": "real-estate-certificate"},
            "seal_types": {"type": "array", "items": {"enum": ["法定名称章", "财务专用章"]}},
            "price": {"type": "number", "minimum": 1, "maximum": 1e12}
        }
    });
    Service {
        code: "fuzz".into(),
        name: "fuzz".into(),
        kind: ServiceKind::Single,
        description: String::new(),
        steps: Vec::new(),
        lookups: Vec::new(),
        rules: Vec::new(),
        example: None,
        validator: compile(&form).expect("the form compiles"),
        form,
    }
}

fn catalogue() -> Catalogue {
    Catalogue {
        matters: BTreeMap::new(),
        services: BTreeMap::new(),
    }
}

/// Text as portals send it: Chinese, identifiers, control characters, markup, anything.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\u{4e00}-\\u{9fa5}]{0,8}",
        "[0-9X]{17,19}",
        "[\\x00-\\x1f\"\\\\<>]{0,6}",
        Just("11010519491231002X".to_string()),
        Just("91350100M000100Y43".to_string()),
    ]
}

/// Any JSON value, with the form's own field names among the keys.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        let key = prop_oneof![
            proptest::sample::select(vec![
                "enterprise_name",
                "credit_code",
                "legal_representative",
                "name",
                "id_number",
                "registered_capital",
                "unit_number",
                "certificate_number",
                "seal_types",
                "price",
            ])
            .prop_map(str::to_string),
            text(),
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            proptest::collection::btree_map(key, inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A form that passes: identifiers with computed check characters.
fn valid_form() -> impl Strategy<Value = Value> {
    let credit = proptest::collection::vec(
        proptest::sample::select("0123456789ABCDEFGHJKLMNPQRTUWXY".as_bytes()),
        17,
    )
    .prop_map(|first17| {
        let first17 = String::from_utf8(first17).expect("ASCII");
        let check = sdk::ids::credit_code_check_char(&first17).expect("17 valid characters");
        format!("{first17}{check}")
    });
    let resident = ("[0-9]{6}", 1900u16..=2020, 1u8..=12, 1u8..=28, "[0-9]{3}").prop_map(
        |(region, year, month, day, sequence)| {
            const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
            const CHECK: &[u8; 11] = b"10X98765432";
            let first17 = format!("{region}{year:04}{month:02}{day:02}{sequence}");
            let sum: u32 = first17
                .chars()
                .zip(WEIGHTS)
                .map(|(c, w)| c.to_digit(10).expect("a digit") * w)
                .sum();
            format!("{first17}{}", CHECK[(sum % 11) as usize] as char)
        },
    );
    (
        "[\\u{4e00}-\\u{9fa5}]{1,20}",
        credit,
        "[\\u{4e00}-\\u{9fa5}]{1,4}",
        resident,
        1u32..1_000_000,
    )
        .prop_map(|(enterprise, credit, name, id_number, capital)| {
            json!({
                "enterprise_name": enterprise, "credit_code": credit,
                "legal_representative": {"name": name, "id_number": id_number},
                "registered_capital": capital,
                "certificate_number": "闽(2019)平潭不动产权第0011364号",
                "unit_number": "351001012010GB01859F00040015",
            })
        })
}

const CODES: &[&str] = &[
    "required",
    "unknown_field",
    "type",
    "format",
    "length",
    "date",
    "checksum",
    "enum",
    "range",
    "invalid",
];

proptest! {
    #[test]
    fn any_form_gets_field_problems(form in any_json()) {
        let service = service();
        let problems = catalogue().check_form(&service, &form);
        prop_assert_eq!(problems.is_empty(), service.validator.is_valid(&form));
        let mut fields = std::collections::HashSet::new();
        for p in &problems {
            prop_assert!(CODES.contains(&p.code.as_str()), "{:?}", p);
            prop_assert!(!p.message.is_empty(), "{:?}", p);
            // One problem per field, told in Chinese, never the validator's own English.
            prop_assert!(fields.insert(p.field.clone()), "two problems on {}: {:?}", p.field, problems);
            prop_assert!(
                p.message.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{:?}", p
            );
            // Identity numbers never echo back in a message (redaction).
            prop_assert!(!p.message.contains("11010519491231002X"), "{:?}", p);
        }
    }

    #[test]
    fn valid_forms_pass_and_a_dropped_field_is_required(
        form in valid_form(), drop in 0usize..6
    ) {
        let service = service();
        let catalogue = catalogue();
        let problems = catalogue.check_form(&service, &form);
        prop_assert!(problems.is_empty(), "{:?}", problems);
        let (field, mut broken) = match drop {
            0 => ("enterprise_name", form.clone()),
            1 => ("credit_code", form.clone()),
            2 => ("legal_representative", form.clone()),
            3 => ("registered_capital", form.clone()),
            4 => ("legal_representative.name", form.clone()),
            _ => ("legal_representative.id_number", form.clone()),
        };
        match field.split_once('.') {
            Some((outer, inner)) => broken[outer].as_object_mut().expect("an object").remove(inner),
            None => broken.as_object_mut().expect("an object").remove(field),
        };
        let problems = catalogue.check_form(&service, &broken);
        prop_assert!(
            problems.iter().any(|p| p.field == field && p.code == "required"),
            "{}: {:?}", field, problems
        );
    }
}
