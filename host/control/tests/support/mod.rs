//! A small world for the orchestration tests: Dovetail's controller with the
//! built-in policies, an in-memory cluster and a scripted cloud, driven by a
//! clock the test moves. Every action the controller takes is kept with the
//! time it was taken, so a test can say what happened *when*.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use dovetail_control::actions::{Event, EventReason};
use dovetail_control::testing::{FakeCloud, MemoryCluster};
use dovetail_control::{
    Action, Autoscaler, Cluster, ClusterState, Config, Controller, Decision, Interruption, NodeId,
    OfferingKey, PodId,
};
use dovetail_core::builders::node_pool;
use dovetail_core::catalog::{CapacityType, Catalog};
use dovetail_core::labels;
use dovetail_core::model::{Node, NodePool, Pod, PodKey};
use dovetail_core::nodeclaim::{
    ConditionType, INITIALIZED_LABEL, LaunchedOffering, NodeClaim, NodeClaimStatus,
    REGISTERED_LABEL,
};
use dovetail_core::policy::Builtin;
use dovetail_core::requirements::{NodeSelectorRequirement, Operator};
use dovetail_core::scheduler::OfferingRef;
use dovetail_core::sym::Sym;

/// A whole second, so times read as `START + 25 * S`.
pub const START: u64 = 1_800_000_000_000;
pub const S: u64 = 1_000;
pub const MIN: u64 = 60 * S;

pub const ZONE: &str = "us-east-1a";

pub fn catalog() -> Arc<Catalog> {
    static CATALOG: OnceLock<Arc<Catalog>> = OnceLock::new();
    CATALOG
        .get_or_init(|| Arc::new(Catalog::aws_us_east_1()))
        .clone()
}

/// A NodePool `name` limited to `types`, on-demand, in one zone.
pub fn pool(name: &str, types: &[&str]) -> NodePool {
    pool_with(name, types, "on-demand")
}

pub fn pool_with(name: &str, types: &[&str], capacity_type: &str) -> NodePool {
    node_pool(name)
        .require(labels::INSTANCE_TYPE, Operator::In, types)
        .require(labels::CAPACITY_TYPE, Operator::In, &[capacity_type])
        .require(labels::ZONE, Operator::In, &[ZONE])
        .build()
}

pub fn offering(instance_type: &str, capacity_type: CapacityType) -> OfferingKey {
    OfferingKey {
        capacity_type,
        instance_type: Sym::new(instance_type),
        zone: Sym::new(ZONE),
    }
}

/// The offerings of a launch list, in order.
pub fn keys(launch: &[OfferingRef]) -> Vec<OfferingKey> {
    launch
        .iter()
        .map(|o| OfferingKey {
            capacity_type: o.capacity_type,
            instance_type: o.instance_type,
            zone: o.zone,
        })
        .collect()
}

pub fn sym(s: &str) -> Sym {
    Sym::new(s)
}

pub fn label(labels: &dovetail_core::model::Labels, key: &str) -> Option<String> {
    dovetail_core::model::label(labels, Sym::new(key)).map(|v| v.as_str().to_string())
}

pub struct World {
    pub cluster: MemoryCluster,
    pub cloud: FakeCloud,
    pub ctl: Controller<'static>,
    pub config: Config,
    pub now: u64,
    /// Every decision, with the time it was made.
    pub decisions: Vec<(u64, Decision)>,
    /// Every action executed on the cluster, with its time.
    pub timeline: Vec<(u64, Action)>,
    logged: usize,
    fixtures: u32,
}

impl World {
    /// A cluster with `pools`, at `START`, nothing reconciled yet.
    pub fn new(pools: Vec<NodePool>) -> Self {
        Self::with_config(pools, Config::default())
    }

