//! Simulated department systems for the demo, the end-to-end tests and the benchmarks.
//!
//! Each department behaves like its real counterpart as described in `PROTOCOLS.md` (next to
//! this crate's `Cargo.toml`): its own field names, encoding and authentication, and strict
//! refusal of anything else, so that adapters are tested against the protocol and not against
//! a lenient stand-in. Every department also has the harness endpoints `POST /_sim/faults` and
//! `GET /_sim/stats`, mirrored in-process by [`Department`].
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let deps = departments::start(departments::Options::default()).await?;
//! println!("tax at {}", deps.tax.base_url);
//! deps.tax.set_faults(departments::Faults { down: true, ..Default::default() });
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - `common`: fault switches, counters and the idempotency store all departments share, and
//!   the layer that applies the faults.
//! - `tax`: 税务, JSON with HMAC-SHA256/HMAC-SM3 signed requests, timestamps and nonces.
//! - `real_estate`: 不动产登记, SOAP 1.1 in GBK.
//! - `public_security`: 公安, XML over mutual TLS.
//! - `market_regulation`: 市场监管, OAuth2 client credentials, REST, signed callbacks.
//! - `tls`: the generated CA and certificates, the mutual-TLS server, the callback client.
//! - `xml`: a tiny element tree over quick-xml for the two XML departments.
//! - `multipart`: MIME multipart bodies read as they stream in (tax's uploads, real estate's
//!   MTOM packages).
//! - `sharing`: 免提交 licences verified at the gateway's licence-sharing endpoint, each
//!   department with its own token ([`GatewayLink`]), the same way for all four.
//! - `actions`: the supplements (补正) and withdrawals (撤回) each department took, once per
//!   request id ([`Department::supplements`], [`Department::withdrawals`]). What makes each
//!   department return a matter (退回补正), and how it takes them:
//!   - tax: a 税务登记 whose 生产经营地址 (`scjydz`) does not give a house number (no `号`) is
//!     returned at decision (`zt` 04) asking for `scjydz` and the material `premises-proof`
//!     (经营场所证明); 补正 `POST /api/v1/bzsq`, 撤回 `POST /api/v1/cxsq`, both signed. A
//!     registration in 受理中 takes the materials its application promised (容缺) by `bzsq`
//!     too (补交容缺材料), staying as it was; with the `lapse_returned` switch a returned one
//!     is ended at its next status query (03, 逾期未补正).
//!   - real estate: a transfer declared below the flat's assessed value (10 000 yuan/m²) is
//!     returned (`退回` with `bzxx`) asking for `jyjg`, and for the material `sale-contract`
//!     stating the corrected price when the transfer filed a contract (asked again until a
//!     supplement brings it); `submitSupplement`, `withdrawApplication`.
//!   - public security: a seal filing whose `seal-impression` is under 8 KiB is returned at
//!     once (`blzt` 2) asking for a readable one; `POST /gaxt/kzbz`, `/gaxt/kzch`, `/gaxt/kzcx`.
//!   - market regulation: a licence application whose `businessScope` sums up with 等, or
//!     whose `address` is a dwelling (住宅: the material `premises-proof` with the owners'
//!     consent, until a supplement brings the file), is returned by callback (`RETURNED` with
//!     `supplement`); `POST
//!     /api/licences/{no}/supplements`, `POST …/withdrawal` (licences and food permits). An
//!     application being decided takes its promised (容缺) materials by the same supplement
//!     route (补交容缺材料), decided at its time as before.
//! - [`social_security`]: 人力资源和社会保障 (社保), 单位参保登记 over fixed-length GB18030
//!   messages (定长报文) signed with SM2 both ways; its keys are made at start and written
//!   beside the public-security certificates.
//! - [`sms`]: 短信平台, the notification channel: templates, sender signature, out-id,
//!   per-number rate limit, delivery receipts by callback.
//! - [`national`]: 全国好差评系统, where evaluations are reported: its own JSON fields and codes,
//!   HMAC-SM3 signed requests, idempotent on `evaluateId`, made to fail on demand.
//! - [`ids`]: identifier checks (GB 11643, GB 32100, GB 11714) and masking for logs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

mod actions;
mod common;
pub mod ids;
mod market_regulation;
mod multipart;
pub mod national;
mod public_security;
mod real_estate;
mod sharing;
pub mod sms;
pub mod social_security;
mod tax;
mod tls;
mod xml;

pub use actions::{ActionKind, ActionRecord};
pub use common::{Faults, Stats};

