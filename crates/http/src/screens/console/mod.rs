//! The operators' console (运维) on the admin listener (`/console/…`): one page with the
//! departments (readiness, certificate expiry), the adapters (versions, which serves, the staged
//! share, error rates) with upload, stage, promote and roll back, the dead letters with replay,
//! the audit chain's last verification (kept in the store: shown after a restart and on every
//! node), and the config reload.
//!
//! Every action is a POST form carrying the session's CSRF token (the upload goes through the
//! screens' script with the token in its header) and calls the same function as the admin API's
//! route, with the signed-in operator's user name where the API records its token's operator.
//! Refusals are Chinese pages; what the domain said in detail (a check's reason, a config
//! problem's key) is shown beside them, never Rust's debug text.

mod actions;
mod home;

use super::Ctx;
use super::page;
use crate::admin::reload::Reload;
use crate::error::ApiError;
use crate::health::Readiness;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gateway_base::model::FieldProblem;
use gateway_base::signature::Verifier;
use std::sync::Arc;

/// The console's routes (guarded by the operator role), with this node's readiness and its
/// config reload.
pub(super) fn routes(readiness: Arc<Readiness>, reload: Arc<dyn Reload>) -> axum::Router<Ctx> {
    let upload_limit = crate::admin::adapters::MAX_COMPONENT_BYTES + (64 << 10);
    axum::Router::new()
        .route("/console", get(home::home))
        .route("/console/", get(home::home))
        .route(
            "/console/adapters",
            post(actions::upload).layer(axum::extract::DefaultBodyLimit::max(upload_limit)),
        )
        .route(
            "/console/adapters/{department}/activate",
            post(actions::activate),
        )
        .route(
            "/console/adapters/{department}/promote",
            post(actions::promote),
        )
        .route(
            "/console/adapters/{department}/rollback",
            post(actions::rollback),
        )
        .route(
            "/console/dead-letters/{case}/{step}/replay",
            post(actions::replay),
        )
        .route("/console/audit/verification", post(actions::verify_audit))
        .route("/console/config/reload", post(actions::reload))
        .layer(axum::Extension(Node { readiness, reload }))
}

/// What the console asks of this node beyond the case domain.
#[derive(Clone)]
pub(super) struct Node {
    readiness: Arc<Readiness>,
    reload: Arc<dyn Reload>,
}

/// The console's own state in [`super::Screens`].
pub(super) struct State {
    /// Keys the audit seals are verified with (none: only the chains are checked).
    audit_keys: Vec<Verifier>,
}

impl State {
    pub(super) fn new(audit_keys: Vec<Verifier>) -> State {
        State { audit_keys }
    }
}

/// One verification of the audit chains, as the console shows it (the last one kept in the
/// store, whichever node's console ran it).
#[derive(Clone)]
struct Verification {
    /// Beijing time, to the second.
    at: String,
    /// The node whose console ran it.
    node: String,
    operator: String,
    ok: bool,
    chains: usize,
    records: u64,
    seals: u64,
    /// Records the newest seals do not cover yet (only a seal protects a chain's end).
    unsealed: i64,
    signatures_checked: bool,
    /// Each problem: node, place, what.
    problems: Vec<(String, i64, String)>,
}

impl Verification {
    fn of(v: gateway_store::verifications::AuditVerification) -> Verification {
        Verification {
            at: when(v.at),
            node: v.node,
            operator: v.operator,
            ok: v.ok,
            chains: usize::try_from(v.chains).unwrap_or(0),
            records: u64::try_from(v.records).unwrap_or(0),
            seals: u64::try_from(v.seals).unwrap_or(0),
            unsealed: v.unsealed,
            signatures_checked: v.signatures_checked,
            problems: v
                .problems
                .into_iter()
                .map(|p| (p.node, p.seq, p.what))
                .collect(),
        }
    }
}

/// A time as the console shows it: Beijing time to the second (`2026-12-05 09:30:00`).
fn when(ms: i64) -> String {
    let text = gateway_base::time::rfc3339(ms);
    text.get(..19).unwrap_or(&text).replacen('T', " ", 1)
}

/// An RFC 3339 time (a readiness check's) as [`when`] shows it.
fn when_text(rfc3339: &str) -> String {
    gateway_base::time::parse_rfc3339(rfc3339).map_or_else(|| rfc3339.to_string(), when)
}

/// The operator behind a console action, as the admin API records its token's operator.
fn operator(signed: &super::session::Signed) -> String {
    signed.profile.user.clone()
}

/// A refused or failed action as a Chinese page with the API's status; the detail the domain
/// gave (a check's reason, a conflict's cause) listed under it, and the log gets what the
/// API's would.
fn failed(ctx: &Ctx, error: ApiError) -> Response {
    let (heading, text, problems) = explain(&error);
    let api = error.into_response();
    let status = api.status();
    let mut answer = page::message(ctx, status, heading, &text, &problems);
    if let Some(failure) = api.extensions().get::<crate::error::Failure>().cloned() {
        answer.extensions_mut().insert(failure);
    }
    answer
}

