//! The orchestration's [`Action`]s as API calls.
//!
//! Every write is safe to repeat: a create that finds its object already
//! there reads it and is done (so a controller restarted after a crash
//! picks up where it stopped), a delete or finalizer removal that finds the
//! object gone is done, and an update compares with what the server holds
//! and writes only the difference. Updates are guarded by the
//! `resourceVersion` they were computed from; a conflict (409) is retried
//! from a fresh read, a few times, before the action fails and the next
//! reconcile tries again from what it then sees.
//!
//! What the API server answered is handed back as [`Change`]s, so the index
//! holds the write before the watch brings it (the watch's copy of the same
//! version then changes nothing).
//!
//! The client given to [`Executor::new`] must not retry on its own: kube's
//! default client retries 429 for minutes (`Config::default_retry`), and an
//! eviction a PodDisruptionBudget refuses answers 429 until the budget
//! allows it, so such a client would hang the drain. Build it from a
//! `kube::Config` with `default_retry = false`.

mod error;
mod events;
mod finalizer;
mod merge;
mod node_claims;
pub mod node_class_status;
pub mod node_pool_status;
mod nodes;
mod pods;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dovetail_control::actions::{Action, ActionError, Outcome};

use crate::observed::{Change, Lookup};

pub use node_class_status::write_node_class_status;
pub use node_pool_status::{NodePoolStatusWriter, node_class_readiness};

/// What an action did: its outcome for the orchestration, and the objects
/// the API server returned from the writes.
#[derive(Debug, Clone)]
pub struct Executed {
    pub outcome: Outcome,
    pub changes: Vec<Change>,
}

impl Executed {
    fn done(changes: Vec<Change>) -> Self {
        Self {
            outcome: Outcome::Done,
            changes,
        }
    }
}

/// Conflicting writes are retried this many times in all, each from a
/// fresh read.
const ATTEMPTS: u32 = 5;

/// Carries out [`Action`]s through the API server.
pub struct Executor {
    client: kube::Client,
    field_manager: String,
    events: events::Recorder,
    conflicts: AtomicU64,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("field_manager", &self.field_manager)
            .field("conflicts", &self.conflicts)
            .finish_non_exhaustive()
    }
}

impl Executor {
    /// Writes through `client` as `field_manager`. The client must not
    /// retry requests itself (see the module documentation).
    pub fn new(client: kube::Client, field_manager: &str) -> Self {
        Self {
            client,
            field_manager: field_manager.to_owned(),
            events: events::Recorder::new(events::AGGREGATION_WINDOW),
            conflicts: AtomicU64::new(0),
        }
    }

    /// How long a repeated Event (same object, reason and message) bumps
    /// the count of the one already written instead of writing a new one;
    /// ten minutes unless set, as client-go's event correlator.
    pub fn with_event_aggregation_window(mut self, window: Duration) -> Self {
        self.events = events::Recorder::new(window);
        self
    }

    /// Writes that hit a conflict (409, or a failed JSON-patch test) and
    /// were retried from a fresh read, since the executor was made.
    pub fn conflicts_retried(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    /// Carries out `action`. `lookup` gives the uids the writes need
    /// (owner references, preconditions, Events' objects).
    pub async fn execute(
        &self,
        action: Action,
        lookup: &dyn Lookup,
    ) -> Result<Executed, ActionError> {
        match action {
            Action::CreateNodeClaim(c) => node_claims::create(self, &c, lookup).await,
            Action::UpdateNodeClaim(c) => node_claims::update(self, &c).await,
            Action::DeleteNodeClaim { name } => node_claims::delete(self, name, lookup).await,
            Action::RemoveNodeClaimFinalizer { name } => {
                node_claims::remove_finalizer(self, name).await
            }
            Action::Nominate { pods, target } => {
                pods::nominate(self, &pods, target, lookup).await;
                Ok(Executed::done(Vec::new()))
            }
            Action::PatchNode { name, patch } => nodes::patch(self, name, &patch).await,
            Action::TaintNode { name, taint } => nodes::taint(self, name, taint).await,
            Action::UntaintNode { name, key } => nodes::untaint(self, name, key).await,
            Action::DeleteNode { name } => nodes::delete(self, name, lookup).await,
            Action::RemoveNodeFinalizer { name } => nodes::remove_finalizer(self, name).await,
            Action::EvictPod { pod } => pods::evict(self, pod, lookup).await,
            Action::DeletePod { pod } => pods::delete(self, pod, lookup).await,
            Action::Event(e) => {
                self.events.record(&self.client, &e, lookup).await;
                Ok(Executed::done(Vec::new()))
            }
        }
    }

    fn post_params(&self) -> kube::api::PostParams {
        kube::api::PostParams {
            field_manager: Some(self.field_manager.clone()),
            ..kube::api::PostParams::default()
        }
    }

    fn patch_params(&self) -> kube::api::PatchParams {
        kube::api::PatchParams {
            field_manager: Some(self.field_manager.clone()),
            ..kube::api::PatchParams::default()
        }
    }

    /// Counts a conflict and, unless it was the last attempt, waits a
    /// little before the fresh read, longer each time, so competing writers
    /// spread out.
    async fn conflicted(&self, attempt: u32) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
        if attempt + 1 < ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(10u64 << attempt.min(6))).await;
        }
    }
}
