//! Host bindings for `wit/policy.wit`. Only the `policy` world is generated:
//! it has every export, and each exported interface is looked up on its own,
//! so a component of any of the three worlds loads through the same code.

wasmtime::component::bindgen!({
    world: "policy",
    path: "../../wit",
    // Requests are lowered straight from the core's columns, without a copy.
    ownership: Borrowing { duplicate_if_necessary: true },
});

pub use dovetail::policy::{log, types};
pub use exports::dovetail::policy::{consolidation_scoring, instance_selection, meta};
