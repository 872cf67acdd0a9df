//! The stores a test runs on: a fresh SQLite file always, and a fresh PostgreSQL database when
//! `GATEWAY_TEST_POSTGRES_URL` names a server (dropped after).

use sqlx::Connection as _;

/// A store's URL and what keeps it.
pub struct Database {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// The server and the database to drop after.
    postgres: Option<(String, String)>,
}

impl Database {
    /// A fresh SQLite file (created when first opened, by a store or a bare connection).
    pub fn sqlite() -> Database {
        let dir = tempfile::tempdir().unwrap();
        Database {
            url: format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("store.db").display()
            ),
            _dir: Some(dir),
            postgres: None,
        }
    }

    /// A fresh database (its name starting `prefix`) on the PostgreSQL `server`.
    pub async fn postgres(server: &str, prefix: &str) -> Database {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(server).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
        Database {
            url: format!("{base}/{name}"),
            _dir: None,
            postgres: Some((server.to_string(), name)),
        }
    }

    /// A fresh SQLite file, and a fresh PostgreSQL database (its name starting `prefix`) when
    /// `GATEWAY_TEST_POSTGRES_URL` names a server.
    pub async fn every(prefix: &str) -> Vec<Database> {
        let mut all = vec![Database::sqlite()];
        if let Ok(server) = std::env::var("GATEWAY_TEST_POSTGRES_URL")
            && !server.is_empty()
        {
            all.push(Database::postgres(&server, prefix).await);
        }
        all
    }

    /// Drop the PostgreSQL database (its stores dropped first); a SQLite file goes with its
    /// directory.
    pub async fn drop(self) {
        if let Some((server, name)) = self.postgres {
            let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .unwrap();
        }
    }
}
