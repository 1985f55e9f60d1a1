//! The static node-group baseline: how Cluster Autoscaler scales fixed node
//! groups, so a report can put Dovetail's cost next to it. It is another
//! implementation of the autoscaler seam Dovetail's controller fills, and
//! reuses the same NodeClaim lifecycle and termination (drains honour PDBs
//! the same way), so only the decisions differ.
//!
//! - Every scan interval, pending pods that no node has room for trigger a
//!   scale-up. Each node group is simulated on its own (the same scheduling
//!   code Dovetail uses, with a NodePool pinned to the group's instance
//!   type); the **least-waste** expander picks the group whose new nodes
//!   leave the smallest share of CPU and memory unrequested, and that group
//!   grows by the nodes the simulation needed (up to its max). Zones are
//!   taken in turn, as an Auto Scaling group balances them.
//! - Scale-down: a Ready node whose requested CPU and memory are both below
//!   the utilisation threshold is unneeded; after `unneeded_ms` it is
//!   removed — empty nodes up to ten at a time, others one at a time and only
//!   when their pods fit on the remaining nodes.
//! - No consolidation by replacement, no spot-to-spot moves, no instance
//!   choice beyond the groups: that is the difference being measured.

use std::collections::{BTreeSet, HashMap};

use dovetail_control::actions::{Action, NominationTarget};
use dovetail_control::controller::{Autoscaler, CatalogView, Cluster, execute, interrupt};
use dovetail_control::decision::{CreatedClaim, Decision};
use dovetail_control::interruption::Interruption;
use dovetail_control::lifecycle::{Lifecycle, Step};
use dovetail_control::names::Names;
use dovetail_control::snapshot::snapshot;
use dovetail_control::state::ClusterState;
use dovetail_control::termination::Termination;
use dovetail_control::unavailable::UnavailableOfferings;
use dovetail_control::{CloudProvider, template};
use dovetail_core::labels;
use dovetail_core::model::{NodePool, Pod};
use dovetail_core::requirements::{NodeSelectorRequirement, Operator};
use dovetail_core::scheduler::{OfferingRef, Plan, solve};
use dovetail_core::sym::Sym;

use crate::types::{BaselineModel, NodeGroup};

const MAX_EMPTY_AT_ONCE: usize = 10;

pub(crate) struct StaticNodeGroups {
    groups: Vec<NodeGroup>,
    model: BaselineModel,
    names: Names,
    lifecycle: Lifecycle,
    termination: Termination,
    unavailable: UnavailableOfferings,
    catalog: CatalogView,
    origin_ms: Option<u64>,
    zone_turn: usize,
    /// The cluster version at the last failed non-empty removal check.
    fit_failed_at: Option<u64>,
    /// Since when each node has been under the utilisation threshold.
    unneeded_since: HashMap<Sym, u64>,
    /// NodeClaims scale-down is removing.
    removing: BTreeSet<Sym>,
}

impl StaticNodeGroups {
    pub fn new(groups: Vec<NodeGroup>, model: BaselineModel, seed: u64) -> Self {
        Self {
            groups,
            model,
            names: Names::new(seed),
            lifecycle: Lifecycle::default(),
            termination: Termination::default(),
            unavailable: UnavailableOfferings::default(),
            catalog: CatalogView::default(),
            origin_ms: None,
            zone_turn: 0,
            fit_failed_at: None,
            unneeded_since: HashMap::new(),
            removing: BTreeSet::new(),
        }
    }

    fn scan_due(&mut self, now_ms: u64) -> bool {
        let origin = *self.origin_ms.get_or_insert(now_ms);
        (now_ms - origin).is_multiple_of(self.model.scan_ms.max(1000))
    }
}

impl Autoscaler for StaticNodeGroups {
    fn reconcile(
        &mut self,
        cluster: &mut dyn Cluster,
        cloud: &mut dyn CloudProvider,
        now_ms: u64,
    ) -> Vec<Decision> {
        let mut decisions = Vec::new();
        self.unavailable.expire(now_ms);
        self.catalog.refresh(cloud, &self.unavailable);
        if self.scan_due(now_ms) {
            let step = self.scale_up(cluster.state(), now_ms);
            execute(cluster, &mut self.termination, step, now_ms, &mut decisions);
            let step = self.scale_down(cluster.state(), now_ms);
            execute(cluster, &mut self.termination, step, now_ms, &mut decisions);
        }
        let step = self.lifecycle.reconcile(
            cluster.state(),
            cloud,
            &mut self.unavailable,
            self.catalog.catalog(),
            now_ms,
        );
        execute(cluster, &mut self.termination, step, now_ms, &mut decisions);
        let step = self.termination.reconcile(cluster.state(), cloud, now_ms);
        execute(cluster, &mut self.termination, step, now_ms, &mut decisions);
        let state = cluster.state();
        self.removing.retain(|c| state.claim_by_name(*c).is_some());
        decisions
    }

