//! Lookups that fill the clerk's form (四不提交 at the window): beside a field the gateway can
//! look up from, a button; the screens' script sends the fields it needs, this runs the same
//! [`gateway_cases::Orchestrator::lookup`] as `POST /api/v1/lookups/{name}` — with the clerk's
//! scopes, the clerk as the one served and the service being taken as the purpose, so it is
//! recorded like any lookup — and answers which form fields to fill with what:
//!
//! | field | lookup | fills |
//! | --- | --- | --- |
//! | `…credit_code` | `market-regulation.enterprise` | `enterprise_name`, `address`, `legal_representative.name` |
//! | `certificate_number` | `real-estate.property` | the seller (`seller.name`, `seller.id_number`): the registered owner |
//! | `….id_number` beside `….name` | `public-security.identity` | nothing: says whether name and number match |

use super::super::Ctx;
use super::super::session::Signed;
use super::client_of;
use crate::error::ApiError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// A lookup button beside a field: which lookup, its label, and the form fields it sends.
pub(crate) struct Button {
    pub(crate) lookup: &'static str,
    pub(crate) label: &'static str,
    /// The form fields' names (`f.<path>`), comma-separated, as the script reads them.
    pub(crate) from: String,
}

/// The button beside the field at `path`, if the gateway can look something up from it.
pub(crate) fn button_for(path: &str) -> Option<Button> {
    let (prefix, last) = match path.rsplit_once('.') {
        Some((prefix, last)) => (format!("{prefix}."), last),
        None => (String::new(), path),
    };
    match last {
        "credit_code" => Some(Button {
            lookup: "market-regulation.enterprise",
            label: "查询企业信息",
            from: format!("f.{path}"),
        }),
        "certificate_number" => Some(Button {
            lookup: "real-estate.property",
            label: "查询不动产信息",
            from: format!("f.{path}"),
        }),
        "id_number" => Some(Button {
            lookup: "public-security.identity",
            label: "核验身份",
            from: format!("f.{prefix}name,f.{path}"),
        }),
        _ => None,
    }
}

#[derive(Deserialize)]
pub(super) struct Asked {
    /// The service being taken (the purpose recorded).
    service: String,
    /// The fields the button names, by form name (`f.<path>`).
    fields: Map<String, Value>,
}

/// `POST /screens/clerk/lookups/{name}` (the script's, with `X-CSRF-Token`): `{fill: {form
/// name: value}, text}`, or `{text}` with the refusal's status.
pub(super) async fn lookup(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Path(name): Path<String>,
    Json(asked): Json<Asked>,
) -> Response {
    match looked_up(&ctx, &signed, &name, &asked).await {
        Ok(answer) => Json(answer).into_response(),
        Err(error) => {
            let problems = match &error {
                ApiError::InvalidInput(problems) => Some(
                    problems
                        .iter()
                        .map(|p| p.message.clone())
                        .collect::<Vec<_>>()
                        .join("；"),
                ),
                _ => None,
            };
            let status = error.into_response().status();
            // A record the department does not have is a 404 however the adapter says it.
            let text = match (problems, status) {
                (Some(problems), _) => problems,
                (None, StatusCode::NOT_FOUND) => {
                    "部门未查到相关记录，请核对后重试或手工填写。".into()
                }
                (None, StatusCode::FORBIDDEN) => "您的账号没有此项查询权限。".into(),
                _ => "部门系统暂时无法查询，请稍后重试或手工填写。".to_string(),
            };
            (status, Json(json!({ "text": text }))).into_response()
        }
    }
}

/// The text of a form field the script sent.
fn given<'a>(asked: &'a Asked, ending: &str) -> Option<&'a str> {
    asked
        .fields
        .iter()
        .find(|(k, _)| k.ends_with(ending))
        .and_then(|(_, v)| v.as_str())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

async fn looked_up(
    ctx: &Ctx,
    signed: &Signed,
    name: &str,
    asked: &Asked,
) -> Result<Value, ApiError> {
    let client = client_of(signed);
    if !client.may(&format!("lookup:{name}")) {
        return Err(ApiError::Forbidden(format!("lookup:{name}")));
    }
    let missing = |what: &str| {
        ApiError::InvalidInput(vec![gateway_base::model::FieldProblem::new(
            what,
            "required",
            format!("请先填写{what}"),
        )])
    };
    let query = match name {
        "market-regulation.enterprise" => {
            json!({"credit_code": given(asked, "credit_code").ok_or_else(|| missing("统一社会信用代码"))?})
        }
        "real-estate.property" => {
            json!({"certificate_number": given(asked, "certificate_number").ok_or_else(|| missing("不动产权证书号"))?})
        }
        "public-security.identity" => json!({
            "name": given(asked, "name").ok_or_else(|| missing("姓名"))?,
            "id_number": given(asked, "id_number").ok_or_else(|| missing("身份号码"))?,
        }),
        _ => {
            return Err(ApiError::NotFound {
                what: "lookup",
                id: name.to_string(),
            });
        }
    };
    let o = &ctx.screens.orchestrator;
    let service = o
        .catalogue()
        .services
        .get(&asked.service)
        .map_or_else(|| asked.service.clone(), |s| s.name.clone());
    let served = gateway_store::LookupServes {
        purpose: format!("窗口受理{service}：填写申请表"),
        case_id: None,
        clerk: Some(signed.clerk()),
    };
    gateway_base::redact::note_names(&query);
    let answer = o.lookup(&client.id, name, &query, &served).await?;
    let r = &answer.result;
    let text_of = |v: &Value| v.as_str().map(str::to_string);
    Ok(without_nulls(match name {
        "market-regulation.enterprise" => {
            let representative = r
                .get("legal_representative")
                .and_then(|v| text_of(v).or_else(|| v.get("name").and_then(text_of)));
            json!({
                "fill": {
                    "f.enterprise_name": r.get("name").and_then(text_of),
                    "f.address": r.get("address").and_then(text_of),
                    "f.legal_representative.name": representative,
                },
                "text": "已从市场监管部门获取企业登记信息，请核对。",
            })
        }
        "real-estate.property" => {
            let owner = r.get("owner").cloned().unwrap_or(Value::Null);
            json!({
                "fill": {
                    "f.seller.name": owner.get("name").and_then(text_of),
                    "f.seller.id_number": owner.get("id_number").and_then(text_of),
                },
                "text": "已从不动产登记部门获取权利人信息（转让方），请核对。",
            })
        }
        _ => {
            let text = match r.get("result").and_then(Value::as_str) {
                Some("match") => "公安核验：姓名与身份号码一致。",
                Some("mismatch") => "公安核验：姓名与身份号码不一致，请核对。",
                Some("not_found") => "公安核验：未查到该身份号码。",
                _ => "公安核验未给出结论，请核对证件。",
            };
            json!({
                "fill": {},
                "verified": r.get("result").and_then(text_of),
                "text": text,
            })
        }
    }))
}

/// The answer with the fill's nulls dropped: a field the department left out stays as typed.
fn without_nulls(mut answer: Value) -> Value {
    if let Some(fill) = answer.get_mut("fill").and_then(Value::as_object_mut) {
        fill.retain(|_, v| !v.is_null());
    }
    answer
}
