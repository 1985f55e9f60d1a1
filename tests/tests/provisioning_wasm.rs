//! The provisioning scenarios again, with the shipped Wasm `default` policy
//! choosing the launches. Every round's answer is compared with the native
//! built-in's, so the policy must give the same launch lists on every
//! scenario.

use std::sync::{Arc, OnceLock};

use dovetail_core::policy::types::{Selection, SelectionRequest};
use dovetail_core::policy::{Builtin, Decided, InstanceSelector};
use dovetail_policy::{LoadedPolicy, Runtime, RuntimeConfig};
use dovetail_tests::guest_bytes;

struct SameAsBuiltin(Arc<LoadedPolicy>);

impl InstanceSelector for SameAsBuiltin {
    fn select(&self, request: &SelectionRequest) -> Decided<Selection> {
        let native = Builtin.select(request);
        let wasm = self
            .0
            .select(request)
            .unwrap_or_else(|e| panic!("the Wasm default policy failed: {e}"));
        assert_eq!(
            wasm, native.value,
            "the Wasm default policy chose different launch lists from the built-in"
        );
        Decided::by(wasm, "default@0.1.0")
    }
}

fn selector() -> Box<dyn InstanceSelector> {
    static POLICY: OnceLock<(Runtime, Arc<LoadedPolicy>)> = OnceLock::new();
    let (_, policy) = POLICY.get_or_init(|| {
        let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
        let p = LoadedPolicy::load(
            &rt,
            "default",
            &guest_bytes("dovetail-policy-default"),
            None,
        )
        .expect("the shipped default policy loads");
        (rt, Arc::new(p))
    });
    Box::new(SameAsBuiltin(policy.clone()))
}

include!("../../host/core/tests/scenarios/provisioning.rs");
