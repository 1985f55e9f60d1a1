//! What a run produced.

use std::collections::BTreeMap;

use serde::Serialize;

/// One point of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub at_seconds: u64,
    pub nodes_on_demand: usize,
    pub nodes_spot: usize,
    pub pending_pods: usize,
    pub running_pods: usize,
    pub cost_usd: f64,
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
    /// Instance types launched, as `type/zone/capacity-type`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub launched: Vec<String>,
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
            write!(f, " -> {}", self.launched.join(","))?;
        }
        if self.savings_per_hour > 0.0 {
            write!(f, ", saves ${:.4}/h", self.savings_per_hour)?;
        }
        write!(f, " [{}] {}", self.decided_by, self.reason)
    }
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
    /// Seconds from a pod becoming pending to running.
    pub pending_p50_seconds: f64,
    pub pending_p95_seconds: f64,
    pub pending_p99_seconds: f64,
    pub pending_max_seconds: f64,
    /// Seconds until every pod first ran, when they all did.
    pub all_running_after_seconds: Option<f64>,
    /// Pods still pending at the end.
    pub pending_at_end: usize,
    pub node_hours_by_instance_type: BTreeMap<String, f64>,
    /// Calls where the configured policy failed and the built-in decided
    /// instead (filled in by whoever ran the policies).
    pub policy_failures: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// What ran: `dovetail` with its policies, or the baseline.
    pub autoscaler: String,
    pub seed: u64,
    pub duration_seconds: u64,
    pub timeline: Vec<Sample>,
    pub decisions: Vec<DecisionRecord>,
    pub totals: Totals,
    /// Real time the run took; set by the caller (it is the one field that
    /// differs between identical runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall_seconds: Option<f64>,
}
