//! The gateway's HTTP edge: the only crate where an error becomes a status code.
//!
//! Portals reach the unified API on one listener, operators the admin API on another; both are
//! plain HTTP or TLS (mutual TLS optional), both carry request ids and W3C trace context, and
//! every answer that is not a success has one shape ([`error`]). The portal API's OpenAPI
//! document is generated from the handlers' own attributes ([`openapi`]).
//!
//! # Layout
//! - [`portal`]: the unified API's routes (catalogue, forms, pre-review, applications, cases,
//!   drafts and their materials, lookups, subjects, supervision, callbacks).
//! - [`licence_sharing`]: departments verify a licence by its identifier, with their own key,
//!   each read in the audit log.
//! - [`admin`]: the operators' routes (adapters, dead letters, audit, lookups, metrics, reload).
//! - [`health`]: `/healthz` and `/readyz`, with departments probed on a schedule.
//! - [`auth`]: portal clients (API keys, JWT) and their scopes; operators.
//! - [`error`]: the one error format.
//! - [`openapi`]: the document; [`docs`]: the page that browses it, served whole by the gateway.
//! - `embedded`: the files pages load, compiled in and served under their content's digest.
//! - [`middleware`]: request ids, trace context and the request span at the edge; the clerk
//!   behind a request.
//! - [`screens`]: the hall's screens (clerks and supervisors on the portal listener, operators
//!   on the admin listener): server-rendered pages, sessions, CSRF, CSP.
//! - [`listener`]: the listeners, plain or TLS (handshakes off the accept path); [`tls`]: their
//!   rustls configuration.

#![warn(missing_docs, unreachable_pub)]

pub mod admin;
pub mod auth;
pub mod docs;
mod embedded;
pub mod error;
pub mod health;
pub mod licence_sharing;
pub mod listener;
pub mod middleware;
pub mod openapi;
pub mod portal;
pub mod screens;
pub mod tls;

use gateway_cases::Orchestrator;
use std::sync::Arc;

/// A listener's app: what the top crate serves.
pub type App = axum::Router;

/// What every handler shares: the case domain (and through it the store and the adapters).
pub type AppState = Arc<Orchestrator>;

/// The portal listener's app: the unified API with its limits, credentials, clerk and trace
/// context on every request, and the departments' routes (licence reads go to `audit`); the
/// clerks' and supervisors' screens beside it when they are on (signed in by their session,
/// not by the API's credentials).
pub fn portal_app(
    orchestrator: Arc<Orchestrator>,
    limits: portal::RequestLimits,
    readiness: Arc<health::Readiness>,
    credentials: auth::Credentials,
    audit: gateway_store::audit::Sink,
    screens: Option<Arc<screens::Screens>>,
) -> App {
    let api = portal::router(orchestrator, limits, readiness, credentials, audit);
    middleware::layer(match screens {
        Some(screens) => screens::portal_router(screens).merge(api),
        None => api,
    })
}

/// The admin listener's app: the operators' routes, readiness, the audit log and the config
/// reload, each request authenticated as an operator.
pub fn admin_app(
    orchestrator: Arc<Orchestrator>,
    readiness: Arc<health::Readiness>,
    reload: Arc<dyn admin::reload::Reload>,
    credentials: auth::Credentials,
    screens: Option<Arc<screens::Screens>>,
) -> App {
    let console = screens.map(|s| screens::admin_router(s, readiness.clone(), reload.clone()));
    let app = admin::router(orchestrator.clone())
        .merge(health::router(orchestrator.clone(), readiness))
        .merge(admin::audit::router(orchestrator))
        .merge(admin::reload::router(reload))
        .layer(axum::middleware::from_fn_with_state(
            credentials,
            auth::admin,
        ));
    middleware::layer(match console {
        Some(console) => console.merge(app),
        None => app,
    })
}