/// The heading, sentence and details an operator reads for an error.
fn explain(error: &ApiError) -> (&'static str, String, Vec<FieldProblem>) {
    match error {
        ApiError::InvalidInput(p) => (
            "填写的内容有问题",
            format!("共 {} 处问题，请修改后重试。", p.len()),
            p.iter().map(field_in_chinese).collect(),
        ),
        ApiError::NotFound { .. } => (
            "未找到",
            "所指的部门、版本或死信不存在（可能已被处理），请刷新后查看。".into(),
            Vec::new(),
        ),
        ApiError::Conflict(why) => (
            "当前状态不允许此操作",
            conflict_in_chinese(why).into(),
            vec![FieldProblem::new("详情", "conflict", why.clone())],
        ),
        ApiError::Refused(_, p) => (
            "组件未通过检查",
            "组件未被采用，原有版本照常服务。未通过的检查：".into(),
            p.iter()
                .map(|p| FieldProblem::new(check_in_chinese(&p.code), "refused", p.message.clone()))
                .collect(),
        ),
        ApiError::ConfigRefused(p) => (
            "新配置未被采用",
            format!("共 {} 处问题，原配置照常运行。", p.len()),
            p.clone(),
        ),
        ApiError::TooLarge(limit) => (
            "组件过大",
            format!("组件超过 {} MiB 的上限。", limit >> 20),
            Vec::new(),
        ),
        ApiError::UploadIncomplete(_) | ApiError::UploadTimeout(_) => (
            "上传未完成",
            "文件没有完整送达，请重新上传。".into(),
            Vec::new(),
        ),
        _ => (
            "系统暂时无法处理",
            "系统出现问题，已记录，请稍后重试。".into(),
            Vec::new(),
        ),
    }
}

/// A problem's field named in Chinese where the console's form names it so.
fn field_in_chinese(p: &FieldProblem) -> FieldProblem {
    let (field, message) = match p.field.as_str() {
        "percent" => ("灰度比例", "应为 1 到 100 之间的整数"),
        "component" | "body" => ("组件文件", "请选择一个 .wasm 组件文件"),
        "digest" => ("版本", "请选择一个版本"),
        _ => return p.clone(),
    };
    FieldProblem::new(field, p.code.clone(), message)
}

/// An admission check's name, as the console lists a refusal.
fn check_in_chinese(check: &str) -> String {
    let name = match check {
        "signature" => "签名",
        "compile" => "编译",
        "contract" => "接口契约",
        "describe" => "自述（describe）",
        "contract_version" => "契约版本",
        "department" => "所属部门",
        "self_check" => "自检（事项、查询与表单）",
        other => other,
    };
    format!("{name}（{check}）")
}

/// The sentence for an adapter conflict the registry reports (its English text is listed too).
fn conflict_in_chinese(why: &str) -> &'static str {
    if why.contains("no earlier version to roll back to") {
        "没有可回退到的更早版本。"
    } else if why.contains("no staged candidate to promote") {
        "没有灰度中的候选版本可以转正。"
    } else if why.contains("no active version to stage") {
        "尚无全量服务的版本，请先全量启用一个版本再灰度。"
    } else if why.contains("no version to roll back from") {
        "该部门没有正在服务的版本，无从回退。"
    } else if why.contains("give more of the digest") {
        "所给的版本摘要对应多个版本，请给出更长的摘要。"
    } else {
        "请刷新页面查看当前状态后重试。"
    }
}

/// A 303 back to the console with what was done (a fixed word the page says in Chinese).
fn done(what: &str, department: Option<&str>) -> Response {
    let mut to = format!("/console?done={what}");
    if let Some(d) = department {
        to.push_str("&department=");
        to.extend(url::form_urlencoded::byte_serialize(d.as_bytes()));
    }
    (StatusCode::SEE_OTHER, [(axum::http::header::LOCATION, to)]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_to_the_second_in_beijing_time() {
        assert_eq!(when(0), "1970-01-01 08:00:00");
        assert_eq!(
            when_text("2026-12-05T00:15:49.62+08:00"),
            "2026-12-05 00:15:49"
        );
        assert_eq!(when_text("not a time"), "not a time");
    }

    #[test]
    fn the_registrys_conflicts_are_said_in_chinese() {
        for (why, said) in [
            (
                "department tax has no earlier version to roll back to",
                "没有可回退到的更早版本。",
            ),
            (
                "department tax has no staged candidate to promote",
                "没有灰度中的候选版本可以转正。",
            ),
            (
                "department tax has no active version to stage a candidate beside; activate one fully first",
                "尚无全量服务的版本，请先全量启用一个版本再灰度。",
            ),
        ] {
            assert_eq!(conflict_in_chinese(why), said);
        }
        let (heading, text, details) = explain(&ApiError::Conflict("something else".into()));
        assert_eq!(heading, "当前状态不允许此操作");
        assert_eq!(text, "请刷新页面查看当前状态后重试。");
        assert_eq!(details[0].message, "something else", "the reason beside it");
    }
}
