//! The cases a window received, for the clerk's list: found by the clerk recorded on each
//! case's `received` event (the clerk's id, or their hall), newest first, a page at a time,
//! optionally narrowed to case numbers containing a text. Nothing personal is searched: only
//! case numbers.

use crate::{Result, Store};
use gateway_base::model::Clerk;
use sqlx::Row;

/// Whose receptions to list.
#[derive(Debug, Clone, Copy)]
pub enum ReceivedBy<'a> {
    /// One clerk's, by their id.
    Clerk(&'a str),
    /// A hall's, every clerk's there.
    Hall(&'a str),
}

/// A received case as the list shows it.
#[derive(Debug, Clone)]
pub struct ReceivedCase {
    /// Case id (the case number on the receipt).
    pub id: String,
    /// Service code.
    pub service: String,
    /// Unix ms of receipt.
    pub created_at: i64,
    /// Who received it.
    pub clerk: Option<Clerk>,
}

/// `text` with LIKE's wildcards and its escape character escaped (`\`).
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The LIKE pattern of a `received` event's clerk, as it is stored (compact JSON of
/// [`Clerk`]: `{"id":…,"window":…,"hall":…}`).
fn clerk_pattern(by: ReceivedBy<'_>) -> String {
    let json = |s: &str| serde_json::to_string(s).expect("a string serialises");
    match by {
        ReceivedBy::Clerk(id) => format!("{}%", like_literal(&format!("{{\"id\":{},", json(id)))),
        ReceivedBy::Hall(hall) => {
            format!("%{}", like_literal(&format!("\"hall\":{}}}", json(hall))))
        }
    }
}

impl Store {
    /// Up to `limit` cases received by `by` after skipping `offset`, newest first; with
    /// `number`, only those whose id contains it.
    pub async fn received_cases(
        &self,
        by: ReceivedBy<'_>,
        number: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ReceivedCase>> {
        let number = format!("%{}%", like_literal(number.unwrap_or_default()));
        let rows = sqlx::query(
            "SELECT c.id, c.service, c.created_at, e.clerk FROM cases c
             JOIN events e ON e.case_id = c.id AND e.kind = 'received'
             WHERE e.clerk LIKE $1 ESCAPE '\\' AND c.id LIKE $2 ESCAPE '\\'
             ORDER BY c.created_at DESC, c.id DESC LIMIT $3 OFFSET $4",
        )
        .bind(clerk_pattern(by))
        .bind(number)
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| ReceivedCase {
                id: r.get(0),
                service: r.get(1),
                created_at: r.get(2),
                clerk: r
                    .get::<Option<String>, _>(3)
                    .and_then(|c| serde_json::from_str(&c).ok()),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_the_stored_clerk_and_escape_wildcards() {
        let stored = serde_json::to_string(&Clerk {
            id: "clerk_1".into(),
            window: Some("3号窗口".into()),
            hall: Some("鼓楼区政务服务中心".into()),
        })
        .unwrap();
        assert_eq!(
            clerk_pattern(ReceivedBy::Clerk("clerk_1")),
            r#"{"id":"clerk\_1",%"#
        );
        assert!(stored.starts_with(r#"{"id":"clerk_1","#), "{stored}");
        assert_eq!(
            clerk_pattern(ReceivedBy::Hall("鼓楼区政务服务中心")),
            r#"%"hall":"鼓楼区政务服务中心"}"#
        );
        assert!(
            stored.ends_with(r#""hall":"鼓楼区政务服务中心"}"#),
            "{stored}"
        );
    }
}
