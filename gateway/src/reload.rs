//! Reloading departments, matters, services and clients on a running gateway.
//!
//! On `SIGHUP` or `POST /admin/v1/config/reload`, the config file the gateway was started with
//! is read again and checked whole, as at start-up, and then against the running gateway:
//! every department connection is built (TLS files read), component files new to the store
//! pass every admission check, the versions serving now still fit the new catalogue, the
//! catalogue is built against what will serve, and nothing that open cases still use is
//! removed. Any problem refuses the new config whole (file, key, reason) and the old one keeps
//! serving. Otherwise it is applied by pointer swaps: requests and calls in flight finish on
//! the view they started with, new ones see the new one.
//!
//! What is applied: departments (added with their component files, removed, or changed: base
//! URL, timeouts, TLS files, settings and secrets, delivery pacing, poll interval, licence-sharing
//! key: a removed or changed key is refused from the next request on), matters and
//! services, portal clients and JWT settings, operators, and `[deadlines]` (the holiday calendar
//! file, read and checked whole with the config, and the yellow rule). What is not (listen
//! addresses, the store, the audit log, engine and adapter limits, …) is reported as needing a
//! restart and left as it runs.
//!
//! Deadlines are computed on every read from the case's receipt, its matter's limit and the
//! calendar in force, so a new calendar moves the deadlines, lights and remaining working days
//! of open steps from the next read; each open step whose deadline moved gets a
//! `deadline_moved` event on its case's timeline (see `gateway_cases::deadlines::record_moves`).
//!
//! Cases already stored are never dropped by a reload: a department, matter or service that
//! open steps still use cannot be removed (the reload is refused, naming how many), so every
//! stored case goes on to its end or fails visibly. (An application accepted by a request that
//! took the old catalogue while the reload was being checked is the one gap: its service may
//! leave with it; its steps still deliver and poll, since those read the store.)
//!
//! Each node reads its own file. If the store fails while a reload stores and activates the
//! config's component files, the reload answers 500 and nothing else is swapped; a route already
//! written is followed by the nodes' sync like any activation.

use gateway_base::config::reload::{NeedsRestart, ReloadError, Reloaded};
use gateway_base::config::{Config, ConfigError};
use gateway_cases::Orchestrator;
use gateway_cases::catalogue::Catalogue;
use gateway_cases::deadlines::Deadlines;
use gateway_http::auth::{Authenticator, Credentials};
use gateway_plugins::adapters::AdapterPlan;
use gateway_plugins::connection::Connection;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Reloads the config of one running gateway.
pub struct Reloader {
    /// The config the gateway started with: what restart-only settings are compared against.
    started: Config,
    /// The config in force; the lock also keeps reloads one at a time.
    current: tokio::sync::Mutex<Config>,
    orchestrator: Arc<Orchestrator>,
    credentials: Credentials,
    readiness: Arc<gateway_http::health::Readiness>,
    audit: gateway_store::audit::Sink,
}

impl Reloader {
    /// A reloader for a gateway started from `config`.
    pub fn new(
        config: Config,
        orchestrator: Arc<Orchestrator>,
        credentials: Credentials,
        readiness: Arc<gateway_http::health::Readiness>,
        audit: gateway_store::audit::Sink,
    ) -> Arc<Reloader> {
        Arc::new(Reloader {
            started: config.clone(),
            current: tokio::sync::Mutex::new(config),
            orchestrator,
            credentials,
            readiness,
            audit,
        })
    }

    /// The file reloads read.
    pub fn path(&self) -> &Path {
        &self.started.source
    }

