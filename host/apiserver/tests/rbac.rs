//! Access control as upstream kube-apiserver does it with token authentication and the RBAC
//! authoriser: who may do what, and the exact 401 and 403 answers clients see (raw HTTP,
//! kube-rs and kubectl).

use std::io::{Read, Write};
use std::time::Duration;

use dovetail_apiserver::cluster::{Cluster, ClusterConfig, kubeconfig_with_token};
use dovetail_apiserver::{AccessControl, ApiServer, ServerConfig, UserInfo};
use dovetail_core::catalog::CapacityType;
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::Api;
use kube::api::{ListParams, WatchEvent, WatchParams};
use serde_json::{Value, json};

mod support;
use support::kubectl;

const SA: &str = "system:serviceaccount:kube-system:dovetail";

struct Answer {
    code: u16,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// Asserts a 403 and returns its Status.
    fn forbidden(&self) -> Value {
        assert_eq!(self.code, 403, "{}", self.body);
        let s = self.json();
        assert_eq!(s["reason"], "Forbidden", "{s}");
        s
    }
}

struct Env {
    server: ApiServer,
    access: AccessControl,
    /// The ServiceAccount kube-system/dovetail's token.
    sa: String,
}

impl Env {
    /// A server with access control and the ServiceAccount kube-system/dovetail, bound to
    /// nothing yet.
    async fn start() -> Self {
        let access = AccessControl::new();
        let server = ApiServer::start(ServerConfig {
            access: Some(access.clone()),
            ..ServerConfig::default()
        })
        .await
        .unwrap();
        let env = Self {
            sa: access.service_account_token("kube-system", "dovetail"),
            server,
            access,
        };
        for ns in ["a", "b"] {
            env.admin(
                "POST",
                "/api/v1/namespaces",
                json!({ "metadata": { "name": ns } }),
            )
            .await;
        }
        env.admin(
            "POST",
            "/api/v1/namespaces/kube-system/serviceaccounts",
            json!({ "metadata": { "name": "dovetail" } }),
        )
        .await;
        env
    }

    /// One request with `token` (none when empty); `body` is sent as JSON unless null.
    async fn request(&self, token: &str, method: &str, path: &str, body: Value) -> Answer {
        self.request_as(token, method, path, "application/json", body)
            .await
    }

    async fn request_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        content_type: &str,
        body: Value,
    ) -> Answer {
        let authorization = (!token.is_empty()).then(|| format!("Bearer {token}"));
        self.raw(authorization.as_deref(), method, path, content_type, body)
            .await
    }

    /// One request with this `Authorization` header, if any.
    async fn raw(
        &self,
        authorization: Option<&str>,
        method: &str,
        path: &str,
        content_type: &str,
        body: Value,
    ) -> Answer {
        let address = self.server.url().trim_start_matches("http://").to_string();
        let payload = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\nContent-Type: {content_type}\r\n",
            payload.len()
        );
        if let Some(a) = authorization {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&payload);
        let raw = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(&address).unwrap();
            stream.write_all(&bytes).unwrap();
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).unwrap();
            raw
        })
        .await
        .unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {text}"));
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        Answer { code, body }
    }

    /// An administrator's request that must succeed.
    async fn admin(&self, method: &str, path: &str, body: Value) -> Value {
        let a = self
            .request(self.access.admin_token(), method, path, body)
            .await;
        assert!((200..300).contains(&a.code), "{method} {path}: {}", a.body);
        a.json()
    }

    async fn sa(&self, method: &str, path: &str) -> Answer {
        self.request(&self.sa, method, path, Value::Null).await
    }

    async fn cluster_role(&self, name: &str, rules: Value) {
        self.admin(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            json!({ "metadata": { "name": name }, "rules": rules }),
        )
        .await;
    }

    /// Binds the ClusterRole `role` to `subjects` cluster-wide.
    async fn cluster_binding(&self, name: &str, role: &str, subjects: Value) {
        self.admin(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            json!({
                "metadata": { "name": name },
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role },
                "subjects": subjects,
            }),
        )
        .await;
    }

    async fn role_binding(
        &self,
        namespace: &str,
        name: &str,
        kind: &str,
        role: &str,
        subjects: Value,
    ) {
        self.admin(
            "POST",
            &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings"),
            json!({
                "metadata": { "name": name },
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role },
                "subjects": subjects,
            }),
        )
        .await;
    }

    /// A kube-rs client that reads its identity from a token kubeconfig, as the controller does.
    async fn client(&self, token: &str) -> kube::Client {
        let kubeconfig =
            kube::config::Kubeconfig::from_yaml(&kubeconfig_with_token(&self.server.url(), token))
                .unwrap();
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .unwrap();
        kube::Client::try_from(config).unwrap()
    }
}

