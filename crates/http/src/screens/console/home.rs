//! `GET /console/`: the console's one page, read from the same places as the admin API's
//! answers (readiness, the adapter registry's status, the dead letters, the last verification).

use super::super::Ctx;
use super::super::page::{self, Frame};
use super::super::session::Signed;
use super::{Node, Verification, when, when_text};
use crate::health::{CheckState, ReadinessCheck};
use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use gateway_base::time::{now_ms, parse_rfc3339};
use gateway_plugins::adapters::{DepartmentStatus, Serving};
use serde::Deserialize;

/// A check as the page shows it: a class for its colour, a word, and what it says.
pub(super) struct Light {
    class: &'static str,
    text: &'static str,
    detail: String,
}

impl Light {
    fn of(check: Option<&ReadinessCheck>) -> Light {
        let Some(check) = check else {
            return Light {
                class: "light-yellow",
                text: "未探测",
                detail: String::new(),
            };
        };
        let (class, text) = match check.state {
            CheckState::Up => ("light-green", "正常"),
            CheckState::Down => ("light-red", "异常"),
            CheckState::Unknown => ("light-yellow", "未探测"),
        };
        let mut detail = check
            .detail
            .as_deref()
            .filter(|_| check.state != CheckState::Unknown)
            .map(gateway_base::redact::redact)
            .unwrap_or_default();
        if let Some(at) = &check.checked_at {
            if !detail.is_empty() {
                detail.push('；');
            }
            detail.push_str(&format!("探测于 {}", when_text(at)));
        }
        Light {
            class,
            text,
            detail,
        }
    }
}

/// A configured certificate: where, when it expires, how many days are left.
pub(super) struct CertificateRow {
    name: String,
    expires_at: String,
    left: String,
    class: &'static str,
}

impl CertificateRow {
    fn of(name: &str, check: &ReadinessCheck) -> CertificateRow {
        let expires_at = check.expires_at.clone().unwrap_or_default();
        let days = parse_rfc3339(&expires_at).map(|at| (at - now_ms()).div_euclid(86_400_000));
        let (left, class) = match (check.state, days) {
            (CheckState::Down, _) => ("已过期".to_string(), "light-red"),
            (_, Some(d)) if check.detail.is_some() => {
                (format!("剩余 {d} 天，即将到期"), "light-yellow")
            }
            (_, Some(d)) => (format!("剩余 {d} 天"), "light-green"),
            (_, None) => (String::new(), "light-yellow"),
        };
        CertificateRow {
            name: name.to_string(),
            expires_at: when_text(&expires_at),
            left,
            class,
        }
    }
}

pub(super) struct DepartmentRow {
    id: String,
    system: Light,
    adapter: Light,
    certificates: Vec<CertificateRow>,
}

/// A version serving, with this node's counts.
pub(super) struct ServingRow {
    version: String,
    digest: String,
    short: String,
    calls: u64,
    faults: u64,
    error_rate: String,
}

impl ServingRow {
    fn of(s: &Serving) -> ServingRow {
        let stats = &s.stats;
        ServingRow {
            version: s.adapter_version.clone(),
            digest: s.digest.clone(),
            short: s.digest.chars().take(12).collect(),
            calls: stats.calls,
            faults: stats.faults,
            error_rate: if stats.calls == 0 {
                "—".into()
            } else {
                format!("{:.1}%", stats.faults as f64 * 100.0 / stats.calls as f64)
            },
        }
    }
}

pub(super) struct VersionRow {
    digest: String,
    short: String,
    version: String,
    loaded_by: String,
    loaded_at: String,
    /// 全量 / 灰度 / empty.
    serving: &'static str,
}

pub(super) struct AdapterRow {
    department: String,
    active: Option<ServingRow>,
    candidate: Option<ServingRow>,
    /// The candidate's share of calls, and the active version's.
    percent: u8,
    rest: u8,
    versions: Vec<VersionRow>,
}

impl AdapterRow {
    fn of(status: &DepartmentStatus) -> AdapterRow {
        let active = status.active.as_ref().map(|a| a.digest.as_str());
        let candidate = status.candidate.as_ref().map(|c| c.digest.as_str());
        let percent = if status.candidate.is_some() {
            status.percent
        } else {
            0
        };
        AdapterRow {
            department: status.department.clone(),
            active: status.active.as_ref().map(ServingRow::of),
            candidate: status.candidate.as_ref().map(ServingRow::of),
            percent,
            rest: 100 - percent.min(100),
            versions: status
                .versions
                .iter()
                .map(|v| VersionRow {
                    digest: v.digest.clone(),
                    short: v.digest.chars().take(12).collect(),
                    version: v.adapter_version.clone(),
                    loaded_by: v.loaded_by.clone(),
                    loaded_at: when(v.loaded_at),
                    serving: if Some(v.digest.as_str()) == active {
                        "全量服务"
                    } else if Some(v.digest.as_str()) == candidate {
                        "灰度候选"
                    } else {
                        ""
                    },
                })
                .collect(),
        }
    }
}

