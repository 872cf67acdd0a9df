//! Sign-in and sign-out on a desk, and its home: each role's first page. Sign-in is with a
//! local account, or through the hall's identity provider (`GET <prefix>/login/oidc`, back at
//! `<prefix>/login/oidc/callback`); either way the same session is made.

use super::oidc::{Flow, Refusal, masked};
use super::page::{self, Frame};
use super::{Ctx, session};
use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gateway_base::config::Role;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "screens/login.html")]
struct Login<'a> {
    frame: Frame,
    user: &'a str,
    failed: bool,
    /// Offer sign-in through the identity provider.
    oidc: bool,
}

/// Whether this desk signs in through the identity provider too.
fn offers_oidc(ctx: &Ctx) -> bool {
    ctx.screens
        .oidc
        .as_ref()
        .is_some_and(|o| o.redirect_uri(ctx.desk).is_some())
}

/// The first page of a role.
pub(crate) fn home_of(ctx: &Ctx, role: Role) -> String {
    let p = ctx.desk.prefix;
    match role {
        Role::Clerk => format!("{p}/clerk"),
        Role::Supervisor => format!("{p}/supervisor"),
        Role::Operator => format!("{p}/"),
    }
}

/// `GET /screens/`: the role's first page, or sign-in.
pub(super) async fn home(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    match session::current(&ctx, &headers).await {
        Err(response) => response,
        Ok(Some(signed)) if ctx.desk.roles.contains(&signed.role) => {
            Redirect::to(&home_of(&ctx, signed.role)).into_response()
        }
        Ok(_) => Redirect::to(&format!("{}/login", ctx.desk.prefix)).into_response(),
    }
}

/// `GET <prefix>/login`.
pub(super) async fn form(State(ctx): State<Ctx>) -> Response {
    page::html(&Login {
        frame: Frame::anonymous(&ctx, "登录"),
        user: "",
        failed: false,
        oidc: offers_oidc(&ctx),
    })
}

#[derive(Deserialize)]
pub(super) struct Credentials {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
}

/// `POST <prefix>/login`: a matching account of a role this desk serves starts a session; any
/// other answer is the same "用户名或密码不正确" (401), so it says nothing of which part was
/// wrong or whether the user exists. The password is never logged.
pub(super) async fn sign_in(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Form(credentials): Form<Credentials>,
) -> Response {
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return page::refused(&ctx, "请求来源不符，已拒绝。");
    }
    let user = credentials.user.trim();
    let found = ctx
        .screens
        .accounts
        .check(user, &credentials.password, ctx.desk.roles)
        .await;
    let Some((role, profile)) = found else {
        tracing::info!(desk = ctx.desk.prefix, "screen sign-in refused");
        let page = Login {
            frame: Frame::anonymous(&ctx, "登录"),
            user,
            failed: true,
            oidc: offers_oidc(&ctx),
        };
        return (StatusCode::UNAUTHORIZED, page::html(&page)).into_response();
    };
    match session::start(&ctx, role, &profile).await {
        Ok(cookie) => {
            tracing::info!(user = %profile.user, role = role.as_str(), "screen sign-in");
            (
                [(header::SET_COOKIE, cookie)],
                Redirect::to(&home_of(&ctx, role)),
            )
                .into_response()
        }
        Err(e) => page::internal(&ctx, &e.to_string()),
    }
}

/// `POST <prefix>/logout`: the session ends in the store and its cookie is cleared. Needs the
/// session's CSRF token, so no other site can sign a clerk out.
pub(super) async fn sign_out(State(ctx): State<Ctx>, request: axum::extract::Request) -> Response {
    let headers = request.headers().clone();
    let signed = match session::current(&ctx, &headers).await {
        Ok(Some(signed)) => signed,
        Ok(None) => return Redirect::to(&format!("{}/login", ctx.desk.prefix)).into_response(),
        Err(response) => return response,
    };
    let (_, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let token = session::serde_urlencoded_pairs(&bytes)
        .into_iter()
        .find(|(k, _)| k == "_csrf")
        .map(|(_, v)| v);
    if !token.is_some_and(|t| session::tokens_match(t.as_bytes(), signed.csrf.as_bytes())) {
        return page::refused(&ctx, "表单已失效（安全校验未通过），请刷新页面后重试。");
    }
    let cookie = session::end(&ctx, &headers).await;
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to(&format!("{}/login", ctx.desk.prefix)),
    )
        .into_response()
}