/// How to start the departments.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the public-security PKI is written (`ca.pem`, `client.pem`, `client-key.pem`, …).
    pub cert_dir: PathBuf,
    /// How long after receipt an application is decided (tax, real estate, market regulation).
    pub ticket_delay: Duration,
    /// Lifetime of market-regulation access tokens.
    pub token_ttl: Duration,
    pub ports: Ports,
    /// How departments reach the gateway's licence-sharing endpoint, each with its own token.
    pub gateway: GatewayLink,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cert_dir: std::env::temp_dir().join(format!(
                "departments-certs-{}",
                uuid::Uuid::new_v4().simple()
            )),
            ticket_delay: Duration::from_millis(300),
            token_ttl: Duration::from_secs(600),
            ports: Ports::default(),
            gateway: GatewayLink::default(),
        }
    }
}

/// The bearer tokens the simulated departments present at the gateway's licence-sharing
/// endpoint in the demo and the tests, one per department, so that the gateway's audit log names
/// the department that read (the gateway's config keeps each one's SHA-256 as
/// `[departments.<id>] licence_sharing_key_sha256`). Demo values, published here: a real
/// department's token is its own secret.
pub const TAX_LICENCE_SHARING_TOKEN: &str = "tax-licence-sharing-demo-token";
/// Real estate's; see [`TAX_LICENCE_SHARING_TOKEN`].
pub const REAL_ESTATE_LICENCE_SHARING_TOKEN: &str = "re-licence-sharing-demo-token";
/// Public security's; see [`TAX_LICENCE_SHARING_TOKEN`].
pub const PUBLIC_SECURITY_LICENCE_SHARING_TOKEN: &str = "ps-licence-sharing-demo-token";
/// Market regulation's; see [`TAX_LICENCE_SHARING_TOKEN`].
pub const MARKET_REGULATION_LICENCE_SHARING_TOKEN: &str = "mr-licence-sharing-demo-token";

/// Each department's licence-sharing token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenceSharingTokens {
    pub tax: String,
    pub real_estate: String,
    pub public_security: String,
    pub market_regulation: String,
}

impl Default for LicenceSharingTokens {
    /// The demo tokens ([`TAX_LICENCE_SHARING_TOKEN`] …).
    fn default() -> Self {
        LicenceSharingTokens {
            tax: TAX_LICENCE_SHARING_TOKEN.into(),
            real_estate: REAL_ESTATE_LICENCE_SHARING_TOKEN.into(),
            public_security: PUBLIC_SECURITY_LICENCE_SHARING_TOKEN.into(),
            market_regulation: MARKET_REGULATION_LICENCE_SHARING_TOKEN.into(),
        }
    }
}

/// How the departments reach the gateway to verify a licence an applicant named (免提交):
/// `GET <url>/licence-sharing/v1/licences/{id}` with `Authorization: Bearer <token>`, each with
/// its own token. The URL may be set after the departments start (tests start the gateway after
/// them, on a free port); every clone shares it.
#[derive(Clone, Debug)]
pub struct GatewayLink {
    url: Arc<std::sync::RwLock<Option<String>>>,
    /// Each department's licence-sharing token.
    pub tokens: LicenceSharingTokens,
}

impl Default for GatewayLink {
    /// No URL yet, the demo tokens.
    fn default() -> Self {
        GatewayLink::new(None, LicenceSharingTokens::default())
    }
}

impl GatewayLink {
    /// A link to the gateway at `url` (or none yet) with each department's token.
    pub fn new(url: Option<String>, tokens: LicenceSharingTokens) -> Self {
        GatewayLink {
            url: Arc::new(std::sync::RwLock::new(url)),
            tokens,
        }
    }

    /// The gateway's base URL (`http://127.0.0.1:8080`), once known.
    pub fn url(&self) -> Option<String> {
        self.url.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Point every holder of this link at the gateway's base URL.
    pub fn set_url(&self, url: &str) {
        *self.url.write().unwrap_or_else(|e| e.into_inner()) =
            Some(url.trim_end_matches('/').to_string());
    }
}

/// Ports to listen on, all on 127.0.0.1; 0 picks a free port.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ports {
    pub tax: u16,
    pub real_estate: u16,
    pub public_security: u16,
    pub market_regulation: u16,
    /// The SMS provider (notification channel).
    pub sms: u16,
    /// The national evaluation system.
    pub national: u16,
    /// 社保 (social security).
    pub social_security: u16,
}

/// The four running departments.
#[derive(Clone, Debug)]
pub struct Departments {
    pub tax: Department,
    pub real_estate: Department,
    pub public_security: Department,
    pub market_regulation: Department,
    /// The SMS provider, the gateway's notification channel.
    pub sms: sms::SmsProvider,
    /// The national 好差评 system, where evaluations are reported.
    pub national: national::National,
    /// 社保: fixed-length GB18030 messages signed with SM2.
    pub social_security: social_security::SocialSecurity,
    /// Holds `ca.pem`, `client.pem` and `client-key.pem` for reaching public security, and
    /// social security's SM2 key files.
    pub cert_dir: PathBuf,
    /// How they reach the gateway's licence-sharing endpoint (shared with [`Options::gateway`]:
    /// set its URL once the gateway runs).
    pub gateway: GatewayLink,
}

