//! The local accounts of `[[screens.accounts]]`, checked against their Argon2 hashes.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use gateway_base::config::{AccountConfig, Role};
use std::collections::HashMap;

/// Who a session belongs to, as the screens show and record them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    /// The user signed in with (a clerk's id on every exchange).
    pub user: String,
    /// The person's name.
    pub name: String,
    /// A clerk's window.
    pub window: Option<String>,
    /// A clerk's hall.
    pub hall: Option<String>,
    /// A clerk's scopes (the API clients' names).
    pub scopes: Vec<String>,
    /// The identity provider's `sub` of a person signed in through it (`[screens.oidc]`);
    /// `None` for a local account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

struct Account {
    role: Role,
    hash: String,
    profile: Profile,
}

/// The accounts, by user.
pub(crate) struct Accounts {
    by_user: HashMap<String, Account>,
    /// Verified when the user is unknown, so an unknown user takes as long as a wrong password.
    decoy: String,
}

impl Accounts {
    pub(crate) fn new(accounts: &[AccountConfig]) -> Result<Accounts, String> {
        let mut by_user = HashMap::new();
        for (i, a) in accounts.iter().enumerate() {
            PasswordHash::new(&a.password_hash)
                .map_err(|e| format!("screens.accounts[{i}].password_hash: {e}"))?;
            by_user.insert(
                a.user.clone(),
                Account {
                    role: a.role,
                    hash: a.password_hash.clone(),
                    profile: Profile {
                        user: a.user.clone(),
                        name: a.name.clone(),
                        window: a.window.clone(),
                        hall: a.hall.clone(),
                        scopes: a.scopes.clone(),
                        subject: None,
                    },
                },
            );
        }
        let decoy = hash_password("decoy").map_err(|e| format!("screens: {e}"))?;
        Ok(Accounts { by_user, decoy })
    }

    /// Whether a local account has this user (someone signing in through the identity
    /// provider may not take a local account's name).
    pub(crate) fn has(&self, user: &str) -> bool {
        self.by_user.contains_key(user)
    }

    /// The account a user and password sign in as, if they match and its role is one of
    /// `roles`. Argon2 is slow on purpose: run it off the async threads.
    pub(crate) async fn check(
        &self,
        user: &str,
        password: &str,
        roles: &[Role],
    ) -> Option<(Role, Profile)> {
        let account = self.by_user.get(user);
        let hash = account.map_or(self.decoy.clone(), |a| a.hash.clone());
        let password = password.to_string();
        let matches = tokio::task::spawn_blocking(move || verify(&hash, &password))
            .await
            .unwrap_or(false);
        let account = account.filter(|a| matches && roles.contains(&a.role))?;
        Some((account.role, account.profile.clone()))
    }
}

fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// An Argon2id PHC string of `password` with a fresh salt and the crate's default cost (the
/// OWASP minimum: 19 MiB, 2 passes), for `[[screens.accounts]] password_hash`.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_password("窗口密码-1").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify(&hash, "窗口密码-1"));
        assert!(!verify(&hash, "窗口密码-2"));
        assert!(!verify("not a hash", "窗口密码-1"));
        assert_ne!(hash, hash_password("窗口密码-1").unwrap(), "salted");
    }
}
