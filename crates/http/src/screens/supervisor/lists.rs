//! The cases behind a number on the wall: the open steps of a department and light
//! (`/screens/supervisor/steps`), the red or yellow cards of the year (`/cards`), the 好差评 of the
//! year (`/evaluations`, with `only=satisfied` those a 满意率 counts), the rectifications
//! (`/rectifications`), the matters decided in the year (`/decided`, with `only=on_time` those
//! an 按时办结率 counts). Each row links to its case.

use super::{Ctx, Filters, Only, name_of, shown};
use crate::error::ApiError;
use crate::screens::page::{self, Frame};
use crate::screens::session::Signed;
use crate::screens::words::{light_text, status_text};
use askama::Template;
use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use gateway_cases::deadlines::{self, Light, OpenStep};
use gateway_cases::evaluations::rectifications::Filter;
use gateway_cases::evaluations::views::{EvaluationView, RectificationView};
use gateway_cases::supervision::{DecidedMatter, RedCard};
use std::collections::BTreeMap;

/// An open step as a row: who has it and how late it is.
pub(super) struct StepRow {
    pub(super) case_id: String,
    pub(super) matter: String,
    pub(super) department: String,
    pub(super) state: &'static str,
    pub(super) received_at: String,
    pub(super) last_working_day: String,
    pub(super) light: &'static str,
    pub(super) light_text: &'static str,
    /// `剩余N个工作日`, `今日到期`, or `超期N个工作日`.
    pub(super) remaining: String,
}

impl StepRow {
    pub(super) fn of(step: &OpenStep, names: &BTreeMap<String, String>) -> StepRow {
        let days = step.remaining_working_days;
        let remaining = match step.light {
            Light::Red if days < 0 => format!("超期{}个工作日", -days),
            // Red on a day off after the deadline: no working day lost yet.
            Light::Red => "已超期（未满1个工作日）".into(),
            _ => format!("剩余{days}个工作日"),
        };
        StepRow {
            case_id: step.case_id.clone(),
            matter: step.matter_name.clone(),
            department: name_of(names, &step.department),
            state: status_text(&step.state).1,
            received_at: shown(&step.received_at),
            last_working_day: step.last_working_day.clone(),
            light: step.light.as_str(),
            light_text: light_text(step.light),
            remaining,
        }
    }
}

/// A red card as a row.
pub(super) struct CardRow {
    pub(super) case_id: String,
    pub(super) matter: String,
    pub(super) department: String,
    pub(super) carded_at: String,
    /// The last working day of the deadline it passed.
    pub(super) last_working_day: String,
    pub(super) late_working_days: i64,
    pub(super) state: &'static str,
    /// The receiving clerk's id and window, as the API shows them.
    pub(super) received_by: String,
}

impl CardRow {
    pub(super) fn of(card: &RedCard, names: &BTreeMap<String, String>) -> CardRow {
        let last_working_day = gateway_base::time::parse_rfc3339(&card.deadline)
            .map(|ms| gateway_base::time::beijing_date(ms - 1).to_string())
            .unwrap_or_else(|| card.deadline.clone());
        CardRow {
            case_id: card.case_id.clone(),
            matter: card.matter_name.clone(),
            department: name_of(names, &card.department),
            carded_at: shown(&card.carded_at),
            last_working_day,
            late_working_days: card.late_working_days,
            state: status_text(&card.state).1,
            received_by: card
                .received_by
                .as_ref()
                .map(|c| match &c.window {
                    Some(window) => format!("{}（{window}）", c.id),
                    None => c.id.clone(),
                })
                .unwrap_or_else(|| "—".into()),
        }
    }
}

/// A rectification as a row.
pub(super) struct RectificationRow {
    pub(super) id: String,
    pub(super) case_id: String,
    pub(super) level: String,
    pub(super) departments: String,
    pub(super) opened_at: String,
    pub(super) last_working_day: String,
    /// The light while open (`green` …), empty once closed.
    pub(super) light: &'static str,
    pub(super) light_text: &'static str,
    pub(super) remaining: String,
    pub(super) state: &'static str,
}

impl RectificationRow {
    pub(super) fn of(r: &RectificationView, names: &BTreeMap<String, String>) -> RectificationRow {
        let remaining = match (r.remaining_working_days, r.light) {
            (Some(d), Some(Light::Red)) if d < 0 => format!("超期{}个工作日", -d),
            (_, Some(Light::Red)) => "已超期".into(),
            (Some(d), Some(_)) => format!("剩余{d}个工作日"),
            _ => "—".into(),
        };
        RectificationRow {
            id: r.id.clone(),
            case_id: r.case_id.clone(),
            level: r.level_name.clone(),
            departments: r
                .departments
                .iter()
                .map(|d| name_of(names, d))
                .collect::<Vec<_>>()
                .join("、"),
            opened_at: shown(&r.opened_at),
            last_working_day: r.last_working_day.clone(),
            light: r.light.map_or("", Light::as_str),
            light_text: r.light.map_or("", light_text),
            remaining,
            state: if r.state == "open" {
                "整改中"
            } else {
                "已办结"
            },
        }
    }
}

