//! Electronic licences (电子证照): what departments issue, kept with the case and reusable as
//! evidence, each named by a GB/T 36904-2018 identifier and found by its holder.
//!
//! When a step is approved, the orchestrator hands it to [`record_if_issued`]. If its matter
//! issues a licence (the table [`KINDS`]), the licence is stored: kind and Chinese name, the
//! department's own number, the holder (a person by identity number, an enterprise by credit
//! code), the issuing department, the case and step, and the outputs as they came. One step
//! issues at most one licence (unique on case and step), so recording a step twice — a poll
//! and a callback with the same decision — stores it once, under the same identifier.
//!
//! The identifier is `1.2.156.3005.2.<type code>.<issuing authority>.<serial>.001.<check>`:
//! the type code is the issuing department's credit code and the kind's 3-digit number, the
//! issuing authority the department's credit code ([`ISSUERS`]: demo codes that pass GB 32100),
//! the serial the year of issue and 16 hexadecimal characters of SHA-256 over case id and step
//! (deterministic for one step), and the check character ISO/IEC 7064 MOD 37,36
//! ([`sdk::ids::licence_check_char`]).
//!
//! Identity numbers are answered to whoever names them, never logged.

use gateway_base::time::now_ms;
use gateway_store::licences::{HolderKind, Licence};
use gateway_store::{StepRecord, Store};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A department that issues licences, with the unified social credit code its identifiers carry.
#[derive(Debug, Clone, Copy)]
pub struct Issuer {
    /// Department id in the gateway config.
    pub department: &'static str,
    /// The authority's name.
    pub name: &'static str,
    /// Its unified social credit code (demo codes, made to pass GB 32100 and GB 11714).
    pub code: &'static str,
}

/// The issuing authorities of the demo departments (福州, region 350100). Invented codes with
/// valid check characters: `11` 机构编制-机关, `12` 机构编制-事业单位.
pub const ISSUERS: &[Issuer] = &[
    Issuer {
        department: "market-regulation",
        name: "福州市市场监督管理局",
        code: "11350100003501011L",
    },
    Issuer {
        department: "public-security",
        name: "福州市公安局",
        code: "1135010000350102XC",
    },
    Issuer {
        department: "tax",
        name: "国家税务总局福州市税务局",
        code: "11350100003501038C",
    },
    Issuer {
        department: "real-estate",
        name: "福州市不动产登记中心",
        code: "123501000035010464",
    },
];

