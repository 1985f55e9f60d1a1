//! What a run produced.

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

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub cost_usd: f64,
    pub nodes_launched: usize,
    pub nodes_terminated: usize,
    pub pods_evicted: usize,
    /// Seconds from a pod becoming pending to running.
    pub pending_p50_seconds: f64,
    pub pending_p95_seconds: f64,
    pub pending_p99_seconds: f64,
    pub pending_max_seconds: f64,
    /// Seconds until every pod first ran, when they all did.
    pub all_running_after_seconds: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub seed: u64,
    pub duration_seconds: u64,
    pub timeline: Vec<Sample>,
    /// Disruption commands carried out: method, nodes, policy and reason.
    pub decisions: Vec<String>,
    pub totals: Totals,
    /// Real time the run took; set by the caller (it is the one field that
    /// differs between identical runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall_seconds: Option<f64>,
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
