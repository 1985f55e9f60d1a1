//! Policies written in C (`policies/c`), built with `policies/c/build.sh`
//! (clang + wasi-libc, wit-bindgen, wasm-tools and the preview1 reactor
//! adapter: `tests/c/install.sh`), through the real runtime: the shipped
//! `cheapest-spot` on the example requests, its config and a simulated burst;
//! the C port of the built-in held to the native built-in on every building
//! block; and the provisioning scenarios decided by C.

use std::sync::Arc;

use dovetail_core::policy::Builtin;
use dovetail_core::policy::consolidate::{default_approve, default_rank};
use dovetail_core::policy::document::RequestDocument;
use dovetail_core::policy::fixtures::{synthetic_consolidation, synthetic_selection};
use dovetail_core::policy::select::{acceptable, default_select, pick_limit};
use dovetail_core::policy::types::{
    Attribute, Decision, ErrorKind, MinValues, SelectionRequest, capacity,
};
use dovetail_policy::{LoadedPolicy, PolicyHost, Runtime, RuntimeConfig};
use dovetail_sim::{Simulation, parse_scenario};
use dovetail_tests::{c_policy, example, workspace_root};

const CHEAPEST_SPOT: &str = "policies/c/cheapest-spot";
const C_DEFAULT: &str = "tests/guests/c-default";

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::deterministic(2_000_000_000)).unwrap()
}

fn load(rt: &Runtime, src: &str, config: Option<&str>) -> LoadedPolicy {
    LoadedPolicy::load(rt, src, &c_policy::bytes(src), config)
        .unwrap_or_else(|e| panic!("{src} loads: {e}"))
}

fn selection_request(path: &std::path::Path) -> SelectionRequest {
    let text = std::fs::read_to_string(path).unwrap();
    match serde_json::from_str::<RequestDocument>(&text).unwrap() {
        RequestDocument::InstanceSelection(doc) => doc.to_request().unwrap(),
        RequestDocument::ConsolidationScoring(_) => panic!("{} is not a selection", path.display()),
    }
}

/// The order cheapest-spot promises, computed natively: acceptable rows,
/// spot first, then by price, then by row.
fn spot_first(req: &SelectionRequest, launch: usize) -> Vec<u32> {
    let l = &req.requests[launch];
    let mut rows = acceptable(req, l);
    let o = &req.offerings;
    rows.sort_by(|&a, &b| {
        let tier = |r: u32| u8::from(o.capacity_type[r as usize] != capacity::SPOT);
        (tier(a), o.price_per_hour[a as usize], a)
            .partial_cmp(&(tier(b), o.price_per_hour[b as usize], b))
            .unwrap()
    });
    rows
}

#[test]
fn cheapest_spot_builds_small_and_loads_as_an_instance_selector() {
    let path = c_policy::build(CHEAPEST_SPOT);
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "cheapest-spot component: {size} bytes ({:.1} KiB)",
        size as f64 / 1024.0
    );
    // A ConfigMap holds at most 1 MiB; a C policy is tens of KiB.
    assert!(size < 256 * 1024, "{size} bytes");
    let rt = runtime();
    let p = load(&rt, CHEAPEST_SPOT, None);
    assert_eq!(p.info.name, "cheapest-spot");
    assert_eq!(p.info.version, "0.1.0");
    assert_eq!(p.info.decisions, [Decision::InstanceSelection]);
    assert_eq!(p.world(), "instance-selector");
    // The host's own checks, as at deployment.
    let p = LoadedPolicy::load_for(
        Decision::InstanceSelection,
        &rt,
        "cheapest-spot",
        &c_policy::bytes(CHEAPEST_SPOT),
        Some(
            &std::fs::read_to_string(
                workspace_root()
                    .join(CHEAPEST_SPOT)
                    .join("example-config.json"),
            )
            .unwrap(),
        ),
    )
    .expect("loads for instance selection with the example config");
    assert!(p.implements(Decision::InstanceSelection));
}

#[test]
fn cheapest_spot_picks_spot_first_within_the_limit_and_min_values() {
    let rt = runtime();
    let p = load(&rt, CHEAPEST_SPOT, None);
    let req = selection_request(&example("requests/selection.json"));
    // `select` has passed the host's output checks (compatible, unique,
    // within the limit, minValues met) when it returns Ok.
    let sel = p.select(&req).expect("the host accepts the picks");
    assert_eq!(sel.len(), 3);
    for (i, result) in sel.iter().enumerate() {
        let picks = result
            .as_ref()
            .unwrap_or_else(|e| panic!("launch {i}: {e:?}"));
        let l = &req.requests[i];
        assert!(picks.len() <= pick_limit(l));
        if l.min_values.is_empty() {
            let mut want = spot_first(&req, i);
            want.truncate(pick_limit(l));
            assert_eq!(picks, &want, "launch {i}");
        }
    }
    let first = |i: usize| req.offering(sel[i].as_ref().unwrap()[0]);
    assert_eq!(first(0).instance_type(), "c7g.xlarge");
    assert_eq!(first(0).capacity_type().as_str(), "spot");
    assert_eq!(
        first(2).instance_type(),
        "g5.xlarge",
        "the GPU pool gets GPUs"
    );
    // The batch pool: 4 picks, at least 3 families, on-demand by price.
    let batch = sel[1].as_ref().unwrap();
    assert_eq!(batch, &[54, 56, 18, 90]);
    let mut families: Vec<_> = batch.iter().map(|&r| req.offering(r).family()).collect();
    families.sort_unstable();
    families.dedup();
    assert_eq!(families.len(), 3);
}

