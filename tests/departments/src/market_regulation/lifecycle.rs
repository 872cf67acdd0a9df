//! 补正 and 撤回 at market regulation (PROTOCOLS.md, "Market regulation", "Supplements and
//! withdrawals").
//!
//! A licence application whose 经营范围 (`businessScope`) sums up with 等 is returned at its
//! decision instead of approved: `status` `RETURNED` with `supplement` (`reason`, `fields`:
//! `[{"field", "reason"}]` in the department's field names, `materials`: `[{"code", "reason"}]`,
//! `dueDate`), announced by the same signed callback as a decision and shown by `GET
//! /api/licences/{no}`. The supplement is `POST /api/licences/{no}/supplements` behind the
//! same token (`requestId`, `fields`: the corrected `address`, `businessScope`,
//! `registeredCapital`, and `materials` as an application names them, files uploaded in chunks
//! under the supplement's `requestId`), answered 202 `ACCEPTED` and decided again after the
//! ticket delay (approved, or returned again). The withdrawal is `POST
//! /api/licences/{no}/withdrawal` or `POST /api/food-permits/{no}/withdrawal` (`requestId`,
//! `reason`): `WITHDRAWN` for good (the name is released), or the decision when it came
//! first. Both idempotent on `requestId`; 404 `not_found` for an unknown number, 409
//! `not_returned` for a supplement of an application not returned.
//!
//! An application whose `address` is a dwelling (it names 住宅) is returned too, asking for the
//! material `premises-proof` (住所使用证明): a dwelling used as business premises (住改商) needs
//! the interested owners' consent on its proof, which only a supplement's proof is taken to
//! carry. A supplement bringing that file (uploaded in chunks under its `requestId`), or
//! correcting the address to one that is not a dwelling, clears the ask.
//!
//! 补交容缺材料: an application being decided (`ACCEPTED`) takes a supplement with no `fields`
//! whose materials are all ones it promised (`promised`) and has not had since: recorded like a
//! supplement's, answered 202 `ACCEPTED`, decided at its time as before (a 住所使用证明 file
//! brought so carries the owners' consent, as a supplement's does). Any other supplement of an
//! application not returned is 409 `not_returned`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{
    Enterprise, Licence, MarketRegulation, Provided, checked_materials, decide, invalid,
    read_materials, record, text,
};
use crate::actions::ActionKind;
use crate::common::{self, Answer};

/// How long the applicant has to supplement, in days.
const DUE_DAYS: i64 = 30;

/// Fields a supplement may correct (the name is reserved: a new name is a new application).
const CORRECTABLE: [&str; 3] = ["address", "businessScope", "registeredCapital"];

/// The material a dwelling's return asks for (the catalogue's code, which applications name).
pub(super) const PREMISES_PROOF: &str = "premises-proof";

/// What a return asks: fields and materials (department name or code, reason) and the due
/// date.
#[derive(Clone, Debug)]
pub(super) struct Returned {
    fields: Vec<(&'static str, &'static str)>,
    materials: Vec<(&'static str, &'static str)>,
    due: String,
}

/// What the department asks before it registers this enterprise, if anything;
/// `consented_premises`: a supplement brought a 住所使用证明 file.
pub(super) fn asks(enterprise: &Enterprise, consented_premises: bool) -> Option<Returned> {
    let mut fields = Vec::new();
    if enterprise.business_scope.contains('等') {
        fields.push((
            "businessScope",
            "经营范围不得以“等”字概括，请逐项列明经营项目",
        ));
    }
    let mut materials = Vec::new();
    if enterprise.address.contains("住宅") && !consented_premises {
        materials.push((
            PREMISES_PROOF,
            "住所为住宅的，须提交经有利害关系的业主同意将住宅改变为经营性用房的住所使用证明",
        ));
    }
    if fields.is_empty() && materials.is_empty() {
        return None;
    }
    Some(Returned {
        fields,
        materials,
        due: common::beijing_date(common::beijing_now() + time::Duration::days(DUE_DAYS)),
    })
}

