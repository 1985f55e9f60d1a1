//! When a disruption pass runs.
//!
//! - Every `poll_ms` (10 s).
//! - Not while a provisioning round is in flight (pods pending for less
//!   than the batch maximum, NodeClaims launching that no command asked
//!   for): any command would be judged on a cluster about to change.
//! - Not while the cluster is unchanged since a full pass that found
//!   nothing (Karpenter's "consolidated" state), re-checked every
//!   `consolidation_recheck_ms` after that pass — unless a timer ran out
//!   since: a node's `consolidateAfter`, or a pod's duration-form
//!   `karpenter.sh/do-not-disrupt`. Those count as changes: the pass looks
//!   at those nodes alone, with single-node consolidation (multi-node waits
//!   for the next full pass). A node whose `consolidateAfter` ran out also
//!   becomes a place for other nodes' pods again; as in Karpenter, that
//!   waits for the next full pass.
//! - Drift is never held back by the consolidated state: while a drifted
//!   node waits (on budgets, protection or room), every poll runs a pass
//!   (without consolidation unless a timer ran out), as Karpenter's drift
//!   method ignores that state.
//!
//! Expiration is not a pass's business: the expiration controller deletes
//! on time.

use dovetail_core::disruption::{Settings, protection_ends};
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
    consolidated: Option<Consolidated>,
    /// The pass last let through looked only at what changed since the
    /// last full one.
    partial: bool,
}

/// The cluster as the last full pass that found nothing left it.
#[derive(Debug)]
struct Consolidated {
    /// The cluster key then.
    key: (u64, u64),
    /// When that full pass ran.
    at_ms: u64,
    /// Timers that ran out up to here have had their pass.
    seen_ms: u64,
    /// Drifted nodes were left in place.
    drifted: bool,
    /// When each timer still to come runs out (Unix seconds), and on which
    /// node, by time. The cluster is the same while its key is: they are
    /// found once.
    timers: Vec<(u64, Sym)>,
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
            partial: false,
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

    /// The pass let through at `now_ms` over the cluster `key` (`state`)
    /// found nothing to do; `drifted`: it left drifted nodes in place.
    pub fn consolidated(
        &mut self,
        state: &ClusterState,
        key: (u64, u64),
        drifted: bool,
        now_ms: u64,
    ) {
        match &mut self.consolidated {
            // A partial pass keeps the full pass's time: the recheck is
            // counted from that.
            Some(c) if self.partial && c.key == key => {
                c.seen_ms = now_ms;
                c.drifted = drifted;
            }
            _ => {
                self.consolidated = Some(Consolidated {
                    key,
                    at_ms: now_ms,
                    seen_ms: now_ms,
                    drifted,
                    timers: timers(state, now_ms),
                })
            }
        }
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
        self.partial = false;
        if let Some(c) = &self.consolidated
            && c.key == key
            && now_ms - c.at_ms < self.recheck_ms
        {
            let mut fresh: Vec<Sym> = c
                .timers
                .iter()
                .filter(|&&(t, _)| within(t, c.seen_ms, now_ms))
                .map(|&(_, node)| node)
                .collect();
            fresh.sort_unstable();
            fresh.dedup();
            if fresh.is_empty() && !c.drifted {
                return None;
            }
            settings.single_node_only = Some(fresh);
            settings.max_multi_node = 0;
            self.partial = true;
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

/// Whether the second `t` (Unix seconds) falls in `(from_ms, now_ms]`, in
/// whole seconds as snapshots count.
fn within(t: u64, from_ms: u64, now_ms: u64) -> bool {
    t > from_ms / 1000 && t <= now_ms / 1000
}

/// The timers after `now_ms` that free a node for disruption, each a
/// cluster change when it runs out: a node's `consolidateAfter` (Karpenter
/// marks it Consolidatable then), and a pod's duration-form
/// `karpenter.sh/do-not-disrupt`. By time.
fn timers(state: &ClusterState, now_ms: u64) -> Vec<(u64, Sym)> {
    let now = now_ms / 1000;
    let mut timers = Vec::new();
    for (_, c) in state.claims() {
        let Some(n) = state.node_of_claim(c).and_then(|n| state.node(n)) else {
            continue;
        };
        if !n.node.ready || n.deletion_ms.is_some() {
            continue;
        }
        let name = n.node.name;
        let after = c
            .node_pool
            .and_then(|p| state.node_pool(p))
            .and_then(|p| p.disruption.consolidate_after);
        if let Some(after) = after {
            timers.push((n.last_pod_event_ms / 1000 + after.as_secs(), name));
        }
        // Pods finished or leaving protect nothing any more.
        let pods = n.pods.iter().filter_map(|&p| state.pod(p)).map(|e| &e.pod);
        for pod in pods.filter(|p| !p.is_terminal() && !p.is_terminating()) {
            if let Some(t) = protection_ends(pod) {
                timers.push((t, name));
            }
        }
    }
    timers.retain(|&(t, _)| t > now);
    timers.sort_unstable();
    timers
}
