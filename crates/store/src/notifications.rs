//! The notification outbox: rows written in the transaction of what caused them (a case event,
//! a light change), claimed by one node, sent with the row's id as the provider's out-id on
//! every attempt, retried with back-off, finished once; and each case's contact (the phone
//! number sealed, the opt-out).
//!
//! **退订 by number.** Beside its sealed value, a case's number is kept as a keyed digest
//! (`<key id>:<hex HMAC-SM3>` under a key derived from the current `[store.encryption]` key;
//! without encryption, where the number is stored as it is anyway, under a fixed label). An
//! applicant's unsubscribe reply ([`Store::record_phone_opt_out`]) finds every case with the
//! number by the digests under each configured key (so rotation keeps matching), opts them
//! out, and records the number's digest, so a case that registers the number later starts
//! opted out. The number itself is neither stored in clear nor searched for.
//!
//! Nothing is recorded while notifications are switched off ([`Store::switch_notifications`]).

use crate::cases::Event;
use crate::{Result, Store};
use gateway_base::model::EventKind;
use gateway_base::redact::mask_phone;
use gateway_base::time::now_ms;
use serde::Serialize;
use sqlx::Row;

/// A stored notification.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationRecord {
    /// Its id: the provider's out-id and the idempotency key of every attempt.
    pub id: String,
    /// The case.
    pub case_id: String,
    /// The step, for notices about one matter and for chases.
    pub step: Option<String>,
    /// The step's department.
    pub department: Option<String>,
    /// `received`, `returned`, `approved`, `rejected`, `withdrawn`, `yellow`, `red`,
    /// `escalation`.
    pub kind: String,
    /// `applicant`, `staff` or `supervisor`.
    pub recipient: String,
    /// `pending`, `sent`, `delivered`, `undeliverable`, `failed`, `opted_out`, `no_contact`,
    /// `skipped`.
    pub state: String,
    /// The number it went to, masked (`139****5678`), once sent.
    pub phone_masked: Option<String>,
    /// The template code it was sent with.
    pub template: Option<String>,
    /// The provider's id of the message.
    pub reference: Option<String>,
    /// Attempts so far.
    pub attempts: i64,
    /// When it is (or was) due, Unix ms.
    pub due_at: i64,
    /// The latest outcome in words.
    pub message: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// When the provider reported it delivered (or undeliverable), Unix ms.
    pub delivered_at: Option<i64>,
}

/// Where a case's applicant is told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseContact {
    /// The phone number, in clear (only the sender and nobody's log sees it).
    pub phone: Option<String>,
    /// Masked for every record and answer.
    pub phone_masked: Option<String>,
    /// The applicant asked not to be told.
    pub opt_out: bool,
    /// Who opted the case out: `portal` (the case's owner) or `reply` (the applicant's
    /// unsubscribe reply to a message).
    pub opted_out_by: Option<String>,
}

/// A chase written with a light change: its kind, recipient and when it is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChase {
    /// `yellow`, `red` or `escalation`.
    pub kind: &'static str,
    /// `staff` or `supervisor`.
    pub recipient: &'static str,
    /// Unix ms (the end of the quiet hours, when it arose in them).
    pub due_at: i64,
}

const COLUMNS: &str = "id, case_id, step, department, kind, recipient, state, phone_masked, template, reference, attempts, due_at, message, created_at, updated_at, delivered_at";

