//! The executor against the in-memory API server: every action as the API
//! calls it becomes, repeated writes, conflicts, evictions held by budgets,
//! Events and NodePool status.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use dovetail_api::{NodeClaim, NodePool};
use dovetail_apiserver::cluster::{Cluster, ClusterConfig};
use dovetail_apiserver::{ApiServer, ServerConfig};
use dovetail_control::actions::{
    Action, Event, EventReason, EvictionResult, NodePatch, NominationTarget, ObjectKind, ObjectRef,
    Outcome,
};
use dovetail_control::pool_status::{
    NodeClassReadiness, NodePoolConditions, NodePoolUsage, Validation,
};
use dovetail_core::catalog::CapacityType;
use dovetail_core::model::{NodeClassRef, PodKey, Taint, TaintEffect};
use dovetail_core::nodeclaim::{
    ConditionReason, ConditionStatus, ConditionType, NodeClaim as CoreClaim, NodeClaimStatus,
};
use dovetail_core::requirements::{NodeSelectorRequirement, Operator};
use dovetail_core::resources::{GIB, Resources};
use dovetail_core::sym::Sym;
use dovetail_kube::actions::{Executed, Executor, NodePoolStatusWriter};
use dovetail_kube::observed::{Change, Lookup, Observed};
use k8s_openapi::api::core::v1::{Event as KubeEvent, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const FIELD_MANAGER: &str = "dovetail";

/// A client that never retries on its own, as the executor needs.
fn no_retry_client(url: &str) -> kube::Client {
    let mut config = kube::Config::new(url.parse().expect("a URL"));
    config.default_retry = false;
    kube::Client::try_from(config).expect("a client")
}

async fn server() -> ApiServer {
    ApiServer::start(ServerConfig::default())
        .await
        .expect("server starts")
}

async fn install_crds(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in dovetail_api::crd::crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
}

/// Polls `check` until it returns `Some`, failing with `what` after 20 s.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One object's uid, as the index would hold it.
struct Known {
    kind: ObjectKind,
    namespace: Option<String>,
    name: String,
    uid: String,
}

impl Known {
    fn is(&self, kind: ObjectKind, namespace: Option<&str>, name: &str) -> bool {
        self.kind == kind && self.namespace.as_deref() == namespace && self.name == name
    }
}

/// The uids the index would hold.
#[derive(Default)]
struct Uids(Mutex<Vec<Known>>);

impl Uids {
    fn set(&self, kind: ObjectKind, namespace: Option<&str>, name: &str, uid: &str) {
        let mut v = self.0.lock().unwrap();
        v.retain(|k| !k.is(kind, namespace, name));
        v.push(Known {
            kind,
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            uid: uid.to_owned(),
        });
    }
}

impl Lookup for Uids {
    fn uid(&self, kind: ObjectKind, namespace: Option<&str>, name: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|k| k.is(kind, namespace, name))
            .map(|k| k.uid.clone())
    }

    fn resource_version(&self, _: ObjectKind, _: Option<&str>, _: &str) -> Option<String> {
        None
    }
}

async fn create_pool(client: &kube::Client, name: &str) -> NodePool {
    let pool: NodePool = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": { "name": name },
        "spec": { "template": { "spec": {
            "nodeClassRef": { "group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default" },
            "requirements": [],
        } } },
    }))
    .unwrap();
    Api::<NodePool>::all(client.clone())
        .create(&PostParams::default(), &pool)
        .await
        .expect("the NodePool is created")
}

fn core_claim(name: &str, pool: &str) -> CoreClaim {
    CoreClaim {
        name: Sym::new(name),
        node_pool: Some(Sym::new(pool)),
        labels: dovetail_core::model::sorted_labels([("team", "ml")]),
        annotations: dovetail_core::model::sorted_labels([
            ("karpenter.sh/nodepool-hash-version", "v3"),
            ("karpenter.sh/nodeclaim-min-values-relaxed", "false"),
        ]),
        requirements: vec![NodeSelectorRequirement::new(
            "node.kubernetes.io/instance-type",
            Operator::In,
            &["m5.large", "m5.xlarge"],
        )],
        requests: Resources::new(1500, 2 * GIB),
        taints: vec![Taint::new(
            "example.com/gpu",
            "true",
            TaintEffect::NoSchedule,
        )],
        startup_taints: vec![Taint::new(
            "example.com/agent-not-ready",
            "",
            TaintEffect::NoSchedule,
        )],
        node_class_ref: NodeClassRef::default(),
        expire_after: Some(Duration::from_secs(720 * 3600)),
        termination_grace_period: Some(Duration::from_secs(300)),
        launch: Vec::new(),
        node_pool_hash: Some(42),
        created_ms: 1,
        deletion_ms: None,
        finalizer: true,
        status: NodeClaimStatus::default(),
    }
}

fn claims(client: &kube::Client) -> Api<NodeClaim> {
    Api::all(client.clone())
}

/// Executes `action`, which must succeed.
async fn run(ex: &Executor, action: Action, lookup: &Uids) -> Executed {
    ex.execute(action, lookup).await.unwrap()
}

fn only_claim(e: &Executed) -> &NodeClaim {
    match e.changes.as_slice() {
        [Change::Applied(Observed::NodeClaim(c))] => c,
        other => panic!("expected one applied NodeClaim, got {other:?}"),
    }
}

