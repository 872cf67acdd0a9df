//! 补正, 撤回 and the filing query at public security (PROTOCOLS.md, "Public security",
//! "Supplements and withdrawals").
//!
//! A filing is decided at once, as before, except when its 印章印模 (`seal-impression`) is an
//! image of less than [`MIN_IMPRESSION_BYTES`]: too small for the department to read the
//! impression, it is numbered and returned (`blzt` 2 退回补正) with `<bzxx>` (`bzyy`, `bzqx`,
//! `<bzcl><cl><clbm/><clmc/><yy/></cl></bzcl>`). The answer of every filing now says its
//! `blzt` (1 已备案, 2 退回补正, 3 已撤回).
//!
//! - 补正 `POST /gaxt/kzbz`: `<request><requestId/><babh/>` the corrected fields (`qymc`,
//!   `fddbr`, `yzlx`) and `<cllb>` as on a filing (files base64 in `<nr>`); decided at once:
//!   filed (1) when the impression now readable came, else returned again (2).
//! - 撤回 `POST /gaxt/kzch`: `<requestId/><babh/><chyy/>`; a returned filing becomes 3 for good,
//!   a filed one answers 1 (the decision stands).
//! - 查询 `POST /gaxt/kzcx`: `<requestId/><babh/>`, the filing's `blzt` (and `bzxx`).
//!
//! Supplement and withdrawal are idempotent on `requestId`; an unknown `babh` is code `40`, a
//! supplement of a filing not returned `41`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::json;

use super::{
    PublicSecurity, Refusal, answer, check_content_type, error, invalid, licence_refusal,
    materials, parse_document, parse_request, stream,
};
use crate::actions::ActionKind;
use crate::common::{self, Answer, ReceivedMaterial};
use crate::xml::esc;

/// 备案补正.
pub(super) const KZBZ_PATH: &str = "/gaxt/kzbz";
/// 备案撤回.
pub(super) const KZCH_PATH: &str = "/gaxt/kzch";
/// 备案查询.
pub(super) const KZCX_PATH: &str = "/gaxt/kzcx";

/// The smallest impression image the department can read.
pub(super) const MIN_IMPRESSION_BYTES: u64 = 8 * 1024;

const IMPRESSION: (&str, &str) = ("seal-impression", "印章印模");

/// How long the applicant has to supplement, in days.
const DUE_DAYS: i64 = 10;

/// One filing, by its 备案编号.
#[derive(Debug)]
pub(super) struct Filing {
    /// The enterprise's credit code: the holder of a licence a supplement names.
    tyshxydm: String,
    /// Returned for a readable impression (blzt 2) until it comes.
    impression_asked: bool,
    withdrawn: bool,
    bzqx: String,
}

/// Whether `materials` carry an impression too small to read.
fn unreadable_impression(materials: &[ReceivedMaterial]) -> bool {
    materials.iter().any(|m| {
        m.code == IMPRESSION.0 && m.kind == "file" && m.size.unwrap_or(0) < MIN_IMPRESSION_BYTES
    })
}

/// Whether `materials` carry a readable impression.
fn readable_impression(materials: &[ReceivedMaterial]) -> bool {
    materials.iter().any(|m| {
        m.code == IMPRESSION.0 && m.kind == "file" && m.size.unwrap_or(0) >= MIN_IMPRESSION_BYTES
    })
}

fn due_date() -> String {
    common::beijing_date(common::beijing_now() + time::Duration::days(DUE_DAYS))
}

impl Filing {
    /// A filing with these materials, decided: returned when its impression cannot be read.
    pub(super) fn new(tyshxydm: &str, materials: &[ReceivedMaterial]) -> Filing {
        Filing {
            tyshxydm: tyshxydm.to_owned(),
            impression_asked: unreadable_impression(materials),
            withdrawn: false,
            bzqx: due_date(),
        }
    }

