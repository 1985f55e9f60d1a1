//! Golden decisions of every shipped policy through the real runtime, and the
//! Wasm `default` policy against the native built-in it mirrors.
//!
//! Regenerate the golden files after an intended change with
//! `DOVETAIL_BLESS=1 cargo test -p dovetail-tests --test golden`.

use dovetail_core::policy::consolidate::{default_approve, default_rank};
use dovetail_core::policy::document::{RequestDocument, explain_consolidation, explain_selection};
use dovetail_core::policy::fixtures::{synthetic_consolidation, synthetic_selection};
use dovetail_core::policy::select::default_select;
use dovetail_core::policy::types::{Attribute, MinValues};
use dovetail_policy::{LoadedPolicy, Runtime, RuntimeConfig};
use dovetail_tests::{SHIPPED, example, guest_bytes, workspace_root};
use serde_json::Value;

fn runtime() -> Runtime {
    // Fuel: golden runs must not depend on the machine's speed.
    Runtime::new(RuntimeConfig::deterministic(2_000_000_000)).unwrap()
}

fn load(rt: &Runtime, package: &str, config: Option<&str>) -> LoadedPolicy {
    LoadedPolicy::load(rt, package, &guest_bytes(package), config).unwrap()
}

fn decide(p: &LoadedPolicy, request: &str) -> Option<Value> {
    let text = std::fs::read_to_string(example(request)).unwrap();
    match serde_json::from_str::<RequestDocument>(&text).unwrap() {
        RequestDocument::InstanceSelection(doc) => {
            if !p.implements(dovetail_core::policy::Decision::InstanceSelection) {
                return None;
            }
            let req = doc.to_request().unwrap();
            let sel = p.select(&req).unwrap();
            Some(serde_json::to_value(explain_selection(&req, &sel)).unwrap())
        }
        RequestDocument::ConsolidationScoring(doc) => {
            if !p.implements(dovetail_core::policy::Decision::ConsolidationScoring) {
                return None;
            }
            let (ctx, moves) = doc.to_request().unwrap();
            let ranking = p.rank(&ctx).unwrap();
            let verdicts = p.approve(&ctx, &moves).unwrap();
            Some(
                serde_json::to_value(explain_consolidation(&ctx, &ranking, &moves, &verdicts))
                    .unwrap(),
            )
        }
    }
}

#[test]
fn shipped_policies_make_their_golden_decisions() {
    let rt = runtime();
    let bless = std::env::var_os("DOVETAIL_BLESS").is_some();
    let mut checked = 0;
    for package in SHIPPED {
        let p = load(&rt, package, None);
        for request in ["requests/selection.json", "requests/consolidation.json"] {
            let Some(got) = decide(&p, request) else {
                continue;
            };
            let stem = request
                .trim_start_matches("requests/")
                .trim_end_matches(".json");
            let path = workspace_root()
                .join("tests/golden")
                .join(format!("{}.{stem}.json", p.info.name));
            if bless {
                std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
            }
            let want: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|_| {
                    panic!("missing {}; run with DOVETAIL_BLESS=1", path.display())
                }))
                .unwrap();
            assert_eq!(
                got,
                want,
                "{package} on {request} differs from {}",
                path.display()
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked, 5,
        "2 decisions for default, 1 for each of the other three"
    );
}

#[test]
fn golden_decisions_say_what_each_policy_is_for() {
    let rt = runtime();
    let names = |v: &Value, launch: usize| -> Vec<String> {
        v[launch]["picks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["instance_type"].as_str().unwrap().to_string())
            .collect()
    };
    let default = decide(
        &load(&rt, "dovetail-policy-default", None),
        "requests/selection.json",
    )
    .unwrap();
    let graviton = decide(
        &load(&rt, "dovetail-policy-graviton-first", None),
        "requests/selection.json",
    )
    .unwrap();
    // Default: spot first, cheapest first, at most 60.
    let first = &default[0]["picks"];
    assert_eq!(first[0]["capacity_type"], "spot");
    assert!(first.as_array().unwrap().len() <= 60);
    // Batch launch: 4 picks, 3 families.
    let batch = names(&default, 1);
    assert_eq!(batch.len(), 4);
    let mut fams: Vec<&str> = batch.iter().map(|n| n.split('.').next().unwrap()).collect();
    fams.sort();
    fams.dedup();
    assert!(fams.len() >= 3, "{batch:?}");
    // GPU launch gets the GPU type only.
    assert!(names(&default, 2).iter().all(|n| n.starts_with("g5.")));
    // Graviton-first: arm64 types lead.
    let g = names(&graviton, 0);
    assert!(g[0].contains("g."), "{g:?}");
    let first_amd = g.iter().position(|n| !n.contains("g.")).unwrap();
    assert!(g[first_amd..].iter().all(|n| !n.contains("g.")), "{g:?}");

    let verdicts = |package: &str, config: Option<&str>| -> Vec<bool> {
        let v = decide(&load(&rt, package, config), "requests/consolidation.json").unwrap();
        v["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["approve"].as_bool().unwrap())
            .collect()
    };
    // The replacement of ip-10-0-1-11 saves 5 %: default approves, 20 % threshold does not.
    assert_eq!(
        verdicts("dovetail-policy-default", None),
        [true, true, true, true, false]
    );
    assert_eq!(
        verdicts(
            "dovetail-policy-savings-threshold",
            Some(r#"{"min-savings-percent": 20}"#)
        ),
        [true, false, false, false, false]
    );
    let balanced = verdicts("dovetail-policy-balanced", None);
    assert!(balanced[0], "deleting an empty node is always worth it");
    assert!(!balanced[1], "5 % saving for the busiest node is not");
}

#[test]
fn wasm_default_matches_the_native_builtin() {
    let rt = runtime();
    let p = load(&rt, "dovetail-policy-default", None);
    for (offerings, launches, seed) in [(24, 1, 1), (100, 3, 2), (400, 5, 3), (1000, 2, 4)] {
        let mut req = synthetic_selection(offerings, launches, seed);
        if let Some(l) = req.requests.get_mut(1) {
            l.min_values = vec![MinValues {
                attribute: Attribute::Family,
                min: 4,
            }];
            l.picks = 10;
        }
        if let Some(l) = req.requests.get_mut(2) {
            l.compatible.retain(|r| r % 3 == 0);
        }
        assert_eq!(
            p.select(&req).unwrap(),
            default_select(&req),
            "{offerings} offerings"
        );
    }
    for (nodes, seed) in [(8, 1), (100, 2), (1000, 3)] {
        let (ctx, moves) = synthetic_consolidation(nodes, seed);
        assert_eq!(p.rank(&ctx).unwrap(), default_rank(&ctx));
        assert_eq!(
            p.approve(&ctx, &moves).unwrap(),
            default_approve(&ctx, &moves)
        );
    }
}
