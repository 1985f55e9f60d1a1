//! Hostile policies: each is refused at load or cut off at run time with the
//! right class and a clear message, and the next decision succeeds.

use std::time::{Duration, Instant};

use dovetail_core::policy::fixtures::synthetic_selection;
use dovetail_core::policy::smoke;
use dovetail_core::policy::types::{Decision, ErrorKind};
use dovetail_core::policy::{ConsolidationScorer, InstanceSelector};
use dovetail_policy::{
    Budget, FailureClass, LoadedPolicy, PolicyFailure, PolicyHost, Runtime, RuntimeConfig,
};
use dovetail_tests::{TRIGGER_SEED, guest, guest_bytes};

const DEADLINE: Duration = Duration::from_millis(100);

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        budget: Budget::Deadline(DEADLINE),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn hostile(rt: &Runtime, mode: &str) -> LoadedPolicy {
    let config = format!(r#"{{"mode": "{mode}"}}"#);
    LoadedPolicy::load(
        rt,
        mode,
        &guest_bytes("dovetail-guest-hostile"),
        Some(&config),
    )
    .unwrap_or_else(|e| panic!("hostile policy in mode {mode} should load: {e}"))
}

fn load_err(rt: &Runtime, bytes: &[u8]) -> PolicyFailure {
    LoadedPolicy::load(rt, "suspect.wasm", bytes, None).expect_err("must be refused at load")
}

/// Triggers `mode` and checks the failure; then checks the same instance
/// template decides normally again.
fn attack(mode: &str, class: FailureClass, says: &str) -> Duration {
    let rt = runtime();
    let p = hostile(&rt, mode);
    let mut req = synthetic_selection(60, 2, 1);
    req.seed = TRIGGER_SEED;
    let start = Instant::now();
    let err = p.select(&req).expect_err("the attack must fail");
    let took = start.elapsed();
    assert_eq!(err.class, class, "{mode}: {err}");
    let msg = err.to_string();
    assert!(
        msg.contains(says),
        "{mode}: message should mention {says:?}: {msg}"
    );
    assert!(
        msg.contains("hostile") && msg.contains("sha256:"),
        "names policy and digest: {msg}"
    );
    req.seed = 1;
    let ok = p.select(&req).expect("the next decision succeeds");
    assert_eq!(ok.len(), 2);
    assert!(
        ok.iter()
            .all(|r| r.as_ref().is_ok_and(|picks| !picks.is_empty()))
    );
    took
}

#[test]
fn infinite_loop_is_stopped_within_twice_its_deadline() {
    let took = attack("loop", FailureClass::Timeout, "deadline");
    assert!(took < 2 * DEADLINE, "stopped after {took:?}");
    assert!(took >= DEADLINE, "not before the deadline: {took:?}");
}

#[test]
fn memory_bomb_hits_the_cap() {
    attack("memory-bomb", FailureClass::OutOfMemory, "cap is 64 MiB");
}

#[test]
fn panic_is_a_trap_with_the_panic_message() {
    attack("panic", FailureClass::Trap, "panicked on purpose");
}

#[test]
fn unreachable_is_a_trap() {
    attack("unreachable", FailureClass::Trap, "unreachable");
}

#[test]
fn stack_overflow_is_a_trap() {
    attack("stack-overflow", FailureClass::Trap, "trap");
}

#[test]
fn out_of_range_output_is_invalid() {
    attack("out-of-range", FailureClass::InvalidOutput, "out of range");
}

#[test]
fn duplicate_picks_are_invalid() {
    attack("duplicate", FailureClass::InvalidOutput, "picked twice");
}

#[test]
fn wrong_result_count_is_invalid() {
    attack(
        "wrong-count",
        FailureClass::InvalidOutput,
        "0 results for 2 launch requests",
    );
}

#[test]
fn reading_host_files_or_environment_gets_nothing() {
    let rt = runtime();
    let p = hostile(&rt, "snoop");
    // SAFETY-free: the host process has an environment and a root directory.
    assert!(std::env::vars().count() > 0 && std::path::Path::new("/etc/passwd").exists());
    let mut req = synthetic_selection(60, 1, 1);
    req.seed = TRIGGER_SEED;
    let seen = p.select(&req).expect("snooping is not a failure");
    let err = seen[0].as_ref().expect_err("the snoop reports what it saw");
    assert_eq!(err.kind, ErrorKind::Internal);
    let m = &err.message;
    assert!(m.contains("file=denied"), "{m}");
    assert!(m.contains("env_vars=0"), "{m}");
    assert!(m.contains("HOME=unset"), "{m}");
    assert!(m.contains("args=0"), "{m}");
    assert!(m.contains("root_dir=denied"), "{m}");
    // The clock reads the request's time; randomness follows the request's seed.
    assert!(m.contains(&format!("now_ms={};", req.now_ms)), "{m}");
    let random = |p: &LoadedPolicy, req: &dovetail_core::policy::types::SelectionRequest| {
        let seen = p.select(req).unwrap();
        let msg = seen[0].as_ref().unwrap_err().message.clone();
        msg.split("random=").nth(1).unwrap().to_string()
    };
    let first = random(&p, &req);
    assert_eq!(random(&p, &req), first, "same seed, same randomness");
    let other = LoadedPolicy::load(
        &rt,
        "again",
        &guest_bytes("dovetail-guest-hostile"),
        Some(r#"{"mode": "snoop"}"#),
    )
    .unwrap();
    assert_eq!(random(&other, &req), first, "reproducible across loads");
}

#[test]
fn nan_scores_are_invalid_and_consolidation_makes_no_move() {
    let rt = runtime();
    let p = hostile(&rt, "nan-score");
    let (mut ctx, moves) = smoke::consolidation();
    ctx.seed = TRIGGER_SEED;
    let err = p.rank(&ctx).expect_err("NaN is not a score");
    assert_eq!(err.class, FailureClass::InvalidOutput);
    assert!(err.to_string().contains("not a finite number"), "{err}");

    let host = PolicyHost::new(rt);
    host.install(Decision::ConsolidationScoring, std::sync::Arc::new(p))
        .unwrap();
    let ranked = host.rank(&ctx);
    assert!(ranked.fallback.is_some());
    assert!(
        ranked.value.iter().all(Option::is_none),
        "no candidate while the policy fails"
    );
    ctx.seed = 1;
    let ranked = host.rank(&ctx);
    assert!(ranked.fallback.is_none(), "{:?}", ranked.fallback);
    assert_eq!(ranked.by, "hostile@0.0.1");
    assert!(ranked.value.iter().all(Option::is_some));
    assert_eq!(host.approve(&ctx, &moves).value.len(), moves.len());
}

#[test]
fn policy_error_from_rank_is_its_own_class() {
    let rt = runtime();
    let p = hostile(&rt, "refuse");
    let (mut ctx, _) = smoke::consolidation();
    ctx.seed = TRIGGER_SEED;
    let err = p.rank(&ctx).expect_err("refused");
    assert_eq!(err.class, FailureClass::PolicyError);
    assert!(err.to_string().contains("refusing on purpose"), "{err}");
}

#[test]
fn wrong_world_is_refused_at_load() {
    let rt = runtime();
    let err = load_err(&rt, &guest_bytes("dovetail-guest-wrong-world"));
    assert_eq!(err.class, FailureClass::Load);
    let msg = err.to_string();
    assert!(msg.contains("wasi:cli/run"), "names what it exports: {msg}");
    assert!(
        msg.contains("instance-selector"),
        "names the worlds expected: {msg}"
    );
}

#[test]
fn wrong_package_version_is_refused_at_load() {
    let rt = runtime();
    let err = load_err(&rt, &guest_bytes("dovetail-guest-wrong-version"));
    assert_eq!(err.class, FailureClass::Load);
    let msg = err.to_string();
    assert!(msg.contains("dovetail:policy/meta@0.2.0"), "{msg}");
    assert!(msg.contains("0.1.x"), "{msg}");
}

#[test]
fn network_import_is_refused_at_load() {
    let rt = runtime();
    let err = load_err(&rt, &guest_bytes("dovetail-guest-forbidden-import"));
    assert_eq!(err.class, FailureClass::Load);
    let msg = err.to_string();
    assert!(msg.contains("wasi:sockets/"), "{msg}");
    assert!(msg.contains("network access"), "{msg}");
}

#[test]
fn garbage_empty_and_oversize_files_are_refused_at_load() {
    let rt = runtime();
    let empty = load_err(&rt, b"");
    assert!(empty.to_string().contains("empty"), "{empty}");

    let text = load_err(&rt, b"#!/bin/sh\nrm -rf /\n");
    assert!(
        text.to_string().contains("not a WebAssembly file"),
        "{text}"
    );

    let mut garbage = b"\0asm\x0d\0\x01\0".to_vec();
    garbage.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8));
    let g = load_err(&rt, &garbage);
    assert_eq!(g.class, FailureClass::Load);
    assert!(g.to_string().contains("not a valid component"), "{g}");

    let core_module = b"\0asm\x01\0\0\0";
    let m = load_err(&rt, core_module);
    assert!(m.to_string().contains("core Wasm module"), "{m}");

    let mut huge = guest_bytes("dovetail-policy-default");
    huge.resize(33 << 20, 0);
    let h = load_err(&rt, &huge);
    assert!(h.to_string().contains("over the 32 MiB limit"), "{h}");
}

