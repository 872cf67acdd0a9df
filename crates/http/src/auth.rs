//! Who may call what: portal clients with scopes, operators on the admin listener.
//!
//! Deny by default. A portal request names its client with an API key (`X-Api-Key`; the config
//! holds only its SHA-256) or a JWT bearer token (`Authorization: Bearer`, HS256 or EdDSA as
//! configured, verified by the provider in `auth/jwt_crypto.rs`). A token must carry `sub` (a configured
//! client) and `exp`, and `iss` and `aud` equal to `[auth.jwt] issuer` and `audience` whenever
//! those are set; an `nbf` in the future is refused, and a claim of the wrong JSON type is refused
//! rather than ignored (30 s leeway on times). What the client may do is its scopes; a token's
//! `scope` claim can only narrow them:
//!
//! | scope | allows |
//! | --- | --- |
//! | `apply:<service>` / `apply:*` | pre-review and apply for that service; its drafts and the materials of the client's own cases of it |
//! | `lookup:<name>` / `lookup:*` | run that shared-data lookup |
//! | `cases:all` | read every case (without it, only the cases the client created) |
//! | `supervision` | the deadline supervision view |
//! | `subjects` | the 企业码 and person views, licences |
//!
//! The catalogue, forms, health, the API document and department callbacks (authenticated by
//! their adapter) need no scope. Operators on the admin listener present their own bearer
//! token (`[[admin.operators]]`, SHA-256 in the config); a portal credential is worth nothing
//! there, and the operator's id is what every change records. Departments reading licences
//! (`/licence-sharing/…`) present their own bearer token too
//! (`[departments.<id>] licence_sharing_key_sha256`), checked by [`department`]; portal
//! credentials and operators' tokens are worth nothing there.

use crate::error::ApiError;
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use gateway_base::config::{AuthConfig, ClientConfig, DepartmentConfig, JwtConfig, OperatorConfig};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub mod jwt_crypto;

/// An authenticated portal client, as the handlers see it.
#[derive(Debug, Clone)]
pub struct Client {
    /// Client id.
    pub id: String,
    scopes: Vec<String>,
}

impl Client {
    /// A clerk signed in on the screens, as a client with the clerk's scopes (the screens
    /// allow what the API allows a client with them).
    pub(crate) fn screen(id: String, scopes: Vec<String>) -> Client {
        Client { id, scopes }
    }

    /// Whether the client holds `scope` (`apply:x` is also granted by `apply:*`).
    pub fn may(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| {
            s == scope
                || s.strip_suffix('*')
                    .is_some_and(|prefix| prefix.ends_with(':') && scope.starts_with(prefix))
        })
    }

    /// Whether the client may read a case created by `owner`.
    pub fn may_read_case_of(&self, owner: Option<&str>) -> bool {
        self.may("cases:all") || owner == Some(self.id.as_str())
    }
}

/// An authenticated operator.
#[derive(Debug, Clone)]
pub struct Operator {
    /// Operator id.
    pub id: String,
}

/// A department authenticated by its licence-sharing key, as the handlers see it.
#[derive(Debug, Clone)]
pub struct Department {
    /// Department id (`[departments.<id>]`).
    pub id: String,
}

/// Hex SHA-256 of a secret, as the config stores it.
pub fn sha256_hex(secret: &str) -> String {
    use sha2::Digest;
    sdk::sign::to_hex(sha2::Sha256::digest(secret.as_bytes()))
}

/// The credentials a gateway accepts, built once from the config.
pub struct Authenticator {
    /// Per-client request rates (GCRA, governor: the maintained crate for it; one limiter per
    /// client, so one busy portal never spends another's allowance).
    rates: HashMap<String, Arc<(governor::DefaultDirectRateLimiter, u32)>>,
    by_key: HashMap<String, Arc<ClientConfig>>,
    by_id: HashMap<String, Arc<ClientConfig>>,
    jwt: Option<(jsonwebtoken::DecodingKey, jsonwebtoken::Validation)>,
    operators: HashMap<String, String>,
    /// Each department's licence-sharing key, as the SHA-256 of its token.
    departments: Vec<(String, [u8; 32])>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    scope: Option<String>,
}

