//! 补正 and 撤回 in the registry's protocol, as pure functions.
//!
//! A returned transfer reads `<zt>退回</zt>` with `<bzxx>`: `<bzzd><zd><zdmc/><yy/></zd></bzzd>`
//! the fields to correct, `<bzcl><cl><clbm/><yy/></cl></bzcl>` the materials, `<bzqx>` the due
//! date ([`requested`]). The supplement is the operation `submitSupplement` (`ywh` the
//! supplement's idempotency key, `slbh`, `<bzzd><zd><zdmc/><zdz/></zd></bzzd>` the corrected
//! fields by the registry's names, and materials as a transfer carries them, in an MTOM package
//! when there are files); the withdrawal `withdrawApplication` (`ywh`, `slbh`, `chyy`), answered
//! with the transfer's state after it (`已撤回`, or its decision).

use sdk::lifecycle::FieldMap;
use sdk::payload::{Checker, FieldProblem};
use sdk::xml::Node;
use sdk::{
    AdapterError, FieldError, Material, MaterialRequest, Receipt, StepState, SupplementRequest,
};
use serde_json::json;

use crate::protocol::{BDC_NS, Call, format_price, materials_xml, read_answer, state_of};

/// The fields of a transfer the registry takes in a supplement.
pub const TRANSFER_FIELDS: FieldMap = FieldMap(&[
    ("price", "jyjg"),
    ("buyer.name", "srfxm"),
    ("buyer.id_number", "srfzjh"),
]);

/// The `submitSupplement` envelope (GBK): the corrected fields, then the materials' elements.
pub fn supplement_envelope(
    ywh: &str,
    slbh: &str,
    payload: &str,
    materials: &[Material],
) -> Result<Vec<u8>, AdapterError> {
    let invalid = |problems: Vec<FieldProblem>| {
        AdapterError::InvalidInput(problems.into_iter().map(Into::into).collect())
    };
    let corrections = TRANSFER_FIELDS
        .corrections(payload)
        .map_err(|e| invalid(e.problems))?;
    let mut c = Checker::new();
    let mut fields = String::new();
    for (name, path, value) in corrections {
        let value = match name {
            "jyjg" => match value.parse::<f64>() {
                Ok(p) if p.is_finite() && p >= 0.01 => format_price(p),
                _ => {
                    c.problem(&path, "range", "成交价格须至少为0.01元");
                    continue;
                }
            },
            "srfzjh" => {
                c.resident_id(&path, Some(&value));
                value
            }
            _ => value,
        };
        fields.push_str(&format!(
            "<zd>{}</zd>",
            sdk::xml::elements(&[("zdmc", name), ("zdz", &value)])
        ));
    }
    c.finish().map_err(|e| invalid(e.problems))?;
    let xml = sdk::xml::soap_envelope(
        "GBK",
        "bdc",
        BDC_NS,
        "submitSupplement",
        &[("ywh", ywh), ("slbh", slbh)],
    );
    let close = "</bdc:submitSupplement>";
    let at = xml.rfind(close).expect("the operation element closes");
    let bzzd = if fields.is_empty() {
        String::new()
    } else {
        format!("<bzzd>{fields}</bzzd>")
    };
    let xml = format!(
        "{}{bzzd}{}{}",
        &xml[..at],
        materials_xml(materials),
        &xml[at..]
    );
    sdk::xml::encode_gbk(&xml).map_err(|_| {
        AdapterError::InvalidInput(vec![FieldError::new(
            "",
            "encoding",
            "含有GBK编码无法表示的字符",
        )])
    })
}

