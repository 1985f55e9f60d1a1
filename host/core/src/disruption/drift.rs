//! Drift: nodes whose NodePool template changed since launch, or whose labels
//! no longer meet its requirements, are replaced, within the Drifted budgets.

use std::collections::HashMap;

use crate::model::{Node, NodePool};
use crate::requirements::Requirements;

use super::budgets::DisruptionReason;
use super::candidates::{CandidateIndex, PoolIndex};
use super::command::Method;
use super::engine::Engine;
use super::simulate::{Fit, Purpose};

/// What drift checks against, computed once per NodePool and pass.
pub(super) struct PoolFacts {
    hash: u64,
    requirements: Option<Requirements>,
}

impl PoolFacts {
    pub(super) fn new(pool: &NodePool) -> Self {
        Self {
            hash: pool.template_hash(),
            requirements: Requirements::from_terms(&pool.requirements).ok(),
        }
    }
}

/// Why a node has drifted from its NodePool, if it has.
pub(super) fn drift(pool: &NodePool, facts: &PoolFacts, node: &Node) -> Option<String> {
    if let Some(h) = node.node_pool_hash
        && h != facts.hash
    {
        return Some(format!("NodePool `{}` template changed", pool.name));
    }
    if let Some(reqs) = facts.requirements.as_ref() {
        let node_labels = Requirements::from_labels(node.labels.iter().map(|(k, v)| (k, v)));
        if let Err(e) = node_labels.compatible(reqs, false, "the node") {
            return Some(format!(
                "no longer meets NodePool `{}` requirements: {e}",
                pool.name
            ));
        }
    }
    node.cloud_drift
        .as_ref()
        .map(|d| format!("{d}: the instance no longer matches its node class"))
}

impl Engine<'_> {
    /// Replaces the first drifted node whose pods can move (empty drifted
    /// nodes all at once), within the Drifted budgets.
    pub(super) fn drift(&mut self) -> bool {
        let mut drifted: Vec<CandidateIndex> = (0..self.candidates.len())
            .map(CandidateIndex)
            .filter(|&c| self.candidates[c].drift.is_some())
            .collect();
        if drifted.is_empty() {
            return false;
        }
        // Cheapest to disrupt first, as Karpenter orders candidates.
        drifted.sort_by(|&a, &b| {
            let (x, y) = (&self.candidates[a], &self.candidates[b]);
            x.disruption_cost.total_cmp(&y.disruption_cost).then(
                self.snapshot.nodes[x.node]
                    .name
                    .cmp(&self.snapshot.nodes[y.node].name),
            )
        });
        let mut used: HashMap<PoolIndex, u32> = HashMap::new();
        let mut empty = Vec::new();
        for &c in &drifted {
            let pool = self.candidates[c].pool;
            let n = used.entry(pool).or_default();
            if self.candidates[c].pods.is_empty()
                && *n < self.allowed(pool, DisruptionReason::Drifted)
            {
                *n += 1;
                empty.push(c);
            }
        }
        if !empty.is_empty() {
            let why = self.candidates[empty[0]].drift.clone().unwrap_or_default();
            let cmd = self.command(
                Method::Drift,
                DisruptionReason::Drifted,
                &empty,
                Vec::new(),
                0.0,
                ("engine".into(), why),
            );
            self.pass.commands.push(cmd);
            return true;
        }
        for &c in &drifted {
            let pool = self.candidates[c].pool;
            if self.allowed(pool, DisruptionReason::Drifted) == 0 {
                continue;
            }
            self.pass.candidates_evaluated += 1;
            let replacements = match self.fit(&[c], None, Purpose::Drift) {
                Fit::No(_) => continue,
                Fit::Delete => Vec::new(),
                Fit::Replace(claims) => claims,
            };
            let why = self.candidates[c].drift.clone().unwrap_or_default();
            let cmd = self.command(
                Method::Drift,
                DisruptionReason::Drifted,
                &[c],
                replacements,
                0.0,
                ("engine".into(), why),
            );
            self.pass.commands.push(cmd);
            return true;
        }
        false
    }
}
