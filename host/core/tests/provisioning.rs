//! Provisioning scenarios with the built-in instance selector.

use dovetail_core::policy::{Builtin, InstanceSelector};

fn selector() -> Box<dyn InstanceSelector> {
    Box::new(Builtin)
}

include!("scenarios/provisioning.rs");
