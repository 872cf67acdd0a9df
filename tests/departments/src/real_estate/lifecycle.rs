//! 补正 and 撤回 at the registry (PROTOCOLS.md, "Real estate", "Supplements and withdrawals").
//!
//! A transfer is returned at its decision (`zt` 退回) when its declared price (`jyjg`) is below
//! the registry's assessed value of the flat (评估价格: [`ASSESSED_YUAN_PER_M2`] times its area),
//! or when the buyer's ID number (`srfzjh`) fails GB 11643. `queryStatus` then carries `bzxx`:
//! `bzyy` the reason, `bzzd` (`zd`: `zdmc`, `yy`) the fields to correct, `bzcl` (`cl`: `clbm`,
//! `clmc`, `yy`) the materials, `bzqx` the due date. A price is not corrected alone when a
//! sale contract (`sale-contract`) is on file: the contract must state the price registered,
//! so a return for the price of a transfer that filed its contract asks for the contract
//! stating the corrected price too (a 补充协议 or a new contract), and a transfer whose price
//! was corrected is returned for that contract until a supplement brings it
//! ([`Contract`]).
//! The supplement is the operation `submitSupplement` (`ywh` its own request id, `slbh`, `bzzd`
//! with `zd`: `zdmc`, `zdz` the corrected value, and materials as a transfer carries them, in an
//! MTOM package when there are files); the registry takes it back into 受理 and decides again
//! (登簿, or 退回 for what is still wrong). The withdrawal is `withdrawApplication` (`ywh`,
//! `slbh`, `chyy`): a transfer not decided becomes 已撤回 for good; one decided answers its
//! decision. Both are idempotent on `ywh`. A supplement of a transfer that is not returned is
//! fault `E202`; an unknown `slbh` `E105`.

use std::time::Instant;

use axum::http::StatusCode;
use serde_json::json;

use super::{
    Fault, RealEstate, Transfer, client_fault, envelope, holders_of, items, licence_fault,
    materials_of, mtom, required,
};
use crate::actions::ActionKind;
use crate::common::{self, Answer};
use crate::ids;
use crate::xml::{Element, esc};

/// The registry's assessed value of a flat, per m² of its area (yuan).
pub(super) const ASSESSED_YUAN_PER_M2: f64 = 10_000.0;

/// How long the applicant has to supplement, in days.
const DUE_DAYS: i64 = 30;

/// Fields a supplement may correct.
const CORRECTABLE: [&str; 3] = ["jyjg", "srfxm", "srfzjh"];

/// The material code of the sale contract (the catalogue's, which transfers name).
pub(super) const SALE_CONTRACT: &str = "sale-contract";

/// A field a return asks to correct, or a material to bring, and why.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Ask {
    Field {
        zdmc: &'static str,
        yy: String,
    },
    Material {
        clbm: &'static str,
        clmc: &'static str,
        yy: String,
    },
}

/// The sale contract on file for a transfer: the price it states.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Contract {
    /// No contract file came (the transfer named none, or promised it).
    None,
    /// A contract file stating this `jyjg` (the price declared when it came).
    States(String),
}

impl Contract {
    /// The contract on file after materials `codes` (files) came with the price `jyjg`.
    pub fn after(self, files: &[&str], jyjg: &str) -> Contract {
        if files.contains(&SALE_CONTRACT) {
            Contract::States(jyjg.to_owned())
        } else {
            self
        }
    }
}

/// What the registry asks at decision for a transfer with this buyer's ID, price and contract
/// on file, given the flat's assessed value.
pub(super) fn asks(srfzjh: &str, jyjg: &str, contract: &Contract, assessed: f64) -> Vec<Ask> {
    let mut asks = Vec::new();
    if !ids::resident_id_valid(srfzjh) {
        asks.push(Ask::Field {
            zdmc: "srfzjh",
            yy: "受让方证件号码校验未通过，请核对".into(),
        });
    }
    let below = jyjg.parse::<f64>().is_ok_and(|p| p < assessed);
    if below {
        asks.push(Ask::Field {
            zdmc: "jyjg",
            yy: format!("申报成交价格低于评估价格{assessed:.2}元，请核实后重新申报"),
        });
    }
    let contract_asked = match contract {
        Contract::None => false,
        // A price to correct needs a contract stating it; a corrected one, its contract.
        Contract::States(stated) => below || stated != jyjg,
    };
    if contract_asked {
        asks.push(Ask::Material {
            clbm: SALE_CONTRACT,
            clmc: "房屋买卖合同",
            yy: "成交价格更正的，须提交载明更正后成交价格的房屋买卖合同或补充协议".into(),
        });
    }
    asks
}

/// 补正期限: [`DUE_DAYS`] from today, Beijing date.
pub(super) fn due_date() -> String {
    common::beijing_date(common::beijing_now() + time::Duration::days(DUE_DAYS))
}

