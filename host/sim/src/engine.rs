//! The event loop and the models.

use dovetail_core::catalog::CapacityType;
use dovetail_core::clock::ManualClock;
use dovetail_core::disruption::{self, Command, Method};
use dovetail_core::labels;
use dovetail_core::model::{Node, Pod, PodKey};
use dovetail_core::policy::fixtures::SplitMix;
use dovetail_core::policy::{ConsolidationScorer, InstanceSelector};
use dovetail_core::scheduler::{OfferingRef, Snapshot, provision, solve};
use dovetail_core::sym::Sym;

use crate::report::{Report, Sample, percentile};
use crate::types::{EventKind, Scenario};

const TICK_MS: u64 = 1_000;

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
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum NodeState {
    Launching { ready_at: u64 },
    Ready,
    Gone,
}

#[derive(Debug, Clone)]
struct SimNode {
    node: Node,
    state: NodeState,
    capacity_type: CapacityType,
}

#[derive(Debug, Clone)]
struct SimPod {
    pod: Pod,
    deployment: usize,
    node: Option<usize>,
    /// Planned onto this launching node.
    nominated: Option<usize>,
    pending_since: u64,
    gone: bool,
}

/// A command between decision and completion.
#[derive(Debug)]
enum InProgress {
    Validating {
        due: u64,
        command: Command,
    },
    Replacing {
        command: Command,
        replacements: Vec<usize>,
    },
}

pub struct Simulation<'a> {
    scenario: Scenario,
    selector: &'a dyn InstanceSelector,
    scorer: &'a dyn ConsolidationScorer,
    now: u64,
    nodes: Vec<SimNode>,
    pods: Vec<SimPod>,
    rng: SplitMix,
    batch_started: Option<u64>,
    last_pending_change: u64,
    in_progress: Option<InProgress>,
    next_scale: usize,
    pending_latencies: Vec<f64>,
    report: Report,
    events: Vec<SimEvent>,
    pod_serial: usize,
}

impl<'a> Simulation<'a> {
    pub fn new(
        scenario: Scenario,
        selector: &'a dyn InstanceSelector,
        scorer: &'a dyn ConsolidationScorer,
    ) -> Self {
        let mut events = scenario.events.clone();
        events.sort_by_key(|e| e.at_ms);
        let mut s = Simulation {
            rng: SplitMix::new(scenario.seed),
            nodes: Vec::new(),
            pods: Vec::new(),
            now: 0,
            selector,
            scorer,
            batch_started: None,
            last_pending_change: 0,
            in_progress: None,
            next_scale: 0,
            pending_latencies: Vec::new(),
            report: Report {
                seed: scenario.seed,
                duration_seconds: scenario.duration_ms / 1000,
                ..Report::default()
            },
            events: Vec::new(),
            pod_serial: 0,
            scenario: Scenario { events, ..scenario },
        };
        for n in s.scenario.cluster.nodes.clone() {
            let capacity_type =
                dovetail_core::model::label(&n.labels, Sym::new(labels::CAPACITY_TYPE))
                    .and_then(|c| CapacityType::from_label(c.as_str()))
                    .unwrap_or(CapacityType::OnDemand);
            s.nodes.push(SimNode {
                node: n,
                state: NodeState::Ready,
                capacity_type,
            });
        }
        for d in 0..s.scenario.deployments.len() {
            let replicas = s.scenario.deployments[d].replicas;
            s.set_replicas(d, replicas);
        }
        s
    }

    fn unix(&self) -> u64 {
        self.scenario.start_unix_seconds + self.now / 1000
    }

    /// Runs to the end; `watch` sees every event as it happens.
    pub fn run(mut self, watch: &mut dyn FnMut(&SimEvent)) -> Report {
        while self.now <= self.scenario.duration_ms {
            self.step();
            for e in self.events.drain(..) {
                watch(&e);
            }
            self.now += TICK_MS;
        }
        self.finish()
    }

    fn step(&mut self) {
        self.apply_scales();
        self.nodes_become_ready();
        self.kube_scheduler();
        self.provision();
        self.disrupt();
        self.account();
    }

