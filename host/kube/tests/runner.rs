//! The reconcile loop against the in-memory API server: an interruption
//! message deletes the NodeClaim of its instance when this process leads,
//! and is dropped when it does not.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dovetail_api::{NodeClaim, NodePool};
use dovetail_apiserver::{ApiServer, ServerConfig};
use dovetail_control::interruption::{Interruption, InterruptionKind};
use dovetail_control::testing::FakeCloud;
use dovetail_control::{ClusterState, Decision};
use dovetail_core::catalog::Catalog;
use dovetail_core::model::NodeClassRef;
use dovetail_core::nodeclaim::{ConditionType, NodeClaim as CoreClaim, NodeClaimStatus};
use dovetail_core::policy::Builtin;
use dovetail_core::requirements::{NodeSelectorRequirement, Operator};
use dovetail_core::resources::{GIB, Resources};
use dovetail_core::sym::Sym;
use dovetail_kube::actions::{Executor, NodePoolStatusWriter};
use dovetail_kube::runner::{self, Inputs, Observer, Outside, Policies, RunnerConfig};
use dovetail_kube::watches::{self, WatchConfig};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::{mpsc, watch};

const CLAIM: &str = "default-intr1";
const INSTANCE: &str = "i-0123456789abcdef0";
const PROVIDER_ID: &str = "aws:///us-east-1a/i-0123456789abcdef0";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
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

/// What the loop reported.
#[derive(Default)]
struct Seen {
    passes: u32,
    observed: u32,
    interrupted: Vec<(Sym, InterruptionKind)>,
}

struct Recorder(Arc<Mutex<Seen>>);

impl Observer for Recorder {
    fn reconciled(&mut self, decisions: &[Decision], _: &ClusterState, _: Duration) {
        let mut seen = self.0.lock().unwrap();
        seen.passes += 1;
        for d in decisions {
            if let Decision::Interrupted { claim, kind } = d {
                seen.interrupted.push((*claim, *kind));
            }
        }
    }
    fn observed(&mut self, _: &ClusterState, _: bool) {
        self.0.lock().unwrap().observed += 1;
    }
}

/// A NodeClaim launched a moment ago on `PROVIDER_ID`, not yet registered.
fn launched_claim(now: u64) -> CoreClaim {
    let mut status = NodeClaimStatus {
        provider_id: Some(PROVIDER_ID.into()),
        image_id: Some("ami-0123".into()),
        capacity: Resources::new(2000, 8 * GIB),
        allocatable: Resources::new(1930, 7 * GIB),
        ..NodeClaimStatus::default()
    };
    status.capacity.pods = 29;
    let mut claim = CoreClaim {
        name: Sym::new(CLAIM),
        node_pool: Some(Sym::new("default")),
        labels: dovetail_core::model::sorted_labels([
            ("node.kubernetes.io/instance-type", "m5.large"),
            ("topology.kubernetes.io/zone", "us-east-1a"),
            ("karpenter.sh/capacity-type", "spot"),
        ]),
        annotations: Vec::new(),
        requirements: vec![NodeSelectorRequirement::new(
            "node.kubernetes.io/instance-type",
            Operator::In,
            &["m5.large"],
        )],
        requests: Resources::new(1000, GIB),
        taints: Vec::new(),
        startup_taints: Vec::new(),
        node_class_ref: NodeClassRef::default(),
        expire_after: None,
        termination_grace_period: None,
        launch: Vec::new(),
        node_pool_hash: None,
        created_ms: now,
        deletion_ms: None,
        finalizer: true,
        status,
    };
    claim.set_true(ConditionType::Launched, now);
    claim
}

struct Running {
    server: ApiServer,
    claims: Api<NodeClaim>,
    interruptions: mpsc::Sender<Interruption>,
    leader: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    seen: Arc<Mutex<Seen>>,
    thread: std::thread::JoinHandle<()>,
    watches: watches::Watches,
}

impl Running {
    fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().unwrap())
    }

    async fn claim_deleting(&self) -> bool {
        match self.claims.get_opt(CLAIM).await.unwrap() {
            None => true,
            Some(c) => c.metadata.deletion_timestamp.is_some(),
        }
    }

    async fn finish(self) {
        self.stop.send(true).unwrap();
        tokio::task::spawn_blocking(move || self.thread.join())
            .await
            .unwrap()
            .expect("the loop ends cleanly");
        self.watches.abort();
        self.server.shutdown().await;
    }
}

