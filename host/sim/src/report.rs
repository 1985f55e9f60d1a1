//! What a run produced.

use std::collections::BTreeMap;

use dovetail_core::catalog::CapacityType;
use dovetail_core::requirements::NodeSelectorRequirement;
use dovetail_core::scheduler::OfferingRef;
use serde::Serialize;

use crate::format;

/// One point of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub at_seconds: u64,
    pub nodes_on_demand: usize,
    pub nodes_spot: usize,
    pub pending_pods: usize,
    pub running_pods: usize,
    pub cost_usd: f64,
    /// Pods evicted so far.
    pub pods_evicted: usize,
    /// Disruptions so far (as [`Totals::disruptions`]).
    pub disruptions: usize,
}

/// An instance-type offering: an entry of a launch list, or what launched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfferingRecord {
    pub instance_type: String,
    pub zone: String,
    pub capacity_type: CapacityType,
    /// USD per hour.
    pub price: f64,
}

impl From<&OfferingRef> for OfferingRecord {
    fn from(o: &OfferingRef) -> Self {
        Self {
            instance_type: o.instance_type.to_string(),
            zone: o.zone.to_string(),
            capacity_type: o.capacity_type,
            price: o.price,
        }
    }
}

/// One decision that changed the cluster, with who made it and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionRecord {
    pub at_seconds: u64,
    /// `provisioning`, a disruption method (`Emptiness`, `Drift`,
    /// `SingleNodeConsolidation`, …), `interruption`, `scale-up` or
    /// `scale-down` (baseline).
    pub kind: String,
    /// Nodes removed or interrupted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// What was launched (for a disruption, its replacements).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub launched: Vec<OfferingRecord>,
    #[serde(skip_serializing_if = "is_zero")]
    pub savings_per_hour: f64,
    #[serde(skip_serializing_if = "is_zero_usize")]
    pub pods: usize,
    /// `name@version` of the policy that decided, `builtin` or `engine`.
    pub decided_by: String,
    pub reason: String,
}

impl std::fmt::Display for DecisionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", crate::html::clock(self.at_seconds), self.kind)?;
        if !self.nodes.is_empty() {
            write!(f, " {}", self.nodes.join(","))?;
        }
        if !self.launched.is_empty() {
            write!(f, " -> {}", format::offering_groups(&self.launched))?;
        }
        if self.savings_per_hour > 0.0 {
            write!(f, ", saves {}/h", format::money(self.savings_per_hour))?;
        }
        write!(f, " [{}] {}", self.decided_by, self.reason)
    }
}

/// One NodeClaim created: what was asked of the cloud and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaunchRecord {
    pub at_seconds: u64,
    pub node_claim: String,
    /// The node it became, once it registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// `None` for the baseline's node groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_pool: Option<String>,
    /// `provisioning`, the disruption method it is a replacement for, or
    /// `scale-up` (baseline).
    pub purpose: String,
    /// Pods planned onto it.
    pub pods: usize,
    /// The NodeClaim's requirements.
    pub requirements: Vec<NodeSelectorRequirement>,
    /// Its launch list: every offering sent, in the order the cloud tries
    /// them, as an index into [`Report::launch_lists`] (launches share few
    /// distinct lists).
    pub launch_list_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launched: Option<OfferingRecord>,
    /// Why the NodeClaim was given up before it became a node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// A NodePool's budgets at one disruption pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolBudget {
    pub node_pool: String,
    /// Nodes the budgets' percentages are taken of.
    pub nodes: u32,
    /// Nodes already being disrupted or not Ready.
    pub consuming: u32,
    /// Disruptions allowed now, by reason (`Empty`, `Underutilized`,
    /// `Drifted`); 2147483647 when no budget limits the reason.
    pub allowed: BTreeMap<String, u32>,
    /// Set when the budgets are invalid (every reason then allows 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A node left alone, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeReason {
    pub node: String,
    pub reason: String,
}

/// One disruption pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PassRecord {
    pub at_seconds: u64,
    /// The command it proposed: its method and nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposed: Option<ProposedRecord>,
    pub budgets: Vec<PoolBudget>,
    /// Candidates whose move was computed.
    pub candidates_evaluated: usize,
    /// Set when only nodes that just became consolidatable were looked at.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    /// Nodes not disrupted or not consolidated, with why: a node is listed
    /// when its reason first appears or changes, not again at every pass.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_consolidated: Vec<NodeReason>,
}

/// A command a pass proposed, and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProposedRecord {
    pub method: String,
    pub nodes: Vec<String>,
    pub outcome: Outcome,
}

