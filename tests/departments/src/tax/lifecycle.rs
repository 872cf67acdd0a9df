//! 补正 and 撤回 at the tax department (PROTOCOLS.md, "Tax", "Supplements and withdrawals").
//!
//! A 税务登记 whose 生产经营地址 (`scjydz`) gives no house number (no `号`) is returned at its
//! decision (`zt` 04 退回补正) with `bzxx`: the reason, the fields to correct (`bzzd`: `zdmc`,
//! `yy`), the materials to provide (`bzcl`: `clbm`, `clmc`, `yy`: a 经营场所证明 matching the
//! corrected address) and the due date (`bzqx`). The applicant's supplement (`POST
//! /api/v1/bzsq`, signed like every request: `qqid`, `slh`, `bzzd` the corrected fields by the
//! department's names, and the materials as on an application: `fjlb` files uploaded under the
//! supplement's `qqid`, `dzzz`, `rqcl`) puts it back in 受理中; at its next decision it is
//! registered when nothing asked is still missing, else returned again asking for what is.
//! A withdrawal (`POST /api/v1/cxsq`: `qqid`, `slh`, `cxyy`) of a matter not decided (01 or
//! 04) makes it 05 已撤回 for good; of one decided, it answers the decision. Both are idempotent
//! on `qqid`: a repeat gets the first answer.
//!
//! 补交容缺材料: a registration in 受理中 (01) takes a supplement with no `bzzd` whose materials
//! (`fjlb`, `dzzz`) are all ones its application promised (`rqcl`) and has not had since: they
//! are recorded like a supplement's, and the registration stays as it was (01, decided at its
//! time). Any other supplement of a registration not returned is `2008`.
//!
//! With the `lapse_returned` switch, a returned registration is ended at its next status query
//! as 03 with `ztmc` 逾期未补正 (its 补正期限 passed without a supplement).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use serde_json::{Map, Value, json};

use super::{Registration, Tax, ok, text};
use crate::actions::ActionKind;
use crate::common::{self, Answer};

/// 补正申请.
pub(super) const BZSQ_PATH: &str = "/api/v1/bzsq";
/// 撤回申请.
pub(super) const CXSQ_PATH: &str = "/api/v1/cxsq";

/// The material a return asks for with the address.
const PREMISES: (&str, &str) = ("premises-proof", "经营场所证明");

/// Fields a supplement may correct (纳税人识别号 may not change: it is the taxpayer).
const CORRECTABLE: [&str; 5] = ["nsrmc", "fddbrxm", "fddbrsfzjhm", "scjydz", "jyfw"];

/// How long the applicant has to supplement, in days.
const DUE_DAYS: i64 = 15;

/// `ztmc` of a returned registration the department ended: the supplement never came.
pub(super) const LAPSED: &str = "逾期未补正";

/// End a returned registration: 不予受理, 逾期未补正.
pub(super) fn lapse(reg: &mut Registration) {
    reg.refused = true;
    reg.lapsed = true;
    reg.asks.clear();
}

/// What a supplement is to its registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// 补正 of a returned registration (04).
    Returned,
    /// 补交容缺材料: promised materials brought to a registration in 受理中 (01).
    Promised,
}

/// 受理状态 (`zt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Zt {
    Processing,
    Done,
    Refused,
    Returned,
    Withdrawn,
}

impl Zt {
    pub(super) fn code(self) -> &'static str {
        match self {
            Zt::Processing => "01",
            Zt::Done => "02",
            Zt::Refused => "03",
            Zt::Returned => "04",
            Zt::Withdrawn => "05",
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Zt::Processing => "受理中",
            Zt::Done => "已办结",
            Zt::Refused => "不予受理",
            Zt::Returned => "退回补正",
            Zt::Withdrawn => "已撤回",
        }
    }
}

/// One thing a return asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Ask {
    /// A field to correct, by the department's name, and why.
    Field(&'static str, &'static str),
    /// A material to provide: code, name, why.
    Material(&'static str, &'static str, &'static str),
}