/// The application document of a returned application (a callback's body, a `GET`'s answer).
pub(super) fn returned_document(no: &str, request_id: &str, returned: &Returned) -> Value {
    json!({
        "applicationNo": no,
        "requestId": request_id,
        "status": "RETURNED",
        "message": "申请需补正",
        "supplement": {
            "reason": "申请内容不符合登记规范，请补正后重新提交",
            "fields": returned.fields.iter().map(|(f, r)| json!({"field": f, "reason": r})).collect::<Vec<_>>(),
            "materials": returned.materials.iter().map(|(c, r)| json!({"code": c, "reason": r})).collect::<Vec<_>>(),
            "dueDate": returned.due,
        },
    })
}

/// The document `GET /api/licences/{no}` answers.
pub(super) fn licence_document(no: &str, l: &Licence) -> Value {
    if l.withdrawn {
        return json!({"applicationNo": no, "status": "WITHDRAWN"});
    }
    match (&l.approved, &l.returned) {
        (Some((uscc, licence_no)), _) => json!({
            "applicationNo": no, "status": "APPROVED", "uscc": uscc, "licenceNo": licence_no,
        }),
        (None, Some(returned)) => returned_document(no, &l.request_id, returned),
        (None, None) => json!({"applicationNo": no, "status": "ACCEPTED"}),
    }
}

fn not_found(mr: &MarketRegulation) -> Answer {
    mr.sim.reject("not_found");
    Answer::json(
        StatusCode::NOT_FOUND,
        &json!({"error": "not_found", "message": "申请编号不存在"}),
    )
}

impl MarketRegulation {
    /// What a supplement of licence application `no` correcting `fields` and bringing
    /// `brought` is: `Ok(false)` 补正 of a returned one, `Ok(true)` 补交容缺材料 (it is being
    /// decided, nothing is corrected, and only materials it promised are brought); else 404
    /// or 409 `not_returned`.
    fn supplementable(
        &self,
        no: &str,
        fields: &serde_json::Map<String, Value>,
        brought: &[String],
    ) -> Result<bool, Answer> {
        let state = self.registry().licences.get(no).map(|l| {
            let promised = fields.is_empty()
                && !brought.is_empty()
                && brought.iter().all(|code| l.promised.contains(code));
            (licence_document(no, l), promised)
        });
        match state {
            None => Err(not_found(self)),
            Some((doc, _)) if doc["status"] == "RETURNED" => Ok(false),
            Some((doc, true)) if doc["status"] == "ACCEPTED" => Ok(true),
            Some((doc, _)) => {
                self.sim.reject("not_returned");
                Err(Answer::json(
                    StatusCode::CONFLICT,
                    &json!({"error": "not_returned", "message": format!(
                        "当前状态不可补正：{}", doc["status"].as_str().unwrap_or_default())}),
                ))
            }
        }
    }
}

/// The corrected fields of a supplement, each correctable and non-blank.
fn corrections(body: &Value) -> Result<serde_json::Map<String, Value>, String> {
    let fields = match body.get("fields") {
        None | Some(Value::Null) => return Ok(serde_json::Map::new()),
        Some(Value::Object(fields)) => fields,
        Some(_) => return Err("fields须为对象".into()),
    };
    for (name, value) in fields {
        if !CORRECTABLE.contains(&name.as_str()) {
            return Err(format!("补正不可更改{name}"));
        }
        let ok = match value {
            Value::String(s) => !s.trim().is_empty(),
            Value::Number(n) => name == "registeredCapital" && n.as_f64().is_some_and(|v| v > 0.0),
            _ => false,
        };
        if !ok {
            return Err(format!("{name}的值无效"));
        }
    }
    Ok(fields.clone())
}

