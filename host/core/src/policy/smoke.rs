//! The requests every policy must answer at load: a small selection round
//! and a small consolidation round, the same on every load, so a policy that
//! cannot answer them is refused before it decides anything.

use super::synthetic::{synthetic_consolidation, synthetic_selection};
use super::types::{ConsolidationContext, ProposedMove, SelectionRequest};

/// The selection every instance selector must answer at load.
pub fn selection() -> SelectionRequest {
    synthetic_selection(48, 2, 7)
}

/// The consolidation round (context and moves) every scorer must answer at
/// load.
pub fn consolidation() -> (ConsolidationContext, Vec<ProposedMove>) {
    synthetic_consolidation(8, 7)
}
