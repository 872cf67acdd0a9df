//! The hall's screens: server-rendered pages for the people of a service hall, served by the
//! gateway itself (every template compiled in, every asset embedded: nothing is fetched from
//! outside, a hall's private network has no internet).
//!
//! | where | who | what |
//! | --- | --- | --- |
//! | portal listener, `/screens/clerk/…` | clerk (综合受理窗口) | find a service, its one form, materials, pre-review, submit, receipt, the case |
//! | portal listener, `/screens/supervisor/…` | supervisor (电子监察) | the departments' lights |
//! | admin listener, `/console/…` | operator (运维) | departments' readiness, adapters (upload, stage, promote, roll back), dead letters, audit verification, config reload |
//!
//! Everyone signs in at `<prefix>/login` with a local account (`[[screens.accounts]]`, Argon2
//! password hashes), or, where the hall has a unified identity system (`[screens.oidc]`),
//! through it with OpenID Connect (`oidc`: its role claim mapped to a role, the same session
//! made). A session is a row in the store (only the SHA-256 of its id), so every
//! node of a PostgreSQL deployment knows it; its cookie is HttpOnly, SameSite=Strict, `Secure`
//! with a `__Host-` name. Every page and action checks the session's role ([`session`]);
//! every change carries the session's CSRF token (a hidden `_csrf` field, or `X-CSRF-Token`
//! from the screens' script) and a same-origin `Origin` when the browser sends one. Every
//! answer carries a strict Content-Security-Policy (no inline script or style, no frames).
//! Everything a screen does goes through the same [`gateway_cases::Orchestrator`] calls as the
//! API, with the clerk's identity recorded where the API records `X-Clerk-*`.
//!
//! # Layout
//! - [`accounts`]: the local accounts and their Argon2 hashes; hashing for the CLI.
//! - [`session`]: sessions, cookies, the role guard and the CSRF check.
//! - `page`: the frame every page is rendered in, the security headers, refusals and errors
//!   as Chinese pages.
//! - `assets`: the embedded stylesheet and script, served under a content hash.
//! - `login`: sign-in and sign-out; `oidc`: the identity provider's side of a sign-in.
//! - `clerk`: the clerk's window; `form`: a service's JSON Schema as HTML fields and back.
//! - `applicant`: the applicant's page behind the receipt's QR code (no sign-in, by token).
//! - `console`: the operators' console (admin listener); `supervisor`: the supervisors' wall.
//! - `words`: Chinese for the domain's codes (statuses, lights, timeline events).
//!
//! Templates are in `crates/http/templates/screens/`, assets in `crates/http/assets/screens/`.

pub mod accounts;
mod applicant;
mod assets;
mod clerk;
mod console;
mod form;
mod login;
mod oidc;
mod page;
pub mod session;
mod supervisor;
mod words;

use crate::AppState;
use axum::Router;
use axum::routing::get;
use gateway_base::config::{Role, ScreensConfig};
use std::sync::Arc;

pub use accounts::hash_password;

/// The screens of one gateway: the case domain, the accounts, the session rules.
pub struct Screens {
    orchestrator: AppState,
    accounts: accounts::Accounts,
    sessions: session::Rules,
    /// Sign-in through the hall's identity provider, when configured.
    oidc: Option<oidc::Oidc>,
    /// The console's own state: the audit seals' keys and the chain's last verification.
    console: console::State,
    /// `[screens] public_url`: the portal listener as applicants' phones reach it.
    public_url: Option<String>,
    /// Whether the portal listener serves TLS: the scheme of an address made from a request's
    /// `Host` when no public URL is configured.
    portal_tls: bool,
}

impl Screens {
    /// From the checked `[screens]` section; `None` when the screens are off. Every password
    /// hash is parsed here, so a damaged one stops the start, not a sign-in. `audit_keys` verify
    /// the audit log's seals from the console (the configured signing key's public half).
    /// `portal_tls`: the portal listener serves HTTPS (`[server.tls]`).
    pub fn new(
        config: Option<&ScreensConfig>,
        orchestrator: AppState,
        audit_keys: Vec<gateway_base::signature::Verifier>,
        portal_tls: bool,
    ) -> Result<Option<Arc<Screens>>, String> {
        let Some(config) = config.filter(|c| c.enabled) else {
            return Ok(None);
        };
        Ok(Some(Arc::new(Screens {
            orchestrator,
            accounts: accounts::Accounts::new(&config.accounts)?,
            sessions: session::Rules::from_config(config),
            oidc: config.oidc.as_ref().map(oidc::Oidc::new).transpose()?,
            console: console::State::new(audit_keys),
            public_url: config.public_url.clone(),
            portal_tls,
        })))
    }