    pub fn with_config(pools: Vec<NodePool>, config: Config) -> Self {
        let mut state = ClusterState::new();
        for p in pools {
            state.apply_node_pool(p);
        }
        Self {
            cluster: MemoryCluster::new(state),
            cloud: FakeCloud::new(catalog()),
            ctl: Controller::new(config.clone(), &Builtin, &Builtin),
            config,
            now: START,
            decisions: Vec::new(),
            timeline: Vec::new(),
            logged: 0,
            fixtures: 0,
        }
    }

    pub fn state(&self) -> &ClusterState {
        &self.cluster.state
    }

    /// A new controller on the same cluster and cloud, as after a restart.
    pub fn restart(&mut self) {
        self.ctl = Controller::new(self.config.clone(), &Builtin, &Builtin);
    }

    fn sync_log(&mut self) {
        for a in &self.cluster.log[self.logged..] {
            self.timeline.push((self.now, a.clone()));
        }
        self.logged = self.cluster.log.len();
    }

    /// One reconcile at the current time.
    pub fn reconcile(&mut self) -> Vec<Decision> {
        self.sync_log();
        let d = self
            .ctl
            .reconcile(&mut self.cluster, &mut self.cloud, self.now);
        self.sync_log();
        self.decisions
            .extend(d.iter().cloned().map(|d| (self.now, d)));
        d
    }

    /// Moves the clock by `ms`, reconciling every `tick_ms` on the way
    /// (at the new time, not the old).
    pub fn run_for(&mut self, ms: u64, tick_ms: u64) {
        let end = self.now + ms;
        while self.now < end {
            self.now = (self.now + tick_ms).min(end);
            self.reconcile();
        }
    }

    /// Reconciles once a second until `now` is `at` (inclusive).
    pub fn run_to(&mut self, at: u64) {
        assert!(at >= self.now, "the clock does not go back");
        self.run_for(at - self.now, S);
    }

    /// Reconciles every `tick_ms` until `done` holds; the time it first
    /// held. Fails the test after `limit_ms`.
    pub fn until(
        &mut self,
        what: &str,
        limit_ms: u64,
        tick_ms: u64,
        done: impl Fn(&World) -> bool,
    ) -> u64 {
        let end = self.now + limit_ms;
        while !done(self) {
            assert!(self.now < end, "{what}: not within {} ms", limit_ms);
            self.now += tick_ms;
            self.reconcile();
        }
        self.now
    }

    /// Something outside Dovetail acting on the cluster (a user, kubelet).
    pub fn act(&mut self, action: Action) {
        self.sync_log();
        self.cluster
            .execute(action, self.now)
            .expect("the cluster accepts it");
        // Not the controller's doing: keep it out of the timeline.
        self.logged = self.cluster.log.len();
    }

    pub fn interrupt(&mut self, message: &Interruption) -> Vec<Decision> {
        self.sync_log();
        let d = self.ctl.interruption(&mut self.cluster, message, self.now);
        self.sync_log();
        self.decisions
            .extend(d.iter().cloned().map(|d| (self.now, d)));
        d
    }

    // ---- pods ---------------------------------------------------------------

    /// A pending pod, arriving now.
    pub fn pending(&mut self, pod: Pod) -> PodId {
        self.cluster.state.apply_pod(pod, None, self.now)
    }

    /// A pod running on `node` since `now`.
    pub fn run_pod(&mut self, mut pod: Pod, node: NodeId) -> PodId {
        if pod.started_at == 0 {
            pod.started_at = self.now / 1000;
        }
        self.cluster.run_pod(pod, node, self.now)
    }

    pub fn pod_id(&self, pod: &Pod) -> Option<PodId> {
        self.state().pod_id(&pod.key())
    }

    pub fn pod_node(&self, id: PodId) -> Option<NodeId> {
        self.state().pod(id).and_then(|e| e.node)
    }

    /// The NodeClaim a pending pod is nominated to, by name.
    pub fn nominated_claim(&self, id: PodId) -> Option<Sym> {
        match self.state().pod(id)?.nominated? {
            dovetail_control::Nominee::Claim(c) => self.state().claim(c).map(|c| c.name),
            dovetail_control::Nominee::Node(_) => None,
        }
    }

