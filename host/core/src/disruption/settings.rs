//! What a disruption pass may do: feature gates and limits.

use crate::sym::Sym;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Karpenter's `SpotToSpotConsolidation` feature gate (off by default).
    pub spot_to_spot: bool,
    /// Most candidates multi-node consolidation considers at once.
    pub max_multi_node: usize,
    /// Single-node consolidation computes every candidate's move before
    /// asking the policy (benchmarks), instead of stopping at the first
    /// batch with an approved one. The command chosen is the same.
    pub evaluate_all: bool,
    /// Single-node consolidation looks only at these nodes: the caller
    /// knows the others had no approved move against the same cluster
    /// (e.g. the cluster is unchanged since such a pass, and these nodes
    /// have just become consolidatable). `None`: every candidate.
    pub single_node_only: Option<Vec<Sym>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            spot_to_spot: false,
            max_multi_node: 100,
            evaluate_all: false,
            single_node_only: None,
        }
    }
}
