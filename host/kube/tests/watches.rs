//! The watches against the in-memory API server, feeding an index and the
//! synced gate as the controller's runner does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use dovetail_apiserver::{ApiServer, ServerConfig};
use dovetail_control::actions::ObjectKind;
use dovetail_core::model::PodKey;
use dovetail_core::sym::Sym;
use dovetail_kube::index::Index;
use dovetail_kube::observed::{Change, Lookup, WatchedKind};
use dovetail_kube::synced::{NotSynced, Synced};
use dovetail_kube::watches::{self, WatchConfig, Watches};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Client, Config};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

fn client(url: &str) -> Client {
    Client::try_from(Config::new(url.parse().unwrap())).unwrap()
}

async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in dovetail_api::crd::crds() {
        api.create(&PostParams::default(), &crd).await.unwrap();
    }
}

async fn create<K>(api: &Api<K>, v: Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), &serde_json::from_value(v).unwrap())
        .await
        .unwrap()
}

fn custom(client: &Client, kind: &str, plural: &str, group: &str) -> Api<DynamicObject> {
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural);
    Api::all_with(client.clone(), &resource)
}

fn pod(name: &str) -> Value {
    json!({
        "metadata": { "name": name, "namespace": "default", "labels": { "app": "web" } },
        "spec": { "containers": [{
            "name": "app", "image": "app:1",
            "resources": { "requests": { "cpu": "500m" } },
        }] },
    })
}

fn key(name: &str) -> PodKey {
    PodKey {
        namespace: Sym::new("default"),
        name: Sym::new(name),
    }
}

/// The runner's loop, in small: changes into the gate and the index.
struct Runner {
    rx: mpsc::UnboundedReceiver<Change>,
    index: Index,
    synced: Synced,
    /// Relists begun, by kind, since the runner started.
    relists: Vec<WatchedKind>,
    _watches: Watches,
}

impl Runner {
    fn start(client: Client, config: WatchConfig) -> Runner {
        let (tx, rx) = mpsc::unbounded_channel();
        let watches = watches::spawn(client, tx, config);
        Runner {
            rx,
            index: Index::new(),
            synced: Synced::new(),
            relists: Vec::new(),
            _watches: watches,
        }
    }

    fn watches(&self) -> &Watches {
        &self._watches
    }