    // ---- NodeClaims and nodes ---------------------------------------------

    /// NodeClaim names in the order they appeared.
    pub fn claim_names(&self) -> Vec<Sym> {
        self.state().claims().map(|(_, c)| c.name).collect()
    }

    pub fn claim(&self, name: Sym) -> &NodeClaim {
        self.state()
            .claim_by_name(name)
            .unwrap_or_else(|| panic!("NodeClaim {name} is gone"))
    }

    pub fn has_claim(&self, name: Sym) -> bool {
        self.state().claim_by_name(name).is_some()
    }

    /// Whether the NodeClaim is being deleted; fails the test when it is
    /// already gone, so "not deleting" cannot pass for a claim that went.
    pub fn deleting(&self, name: Sym) -> bool {
        self.claim(name).deleting()
    }

    pub fn node(&self, id: NodeId) -> &dovetail_control::state::NodeEntry {
        self.state()
            .node(id)
            .unwrap_or_else(|| panic!("node {id:?} is gone"))
    }

    pub fn has_node(&self, id: NodeId) -> bool {
        self.state().node(id).is_some()
    }

    pub fn tainted(&self, id: NodeId, key: &str) -> bool {
        self.state().node(id).is_some_and(|n| n.has_taint(key))
    }

    /// The kubelet of `claim`'s instance registers its Node (NotReady, with
    /// the claim's taints and `karpenter.sh/unregistered`).
    pub fn register(&mut self, claim: Sym) -> NodeId {
        self.cluster.register(&self.cloud, claim, self.now)
    }

    pub fn register_with(&mut self, claim: Sym, edit: impl FnOnce(&mut Node)) -> NodeId {
        self.cluster
            .register_with(&self.cloud, claim, self.now, edit)
    }

    pub fn set_ready(&mut self, node: NodeId, ready: bool) {
        self.cluster.state.set_node_ready(node, ready);
    }

    /// Registers `claim`'s node, makes it Ready, and reconciles until the
    /// claim is initialised.
    pub fn bring_up(&mut self, claim: Sym) -> NodeId {
        let node = self.register(claim);
        self.set_ready(node, true);
        self.until("initialised", 10 * S, S, |w| w.claim(claim).initialized());
        node
    }