    fn set_replicas(&mut self, d: usize, replicas: usize) {
        let live: Vec<usize> = (0..self.pods.len())
            .filter(|&p| !self.pods[p].gone && self.pods[p].deployment == d)
            .collect();
        if live.len() < replicas {
            let template = self.scenario.deployments[d].template.clone();
            for _ in live.len()..replicas {
                let mut pod = template.clone();
                pod.name = Sym::new(&format!(
                    "{}-{:05}",
                    self.scenario.deployments[d].name, self.pod_serial
                ));
                pod.created = self.pod_serial as u64;
                self.pod_serial += 1;
                self.pods.push(SimPod {
                    pod,
                    deployment: d,
                    node: None,
                    nominated: None,
                    pending_since: self.now,
                    gone: false,
                });
            }
            self.last_pending_change = self.now;
        } else {
            // Newest first, as a ReplicaSet scales down unscheduled and young pods first.
            for &p in live.iter().rev().take(live.len() - replicas) {
                self.pods[p].gone = true;
                if let Some(n) = self.pods[p].node {
                    self.nodes[n].node.last_pod_event = self.unix();
                }
            }
        }
    }

    fn apply_scales(&mut self) {
        while let Some(e) = self.scenario.events.get(self.next_scale).cloned() {
            if e.at_ms > self.now {
                break;
            }
            self.next_scale += 1;
            let EventKind::Scale {
                deployment,
                replicas,
            } = e.kind
            else {
                continue;
            };
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
    }

    fn nodes_become_ready(&mut self) {
        for n in self.nodes.iter_mut() {
            if let NodeState::Launching { ready_at } = n.state
                && ready_at <= self.now
            {
                n.state = NodeState::Ready;
                n.node.initialized = true;
                n.node.ready = true;
                self.events.push(SimEvent::NodeReady {
                    at_ms: self.now,
                    name: n.node.name,
                });
            }
        }
    }

    fn live(&self, n: usize) -> bool {
        self.nodes[n].state != NodeState::Gone
    }

    /// The cluster as the engines see it: live nodes with the pods bound or
    /// nominated to them.
    fn snapshot(&self, ready_only: bool) -> (Snapshot, Vec<usize>) {
        let mut s = self.scenario.cluster.clone();
        s.nodes.clear();
        let mut index = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let take = match n.state {
                NodeState::Gone => false,
                NodeState::Launching { .. } => !ready_only,
                NodeState::Ready => true,
            };
            if !take {
                continue;
            }
            let mut node = n.node.clone();
            node.pods = self
                .pods
                .iter()
                .filter(|p| {
                    !p.gone
                        && (p.node == Some(i)
                            || (!ready_only && p.node.is_none() && p.nominated == Some(i)))
                })
                .map(|p| p.pod.clone())
                .collect();
            node.nominated = self
                .pods
                .iter()
                .any(|p| !p.gone && p.node.is_none() && p.nominated == Some(i));
            s.nodes.push(node);
            index.push(i);
        }
        (s, index)
    }

    fn pending(&self) -> Vec<usize> {
        (0..self.pods.len())
            .filter(|&p| !self.pods[p].gone && self.pods[p].node.is_none())
            .collect()
    }

    fn bind(&mut self, p: usize, n: usize) {
        self.pods[p].node = Some(n);
        self.pods[p].nominated = None;
        self.pods[p].pod.started_at = self.unix();
        self.nodes[n].node.last_pod_event = self.unix();
        self.pending_latencies
            .push((self.now - self.pods[p].pending_since) as f64 / 1000.0);
        if self.report.totals.all_running_after_seconds.is_none() && self.pending().is_empty() {
            self.report.totals.all_running_after_seconds = Some(self.now as f64 / 1000.0);
        }
    }

    /// kube-scheduler: pending pods onto Ready nodes with room.
    fn kube_scheduler(&mut self) {
        let pending = self.pending();
        if pending.is_empty() {
            return;
        }
        let (mut snapshot, index) = self.snapshot(true);
        if snapshot.nodes.is_empty() {
            return;
        }
        snapshot.node_pools.clear();
        let pods: Vec<Pod> = pending.iter().map(|&p| self.pods[p].pod.clone()).collect();
        let plan = solve(&snapshot, &pods);
        for b in &plan.bindings {
            let Some(p) = pending
                .iter()
                .copied()
                .find(|&p| self.pods[p].pod.key() == b.pod)
            else {
                continue;
            };
            let Some(slot) = snapshot.nodes.iter().position(|n| n.name == b.node) else {
                continue;
            };
            self.bind(p, index[slot]);
        }
        if self.pending().is_empty() {
            self.report
                .totals
                .all_running_after_seconds
                .get_or_insert(self.now as f64 / 1000.0);
        }
    }

