//! When a disruption pass runs.
//!
//! - Every `poll_ms` (10 s).
//! - Not while a provisioning round is in flight (pods pending for less
//!   than the batch maximum, NodeClaims launching that no command asked
//!   for): any command would be judged on a cluster about to change.
//! - Not while the cluster is unchanged since a pass that found nothing
//!   (Karpenter's "consolidated" state), re-checked every
//!   `consolidation_recheck_ms` — unless nodes became consolidatable since:
//!   then the pass looks at those nodes alone, with single-node
//!   consolidation (multi-node waits for the next full pass). Expiration is
//!   not a pass's business: the expiration controller deletes on time.

use std::time::Duration;

use dovetail_core::disruption::Settings;
use dovetail_core::model::NodePool;
use dovetail_core::sym::Sym;

use super::Timings;
use super::queue::Queue;
use crate::state::ClusterState;

#[derive(Debug)]
pub struct Gate {
    poll_ms: u64,
    recheck_ms: u64,
    provisioning_ms: u64,
    /// The first poll's reference time: polls fall on its multiples.
    origin_ms: Option<u64>,
    next_poll_ms: u64,
    /// `(cluster key, at)` of the last pass that found nothing to do.
    consolidated: Option<((u64, u64), u64)>,
}

impl Gate {
    pub fn new(t: &Timings) -> Self {
        Self {
            poll_ms: t.poll_ms.max(1),
            recheck_ms: t.consolidation_recheck_ms,
            provisioning_ms: t.provisioning_ms,
            origin_ms: None,
            next_poll_ms: 0,
            consolidated: None,
        }
    }

    /// Whether a poll falls due at `now_ms`; moves to the next one if so.
    fn due(&mut self, now_ms: u64) -> bool {
        let origin = *self.origin_ms.get_or_insert_with(|| {
            self.next_poll_ms = now_ms + self.poll_ms;
            now_ms
        });
        if now_ms < self.next_poll_ms {
            return false;
        }
        let periods = (now_ms - origin) / self.poll_ms + 1;
        self.next_poll_ms = origin + periods * self.poll_ms;
        true
    }

    /// A poll that falls while a command waits out its validation is
    /// skipped.
    pub fn skip(&mut self, now_ms: u64) {
        self.due(now_ms);
    }

    pub fn consolidated(&mut self, key: (u64, u64), now_ms: u64) {
        self.consolidated = Some((key, now_ms));
    }

    /// The settings for a pass now, or `None` when no pass runs.
    pub fn open(
        &mut self,
        state: &ClusterState,
        settings: &Settings,
        queue: &Queue,
        key: (u64, u64),
        now_ms: u64,
    ) -> Option<Settings> {
        if !self.due(now_ms) {
            return None;
        }
        let mut settings = settings.clone();
        if let Some((k, at)) = self.consolidated
            && k == key
            && now_ms - at < self.recheck_ms
        {
            let fresh = consolidatable_since(state, at, now_ms);
            if fresh.is_empty() {
                return None;
            }
            settings.single_node_only = Some(fresh);
            settings.max_multi_node = 0;
        }
        if self.provisioning(state, queue, now_ms) {
            return None;
        }
        Some(settings)
    }

    fn provisioning(&self, state: &ClusterState, queue: &Queue, now_ms: u64) -> bool {
        let launching = state
            .unsettled_claims()
            .any(|(_, c)| !c.deleting() && !c.initialized() && !queue.is_replacement(c.name));
        launching
            || state.pending().iter().any(|&p| {
                state.pod(p).is_some_and(|e| {
                    now_ms.saturating_sub(e.pending_since_ms) < self.provisioning_ms
                })
            })
    }
}

/// Whether the NodePool duration `timer` picks, counted from `since_ms`,
/// ran out in `(from_ms, now_ms]` (whole seconds, as snapshots count).
fn ran_out(
    pool: Option<&NodePool>,
    since_ms: u64,
    from_ms: u64,
    now_ms: u64,
    timer: impl Fn(&NodePool) -> Option<Duration>,
) -> bool {
    pool.and_then(timer).is_some_and(|after| {
        let t = since_ms / 1000 + after.as_secs();
        t > from_ms / 1000 && t <= now_ms / 1000
    })
}

/// Nodes whose `consolidateAfter` ran out since `at_ms`: Karpenter marks
/// them Consolidatable then, which counts as a cluster change.
fn consolidatable_since(state: &ClusterState, at_ms: u64, now_ms: u64) -> Vec<Sym> {
    let mut fresh = Vec::new();
    for (_, c) in state.claims() {
        let Some(n) = state.node_of_claim(c).and_then(|n| state.node(n)) else {
            continue;
        };
        if !n.node.ready || n.deletion_ms.is_some() {
            continue;
        }
        let pool = c.node_pool.and_then(|p| state.node_pool(p));
        if ran_out(pool, n.last_pod_event_ms, at_ms, now_ms, |p| {
            p.disruption.consolidate_after
        }) {
            fresh.push(n.node.name);
        }
    }
    fresh
}
