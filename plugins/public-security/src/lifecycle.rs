//! 补正, 撤回 and the filing query in the public-security protocol, as pure functions.
//!
//! Every answer about a filing carries its `blzt` (1 已备案, 2 退回补正, 3 已撤回; an answer
//! without one is a filing as before: 已备案); a returned one carries `<bzxx>` (`bzyy`, `bzqx`,
//! `<bzzd><zd><zdmc/><yy/></zd></bzzd>`, `<bzcl><cl><clbm/><yy/></cl></bzcl>`), read into the
//! unified `requested` ([`read_filing_state`]). The supplement is `POST /gaxt/kzbz`
//! (`requestId` the supplement's idempotency key, `babh`, the corrected fields by the
//! department's names, `<cllb>` as on a filing), decided at once; the withdrawal `POST
//! /gaxt/kzch` (`requestId`, `babh`, `chyy`); the query `POST /gaxt/kzcx` (`babh`).

use sdk::http::Body;
use sdk::lifecycle::FieldMap;
use sdk::xml::Node;
use sdk::{
    AdapterError, FieldError, Material, MaterialRequest, Receipt, StepState, SupplementRequest,
};

use crate::protocol::{XML_DECLARATION, document, filing_outputs, material_list, read_response};

/// 备案补正.
pub const KZBZ_PATH: &str = "/gaxt/kzbz";
/// 备案撤回.
pub const KZCH_PATH: &str = "/gaxt/kzch";
/// 备案查询.
pub const KZCX_PATH: &str = "/gaxt/kzcx";

/// The fields of a seal filing the department takes in a supplement.
pub const SEAL_FILING_FIELDS: FieldMap = FieldMap(&[
    ("enterprise_name", "qymc"),
    ("legal_representative.name", "fddbr"),
]);

/// The `kzbz` body: the corrected fields, then the materials (files streamed as base64 by the
/// host).
pub fn supplement_request(
    request_id: &str,
    babh: &str,
    payload: &str,
    materials: &[Material],
) -> Result<Body, AdapterError> {
    let corrections = SEAL_FILING_FIELDS.corrections(payload)?;
    let mut fields = vec![("requestId", request_id), ("babh", babh)];
    fields.extend(
        corrections
            .iter()
            .map(|(name, _, value)| (*name, value.as_str())),
    );
    let mut body = Body::new()
        .text(XML_DECLARATION)
        .text("<request>")
        .text(&sdk::xml::elements(&fields));
    if !materials.is_empty() {
        body = body.append(material_list(materials));
    }
    Ok(body.text("</request>"))
}

/// The `kzch` document.
pub fn withdrawal_request(request_id: &str, babh: &str, reason: &str) -> String {
    let reason = match reason.trim() {
        "" => "申请人主动撤回",
        reason => reason,
    };
    document(&[("requestId", request_id), ("babh", babh), ("chyy", reason)])
}

/// The `kzcx` document.
pub fn query_request(request_id: &str, babh: &str) -> String {
    document(&[("requestId", request_id), ("babh", babh)])
}

