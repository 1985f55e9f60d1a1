//! Hot reload under load: while four threads decide continuously, the
//! mounted policy is swapped 100 times between valid and invalid versions.
//! No decision fails, and the active version is always the last valid one.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dovetail_core::policy::InstanceSelector;
use dovetail_core::policy::fixtures::synthetic_selection;
use dovetail_core::policy::types::Decision;
use dovetail_policy::{Budget, PolicyHost, PolicyWatcher, Runtime, RuntimeConfig, short_digest};
use dovetail_tests::guest_bytes;

/// The runtime names components by the first 12 hex digits of sha256.
fn digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    short_digest(&sha2::Sha256::digest(bytes).into())
}

/// Publishes `files` the way the kubelet updates a ConfigMap volume: a new
/// timestamped folder, a `..data_tmp` link to it renamed over `..data`.
fn publish(dir: &Path, generation: usize, files: &[(&str, &[u8])]) {
    let stamp = format!("..2026_11_28_00_00_{generation:05}");
    let target = dir.join(&stamp);
    std::fs::create_dir(&target).unwrap();
    for (name, bytes) in files {
        std::fs::write(target.join(name), bytes).unwrap();
        let link = dir.join(name);
        if link.symlink_metadata().is_err() {
            symlink(Path::new("..data").join(name), &link).unwrap();
        }
    }
    let tmp = dir.join("..data_tmp");
    symlink(&stamp, &tmp).unwrap();
    let old = std::fs::read_link(dir.join("..data")).ok();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
}

