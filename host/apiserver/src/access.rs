//! Access control: the opt-in mode in which every API request must authenticate with a bearer
//! token and be allowed by RBAC, answered as upstream kube-apiserver answers (401
//! `Unauthorized`, 403 `Forbidden` with its exact message), with a log of every RBAC decision
//! so a test can assert a client was never refused and see what it was refused.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use dovetail_apiserver::{AccessControl, ApiServer, ServerConfig};
//!
//! let access = AccessControl::new();
//! let server = ApiServer::start(ServerConfig {
//!     access: Some(access.clone()),
//!     ..ServerConfig::default()
//! })
//! .await
//! .unwrap();
//! // Valid while the ServiceAccount kube-system/dovetail exists; RBAC decides what it may do.
//! let token = access.service_account_token("kube-system", "dovetail");
//! let kubeconfig = dovetail_apiserver::cluster::kubeconfig_with_token(&server.url(), &token);
//! # let _ = kubeconfig;
//! // ... run a client with it, then:
//! assert!(access.denials().is_empty());
//! # }
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::authn::{Authentication, AuthenticationError, UserInfo};
use crate::rbac::{self, Decision};
use crate::request_info::RequestAttributes;
use crate::status::ApiError;
use crate::store::Store;

/// The access-control mode: tokens, and the log of decisions. Clones share both.
#[derive(Clone, Debug, Default)]
pub struct AccessControl {
    authentication: Authentication,
    log: Arc<Mutex<AccessLog>>,
}

impl PartialEq for AccessControl {
    fn eq(&self, other: &Self) -> bool {
        self.authentication == other.authentication && Arc::ptr_eq(&self.log, &other.log)
    }
}

impl Eq for AccessControl {}

/// A request RBAC refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub user: UserInfo,
    pub attributes: RequestAttributes,
    /// The 403's message, e.g. `nodes is forbidden: User "system:serviceaccount:kube-system:
    /// dovetail" cannot list resource "nodes" in API group "" at the cluster scope`.
    pub message: String,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A request that did not authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unauthenticated {
    pub attributes: RequestAttributes,
    pub reason: AuthenticationError,
}

/// One distinct RBAC decision: who asked for what, whether it was allowed, why, how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRecord {
    pub user: UserInfo,
    pub attributes: RequestAttributes,
    pub allowed: bool,
    /// Upstream's reason: for an allowed request the binding, role and subject that allowed it.
    pub reason: String,
    pub count: u64,
}

#[derive(Debug, Default)]
struct AccessLog {
    denials: Vec<Denial>,
    unauthenticated: Vec<Unauthenticated>,
    decisions: BTreeMap<(UserInfo, RequestAttributes), DecisionRecord>,
}

impl AccessControl {
    /// Access control with one administrator token ([`Self::admin_token`]) and the default
    /// RBAC policy, which the server stores when it starts.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tokens the server accepts.
    pub fn authentication(&self) -> &Authentication {
        &self.authentication
    }

    /// A token for `kubernetes-admin` in `system:masters`, allowed everything.
    pub fn admin_token(&self) -> &str {
        self.authentication.admin_token()
    }

    /// Accepts `token` as `user` from now on.
    pub fn add_token(&self, token: &str, user: UserInfo) {
        self.authentication.add_token(token, user);
    }

