//! Authentication: bearer tokens to users, as upstream's static token and ServiceAccount token
//! authenticators map them.
//!
//! A request authenticates with `Authorization: Bearer <token>`. There is no anonymous user
//! (upstream's `--anonymous-auth=false`): a request without a token the server knows is 401.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::store::Store;

/// Members are allowed every request, before and without RBAC (upstream short-circuits it).
pub const SYSTEM_MASTERS: &str = "system:masters";
/// Every authenticated user is in this group.
pub const SYSTEM_AUTHENTICATED: &str = "system:authenticated";
/// Every ServiceAccount is in this group.
pub const SYSTEM_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// The prefix of ServiceAccount user names: `system:serviceaccount:<namespace>:<name>`.
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// A plain user in `groups`, and in `system:authenticated` as every authenticated user is.
    pub fn user(name: &str, groups: &[&str]) -> Self {
        let mut all: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        if !all.iter().any(|g| g == SYSTEM_AUTHENTICATED) {
            all.push(SYSTEM_AUTHENTICATED.to_string());
        }
        Self {
            name: name.to_string(),
            uid: String::new(),
            groups: all,
        }
    }

    /// The ServiceAccount `namespace/name`, named and grouped as upstream names it.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            name: service_account_user_name(namespace, name),
            uid: String::new(),
            groups: vec![
                SYSTEM_SERVICE_ACCOUNTS.to_string(),
                format!("{SYSTEM_SERVICE_ACCOUNTS}:{namespace}"),
                SYSTEM_AUTHENTICATED.to_string(),
            ],
        }
    }

    /// The administrator every [`Authentication`] starts with: in `system:masters`.
    pub fn admin() -> Self {
        Self::user(ADMIN_USER, &[SYSTEM_MASTERS])
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// The administrator's user name (kubeadm's name for it).
pub const ADMIN_USER: &str = "kubernetes-admin";

/// `system:serviceaccount:<namespace>:<name>`
pub fn service_account_user_name(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}")
}

/// What a token stands for.
#[derive(Debug, Clone)]
enum Credential {
    User(UserInfo),
    /// Valid while the ServiceAccount exists, whose uid it carries (upstream's ServiceAccount
    /// token authenticator looks the account up on every request).
    ServiceAccount {
        namespace: String,
        name: String,
    },
}

/// The tokens the server accepts. Clones share the same tokens, so a test can add one while
/// the server runs.
#[derive(Clone)]
pub struct Authentication {
    tokens: Arc<RwLock<HashMap<String, Credential>>>,
    admin_token: String,
}

impl std::fmt::Debug for Authentication {
    // Tokens are credentials: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.tokens.read().map_or(0, |t| t.len());
        f.debug_struct("Authentication")
            .field("tokens", &n)
            .finish_non_exhaustive()
    }
}

impl Default for Authentication {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for Authentication {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.tokens, &other.tokens)
    }
}

impl Eq for Authentication {}

/// Why a request is not authenticated (every one is a 401 `Unauthorized`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthenticationError {
    #[error("no bearer token: send `Authorization: Bearer <token>`")]
    NoToken,
    #[error("invalid bearer token")]
    UnknownToken,
    #[error("service account {namespace}/{name} has been deleted")]
    ServiceAccountGone { namespace: String, name: String },
}

impl Authentication {
    /// Tokens with one administrator (in `system:masters`): see [`Self::admin_token`].
    pub fn new() -> Self {
        let admin_token = new_token();
        let mut tokens = HashMap::new();
        tokens.insert(admin_token.clone(), Credential::User(UserInfo::admin()));
        Self {
            tokens: Arc::new(RwLock::new(tokens)),
            admin_token,
        }
    }

    /// The administrator's token; the cluster's own components use it too.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Accepts `token` as `user` from now on (replacing what it stood for before).
    pub fn add_token(&self, token: &str, user: UserInfo) {
        self.write()
            .insert(token.to_string(), Credential::User(user));
    }

    /// A new random token for `user`.
    pub fn mint(&self, user: UserInfo) -> String {
        let token = new_token();
        self.add_token(&token, user);
        token
    }

