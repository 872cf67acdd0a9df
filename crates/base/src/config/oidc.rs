//! `[screens.oidc]`: signing in to the screens through a hall's unified identity system
//! (统一身份认证) with OpenID Connect, beside the local accounts.
//!
//! The gateway is an OIDC client (relying party) of one provider: authorization-code flow with
//! PKCE, the ID token checked against the provider's published keys. What the token says is
//! mapped to a screen role by a table: a value of one claim (`role_claim`, `roles` by default)
//! names a role, and for a clerk the hall and scopes (the window comes from a claim of the
//! person, `window_claim`, or from the table row when the provider has no such attribute).
//! Nobody without a row is let in: a provider's user is not a gateway user by default.

use super::{ConfigError, Role};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `[screens.oidc]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL, exactly as its ID tokens' `iss` (`https://id.example.gov.cn/realms/hall`);
    /// its discovery document is `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// PEM CA certificate(s) the provider's server certificate must chain to, relative to the
    /// config file (pinned, as for departments: the system roots are not used). Needed for an
    /// `https` issuer.
    pub ca: Option<PathBuf>,
    /// The client id the provider registered for the gateway (the ID token's `aud`).
    pub client_id: String,
    /// The client secret: `env:NAME` or `file:PATH` (relative to the config file), or the
    /// value itself. Scrubbed from every log line.
    pub client_secret: String,
    /// The address clerks and supervisors reach the portal listener at (`https://hall.example:8443`):
    /// the provider sends them back to `<redirect_base>/screens/login/oidc/callback`, which is
    /// the redirect URI to register with it.
    pub redirect_base: String,
    /// The admin listener's address, for operators signing in to the console through the
    /// provider (`<console_redirect_base>/console/login/oidc/callback`). Absent: operators sign
    /// in to the console with local accounts only.
    pub console_redirect_base: Option<String>,
    /// Scopes asked for beside `openid` (default `profile`): whatever makes the provider put
    /// the role, name and window claims in the ID token.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The claim carrying the person's role(s): a string or an array of strings (default `roles`).
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// The claim recorded as the user (a clerk's id on every exchange; default `sub`). Choose a
    /// staff number or login name where `sub` is a personal identity number.
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// The claim with the person's name as the screens show it (default `name`; the user when
    /// absent).
    #[serde(default = "default_name_claim")]
    pub name_claim: String,
    /// The claim with a clerk's window (`3号窗口`), when the provider keeps one per person; a
    /// row's `window` is used when the token has none.
    pub window_claim: Option<String>,
    /// How role-claim values map to screen roles, first matching row first.
    pub roles: Vec<OidcRoleConfig>,
}

/// One row of `[[screens.oidc.roles]]`: a value of the role claim and what it makes of a person.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcRoleConfig {
    /// The role claim's value (`hall-clerk`, `综合窗口受理`).
    pub value: String,
    /// The screen role it grants.
    pub role: Role,
    /// A clerk's window when the token has no `window_claim`.
    pub window: Option<String>,
    /// A clerk's hall.
    pub hall: Option<String>,
    /// A clerk's scopes, as `[[screens.accounts]] scopes`.
    #[serde(default)]
    pub scopes: Vec<String>,
}

fn default_scopes() -> Vec<String> {
    vec!["profile".into()]
}

fn default_role_claim() -> String {
    "roles".into()
}

fn default_user_claim() -> String {
    "sub".into()
}

fn default_name_claim() -> String {
    "name".into()
}