impl Authenticator {
    /// From the checked config: portal clients, operators, and departments' licence-sharing
    /// keys.
    pub fn new(
        auth: &AuthConfig,
        operators: &[OperatorConfig],
        departments: &BTreeMap<String, DepartmentConfig>,
    ) -> Result<Authenticator, String> {
        let mut by_key = HashMap::new();
        let mut by_id = HashMap::new();
        for client in &auth.clients {
            let client = Arc::new(client.clone());
            if let Some(hash) = &client.api_key_sha256 {
                by_key.insert(hash.to_ascii_lowercase(), client.clone());
            }
            by_id.insert(client.id.clone(), client);
        }
        let jwt = auth.jwt.as_ref().map(jwt_verifier).transpose()?;
        let mut rates = HashMap::new();
        for client in &auth.clients {
            if let Some(per_minute) = client.rate_per_minute {
                let rate = std::num::NonZeroU32::new(per_minute).ok_or_else(|| {
                    format!("clients `{}`: rate_per_minute must be above 0", client.id)
                })?;
                let burst = std::num::NonZeroU32::new((per_minute / 6).max(1)).unwrap_or(rate);
                let quota = governor::Quota::per_minute(rate).allow_burst(burst);
                rates.insert(
                    client.id.clone(),
                    Arc::new((governor::RateLimiter::direct(quota), per_minute)),
                );
            }
        }
        let operators = operators
            .iter()
            .map(|o| (o.token_sha256.to_ascii_lowercase(), o.id.clone()))
            .collect();
        let mut sharing = Vec::new();
        for (id, department) in departments {
            let Some(hash) = &department.licence_sharing_key_sha256 else {
                continue;
            };
            let mut digest = [0u8; 32];
            hex::decode_to_slice(hash, &mut digest)
                .map_err(|e| format!("departments.{id}.licence_sharing_key_sha256: {e}"))?;
            sharing.push((id.clone(), digest));
        }
        Ok(Authenticator {
            rates,
            by_key,
            by_id,
            jwt,
            operators,
            departments: sharing,
        })
    }

    /// Keep the allowance a client has already spent when a reload leaves its rate as it was,
    /// so reloading never hands a busy portal a fresh burst.
    pub fn keep_rates_of(mut self, previous: &Authenticator) -> Authenticator {
        for (id, rate) in self.rates.iter_mut() {
            if let Some(old) = previous.rates.get(id)
                && old.1 == rate.1
            {
                *rate = old.clone();
            }
        }
        self
    }

    /// The portal client a request's credentials name, or why not.
    pub fn client(&self, headers: &HeaderMap) -> Result<Client, ApiError> {
        if let Some(token) = bearer(headers) {
            let Some((key, validation)) = &self.jwt else {
                return Err(unauthorized(
                    "bearer tokens are not accepted here; use X-Api-Key",
                ));
            };
            let claims = jsonwebtoken::decode::<Claims>(token, key, validation)
                .map_err(|e| unauthorized(&format!("the bearer token is not valid: {e}")))?
                .claims;
            let client = self
                .by_id
                .get(&claims.sub)
                .ok_or_else(|| unauthorized("the token's subject is not a known client"))?;
            let scopes = match &claims.scope {
                // A token narrows its client's scopes; it never widens them.
                Some(granted) => {
                    let full = Client {
                        id: client.id.clone(),
                        scopes: client.scopes.clone(),
                    };
                    granted
                        .split_whitespace()
                        .filter(|s| full.may(s))
                        .map(str::to_string)
                        .collect()
                }
                None => client.scopes.clone(),
            };
            return Ok(Client {
                id: client.id.clone(),
                scopes,
            });
        }
        let key = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| unauthorized("no credential: send X-Api-Key or a bearer token"))?;
        let client = self
            .by_key
            .get(&sha256_hex(key))
            .ok_or_else(|| unauthorized("the API key is not valid"))?;
        Ok(Client {
            id: client.id.clone(),
            scopes: client.scopes.clone(),
        })
    }

    /// The operator a request's bearer token names, or why not.
    pub fn operator(&self, headers: &HeaderMap) -> Result<Operator, ApiError> {
        let token = bearer(headers)
            .ok_or_else(|| unauthorized("the admin API needs an operator's bearer token"))?;
        self.operators
            .get(&sha256_hex(token))
            .map(|id| Operator { id: id.clone() })
            .ok_or_else(|| unauthorized("the bearer token is not an operator's"))
    }
}

