//! Sessions: made at sign-in (with a local account or through the identity provider), found
//! by their cookie, refused when idle or too old, ended at sign-out. The guard around every
//! role's routes checks the session and its role, and on a change (any method but GET and
//! HEAD) the session's CSRF token and the request's origin.

use super::accounts::Profile;
use super::page;
use super::{Ctx, Desk};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use gateway_base::config::{Role, ScreensConfig};
use gateway_base::model::Clerk;
use gateway_store::sessions::SessionRecord;
use sha2::Digest;

/// How long sessions last and how their cookies are set.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    secure: bool,
    idle_ms: i64,
    absolute_ms: i64,
}

impl Rules {
    pub(crate) fn from_config(config: &ScreensConfig) -> Rules {
        Rules {
            secure: config.secure_cookies,
            idle_ms: i64::from(config.idle_minutes) * 60_000,
            absolute_ms: i64::from(config.absolute_hours) * 3_600_000,
        }
    }

    /// The cookie's name: `__Host-` (Secure, Path=/, no Domain: the browser keeps it to this
    /// host) unless cookies are plain for a demo over HTTP.
    fn cookie_name(&self, desk: &Desk) -> String {
        if self.secure {
            format!("__Host-{}", desk.cookie)
        } else {
            desk.cookie.to_string()
        }
    }

    /// `Set-Cookie` for a session id (empty and expired to end it).
    fn cookie(&self, desk: &Desk, value: Option<&str>) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie = match value {
            Some(id) => format!(
                "{}={id}; Path=/; HttpOnly; SameSite=Strict{secure}",
                self.cookie_name(desk)
            ),
            None => format!(
                "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
                self.cookie_name(desk)
            ),
        };
        HeaderValue::from_str(&cookie).expect("ASCII cookie")
    }

    /// `Set-Cookie` for the state of a sign-in at the identity provider (empty and expired to
    /// end it). SameSite=Lax, not Strict: the browser comes back to the callback from the
    /// provider's site, and must bring it. Ten minutes to sign in there.
    pub(crate) fn flow_cookie(&self, desk: &Desk, value: Option<&str>) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let (value, age) = value.map_or(("", 0), |v| (v, 600));
        let name = self.flow_cookie_name(desk);
        let cookie =
            format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={age}{secure}");
        HeaderValue::from_str(&cookie).expect("ASCII cookie")
    }

    fn flow_cookie_name(&self, desk: &Desk) -> String {
        format!("{}-oidc", self.cookie_name(desk))
    }
}

/// The state of a sign-in at the identity provider the request's browser holds, if any.
pub(crate) fn flow_state(ctx: &Ctx, headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, &ctx.screens.sessions.flow_cookie_name(ctx.desk))
}

/// The signed-in user of a request, as handlers see it.
#[derive(Debug, Clone)]
pub struct Signed {
    /// Their role.
    pub role: Role,
    /// Who they are.
    pub profile: Profile,
    /// The token every form of theirs carries.
    pub csrf: String,
}

impl Signed {
    /// The clerk this user is on the exchanges they cause (a clerk's window and hall).
    pub fn clerk(&self) -> Clerk {
        Clerk {
            id: self.profile.user.clone(),
            window: self.profile.window.clone(),
            hall: self.profile.hall.clone(),
        }
    }
}

/// 256 random bits, URL-safe base64.
pub(crate) fn random_token() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn digest(id: &str) -> String {
    sdk::sign::to_hex(sha2::Sha256::digest(id.as_bytes()))
}

