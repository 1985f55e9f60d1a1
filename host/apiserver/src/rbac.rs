//! The RBAC authoriser, evaluating the stored `rbac.authorization.k8s.io/v1` objects as
//! upstream's does: every ClusterRoleBinding whose subjects include the user grants its role's
//! rules everywhere; every RoleBinding in the request's namespace grants its Role's (or
//! ClusterRole's) rules in that namespace. Rules only allow; nothing denies.
//!
//! Aggregated ClusterRoles are not assembled: a ClusterRole grants the `rules` stored on it,
//! and its `aggregationRule` is ignored.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::authn::{SYSTEM_MASTERS, UserInfo, service_account_user_name};
use crate::request_info::RequestAttributes;
use crate::store::Store;

pub const GROUP: &str = "rbac.authorization.k8s.io";

/// An authoriser's answer, with upstream's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Allowed: what allowed it (`RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y"
    /// to ServiceAccount "name/namespace"`; empty for `system:masters`). Denied: empty, or the
    /// bindings that could not be resolved (`RBAC: clusterrole.rbac.authorization.k8s.io "y"
    /// not found`), which upstream appends to the 403 message.
    pub reason: String,
}

/// Decides `attrs` for `user`: `system:masters` first (allowed everything), then RBAC.
pub fn authorize(store: &Store, user: &UserInfo, attrs: &RequestAttributes) -> Decision {
    if user.in_group(SYSTEM_MASTERS) {
        return Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    let mut errors = Vec::new();
    let mut allowed_by = None;
    visit_rules(store, user, &attrs.namespace, |source, rule| match rule {
        Ok(rule) if rule_allows(attrs, rule) => {
            allowed_by = Some(source.to_string());
            false
        }
        Ok(_) => true,
        Err(e) => {
            errors.push(e);
            true
        }
    });
    match allowed_by {
        Some(source) => Decision {
            allowed: true,
            reason: format!("RBAC: allowed by {source}"),
        },
        None => Decision {
            allowed: false,
            reason: if errors.is_empty() {
                String::new()
            } else {
                format!("RBAC: {}", aggregate(&errors))
            },
        },
    }
}

/// Every rule that applies to `user` in `namespace` (cluster-wide ones only when empty).
pub fn rules_for(store: &Store, user: &UserInfo, namespace: &str) -> Vec<PolicyRule> {
    let mut rules = Vec::new();
    visit_rules(store, user, namespace, |_, rule| {
        if let Ok(rule) = rule {
            rules.push(rule.clone());
        }
        true
    });
    rules
}

/// Whether `rule` allows the request (upstream's `RuleAllows`).
pub fn rule_allows(attrs: &RequestAttributes, rule: &PolicyRule) -> bool {
    let verb = rule.verbs.iter().any(|v| v == "*" || *v == attrs.verb);
    if !attrs.resource_request {
        let urls = rule.non_resource_urls.as_deref().unwrap_or_default();
        return verb
            && urls.iter().any(|u| {
                u == "*"
                    || *u == attrs.path
                    || u.strip_suffix('*')
                        .is_some_and(|prefix| attrs.path.starts_with(prefix.trim_end_matches('*')))
            });
    }
    let groups = rule.api_groups.as_deref().unwrap_or_default();
    let group = groups.iter().any(|g| g == "*" || *g == attrs.api_group);
    let combined = attrs.combined_resource();
    let resources = rule.resources.as_deref().unwrap_or_default();
    let resource = resources.iter().any(|r| {
        r == "*"
            || *r == combined
            // `*/status` names that subresource of every resource.
            || (!attrs.subresource.is_empty()
                && r.strip_prefix("*/") == Some(attrs.subresource.as_str()))
    });
    let names = rule.resource_names.as_deref().unwrap_or_default();
    let name = names.is_empty() || names.contains(&attrs.name);
    verb && group && resource && name
}

/// What granted a rule, in upstream's words.
enum Source<'a> {
    ClusterRoleBinding(&'a ClusterRoleBinding, &'a Subject),
    RoleBinding(&'a RoleBinding, &'a Subject),
}

