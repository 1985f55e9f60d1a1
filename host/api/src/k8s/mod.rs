//! Kubernetes objects to `dovetail-core` values: the one conversion the
//! Kubernetes adapter and the simulator's manifest reader share, so the
//! engines see the same pod whichever reads it.
//!
//! Each function takes an object as `k8s-openapi` deserialises it (from the
//! API server, or from `kubectl get -o yaml` output with serde) and returns
//! [`Converted`]: the core value and the [`Warning`]s about anything it could
//! not carry over exactly. A field that would change a decision is never
//! dropped silently. Bad values fail with a [`ConvertError`] naming the
//! object, every bad field's path and the fix.
//!
//! - [`pod`]: a Pod, with every field Karpenter's scheduler reads.
//! - [`pod_template`]: the pod a Deployment, StatefulSet, ReplicaSet or Job
//!   would create (see [`Workload`]).
//! - [`daemon_set`]: a DaemonSet and the pod it runs on each node.
//! - [`node`]: a Node, managed by a NodePool or not.
//! - [`pdb`] and [`pdb_rule`]: a PodDisruptionBudget.
//! - [`namespace`]: a Namespace, for namespace selectors.
//!
//! Pods refer to other objects (claims, volumes, storage classes, priority
//! and runtime classes); they are found through a [`Lookup`], and
//! [`Objects`] is one held in memory.
//!
//! Bound pods keep no node name: place them on their node by
//! `spec.nodeName`.

mod error;
mod lookup;
mod node;
mod object;
mod pdb;
mod pod;
mod report;
mod resources;
mod selectors;
mod volumes;
mod warning;
mod workload;

pub use error::ConvertError;
pub use lookup::{DEFAULT_STORAGE_CLASS, Lookup, Objects};
pub use node::{UNSCHEDULABLE_TAINT, node};
pub use object::ObjectRef;
pub use pdb::{PdbAmount, PdbRule, pdb, pdb_rule};
pub use pod::pod;
pub use selectors::normalized_label;
pub use warning::{Warning, WarningReason};
pub use workload::{Workload, daemon_set, namespace, pod_template};

/// A converted object and what could not be carried over exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted<T> {
    pub value: T,
    pub warnings: Vec<Warning>,
}

impl<T> Converted<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Converted<U> {
        Converted {
            value: f(self.value),
            warnings: self.warnings,
        }
    }

    /// The value, with its warnings moved into `warnings`.
    pub fn into_value(self, warnings: &mut Vec<Warning>) -> T {
        warnings.extend(self.warnings);
        self.value
    }
}