#[test]
fn a_bad_config_is_refused_naming_the_field() {
    let rt = runtime();
    let bytes = guest_bytes("dovetail-policy-savings-threshold");
    let err = LoadedPolicy::load(
        &rt,
        "s.wasm",
        &bytes,
        Some(r#"{"min-savings-percent": "lots"}"#),
    )
    .expect_err("refused");
    assert_eq!(err.class, FailureClass::Config);
    assert!(err.to_string().contains("`min-savings-percent`"), "{err}");
    let err = LoadedPolicy::load(&rt, "s.wasm", &bytes, Some("{not json")).expect_err("refused");
    assert_eq!(err.class, FailureClass::Config);
    assert!(err.to_string().contains("not valid JSON"), "{err}");
}

#[test]
fn failing_selection_falls_back_then_the_breaker_skips_the_policy() {
    use dovetail_core::clock::ManualClock;
    use std::sync::Arc;
    let rt = runtime();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let host = PolicyHost::with_clock(
        rt.clone(),
        clock.clone(),
        dovetail_policy::BreakerConfig {
            failures_to_open: 3,
            cooldown: Duration::from_secs(30),
        },
    );
    host.install(Decision::InstanceSelection, Arc::new(hostile(&rt, "panic")))
        .unwrap();
    let mut req = synthetic_selection(60, 1, 1);
    req.seed = TRIGGER_SEED;
    let builtin = dovetail_core::policy::select::default_select(&req);
    for _ in 0..3 {
        let d = host.select(&req);
        assert_eq!(d.value, builtin, "falls back to the built-in choice");
        assert!(
            d.fallback
                .as_deref()
                .unwrap()
                .contains("panicked on purpose")
        );
    }
    // Open: the policy is not even called.
    let skipped = host.select(&req);
    assert!(
        skipped
            .fallback
            .as_deref()
            .unwrap()
            .contains("skipped for another 30 s")
    );
    let status = host.status(Decision::InstanceSelection);
    assert_eq!(status.failures.get(FailureClass::Trap), 3);
    assert_eq!(status.fallbacks, 4);
    // After the cool-down it is tried again, and a good request closes it.
    clock.advance_ms(30_001);
    req.seed = 1;
    let d = host.select(&req);
    assert!(d.fallback.is_none(), "{:?}", d.fallback);
    assert_eq!(d.by, "hostile@0.0.1");
    assert!(
        host.status(Decision::InstanceSelection)
            .breaker_open_until_ms
            .is_none()
    );
    // Open again; after the next cool-down one more failure re-opens it at once.
    req.seed = TRIGGER_SEED;
    for _ in 0..3 {
        host.select(&req);
    }
    clock.advance_ms(30_001);
    let tried = host.select(&req).fallback.unwrap();
    assert!(
        tried.contains("panicked on purpose"),
        "half-open: tried: {tried}"
    );
    let skipped = host.select(&req).fallback.unwrap();
    assert!(
        skipped.contains("skipped"),
        "re-opened after one failure: {skipped}"
    );
}

#[test]
fn a_chatty_policy_cannot_flood_the_log() {
    let rt = runtime();
    let p = hostile(&rt, "chatty");
    let mut req = synthetic_selection(60, 1, 1);
    req.seed = TRIGGER_SEED;
    let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let sink = written.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || Sink(sink.clone()))
        .finish();
    let picks = tracing::subscriber::with_default(subscriber, || p.select(&req))
        .expect("logging is not a failure");
    assert!(picks[0].as_ref().is_ok_and(|p| !p.is_empty()));
    let log = String::from_utf8_lossy(&written.lock().unwrap()).into_owned();
    let lines = log
        .lines()
        .filter(|l| l.contains("policy=\"hostile\""))
        .count();
    assert!(
        lines > 0,
        "the policy's log reaches the host log, tagged with its name: {log:.300}"
    );
    assert!(
        lines <= 64,
        "10 MiB asked, at most 64 KiB kept: {lines} lines"
    );
}

struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn fuel_mode_stops_a_loop_deterministically() {
    let rt = Runtime::new(RuntimeConfig::deterministic(50_000_000)).unwrap();
    let p = hostile(&rt, "loop");
    let mut req = synthetic_selection(60, 1, 1);
    req.seed = TRIGGER_SEED;
    for _ in 0..2 {
        let err = p.select(&req).expect_err("runs out of fuel");
        assert_eq!(err.class, FailureClass::OutOfFuel, "{err}");
    }
    req.seed = 1;
    assert!(p.select(&req).is_ok());
}

#[test]
fn compiled_code_is_cached_on_disk_and_a_damaged_cache_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    let bytes = guest_bytes("dovetail-policy-graviton-first");
    let first = LoadedPolicy::load(&Runtime::new(config()).unwrap(), "g", &bytes, None).unwrap();
    assert!(!first.from_cache);
    let cached: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    // A new process (runtime) finds it.
    let second = LoadedPolicy::load(&Runtime::new(config()).unwrap(), "g", &bytes, None).unwrap();
    assert!(second.from_cache);
    assert!(second.compile_time < first.compile_time);
    // A damaged entry is dropped and the component compiled again.
    std::fs::write(&cached[0], b"not compiled code").unwrap();
    let third = LoadedPolicy::load(&Runtime::new(config()).unwrap(), "g", &bytes, None).unwrap();
    assert!(!third.from_cache);
    let req = synthetic_selection(60, 1, 1);
    assert_eq!(third.select(&req).unwrap(), first.select(&req).unwrap());
}

#[test]
fn guests_are_built_where_the_tests_look() {
    assert!(guest("dovetail-policy-default").exists());
}