fn dovetail_sa() -> Value {
    json!([{ "kind": "ServiceAccount", "name": "dovetail", "namespace": "kube-system" }])
}

#[tokio::test]
async fn a_request_without_a_valid_token_is_401_unauthorized() {
    let env = Env::start().await;
    let expected = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Unauthorized", "reason": "Unauthorized", "code": 401,
    });
    for (token, path) in [
        ("", "/api/v1/nodes"),
        ("", "/version"),
        ("not-a-token", "/api/v1/nodes"),
        ("not-a-token", "/apis"),
    ] {
        let a = env.request(token, "GET", path, Value::Null).await;
        assert_eq!(a.code, 401, "{token} {path}");
        assert_eq!(a.json(), expected);
    }
    assert_eq!(env.access.unauthenticated().len(), 4);
    assert_eq!(env.access.unauthenticated()[0].attributes.resource, "nodes");
    // Other schemes carry no bearer token.
    let basic = format!("Basic {}", env.access.admin_token());
    let a = env
        .raw(Some(&basic), "GET", "/api/v1/nodes", "", Value::Null)
        .await;
    assert_eq!(a.code, 401);
    let bearer = format!("bearer {}", env.access.admin_token());
    let a = env
        .raw(Some(&bearer), "GET", "/api/v1/nodes", "", Value::Null)
        .await;
    assert_eq!(a.code, 200, "the scheme is case-insensitive");
    assert_eq!(env.sa("GET", "/version").await.code, 200);

    // A ServiceAccount token stops working with its account, as upstream's does.
    env.admin(
        "DELETE",
        "/api/v1/namespaces/kube-system/serviceaccounts/dovetail",
        Value::Null,
    )
    .await;
    assert_eq!(env.sa("GET", "/version").await.code, 401);
}

#[tokio::test]
async fn a_denial_is_upstreams_exact_403() {
    let env = Env::start().await;
    let a = env.sa("GET", "/api/v1/nodes").await;
    assert_eq!(
        a.forbidden(),
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("nodes is forbidden: User \"{SA}\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"),
            "reason": "Forbidden", "details": { "kind": "nodes" }, "code": 403,
        })
    );
    let s = env
        .sa(
            "GET",
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/dovetail",
        )
        .await
        .forbidden();
    assert_eq!(
        s["message"],
        format!(
            "leases.coordination.k8s.io \"dovetail\" is forbidden: User \"{SA}\" cannot get resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"kube-system\""
        )
    );
    assert_eq!(
        s["details"],
        json!({ "name": "dovetail", "group": "coordination.k8s.io", "kind": "leases" })
    );
    let s = env.sa("GET", "/metrics").await.forbidden();
    assert_eq!(
        s["message"],
        format!("forbidden: User \"{SA}\" cannot get path \"/metrics\"")
    );
    assert_eq!(s["details"], json!({}));
    // Unknown resources are judged before they are looked up, as upstream does.
    let s = env
        .sa("GET", "/apis/example.com/v1/widgets")
        .await
        .forbidden();
    assert_eq!(
        s["message"],
        format!(
            "widgets.example.com is forbidden: User \"{SA}\" cannot list resource \"widgets\" in API group \"example.com\" at the cluster scope"
        )
    );

    let denials = env.access.denials();
    assert_eq!(denials.len(), 4);
    let d = &denials[1];
    assert_eq!(d.user.name, SA);
    assert_eq!(
        (
            d.attributes.verb.as_str(),
            d.attributes.api_group.as_str(),
            d.attributes.resource.as_str(),
            d.attributes.namespace.as_str(),
            d.attributes.name.as_str()
        ),
        (
            "get",
            "coordination.k8s.io",
            "leases",
            "kube-system",
            "dovetail"
        )
    );
    assert_eq!(d.to_string(), d.message);
    assert!(
        d.message
            .starts_with("leases.coordination.k8s.io \"dovetail\" is forbidden")
    );
}

