//! What a request asks to do, in the terms an authoriser decides on: the verb, and either the
//! resource (API group, resource, subresource, namespace, name) or the non-resource path.
//!
//! Derived from the URL and method alone, as upstream's `RequestInfoFactory` derives it, so a
//! request is judged the same way whether or not this server serves what it names.

use crate::selector::{FieldOperator, FieldSelector, LabelSelector};

/// A request's authorisation attributes (upstream's `authorizer.Attributes`, without the user).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestAttributes {
    /// A request for an API resource (`/api/v1/...`, `/apis/<group>/<version>/...`); the
    /// rest (`/version`, `/api`, `/apis/<group>`, `/openapi/v3`, `/healthz`) are not.
    pub resource_request: bool,
    /// For resource requests the Kubernetes verb (`get`, `list`, `watch`, `create`, `update`,
    /// `patch`, `delete`, `deletecollection`); otherwise the lower-cased HTTP method.
    pub verb: String,
    /// The URL path.
    pub path: String,
    /// Empty for the core group.
    pub api_group: String,
    pub api_version: String,
    /// Empty for cluster-scoped requests.
    pub namespace: String,
    /// Plural, e.g. `pods`.
    pub resource: String,
    /// e.g. `status`, `eviction`, `binding`, `scale`.
    pub subresource: String,
    /// The object's name; for a list or watch, the name a `metadata.name` field selector pins.
    pub name: String,
}

/// Upstream cannot work out what a path names (`/api/v1/watch` with nothing after it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to determine kind and namespace from url, {0}")]
pub struct UnparseablePath(pub String);

/// Verbs given as a path segment (`/api/v1/watch/pods`), a deprecated form upstream still
/// honours.
const SPECIAL_VERBS: [&str; 2] = ["proxy", "watch"];

impl RequestAttributes {
    /// A non-resource request for `path`.
    pub fn non_resource(verb: &str, path: &str) -> Self {
        Self {
            resource_request: false,
            verb: verb.to_string(),
            path: path.to_string(),
            api_group: String::new(),
            api_version: String::new(),
            namespace: String::new(),
            resource: String::new(),
            subresource: String::new(),
            name: String::new(),
        }
    }

    /// The attributes of a request with `method` (upper-case HTTP), `path` and raw `query`.
    pub fn from_request(
        method: &str,
        path: &str,
        query: Option<&str>,
    ) -> Result<Self, UnparseablePath> {
        let mut info = Self::non_resource(&method.to_ascii_lowercase(), path);
        let trimmed = path.trim_matches('/');
        let parts: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
            return Ok(info);
        }
        let mut rest = &parts[1..];
        if parts[0] == "apis" {
            if rest.len() < 3 {
                return Ok(info);
            }
            info.api_group = rest[0].to_string();
            rest = &rest[1..];
        }
        info.resource_request = true;
        info.api_version = rest[0].to_string();
        rest = &rest[1..];
        if SPECIAL_VERBS.contains(&rest[0]) {
            if rest.len() < 2 {
                return Err(UnparseablePath(match query {
                    Some(q) => format!("{path}?{q}"),
                    None => path.to_string(),
                }));
            }
            info.verb = rest[0].to_string();
            rest = &rest[1..];
        } else {
            info.verb = match method {
                "POST" => "create",
                "GET" | "HEAD" => "get",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "",
            }
            .to_string();
        }
        if rest[0] == "namespaces" && rest.len() > 1 {
            info.namespace = rest[1].to_string();
            // `namespaces/<ns>/status` is the namespace's own subresource.
            if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
                rest = &rest[2..];
            }
        }
        if rest.len() >= 3 && info.verb != "proxy" {
            info.subresource = rest[2].to_string();
        }
        if rest.len() >= 2 {
            info.name = rest[1].to_string();
        }
        info.resource = rest[0].to_string();
        if info.name.is_empty() && info.verb == "get" {
            let params = query_pairs(query);
            let first = |key: &str| {
                params
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
            };
            let watch =
                first("watch").is_some_and(|w| w != "0" && !w.eq_ignore_ascii_case("false"));
            info.verb = if watch { "watch" } else { "list" }.to_string();
            // A list or watch of one object by name is judged as a request for that name, so
            // a rule with resourceNames can allow it; only when every list option decodes.
            if list_options_decode(first)
                && let Some(name) = first("fieldSelector").and_then(exact_name)
            {
                info.name = name;
            }
        }
        if info.name.is_empty() && info.verb == "delete" {
            info.verb = "deletecollection".to_string();
        }
        Ok(info)
    }

    /// `pods`, `pods/eviction`: what rules name in `resources`.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// The query's key-value pairs in order; a malformed query reads as empty, as Go's