    /// The origin (`https://hall.example.gov.cn`) of the configured public URL, if one is set:
    /// the applicant's page's own when a proxy serves it.
    pub(crate) fn public_origin(&self) -> Option<String> {
        let url = url::Url::parse(self.public_url.as_deref()?).ok()?;
        Some(url.origin().ascii_serialization())
    }

    /// The portal listener's address as an applicant outside reaches it, without a trailing
    /// `/`: the configured `public_url`; else the `Host` the clerk's browser used, `https` when
    /// the listener serves TLS. (Forwarded headers are not trusted: anyone can send them.)
    pub(crate) fn public_base(&self, headers: &axum::http::HeaderMap) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or("127.0.0.1");
        let scheme = if self.portal_tls { "https" } else { "http" };
        format!("{scheme}://{host}")
    }
}

/// Where a set of screens is served: its path prefix, its cookie, who may sign in there.
#[derive(Debug)]
pub(crate) struct Desk {
    /// `/screens` or `/console`.
    pub(crate) prefix: &'static str,
    /// The cookie's name without the `__Host-` prefix: the two listeners share a host, and
    /// browsers do not tell cookies apart by port, so each has its own.
    pub(crate) cookie: &'static str,
    /// The roles that sign in here.
    pub(crate) roles: &'static [Role],
}

/// The portal listener's desk: clerks and supervisors.
pub(crate) static HALL: Desk = Desk {
    prefix: "/screens",
    cookie: "gw-hall",
    roles: &[Role::Clerk, Role::Supervisor],
};

/// The admin listener's desk: operators.
pub(crate) static CONSOLE: Desk = Desk {
    prefix: "/console",
    cookie: "gw-console",
    roles: &[Role::Operator],
};

/// What every screen handler shares.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) screens: Arc<Screens>,
    pub(crate) desk: &'static Desk,
}

/// The routes every desk has: sign-in, sign-out, assets.
fn common(ctx: &Ctx) -> Router<Ctx> {
    let p = ctx.desk.prefix;
    Router::new()
        .route(&format!("{p}/login"), get(login::form).post(login::sign_in))
        .route(&format!("{p}/logout"), axum::routing::post(login::sign_out))
        .route(&format!("{p}/login/oidc"), get(login::oidc_start))
        .route(
            &format!("{p}/login/oidc/callback"),
            get(login::oidc_callback),
        )
        .route(&format!("{p}/assets/{{hash}}/{{name}}"), get(assets::serve))
}

/// The screens on the portal listener: the clerk's window and the supervisors' wall.
pub fn portal_router(screens: Arc<Screens>) -> axum::Router {
    let ctx = Ctx {
        screens,
        desk: &HALL,
    };
    let home = Router::new()
        .route("/screens", get(login::home))
        .route("/screens/", get(login::home));
    let clerk = session::guarded(clerk::routes(), &ctx, Role::Clerk);
    let supervisor = session::guarded(supervisor::routes(), &ctx, Role::Supervisor);
    page::secured(
        common(&ctx)
            .merge(home)
            .merge(applicant::routes())
            .merge(clerk)
            .merge(supervisor)
            .with_state(ctx),
    )
}

/// The screens on the admin listener: the operators' console, which shows this node's
/// readiness and reloads its config as the admin API does.
pub fn admin_router(
    screens: Arc<Screens>,
    readiness: Arc<crate::health::Readiness>,
    reload: Arc<dyn crate::admin::reload::Reload>,
) -> axum::Router {
    let ctx = Ctx {
        screens,
        desk: &CONSOLE,
    };
    let console = session::guarded(console::routes(readiness, reload), &ctx, Role::Operator);
    page::secured(common(&ctx).merge(console).with_state(ctx))
}
