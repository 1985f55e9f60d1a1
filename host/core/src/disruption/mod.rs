//! The disruption engine: which nodes to remove or replace, within
//! budgets, judged by the consolidation-scoring policy.
//!
//! One file per method, as Karpenter splits its disruption controller:
//! [`engine`](disrupt) runs a pass in Karpenter's order over the
//! `candidates`; `expiration`, `emptiness`, `drift` and `consolidation`
//! (multi-node and single-node) decide; `simulate` is the what-if they share
//! and `scoring` is what the policy sees; `validation` re-checks a command
//! before it is carried out.

mod balanced;
pub mod budgets;
mod candidates;
mod command;
mod consolidation;
mod drift;
mod duration;
mod emptiness;
mod engine;
mod expiration;
#[cfg(feature = "testing")]
pub mod fixtures;
mod scoring;
mod settings;
mod simulate;
mod unconsolidated;
mod validation;

pub use candidates::{protected_pod, protection_ends};
pub use command::{Command, CommandReason, Exclusion, Method, Pass};
pub use consolidation::SPOT_TO_SPOT_TYPES;
pub use duration::{GoDurationError, parse_go_duration, parse_go_duration_exact};
pub use engine::{disrupt, disrupt_prepared};
pub use settings::Settings;
pub use unconsolidated::{Unconsolidated, UnconsolidatedReason};
pub use validation::{Invalidated, validate};
