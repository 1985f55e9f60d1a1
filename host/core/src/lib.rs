//! Dovetail's decision core.
//!
//! Everything here is a pure function over values: no I/O, no async runtime, no
//! cloud or cluster client and no Wasm engine. Adapters depend on this crate,
//! never the reverse, and time comes in through [`clock::Clock`].

pub mod clock;
pub mod policy;