/// An evaluation as a row: when, how, which level, which departments; never who made it or
/// what they wrote (电子监察 needs the level, the rectification holds the rest).
pub(super) struct EvaluationRow {
    pub(super) case_id: String,
    pub(super) evaluated_at: String,
    pub(super) channel: &'static str,
    pub(super) level: String,
    /// 1 (非常满意) to 5 (非常不满意).
    pub(super) level_code: u8,
    pub(super) departments: String,
    /// 已转整改 when it opened a rectification.
    pub(super) rectification: &'static str,
}

impl EvaluationRow {
    fn of(e: &EvaluationView, names: &BTreeMap<String, String>) -> EvaluationRow {
        EvaluationRow {
            case_id: e.case_id.clone(),
            evaluated_at: shown(&e.evaluated_at),
            channel: gateway_cases::evaluations::channel_name(&e.channel),
            level: e.level_name.clone(),
            level_code: e.level,
            departments: e
                .departments
                .iter()
                .map(|d| name_of(names, d))
                .collect::<Vec<_>>()
                .join("、"),
            rectification: if e.rectification.is_some() {
                "已转整改"
            } else {
                "—"
            },
        }
    }
}

/// What a list page says it lists, for its heading and the way back.
struct Heading {
    title: String,
    /// The wall on the same day.
    back: String,
}

fn heading(ctx: &Ctx, filters: &Filters, what: &str) -> Heading {
    let names = super::department_names(ctx);
    let department = filters
        .department
        .as_deref()
        .map(|d| format!("{} · ", name_of(&names, d)))
        .unwrap_or_default();
    let light = filters
        .light
        .map(|l| format!("{} · ", light_text(l)))
        .unwrap_or_default();
    Heading {
        title: format!("{department}{light}{what}"),
        back: filters.href("/screens/supervisor", None, None),
    }
}

#[derive(Template)]
#[template(path = "screens/supervisor_steps.html")]
struct StepsPage {
    frame: Frame,
    heading: Heading,
    day: String,
    steps: Vec<StepRow>,
}

/// `GET /screens/supervisor/steps?department=&light=&at=`: the open steps behind a tile's
/// number, red first then by deadline.
pub(super) async fn steps(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    RawQuery(query): RawQuery,
) -> Response {
    let made = async {
        let filters = Filters::read(query.as_deref())?;
        let o = &ctx.screens.orchestrator;
        let lights = deadlines::supervision(
            o,
            filters.at_ms,
            filters.department.as_deref(),
            filters.light,
        )
        .await?;
        let names = super::department_names(&ctx);
        let heading = heading(&ctx, &filters, "在办事项");
        Ok::<_, ApiError>(StepsPage {
            frame: Frame::signed(&ctx, &signed, &heading.title),
            heading,
            day: filters.day(),
            steps: lights
                .items
                .iter()
                .map(|s| StepRow::of(s, &names))
                .collect(),
        })
    }
    .await;
    page::answer(&ctx, made)
}

#[derive(Template)]
#[template(path = "screens/supervisor_cards.html")]
struct CardsPage {
    frame: Frame,
    heading: Heading,
    /// 红牌 or 黄牌.
    light: &'static str,
    from: String,
    day: String,
    cards: Vec<CardRow>,
}

/// `GET /screens/supervisor/cards?department=&light=&at=`: the red cards (or with
/// `light=yellow` the yellow ones) of the day's year up to its end, newest first.
pub(super) async fn cards(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    RawQuery(query): RawQuery,
) -> Response {
    let made = async {
        let filters = Filters::read(query.as_deref())?;
        let light = filters.light.unwrap_or(Light::Red);
        let (from, to) = filters.year();
        let cards = ctx
            .screens
            .orchestrator
            .light_cards(light, filters.department.as_deref(), from, to)
            .await?;
        let names = super::department_names(&ctx);
        let what = format!("{}记录", light_text(light));
        let heading = heading(
            &ctx,
            &Filters {
                light: None,
                ..filters.clone()
            },
            &what,
        );
        Ok::<_, ApiError>(CardsPage {
            frame: Frame::signed(&ctx, &signed, &heading.title),
            heading,
            light: light_text(light),
            from: gateway_base::time::beijing_date(from + 1).to_string(),
            day: filters.day(),
            cards: cards
                .items
                .iter()
                .rev()
                .map(|c| CardRow::of(c, &names))
                .collect(),
        })
    }
    .await;
    page::answer(&ctx, made)
}

#[derive(Template)]
#[template(path = "screens/supervisor_rectifications.html")]
struct RectificationsPage {
    frame: Frame,
    heading: Heading,
    day: String,
    rectifications: Vec<RectificationRow>,
}