impl OidcConfig {
    /// The URLs parse, the secret is read (`env:`/`file:`), the CA is there for an `https`
    /// issuer and every row of the role table makes sense. `base_dir` is the config file's
    /// directory; the CA's path is left resolved against it.
    pub(super) fn check(&mut self, file: &Path, base_dir: &Path) -> Result<(), ConfigError> {
        let key = |k: &str| format!("screens.oidc.{k}");
        let issuer = url::Url::parse(&self.issuer)
            .map_err(|e| ConfigError::new(file, key("issuer"), e.to_string()))?;
        match (issuer.scheme(), &self.ca) {
            ("https", Some(_)) | ("http", None) => {}
            ("https", None) => {
                return Err(ConfigError::new(
                    file,
                    key("ca"),
                    "an https issuer needs ca (the provider's CA is pinned)",
                ));
            }
            ("http", Some(_)) => {
                return Err(ConfigError::new(
                    file,
                    key("ca"),
                    "a CA is for an https issuer",
                ));
            }
            _ => {
                return Err(ConfigError::new(
                    file,
                    key("issuer"),
                    "an http or https URL",
                ));
            }
        }
        if let Some(ca) = &mut self.ca {
            *ca = base_dir.join(&*ca);
            crate::pem::certificates(ca)
                .map_err(|e| ConfigError::new(file, key("ca"), e.to_string()))?;
        }
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::new(file, key("client_id"), "empty"));
        }
        self.client_secret = secret(file, &key("client_secret"), &self.client_secret, base_dir)?;
        if self.client_secret.is_empty() {
            return Err(ConfigError::new(file, key("client_secret"), "empty"));
        }
        for (name, base) in [
            ("redirect_base", Some(&self.redirect_base)),
            ("console_redirect_base", self.console_redirect_base.as_ref()),
        ] {
            let Some(base) = base else { continue };
            let ok = url::Url::parse(base).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.query().is_none()
                    && u.path().trim_end_matches('/').is_empty()
            });
            if !ok {
                return Err(ConfigError::new(
                    file,
                    key(name),
                    "the listener's address as browsers reach it: http(s)://host[:port], no path",
                ));
            }
        }
        for (name, claim) in [
            ("role_claim", &self.role_claim),
            ("user_claim", &self.user_claim),
            ("name_claim", &self.name_claim),
        ] {
            if claim.trim().is_empty() {
                return Err(ConfigError::new(file, key(name), "empty"));
            }
        }
        if self.roles.is_empty() {
            return Err(ConfigError::new(
                file,
                key("roles"),
                "no row: nobody could sign in (map a value of the role claim to a role)",
            ));
        }
        for (i, row) in self.roles.iter().enumerate() {
            let key = |k: &str| format!("screens.oidc.roles[{i}].{k}");
            if row.value.trim().is_empty() {
                return Err(ConfigError::new(file, key("value"), "empty"));
            }
            match row.role {
                Role::Clerk => {
                    let has_window = row.window.as_deref().is_some_and(|w| !w.trim().is_empty());
                    if !has_window && self.window_claim.is_none() {
                        return Err(ConfigError::new(
                            file,
                            key("window"),
                            "a clerk has a window: give one here, or screens.oidc.window_claim",
                        ));
                    }
                    if let Some(scope) = row.scopes.iter().find(|s| !super::auth::is_scope(s)) {
                        return Err(ConfigError::new(
                            file,
                            key("scopes"),
                            format!(
                                "`{scope}` is not a scope: apply:<service>, lookup:<name> (or :*), cases:all, supervision, subjects"
                            ),
                        ));
                    }
                }
                Role::Supervisor | Role::Operator => {
                    if row.window.is_some() || row.hall.is_some() || !row.scopes.is_empty() {
                        return Err(ConfigError::new(
                            file,
                            key("role"),
                            "window, hall and scopes are a clerk's; a supervisor or operator has none",
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A secret given as `env:NAME`, `file:PATH` (one trailing newline dropped) or itself.
fn secret(file: &Path, key: &str, value: &str, base_dir: &Path) -> Result<String, ConfigError> {
    if let Some(value) = super::from_env(file, key, value)? {
        return Ok(value);
    }
    let Some(path) = value.strip_prefix("file:") else {
        return Ok(value.to_string());
    };
    let path = base_dir.join(path);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ConfigError::new(file, key, format!("cannot read {}: {e}", path.display())))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(text.strip_suffix('\r').unwrap_or(text).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, dir: &Path) -> Result<OidcConfig, ConfigError> {
        let mut config: OidcConfig = toml::from_str(text).expect("the shape parses");
        config.check(&dir.join("gateway.toml"), dir)?;
        Ok(config)
    }

    const BASE: &str = r#"
issuer = "http://127.0.0.1:9000/realms/hall"
client_id = "gateway"
client_secret = "file:oidc-secret.txt"
redirect_base = "http://127.0.0.1:8080"
[[roles]]
value = "hall-clerk"
role = "clerk"
window = "综合窗口"
scopes = ["apply:*"]
"#;

    #[test]
    fn the_secret_is_read_from_its_file_and_every_mistake_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("oidc-secret.txt"), "s3cret\n").unwrap();
        let config = parse(BASE, dir.path()).unwrap();
        assert_eq!(config.client_secret, "s3cret");
        assert_eq!(config.role_claim, "roles");
        assert_eq!(config.user_claim, "sub");
        for (change, key, why) in [
            (
                ("http://127.0.0.1:9000", "https://id.example"),
                "screens.oidc.ca",
                "pinned",
            ),
            (
                ("file:oidc-secret.txt", "file:nope.txt"),
                "screens.oidc.client_secret",
                "cannot read",
            ),
            (
                ("http://127.0.0.1:8080", "http://127.0.0.1:8080/screens"),
                "screens.oidc.redirect_base",
                "no path",
            ),
            (
                ("window = \"综合窗口\"", ""),
                "screens.oidc.roles[0].window",
                "window_claim",
            ),
            (
                ("\"apply:*\"", "\"everything\""),
                "screens.oidc.roles[0].scopes",
                "not a scope",
            ),
            (
                ("role = \"clerk\"", "role = \"supervisor\""),
                "screens.oidc.roles[0].role",
                "a clerk's",
            ),
        ] {
            let text = BASE.replace(change.0, change.1);
            let error = parse(&text, dir.path()).unwrap_err();
            assert_eq!(error.key, key, "{text}");
            assert!(error.reason.contains(why), "{}", error.reason);
        }
        let no_rows = BASE.split("[[roles]]").next().unwrap().to_string() + "roles = []\n";
        let error = parse(&no_rows, dir.path()).unwrap_err();
        assert_eq!(error.key, "screens.oidc.roles");
    }
}
