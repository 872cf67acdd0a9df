//! Liveness and readiness for orchestrators and load balancers.
//!
//! `GET /healthz` says the process answers, and asks nothing else: restarting a gateway because
//! a department is down would not bring the department back. `GET /readyz` says whether this
//! node can do its work: the store answers, every configured department has its adapter loaded,
//! and every department answered its last probe. Departments are probed on a schedule
//! (`server.readiness_interval_ms`) by one background task, never per readiness request, so a
//! load balancer asking every second does not become load on a department. Every configured
//! certificate is a check too (see [`gateway_base::certificates`]): down once it has expired.
//! The holiday calendar is a check when one is configured (`calendar`): always up, since
//! deadlines are still counted without next year's table, but from 1 November until that table
//! is present its detail names the missing year (see `gateway_cases::deadlines::CalendarWatch`).

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use gateway_plugins::connection::Connection;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The process answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// The state of one readiness check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    /// Passing.
    Up,
    /// Failing; `detail` says why.
    Down,
    /// No result yet (a department not yet probed).
    Unknown,
}

/// Whether a node is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    /// Every check is up.
    Ready,
    /// At least one is not.
    NotReady,
}

/// One readiness check.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReadinessCheck {
    /// `up`, `down`, or `unknown` (a department not yet probed).
    pub state: CheckState,
    /// Why it is down, or what is close to failing (a certificate near its expiry).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub detail: Option<String>,
    /// When a department was last probed, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub checked_at: Option<String>,
    /// When a certificate expires, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub expires_at: Option<String>,
}

impl ReadinessCheck {
    /// A passing check.
    pub fn up(checked_at: Option<String>) -> Self {
        ReadinessCheck {
            state: CheckState::Up,
            detail: None,
            checked_at,
            expires_at: None,
        }
    }

    /// A failing check and why.
    pub fn down(detail: String, checked_at: Option<String>) -> Self {
        ReadinessCheck {
            state: CheckState::Down,
            detail: Some(detail),
            checked_at,
            expires_at: None,
        }
    }

    /// A check with no result yet.
    pub fn unknown() -> Self {
        ReadinessCheck {
            state: CheckState::Unknown,
            detail: Some("not probed yet".into()),
            checked_at: None,
            expires_at: None,
        }
    }

    /// The holiday calendar: up, with the warning as detail while a year is missing.
    pub fn calendar(outlook: &gateway_base::calendar::Outlook) -> Self {
        ReadinessCheck {
            state: CheckState::Up,
            detail: outlook.warning(),
            checked_at: None,
            expires_at: None,
        }
    }

    /// A certificate: down once expired; named with its days left when within `warning_days`.
    pub fn certificate(
        c: &gateway_base::certificates::Certificate,
        now_ms: i64,
        warning_days: u32,
    ) -> Self {
        let days = c.days_left(now_ms);
        let (state, detail) = if now_ms >= c.not_after_ms {
            (CheckState::Down, Some(format!("{} expired", c.subject)))
        } else if days <= i64::from(warning_days) {
            (
                CheckState::Up,
                Some(format!("{} expires in {days} days", c.subject)),
            )
        } else {
            (CheckState::Up, None)
        };
        ReadinessCheck {
            state,
            detail,
            checked_at: None,
            expires_at: Some(gateway_base::time::rfc3339(c.not_after_ms)),
        }
    }
}

/// Whether this node can do its work.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Readiness)]
pub struct ReadinessView {
    /// `ready` when every check is up, else `not_ready`.
    pub status: ReadyStatus,
    /// Checks by name: `store`, `adapter.<department>`, `department.<department>`,
    /// `certificate.<name>`, `calendar`.
    pub checks: BTreeMap<String, ReadinessCheck>,
}

/// The last probe of one department.
#[derive(Debug, Clone)]
struct Probe {
    up: bool,
    detail: Option<String>,
    at_ms: i64,
}

/// The departments' reachability, refreshed in the background.
pub struct Readiness {
    connections: arc_swap::ArcSwap<BTreeMap<String, Arc<Connection>>>,
    probes: RwLock<BTreeMap<String, Probe>>,
    interval: Duration,
    certificates: arc_swap::ArcSwap<Vec<gateway_base::certificates::Certificate>>,
    warning_days: u32,
}

impl Readiness {
    /// A probe connection per configured department: the same base URL and TLS identity as its
    /// adapter's, kept apart so that swapping an adapter does not disturb the probes.
    pub fn new(config: &gateway_base::config::Config) -> anyhow::Result<Arc<Readiness>> {
        let mut connections = BTreeMap::new();
        for (id, department) in &config.departments {
            connections.insert(id.clone(), Connection::new(config, department)?);
        }
        let certificates = gateway_base::certificates::inventory(config)?;
        gateway_base::certificates::publish(&certificates, config.server.certificate_warning_days);
        Ok(Arc::new(Readiness {
            connections: arc_swap::ArcSwap::from_pointee(connections),
            probes: RwLock::default(),
            interval: Duration::from_millis(config.server.readiness_interval_ms),
            certificates: arc_swap::ArcSwap::from_pointee(certificates),
            warning_days: config.server.certificate_warning_days,
        }))
    }