impl std::fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClusterRoleBinding(b, s) => write!(
                f,
                "ClusterRoleBinding {:?} of {} {:?} to {}",
                name_of(&b.metadata),
                b.role_ref.kind,
                b.role_ref.name,
                describe_subject(s, "")
            ),
            Self::RoleBinding(b, s) => {
                let ns = b.metadata.namespace.as_deref().unwrap_or_default();
                write!(
                    f,
                    "RoleBinding {:?} of {} {:?} to {}",
                    format!("{}/{ns}", name_of(&b.metadata)),
                    b.role_ref.kind,
                    b.role_ref.name,
                    describe_subject(s, ns)
                )
            }
        }
    }
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

fn describe_subject(s: &Subject, binding_namespace: &str) -> String {
    match s.kind.as_str() {
        "ServiceAccount" => {
            let ns = s
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_namespace);
            format!("{} {:?}", s.kind, format!("{}/{ns}", s.name))
        }
        _ => format!("{} {:?}", s.kind, s.name),
    }
}

/// Calls `visit` with each rule that applies to `user` in `namespace`, or the error resolving a
/// binding's role, until it returns false: cluster role bindings first, then the namespace's
/// role bindings (upstream's `VisitRulesFor`).
fn visit_rules(
    store: &Store,
    user: &UserInfo,
    namespace: &str,
    mut visit: impl FnMut(&dyn std::fmt::Display, Result<&PolicyRule, String>) -> bool,
) {
    for binding in objects::<ClusterRoleBinding>(store, "clusterrolebindings", "") {
        let Some(subject) = applies_to(user, binding.subjects.as_deref(), "") else {
            continue;
        };
        let source = Source::ClusterRoleBinding(&binding, subject);
        if !visit_role(store, &binding.role_ref, "", &source, &mut visit) {
            return;
        }
    }
    if namespace.is_empty() {
        return;
    }
    for binding in objects::<RoleBinding>(store, "rolebindings", namespace) {
        let Some(subject) = applies_to(user, binding.subjects.as_deref(), namespace) else {
            continue;
        };
        let source = Source::RoleBinding(&binding, subject);
        if !visit_role(store, &binding.role_ref, namespace, &source, &mut visit) {
            return;
        }
    }
}

/// Visits the rules of the role `role_ref` names, as `source` grants them (or the error that
/// it cannot be found); false once the visitor has stopped.
fn visit_role(
    store: &Store,
    role_ref: &RoleRef,
    namespace: &str,
    source: &dyn std::fmt::Display,
    visit: &mut impl FnMut(&dyn std::fmt::Display, Result<&PolicyRule, String>) -> bool,
) -> bool {
    match role_rules(store, role_ref, namespace) {
        Ok(rules) => rules.iter().all(|rule| visit(source, Ok(rule))),
        Err(e) => visit(&"", Err(e)),
    }
}

/// The first subject naming `user`; a ServiceAccount without a namespace is in the binding's.
fn applies_to<'a>(
    user: &UserInfo,
    subjects: Option<&'a [Subject]>,
    namespace: &str,
) -> Option<&'a Subject> {
    subjects?.iter().find(|s| match s.kind.as_str() {
        "User" => user.name == s.name,
        "Group" => user.in_group(&s.name),
        "ServiceAccount" => {
            let ns = s
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(namespace);
            !ns.is_empty() && user.name == service_account_user_name(ns, &s.name)
        }
        _ => false,
    })
}

/// The rules of the role a binding refers to, or upstream's error for a missing one.
fn role_rules(
    store: &Store,
    role_ref: &RoleRef,
    namespace: &str,
) -> Result<Vec<PolicyRule>, String> {
    let not_found = |kind: &str| format!("{kind}.{GROUP} {:?} not found", role_ref.name);
    match role_ref.kind.as_str() {
        "Role" => object::<Role>(store, "roles", namespace, &role_ref.name)
            .map(|r| r.rules.unwrap_or_default())
            .ok_or_else(|| not_found("role")),
        "ClusterRole" => object::<ClusterRole>(store, "clusterroles", "", &role_ref.name)
            .map(|r| r.rules.unwrap_or_default())
            .ok_or_else(|| not_found("clusterrole")),
        other => Err(format!("unsupported role reference kind: {other:?}")),
    }
}