/// The `withdrawApplication` envelope.
pub fn withdrawal_envelope(ywh: &str, slbh: &str, reason: &str) -> Result<Vec<u8>, AdapterError> {
    let reason = match reason.trim() {
        "" => "申请人主动撤回",
        reason => reason,
    };
    let xml = sdk::xml::soap_envelope(
        "GBK",
        "bdc",
        BDC_NS,
        "withdrawApplication",
        &[("ywh", ywh), ("slbh", slbh), ("chyy", reason)],
    );
    // A reason GBK cannot hold is written as a character reference: the registry reads it.
    let xml: String = xml
        .chars()
        .map(|ch| {
            if sdk::xml::encode_gbk(ch.encode_utf8(&mut [0; 4])).is_ok() {
                ch.to_string()
            } else {
                format!("&#{};", u32::from(ch))
            }
        })
        .collect();
    sdk::xml::encode_gbk(&xml).map_err(|e| AdapterError::Internal(e.to_string()))
}

/// What `<bzxx>` asks, in the unified names; a return without it asks nothing the registry
/// said (`None`).
pub fn requested(node: &Node) -> Result<Option<SupplementRequest>, AdapterError> {
    let Some(bzxx) = node.find("bzxx") else {
        return Ok(None);
    };
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
        let field = TRANSFER_FIELDS.unified(&text(&zd, "zdmc")?);
        fields.push(FieldError::new(field, "rule", text(&zd, "yy")?));
    }
    let mut materials = Vec::new();
    for cl in entries("bzcl", "cl") {
        materials.push(MaterialRequest::new(text(&cl, "clbm")?, text(&cl, "yy")?));
    }
    let due = bzxx
        .child("bzqx")
        .map(|d| d.text.clone())
        .filter(|d| !d.is_empty());
    Ok(Some(SupplementRequest {
        fields,
        materials,
        due,
    }))
}