    /// Probe these departments and report these certificates from now on (a reloaded
    /// config's, read before anything was applied).
    pub fn reconfigure(
        &self,
        connections: BTreeMap<String, Arc<Connection>>,
        certificates: Vec<gateway_base::certificates::Certificate>,
    ) {
        self.connections.store(Arc::new(connections));
        gateway_base::certificates::publish(&certificates, self.warning_days);
        self.certificates.store(Arc::new(certificates));
    }

    /// Probe every department now, all at once, each within the interval (at most 5 s).
    pub async fn probe_all(&self) {
        let timeout = self
            .interval
            .clamp(Duration::from_millis(100), Duration::from_secs(5));
        let connections = self.connections.load_full();
        let probes = connections.iter().map(|(id, connection)| async move {
            let outcome = connection.probe(timeout).await;
            let probe = Probe {
                up: outcome.is_ok(),
                detail: outcome
                    .err()
                    .map(|e| gateway_base::redact::redact(&e.to_string())),
                at_ms: gateway_base::time::now_ms(),
            };
            (id.clone(), probe)
        });
        let results = futures::future::join_all(probes).await;
        let mut probes = self.probes.write().unwrap_or_else(|e| e.into_inner());
        for (id, probe) in results {
            let was_up = probes.get(&id).map(|p| p.up);
            if was_up != Some(probe.up) {
                if probe.up {
                    tracing::info!(department = %id, "department reachable");
                } else {
                    tracing::warn!(department = %id, detail = probe.detail.as_deref().unwrap_or_default(), "department unreachable");
                }
            }
            probes.insert(id, probe);
        }
    }

    /// Probe on the schedule until `stopped` turns true (shutdown waits for this task).
    pub async fn run(self: Arc<Self>, mut stopped: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                _ = async {
                    self.probe_all().await;
                    tokio::time::sleep(self.interval).await;
                } => {}
            }
        }
    }

    /// Every check and whether all pass.
    pub(crate) async fn report(&self, o: &gateway_cases::Orchestrator) -> ReadinessView {
        let mut checks = BTreeMap::new();
        let store = tokio::time::timeout(Duration::from_secs(2), o.store().ping()).await;
        checks.insert(
            "store".to_string(),
            match store {
                Ok(true) => ReadinessCheck::up(None),
                Ok(false) => ReadinessCheck::down("the store does not answer".into(), None),
                Err(_) => ReadinessCheck::down("the store did not answer within 2 s".into(), None),
            },
        );
        let probes = self
            .probes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for id in self.connections.load().keys() {
            checks.insert(
                format!("adapter.{id}"),
                match o.adapters().get(id) {
                    Some(_) => ReadinessCheck::up(None),
                    None => ReadinessCheck::down("no adapter loaded".into(), None),
                },
            );
            let at = |p: &Probe| Some(gateway_base::time::rfc3339(p.at_ms));
            checks.insert(
                format!("department.{id}"),
                match probes.get(id) {
                    Some(p) if p.up => ReadinessCheck::up(at(p)),
                    Some(p) => ReadinessCheck::down(p.detail.clone().unwrap_or_default(), at(p)),
                    None => ReadinessCheck::unknown(),
                },
            );
        }
        let now = gateway_base::time::now_ms();
        for c in self.certificates.load().iter() {
            checks.insert(
                format!("certificate.{}", c.name),
                ReadinessCheck::certificate(c, now, self.warning_days),
            );
        }
        if let Some(outlook) = o.calendar_outlook() {
            checks.insert("calendar".to_string(), ReadinessCheck::calendar(&outlook));
        }
        let ready = checks.values().all(|c| c.state == CheckState::Up);
        ReadinessView {
            status: if ready {
                ReadyStatus::Ready
            } else {
                ReadyStatus::NotReady
            },
            checks,
        }
    }
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process answers.", body = Health))
)]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Whether this node can do its work: the store, every adapter, every department.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Every check is up.", body = ReadinessView),
        (status = 503, description = "At least one check is down or not yet known.", body = ReadinessView),
    )
)]
async fn readyz(
    State(o): State<AppState>,
    Extension(readiness): Extension<Arc<Readiness>>,
) -> (StatusCode, Json<ReadinessView>) {
    let report = readiness.report(&o).await;
    let status = if report.status == ReadyStatus::Ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report))
}

/// `/healthz` and `/readyz`; the router they join provides the [`Readiness`] as an extension.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// `/healthz` and `/readyz` alone, for the admin listener.
pub fn router(state: AppState, readiness: Arc<Readiness>) -> axum::Router {
    let (router, _) = routes().split_for_parts();
    router.layer(Extension(readiness)).with_state(state)
}