/// What an application with this address is asked for at its decision: with an address
/// without a house number, the address and a proof of premises matching the corrected one.
pub(super) fn asks(scjydz: &str) -> Vec<Ask> {
    if scjydz.contains('号') {
        return Vec::new();
    }
    vec![
        Ask::Field("scjydz", "生产经营地址须具体到门牌号"),
        Ask::Material(
            PREMISES.0,
            PREMISES.1,
            "请提供与更正后生产经营地址一致的经营场所证明",
        ),
    ]
}

/// The asks of a return after a supplement: the address as now given, and the proof of
/// premises unless it came with this supplement (or an earlier one).
fn asks_after(previous: &[Ask], scjydz: &str, premises_given: bool) -> Vec<Ask> {
    let mut asks = Vec::new();
    if !scjydz.contains('号') {
        asks.push(Ask::Field("scjydz", "生产经营地址须具体到门牌号"));
    }
    let premises_asked = previous
        .iter()
        .any(|a| matches!(a, Ask::Material(code, _, _) if *code == PREMISES.0));
    if premises_asked && !premises_given {
        asks.push(Ask::Material(
            PREMISES.0,
            PREMISES.1,
            "请提供与更正后生产经营地址一致的经营场所证明",
        ));
    }
    asks
}

/// `bzxx` of a returned registration.
pub(super) fn bzxx(asks: &[Ask], bzqx: &str) -> Value {
    let mut bzzd = Vec::new();
    let mut bzcl = Vec::new();
    for ask in asks {
        match ask {
            Ask::Field(zdmc, yy) => bzzd.push(json!({"zdmc": zdmc, "yy": yy})),
            Ask::Material(clbm, clmc, yy) => {
                bzcl.push(json!({"clbm": clbm, "clmc": clmc, "yy": yy}));
            }
        }
    }
    json!({
        "bzyy": "申请材料不齐全或不符合法定形式，请在补正期限内补正",
        "bzzd": bzzd,
        "bzcl": bzcl,
        "bzqx": bzqx,
    })
}

/// 补正期限: [`DUE_DAYS`] from today, Beijing date.
pub(super) fn due_date() -> String {
    common::beijing_date(common::beijing_now() + time::Duration::days(DUE_DAYS))
}

impl Registration {
    pub(super) fn zt(&self) -> Zt {
        if self.withdrawn {
            Zt::Withdrawn
        } else if Instant::now() < self.decided_at {
            Zt::Processing
        } else if self.refused {
            Zt::Refused
        } else if !self.asks.is_empty() {
            Zt::Returned
        } else {
            Zt::Done
        }
    }
}

fn state_answer(slh: &str, zt: Zt) -> Answer {
    ok(json!({"slh": slh, "zt": zt.code(), "ztmc": zt.name()}))
}

/// The corrected fields of a supplement (`bzzd`), each a correctable field with a non-empty
/// text, or the refusal's message.
fn corrections(body: &Value) -> Result<Map<String, Value>, String> {
    let bzzd = match body.get("bzzd") {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err("参数错误：bzzd须为对象".into()),
    };
    for (name, value) in bzzd {
        if !CORRECTABLE.contains(&name.as_str()) {
            return Err(format!("参数错误：补正不可更改{name}"));
        }
        if value.as_str().is_none_or(|v| v.trim().is_empty()) {
            return Err(format!("参数错误：{name}须为非空字符串"));
        }
    }
    Ok(bzzd.clone())
}