/// What came of a proposed command.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", content = "why", rename_all = "kebab-case")]
pub enum Outcome {
    /// Still inside its validation delay when the run ended.
    Waiting,
    /// Validated: its nodes are tainted and its replacements launching.
    Started,
    /// Its nodes are being drained and terminated.
    Disrupted,
    /// It no longer held after the validation delay: why.
    Invalidated(String),
    /// Started, then given up (its taints taken back): why.
    Abandoned(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Waiting => f.write_str("waiting for validation"),
            Self::Started => f.write_str("started, replacements launching"),
            Self::Disrupted => f.write_str("carried out"),
            Self::Invalidated(why) => write!(f, "invalidated: {why}"),
            Self::Abandoned(why) => write!(f, "abandoned: {why}"),
        }
    }
}

/// Pods of one workload that the autoscaler found no place for, for one
/// reason: 10,000 identical pods are one record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnschedulableRecord {
    /// The workload's kind (`Deployment`, `StatefulSet`, `ReplicaSet`,
    /// `Job`, another owner's kind from a manifest), or `Pod` for a pod
    /// without an owner.
    pub kind: String,
    pub namespace: String,
    /// The workload's name, or the pod's when it has no owner.
    pub name: String,
    /// Why, per NodePool, as the scheduler gives it (the text of the
    /// controller's `FailedScheduling` event), e.g. ``NodePool `default`:
    /// incompatible requirements: …``.
    pub reason: String,
    /// Distinct pods given this reason.
    pub pods: usize,
    /// Of those, pods still pending at the end that never ran, this being
    /// the last reason they were given.
    pub never_ran: usize,
    pub first_at_seconds: u64,
    pub last_at_seconds: u64,
}

impl UnschedulableRecord {
    /// `Deployment default/web`.
    pub fn workload(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }

    /// The reason one NodePool to a line: the scheduler joins its
    /// per-NodePool reasons with `; `.
    pub fn reason_lines(&self) -> Vec<&str> {
        let mut lines = Vec::new();
        let mut rest = self.reason.as_str();
        while let Some(i) = rest.find("; NodePool `") {
            lines.push(&rest[..i]);
            rest = &rest[i + 2..];
        }
        lines.push(rest);
        lines
    }
}

/// What nodes of one NodePool and capacity type cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostShare {
    /// `None` for the baseline's node groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_pool: Option<String>,
    pub capacity_type: CapacityType,
    pub cost_usd: f64,
    pub node_hours: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn is_zero_usize(v: &usize) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub cost_usd: f64,
    /// The cost split by NodePool and capacity type.
    pub cost_by_node_pool: Vec<CostShare>,
    pub nodes_launched: usize,
    pub nodes_terminated: usize,
    pub peak_nodes: usize,
    pub pods_evicted: usize,
    pub disruptions: usize,
    pub interruptions: usize,
    /// Offerings that failed with insufficient capacity, one per offering
    /// tried (a CreateFleet call reports each of its overrides).
    pub insufficient_capacity_errors: usize,
    pub jobs_completed: usize,
    /// Seconds from a pod becoming pending to running, or to the end of
    /// the run for a pod still pending then.
    pub pending_p50_seconds: f64,
    pub pending_p95_seconds: f64,
    pub pending_p99_seconds: f64,
    pub pending_max_seconds: f64,
    /// Seconds until every pod first ran, when they all did.
    pub all_running_after_seconds: Option<f64>,
    /// Pods still pending at the end.
    pub pending_at_end: usize,
    /// Of those, pods that never ran on any node. The pending figures count
    /// every pod still pending as pending until the end.
    pub pods_never_ran: usize,
    pub node_hours_by_instance_type: BTreeMap<String, f64>,
    /// Calls where the configured policy failed and the built-in decided
    /// instead (filled in by whoever ran the policies).
    pub policy_failures: u64,
    /// Of those, calls stopped because they ran out of fuel or past their
    /// wall-clock deadline: a policy too slow for its budget rather than a
    /// broken one.
    pub policy_timeouts: u64,
}

impl Report {
    /// The launch list `launch` sent.
    pub fn launch_list(&self, launch: &LaunchRecord) -> &[OfferingRecord] {
        self.launch_lists
            .get(launch.launch_list_index)
            .map_or(&[], Vec::as_slice)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// What ran: `dovetail` with its policies, or the baseline.
    pub autoscaler: String,
    pub seed: u64,
    pub duration_seconds: u64,
    pub timeline: Vec<Sample>,
    pub decisions: Vec<DecisionRecord>,
    /// Every NodeClaim created, in order.
    pub launches: Vec<LaunchRecord>,
    /// The distinct launch lists the launches sent.
    pub launch_lists: Vec<Vec<OfferingRecord>>,
    /// Every disruption pass.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub passes: Vec<PassRecord>,
    /// Each pod's bindings, `[at_seconds, node]`, by `namespace/name`.
    pub pods: BTreeMap<String, Vec<(u64, String)>>,
    /// Pods the autoscaler found no place for, by workload and reason, in
    /// the order first seen.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unschedulable: Vec<UnschedulableRecord>,
    pub totals: Totals,
    /// Real time the run took; set by the caller (it is the one field that
    /// differs between identical runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall_seconds: Option<f64>,
}
