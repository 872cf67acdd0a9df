//! A small OpenID Connect provider, the hall's unified identity system (统一身份认证) as the
//! screens' sign-in tests meet it: discovery, JWKS, an authorization endpoint that approves
//! the configured test user at once (no login form: the tests are about the gateway's side)
//! and redirects back with a code, and a token endpoint that checks the client's secret, the
//! redirect URI and the PKCE verifier, takes each code once, and answers with an ID token
//! signed ES256 by a key made when the provider starts.
//!
//! [`Tamper`] makes it misbehave the ways a gateway must notice: a token signed by a key it
//! does not publish, an expired token, another nonce, another audience.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The client the gateway is registered as.
pub const CLIENT_ID: &str = "gateway-screens";
/// Its secret.
pub const CLIENT_SECRET: &str = "oidc-client-secret-0123456789";
/// The id of the key the provider publishes and signs with.
pub const KEY_ID: &str = "hall-idp-es256-1";

/// How the next ID tokens go wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Nothing: tokens as they should be.
    None,
    /// Signed by a key the provider does not publish (under the published key's id).
    OtherKey,
    /// Expired two minutes ago (past any leeway).
    Expired,
    /// A nonce other than the one the authorization request carried.
    Nonce,
    /// Issued for another client.
    Audience,
}

struct Issued {
    redirect_uri: String,
    nonce: String,
    challenge: String,
}

struct Inner {
    issuer: String,
    key: EcdsaKeyPair,
    other_key: EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
    redirect_uris: Mutex<Vec<String>>,
    user: Mutex<Value>,
    tamper: Mutex<Tamper>,
    /// Show a page with a button to approve, rather than approving at once.
    ask: std::sync::atomic::AtomicBool,
    codes: Mutex<HashMap<String, Issued>>,
}

/// A running provider on a free port of 127.0.0.1.
pub struct Provider {
    inner: Arc<Inner>,
    secret_file: tempfile::NamedTempFile,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn key_pair(rng: &ring::rand::SystemRandom) -> EcdsaKeyPair {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), rng).unwrap()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Provider {
    /// Start a provider; its user is `user` (claims added to every ID token: `sub`, `name`,
    /// `roles` …).
    pub async fn start(user: Value) -> Provider {
        Provider::start_on("127.0.0.1", user).await
    }

    /// The same, on another loopback address (`127.0.0.2`: another site than a gateway on
    /// `127.0.0.1`, as a real provider is, for the browser's cookie rules).
    pub async fn start_on(host: &str, user: Value) -> Provider {
        let listener = tokio::net::TcpListener::bind((host, 0)).await.unwrap();
        let issuer = format!("http://{}/realms/hall", listener.local_addr().unwrap());
        let rng = ring::rand::SystemRandom::new();
        let inner = Arc::new(Inner {
            issuer,
            key: key_pair(&rng),
            other_key: key_pair(&rng),
            rng,
            redirect_uris: Mutex::new(Vec::new()),
            user: Mutex::new(user),
            tamper: Mutex::new(Tamper::None),
            ask: Default::default(),
            codes: Mutex::new(HashMap::new()),
        });
        let router = Router::new()
            .route(
                "/realms/hall/.well-known/openid-configuration",
                get(discovery),
            )
            .route("/realms/hall/jwks", get(jwks))
            .route("/realms/hall/authorize", get(authorize).post(approve))
            .route("/realms/hall/token", post(token))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let secret_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(secret_file.path(), format!("{CLIENT_SECRET}\n")).unwrap();
        Provider {
            inner,
            secret_file,
            task,
        }
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Accept this redirect URI for the gateway's client.
    pub fn register(&self, redirect_uri: &str) {
        self.inner
            .redirect_uris
            .lock()
            .unwrap()
            .push(redirect_uri.to_string());
    }

    /// The user the next authorizations approve.
    pub fn set_user(&self, user: Value) {
        *self.inner.user.lock().unwrap() = user;
    }

    /// Whether the authorization endpoint shows a page whose button (`#approve`) approves,
    /// as a real provider's sign-in form does, rather than approving at once: the way back to
    /// the gateway then begins on the provider's site.
    pub fn ask_first(&self, ask: bool) {
        self.inner
            .ask
            .store(ask, std::sync::atomic::Ordering::Relaxed);
    }

    /// How the next ID tokens go wrong.
    pub fn tamper(&self, tamper: Tamper) {
        *self.inner.tamper.lock().unwrap() = tamper;
    }

    /// `[screens.oidc]` for a gateway whose portal listener browsers reach at `hall`: the
    /// secret read from a file, the role claim `roles` (`hall-clerk` a clerk of 鼓楼区政务服务中心
    /// whose window is the `window` claim, else 综合窗口; `hall-supervisor` a supervisor), the
    /// user the `staff_no` claim.
    pub fn config_toml(&self, hall: &str) -> String {
        format!(
            r#"
[screens.oidc]
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = "file:{secret}"
redirect_base = "{hall}"
user_claim = "staff_no"
window_claim = "window"

[[screens.oidc.roles]]
value = "hall-clerk"
role = "clerk"
window = "综合窗口"
hall = "鼓楼区政务服务中心"
scopes = ["apply:*", "lookup:*", "cases:all"]

[[screens.oidc.roles]]
value = "hall-supervisor"
role = "supervisor"
"#,
            issuer = self.inner.issuer,
            secret = self.secret_file.path().display(),
        )
    }

    /// The same, the operators' console signing in through the provider too: browsers reach
    /// the admin listener at `console` (`console_redirect_base`), and `hall-operator` is an
    /// operator (a row of the console's: the hall's desk takes no operator).
    pub fn config_toml_with_console(&self, hall: &str, console: &str) -> String {
        let hall_only = self.config_toml(hall);
        let with_base = hall_only.replacen(
            "window_claim = \"window\"\n",
            &format!("window_claim = \"window\"\nconsole_redirect_base = \"{console}\"\n"),
            1,
        );
        assert_ne!(
            with_base, hall_only,
            "console_redirect_base in [screens.oidc]"
        );
        format!(
            "{with_base}\n[[screens.oidc.roles]]\nvalue = \"hall-operator\"\nrole = \"operator\"\n"
        )
    }
}

async fn discovery(State(inner): State<Arc<Inner>>) -> Json<Value> {
    let issuer = &inner.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
    }))
}

