//! What the orchestration decided and why, as typed records: the simulator
//! turns them into its report, the controller into logs and metrics.

use dovetail_core::disruption::budgets::BudgetReport;
use dovetail_core::disruption::{Command, Exclusion, Method, Pass, Unconsolidated};
use dovetail_core::model::PodKey;
use dovetail_core::nodeclaim::{LaunchedOffering, NodeClaim};
use dovetail_core::requirements::NodeSelectorRequirement;
use dovetail_core::scheduler::{NodeClaimPlan, OfferingRef};
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

impl std::fmt::Display for AbandonReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ReplacementLost(claim) => {
                write!(f, "its replacement NodeClaim {claim} was deleted")
            }
            Self::ReplacementTimeout => f.write_str("its replacements did not initialise in time"),
        }
    }
}

/// A NodeClaim as it was created: enough to check its launch.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedClaim {
    pub name: Sym,
    pub node_pool: Option<Sym>,
    pub requirements: Vec<NodeSelectorRequirement>,
    /// Every offering sent to the cloud, in the order it tries them.
    pub launch: Vec<OfferingRef>,
    /// Pods planned onto it.
    pub pods: usize,
}

impl CreatedClaim {
    pub fn new(claim: &NodeClaim, pods: usize) -> Self {
        Self {
            name: claim.name,
            node_pool: claim.node_pool,
            requirements: claim.requirements.clone(),
            launch: claim.launch.clone(),
            pods,
        }
    }

    /// The NodeClaim `name` made from `plan` with its own offerings as the
    /// launch list, as disruption replacements are.
    pub fn planned(name: Sym, plan: &NodeClaimPlan) -> Self {
        Self {
            name,
            node_pool: Some(plan.node_pool),
            requirements: plan.requirements.clone(),
            launch: plan.offerings.clone(),
            pods: plan.pods.len(),
        }
    }
}

/// What a disruption pass saw and why it left nodes alone.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    /// The voluntary command it proposed (validated after the delay).
    pub proposed: Option<(Method, Vec<Sym>)>,
    /// Each NodePool's allowed disruptions per reason, in NodePool order.
    pub budgets: Vec<BudgetReport>,
    /// Nodes that cannot be disrupted at all, with why.
    pub exclusions: Vec<Exclusion>,
    /// Candidates not consolidated, with why.
    pub unconsolidated: Vec<Unconsolidated>,
    /// Candidates whose move was computed.
    pub candidates_evaluated: usize,
    /// Set when the pass looked only at these newly consolidatable nodes.
    pub only: Option<Vec<Sym>>,
}

impl PassReport {
    pub fn new(pass: Pass, proposed: Option<&Command>, only: Option<Vec<Sym>>) -> Self {
        Self {
            proposed: proposed.map(|c| (c.method, c.nodes.clone())),
            budgets: pass.budgets,
            exclusions: pass.exclusions,
            unconsolidated: pass.unconsolidated,
            candidates_evaluated: pass.candidates_evaluated,
            only,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Decision {
    /// A provisioning round: NodeClaims created for `pods` pending pods
    /// planned onto them.
    Provisioned {
        pods: usize,
        claims: Vec<CreatedClaim>,
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
    /// A disruption pass ran.
    Pass(Box<PassReport>),
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
        claims: Vec<CreatedClaim>,
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