pub(super) async fn supplement_licence(
    State(mr): State<Arc<MarketRegulation>>,
    Path(no): Path<String>,
    body: Bytes,
) -> Answer {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return invalid(&mr, "请求体不是JSON");
    };
    let Some(request_id) = text(&body, "/requestId") else {
        return invalid(&mr, "缺少requestId");
    };
    let actions = &mr.sim.actions;
    if actions.answered(ActionKind::Supplement, request_id) {
        return actions.once(ActionKind::Supplement, request_id, || {
            unreachable!("request id {request_id} was answered")
        });
    }
    let fields = match corrections(&body) {
        Ok(fields) => fields,
        Err(m) => return invalid(&mr, &m),
    };
    let named = match read_materials(&body) {
        Ok(named) => named,
        Err(m) => return invalid(&mr, &m),
    };
    // The materials it brings (files, licences), not promised again.
    let brought: Vec<String> = named
        .iter()
        .filter(|n| !matches!(n.provided, Provided::Promised))
        .map(|n| n.code.clone())
        .collect();
    if let Err(refusal) = mr.supplementable(&no, &fields, &brought) {
        return refusal;
    }
    let materials = match checked_materials(&mr, request_id, &named, &[]).await {
        Ok(materials) => materials,
        Err(refusal) => return refusal,
    };
    actions.once(ActionKind::Supplement, request_id, || {
        if mr.supplementable(&no, &fields, &brought)? {
            {
                let mut reg = mr.registry();
                let licence = reg.licences.get_mut(&no).expect("checked as in hand");
                licence.promised.retain(|code| !brought.contains(code));
                if materials
                    .iter()
                    .any(|m| m.code == PREMISES_PROOF && m.kind == "file")
                {
                    licence.consented_premises = true;
                }
            }
            let record_body = json!({"fields": {}, "materials": brought, "promised": true});
            record(&mr, request_id, materials);
            tracing::info!(application_no = no, request_id, "promised materials taken");
            return Ok((
                no.clone(),
                record_body,
                Answer::json(
                    StatusCode::ACCEPTED,
                    &json!({"applicationNo": no, "status": "ACCEPTED"}),
                ),
            ));
        }
        {
            let mut reg = mr.registry();
            let licence = reg.licences.get_mut(&no).expect("checked as returned");
            for (name, value) in &fields {
                let text = value.as_str().map(|s| s.trim().to_owned());
                match (name.as_str(), text) {
                    ("address", Some(v)) => licence.enterprise.address = v,
                    ("businessScope", Some(v)) => licence.enterprise.business_scope = v,
                    ("registeredCapital", _) => {
                        licence.enterprise.registered_capital = value.clone();
                    }
                    _ => {}
                }
            }
            // Only a file is a proof of the owners' consent (a promise is not).
            if materials
                .iter()
                .any(|m| m.code == PREMISES_PROOF && m.kind == "file")
            {
                licence.consented_premises = true;
            }
            licence.returned = None;
        }
        let codes: Vec<&str> = materials.iter().map(|m| m.code.as_str()).collect();
        let record_body = json!({"fields": fields, "materials": codes});
        record(&mr, request_id, materials);
        tracing::info!(application_no = no, request_id, "supplement taken");
        tokio::spawn(decide(mr.clone(), no.clone()));
        Ok((
            no.clone(),
            record_body,
            Answer::json(
                StatusCode::ACCEPTED,
                &json!({"applicationNo": no, "status": "ACCEPTED"}),
            ),
        ))
    })
}

/// `requestId` and `reason` of a withdrawal.
fn withdrawal_fields(mr: &MarketRegulation, body: &[u8]) -> Result<(String, String), Answer> {
    let body = serde_json::from_slice::<Value>(body).map_err(|_| invalid(mr, "请求体不是JSON"))?;
    match (text(&body, "/requestId"), text(&body, "/reason")) {
        (Some(id), Some(reason)) => Ok((id.to_owned(), reason.to_owned())),
        _ => Err(invalid(mr, "缺少requestId或reason")),
    }
}