/// The applicant notice an event causes, if any: the case received, or a step's state turned
/// to one the applicant hears of.
fn notice_of(event: &Event<'_>) -> Option<&'static str> {
    if event.kind == EventKind::Received && event.step.is_none() {
        return Some("received");
    }
    // Matched on the stored text, so states added to the model later (withdrawn) need no
    // change here.
    match event.state?.as_str() {
        "returned" => Some("returned"),
        "approved" => Some("approved"),
        "rejected" => Some("rejected"),
        "withdrawn" => Some("withdrawn"),
        _ => None,
    }
}

/// Record the applicant notice `event` causes, in the event's own transaction (called by
/// `insert_event`): one row per event, keyed by its id, so a repeat is impossible; none while
/// notifications are switched off, and none for a state the step already had (a repeated
/// status report).
pub(crate) async fn enqueue_for_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    case_id: &str,
    at: i64,
    event_id: &str,
    event: &Event<'_>,
) -> Result<()> {
    let Some(kind) = notice_of(event) else {
        return Ok(());
    };
    let now = now_ms();
    // One statement: nothing while switched off, nor for a state the step already had (its
    // previous state-bearing event says the same).
    sqlx::query(
        "INSERT INTO notifications (id, case_id, step, department, kind, recipient, source, state, attempts, due_at, created_at, updated_at)
         SELECT $1, $2, $3, $4, $5, 'applicant', $6, 'pending', 0, $7, $8, $9
         WHERE EXISTS (SELECT 1 FROM notification_switch)
         AND ($3 IS NULL OR COALESCE((SELECT state FROM events WHERE case_id = $2 AND step = $3
              AND state IS NOT NULL AND id <> $6 ORDER BY id DESC LIMIT 1), '') <> $10)
         ON CONFLICT (source, recipient) DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(case_id)
    .bind(event.step)
    .bind(event.department)
    .bind(kind)
    .bind(event_id)
    .bind(at)
    .bind(now)
    .bind(now)
    .bind(event.state.map(|s| s.as_str()).unwrap_or(""))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One outbox row, if notifications are switched on and the (source, recipient) is new.
#[allow(
    clippy::too_many_arguments,
    reason = "one row insert, named at the call site"
)]
async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    case_id: &str,
    step: Option<&str>,
    department: Option<&str>,
    kind: &str,
    recipient: &str,
    source: &str,
    due_at: i64,
) -> Result<()> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO notifications (id, case_id, step, department, kind, recipient, source, state, attempts, due_at, created_at, updated_at)
         SELECT $1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $9, $10
         WHERE EXISTS (SELECT 1 FROM notification_switch)
         ON CONFLICT (source, recipient) DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(case_id)
    .bind(step)
    .bind(department)
    .bind(kind)
    .bind(recipient)
    .bind(source)
    .bind(due_at)
    .bind(now)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Record chases for a light change, in its transaction.
pub(crate) async fn enqueue_chases(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    case_id: &str,
    step: &str,
    department: &str,
    light: &str,
    chases: &[NewChase],
) -> Result<()> {
    let source = format!("light:{case_id}:{step}:{light}");
    for chase in chases {
        insert(
            tx,
            case_id,
            Some(step),
            Some(department),
            chase.kind,
            chase.recipient,
            &source,
            chase.due_at,
        )
        .await?;
    }
    Ok(())
}

fn contact_place(case_id: &str) -> String {
    format!("case_contacts.phone:{case_id}")
}

