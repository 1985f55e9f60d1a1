//! The disruption scenarios again, with the shipped Wasm consolidation
//! policies deciding through `PolicyHost`, the port implementation the
//! controller uses. A fallback to the built-in fails the test, and the
//! `default` policy's every ranking and verdict is compared with the native
//! built-in's.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use dovetail_core::policy::types::Decision;
use dovetail_core::policy::types::{ConsolidationContext, ProposedMove, Ranking, Verdict};
use dovetail_core::policy::{Builtin, ConsolidationScorer, Decided};
use dovetail_policy::{LoadedPolicy, PolicyHost, Runtime, RuntimeConfig};
use dovetail_tests::guest_bytes;

struct Wasm {
    host: Arc<PolicyHost>,
    same_as_builtin: bool,
}

fn no_fallback<T>(d: Decided<T>) -> Decided<T> {
    assert!(d.fallback.is_none(), "the policy failed: {:?}", d.fallback);
    d
}

impl ConsolidationScorer for Wasm {
    fn rank(&self, ctx: &ConsolidationContext) -> Decided<Ranking> {
        let d = no_fallback(self.host.rank(ctx));
        if self.same_as_builtin {
            assert_eq!(
                d.value,
                Builtin.rank(ctx).value,
                "Wasm default ranks differently"
            );
        }
        d
    }

    fn approve(&self, ctx: &ConsolidationContext, moves: &[ProposedMove]) -> Decided<Vec<Verdict>> {
        let d = no_fallback(self.host.approve(ctx, moves));
        if self.same_as_builtin {
            assert_eq!(
                d.value,
                Builtin.approve(ctx, moves).value,
                "Wasm default approves differently"
            );
        }
        d
    }
}

fn scorer(name: &str) -> Box<dyn ConsolidationScorer> {
    static POLICIES: OnceLock<HashMap<&'static str, Arc<PolicyHost>>> = OnceLock::new();
    let policies = POLICIES.get_or_init(|| {
        let mut map = HashMap::new();
        for (key, package, config) in [
            ("default", "dovetail-policy-default", None),
            ("balanced", "dovetail-policy-balanced", Some(r#"{"k": 2}"#)),
            (
                "savings-threshold",
                "dovetail-policy-savings-threshold",
                Some(r#"{"min-savings-percent": 20}"#),
            ),
        ] {
            let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
            let p = LoadedPolicy::load(&rt, key, &guest_bytes(package), config)
                .unwrap_or_else(|e| panic!("{package} loads: {e}"));
            let host = PolicyHost::new(rt);
            host.install(Decision::ConsolidationScoring, Arc::new(p))
                .unwrap_or_else(|e| panic!("{package} installs: {e}"));
            map.insert(key, Arc::new(host));
        }
        map
    });
    let host = policies
        .get(name)
        .unwrap_or_else(|| panic!("no shipped policy {name}"))
        .clone();
    Box::new(Wasm {
        host,
        same_as_builtin: name == "default",
    })
}

include!("../../host/core/tests/scenarios/disruption.rs");