impl Authenticator {
    /// The department a licence-sharing request's bearer token names, or why not. The token's
    /// SHA-256 is compared with every department's in constant time, and all of them are
    /// compared whatever matched: how long the check takes says nothing of which key was
    /// close, or whose.
    pub fn department(&self, headers: &HeaderMap) -> Result<Department, ApiError> {
        use sha2::Digest;
        use subtle::ConstantTimeEq;
        let token = bearer(headers)
            .ok_or_else(|| unauthorized("licence sharing needs the department's bearer token"))?;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (id, key) in &self.departments {
            if bool::from(key.ct_eq(&digest)) {
                found = Some(id);
            }
        }
        found
            .map(|id| Department { id: id.clone() })
            .ok_or_else(|| {
                unauthorized("the bearer token is not a department's licence-sharing key")
            })
    }
}

fn jwt_verifier(
    config: &JwtConfig,
) -> Result<(jsonwebtoken::DecodingKey, jsonwebtoken::Validation), String> {
    jwt_crypto::install()?;
    let (key, algorithm) = match config.algorithm.as_str() {
        "HS256" => (
            jsonwebtoken::DecodingKey::from_secret(config.key.as_bytes())
                .map_err(|e| format!("key: {e}"))?,
            jsonwebtoken::Algorithm::HS256,
        ),
        "EdDSA" => (
            jsonwebtoken::DecodingKey::from_ed_der(&config.ed25519_key()?),
            jsonwebtoken::Algorithm::EdDSA,
        ),
        other => return Err(format!("algorithm: {other} is not HS256 or EdDSA")),
    };
    let mut validation = jsonwebtoken::Validation::new(algorithm);
    // What the config names must be in the token: a claim left out is refused, not skipped.
    let mut required = vec!["exp", "sub"];
    validation.leeway = 30;
    validation.validate_nbf = true;
    if let Some(issuer) = &config.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    match &config.audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    Ok((key, validation))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn unauthorized(why: &str) -> ApiError {
    ApiError::Unauthorized(why.to_string())
}

/// The scope a portal path needs; `None` for paths open to any authenticated client, and
/// `Some(None)` for paths that need no credential at all.
fn required_scope(method: &axum::http::Method, path: &str) -> Option<Option<String>> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        // Departments' routes: callbacks are authenticated by their adapter, licence sharing by
        // the department's own key ([`department`]).
        ["healthz"]
        | ["readyz"]
        | ["openapi.json"]
        | ["docs"]
        | ["docs", "assets", _]
        | ["callbacks", ..]
        | ["licence-sharing", ..] => Some(None),
        [
            "api",
            "v1",
            "services",
            code,
            "pre-review" | "applications" | "drafts",
        ] if method == axum::http::Method::POST => Some(Some(format!("apply:{code}"))),
        ["api", "v1", "lookups", name] => Some(Some(format!("lookup:{name}"))),
        ["api", "v1", "supervision", ..] => Some(Some("supervision".into())),
        ["api", "v1", "subjects", ..] | ["api", "v1", "licences", ..] => {
            Some(Some("subjects".into()))
        }
        _ => None,
    }
}

/// The credentials in force: a config reload swaps them whole, so a removed client's key is
/// refused from the next request on.
pub type Credentials = Arc<arc_swap::ArcSwap<Authenticator>>;

/// The portal's authentication: authenticate, check the path's scope, hand the client to the
/// handler (called by the portal's middleware, [`crate::portal`]).
pub(crate) async fn portal(
    auth: &Credentials,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let auth = auth.load_full();
    let needed = required_scope(request.method(), request.uri().path());
    if matches!(needed, Some(None)) {
        return Ok(next.run(request).await);
    }
    let client = auth.client(request.headers())?;
    if let Some(Some(scope)) = &needed
        && !client.may(scope)
    {
        return Err(ApiError::Forbidden(format!(
            "client {} lacks the scope `{scope}`",
            client.id
        )));
    }
    if let Some(rate) = auth.rates.get(&client.id)
        && rate.0.check().is_err()
    {
        return Err(ApiError::RateLimited {
            client: client.id.clone(),
            per_minute: rate.1,
        });
    }
    request.extensions_mut().insert(client);
    Ok(next.run(request).await)
}

