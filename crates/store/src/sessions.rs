//! Sessions of the hall's screens: one row per signed-in browser, found by the SHA-256 of its
//! session id (the id itself is only in the browser's cookie). Idle and absolute expiry are the
//! caller's: [`Store::touch_session`] moves `last_seen_at`, and a row whose time is past is
//! treated as gone and swept.

use crate::{Result, Store};
use sqlx::Row;

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Hex SHA-256 of the session id.
    pub id_sha256: String,
    /// Who signed in.
    pub username: String,
    /// `clerk`, `supervisor` or `operator`.
    pub role: String,
    /// The name, window and hall at sign-in (JSON text).
    pub profile: String,
    /// The token every change this session makes carries (CSRF).
    pub csrf_token: String,
    /// Unix ms of sign-in.
    pub created_at: i64,
    /// Unix ms of its last request.
    pub last_seen_at: i64,
    /// Unix ms after which it is over whatever its use (absolute expiry).
    pub expires_at: i64,
}

impl Store {
    /// Store a new session.
    pub async fn insert_session(&self, s: &SessionRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO screen_sessions (id_sha256, username, role, profile, csrf_token, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.id_sha256)
        .bind(&s.username)
        .bind(&s.role)
        .bind(&s.profile)
        .bind(&s.csrf_token)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The session whose id has this SHA-256, if stored.
    pub async fn session(&self, id_sha256: &str) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT id_sha256, username, role, profile, csrf_token, created_at, last_seen_at, expires_at
             FROM screen_sessions WHERE id_sha256 = $1",
        )
        .bind(id_sha256)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| SessionRecord {
            id_sha256: r.get(0),
            username: r.get(1),
            role: r.get(2),
            profile: r.get(3),
            csrf_token: r.get(4),
            created_at: r.get(5),
            last_seen_at: r.get(6),
            expires_at: r.get(7),
        }))
    }

    /// Record a session's use at `now` (its idle time starts again).
    pub async fn touch_session(&self, id_sha256: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE screen_sessions SET last_seen_at = $1 WHERE id_sha256 = $2")
            .bind(now)
            .bind(id_sha256)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// End a session (sign-out, or found expired).
    pub async fn delete_session(&self, id_sha256: &str) -> Result<()> {
        sqlx::query("DELETE FROM screen_sessions WHERE id_sha256 = $1")
            .bind(id_sha256)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Remove the sessions past their absolute expiry or idle since before `idle_before`;
    /// how many.
    pub async fn sweep_sessions(&self, now: i64, idle_before: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM screen_sessions WHERE expires_at <= $1 OR last_seen_at < $2")
                .bind(now)
                .bind(idle_before)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }
}