    fn provision(&mut self) {
        let waiting: Vec<usize> = self
            .pending()
            .into_iter()
            .filter(|&p| self.pods[p].nominated.is_none_or(|n| !self.live(n)))
            .collect();
        if waiting.is_empty() {
            self.batch_started = None;
            return;
        }
        let started = *self.batch_started.get_or_insert(self.now);
        let idle =
            self.now.saturating_sub(self.last_pending_change) >= self.scenario.models.batch_idle_ms;
        let full = self.now.saturating_sub(started) >= self.scenario.models.batch_max_ms;
        if !idle && !full {
            return;
        }
        self.batch_started = None;
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
        let key_of = |s: &Self, key: &PodKey| {
            waiting
                .iter()
                .copied()
                .find(|&p| s.pods[p].pod.key() == *key)
        };
        for b in &round.plan.bindings {
            if let (Some(p), Some(slot)) = (
                key_of(self, &b.pod),
                snapshot.nodes.iter().position(|n| n.name == b.node),
            ) {
                self.pods[p].nominated = Some(index[slot]);
            }
        }
        for (claim, launch) in round.plan.node_claims.iter().zip(&round.launch.launches) {
            let Ok(offerings) = launch else { continue };
            let Some(first) = offerings.first() else {
                continue;
            };
            let n = self.launch(claim.node_pool, first);
            for key in &claim.pods {
                if let Some(p) = key_of(self, key) {
                    self.pods[p].nominated = Some(n);
                }
            }
        }
    }

    /// Launches an instance for `offering` from NodePool `pool`.
    fn launch(&mut self, pool: Sym, offering: &OfferingRef) -> usize {
        let catalog = self.scenario.cluster.catalog.clone();
        let it = catalog
            .get(offering.instance_type.as_str())
            .expect("launch lists only name catalog types");
        let name = Sym::new(&format!("{pool}-{:05x}", self.rng.next_u64() & 0xfffff));
        let mut node_labels = it.labels.clone();
        node_labels.push((Sym::new(labels::ZONE), offering.zone));
        node_labels.push((
            Sym::new(labels::CAPACITY_TYPE),
            Sym::new(offering.capacity_type.label()),
        ));
        node_labels.push((Sym::new(labels::HOSTNAME), name));
        node_labels.push((Sym::new(labels::NODE_POOL), pool));
        let template = self
            .scenario
            .cluster
            .node_pools
            .iter()
            .find(|p| p.name == pool);
        if let Some(t) = template {
            node_labels.extend(t.labels.iter().copied());
        }
        node_labels.sort_by_key(|&(k, _)| k);
        node_labels.dedup_by_key(|(k, _)| *k);
        let node = Node {
            name,
            node_pool: Some(pool),
            labels: node_labels,
            annotations: Vec::new(),
            taints: template.map(|t| t.taints.clone()).unwrap_or_default(),
            startup_taints: Vec::new(),
            capacity: it.capacity.clone(),
            allocatable: it.allocatable(),
            initialized: false,
            pods: Vec::new(),
            marked_for_deletion: false,
            price_per_hour: offering.price,
            created_at: self.unix(),
            ready: false,
            nominated: false,
            last_pod_event: self.unix(),
            node_pool_hash: template.map(|t| t.template_hash()),
        };
        let m = &self.scenario.models;
        self.nodes.push(SimNode {
            node,
            state: NodeState::Launching {
                ready_at: self.now + m.launch_ms + m.ready_ms,
            },
            capacity_type: offering.capacity_type,
        });
        self.report.totals.nodes_launched += 1;
        self.events.push(SimEvent::NodeLaunched {
            at_ms: self.now,
            name,
            instance_type: offering.instance_type,
            zone: offering.zone,
            capacity_type: offering.capacity_type,
            price: offering.price,
        });
        self.nodes.len() - 1
    }