/// The place phone digests are made for (the keyed digest's context).
const PHONE_DIGEST_PLACE: &str = "phone";

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// The keyed digests of a phone number, the current key's first (what it is stored as),
    /// then the older keys' (what it may have been stored as).
    fn phone_digests(&self, phone: &str) -> Vec<String> {
        match &self.cipher {
            Some(cipher) => cipher.keyed_digests(PHONE_DIGEST_PLACE, phone),
            // No payload key: the number is stored as it is, and its digest can hide nothing
            // more; a fixed label keeps the column's form.
            None => vec![format!(
                "-:{}",
                sdk::sign::hmac_sm3_hex(b"gateway keyed digest v1 (no key)", phone.as_bytes())
            )],
        }
    }

    /// Give the digest to contacts stored without one (before migration 0006): opened and
    /// digested once, so a reply finds them too.
    async fn digest_old_contacts(&self) -> Result<()> {
        let rows = sqlx::query(
            "SELECT case_id, phone FROM case_contacts WHERE phone IS NOT NULL AND phone_digest IS NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let case_id: String = r.get("case_id");
            let phone = self.unseal(&contact_place(&case_id), r.get("phone"))?;
            let digest = self.phone_digests(&phone).swap_remove(0);
            sqlx::query(
                "UPDATE case_contacts SET phone_digest = $1 WHERE case_id = $2 AND phone_digest IS NULL",
            )
            .bind(digest)
            .bind(&case_id)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// The applicant whose number is `phone` replied 退订 to `channel` (the provider's id of
    /// the reply `reference`): every case with the number is opted out (`opted_out_by` =
    /// `reply`; one the portal opted out stays as it is), and the number is remembered, so a
    /// case registering it later starts opted out — in one transaction. The number of cases
    /// opted out now.
    pub async fn record_phone_opt_out(
        &self,
        channel: &str,
        phone: &str,
        reference: &str,
    ) -> Result<u64> {
        self.digest_old_contacts().await?;
        let digests = self.phone_digests(phone);
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO phone_opt_outs (phone_digest, phone_masked, channel, reference, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (phone_digest) DO NOTHING",
        )
        .bind(&digests[0])
        .bind(mask_phone(phone))
        .bind(channel)
        .bind(reference)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let sql = format!(
            "UPDATE case_contacts SET opt_out = 1, opted_out_by = 'reply', updated_at = $1
             WHERE opt_out = 0 AND phone_digest IN ({})",
            placeholders(2, digests.len())
        );
        let mut query = sqlx::query(&sql).bind(now);
        for d in &digests {
            query = query.bind(d);
        }
        let opted = query.execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(opted)
    }

    /// Switch notifications on through `channel`, or off (`None`): what `[notifications]` says
    /// at start-up. While off, no notification is recorded.
    pub async fn switch_notifications(&self, channel: Option<&str>) -> Result<()> {
        // An upsert, not delete-then-insert: nodes starting together on one store do not
        // collide.
        match channel {
            Some(channel) => sqlx::query(
                "INSERT INTO notification_switch (id, channel, updated_at) VALUES (1, $1, $2)
                 ON CONFLICT (id) DO UPDATE SET channel = excluded.channel, updated_at = excluded.updated_at",
            )
            .bind(channel)
            .bind(now_ms())
            .execute(&self.pool)
            .await?,
            None => sqlx::query("DELETE FROM notification_switch")
                .execute(&self.pool)
                .await?,
        };
        Ok(())
    }

    /// Pending notifications due by `now`, unclaimed (or their claim expired), oldest first.
    pub async fn due_notifications(&self, now: i64, limit: i64) -> Result<Vec<NotificationRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE state = 'pending' AND due_at <= $1
             AND (claim_until IS NULL OR claim_until < $2) ORDER BY due_at, id LIMIT $3"
        ))
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(from_row).collect())
    }

    /// Claim a due notification for `node` until `until`; false when another node holds it or
    /// it is no longer pending.
    pub async fn claim_notification(&self, id: &str, node: &str, until: i64) -> Result<bool> {
        let now = now_ms();
        let claimed = sqlx::query(
            "UPDATE notifications SET claimed_by = $1, claim_until = $2
             WHERE id = $3 AND state = 'pending' AND due_at <= $4 AND (claim_until IS NULL OR claim_until < $5)",
        )
        .bind(node)
        .bind(until)
        .bind(id)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }

    /// Release the notification claims a node holds (a restarted node takes its work back).
    pub async fn release_notification_claims(&self, node: &str) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE notifications SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = $1 AND state = 'pending'",
        )
        .bind(node)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// The provider took it: `reference` is its id of the message.
    pub async fn notification_sent(
        &self,
        id: &str,
        reference: &str,
        phone_masked: &str,
        template: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE notifications SET state = 'sent', reference = $1, phone_masked = $2, template = $3,
             attempts = attempts + 1, message = NULL, updated_at = $4, claimed_by = NULL, claim_until = NULL
             WHERE id = $5 AND state = 'pending'",
        )
        .bind(reference)
        .bind(phone_masked)
        .bind(template)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An attempt failed: try again at `next_at` (an attempt spent).
    pub async fn notification_retry(&self, id: &str, message: &str, next_at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE notifications SET attempts = attempts + 1, message = $1, due_at = $2, updated_at = $3,
             claimed_by = NULL, claim_until = NULL WHERE id = $4 AND state = 'pending'",
        )
        .bind(message)
        .bind(next_at)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Not sent now, and no attempt spent (waiting for a contact, the adapter busy): due again
    /// at `next_at`.
    pub async fn notification_postpone(
        &self,
        id: &str,
        message: Option<&str>,
        next_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE notifications SET due_at = $1, message = COALESCE($2, message), claimed_by = NULL, claim_until = NULL
             WHERE id = $3 AND state = 'pending'",
        )
        .bind(next_at)
        .bind(message)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// It ends without being sent (`failed`, `opted_out`, `no_contact`, `skipped`).
    pub async fn notification_finished(
        &self,
        id: &str,
        state: &str,
        message: &str,
        phone_masked: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE notifications SET state = $1, message = $2, phone_masked = COALESCE($3, phone_masked),
             updated_at = $4, claimed_by = NULL, claim_until = NULL WHERE id = $5 AND state = 'pending'",
        )
        .bind(state)
        .bind(message)
        .bind(phone_masked)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The notification the provider's id names.
    pub async fn notification_by_reference(
        &self,
        reference: &str,
    ) -> Result<Option<NotificationRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE reference = $1"
        ))
        .bind(reference)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(from_row))
    }

    /// The provider's delivery receipt: `delivered` or `undeliverable`, once (a repeated
    /// receipt changes nothing). True when recorded now.
    pub async fn notification_receipt(
        &self,
        id: &str,
        delivered: bool,
        message: Option<&str>,
    ) -> Result<bool> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE notifications SET state = $1, message = COALESCE($2, message), delivered_at = $3, updated_at = $4
             WHERE id = $5 AND state = 'sent'",
        )
        .bind(if delivered {
            "delivered"
        } else {
            "undeliverable"
        })
        .bind(message)
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// A case's notifications, oldest first.
    pub async fn case_notifications(&self, case_id: &str) -> Result<Vec<NotificationRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE case_id = $1 ORDER BY created_at, id"
        ))
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(from_row).collect())
    }

    /// Where a case's applicant is told, if the portal said.
    pub async fn case_contact(&self, case_id: &str) -> Result<Option<CaseContact>> {
        let row = sqlx::query(
            "SELECT phone, phone_masked, opt_out, opted_out_by FROM case_contacts WHERE case_id = $1",
        )
        .bind(case_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let phone = row
            .get::<Option<String>, _>("phone")
            .map(|p| self.unseal(&contact_place(case_id), p))
            .transpose()?;
        Ok(Some(CaseContact {
            phone,
            phone_masked: row.get("phone_masked"),
            opt_out: row.get::<i64, _>("opt_out") != 0,
            opted_out_by: row.get("opted_out_by"),
        }))
    }

    /// Set a case's phone number (sealed, with its digest) and/or opt-out; what is not given
    /// stays. A number whose owner replied 退订 opts the case out unless `opt_out` says
    /// otherwise (the portal's explicit opt-in for this case). Pending applicant notices
    /// waiting for a number are due at once.
    pub async fn set_case_contact(
        &self,
        case_id: &str,
        phone: Option<&str>,
        opt_out: Option<bool>,
    ) -> Result<CaseContact> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let sealed = phone.map(|p| self.seal(&contact_place(case_id), p.to_string()));
        let masked = phone.map(mask_phone);
        // The number's digests (none: a digest nothing has), for the 退订 check, which is in
        // the upsert itself: a reply recorded at the same moment is seen or sees this row.
        let digests = phone.map_or_else(|| vec![String::new()], |p| self.phone_digests(p));
        let replied = format!(
            "EXISTS (SELECT 1 FROM phone_opt_outs WHERE phone_digest IN ({}))",
            placeholders(9, digests.len())
        );
        // The portal's word first, else the number's 退订; a case the portal opted out stays
        // `portal`.
        let sql = format!(
            "INSERT INTO case_contacts (case_id, phone, phone_masked, phone_digest, opt_out, opted_out_by, updated_at)
             VALUES ($1, $2, $3, $4, COALESCE($5, CASE WHEN {replied} THEN 1 ELSE 0 END),
                     CASE WHEN $6 = 1 THEN 'portal' WHEN $7 = 1 AND {replied} THEN 'reply' END, $8)
             ON CONFLICT (case_id) DO UPDATE SET
               phone = COALESCE(excluded.phone, case_contacts.phone),
               phone_masked = COALESCE(excluded.phone_masked, case_contacts.phone_masked),
               phone_digest = COALESCE(excluded.phone_digest, case_contacts.phone_digest),
               opt_out = COALESCE($5, CASE WHEN {replied} THEN 1 ELSE case_contacts.opt_out END),
               opted_out_by = CASE WHEN $7 = 0 THEN excluded.opted_out_by
                 WHEN {replied} AND case_contacts.opt_out = 0 THEN 'reply'
                 ELSE case_contacts.opted_out_by END,
               updated_at = excluded.updated_at"
        );
        let mut query = sqlx::query(&sql)
            .bind(case_id)
            .bind(sealed.as_deref())
            .bind(masked.as_deref())
            .bind(phone.map(|_| digests[0].as_str()))
            .bind(opt_out.map(i64::from))
            .bind(i64::from(opt_out == Some(true)))
            .bind(i64::from(opt_out.is_none()))
            .bind(now);
        for d in &digests {
            query = query.bind(d);
        }
        query.execute(&mut *tx).await?;
        if phone.is_some() {
            sqlx::query(
                "UPDATE notifications SET due_at = $1 WHERE case_id = $2 AND recipient = 'applicant' AND state = 'pending' AND due_at > $3",
            )
            .bind(now)
            .bind(case_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(self.case_contact(case_id).await?.unwrap_or_default())
    }
}

fn from_row(r: &sqlx::any::AnyRow) -> NotificationRecord {
    NotificationRecord {
        id: r.get("id"),
        case_id: r.get("case_id"),
        step: r.get("step"),
        department: r.get("department"),
        kind: r.get("kind"),
        recipient: r.get("recipient"),
        state: r.get("state"),
        phone_masked: r.get("phone_masked"),
        template: r.get("template"),
        reference: r.get("reference"),
        attempts: r.get("attempts"),
        due_at: r.get("due_at"),
        message: r.get("message"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        delivered_at: r.get("delivered_at"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_applicant_hears_of_receipt_and_of_the_states_that_concern_them() {
        use gateway_base::model::StepState;
        let event = |kind, step, state| Event {
            step,
            department: None,
            kind,
            state,
            message: None,
        };
        assert_eq!(
            notice_of(&event(EventKind::Received, None, None)),
            Some("received")
        );
        for (state, notice) in [
            (StepState::Returned, Some("returned")),
            (StepState::Approved, Some("approved")),
            (StepState::Rejected, Some("rejected")),
            (StepState::Withdrawn, Some("withdrawn")),
            (StepState::Accepted, None),
            (StepState::Pending, None),
            (StepState::Failed, None),
        ] {
            let e = event(EventKind::Status, Some("s"), Some(state));
            assert_eq!(notice_of(&e), notice, "{state}");
        }
        assert_eq!(notice_of(&event(EventKind::Ready, Some("s"), None)), None);
    }
}