/// Licence-sharing middleware: every request needs a department's licence-sharing key; the
/// department is handed to the handler. (Not rate-limited per department: the portal's limits
/// are per client; the request's time and body limits still hold.)
pub async fn department(
    axum::extract::State(auth): axum::extract::State<Credentials>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let department = auth.load().department(request.headers())?;
    request.extensions_mut().insert(department);
    Ok(next.run(request).await)
}

/// Admin middleware: every route but health needs an operator's token.
pub async fn admin(
    axum::extract::State(auth): axum::extract::State<Credentials>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if matches!(request.uri().path(), "/healthz" | "/readyz") {
        return Ok(next.run(request).await);
    }
    let operator = auth.load().operator(request.headers())?;
    request.extensions_mut().insert(operator);
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(scopes: &[&str]) -> Client {
        Client {
            id: "c".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn scopes_grant_exactly_what_they_name() {
        let c = client(&["apply:tax.registration", "lookup:*"]);
        assert!(c.may("apply:tax.registration"));
        assert!(!c.may("apply:tax.deed-tax"));
        assert!(c.may("lookup:tax.clearance"));
        assert!(!c.may("supervision"));
        assert!(!c.may("cases:all"));
        assert!(c.may_read_case_of(Some("c")));
        assert!(!c.may_read_case_of(Some("other")));
        assert!(!c.may_read_case_of(None));
        assert!(
            !client(&["*"]).may("supervision"),
            "a bare * grants nothing"
        );
    }

    #[test]
    fn paths_map_to_scopes() {
        use axum::http::Method;
        assert_eq!(required_scope(&Method::GET, "/healthz"), Some(None));
        assert_eq!(required_scope(&Method::POST, "/callbacks/tax"), Some(None));
        // Open to the portal's middleware: the department's own key is checked by `department`.
        assert_eq!(
            required_scope(&Method::GET, "/licence-sharing/v1/licences/x"),
            Some(None)
        );
        assert_eq!(
            required_scope(
                &Method::POST,
                "/api/v1/services/tax.registration/applications"
            ),
            Some(Some("apply:tax.registration".into()))
        );
        assert_eq!(
            required_scope(&Method::POST, "/api/v1/lookups/tax.clearance"),
            Some(Some("lookup:tax.clearance".into()))
        );
        assert_eq!(required_scope(&Method::GET, "/api/v1/cases/x"), None);
        assert_eq!(required_scope(&Method::GET, "/api/v1/catalogue"), None);
        assert_eq!(
            required_scope(&Method::GET, "/api/v1/subjects/persons/x"),
            Some(Some("subjects".into()))
        );
    }

    fn departments(keys: &[(&str, &str)]) -> BTreeMap<String, DepartmentConfig> {
        keys.iter()
            .map(|(id, token)| {
                let department = serde_json::json!({
                    "name": id,
                    "base_url": "http://127.0.0.1:1",
                    "licence_sharing_key_sha256": sha256_hex(token),
                });
                (id.to_string(), serde_json::from_value(department).unwrap())
            })
            .collect()
    }

    fn bearer_headers(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        headers
    }

    #[test]
    fn a_licence_sharing_key_names_its_department_and_nothing_else_does() {
        let auth = Authenticator::new(
            &AuthConfig::default(),
            &[],
            &departments(&[("market-regulation", "mr-token"), ("tax", "tax-token")]),
        )
        .unwrap();
        let named = |token: &str| auth.department(&bearer_headers(token)).map(|d| d.id);
        assert_eq!(named("mr-token").unwrap(), "market-regulation");
        assert_eq!(named("tax-token").unwrap(), "tax");
        for wrong in ["mr-token2", "MR-TOKEN", &sha256_hex("mr-token")] {
            assert!(
                matches!(named(wrong), Err(ApiError::Unauthorized(_))),
                "{wrong}"
            );
        }
        assert!(matches!(
            auth.department(&HeaderMap::new()),
            Err(ApiError::Unauthorized(_))
        ));
        // A department without a key reads nothing.
        let none = Authenticator::new(&AuthConfig::default(), &[], &BTreeMap::new()).unwrap();
        assert!(none.department(&bearer_headers("mr-token")).is_err());
    }
}
