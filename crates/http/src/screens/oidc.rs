//! The screens as a relying party of the hall's identity provider (`[screens.oidc]`,
//! 统一身份认证): OpenID Connect's authorization-code flow with PKCE (S256), `state` and
//! `nonce`.
//!
//! The provider is found by its discovery document, fetched at the first sign-in (a provider
//! that is down when the gateway starts does not stop local sign-in) and kept; its keys (JWKS)
//! are fetched again when a token names a key not among them, at most every ten seconds. An
//! ID token is accepted only when signed RS256 or ES256 by one of those keys (verified in
//! [`crate::auth::jwt_crypto`]), issued by the configured issuer for this client, not expired,
//! and carrying the nonce this browser's flow began with. Its claims then meet the role table:
//! a person whose role claim has no row is not let in.
//!
//! Nothing is kept on the gateway between the browser leaving for the provider and coming
//! back: `state`, `nonce` and the PKCE verifier ride in a short-lived HttpOnly cookie of this
//! host (see [`super::session`]), so any node of a PostgreSQL deployment can take the callback.
//! Crates: the `openidconnect` crate would bring the `rsa` crate (RUSTSEC-2023-0071) and a
//! second RustCrypto generation; this uses the tree's reqwest, jsonwebtoken (claims, JWKs) and
//! ring (signatures).

use super::accounts::Profile;
use super::{Desk, session};
use axum::http::StatusCode;
use gateway_base::config::{OidcConfig, Role};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// The relying party: its settings, its HTTP client, what it learnt of the provider.
pub(crate) struct Oidc {
    config: OidcConfig,
    http: reqwest::Client,
    provider: tokio::sync::Mutex<Option<Provider>>,
}

/// The provider as its discovery document and key set describe it.
#[derive(Clone)]
struct Provider {
    authorization_endpoint: reqwest::Url,
    token_endpoint: reqwest::Url,
    jwks_uri: reqwest::Url,
    /// The secret goes in the token request's body (`client_secret_post`) only when the
    /// provider says it takes no `client_secret_basic`.
    secret_in_body: bool,
    keys: Vec<Jwk>,
    keys_fetched: Instant,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// Why a sign-in through the provider was refused: a Chinese sentence for the page, the
/// detail for the log (never on the page).
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The provider cannot be reached, or answers what is not OIDC.
    Unreachable(String),
    /// The browser came back with no flow under way (used already, too late, or another
    /// browser).
    NoFlow(String),
    /// The browser came back with another flow's state (tampered, or forced on it).
    State(String),
    /// The provider said no (the person cancelled, or was refused there).
    Provider(String),
    /// The provider would not exchange the code (used already, or not this flow's).
    Code(String),
    /// The ID token has expired.
    Expired(String),
    /// The ID token's signature, issuer, audience or nonce is wrong.
    Token(String),
    /// No row of the role table matches the person's role claim on this desk.
    NoRole(String),
    /// A claim the gateway needs is missing (the user, a clerk's window).
    Incomplete(String),
    /// The user claim names a local account.
    Taken,
}

impl Refusal {
    /// The sentence the page shows.
    pub(crate) fn text(&self) -> &'static str {
        match self {
            Refusal::Unreachable(_) => {
                "统一身份认证服务暂时无法访问，请稍后重试，或使用本地账号登录。"
            }
            Refusal::NoFlow(_) => "登录请求已失效，请重新登录。",
            Refusal::State(_) => "登录请求校验未通过（状态不符），请重新登录。",
            Refusal::Provider(_) => "统一身份认证未完成登录，请重新登录。",
            Refusal::Code(_) => "统一身份认证的授权码无效或已使用，请重新登录。",
            Refusal::Expired(_) => "统一身份认证的登录凭证已过期，请重新登录。",
            Refusal::Token(_) => "统一身份认证的登录凭证校验未通过，已拒绝登录。",
            Refusal::NoRole(_) => {
                "您的统一身份认证账号未分配可在此登录的本系统角色，请联系管理员。"
            }
            Refusal::Incomplete(_) => {
                "统一身份认证未提供登录所需的账号信息（账号或受理窗口），请联系管理员。"
            }
            Refusal::Taken => "该统一身份认证账号与本地账号同名，不能登录，请联系管理员。",
        }
    }

    /// What the log gets.
    pub(crate) fn detail(&self) -> String {
        match self {
            Refusal::Unreachable(d)
            | Refusal::NoFlow(d)
            | Refusal::State(d)
            | Refusal::Provider(d)
            | Refusal::Code(d)
            | Refusal::Expired(d)
            | Refusal::Token(d)
            | Refusal::NoRole(d)
            | Refusal::Incomplete(d) => d.clone(),
            Refusal::Taken => "the user claim names a local account".into(),
        }
    }

    /// The page's status: the provider's failure is a bad gateway, the rest a refusal.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Refusal::Unreachable(_) => StatusCode::BAD_GATEWAY,
            _ => StatusCode::FORBIDDEN,
        }
    }
}