    fn blzt(&self) -> (&'static str, &'static str) {
        if self.withdrawn {
            ("3", "已撤回")
        } else if self.impression_asked {
            ("2", "退回补正")
        } else {
            ("1", "已备案")
        }
    }

    /// `<blzt>` and, when returned, `<bzxx>`.
    pub(super) fn state_xml(&self) -> String {
        let (blzt, name) = self.blzt();
        let bzxx = if blzt == "2" {
            format!(
                "<bzxx><bzyy>印章印模图像无法辨识，请补正</bzyy><bzqx>{}</bzqx><bzcl><cl><clbm>{}</clbm><clmc>{}</clmc><yy>印模图像过小（不足{}KB），请上传清晰的印模图像</yy></cl></bzcl></bzxx>",
                self.bzqx,
                IMPRESSION.0,
                IMPRESSION.1,
                MIN_IMPRESSION_BYTES / 1024
            )
        } else {
            String::new()
        };
        format!("<blzt>{blzt}</blzt><blztmc>{name}</blztmc>{bzxx}")
    }
}

impl PublicSecurity {
    fn unknown(&self) -> Answer {
        error(&self.sim, "40", "备案编号不存在", "unknown_babh")
    }

    /// Whether filing `babh` is returned: its enterprise's credit code, or the refusal (`40`,
    /// `41`).
    fn returned(&self, babh: &str) -> Result<String, Answer> {
        let filings = self.filings.lock().unwrap_or_else(|e| e.into_inner());
        match filings.get(babh).map(|f| (f.blzt(), f.tyshxydm.clone())) {
            None => {
                drop(filings);
                Err(self.unknown())
            }
            Some((("2", _), tyshxydm)) => Ok(tyshxydm),
            Some(((_, name), _)) => {
                drop(filings);
                Err(error(
                    &self.sim,
                    "41",
                    &format!("当前状态不可补正：{name}"),
                    "not_returned",
                ))
            }
        }
    }
}

pub(super) async fn kzbz(
    State(ps): State<Arc<PublicSecurity>>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let sim = &ps.sim;
    if let Err(e) = check_content_type(&headers) {
        return invalid(sim, &e);
    }
    let split = match stream::split(body, sim.faults().corrupt_materials).await {
        Ok(split) => split,
        Err(e) => return invalid(sim, &e),
    };
    let req = match parse_document(&split.skeleton) {
        Ok(r) => r,
        Err(e) => return invalid(sim, &e),
    };
    let (Some(request_id), Some(babh)) = (req.field("requestId"), req.field("babh")) else {
        return invalid(sim, "缺少requestId或babh");
    };
    let actions = &sim.actions;
    if actions.answered(ActionKind::Supplement, request_id) {
        return actions.once(ActionKind::Supplement, request_id, || {
            unreachable!("request id {request_id} was answered")
        });
    }
    let holder = match ps.returned(babh) {
        Ok(tyshxydm) => tyshxydm,
        Err(refusal) => return refusal,
    };
    let corrected: Vec<(&str, &str)> = ["qymc", "fddbr", "yzlx"]
        .into_iter()
        .filter_map(|f| req.field(f).map(|v| (f, v)))
        .collect();
    let (mut received, licences) = match materials(&req, &split.files) {
        Ok(found) => found,
        Err(Refusal::Invalid(detail)) => return invalid(sim, &detail),
        Err(Refusal::Digest(message)) => return error(sim, "30", &message, "material_digest"),
        Err(Refusal::Base64(message)) => return error(sim, "31", &message, "material_base64"),
    };
    match ps
        .licences
        .verify_all(request_id, &licences, |_| vec![holder.as_str()])
        .await
    {
        Ok(verified) => received.extend(verified),
        Err(not) => return licence_refusal(sim, not),
    }
    actions.once(ActionKind::Supplement, request_id, || {
        ps.returned(babh)?;
        let mut filings = ps.filings.lock().unwrap_or_else(|e| e.into_inner());
        let filing = filings.get_mut(babh).expect("checked as returned");
        if readable_impression(&received) {
            filing.impression_asked = false;
        }
        filing.bzqx = due_date();
        let state = filing.state_xml();
        drop(filings);
        tracing::info!(babh, request_id, "supplement taken");
        let codes: Vec<&str> = received.iter().map(|m| m.code.as_str()).collect();
        let record = json!({"corrected": corrected.iter().map(|(k, _)| *k).collect::<Vec<_>>(), "clbm": codes});
        for mut material in received.clone() {
            material.request_id = request_id.to_owned();
            sim.record_material(material);
        }
        Ok((
            babh.to_owned(),
            record,
            answer(&format!(
                "<code>00</code><message>成功</message><babh>{}</babh>{state}",
                esc(babh)
            )),
        ))
    })
}