#[tokio::test]
async fn a_cluster_role_binding_allows_a_service_account_everywhere() {
    let env = Env::start().await;
    env.cluster_role(
        "dovetail",
        json!([
            { "apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"] },
            { "apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"] },
        ]),
    )
    .await;
    env.cluster_binding("dovetail", "dovetail", dovetail_sa())
        .await;
    assert_eq!(env.sa("GET", "/api/v1/nodes").await.code, 200);
    assert_eq!(env.sa("GET", "/api/v1/configmaps").await.code, 200);
    assert_eq!(
        env.sa("GET", "/api/v1/namespaces/a/configmaps").await.code,
        200
    );
    assert_eq!(
        env.sa("GET", "/api/v1/namespaces/b/configmaps").await.code,
        200
    );
    let s = env
        .request(
            &env.sa,
            "POST",
            "/api/v1/nodes",
            json!({ "metadata": { "name": "n" } }),
        )
        .await
        .forbidden();
    assert_eq!(
        s["message"],
        format!(
            "nodes is forbidden: User \"{SA}\" cannot create resource \"nodes\" in API group \"\" at the cluster scope"
        )
    );
    // Allowed decisions name what allowed them, in upstream's words.
    let allowed = env
        .access
        .decisions()
        .into_iter()
        .find(|d| d.allowed && d.attributes.resource == "nodes")
        .unwrap();
    assert_eq!(
        allowed.reason,
        "RBAC: allowed by ClusterRoleBinding \"dovetail\" of ClusterRole \"dovetail\" to ServiceAccount \"dovetail/kube-system\""
    );
}

#[tokio::test]
async fn a_role_binding_grants_a_cluster_role_in_its_namespace_only() {
    let env = Env::start().await;
    env.cluster_role(
        "configmap-reader",
        json!([{ "apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"] }]),
    )
    .await;
    env.role_binding(
        "a",
        "read",
        "ClusterRole",
        "configmap-reader",
        dovetail_sa(),
    )
    .await;
    assert_eq!(
        env.sa("GET", "/api/v1/namespaces/a/configmaps").await.code,
        200
    );
    let s = env
        .sa("GET", "/api/v1/namespaces/b/configmaps")
        .await
        .forbidden();
    assert_eq!(
        s["message"],
        format!(
            "configmaps is forbidden: User \"{SA}\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"b\""
        )
    );
    let s = env.sa("GET", "/api/v1/configmaps").await.forbidden();
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .ends_with("at the cluster scope"),
        "{s}"
    );

    // A Role in the namespace, and a ServiceAccount subject without a namespace, which is the
    // binding's: `default` in b means b's account, not kube-system's.
    env.admin(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/b/roles",
        json!({ "metadata": { "name": "pods" }, "rules": [{ "apiGroups": [""], "resources": ["pods"], "verbs": ["list"] }] }),
    )
    .await;
    env.role_binding(
        "b",
        "own",
        "Role",
        "pods",
        json!([{ "kind": "ServiceAccount", "name": "dovetail" }]),
    )
    .await;
    env.sa("GET", "/api/v1/namespaces/b/pods").await.forbidden();
    env.role_binding("b", "theirs", "Role", "pods", dovetail_sa())
        .await;
    assert_eq!(env.sa("GET", "/api/v1/namespaces/b/pods").await.code, 200);

    // Users and groups are subjects too.
    let alice = env
        .access
        .authentication()
        .mint(UserInfo::user("alice", &["team"]));
    let bob = env
        .access
        .authentication()
        .mint(UserInfo::user("bob", &["team"]));
    env.role_binding(
        "a",
        "alice",
        "ClusterRole",
        "configmap-reader",
        json!([{ "kind": "User", "name": "alice" }]),
    )
    .await;
    let env = &env;
    let get = |token: String| async move {
        env.request(
            &token,
            "GET",
            "/api/v1/namespaces/a/configmaps",
            Value::Null,
        )
        .await
        .code
    };
    assert_eq!(get(alice).await, 200);
    assert_eq!(get(bob.clone()).await, 403);
    env.role_binding(
        "a",
        "team",
        "ClusterRole",
        "configmap-reader",
        json!([{ "kind": "Group", "name": "team" }]),
    )
    .await;
    assert_eq!(get(bob).await, 200);
}

