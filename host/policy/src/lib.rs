//! Dovetail's policy runtime: the only crate that touches wasmtime.
//!
//! - [`Runtime`]: one engine, compiled code cached by content digest, an
//!   epoch ticker for deadlines, optional fuel for deterministic runs.
//! - [`LoadedPolicy`]: a component that passed full validation; every
//!   decision batch runs in a fresh, sandboxed instance.
//! - [`PolicyHost`]: the core's decision ports backed by swappable policies,
//!   with fallback to the built-in behaviour and a circuit breaker.
//! - [`ShadowHost`]: the live policies' answers, with candidate policies run
//!   beside them on the same inputs, their disagreements logged and counted.
//! - [`PolicyWatcher`]: hot reload from a directory or a mounted ConfigMap.

mod bindings;
mod error;
mod host;
mod policy;
mod runtime;
mod sandbox;
mod shadow;
mod watch;

pub use error::{FailureClass, PolicyFailure};
pub use host::{BreakerConfig, FailureCounts, PolicyHost, SlotStatus};
pub use policy::{CONTRACT, LoadedPolicy, world_name};
pub use runtime::{Budget, Runtime, RuntimeConfig, short_digest};
pub use sandbox::ALLOWED_IMPORTS;
pub use shadow::{ShadowCounts, ShadowHost};
pub use watch::{PolicyWatcher, config_file_name, policy_file_name};