/// One running department and a handle on its simulator state.
#[derive(Clone, Debug)]
pub struct Department {
    pub name: &'static str,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:<port>`, or `https://localhost:<port>` for public security.
    pub base_url: String,
    sim: Arc<common::Sim>,
}

impl Department {
    /// Same effect as `POST /_sim/faults`.
    pub fn set_faults(&self, f: Faults) {
        self.sim.set_faults(f);
    }

    /// Same as `GET /_sim/stats`.
    pub fn stats(&self) -> Stats {
        self.sim.stats()
    }

    /// Unique applications received, by request id.
    pub fn applications(&self) -> usize {
        self.sim.stats().applications
    }

    /// Requests received for `operation` (faulted and refused ones included).
    pub fn received(&self, operation: &str) -> usize {
        self.sim
            .stats()
            .received
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// Every request's operation and the `traceparent` it carried, in arrival order (faulted and
    /// refused ones included).
    pub fn traceparents(&self) -> Vec<(String, Option<String>)> {
        self.sim.traces()
    }

    /// Request ids of the applications, each once, in order of first arrival.
    pub fn received_ids(&self) -> Vec<String> {
        self.sim.received_ids()
    }

    /// Request ids of every submission that reached the idempotency store, repeats included,
    /// in arrival order: shows whether a retry reused its request id.
    pub fn submitted_ids(&self) -> Vec<String> {
        self.sim.submitted_ids()
    }

    /// The supplements (补正) this department took for the matter it numbered `reference`, in
    /// arrival order, each once (a repeated request id is counted in its `repeats`).
    pub fn supplements(&self, reference: &str) -> Vec<ActionRecord> {
        self.sim.actions.of(ActionKind::Supplement, reference)
    }

    /// The withdrawals (撤回) this department took for `reference`, like [`Self::supplements`].
    pub fn withdrawals(&self, reference: &str) -> Vec<ActionRecord> {
        self.sim.actions.of(ActionKind::Withdrawal, reference)
    }
}

/// Starts all four departments on 127.0.0.1 and returns once they accept connections.
pub async fn start(opts: Options) -> anyhow::Result<Departments> {
    let identity =
        tls::generate(&opts.cert_dir).context("generating the public-security certificates")?;
    let tls_config = tls::server_config(identity)?;

    // Each department verifies licences at the gateway with its own token.
    let tokens = &opts.gateway.tokens;
    let verifier =
        |sim: &common::Sim, token: &str| sharing::Verifier::new(sim.name, &opts.gateway, token);

    let sim = common::Sim::new("tax");
    let verify = verifier(&sim, &tokens.tax)?;
    let tax = serve_plain(
        sim.clone(),
        opts.ports.tax,
        tax::router(sim, opts.ticket_delay, verify),
    )
    .await?;

    let sim = common::Sim::new("real-estate");
    let verify = verifier(&sim, &tokens.real_estate)?;
    let real_estate = serve_plain(
        sim.clone(),
        opts.ports.real_estate,
        real_estate::router(sim, opts.ticket_delay, verify),
    )
    .await?;

    let sim = common::Sim::new("market-regulation");
    let verify = verifier(&sim, &tokens.market_regulation)?;
    let router = market_regulation::router(
        sim.clone(),
        opts.ticket_delay,
        opts.token_ttl,
        tls::callback_client()?,
        verify,
    );
    let market_regulation = serve_plain(sim, opts.ports.market_regulation, router).await?;

    let sim = common::Sim::new("public-security");
    let verify = verifier(&sim, &tokens.public_security)?;
    let listener = bind(sim.name, opts.ports.public_security).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(tls::serve(
        listener,
        tls_config,
        public_security::router(sim.clone(), verify),
        sim.clone(),
    ));
    let public_security = Department {
        name: sim.name,
        addr,
        base_url: format!("https://localhost:{}", addr.port()),
        sim,
    };

    let sms = sms::start(opts.ports.sms).await?;
    let national = national::start(opts.ports.national).await?;
    let social_security = social_security::start(
        opts.ports.social_security,
        opts.ticket_delay,
        &opts.cert_dir,
    )
    .await?;

    Ok(Departments {
        sms,
        national,
        social_security,
        tax,
        real_estate,
        public_security,
        market_regulation,
        cert_dir: opts.cert_dir,
        gateway: opts.gateway,
    })
}

async fn bind(name: &str, port: u16) -> anyhow::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding the {name} department to 127.0.0.1:{port}"))
}

async fn serve_plain(
    sim: Arc<common::Sim>,
    port: u16,
    router: axum::Router,
) -> anyhow::Result<Department> {
    let listener = bind(sim.name, port).await?;
    let addr = listener.local_addr()?;
    let name = sim.name;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(department = name, error = %e, "server stopped");
        }
    });
    Ok(Department {
        name,
        addr,
        base_url: format!("http://127.0.0.1:{}", addr.port()),
        sim,
    })
}
