//! Electronic licences (电子证照) as stored: one per approved step that issues one, found by
//! identifier, case and holder; and the cases of an enterprise (the 企业码 view).

use crate::{Result, Store};
use serde::Serialize;
use sqlx::Row;

/// Who holds a licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HolderKind {
    /// A natural person, by resident identity number.
    Person,
    /// An enterprise, by unified social credit code.
    Enterprise,
}

impl HolderKind {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            HolderKind::Person => "person",
            HolderKind::Enterprise => "enterprise",
        }
    }
}

/// A licence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Licence {
    /// The GB/T 36904 identifier.
    pub id: String,
    /// Machine name of the kind.
    pub kind: String,
    /// Chinese name.
    pub name: String,
    /// The department's own number.
    pub number: String,
    /// Whose it is.
    pub holder_kind: HolderKind,
    /// Identity number or credit code.
    pub holder_id: String,
    /// The holder's name, when the step carried it.
    pub holder_name: Option<String>,
    /// Issuing department id.
    pub issuer: String,
    /// Case id.
    pub case_id: String,
    /// Step id.
    pub step: String,
    /// Unix milliseconds.
    pub issued_at: i64,
    /// The step's outputs (JSON text).
    pub data: String,
}

const COLUMNS: &str = "id, kind, name, number, holder_kind, holder_id, holder_name, issuer, case_id, step, issued_at, data";

impl Store {
    /// Store a licence; false when its step already issued one (the first stands).
    pub async fn insert_licence(&self, l: &Licence) -> Result<bool> {
        let done = sqlx::query(&format!(
            "INSERT INTO licences ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT DO NOTHING"
        ))
        .bind(&l.id)
        .bind(&l.kind)
        .bind(&l.name)
        .bind(&l.number)
        .bind(l.holder_kind.as_str())
        .bind(&l.holder_id)
        .bind(&l.holder_name)
        .bind(&l.issuer)
        .bind(&l.case_id)
        .bind(&l.step)
        .bind(l.issued_at)
        .bind(&l.data)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// One licence by identifier.
    pub async fn licence(&self, id: &str) -> Result<Option<Licence>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM licences WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(licence_from_row))
    }

    /// The licences a case issued, oldest first.
    pub async fn licences_of_case(&self, case_id: &str) -> Result<Vec<Licence>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM licences WHERE case_id = $1 ORDER BY issued_at, id"
        ))
        .bind(case_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(licence_from_row).collect())
    }

    /// The licences a holder holds, oldest first.
    pub async fn licences_of_holder(
        &self,
        kind: HolderKind,
        holder_id: &str,
    ) -> Result<Vec<Licence>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM licences WHERE holder_kind = $1 AND holder_id = $2 ORDER BY issued_at, id"
        ))
        .bind(kind.as_str())
        .bind(holder_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(licence_from_row).collect())
    }

    /// The cases of an enterprise, oldest first: every case a step of which carries its credit code
    /// as a JSON string in its input (`input_codes` lists them also when the input is sealed; the
    /// plain input covers rows from before that column) or outputs (applied for it, or issued it),
    /// and every case that issued it a licence. `credit_code` must be a checked code (0-9 and capitals only), which
    /// keeps it free of `LIKE` wildcards.
    pub async fn cases_of_enterprise(
        &self,
        credit_code: &str,
    ) -> Result<Vec<(String, String, i64)>> {
        let quoted = format!("%\"{credit_code}\"%");
        let rows = sqlx::query(
            "SELECT id, service, created_at FROM cases WHERE id IN (
                 SELECT case_id FROM steps WHERE input_codes LIKE $1 OR input LIKE $2 OR outputs LIKE $3
                 UNION
                 SELECT case_id FROM licences WHERE holder_kind = 'enterprise' AND holder_id = $4)
             ORDER BY created_at, id",
        )
        .bind(&quoted)
        .bind(&quoted)
        .bind(&quoted)
        .bind(credit_code)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("id"), r.get("service"), r.get("created_at")))
            .collect())
    }
}

fn licence_from_row(r: &sqlx::any::AnyRow) -> Licence {
    Licence {
        id: r.get("id"),
        kind: r.get("kind"),
        name: r.get("name"),
        number: r.get("number"),
        holder_kind: if r.get::<String, _>("holder_kind") == "person" {
            HolderKind::Person
        } else {
            HolderKind::Enterprise
        },
        holder_id: r.get("holder_id"),
        holder_name: r.get("holder_name"),
        issuer: r.get("issuer"),
        case_id: r.get("case_id"),
        step: r.get("step"),
        issued_at: r.get("issued_at"),
        data: r.get("data"),
    }
}
