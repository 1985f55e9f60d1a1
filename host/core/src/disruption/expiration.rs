//! Expiration: nodes older than their NodePool's `expireAfter` go, forcefully
//! and outside budgets; the voluntary methods then see them as leaving.

use crate::scheduler::NodeIndex;

use super::candidates::reschedulable;
use super::command::{Command, CommandReason, Method};
use super::engine::Engine;

impl Engine<'_> {
    pub(super) fn expire(&mut self) {
        let s = self.snapshot;
        for (i, node) in s.nodes.iter().enumerate() {
            if node.marked_for_deletion {
                continue;
            }
            let Some(p) = self.pool_index(node) else {
                continue;
            };
            let Some(expire_after) = s.node_pools[p].expire_after else {
                continue;
            };
            if node.created_at + expire_after.as_secs() <= self.now {
                self.pass.commands.push(Command {
                    method: Method::Expiration,
                    reason: CommandReason::Expired,
                    nodes: vec![node.name],
                    node_indices: vec![NodeIndex(i)],
                    replacements: Vec::new(),
                    savings_per_hour: 0.0,
                    pods_evicted: node
                        .pods
                        .iter()
                        .filter(|p| reschedulable(p))
                        .map(|p| p.key())
                        .collect(),
                    decided_by: "engine".into(),
                    policy_reason: format!(
                        "older than NodePool `{}` expireAfter {}s",
                        s.node_pools[p].name,
                        expire_after.as_secs()
                    ),
                });
            }
        }
    }
}