    /// Read the config file again, check it whole, and apply it or refuse it whole. Logged and
    /// counted in `gateway_config_reloads_total{outcome}` (`applied`, `refused`, `failed`).
    pub async fn reload(&self, operator: &str) -> Result<Reloaded, ReloadError> {
        let outcome = self.reload_checked(operator).await;
        let file = self.path().display().to_string();
        let label = match &outcome {
            Ok(reloaded) => {
                tracing::info!(%operator, %file, changes = ?reloaded.changes, needs_restart = ?reloaded.needs_restart.iter().map(|n| &n.key).collect::<Vec<_>>(), "config reloaded");
                "applied"
            }
            Err(ReloadError::Refused(problems)) => {
                let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
                tracing::warn!(%operator, %file, ?problems, "config reload refused; the running config keeps serving");
                "refused"
            }
            Err(ReloadError::Failed(why)) => {
                tracing::error!(%operator, %file, error = %why, "config reload failed");
                "failed"
            }
        };
        metrics::counter!("gateway_config_reloads_total", "outcome" => label).increment(1);
        outcome
    }

    async fn reload_checked(&self, operator: &str) -> Result<Reloaded, ReloadError> {
        let mut current = self.current.lock().await;
        let config = Config::load(self.path()).map_err(|e| ReloadError::Refused(vec![e]))?;
        let file = config.source.clone();
        let catalogue_file = config.resolve(&config.catalogue);
        let mut problems = Vec::new();
        let mut connections = BTreeMap::new();
        let mut probes = BTreeMap::new();
        for (id, department) in &config.departments {
            let built = Connection::new(&config, department)
                .and_then(|c| Ok((c, Connection::new(&config, department)?)));
            match built {
                Ok((connection, probe)) => {
                    connection.attach_audit(self.audit.recorder(id));
                    connections.insert(id.clone(), connection);
                    probes.insert(id.clone(), probe);
                }
                Err(e) => problems.push(ConfigError {
                    file: file.clone(),
                    position: None,
                    key: format!(
                        "departments.{id}.{}",
                        if department.tls.is_some() {
                            "tls"
                        } else {
                            "base_url"
                        }
                    ),
                    reason: format!("the connection cannot be built: {e:#}"),
                }),
            }
        }
        // A certificate that cannot be read has already refused its connection above; this
        // reports only what that did not (an unreadable listener certificate).
        let certificates = gateway_base::certificates::inventory(&config).unwrap_or_else(|e| {
            if problems.is_empty() {
                problems.push(ConfigError {
                    file: file.clone(),
                    position: None,
                    key: "server.tls".into(),
                    reason: format!("a certificate cannot be read: {e:#}"),
                });
            }
            Vec::new()
        });
        problems.extend(self.open_work(&current, &config).await?);
        let adapters = &self.orchestrator.adapters();
        let _held = adapters.hold_changes().await;
        let plan = match adapters.plan(&config, &connections).await {
            Ok(plan) => Some(plan),
            Err(found) => {
                problems.extend(found.into_iter().map(|(key, reason)| ConfigError {
                    file: file.clone(),
                    position: None,
                    key,
                    reason,
                }));
                None
            }
        };
        let catalogue = match &plan {
            Some(plan) => match Catalogue::build(&config, &plan.actives()) {
                Ok(catalogue) => Some(catalogue),
                Err(e) => {
                    let text = format!("{e:#}");
                    let (key, reason) = text.split_once(": ").unwrap_or(("", &text));
                    problems.push(ConfigError {
                        file: catalogue_file,
                        position: None,
                        key: key.to_string(),
                        reason: reason.to_string(),
                    });
                    None
                }
            },
            None => None,
        };
        let operators = config.admin.as_ref().map_or(&[][..], |a| &a.operators[..]);
        let authenticator = match Authenticator::new(&config.auth, operators, &config.departments) {
            Ok(a) => Some(a),
            Err(why) => {
                problems.push(ConfigError {
                    file: file.clone(),
                    position: None,
                    key: "auth".into(),
                    reason: why,
                });
                None
            }
        };
        let (Some(plan), Some(catalogue), Some(authenticator)) = (plan, catalogue, authenticator)
        else {
            return Err(ReloadError::Refused(located(problems)));
        };
        if !problems.is_empty() {
            return Err(ReloadError::Refused(located(problems)));
        }
        let mut changes = changes(&current, &config, &plan);
        adapters
            .commit(plan, &format!("config:{operator}"))
            .await
            .map_err(|e| ReloadError::Failed(e.to_string()))?;
        self.orchestrator.delivery().reconfigure(&config);
        self.orchestrator
            .configure_evaluations(config.evaluations.clone());
        // Templates, quiet hours, contacts as the new config says; the outbox switched on or
        // off with `[notifications]`.
        self.orchestrator
            .configure_notifications(gateway_cases::notifications::Settings::from_config(&config));
        self.orchestrator
            .switch_notifications()
            .await
            .map_err(|e| ReloadError::Failed(e.to_string()))?;
        let polls = config
            .departments
            .iter()
            .map(|(id, d)| (id.clone(), d.poll_interval_ms as i64))
            .collect();
        let before = (self.orchestrator.catalogue(), self.orchestrator.deadlines());
        self.orchestrator.reconfigure(
            Arc::new(catalogue),
            Arc::new(Deadlines::from_config(&config.deadlines)),
            polls,
        );
        let authenticator = authenticator.keep_rates_of(&self.credentials.load());
        self.credentials.store(Arc::new(authenticator));
        self.readiness.reconfigure(probes, certificates);
        // A department the reload adds is probed now, not at the next scheduled round.
        let readiness = self.readiness.clone();
        tokio::spawn(async move { readiness.probe_all().await });
        let needs_restart = needs_restart(&self.started, &config);
        *current = config;
        // The new calendar serves already; what the timelines say of it follows.
        match gateway_cases::deadlines::record_moves(&self.orchestrator, &before.0, &before.1).await
        {
            Ok(moved) if !moved.is_empty() => {
                let cases: BTreeSet<&str> = moved.iter().map(|m| m.case_id.as_str()).collect();
                changes.push(format!(
                    "deadlines moved: {} open step(s) of {} case(s), recorded on their timelines",
                    moved.len(),
                    cases.len()
                ));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "the new calendar serves, but the moved deadlines could not be recorded on the timelines");
                changes.push(format!(
                    "deadlines may have moved; recording it on the timelines failed: {e}"
                ));
            }
        }
        Ok(Reloaded {
            changes,
            needs_restart,
        })
    }

    /// Removals that would strand stored cases: a department that open steps still go to, a
    /// matter or service whose cases are still open.
    async fn open_work(
        &self,
        current: &Config,
        new: &Config,
    ) -> Result<Vec<ConfigError>, ReloadError> {
        let gone_departments: Vec<&String> = current
            .departments
            .keys()
            .filter(|id| !new.departments.contains_key(*id))
            .collect();
        let codes = |c: &Config| -> BTreeSet<String> {
            c.matters.keys().chain(c.services.keys()).cloned().collect()
        };
        let (before, after) = (codes(current), codes(new));
        let gone_services: Vec<&String> = before.difference(&after).collect();
        if gone_departments.is_empty() && gone_services.is_empty() {
            return Ok(Vec::new());
        }
        let open = self
            .orchestrator
            .store()
            .open_step_counts()
            .await
            .map_err(|e| ReloadError::Failed(format!("counting open steps: {e}")))?;
        let mut problems = Vec::new();
        for id in gone_departments {
            let n: i64 = open.iter().filter(|o| &o.0 == id).map(|o| o.2).sum();
            if n > 0 {
                problems.push(ConfigError {
                    file: new.source.clone(),
                    position: None,
                    key: format!("departments.{id}"),
                    reason: format!(
                        "removed while {n} open step(s) of stored cases go to it; remove it once they are finished"
                    ),
                });
            }
        }
        for code in gone_services {
            let n: i64 = open.iter().filter(|o| &o.1 == code).map(|o| o.2).sum();
            if n > 0 {
                let table = if current.services.contains_key(code) {
                    "services"
                } else {
                    "matters"
                };
                problems.push(ConfigError {
                    file: new.resolve(&new.catalogue),
                    position: None,
                    key: format!("{table}.\"{code}\""),
                    reason: format!(
                        "removed while {n} open step(s) of its cases are stored; remove it once they are finished"
                    ),
                });
            }
        }
        Ok(problems)
    }
}