/// What one sign-in at the provider keeps in the browser's cookie: 256 random bits each.
pub(crate) struct Flow {
    pub(crate) state: String,
    nonce: String,
    verifier: String,
}

impl Flow {
    pub(crate) fn new() -> Flow {
        Flow {
            state: session::random_token(),
            nonce: session::random_token(),
            verifier: session::random_token(),
        }
    }

    /// The cookie's value (base64url parts, joined by dots).
    pub(crate) fn cookie_value(&self) -> String {
        format!("{}.{}.{}", self.state, self.nonce, self.verifier)
    }

    pub(crate) fn from_cookie(value: &str) -> Option<Flow> {
        let mut parts = value.split('.');
        let flow = Flow {
            state: parts.next()?.to_string(),
            nonce: parts.next()?.to_string(),
            verifier: parts.next()?.to_string(),
        };
        let well_formed = [&flow.state, &flow.nonce, &flow.verifier]
            .iter()
            .all(|p| p.len() == 43);
        (parts.next().is_none() && well_formed).then_some(flow)
    }

    /// PKCE's S256 challenge of the verifier.
    fn challenge(&self) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(self.verifier.as_bytes()))
    }
}

/// How long a provider's answer may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The least time between two fetches of the provider's keys for unknown key ids.
const KEYS_REFRESH: Duration = Duration::from_secs(10);

impl Oidc {
    /// From the checked config: reads the provider's CA; the client secret is scrubbed from
    /// every log line from now on.
    pub(crate) fn new(config: &OidcConfig) -> Result<Oidc, String> {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &config.ca {
            for cert in gateway_base::pem::certificates(ca).map_err(|e| e.to_string())? {
                roots
                    .add(cert)
                    .map_err(|e| format!("screens.oidc.ca: {e}"))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("screens.oidc: {e}"))?;
        crate::auth::jwt_crypto::install()?;
        gateway_base::redact::set_secrets("screens.oidc", [config.client_secret.clone()]);
        Ok(Oidc {
            config: config.clone(),
            http,
            provider: tokio::sync::Mutex::new(None),
        })
    }

    /// Where the provider sends a desk's browsers back to; `None` when the desk does not
    /// sign in through the provider (the console without `console_redirect_base`).
    pub(crate) fn redirect_uri(&self, desk: &Desk) -> Option<String> {
        let base = if desk.roles.contains(&Role::Operator) {
            self.config.console_redirect_base.as_deref()?
        } else {
            &self.config.redirect_base
        };
        Some(format!(
            "{}{}/login/oidc/callback",
            base.trim_end_matches('/'),
            desk.prefix
        ))
    }

    /// The provider's authorization address for a flow that starts.
    pub(crate) async fn authorize_url(&self, desk: &Desk, flow: &Flow) -> Result<String, Refusal> {
        let provider = self.provider().await?;
        let redirect = self.redirect_uri(desk).unwrap_or_default();
        let scope = std::iter::once("openid")
            .chain(self.config.scopes.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        let mut url = provider.authorization_endpoint;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &redirect)
            .append_pair("scope", &scope)
            .append_pair("state", &flow.state)
            .append_pair("nonce", &flow.nonce)
            .append_pair("code_challenge", &flow.challenge())
            .append_pair("code_challenge_method", "S256");
        Ok(url.to_string())
    }

    /// Exchange the code the browser came back with, and check the ID token: the verified
    /// claims.
    pub(crate) async fn claims(
        &self,
        desk: &Desk,
        flow: &Flow,
        code: &str,
    ) -> Result<Map<String, Value>, Refusal> {
        let provider = self.provider().await?;
        let redirect = self.redirect_uri(desk).unwrap_or_default();
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect),
            ("code_verifier", &flow.verifier),
        ];
        let mut request = self.http.post(provider.token_endpoint.clone());
        if provider.secret_in_body {
            form.push(("client_id", &self.config.client_id));
            form.push(("client_secret", &self.config.client_secret));
        } else {
            // RFC 6749 §2.3.1: each form-urlencoded before the Basic scheme's encoding.
            let encode =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            request = request.basic_auth(
                encode(&self.config.client_id),
                Some(encode(&self.config.client_secret)),
            );
        }
        let response = request
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| Refusal::Unreachable(format!("token endpoint: {e}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| Refusal::Unreachable(format!("token endpoint ({status}): {e}")))?;
        let body: Option<Value> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            let error = body.as_ref().and_then(|b| b.get("error")?.as_str());
            return Err(Refusal::Code(format!(
                "token endpoint answered {status}: {}",
                error.unwrap_or("(no OAuth error)")
            )));
        }
        let body = body.ok_or_else(|| {
            Refusal::Unreachable("the token endpoint's answer is not JSON".into())
        })?;
        let Some(id_token) = body.get("id_token").and_then(Value::as_str) else {
            return Err(Refusal::Unreachable(
                "the token endpoint's answer has no id_token".into(),
            ));
        };
        self.verify(id_token, &flow.nonce).await
    }

