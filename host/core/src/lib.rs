//! Dovetail's decision core.
//!
//! Everything here is a pure function over values: no I/O, no async runtime, no
//! cloud or cluster client and no Wasm engine. Adapters depend on this crate,
//! never the reverse, and time comes in through [`clock::Clock`].
//!
//! Test scaffolding (`builders` and the `fixtures` modules: readable
//! scenario builders, benchmark clusters and synthetic policy rounds) is
//! behind the `testing` feature and is not part of the API.

#[cfg(feature = "testing")]
pub mod builders;
pub mod catalog;
pub mod clock;
pub mod disruption;
pub mod labels;
pub mod model;
pub mod policy;
pub mod requirements;
pub mod resources;
pub mod rng;
pub mod scheduler;
pub mod stats;
pub mod sym;
pub mod template;