/// What changed between two configs, one line per kind.
fn changes(old: &Config, new: &Config, plan: &AdapterPlan) -> Vec<String> {
    let mut lines = Vec::new();
    let mut diff =
        |what: &str, before: BTreeMap<String, String>, after: BTreeMap<String, String>| {
            let added: Vec<&str> = after
                .keys()
                .filter(|k| !before.contains_key(*k))
                .map(String::as_str)
                .collect();
            let removed: Vec<&str> = before
                .keys()
                .filter(|k| !after.contains_key(*k))
                .map(String::as_str)
                .collect();
            let changed: Vec<&str> = after
                .iter()
                .filter(|(k, v)| before.get(*k).is_some_and(|b| b != *v))
                .map(|(k, _)| k.as_str())
                .collect();
            for (verb, list) in [("added", added), ("removed", removed), ("changed", changed)] {
                if !list.is_empty() {
                    lines.push(format!("{what} {verb}: {}", list.join(", ")));
                }
            }
        };
    fn shown<T: Debug>(m: &BTreeMap<String, T>) -> BTreeMap<String, String> {
        m.iter()
            .map(|(k, v)| (k.clone(), format!("{v:?}")))
            .collect()
    }
    diff(
        "departments",
        shown(&old.departments),
        shown(&new.departments),
    );
    diff("matters", shown(&old.matters), shown(&new.matters));
    diff("services", shown(&old.services), shown(&new.services));
    let clients = |c: &Config| -> BTreeMap<String, String> {
        c.auth
            .clients
            .iter()
            .map(|cl| (cl.id.clone(), format!("{cl:?}")))
            .collect()
    };
    diff("clients", clients(old), clients(new));
    let operators = |c: &Config| -> BTreeMap<String, String> {
        c.admin
            .iter()
            .flat_map(|a| &a.operators)
            .map(|o| (o.id.clone(), format!("{o:?}")))
            .collect()
    };
    diff("operators", operators(old), operators(new));
    if format!("{:?}", old.auth.jwt) != format!("{:?}", new.auth.jwt) {
        lines.push("auth.jwt changed".into());
    }
    lines.extend(calendar_changes(&old.deadlines, &new.deadlines));
    let deployed = plan.deployed();
    if !deployed.is_empty() {
        lines.push(format!(
            "adapters activated from the config: {}",
            deployed.join(", ")
        ));
    }
    lines
}