pub(super) async fn bzsq(State(tax): State<Arc<Tax>>, body: Bytes) -> Answer {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return tax.fail("1001", "参数错误：请求体不是JSON", "invalid_request");
    };
    let (Some(qqid), Some(slh)) = (text(&body, "qqid"), text(&body, "slh")) else {
        return tax.fail("1001", "参数错误：缺少qqid或slh", "invalid_request");
    };
    let actions = &tax.sim.actions;
    if actions.answered(ActionKind::Supplement, qqid) {
        return actions.once(ActionKind::Supplement, qqid, || {
            unreachable!("request id {qqid} was answered")
        });
    }
    let bzzd = match corrections(&body) {
        Ok(bzzd) => bzzd,
        Err(msg) => return tax.fail("1001", &msg, "invalid_request"),
    };
    let brought = brought_codes(&body);
    // Checked before its materials are verified at the gateway, and again once they are.
    let nsrsbh = match tax.supplementable(slh, &bzzd, &brought) {
        Ok((nsrsbh, _)) => nsrsbh,
        Err(refusal) => return refusal,
    };
    let materials = match tax.materials(qqid, &body, &[nsrsbh.as_str()]).await {
        Ok(materials) => materials,
        Err(refusal) => return refusal,
    };
    actions.once(ActionKind::Supplement, qqid, || {
        if tax.supplementable(slh, &bzzd, &brought)?.1 == Target::Promised {
            let mut regs = tax.registrations.lock().unwrap_or_else(|e| e.into_inner());
            let reg = regs.get_mut(slh).expect("checked as in hand");
            reg.promised.retain(|code| !brought.contains(code));
            drop(regs);
            tracing::info!(
                slh,
                qqid,
                materials = brought.len(),
                "promised materials taken"
            );
            let record = json!({"bzzd": {}, "clbm": brought, "rqcl": true});
            tax.keep_materials(materials);
            return Ok((slh.to_owned(), record, state_answer(slh, Zt::Processing)));
        }
        let premises_given = materials
            .iter()
            .any(|m| m.code == PREMISES.0 && m.kind != "promised");
        let codes: Vec<&str> = materials.iter().map(|m| m.code.as_str()).collect();
        let record = json!({"bzzd": bzzd, "clbm": codes});
        let mut regs = tax.registrations.lock().unwrap_or_else(|e| e.into_inner());
        let reg = regs.get_mut(slh).expect("checked as returned");
        for (name, value) in &bzzd {
            let value = value.as_str().unwrap_or_default().trim().to_owned();
            match name.as_str() {
                "scjydz" => reg.scjydz = value,
                "nsrmc" => reg.nsrmc = value,
                "fddbrsfzjhm" => reg.refused = !crate::ids::resident_id_valid(&value),
                _ => {}
            }
        }
        reg.asks = asks_after(&reg.asks, &reg.scjydz, premises_given);
        reg.decided_at = Instant::now() + tax.ticket_delay;
        let decided = time::Duration::try_from(tax.ticket_delay).unwrap_or_default();
        reg.djrq = common::beijing_date(common::beijing_now() + decided);
        reg.bzqx = due_date();
        tracing::info!(slh, qqid, still_asked = reg.asks.len(), "supplement taken");
        drop(regs);
        tax.keep_materials(materials);
        Ok((slh.to_owned(), record, state_answer(slh, Zt::Processing)))
    })
}

