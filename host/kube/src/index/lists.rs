//! DaemonSets, PodDisruptionBudgets and Namespaces: few, and handed to the
//! state as whole lists. Each list is rebuilt only when one of its values
//! changes, and once at the end of a list of its kind rather than once per
//! object (replacing the budgets recomputes which pods each covers).

use dovetail_api::k8s;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use crate::observed::WatchedKind;

use super::keys::Key;
use super::{Index, one_line};

impl Index {
    pub(super) fn apply_daemon_set(&mut self, key: Key, ds: &DaemonSet) {
        match k8s::daemon_set(ds, &self.lookup) {
            Ok(c) => {
                self.clear_problem(WatchedKind::DaemonSet, key);
                if self.daemon_sets.get(&key) != Some(&c.value) {
                    self.daemon_sets.insert(key, c.value);
                    self.push_daemon_sets();
                }
            }
            Err(e) => self.problem(WatchedKind::DaemonSet, key, one_line(&e)),
        }
    }

    pub(super) fn delete_daemon_set(&mut self, key: Key) {
        if self.daemon_sets.remove(&key).is_some() {
            self.push_daemon_sets();
        }
    }

    pub(super) fn push_daemon_sets(&mut self) {
        if self.defer(WatchedKind::DaemonSet) {
            return;
        }
        self.state
            .set_daemon_sets(self.daemon_sets.values().cloned().collect());
    }

    /// A budget whose status alone changed (the usual update: pods come
    /// and go) updates `disruptionsAllowed` in place; any other change
    /// recomputes which pods each budget covers.
    pub(super) fn apply_pdb(&mut self, key: Key, pdb: &PodDisruptionBudget) {
        let value = match k8s::pdb(pdb) {
            Ok(c) => c.value,
            Err(e) => {
                self.problem(WatchedKind::Pdb, key, one_line(&e));
                return;
            }
        };
        self.clear_problem(WatchedKind::Pdb, key);
        match self.pdbs.get_mut(&key) {
            Some(held) if *held == value => {}
            Some(held)
                if !self.deferred[WatchedKind::Pdb.position()]
                    && held.namespace == value.namespace
                    && held.name == value.name
                    && held.selector == value.selector =>
            {
                held.disruptions_allowed = value.disruptions_allowed;
                let position = self.pdbs.keys().position(|k| *k == key).expect("held");
                self.state
                    .set_disruptions_allowed(position, value.disruptions_allowed);
            }
            _ => {
                self.pdbs.insert(key, value);
                self.push_pdbs();
            }
        }
    }

    pub(super) fn delete_pdb(&mut self, key: Key) {
        if self.pdbs.remove(&key).is_some() {
            self.push_pdbs();
        }
    }

    pub(super) fn push_pdbs(&mut self) {
        if self.defer(WatchedKind::Pdb) {
            return;
        }
        // The state's positions are this map's order, which
        // `set_disruptions_allowed` relies on.
        self.state.set_pdbs(self.pdbs.values().cloned().collect());
    }

    pub(super) fn apply_namespace(&mut self, key: Key, ns: &Namespace) {
        match k8s::namespace(ns) {
            Ok(c) => {
                self.clear_problem(WatchedKind::Namespace, key);
                if self.namespaces.get(&key) != Some(&c.value) {
                    self.namespaces.insert(key, c.value);
                    self.push_namespaces();
                }
            }
            Err(e) => self.problem(WatchedKind::Namespace, key, one_line(&e)),
        }
    }

    pub(super) fn delete_namespace(&mut self, key: Key) {
        if self.namespaces.remove(&key).is_some() {
            self.push_namespaces();
        }
    }

    pub(super) fn push_namespaces(&mut self) {
        if self.defer(WatchedKind::Namespace) {
            return;
        }
        self.state
            .set_namespaces(self.namespaces.values().cloned().collect());
    }
}

impl Index {
    /// While `kind` is being listed, its list reaches the state at the end.
    fn defer(&mut self, kind: WatchedKind) -> bool {
        let listing = self.relists[kind.position()].is_some();
        self.deferred[kind.position()] |= listing;
        listing
    }
}
