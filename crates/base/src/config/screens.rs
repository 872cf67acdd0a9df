//! `[screens]`: the hall's screens — who may sign in (local accounts with Argon2 password
//! hashes), with which role, and how long a session lasts.
//!
//! Clerks (综合受理窗口) and supervisors (电子监察) sign in on the portal listener, operators on
//! the admin listener. A clerk carries a window and a hall (recorded on every exchange the
//! clerk causes, as `X-Clerk-*` is for the API) and the scopes the API's clients have.

use super::{Config, ConfigError};
use serde::Deserialize;
use std::path::Path;

/// `[screens]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreensConfig {
    /// Serve the screens (default true when the section is present).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Session cookies carry `Secure` and a `__Host-` name (default true). Turn off only for a
    /// plain-HTTP demo on 127.0.0.1: browsers drop a `Secure` cookie set over plain HTTP from any
    /// other host.
    #[serde(default = "yes")]
    pub secure_cookies: bool,
    /// A session unused this long ends, in minutes (default 30).
    #[serde(default = "default_idle_minutes")]
    pub idle_minutes: u32,
    /// A session ends this long after sign-in whatever its use, in hours (default 10: a working
    /// day with its breaks).
    #[serde(default = "default_absolute_hours")]
    pub absolute_hours: u32,
    /// Local accounts.
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    /// Sign-in through the hall's unified identity system (统一身份认证); absent: local
    /// accounts only.
    pub oidc: Option<super::oidc::OidcConfig>,
    /// The portal listener's address as applicants' phones reach it
    /// (`https://hall.example.gov.cn`, a path allowed where a proxy serves it below one): the
    /// receipt's QR code opens `<public_url>/screens/status/<token>`. Behind TLS termination or
    /// a proxy the request's own scheme and host are not what a phone outside can open. Absent:
    /// the address the clerk's browser used, `https` when the portal listener serves TLS.
    pub public_url: Option<String>,
}

fn yes() -> bool {
    true
}

fn default_idle_minutes() -> u32 {
    30
}

fn default_absolute_hours() -> u32 {
    10
}

/// What a screen user may see and do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// At the 综合受理 window: applications, cases, supplements, withdrawals.
    Clerk,
    /// 电子监察: the departments' lights, overdue cases, 好差评.
    Supervisor,
    /// 运维, on the admin listener: departments, adapters, dead letters, audit, reload.
    Operator,
}

impl Role {
    /// The stored text (`clerk`, `supervisor`, `operator`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clerk => "clerk",
            Role::Supervisor => "supervisor",
            Role::Operator => "operator",
        }
    }

    /// From its stored text.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "clerk" => Some(Role::Clerk),
            "supervisor" => Some(Role::Supervisor),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }

    /// Its Chinese name, as the screens show it.
    pub fn title(self) -> &'static str {
        match self {
            Role::Clerk => "窗口受理人员",
            Role::Supervisor => "电子监察人员",
            Role::Operator => "运维人员",
        }
    }
}