pub(super) async fn kzch(
    State(ps): State<Arc<PublicSecurity>>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let sim = &ps.sim;
    let req = match parse_request(&headers, &body) {
        Ok(r) => r,
        Err(e) => return invalid(sim, &e),
    };
    let (Some(request_id), Some(babh), Some(chyy)) =
        (req.field("requestId"), req.field("babh"), req.field("chyy"))
    else {
        return invalid(sim, "缺少requestId、babh或chyy");
    };
    sim.actions.once(ActionKind::Withdrawal, request_id, || {
        let mut filings = ps.filings.lock().unwrap_or_else(|e| e.into_inner());
        let Some(filing) = filings.get_mut(babh) else {
            drop(filings);
            return Err(ps.unknown());
        };
        if filing.blzt().0 == "2" {
            filing.withdrawn = true;
        }
        let state = filing.state_xml();
        drop(filings);
        tracing::info!(babh, request_id, "withdrawal taken");
        Ok((
            babh.to_owned(),
            json!({"chyy": chyy, "state": state}),
            answer(&format!(
                "<code>00</code><message>成功</message><babh>{}</babh>{state}",
                esc(babh)
            )),
        ))
    })
}

pub(super) async fn kzcx(
    State(ps): State<Arc<PublicSecurity>>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let sim = &ps.sim;
    let req = match parse_request(&headers, &body) {
        Ok(r) => r,
        Err(e) => return invalid(sim, &e),
    };
    let Some(babh) = req.field("babh") else {
        return invalid(sim, "缺少babh");
    };
    let filings = ps.filings.lock().unwrap_or_else(|e| e.into_inner());
    let Some(filing) = filings.get(babh) else {
        drop(filings);
        return ps.unknown();
    };
    let state = filing.state_xml();
    drop(filings);
    answer(&format!(
        "<code>00</code><message>成功</message><babh>{}</babh>{state}",
        esc(babh)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn impression(size: u64) -> ReceivedMaterial {
        ReceivedMaterial {
            code: IMPRESSION.0.into(),
            kind: "file".into(),
            size: Some(size),
            ..ReceivedMaterial::default()
        }
    }

    #[test]
    fn a_small_impression_is_returned_and_a_readable_one_clears_it() {
        assert!(
            Filing::new("91350100M000100Y43", &[impression(200_000)])
                .state_xml()
                .starts_with("<blzt>1</blzt>")
        );
        // No impression at all (a hall without material lists): filed as before.
        assert!(
            Filing::new("91350100M000100Y43", &[])
                .state_xml()
                .starts_with("<blzt>1</blzt>")
        );
        let mut filing = Filing::new("91350100M000100Y43", &[impression(1_000)]);
        let xml = filing.state_xml();
        assert!(xml.starts_with("<blzt>2</blzt>"), "{xml}");
        assert!(xml.contains("<clbm>seal-impression</clbm>"), "{xml}");
        assert!(!readable_impression(&[impression(1_000)]));
        assert!(readable_impression(&[impression(MIN_IMPRESSION_BYTES)]));
        filing.withdrawn = true;
        assert!(filing.state_xml().starts_with("<blzt>3</blzt>"));
    }
}
