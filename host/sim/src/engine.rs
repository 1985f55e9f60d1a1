//! The event loop and the models of the world.
//!
//! Time advances in one-second ticks. Each tick: scenario events and
//! workloads change the pods; the EC2 model and the kubelet bring instances
//! up as nodes, make them Ready and take reclaimed ones away; kube-scheduler
//! binds pending pods to Ready nodes with room; then the autoscaler —
//! Dovetail's controller from `dovetail-control`, or the static baseline —
//! reconciles, its actions executed on the simulated cluster at once.
//! Everything between decisions (batching, NodeClaim lifecycle, the
//! disruption queue, drains) is the controller's own code; this crate only
//! models the world around it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use dovetail_control::controller::{Autoscaler, Config, Controller};
use dovetail_control::decision::{ClaimFailure, CreatedClaim, Decision, PassReport};
use dovetail_control::interruption::{Interruption, InterruptionKind};
use dovetail_control::state::{ClusterState, NodeId, Nominee, PodId};
use dovetail_core::catalog::CapacityType;
use dovetail_core::disruption::UnconsolidatedReason;
use dovetail_core::labels;
use dovetail_core::model::{self, Node, OwnerKind, Pod, PodDisruptionBudget, Taint, TaintEffect};
use dovetail_core::nodeclaim::{
    ConditionType, DO_NOT_SYNC_TAINTS_LABEL, INITIALIZED_LABEL, LaunchedOffering, NodeClaim,
    NodeClaimStatus, REGISTERED_LABEL, UNREGISTERED_TAINT,
};
use dovetail_core::policy::{ConsolidationScorer, InstanceSelector};
use dovetail_core::resources::Resources;
use dovetail_core::rng::SplitMix;
use dovetail_core::scheduler::{Snapshot, daemon_schedules_on, solve};
use dovetail_core::sym::Sym;

use crate::baseline::StaticNodeGroups;
use crate::cloud::{Ec2, Shortage, instance_id};
use crate::report::{
    CostShare, DecisionRecord, LaunchRecord, NodeReason, OfferingRecord, Outcome, PassRecord,
    PoolBudget, ProposedRecord, Report, Sample,
};
use crate::types::{
    Autoscaler as Kind, EventKind, InitialNode, InitialPod, Scenario, WorkloadKind,
};
use crate::unschedulable::{Unschedulable, Workload};
use crate::world::{Owner, World};
use dovetail_core::stats::percentile;

pub(crate) const TICK_MS: u64 = 1_000;

pub(crate) const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";

/// What happened, for people watching.
#[derive(Debug, Clone, PartialEq)]
pub enum SimEvent {
    NodeLaunched {
        at_ms: u64,
        name: Sym,
        instance_type: Sym,
        zone: Sym,
        capacity_type: CapacityType,
        price: f64,
    },
    NodeReady {
        at_ms: u64,
        name: Sym,
    },
    NodeDeleted {
        at_ms: u64,
        name: Sym,
        why: String,
    },
    Scaled {
        at_ms: u64,
        deployment: String,
        replicas: usize,
    },
    Disruption {
        at_ms: u64,
        summary: String,
    },
    /// A spot interruption notice: the node is drained and terminates at
    /// `terminates_at_ms`.
    Interrupted {
        at_ms: u64,
        name: Sym,
        terminates_at_ms: u64,
    },
    /// A launch of this offering failed for lack of capacity.
    InsufficientCapacity {
        at_ms: u64,
        instance_type: Sym,
        zone: Sym,
        capacity_type: CapacityType,
    },
    /// An event applied, patched or deleted an object.
    Changed {
        at_ms: u64,
        summary: String,
    },
}

/// A launch record whose NodeClaims are still being launched.
struct Open {
    index: usize,
    claims: Vec<Sym>,
    failed: usize,
    fallback: Option<String>,
    drop_if_empty: bool,
}

/// Why a pass left a node alone, as last reported.
#[derive(Debug, Clone, PartialEq)]
enum LeftAlone {
    Excluded(String),
    Unconsolidated(UnconsolidatedReason),
}

impl std::fmt::Display for LeftAlone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Excluded(why) => f.write_str(why),
            Self::Unconsolidated(why) => why.fmt(f),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub(crate) struct JobState {
    pub created: usize,
    pub completed: usize,
    pub active: usize,
}

pub struct Simulation<'a> {
    pub(crate) scenario: Scenario,
    /// Simulated ms since the start.
    pub(crate) now: u64,
    start_ms: u64,
    pub(crate) world: World,
    pub(crate) cloud: Ec2,
    autoscaler: Box<dyn Autoscaler + 'a>,
    rng: SplitMix,
    next_event: usize,
    pub(crate) next_diurnal: Vec<u64>,
    pub(crate) jobs: Vec<JobState>,
    /// Running Job pods by completion time (entries of pods since evicted
    /// are skipped when due).
    pub(crate) running_jobs: BTreeSet<(u64, PodId)>,
    latencies: Vec<f64>,
    report: Report,
    pub(crate) events: Vec<SimEvent>,
    pod_serial: usize,
    /// Why each node is going, for the `NodeDeleted` event.
    pub(crate) why: HashMap<Sym, String>,
    /// Each NodeClaim's launch record.
    launch_index: HashMap<Sym, usize>,
    /// Each distinct launch list's index in the report.
    launch_lists: HashMap<Vec<(Sym, Sym, CapacityType, u64)>, usize>,
    /// The reason last reported for each node a disruption pass left alone.
    left_alone: HashMap<Sym, LeftAlone>,
    /// Cost so far by NodePool and capacity type.
    cost_by: BTreeMap<(Option<Sym>, CapacityType), f64>,
    /// The pass whose proposed command awaits validation.
    proposal: Option<usize>,
    /// The passes whose commands started, by the commands' nodes.
    started: HashMap<Vec<Sym>, usize>,
    /// Registered nodes whose DaemonSet pods are still to be placed.
    pub(crate) awaiting_daemons: BTreeSet<NodeId>,
    /// Each workload's template revision (bumped when an event changes it),
    /// and the revision each of its pods was made from.
    pub(crate) workload_revision: Vec<u32>,
    pub(crate) revisions: HashMap<PodId, u32>,
    /// Workloads rolling out a new template.
    pub(crate) rolling: BTreeSet<usize>,
    /// Workloads and Jobs deleted by an event (their positions stay).
    pub(crate) deleted_jobs: BTreeSet<usize>,
    /// Pods the autoscaler found no place for, by workload and reason.
    unschedulable: Unschedulable,
    /// Pods that have run on a node (to tell those that never did).
    ran: HashSet<PodId>,
}

