//! Why a pass left a candidate where it was: one reason for each candidate
//! no command took and no method could say more about, as Karpenter's
//! `Unconsolidatable` events tell users.

use std::collections::HashSet;
use std::fmt;

use crate::model::ConsolidationPolicy;
use crate::sym::Sym;

use super::budgets::DisruptionReason;
use super::candidates::CandidateIndex;
use super::engine::Engine;

/// Why a candidate was not consolidated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnconsolidatedReason {
    /// Its NodePool's `consolidateAfter` is `Never`.
    ConsolidationDisabled { node_pool: Sym },
    /// Its pods changed less than `consolidateAfter` ago.
    RecentlyChanged { consolidate_after_seconds: u64 },
    /// It has pods, and its NodePool consolidates only empty nodes.
    WhenEmptyOnly { node_pool: Sym },
    /// Its NodePool's budgets allow no disruption for `reason` now.
    NoBudget {
        node_pool: Sym,
        reason: DisruptionReason,
    },
    /// Its move was computed and there is none: why.
    NoMove(String),
    /// The consolidation-scoring policy rejected its move: its reason.
    Rejected(String),
}

impl fmt::Display for UnconsolidatedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConsolidationDisabled { node_pool } => {
                write!(f, "NodePool {node_pool} has consolidateAfter: Never")
            }
            Self::RecentlyChanged {
                consolidate_after_seconds: s,
            } => write!(f, "its pods changed less than consolidateAfter ({s}s) ago"),
            Self::WhenEmptyOnly { node_pool } => write!(
                f,
                "NodePool {node_pool} consolidates only empty nodes (consolidationPolicy: WhenEmpty)"
            ),
            Self::NoBudget { node_pool, reason } => write!(
                f,
                "NodePool {node_pool}'s budgets allow no {reason} disruption now"
            ),
            Self::NoMove(why) => f.write_str(why),
            Self::Rejected(why) => write!(f, "the consolidation policy rejected the move: {why}"),
        }
    }
}

/// A candidate a pass did not consolidate, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unconsolidated {
    pub node: Sym,
    pub reason: UnconsolidatedReason,
}

impl Engine<'_> {
    /// Gives every candidate that no command took, and that no method
    /// already explained, the reason it was not looked at. Candidates a pass
    /// simply did not reach (it acted first) get none.
    pub(super) fn explain_unconsolidated(&mut self) {
        let s = self.snapshot;
        let acted: HashSet<_> = self
            .pass
            .commands
            .iter()
            .flat_map(|c| c.node_indices.iter().copied())
            .collect();
        for (nodes, why) in &self.pass.rejected {
            if let [node] = nodes[..] {
                self.pass.unconsolidated.push(Unconsolidated {
                    node,
                    reason: UnconsolidatedReason::Rejected(why.clone()),
                });
            }
        }
        let explained: HashSet<Sym> = self.pass.unconsolidated.iter().map(|u| u.node).collect();
        for c in (0..self.candidates.len()).map(CandidateIndex) {
            let cand = &self.candidates[c];
            let node = s.nodes[cand.node].name;
            if acted.contains(&cand.node) || explained.contains(&node) {
                continue;
            }
            let pool = &s.node_pools[cand.pool];
            let budget = |reason| {
                (self.allowed(cand.pool, reason) == 0).then_some(UnconsolidatedReason::NoBudget {
                    node_pool: pool.name,
                    reason,
                })
            };
            let reason = match pool.disruption.consolidate_after {
                None => Some(UnconsolidatedReason::ConsolidationDisabled {
                    node_pool: pool.name,
                }),
                Some(after) if !cand.consolidatable => {
                    Some(UnconsolidatedReason::RecentlyChanged {
                        consolidate_after_seconds: after.as_secs(),
                    })
                }
                Some(_) if cand.pods.is_empty() => budget(DisruptionReason::Empty),
                Some(_)
                    if pool.disruption.consolidation_policy == ConsolidationPolicy::WhenEmpty =>
                {
                    Some(UnconsolidatedReason::WhenEmptyOnly {
                        node_pool: pool.name,
                    })
                }
                Some(_) => budget(DisruptionReason::Underutilized),
            };
            if let Some(reason) = reason {
                self.pass
                    .unconsolidated
                    .push(Unconsolidated { node, reason });
            }
        }
    }
}