#[tokio::test]
async fn resource_names_limit_named_requests_and_named_lists() {
    let env = Env::start().await;
    env.cluster_role(
        "leader",
        json!([{
            "apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
            "resourceNames": ["dovetail-leader"],
            "verbs": ["get", "update", "create", "list", "watch", "delete"],
        }]),
    )
    .await;
    env.role_binding(
        "kube-system",
        "leader",
        "ClusterRole",
        "leader",
        dovetail_sa(),
    )
    .await;
    let leases = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases";
    // Allowed, then not found.
    assert_eq!(
        env.sa("GET", &format!("{leases}/dovetail-leader"))
            .await
            .code,
        404
    );
    env.sa("GET", &format!("{leases}/other")).await.forbidden();
    env.sa("DELETE", &format!("{leases}/other"))
        .await
        .forbidden();
    // A create names nothing in its URL, so a rule with names cannot allow it.
    let s = env
        .request(
            &env.sa,
            "POST",
            leases,
            json!({ "metadata": { "name": "dovetail-leader" } }),
        )
        .await
        .forbidden();
    assert_eq!(
        s["message"],
        format!(
            "leases.coordination.k8s.io is forbidden: User \"{SA}\" cannot create resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"kube-system\""
        )
    );
    env.sa("GET", leases).await.forbidden();
    env.sa("DELETE", leases).await.forbidden();
    // A list or watch pinned to the name by a field selector is a request for that name.
    let named = format!("{leases}?fieldSelector=metadata.name%3Ddovetail-leader");
    assert_eq!(env.sa("GET", &named).await.code, 200);
    assert_eq!(
        env.sa("GET", &format!("{named}&watch=true&timeoutSeconds=1"))
            .await
            .code,
        200
    );
    let s = env
        .sa(
            "GET",
            &format!("{leases}?fieldSelector=metadata.name%3Dother"),
        )
        .await
        .forbidden();
    assert_eq!(s["details"]["name"], "other");
}