/// Start a session for a user who signed in: stored, and its cookie to set.
pub(crate) async fn start(
    ctx: &Ctx,
    role: Role,
    profile: &Profile,
) -> Result<HeaderValue, gateway_store::StoreError> {
    let id = random_token();
    let now = gateway_base::time::now_ms();
    let rules = &ctx.screens.sessions;
    // Sessions left to expire (a browser closed without signing out) are removed as others
    // sign in: one indexed delete, no task of its own.
    ctx.screens
        .orchestrator
        .store()
        .sweep_sessions(now, now - rules.idle_ms)
        .await?;
    ctx.screens
        .orchestrator
        .store()
        .insert_session(&SessionRecord {
            id_sha256: digest(&id),
            username: profile.user.clone(),
            role: role.as_str().to_string(),
            profile: serde_json::to_string(profile).expect("a profile serialises"),
            csrf_token: random_token(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + rules.absolute_ms,
        })
        .await?;
    Ok(rules.cookie(ctx.desk, Some(&id)))
}

/// End the request's session, if any; the cookie that clears it.
pub(crate) async fn end(ctx: &Ctx, headers: &HeaderMap) -> HeaderValue {
    if let Some(id) = cookie_value(headers, &ctx.screens.sessions.cookie_name(ctx.desk)) {
        let _ = ctx
            .screens
            .orchestrator
            .store()
            .delete_session(&digest(&id))
            .await;
    }
    ctx.screens.sessions.cookie(ctx.desk, None)
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// The live session a request's cookie names: `None` without one, or when it is unknown,
/// idle past its time or past its absolute expiry (then it is removed).
pub(crate) async fn current(ctx: &Ctx, headers: &HeaderMap) -> Result<Option<Signed>, Response> {
    let Some(id) = cookie_value(headers, &ctx.screens.sessions.cookie_name(ctx.desk)) else {
        return Ok(None);
    };
    let store = ctx.screens.orchestrator.store();
    let key = digest(&id);
    let record = store
        .session(&key)
        .await
        .map_err(|e| page::internal(ctx, &e.to_string()))?;
    let Some(record) = record else {
        return Ok(None);
    };
    let now = gateway_base::time::now_ms();
    let rules = &ctx.screens.sessions;
    if now >= record.expires_at || now - record.last_seen_at >= rules.idle_ms {
        let _ = store.delete_session(&key).await;
        return Ok(None);
    }
    let (Some(role), Ok(profile)) = (
        Role::parse(&record.role),
        serde_json::from_str::<Profile>(&record.profile),
    ) else {
        return Ok(None);
    };
    // One write a minute at most: the idle clock does not need every request's millisecond.
    if now - record.last_seen_at >= 60_000 {
        store
            .touch_session(&key, now)
            .await
            .map_err(|e| page::internal(ctx, &e.to_string()))?;
    }
    Ok(Some(Signed {
        role,
        profile,
        csrf: record.csrf_token,
    }))
}

/// Routes only `role` may use: without a session a page sends to sign-in and an action is
/// refused (403); another role is refused on both; a change needs the CSRF token and a
/// same-origin request.
pub(crate) fn guarded(routes: axum::Router<Ctx>, ctx: &Ctx, role: Role) -> axum::Router<Ctx> {
    routes.route_layer(axum::middleware::from_fn_with_state(
        (ctx.clone(), role),
        guard,
    ))
}

async fn guard(State((ctx, role)): State<(Ctx, Role)>, request: Request, next: Next) -> Response {
    let reading = matches!(*request.method(), Method::GET | Method::HEAD);
    let signed = match current(&ctx, request.headers()).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let Some(signed) = signed else {
        if reading {
            return Redirect::to(&format!("{}/login", ctx.desk.prefix)).into_response();
        }
        return page::refused(&ctx, "您尚未登录或登录已过期，请重新登录后再操作。");
    };
    if signed.role != role {
        return page::refused(
            &ctx,
            &format!("{}无权使用此页面或操作。", signed.role.title()),
        );
    }
    let request = if reading {
        request
    } else {
        match checked_change(&ctx, &signed, request).await {
            Ok(request) => request,
            Err(response) => return response,
        }
    };
    let mut request = request;
    request.extensions_mut().insert(signed.clone());
    if role == Role::Clerk {
        let clerk = signed.clerk();
        gateway_store::audit::scope(|c| c.clerk = Some(clerk), next.run(request)).await
    } else {
        next.run(request).await
    }
}

/// The most a form posted to a screen (not an upload) may hold.
const FORM_LIMIT: usize = 1 << 20;

/// A change is same-origin (when the browser says where it comes from) and carries the
/// session's token: `X-CSRF-Token` (the screens' script), or the `_csrf` field of a posted
/// form, whose body is read here and handed on whole.
async fn checked_change(ctx: &Ctx, signed: &Signed, request: Request) -> Result<Request, Response> {
    if !same_origin(request.headers()) {
        return Err(page::refused(ctx, "请求来源不符，已拒绝。"));
    }
    let forged = || page::refused(ctx, "表单已失效（安全校验未通过），请刷新页面后重试。");
    if let Some(token) = request.headers().get("x-csrf-token") {
        return if tokens_match(token.as_bytes(), signed.csrf.as_bytes()) {
            Ok(request)
        } else {
            Err(forged())
        };
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| {
            t.as_bytes()
                .starts_with(b"application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(forged());
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| page::refused(ctx, "表单过大。"))?;
    let token = form_urlencoded_field(&bytes, "_csrf");
    if !token.is_some_and(|t| tokens_match(t.as_bytes(), signed.csrf.as_bytes())) {
        return Err(forged());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded_pairs(body)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The pairs of an `application/x-www-form-urlencoded` body.
pub(crate) fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

pub(crate) fn tokens_match(given: &[u8], expected: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    given.len() == expected.len() && bool::from(given.ct_eq(expected))
}

/// Whether a change comes from a page of this gateway: a browser names the page's origin in
/// `Origin` (or `Sec-Fetch-Site`); absent both, SameSite=Strict and the token decide.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST))
    else {
        return true;
    };
    let origin = origin.to_str().unwrap_or_default();
    let host = host.to_str().unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-gw-hall=abc; b=2"),
        );
        assert_eq!(cookie_value(&h, "__Host-gw-hall").as_deref(), Some("abc"));
        assert_eq!(cookie_value(&h, "gw-hall"), None);
    }

    #[test]
    fn a_secure_cookie_has_the_host_prefix_and_every_attribute() {
        let rules = |secure| Rules {
            secure,
            idle_ms: 60_000,
            absolute_ms: 3_600_000,
        };
        let set = rules(true).cookie(&super::super::HALL, Some("abc"));
        assert_eq!(
            set.to_str().unwrap(),
            "__Host-gw-hall=abc; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        let cleared = rules(true).cookie(&super::super::CONSOLE, None);
        assert_eq!(
            cleared.to_str().unwrap(),
            "__Host-gw-console=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure"
        );
        let plain = rules(false).cookie(&super::super::HALL, Some("abc"));
        assert_eq!(
            plain.to_str().unwrap(),
            "gw-hall=abc; Path=/; HttpOnly; SameSite=Strict"
        );
    }

    #[test]
    fn origins_are_compared_with_the_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
    }
}
