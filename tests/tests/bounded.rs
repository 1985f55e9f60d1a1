//! The bad-input runner stops what it must stop.

use std::path::Path;
use std::time::Duration;

use dovetail_tests::bounded::{Caps, run};

#[test]
fn a_run_past_its_timeout_is_killed_and_says_so() {
    let caps = Caps {
        memory_mib: 1024,
        timeout: Duration::from_millis(300),
    };
    let r = run(Path::new("sleep"), &["30"], None, caps);
    assert_eq!(r.code, None);
    assert!(
        r.killed.as_deref().unwrap().contains("still running"),
        "{r:?}"
    );
    assert!(r.elapsed < Duration::from_secs(5), "{r:?}");
}

#[test]
fn a_run_over_its_memory_cap_is_killed_and_says_so() {
    let caps = Caps {
        memory_mib: 64,
        timeout: Duration::from_secs(20),
    };
    // 256 MiB touched, then held.
    let r = run(
        Path::new("python3"),
        &[
            "-c",
            "x = bytearray(256 << 20); import time; time.sleep(20)",
        ],
        None,
        caps,
    );
    assert_eq!(r.code, None);
    assert!(
        r.killed.as_deref().unwrap().contains("over 64 MiB"),
        "{r:?}"
    );
}

#[test]
fn a_run_inside_its_caps_reports_code_and_output() {
    let r = run(
        Path::new("sh"),
        &["-c", "read x; echo out $x; echo err >&2; exit 3"],
        Some(b"in\n"),
        Caps::default(),
    );
    r.expect_code(3).expect_stderr(&["err"]);
    assert_eq!(r.stdout, "out in\n");
}
