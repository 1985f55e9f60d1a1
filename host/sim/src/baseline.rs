//! The static node-group baseline: how Cluster Autoscaler scales fixed node
//! groups, so a report can put Dovetail's cost next to it.
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
//!   when their pods fit on the remaining nodes. Drains respect PDBs.
//! - No consolidation by replacement, no spot-to-spot moves, no instance
//!   choice beyond the groups: that is the difference being measured.

use dovetail_core::labels;
use dovetail_core::model::{NodePool, Pod};
use dovetail_core::requirements::{NodeSelectorRequirement, Operator};
use dovetail_core::scheduler::{OfferingRef, solve};
use dovetail_core::sym::Sym;

use crate::engine::{NodeState, Simulation};
use crate::report::DecisionRecord;
use crate::types::{Autoscaler, NodeGroup};

const MAX_EMPTY_AT_ONCE: usize = 10;

#[derive(Debug, Default)]
pub(crate) struct State {
    zone_turn: usize,
    /// The cluster version at the last failed non-empty removal check.
    fit_failed_at: Option<u64>,
}

pub(crate) fn scan(sim: &mut Simulation<'_>) {
    let Autoscaler::StaticNodeGroups(groups) = sim.scenario.autoscaler.clone() else {
        return;
    };
    if !sim
        .now
        .is_multiple_of(sim.scenario.models.baseline.scan_ms.max(1000))
    {
        return;
    }
    scale_up(sim, &groups);
    scale_down(sim);
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

fn group_size(sim: &Simulation<'_>, group: &NodeGroup) -> usize {
    sim.nodes
        .iter()
        .filter(|n| {
            n.state != NodeState::Gone
                && n.instance_type == group.instance_type
                && n.capacity_type == group.capacity_type
        })
        .count()
}

fn scale_up(sim: &mut Simulation<'_>, groups: &[NodeGroup]) {
    let waiting = sim.waiting();
    if waiting.is_empty() {
        return;
    }
    let (mut snapshot, index) = sim.snapshot(false);
    let pods: Vec<Pod> = waiting.iter().map(|&p| sim.pods[p].pod.clone()).collect();
    // (waste, -pods placed, group) — lowest wins.
    let mut best: Option<((f64, i64, usize), dovetail_core::scheduler::Plan)> = None;
    for (g, group) in groups.iter().enumerate() {
        let room = group.max.saturating_sub(group_size(sim, group));
        if room == 0 {
            continue;
        }
        snapshot.node_pools = vec![group_pool(group)];
        let plan = solve(&snapshot, &pods);
        let Some(it) = sim.catalog.get(group.instance_type.as_str()) else {
            continue;
        };
        let alloc = it.allocatable();
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
        return;
    };
    let group = &groups[g];
    let by_key: std::collections::HashMap<_, _> = waiting
        .iter()
        .map(|&p| (sim.pods[p].pod.key(), p))
        .collect();
    sim.version += 1;
    // Pods the simulation put on existing or launching nodes wait there.
    for b in &plan.bindings {
        if let (Some(&p), Some(slot)) = (
            by_key.get(&b.pod),
            snapshot.nodes.iter().position(|n| n.name == b.node),
        ) {
            sim.pods[p].nominated = Some(index[slot]);
        }
    }
    let room = group.max.saturating_sub(group_size(sim, group));
    let mut launched = Vec::new();
    for claim in plan
        .node_claims
        .iter()
        .filter(|c| c.error.is_none())
        .take(room)
    {
        let mut offerings: Vec<OfferingRef> = claim.offerings.clone();
        offerings.sort_by_key(|o| o.zone);
        if !offerings.is_empty() {
            let turn = sim.baseline.zone_turn % offerings.len();
            offerings.rotate_left(turn);
            sim.baseline.zone_turn += 1;
        }
        if let Some(n) = sim.try_launch(None, &offerings) {
            let node = &sim.nodes[n];
            launched.push(format!(
                "{}/{}/{}",
                node.instance_type, node.zone, node.capacity_type
            ));
            for key in &claim.pods {
                if let Some(&p) = by_key.get(key) {
                    sim.pods[p].nominated = Some(n);
                }
            }
        }
    }
    if !launched.is_empty() {
        sim.report.decisions.push(DecisionRecord {
            at_seconds: sim.now / 1000,
            kind: "scale-up".into(),
            nodes: Vec::new(),
            savings_per_hour: 0.0,
            pods: waiting.len(),
            decided_by: "least-waste".into(),
            reason: format!(
                "node group {} {} (+{}), waste {:.2}",
                group.instance_type,
                group.capacity_type,
                launched.len(),
                waste / 2.0
            ),
            launched,
        });
    }
}

fn scale_down(sim: &mut Simulation<'_>) {
    let model = sim.scenario.models.baseline.clone();
    let now = sim.now;
    let mut candidates = Vec::new();
    for n in 0..sim.nodes.len() {
        let node = &mut sim.nodes[n];
        if node.state != NodeState::Ready || node.drain.is_some() {
            continue;
        }
        let alloc = &node.node.allocatable;
        let cpu = node.requested.cpu as f64 / alloc.cpu.max(1) as f64;
        let mem = node.requested.memory as f64 / alloc.memory.max(1) as f64;
        if cpu.max(mem) < model.utilization_threshold {
            let since = *node.unneeded_since.get_or_insert(now);
            if now - since >= model.unneeded_ms {
                candidates.push((since, node.node.name, n));
            }
        } else {
            node.unneeded_since = None;
        }
    }
    candidates.sort();
    let mut removed = Vec::new();
    for &(_, _, n) in &candidates {
        if removed.len() < MAX_EMPTY_AT_ONCE && sim.movable_pods(n) == 0 {
            removed.push(n);
        }
    }
    let busy = sim.draining.iter().any(|&n| {
        sim.nodes[n]
            .drain
            .as_ref()
            .is_some_and(|d| d.terminate_at.is_none())
    });
    if removed.is_empty() && !busy && sim.baseline.fit_failed_at != Some(sim.version) {
        for &(_, _, n) in &candidates {
            if sim.movable_pods(n) == 0 {
                continue;
            }
            let (mut snapshot, index) = sim.snapshot(true);
            snapshot.node_pools.clear();
            let Some(slot) = index.iter().position(|&i| i == n) else {
                continue;
            };
            let node = snapshot.nodes.remove(slot);
            let pods: Vec<Pod> = node
                .pods
                .into_iter()
                .filter(|p| p.daemon_set.is_none())
                .collect();
            let plan = solve(&snapshot, &pods);
            if plan.unschedulable.is_empty() && plan.bindings.len() == pods.len() {
                removed.push(n);
                break;
            }
        }
        if removed.is_empty() {
            sim.baseline.fit_failed_at = Some(sim.version);
        }
    }
    for n in removed {
        let name = sim.nodes[n].node.name;
        let pods = sim.movable_pods(n);
        let threshold = model.utilization_threshold * 100.0;
        let why = format!(
            "under {threshold:.0}% utilisation for {} min",
            model.unneeded_ms / 60_000
        );
        sim.report.totals.disruptions += 1;
        sim.report.decisions.push(DecisionRecord {
            at_seconds: now / 1000,
            kind: "scale-down".into(),
            nodes: vec![name.to_string()],
            launched: Vec::new(),
            savings_per_hour: sim.nodes[n].node.price_per_hour,
            pods,
            decided_by: "cluster-autoscaler".into(),
            reason: why.clone(),
        });
        sim.start_drain(n, None, why);
    }
}