#[tokio::test]
async fn creating_a_node_claim_twice_makes_one_with_its_owner_and_status() {
    let server = server().await;
    let client = no_retry_client(&server.url());
    install_crds(&client).await;
    let pool = create_pool(&client, "default").await;
    let ex = Executor::new(client.clone(), FIELD_MANAGER);
    let mut claim = core_claim("default-x7k2p", "default");
    claim.set_condition(
        ConditionType::Launched,
        ConditionStatus::Unknown,
        ConditionReason::AwaitingReconciliation,
        "",
        1_700_000_000_000,
    );
    // No uid in the index: the executor reads the NodePool's.
    let lookup = Uids::default();
    let first = ex
        .execute(Action::CreateNodeClaim(claim.clone()), &lookup)
        .await
        .expect("created");
    assert_eq!(first.outcome, Outcome::Done);
    let created = only_claim(&first).clone();
    // After a crash the controller creates it again: no duplicate, done.
    let again = ex
        .execute(Action::CreateNodeClaim(claim.clone()), &lookup)
        .await
        .expect("the repeat is done");
    assert_eq!(again.outcome, Outcome::Done);
    assert_eq!(
        only_claim(&again).metadata.uid,
        created.metadata.uid,
        "the same object"
    );
    let all = claims(&client).list(&ListParams::default()).await.unwrap();
    assert_eq!(all.items.len(), 1);
    let stored = &all.items[0];
    let meta = &stored.metadata;
    let labels = meta.labels.clone().unwrap();
    assert_eq!(labels["karpenter.sh/nodepool"], "default");
    assert_eq!(labels["team"], "ml");
    let annotations = meta.annotations.clone().unwrap();
    assert_eq!(annotations["karpenter.sh/nodepool-hash"], "42");
    assert_eq!(annotations["karpenter.sh/nodepool-hash-version"], "v3");
    assert_eq!(
        meta.finalizers.as_deref(),
        Some(&["karpenter.sh/termination".to_owned()][..])
    );
    let owner = &meta.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("NodePool", "default")
    );
    assert_eq!(Some(&owner.uid), pool.metadata.uid.as_ref());
    assert_eq!(owner.block_owner_deletion, Some(true));
    let back = stored.to_core().expect("what was written reads back");
    assert_eq!(back.requirements, claim.requirements);
    assert_eq!(back.requests, claim.requests);
    assert_eq!(back.taints, claim.taints);
    assert_eq!(back.startup_taints, claim.startup_taints);
    assert_eq!(back.expire_after, claim.expire_after);
    assert_eq!(
        back.termination_grace_period,
        claim.termination_grace_period
    );
    let launched = back.condition(ConditionType::Launched).expect("the status");
    assert_eq!(launched.status, ConditionStatus::Unknown);
    assert_eq!(launched.reason.to_string(), "AwaitingReconciliation");
    assert_eq!(
        back.condition(ConditionType::Ready).map(|c| c.status),
        Some(ConditionStatus::Unknown)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_claim_for_a_missing_node_pool_is_refused_with_the_reason() {
    let server = server().await;
    let client = no_retry_client(&server.url());
    install_crds(&client).await;
    let ex = Executor::new(client.clone(), FIELD_MANAGER);
    let e = ex
        .execute(
            Action::CreateNodeClaim(core_claim("gone-abcde", "gone")),
            &Uids::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.action, "create nodeclaims gone-abcde");
    assert!(e.message.contains("NodePool gone no longer exists"), "{e}");
    assert!(
        claims(&client)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn node_claim_status_round_trips_and_an_unchanged_one_is_not_written() {
    let server = server().await;
    let client = no_retry_client(&server.url());
    install_crds(&client).await;
    let pool = create_pool(&client, "default").await;
    let lookup = Uids::default();
    lookup.set(
        ObjectKind::NodePool,
        None,
        "default",
        pool.metadata.uid.as_deref().unwrap(),
    );
    let ex = Executor::new(client.clone(), FIELD_MANAGER);
    let claim = core_claim("default-s9q2w", "default");
    run(&ex, Action::CreateNodeClaim(claim.clone()), &lookup).await;
    // Another controller's condition, which Dovetail must keep.
    claims(&client)
        .patch_status(
            "default-s9q2w",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "conditions": [{
                "type": "ExampleHealthy", "status": "True", "reason": "ExampleHealthy",
                "message": "", "lastTransitionTime": "2024-01-01T00:00:00Z",
            }] } })),
        )
        .await
        .unwrap();
    // Launched: what the lifecycle writes.
    let stored = claims(&client).get("default-s9q2w").await.unwrap();
    let mut c = stored.to_core().unwrap();
    c.labels.push((
        Sym::new("node.kubernetes.io/instance-type"),
        Sym::new("m5.large"),
    ));
    c.labels.sort_by_key(|&(k, _)| k);
    c.status.provider_id = Some("aws:///us-east-1a/i-0abc".into());
    c.status.image_id = Some("ami-0123".into());
    let mut capacity = Resources::new(2000, 8 * GIB);
    capacity.pods = 29;
    c.status.capacity = capacity.clone();
    c.status.allocatable = Resources::new(1930, 7 * GIB);
    c.set_true(ConditionType::Launched, 1_700_000_100_000);
    c.set_condition(
        ConditionType::Initialized,
        ConditionStatus::Unknown,
        ConditionReason::NodeNotFound,
        "Node not registered with cluster",
        1_700_000_100_000,
    );
    let done = run(&ex, Action::UpdateNodeClaim(c.clone()), &lookup).await;
    let written = only_claim(&done).clone();
    let back = written.to_core().unwrap();
    assert_eq!(back.labels, c.labels);
    assert_eq!(back.status.provider_id, c.status.provider_id);
    assert_eq!(back.status.image_id, c.status.image_id);
    assert_eq!(back.status.capacity, capacity);
    assert_eq!(back.status.allocatable, c.status.allocatable);
    for kind in [
        ConditionType::Launched,
        ConditionType::Initialized,
        ConditionType::Ready,
    ] {
        let (got, want) = (back.condition(kind).unwrap(), c.condition(kind).unwrap());
        assert_eq!(got.status, want.status, "{kind}");
        assert_eq!(got.reason.to_string(), want.reason.to_string(), "{kind}");
        assert_eq!(got.message, want.message, "{kind}");
        assert_eq!(got.last_transition_ms, want.last_transition_ms, "{kind}");
    }
    let kept = written.status.as_ref().unwrap();
    assert!(
        kept.conditions.iter().any(|c| c.type_ == "ExampleHealthy"),
        "{:?}",
        kept.conditions
    );
    // The same update again writes nothing.
    let version = written.metadata.resource_version.clone();
    let again = run(&ex, Action::UpdateNodeClaim(back.clone()), &lookup).await;
    assert_eq!(only_claim(&again).metadata.resource_version, version);
    assert_eq!(
        claims(&client)
            .get("default-s9q2w")
            .await
            .unwrap()
            .metadata
            .resource_version,
        version
    );
    // A claim that is gone has nothing to update.
    let gone = run(
        &ex,
        Action::UpdateNodeClaim(core_claim("default-gone1", "default")),
        &lookup,
    )
    .await;
    assert!(gone.changes.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn deletion_and_finalizer_removal_are_safe_to_repeat() {
    let server = server().await;
    let client = no_retry_client(&server.url());
    install_crds(&client).await;
    create_pool(&client, "default").await;
    let ex = Executor::new(client.clone(), FIELD_MANAGER);
    let lookup = Uids::default();
    let name = "default-d4f5g";
    let created = run(
        &ex,
        Action::CreateNodeClaim(core_claim(name, "default")),
        &lookup,
    )
    .await;
    lookup.set(
        ObjectKind::NodeClaim,
        None,
        name,
        only_claim(&created).metadata.uid.as_deref().unwrap(),
    );
    // Someone else's finalizer too.
    claims(&client)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "finalizers": [
                "karpenter.sh/termination", "example.com/keep",
            ] } })),
        )
        .await
        .unwrap();
    let deleting = run(
        &ex,
        Action::DeleteNodeClaim {
            name: Sym::new(name),
        },
        &lookup,
    )
    .await;
    assert!(
        only_claim(&deleting).metadata.deletion_timestamp.is_some(),
        "held by its finalizers"
    );
    for _ in 0..2 {
        let removed = ex
            .execute(
                Action::RemoveNodeClaimFinalizer {
                    name: Sym::new(name),
                },
                &lookup,
            )
            .await
            .expect("removing the finalizer is done, again and again");
        assert_eq!(
            only_claim(&removed).metadata.finalizers.as_deref(),
            Some(&["example.com/keep".to_owned()][..])
        );
    }
    claims(&client)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
        )
        .await
        .unwrap();
    assert!(claims(&client).get_opt(name).await.unwrap().is_none());
    for action in [
        Action::RemoveNodeClaimFinalizer {
            name: Sym::new(name),
        },
        Action::DeleteNodeClaim {
            name: Sym::new(name),
        },
    ] {
        let done = ex.execute(action, &lookup).await.expect("gone is done");
        assert_eq!(done.outcome, Outcome::Done);
        assert!(done.changes.is_empty());
    }

    // A Node held by the termination finalizer goes with it.
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": { "name": "ip-10-0-0-9", "finalizers": ["karpenter.sh/termination"] },
    }))
    .unwrap();
    let node = nodes.create(&PostParams::default(), &node).await.unwrap();
    lookup.set(
        ObjectKind::Node,
        None,
        "ip-10-0-0-9",
        node.metadata.uid.as_deref().unwrap(),
    );
    let deleting = run(
        &ex,
        Action::DeleteNode {
            name: Sym::new("ip-10-0-0-9"),
        },
        &lookup,
    )
    .await;
    assert!(matches!(
        deleting.changes.as_slice(),
        [Change::Applied(Observed::Node(n))] if n.metadata.deletion_timestamp.is_some()
    ));
    let removed = run(
        &ex,
        Action::RemoveNodeFinalizer {
            name: Sym::new("ip-10-0-0-9"),
        },
        &lookup,
    )
    .await;
    assert!(
        matches!(
            removed.changes.as_slice(),
            [Change::Deleted(Observed::Node(_))]
        ),
        "{:?}",
        removed.changes
    );
    assert!(nodes.get_opt("ip-10-0-0-9").await.unwrap().is_none());
    let again = run(
        &ex,
        Action::RemoveNodeFinalizer {
            name: Sym::new("ip-10-0-0-9"),
        },
        &lookup,
    )
    .await;
    assert!(again.changes.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn node_claim_writes_are_computed_again_after_a_conflict() {
    let server = server().await;
    let url = server.url();
    let plain = no_retry_client(&url);
    install_crds(&plain).await;
    create_pool(&plain, "default").await;
    let name = "default-c0nf1";
    let path = format!("/apis/karpenter.sh/v1/nodeclaims/{name}");
    let hook = Interfere::labels(plain.clone(), &path);
    let ex = Executor::new(hook.client(&url), FIELD_MANAGER);
    let lookup = Uids::default();
    run(
        &ex,
        Action::CreateNodeClaim(core_claim(name, "default")),
        &lookup,
    )
    .await;
    let mut c = claims(&plain).get(name).await.unwrap().to_core().unwrap();

    // Status only: its write meets a newer version once.
    c.status.provider_id = Some("aws:///us-east-1a/i-0c0f1".into());
    c.set_true(ConditionType::Launched, 1_700_000_000_000);
    hook.left.store(1, Ordering::SeqCst);
    run(&ex, Action::UpdateNodeClaim(c.clone()), &lookup).await;
    assert_eq!(ex.conflicts_retried(), 1);
    // Labels and status: the label write meets newer versions twice.
    c.labels
        .push((Sym::new("karpenter.sh/capacity-type"), Sym::new("spot")));
    c.labels.sort_by_key(|&(k, _)| k);
    c.set_true(ConditionType::Registered, 1_700_000_001_000);
    hook.left.store(2, Ordering::SeqCst);
    run(&ex, Action::UpdateNodeClaim(c.clone()), &lookup).await;
    assert_eq!(ex.conflicts_retried(), 3);
    let stored = claims(&plain).get(name).await.unwrap();
    let labels = stored.metadata.labels.clone().unwrap();
    assert_eq!(labels["karpenter.sh/capacity-type"], "spot");
    assert_eq!(labels["interfered"], "3", "the other writer's label stays");
    let back = stored.to_core().unwrap();
    assert_eq!(back.status.provider_id, c.status.provider_id);
    assert!(back.launched() && back.registered());

    // The finalizer list changes between the read and the removal: the
    // JSON patch's test fails and the removal is computed again.
    let finalizers = Interfere {
        patch: Arc::new(
            |_| json!({ "metadata": { "finalizers": ["karpenter.sh/termination", "example.com/other"] } }),
        ),
        ..Interfere::labels(plain.clone(), &path)
    };
    let ex = Executor::new(finalizers.client(&url), FIELD_MANAGER);
    finalizers.left.store(1, Ordering::SeqCst);
    let removed = run(
        &ex,
        Action::RemoveNodeClaimFinalizer {
            name: Sym::new(name),
        },
        &lookup,
    )
    .await;
    assert_eq!(ex.conflicts_retried(), 1);
    assert_eq!(
        only_claim(&removed).metadata.finalizers.as_deref(),
        Some(&["example.com/other".to_owned()][..])
    );
    server.shutdown().await;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A client layer that, before forwarding the next `left` PATCHes of one
/// object (or its status), changes that object through another client with
/// `patch(n)` (`n` counts the interfering writes): the patch, computed from
/// an earlier read, then meets a newer version.
#[derive(Clone)]
struct Interfere {
    writer: kube::Client,
    path: String,
    patch: Arc<dyn Fn(u64) -> serde_json::Value + Send + Sync>,
    left: Arc<AtomicU32>,
    writes: Arc<AtomicU64>,
}

impl Interfere {
    /// Changes a label of the object at `path`.
    fn labels(writer: kube::Client, path: &str) -> Self {
        Self {
            writer,
            path: path.into(),
            patch: Arc::new(
                |n| json!({ "metadata": { "labels": { "interfered": n.to_string() } } }),
            ),
            left: Arc::new(AtomicU32::new(0)),
            writes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A client for `url` that goes through this layer, retrying nothing.
    fn client(&self, url: &str) -> kube::Client {
        let mut config = kube::Config::new(url.parse().unwrap());
        config.default_retry = false;
        kube::client::ClientBuilder::try_from(config)
            .unwrap()
            .with_layer(self)
            .build()
    }

    async fn interfere(&self) {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        let request = http::Request::patch(self.path.clone())
            .header(http::header::CONTENT_TYPE, "application/merge-patch+json")
            .body(serde_json::to_vec(&(self.patch)(n)).unwrap())
            .unwrap();
        self.writer
            .request::<serde_json::Value>(request)
            .await
            .expect("the interfering write");
    }
}

struct Interfering<S> {
    inner: Arc<tokio::sync::Mutex<S>>,
    hook: Interfere,
}

impl<S> tower::Layer<S> for Interfere {
    type Service = Interfering<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Interfering {
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
            hook: self.clone(),
        }
    }
}

impl<S> tower::Service<http::Request<kube::client::Body>> for Interfering<S>
where
    S: tower::Service<http::Request<kube::client::Body>> + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<kube::client::Body>) -> Self::Future {
        use tower::ServiceExt;
        let inner = self.inner.clone();
        let hook = self.hook.clone();
        Box::pin(async move {
            let path = request.uri().path();
            let ours = request.method() == http::Method::PATCH
                && (path == hook.path || path == format!("{}/status", hook.path));
            if ours
                && hook
                    .left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                hook.interfere().await;
            }
            let mut service = inner.lock().await;
            service.ready().await?.call(request).await
        })
    }
}