    /// A new token for the ServiceAccount `namespace/name`. As upstream's ServiceAccount
    /// tokens, it authenticates only while that ServiceAccount exists, and carries its uid.
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        let token = new_token();
        self.write().insert(
            token.clone(),
            Credential::ServiceAccount {
                namespace: namespace.to_string(),
                name: name.to_string(),
            },
        );
        token
    }

    /// Stops accepting `token`.
    pub fn revoke(&self, token: &str) {
        self.write().remove(token);
    }

    /// The user an `Authorization` header value names.
    pub fn authenticate(
        &self,
        store: &Store,
        authorization: Option<&str>,
    ) -> Result<UserInfo, AuthenticationError> {
        let token = bearer_token(authorization).ok_or(AuthenticationError::NoToken)?;
        let credential = self
            .tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()
            .ok_or(AuthenticationError::UnknownToken)?;
        match credential {
            Credential::User(user) => Ok(user),
            Credential::ServiceAccount { namespace, name } => {
                let uid = store
                    .resource("", "v1", "serviceaccounts")
                    .and_then(|res| store.get(&res, &namespace, &name).ok())
                    .map(|sa| {
                        sa.pointer("/metadata/uid")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    })
                    .ok_or_else(|| AuthenticationError::ServiceAccountGone {
                        namespace: namespace.clone(),
                        name: name.clone(),
                    })?;
                Ok(UserInfo {
                    uid,
                    ..UserInfo::service_account(&namespace, &name)
                })
            }
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Credential>> {
        self.tokens.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive), as upstream's bearer token
/// authenticator reads the header; anything else carries no token.
fn bearer_token(header: Option<&str>) -> Option<&str> {
    let mut parts = header?.trim().splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn service_accounts_are_named_and_grouped_as_upstream() {
        let u = UserInfo::service_account("kube-system", "dovetail");
        assert_eq!(u.name, "system:serviceaccount:kube-system:dovetail");
        assert_eq!(
            u.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:kube-system",
                "system:authenticated"
            ]
        );
        assert_eq!(
            UserInfo::user("alice", &[]).groups,
            ["system:authenticated"]
        );
        assert!(UserInfo::admin().in_group(SYSTEM_MASTERS));
    }

    #[test]
    fn only_a_known_bearer_token_authenticates() {
        let store = Store::default();
        let auth = Authentication::new();
        let t = auth.mint(UserInfo::user("alice", &["dev"]));
        let who = |h: &str| auth.authenticate(&store, Some(h));
        assert_eq!(who(&format!("Bearer {t}")).unwrap().name, "alice");
        assert_eq!(who(&format!("bearer {t}")).unwrap().name, "alice");
        assert_eq!(who("Bearer nope"), Err(AuthenticationError::UnknownToken));
        assert_eq!(who("Bearer "), Err(AuthenticationError::NoToken));
        assert_eq!(
            who(&format!("Basic {t}")),
            Err(AuthenticationError::NoToken)
        );
        assert_eq!(
            auth.authenticate(&store, None),
            Err(AuthenticationError::NoToken)
        );
        auth.revoke(&t);
        assert_eq!(
            who(&format!("Bearer {t}")),
            Err(AuthenticationError::UnknownToken)
        );
        let admin = who(&format!("Bearer {}", auth.admin_token())).unwrap();
        assert!(admin.in_group(SYSTEM_MASTERS));
    }

    #[test]
    fn a_service_account_token_needs_the_account_and_carries_its_uid() {
        let store = Store::default();
        let auth = Authentication::new();
        let t = auth.service_account_token("kube-system", "dovetail");
        let header = format!("Bearer {t}");
        assert!(matches!(
            auth.authenticate(&store, Some(&header)),
            Err(AuthenticationError::ServiceAccountGone { .. })
        ));
        let sas = store.resource("", "v1", "serviceaccounts").unwrap();
        store
            .create(
                &sas,
                "kube-system",
                json!({ "metadata": { "name": "dovetail" } }),
            )
            .unwrap();
        let uid = store.get(&sas, "kube-system", "dovetail").unwrap()["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string();
        let user = auth.authenticate(&store, Some(&header)).unwrap();
        assert_eq!(user.name, "system:serviceaccount:kube-system:dovetail");
        assert_eq!(user.uid, uid);
    }
}
