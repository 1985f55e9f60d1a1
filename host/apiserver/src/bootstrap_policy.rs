//! The part of upstream's default RBAC policy clients depend on, stored as ordinary
//! ClusterRoles and ClusterRoleBindings when access control is on, labelled and annotated as
//! upstream labels its defaults: `cluster-admin` for `system:masters`, discovery, version and
//! OpenAPI for every authenticated user (`system:discovery`, `system:public-info-viewer`),
//! access reviews about oneself (`system:basic-user`) and the ServiceAccount issuer documents
//! for ServiceAccounts.

use serde_json::{Value, json};

use crate::rbac::GROUP;
use crate::status::ApiError;
use crate::store::Store;

/// `(name, rules, subjects)`: one ClusterRole and its binding of the same name.
fn defaults() -> Vec<(&'static str, Value, Value)> {
    let group = |name: &str| json!({ "apiGroup": GROUP, "kind": "Group", "name": name });
    let authenticated = group("system:authenticated");
    vec![
        (
            "cluster-admin",
            json!([
                { "apiGroups": ["*"], "resources": ["*"], "verbs": ["*"] },
                { "nonResourceURLs": ["*"], "verbs": ["*"] },
            ]),
            json!([group("system:masters")]),
        ),
        (
            "system:discovery",
            json!([{
                "nonResourceURLs": [
                    "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                    "/openapi", "/openapi/*", "/readyz", "/version", "/version/",
                ],
                "verbs": ["get"],
            }]),
            json!([authenticated]),
        ),
        (
            "system:basic-user",
            json!([
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"],
                },
                {
                    "apiGroups": ["authentication.k8s.io"],
                    "resources": ["selfsubjectreviews"],
                    "verbs": ["create"],
                },
            ]),
            json!([authenticated]),
        ),
        (
            "system:public-info-viewer",
            json!([{
                "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                "verbs": ["get"],
            }]),
            json!([authenticated, group("system:unauthenticated")]),
        ),
        (
            "system:service-account-issuer-discovery",
            json!([{
                "nonResourceURLs": [
                    "/.well-known/openid-configuration", "/.well-known/openid-configuration/",
                    "/openid/v1/jwks", "/openid/v1/jwks/",
                ],
                "verbs": ["get"],
            }]),
            json!([group("system:serviceaccounts")]),
        ),
    ]
}

/// Stores the default ClusterRoles and ClusterRoleBindings (an existing one is left as it is,
/// as upstream leaves roles it finds).
pub fn install(store: &Store) -> Result<(), ApiError> {
    let roles = store
        .resource(GROUP, "v1", "clusterroles")
        .ok_or_else(|| ApiError::Internal("clusterroles are always served".into()))?;
    let bindings = store
        .resource(GROUP, "v1", "clusterrolebindings")
        .ok_or_else(|| ApiError::Internal("clusterrolebindings are always served".into()))?;
    let metadata = |name: &str| {
        json!({
            "name": name,
            "labels": { "kubernetes.io/bootstrapping": "rbac-defaults" },
            "annotations": { "rbac.authorization.kubernetes.io/autoupdate": "true" },
        })
    };
    for (name, rules, subjects) in defaults() {
        let role = json!({
            "apiVersion": format!("{GROUP}/v1"), "kind": "ClusterRole",
            "metadata": metadata(name), "rules": rules,
        });
        let binding = json!({
            "apiVersion": format!("{GROUP}/v1"), "kind": "ClusterRoleBinding",
            "metadata": metadata(name),
            "roleRef": { "apiGroup": GROUP, "kind": "ClusterRole", "name": name },
            "subjects": subjects,
        });
        for (res, obj) in [(&roles, role), (&bindings, binding)] {
            match store.create(res, "", obj) {
                Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