#[test]
fn swapping_100_times_under_load_never_fails_a_decision() {
    let dir = tempfile::tempdir().unwrap();
    let default = guest_bytes("dovetail-policy-default");
    let graviton = guest_bytes("dovetail-policy-graviton-first");
    let truncated = default[..default.len() / 2].to_vec();
    let hostile = guest_bytes("dovetail-guest-hostile");
    let valid = [
        (default.clone(), digest(&default)),
        (graviton.clone(), digest(&graviton)),
    ];

    let host = Arc::new(PolicyHost::new(
        // A deadline no busy test machine reaches: this test is about swaps,
        // and a slow call under load is not a failed swap.
        Runtime::new(RuntimeConfig {
            budget: Budget::Deadline(Duration::from_secs(10)),
            ..RuntimeConfig::default()
        })
        .unwrap(),
    ));
    publish(dir.path(), 0, &[("instance-selection.wasm", &valid[0].0)]);
    let _watcher = PolicyWatcher::spawn(dir.path(), host.clone()).unwrap();
    let active = || host.status(Decision::InstanceSelection).active_digest;
    assert_eq!(
        active().as_deref(),
        Some(valid[0].1.as_str()),
        "loaded at start"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let decisions = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (host, stop, decisions, failures) = (
                host.clone(),
                stop.clone(),
                decisions.clone(),
                failures.clone(),
            );
            std::thread::spawn(move || {
                let req = synthetic_selection(200, 2, t);
                while !stop.load(Ordering::Relaxed) {
                    let d = host.select(&req);
                    let ok = d.fallback.is_none()
                        && d.by != dovetail_core::policy::ports::BUILTIN
                        && d.value
                            .iter()
                            .all(|r| r.as_ref().is_ok_and(|p| !p.is_empty()));
                    if !ok {
                        eprintln!("failed decision: {:?}", d.fallback);
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    decisions.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let mut last_valid = 0usize;
    for swap in 1..=100usize {
        let before = host.status(Decision::InstanceSelection);
        let seen = before.reloads + before.rejected_reloads;
        let (files, expect): (Vec<(&str, Vec<u8>)>, Option<usize>) = match swap % 4 {
            // Valid: alternate between the two shipped selectors.
            0 | 2 => {
                let next = 1 - last_valid;
                (
                    vec![("instance-selection.wasm", valid[next].0.clone())],
                    Some(next),
                )
            }
            // Invalid: a half-written component.
            1 => (vec![("instance-selection.wasm", truncated.clone())], None),
            // Invalid: a valid component whose config it refuses.
            _ => (
                vec![
                    ("instance-selection.wasm", hostile.clone()),
                    (
                        "instance-selection.config.json",
                        br#"{"mood": "grumpy"}"#.to_vec(),
                    ),
                ],
                None,
            ),
        };
        let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        publish(dir.path(), swap, &borrowed);
        // Wait until the watcher has acted on this version.
        let start = Instant::now();
        loop {
            let s = host.status(Decision::InstanceSelection);
            if s.reloads + s.rejected_reloads > seen {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "swap {swap} was never acted on"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Some(v) = expect {
            last_valid = v;
        } else {
            let err = host
                .status(Decision::InstanceSelection)
                .last_reload_error
                .unwrap();
            assert!(
                err.contains("fix:"),
                "the rejection says what to fix: {err}"
            );
        }
        assert_eq!(
            active().as_deref(),
            Some(valid[last_valid].1.as_str()),
            "after swap {swap} the last valid version serves"
        );
        // Drop the config again so the next valid swap is judged on its own.
        let _ = std::fs::remove_file(dir.path().join("instance-selection.config.json"));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let total = decisions.load(Ordering::Relaxed);
    assert!(
        total > 100,
        "the deciding threads made progress ({total} decisions)"
    );
    assert_eq!(failures.load(Ordering::Relaxed), 0, "of {total} decisions");
    let status = host.status(Decision::InstanceSelection);
    assert_eq!(status.rejected_reloads, 50);
    assert_eq!(status.failures.total(), 0);
}

#[test]
fn removing_the_file_returns_to_the_builtin_and_plain_directories_work() {
    let dir = tempfile::tempdir().unwrap();
    let host = Arc::new(PolicyHost::new(
        // A deadline no busy test machine reaches: this test is about swaps,
        // and a slow call under load is not a failed swap.
        Runtime::new(RuntimeConfig {
            budget: Budget::Deadline(Duration::from_secs(10)),
            ..RuntimeConfig::default()
        })
        .unwrap(),
    ));
    let _watcher = PolicyWatcher::spawn(dir.path(), host.clone()).unwrap();
    let scorer = guest_bytes("dovetail-policy-savings-threshold");
    let path = dir.path().join("consolidation-scoring.wasm");
    std::fs::write(
        dir.path().join("consolidation-scoring.config.json"),
        r#"{"min-savings-percent": 30}"#,
    )
    .unwrap();
    std::fs::write(&path, &scorer).unwrap();
    let wait = |want: bool| {
        let start = Instant::now();
        while host.active(Decision::ConsolidationScoring).is_some() != want {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "watcher did not react"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait(true);
    let p = host.active(Decision::ConsolidationScoring).unwrap();
    assert_eq!(p.info.name, "savings-threshold");
    assert!(p.config.contains("30"));
    // A selector file cannot serve consolidation: refused, naming the world.
    // (`fs::write` truncates first: the watcher may see the empty file and
    // refuse that too before the bytes land, so wait for the last word.)
    std::fs::write(&path, guest_bytes("dovetail-policy-graviton-first")).unwrap();
    let start = Instant::now();
    while !host
        .status(Decision::ConsolidationScoring)
        .last_reload_error
        .is_some_and(|e| e.contains("instance-selector world"))
    {
        assert!(start.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(5));
    }
    let err = host
        .status(Decision::ConsolidationScoring)
        .last_reload_error
        .unwrap();
    assert!(err.contains("instance-selector world"), "{err}");
    assert_eq!(
        host.active(Decision::ConsolidationScoring)
            .unwrap()
            .info
            .name,
        "savings-threshold"
    );
    std::fs::remove_file(&path).unwrap();
    wait(false);
}

#[test]
fn a_decision_in_flight_finishes_on_the_version_it_started_with() {
    use dovetail_policy::{Budget, LoadedPolicy};
    let rt = Runtime::new(RuntimeConfig {
        budget: Budget::Deadline(Duration::from_secs(10)),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let host = Arc::new(PolicyHost::new(rt.clone()));
    let slow = LoadedPolicy::load(
        &rt,
        "slow",
        &guest_bytes("dovetail-guest-hostile"),
        Some(r#"{"mode": "slow"}"#),
    )
    .unwrap();
    host.install(Decision::InstanceSelection, Arc::new(slow))
        .unwrap();
    let mut req = synthetic_selection(60, 1, 1);
    req.seed = dovetail_tests::TRIGGER_SEED;
    let in_flight = {
        let (host, req) = (host.clone(), req.clone());
        std::thread::spawn(move || host.select(&req))
    };
    std::thread::sleep(Duration::from_millis(30));
    let next = LoadedPolicy::load(
        &rt,
        "default",
        &guest_bytes("dovetail-policy-default"),
        None,
    )
    .unwrap();
    host.install(Decision::InstanceSelection, Arc::new(next))
        .unwrap();
    let old = in_flight.join().unwrap();
    assert_eq!(
        old.by, "hostile@0.0.1",
        "finished on the version it started with"
    );
    assert!(old.fallback.is_none(), "{:?}", old.fallback);
    assert_eq!(
        host.select(&req).by,
        "default@0.1.0",
        "the next decision uses the new version"
    );
}
