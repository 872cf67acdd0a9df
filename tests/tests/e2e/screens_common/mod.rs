//! What the screens' tests share: a gateway with one account per role, and a visitor that
//! signs in and keeps its session cookie as a browser would (without following redirects, so
//! each answer is seen as it is).

#![allow(dead_code)]

use integration_tests::{Env, Setup};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

/// The accounts' passwords.
pub const CLERK_PASSWORD: &str = "窗口-clerk-1";
pub const SUPERVISOR_PASSWORD: &str = "监察-supervisor-1";
pub const OPERATOR_PASSWORD: &str = "运维-operator-1";

/// `[screens]` with a clerk (`clerk1`, 3号窗口, 鼓楼区政务服务中心, applying for every service
/// and reading every case), a supervisor (`super1`) and an operator (`ops1`); cookies plain
/// (the listeners are plain HTTP on 127.0.0.1).
pub fn screens_toml() -> String {
    let hash = |p: &str| gateway_http::screens::hash_password(p).expect("a hash");
    format!(
        r#"
[screens]
secure_cookies = false

[[screens.accounts]]
user = "clerk1"
name = "张窗口"
role = "clerk"
password_hash = "{clerk}"
window = "3号窗口"
hall = "鼓楼区政务服务中心"
scopes = ["apply:*", "lookup:*", "cases:all"]

[[screens.accounts]]
user = "super1"
name = "王监察"
role = "supervisor"
password_hash = "{supervisor}"

[[screens.accounts]]
user = "ops1"
name = "赵运维"
role = "operator"
password_hash = "{operator}"
"#,
        clerk = hash(CLERK_PASSWORD),
        supervisor = hash(SUPERVISOR_PASSWORD),
        operator = hash(OPERATOR_PASSWORD),
    )
}

/// A gateway with its admin listener and the screens on.
pub async fn start(setup: Setup) -> Env {
    start_with(setup, "").await
}

/// The same, with more of `[screens]` after the accounts (`[screens.oidc]` …).
pub async fn start_with(setup: Setup, screens_extra: &str) -> Env {
    try_start(setup, "", screens_extra)
        .await
        .expect("a gateway")
}

/// A gateway with the screens, `keys` among `[screens]`' own (`public_url = …`) and
/// `screens_extra` after the accounts; the error when its config is refused.
pub async fn try_start(mut setup: Setup, keys: &str, screens_extra: &str) -> anyhow::Result<Env> {
    setup.admin = true;
    let screens = screens_toml().replacen(
        "secure_cookies = false\n",
        &format!("secure_cookies = false\n{keys}\n"),
        1,
    );
    setup.config_extra.push_str(&screens);
    setup.config_extra.push_str(screens_extra);
    Env::start_with(setup).await
}

/// One browser's worth of a desk: a base URL and the cookies it holds (the session's, and the
/// state of a sign-in at the identity provider while one is under way).
pub struct Visitor {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
    pub flow: Option<String>,
}

/// An answer: status, headers, body text.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The value of the page's CSRF token (its `<meta name="csrf-token">`).
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find(r#"<meta name="csrf-token" content=""#)
            .expect("a page with the CSRF token");
        let rest = &self.body[at + r#"<meta name="csrf-token" content=""#.len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

impl Visitor {
    pub fn new(base: &str) -> Visitor {
        Visitor {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.trim_end_matches('/').to_string(),
            cookie: None,
            flow: None,
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let cookies: Vec<&str> = [&self.cookie, &self.flow]
            .into_iter()
            .filter_map(|c| c.as_deref())
            .collect();
        let request = if cookies.is_empty() {
            request
        } else {
            request.header("cookie", cookies.join("; "))
        };
        let response = request.send().await.expect("an answer");
        let status = response.status();
        let headers = response.headers().clone();
        for value in headers.get_all(SET_COOKIE) {
            let value = value.to_str().unwrap();
            let pair = value.split(';').next().unwrap().trim().to_string();
            let held = if pair.split('=').next().unwrap().ends_with("-oidc") {
                &mut self.flow
            } else {
                &mut self.cookie
            };
            *held = (!value.contains("Max-Age=0")).then_some(pair);
        }
        let body = response.text().await.unwrap_or_default();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let request = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    pub async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.http.post(format!("{}{path}", self.base)).form(form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// POST a body of `content_type` with extra headers (a multipart upload, as the screens'
    /// script sends it).
    pub async fn post_body(
        &mut self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// Sign in at `<prefix>/login`; the answer (a redirect to the role's first page).
    pub async fn sign_in(&mut self, prefix: &str, user: &str, password: &str) -> Answer {
        self.post(
            &format!("{prefix}/login"),
            &[("user", user), ("password", password)],
        )
        .await
    }
}