    fn interruption(
        &mut self,
        cluster: &mut dyn Cluster,
        message: &Interruption,
        now_ms: u64,
    ) -> Vec<Decision> {
        interrupt(
            cluster,
            &mut self.termination,
            &mut self.unavailable,
            message,
            now_ms,
        )
    }
}

fn requirement(key: &str, values: &[Sym]) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: key.to_string(),
        operator: Operator::In,
        values: values.iter().map(|v| v.to_string()).collect(),
        min_values: None,
    }
}

/// A NodePool that can only make nodes of `group`.
fn group_pool(group: &NodeGroup) -> NodePool {
    let mut pool = NodePool::new(&format!("group-{}", group.instance_type));
    pool.requirements = vec![
        requirement(labels::INSTANCE_TYPE, &[group.instance_type]),
        requirement(
            labels::CAPACITY_TYPE,
            &[Sym::new(group.capacity_type.label())],
        ),
    ];
    if !group.zones.is_empty() {
        pool.requirements
            .push(requirement(labels::ZONE, &group.zones));
    }
    pool
}

/// Nodes of the group, launched or launching.
fn group_size(state: &ClusterState, group: &NodeGroup) -> usize {
    state
        .claims()
        .filter(|(_, c)| {
            let o = c
                .status
                .launched
                .map(|l| (l.instance_type, l.capacity_type))
                .or_else(|| c.launch.first().map(|o| (o.instance_type, o.capacity_type)));
            o == Some((group.instance_type, group.capacity_type))
        })
        .count()
}

impl StaticNodeGroups {
    fn scale_up(&mut self, state: &ClusterState, now_ms: u64) -> Step {
        let mut step = Step::default();
        let waiting = state.waiting(now_ms);
        if waiting.is_empty() {
            return step;
        }
        let catalog = self.catalog.catalog().clone();
        let view = snapshot(state, &catalog, true, now_ms);
        let mut snap = view.snapshot.clone();
        let pods: Vec<Pod> = waiting
            .iter()
            .filter_map(|&p| state.pod(p))
            .map(|e| Pod::clone(&e.pod))
            .collect();
        // (waste, -pods placed, group) — lowest wins.
        let mut best: Option<((f64, i64, usize), Plan)> = None;
        for (g, group) in self.groups.iter().enumerate() {
            let room = group.max.saturating_sub(group_size(state, group));
            if room == 0 {
                continue;
            }
            let pool = group_pool(group);
            let Some(size) =
                catalog.sizing(group.instance_type.as_str(), &pool.node_class_ref.name)
            else {
                continue;
            };
            let alloc = size.allocatable();
            snap.node_pools = vec![pool];
            let plan = solve(&snap, &pods);
            let claims: Vec<_> = plan
                .node_claims
                .iter()
                .filter(|c| c.error.is_none())
                .take(room)
                .collect();
            if claims.is_empty() {
                continue;
            }
            let n = claims.len() as f64;
            let cpu: i64 = claims.iter().map(|c| c.requests.cpu).sum();
            let mem: i64 = claims.iter().map(|c| c.requests.memory).sum();
            let waste = (1.0 - cpu as f64 / (alloc.cpu as f64 * n).max(1.0))
                + (1.0 - mem as f64 / (alloc.memory as f64 * n).max(1.0));
            let placed: usize = claims.iter().map(|c| c.pods.len()).sum();
            let key = (waste, -(placed as i64), g);
            if best.as_ref().is_none_or(|(k, _)| {
                key.0
                    .total_cmp(&k.0)
                    .then(key.1.cmp(&k.1))
                    .then(key.2.cmp(&k.2))
                    == std::cmp::Ordering::Less
            }) {
                best = Some((key, plan));
            }
        }
        let Some(((waste, _, g), plan)) = best else {
            return step;
        };
        let group = self.groups[g].clone();
        // Pods the simulation put on existing or launching nodes wait there.
        step.actions
            .extend(dovetail_control::provisioner::nominations(
                state, &view, &plan,
            ));
        let room = group.max.saturating_sub(group_size(state, &group));
        let mut names = Vec::new();
        let mut claims = Vec::new();
        for planned in plan
            .node_claims
            .iter()
            .filter(|c| c.error.is_none())
            .take(room)
        {
            let mut offerings: Vec<OfferingRef> = planned.offerings.clone();
            offerings.sort_by_key(|o| o.zone);
            if !offerings.is_empty() {
                let turn = self.zone_turn % offerings.len();
                offerings.rotate_left(turn);
                self.zone_turn += 1;
            }
            let name = self.names.next("node", state, &names);
            names.push(name);
            let claim = template::node_claim(name, planned, None, offerings, now_ms);
            claims.push(CreatedClaim::new(&claim, planned.pods.len()));
            step.actions.push(Action::CreateNodeClaim(claim));
            step.actions.push(Action::Nominate {
                pods: planned.pods.clone(),
                target: NominationTarget::NodeClaim(name),
            });
        }
        let count = claims.len();
        step.decisions.push(Decision::ScaledUp {
            claims,
            pods: waiting.len(),
            decided_by: "least-waste".into(),
            reason: format!(
                "node group {} {} (+{count}), waste {:.2}",
                group.instance_type,
                group.capacity_type,
                waste / 2.0
            ),
        });
        step
    }