/// The codes of the materials a supplement brings (`fjlb` files, `dzzz` licences), each once.
fn brought_codes(body: &Value) -> Vec<String> {
    let mut codes: Vec<String> = ["fjlb", "dzzz"]
        .iter()
        .filter_map(|list| body.get(*list).and_then(Value::as_array))
        .flatten()
        .filter_map(|entry| text(entry, "clbm").map(str::to_owned))
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

impl Tax {
    /// The taxpayer of registration `slh` and what a supplement correcting `bzzd` and bringing
    /// `brought` is to it: 补正 when it is returned (04), 补交容缺材料 when it is in 受理中 (01),
    /// corrects nothing and brings only materials its application promised. Else the refusal:
    /// `2004` unknown, `2008` not in a state to be supplemented.
    fn supplementable(
        &self,
        slh: &str,
        bzzd: &Map<String, Value>,
        brought: &[String],
    ) -> Result<(String, Target), Answer> {
        let regs = self.registrations.lock().unwrap_or_else(|e| e.into_inner());
        match regs.get(slh) {
            Some(reg) if reg.zt() == Zt::Returned => Ok((reg.nsrsbh.clone(), Target::Returned)),
            Some(reg)
                if reg.zt() == Zt::Processing
                    && bzzd.is_empty()
                    && !brought.is_empty()
                    && brought.iter().all(|code| reg.promised.contains(code)) =>
            {
                Ok((reg.nsrsbh.clone(), Target::Promised))
            }
            Some(reg) => {
                let msg = format!("当前状态不可补正：{}", reg.zt().name());
                drop(regs);
                Err(self.fail("2008", &msg, "not_returned"))
            }
            None if self.deed_taxes_has(slh) => {
                drop(regs);
                Err(self.fail("2008", "当前状态不可补正", "not_returned"))
            }
            None => {
                drop(regs);
                Err(self.fail("2004", "受理号不存在", "unknown_slh"))
            }
        }
    }

    fn deed_taxes_has(&self, slh: &str) -> bool {
        self.deed_taxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(slh)
    }

    /// Withdraw `slh` if it is not decided: its state after.
    fn withdraw(&self, slh: &str) -> Option<Zt> {
        let mut regs = self.registrations.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(reg) = regs.get_mut(slh) {
            if matches!(reg.zt(), Zt::Processing | Zt::Returned) {
                reg.withdrawn = true;
            }
            return Some(reg.zt());
        }
        drop(regs);
        let mut deeds = self.deed_taxes.lock().unwrap_or_else(|e| e.into_inner());
        let deed = deeds.get_mut(slh)?;
        if !deed.withdrawn && Instant::now() < deed.decided_at {
            deed.withdrawn = true;
        }
        Some(if deed.withdrawn {
            Zt::Withdrawn
        } else {
            Zt::Done
        })
    }
}

pub(super) async fn cxsq(State(tax): State<Arc<Tax>>, body: Bytes) -> Answer {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return tax.fail("1001", "参数错误：请求体不是JSON", "invalid_request");
    };
    let (Some(qqid), Some(slh), Some(cxyy)) =
        (text(&body, "qqid"), text(&body, "slh"), text(&body, "cxyy"))
    else {
        return tax.fail("1001", "参数错误：缺少qqid、slh或cxyy", "invalid_request");
    };
    tax.sim.actions.once(ActionKind::Withdrawal, qqid, || {
        let Some(zt) = tax.withdraw(slh) else {
            return Err(tax.fail("2004", "受理号不存在", "unknown_slh"));
        };
        tracing::info!(slh, qqid, zt = zt.code(), "withdrawal taken");
        let record = json!({"cxyy": cxyy, "zt": zt.code()});
        Ok((slh.to_owned(), record, state_answer(slh, zt)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_without_a_house_number_is_returned_with_the_proof_of_premises() {
        assert!(asks("福州市鼓楼区五四路1号").is_empty());
        let asked = asks("福州市鼓楼区五四路");
        assert_eq!(asked.len(), 2);
        assert!(matches!(asked[0], Ask::Field("scjydz", _)));
        assert!(matches!(asked[1], Ask::Material("premises-proof", _, _)));
        let shown = bzxx(&asked, "2026-12-18");
        assert_eq!(shown["bzzd"][0]["zdmc"], "scjydz");
        assert_eq!(shown["bzcl"][0]["clbm"], "premises-proof");
        assert_eq!(shown["bzqx"], "2026-12-18");
    }

    #[test]
    fn a_supplement_lacking_what_was_asked_is_asked_again_for_it() {
        let asked = asks("福州市鼓楼区五四路");
        // The address corrected, no proof: the proof is still asked.
        let again = asks_after(&asked, "福州市鼓楼区五四路3号", false);
        assert_eq!(again.len(), 1);
        assert!(matches!(again[0], Ask::Material("premises-proof", _, _)));
        // The proof given, the address still without a number: the address is asked.
        let again = asks_after(&asked, "福州市鼓楼区五四路", true);
        assert_eq!(again.len(), 1);
        assert!(matches!(again[0], Ask::Field("scjydz", _)));
        assert!(asks_after(&asked, "福州市鼓楼区五四路3号", true).is_empty());
    }
}
