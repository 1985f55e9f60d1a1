//! Emptiness: consolidatable nodes with no pods to move are deleted, as many
//! as the Empty budgets allow, in the policy's order.

use crate::policy::ConsolidationScorer;
use std::collections::HashMap;

use crate::policy::types::ProposedMove;

use super::budgets::DisruptionReason;
use super::candidates::{CandidateIndex, PoolIndex};
use super::command::Method;
use super::engine::Engine;
use super::scoring::row;

impl Engine<'_> {
    /// Deletes empty nodes, as many as the Empty budgets allow.
    pub(super) fn emptiness(&mut self) -> bool {
        let rows: Vec<CandidateIndex> = (0..self.candidates.len())
            .map(CandidateIndex)
            .filter(|&c| self.candidates[c].consolidatable && self.candidates[c].pods.is_empty())
            .collect();
        if rows.is_empty() {
            return false;
        }
        let (order, ctx) = self.ranked(rows.clone(), DisruptionReason::Empty);
        let moves: Vec<ProposedMove> = order
            .iter()
            .map(|&c| {
                let row = row(&rows, c);
                ProposedMove {
                    reason: DisruptionReason::Empty.code(),
                    removed: vec![row],
                    replacement_price_per_hour: None,
                    savings_per_hour: self.candidates[c].price,
                    pods_evicted: 0,
                    disruption_cost: 0.0,
                }
            })
            .collect();
        self.pass.candidates_evaluated += order.len();
        let decided = self.scorer.approve(&ctx, &moves);
        let mut used: HashMap<PoolIndex, u32> = HashMap::new();
        let mut chosen = Vec::new();
        let mut savings = 0.0;
        let mut reasons = Vec::new();
        for (&c, verdict) in order.iter().zip(&decided.value) {
            let pool = self.candidates[c].pool;
            if !verdict.approve {
                self.pass.rejected.push((
                    vec![self.snapshot.nodes[self.candidates[c].node].name],
                    verdict.reason.clone(),
                ));
                continue;
            }
            let n = used.entry(pool).or_default();
            if *n >= self.allowed(pool, DisruptionReason::Empty) {
                continue;
            }
            *n += 1;
            savings += self.candidates[c].price;
            chosen.push(c);
            reasons.push(verdict.reason.clone());
        }
        if chosen.is_empty() {
            return false;
        }
        let cmd = self.command(
            Method::Emptiness,
            DisruptionReason::Empty,
            &chosen,
            Vec::new(),
            savings,
            (
                decided.by.clone(),
                reasons.first().cloned().unwrap_or_default(),
            ),
        );
        self.pass.commands.push(cmd);
        true
    }
}