    /// A node that was running before the test: a launched, registered and
    /// initialised NodeClaim of `pool` on `instance_type`, its instance, and
    /// its Ready Node with the termination finalizer. Created `age_ms` ago.
    pub fn existing_node(
        &mut self,
        pool: &str,
        instance_type: &str,
        capacity_type: CapacityType,
        age_ms: u64,
    ) -> (Sym, NodeId) {
        self.fixtures += 1;
        let name = Sym::new(&format!("{pool}-fix{:02}", self.fixtures));
        let created = self.now - age_ms;
        let p = self
            .state()
            .node_pool(Sym::new(pool))
            .unwrap_or_else(|| panic!("no NodePool {pool}"))
            .clone();
        let it = self.cloud.catalog.get(instance_type).expect("known type");
        let price = it
            .offering(ZONE, capacity_type)
            .expect("offered in the zone")
            .price;
        let req = |key: &str, v: &str| NodeSelectorRequirement::new(key, Operator::In, &[v]);
        let mut claim = NodeClaim {
            name,
            node_pool: Some(p.name),
            labels: vec![(Sym::new(labels::NODE_POOL), p.name)],
            annotations: Vec::new(),
            requirements: vec![
                req(labels::INSTANCE_TYPE, instance_type),
                req(labels::ZONE, ZONE),
                req(labels::CAPACITY_TYPE, capacity_type.label()),
            ],
            requests: Default::default(),
            taints: p.taints.clone(),
            startup_taints: p.startup_taints.clone(),
            node_class_ref: p.node_class_ref.clone(),
            expire_after: p.expire_after,
            termination_grace_period: None,
            launch: vec![OfferingRef {
                instance_type: it.name,
                zone: Sym::new(ZONE),
                capacity_type,
                price,
            }],
            node_pool_hash: Some(p.template_hash()),
            created_ms: created,
            deletion_ms: None,
            finalizer: true,
            status: NodeClaimStatus::default(),
        };
        let launch = dovetail_control::CloudProvider::create(&mut self.cloud, &claim, created)
            .expect("the fixture launches");
        // Launched before the test began: not a call the test watches.
        self.cloud.create_calls.pop();
        self.cloud.create_times.pop();
        let i = launch.instance;
        let mut l = i.labels.clone();
        l.extend(claim.labels.iter().copied());
        l.sort_by_key(|&(k, _)| k);
        l.dedup_by_key(|&mut (k, _)| k);
        claim.labels = l;
        let node_name = Sym::new(&format!("ip-{name}"));
        claim.status = NodeClaimStatus {
            provider_id: Some(i.provider_id.clone()),
            image_id: i.image_id.clone(),
            node_name: Some(node_name),
            capacity: i.capacity.clone(),
            allocatable: i.allocatable.clone(),
            launched: Some(LaunchedOffering {
                instance_type: i.instance_type,
                zone: i.zone,
                capacity_type: i.capacity_type,
                price: i.price,
            }),
            last_pod_event_ms: None,
            conditions: Vec::new(),
        };
        claim.set_true(ConditionType::Launched, created);
        claim.set_true(ConditionType::Registered, created);
        claim.set_true(ConditionType::Initialized, created);
        let mut node_labels = claim.labels.clone();
        node_labels.push((Sym::new(labels::HOSTNAME), node_name));
        node_labels.push((Sym::new(REGISTERED_LABEL), Sym::new("true")));
        node_labels.push((Sym::new(INITIALIZED_LABEL), Sym::new("true")));
        node_labels.sort_by_key(|&(k, _)| k);
        let node = Node {
            name: node_name,
            labels: node_labels,
            taints: p.taints.clone(),
            capacity: i.capacity.clone(),
            allocatable: i.allocatable.clone(),
            ready: true,
            created_at: created / 1000,
            ..Node::default()
        };
        self.cluster.state.apply_claim(claim, created);
        let id = self
            .cluster
            .state
            .apply_node(node, Some(i.provider_id), true, created);
        (name, id)
    }

    // ---- what happened ----------------------------------------------------

    /// Actions the controller took that match `f`, with their times.
    pub fn actions(&self, f: impl Fn(&Action) -> bool) -> Vec<(u64, Action)> {
        self.timeline
            .iter()
            .filter(|(_, a)| f(a))
            .cloned()
            .collect()
    }

    /// When the controller first took an action matching `f`.
    pub fn first(&self, f: impl Fn(&Action) -> bool) -> Option<u64> {
        self.timeline.iter().find(|(_, a)| f(a)).map(|(t, _)| *t)
    }

    /// Times the controller asked to evict `pod`.
    pub fn evictions(&self, pod: &Pod) -> Vec<u64> {
        let key = pod.key();
        self.actions(|a| matches!(a, Action::EvictPod { pod } if *pod == key))
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    /// Events with `reason` the controller emitted.
    pub fn events(&self, reason: EventReason) -> Vec<Event> {
        self.timeline
            .iter()
            .filter_map(|(_, a)| match a {
                Action::Event(e) if e.reason == reason => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn decided(&self, f: impl Fn(&Decision) -> bool) -> Vec<(u64, Decision)> {
        self.decisions
            .iter()
            .filter(|(_, d)| f(d))
            .cloned()
            .collect()
    }
}

pub fn evicted(a: &Action, pod: PodKey) -> bool {
    matches!(a, Action::EvictPod { pod: p } if *p == pod)
}
