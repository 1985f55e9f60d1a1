//! Single-node consolidation (Karpenter's `singlenodeconsolidation.go`).

use crate::disruption::budgets::DisruptionReason;
use crate::disruption::candidates::CandidateIndex;
use crate::disruption::command::Method;
use crate::disruption::engine::Engine;
use crate::disruption::scoring::row;
use crate::disruption::unconsolidated::{Unconsolidated, UnconsolidatedReason};
use crate::policy::ConsolidationScorer;
use crate::policy::types::ConsolidationContext;

use super::MoveResult;

impl Engine<'_> {
    /// batch; the first approved in rank order acts. Batches start at a few
    /// per core and double, so a pass that finds a move early stops early,
    /// and one that finds none still makes few policy calls.
    /// [`Settings::evaluate_all`] sends every move in one call instead.
    pub(in crate::disruption) fn single_node(&mut self) -> bool {
        let (rows, mut order, ctx) = self.underutilized();
        if let Some(only) = &self.settings.single_node_only {
            let s = self.snapshot;
            order.retain(|&c| only.contains(&s.nodes[self.candidates[c].node].name));
        }
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut batch = if self.settings.evaluate_all {
            order.len()
        } else {
            4 * workers
        };
        let mut start = 0;
        while start < order.len() {
            let end = (start + batch.max(1)).min(order.len());
            if self.single_node_batch(&rows, &order[start..end], &ctx, workers) {
                return true;
            }
            start = end;
            batch *= 2;
        }
        false
    }

    fn single_node_batch(
        &mut self,
        rows: &[CandidateIndex],
        order: &[CandidateIndex],
        ctx: &ConsolidationContext,
        workers: usize,
    ) -> bool {
        // Every candidate's what-if is independent: spread them over the
        // machine's cores, keeping rank order in the results.
        let workers = workers.min(order.len().max(1));
        let chunk = order.len().div_ceil(workers.max(1)).max(1);
        let this = &*self;
        let results: Vec<(CandidateIndex, MoveResult)> = std::thread::scope(|scope| {
            let handles: Vec<_> = order
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|&c| (c, this.consolidation_move(&[c], false)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        self.pass.candidates_evaluated += results.len();
        let mut moves = Vec::new();
        let mut found = Vec::new();
        for (c, result) in results {
            match result {
                Ok((mut mv, claims)) => {
                    mv.removed = vec![row(rows, c)];
                    moves.push(mv);
                    found.push((c, claims));
                }
                Err(why) => self.pass.unconsolidated.push(Unconsolidated {
                    node: self.snapshot.nodes[self.candidates[c].node].name,
                    reason: UnconsolidatedReason::NoMove(why),
                }),
            }
        }
        if moves.is_empty() {
            return false;
        }
        let decided = self.scorer.approve(ctx, &moves);
        for ((c, claims), (mv, verdict)) in found.into_iter().zip(moves.iter().zip(decided.value)) {
            if verdict.approve {
                let cmd = self.command(
                    Method::SingleNodeConsolidation,
                    DisruptionReason::Underutilized,
                    &[c],
                    claims,
                    mv.savings_per_hour,
                    (decided.by.clone(), verdict.reason),
                );
                self.pass.commands.push(cmd);
                return true;
            }
            self.pass.rejected.push((
                vec![self.snapshot.nodes[self.candidates[c].node].name],
                verdict.reason,
            ));
        }
        false
    }
}