pub(super) async fn withdraw_licence(
    State(mr): State<Arc<MarketRegulation>>,
    Path(no): Path<String>,
    body: Bytes,
) -> Answer {
    let (request_id, reason) = match withdrawal_fields(&mr, &body) {
        Ok(fields) => fields,
        Err(refusal) => return refusal,
    };
    mr.sim.actions.once(ActionKind::Withdrawal, &request_id, || {
        let mut reg = mr.registry();
        let Some(licence) = reg.licences.get_mut(&no) else {
            drop(reg);
            return Err(not_found(&mr));
        };
        if licence.approved.is_none() && !licence.withdrawn {
            licence.withdrawn = true;
            let name = licence.enterprise.name.clone();
            reg.names.remove(&name);
        }
        let doc = licence_document(&no, &reg.licences[&no]);
        drop(reg);
        tracing::info!(application_no = no, request_id, status = %doc["status"], "withdrawal taken");
        Ok((
            no.clone(),
            json!({"reason": reason, "status": doc["status"]}),
            Answer::json(StatusCode::OK, &doc),
        ))
    })
}

pub(super) async fn withdraw_food_permit(
    State(mr): State<Arc<MarketRegulation>>,
    Path(no): Path<String>,
    body: Bytes,
) -> Answer {
    let (request_id, reason) = match withdrawal_fields(&mr, &body) {
        Ok(fields) => fields,
        Err(refusal) => return refusal,
    };
    mr.sim
        .actions
        .once(ActionKind::Withdrawal, &request_id, || {
            let mut reg = mr.registry();
            let Some(permit) = reg.food_permits.get_mut(&no) else {
                drop(reg);
                return Err(not_found(&mr));
            };
            if Instant::now() < permit.decided_at {
                permit.withdrawn = true;
            }
            let doc = if permit.withdrawn {
                json!({"applicationNo": no, "status": "WITHDRAWN"})
            } else {
                json!({"applicationNo": no, "status": "APPROVED", "permitNo": permit.permit_no})
            };
            drop(reg);
            Ok((
                no.clone(),
                json!({"reason": reason, "status": doc["status"]}),
                Answer::json(StatusCode::OK, &doc),
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enterprise(scope: &str) -> Enterprise {
        Enterprise {
            name: "福州甲有限公司".into(),
            address: "福州市鼓楼区五四路1号".into(),
            legal_representative: "张三".into(),
            registered_capital: json!(100),
            business_scope: scope.into(),
        }
    }

    #[test]
    fn a_scope_summed_up_with_deng_is_returned() {
        assert!(asks(&enterprise("软件开发"), false).is_none());
        let returned = asks(&enterprise("软件开发、技术服务等"), false).unwrap();
        let doc = returned_document("SCJG1", "r1", &returned);
        assert_eq!(doc["status"], "RETURNED");
        assert_eq!(doc["supplement"]["fields"][0]["field"], "businessScope");
        assert_eq!(doc["supplement"]["materials"], json!([]));
        assert!(doc["supplement"]["dueDate"].as_str().is_some());
    }

    #[test]
    fn a_dwelling_is_returned_for_a_premises_proof_until_a_supplement_brings_one() {
        let mut dwelling = enterprise("软件开发");
        dwelling.address = "福州市鼓楼区五四路3号2座501室（住宅）".into();
        let returned = asks(&dwelling, false).unwrap();
        let doc = returned_document("SCJG1", "r1", &returned);
        assert_eq!(doc["supplement"]["fields"], json!([]));
        assert_eq!(doc["supplement"]["materials"][0]["code"], PREMISES_PROOF);
        assert!(asks(&dwelling, true).is_none());
        dwelling.business_scope = "软件开发等".into();
        let both = asks(&dwelling, false).unwrap();
        assert_eq!((both.fields.len(), both.materials.len()), (1, 1));
    }
}
