//! The provisioning scenarios again, with the C port of the built-in
//! (`tests/guests/c-default`, built by `policies/c/build.sh`) choosing the
//! launches. Every round's answer must equal the native built-in's, so the C
//! SDK's building blocks are held to the same scenarios as the Rust ones.

use std::sync::{Arc, OnceLock};

use dovetail_core::policy::types::{Selection, SelectionRequest};
use dovetail_core::policy::{Builtin, Decided, InstanceSelector};
use dovetail_policy::{LoadedPolicy, Runtime, RuntimeConfig};
use dovetail_tests::c_policy;

struct SameAsBuiltin(Arc<LoadedPolicy>);

impl InstanceSelector for SameAsBuiltin {
    fn select(&self, request: &SelectionRequest) -> Decided<Selection> {
        let native = Builtin.select(request);
        let wasm = self
            .0
            .select(request)
            .unwrap_or_else(|e| panic!("the C default policy failed: {e}"));
        assert_eq!(
            wasm, native.value,
            "the C default policy chose different launch lists from the built-in"
        );
        Decided::by(wasm, "c-default@0.1.0")
    }
}

fn selector() -> Box<dyn InstanceSelector> {
    static POLICY: OnceLock<(Runtime, Arc<LoadedPolicy>)> = OnceLock::new();
    let (_, policy) = POLICY.get_or_init(|| {
        let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
        let p = LoadedPolicy::load(
            &rt,
            "c-default",
            &c_policy::bytes("tests/guests/c-default"),
            None,
        )
        .expect("the C default policy loads");
        (rt, Arc::new(p))
    });
    Box::new(SameAsBuiltin(policy.clone()))
}

include!("../../host/core/tests/scenarios/provisioning.rs");