/// What changed in `[deadlines]`: the calendar file, its years, the yellow rule.
fn calendar_changes(
    old: &gateway_base::config::DeadlinesConfig,
    new: &gateway_base::config::DeadlinesConfig,
) -> Vec<String> {
    let mut lines = Vec::new();
    if old.calendar != new.calendar {
        lines.push(format!(
            "deadlines.calendar changed: {}",
            new.calendar.as_ref().map_or_else(
                || "none (Monday–Friday only)".to_string(),
                |c| c.display().to_string()
            )
        ));
    }
    let (added, removed, changed) = new.days.differences(&old.days);
    let years = |list: Vec<i32>| {
        list.iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (verb, list) in [("added", added), ("removed", removed), ("changed", changed)] {
        if !list.is_empty() {
            lines.push(format!("calendar years {verb}: {}", years(list)));
        }
    }
    if old.yellow_remaining_working_days != new.yellow_remaining_working_days {
        lines.push(format!(
            "deadlines.yellow_remaining_working_days changed: {} -> {}",
            old.yellow_remaining_working_days, new.yellow_remaining_working_days
        ));
    }
    lines
}

/// Settings that changed since start-up and only a restart applies.
pub fn needs_restart(started: &Config, new: &Config) -> Vec<NeedsRestart> {
    let mut found = Vec::new();
    let mut check = |key: String, before: &dyn Debug, after: &dyn Debug, why: &str| {
        if format!("{before:?}") != format!("{after:?}") {
            found.push(NeedsRestart {
                key,
                reason: why.to_string(),
            });
        }
    };
    let (s, n) = (&started.server, &new.server);
    let listener = "bound at start-up";
    check("server.listen".into(), &s.listen, &n.listen, listener);
    check(
        "server.public_url".into(),
        &s.public_url,
        &n.public_url,
        "handed to adapters in every submission since start-up",
    );
    check(
        "server.body_limit_bytes".into(),
        &s.body_limit_bytes,
        &n.body_limit_bytes,
        "a layer of the portal listener",
    );
    check(
        "server.request_timeout_ms".into(),
        &s.request_timeout_ms,
        &n.request_timeout_ms,
        "a layer of the portal listener",
    );
    check(
        "server.node_id".into(),
        &s.node_id,
        &n.node_id,
        "names this node's claims in the store",
    );
    check(
        "server.claim_ms".into(),
        &s.claim_ms,
        &n.claim_ms,
        "read at start-up",
    );
    check(
        "server.shutdown_grace_ms".into(),
        &s.shutdown_grace_ms,
        &n.shutdown_grace_ms,
        "read at start-up",
    );
    check(
        "server.readiness_interval_ms".into(),
        &s.readiness_interval_ms,
        &n.readiness_interval_ms,
        "the probe schedule starts with the gateway",
    );
    check(
        "admin.listen".into(),
        &started.admin.as_ref().map(|a| &a.listen),
        &new.admin.as_ref().map(|a| &a.listen),
        listener,
    );
    check(
        "store.url".into(),
        &started.store.url,
        &new.store.url,
        "the store is opened at start-up",
    );
    let p = (&started.plugins, &new.plugins);
    check(
        "plugins.cache_dir".into(),
        &p.0.cache_dir,
        &p.1.cache_dir,
        "the engine is built at start-up",
    );
    check(
        "plugins.memory_budget_mib".into(),
        &p.0.memory_budget_mib,
        &p.1.memory_budget_mib,
        "the engine is built at start-up",
    );
    check(
        "plugins.limits".into(),
        &p.0.limits,
        &p.1.limits,
        "loaded adapter versions run under the limits they were bound with",
    );
    check(
        "plugins.watch_dir".into(),
        &p.0.watch_dir,
        &p.1.watch_dir,
        "watched from start-up",
    );
    check(
        "plugins.sync_interval_ms".into(),
        &p.0.sync_interval_ms,
        &p.1.sync_interval_ms,
        "read at start-up",
    );
    check(
        "plugins.staged".into(),
        &p.0.staged,
        &p.1.staged,
        "read at start-up",
    );
    check(
        "plugins.trusted_keys".into(),
        &p.0.trusted_keys
            .iter()
            .map(|k| (&k.id, &k.public_key))
            .collect::<Vec<_>>(),
        &p.1.trusted_keys
            .iter()
            .map(|k| (&k.id, &k.public_key))
            .collect::<Vec<_>>(),
        "read at start-up",
    );
    for id in new.departments.keys() {
        if started.departments.contains_key(id) {
            check(
                format!("departments.{id}.limits"),
                &started.limits_of(id),
                &new.limits_of(id),
                "loaded adapter versions run under the limits they were bound with",
            );
        }
    }
    check(
        "log".into(),
        &started.log,
        &new.log,
        "the log subscriber is installed at start-up",
    );
    check(
        "audit".into(),
        &started.audit,
        &new.audit,
        "the audit writer starts with the gateway",
    );
    check(
        "telemetry".into(),
        &started.telemetry,
        &new.telemetry,
        "the trace exporter is installed at start-up",
    );
    found
}

impl gateway_http::admin::reload::Reload for Reloader {
    fn reload<'a>(
        &'a self,
        operator: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Reloaded, ReloadError>> + Send + 'a>> {
        Box::pin(Reloader::reload(self, operator))
    }

    fn file(&self) -> PathBuf {
        self.path().to_path_buf()
    }
}

/// Each problem at the position of its key in its file (the config or the catalogue).
fn located(problems: Vec<ConfigError>) -> Vec<ConfigError> {
    problems.into_iter().map(ConfigError::locate).collect()
}
