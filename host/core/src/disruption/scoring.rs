//! What the consolidation-scoring policy sees of the candidates, its ranking
//! and its approval of a single move.

use crate::model::Node;
use crate::policy::ConsolidationScorer;
use crate::policy::consolidate::pod_disruption_cost;
use crate::policy::types::{
    CandidateTable, ConsolidationContext, Dictionary, NodePoolStats, ProposedMove,
};
use crate::scheduler::DictionaryIndex;
use crate::sym::Sym;

use super::budgets::DisruptionReason;
use super::candidates::{CandidateIndex, reschedulable};
use super::engine::Engine;

/// Candidate `c`'s row in a policy context made over `rows`.
pub(super) fn row(rows: &[CandidateIndex], c: CandidateIndex) -> u32 {
    rows.iter().position(|&r| r == c).unwrap_or(0) as u32
}

impl Engine<'_> {
    /// The policy's context over `rows`: row `i` of its candidate table is
    /// candidate `rows[i]`.
    pub(super) fn context(
        &self,
        rows: &[CandidateIndex],
        reason: DisruptionReason,
    ) -> ConsolidationContext {
        let s = self.snapshot;
        let mut index = DictionaryIndex::default();
        let mut node_names = Dictionary::default();
        let mut c = CandidateTable::default();
        for p in &s.node_pools {
            index.node_pool(p.name);
        }
        for &r in rows {
            let cand = &self.candidates[r];
            let node = &s.nodes[cand.node];
            let it = index.instance_type(&s.catalog, cand.instance_type);
            let zone = index.zone(cand.zone);
            let used = node.pods.iter().fold((0i64, 0i64), |(c, m), p| {
                (c + p.requests.cpu, m + p.requests.memory)
            });
            let share = |u: i64, a: i64| {
                if a > 0 {
                    (u as f64 / a as f64) as f32
                } else {
                    0.0
                }
            };
            c.node.push(node_names.push(node.name.as_str()));
            c.node_pool
                .push(index.node_pool(s.node_pools[cand.pool].name));
            c.instance_type.push(it);
            c.capacity_type.push(cand.capacity_type.code());
            c.zone.push(zone);
            c.price_per_hour.push(cand.price);
            c.age_seconds.push(self.now.saturating_sub(node.created_at));
            c.expire_after_seconds.push(
                s.node_pools[cand.pool]
                    .expire_after
                    .map_or(0, |d| d.as_secs()),
            );
            c.cpu_utilisation.push(share(used.0, node.allocatable.cpu));
            c.memory_utilisation
                .push(share(used.1, node.allocatable.memory));
            c.pods.push(cand.pods.len() as u32);
            c.disruption_cost.push(cand.disruption_cost);
            c.reason.push(reason.code());
        }
        let mut stats = NodePoolStats::default();
        for p in &s.node_pools {
            let nodes: Vec<&Node> = s
                .nodes
                .iter()
                .filter(|n| n.node_pool == Some(p.name))
                .collect();
            stats.nodes.push(nodes.len() as u32);
            stats
                .cost_per_hour
                .push(nodes.iter().map(|n| n.price_per_hour).sum());
            stats.disruption_cost.push(
                nodes
                    .iter()
                    .flat_map(|n| n.pods.iter().filter(|p| reschedulable(p)))
                    .map(|p| pod_disruption_cost(p.deletion_cost(), p.priority))
                    .sum(),
            );
        }
        ConsolidationContext {
            now_ms: self.now * 1000,
            seed: self.now,
            dictionaries: index.dicts,
            node_names,
            candidates: c,
            node_pools: stats,
        }
    }

    /// `rows` in the policy's order; rows it scores `None` are dropped.
    pub(super) fn ranked(
        &mut self,
        rows: Vec<CandidateIndex>,
        reason: DisruptionReason,
    ) -> (Vec<CandidateIndex>, ConsolidationContext) {
        let ctx = self.context(&rows, reason);
        let ranking = self.scorer.rank(&ctx).value;
        let mut scored: Vec<(f64, Sym, CandidateIndex)> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, &r)| {
                let score = ranking.get(i).copied().flatten()?;
                Some((score, self.snapshot.nodes[self.candidates[r].node].name, r))
            })
            .collect();
        scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        // Candidate indices (not positions in `rows`): callers index
        // `self.candidates` with them.
        (scored.into_iter().map(|s| s.2).collect(), ctx)
    }

    pub(super) fn approve_one(
        &mut self,
        ctx: &ConsolidationContext,
        rows: &[CandidateIndex],
        cands: &[CandidateIndex],
        mut mv: ProposedMove,
    ) -> Option<(String, String)> {
        mv.removed = cands.iter().map(|&c| row(rows, c)).collect();
        let decided = self.scorer.approve(ctx, &[mv]);
        let verdict = decided.value.into_iter().next()?;
        if verdict.approve {
            Some((decided.by, verdict.reason))
        } else {
            let names = cands
                .iter()
                .map(|&c| self.snapshot.nodes[self.candidates[c].node].name)
                .collect();
            self.pass.rejected.push((names, verdict.reason));
            None
        }
    }
}