/// One local account (`[[screens.accounts]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The name signed in with (ASCII letters, digits, `-`, `_`, `.`), recorded as the clerk's
    /// or operator's id.
    pub user: String,
    /// The person's name, shown on the screens.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// Argon2 PHC string (`$argon2id$v=19$m=…`); `gateway screens hash-password` makes one.
    pub password_hash: String,
    /// A clerk's window (`3号窗口`), recorded with everything the clerk does.
    pub window: Option<String>,
    /// A clerk's hall (`鼓楼区政务服务中心`).
    pub hall: Option<String>,
    /// What a clerk may do, in the API clients' scope names (`apply:*`, `lookup:*`,
    /// `cases:all` …); without `cases:all` a clerk reads only the cases the clerk submitted.
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl Config {
    pub(super) fn check_screens(&mut self, file: &Path) -> Result<(), ConfigError> {
        let base_dir = self.base_dir.clone();
        if let Some(oidc) = self.screens.as_mut().and_then(|s| s.oidc.as_mut()) {
            oidc.check(file, &base_dir)?;
        }
        if let Some(url) = self.screens.as_mut().and_then(|s| s.public_url.as_mut()) {
            *url = public_url(file, url)?;
        }
        let Some(screens) = &self.screens else {
            return Ok(());
        };
        if screens.idle_minutes == 0 || screens.absolute_hours == 0 {
            return Err(ConfigError::new(
                file,
                "screens",
                "idle_minutes and absolute_hours must be above 0",
            ));
        }
        let mut users = std::collections::BTreeSet::new();
        for (i, a) in screens.accounts.iter().enumerate() {
            let key = |k: &str| format!("screens.accounts[{i}].{k}");
            let readable = !a.user.is_empty()
                && a.user.len() <= 64
                && a.user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !readable || !users.insert(a.user.clone()) {
                return Err(ConfigError::new(
                    file,
                    key("user"),
                    "1-64 ASCII letters, digits, `-`, `_` or `.`, each user once",
                ));
            }
            if a.name.trim().is_empty() {
                return Err(ConfigError::new(file, key("name"), "empty"));
            }
            if !is_argon2_phc(&a.password_hash) {
                return Err(ConfigError::new(
                    file,
                    key("password_hash"),
                    "an Argon2 PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash): `gateway screens hash-password` makes one",
                ));
            }
            match a.role {
                Role::Clerk => {
                    if a.window.as_deref().is_none_or(|w| w.trim().is_empty()) {
                        return Err(ConfigError::new(
                            file,
                            key("window"),
                            "a clerk has a window (recorded with every application)",
                        ));
                    }
                    for scope in &a.scopes {
                        if !super::auth::is_scope(scope) {
                            return Err(ConfigError::new(
                                file,
                                key("scopes"),
                                format!(
                                    "`{scope}` is not a scope: apply:<service>, lookup:<name> (or :*), cases:all, supervision, subjects"
                                ),
                            ));
                        }
                    }
                }
                Role::Supervisor | Role::Operator => {
                    if a.window.is_some() || !a.scopes.is_empty() {
                        return Err(ConfigError::new(
                            file,
                            key("role"),
                            "window and scopes are a clerk's; a supervisor or operator has neither",
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// `screens.public_url` checked (an absolute http(s) address with a host, no credentials,
/// query or fragment) and without its trailing `/`, so `<it>/screens/status/…` never doubles one.
fn public_url(file: &Path, text: &str) -> Result<String, ConfigError> {
    let ok = url::Url::parse(text).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str().is_some_and(|h| !h.is_empty())
            && u.username().is_empty()
            && u.password().is_none()
            && u.query().is_none()
            && u.fragment().is_none()
    });
    if !ok {
        return Err(ConfigError::new(
            file,
            "screens.public_url",
            "an absolute http(s) address as applicants' phones reach the portal listener (https://hall.example.gov.cn), without query or fragment",
        ));
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// The shape of an Argon2 PHC string: `$argon2id$v=19$<params>$<salt>$<hash>` (argon2i and
/// argon2d too). The hash itself is verified where it is used.
fn is_argon2_phc(text: &str) -> bool {
    let parts: Vec<&str> = text.split('$').collect();
    matches!(parts.as_slice(),
        ["", "argon2id" | "argon2i" | "argon2d", version, params, salt, hash]
            if version.starts_with("v=") && params.contains("m=") && !salt.is_empty() && !hash.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_is_an_absolute_http_address() {
        let file = Path::new("gateway.toml");
        for (given, kept) in [
            ("https://hall.example.gov.cn", "https://hall.example.gov.cn"),
            (
                "https://hall.example.gov.cn/",
                "https://hall.example.gov.cn",
            ),
            ("http://10.1.2.3:8080/hall/", "http://10.1.2.3:8080/hall"),
        ] {
            assert_eq!(public_url(file, given).unwrap(), kept);
        }
        for bad in [
            "",
            "hall.example.gov.cn",
            "/screens",
            "ftp://hall.example.gov.cn",
            "https://",
            "https://hall.example.gov.cn/?a=1",
            "https://hall.example.gov.cn/#top",
            "https://user:pw@hall.example.gov.cn",
        ] {
            let e = public_url(file, bad).unwrap_err();
            assert_eq!(e.key, "screens.public_url", "{bad}");
            assert!(e.reason.contains("http(s)"), "{bad}: {}", e.reason);
        }
    }

    #[test]
    fn phc_strings_are_told_from_anything_else() {
        assert!(is_argon2_phc(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
        ));
        for bad in [
            "",
            "secret",
            "$2b$12$abcdefghijklmnopqrstuv",
            "$argon2id$v=19$m=19456,t=2,p=1$$x",
            "$scrypt$v=19$m=1$a$b",
        ] {
            assert!(!is_argon2_phc(bad), "{bad}");
        }
    }
}