/// The API server holding a NodePool and a launched NodeClaim (its
/// instance in the cloud), and the loop running against it.
async fn start(leader: bool) -> Running {
    let server = ApiServer::start(ServerConfig::default())
        .await
        .expect("server starts");
    let mut config = kube::Config::new(server.url().parse().unwrap());
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in dovetail_api::crd::crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let pool: NodePool = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": { "name": "default" },
        "spec": { "template": { "spec": {
            "nodeClassRef": { "group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default" },
            "requirements": [],
        } } },
    }))
    .unwrap();
    let pool = Api::<NodePool>::all(client.clone())
        .create(&PostParams::default(), &pool)
        .await
        .unwrap();
    let now = now_ms();
    let core = launched_claim(now);
    let claims: Api<NodeClaim> = Api::all(client.clone());
    let object = NodeClaim::from_core(&core, pool.metadata.uid.as_deref());
    claims
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
    claims
        .patch_status(
            CLAIM,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": object.status })),
        )
        .await
        .unwrap();

    // The instance exists, so nothing but the interruption deletes the claim.
    let mut cloud = FakeCloud::new(Arc::new(Catalog::aws_us_east_1()));
    let leaked = cloud.leak("m5.large", "us-east-1a", now);
    let mut instance = cloud.instances.remove(&leaked).unwrap();
    instance.provider_id = PROVIDER_ID.into();
    instance.node_claim = Some(Sym::new(CLAIM));
    cloud.instances.insert(PROVIDER_ID.into(), instance);

    let (tx, changes) = mpsc::unbounded_channel();
    let watches = watches::spawn(client.clone(), tx, WatchConfig::default());
    let (interruptions, interruptions_rx) = mpsc::channel(8);
    let (leader_tx, leader_rx) = watch::channel(leader);
    let (stop_tx, stop_rx) = watch::channel(false);
    let inputs = Inputs {
        changes,
        interruptions: interruptions_rx,
        leader: leader_rx,
        stop: stop_rx,
    };
    let outside = Outside {
        executor: Executor::new(client.clone(), "dovetail"),
        pools: NodePoolStatusWriter::new(client.clone(), "dovetail"),
        cloud: Box::new(cloud),
    };
    let policies = Policies {
        selector: Arc::new(Builtin),
        scorer: Arc::new(Builtin),
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut observer = Recorder(seen.clone());
    let handle = tokio::runtime::Handle::current();
    let thread = std::thread::spawn(move || {
        runner::run(
            handle,
            outside,
            policies,
            RunnerConfig::default(),
            inputs,
            &mut observer,
        );
    });
    Running {
        server,
        claims,
        interruptions,
        leader: leader_tx,
        stop: stop_tx,
        seen,
        thread,
        watches,
    }
}

fn spot_interruption() -> Interruption {
    Interruption {
        kind: InterruptionKind::SpotInterruption,
        instance_id: INSTANCE.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interruption_deletes_the_node_claim_of_its_instance() {
    let r = start(true).await;
    // Passes over the launched claim leave it alone.
    eventually("five passes", || async {
        (r.seen(|s| s.passes) >= 5).then_some(())
    })
    .await;
    assert!(!r.claim_deleting().await, "nothing deletes it on its own");

    r.interruptions.send(spot_interruption()).await.unwrap();
    eventually("the NodeClaim's deletion", || async {
        r.claim_deleting().await.then_some(())
    })
    .await;
    assert_eq!(
        r.seen(|s| s.interrupted.clone()),
        [(Sym::new(CLAIM), InterruptionKind::SpotInterruption)]
    );
    r.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_drops_interruptions_and_the_new_leader_does_not_replay_them() {
    let r = start(false).await;
    eventually("the index to be filled", || async {
        (r.seen(|s| s.observed) >= 3).then_some(())
    })
    .await;
    r.interruptions.send(spot_interruption()).await.unwrap();
    eventually("the follower to take the message", || async {
        (r.interruptions.capacity() == r.interruptions.max_capacity()).then_some(())
    })
    .await;
    r.leader.send(true).unwrap();
    eventually("five passes as leader", || async {
        (r.seen(|s| s.passes) >= 5).then_some(())
    })
    .await;
    assert!(
        !r.claim_deleting().await,
        "the dropped message is not acted on"
    );
    assert!(r.seen(|s| s.interrupted.is_empty()));

    // Led from now on: the next message is acted on.
    r.interruptions.send(spot_interruption()).await.unwrap();
    eventually("the NodeClaim's deletion", || async {
        r.claim_deleting().await.then_some(())
    })
    .await;
    r.finish().await;
}
