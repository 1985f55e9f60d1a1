//! The event loop and the models.
//!
//! Time advances in one-second ticks. Each tick costs next to nothing when
//! nothing happens: pending pods, launching, draining and running Job pods
//! are kept in their own sets, the kube-scheduler runs only after something
//! freed room or added pods, and a disruption pass is skipped while the
//! cluster is unchanged since a pass that found nothing (Karpenter's
//! "consolidated" state, re-checked every `consolidation_recheck_ms`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use dovetail_core::catalog::{CapacityType, Catalog};
use dovetail_core::clock::ManualClock;
use dovetail_core::disruption::{self, Command, Method};
use dovetail_core::labels;
use dovetail_core::model::{Node, NodePool, Pod, PodDisruptionBudget, PodKey, TaintEffect};
use dovetail_core::policy::{ConsolidationScorer, InstanceSelector};
use dovetail_core::resources::Resources;
use dovetail_core::rng::SplitMix;
use dovetail_core::scheduler::{OfferingRef, Prepared, Snapshot, provision, solve};
use dovetail_core::stats::percentile;
use dovetail_core::sym::Sym;

use crate::baseline;
use crate::report::{DecisionRecord, Report, Sample};
use crate::types::{Autoscaler, EventKind, Scenario, node_for};

pub(crate) const TICK_MS: u64 = 1_000;

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
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum NodeState {
    Launching { ready_at: u64 },
    Ready,
    Gone,
}

#[derive(Debug, Clone)]
pub(crate) struct Drain {
    /// Forced termination time (spot interruption); `None`: when empty.
    pub(crate) terminate_at: Option<u64>,
    why: String,
}