/// The registry's 状态 of a transfer now.
pub(super) fn zt(t: &Transfer, ticket_delay: std::time::Duration) -> &'static str {
    // Half the delay in 受理, then 审核, then decided: a poller sees the steps go by.
    let elapsed = t.received_at.elapsed();
    if t.withdrawn {
        "已撤回"
    } else if elapsed < ticket_delay / 2 {
        "受理"
    } else if elapsed < ticket_delay {
        "审核"
    } else if !t.asks.is_empty() {
        "退回"
    } else {
        "登簿"
    }
}

impl RealEstate {
    /// `<zt>` and what goes with it: the new certificate once 登簿, `bzxx` once 退回.
    pub(super) fn state_xml(&self, t: &Transfer) -> String {
        let zt = zt(t, self.ticket_delay);
        let more = match zt {
            "登簿" => format!("<xbdcqzh>{}</xbdcqzh>", esc(&t.new_certificate)),
            "退回" => {
                let (mut fields, mut materials) = (String::new(), String::new());
                for ask in &t.asks {
                    match ask {
                        Ask::Field { zdmc, yy } => fields
                            .push_str(&format!("<zd><zdmc>{zdmc}</zdmc><yy>{}</yy></zd>", esc(yy))),
                        Ask::Material { clbm, clmc, yy } => materials.push_str(&format!(
                            "<cl><clbm>{clbm}</clbm><clmc>{clmc}</clmc><yy>{}</yy></cl>",
                            esc(yy)
                        )),
                    }
                }
                let bzcl = if materials.is_empty() {
                    String::new()
                } else {
                    format!("<bzcl>{materials}</bzcl>")
                };
                format!(
                    "<bzxx><bzyy>申请材料存在问题，请补正</bzyy><bzqx>{}</bzqx><bzzd>{fields}</bzzd>{bzcl}</bzxx>",
                    t.bzqx
                )
            }
            _ => String::new(),
        };
        format!("<zt>{zt}</zt>{more}")
    }

    /// The parties of transfer `slbh` (seller's, buyer's ID) when it is returned; else the
    /// fault: `E105` unknown, `E202` not returned.
    fn returned(&self, slbh: &str) -> Result<(String, String), Fault> {
        let transfers = self.transfers.lock().unwrap_or_else(|e| e.into_inner());
        let t = transfers
            .get(slbh)
            .ok_or_else(|| client_fault("E105", "受理编号不存在"))?;
        match zt(t, self.ticket_delay) {
            "退回" => Ok((t.zrfzjh.clone(), t.srfzjh.clone())),
            other => Err(client_fault("E202", format!("当前状态不可补正：{other}"))),
        }
    }

    /// `submitSupplement`: checked, its files resolved, its licences verified, then taken once
    /// per `ywh`.
    pub(super) async fn submit_supplement(
        &self,
        params: &Element,
        package: Option<&mtom::Package>,
    ) -> Answer {
        let (ywh, slbh) = match (required(params, "ywh"), required(params, "slbh")) {
            (Ok(ywh), Ok(slbh)) => (ywh, slbh),
            (Err(f), _) | (_, Err(f)) => return self.fault(f),
        };
        let actions = &self.sim.actions;
        if actions.answered(ActionKind::Supplement, ywh) {
            return actions.once(ActionKind::Supplement, ywh, || {
                unreachable!("request id {ywh} was answered")
            });
        }
        let checked = async {
            let mut corrected = Vec::new();
            for zd in items(params, "bzzd", "zd") {
                let zdmc = required(zd, "zdmc")?;
                let zdz = required(zd, "zdz")?;
                if !CORRECTABLE.contains(&zdmc) {
                    return Err(client_fault(
                        "E102",
                        format!("参数错误：补正不可更改{zdmc}"),
                    ));
                }
                corrected.push((zdmc.to_owned(), zdz.to_owned()));
            }
            let (seller, buyer) = self.returned(slbh)?;
            let (mut materials, licences) = materials_of(ywh, params, package)?;
            let verified = self
                .licences
                .verify_all(ywh, &licences, |claimed| {
                    holders_of(claimed, &seller, &buyer)
                })
                .await
                .map_err(licence_fault)?;
            materials.extend(verified);
            Ok((corrected, materials))
        };
        let (corrected, materials) = match checked.await {
            Ok(checked) => checked,
            Err(f) => return self.fault(f),
        };
        actions.once(ActionKind::Supplement, ywh, || {
            self.returned(slbh).map_err(|f| self.fault(f))?;
            let mut transfers = self.transfers.lock().unwrap_or_else(|e| e.into_inner());
            let t = transfers.get_mut(slbh).expect("checked as returned");
            for (zdmc, zdz) in &corrected {
                match zdmc.as_str() {
                    "jyjg" => t.jyjg = zdz.clone(),
                    "srfzjh" => t.srfzjh = zdz.clone(),
                    _ => {}
                }
            }
            let files: Vec<&str> = materials
                .iter()
                .filter(|m| m.kind == "file")
                .map(|m| m.code.as_str())
                .collect();
            t.contract = std::mem::replace(&mut t.contract, Contract::None).after(&files, &t.jyjg);
            t.asks = asks(&t.srfzjh, &t.jyjg, &t.contract, t.assessed);
            t.received_at = Instant::now();
            t.bzqx = due_date();
            tracing::info!(slbh, ywh, still_asked = t.asks.len(), "supplement taken");
            drop(transfers);
            let codes: Vec<&str> = materials.iter().map(|m| m.code.as_str()).collect();
            let record = json!({
                "bzzd": corrected.iter().map(|(k, v)| json!({"zdmc": k, "zdz": v})).collect::<Vec<_>>(),
                "clbm": codes,
            });
            for material in materials {
                self.sim.record_material(material);
            }
            Ok((
                slbh.to_owned(),
                record,
                envelope(
                    StatusCode::OK,
                    &format!(
                        "<bdc:submitSupplementResponse><slbh>{}</slbh><zt>受理</zt></bdc:submitSupplementResponse>",
                        esc(slbh)
                    ),
                ),
            ))
        })
    }