/// `GET /screens/supervisor/rectifications?department=&light=&at=`: the open rectifications
/// (of a department, with a light), red first then by deadline.
pub(super) async fn rectifications(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    RawQuery(query): RawQuery,
) -> Response {
    let made = async {
        let filters = Filters::read(query.as_deref())?;
        let list = ctx
            .screens
            .orchestrator
            .rectifications(
                filters.at_ms,
                &Filter {
                    department: filters.department.clone(),
                    open: Some(true),
                    light: filters.light,
                },
            )
            .await?;
        let names = super::department_names(&ctx);
        let heading = heading(&ctx, &filters, "整改中的差评");
        Ok::<_, ApiError>(RectificationsPage {
            frame: Frame::signed(&ctx, &signed, &heading.title),
            heading,
            day: filters.day(),
            rectifications: list
                .items
                .iter()
                .map(|r| RectificationRow::of(r, &names))
                .collect(),
        })
    }
    .await;
    page::answer(&ctx, made)
}

#[derive(Template)]
#[template(path = "screens/supervisor_evaluations.html")]
struct EvaluationsPage {
    frame: Frame,
    heading: Heading,
    from: String,
    day: String,
    evaluations: Vec<EvaluationRow>,
}

/// `GET /screens/supervisor/evaluations?department=&at=`: the 好差评 of the day's year up to
/// its end that concern the department, newest first (the cases behind its count).
pub(super) async fn evaluations(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    RawQuery(query): RawQuery,
) -> Response {
    let made = async {
        let filters = Filters::read(query.as_deref())?;
        let (from, to) = filters.year();
        let mut items = ctx
            .screens
            .orchestrator
            .evaluations_between(filters.department.as_deref(), from, to)
            .await?;
        // 满意率's numerator: 非常满意 (1), 满意 (2), 基本满意 (3).
        let satisfied = filters.only == Some(Only::Satisfied);
        if satisfied {
            items.retain(|e| e.level <= 3);
        }
        let names = super::department_names(&ctx);
        let what = if satisfied {
            "满意的好差评"
        } else {
            "好差评"
        };
        let heading = heading(&ctx, &filters, what);
        Ok::<_, ApiError>(EvaluationsPage {
            frame: Frame::signed(&ctx, &signed, &heading.title),
            heading,
            from: gateway_base::time::beijing_date(from + 1).to_string(),
            day: filters.day(),
            evaluations: items.iter().map(|e| EvaluationRow::of(e, &names)).collect(),
        })
    }
    .await;
    page::answer(&ctx, made)
}

/// A decided matter as a row: when, by which deadline, on time or not.
pub(super) struct DecidedRow {
    pub(super) case_id: String,
    pub(super) matter: String,
    pub(super) department: String,
    pub(super) state: &'static str,
    pub(super) decided_at: String,
    /// The last working day of its deadline.
    pub(super) last_working_day: String,
    pub(super) on_time: bool,
}

impl DecidedRow {
    fn of(d: &DecidedMatter, names: &BTreeMap<String, String>) -> DecidedRow {
        DecidedRow {
            case_id: d.case_id.clone(),
            matter: d.matter_name.clone(),
            department: name_of(names, &d.department),
            state: status_text(&d.state).1,
            decided_at: shown(&d.decided_at),
            last_working_day: gateway_base::time::parse_rfc3339(&d.deadline)
                .map(|ms| gateway_base::time::beijing_date(ms - 1).to_string())
                .unwrap_or_else(|| d.deadline.clone()),
            on_time: d.on_time,
        }
    }
}

#[derive(Template)]
#[template(path = "screens/supervisor_decided.html")]
struct DecidedPage {
    frame: Frame,
    heading: Heading,
    from: String,
    day: String,
    decided: Vec<DecidedRow>,
}

/// `GET /screens/supervisor/decided?department=&only=on_time&at=`: the matters decided
/// (approved or rejected) in the day's year up to its end, newest first — the cases behind a
/// department's 办结 figure, or with `only=on_time` behind its 按时办结率.
pub(super) async fn decided(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    RawQuery(query): RawQuery,
) -> Response {
    let made = async {
        let filters = Filters::read(query.as_deref())?;
        let (from, to) = filters.year();
        let mut items = ctx
            .screens
            .orchestrator
            .decided_between(filters.department.as_deref(), from, to)
            .await?;
        let on_time = filters.only == Some(Only::OnTime);
        if on_time {
            items.retain(|d| d.on_time);
        }
        let names = super::department_names(&ctx);
        let what = if on_time {
            "按时办结事项"
        } else {
            "办结事项"
        };
        let heading = heading(&ctx, &filters, what);
        Ok::<_, ApiError>(DecidedPage {
            frame: Frame::signed(&ctx, &signed, &heading.title),
            heading,
            from: gateway_base::time::beijing_date(from + 1).to_string(),
            day: filters.day(),
            decided: items
                .iter()
                .rev()
                .map(|d| DecidedRow::of(d, &names))
                .collect(),
        })
    }
    .await;
    page::answer(&ctx, made)
}