/// Stored objects of an RBAC resource; one that does not read as its kind grants nothing.
fn objects<K: DeserializeOwned>(store: &Store, plural: &str, namespace: &str) -> Vec<K> {
    let Some(res) = store.resource(GROUP, "v1", plural) else {
        return Vec::new();
    };
    store
        .snapshot(&res, namespace, None, None)
        .map(|(_, objects)| {
            objects
                .iter()
                .filter_map(|(_, o)| K::deserialize(o.value()).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn object<K: DeserializeOwned>(
    store: &Store,
    plural: &str,
    namespace: &str,
    name: &str,
) -> Option<K> {
    let res = store.resource(GROUP, "v1", plural)?;
    let v: Value = store.get(&res, namespace, name).ok()?;
    K::deserialize(&v).ok()
}

/// Upstream's aggregate error text: one message as it is, several deduplicated in brackets.
fn aggregate(errors: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for e in errors {
        if !seen.contains(&e.as_str()) {
            seen.push(e);
        }
    }
    match seen.as_slice() {
        [one] => one.to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: Value) -> PolicyRule {
        serde_json::from_value(v).unwrap()
    }

    fn resource(
        verb: &str,
        group: &str,
        res: &str,
        sub: &str,
        ns: &str,
        name: &str,
    ) -> RequestAttributes {
        RequestAttributes {
            resource_request: true,
            verb: verb.into(),
            path: String::new(),
            api_group: group.into(),
            api_version: "v1".into(),
            namespace: ns.into(),
            resource: res.into(),
            subresource: sub.into(),
            name: name.into(),
        }
    }

    #[test]
    fn rules_match_verbs_groups_resources_and_names_as_upstream() {
        let r = rule(
            json!({ "apiGroups": [""], "resources": ["pods", "pods/eviction"], "verbs": ["get", "create"] }),
        );
        assert!(rule_allows(&resource("get", "", "pods", "", "d", "p"), &r));
        assert!(rule_allows(
            &resource("create", "", "pods", "eviction", "d", "p"),
            &r
        ));
        assert!(!rule_allows(
            &resource("create", "", "pods", "status", "d", "p"),
            &r
        ));
        assert!(!rule_allows(&resource("list", "", "pods", "", "d", ""), &r));
        assert!(!rule_allows(
            &resource("get", "apps", "pods", "", "d", "p"),
            &r
        ));
        let any_status =
            rule(json!({ "apiGroups": ["*"], "resources": ["*/status"], "verbs": ["*"] }));
        assert!(rule_allows(
            &resource("patch", "karpenter.sh", "nodeclaims", "status", "", "c"),
            &any_status
        ));
        assert!(!rule_allows(
            &resource("patch", "karpenter.sh", "nodeclaims", "", "", "c"),
            &any_status
        ));
        let named = rule(
            json!({ "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["l"], "verbs": ["get", "create", "list", "watch"] }),
        );
        assert!(rule_allows(
            &resource("get", "coordination.k8s.io", "leases", "", "d", "l"),
            &named
        ));
        assert!(!rule_allows(
            &resource("get", "coordination.k8s.io", "leases", "", "d", "m"),
            &named
        ));
        // No name on a create or a plain list: a rule with names cannot match.
        assert!(!rule_allows(
            &resource("create", "coordination.k8s.io", "leases", "", "d", ""),
            &named
        ));
        assert!(!rule_allows(
            &resource("list", "coordination.k8s.io", "leases", "", "d", ""),
            &named
        ));
        // A list pinned to the name by a field selector can.
        assert!(rule_allows(
            &resource("watch", "coordination.k8s.io", "leases", "", "d", "l"),
            &named
        ));
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_star_prefix() {
        let r =
            rule(json!({ "nonResourceURLs": ["/api", "/api/*", "/version"], "verbs": ["get"] }));
        let get = |p: &str| RequestAttributes::non_resource("get", p);
        assert!(rule_allows(&get("/api"), &r));
        assert!(rule_allows(&get("/api/v1"), &r));
        assert!(rule_allows(&get("/version"), &r));
        assert!(!rule_allows(&get("/version/"), &r));
        assert!(!rule_allows(&get("/apis"), &r));
        assert!(!rule_allows(
            &RequestAttributes::non_resource("post", "/api"),
            &r
        ));
        // A resource rule never allows a path, nor a path rule a resource.
        assert!(!rule_allows(&resource("get", "", "api", "", "", ""), &r));
        let all = rule(json!({ "nonResourceURLs": ["*"], "verbs": ["*"] }));
        assert!(rule_allows(
            &RequestAttributes::non_resource("delete", "/x/y"),
            &all
        ));
    }

    #[test]
    fn errors_aggregate_as_upstream() {
        assert_eq!(aggregate(&["a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "b".into(), "a".into()]), "[a, b]");
    }
}