async fn jwks(State(inner): State<Arc<Inner>>) -> Json<Value> {
    let point = inner.key.public_key().as_ref();
    Json(json!({"keys": [{
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": KEY_ID,
        "x": b64(&point[1..33]), "y": b64(&point[33..65]),
    }]}))
}

/// Approves the user at once, or shows the page whose button does (see
/// [`Provider::ask_first`]).
async fn authorize(
    State(inner): State<Arc<Inner>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if !inner.ask.load(std::sync::atomic::Ordering::Relaxed) {
        return approve(State(inner), Form(query)).await;
    }
    let escape = |v: &str| {
        v.replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
    };
    let fields: String = query
        .iter()
        .map(|(k, v)| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                escape(k),
                escape(v)
            )
        })
        .collect();
    axum::response::Html(format!(
        r#"<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>统一身份认证</title></head><body><form method="post" action="/realms/hall/authorize">{fields}<button id="approve" type="submit">同意并登录</button></form></body></html>"#
    ))
    .into_response()
}

/// A fresh code for the request, back to the client's registered redirect URI.
async fn approve(
    State(inner): State<Arc<Inner>>,
    Form(query): Form<HashMap<String, String>>,
) -> Response {
    let field = |k: &str| query.get(k).cloned().unwrap_or_default();
    let redirect_uri = field("redirect_uri");
    let registered = inner.redirect_uris.lock().unwrap().contains(&redirect_uri);
    let well_formed = field("client_id") == CLIENT_ID
        && field("response_type") == "code"
        && field("scope").split(' ').any(|s| s == "openid")
        && field("code_challenge_method") == "S256"
        && !field("code_challenge").is_empty()
        && !field("state").is_empty();
    if !registered || !well_formed {
        return (StatusCode::BAD_REQUEST, "invalid authorization request").into_response();
    }
    let code = b64(rand_bytes(&inner.rng));
    inner.codes.lock().unwrap().insert(
        code.clone(),
        Issued {
            redirect_uri: redirect_uri.clone(),
            nonce: field("nonce"),
            challenge: field("code_challenge"),
        },
    );
    let mut back = url::Url::parse(&redirect_uri).unwrap();
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &field("state"));
    Redirect::to(back.as_str()).into_response()
}

fn rand_bytes(rng: &ring::rand::SystemRandom) -> [u8; 24] {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0; 24];
    rng.fill(&mut bytes).unwrap();
    bytes
}

fn invalid(error: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": error}))).into_response()
}

/// Checks the client (HTTP Basic), takes the code once, checks its redirect URI and the PKCE
/// verifier, and answers with an ID token.
async fn token(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    if field("grant_type") != "authorization_code" {
        return invalid("unsupported_grant_type");
    }
    // Taken whatever follows: a code is good once.
    let Some(issued) = inner.codes.lock().unwrap().remove(&field("code")) else {
        return invalid("invalid_grant");
    };
    let challenge = b64(ring::digest::digest(
        &ring::digest::SHA256,
        field("code_verifier").as_bytes(),
    ));
    if issued.redirect_uri != field("redirect_uri") || issued.challenge != challenge {
        return invalid("invalid_grant");
    }
    let tamper = *inner.tamper.lock().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (iat, exp) = if tamper == Tamper::Expired {
        (now - 900, now - 120)
    } else {
        (now, now + 300)
    };
    let mut claims = json!({
        "iss": inner.issuer,
        "aud": if tamper == Tamper::Audience { "another-client" } else { CLIENT_ID },
        "iat": iat,
        "exp": exp,
        "nonce": if tamper == Tamper::Nonce { "another-nonce".to_string() } else { issued.nonce },
    });
    for (k, v) in inner.user.lock().unwrap().as_object().unwrap() {
        claims[k] = v.clone();
    }
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": KEY_ID});
    let message = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let key = if tamper == Tamper::OtherKey {
        &inner.other_key
    } else {
        &inner.key
    };
    let signature = key.sign(&inner.rng, message.as_bytes()).unwrap();
    let id_token = format!("{message}.{}", b64(signature.as_ref()));
    Json(json!({
        "access_token": b64(rand_bytes(&inner.rng)),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}