/// Where a value of a licence comes from: the step's input or its outputs, by dotted path.
#[derive(Debug, Clone, Copy)]
pub enum Field {
    /// The matter's input as sent to the department.
    Input(&'static str),
    /// What the department produced.
    Output(&'static str),
}

/// One kind of licence and how an approved step of its matter makes one. Each list of fields
/// is tried in order; the first non-empty text wins.
#[derive(Debug)]
pub struct LicenceKind {
    /// The matter that issues it.
    pub matter: &'static str,
    /// Stable machine name.
    pub kind: &'static str,
    /// Chinese name.
    pub name: &'static str,
    /// The 3 digits after the issuer's code in the type code.
    pub type_no: &'static str,
    /// Person or enterprise.
    pub holder_kind: HolderKind,
    /// The holder's identity number or credit code.
    pub holder_id: &'static [Field],
    /// The holder's name.
    pub holder_name: &'static [Field],
    /// The licence's own number, as the department wrote it.
    pub number: &'static [Field],
}

/// Which approved matters issue which licence.
pub const KINDS: &[LicenceKind] = &[
    LicenceKind {
        matter: "market-regulation.business-licence",
        kind: "business_licence",
        name: "营业执照",
        type_no: "001",
        holder_kind: HolderKind::Enterprise,
        holder_id: &[Field::Output("credit_code")],
        holder_name: &[
            Field::Output("enterprise_name"),
            Field::Input("enterprise_name"),
        ],
        number: &[Field::Output("licence_no")],
    },
    LicenceKind {
        matter: "market-regulation.food-permit",
        kind: "food_permit",
        name: "食品经营许可证",
        type_no: "002",
        holder_kind: HolderKind::Enterprise,
        holder_id: &[Field::Input("credit_code")],
        holder_name: &[Field::Input("enterprise_name")],
        number: &[Field::Output("permit_no")],
    },
    LicenceKind {
        matter: "public-security.seal-filing",
        kind: "seal_filing",
        name: "印章备案回执",
        type_no: "001",
        holder_kind: HolderKind::Enterprise,
        holder_id: &[Field::Input("credit_code")],
        holder_name: &[Field::Input("enterprise_name")],
        number: &[Field::Output("filing_no")],
    },
    LicenceKind {
        matter: "tax.registration",
        kind: "tax_registration",
        name: "税务登记信息",
        type_no: "001",
        holder_kind: HolderKind::Enterprise,
        holder_id: &[Field::Output("taxpayer_id"), Field::Input("credit_code")],
        holder_name: &[Field::Input("enterprise_name")],
        number: &[Field::Output("taxpayer_id"), Field::Input("credit_code")],
    },
    LicenceKind {
        matter: "tax.deed-tax",
        kind: "deed_tax_receipt",
        name: "契税完税证明",
        type_no: "002",
        holder_kind: HolderKind::Person,
        holder_id: &[Field::Input("buyer.id_number")],
        holder_name: &[Field::Input("buyer.name")],
        number: &[Field::Output("tax_receipt_no")],
    },
    LicenceKind {
        matter: "real-estate.transfer",
        kind: "property_certificate",
        name: "不动产权证书",
        type_no: "001",
        holder_kind: HolderKind::Person,
        holder_id: &[Field::Input("buyer.id_number")],
        holder_name: &[Field::Input("buyer.name")],
        number: &[Field::Output("certificate_number")],
    },
];

/// The version part of every identifier issued here.
const VERSION: &str = "001";

/// The kind of licence a matter issues, if any.
pub fn kind_of(matter: &str) -> Option<&'static LicenceKind> {
    KINDS.iter().find(|k| k.matter == matter)
}

/// The issuing authority of a department, if it issues licences.
pub fn issuer_of(department: &str) -> Option<&'static Issuer> {
    ISSUERS.iter().find(|i| i.department == department)
}

/// The identifier of the licence one step issues: deterministic for the step.
pub fn identifier(
    issuer: &Issuer,
    kind: &LicenceKind,
    case_id: &str,
    step: &str,
    issued_at: i64,
) -> String {
    let year = sdk::ids::Date::from_days_since_epoch((issued_at / 1000 + 8 * 3600) / 86_400).year;
    let digest = Sha256::digest(format!("{case_id}/{step}").as_bytes());
    let serial = format!("{year:04}{}", hex::encode_upper(&digest[..8]));
    let type_code = format!("{}{}", issuer.code, kind.type_no);
    let body = format!("{type_code}{}{serial}{VERSION}", issuer.code);
    let check = sdk::ids::licence_check_char(&body).unwrap_or('0');
    format!(
        "{}.{type_code}.{}.{serial}.{VERSION}.{check}",
        sdk::ids::LICENCE_ROOT,
        issuer.code
    )
}

fn text_at<'v>(value: &'v Value, path: &str) -> Option<&'v str> {
    path.split('.')
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn first_text(fields: &[Field], input: &Value, outputs: &Value) -> Option<String> {
    fields.iter().find_map(|f| {
        match f {
            Field::Input(p) => text_at(input, p),
            Field::Output(p) => text_at(outputs, p),
        }
        .map(str::to_string)
    })
}

/// Why an approved step of a licence-issuing matter made no licence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotIssued {
    /// The department is not in [`ISSUERS`].
    #[error("department `{0}` has no issuing authority code")]
    NoIssuer(String),
    /// A value the licence needs is missing from the step.
    #[error("the step carries no {0}")]
    Missing(&'static str),
}