    /// A new token for the ServiceAccount `namespace/name`: it authenticates while that
    /// ServiceAccount exists, as `system:serviceaccount:<namespace>:<name>`.
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        self.authentication.service_account_token(namespace, name)
    }

    /// Every request RBAC refused, oldest first.
    pub fn denials(&self) -> Vec<Denial> {
        self.lock().denials.clone()
    }

    /// Every request that did not authenticate, oldest first.
    pub fn unauthenticated(&self) -> Vec<Unauthenticated> {
        self.lock().unauthenticated.clone()
    }

    /// Every distinct request RBAC decided (not those of `system:masters`, which it never
    /// sees), by user and attributes.
    pub fn decisions(&self) -> Vec<DecisionRecord> {
        self.lock().decisions.values().cloned().collect()
    }

    /// Forgets every logged decision, denial and unauthenticated request.
    pub fn clear_log(&self) {
        *self.lock() = AccessLog::default();
    }

    /// Decides `attrs` for `user` without logging it.
    pub fn authorize(&self, store: &Store, user: &UserInfo, attrs: &RequestAttributes) -> Decision {
        rbac::authorize(store, user, attrs)
    }

    /// Authenticates and authorises a request; the error is the answer to send.
    pub(crate) fn admit(
        &self,
        store: &Store,
        method: &str,
        path: &str,
        query: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<UserInfo, ApiError> {
        let attrs = RequestAttributes::from_request(method, path, query)
            .map_err(|e| ApiError::Internal(format!("failed to create RequestInfo: {e}")))?;
        let user = match self.authentication.authenticate(store, authorization) {
            Ok(user) => user,
            Err(reason) => {
                tracing::warn!("unauthenticated {} {path}: {reason}", attrs.verb);
                self.lock().unauthenticated.push(Unauthenticated {
                    attributes: attrs,
                    reason,
                });
                return Err(ApiError::Unauthorized);
            }
        };
        let decision = self.decide(store, &user, &attrs);
        if decision.allowed {
            return Ok(user);
        }
        let message = sanitize(&forbidden_message(&user, &attrs));
        let message = if decision.reason.is_empty() {
            message
        } else {
            format!("{message}: {}", decision.reason)
        };
        Err(self.deny(user, attrs, message))
    }

    /// The second check of a write that creates its object (server-side apply of a missing
    /// object): upstream authorises `create` on it too, and words a refusal without the user.
    pub(crate) fn admit_create(
        &self,
        store: &Store,
        user: &UserInfo,
        method: &str,
        path: &str,
    ) -> Result<(), ApiError> {
        let mut attrs = RequestAttributes::from_request(method, path, None)
            .map_err(|e| ApiError::Internal(format!("failed to create RequestInfo: {e}")))?;
        attrs.verb = "create".into();
        let decision = self.decide(store, user, &attrs);
        if decision.allowed {
            return Ok(());
        }
        let reason = decision.reason;
        Err(self.deny(user.clone(), attrs, reason))
    }

    fn decide(&self, store: &Store, user: &UserInfo, attrs: &RequestAttributes) -> Decision {
        let decision = rbac::authorize(store, user, attrs);
        if !user.in_group(crate::authn::SYSTEM_MASTERS) {
            let mut log = self.lock();
            let record = log
                .decisions
                .entry((user.clone(), attrs.clone()))
                .or_insert_with(|| DecisionRecord {
                    user: user.clone(),
                    attributes: attrs.clone(),
                    allowed: decision.allowed,
                    reason: decision.reason.clone(),
                    count: 0,
                });
            record.allowed = decision.allowed;
            record.reason.clone_from(&decision.reason);
            record.count += 1;
        }
        decision
    }

    /// Logs a refusal and builds its 403, as upstream's `NewForbidden` words it around `detail`.
    fn deny(&self, user: UserInfo, attrs: RequestAttributes, detail: String) -> ApiError {
        let group = attrs.api_group.clone();
        let resource = attrs.resource.clone();
        let name = attrs.name.clone();
        let qualified = if group.is_empty() {
            resource.clone()
        } else {
            format!("{resource}.{group}")
        };
        let message = if qualified.is_empty() {
            format!("forbidden: {detail}")
        } else if name.is_empty() {
            format!("{qualified} is forbidden: {detail}")
        } else {
            format!("{qualified} {name:?} is forbidden: {detail}")
        };
        tracing::warn!("{message}");
        self.lock().denials.push(Denial {
            user,
            attributes: attrs,
            message: message.clone(),
        });
        ApiError::Denied {
            group,
            resource,
            name,
            message,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AccessLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Upstream's `forbiddenMessage`.
fn forbidden_message(user: &UserInfo, a: &RequestAttributes) -> String {
    if !a.resource_request {
        return format!("User {:?} cannot {} path {:?}", user.name, a.verb, a.path);
    }
    let resource = a.combined_resource();
    if a.namespace.is_empty() {
        format!(
            "User {:?} cannot {} resource {resource:?} in API group {:?} at the cluster scope",
            user.name, a.verb, a.api_group
        )
    } else {
        format!(
            "User {:?} cannot {} resource {resource:?} in API group {:?} in the namespace {:?}",
            user.name, a.verb, a.api_group, a.namespace
        )
    }
}

/// Upstream escapes what could read as HTML in the message.
fn sanitize(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_messages_follow_upstream() {
        let sa = UserInfo::service_account("kube-system", "dovetail");
        let a = RequestAttributes::from_request("GET", "/api/v1/nodes", None).unwrap();
        assert_eq!(
            forbidden_message(&sa, &a),
            r#"User "system:serviceaccount:kube-system:dovetail" cannot list resource "nodes" in API group "" at the cluster scope"#
        );
        let a =
            RequestAttributes::from_request("POST", "/api/v1/namespaces/d/pods/p/eviction", None)
                .unwrap();
        assert_eq!(
            forbidden_message(&sa, &a),
            r#"User "system:serviceaccount:kube-system:dovetail" cannot create resource "pods/eviction" in API group "" in the namespace "d""#
        );
        let a = RequestAttributes::from_request("GET", "/metrics", None).unwrap();
        assert_eq!(
            forbidden_message(&sa, &a),
            r#"User "system:serviceaccount:kube-system:dovetail" cannot get path "/metrics""#
        );
        assert_eq!(sanitize("a<b>&"), "a&lt;b&gt;&amp;");
    }
}