    /// Applies changes until `done` holds, for at most `within`.
    async fn until(
        &mut self,
        what: &str,
        within: Duration,
        mut done: impl FnMut(&Index, &mut Synced) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if done(&self.index, &mut self.synced) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "{what}: not within {within:?}; gate: {:?}",
                    self.synced.why_not()
                );
            }
            // As the runner does before each pass, even with no change.
            self.index.settle(now_ms());
            let Ok(change) = tokio::time::timeout(Duration::from_millis(200), self.rx.recv()).await
            else {
                continue;
            };
            let change = change.expect("the watches run");
            if let Change::Relisting(kind) = &change {
                self.relists.push(*kind);
            }
            self.synced.observe(&change);
            self.index.apply(change, now_ms());
        }
    }

    /// Applies whatever comes for `time`.
    async fn pump(&mut self, time: Duration) {
        let end = tokio::time::Instant::now() + time;
        self.until("pumping", time + Duration::from_secs(1), |_, _| {
            tokio::time::Instant::now() >= end
        })
        .await;
    }

    async fn until_synced(&mut self) {
        self.until("synced", Duration::from_secs(20), |index, synced| {
            synced.synced(index, now_ms())
        })
        .await;
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn every_kind_is_watched_and_creates_updates_and_deletes_reach_the_index() {
    let server = ApiServer::start(ServerConfig::default()).await.unwrap();
    let client = client(&server.url());
    install_crds(&client).await;
    let mut runner = Runner::start(client.clone(), WatchConfig::default());
    runner.until_synced().await;

    let pools = custom(&client, "NodePool", "nodepools", "karpenter.sh");
    create(
        &pools,
        json!({
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
            "metadata": { "name": "general" },
            "spec": { "template": { "spec": {
                "requirements": [{ "key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"] }],
                "nodeClassRef": { "group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default" },
            }}},
        }),
    )
    .await;
    let classes = custom(
        &client,
        "EC2NodeClass",
        "ec2nodeclasses",
        "karpenter.k8s.aws",
    );
    create(
        &classes,
        json!({
            "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass",
            "metadata": { "name": "default" },
            "spec": {
                "role": "KarpenterNodeRole",
                "amiSelectorTerms": [{ "alias": "al2023@latest" }],
                "subnetSelectorTerms": [{ "tags": { "karpenter.sh/discovery": "c" } }],
                "securityGroupSelectorTerms": [{ "tags": { "karpenter.sh/discovery": "c" } }],
            },
        }),
    )
    .await;
    let claims = custom(&client, "NodeClaim", "nodeclaims", "karpenter.sh");
    create(
        &claims,
        json!({
            "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
            "metadata": { "name": "general-x1", "labels": { "karpenter.sh/nodepool": "general" } },
            "spec": {
                "nodeClassRef": { "group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default" },
                "requirements": [{ "key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.large"] }],
            },
        }),
    )
    .await;
    let nodes: Api<Node> = Api::all(client.clone());
    create(
        &nodes,
        json!({
            "metadata": { "name": "n1" },
            "spec": { "providerID": "aws:///us-east-1a/i-1" },
            "status": { "capacity": { "cpu": "2", "memory": "8Gi", "pods": "110" } },
        }),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let created = create(&pods, pod("web-1")).await;
    let daemon_sets: Api<DaemonSet> = Api::namespaced(client.clone(), "kube-system");
    create(
        &daemon_sets,
        json!({
            "metadata": { "name": "agent" },
            "spec": {
                "selector": { "matchLabels": { "app": "agent" } },
                "template": {
                    "metadata": { "labels": { "app": "agent" } },
                    "spec": { "containers": [{ "name": "a", "image": "a" }] },
                },
            },
        }),
    )
    .await;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    create(
        &pdbs,
        json!({
            "metadata": { "name": "web" },
            "spec": { "maxUnavailable": 1, "selector": { "matchLabels": { "app": "web" } } },
        }),
    )
    .await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    create(&namespaces, json!({ "metadata": { "name": "team-a" } })).await;

    runner
        .until("every object indexed", WAIT, |index, _| {
            let s = index.state();
            s.node_pool(Sym::new("general")).is_some()
                && index.node_class_ready("default") == Some(false)
                && s.claim_by_name(Sym::new("general-x1")).is_some()
                && s.node_by_name(Sym::new("n1")).is_some()
                && s.pod_id(&key("web-1")).is_some()
                && s.daemon_sets().len() == 1
                && s.pdbs().len() == 1
                && s.namespaces().iter().any(|n| n.name.as_str() == "team-a")
        })
        .await;
    let index = &runner.index;
    assert_eq!(
        index.uid(ObjectKind::Pod, Some("default"), "web-1"),
        created.metadata.uid
    );
    let id = index.state().pod_id(&key("web-1")).unwrap();
    assert_eq!(
        index.state().pod(id).unwrap().pdbs,
        [0],
        "the budget covers the pod"
    );
    assert_eq!(index.problems().count(), 0);

    pods.patch(
        "web-1",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "labels": { "app": "api" } } })),
    )
    .await
    .unwrap();
    runner
        .until("the update", WAIT, |index, _| {
            let s = index.state();
            s.pod(id).is_some_and(|e| {
                e.pod
                    .labels
                    .iter()
                    .any(|(k, v)| k.as_str() == "app" && v.as_str() == "api")
            })
        })
        .await;
    assert!(
        runner.index.state().pod(id).unwrap().pdbs.is_empty(),
        "relabelled out of the budget"
    );

    pods.delete("web-1", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    nodes.delete("n1", &DeleteParams::default()).await.unwrap();
    pools
        .delete("general", &DeleteParams::default())
        .await
        .unwrap();
    runner
        .until("the deletes", WAIT, |index, _| {
            let s = index.state();
            s.pod_id(&key("web-1")).is_none() && s.node_count() == 0 && s.node_pools().is_empty()
        })
        .await;
    for kind in WatchedKind::ALL {
        assert_eq!(runner.watches().errors(kind), 0, "{kind}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_gate_stays_closed_while_a_kind_cannot_be_listed_and_its_watch_recovers() {
    let server = ApiServer::start(ServerConfig::default()).await.unwrap();
    let client = client(&server.url());
    // No CRDs yet: NodePools, NodeClaims and EC2NodeClasses cannot be
    // listed (404); the built-in kinds can.
    let mut runner = Runner::start(client.clone(), WatchConfig::default());
    runner
        .until("the built-in kinds listed", WAIT, |_, synced| {
            [
                WatchedKind::Node,
                WatchedKind::Pod,
                WatchedKind::DaemonSet,
                WatchedKind::Pdb,
                WatchedKind::Namespace,
            ]
            .into_iter()
            .all(|k| synced.listed(k))
        })
        .await;
    assert!(!runner.synced.synced(&runner.index, now_ms()));
    assert_eq!(
        runner.synced.why_not(),
        Some(&NotSynced::NotListed(vec![
            WatchedKind::NodePool,
            WatchedKind::NodeClaim,
            WatchedKind::Ec2NodeClass,
        ]))
    );
    for _ in 0..100 {
        if runner.watches().errors(WatchedKind::NodePool) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let error = runner.watches().last_error(WatchedKind::NodePool);
    assert!(
        error.as_deref().is_some_and(|e| e.contains("404")),
        "the failed list is recorded: {error:?}"
    );

    install_crds(&client).await;
    runner
        .until(
            "synced once the CRDs exist",
            Duration::from_secs(30),
            |index, synced| synced.synced(index, now_ms()),
        )
        .await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_silent_watch_is_restarted_and_a_compacted_one_relists_dropping_what_was_deleted() {
    let server = ApiServer::start(ServerConfig::default()).await.unwrap();
    let direct = client(&server.url());
    install_crds(&direct).await;
    let proxy = Proxy::start(server.address()).await;
    let config = WatchConfig {
        stall_timeout: Duration::from_secs(6),
        ..WatchConfig::default()
    };
    let mut runner = Runner::start(client(&proxy.url()), config);
    runner.until_synced().await;
    let pods: Api<Pod> = Api::namespaced(direct.clone(), "default");
    create(&pods, pod("gone")).await;
    create(&pods, pod("stays")).await;
    runner
        .until("both pods", WAIT, |index, _| {
            index.state().pod_id(&key("gone")).is_some()
                && index.state().pod_id(&key("stays")).is_some()
        })
        .await;
    let relists_before = runner.relists.len();
    // Long enough ago that the relist does not doubt the deletion (it
    // could be a write's response newer than the list).
    runner.pump(dovetail_kube::index::RELIST_DOUBT).await;

    // The watches' connections go silent: no event, no bookmark, no end.
    proxy.freeze();
    pods.delete("gone", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    // Move the revision on, then drop the history the watches would resume
    // from.
    let config_maps: Api<ConfigMap> = Api::namespaced(direct.clone(), "default");
    create(&config_maps, json!({ "metadata": { "name": "bump" } })).await;
    server.store().compact();
    create(&pods, pod("new")).await;

    runner
        .until(
            "the stalled watch restarted, relisted and dropped the deleted pod",
            Duration::from_secs(30),
            |index, _| {
                index.state().pod_id(&key("gone")).is_none()
                    && index.state().pod_id(&key("new")).is_some()
            },
        )
        .await;
    assert!(
        runner.relists[relists_before..].contains(&WatchedKind::Pod),
        "through a relist of pods"
    );
    assert!(runner.index.state().pod_id(&key("stays")).is_some());
    assert!(
        runner.watches().errors(WatchedKind::Pod) >= 1,
        "the 410 is counted"
    );
    runner.until_synced().await;
    server.shutdown().await;
}

/// A TCP proxy whose watch connections can be made to go silent, as a
/// connection that died without a word does.
struct Proxy {
    address: SocketAddr,
    connections: Arc<Mutex<Vec<Weak<Connection>>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Connection {
    /// The last request on it was a watch.
    watching: AtomicBool,
    frozen: AtomicBool,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let connections: Arc<Mutex<Vec<Weak<Connection>>>> = Arc::default();
        let registry = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let c = Arc::new(Connection::default());
                registry.lock().unwrap().push(Arc::downgrade(&c));
                tokio::spawn(relay(client, upstream, c));
            }
        });
        Proxy {
            address,
            connections,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every connection carrying a watch now forwards nothing more; a new
    /// request on one is refused by closing it.
    fn freeze(&self) {
        for c in self.connections.lock().unwrap().iter() {
            if let Some(c) = c.upgrade()
                && c.watching.load(Ordering::SeqCst)
            {
                c.frozen.store(true, Ordering::SeqCst);
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, c: Arc<Connection>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let requests = {
        let c = c.clone();
        async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match client_read.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if c.frozen.load(Ordering::SeqCst) {
                    return;
                }
                let chunk = &buf[..n];
                if chunk.starts_with(b"GET ") {
                    let line = chunk.split(|&b| b == b'\n').next().unwrap_or(chunk);
                    let watch = line.windows(10).any(|w| w == b"watch=true")
                        || line.windows(7).any(|w| w == b"watch=1");
                    c.watching.store(watch, Ordering::SeqCst);
                }
                if server_write.write_all(chunk).await.is_err() {
                    return;
                }
            }
        }
    };
    let responses = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if c.frozen.load(Ordering::SeqCst) {
                continue;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
        if c.frozen.load(Ordering::SeqCst) {
            // Silent to the end: the client must notice by itself.
            std::future::pending::<()>().await;
        }
    };
    // Whichever side ends first ends the connection.
    tokio::select! {
        () = requests => {}
        () = responses => {}
    }
}
