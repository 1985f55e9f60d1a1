//! A selector for the provisioning scenarios that runs a Wasm port of the
//! built-in and fails the test on any round where its answer differs from
//! the native built-in's; the decision is then taken as the policy's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use dovetail_core::policy::types::{Selection, SelectionRequest};
use dovetail_core::policy::{Builtin, Decided, InstanceSelector};
use dovetail_policy::{LoadedPolicy, Runtime, RuntimeConfig};

struct SameAsBuiltin(Arc<LoadedPolicy>);

impl InstanceSelector for SameAsBuiltin {
    fn select(&self, request: &SelectionRequest) -> Decided<Selection> {
        let native = Builtin.select(request);
        let label = self.0.label();
        let wasm = self
            .0
            .select(request)
            .unwrap_or_else(|e| panic!("the Wasm policy {label} failed: {e}"));
        assert_eq!(
            wasm, native.value,
            "the Wasm policy {label} chose different launch lists from the built-in"
        );
        Decided::by(wasm, label)
    }
}

/// The selector for the component `bytes` gives, loaded once per process
/// under `name`.
pub fn same_as_builtin(name: &str, bytes: impl FnOnce() -> Vec<u8>) -> Box<dyn InstanceSelector> {
    type Loaded = (Runtime, Arc<LoadedPolicy>);
    static LOADED: OnceLock<Mutex<HashMap<String, Loaded>>> = OnceLock::new();
    let mut loaded = LOADED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let (_, policy) = loaded.entry(name.to_string()).or_insert_with(|| {
        let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
        let p = LoadedPolicy::load(&rt, name, &bytes(), None)
            .unwrap_or_else(|e| panic!("the policy {name} loads: {e}"));
        (rt, Arc::new(p))
    });
    Box::new(SameAsBuiltin(policy.clone()))
}