#[tokio::test]
async fn subresources_need_their_own_rules() {
    let env = Env::start().await;
    env.admin(
        "POST",
        "/api/v1/namespaces/a/pods",
        json!({ "metadata": { "name": "p" }, "spec": { "containers": [{ "name": "c", "image": "i" }] } }),
    )
    .await;
    env.admin(
        "POST",
        "/api/v1/nodes",
        json!({ "metadata": { "name": "n" } }),
    )
    .await;
    env.cluster_role(
        "evictor",
        json!([
            { "apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"] },
            { "apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"] },
        ]),
    )
    .await;
    env.cluster_binding("evictor", "evictor", dovetail_sa())
        .await;
    let eviction = json!({ "apiVersion": "policy/v1", "kind": "Eviction", "metadata": { "name": "p", "namespace": "a" } });
    let a = env
        .request(
            &env.sa,
            "POST",
            "/api/v1/namespaces/a/pods/p/eviction",
            eviction,
        )
        .await;
    assert_eq!(a.code, 201, "{}", a.body);
    let s = env
        .request(
            &env.sa,
            "POST",
            "/api/v1/namespaces/a/pods/p/binding",
            json!({ "target": { "kind": "Node", "name": "n" } }),
        )
        .await
        .forbidden();
    assert_eq!(
        s["message"],
        format!(
            "pods \"p\" is forbidden: User \"{SA}\" cannot create resource \"pods/binding\" in API group \"\" in the namespace \"a\""
        )
    );
    env.sa("DELETE", "/api/v1/namespaces/a/pods/p")
        .await
        .forbidden();
    let patch = json!({ "status": { "phase": "Running" } });
    let status = env
        .request_as(
            &env.sa,
            "PATCH",
            "/api/v1/nodes/n/status",
            "application/merge-patch+json",
            patch.clone(),
        )
        .await;
    assert_eq!(status.code, 200, "{}", status.body);
    let s = env
        .request_as(
            &env.sa,
            "PATCH",
            "/api/v1/nodes/n",
            "application/merge-patch+json",
            patch,
        )
        .await
        .forbidden();
    assert_eq!(
        s["message"],
        format!(
            "nodes \"n\" is forbidden: User \"{SA}\" cannot patch resource \"nodes\" in API group \"\" at the cluster scope"
        )
    );
}

#[tokio::test]
async fn watch_and_list_are_different_verbs() {
    let env = Env::start().await;
    env.cluster_role(
        "lister",
        json!([{ "apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"] }]),
    )
    .await;
    env.role_binding("a", "lister", "ClusterRole", "lister", dovetail_sa())
        .await;
    let client = env.client(&env.sa).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "a");
    cms.list(&ListParams::default())
        .await
        .expect("list is allowed");
    let err = match cms.watch(&WatchParams::default().timeout(1), "0").await {
        Ok(_) => panic!("a watch without the watch verb must be refused"),
        Err(kube::Error::Api(e)) => e,
        Err(e) => panic!("{e}"),
    };
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        err.message,
        format!(
            "configmaps is forbidden: User \"{SA}\" cannot watch resource \"configmaps\" in API group \"\" in the namespace \"a\""
        )
    );

    env.cluster_role(
        "watcher",
        json!([{ "apiGroups": [""], "resources": ["configmaps"], "verbs": ["watch"] }]),
    )
    .await;
    env.role_binding("b", "watcher", "ClusterRole", "watcher", dovetail_sa())
        .await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client(&env.sa).await, "b");
    let events = cms
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .expect("watch is allowed");
    use futures::StreamExt;
    let mut events = std::pin::pin!(events);
    while let Some(e) = events.next().await {
        assert!(!matches!(e, Ok(WatchEvent::Error(_))), "{e:?}");
    }
    let err = cms.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 403),
        "{err}"
    );
}