fn taint_keys(node: &Node) -> Vec<String> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|t| format!("{}:{}", t.key, t.effect))
        .collect()
}

#[tokio::test]
async fn node_taints_end_right_under_a_concurrent_writer() {
    let server = server().await;
    let url = server.url();
    let plain = no_retry_client(&url);
    let name = "ip-10-0-0-1";
    let nodes: Api<Node> = Api::all(plain.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "team": "ml" } },
        "spec": { "taints": [
            { "key": "karpenter.sh/unregistered", "effect": "NoExecute" },
            { "key": "example.com/keep", "value": "yes", "effect": "NoSchedule" },
        ] },
    }))
    .unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();

    let hook = Interfere::labels(plain.clone(), &format!("/api/v1/nodes/{name}"));
    let left = hook.left.clone();
    let ex = Executor::new(hook.client(&url), FIELD_MANAGER);
    let lookup = Uids::default();

    // And another writer patching labels all along, busier than any
    // kubelet.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let nodes = nodes.clone();
        let stop = stop.clone();
        async move {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                nodes
                    .patch(
                        name,
                        &PatchParams::default(),
                        &Patch::Merge(
                            json!({ "metadata": { "labels": { "loop": i.to_string() } } }),
                        ),
                    )
                    .await
                    .expect("the looping writer");
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            i
        }
    });

    // Registration: labels, the finalizer, the NodeClaim's taints, and the
    // unregistered taint lifted; the first two writes meet a newer version.
    left.store(2, Ordering::SeqCst);
    let registration = NodePatch {
        labels: vec![(Sym::new("karpenter.sh/registered"), Sym::new("true"))],
        annotations: vec![(Sym::new("example.com/note"), Sym::new("hi"))],
        add_taints: vec![Taint::new(
            "example.com/gpu",
            "true",
            TaintEffect::NoSchedule,
        )],
        remove_taints: vec![Sym::new("karpenter.sh/unregistered")],
        add_finalizer: true,
    };
    ex.execute(
        Action::PatchNode {
            name: Sym::new(name),
            patch: registration,
        },
        &lookup,
    )
    .await
    .expect("registered despite the conflicts");
    assert!(
        ex.conflicts_retried() >= 2,
        "conflicts retried: {}",
        ex.conflicts_retried()
    );
    let disrupted = Taint::new("karpenter.sh/disrupted", "", TaintEffect::NoSchedule);
    for round in 0..10 {
        left.store(1, Ordering::SeqCst);
        ex.execute(
            Action::TaintNode {
                name: Sym::new(name),
                taint: disrupted,
            },
            &lookup,
        )
        .await
        .unwrap_or_else(|e| panic!("taint, round {round}: {e}"));
        let n = nodes.get(name).await.unwrap();
        assert!(taint_keys(&n).contains(&"karpenter.sh/disrupted:NoSchedule".to_owned()));
        left.store(1, Ordering::SeqCst);
        ex.execute(
            Action::UntaintNode {
                name: Sym::new(name),
                key: Sym::new("karpenter.sh/disrupted"),
            },
            &lookup,
        )
        .await
        .unwrap_or_else(|e| panic!("untaint, round {round}: {e}"));
    }
    assert!(
        ex.conflicts_retried() >= 22,
        "each write met a newer version once: {}",
        ex.conflicts_retried()
    );
    stop.store(true, Ordering::SeqCst);
    let loops = writer.await.unwrap();
    assert!(loops > 0);

    let n = nodes.get(name).await.unwrap();
    assert_eq!(
        taint_keys(&n),
        ["example.com/keep:NoSchedule", "example.com/gpu:NoSchedule"]
    );
    let labels = n.metadata.labels.clone().unwrap();
    assert_eq!(labels["karpenter.sh/registered"], "true");
    assert_eq!(labels["team"], "ml");
    assert_eq!(
        labels["loop"],
        loops.to_string(),
        "the other writer's label stays"
    );
    assert_eq!(n.metadata.annotations.unwrap()["example.com/note"], "hi");
    assert_eq!(
        n.metadata.finalizers.as_deref(),
        Some(&["karpenter.sh/termination".to_owned()][..])
    );

    // Already so: nothing is written.
    let version = n.metadata.resource_version.clone();
    run(
        &ex,
        Action::UntaintNode {
            name: Sym::new(name),
            key: Sym::new("karpenter.sh/disrupted"),
        },
        &lookup,
    )
    .await;
    assert_eq!(
        nodes.get(name).await.unwrap().metadata.resource_version,
        version
    );
    // A node that is gone: nothing to taint.
    let gone = run(
        &ex,
        Action::TaintNode {
            name: Sym::new("ip-10-9-9-9"),
            taint: disrupted,
        },
        &lookup,
    )
    .await;
    assert!(gone.changes.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn conflicts_that_never_end_fail_naming_the_node() {
    let server = server().await;
    let url = server.url();
    let plain = no_retry_client(&url);
    let nodes: Api<Node> = Api::all(plain.clone());
    let node: Node = serde_json::from_value(json!({ "metadata": { "name": "busy" } })).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let hook = Interfere::labels(plain, "/api/v1/nodes/busy");
    hook.left.store(u32::MAX, Ordering::SeqCst);
    let ex = Executor::new(hook.client(&url), FIELD_MANAGER);
    let e = ex
        .execute(
            Action::TaintNode {
                name: Sym::new("busy"),
                taint: Taint::new("karpenter.sh/disrupted", "", TaintEffect::NoSchedule),
            },
            &Uids::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.action, "patch nodes busy");
    assert!(e.message.contains("the next reconcile tries again"), "{e}");
    assert_eq!(ex.conflicts_retried(), 5);
    server.shutdown().await;
}

fn pod_key(namespace: &str, name: &str) -> PodKey {
    PodKey {
        namespace: Sym::new(namespace),
        name: Sym::new(name),
    }
}

fn pod(name: &str, app: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": { "name": name, "namespace": "default", "labels": { "app": app } },
        "spec": { "containers": [{
            "name": "app",
            "image": "registry.k8s.io/pause:3.10",
            "resources": { "requests": { "cpu": "100m", "memory": "64Mi" } },
        }] },
    }))
    .unwrap()
}

