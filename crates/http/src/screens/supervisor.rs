//! The supervisors' wall (电子监察) on the portal listener (`/screens/supervisor/…`): a tile per
//! department with its open steps by light (绿灯 / 黄牌 / 红牌), the overdue steps with how late
//! and who has them, the red cards of the year, 好差评 and 整改 figures per department and the
//! open rectifications with their deadlines. Every number is a link to the list of the cases
//! behind it, and every case to a read-only case page.
//!
//! **A day, not now.** `?at=YYYY-MM-DD` (the page's date picker) judges every light at the end
//! of that Beijing day — "what will be red on Friday" — as the API's `at` does; without it the
//! lights are judged now. The figures of the year run from 1 January of that day's year to its
//! end. Addresses carry only department ids, lights, dates and case or rectification ids.
//!
//! **Live by refresh.** The wall is refreshed by the screens' script (`data-refresh`: every
//! 30 seconds it fetches the same address and swaps the wall's live part), not streamed: a
//! light changes with the clock as much as with a case's events (a step turns red at 24:00
//! with nothing happening to it), so no event stream would tell the page when to change, and a
//! page of counts re-read twice a minute costs the store what one API call does. The swap is
//! skipped while the keyboard's focus is inside the live part, so a supervisor tabbing through
//! the numbers is not thrown back to the top.
//!
//! Everything is read through the API's own domain calls ([`deadlines::supervision`],
//! [`gateway_cases::Orchestrator::red_cards`], `light_cards`, `supervision_statistics`, `evaluations_between`, `rectifications`,
//! `case_view`); nothing here queries the store itself. Names and identity numbers are never
//! shown: the lists hold what the API's supervision views hold (matters, departments, the
//! receiving clerk's id and window), the case page the case's matters and its masked timeline,
//! never its form.
//!
//! # Layout
//! - this module: the routes, the day and filters of a request, the wall.
//! - `lists`: the cases behind a number (open steps, red cards, 好差评, rectifications).
//! - `case`: one case, read-only.

mod case;
mod lists;

use super::Ctx;
use super::page::{self, Frame};
use super::session::Signed;
use crate::error::ApiError;
use askama::Template;
use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use gateway_base::model::FieldProblem;
use gateway_base::time::{beijing_date, end_of_day_ms, now_ms};
use gateway_cases::deadlines::{self, Light};
use gateway_cases::evaluations::rectifications::Filter;
use lists::{CardRow, RectificationRow, StepRow};
use std::collections::BTreeMap;
use time::Date;

/// The supervisors' routes (guarded by the supervisor role).
pub(super) fn routes() -> axum::Router<Ctx> {
    axum::Router::new()
        .route("/screens/supervisor", get(wall))
        .route("/screens/supervisor/steps", get(lists::steps))
        .route("/screens/supervisor/cards", get(lists::cards))
        .route("/screens/supervisor/evaluations", get(lists::evaluations))
        .route("/screens/supervisor/decided", get(lists::decided))
        .route(
            "/screens/supervisor/rectifications",
            get(lists::rectifications),
        )
        .route("/screens/supervisor/cases/{id}", get(case::case))
}

/// How many rows of each list the wall shows (its link shows them all).
const WALL_ROWS: usize = 10;

/// What a supervisor's address may ask: the day, a department, a light.
#[derive(Debug, Clone)]
pub(super) struct Filters {
    /// The day chosen; none: today, judged now.
    date: Option<Date>,
    /// The instant the lights are judged at.
    at_ms: i64,
    department: Option<String>,
    light: Option<Light>,
    /// Part of a list: the on-time decisions of `/decided`, the satisfied evaluations of
    /// `/evaluations` (the cases behind a rate's numerator).
    only: Option<Only>,
}

/// `only=`: the part of a list a rate on the wall counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Only {
    /// `on_time`: decided by the deadline (按时办结率).
    OnTime,
    /// `satisfied`: 非常满意, 满意 or 基本满意 (满意率).
    Satisfied,
}

impl Only {
    fn as_str(self) -> &'static str {
        match self {
            Only::OnTime => "on_time",
            Only::Satisfied => "satisfied",
        }
    }
}