#[tokio::test]
async fn every_authenticated_user_may_read_discovery_version_and_openapi() {
    let env = Env::start().await;
    // No binding names the ServiceAccount: the default policy alone.
    for path in [
        "/version",
        "/api",
        "/api/v1",
        "/apis",
        "/apis/apps",
        "/apis/apps/v1",
        "/openapi/v3",
        "/openapi/v3/api/v1",
    ] {
        let a = env.sa("GET", path).await;
        assert_eq!(a.code, 200, "{path}: {}", a.body);
    }
    env.sa("GET", "/api/v1/namespaces").await.forbidden();
    // The default policy is stored as upstream stores it.
    let roles = env
        .admin(
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            Value::Null,
        )
        .await;
    let names: Vec<&str> = roles["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap())
        .collect();
    for name in [
        "cluster-admin",
        "system:discovery",
        "system:basic-user",
        "system:public-info-viewer",
    ] {
        assert!(names.contains(&name), "{names:?}");
    }
    let discovery = env
        .admin(
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/system:discovery",
            Value::Null,
        )
        .await;
    assert_eq!(
        discovery["metadata"]["labels"]["kubernetes.io/bootstrapping"],
        "rbac-defaults"
    );
    assert_eq!(discovery["subjects"][0]["name"], "system:authenticated");
}

#[tokio::test]
async fn system_masters_may_do_anything_without_a_binding() {
    let env = Env::start().await;
    let root = env
        .access
        .authentication()
        .mint(UserInfo::user("root", &["system:masters"]));
    for (method, path) in [
        ("GET", "/api/v1/nodes"),
        ("GET", "/api/v1/namespaces/a/secrets"),
        ("DELETE", "/api/v1/namespaces/a/configmaps"),
    ] {
        let a = env.request(&root, method, path, Value::Null).await;
        assert_eq!(a.code, 200, "{method} {path}: {}", a.body);
    }
    // Its requests never reach RBAC, so they are not in the decision log.
    assert!(env.access.decisions().iter().all(|d| d.user.name != "root"));
}

#[tokio::test]
async fn an_apply_that_creates_its_object_also_needs_create() {
    let env = Env::start().await;
    env.cluster_role(
        "patcher",
        json!([{ "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "patch"] }]),
    )
    .await;
    env.role_binding(
        "kube-system",
        "patcher",
        "ClusterRole",
        "patcher",
        dovetail_sa(),
    )
    .await;
    let path = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l?fieldManager=dovetail";
    let lease = json!({ "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": { "name": "l" }, "spec": { "holderIdentity": "a" } });
    let apply = "application/apply-patch+yaml";
    let s = env
        .request_as(&env.sa, "PATCH", path, apply, lease.clone())
        .await
        .forbidden();
    // Upstream words this second check without the user, around an empty RBAC reason.
    assert_eq!(
        s["message"],
        "leases.coordination.k8s.io \"l\" is forbidden: "
    );
    assert_eq!(
        env.access.denials().last().unwrap().attributes.verb,
        "create"
    );
    env.cluster_role(
        "creator",
        json!([{ "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"] }]),
    )
    .await;
    env.role_binding(
        "kube-system",
        "creator",
        "ClusterRole",
        "creator",
        dovetail_sa(),
    )
    .await;
    let a = env
        .request_as(&env.sa, "PATCH", path, apply, lease.clone())
        .await;
    assert_eq!(a.code, 201, "{}", a.body);
    // Updating what exists needs patch only.
    let a = env.request_as(&env.sa, "PATCH", path, apply, lease).await;
    assert_eq!(a.code, 200, "{}", a.body);
}

#[tokio::test]
async fn a_binding_to_a_missing_role_is_named_in_the_denial() {
    let env = Env::start().await;
    env.cluster_binding("dangling", "gone", dovetail_sa()).await;
    let s = env.sa("GET", "/api/v1/nodes").await.forbidden();
    assert_eq!(
        s["message"],
        format!(
            "nodes is forbidden: User \"{SA}\" cannot list resource \"nodes\" in API group \"\" at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io \"gone\" not found"
        )
    );
}

#[tokio::test]
async fn the_cluster_components_keep_working_with_access_control_on() {
    let access = AccessControl::new();
    let cluster = Cluster::start(ClusterConfig {
        server: ServerConfig {
            access: Some(access.clone()),
            ..ServerConfig::default()
        },
        node_ready_after: Duration::from_millis(300),
        resync: Duration::from_millis(200),
        ..ClusterConfig::default()
    })
    .await
    .unwrap();
    let launch = cluster
        .cloud()
        .launch(
            "default-abcde",
            "m5.large",
            "us-east-1a",
            CapacityType::OnDemand,
        )
        .unwrap();
    let nodes: Api<Node> = Api::all(cluster.client());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ready = nodes
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .any(|n| {
                n.spec.as_ref().and_then(|s| s.provider_id.as_deref())
                    == Some(launch.instance.provider_id.as_str())
                    && n.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            });
        if ready {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no Ready node");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cluster.kubeconfig().contains(access.admin_token()));
    assert!(access.denials().is_empty(), "{:?}", access.denials());
    assert!(access.unauthenticated().is_empty());
    cluster.shutdown().await;
}

#[tokio::test]
async fn kubectl_uses_a_token_kubeconfig_and_reports_upstreams_forbidden() {
    let env = Env::start().await;
    let dir = tempfile::tempdir().unwrap();
    // kubectl sends credentials only over https.
    let url = env.server.https_url().expect("access control serves https");
    let write = |name: &str, token: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, kubeconfig_with_token(&url, token)).unwrap();
        path
    };
    let sa = write("sa", &env.sa);
    let admin = write("admin", env.access.admin_token());
    let wrong = write("wrong", "wrong");

    let (ok, _, err) = kubectl(dir.path(), &sa, &["get", "nodes"]).await;
    assert!(!ok);
    assert!(
        err.contains(&format!("Error from server (Forbidden): nodes is forbidden: User \"{SA}\" cannot list resource \"nodes\" in API group \"\" at the cluster scope")),
        "{err}"
    );
    let (ok, _, err) = kubectl(dir.path(), &wrong, &["get", "nodes"]).await;
    assert!(!ok);
    assert!(err.contains("Unauthorized"), "{err}");

    // RBAC objects are kubectl-applyable, and applying again is a no-op patch.
    let manifest = dir.path().join("rbac.yaml");
    std::fs::write(
        &manifest,
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: dovetail
rules:
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: dovetail
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: dovetail
subjects:
- kind: ServiceAccount
  name: dovetail
  namespace: kube-system
"#,
    )
    .unwrap();
    let file = manifest.to_str().unwrap();
    for _ in 0..2 {
        let (ok, out, err) = kubectl(dir.path(), &admin, &["apply", "-f", file]).await;
        assert!(ok, "{err}\n{out}");
    }
    let (ok, out, err) = kubectl(dir.path(), &admin, &["apply", "--server-side", "-f", file]).await;
    assert!(ok, "{err}\n{out}");
    let (ok, out, err) = kubectl(dir.path(), &sa, &["get", "nodes"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("No resources found") || err.contains("No resources found"),
        "{out}{err}"
    );
    let (ok, _, err) = kubectl(dir.path(), &sa, &["get", "pods", "-n", "a"]).await;
    assert!(!ok);
    assert!(
        err.contains(&format!("pods is forbidden: User \"{SA}\" cannot list resource \"pods\" in API group \"\" in the namespace \"a\"")),
        "{err}"
    );
    assert!(
        env.access
            .denials()
            .iter()
            .any(|d| d.attributes.resource == "pods")
    );

    // Reviews about oneself, which the default policy allows everyone.
    let (ok, out, err) = kubectl(dir.path(), &sa, &["auth", "can-i", "list", "nodes"]).await;
    assert!(ok && out.trim() == "yes", "{out}{err}");
    let (ok, out, _) = kubectl(dir.path(), &sa, &["auth", "can-i", "create", "nodes"]).await;
    assert!(!ok && out.trim() == "no", "{out}");
    let (ok, out, err) = kubectl(
        dir.path(),
        &sa,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, SA);
    let (ok, out, err) = kubectl(dir.path(), &sa, &["auth", "can-i", "--list"]).await;
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("nodes ") && l.contains("[get list watch]")),
        "{out}"
    );
}