#[test]
fn cheapest_spot_keeps_spot_pricier_than_on_demand_which_the_builtin_drops() {
    let rt = runtime();
    let req = selection_request(
        &workspace_root()
            .join(CHEAPEST_SPOT)
            .join("requests/pricier-spot.json"),
    );
    let picks = |config: Option<&str>| load(&rt, CHEAPEST_SPOT, config).select(&req).unwrap();
    assert_eq!(picks(None), [Ok(vec![1, 0])]);
    assert_eq!(default_select(&req), [Ok(vec![0])]);
    assert_eq!(picks(Some(r#"{"max-price": 0.18}"#)), [Ok(vec![0])]);
    assert_eq!(
        picks(Some(r#"{"on-demand-fallback": false}"#)),
        [Ok(vec![1])]
    );
    let none = picks(Some(r#"{"max-price": 0.1}"#));
    let err = none[0].as_ref().unwrap_err();
    assert_eq!(err.kind, ErrorKind::NoAcceptableOffering);
    assert!(err.message.contains("max-price $0.1/h"), "{}", err.message);
}

#[test]
fn cheapest_spot_refuses_bad_config_naming_the_field() {
    let rt = runtime();
    let bytes = c_policy::bytes(CHEAPEST_SPOT);
    for (config, field, fragment) in [
        (
            r#"{"max-prise": 1}"#,
            "max-prise",
            "known fields: max-price, on-demand-fallback",
        ),
        (
            r#"{"max-price": "cheap"}"#,
            "max-price",
            "must be a number, got a string",
        ),
        (r#"{"max-price": 5000}"#, "max-price", "between 0 and 1000"),
        (
            r#"{"on-demand-fallback": 1}"#,
            "on-demand-fallback",
            "must be true or false",
        ),
        (r#"[1]"#, "", "must be a JSON object, got an array"),
        (r#"{"max-price": 1,"#, "", "not valid JSON"),
    ] {
        let e = LoadedPolicy::load(&rt, "cheapest-spot", &bytes, Some(config))
            .expect_err(config)
            .to_string();
        assert!(e.contains(fragment), "{config}: {e}");
        assert!(e.contains(field), "{config}: {e}");
    }
    // Escapes, nesting and whitespace parse; an empty config is `{}`.
    for ok in [
        r#" { "max-price" : 1e-1 , "on-demand-fallback":true } "#,
        "",
        "{}",
    ] {
        LoadedPolicy::load(&rt, "cheapest-spot", &bytes, Some(ok))
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn a_malformed_request_is_an_invalid_input_error_not_a_trap() {
    let rt = runtime();
    let p = load(&rt, CHEAPEST_SPOT, None);
    let mut req = selection_request(&example("requests/selection.json"));
    req.requests[1].compatible.push(9_999);
    let sel = p
        .select(&req)
        .expect("the other launches still get answers");
    let err = sel[1].as_ref().unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(
        err.message
            .contains("compatible row 9999 is outside the offering table (114 rows)"),
        "{}",
        err.message
    );
    assert!(sel[0].is_ok() && sel[2].is_ok());
}

#[test]
fn c_default_matches_the_native_builtin() {
    let rt = runtime();
    let p = load(&rt, C_DEFAULT, None);
    assert_eq!(p.world(), "policy");
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
        if let Some(l) = req.requests.get_mut(3) {
            l.min_values = vec![MinValues {
                attribute: Attribute::Zone,
                min: 99,
            }];
        }
        assert_eq!(
            p.select(&req).unwrap(),
            default_select(&req),
            "{offerings} offerings"
        );
    }
    let req = selection_request(&example("requests/selection.json"));
    assert_eq!(p.select(&req).unwrap(), default_select(&req));
    for (nodes, seed) in [(8, 1), (100, 2), (1000, 3)] {
        let (ctx, moves) = synthetic_consolidation(nodes, seed);
        assert_eq!(p.rank(&ctx).unwrap(), default_rank(&ctx), "{nodes} nodes");
        assert_eq!(
            p.approve(&ctx, &moves).unwrap(),
            default_approve(&ctx, &moves),
            "{nodes} nodes"
        );
    }
}

#[test]
fn cheapest_spot_decides_a_simulated_batch_burst() {
    let rt = Runtime::new(RuntimeConfig::deterministic(10_000_000_000)).unwrap();
    let p =
        LoadedPolicy::load(&rt, "cheapest-spot", &c_policy::bytes(CHEAPEST_SPOT), None).unwrap();
    let host = PolicyHost::new(rt);
    host.install(Decision::InstanceSelection, Arc::new(p))
        .unwrap();
    let text = std::fs::read_to_string(example("scenarios/batch-burst.yaml")).unwrap();
    let report = Simulation::new(parse_scenario(&text).unwrap(), &host, &Builtin).run(&mut |_| {});
    let provisioning: Vec<_> = report
        .decisions
        .iter()
        .filter(|d| d.kind == "provisioning")
        .collect();
    assert!(!provisioning.is_empty(), "{:#?}", report.decisions);
    assert!(
        provisioning
            .iter()
            .all(|d| d.decided_by.starts_with("cheapest-spot")),
        "{:#?}",
        provisioning
    );
    let status = host.status(Decision::InstanceSelection);
    assert_eq!(status.fallbacks, 0, "{:?}", status.last_failure);
    assert!(status.decisions > 0);
    // The NodePool allows spot, so every launch list leads with spot.
    for list in &report.launch_lists {
        assert_eq!(list[0].capacity_type.to_string(), "spot", "{list:?}");
    }
    assert!(
        report.unschedulable.is_empty(),
        "{:#?}",
        report.unschedulable
    );
}