fn budget(name: &str, app: &str, min_available: i32) -> PodDisruptionBudget {
    serde_json::from_value(json!({
        "metadata": { "name": name, "namespace": "default" },
        "spec": { "minAvailable": min_available, "selector": { "matchLabels": { "app": app } } },
    }))
    .unwrap()
}

async fn running(pods: &Api<Pod>, name: &str) -> Option<Pod> {
    pods.get_opt(name)
        .await
        .ok()
        .flatten()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
}

async fn allowed(budgets: &Api<PodDisruptionBudget>, name: &str, want: i32) -> Option<()> {
    let b = budgets.get(name).await.ok()?;
    let s = b.status?;
    (s.disruptions_allowed == want && s.observed_generation == b.metadata.generation).then_some(())
}

async fn evict(ex: &Executor, pod: &str, lookup: &Uids) -> EvictionResult {
    let action = Action::EvictPod {
        pod: pod_key("default", pod),
    };
    // The client does not retry a 429, so an answer comes at once.
    let done = tokio::time::timeout(Duration::from_secs(5), ex.execute(action, lookup))
        .await
        .expect("an eviction answers without waiting for the budget")
        .expect("an eviction answer");
    match done.outcome {
        Outcome::Eviction(r) => r,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn evictions_wait_for_the_budget_and_report_what_the_server_said() {
    let cluster = Cluster::start(ClusterConfig {
        node_ready_after: Duration::from_millis(300),
        grace_period_scale: 0.0,
        resync: Duration::from_millis(200),
        ..ClusterConfig::default()
    })
    .await
    .expect("cluster starts");
    let client = no_retry_client(&cluster.url());
    let ex = Executor::new(client.clone(), FIELD_MANAGER);
    let lookup = Uids::default();
    let launch = cluster
        .cloud()
        .launch(
            "default-e1e1e",
            "m5.large",
            "us-east-1a",
            CapacityType::OnDemand,
        )
        .expect("launch");
    let nodes: Api<Node> = Api::all(client.clone());
    let provider_id = launch.instance.provider_id.clone();
    let node = eventually("the node", || async {
        nodes
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|n| n.spec.as_ref().and_then(|s| s.provider_id.as_deref()) == Some(&provider_id))
    })
    .await;
    let node_name = node.metadata.name.clone().unwrap();
    // Registered: the unregistered taint lifted so pods can land.
    run(
        &ex,
        Action::PatchNode {
            name: Sym::new(&node_name),
            patch: NodePatch {
                remove_taints: vec![Sym::new("karpenter.sh/unregistered")],
                ..NodePatch::default()
            },
        },
        &lookup,
    )
    .await;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    budgets
        .create(&PostParams::default(), &budget("web", "web", 2))
        .await
        .unwrap();
    for name in ["web-0", "web-1", "solo"] {
        let app = if name == "solo" { "solo" } else { "web" };
        let p = pods
            .create(&PostParams::default(), &pod(name, app))
            .await
            .unwrap();
        lookup.set(
            ObjectKind::Pod,
            Some("default"),
            name,
            p.metadata.uid.as_deref().unwrap(),
        );
    }
    for name in ["web-0", "web-1", "solo"] {
        eventually(&format!("{name} running"), || running(&pods, name)).await;
    }
    eventually("the budget at 0", || allowed(&budgets, "web", 0)).await;

    assert_eq!(evict(&ex, "web-0", &lookup).await, EvictionResult::Blocked);
    assert!(pods.get_opt("web-0").await.unwrap().is_some());

    // A third replica makes room for one disruption.
    pods.create(&PostParams::default(), &pod("web-2", "web"))
        .await
        .unwrap();
    eventually("web-2 running", || running(&pods, "web-2")).await;
    eventually("the budget at 1", || allowed(&budgets, "web", 1)).await;
    assert_eq!(evict(&ex, "web-0", &lookup).await, EvictionResult::Evicted);
    eventually("web-0 gone", || async {
        pods.get_opt("web-0").await.unwrap().is_none().then_some(())
    })
    .await;
    assert_eq!(evict(&ex, "web-0", &lookup).await, EvictionResult::Gone);

    // Two budgets over the same pods: the server refuses with a 500.
    budgets
        .create(&PostParams::default(), &budget("web-too", "web", 1))
        .await
        .unwrap();
    assert_eq!(
        evict(&ex, "web-1", &lookup).await,
        EvictionResult::MultiplePdbs
    );

    // The index's uid is of a pod since replaced: the precondition fails
    // and this pod stays.
    lookup.set(ObjectKind::Pod, Some("default"), "solo", "not-its-uid");
    assert_eq!(evict(&ex, "solo", &lookup).await, EvictionResult::Gone);
    assert!(pods.get_opt("solo").await.unwrap().is_some());
    let deleted = run(
        &ex,
        Action::DeletePod {
            pod: pod_key("default", "solo"),
        },
        &lookup,
    )
    .await;
    assert!(
        deleted.changes.is_empty(),
        "another pod's uid: nothing deleted"
    );
    assert!(pods.get_opt("solo").await.unwrap().is_some());
    let uid = pods.get("solo").await.unwrap().metadata.uid.unwrap();
    lookup.set(ObjectKind::Pod, Some("default"), "solo", &uid);
    run(
        &ex,
        Action::DeletePod {
            pod: pod_key("default", "solo"),
        },
        &lookup,
    )
    .await;
    eventually("solo gone", || async {
        pods.get_opt("solo").await.unwrap().is_none().then_some(())
    })
    .await;
    let again = run(
        &ex,
        Action::DeletePod {
            pod: pod_key("default", "solo"),
        },
        &lookup,
    )
    .await;
    assert_eq!(again.outcome, Outcome::Done);
    cluster.shutdown().await;
}

async fn events_of(client: &kube::Client, namespace: &str, object: &str) -> Vec<KubeEvent> {
    let mut list: Vec<KubeEvent> = Api::<KubeEvent>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(object))
        .collect();
    list.sort_by_key(|e| e.metadata.name.clone());
    list
}