    fn scale_down(&mut self, state: &ClusterState, now_ms: u64) -> Step {
        let mut step = Step::default();
        let mut candidates = Vec::new();
        let movable = |ids: &[dovetail_control::PodId]| {
            ids.iter()
                .filter_map(|p| state.pod(*p))
                .filter(|e| !e.pod.is_daemon())
                .count()
        };
        let mut seen = BTreeSet::new();
        for (_, claim) in state.claims() {
            let Some(node) = state.node_of_claim(claim).and_then(|n| state.node(n)) else {
                continue;
            };
            if !claim.initialized()
                || claim.deleting()
                || dovetail_control::state::node_leaving(node)
            {
                continue;
            }
            seen.insert(claim.name);
            let alloc = &node.node.allocatable;
            let cpu = node.requested.cpu as f64 / alloc.cpu.max(1) as f64;
            let mem = node.requested.memory as f64 / alloc.memory.max(1) as f64;
            if cpu.max(mem) < self.model.utilization_threshold {
                let since = *self.unneeded_since.entry(claim.name).or_insert(now_ms);
                if now_ms - since >= self.model.unneeded_ms {
                    candidates.push((since, claim.name, movable(&node.pods)));
                }
            } else {
                self.unneeded_since.remove(&claim.name);
            }
        }
        self.unneeded_since.retain(|c, _| seen.contains(c));
        candidates.sort();
        let mut removed: Vec<(Sym, usize)> = candidates
            .iter()
            .filter(|c| c.2 == 0)
            .take(MAX_EMPTY_AT_ONCE)
            .map(|c| (c.1, 0))
            .collect();
        let busy = !self.removing.is_empty();
        if removed.is_empty() && !busy && self.fit_failed_at != Some(state.version()) {
            let view = snapshot(state, self.catalog.catalog(), false, now_ms);
            for &(_, name, pods) in &candidates {
                if pods == 0 {
                    continue;
                }
                let mut snap = view.snapshot.clone();
                snap.node_pools.clear();
                snap.nodes
                    .retain(|n| n.initialized && !n.marked_for_deletion);
                let Some(slot) = snap.nodes.iter().position(|n| n.name == name) else {
                    continue;
                };
                let node = snap.nodes.remove(slot);
                let pods: Vec<Pod> = node
                    .pods
                    .iter()
                    .filter(|p| !p.is_daemon())
                    .map(|p| Pod::clone(p))
                    .collect();
                let plan = solve(&snap, &pods);
                if plan.unschedulable.is_empty() && plan.bindings.len() == pods.len() {
                    removed.push((name, pods.len()));
                    break;
                }
            }
            if removed.is_empty() {
                self.fit_failed_at = Some(state.version());
            }
        }
        let threshold = self.model.utilization_threshold * 100.0;
        for (name, pods) in removed {
            let price = state
                .claim_by_name(name)
                .and_then(|c| c.status.launched)
                .map_or(0.0, |l| l.price);
            self.removing.insert(name);
            step.actions.push(Action::DeleteNodeClaim { name });
            step.decisions.push(Decision::ScaledDown {
                nodes: vec![name],
                pods,
                savings_per_hour: price,
                decided_by: "cluster-autoscaler".into(),
                reason: format!(
                    "under {threshold:.0}% utilisation for {} min",
                    self.model.unneeded_ms / 60_000
                ),
            });
        }
        step
    }
}