impl Filters {
    /// From the query string: `at`, `department`, `light`; every problem at once (422).
    fn read(query: Option<&str>) -> Result<Filters, ApiError> {
        let mut problems = Vec::new();
        let mut filters = Filters {
            date: None,
            at_ms: now_ms(),
            department: None,
            light: None,
            only: None,
        };
        let pairs = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes());
        for (name, value) in pairs {
            match name.as_ref() {
                "at" if value.is_empty() => {}
                "at" => match gateway_base::calendar::parse_date(&value) {
                    Some(date) if date == beijing_date(now_ms()) => {}
                    Some(date) => {
                        filters.date = Some(date);
                        // The end of the day: what is red at any time that day.
                        filters.at_ms = end_of_day_ms(date) - 1;
                    }
                    None => problems.push(FieldProblem::new(
                        "at",
                        "format",
                        "日期应为 YYYY-MM-DD，如 2026-10-09",
                    )),
                },
                "department" if !value.is_empty() => filters.department = Some(value.into()),
                "light" if !value.is_empty() => match Light::parse(&value) {
                    Some(light) => filters.light = Some(light),
                    None => problems.push(FieldProblem::new(
                        "light",
                        "enum",
                        "应为 green、yellow 或 red",
                    )),
                },
                "only" if !value.is_empty() => match value.as_ref() {
                    "on_time" => filters.only = Some(Only::OnTime),
                    "satisfied" => filters.only = Some(Only::Satisfied),
                    _ => problems.push(FieldProblem::new(
                        "only",
                        "enum",
                        "应为 on_time 或 satisfied",
                    )),
                },
                "department" | "light" | "only" => {}
                other => problems.push(FieldProblem::new(
                    other,
                    "unknown_field",
                    "不支持的查询参数（可用：at、department、light、only）",
                )),
            }
        }
        if problems.is_empty() {
            Ok(filters)
        } else {
            Err(ApiError::InvalidInput(problems))
        }
    }

    /// The day the page is about, `YYYY-MM-DD`.
    fn day(&self) -> String {
        self.date
            .unwrap_or_else(|| beijing_date(self.at_ms))
            .to_string()
    }

    /// The period of the year's figures: 1 January of the day's year to the end of the day.
    fn year(&self) -> (i64, i64) {
        let date = beijing_date(self.at_ms);
        let january = Date::from_calendar_date(date.year(), time::Month::January, 1)
            .unwrap_or(date)
            .previous_day()
            .unwrap_or(date);
        (end_of_day_ms(january), end_of_day_ms(date))
    }

    /// An address on the wall with this day and the given department and light.
    fn href(&self, path: &str, department: Option<&str>, light: Option<Light>) -> String {
        self.href_only(path, department, light, None)
    }

    /// [`Filters::href`], for a part of the list (`only=`).
    fn href_only(
        &self,
        path: &str,
        department: Option<&str>,
        light: Option<Light>,
        only: Option<Only>,
    ) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(department) = department {
            query.append_pair("department", department);
        }
        if let Some(light) = light {
            query.append_pair("light", light.as_str());
        }
        if let Some(only) = only {
            query.append_pair("only", only.as_str());
        }
        if let Some(date) = self.date {
            query.append_pair("at", &date.to_string());
        }
        let query = query.finish();
        if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        }
    }
}

/// The departments' names (`[departments.<id>] name`), by id.
fn department_names(ctx: &Ctx) -> BTreeMap<String, String> {
    ctx.screens
        .orchestrator
        .notification_settings()
        .department_names
        .clone()
}

/// A department's name, or its id when it has none.
fn name_of(names: &BTreeMap<String, String>, id: &str) -> String {
    names.get(id).cloned().unwrap_or_else(|| id.to_string())
}

/// An RFC 3339 instant as the pages show it: `2026-10-09 14:30`.
fn shown(rfc3339: &str) -> String {
    rfc3339.get(..16).unwrap_or(rfc3339).replace('T', " ")
}

/// A rate as a percentage, `—` without one.
fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".into(), |r| format!("{:.1}%", r * 100.0))
}

/// One number on a tile and the cases behind it.
struct Count {
    value: u64,
    href: String,
}

/// One department on the wall.
struct Tile {
    id: String,
    name: String,
    green: Count,
    yellow: Count,
    red: Count,
}

/// One department's figures of the year. A rate links to the cases of its numerator (the
/// on-time decisions, the satisfied evaluations), its denominator being the number beside it.
struct Figures {
    name: String,
    decided: Count,
    on_time: Count,
    on_time_rate: String,
    yellow: Count,
    red: Count,
    evaluations: Count,
    satisfied: Count,
    satisfaction_rate: String,
    open_rectifications: Count,
    overdue_rectifications: Count,
}

