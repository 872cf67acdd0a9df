//! The tokens of the applicants' status pages (the receipt's QR code): one per case, made
//! once, found by the token.

use crate::{Result, Store};
use sqlx::Row;

impl Store {
    /// The case's status token: `fresh` stored if the case has none yet, else the one it has
    /// (two receipts shown at once agree on one).
    pub async fn status_token(&self, case_id: &str, fresh: &str, now: i64) -> Result<String> {
        sqlx::query(
            "INSERT INTO case_status_links (token, case_id, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (case_id) DO NOTHING",
        )
        .bind(fresh)
        .bind(case_id)
        .bind(now)
        .execute(self.pool())
        .await?;
        let row = sqlx::query("SELECT token FROM case_status_links WHERE case_id = $1")
            .bind(case_id)
            .fetch_one(self.pool())
            .await?;
        Ok(row.get(0))
    }

    /// The case a status token opens, if any.
    pub async fn case_of_status_token(&self, token: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT case_id FROM case_status_links WHERE token = $1")
            .bind(token)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.get(0)))
    }
}
