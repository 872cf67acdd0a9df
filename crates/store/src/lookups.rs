//! The record of every portal lookup: who asked, why, for which case or clerk, and how it
//! ended (the query and the answer are not kept). Written by group commit
//! (`lookup_writer`): concurrent lookups share one transaction, each answered once stored; a
//! lookup alone is written as it begins and again with its outcome.

use crate::{Result, Store};
use gateway_base::model::Clerk;
use serde::Serialize;
use sqlx::Row;

/// What a lookup serves: why, and the case or the clerk.
#[derive(Debug, Clone)]
pub struct LookupServes {
    /// Why the data is looked up.
    pub purpose: String,
    /// The case it serves.
    pub case_id: Option<String>,
    /// The clerk it serves.
    pub clerk: Option<Clerk>,
}

/// A recorded lookup.
#[derive(Debug, Clone, Serialize)]
pub struct LookupRecord {
    /// Unix ms it began.
    pub at: i64,
    /// The portal client that asked.
    pub client: String,
    /// The lookup.
    pub lookup: String,
    /// Why.
    pub purpose: String,
    /// The case it served.
    pub case_id: Option<String>,
    /// The clerk it served.
    pub clerk: Option<serde_json::Value>,
    /// `ok` or the error kind; `pending` while it runs (a lookup begun alone), `cancelled`
    /// when it was dropped before it ended (its client gone, its time bound run out).
    pub outcome: String,
}

impl Store {
    /// A lookup by `client` of `lookup`, serving `served`, begins, before its department is
    /// asked: end what this returns with the lookup's outcome, which returns once its record
    /// is stored (the query and the answer are not kept: only who, why and how). Lookups in
    /// flight share a commit; a lookup alone has its record written while it runs.
    pub fn lookup_begun(
        &self,
        client: &str,
        lookup: &str,
        served: &LookupServes,
    ) -> crate::LookupRecording {
        self.lookups.begun(client, lookup, served)
    }

    /// The latest recorded lookups, newest first: a lookup answered is read with its outcome,
    /// one still running as `pending` (its record written as it began alone).
    pub async fn lookup_records(&self, limit: i64) -> Result<Vec<LookupRecord>> {
        self.lookups.settled().await;
        let rows = sqlx::query(
            "SELECT at, client, lookup, purpose, case_id, clerk, outcome FROM lookup_records
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| LookupRecord {
                at: r.get("at"),
                client: r.get("client"),
                lookup: r.get("lookup"),
                purpose: r.get("purpose"),
                case_id: r.get("case_id"),
                clerk: r
                    .get::<Option<String>, _>("clerk")
                    .and_then(|c| serde_json::from_str(&c).ok()),
                outcome: r.get("outcome"),
            })
            .collect())
    }
}