impl<'a> Simulation<'a> {
    pub fn new(
        scenario: Scenario,
        selector: &'a dyn InstanceSelector,
        scorer: &'a dyn ConsolidationScorer,
    ) -> Self {
        let mut events = scenario.events.clone();
        events.sort_by_key(|e| e.at_ms);
        let scenario = Scenario { events, ..scenario };
        let m = &scenario.models;
        let start_ms = scenario.start_unix_seconds * 1000;
        let (autoscaler, name): (Box<dyn Autoscaler + 'a>, String) = match &scenario.autoscaler {
            Kind::Dovetail => {
                let config = Config {
                    batch_idle_ms: m.batch_idle_ms,
                    batch_max_ms: m.batch_max_ms,
                    disruption: dovetail_control::disruption::Timings {
                        poll_ms: m.disruption_interval_ms,
                        validation_delay_ms: m.validation_delay_ms,
                        consolidation_recheck_ms: m.consolidation_recheck_ms,
                        provisioning_ms: m.batch_max_ms,
                        ..Default::default()
                    },
                    disruption_settings: m.disruption.clone(),
                    unavailable_offering_ttl_ms: m.unavailable_offering_ms,
                    seed: scenario.seed,
                    ..Config::default()
                };
                (
                    Box::new(Controller::new(config, selector, scorer)),
                    "dovetail".to_string(),
                )
            }
            Kind::StaticNodeGroups(groups) => (
                Box::new(StaticNodeGroups::new(
                    groups.clone(),
                    m.baseline.clone(),
                    scenario.seed,
                )),
                format!(
                    "static-node-groups ({})",
                    groups
                        .iter()
                        .map(|g| format!("{} {}", g.instance_type, g.capacity_type))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        };
        let c = &scenario.cluster;
        let mut state = ClusterState::new();
        for p in &c.node_pools {
            state.apply_node_pool(p.clone());
        }
        state.set_daemon_sets(c.daemon_sets.clone());
        state.set_namespaces(c.namespaces.clone());
        state.set_settings(c.settings.clone());
        state.set_pdbs(
            scenario
                .pdbs
                .iter()
                .map(|b| PodDisruptionBudget {
                    namespace: b.namespace,
                    name: b.name,
                    selector: b.selector.clone(),
                    disruptions_allowed: 0,
                })
                .collect(),
        );
        let cloud = Ec2::new(c.catalog.clone(), m.launch_ms, m.ready_ms, start_ms);
        let mut s = Simulation {
            rng: SplitMix::new(scenario.seed),
            world: World::new(state, scenario.pdbs.clone()),
            cloud,
            autoscaler,
            now: 0,
            start_ms,
            next_event: 0,
            next_diurnal: vec![0; scenario.deployments.len()],
            // Completions done before the start count as made and done.
            jobs: scenario
                .jobs
                .iter()
                .map(|j| JobState {
                    created: j.succeeded,
                    completed: j.succeeded,
                    active: 0,
                })
                .collect(),
            running_jobs: BTreeSet::new(),
            latencies: Vec::new(),
            report: Report {
                autoscaler: name,
                seed: scenario.seed,
                duration_seconds: scenario.duration_ms / 1000,
                ..Report::default()
            },
            events: Vec::new(),
            pod_serial: 0,
            why: HashMap::new(),
            awaiting_daemons: BTreeSet::new(),
            launch_index: HashMap::new(),
            launch_lists: HashMap::new(),
            left_alone: HashMap::new(),
            cost_by: BTreeMap::new(),
            proposal: None,
            started: HashMap::new(),
            workload_revision: vec![0; scenario.deployments.len()],
            revisions: HashMap::new(),
            rolling: BTreeSet::new(),
            deleted_jobs: BTreeSet::new(),
            unschedulable: Unschedulable::default(),
            ran: HashSet::new(),
            scenario,
        };
        s.start_state();
        for d in 0..s.scenario.deployments.len() {
            let replicas = match &s.scenario.deployments[d].diurnal {
                Some(curve) => curve.replicas_at(0),
                None => s.scenario.deployments[d].replicas,
            };
            s.set_replicas(d, replicas);
        }
        s
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.start_ms + self.now
    }

    /// The nodes of the start state: instances already running, their
    /// NodeClaims launched and registered (initialized when Ready), and the
    /// workloads' pods bound to them; NodeClaims still launching; the pods
    /// of manifests, bound or pending.
    fn start_state(&mut self) {
        // Nodes with pods from manifests get their missing DaemonSet pods
        // once those are bound (the DaemonSet controller adds only what a
        // node lacks).
        let with_pods: BTreeSet<Sym> = self
            .scenario
            .initial_pods
            .iter()
            .filter_map(|p| p.node)
            .collect();
        let mut deferred = Vec::new();
        for init in self.scenario.initial_nodes.clone() {
            let defer = with_pods.contains(&init.node.name);
            let Some(id) = self.add_node(&init, true, !defer) else {
                continue;
            };
            if defer {
                deferred.push(id);
            }
            for (d, count) in init.pods {
                for _ in 0..count {
                    let p = self.new_pod(Owner::Deployment(d), Some(id));
                    let _ = p;
                }
            }
            // Bound from the start: not a pending latency.
        }
        for claim in self.scenario.initial_claims.clone() {
            self.launching_claim(claim);
        }
        let now_ms = self.now_ms();
        for init in self.scenario.initial_pods.clone() {
            self.add_pod(init, now_ms);
        }
        for id in deferred {
            self.place_daemons(id);
        }
        for j in 0..self.jobs.len() {
            if self.jobs[j].created > 0 {
                self.top_up_job(j);
            }
        }
        self.cloud.launched = 0;
        self.cloud.events.clear();
    }

    /// A node that is there already (at the start, or joining by an event):
    /// its instance running (billed when the catalog has its offering), its
    /// NodeClaim launched and registered when it is a NodePool's. `back_dated`
    /// counts its instance's life from the node's creation.
    pub(crate) fn add_node(
        &mut self,
        init: &InitialNode,
        back_dated: bool,
        daemons: bool,
    ) -> Option<NodeId> {
        let now_ms = self.now_ms();
        let node = &init.node;
        let get = |k: &str| dovetail_core::model::label(&node.labels, Sym::new(k));
        let managed = node.node_pool.is_some();
        let offering = match (get(labels::INSTANCE_TYPE), get(labels::ZONE)) {
            (Some(it), Some(zone)) => Some(dovetail_control::cloud::OfferingKey {
                instance_type: it,
                zone,
                capacity_type: init.capacity_type,
            }),
            _ => None,
        };
        let since = if back_dated {
            node.created_at * 1000
        } else {
            now_ms
        };
        let pool = node
            .node_pool
            .and_then(|p| self.world.state.node_pool(p))
            .cloned();
        // Its NodeClaim's class sizes it, else its NodePool's, as a NodeClaim
        // made for it below gets.
        let node_class = init
            .claim
            .as_ref()
            .map(|c| c.node_class_ref.name.clone())
            .or_else(|| pool.as_ref().map(|p| p.node_class_ref.name.clone()));
        let instance = if managed {
            let key = offering?;
            Some(self.cloud.start(
                key,
                (node.name, node.node_pool),
                node_class.as_deref(),
                &[],
                self.now,
                Some((since, init.ready)),
            )?)
        } else {
            offering.and_then(|key| {
                self.cloud
                    .start_unmanaged(key, node.name, self.now, (since, init.ready))
            })
        };
        let initialized = node.initialized && init.ready;
        if managed && let Some(instance) = &instance {
            let key = offering.expect("a managed node has an offering");
            let mut claim = match init.claim.clone() {
                Some(c) => c,
                None => NodeClaim {
                    name: node.name,
                    node_pool: node.node_pool,
                    labels: node.labels.clone(),
                    annotations: Vec::new(),
                    requirements: Vec::new(),
                    requests: Default::default(),
                    taints: pool.as_ref().map(|p| p.taints.clone()).unwrap_or_default(),
                    startup_taints: pool
                        .as_ref()
                        .map(|p| p.startup_taints.clone())
                        .unwrap_or_default(),
                    node_class_ref: pool
                        .as_ref()
                        .map(|p| p.node_class_ref.clone())
                        .unwrap_or_default(),
                    expire_after: pool.as_ref().and_then(|p| p.expire_after),
                    termination_grace_period: None,
                    launch: Vec::new(),
                    node_pool_hash: node.node_pool_hash,
                    created_ms: node.created_at * 1000,
                    deletion_ms: None,
                    finalizer: true,
                    status: NodeClaimStatus::default(),
                },
            };
            claim.status.provider_id = Some(instance.provider_id.clone());
            claim.status.image_id = instance.image_id.clone();
            claim.status.node_name = Some(node.name);
            claim.status.capacity = instance.capacity.clone();
            claim.status.allocatable = instance.allocatable.clone();
            claim.status.launched = Some(LaunchedOffering {
                instance_type: key.instance_type,
                zone: key.zone,
                capacity_type: key.capacity_type,
                price: instance.price,
            });
            if claim.created_ms == 0 {
                claim.created_ms = since;
            }
            let at = claim.created_ms;
            claim.set_true(ConditionType::Launched, at);
            claim.set_true(ConditionType::Registered, at);
            if initialized {
                claim.set_true(ConditionType::Initialized, at);
            } else if init.claim.is_some() {
                claim.clear_condition(ConditionType::Initialized);
            }
            self.world.state.apply_claim(claim, now_ms);
        }
        let mut n = node.clone();
        n.pods.clear();
        if managed {
            set_label(&mut n.labels, REGISTERED_LABEL, true);
            set_label(&mut n.labels, INITIALIZED_LABEL, initialized);
        }
        n.ready = init.ready;
        n.initialized = initialized;
        if !init.ready && !n.taints.iter().any(|t| t.key.as_str() == NOT_READY_TAINT) {
            n.taints.push(not_ready_taint());
        }
        let id = self
            .world
            .state
            .apply_node(n, instance.map(|i| i.provider_id), managed, now_ms);
        if daemons {
            self.place_daemons(id);
        }
        Some(id)
    }

    /// A NodeClaim launched without a node yet: its instance comes up as a
    /// new one would, and registers after the launch model's time.
    fn launching_claim(&mut self, mut claim: NodeClaim) {
        let now_ms = self.now_ms();
        let Some((instance_type, zone, capacity_type)) = crate::objects::claim_offering(&claim)
        else {
            return;
        };
        let key = dovetail_control::cloud::OfferingKey {
            instance_type,
            zone,
            capacity_type,
        };
        let Some(instance) = self.cloud.start(
            key,
            (claim.name, claim.node_pool),
            Some(&claim.node_class_ref.name),
            &claim.requirements,
            self.now,
            None,
        ) else {
            return;
        };
        claim.node_pool_hash = claim
            .node_pool
            .and_then(|p| self.world.state.node_pool(p))
            .map(|p| p.template_hash());
        claim.status.provider_id = Some(instance.provider_id.clone());
        claim.status.image_id = instance.image_id.clone();
        claim.status.node_name = None;
        claim.status.capacity = instance.capacity.clone();
        claim.status.allocatable = instance.allocatable.clone();
        claim.status.launched = Some(LaunchedOffering {
            instance_type,
            zone,
            capacity_type,
            price: instance.price,
        });
        if claim.created_ms == 0 {
            claim.created_ms = now_ms;
        }
        for kind in [ConditionType::Registered, ConditionType::Initialized] {
            claim.clear_condition(kind);
        }
        claim.set_true(ConditionType::Launched, claim.created_ms);
        self.world.state.apply_claim(claim, now_ms);
    }

    /// Who keeps a pod of a manifest: the scenario's workload that owns it,
    /// a controller it does not model, nobody; `None` for DaemonSet and
    /// static pods, which their DaemonSet or kubelet keep.
    pub(crate) fn owner_of(&self, pod: &model::Pod) -> Option<Owner> {
        let Some(o) = pod.owner else {
            return Some(Owner::Bare);
        };
        let workload = |kinds: &[WorkloadKind]| {
            self.scenario.deployments.iter().position(|d| {
                kinds.contains(&d.kind)
                    && d.name == o.name.as_str()
                    && d.template.namespace == pod.namespace
            })
        };
        Some(match o.kind {
            OwnerKind::DaemonSet | OwnerKind::Node => return None,
            OwnerKind::ReplicaSet => {
                workload(&[WorkloadKind::Deployment, WorkloadKind::ReplicaSet])
                    .map_or(Owner::Other, Owner::Deployment)
            }
            OwnerKind::StatefulSet => {
                workload(&[WorkloadKind::StatefulSet]).map_or(Owner::Other, Owner::Deployment)
            }
            OwnerKind::Job => self
                .scenario
                .jobs
                .iter()
                .position(|j| j.name == o.name.as_str() && j.template.namespace == pod.namespace)
                .map_or(Owner::Other, Owner::Job),
            OwnerKind::Other => Owner::Other,
        })
    }

    /// A pod of a manifest, bound to its node (pending when the node is not
    /// there) or pending, kept by its owner.
    pub(crate) fn add_pod(&mut self, init: InitialPod, now_ms: u64) -> PodId {
        let owner = self.owner_of(&init.pod);
        let node = init.node.and_then(|n| self.world.state.node_id(n));
        let mut pod = init.pod;
        if node.is_none() {
            pod.phase = model::PodPhase::Pending;
        } else if pod.started_at == 0 {
            pod.started_at = now_ms / 1000;
        }
        let id = self.world.state.apply_pod(pod, node, now_ms);
        if node.is_some() {
            let started = self.world.state.pod(id).map_or(0, |e| e.pod.started_at);
            self.world.state.set_pod_running(id, started);
            self.ran.insert(id);
        }
        self.world.sched_dirty = true;
        let Some(owner) = owner else { return id };
        self.world.owners.insert(id, owner);
        match owner {
            Owner::Deployment(d) => {
                self.revisions.insert(id, self.workload_revision[d]);
            }
            Owner::Job(j) => {
                self.jobs[j].created += 1;
                self.jobs[j].active += 1;
                if node.is_some() {
                    // It has run since it started.
                    let ran_ms = now_ms.saturating_sub(
                        self.world.state.pod(id).map_or(0, |e| e.pod.started_at) * 1000,
                    );
                    let f = self.now
                        + self.scenario.jobs[j]
                            .duration_ms
                            .saturating_sub(ran_ms)
                            .max(TICK_MS);
                    self.world.finishes.insert(id, f);
                    self.running_jobs.insert((f, id));
                }
            }
            Owner::Other | Owner::Bare => {}
        }
        id
    }

    /// Runs to the end; `watch` sees every event as it happens.
    pub fn run(self, watch: &mut dyn FnMut(&SimEvent)) -> Report {
        self.run_with_progress(watch, &mut |_| {})
    }

    /// As [`run`](Self::run); `progress` gets the share of simulated time
    /// done, once per simulated minute.
    pub fn run_with_progress(
        mut self,
        watch: &mut dyn FnMut(&SimEvent),
        progress: &mut dyn FnMut(f64),
    ) -> Report {
        while self.now <= self.scenario.duration_ms {
            self.step();
            for e in self.events.drain(..) {
                watch(&e);
            }
            if self.now.is_multiple_of(60_000) {
                progress(self.now as f64 / self.scenario.duration_ms.max(1) as f64);
            }
            self.now += TICK_MS;
        }
        progress(1.0);
        self.finish()
    }

    fn step(&mut self) {
        self.world.tick();
        self.apply_events();
        self.rollouts();
        self.diurnal();
        self.jobs();
        self.shortages_end();
        self.instances();
        self.world.update_pdb_status();
        self.kube_scheduler();
        let now_ms = self.now_ms();
        let decisions = self
            .autoscaler
            .reconcile(&mut self.world, &mut self.cloud, now_ms);
        self.record(decisions);
        self.account();
    }

    // ---- pods ----------------------------------------------------------

    pub(crate) fn new_pod(&mut self, owner: Owner, node: Option<NodeId>) -> PodId {
        let (template, name, kind, ordinal) = match owner {
            Owner::Deployment(d) => {
                let d = &self.scenario.deployments[d];
                let (kind, ordinal) = match d.kind {
                    WorkloadKind::StatefulSet => (OwnerKind::StatefulSet, true),
                    WorkloadKind::Deployment | WorkloadKind::ReplicaSet => {
                        (OwnerKind::ReplicaSet, false)
                    }
                };
                (&d.template, &d.name, kind, ordinal)
            }
            Owner::Job(j) => {
                let j = &self.scenario.jobs[j];
                (&j.template, &j.name, OwnerKind::Job, false)
            }
            Owner::Other | Owner::Bare => {
                unreachable!("only the scenario's workloads make pods")
            }
        };
        let mut pod = template.clone();
        pod.owner = Some(model::Owner {
            kind,
            name: Sym::new(name),
        });
        pod.name = if ordinal {
            // A StatefulSet's pods are named by ordinal, the lowest free.
            let state = &self.world.state;
            (0..)
                .map(|i| Sym::new(&format!("{name}-{i}")))
                .find(|n| {
                    state
                        .pod_id(&model::PodKey {
                            namespace: pod.namespace,
                            name: *n,
                        })
                        .is_none()
                })
                .expect("a free ordinal")
        } else {
            Sym::new(&format!("{name}-{:05}", self.pod_serial))
        };
        pod.created = self.pod_serial as u64;
        if let Some(n) = node.and_then(|n| self.world.state.node(n)) {
            pod.started_at = n.node.created_at;
            pod.phase = model::PodPhase::Running;
        }
        self.pod_serial += 1;
        let now_ms = self.now_ms();
        let key = pod.key();
        let id = self.world.state.apply_pod(pod, node, now_ms);
        if let Some(n) = node.and_then(|n| self.world.state.node(n)) {
            let name = n.node.name;
            self.placed(key, name);
            self.ran.insert(id);
        }
        self.world.owners.insert(id, owner);
        if let Owner::Deployment(d) = owner {
            self.revisions.insert(id, self.workload_revision[d]);
        }
        self.world.sched_dirty = true;
        id
    }

    /// The pod leaves for good (scale-down, Job completion).
    pub(crate) fn remove_pod(&mut self, id: PodId) {
        let now_ms = self.now_ms();
        self.world.state.delete_pod(id, now_ms);
        self.world.owners.remove(&id);
        self.world.finishes.remove(&id);
        self.revisions.remove(&id);
        self.ran.remove(&id);
        self.world.sched_dirty = true;
    }

    /// Whether the count changed.
    pub(crate) fn set_replicas(&mut self, d: usize, replicas: usize) -> bool {
        let mut live = self.live_pods(d);
        if live.len() == replicas {
            return false;
        }
        if live.len() < replicas {
            for _ in live.len()..replicas {
                self.new_pod(Owner::Deployment(d), None);
            }
        } else {
            // Unscheduled pods go first, then the youngest, as a ReplicaSet
            // scales down.
            let state = &self.world.state;
            live.sort_by_key(|&p| {
                (
                    state.pod(p).is_some_and(|e| e.node.is_some()),
                    std::cmp::Reverse(p),
                )
            });
            for &p in live.iter().take(live.len() - replicas) {
                self.remove_pod(p);
            }
        }
        true
    }

    fn apply_events(&mut self) {
        while let Some(e) = self.scenario.events.get(self.next_event).cloned() {
            if e.at_ms > self.now {
                break;
            }
            self.next_event += 1;
            match e.kind {
                EventKind::Scale {
                    deployment,
                    replicas,
                } => {
                    if let Some(d) = self
                        .scenario
                        .deployments
                        .iter()
                        .position(|d| d.name == deployment)
                    {
                        self.set_replicas(d, replicas);
                        self.events.push(SimEvent::Scaled {
                            at_ms: self.now,
                            deployment,
                            replicas,
                        });
                    }
                }
                EventKind::Interruption {
                    count,
                    instance_types,
                    zones,
                } => self.interrupt(count, &instance_types, &zones),
                EventKind::Apply(m) => self.apply(*m),
                EventKind::Delete(object) => self.delete(&object),
                EventKind::CapacityShortage {
                    for_ms,
                    instance_types,
                    zones,
                    capacity_type,
                } => self.cloud.shortages.push(Shortage {
                    until: self.now + for_ms,
                    instance_types,
                    zones,
                    capacity_type,
                }),
            }
        }
    }

    fn diurnal(&mut self) {
        for d in 0..self.scenario.deployments.len() {
            let Some(curve) = self.scenario.deployments[d].diurnal.clone() else {
                continue;
            };
            if self.now < self.next_diurnal[d] {
                continue;
            }
            self.next_diurnal[d] = self.now + curve.step_ms.max(TICK_MS);
            if self.now == 0 {
                continue;
            }
            let replicas = curve.replicas_at(self.now);
            if self.set_replicas(d, replicas) {
                self.events.push(SimEvent::Scaled {
                    at_ms: self.now,
                    deployment: self.scenario.deployments[d].name.clone(),
                    replicas,
                });
            }
        }
    }

    fn jobs(&mut self) {
        for j in 0..self.jobs.len() {
            if self.scenario.jobs[j].at_ms == self.now && self.jobs[j].created == 0 {
                self.top_up_job(j);
            }
        }
        while let Some(&(f, p)) = self.running_jobs.first() {
            if f > self.now {
                break;
            }
            self.running_jobs.pop_first();
            // Evicted since it started: it starts over when bound again.
            if self.world.finishes.get(&p) != Some(&f) {
                continue;
            }
            let Some(&Owner::Job(j)) = self.world.owners.get(&p) else {
                continue;
            };
            self.remove_pod(p);
            self.jobs[j].completed += 1;
            self.jobs[j].active -= 1;
            if self.jobs[j].completed == self.scenario.jobs[j].completions {
                self.report.totals.jobs_completed += 1;
            }
            self.top_up_job(j);
        }
    }

    pub(crate) fn top_up_job(&mut self, j: usize) {
        if self.deleted_jobs.contains(&j) {
            return;
        }
        let spec = &self.scenario.jobs[j];
        let (completions, parallelism) = (spec.completions, spec.parallelism);
        while self.jobs[j].active < parallelism && self.jobs[j].created < completions {
            self.jobs[j].created += 1;
            self.jobs[j].active += 1;
            self.new_pod(Owner::Job(j), None);
        }
    }

    // ---- instances, kubelet, DaemonSets ---------------------------------

    fn shortages_end(&mut self) {
        let now = self.now;
        self.cloud.shortages.retain(|s| s.until > now);
    }

    /// Instances come up as nodes (the kubelet registers them with their
    /// NodeClaim's labels and taints, NotReady), become Ready (start-up
    /// agents then lift the start-up taints), and reclaimed ones go.
    fn instances(&mut self) {
        let now = self.now;
        let now_ms = self.now_ms();
        let mut register = Vec::new();
        let mut ready = Vec::new();
        let mut reclaim = Vec::new();
        let mut settled = Vec::new();
        for &id in &self.cloud.busy {
            let i = &self.cloud.instances[&id];
            if i.reclaim_at.is_some_and(|t| t <= now) {
                reclaim.push(id);
                continue;
            }
            let pid = &i.instance.provider_id;
            let node = self.world.state.node_by_provider_id(pid);
            if node.is_none() && i.running_at <= now {
                register.push(id);
            }
            let is_ready = node
                .and_then(|n| self.world.state.node(n))
                .is_some_and(|n| n.node.ready);
            if i.ready_at <= now && node.is_some() && !is_ready {
                ready.push(id);
            }
            // Nothing more will happen to it until it is reclaimed.
            if i.reclaim_at.is_none() && i.ready_at <= now && node.is_some() {
                settled.push(id);
            }
        }
        for id in settled {
            self.cloud.busy.remove(&id);
        }
        for id in register {
            self.register(id, now_ms);
        }
        for id in ready {
            let pid = self.cloud.instances[&id].instance.provider_id.clone();
            let Some(n) = self.world.state.node_by_provider_id(&pid) else {
                continue;
            };
            let startup: Vec<Taint> = self
                .world
                .state
                .claim_of_node(self.world.state.node(n).expect("indexed"))
                .and_then(|c| self.world.state.claim(c))
                .map(|c| c.startup_taints.clone())
                .unwrap_or_default();
            self.world.state.set_node_ready(n, true);
            self.world.state.update_node(n, |e| {
                e.node
                    .taints
                    .retain(|t| t.key.as_str() != NOT_READY_TAINT && !startup.contains(t));
            });
            self.world.sched_dirty = true;
            let name = self.world.state.node(n).expect("indexed").node.name;
            self.events.push(SimEvent::NodeReady { at_ms: now, name });
        }
        // DaemonSet pods land once the node is registered with Dovetail, and
        // again when its labels change (`karpenter.sh/initialized`, say).
        let registered = |s: &Self, id: NodeId| {
            s.world
                .state
                .node(id)
                .is_none_or(|n| !n.has_taint(UNREGISTERED_TAINT))
        };
        let fresh: Vec<NodeId> = self
            .awaiting_daemons
            .iter()
            .copied()
            .filter(|&id| registered(self, id))
            .collect();
        for id in fresh {
            self.awaiting_daemons.remove(&id);
            self.place_daemons(id);
        }
        for id in std::mem::take(&mut self.world.relabelled) {
            if !self.awaiting_daemons.contains(&id) && registered(self, id) {
                self.place_daemons(id);
            }
        }
        for id in reclaim {
            let pid = self.cloud.instances[&id].instance.provider_id.clone();
            self.cloud.terminate(id, now);
            if let Some(n) = self.world.state.node_by_provider_id(&pid) {
                self.world.state.set_node_ready(n, false);
                let pods = self.world.state.node(n).expect("indexed").pods.clone();
                for p in pods {
                    self.world.lose_pod(p, now_ms, true);
                }
            }
        }
    }

    /// The kubelet of instance `id` registers its node.
    fn register(&mut self, id: u64, now_ms: u64) {
        let i = &self.cloud.instances[&id].instance;
        let claim = i
            .node_claim
            .and_then(|c| self.world.state.claim_by_name(c))
            .filter(|c| c.status.provider_id.as_deref() == Some(i.provider_id.as_str()));
        let name = claim.map_or_else(
            || Sym::new(&format!("ip-{:x}", id & 0xffff_ffff)),
            |c| c.name,
        );
        let mut l = i.labels.clone();
        let mut taints = vec![
            Taint {
                key: Sym::new(UNREGISTERED_TAINT),
                value: None,
                effect: TaintEffect::NoExecute,
            },
            not_ready_taint(),
        ];
        if let Some(c) = claim {
            l.extend(c.labels.iter().copied());
            taints.extend(c.taints.iter().copied());
            taints.extend(c.startup_taints.iter().copied());
        }
        l.push((Sym::new(labels::HOSTNAME), name));
        // The user data already gave the kubelet the taints.
        l.push((Sym::new(DO_NOT_SYNC_TAINTS_LABEL), Sym::new("true")));
        let node = Node {
            name,
            labels: dovetail_control::snapshot::sort_labels(l),
            taints,
            capacity: i.capacity.clone(),
            allocatable: i.allocatable.clone(),
            created_at: now_ms / 1000,
            ..Node::default()
        };
        if let Some(&r) = claim.and_then(|c| self.launch_index.get(&c.name)) {
            self.report.launches[r].node = Some(name.to_string());
        }
        let pid = i.provider_id.clone();
        let id = self.world.state.apply_node(node, Some(pid), false, now_ms);
        self.awaiting_daemons.insert(id);
    }

    /// The DaemonSet controller: a pod of every DaemonSet that runs on the
    /// node, by the scheduler's own rule.
    pub(crate) fn place_daemons(&mut self, id: NodeId) {
        let Some(entry) = self.world.state.node(id) else {
            return;
        };
        let mut node = entry.node.clone();
        // DaemonSet pods tolerate the start-up conditions of a node.
        node.taints
            .retain(|t| !labels::is_ephemeral_taint(t.key.as_str()));
        let now_ms = self.now_ms();
        let has: Vec<(Sym, Sym)> = entry
            .pods
            .iter()
            .filter_map(|p| self.world.state.pod(*p))
            .filter_map(|e| e.pod.daemon_set().map(|d| (e.pod.namespace, d)))
            .collect();
        for ds in self.world.state.daemon_sets().to_vec() {
            if !daemon_schedules_on(&ds.pod, &node) || has.contains(&(ds.pod.namespace, ds.name)) {
                continue;
            }
            let mut pod = ds.pod.clone();
            pod.name = Sym::new(&format!("{}-{}", ds.name, node.name));
            pod.owner = Some(model::Owner {
                kind: OwnerKind::DaemonSet,
                name: ds.name,
            });
            pod.phase = model::PodPhase::Running;
            pod.started_at = now_ms / 1000;
            self.placed(pod.key(), node.name);
            self.world.state.apply_pod(pod, Some(id), now_ms);
        }
    }

    fn interrupt(&mut self, count: usize, instance_types: &[Sym], zones: &[Sym]) {
        let state = &self.world.state;
        let mut candidates: Vec<(u64, NodeId)> = self
            .cloud
            .live()
            .filter(|i| {
                let it = &i.instance;
                // Dovetail's spot nodes: others are their node groups' to
                // replace, which the model does not do.
                it.capacity_type == CapacityType::Spot
                    && it.node_claim.is_some()
                    && i.reclaim_at.is_none()
                    && (instance_types.is_empty() || instance_types.contains(&it.instance_type))
                    && (zones.is_empty() || zones.contains(&it.zone))
            })
            .filter_map(|i| {
                let n = state.node_by_provider_id(&i.instance.provider_id)?;
                let e = state.node(n)?;
                let leaving = dovetail_control::state::node_leaving(e)
                    || state
                        .claim_of_node(e)
                        .and_then(|c| state.claim(c))
                        .is_some_and(|c| c.deleting());
                (e.node.ready && !leaving)
                    .then(|| instance_id(&i.instance.provider_id).map(|id| (id, n)))
                    .flatten()
            })
            .collect();
        // A seeded shuffle: which nodes AWS reclaims is not ours to choose.
        for i in (1..candidates.len()).rev() {
            let j = (self.rng.next_u64() % (i as u64 + 1)) as usize;
            candidates.swap(i, j);
        }
        let warning = self.scenario.models.interruption_warning_ms;
        let now_ms = self.now_ms();
        for &(id, n) in candidates.iter().take(count) {
            let i = self.cloud.instances[&id].instance.clone();
            let terminates = self.now + warning;
            self.cloud.reclaim(id, terminates);
            let entry = self.world.state.node(n).expect("indexed");
            let name = entry.node.name;
            let pods = entry
                .pods
                .iter()
                .filter(|p| self.world.owners.contains_key(p))
                .count();
            self.report.totals.interruptions += 1;
            self.report.decisions.push(DecisionRecord {
                at_seconds: self.now / 1000,
                kind: "interruption".into(),
                nodes: vec![name.to_string()],
                launched: Vec::new(),
                savings_per_hour: 0.0,
                pods,
                decided_by: "aws".into(),
                reason: format!(
                    "spot interruption notice for {} in {}; terminates in {} s",
                    i.instance_type,
                    i.zone,
                    warning / 1000
                ),
            });
            self.events.push(SimEvent::Interrupted {
                at_ms: self.now,
                name,
                terminates_at_ms: terminates,
            });
            self.why
                .entry(name)
                .or_insert_with(|| "spot interruption".into());
            let message = Interruption {
                kind: InterruptionKind::SpotInterruption,
                instance_id: format!("i-{id:016x}"),
            };
            let decisions = self
                .autoscaler
                .interruption(&mut self.world, &message, now_ms);
            self.record(decisions);
        }
    }

    // ---- kube-scheduler ---------------------------------------------------

    /// kube-scheduler: pending pods onto Ready nodes with room whose taints
    /// they tolerate.
    fn kube_scheduler(&mut self) {
        if !self.world.sched_dirty || self.world.state.pending().is_empty() {
            return;
        }
        self.world.sched_dirty = false;
        self.bind_nominated();
        if self.world.state.pending().is_empty() {
            return;
        }
        let state = &self.world.state;
        let mut snapshot = Snapshot::new(self.cloud_catalog());
        snapshot.daemon_sets = state.daemon_sets().to_vec();
        snapshot.namespaces = state.namespaces().to_vec();
        snapshot.settings = state.settings().clone();
        let mut ids = Vec::new();
        for (id, e) in state.nodes() {
            if !e.node.ready
                || dovetail_control::state::node_leaving(e)
                || e.has_taint(UNREGISTERED_TAINT)
            {
                continue;
            }
            let mut node = e.node.clone();
            node.initialized = true;
            node.pods = e
                .pods
                .iter()
                .filter_map(|p| state.pod(*p))
                .map(|p| p.pod.clone())
                .collect();
            snapshot.nodes.push(node);
            ids.push(id);
        }
        if snapshot.nodes.is_empty() {
            return;
        }
        let pending: Vec<PodId> = state.pending().iter().copied().collect();
        let pods: Vec<Pod> = pending
            .iter()
            .filter_map(|&p| state.pod(p))
            .map(|e| Pod::clone(&e.pod))
            .collect();
        let slots: HashMap<Sym, usize> = snapshot
            .nodes
            .iter()
            .enumerate()
            .map(|(slot, n)| (n.name, slot))
            .collect();
        let plan = solve(&snapshot, &pods);
        let mut bindings = plan.bindings;
        // kube-scheduler scores a PreferNoSchedule taint, it does not filter
        // on it: a pod that fits nowhere else goes to such a node.
        let soft = |n: &dovetail_core::model::Node| {
            n.taints
                .iter()
                .any(|t| t.effect == TaintEffect::PreferNoSchedule)
        };
        if !plan.unschedulable.is_empty() && snapshot.nodes.iter().any(soft) {
            let by_key: HashMap<_, _> = pods.iter().map(|p| (p.key(), p)).collect();
            for b in &bindings {
                if let (Some(&slot), Some(&pod)) = (slots.get(&b.node), by_key.get(&b.pod)) {
                    snapshot.nodes[slot].pods.push(Arc::new(pod.clone()));
                }
            }
            for n in &mut snapshot.nodes {
                n.taints
                    .retain(|t| t.effect != TaintEffect::PreferNoSchedule);
            }
            let left: Vec<_> = plan
                .unschedulable
                .iter()
                .filter_map(|u| by_key.get(&u.pod).map(|&p| p.clone()))
                .collect();
            bindings.extend(solve(&snapshot, &left).bindings);
        }
        for b in &bindings {
            if let (Some(p), Some(&slot)) = (self.world.state.pod_id(&b.pod), slots.get(&b.node)) {
                self.bind(p, ids[slot]);
            }
        }
    }

    /// Pods go to the node Dovetail nominated them to, when it is Ready and
    /// they still fit there, as kube-scheduler tries a pod's nominated node
    /// first. Their constraints were checked when they were planned there.
    fn bind_nominated(&mut self) {
        let state = &self.world.state;
        let mut binds = Vec::new();
        // Requests (and pod count) bound to each node in this pass.
        let mut added: HashMap<NodeId, (Resources, i64)> = HashMap::new();
        for &p in state.pending() {
            let Some(e) = state.pod(p) else { continue };
            let node = match e.nominated {
                Some(Nominee::Node(n)) => Some(n),
                Some(Nominee::Claim(c)) => state.claim(c).and_then(|c| state.node_of_claim(c)),
                None => None,
            };
            let Some(n) = node else { continue };
            let Some(entry) = state.node(n) else { continue };
            if !entry.node.ready
                || dovetail_control::state::node_leaving(entry)
                || untolerated_hard(&entry.node.taints, &e.pod.tolerations)
            {
                continue;
            }
            let (extra, count) = added.entry(n).or_default();
            let mut want = entry.requested.plus(extra).plus(&e.pod.requests);
            want.pods = entry.pods.len() as i64 + *count + 1;
            if !want.fits_in(&entry.node.allocatable) {
                continue;
            }
            extra.add(&e.pod.requests);
            *count += 1;
            binds.push((p, n));
        }
        for (p, n) in binds {
            self.bind(p, n);
        }
    }

    fn bind(&mut self, p: PodId, node: NodeId) {
        let now_ms = self.now_ms();
        let since = self
            .world
            .state
            .pod(p)
            .map_or(now_ms, |e| e.pending_since_ms);
        self.world.state.bind(p, node, now_ms);
        if let (Some(e), Some(n)) = (self.world.state.pod(p), self.world.state.node(node)) {
            let (key, name) = (e.pod.key(), n.node.name);
            self.placed(key, name);
        }
        self.world.state.set_pod_running(p, now_ms / 1000);
        self.ran.insert(p);
        self.latencies.push((now_ms - since) as f64 / 1000.0);
        if let Some(&Owner::Job(j)) = self.world.owners.get(&p) {
            let f = self.now + self.scenario.jobs[j].duration_ms;
            self.world.finishes.insert(p, f);
            self.running_jobs.insert((f, p));
        }
    }

    /// A pod bound to a node, for the report.
    fn placed(&mut self, pod: model::PodKey, node: Sym) {
        self.report
            .pods
            .entry(pod.to_string())
            .or_default()
            .push((self.now / 1000, node.to_string()));
    }

    fn cloud_catalog(&self) -> std::sync::Arc<dovetail_core::catalog::Catalog> {
        self.scenario.cluster.catalog.clone()
    }

    // ---- what the autoscaler decided --------------------------------------

    fn record(&mut self, decisions: Vec<Decision>) {
        let at_seconds = self.now / 1000;
        let mut open: Option<Open> = None;
        for d in decisions {
            match d {
                Decision::Provisioned {
                    pods,
                    claims,
                    decided_by,
                    fallback,
                } => {
                    self.close(open.take());
                    for c in &claims {
                        self.launch_record(c, "provisioning");
                    }
                    open = Some(self.open(
                        "provisioning",
                        claims.iter().map(|c| c.name).collect(),
                        pods,
                        decided_by,
                        format!("{pods} pending pod(s)"),
                        fallback,
                    ));
                }
                Decision::ScaledUp {
                    claims,
                    pods,
                    decided_by,
                    reason,
                } => {
                    self.close(open.take());
                    for c in &claims {
                        self.launch_record(c, "scale-up");
                    }
                    let names = claims.iter().map(|c| c.name).collect();
                    open = Some(self.open("scale-up", names, pods, decided_by, reason, None));
                }
                Decision::CommandStarted {
                    command,
                    replacements,
                } => {
                    if let Some(p) = self.proposal.take() {
                        self.outcome(p, Outcome::Started);
                        self.started.insert(command.nodes.clone(), p);
                    }
                    let purpose = format!("{:?}", command.method);
                    for (&name, plan) in replacements.iter().zip(&command.replacements) {
                        self.launch_record(&CreatedClaim::planned(name, plan), &purpose);
                    }
                }
                Decision::Pass(pass) => self.pass_record(*pass),
                Decision::CommandInvalidated { why, .. } => {
                    if let Some(p) = self.proposal.take() {
                        self.outcome(p, Outcome::Invalidated(why));
                    }
                }
                Decision::CommandAbandoned { command, why } => {
                    if let Some(p) = self.started.remove(&command.nodes) {
                        self.outcome(p, Outcome::Abandoned(why.to_string()));
                    }
                }
                Decision::Launched { claim, offering } => {
                    let launched = OfferingRecord {
                        instance_type: offering.instance_type.to_string(),
                        zone: offering.zone.to_string(),
                        capacity_type: offering.capacity_type,
                        price: offering.price,
                    };
                    if let Some(&r) = self.launch_index.get(&claim) {
                        self.report.launches[r].launched = Some(launched.clone());
                    }
                    if let Some(o) = &open
                        && o.claims.contains(&claim)
                    {
                        self.report.decisions[o.index].launched.push(launched);
                    }
                }
                Decision::ClaimFailed { claim, failure } => {
                    if let Some(&r) = self.launch_index.get(&claim) {
                        self.report.launches[r].failed = Some(claim_failure(&failure));
                    }
                    if let Some(o) = &mut open
                        && o.claims.contains(&claim)
                        && matches!(failure, ClaimFailure::InsufficientCapacity(_))
                    {
                        o.failed += 1;
                    }
                }
                Decision::Disrupting {
                    command,
                    replacements,
                } => {
                    if let Some(p) = self.started.remove(&command.nodes) {
                        self.outcome(p, Outcome::Disrupted);
                    }
                    let why = format!(
                        "{:?} ({}): {} [{}]",
                        command.method, command.reason, command.policy_reason, command.decided_by
                    );
                    self.report.totals.disruptions += 1;
                    self.report.decisions.push(DecisionRecord {
                        at_seconds,
                        kind: format!("{:?}", command.method),
                        nodes: command.nodes.iter().map(|n| n.to_string()).collect(),
                        launched: replacements
                            .iter()
                            .zip(&command.replacements)
                            .filter_map(|(name, plan)| {
                                self.launch_index
                                    .get(name)
                                    .and_then(|&r| self.report.launches[r].launched.clone())
                                    .or_else(|| plan.offerings.first().map(OfferingRecord::from))
                            })
                            .collect(),
                        savings_per_hour: command.savings_per_hour,
                        pods: command.pods_evicted.len(),
                        decided_by: command.decided_by.clone(),
                        reason: format!("{}: {}", command.reason, command.policy_reason),
                    });
                    self.events.push(SimEvent::Disruption {
                        at_ms: self.now,
                        summary: why.clone(),
                    });
                    for n in &command.nodes {
                        self.why.entry(*n).or_insert_with(|| why.clone());
                    }
                }
                Decision::Expired { claim, after } => {
                    let state = &self.world.state;
                    let node = state
                        .claim_by_name(claim)
                        .and_then(|c| state.node_of_claim(c))
                        .and_then(|n| state.node(n));
                    let name = node.map_or(claim, |n| n.node.name);
                    let pods = node.map_or(0, |n| {
                        n.pods
                            .iter()
                            .filter(|p| self.world.owners.contains_key(p))
                            .count()
                    });
                    let reason =
                        format!("Expired: older than its expireAfter {}s", after.as_secs());
                    self.report.totals.disruptions += 1;
                    self.report.decisions.push(DecisionRecord {
                        at_seconds,
                        kind: "Expiration".into(),
                        nodes: vec![name.to_string()],
                        launched: Vec::new(),
                        savings_per_hour: 0.0,
                        pods,
                        decided_by: "engine".into(),
                        reason: reason.clone(),
                    });
                    let why = format!("Expiration ({reason})");
                    self.events.push(SimEvent::Disruption {
                        at_ms: self.now,
                        summary: why.clone(),
                    });
                    self.why.entry(name).or_insert(why);
                }
                Decision::ScaledDown {
                    nodes,
                    pods,
                    savings_per_hour,
                    decided_by,
                    reason,
                } => {
                    self.report.totals.disruptions += 1;
                    for n in &nodes {
                        self.why.insert(*n, reason.clone());
                    }
                    self.report.decisions.push(DecisionRecord {
                        at_seconds,
                        kind: "scale-down".into(),
                        nodes: nodes.iter().map(|n| n.to_string()).collect(),
                        launched: Vec::new(),
                        savings_per_hour,
                        pods,
                        decided_by,
                        reason,
                    });
                }
                Decision::Unschedulable { pods } => {
                    for (pod, reason) in &pods {
                        let workload = self.workload_of(pod);
                        self.unschedulable.add(workload, *pod, reason, at_seconds);
                    }
                }
                Decision::Terminated { claim, node } => {
                    let Some(name) = node.or(claim) else { continue };
                    let why = self.why.remove(&name);
                    // A NodeClaim given up before its instance started
                    // never was a node.
                    if node.is_some() || self.launched_claim(name) {
                        self.events.push(SimEvent::NodeDeleted {
                            at_ms: self.now,
                            name,
                            why: why.unwrap_or_else(|| "its NodeClaim was deleted".into()),
                        });
                    }
                }
                _ => {}
            }
        }
        self.close(open);
        self.events.append(&mut self.cloud.events);
    }

    fn open(
        &mut self,
        kind: &str,
        claims: Vec<Sym>,
        pods: usize,
        decided_by: String,
        reason: String,
        fallback: Option<String>,
    ) -> Open {
        self.report.decisions.push(DecisionRecord {
            at_seconds: self.now / 1000,
            kind: kind.into(),
            nodes: Vec::new(),
            launched: Vec::new(),
            savings_per_hour: 0.0,
            pods,
            decided_by,
            reason,
        });
        Open {
            index: self.report.decisions.len() - 1,
            claims,
            failed: 0,
            fallback,
            drop_if_empty: kind == "scale-up",
        }
    }

    /// Completes a launch record once its NodeClaims' launches are known.
    fn close(&mut self, open: Option<Open>) {
        let Some(o) = open else { return };
        let r = &mut self.report.decisions[o.index];
        if o.drop_if_empty && r.launched.is_empty() {
            self.report.decisions.remove(o.index);
            return;
        }
        if o.failed > 0 {
            r.reason.push_str(&format!(
                "; {} NodeClaim(s) found no capacity and retry next batch",
                o.failed
            ));
        }
        if let Some(f) = o.fallback {
            r.reason
                .push_str(&format!("; policy failed, built-in chose: {f}"));
        }
    }

    /// A NodeClaim created, for the report's launches.
    fn launch_record(&mut self, claim: &CreatedClaim, purpose: &str) {
        self.launch_index
            .insert(claim.name, self.report.launches.len());
        let key = claim
            .launch
            .iter()
            .map(|o| (o.instance_type, o.zone, o.capacity_type, o.price.to_bits()))
            .collect();
        let lists = &mut self.report.launch_lists;
        let launch_list_index = *self.launch_lists.entry(key).or_insert_with(|| {
            lists.push(claim.launch.iter().map(OfferingRecord::from).collect());
            lists.len() - 1
        });
        self.report.launches.push(LaunchRecord {
            at_seconds: self.now / 1000,
            node_claim: claim.name.to_string(),
            node: None,
            node_pool: claim.node_pool.map(|p| p.to_string()),
            purpose: purpose.into(),
            pods: claim.pods,
            requirements: claim.requirements.clone(),
            launch_list_index,
            launched: None,
            failed: None,
        });
    }

    /// A disruption pass, for the report: budgets, and each node left alone
    /// whose reason is new or changed.
    fn pass_record(&mut self, pass: PassReport) {
        let budgets = pass
            .budgets
            .iter()
            .map(|b| PoolBudget {
                node_pool: b.node_pool.clone(),
                nodes: b.counts.total,
                consuming: b.counts.consuming(),
                allowed: b
                    .reasons
                    .iter()
                    .map(|r| (r.reason.name().to_string(), r.allowed))
                    .collect(),
                error: b.error.as_ref().map(ToString::to_string),
            })
            .collect();
        let reasons = pass
            .exclusions
            .into_iter()
            .map(|e| (e.node, LeftAlone::Excluded(e.reason)))
            .chain(
                pass.unconsolidated
                    .into_iter()
                    .map(|u| (u.node, LeftAlone::Unconsolidated(u.reason))),
            );
        let mut not_consolidated = Vec::new();
        for (node, why) in reasons {
            if self.left_alone.get(&node) == Some(&why) {
                continue;
            }
            not_consolidated.push(NodeReason {
                node: node.to_string(),
                reason: why.to_string(),
            });
            self.left_alone.insert(node, why);
        }
        self.report.passes.push(PassRecord {
            at_seconds: self.now / 1000,
            proposed: pass.proposed.map(|(method, nodes)| ProposedRecord {
                method: format!("{method:?}"),
                nodes: nodes.iter().map(ToString::to_string).collect(),
                outcome: Outcome::Waiting,
            }),
            budgets,
            candidates_evaluated: pass.candidates_evaluated,
            only: pass
                .only
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect(),
            not_consolidated,
        });
        let last = self.report.passes.len() - 1;
        if self.report.passes[last].proposed.is_some() {
            // A new proposal replaces one still waiting, as the queue does.
            self.proposal = Some(last);
        }
    }

    /// What came of the command pass `p` proposed.
    fn outcome(&mut self, p: usize, outcome: Outcome) {
        if let Some(c) = &mut self.report.passes[p].proposed {
            c.outcome = outcome;
        }
    }

    /// Whether the EC2 model launched an instance for `claim`.
    fn launched_claim(&self, claim: Sym) -> bool {
        self.cloud
            .instances
            .values()
            .any(|i| i.instance.node_claim == Some(claim))
    }

    fn account(&mut self) {
        let state = &self.world.state;
        // The first tick with pods and none waiting (0 for a start state
        // whose pods all run).
        if self.report.totals.all_running_after_seconds.is_none()
            && state.pending().is_empty()
            && !self.world.owners.is_empty()
        {
            self.report.totals.all_running_after_seconds = Some(self.now as f64 / 1000.0);
        }
        self.report.totals.cost_usd += self.cloud.live_price * TICK_MS as f64 / 3_600_000.0;
        for (&key, &price) in &self.cloud.live_price_by {
            *self.cost_by.entry(key).or_default() += price * TICK_MS as f64 / 3_600_000.0;
        }
        if self
            .now
            .is_multiple_of(self.scenario.models.sample_every_ms)
        {
            let (mut od, mut spot) = (0, 0);
            for i in self.cloud.live() {
                match i.instance.capacity_type {
                    CapacityType::Spot => spot += 1,
                    _ => od += 1,
                }
            }
            let pending = state.pending().len();
            let running = self.world.owners.len() - pending;
            self.report.timeline.push(Sample {
                at_seconds: self.now / 1000,
                nodes_on_demand: od,
                nodes_spot: spot,
                pending_pods: pending,
                running_pods: running,
                cost_usd: self.report.totals.cost_usd,
                pods_evicted: self.world.pods_evicted,
                disruptions: self.report.totals.disruptions,
            });
        }
    }

    fn finish(mut self) -> Report {
        let end = self.scenario.duration_ms;
        let mut hours = self.cloud.node_hours(end);
        for h in hours.values_mut() {
            *h = (*h * 1e6).round() / 1e6;
        }
        let node_hours = self.cloud.node_hours_by_pool(end);
        let t = &mut self.report.totals;
        t.cost_by_node_pool = node_hours
            .into_iter()
            .map(|((pool, capacity_type), h)| CostShare {
                node_pool: pool.map(|p| p.to_string()),
                capacity_type,
                cost_usd: self
                    .cost_by
                    .get(&(pool, capacity_type))
                    .copied()
                    .unwrap_or(0.0)
                    .max(0.0),
                node_hours: (h * 1e6).round() / 1e6,
            })
            .collect();
        t.node_hours_by_instance_type = hours;
        t.nodes_launched = self.cloud.launched;
        t.nodes_terminated = self
            .cloud
            .instances
            .values()
            .filter(|i| i.terminated_at.is_some())
            .count();
        t.peak_nodes = self.cloud.peak;
        t.insufficient_capacity_errors = self.cloud.insufficient_capacity_errors;
        t.pods_evicted = self.world.pods_evicted;
        t.pending_at_end = self.world.state.pending().len();
        // A pod still pending waited until the end at least: leaving it out
        // would show a run where nothing ever fit as pending for 0s.
        let end_ms = self.start_ms + end;
        let mut l = std::mem::take(&mut self.latencies);
        for &p in self.world.state.pending() {
            let Some(e) = self.world.state.pod(p) else {
                continue;
            };
            l.push(end_ms.saturating_sub(e.pending_since_ms) as f64 / 1000.0);
            if !self.ran.contains(&p) {
                t.pods_never_ran += 1;
                self.unschedulable.never_ran(&e.pod.key());
            }
        }
        l.sort_by(f64::total_cmp);
        t.pending_p50_seconds = percentile(&l, 0.50);
        t.pending_p95_seconds = percentile(&l, 0.95);
        t.pending_p99_seconds = percentile(&l, 0.99);
        t.pending_max_seconds = l.last().copied().unwrap_or(0.0);
        self.report.unschedulable = self.unschedulable.into_records();
        self.report
    }

    /// The workload `pod` belongs to, as the report names it (its owner's
    /// name is already interned on the pod: no lookup by text per pod).
    fn workload_of(&self, pod: &model::PodKey) -> Workload {
        let state = &self.world.state;
        let id = state.pod_id(pod);
        let owner = id.and_then(|id| state.pod(id)).and_then(|e| e.pod.owner);
        let Some(owner) = owner else {
            return Workload {
                kind: "Pod",
                namespace: pod.namespace,
                name: pod.name,
            };
        };
        let kind = match (id.and_then(|id| self.world.owners.get(&id)), owner.kind) {
            (Some(Owner::Deployment(d)), _) => match self.scenario.deployments[*d].kind {
                WorkloadKind::Deployment => "Deployment",
                WorkloadKind::ReplicaSet => "ReplicaSet",
                WorkloadKind::StatefulSet => "StatefulSet",
            },
            (_, OwnerKind::ReplicaSet) => "ReplicaSet",
            (_, OwnerKind::StatefulSet) => "StatefulSet",
            (_, OwnerKind::Job) => "Job",
            (_, OwnerKind::DaemonSet) => "DaemonSet",
            (_, OwnerKind::Node) => "Node",
            (_, OwnerKind::Other) => "Owner",
        };
        Workload {
            kind,
            namespace: pod.namespace,
            name: owner.name,
        }
    }
}

/// Why a NodeClaim was given up, in a sentence.
fn claim_failure(failure: &ClaimFailure) -> String {
    match failure {
        ClaimFailure::InsufficientCapacity(tried) => format!(
            "insufficient capacity: none of the {} offering(s) tried had any",
            tried.len()
        ),
        ClaimFailure::NodeClassNotReady(why) => format!("node class not ready: {why}"),
        ClaimFailure::LaunchTimeout(why) => {
            format!("not launched within the launch timeout: {why}")
        }
        ClaimFailure::RegistrationTimeout => {
            "launched, but no node registered within the registration timeout".into()
        }
    }
}

/// Whether a NoSchedule or NoExecute taint is not tolerated.
fn untolerated_hard(taints: &[Taint], tolerations: &[dovetail_core::model::Toleration]) -> bool {
    taints
        .iter()
        .filter(|t| t.effect != TaintEffect::PreferNoSchedule)
        .any(|t| !tolerations.iter().any(|tol| tol.tolerates(t)))
}

fn not_ready_taint() -> Taint {
    Taint {
        key: Sym::new(NOT_READY_TAINT),
        value: None,
        effect: TaintEffect::NoSchedule,
    }
}

/// Sets `key` to `"true"` (or removes it), keeping the labels sorted.
pub(crate) fn set_label(labels: &mut model::Labels, key: &str, on: bool) {
    let key = Sym::new(key);
    labels.retain(|&(k, _)| k != key);
    if on {
        labels.push((key, Sym::new("true")));
        labels.sort_by_key(|&(k, _)| k);
    }
}
