//! The provisioning scenarios again, with the C port of the built-in
//! (`tests/guests/c-default`, built by `policies/c/build.sh`) choosing the
//! launches. Every round's answer must equal the native built-in's, so the C
//! SDK's building blocks are held to the same scenarios as the Rust ones.

use dovetail_core::policy::InstanceSelector;

fn selector() -> Box<dyn InstanceSelector> {
    dovetail_tests::same_as_builtin::same_as_builtin("c-default", || {
        dovetail_tests::c_policy::bytes("tests/guests/c-default")
    })
}

include!("../../host/core/tests/scenarios/provisioning.rs");
