//! Synthetic decision rounds of any size, for benchmarks (`dovetail policy
//! bench`) and tests. Behind the `testing` feature: not part of the API.

pub use super::synthetic::{synthetic_consolidation, synthetic_selection};