    /// The ID token's claims, once its signature, issuer, audience, times and nonce are right.
    async fn verify(&self, id_token: &str, nonce: &str) -> Result<Map<String, Value>, Refusal> {
        let header = jsonwebtoken::decode_header(id_token)
            .map_err(|e| Refusal::Token(format!("the ID token's header: {e}")))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(Refusal::Token(format!(
                "the ID token is signed {:?}, not RS256 or ES256",
                header.alg
            )));
        }
        let kid = header.kid.as_deref();
        let key = match self.key(header.alg, kid, false).await? {
            Some(key) => key,
            None => self.key(header.alg, kid, true).await?.ok_or_else(|| {
                Refusal::Token(format!(
                    "no key of the provider's for {:?} (kid {kid:?})",
                    header.alg
                ))
            })?,
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 60;
        let data = jsonwebtoken::decode::<Map<String, Value>>(id_token, &key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    Refusal::Expired("the ID token has expired".into())
                }
                _ => Refusal::Token(format!("the ID token: {e}")),
            })?;
        let claims = data.claims;
        if !claims.get("iat").is_some_and(Value::is_number) {
            return Err(Refusal::Token("the ID token has no iat".into()));
        }
        let said = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if !session::tokens_match(said.as_bytes(), nonce.as_bytes()) {
            return Err(Refusal::Token(
                "the ID token's nonce is not this flow's".into(),
            ));
        }
        if let Some(azp) = claims.get("azp")
            && azp.as_str() != Some(self.config.client_id.as_str())
        {
            return Err(Refusal::Token(
                "the ID token's azp is another client".into(),
            ));
        }
        Ok(claims)
    }

    /// The provider's key for a token's algorithm and key id; `refresh` fetches the key set
    /// again first (when the last fetch is old enough).
    async fn key(
        &self,
        alg: Algorithm,
        kid: Option<&str>,
        refresh: bool,
    ) -> Result<Option<DecodingKey>, Refusal> {
        let mut guard = self.provider.lock().await;
        if guard.is_none() {
            *guard = Some(self.discover().await?);
        }
        let provider = guard.as_mut().expect("discovered");
        if refresh && provider.keys_fetched.elapsed() >= KEYS_REFRESH {
            provider.keys = self.fetch_keys(&provider.jwks_uri).await?;
            provider.keys_fetched = Instant::now();
        }
        let usable: Vec<&Jwk> = provider
            .keys
            .iter()
            .filter(|k| kid.is_none_or(|kid| k.common.key_id.as_deref() == Some(kid)))
            .filter(|k| fits(k, alg))
            .collect();
        // Without a key id, only a provider with one key for the algorithm is unambiguous.
        let key = match (kid, usable.as_slice()) {
            (None, [one]) | (Some(_), [one, ..]) => DecodingKey::from_jwk(one).ok(),
            _ => None,
        };
        Ok(key)
    }

    /// The provider as known, discovering it at first use.
    async fn provider(&self) -> Result<Provider, Refusal> {
        let mut guard = self.provider.lock().await;
        if let Some(provider) = &*guard {
            return Ok(provider.clone());
        }
        let provider = self.discover().await?;
        *guard = Some(provider.clone());
        Ok(provider)
    }

    /// Read the discovery document and the key set; the document's issuer must be the one
    /// configured (OpenID Connect Discovery §4.3).
    async fn discover(&self) -> Result<Provider, Refusal> {
        let address = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let document: Discovery = self.get_json(&address).await?;
        if document.issuer != self.config.issuer {
            return Err(Refusal::Unreachable(format!(
                "the discovery document names issuer {}, not the configured one",
                document.issuer
            )));
        }
        let url = |what: &str, text: &str| {
            reqwest::Url::parse(text)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| Refusal::Unreachable(format!("discovery: {what} is not a URL")))
        };
        let jwks_uri = url("jwks_uri", &document.jwks_uri)?;
        let methods = document.token_endpoint_auth_methods_supported;
        let secret_in_body = methods.is_some_and(|m| {
            !m.iter().any(|m| m == "client_secret_basic")
                && m.iter().any(|m| m == "client_secret_post")
        });
        Ok(Provider {
            authorization_endpoint: url(
                "authorization_endpoint",
                &document.authorization_endpoint,
            )?,
            token_endpoint: url("token_endpoint", &document.token_endpoint)?,
            keys: self.fetch_keys(&jwks_uri).await?,
            keys_fetched: Instant::now(),
            jwks_uri,
            secret_in_body,
        })
    }

    /// The provider's keys; a key the gateway cannot read is left out, not an error.
    async fn fetch_keys(&self, jwks_uri: &reqwest::Url) -> Result<Vec<Jwk>, Refusal> {
        let set: Value = self.get_json(jwks_uri.as_str()).await?;
        let Some(keys) = set.get("keys").and_then(Value::as_array) else {
            return Err(Refusal::Unreachable("the JWKS has no keys".into()));
        };
        Ok(keys
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .collect())
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, address: &str) -> Result<T, Refusal> {
        let response = self
            .http
            .get(address)
            .header("accept", "application/json")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| Refusal::Unreachable(format!("{address}: {e}")))?;
        response
            .json()
            .await
            .map_err(|e| Refusal::Unreachable(format!("{address}: {e}")))
    }

    /// The role and profile the verified claims give on a desk serving `roles`: the first row
    /// of the role table whose value the role claim holds and whose role the desk serves.
    pub(crate) fn profile(
        &self,
        claims: &Map<String, Value>,
        roles: &[Role],
    ) -> Result<(Role, Profile), Refusal> {
        let config = &self.config;
        let values = strings(claim(claims, &config.role_claim));
        let Some(row) = config
            .roles
            .iter()
            .find(|row| roles.contains(&row.role) && values.contains(&row.value))
        else {
            return Err(Refusal::NoRole(format!(
                "role claim `{}` holds {values:?}: no row of screens.oidc.roles for this desk",
                config.role_claim
            )));
        };
        let text = |name: &str| {
            strings(claim(claims, name))
                .into_iter()
                .next()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty() && s.chars().count() <= 128)
        };
        let user = text(&config.user_claim).ok_or_else(|| {
            Refusal::Incomplete(format!("no usable `{}` claim", config.user_claim))
        })?;
        let name = text(&config.name_claim).unwrap_or_else(|| user.clone());
        let window = match row.role {
            Role::Clerk => Some(
                config
                    .window_claim
                    .as_deref()
                    .and_then(text)
                    .or_else(|| row.window.clone())
                    .ok_or_else(|| Refusal::Incomplete("a clerk without a window".into()))?,
            ),
            Role::Supervisor | Role::Operator => None,
        };
        Ok((
            row.role,
            Profile {
                user,
                name,
                window,
                hall: row.hall.clone(),
                scopes: row.scopes.clone(),
                subject: claims
                    .get("sub")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            },
        ))
    }
}

