//! Dovetail's Kubernetes adapter, on kube-rs.
//!
//! The orchestration (`dovetail-control`) is synchronous and pure: it reads
//! a [`ClusterState`](dovetail_control::ClusterState) and returns
//! [`Action`](dovetail_control::Action)s. This crate feeds that state from
//! the API server and carries the actions out:
//!
//! - [`watches`]: one watcher per kind, each object sent as an
//!   [`observed::Change`].
//! - [`index`]: the cluster-state index; converts every object to core
//!   values once, when it is applied or deleted, and keeps what the writes
//!   need (uids, resource versions).
//! - [`synced`]: the gate that holds provisioning and disruption until the
//!   caches are complete and NodeClaims and Nodes agree.
//! - [`actions`]: actions as API calls, safe to repeat, with conflicts
//!   retried from fresh state.
//! - [`lease`]: leader election on a `coordination.k8s.io` Lease.
//! - [`runner`]: the reconcile loop — the orchestration on its own thread,
//!   fed from the index, acting through the executor; only a synced leader
//!   acts.
//! - [`policy_configmaps`]: policy components delivered as ConfigMaps, and
//!   the outcome reported back on them.

pub mod actions;
pub mod index;
pub mod lease;
pub mod observed;
pub mod policy_configmaps;
pub mod policy_remote;
pub mod runner;
pub mod synced;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod watches;
