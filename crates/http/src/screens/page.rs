//! The frame every screen is rendered in, the headers every screen answer carries, and the
//! Chinese pages a refusal or a failure is shown as (never a JSON error, never Rust's text).

use super::session::Signed;
use super::{Ctx, assets};
use crate::error::ApiError;
use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use gateway_base::model::FieldProblem;

/// What the layout (`templates/screens/base.html`) needs: the page's title, who is signed in,
/// their CSRF token, the desk's links and the assets' hashed addresses.
pub(crate) struct Frame {
    pub(crate) title: String,
    /// The signed-in person's name and role, for the header.
    pub(crate) user: Option<(String, &'static str)>,
    pub(crate) csrf: String,
    pub(crate) prefix: &'static str,
    pub(crate) css: String,
    pub(crate) js: String,
    /// The role's navigation: (address, label).
    pub(crate) nav: Vec<(String, &'static str)>,
}

impl Frame {
    /// The frame of a page for no one signed in (sign-in, refusals).
    pub(crate) fn anonymous(ctx: &Ctx, title: &str) -> Frame {
        Frame {
            title: title.to_string(),
            user: None,
            csrf: String::new(),
            prefix: ctx.desk.prefix,
            css: assets::href(ctx.desk, "screens.css"),
            js: assets::href(ctx.desk, "screens.js"),
            nav: Vec::new(),
        }
    }

    /// The pages' icon (embedded, served under its hash like the stylesheet).
    pub(crate) fn icon(&self) -> String {
        assets::href_at(self.prefix, "favicon.svg")
    }

    /// The frame of a signed-in user's page.
    pub(crate) fn signed(ctx: &Ctx, signed: &Signed, title: &str) -> Frame {
        use gateway_base::config::Role;
        let p = ctx.desk.prefix;
        let nav = match signed.role {
            Role::Clerk => vec![
                (format!("{p}/clerk"), "办事指南与受理"),
                (format!("{p}/clerk/cases"), "受理的办件"),
            ],
            Role::Supervisor => vec![(format!("{p}/supervisor"), "电子监察")],
            Role::Operator => vec![(p.to_string(), "运维控制台")],
        };
        Frame {
            user: Some((signed.profile.name.clone(), signed.role.title())),
            csrf: signed.csrf.clone(),
            nav,
            ..Frame::anonymous(ctx, title)
        }
    }
}

/// A rendered template as an HTML answer; a template that fails to render is the gateway's
/// fault (500, logged).
pub(crate) fn html<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(body) => Html(body).into_response(),
        Err(e) => ApiError::Internal(format!("rendering a screen: {e}")).into_response(),
    }
}

#[derive(Template)]
#[template(path = "screens/message.html")]
struct Message<'a> {
    frame: Frame,
    heading: &'a str,
    text: &'a str,
    problems: &'a [FieldProblem],
    back: Option<String>,
}

/// A page with a heading, a sentence and problems (each on its field), with `status`.
pub(crate) fn message(
    ctx: &Ctx,
    status: StatusCode,
    heading: &str,
    text: &str,
    problems: &[FieldProblem],
) -> Response {
    let back = Some(ctx.desk.prefix.to_string());
    let page = Message {
        frame: Frame::anonymous(ctx, heading),
        heading,
        text,
        problems,
        back,
    };
    (status, html(&page)).into_response()
}

/// 403 with the reason, in Chinese.
pub(crate) fn refused(ctx: &Ctx, why: &str) -> Response {
    message(ctx, StatusCode::FORBIDDEN, "无法执行", why, &[])
}

/// 500: the detail goes to the log (masked), the page says only that it failed.
pub(crate) fn internal(ctx: &Ctx, detail: &str) -> Response {
    failed(ctx, ApiError::Internal(detail.to_string()))
}

/// A page made, or the failure that stopped it as a page in the screens' words.
pub(crate) fn answer<T: Template>(ctx: &Ctx, made: Result<T, ApiError>) -> Response {
    match made {
        Ok(page) => html(&page),
        Err(e) => failed(ctx, e),
    }
}

/// A domain error as a Chinese page with its status (the log gets what the API's would).
pub(crate) fn failed(ctx: &Ctx, error: ApiError) -> Response {
    let problems = match &error {
        ApiError::InvalidInput(p) => p.clone(),
        _ => Vec::new(),
    };
    let (heading, text) = explain(&error);
    let api = error.into_response();
    let status = api.status();
    let mut page = message(ctx, status, heading, &text, &problems);
    // The failure for the log travels with the answer, as the API's does.
    if let Some(failure) = api.extensions().get::<crate::error::Failure>().cloned() {
        page.extensions_mut().insert(failure);
    }
    page
}

/// The heading and the sentence a clerk reads for an error.
fn explain(error: &ApiError) -> (&'static str, String) {
    match error {
        ApiError::InvalidInput(p) => (
            "填写的内容有问题",
            format!("共 {} 处问题，请逐项修改。", p.len()),
        ),
        ApiError::NotFound { .. } => ("未找到", "所查找的事项、办件或页面不存在。".into()),
        ApiError::Rejected { message, .. } => {
            ("部门不予受理", gateway_base::redact::redact(message))
        }
        ApiError::Forbidden(_) => ("无权操作", "您的账号没有此项权限。".into()),
        ApiError::Conflict(_) | ApiError::Lifecycle(..) => (
            "当前状态不允许此操作",
            "办件当前的状态不允许此操作，请刷新后查看。".into(),
        ),
        ApiError::Unavailable { .. }
        | ApiError::Timeout { .. }
        | ApiError::Protocol { .. }
        | ApiError::AdapterFailed { .. }
        | ApiError::Busy { .. }
        | ApiError::MemoryBudget { .. } => (
            "部门系统暂时无法办理",
            "部门系统暂时无法响应，请稍后重试；已提交的内容不会丢失。".into(),
        ),
        ApiError::TooLarge(_) => ("内容过大", "上传或提交的内容超过了大小限制。".into()),
        _ => (
            "系统暂时无法处理",
            "系统出现问题，已记录，请稍后重试或联系运维人员。".into(),
        ),
    }
}

/// The security headers of every screen answer: a strict Content-Security-Policy (scripts,
/// styles, images and connections from this gateway only; no inline script or style; no
/// frames, plugins or `<base>`), no MIME sniffing, no referrer (a case page's address stays
/// here), and pages never cached (assets are, by their own headers).
pub(crate) fn secured(router: axum::Router) -> axum::Router {
    router.layer(axum::middleware::from_fn(headers))
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
