//! Evaluation statistics over a period of Beijing days, by department, matter, receiving
//! clerk or month: counts per level, the satisfaction rate — (非常满意 + 满意 + 基本满意) /
//! all evaluations — and the rectifications of those evaluations open and overdue at an
//! instant. An evaluation of a case with several matters counts once for each of its
//! departments (or matters) in those rows, and once in clerk, month and total rows.

use super::views::{EvaluationStatistics, EvaluationStatisticsRow, EvaluationView, LevelCounts};
use crate::{CaseError, Orchestrator};
use gateway_base::time::{beijing_date, end_of_day_ms, rfc3339};
use gateway_store::evaluations::EvaluationSummary;
use std::collections::{BTreeMap, BTreeSet};
use time::Date;

/// What rows are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// Department id.
    Department,
    /// Matter code.
    Matter,
    /// The clerk who received the case.
    Clerk,
    /// Month, `YYYY-MM`.
    Period,
}

impl By {
    /// The grouping a query parameter names.
    pub fn parse(text: &str) -> Option<By> {
        match text {
            "department" => Some(By::Department),
            "matter" => Some(By::Matter),
            "clerk" => Some(By::Clerk),
            "period" => Some(By::Period),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            By::Department => "department",
            By::Matter => "matter",
            By::Clerk => "clerk",
            By::Period => "period",
        }
    }
}

/// A row's sums while counting.
#[derive(Default)]
struct Sum {
    levels: [u64; 5],
    open: u64,
    overdue: u64,
}

impl Sum {
    fn row(&self, key: String) -> EvaluationStatisticsRow {
        let total: u64 = self.levels.iter().sum();
        let good: u64 = self.levels[..3].iter().sum();
        EvaluationStatisticsRow {
            key,
            counts: LevelCounts {
                very_satisfied: self.levels[0],
                satisfied: self.levels[1],
                basically_satisfied: self.levels[2],
                dissatisfied: self.levels[3],
                very_dissatisfied: self.levels[4],
            },
            total,
            satisfaction_rate: (total > 0)
                .then(|| (good as f64 / total as f64 * 10_000.0).round() / 10_000.0),
            open_rectifications: self.open,
            overdue_rectifications: self.overdue,
        }
    }
}

impl Orchestrator {
    /// The statistics of evaluations made from the start of `from` to the end of `to`
    /// (Beijing days), rectifications judged at `at_ms`.
    pub async fn evaluation_statistics(
        &self,
        from: Date,
        to: Date,
        by: By,
        at_ms: i64,
    ) -> Result<EvaluationStatistics, CaseError> {
        let (from_ms, to_ms) = (
            end_of_day_ms(from.previous_day().unwrap_or(from)),
            end_of_day_ms(to),
        );
        let evaluations = self.store().evaluations_between(from_ms, to_ms).await?;
        let rectifications: BTreeMap<String, _> = self
            .store()
            .rectifications()
            .await?
            .into_iter()
            .map(|r| (r.evaluation_id.clone(), r))
            .collect();
        let calendar = self.deadlines();
        let mut rows: BTreeMap<String, Sum> = BTreeMap::new();
        let mut total = Sum::default();
        for e in &evaluations {
            let keys: BTreeSet<String> = match by {
                By::Department => e.matters.iter().map(|m| m.department.clone()).collect(),
                By::Matter => e.matters.iter().map(|m| m.matter.clone()).collect(),
                By::Clerk => [e.clerk.as_ref().map(|c| c.id.clone()).unwrap_or_default()].into(),
                By::Period => {
                    let d = beijing_date(e.created_at);
                    [format!("{:04}-{:02}", d.year(), u8::from(d.month()))].into()
                }
            };
            let level = usize::from(e.level.clamp(1, 5)) - 1;
            let (open, overdue) = match rectifications.get(&e.id) {
                Some(r)
                    if r.opened_at <= at_ms && r.close.as_ref().is_none_or(|c| c.at > at_ms) =>
                {
                    let deadline = calendar.calendar().deadline_ms(r.opened_at, r.limit_days);
                    (1, u64::from(at_ms > deadline))
                }
                _ => (0, 0),
            };
            let add = |sum: &mut Sum| {
                sum.levels[level] += 1;
                sum.open += open;
                sum.overdue += overdue;
            };
            for key in keys {
                add(rows.entry(key).or_default());
            }
            add(&mut total);
        }
        Ok(EvaluationStatistics {
            from: from.to_string(),
            to: to.to_string(),
            by: by.as_str().to_string(),
            at: rfc3339(at_ms),
            rows: rows.iter().map(|(k, s)| s.row(k.clone())).collect(),
            total: total.row(String::new()),
        })
    }

    /// The evaluations made in `[from_ms, to_ms)` that concern `department` (or all), newest
    /// first: the cases behind a department's 好差评 count in
    /// [`Orchestrator::supervision_statistics`] (each evaluation once, however many of the
    /// department's matters its case had).
    pub async fn evaluations_between(
        &self,
        department: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<EvaluationView>, CaseError> {
        let mut items: Vec<EvaluationView> = self
            .store()
            .evaluations_between(from_ms, to_ms)
            .await?
            .iter()
            .filter(|e| department.is_none_or(|d| e.matters.iter().any(|m| m.department == d)))
            .map(EvaluationView::from)
            .collect();
        items.reverse();
        Ok(items)
    }

    /// [`gateway_store::Store::evaluation_summary`] with this gateway's calendar: the
    /// evaluations made in `[from_ms, to_ms)` per month, department, matter and clerk, their
    /// rectifications open and overdue at `at_ms` (for the supervision statistics).
    pub async fn evaluation_summary(
        &self,
        from_ms: i64,
        to_ms: i64,
        at_ms: i64,
    ) -> Result<Vec<EvaluationSummary>, CaseError> {
        let deadlines = self.deadlines();
        let deadline = move |opened: i64, days: u32| deadlines.calendar().deadline_ms(opened, days);
        Ok(self
            .store()
            .evaluation_summary(from_ms, to_ms, at_ms, &deadline)
            .await?)
    }
}
