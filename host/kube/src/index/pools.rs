//! NodePools and EC2NodeClasses.

use dovetail_api::{ConditionStatus, EC2NodeClass, NodePool};

use crate::observed::WatchedKind;

use super::keys::Key;
use super::nodes::fill_type;
use super::{Index, one_line};

impl Index {
    /// A valid NodePool replaces the one held; an invalid one removes it
    /// (a malformed pool must not provision, not even as it was before)
    /// and is recorded for the pool's status and an Event.
    pub(super) fn apply_node_pool(&mut self, key: Key, mut pool: NodePool) {
        fill_type(
            &mut pool.api_version,
            &mut pool.kind,
            dovetail_api::nodepool::API_VERSION,
            dovetail_api::nodepool::KIND,
        );
        match pool.to_core() {
            Ok(value) => {
                self.clear_problem(WatchedKind::NodePool, key);
                self.state.apply_node_pool(value);
            }
            Err(e) => {
                self.problem(WatchedKind::NodePool, key, one_line(&e));
                self.state.delete_node_pool(key.name);
            }
        }
    }

    /// Only readiness is kept: launches through a class that is missing or
    /// not Ready are the cloud's to refuse.
    pub(super) fn apply_node_class(&mut self, key: Key, class: &EC2NodeClass) {
        let ready = class.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True)
        });
        self.node_classes.insert(key.name, ready);
    }
}
