//! What the orchestration decided and why, as typed records: the simulator
//! turns them into its report, the controller into logs and metrics.

use dovetail_core::disruption::Command;
use dovetail_core::model::PodKey;
use dovetail_core::nodeclaim::LaunchedOffering;
use dovetail_core::sym::Sym;

use crate::cloud::OfferingKey;
use crate::interruption::InterruptionKind;

/// Why a NodeClaim was given up before it became a node.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimFailure {
    /// Every offering tried had no capacity.
    InsufficientCapacity(Vec<OfferingKey>),
    NodeClassNotReady(String),
    /// Not launched within the launch timeout.
    LaunchTimeout(String),
    /// Launched, but no node registered within the registration timeout.
    RegistrationTimeout,
}

/// Why a started disruption command was given up.
#[derive(Debug, Clone, PartialEq)]
pub enum AbandonReason {
    /// A replacement NodeClaim was deleted (no capacity, timeouts).
    ReplacementLost(Sym),
    /// The replacements did not initialise within the retry window.
    ReplacementTimeout,
}

#[derive(Debug, Clone)]
pub enum Decision {
    /// A provisioning round: NodeClaims created for `pods` waiting pods.
    Provisioned {
        pods: usize,
        claims: Vec<Sym>,
        /// `name@version` of the instance-selection policy.
        decided_by: String,
        /// Set when the policy failed and the built-in chose.
        fallback: Option<String>,
    },
    /// Pods a provisioning round could not place anywhere, with why.
    Unschedulable {
        pods: Vec<(PodKey, String)>,
    },
    Launched {
        claim: Sym,
        offering: LaunchedOffering,
    },
    ClaimFailed {
        claim: Sym,
        failure: ClaimFailure,
    },
    /// A voluntary command passed validation: its nodes are tainted and its
    /// replacements are being launched.
    CommandStarted {
        command: Command,
        replacements: Vec<Sym>,
    },
    /// A command no longer held after the validation delay.
    CommandInvalidated {
        command: Command,
        why: String,
    },
    CommandAbandoned {
        command: Command,
        why: AbandonReason,
    },
    /// A command's nodes are being terminated (replacements, if any, are
    /// initialised); expiration gets here directly.
    Disrupting {
        command: Command,
        /// The replacement NodeClaims launched for it.
        replacements: Vec<Sym>,
    },
    /// A NodeClaim reached its `expireAfter` and is being deleted.
    Expired {
        claim: Sym,
        after: std::time::Duration,
    },
    Interrupted {
        claim: Sym,
        kind: InterruptionKind,
    },
    /// A node's termination finished: instance gone, finalizers removed.
    Terminated {
        claim: Option<Sym>,
        node: Option<Sym>,
    },
    /// An instance no NodeClaim owns, terminated.
    InstanceCollected {
        provider_id: String,
    },
    /// A registered NodeClaim whose instance is gone, deleted.
    ClaimCollected {
        claim: Sym,
    },
    /// A cloud or cluster call failed; the next reconcile tries again.
    ActionFailed(String),
    /// Another autoscaler's scale-up (the simulator's static baseline).
    ScaledUp {
        claims: Vec<Sym>,
        pods: usize,
        decided_by: String,
        reason: String,
    },
    /// Another autoscaler's scale-down.
    ScaledDown {
        nodes: Vec<Sym>,
        pods: usize,
        savings_per_hour: f64,
        decided_by: String,
        reason: String,
    },
}