#[derive(Debug, Clone)]
pub(crate) struct SimNode {
    /// Without pods: they are in `pods`.
    pub(crate) node: Node,
    pub(crate) state: NodeState,
    pub(crate) capacity_type: CapacityType,
    pub(crate) instance_type: Sym,
    pub(crate) zone: Sym,
    pub(crate) pods: Vec<usize>,
    pub(crate) requested: Resources,
    pub(crate) drain: Option<Drain>,
    pub(crate) launched_at: u64,
    /// Baseline: since when the node has been under the utilisation
    /// threshold.
    pub(crate) unneeded_since: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Owner {
    Deployment(usize),
    Job(usize),
    DaemonSet,
}

#[derive(Debug, Clone)]
pub(crate) struct SimPod {
    pub(crate) pod: Pod,
    pub(crate) owner: Owner,
    pub(crate) node: Option<usize>,
    /// Planned onto this launching node.
    pub(crate) nominated: Option<usize>,
    pending_since: u64,
    gone: bool,
    /// Job pods: when the running pod completes.
    finishes_at: Option<u64>,
    /// PDBs covering the pod.
    pdbs: Vec<usize>,
}

#[derive(Debug, Default, Clone)]
struct JobState {
    created: usize,
    completed: usize,
    active: usize,
}

/// A command whose replacements are launching; its nodes are drained once
/// they are all Ready. Several can be in flight, as in Karpenter's
/// orchestration queue; validation, like Karpenter's, is one at a time.
#[derive(Debug)]
struct Executing {
    command: Command,
    replacements: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Shortage {
    until: u64,
    instance_types: Vec<Sym>,
    zones: Vec<Sym>,
    capacity_type: Option<CapacityType>,
}

pub struct Simulation<'a> {
    pub(crate) scenario: Scenario,
    selector: &'a dyn InstanceSelector,
    scorer: &'a dyn ConsolidationScorer,
    pub(crate) now: u64,
    pub(crate) nodes: Vec<SimNode>,
    pub(crate) pods: Vec<SimPod>,
    /// Live pods not bound to a node.
    pub(crate) pending: BTreeSet<usize>,
    launching: Vec<usize>,
    pub(crate) draining: Vec<usize>,
    /// Running Job pods by completion time.
    running_jobs: BTreeSet<(u64, usize)>,
    jobs: Vec<JobState>,
    next_diurnal: Vec<u64>,
    pub(crate) rng: SplitMix,
    batch_started: Option<u64>,
    pub(crate) last_pending_change: u64,
    /// The command waiting out the validation delay, and when it is due.
    validating: Option<(u64, Command)>,
    executing: Vec<Executing>,
    next_event: usize,
    latencies: Vec<f64>,
    pub(crate) report: Report,
    events: Vec<SimEvent>,
    pod_serial: usize,
    /// Bumped by every change the disruption engine could react to.
    pub(crate) version: u64,
    /// The kube-scheduler has something new to look at.
    sched_dirty: bool,
    /// `(version, at)` of the last pass that found nothing to do.
    consolidated: Option<(u64, u64)>,
    base_catalog: Arc<Catalog>,
    pub(crate) catalog: Arc<Catalog>,
    unavailable: Vec<(Sym, Sym, CapacityType, u64)>,
    /// `unavailable` gained entries `catalog` does not show yet.
    catalog_stale: bool,
    shortages: Vec<Shortage>,
    live_price: f64,
    pub(crate) baseline: baseline::State,
    /// The last disruption pass's cluster, by `version`.
    pass_cache: Option<(u64, Snapshot, Prepared)>,
}

impl<'a> Simulation<'a> {
    pub fn new(
        scenario: Scenario,
        selector: &'a dyn InstanceSelector,
        scorer: &'a dyn ConsolidationScorer,
    ) -> Self {
        let mut events = scenario.events.clone();
        events.sort_by_key(|e| e.at_ms);
        let catalog = scenario.cluster.catalog.clone();
        let autoscaler = match &scenario.autoscaler {
            Autoscaler::Dovetail => "dovetail".to_string(),
            Autoscaler::StaticNodeGroups(groups) => format!(
                "static-node-groups ({})",
                groups
                    .iter()
                    .map(|g| format!("{} {}", g.instance_type, g.capacity_type))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut s = Simulation {
            rng: SplitMix::new(scenario.seed),
            nodes: Vec::new(),
            pods: Vec::new(),
            pending: BTreeSet::new(),
            launching: Vec::new(),
            draining: Vec::new(),
            running_jobs: BTreeSet::new(),
            jobs: vec![JobState::default(); scenario.jobs.len()],
            next_diurnal: vec![0; scenario.deployments.len()],
            now: 0,
            selector,
            scorer,
            batch_started: None,
            last_pending_change: 0,
            validating: None,
            executing: Vec::new(),
            next_event: 0,
            latencies: Vec::new(),
            report: Report {
                autoscaler,
                seed: scenario.seed,
                duration_seconds: scenario.duration_ms / 1000,
                ..Report::default()
            },
            events: Vec::new(),
            pod_serial: 0,
            version: 0,
            sched_dirty: true,
            consolidated: None,
            base_catalog: catalog.clone(),
            catalog,
            unavailable: Vec::new(),
            catalog_stale: false,
            shortages: Vec::new(),
            live_price: 0.0,
            baseline: baseline::State::default(),
            pass_cache: None,
            scenario: Scenario { events, ..scenario },
        };
        for init in s.scenario.initial_nodes.clone() {
            let mut node = init.node.clone();
            node.pods.clear();
            let n = s.add_node(node, init.capacity_type, !init.ready);
            for (d, count) in init.pods {
                for _ in 0..count {
                    let p = s.new_pod(Owner::Deployment(d));
                    s.pods[p].pod.started_at = init.node.created_at;
                    s.attach(p, n);
                    s.pending.remove(&p);
                }
            }
        }
        s.report.totals.nodes_launched = 0;
        for d in 0..s.scenario.deployments.len() {
            let replicas = match &s.scenario.deployments[d].diurnal {
                Some(curve) => curve.replicas_at(0),
                None => s.scenario.deployments[d].replicas,
            };
            s.set_replicas(d, replicas);
        }
        s
    }

    fn unix(&self) -> u64 {
        self.scenario.start_unix_seconds + self.now / 1000
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
        self.apply_events();
        self.diurnal();
        self.jobs();
        self.expire_unavailable();
        self.nodes_become_ready();
        self.drain();
        self.kube_scheduler();
        match self.scenario.autoscaler {
            Autoscaler::Dovetail => {
                self.provision();
                self.disrupt();
            }
            Autoscaler::StaticNodeGroups(_) => baseline::scan(self),
        }
        self.account();
    }

    // ---- pods ----------------------------------------------------------

    fn new_pod(&mut self, owner: Owner) -> usize {
        let (template, name) = match owner {
            Owner::Deployment(d) => {
                let d = &self.scenario.deployments[d];
                (&d.template, &d.name)
            }
            Owner::Job(j) => {
                let j = &self.scenario.jobs[j];
                (&j.template, &j.name)
            }
            Owner::DaemonSet => unreachable!("DaemonSet pods are made per node"),
        };
        let mut pod = template.clone();
        pod.name = Sym::new(&format!("{name}-{:05}", self.pod_serial));
        pod.created = self.pod_serial as u64;
        self.pod_serial += 1;
        let pdbs = self.pdbs_covering(&pod);
        self.pods.push(SimPod {
            pod,
            owner,
            node: None,
            nominated: None,
            pending_since: self.now,
            gone: false,
            finishes_at: None,
            pdbs,
        });
        let p = self.pods.len() - 1;
        self.pending.insert(p);
        self.last_pending_change = self.now;
        self.sched_dirty = true;
        self.version += 1;
        p
    }

    fn pdbs_covering(&self, pod: &Pod) -> Vec<usize> {
        (0..self.scenario.pdbs.len())
            .filter(|&i| {
                let b = &self.scenario.pdbs[i];
                b.namespace == pod.namespace && b.selector.matches(&pod.labels)
            })
            .collect()
    }

    /// Binds `p` to `n` (resources, lists); no latency bookkeeping.
    fn attach(&mut self, p: usize, n: usize) {
        self.pods[p].node = Some(n);
        self.pods[p].nominated = None;
        self.nodes[n].pods.push(p);
        self.nodes[n].requested.add(&self.pods[p].pod.requests);
        self.nodes[n].node.last_pod_event = self.unix();
        self.version += 1;
    }

    fn detach(&mut self, p: usize) {
        if let Some(n) = self.pods[p].node.take() {
            let node = &mut self.nodes[n];
            node.pods.retain(|&q| q != p);
            node.requested.sub(&self.pods[p].pod.requests);
            node.node.last_pod_event = self.scenario.start_unix_seconds + self.now / 1000;
            self.sched_dirty = true;
            self.version += 1;
        }
        if let Some(f) = self.pods[p].finishes_at.take() {
            self.running_jobs.remove(&(f, p));
        }
    }

    fn bind(&mut self, p: usize, n: usize) {
        self.attach(p, n);
        self.pending.remove(&p);
        self.pods[p].pod.started_at = self.unix();
        self.latencies
            .push((self.now - self.pods[p].pending_since) as f64 / 1000.0);
        if let Owner::Job(j) = self.pods[p].owner {
            let f = self.now + self.scenario.jobs[j].duration_ms;
            self.pods[p].finishes_at = Some(f);
            self.running_jobs.insert((f, p));
        }
    }

    /// The pod leaves for good (scale-down, Job completion).
    fn remove_pod(&mut self, p: usize) {
        self.detach(p);
        self.pods[p].gone = true;
        self.pods[p].nominated = None;
        if self.pending.remove(&p) {
            self.last_pending_change = self.now;
        }
        self.version += 1;
    }

    /// Evicted: pending again, as its controller replaces it.
    fn evict(&mut self, p: usize) {
        self.detach(p);
        if self.pods[p].owner == Owner::DaemonSet {
            self.pods[p].gone = true;
            return;
        }
        self.pods[p].pending_since = self.now;
        self.pending.insert(p);
        self.report.totals.pods_evicted += 1;
        self.last_pending_change = self.now;
    }

    /// Whether the count changed.
    fn set_replicas(&mut self, d: usize, replicas: usize) -> bool {
        let mut live: Vec<usize> = (0..self.pods.len())
            .filter(|&p| !self.pods[p].gone && self.pods[p].owner == Owner::Deployment(d))
            .collect();
        if live.len() == replicas {
            return false;
        }
        if live.len() < replicas {
            for _ in live.len()..replicas {
                self.new_pod(Owner::Deployment(d));
            }
        } else {
            // Unscheduled pods go first, then the youngest, as a ReplicaSet
            // scales down.
            live.sort_by_key(|&p| (self.pods[p].node.is_some(), std::cmp::Reverse(p)));
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
                EventKind::CapacityShortage {
                    for_ms,
                    instance_types,
                    zones,
                    capacity_type,
                } => self.shortages.push(Shortage {
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
            self.pods[p].finishes_at = None;
            let Owner::Job(j) = self.pods[p].owner else {
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

    fn top_up_job(&mut self, j: usize) {
        let spec = &self.scenario.jobs[j];
        let (completions, parallelism) = (spec.completions, spec.parallelism.max(1));
        while self.jobs[j].active < parallelism && self.jobs[j].created < completions {
            self.jobs[j].created += 1;
            self.jobs[j].active += 1;
            self.new_pod(Owner::Job(j));
        }
    }

    // ---- nodes ---------------------------------------------------------

    /// A new node, launching (or Ready at once), with its DaemonSet pods.
    fn add_node(&mut self, node: Node, capacity_type: CapacityType, launching: bool) -> usize {
        let instance_type = node
            .labels
            .iter()
            .find(|(k, _)| k.as_str() == labels::INSTANCE_TYPE)
            .map_or(Sym::new(""), |&(_, v)| v);
        let zone = node
            .labels
            .iter()
            .find(|(k, _)| k.as_str() == labels::ZONE)
            .map_or(Sym::new(""), |&(_, v)| v);
        let m = &self.scenario.models;
        let state = if launching {
            NodeState::Launching {
                ready_at: self.now + m.launch_ms + m.ready_ms,
            }
        } else {
            NodeState::Ready
        };
        self.live_price += node.price_per_hour;
        self.nodes.push(SimNode {
            node,
            state,
            capacity_type,
            instance_type,
            zone,
            pods: Vec::new(),
            requested: Resources::default(),
            drain: None,
            launched_at: self.now,
            unneeded_since: None,
        });
        let n = self.nodes.len() - 1;
        if launching {
            self.launching.push(n);
        } else {
            self.nodes[n].node.initialized = true;
            self.nodes[n].node.ready = true;
            self.sched_dirty = true;
        }
        for ds in self.scenario.cluster.daemon_sets.clone() {
            let node = &self.nodes[n].node;
            let selected = ds
                .pod
                .node_selector
                .iter()
                .all(|(k, v)| node.labels.iter().any(|(nk, nv)| nk == k && nv == v));
            let tolerated = node.taints.iter().all(|t| {
                t.effect == TaintEffect::PreferNoSchedule
                    || ds.pod.tolerations.iter().any(|tol| tol.tolerates(t))
            });
            if !(selected && tolerated) {
                continue;
            }
            let mut pod = ds.pod.clone();
            pod.name = Sym::new(&format!("{}-{}", ds.name, node.name));
            self.pods.push(SimPod {
                pod,
                owner: Owner::DaemonSet,
                node: None,
                nominated: None,
                pending_since: self.now,
                gone: false,
                finishes_at: None,
                pdbs: Vec::new(),
            });
            let p = self.pods.len() - 1;
            self.attach(p, n);
        }
        self.report.totals.nodes_launched += 1;
        let live = self.live_nodes();
        self.report.totals.peak_nodes = self.report.totals.peak_nodes.max(live);
        self.version += 1;
        n
    }

    fn live_nodes(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.state != NodeState::Gone)
            .count()
    }

    fn live(&self, n: usize) -> bool {
        self.nodes[n].state != NodeState::Gone
    }

    fn nodes_become_ready(&mut self) {
        if self.launching.is_empty() {
            return;
        }
        let mut still = Vec::new();
        for n in std::mem::take(&mut self.launching) {
            match self.nodes[n].state {
                NodeState::Launching { ready_at } if ready_at <= self.now => {
                    let node = &mut self.nodes[n];
                    node.state = NodeState::Ready;
                    node.node.initialized = true;
                    node.node.ready = true;
                    self.sched_dirty = true;
                    self.version += 1;
                    self.events.push(SimEvent::NodeReady {
                        at_ms: self.now,
                        name: self.nodes[n].node.name,
                    });
                }
                NodeState::Launching { .. } => still.push(n),
                _ => {}
            }
        }
        self.launching = still;
    }

    /// Launches the first offering of `offerings` that has capacity, as EC2
    /// CreateFleet does with a prioritized list; offerings that fail are
    /// marked unavailable for the unavailable-offering window.
    pub(crate) fn try_launch(
        &mut self,
        pool: Option<Sym>,
        offerings: &[OfferingRef],
    ) -> Option<usize> {
        for o in offerings {
            if self.short(o.instance_type, o.zone, o.capacity_type) {
                self.report.totals.insufficient_capacity_errors += 1;
                self.mark_unavailable(o.instance_type, o.zone, o.capacity_type);
                self.events.push(SimEvent::InsufficientCapacity {
                    at_ms: self.now,
                    instance_type: o.instance_type,
                    zone: o.zone,
                    capacity_type: o.capacity_type,
                });
                continue;
            }
            let n = self.launch(pool, o);
            if self.catalog_stale {
                self.rebuild_catalog();
            }
            return Some(n);
        }
        if self.catalog_stale {
            self.rebuild_catalog();
        }
        None
    }

    fn launch(&mut self, pool: Option<Sym>, offering: &OfferingRef) -> usize {
        let prefix = pool.map_or("node", |p| p.as_str());
        let name = Sym::new(&format!("{prefix}-{:05x}", self.rng.next_u64() & 0xfffff));
        let node = node_for(
            &self.scenario.cluster,
            pool,
            offering.instance_type.as_str(),
            offering.zone,
            offering.capacity_type,
            name,
            self.unix(),
        )
        .expect("launch lists only name catalog offerings");
        let n = self.add_node(node, offering.capacity_type, true);
        self.events.push(SimEvent::NodeLaunched {
            at_ms: self.now,
            name,
            instance_type: offering.instance_type,
            zone: offering.zone,
            capacity_type: offering.capacity_type,
            price: offering.price,
        });
        n
    }

    fn short(&self, instance_type: Sym, zone: Sym, capacity_type: CapacityType) -> bool {
        self.shortages.iter().any(|s| {
            s.until > self.now
                && (s.instance_types.is_empty() || s.instance_types.contains(&instance_type))
                && (s.zones.is_empty() || s.zones.contains(&zone))
                && s.capacity_type.is_none_or(|c| c == capacity_type)
        })
    }

    /// Karpenter's unavailable-offering cache: the offering leaves launch
    /// plans for `unavailable_offering_ms`.
    fn mark_unavailable(&mut self, instance_type: Sym, zone: Sym, capacity_type: CapacityType) {
        let until = self.now + self.scenario.models.unavailable_offering_ms;
        match self
            .unavailable
            .iter_mut()
            .find(|u| u.0 == instance_type && u.1 == zone && u.2 == capacity_type)
        {
            Some(u) => u.3 = until,
            None => {
                self.unavailable
                    .push((instance_type, zone, capacity_type, until));
                // Rebuilt once the whole launch (or notice) is handled.
                self.catalog_stale = true;
            }
        }
    }

    fn expire_unavailable(&mut self) {
        let before = self.unavailable.len();
        let now = self.now;
        self.unavailable.retain(|u| u.3 > now);
        if self.unavailable.len() != before {
            self.rebuild_catalog();
        }
        self.shortages.retain(|s| s.until > now);
    }

    fn rebuild_catalog(&mut self) {
        self.catalog_stale = false;
        if self.unavailable.is_empty() {
            self.catalog = self.base_catalog.clone();
        } else {
            let mut c = (*self.base_catalog).clone();
            for &(t, z, ct, _) in &self.unavailable {
                c.mark_unavailable(t.as_str(), z.as_str(), ct);
            }
            self.catalog = Arc::new(c);
        }
        self.version += 1;
    }

    fn interrupt(&mut self, count: usize, instance_types: &[Sym], zones: &[Sym]) {
        let mut candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|&n| {
                let node = &self.nodes[n];
                node.state == NodeState::Ready
                    && node.drain.is_none()
                    && node.capacity_type == CapacityType::Spot
                    && (instance_types.is_empty() || instance_types.contains(&node.instance_type))
                    && (zones.is_empty() || zones.contains(&node.zone))
            })
            .collect();
        // A seeded shuffle: which nodes AWS reclaims is not ours to choose.
        for i in (1..candidates.len()).rev() {
            let j = (self.rng.next_u64() % (i as u64 + 1)) as usize;
            candidates.swap(i, j);
        }
        for &n in candidates.iter().take(count) {
            let (t, z) = (self.nodes[n].instance_type, self.nodes[n].zone);
            self.mark_unavailable(t, z, CapacityType::Spot);
            let terminates = self.now + self.scenario.models.interruption_warning_ms;
            let name = self.nodes[n].node.name;
            self.report.totals.interruptions += 1;
            self.report.decisions.push(DecisionRecord {
                at_seconds: self.now / 1000,
                kind: "interruption".into(),
                nodes: vec![name.to_string()],
                launched: Vec::new(),
                savings_per_hour: 0.0,
                pods: self.movable_pods(n),
                decided_by: "aws".into(),
                reason: format!(
                    "spot interruption notice for {t} in {z}; terminates in {} s",
                    self.scenario.models.interruption_warning_ms / 1000
                ),
            });
            self.events.push(SimEvent::Interrupted {
                at_ms: self.now,
                name,
                terminates_at_ms: terminates,
            });
            self.start_drain(n, Some(terminates), "spot interruption".into());
        }
        if self.catalog_stale {
            self.rebuild_catalog();
        }
    }

    /// Pods on `n` a drain must move (all but DaemonSet pods).
    pub(crate) fn movable_pods(&self, n: usize) -> usize {
        self.nodes[n]
            .pods
            .iter()
            .filter(|&&p| self.pods[p].owner != Owner::DaemonSet)
            .count()
    }

    /// Cordons `n` and starts evicting its pods.
    pub(crate) fn start_drain(&mut self, n: usize, terminate_at: Option<u64>, why: String) {
        let node = &mut self.nodes[n];
        node.node.marked_for_deletion = true;
        match &mut node.drain {
            Some(d) => {
                if terminate_at.is_some() {
                    d.terminate_at = terminate_at;
                }
            }
            None => {
                node.drain = Some(Drain { terminate_at, why });
                self.draining.push(n);
            }
        }
        for &p in &self.pending {
            if self.pods[p].nominated == Some(n) {
                self.last_pending_change = self.now;
            }
        }
        self.version += 1;
    }

    /// PodDisruptionBudgets' `disruptionsAllowed`, from the pods they cover.
    fn pdb_allowed(&self) -> Vec<i64> {
        let n = self.scenario.pdbs.len();
        if n == 0 {
            return Vec::new();
        }
        let (mut healthy, mut expected) = (vec![0i64; n], vec![0i64; n]);
        for p in &self.pods {
            if p.gone {
                continue;
            }
            for &b in &p.pdbs {
                expected[b] += 1;
                if p.node
                    .is_some_and(|n| self.nodes[n].state == NodeState::Ready)
                {
                    healthy[b] += 1;
                }
            }
        }
        (0..n)
            .map(|b| {
                let spec = &self.scenario.pdbs[b];
                let desired = match (spec.min_available, spec.max_unavailable) {
                    (Some(min), _) => min as i64,
                    (None, Some(max)) => expected[b] - max as i64,
                    (None, None) => 0,
                };
                (healthy[b] - desired).max(0)
            })
            .collect()
    }

    /// Evicts what PDBs and do-not-disrupt allow from draining nodes; a node
    /// with only DaemonSet pods left, or past its termination time, goes.
    fn drain(&mut self) {
        if self.draining.is_empty() {
            return;
        }
        let mut allowed = self.pdb_allowed();
        for n in self.draining.clone() {
            let Some(drain) = self.nodes[n].drain.clone() else {
                continue;
            };
            if self.nodes[n].state == NodeState::Gone {
                continue;
            }
            let forced = drain.terminate_at.is_some_and(|t| t <= self.now);
            for p in self.nodes[n].pods.clone() {
                let sp = &self.pods[p];
                if sp.owner == Owner::DaemonSet {
                    continue;
                }
                let protected = do_not_disrupt(&sp.pod);
                let budget_ok = sp.pdbs.iter().all(|&b| allowed[b] > 0);
                if forced || (!protected && budget_ok) {
                    for &b in &sp.pdbs {
                        allowed[b] -= 1;
                    }
                    self.evict(p);
                }
            }
            if forced || self.movable_pods(n) == 0 {
                self.delete_node(n, &drain.why);
            }
        }
        let nodes = &self.nodes;
        self.draining.retain(|&n| nodes[n].state != NodeState::Gone);
    }

    fn delete_node(&mut self, n: usize, why: &str) {
        for p in self.nodes[n].pods.clone() {
            self.evict(p);
        }
        let pending: Vec<usize> = self.pending.iter().copied().collect();
        for p in pending {
            if self.pods[p].nominated == Some(n) {
                self.pods[p].nominated = None;
                self.last_pending_change = self.now;
            }
        }
        let node = &mut self.nodes[n];
        node.state = NodeState::Gone;
        self.live_price -= node.node.price_per_hour;
        let hours = (self.now - node.launched_at.min(self.now)) as f64 / 3_600_000.0;
        *self
            .report
            .totals
            .node_hours_by_instance_type
            .entry(node.instance_type.to_string())
            .or_default() += hours;
        self.report.totals.nodes_terminated += 1;
        self.version += 1;
        self.events.push(SimEvent::NodeDeleted {
            at_ms: self.now,
            name: self.nodes[n].node.name,
            why: why.to_string(),
        });
    }

    // ---- the cluster as the engines see it ------------------------------

    /// Live nodes with their bound pods (and, unless `ready_only`, launching
    /// nodes with the pods nominated to them). `ready_only` leaves out
    /// launching and cordoned nodes: what kube-scheduler can bind to.
    pub(crate) fn snapshot(&self, ready_only: bool) -> (Snapshot, Vec<usize>) {
        let c = &self.scenario.cluster;
        let mut s = Snapshot::new(self.catalog.clone());
        s.node_pools = c.node_pools.clone();
        s.daemon_sets = c.daemon_sets.clone();
        s.namespaces = c.namespaces.clone();
        s.settings = c.settings.clone();
        let allowed = self.pdb_allowed();
        s.pdbs = self
            .scenario
            .pdbs
            .iter()
            .zip(&allowed)
            .map(|(b, &a)| PodDisruptionBudget {
                namespace: b.namespace,
                name: b.name,
                selector: b.selector.clone(),
                disruptions_allowed: a.min(i32::MAX as i64) as i32,
            })
            .collect();
        let mut nominated: HashMap<usize, Vec<usize>> = HashMap::new();
        if !ready_only {
            for &p in &self.pending {
                if let Some(n) = self.pods[p].nominated {
                    nominated.entry(n).or_default().push(p);
                }
            }
        }
        let mut index = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let take = match n.state {
                NodeState::Gone => false,
                NodeState::Launching { .. } => !ready_only,
                NodeState::Ready => !ready_only || n.drain.is_none(),
            };
            if !take {
                continue;
            }
            let mut node = n.node.clone();
            let extra = nominated.get(&i).map_or(&[][..], |v| v.as_slice());
            node.pods = n
                .pods
                .iter()
                .chain(extra)
                .map(|&p| self.pods[p].pod.clone())
                .collect();
            node.nominated = !extra.is_empty();
            s.nodes.push(node);
            index.push(i);
        }
        (s, index)
    }

    /// kube-scheduler: pending pods onto Ready nodes with room.
    fn kube_scheduler(&mut self) {
        if !self.sched_dirty || self.pending.is_empty() {
            return;
        }
        self.sched_dirty = false;
        let (mut snapshot, index) = self.snapshot(true);
        if snapshot.nodes.is_empty() {
            return;
        }
        snapshot.node_pools.clear();
        let pending: Vec<usize> = self.pending.iter().copied().collect();
        let pods: Vec<Pod> = pending.iter().map(|&p| self.pods[p].pod.clone()).collect();
        let by_key: HashMap<PodKey, usize> = pending
            .iter()
            .map(|&p| (self.pods[p].pod.key(), p))
            .collect();
        let slots: HashMap<Sym, usize> = snapshot
            .nodes
            .iter()
            .enumerate()
            .map(|(slot, n)| (n.name, slot))
            .collect();
        let plan = solve(&snapshot, &pods);
        for b in &plan.bindings {
            if let (Some(&p), Some(&slot)) = (by_key.get(&b.pod), slots.get(&b.node)) {
                self.bind(p, index[slot]);
            }
        }
    }

    /// Pending pods not waiting for a launching node.
    pub(crate) fn waiting(&self) -> Vec<usize> {
        self.pending
            .iter()
            .copied()
            .filter(|&p| {
                self.pods[p]
                    .nominated
                    .is_none_or(|n| !self.live(n) || self.nodes[n].drain.is_some())
            })
            .collect()
    }

    /// Whether the batching window (idle or max) has closed for `waiting`.
    fn batch_ready(&mut self, waiting: bool) -> bool {
        if !waiting {
            self.batch_started = None;
            return false;
        }
        let started = *self.batch_started.get_or_insert(self.now);
        let m = &self.scenario.models;
        let idle = self.now.saturating_sub(self.last_pending_change) >= m.batch_idle_ms;
        let full = self.now.saturating_sub(started) >= m.batch_max_ms;
        if idle || full {
            self.batch_started = None;
            true
        } else {
            false
        }
    }

    fn provision(&mut self) {
        let waiting = self.waiting();
        if !self.batch_ready(!waiting.is_empty()) {
            return;
        }
        let (snapshot, index) = self.snapshot(false);
        let pods: Vec<Pod> = waiting.iter().map(|&p| self.pods[p].pod.clone()).collect();
        let clock = ManualClock::new(self.unix() * 1000);
        let round = provision(
            &snapshot,
            &pods,
            self.selector,
            &clock,
            self.scenario.seed ^ self.now,
        );
        let by_key: HashMap<PodKey, usize> = waiting
            .iter()
            .map(|&p| (self.pods[p].pod.key(), p))
            .collect();
        // Nominations change what the disruption engine sees.
        self.version += 1;
        for b in &round.plan.bindings {
            if let (Some(&p), Some(slot)) = (
                by_key.get(&b.pod),
                snapshot.nodes.iter().position(|n| n.name == b.node),
            ) {
                self.pods[p].nominated = Some(index[slot]);
            }
        }
        let mut launched = Vec::new();
        let mut failed = 0;
        for (claim, launch) in round.plan.node_claims.iter().zip(&round.launch.launches) {
            let Ok(offerings) = launch else { continue };
            match self.try_launch(Some(claim.node_pool), offerings) {
                Some(n) => {
                    let sn = &self.nodes[n];
                    launched.push(format!(
                        "{}/{}/{}",
                        sn.instance_type, sn.zone, sn.capacity_type
                    ));
                    for key in &claim.pods {
                        if let Some(&p) = by_key.get(key) {
                            self.pods[p].nominated = Some(n);
                        }
                    }
                }
                None => failed += 1,
            }
        }
        if !round.plan.node_claims.is_empty() {
            let mut reason = format!("{} pending pod(s)", waiting.len());
            if failed > 0 {
                reason.push_str(&format!(
                    "; {failed} NodeClaim(s) found no capacity and retry next batch"
                ));
            }
            if let Some(f) = &round.launch.fallback {
                reason.push_str(&format!("; policy failed, built-in chose: {f}"));
            }
            self.report.decisions.push(DecisionRecord {
                at_seconds: self.now / 1000,
                kind: "provisioning".into(),
                nodes: Vec::new(),
                launched,
                savings_per_hour: 0.0,
                pods: waiting.len(),
                decided_by: round.launch.by.clone(),
                reason,
            });
        }
    }

    fn node_by_name(&self, name: Sym) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.node.name == name && n.state != NodeState::Gone)
    }

    fn disrupt(&mut self) {
        self.advance_executing();
        if let Some((due, command)) = self.validating.take() {
            if due <= self.now {
                self.start_command(command);
            } else {
                self.validating = Some((due, command));
            }
            return;
        }
        let m = &self.scenario.models;
        if self.now == 0 || !self.now.is_multiple_of(m.disruption_interval_ms) {
            return;
        }
        // Unchanged since a pass that found nothing: skip, unless nodes have
        // since become consolidatable — then only they can have a
        // single-node move the last pass did not reject.
        let mut settings = m.disruption.clone();
        if let Some((version, at)) = self.consolidated
            && version == self.version
            && self.now - at < m.consolidation_recheck_ms
            && !self.expired_since(at)
        {
            let fresh = self.became_consolidatable_since(at);
            if fresh.is_empty() {
                return;
            }
            // Multi-node consolidation waits for the next full pass (a
            // change or the re-check).
            settings.single_node_only = Some(fresh);
            settings.max_multi_node = 0;
        }
        // A provisioning round in flight (pods just gone pending, nodes
        // launching for them) is waited out: any command now would be judged
        // on a cluster about to change. Replacements launching for commands
        // do not count: they are already part of the plan.
        let provisioning = self
            .launching
            .iter()
            .any(|n| !self.executing.iter().any(|e| e.replacements.contains(n)));
        if provisioning
            || self
                .pending
                .iter()
                .any(|&p| self.now.saturating_sub(self.pods[p].pending_since) < m.batch_max_ms)
        {
            return;
        }
        // The cluster as the last pass saw it, when nothing changed since:
        // no need to copy and compile it again.
        let cached = self
            .pass_cache
            .take()
            .filter(|(version, _, _)| *version == self.version);
        let (version, snapshot, prepared) = match cached {
            Some(c) => c,
            None => {
                let (snapshot, _) = self.snapshot(false);
                let prepared = Prepared::reusable(&snapshot);
                (self.version, snapshot, prepared)
            }
        };
        let pass =
            disruption::disrupt_prepared(&snapshot, &prepared, self.unix(), self.scorer, &settings);
        self.pass_cache = Some((version, snapshot, prepared));
        let mut voluntary = None;
        for cmd in pass.commands {
            if cmd.method == Method::Expiration {
                // Forceful: straight to the drain.
                self.execute(&cmd);
            } else if voluntary.is_none() {
                voluntary = Some(cmd);
            }
        }
        match voluntary {
            Some(command) => {
                self.validating =
                    Some((self.now + self.scenario.models.validation_delay_ms, command));
            }
            None => self.consolidated = Some((self.version, self.now)),
        }
    }

    /// After the validation delay: re-checks the command against the
    /// cluster as it is now, marks its nodes and launches its replacements.
    fn start_command(&mut self, command: Command) {
        let (snapshot, _) = self.snapshot(false);
        let valid = disruption::validate(
            &command,
            &snapshot,
            self.unix(),
            self.scorer,
            &self.scenario.models.disruption,
        );
        if valid.is_err() {
            return;
        }
        let targets: Vec<usize> = command
            .nodes
            .iter()
            .filter_map(|&name| self.node_by_name(name))
            .collect();
        for &n in &targets {
            self.nodes[n].node.marked_for_deletion = true;
        }
        self.version += 1;
        let mut replacements = Vec::new();
        for claim in &command.replacements {
            match self.try_launch(Some(claim.node_pool), &claim.offerings) {
                Some(n) => replacements.push(n),
                None => {
                    // No capacity for a replacement: the command is
                    // abandoned and its nodes stay.
                    self.unmark(&command);
                    for n in replacements {
                        self.delete_node(n, "replacement for an abandoned command");
                    }
                    return;
                }
            }
        }
        self.executing.push(Executing {
            command,
            replacements,
        });
        self.advance_executing();
    }

    /// Drains the nodes of commands whose replacements are all Ready;
    /// abandons those that lost one.
    fn advance_executing(&mut self) {
        if self.executing.is_empty() {
            return;
        }
        for e in std::mem::take(&mut self.executing) {
            let state = |n: &usize| self.nodes[*n].state;
            if e.replacements.iter().any(|n| state(n) == NodeState::Gone) {
                self.unmark(&e.command);
            } else if e.replacements.iter().all(|n| state(n) == NodeState::Ready) {
                self.execute(&e.command);
            } else {
                self.executing.push(e);
            }
        }
    }

    /// Takes back a command's marks from nodes not being drained.
    fn unmark(&mut self, command: &Command) {
        for name in &command.nodes {
            if let Some(n) = self.node_by_name(*name)
                && self.nodes[n].drain.is_none()
            {
                self.nodes[n].node.marked_for_deletion = false;
            }
        }
        self.version += 1;
    }

    /// Whether a node reached its NodePool's `expireAfter` since `at_ms`:
    /// expiration acts at once, whatever else changed.
    fn expired_since(&self, at_ms: u64) -> bool {
        self.nodes.iter().any(|n| {
            n.state != NodeState::Gone
                && self.timer_ran_out(at_ms, n, n.node.created_at, |p| p.expire_after)
        })
    }

    /// Nodes whose `consolidateAfter` ran out since `at_ms`: Karpenter marks
    /// them Consolidatable then, which counts as a cluster change.
    fn became_consolidatable_since(&self, at_ms: u64) -> Vec<Sym> {
        self.nodes
            .iter()
            .filter(|n| {
                n.state == NodeState::Ready
                    && self.timer_ran_out(at_ms, n, n.node.last_pod_event, |p| {
                        p.disruption.consolidate_after
                    })
            })
            .map(|n| n.node.name)
            .collect()
    }

    /// Whether the NodePool duration `timer` picks, counted from `since`
    /// (Unix seconds), ran out between `at_ms` and now.
    fn timer_ran_out(
        &self,
        at_ms: u64,
        n: &SimNode,
        since: u64,
        timer: impl Fn(&NodePool) -> Option<std::time::Duration>,
    ) -> bool {
        let from = self.scenario.start_unix_seconds + at_ms / 1000;
        n.node
            .node_pool
            .and_then(|p| {
                self.scenario
                    .cluster
                    .node_pools
                    .iter()
                    .find(|np| np.name == p)
            })
            .and_then(timer)
            .is_some_and(|after| {
                let t = since + after.as_secs();
                t > from && t <= self.unix()
            })
    }

    /// Records the command and drains its nodes.
    fn execute(&mut self, command: &Command) {
        let why = format!(
            "{:?} ({}): {} [{}]",
            command.method, command.reason, command.policy_reason, command.decided_by
        );
        self.report.totals.disruptions += 1;
        self.report.decisions.push(DecisionRecord {
            at_seconds: self.now / 1000,
            kind: format!("{:?}", command.method),
            nodes: command.nodes.iter().map(|n| n.to_string()).collect(),
            launched: command
                .replacements
                .iter()
                .filter_map(|c| c.offerings.first())
                .map(|o| format!("{}/{}/{}", o.instance_type, o.zone, o.capacity_type))
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
        for name in &command.nodes {
            if let Some(n) = self.node_by_name(*name) {
                self.start_drain(n, None, why.clone());
            }
        }
    }

    fn account(&mut self) {
        // The first tick with pods and none waiting (0 for a start state
        // whose pods all run).
        if self.report.totals.all_running_after_seconds.is_none()
            && self.pending.is_empty()
            && self.pods.iter().any(|p| p.owner != Owner::DaemonSet)
        {
            self.report.totals.all_running_after_seconds = Some(self.now as f64 / 1000.0);
        }
        self.report.totals.cost_usd += self.live_price * TICK_MS as f64 / 3_600_000.0;
        if self
            .now
            .is_multiple_of(self.scenario.models.sample_every_ms)
        {
            let (mut od, mut spot) = (0, 0);
            for n in &self.nodes {
                if n.state != NodeState::Gone {
                    match n.capacity_type {
                        CapacityType::Spot => spot += 1,
                        _ => od += 1,
                    }
                }
            }
            let pending = self.pending.len();
            let running = self
                .nodes
                .iter()
                .filter(|n| n.state != NodeState::Gone)
                .flat_map(|n| &n.pods)
                .filter(|&&p| self.pods[p].owner != Owner::DaemonSet)
                .count();
            self.report.timeline.push(Sample {
                at_seconds: self.now / 1000,
                nodes_on_demand: od,
                nodes_spot: spot,
                pending_pods: pending,
                running_pods: running,
                cost_usd: self.report.totals.cost_usd,
            });
        }
    }

    fn finish(mut self) -> Report {
        let end = self.scenario.duration_ms;
        for n in &self.nodes {
            if n.state != NodeState::Gone {
                *self
                    .report
                    .totals
                    .node_hours_by_instance_type
                    .entry(n.instance_type.to_string())
                    .or_default() += (end - n.launched_at.min(end)) as f64 / 3_600_000.0;
            }
        }
        for h in self.report.totals.node_hours_by_instance_type.values_mut() {
            *h = (*h * 1e6).round() / 1e6;
        }
        self.report.totals.pending_at_end = self.pending.len();
        let mut l = std::mem::take(&mut self.latencies);
        l.sort_by(f64::total_cmp);
        let t = &mut self.report.totals;
        t.pending_p50_seconds = percentile(&l, 0.50);
        t.pending_p95_seconds = percentile(&l, 0.95);
        t.pending_p99_seconds = percentile(&l, 0.99);
        t.pending_max_seconds = l.last().copied().unwrap_or(0.0);
        self.report
    }
}

fn do_not_disrupt(pod: &Pod) -> bool {
    pod.annotations
        .iter()
        .any(|(k, v)| k.as_str() == labels::DO_NOT_DISRUPT && v.as_str() == "true")
}