    fn node_by_name(&self, name: Sym) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.node.name == name && n.state != NodeState::Gone)
    }

    fn disrupt(&mut self) {
        match self.in_progress.take() {
            None => {
                if self.now == 0
                    || !self
                        .now
                        .is_multiple_of(self.scenario.models.disruption_interval_ms)
                {
                    return;
                }
                let (snapshot, _) = self.snapshot(false);
                let pass = disruption::disrupt(
                    &snapshot,
                    self.unix(),
                    self.scorer,
                    &self.scenario.models.disruption,
                );
                // Expiration is forceful: straight to deletion.
                let mut voluntary = None;
                for cmd in pass.commands {
                    if cmd.method == Method::Expiration {
                        self.execute(&cmd);
                    } else if voluntary.is_none() {
                        voluntary = Some(cmd);
                    }
                }
                if let Some(command) = voluntary {
                    self.in_progress = Some(InProgress::Validating {
                        due: self.now + self.scenario.models.validation_delay_ms,
                        command,
                    });
                }
            }
            Some(InProgress::Validating { due, command }) if due <= self.now => {
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
                for name in &command.nodes {
                    if let Some(n) = self.node_by_name(*name) {
                        self.nodes[n].node.marked_for_deletion = true;
                    }
                }
                let mut replacements = Vec::new();
                for claim in &command.replacements {
                    if let Some(first) = claim.offerings.first() {
                        replacements.push(self.launch(claim.node_pool, first));
                    }
                }
                self.in_progress = Some(InProgress::Replacing {
                    command,
                    replacements,
                });
            }
            Some(InProgress::Replacing {
                command,
                replacements,
            }) => {
                if replacements
                    .iter()
                    .all(|&n| self.nodes[n].state == NodeState::Ready)
                {
                    self.execute(&command);
                } else {
                    self.in_progress = Some(InProgress::Replacing {
                        command,
                        replacements,
                    });
                }
            }
            Some(other) => self.in_progress = Some(other),
        }
    }

    /// Drains and deletes the command's nodes: their pods are pending again.
    fn execute(&mut self, command: &Command) {
        let why = format!(
            "{:?} ({}): {} [{}]",
            command.method, command.reason, command.policy_reason, command.decided_by
        );
        self.report.decisions.push(format!(
            "{}s {:?} {} -> {} replacement(s), saves ${:.4}/h: {}",
            self.now / 1000,
            command.method,
            command
                .nodes
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(","),
            command.replacements.len(),
            command.savings_per_hour,
            command.policy_reason
        ));
        self.events.push(SimEvent::Disruption {
            at_ms: self.now,
            summary: why.clone(),
        });
        for name in &command.nodes {
            let Some(n) = self.node_by_name(*name) else {
                continue;
            };
            for p in 0..self.pods.len() {
                if !self.pods[p].gone && self.pods[p].node == Some(n) {
                    self.pods[p].node = None;
                    self.pods[p].pending_since = self.now;
                    self.report.totals.pods_evicted += 1;
                    self.last_pending_change = self.now;
                }
                if self.pods[p].nominated == Some(n) {
                    self.pods[p].nominated = None;
                }
            }
            self.nodes[n].state = NodeState::Gone;
            self.report.totals.nodes_terminated += 1;
            self.events.push(SimEvent::NodeDeleted {
                at_ms: self.now,
                name: *name,
                why: why.clone(),
            });
        }
    }

    fn account(&mut self) {
        let live: f64 = self
            .nodes
            .iter()
            .filter(|n| n.state != NodeState::Gone)
            .map(|n| n.node.price_per_hour)
            .sum();
        self.report.totals.cost_usd += live * TICK_MS as f64 / 3_600_000.0;
        if self
            .now
            .is_multiple_of(self.scenario.models.sample_every_ms)
        {
            let count = |ct: CapacityType| {
                self.nodes
                    .iter()
                    .filter(|n| n.state != NodeState::Gone && n.capacity_type == ct)
                    .count()
            };
            let pending = self.pending().len();
            let running = self
                .pods
                .iter()
                .filter(|p| !p.gone && p.node.is_some())
                .count();
            self.report.timeline.push(Sample {
                at_seconds: self.now / 1000,
                nodes_on_demand: count(CapacityType::OnDemand),
                nodes_spot: count(CapacityType::Spot),
                pending_pods: pending,
                running_pods: running,
                cost_usd: self.report.totals.cost_usd,
            });
        }
    }

    fn finish(mut self) -> Report {
        let mut l = std::mem::take(&mut self.pending_latencies);
        l.sort_by(f64::total_cmp);
        let t = &mut self.report.totals;
        t.pending_p50_seconds = percentile(&l, 0.50);
        t.pending_p95_seconds = percentile(&l, 0.95);
        t.pending_p99_seconds = percentile(&l, 0.99);
        t.pending_max_seconds = l.last().copied().unwrap_or(0.0);
        self.report
    }
}
