//! The audit chains' verifications run from the operators' console: each run a row, the last
//! one read back for the console (after a restart, on any node).

use crate::{Result, Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// One verification of the audit chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerification {
    /// When it ran, Unix ms.
    pub at: i64,
    /// The node whose console ran it.
    pub node: String,
    /// The operator who asked for it.
    pub operator: String,
    /// Nothing was wrong.
    pub ok: bool,
    /// Chains checked.
    pub chains: i64,
    /// Records in them.
    pub records: i64,
    /// Seals in them.
    pub seals: i64,
    /// Records the newest seals did not cover yet.
    pub unsealed: i64,
    /// Seal signatures were checked (a key was configured).
    pub signatures_checked: bool,
    /// Each problem found.
    pub problems: Vec<VerificationProblem>,
}

/// One problem a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationProblem {
    /// The chain (its node).
    pub node: String,
    /// The place in it.
    pub seq: i64,
    /// What is wrong.
    pub what: String,
}

impl Store {
    /// Keep a verification of the audit chains.
    pub async fn record_audit_verification(&self, v: &AuditVerification) -> Result<()> {
        let problems = serde_json::to_string(&v.problems)
            .map_err(|e| StoreError::Corrupt(format!("audit verification problems: {e}")))?;
        sqlx::query(
            "INSERT INTO audit_verifications (id, at, node, operator, ok, chains, records, seals,
             unsealed, signatures_checked, problems) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(v.at)
        .bind(&v.node)
        .bind(&v.operator)
        .bind(i64::from(v.ok))
        .bind(v.chains)
        .bind(v.records)
        .bind(v.seals)
        .bind(v.unsealed)
        .bind(i64::from(v.signatures_checked))
        .bind(problems)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The latest verification kept, if any (the newest by time; of two in the same
    /// millisecond, the one kept last).
    pub async fn last_audit_verification(&self) -> Result<Option<AuditVerification>> {
        let row = sqlx::query(
            "SELECT at, node, operator, ok, chains, records, seals, unsealed, signatures_checked,
             problems FROM audit_verifications ORDER BY at DESC, id DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            let problems: String = r.get("problems");
            Ok(AuditVerification {
                at: r.get("at"),
                node: r.get("node"),
                operator: r.get("operator"),
                ok: r.get::<i64, _>("ok") != 0,
                chains: r.get("chains"),
                records: r.get("records"),
                seals: r.get("seals"),
                unsealed: r.get("unsealed"),
                signatures_checked: r.get::<i64, _>("signatures_checked") != 0,
                problems: serde_json::from_str(&problems).map_err(|e| {
                    StoreError::Corrupt(format!("audit_verifications.problems: {e}"))
                })?,
            })
        })
        .transpose()
    }
}