/// The receipt of `submitSupplement` or `withdrawApplication` (`expected` its response
/// element): the transfer's state after it, with the new certificate when it was registered
/// first. Faults as for a submission ([`crate::protocol::fault_error`]): `E202` (not returned:
/// nothing to supplement) and `E105` (no such 受理编号) are `Rejected` with their code.
pub fn read_action(status: u16, body: &[u8], expected: &str) -> Result<Receipt, AdapterError> {
    let node = read_answer(status, body, expected, Call::Submit)?;
    let slbh = node
        .text_of("slbh")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AdapterError::Protocol("answer has no <slbh>".into()))?;
    let zt = node
        .text_of("zt")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AdapterError::Protocol("answer has no <zt>".into()))?;
    let mut receipt = Receipt::new(slbh, state_of(zt)?);
    receipt.message = Some(zt.to_string());
    match receipt.state {
        StepState::Approved => {
            let certificate = node
                .text_of("xbdcqzh")
                .filter(|s| !s.is_empty())
                .ok_or_else(|| AdapterError::Protocol("登簿 without <xbdcqzh>".into()))?;
            receipt.outputs = json!({ "certificate_number": certificate }).to_string();
        }
        StepState::Returned => receipt.requested = requested(&node)?,
        _ => {}
    }
    Ok(receipt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdk::xml::decode;

    fn text(bytes: &[u8]) -> String {
        decode(bytes).unwrap()
    }

    #[test]
    fn a_supplement_names_the_registrys_fields_in_gbk() {
        let envelope = supplement_envelope("K1", "BDC1", r#"{"price": 950000}"#, &[]).unwrap();
        let xml = text(&envelope);
        assert!(xml.contains("<bdc:submitSupplement>"), "{xml}");
        assert!(
            xml.contains("<bzzd><zd><zdmc>jyjg</zdmc><zdz>950000.00</zdz></zd></bzzd>"),
            "{xml}"
        );
        assert!(xml.contains("<ywh>K1</ywh><slbh>BDC1</slbh>"), "{xml}");
        let e = supplement_envelope(
            "K1",
            "BDC1",
            r#"{"price": 0, "seller": {"name": "x"}}"#,
            &[],
        )
        .unwrap_err();
        let AdapterError::InvalidInput(problems) = e else {
            panic!("{e:?}")
        };
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["seller.name"]);
        let e = supplement_envelope("K1", "BDC1", r#"{"price": 0}"#, &[]).unwrap_err();
        assert!(matches!(e, AdapterError::InvalidInput(p) if p[0].code == "range"));
    }

    #[test]
    fn answers_carry_the_state_after() {
        let answer = |inner: &str| {
            sdk::xml::encode_gbk(&format!(
                r#"<?xml version="1.0" encoding="GBK"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:bdc="http://bdc.gov.cn/ws"><soap:Body>{inner}</soap:Body></soap:Envelope>"#
            ))
            .unwrap()
        };
        let withdrawn = answer(
            "<bdc:withdrawApplicationResponse><slbh>BDC1</slbh><zt>已撤回</zt></bdc:withdrawApplicationResponse>",
        );
        let r = read_action(200, &withdrawn, "withdrawApplicationResponse").unwrap();
        assert_eq!(
            (r.reference.as_str(), r.state),
            ("BDC1", StepState::Withdrawn)
        );
        let decided = answer(
            "<bdc:withdrawApplicationResponse><slbh>BDC1</slbh><zt>登簿</zt><xbdcqzh>闽(2026)平潭不动产权第1号</xbdcqzh></bdc:withdrawApplicationResponse>",
        );
        let r = read_action(200, &decided, "withdrawApplicationResponse").unwrap();
        assert_eq!(r.state, StepState::Approved);
        assert!(r.outputs.contains("certificate_number"));
        let returned = answer(
            "<bdc:queryStatusResponse><slbh>BDC1</slbh><zt>退回</zt><bzxx><bzyy>请补正</bzyy><bzqx>2027-01-02</bzqx><bzzd><zd><zdmc>jyjg</zdmc><yy>申报成交价格低于评估价格</yy></zd></bzzd></bzxx></bdc:queryStatusResponse>",
        );
        let node = read_answer(200, &returned, "queryStatusResponse", Call::Status).unwrap();
        let asked = requested(&node).unwrap().unwrap();
        assert_eq!(asked.fields[0].field, "price");
        assert_eq!(asked.due.as_deref(), Some("2027-01-02"));
        assert!(asked.materials.is_empty());
        // The price and the contract stating it (a contract on file).
        let with_contract = answer(
            "<bdc:queryStatusResponse><slbh>BDC1</slbh><zt>退回</zt><bzxx><bzyy>请补正</bzyy><bzqx>2027-01-02</bzqx><bzzd><zd><zdmc>jyjg</zdmc><yy>申报成交价格低于评估价格</yy></zd></bzzd><bzcl><cl><clbm>sale-contract</clbm><clmc>房屋买卖合同</clmc><yy>须提交载明更正后成交价格的房屋买卖合同</yy></cl></bzcl></bzxx></bdc:queryStatusResponse>",
        );
        let node = read_answer(200, &with_contract, "queryStatusResponse", Call::Status).unwrap();
        let asked = requested(&node).unwrap().unwrap();
        assert_eq!(asked.fields[0].field, "price");
        assert_eq!(asked.materials[0].code, "sale-contract");
        assert!(asked.materials[0].reason.contains("更正后"));
        let supplemented = answer(
            "<bdc:submitSupplementResponse><slbh>BDC1</slbh><zt>受理</zt></bdc:submitSupplementResponse>",
        );
        let r = read_action(200, &supplemented, "submitSupplementResponse").unwrap();
        assert_eq!(r.state, StepState::Accepted);
    }

    #[test]
    fn a_withdrawal_reason_is_gbk() {
        let xml = text(&withdrawal_envelope("K2", "BDC1", "不再购买").unwrap());
        assert!(xml.contains("<chyy>不再购买</chyy>"), "{xml}");
        let xml = text(&withdrawal_envelope("K2", "BDC1", " ").unwrap());
        assert!(xml.contains("<chyy>申请人主动撤回</chyy>"), "{xml}");
    }
}
