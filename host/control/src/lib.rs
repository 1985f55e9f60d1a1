//! Dovetail's orchestration: everything that happens between decisions,
//! shared by the controller and the simulator.
//!
//! It is synchronous, clock-driven code: observed state ([`ClusterState`])
//! and the time come in, [`Action`]s on the cluster go out, and the cloud is
//! reached through the [`CloudProvider`] port. No async runtime, Kubernetes
//! client, cloud SDK or Wasm engine: the adapters bring those.
//!
//! - [`provisioner`]: the batch window, one planning round through the
//!   instance-selection policy, NodeClaims and nominations.
//! - [`lifecycle`]: Launched → Registered → Initialized, with the launch and
//!   registration timeouts and insufficient-capacity handling.
//! - [`unavailable`]: the unavailable-offerings cache.
//! - [`disruption`]: when a pass runs, and the command queue.
//! - [`termination`]: drains in tiers, eviction answers, deadlines,
//!   instance termination and finalizers.
//! - [`expiration`]: NodeClaims past their `expireAfter`, deleted on time.
//! - [`drift`]: the cloud's drift answers, kept on the NodeClaims.
//! - [`gc`]: leaked instances and NodeClaims whose instance is gone.
//! - [`interruption`]: spot interruptions and other instance notices.
//! - [`controller`]: all of them in order, behind the [`Autoscaler`] seam.

pub mod actions;
pub mod batcher;
pub mod cloud;
pub mod controller;
pub mod decision;
pub mod disruption;
pub mod drift;
pub mod expiration;
pub mod gc;
pub mod interruption;
pub mod lifecycle;
pub mod names;
pub mod pool_status;
pub mod provisioner;
pub mod snapshot;
pub mod state;
pub mod template;
pub mod termination;
#[cfg(feature = "testing")]
pub mod testing;
pub mod unavailable;

pub use actions::{Action, ActionError, EvictionResult, NodePatch, NominationTarget, Outcome};
pub use cloud::{
    CloudError, CloudProvider, CreateError, Instance, InstanceState, Launch, OfferingKey,
};
pub use controller::{Autoscaler, Cluster, Config, Controller};
pub use decision::Decision;
pub use interruption::{Interruption, InterruptionKind};
pub use state::{ClaimId, ClusterState, NodeId, Nominee, PodId};