#[tokio::test]
async fn repeated_events_are_aggregated_and_nominations_are_events() {
    let server = server().await;
    let client = no_retry_client(&server.url());
    let ex = Executor::new(client.clone(), FIELD_MANAGER)
        .with_event_aggregation_window(Duration::from_millis(1500));
    let lookup = Uids::default();
    lookup.set(ObjectKind::Pod, Some("default"), "web-0", "uid-web-0");
    let pod = pod_key("default", "web-0");
    let failed = || {
        Action::Event(Event::warning(
            ObjectRef::pod(pod),
            EventReason::FailedDraining,
            "Failed to evict pod default/web-0: a PodDisruptionBudget allows no disruption now; retrying",
        ))
    };
    for _ in 0..3 {
        let done = run(&ex, failed(), &lookup).await;
        assert_eq!(done.outcome, Outcome::Done);
    }
    let events = events_of(&client, "default", "web-0").await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.count, Some(3));
    assert_eq!(e.reason.as_deref(), Some("FailedDraining"));
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(e.involved_object.kind.as_deref(), Some("Pod"));
    assert_eq!(e.involved_object.api_version.as_deref(), Some("v1"));
    assert_eq!(e.involved_object.uid.as_deref(), Some("uid-web-0"));
    assert_eq!(
        e.source.as_ref().and_then(|s| s.component.as_deref()),
        Some("dovetail")
    );
    assert_eq!(
        e.reporting_component.as_deref(),
        Some("dovetail.dev/controller")
    );
    assert!(e.last_timestamp >= e.first_timestamp);

    // A nomination is an Event on the pod, in Karpenter's words.
    run(
        &ex,
        Action::Nominate {
            pods: vec![pod],
            target: NominationTarget::NodeClaim(Sym::new("default-x7k2p")),
        },
        &lookup,
    )
    .await;
    let events = events_of(&client, "default", "web-0").await;
    assert_eq!(events.len(), 2);
    let nominated = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("Nominated"))
        .expect("a Nominated event");
    assert_eq!(
        nominated.message.as_deref(),
        Some("Pod should schedule on: nodeclaim/default-x7k2p")
    );
    assert_eq!(nominated.type_.as_deref(), Some("Normal"));

    // Nominations are rate limited as Karpenter's: a burst of 10, then 5 a
    // second; the rest are dropped.
    let burst = Executor::new(client.clone(), FIELD_MANAGER);
    let many: Vec<PodKey> = (0..30)
        .map(|i| pod_key("default", &format!("job-{i}")))
        .collect();
    run(
        &burst,
        Action::Nominate {
            pods: many,
            target: NominationTarget::Node(Sym::new("ip-10-0-0-1")),
        },
        &lookup,
    )
    .await;
    let nominated: Vec<KubeEvent> = Api::<KubeEvent>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("job-"))
        })
        .collect();
    assert!(
        (10..20).contains(&nominated.len()),
        "{} Nominated events",
        nominated.len()
    );
    assert_eq!(
        nominated[0].message.as_deref(),
        Some("Pod should schedule on: node/ip-10-0-0-1")
    );

    // Past the window the same Event is written afresh.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    run(&ex, failed(), &lookup).await;
    let events = events_of(&client, "default", "web-0").await;
    assert_eq!(events.len(), 3);

    // A cluster-scoped object's Events go to `default`.
    run(
        &ex,
        Action::Event(Event::normal(
            ObjectRef::node_claim(Sym::new("default-x7k2p")),
            EventReason::DisruptionLaunching,
            "Launching NodeClaim: Underutilized",
        )),
        &lookup,
    )
    .await;
    let claim_events = events_of(&client, "default", "default-x7k2p").await;
    assert_eq!(claim_events.len(), 1);
    assert_eq!(
        claim_events[0].involved_object.kind.as_deref(),
        Some("NodeClaim")
    );
    assert_eq!(
        claim_events[0].involved_object.api_version.as_deref(),
        Some("karpenter.sh/v1")
    );
    // An Event that cannot be written is dropped, not an error.
    let broken = Executor::new(no_retry_client("http://127.0.0.1:9"), FIELD_MANAGER);
    let done = broken.execute(failed(), &lookup).await;
    assert!(done.is_ok(), "{done:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn node_pool_status_is_written_only_when_it_changes() {
    let server = server().await;
    let client = no_retry_client(&server.url());
    install_crds(&client).await;
    create_pool(&client, "default").await;
    let pools: Api<NodePool> = Api::all(client.clone());
    let writer = NodePoolStatusWriter::new(client.clone(), FIELD_MANAGER);
    let mut resources = Resources::new(4000, 16 * GIB);
    resources.pods = 58;
    let usage = NodePoolUsage {
        resources,
        nodes: 2,
    };
    let healthy = NodePoolConditions::new(&Validation::Succeeded, &NodeClassReadiness::Ready);
    let changes = writer.write("default", &usage, &healthy).await.unwrap();
    assert!(matches!(
        changes.as_slice(),
        [Change::Applied(Observed::NodePool(_))]
    ));
    let stored = pools.get("default").await.unwrap();
    let status = stored.status.clone().unwrap();
    assert_eq!(status.nodes, 2);
    let text = |k: &str| status.resources.get(k).map(|q| q.0.clone());
    assert_eq!(text("cpu").as_deref(), Some("4"));
    assert_eq!(text("memory").as_deref(), Some("16Gi"));
    assert_eq!(text("pods").as_deref(), Some("58"));
    assert_eq!(text("ephemeral-storage").as_deref(), Some("0"));
    assert_eq!(text("nodes").as_deref(), Some("2"));
    let condition = |s: &dovetail_api::nodepool::NodePoolStatus, t: &str| {
        s.conditions.iter().find(|c| c.type_ == t).cloned().unwrap()
    };
    for t in ["ValidationSucceeded", "NodeClassReady", "Ready"] {
        assert_eq!(condition(&status, t).status.as_str(), "True", "{t}");
        assert_eq!(condition(&status, t).reason, t);
    }

    // Unchanged: no request, nothing changes.
    let version = stored.metadata.resource_version.clone();
    assert!(
        writer
            .write("default", &usage, &healthy)
            .await
            .unwrap()
            .is_empty()
    );
    // A fresh writer (a restarted controller) reads the stored status and
    // finds nothing to write either.
    let restarted = NodePoolStatusWriter::new(client.clone(), FIELD_MANAGER);
    assert!(
        restarted
            .write("default", &usage, &healthy)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        pools
            .get("default")
            .await
            .unwrap()
            .metadata
            .resource_version,
        version
    );

    // The pool turns out malformed, and its nodes are gone.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let malformed = NodePoolConditions::new(
        &Validation::Failed(
            "NodePool default: spec.template.spec.taints[0].key: Required value".into(),
        ),
        &NodeClassReadiness::Ready,
    );
    writer
        .write("default", &NodePoolUsage::default(), &malformed)
        .await
        .unwrap();
    let after = pools.get("default").await.unwrap().status.unwrap();
    assert_eq!(after.nodes, 0);
    assert_eq!(after.resources["cpu"].0, "0");
    let v = condition(&after, "ValidationSucceeded");
    assert_eq!(v.status.as_str(), "False");
    assert_eq!(v.reason, "NodePoolValidationFailed");
    assert!(v.message.contains("taints[0].key"), "{}", v.message);
    assert_ne!(
        v.last_transition_time,
        condition(&status, "ValidationSucceeded").last_transition_time,
        "it transitioned"
    );
    let ready = condition(&after, "Ready");
    assert_eq!(ready.status.as_str(), "False");
    assert_eq!(ready.reason, "UnhealthyDependents");
    assert_eq!(
        condition(&after, "NodeClassReady").last_transition_time,
        condition(&status, "NodeClassReady").last_transition_time,
        "unchanged, so its time stays"
    );
    // A pool that is gone: nothing to write.
    assert!(
        writer
            .write("absent", &usage, &healthy)
            .await
            .unwrap()
            .is_empty()
    );
    server.shutdown().await;
}
