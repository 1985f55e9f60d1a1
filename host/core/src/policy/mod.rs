//! Decision policies: the values they exchange with the host, the ports the
//! core calls them through, and Karpenter's built-in behaviour.

pub mod consolidate;
pub mod document;
#[cfg(feature = "testing")]
pub mod fixtures;
pub mod limits;
pub mod parse;
pub mod ports;
pub mod select;
pub mod smoke;
mod synthetic;
pub mod types;
pub mod validate;
pub mod view;

pub use ports::{Builtin, ConsolidationScorer, Decided, InstanceSelector};
pub use types::*;