/// `URL.Query()` skips what it cannot parse.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
}

/// Whether upstream's ListOptions decoding of the query succeeds: the selectors parse and
/// the integer options are integers.
fn list_options_decode<'a>(first: impl Fn(&str) -> Option<&'a str>) -> bool {
    let integer = |k: &str| first(k).is_none_or(|v| v.parse::<i64>().is_ok());
    let labels = first("labelSelector").is_none_or(|s| LabelSelector::parse(s).is_ok());
    let fields = first("fieldSelector").is_none_or(|s| FieldSelector::parse(s).is_ok());
    labels && fields && integer("limit") && integer("timeoutSeconds")
}

/// The name a field selector requires exactly (`metadata.name=x` or `==`), when it is a valid
/// path segment.
fn exact_name(selector: &str) -> Option<String> {
    let parsed = FieldSelector::parse(selector).ok()?;
    let name = parsed
        .requirements
        .into_iter()
        .find(|r| r.field == "metadata.name" && r.operator == FieldOperator::Equals)?
        .value;
    let valid = name != "." && name != ".." && !name.contains('/') && !name.contains('%');
    valid.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: &str, url: &str) -> RequestAttributes {
        let (path, query) = match url.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (url, None),
        };
        RequestAttributes::from_request(method, path, query).unwrap()
    }

    fn summary(a: &RequestAttributes) -> (bool, &str, &str, &str, &str, &str, &str) {
        (
            a.resource_request,
            a.verb.as_str(),
            a.api_group.as_str(),
            a.namespace.as_str(),
            a.resource.as_str(),
            a.subresource.as_str(),
            a.name.as_str(),
        )
    }

    #[test]
    fn verbs_follow_method_name_and_watch_parameter() {
        let cases = [
            (
                "GET",
                "/api/v1/nodes",
                (true, "list", "", "", "nodes", "", ""),
            ),
            (
                "GET",
                "/api/v1/nodes?watch=true",
                (true, "watch", "", "", "nodes", "", ""),
            ),
            (
                "GET",
                "/api/v1/nodes?watch=1",
                (true, "watch", "", "", "nodes", "", ""),
            ),
            (
                "GET",
                "/api/v1/nodes?watch=",
                (true, "watch", "", "", "nodes", "", ""),
            ),
            (
                "GET",
                "/api/v1/nodes?watch=False",
                (true, "list", "", "", "nodes", "", ""),
            ),
            (
                "GET",
                "/api/v1/nodes?watch=0",
                (true, "list", "", "", "nodes", "", ""),
            ),
            (
                "GET",
                "/api/v1/nodes/n1",
                (true, "get", "", "", "nodes", "", "n1"),
            ),
            (
                "PUT",
                "/api/v1/nodes/n1/status",
                (true, "update", "", "", "nodes", "status", "n1"),
            ),
            (
                "PATCH",
                "/apis/karpenter.sh/v1/nodeclaims/c/status",
                (
                    true,
                    "patch",
                    "karpenter.sh",
                    "",
                    "nodeclaims",
                    "status",
                    "c",
                ),
            ),
            (
                "POST",
                "/api/v1/namespaces/d/pods/p/eviction",
                (true, "create", "", "d", "pods", "eviction", "p"),
            ),
            (
                "POST",
                "/api/v1/namespaces/d/pods/p/binding",
                (true, "create", "", "d", "pods", "binding", "p"),
            ),
            (
                "POST",
                "/api/v1/namespaces/d/events",
                (true, "create", "", "d", "events", "", ""),
            ),
            (
                "DELETE",
                "/api/v1/namespaces/d/pods/p",
                (true, "delete", "", "d", "pods", "", "p"),
            ),
            (
                "DELETE",
                "/api/v1/namespaces/d/pods",
                (true, "deletecollection", "", "d", "pods", "", ""),
            ),
            (
                "GET",
                "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l",
                (
                    true,
                    "get",
                    "coordination.k8s.io",
                    "kube-system",
                    "leases",
                    "",
                    "l",
                ),
            ),
            // A namespace is named in its own namespace.
            (
                "GET",
                "/api/v1/namespaces/kube-system",
                (
                    true,
                    "get",
                    "",
                    "kube-system",
                    "namespaces",
                    "",
                    "kube-system",
                ),
            ),
            (
                "PUT",
                "/api/v1/namespaces/x/finalize",
                (true, "update", "", "x", "namespaces", "finalize", "x"),
            ),
            (
                "GET",
                "/api/v1/namespaces",
                (true, "list", "", "", "namespaces", "", ""),
            ),
            (
                "GET",
                "/api/v1/watch/namespaces/d/pods",
                (true, "watch", "", "d", "pods", "", ""),
            ),
            (
                "GET",
                "/api/v1/proxy/nodes/n1/x",
                (true, "proxy", "", "", "nodes", "", "n1"),
            ),
        ];
        for (method, url, want) in cases {
            assert_eq!(summary(&attrs(method, url)), want, "{method} {url}");
        }
    }

    #[test]
    fn discovery_openapi_and_health_are_non_resource() {
        for (method, path) in [
            ("GET", "/version"),
            ("GET", "/api"),
            ("GET", "/api/v1"),
            ("GET", "/apis"),
            ("GET", "/apis/apps"),
            ("GET", "/apis/apps/v1"),
            ("GET", "/openapi/v3/apis/apps/v1"),
            ("GET", "/healthz"),
            ("POST", "/"),
        ] {
            let a = attrs(method, path);
            assert!(!a.resource_request, "{path}");
            assert_eq!(a.verb, method.to_ascii_lowercase());
            assert_eq!(a.path, path);
        }
    }

    #[test]
    fn a_name_field_selector_names_the_object_of_a_list_or_watch() {
        let a = attrs(
            "GET",
            "/api/v1/namespaces/d/configmaps?fieldSelector=metadata.name%3Dcfg&watch=true",
        );
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("watch", "cfg"));
        let a = attrs(
            "GET",
            "/api/v1/namespaces/d/configmaps?fieldSelector=metadata.name%3D%3Dcfg,metadata.namespace%3Dd",
        );
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("list", "cfg"));
        for url in [
            "/api/v1/namespaces/d/configmaps?fieldSelector=metadata.name!%3Dcfg",
            "/api/v1/namespaces/d/configmaps?fieldSelector=metadata.name%3Da%2Fb",
            // Any option that fails to decode leaves the name out.
            "/api/v1/namespaces/d/configmaps?fieldSelector=metadata.name%3Dcfg&limit=x",
        ] {
            let a = attrs("GET", url);
            assert_eq!((a.verb.as_str(), a.name.as_str()), ("list", ""), "{url}");
        }
    }

    #[test]
    fn a_verb_segment_without_a_resource_cannot_be_parsed() {
        assert!(RequestAttributes::from_request("GET", "/api/v1/watch", None).is_err());
    }
}