    /// `withdrawApplication`: a transfer not decided is withdrawn; the answer is its state after.
    pub(super) fn withdraw(&self, params: &Element) -> Answer {
        let fields = (|| {
            Ok((
                required(params, "ywh")?,
                required(params, "slbh")?,
                required(params, "chyy")?,
            ))
        })();
        let (ywh, slbh, chyy) = match fields {
            Ok(fields) => fields,
            Err(f) => return self.fault(f),
        };
        self.sim.actions.once(ActionKind::Withdrawal, ywh, || {
            let mut transfers = self.transfers.lock().unwrap_or_else(|e| e.into_inner());
            let Some(t) = transfers.get_mut(slbh) else {
                drop(transfers);
                return Err(self.fault(client_fault("E105", "受理编号不存在")));
            };
            if matches!(zt(t, self.ticket_delay), "受理" | "审核" | "退回") {
                t.withdrawn = true;
            }
            let state = self.state_xml(t);
            tracing::info!(slbh, ywh, withdrawn = t.withdrawn, "withdrawal taken");
            drop(transfers);
            Ok((
                slbh.to_owned(),
                json!({"chyy": chyy, "state": state}),
                envelope(
                    StatusCode::OK,
                    &format!(
                        "<bdc:withdrawApplicationResponse><slbh>{}</slbh>{state}</bdc:withdrawApplicationResponse>",
                        esc(slbh)
                    ),
                ),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_price_below_the_assessed_value_is_returned_for_correction() {
        let assessed = 89.56 * ASSESSED_YUAN_PER_M2;
        let none = Contract::None;
        assert!(asks("34052419800101001X", "1200000.00", &none, assessed).is_empty());
        let asked = asks("34052419800101001X", "500000.00", &none, assessed);
        assert_eq!(asked.len(), 1);
        let Ask::Field { zdmc, yy } = &asked[0] else {
            panic!("{asked:?}")
        };
        assert_eq!(*zdmc, "jyjg");
        assert!(yy.contains("895600.00"), "{yy}");
        let asked = asks("340524198001010010", "900000.00", &none, assessed);
        assert!(matches!(&asked[0], Ask::Field { zdmc: "srfzjh", .. }));
    }

    #[test]
    fn a_price_corrected_needs_the_contract_stating_it_when_one_is_on_file() {
        let assessed = 89.56 * ASSESSED_YUAN_PER_M2;
        let filed = Contract::None.after(&["sale-contract"], "500000.00");
        let asked = asks("34052419800101001X", "500000.00", &filed, assessed);
        assert!(
            matches!(&asked[0], Ask::Field { zdmc: "jyjg", .. }),
            "{asked:?}"
        );
        assert!(
            matches!(
                &asked[1],
                Ask::Material {
                    clbm: SALE_CONTRACT,
                    ..
                }
            ),
            "{asked:?}"
        );
        // The price corrected alone: the contract on file states the old one.
        let asked = asks("34052419800101001X", "1200000.00", &filed, assessed);
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert!(matches!(&asked[0], Ask::Material { .. }), "{asked:?}");
        // With the new contract: registered. Another file does not stand for the contract.
        let renewed = filed.clone().after(&["sale-contract"], "1200000.00");
        assert!(asks("34052419800101001X", "1200000.00", &renewed, assessed).is_empty());
        let other = filed.after(&["marriage-status"], "1200000.00");
        assert_eq!(
            asks("34052419800101001X", "1200000.00", &other, assessed).len(),
            1
        );
    }
}