/// What `<bzxx>` asks, in the unified names.
fn requested(node: &Node) -> Result<SupplementRequest, AdapterError> {
    let bzxx = node
        .child("bzxx")
        .ok_or_else(|| AdapterError::Protocol("blzt 2 without <bzxx>".into()))?;
    let text = |n: &Node, name: &str| -> Result<String, AdapterError> {
        n.child(name)
            .map(|c| c.text.clone())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| AdapterError::Protocol(format!("<bzxx> entry without <{name}>")))
    };
    let entries = |list: &str, item: &str| -> Vec<Node> {
        bzxx.child(list)
            .map(|l| {
                l.children
                    .iter()
                    .filter(|c| c.name == item)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut fields = Vec::new();
    for zd in entries("bzzd", "zd") {
        let field = SEAL_FILING_FIELDS.unified(&text(&zd, "zdmc")?);
        fields.push(FieldError::new(field, "rule", text(&zd, "yy")?));
    }
    let mut materials = Vec::new();
    for cl in entries("bzcl", "cl") {
        materials.push(MaterialRequest::new(text(&cl, "clbm")?, text(&cl, "yy")?));
    }
    if fields.is_empty() && materials.is_empty() {
        return Err(AdapterError::Protocol("<bzxx> asks for nothing".into()));
    }
    let due = bzxx
        .child("bzqx")
        .map(|d| d.text.clone())
        .filter(|d| !d.is_empty());
    Ok(SupplementRequest {
        fields,
        materials,
        due,
    })
}

/// A filing's state in any answer about it (`kzba`, `kzbz`, `kzch`, `kzcx`): filed (with its
/// number as output), returned (with what is asked) or withdrawn. Refusals as
/// [`read_response`]: `40` (no such 备案编号) and `41` (not returned: nothing to supplement) are
/// `Rejected` with their code.
pub fn read_filing_state(status: u16, body: &[u8]) -> Result<Receipt, AdapterError> {
    let node = read_response(status, body)?;
    let babh = node
        .child("babh")
        .map(|c| c.text.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AdapterError::Protocol("answer has no <babh>".into()))?;
    let blzt = node
        .child("blzt")
        .map(|c| c.text.as_str())
        .filter(|t| !t.is_empty())
        .unwrap_or("1");
    let mut receipt = Receipt::new(babh, StepState::Approved);
    receipt.message = node
        .child("blztmc")
        .or_else(|| node.child("message"))
        .map(|m| m.text.clone())
        .filter(|m| !m.is_empty());
    match blzt {
        "1" => receipt.outputs = filing_outputs(babh),
        "2" => {
            receipt.state = StepState::Returned;
            receipt.requested = Some(requested(&node)?);
        }
        "3" => receipt.state = StepState::Withdrawn,
        other => {
            return Err(AdapterError::Protocol(format!(
                "unknown filing state blzt={other}"
            )));
        }
    }
    Ok(receipt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdk::http::Part;

    fn answer(inner: &str) -> Vec<u8> {
        format!(r#"<?xml version="1.0" encoding="UTF-8"?><response><code>00</code><message>成功</message>{inner}</response>"#).into_bytes()
    }

    #[test]
    fn filings_answer_their_state() {
        let filed = read_filing_state(200, &answer("<babh>GA1</babh>")).unwrap();
        assert_eq!(filed.state, StepState::Approved);
        assert!(filed.outputs.contains("GA1"));
        let returned = read_filing_state(
            200,
            &answer("<babh>GA1</babh><blzt>2</blzt><blztmc>退回补正</blztmc><bzxx><bzyy>请补正</bzyy><bzqx>2026-12-13</bzqx><bzcl><cl><clbm>seal-impression</clbm><clmc>印章印模</clmc><yy>印模图像过小</yy></cl></bzcl></bzxx>"),
        )
        .unwrap();
        assert_eq!(returned.state, StepState::Returned);
        let asked = returned.requested.unwrap();
        assert_eq!(asked.materials[0].code, "seal-impression");
        assert_eq!(asked.due.as_deref(), Some("2026-12-13"));
        let withdrawn = read_filing_state(200, &answer("<babh>GA1</babh><blzt>3</blzt>")).unwrap();
        assert_eq!(withdrawn.state, StepState::Withdrawn);
        assert!(matches!(
            read_filing_state(200, &answer("<babh>GA1</babh><blzt>2</blzt>")),
            Err(AdapterError::Protocol(_))
        ));
        let refused = r#"<?xml version="1.0" encoding="UTF-8"?><response><code>41</code><message>当前状态不可补正：已备案</message></response>"#;
        assert!(matches!(
            read_filing_state(200, refused.as_bytes()),
            Err(AdapterError::Rejected(r)) if r.code == "41"
        ));
    }

    #[test]
    fn a_supplement_names_the_departments_fields() {
        let body = supplement_request("K1", "GA1", r#"{"enterprise_name": "福州甲有限公司"}"#, &[])
            .unwrap();
        let text: String = body
            .parts()
            .iter()
            .map(|p| match p {
                Part::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                Part::Material(_) => "<material/>".into(),
            })
            .collect();
        assert!(
            text.contains("<requestId>K1</requestId><babh>GA1</babh><qymc>福州甲有限公司</qymc>"),
            "{text}"
        );
        assert!(supplement_request("K1", "GA1", r#"{"credit_code": "x"}"#, &[]).is_err());
        assert!(withdrawal_request("K2", "GA1", "").contains("<chyy>申请人主动撤回</chyy>"));
    }
}
