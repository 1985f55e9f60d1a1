//! Multi-node consolidation (Karpenter's `multinodeconsolidation.go`).

use std::collections::HashMap;

use crate::disruption::budgets::DisruptionReason;
use crate::disruption::candidates::{CandidateIndex, PoolIndex};
use crate::disruption::command::Method;
use crate::disruption::engine::Engine;

impl Engine<'_> {
    /// Karpenter's multi-node consolidation: the largest prefix (of at most
    /// 100, at least 2) of the ranked candidates whose pods fit on the rest
    /// plus at most one cheaper node, found by binary search.
    pub(in crate::disruption) fn multi_node(&mut self) -> bool {
        let (rows, order, ctx) = self.underutilized();
        let mut used: HashMap<PoolIndex, u32> = HashMap::new();
        let mut within: Vec<CandidateIndex> = Vec::new();
        for &c in &order {
            if within.len() >= self.settings.max_multi_node {
                break;
            }
            let pool = self.candidates[c].pool;
            let n = used.entry(pool).or_default();
            if *n < self.allowed(pool, DisruptionReason::Underutilized) {
                *n += 1;
                within.push(c);
            }
        }
        if within.len() < 2 {
            return false;
        }
        self.pass.candidates_evaluated += within.len();
        let (mut lo, mut hi) = (2usize, within.len());
        let mut best = None;
        while lo <= hi {
            let mid = (lo + hi) / 2;
            match self.consolidation_move(&within[..mid], true) {
                Ok((mv, claims)) if mv.savings_per_hour > 0.0 => {
                    best = Some((mid, mv, claims));
                    lo = mid + 1;
                }
                _ => hi = mid - 1,
            }
        }
        let Some((n, mv, claims)) = best else {
            return false;
        };
        let savings = mv.savings_per_hour;
        let prefix = within[..n].to_vec();
        let Some((by, why)) = self.approve_one(&ctx, &rows, &prefix, mv) else {
            return false;
        };
        let cmd = self.command(
            Method::MultiNodeConsolidation,
            DisruptionReason::Underutilized,
            &prefix,
            claims,
            savings,
            (by, why),
        );
        self.pass.commands.push(cmd);
        true
    }
}