/// The licence an approved step issues: `Ok(None)` when its matter issues none.
pub fn issue(
    step: &StepRecord,
    input: &Value,
    outputs: &Value,
    issued_at: i64,
) -> Result<Option<Licence>, NotIssued> {
    let Some(kind) = kind_of(&step.matter) else {
        return Ok(None);
    };
    let issuer =
        issuer_of(&step.department).ok_or_else(|| NotIssued::NoIssuer(step.department.clone()))?;
    let holder_id =
        first_text(kind.holder_id, input, outputs).ok_or(NotIssued::Missing("holder id"))?;
    let number = first_text(kind.number, input, outputs).ok_or(NotIssued::Missing("number"))?;
    Ok(Some(Licence {
        id: identifier(issuer, kind, &step.case_id, &step.step, issued_at),
        kind: kind.kind.into(),
        name: kind.name.into(),
        number,
        holder_kind: kind.holder_kind,
        holder_id,
        holder_name: first_text(kind.holder_name, input, outputs),
        issuer: step.department.clone(),
        case_id: step.case_id.clone(),
        step: step.step.clone(),
        issued_at,
        data: outputs.to_string(),
    }))
}

/// Called when a step becomes approved: store the licence its matter issues, if any. Never
/// fails the step: problems are logged (identity numbers masked). `outputs` are the outputs
/// just recorded (the step's stored ones when `None`). Returns the licence's identifier.
pub async fn record_if_issued(
    store: &Store,
    step: &StepRecord,
    outputs: Option<&str>,
) -> Option<String> {
    kind_of(&step.matter)?;
    let input: Value = serde_json::from_str(&step.input).unwrap_or(Value::Null);
    let outputs = match outputs {
        Some(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        None => step.outputs.clone(),
    };
    let licence = match issue(step, &input, &outputs, now_ms()) {
        Ok(licence) => licence?,
        Err(e) => {
            tracing::warn!(case = %step.case_id, step = %step.step, matter = %step.matter, reason = %e, "approved step issued no licence");
            return None;
        }
    };
    match store.insert_licence(&licence).await {
        Ok(true) => {
            tracing::info!(case = %step.case_id, step = %step.step, licence = %licence.id, kind = %licence.kind, holder = %gateway_base::redact::redact(&licence.holder_id), "licence issued");
        }
        Ok(false) => {
            tracing::debug!(case = %step.case_id, step = %step.step, "licence already recorded");
        }
        Err(e) => {
            tracing::error!(case = %step.case_id, step = %step.step, error = %gateway_base::redact::redact(&e.to_string()), "storing a licence failed");
            return None;
        }
    }
    Some(licence.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_base::model::StepState;
    use gateway_store::NewStep;
    use serde_json::json;

    fn step(case_id: &str, step: &str, matter: &str, department: &str, input: Value) -> StepRecord {
        StepRecord {
            case_id: case_id.into(),
            step: step.into(),
            matter: matter.into(),
            department: department.into(),
            state: StepState::Approved,
            reference: None,
            outputs: json!({}),
            message: None,
            input: input.to_string(),
            attempts: 0,
            idempotency_key: format!("{case_id}:{step}"),
            updated_at: 0,
        }
    }

    #[test]
    fn issuer_codes_pass_gb_32100_and_every_kind_has_an_issuer() {
        for issuer in ISSUERS {
            sdk::ids::credit_code(issuer.code)
                .unwrap_or_else(|e| panic!("{}: {e}", issuer.department));
        }
        for kind in KINDS {
            let department = kind.matter.split('.').next().unwrap();
            assert!(issuer_of(department).is_some(), "{}", kind.matter);
            assert!(kind.type_no.len() == 3 && kind.type_no.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn a_business_licence_is_held_by_the_new_enterprise_under_a_checked_identifier() {
        let s = step(
            "0190-case",
            "licence",
            "market-regulation.business-licence",
            "market-regulation",
            json!({"enterprise_name": "福州演示科技有限公司"}),
        );
        let outputs = json!({"credit_code": "91350100M000100Y43", "licence_no": "350100000012345"});
        let at = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        let l = issue(&s, &Value::Null, &outputs, at).unwrap().unwrap();
        sdk::ids::licence_id(&l.id).unwrap_or_else(|e| panic!("{}: {e}", l.id));
        assert!(l.id.starts_with("1.2.156.3005.2.11350100003501011L001.11350100003501011L.2026"));
        assert_eq!(
            (l.holder_kind.as_str(), l.holder_id.as_str()),
            ("enterprise", "91350100M000100Y43")
        );
        assert_eq!(l.number, "350100000012345");
        assert_eq!(l.holder_name, None, "input passed as null here");
        // Deterministic for one step, different for another.
        assert_eq!(
            issue(&s, &Value::Null, &outputs, at).unwrap().unwrap().id,
            l.id
        );
        let other = step("0190-case", "licence2", &s.matter, &s.department, json!({}));
        assert_ne!(
            issue(&other, &Value::Null, &outputs, at)
                .unwrap()
                .unwrap()
                .id,
            l.id
        );
    }

    #[test]
    fn a_deed_tax_proof_is_held_by_the_buyer() {
        let input = json!({"buyer": {"name": "李四", "id_number": "34052419800101001X"}});
        let s = step("c", "deed_tax", "tax.deed-tax", "tax", input.clone());
        let l = issue(
            &s,
            &input,
            &json!({"tax_receipt_no": "QS2026000001", "tax_due": "36000.00"}),
            0,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (
                l.holder_kind.as_str(),
                l.holder_id.as_str(),
                l.holder_name.as_deref()
            ),
            ("person", "34052419800101001X", Some("李四"))
        );
        assert_eq!(l.number, "QS2026000001");
        // Missing values are a reason, not a licence without a holder.
        assert_eq!(
            issue(&s, &json!({}), &json!({"tax_receipt_no": "x"}), 0),
            Err(NotIssued::Missing("holder id"))
        );
        // A matter that issues nothing.
        let s = step("c", "x", "tax.clearance", "tax", json!({}));
        assert_eq!(issue(&s, &json!({}), &json!({}), 0), Ok(None));
    }

    #[tokio::test]
    async fn recording_twice_stores_one_licence_found_by_holder_and_case() {
        let path = std::env::temp_dir().join(format!("licences-{}.db", uuid::Uuid::new_v4()));
        let store = Store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let input =
            json!({"credit_code": "91350100M000100Y43", "enterprise_name": "福州演示科技有限公司"});
        store
            .create_case(
                "case-1",
                "public-security.seal-filing",
                &input,
                &json!({}),
                &[NewStep {
                    step: "main".into(),
                    matter: "public-security.seal-filing".into(),
                    department: "public-security".into(),
                    after: vec![],
                    input: input.to_string(),
                }],
                &Default::default(),
            )
            .await
            .unwrap();
        let s = &store.steps("case-1").await.unwrap()[0];
        let outputs = r#"{"filing_no":"GA2025010100000001"}"#;
        let first = record_if_issued(&store, s, Some(outputs)).await.unwrap();
        let again = record_if_issued(&store, s, Some(outputs)).await.unwrap();
        assert_eq!(first, again);
        let held = store
            .licences_of_holder(HolderKind::Enterprise, "91350100M000100Y43")
            .await
            .unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].number, "GA2025010100000001");
        assert_eq!(held[0].holder_name.as_deref(), Some("福州演示科技有限公司"));
        assert_eq!(store.licences_of_case("case-1").await.unwrap(), held);
        assert_eq!(store.licence(&first).await.unwrap().as_ref(), held.first());
        let cases = store
            .cases_of_enterprise("91350100M000100Y43")
            .await
            .unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].0, "case-1");
        assert!(
            store
                .cases_of_enterprise("91110000600037341L")
                .await
                .unwrap()
                .is_empty()
        );
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
