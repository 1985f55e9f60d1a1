//! The disruption engine: which nodes to remove or replace, within
//! budgets, judged by the consolidation-scoring policy.

mod balanced;
pub mod budgets;
mod engine;
pub mod fixtures;

pub use engine::{
    Command, Exclusion, Invalidated, Method, Pass, SPOT_TO_SPOT_TYPES, Settings, disrupt,
    disrupt_prepared, parse_go_duration, validate,
};