#[derive(Template)]
#[template(path = "screens/supervisor_home.html")]
struct Wall {
    frame: Frame,
    /// The day, `YYYY-MM-DD`, and whether it is today (judged now).
    day: String,
    today: bool,
    /// When the page was made, `HH:MM:SS` Beijing time.
    made_at: String,
    tiles: Vec<Tile>,
    /// The overdue steps (the first few).
    steps: Vec<StepRow>,
    overdue_total: usize,
    overdue_href: String,
    cards: Vec<CardRow>,
    cards_total: usize,
    cards_href: String,
    figures: Vec<Figures>,
    rectifications: Vec<RectificationRow>,
    rectifications_total: usize,
    rectifications_href: String,
}

/// `GET /screens/supervisor?at=`: the wall.
async fn wall(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    RawQuery(query): RawQuery,
) -> Response {
    let made = async {
        let filters = Filters::read(query.as_deref())?;
        wall_page(&ctx, &signed, &filters).await
    }
    .await;
    page::answer(&ctx, made)
}

async fn wall_page(ctx: &Ctx, signed: &Signed, filters: &Filters) -> Result<Wall, ApiError> {
    let o = &ctx.screens.orchestrator;
    let names = department_names(ctx);
    let (from, to) = filters.year();
    let lights = deadlines::supervision(o, filters.at_ms, None, None).await?;
    let cards = o.red_cards(None, from, to).await?;
    let statistics = o.supervision_statistics(from, to).await?;
    let open = o
        .rectifications(
            filters.at_ms,
            &Filter {
                open: Some(true),
                ..Filter::default()
            },
        )
        .await?;
    let count = |path: &str, value: u64, department: &str, light: Option<Light>| Count {
        value,
        href: filters.href(path, Some(department), light),
    };
    let steps = "/screens/supervisor/steps";
    let tiles = lights
        .counts
        .iter()
        .map(|(id, c)| Tile {
            id: id.clone(),
            name: name_of(&names, id),
            green: count(steps, c.green, id, Some(Light::Green)),
            yellow: count(steps, c.yellow, id, Some(Light::Yellow)),
            red: count(steps, c.red, id, Some(Light::Red)),
        })
        .collect();
    let overdue: Vec<StepRow> = lights
        .items
        .iter()
        .filter(|s| s.light == Light::Red)
        .map(|s| StepRow::of(s, &names))
        .collect();
    let rectifications = "/screens/supervisor/rectifications";
    let cards_path = "/screens/supervisor/cards";
    let decided = "/screens/supervisor/decided";
    let evaluations = "/screens/supervisor/evaluations";
    let figures = statistics
        .departments
        .iter()
        .map(|(id, f)| Figures {
            name: name_of(&names, id),
            decided: count(decided, f.decided, id, None),
            on_time: Count {
                value: f.on_time,
                href: filters.href_only(decided, Some(id), None, Some(Only::OnTime)),
            },
            on_time_rate: percent(f.on_time_rate),
            yellow: count(cards_path, f.yellow, id, Some(Light::Yellow)),
            red: count(cards_path, f.red, id, Some(Light::Red)),
            evaluations: count(evaluations, f.evaluations, id, None),
            satisfied: Count {
                value: f.satisfied,
                href: filters.href_only(evaluations, Some(id), None, Some(Only::Satisfied)),
            },
            satisfaction_rate: percent(f.satisfaction_rate),
            open_rectifications: count(rectifications, f.open_rectifications, id, None),
            overdue_rectifications: count(
                rectifications,
                f.overdue_rectifications,
                id,
                Some(Light::Red),
            ),
        })
        .collect();
    // The newest red cards first: the wall shows what happened lately.
    let card_rows: Vec<CardRow> = cards
        .items
        .iter()
        .rev()
        .map(|c| CardRow::of(c, &names))
        .collect();
    let made_at = gateway_base::time::rfc3339(now_ms());
    Ok(Wall {
        frame: Frame::signed(ctx, signed, "电子监察"),
        day: filters.day(),
        today: filters.date.is_none(),
        made_at: made_at.get(11..19).unwrap_or_default().to_string(),
        tiles,
        overdue_total: overdue.len(),
        steps: overdue.into_iter().take(WALL_ROWS).collect(),
        overdue_href: filters.href(steps, None, Some(Light::Red)),
        cards_total: card_rows.len(),
        cards: card_rows.into_iter().take(WALL_ROWS).collect(),
        cards_href: filters.href(cards_path, None, Some(Light::Red)),
        figures,
        rectifications_total: open.items.len(),
        rectifications: open
            .items
            .iter()
            .take(WALL_ROWS)
            .map(|r| RectificationRow::of(r, &names))
            .collect(),
        rectifications_href: filters.href(rectifications, None, None),
    })
}