/// `GET <prefix>/login/oidc`: off to the identity provider, this browser's flow (state, nonce,
/// PKCE verifier) in its cookie.
pub(super) async fn oidc_start(State(ctx): State<Ctx>) -> Response {
    let Some(oidc) = ctx.screens.oidc.as_ref().filter(|_| offers_oidc(&ctx)) else {
        return Redirect::to(&format!("{}/login", ctx.desk.prefix)).into_response();
    };
    let flow = Flow::new();
    match oidc.authorize_url(ctx.desk, &flow).await {
        Ok(url) => {
            let cookie = ctx
                .screens
                .sessions
                .flow_cookie(ctx.desk, Some(&flow.cookie_value()));
            ([(header::SET_COOKIE, cookie)], Redirect::to(&url)).into_response()
        }
        Err(refusal) => oidc_refused(&ctx, &refusal),
    }
}

/// What the provider sends the browser back with.
#[derive(Deserialize)]
pub(super) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET <prefix>/login/oidc/callback`: the flow's state, the code exchanged, the ID token
/// checked, its claims mapped to a role: then a session as a local sign-in makes one. The
/// flow's cookie is cleared whatever the outcome, so a callback is good once.
pub(super) async fn oidc_callback(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Query(callback): Query<Callback>,
) -> Response {
    let mut response = match oidc_sign_in(&ctx, &headers, callback).await {
        Ok(response) => response,
        Err(refusal) => oidc_refused(&ctx, &refusal),
    };
    let clear = ctx.screens.sessions.flow_cookie(ctx.desk, None);
    response.headers_mut().append(header::SET_COOKIE, clear);
    response
}

#[derive(Template)]
#[template(path = "screens/login_continue.html")]
struct Continue {
    frame: Frame,
    home: String,
}

async fn oidc_sign_in(
    ctx: &Ctx,
    headers: &HeaderMap,
    callback: Callback,
) -> Result<Response, Refusal> {
    let oidc = ctx
        .screens
        .oidc
        .as_ref()
        .filter(|_| offers_oidc(ctx))
        .ok_or_else(|| Refusal::NoFlow("this desk does not sign in through OIDC".into()))?;
    let flow = session::flow_state(ctx, headers)
        .and_then(|value| Flow::from_cookie(&value))
        .ok_or_else(|| {
            Refusal::NoFlow("no flow cookie: expired, used already, or another browser".into())
        })?;
    let state = callback.state.unwrap_or_default();
    if !session::tokens_match(state.as_bytes(), flow.state.as_bytes()) {
        return Err(Refusal::State("the state is not this flow's".into()));
    }
    if let Some(error) = callback.error {
        let error: String = error.chars().take(64).collect();
        return Err(Refusal::Provider(format!(
            "the provider answered `{error}`"
        )));
    }
    let code = callback
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Refusal::Provider("no code".into()))?;
    let claims = oidc.claims(ctx.desk, &flow, &code).await?;
    let (role, profile) = oidc.profile(&claims, ctx.desk.roles)?;
    if ctx.screens.accounts.has(&profile.user) {
        return Err(Refusal::Taken);
    }
    let cookie = match session::start(ctx, role, &profile).await {
        Ok(cookie) => cookie,
        Err(e) => return Ok(page::internal(ctx, &e.to_string())),
    };
    tracing::info!(
        user = %masked(&profile.user),
        subject = %masked(profile.subject.as_deref().unwrap_or_default()),
        name = %gateway_base::redact::mask_name(&profile.name),
        role = role.as_str(),
        "screen sign-in through the identity provider"
    );
    // A page that moves on rather than a redirect: the browser arrives here from the
    // provider's site, and a browser leaves SameSite=Strict cookies off every step of a
    // redirect chain that began on another site, so the session's cookie would not reach the
    // home page yet. The page's refresh starts on this site.
    let page = Continue {
        frame: Frame::anonymous(ctx, "登录成功"),
        home: home_of(ctx, role),
    };
    Ok(([(header::SET_COOKIE, cookie)], page::html(&page)).into_response())
}

/// A refused sign-in through the provider: the reason in Chinese on the page, the detail in
/// the log.
fn oidc_refused(ctx: &Ctx, refusal: &Refusal) -> Response {
    tracing::warn!(
        desk = ctx.desk.prefix,
        reason = %refusal.detail(),
        "screen sign-in through the identity provider refused"
    );
    let mut response = page::refused(ctx, refusal.text());
    *response.status_mut() = refusal.status();
    response
}
