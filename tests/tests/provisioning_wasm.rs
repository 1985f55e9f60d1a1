//! The provisioning scenarios again, with the shipped Wasm `default` policy
//! choosing the launches. Every round's answer is compared with the native
//! built-in's, so the policy must give the same launch lists on every
//! scenario.

use dovetail_core::policy::InstanceSelector;

fn selector() -> Box<dyn InstanceSelector> {
    dovetail_tests::same_as_builtin::same_as_builtin("default", || {
        dovetail_tests::guest_bytes("dovetail-policy-default")
    })
}

include!("../../host/core/tests/scenarios/provisioning.rs");