pub(super) struct DeadLetterRow {
    case_id: String,
    step: String,
    matter: String,
    department: String,
    attempts: i64,
    message: String,
    updated_at: String,
}

#[derive(Template)]
#[template(path = "screens/console_home.html")]
struct Home {
    frame: Frame,
    done: Option<String>,
    ready: bool,
    departments: Vec<DepartmentRow>,
    /// Checks of the node itself: the store, the listeners' certificates, the calendar.
    node: Vec<(String, Light)>,
    node_certificates: Vec<CertificateRow>,
    adapters: Vec<AdapterRow>,
    dead_letters: Vec<DeadLetterRow>,
    verification: Option<Verification>,
    signatures_checked: bool,
}

#[derive(Deserialize)]
pub(super) struct Shown {
    done: Option<String>,
    department: Option<String>,
}

/// What an action's redirect says was done.
fn done_text(shown: &Shown) -> Option<String> {
    let department = shown.department.as_deref().unwrap_or_default();
    let text = match shown.done.as_deref()? {
        "pushed" => format!("组件已上传并通过检查（{department}），尚未启用。"),
        "activated" => format!("{department} 已全量启用所选版本。"),
        "staged" => format!("{department} 已按比例灰度所选版本。"),
        "promoted" => format!("{department} 的灰度版本已转为全量。"),
        "rolled-back" => format!("{department} 已回退。"),
        "replayed" => "死信已重新投递。".to_string(),
        "verified" => "审计链已校验，结果见下。".to_string(),
        _ => return None,
    };
    Some(text)
}

/// `GET /console/`.
pub(super) async fn home(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Extension(node): Extension<Node>,
    Query(shown): Query<Shown>,
) -> Response {
    match build(&ctx, &signed, &node, &shown).await {
        Ok(page) => page::html(&page),
        Err(e) => super::failed(&ctx, e),
    }
}

async fn build(
    ctx: &Ctx,
    signed: &Signed,
    node: &Node,
    shown: &Shown,
) -> Result<Home, crate::error::ApiError> {
    let o = &ctx.screens.orchestrator;
    let report = node.readiness.report(o).await;
    let statuses = crate::admin::adapters::statuses(o).await?;
    let departments = statuses
        .iter()
        .map(|s| {
            let id = &s.department;
            let prefix = format!("certificate.departments.{id}.");
            DepartmentRow {
                id: id.clone(),
                system: Light::of(report.checks.get(&format!("department.{id}"))),
                adapter: Light::of(report.checks.get(&format!("adapter.{id}"))),
                certificates: report
                    .checks
                    .iter()
                    .filter_map(|(name, check)| {
                        name.strip_prefix(&prefix)
                            .map(|what| CertificateRow::of(what, check))
                    })
                    .collect(),
            }
        })
        .collect();
    let node_checks = report
        .checks
        .iter()
        .filter(|(name, _)| {
            !name.starts_with("department.")
                && !name.starts_with("adapter.")
                && !name.starts_with("certificate.")
        })
        .map(|(name, check)| {
            let label = match name.as_str() {
                "store" => "存储".to_string(),
                "calendar" => "节假日日历".to_string(),
                other => other.to_string(),
            };
            (label, Light::of(Some(check)))
        })
        .collect();
    let node_certificates = report
        .checks
        .iter()
        .filter(|(name, _)| {
            name.starts_with("certificate.") && !name.starts_with("certificate.departments.")
        })
        .map(|(name, check)| CertificateRow::of(&name["certificate.".len()..], check))
        .collect();
    let dead_letters = o
        .store()
        .dead_letters(200)
        .await?
        .into_iter()
        .map(|s| DeadLetterRow {
            case_id: s.case_id,
            step: s.step,
            matter: s.matter,
            department: s.department,
            attempts: s.attempts,
            message: s
                .message
                .as_deref()
                .map(gateway_base::redact::redact)
                .unwrap_or_default(),
            updated_at: when(s.updated_at),
        })
        .collect();
    let state = &ctx.screens.console;
    Ok(Home {
        frame: Frame::signed(ctx, signed, "运维控制台"),
        done: done_text(shown),
        ready: report.status == crate::health::ReadyStatus::Ready,
        departments,
        node: node_checks,
        node_certificates,
        adapters: statuses.iter().map(AdapterRow::of).collect(),
        dead_letters,
        verification: o
            .store()
            .last_audit_verification()
            .await?
            .map(Verification::of),
        signatures_checked: !state.audit_keys.is_empty(),
    })
}
