//! The JavaScript example policy (`policies/js/cheapest-spot`), built with
//! componentize-js and run through the real runtime, validated as the
//! controller validates a policy. Prints its size, build time, compile
//! (first-load) time and per-decision latency.
//!
//! Needs the tools from `tests/js/install.sh`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use dovetail_core::policy::document::RequestDocument;
use dovetail_core::policy::parse::parse_request;
use dovetail_core::policy::{Decision, ErrorKind, SelectionRequest, capacity};
use dovetail_policy::{FailureClass, LoadedPolicy, Runtime, RuntimeConfig};
use dovetail_tests::js::{component_wit, js_policy_build};
use dovetail_tests::{example, js_policy};

/// The runtime as the controller builds it: compiling on the caller's
/// thread, no pages kept resident between instances.
fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            parallel_compilation: false,
            keep_resident: 0,
            ..RuntimeConfig::default()
        })
        .expect("runtime")
    })
}

fn bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| std::fs::read(js_policy()).expect("read the JavaScript policy"))
}

fn load(config: Option<&str>) -> Result<LoadedPolicy, dovetail_policy::PolicyFailure> {
    LoadedPolicy::load_for(
        Decision::InstanceSelection,
        runtime(),
        "cheapest-spot.wasm",
        bytes(),
        config,
    )
}

/// The policy with no config, loaded once; the first load compiles it.
fn policy() -> &'static LoadedPolicy {
    static POLICY: OnceLock<LoadedPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        bytes(); // built and read first: the figure is the load alone
        let start = Instant::now();
        let p = load(None).unwrap_or_else(|e| panic!("the JavaScript policy must load: {e}"));
        println!(
            "js policy first load: {:.1} s (compile {:.1} s, validation {:.1} ms)",
            start.elapsed().as_secs_f64(),
            p.compile_time.as_secs_f64(),
            p.validate_time.as_secs_f64() * 1e3
        );
        p
    })
}

fn selection_request() -> SelectionRequest {
    let text = std::fs::read_to_string(example("requests/selection.json")).expect("read request");
    match parse_request(&text).expect("the example request parses") {
        RequestDocument::InstanceSelection(doc) => doc.to_request().expect("valid request"),
        RequestDocument::ConsolidationScoring(_) => panic!("selection.json is a selection request"),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[test]
fn js_policy_builds_and_imports_nothing_but_the_log() {
    let build = js_policy_build();
    println!(
        "js policy component: {} bytes ({:.1} MiB), built in {:.1} s",
        build.bytes,
        build.bytes as f64 / (1 << 20) as f64,
        build.build_time.as_secs_f64()
    );
    let wit = component_wit(&build.path);
    let imports: Vec<&str> = wit
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("import "))
        .collect();
    // No WASI at all: no filesystem, network, environment, clocks or
    // randomness to stub out; only the log (and the types it uses).
    assert_eq!(
        imports,
        ["dovetail:policy/log@0.1.0;", "dovetail:policy/types@0.1.0;"],
        "the JavaScript policy imports more than the log:\n{wit}"
    );
    for export in [
        "export dovetail:policy/meta@0.1.0;",
        "export dovetail:policy/instance-selection@0.1.0;",
    ] {
        assert!(wit.contains(export), "missing `{export}`:\n{wit}");
    }
}

#[test]
fn js_policy_prefers_cheapest_spot_through_the_runtime() {
    let p = policy();
    assert_eq!(p.label(), "cheapest-spot@0.1.0");
    assert_eq!(p.world(), "instance-selector");
    let req = selection_request();
    // `select` holds the answer to the host's output checks (one result per
    // launch, compatible rows, no duplicates, minValues, pick limit).
    let selection = p.select(&req).expect("the JavaScript policy decides");
    assert_eq!(selection.len(), 3);
    let o = &req.offerings;
    let price = |r: &u32| o.price_per_hour[*r as usize];
    let spot = |r: &u32| o.capacity_type[*r as usize] == capacity::SPOT;

    // Launch 0: every row allowed, 60 picks; spot first, each tier cheapest first.
    let picks = selection[0].as_ref().expect("launch 0 has picks");
    assert_eq!(picks.len(), 60);
    assert_eq!(
        picks[0], 65,
        "c7g.xlarge spot in us-east-1c is the cheapest that fits"
    );
    let spot_count = picks.iter().take_while(|r| spot(r)).count();
    assert!(spot_count > 0 && picks[spot_count..].iter().all(|r| !spot(r)));
    for tier in [&picks[..spot_count], &picks[spot_count..]] {
        assert!(tier.windows(2).all(|w| price(&w[0]) <= price(&w[1])));
    }
    assert!(
        picks.iter().all(|&r| o.gpus[r as usize] == 0),
        "no GPU node for pods that ask for none"
    );
    // Launch 1: on-demand rows only, 4 picks, three families.
    assert_eq!(selection[1].as_ref().unwrap(), &vec![54, 56, 18, 90]);
    // Launch 2: a GPU; spot g5 first, then on-demand.
    assert_eq!(
        selection[2].as_ref().unwrap(),
        &vec![109, 111, 113, 108, 110, 112]
    );

    let n = 100;
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let start = Instant::now();
            p.select(&req).expect("decides");
            start.elapsed()
        })
        .collect();
    times.sort();
    let mean = times.iter().sum::<Duration>() / n;
    println!(
        "js policy decision latency over {n} runs ({} offerings, 3 launches): mean {:.2} ms, p50 {:.2} ms, p99 {:.2} ms",
        o.price_per_hour.len(),
        ms(mean),
        ms(times[n as usize / 2]),
        ms(times[n as usize * 99 / 100])
    );
}

#[test]
fn js_policy_config_caps_price_and_names_a_bad_field() {
    policy(); // compile once, report the first load
    let req = selection_request();
    let capped = load(Some(r#"{"max_price": 0.07, "on_demand_fallback": false}"#))
        .expect("a valid config loads");
    let selection = capped.select(&req).expect("decides");
    let picks = selection[0].as_ref().expect("launch 0 has spot picks");
    assert!(!picks.is_empty());
    assert!(picks.iter().all(|&r| {
        let r = r as usize;
        req.offerings.price_per_hour[r] <= 0.07 && req.offerings.capacity_type[r] == capacity::SPOT
    }));
    // Launch 1 may use only on-demand rows, which the config rules out.
    let err = selection[1]
        .as_ref()
        .expect_err("nothing acceptable for launch 1");
    assert_eq!(err.kind, ErrorKind::NoAcceptableOffering, "{}", err.message);

    let bad = load(Some(r#"{"max_price": "cheap"}"#)).expect_err("a bad config is refused");
    assert_eq!(bad.class, FailureClass::Config, "{bad}");
    assert!(bad.to_string().contains("max_price"), "{bad}");
    let unknown = load(Some(r#"{"max_prise": 1}"#)).expect_err("an unknown field is refused");
    assert!(unknown.to_string().contains("max_prise"), "{unknown}");
}