/// Whether a key of the provider's may verify a token signed with `alg`.
fn fits(key: &Jwk, alg: Algorithm) -> bool {
    let for_signing = matches!(
        key.common.public_key_use,
        None | Some(PublicKeyUse::Signature)
    );
    let same_alg = match key.common.key_algorithm {
        None => true,
        Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
        Some(_) => false,
    };
    let same_kind = match (&key.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        _ => false,
    };
    for_signing && same_alg && same_kind
}

/// A claim by name, or by a dotted path into nested objects (`realm_access.roles`) when no
/// claim has the whole name.
fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    claims.get(name).or_else(|| {
        let mut parts = name.split('.');
        let first = claims.get(parts.next()?)?;
        parts.try_fold(first, |value, part| value.get(part))
    })
}

/// A claim's text values: a string, a number, or an array of them.
fn strings(value: Option<&Value>) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(v) => one(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// A subject or user as the log may show it: its first three and last two characters.
pub(crate) fn masked(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() < 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}***{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_cookie_is_read_back_and_nothing_else_is() {
        let flow = Flow::new();
        let back = Flow::from_cookie(&flow.cookie_value()).unwrap();
        assert_eq!(
            (back.state, back.nonce, back.verifier),
            (
                flow.state.clone(),
                flow.nonce.clone(),
                flow.verifier.clone()
            )
        );
        for bad in ["", "a.b.c", &format!("{}.x", flow.cookie_value())] {
            assert!(Flow::from_cookie(bad).is_none(), "{bad}");
        }
        // RFC 7636 appendix B.
        let rfc = Flow {
            state: String::new(),
            nonce: String::new(),
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
        };
        assert_eq!(
            rfc.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    fn oidc(console: Option<&str>) -> Oidc {
        let config: OidcConfig = serde_json::from_value(serde_json::json!({
            "issuer": "http://127.0.0.1:9/realms/hall",
            "client_id": "gateway",
            "client_secret": "s",
            "redirect_base": "https://hall.example:8443/",
            "console_redirect_base": console,
            "window_claim": "window",
            "roles": [
                {"value": "ops", "role": "operator"},
                {"value": "clerk", "role": "clerk", "window": "综合窗口", "hall": "鼓楼", "scopes": ["apply:*"]},
                {"value": "sup", "role": "supervisor"},
            ],
        }))
        .unwrap();
        Oidc::new(&config).unwrap()
    }

    #[test]
    fn each_desk_has_its_callback_and_the_role_table_decides_who_is_who() {
        use super::super::{CONSOLE, HALL};
        let with_console = oidc(Some("https://ops.example:9443"));
        assert_eq!(
            with_console.redirect_uri(&HALL).as_deref(),
            Some("https://hall.example:8443/screens/login/oidc/callback")
        );
        assert_eq!(
            with_console.redirect_uri(&CONSOLE).as_deref(),
            Some("https://ops.example:9443/console/login/oidc/callback")
        );
        assert!(oidc(None).redirect_uri(&CONSOLE).is_none());

        let claims = |v: Value| -> Map<String, Value> { serde_json::from_value(v).unwrap() };
        let person = |roles: Value, window: Option<&str>| {
            let mut c = claims(serde_json::json!({"sub": "s-1", "name": "李四", "roles": roles}));
            if let Some(w) = window {
                c.insert("window".into(), w.into());
            }
            c
        };
        // Operator and clerk: on the hall the clerk row applies (the operator's is not the
        // hall's), the window from the claim, else the row's.
        let (role, profile) = with_console
            .profile(
                &person(serde_json::json!(["ops", "clerk"]), Some("7号窗口")),
                HALL.roles,
            )
            .unwrap();
        assert_eq!(role, Role::Clerk);
        assert_eq!(profile.window.as_deref(), Some("7号窗口"));
        assert_eq!(
            (profile.user.as_str(), profile.name.as_str()),
            ("s-1", "李四")
        );
        assert_eq!(profile.subject.as_deref(), Some("s-1"));
        let (_, profile) = with_console
            .profile(&person(serde_json::json!("clerk"), None), HALL.roles)
            .unwrap();
        assert_eq!(profile.window.as_deref(), Some("综合窗口"));
        let (role, profile) = with_console
            .profile(
                &person(serde_json::json!(["ops", "clerk"]), None),
                CONSOLE.roles,
            )
            .unwrap();
        assert_eq!((role, profile.window), (Role::Operator, None));
        // A supervisor has no place on the console; an unknown value none anywhere.
        for (roles, desk) in [("sup", CONSOLE.roles), ("library", HALL.roles)] {
            let refused = with_console
                .profile(&person(serde_json::json!(roles), None), desk)
                .unwrap_err();
            assert!(matches!(refused, Refusal::NoRole(_)), "{refused:?}");
        }
        let no_user = claims(serde_json::json!({"roles": "sup"}));
        assert!(matches!(
            with_console.profile(&no_user, HALL.roles),
            Err(Refusal::Incomplete(_))
        ));
    }

    #[test]
    fn role_claims_are_read_as_strings_or_arrays_and_by_dotted_paths() {
        let claims: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "roles": "hall-clerk",
            "realm_access": {"roles": ["a", "b"]},
            "https://example/roles": ["x"],
            "level": 3
        }))
        .unwrap();
        assert_eq!(strings(claim(&claims, "roles")), ["hall-clerk"]);
        assert_eq!(strings(claim(&claims, "realm_access.roles")), ["a", "b"]);
        assert_eq!(strings(claim(&claims, "https://example/roles")), ["x"]);
        assert_eq!(strings(claim(&claims, "level")), ["3"]);
        assert!(strings(claim(&claims, "nope.roles")).is_empty());
        assert_eq!(masked("350102199001011234"), "350***34");
        assert_eq!(masked("short"), "*****");
    }
}
