//! Policies larger than a ConfigMap: the ConfigMap names the component by
//! URL (`https://`, `http://`, `oci://`) and pins its sha256; the
//! controller's policy source fetches it from a local server or registry,
//! verifies it, caches it and swaps it in, or refuses it with an event while
//! the previous version serves.

#[allow(dead_code)]
#[path = "../src/policy_fetch.rs"]
mod policy_fetch;
mod policy_server;
#[allow(dead_code)]
#[path = "../src/policy_source.rs"]
mod policy_source;

use std::process::Command;

use dovetail_core::policy::types::Decision;
use dovetail_kube::policy_configmaps::{
    ComponentSource, PolicyEvent, REASON_ACCEPTED, REASON_REFUSED, parse,
};
use dovetail_tests::{guest, guest_bytes};
use k8s_openapi::api::core::v1::ConfigMap;
use policy_fetch::sha256_hex;
use policy_server::{ENDLESS, PolicyServer, SourceHarness, fetch_config, wait, wait_up_to};

const IS: Decision = Decision::InstanceSelection;
const CS: Decision = Decision::ConsolidationScoring;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_named_by_an_https_or_http_url_is_fetched_verified_and_serves() {
    let graviton = guest_bytes("dovetail-policy-graviton-first");
    let default = guest_bytes("dovetail-policy-default");
    let server = PolicyServer::start().await;
    server.put("/graviton.wasm", graviton.clone());
    server.put("/default.wasm", default.clone());
    let cache = tempfile::tempdir().unwrap();
    let h = SourceHarness::start(fetch_config(cache.path())).await;

    h.put_remote(
        "remote",
        IS,
        &server.https("/graviton.wasm"),
        &sha256_hex(&graviton),
    )
    .await;
    wait("graviton-first serving", || {
        h.serving(IS).as_deref() == Some("graviton-first")
    })
    .await;
    let msg = h.event("remote", REASON_ACCEPTED).await;
    assert!(msg.contains("graviton-first@0.1.0"), "{msg}");
    assert!(
        cache
            .path()
            .join(format!("sha256-{}.wasm", sha256_hex(&graviton)))
            .exists(),
        "cached by digest"
    );

    // Plain HTTP is allowed: the digest pins the bytes.
    h.put_remote(
        "remote",
        IS,
        &server.http("/default.wasm"),
        &sha256_hex(&default),
    )
    .await;
    wait("default serving", || {
        h.serving(IS).as_deref() == Some("default")
    })
    .await;
    let msg = h.nth_event("remote", REASON_ACCEPTED, 2).await;
    assert!(msg.contains("default@"), "{msg}");
    assert_eq!(h.counts.accepted(IS), 2);
    h.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_mismatch_is_refused_naming_both_digests_and_the_old_version_serves() {
    let graviton = guest_bytes("dovetail-policy-graviton-first");
    let default = guest_bytes("dovetail-policy-default");
    // What the user meant to publish, and pinned; never served.
    let meant = guest_bytes("dovetail-policy-balanced");
    let server = PolicyServer::start().await;
    server.put("/graviton.wasm", graviton.clone());
    server.put("/default.wasm", default.clone());
    let cache = tempfile::tempdir().unwrap();
    let h = SourceHarness::start(fetch_config(cache.path())).await;
    h.put_remote(
        "p",
        IS,
        &server.http("/graviton.wasm"),
        &sha256_hex(&graviton),
    )
    .await;
    wait("graviton-first serving", || {
        h.serving(IS).as_deref() == Some("graviton-first")
    })
    .await;

    // The URL serves other bytes than the digest pins. (A digest already
    // in the cache would be served from it, whatever the URL.)
    h.put_remote("p", IS, &server.http("/default.wasm"), &sha256_hex(&meant))
        .await;
    let msg = h.event("p", REASON_REFUSED).await;
    for part in [
        format!("has sha256 {}", sha256_hex(&default)).as_str(),
        format!("pins sha256 {}", sha256_hex(&meant)).as_str(),
        "configmap pins sha256",
        "fix: if ",
        "set `instance-selection.sha256` to it",
        "still serving: instance-selection: graviton-first@0.1.0",
    ] {
        assert!(msg.contains(part), "`{part}` in {msg}");
    }
    assert_eq!(h.serving(IS).as_deref(), Some("graviton-first"));
    assert_eq!(h.counts.refused(IS), 1);
    assert!(
        !cache
            .path()
            .join(format!("sha256-{}.wasm", sha256_hex(&default)))
            .exists(),
        "nothing unverified is cached"
    );
    h.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_source_or_a_missing_file_is_refused_naming_the_url() {
    let graviton = guest_bytes("dovetail-policy-graviton-first");
    let sha = sha256_hex(&graviton);
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let cache = tempfile::tempdir().unwrap();
    let h = SourceHarness::start(fetch_config(cache.path())).await;
    let url = format!("http://{closed}/p.wasm");
    h.put_remote("p", IS, &url, &sha).await;
    let msg = h.event("p", REASON_REFUSED).await;
    for part in [
        format!("cannot reach {url}: "),
        "fix: check `instance-selection.url`".to_string(),
        "still serving: instance-selection: builtin-default@".to_string(),
    ] {
        assert!(msg.contains(&part), "`{part}` in {msg}");
    }
    assert!(h.live().active(IS).is_none());

    let server = PolicyServer::start().await;
    let url = server.http("/nothing-here.wasm");
    h.put_remote("p", IS, &url, &sha).await;
    let msg = h.nth_event("p", REASON_REFUSED, 2).await;
    assert!(msg.contains(&format!("{url} answered HTTP 404")), "{msg}");
    assert!(msg.contains("nothing is there"), "{msg}");
    assert_eq!(h.counts.refused(IS), 2);
    h.stop().await;
    server.stop().await;
}

/// A source in trouble (here a 503) is fetched again on its own, backing
/// off, until it serves: nobody has to touch the ConfigMap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_recovers_is_fetched_again_without_touching_the_configmap() {
    let graviton = guest_bytes("dovetail-policy-graviton-first");
    let server = PolicyServer::start().await;
    server.put("/p.wasm", graviton.clone());
    server.set_unavailable("/p.wasm", true);
    let cache = tempfile::tempdir().unwrap();
    let mut config = fetch_config(cache.path());
    config.retry_after = std::time::Duration::from_secs(1);
    let h = SourceHarness::start(config).await;
    let url = server.http("/p.wasm");
    h.put_remote("p", IS, &url, &sha256_hex(&graviton)).await;
    let first = h.event("p", REASON_REFUSED).await;
    for part in [
        format!("{url} answered HTTP 503"),
        "Dovetail fetches it again in 1s".to_string(),
        "still serving: instance-selection: builtin-default@".to_string(),
    ] {
        assert!(first.contains(&part), "`{part}` in {first}");
    }
    // The second failure waits twice as long.
    let second = h.nth_event("p", REASON_REFUSED, 2).await;
    assert!(second.contains("fetches it again in 2s"), "{second}");
    server.set_unavailable("/p.wasm", false);
    wait("graviton-first serving after the source recovered", || {
        h.serving(IS).as_deref() == Some("graviton-first")
    })
    .await;
    let msg = h.event("p", REASON_ACCEPTED).await;
    assert!(msg.contains("graviton-first@0.1.0"), "{msg}");
    assert!(h.counts.refused(IS) >= 2);
    h.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_body_is_refused_as_it_streams() {
    let server = PolicyServer::start().await;
    let cache = tempfile::tempdir().unwrap();
    let mut config = fetch_config(cache.path());
    config.max_bytes = 4 << 20;
    let h = SourceHarness::start(config).await;
    // The body never ends: only refusing as it passes the cap ends the fetch
    // (before the 30 s deadline, which would say so instead).
    let url = server.http(ENDLESS);
    h.put_remote("big", IS, &url, &"0".repeat(64)).await;
    let msg = h.event("big", REASON_REFUSED).await;
    for part in [
        format!("{url} is larger than the cap of 4194304 bytes (POLICY_FETCH_MAX_BYTES)"),
        "fix: raise POLICY_FETCH_MAX_BYTES (now 4194304)".to_string(),
    ] {
        assert!(msg.contains(&part), "`{part}` in {msg}");
    }
    h.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_artifacts_are_pulled_from_a_registry_with_and_without_a_token() {
    let scorer = guest_bytes("dovetail-policy-balanced");
    let selector = guest_bytes("dovetail-policy-graviton-first");
    let open = PolicyServer::start().await;
    let reference = open.publish("acme/policies/balanced", "1.0.0", &scorer);
    let cache = tempfile::tempdir().unwrap();
    let h = SourceHarness::start(fetch_config(cache.path())).await;
    h.put_remote("scorer", CS, &reference, &sha256_hex(&scorer))
        .await;
    wait("balanced serving", || {
        h.serving(CS).as_deref() == Some("balanced")
    })
    .await;
    h.event("scorer", REASON_ACCEPTED).await;

    // A registry that wants a token for anonymous pulls (as Docker Hub and
    // ghcr.io do): 401, the token service, then the manifest and the blob.
    let guarded = PolicyServer::start().await;
    guarded.require_token();
    let reference = guarded.publish("acme/graviton", "v1", &selector);
    h.put_remote("selector", IS, &reference, &sha256_hex(&selector))
        .await;
    wait("graviton-first serving", || {
        h.serving(IS).as_deref() == Some("graviton-first")
    })
    .await;
    assert_eq!(
        guarded.token_requests(),
        1,
        "one token for the manifest and the blob"
    );

    // The manifest's layer digest already shows a mismatch.
    let meant = guest_bytes("dovetail-policy-default");
    let other = guarded.publish("acme/graviton", "v2", &scorer);
    h.put_remote("selector", IS, &other, &sha256_hex(&meant))
        .await;
    let msg = h.event("selector", REASON_REFUSED).await;
    assert!(
        msg.contains(&format!("has sha256 {}", sha256_hex(&scorer))),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("pins sha256 {}", sha256_hex(&meant))),
        "{msg}"
    );
    assert_eq!(h.serving(IS).as_deref(), Some("graviton-first"));
    h.stop().await;
    open.stop().await;
    guarded.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_component_serves_after_a_restart_with_the_source_gone() {
    let graviton = guest_bytes("dovetail-policy-graviton-first");
    let sha = sha256_hex(&graviton);
    let server = PolicyServer::start().await;
    server.put("/graviton.wasm", graviton.clone());
    let cache = tempfile::tempdir().unwrap();
    let mut h = SourceHarness::start(fetch_config(cache.path())).await;
    h.put_remote("p", IS, &server.https("/graviton.wasm"), &sha)
        .await;
    wait("graviton-first serving", || {
        h.serving(IS).as_deref() == Some("graviton-first")
    })
    .await;
    let cached = cache.path().join(format!("sha256-{sha}.wasm"));
    assert_eq!(std::fs::read(&cached).unwrap(), graviton);

    // A cached file that no longer matches its digest is fetched again.
    std::fs::write(&cached, b"bit rot").unwrap();
    let hits = server.hits();
    h.restart(fetch_config(cache.path())).await;
    wait("graviton-first serving again", || {
        h.serving(IS).as_deref() == Some("graviton-first")
    })
    .await;
    assert_eq!(server.hits(), hits + 1, "fetched again");
    assert_eq!(
        std::fs::read(&cached).unwrap(),
        graviton,
        "the cache repaired"
    );

    // With the server gone, a restart serves from the cache.
    server.stop().await;
    h.restart(fetch_config(cache.path())).await;
    wait("graviton-first serving from the cache", || {
        h.serving(IS).as_deref() == Some("graviton-first")
    })
    .await;
    assert_eq!(h.counts.accepted(IS), 1);
    assert_eq!(h.counts.refused(IS), 0);
    h.stop().await;
}

/// `dovetail policy push … --print`, as a user runs it.
fn push_print(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dovetail"))
        .args(["policy", "push"])
        .args(args)
        .arg("--print")
        .output()
        .unwrap()
}

fn parsed(out: &std::process::Output) -> PolicyEvent {
    assert!(
        out.status.success(),
        "dovetail policy push failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cm: ConfigMap = serde_norway::from_slice(&out.stdout).expect("the output is a ConfigMap");
    parse(&cm, std::time::Instant::now())
}

#[test]
fn policy_push_prints_configmaps_the_controller_reads() {
    let wasm = guest("dovetail-policy-graviton-first");
    let bytes = std::fs::read(&wasm).unwrap();
    let sha = sha256_hex(&bytes);
    let file = wasm.to_str().unwrap();
    let url = "https://policies.example.com/graviton-first.wasm";

    // The digest computed from FILE, which is validated first.
    let out = push_print(&[file, "--decision", "instance-selection", "--url", url]);
    let PolicyEvent::Applied(cm) = parsed(&out) else {
        panic!(
            "a well-formed policy ConfigMap:\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    };
    let [(IS, ComponentSource::Remote(r))] = cm.components.as_slice() else {
        panic!("{:?}", cm.components)
    };
    assert_eq!((r.url.as_str(), r.sha256.as_str()), (url, sha.as_str()));
    assert_eq!(cm.configmap.name, "dovetail-instance-selection");

    // Without FILE, given the digest.
    let reference = "oci://ghcr.io/acme/graviton-first:0.1.0";
    let out = push_print(&[
        "--decision",
        "instance-selection",
        "--shadow",
        "--url",
        reference,
        "--sha256",
        &sha,
    ]);
    let PolicyEvent::Applied(cm) = parsed(&out) else {
        panic!("a well-formed policy ConfigMap")
    };
    assert!(matches!(&cm.components[0].1, ComponentSource::Remote(r) if r.url == reference));
    assert_eq!(cm.configmap.name, "dovetail-instance-selection-shadow");

    // The inline form prints too.
    let PolicyEvent::Applied(cm) = parsed(&push_print(&[file, "--decision", "instance-selection"]))
    else {
        panic!("a well-formed policy ConfigMap")
    };
    assert_eq!(cm.components[0].1, ComponentSource::Inline(bytes.clone()));

    // A digest that is not FILE's is refused before anything is written.
    let out = push_print(&[
        file,
        "--decision",
        "instance-selection",
        "--url",
        url,
        "--sha256",
        &"0".repeat(64),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("is not the sha256 of {file} ({sha})")),
        "{err}"
    );

    let out = push_print(&["--decision", "instance-selection", "--url", url]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--url needs the component's digest"), "{err}");

    let out = push_print(&[
        file,
        "--decision",
        "instance-selection",
        "--url",
        "s3://b/p.wasm",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not an https://, http:// or oci:// URL"),
        "{err}"
    );
}

/// A JavaScript policy is about 12 MB, twelve times what a ConfigMap holds:
/// named by URL, it is fetched, verified, compiled off the decision path and
/// serves, while the built-in keeps deciding until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_policy_too_big_for_a_configmap_serves_by_url() {
    let bytes = std::fs::read(dovetail_tests::js_policy()).unwrap();
    assert!(
        bytes.len() > 1 << 20,
        "the JavaScript component is {} bytes; this test is about components over a ConfigMap's 1 MiB",
        bytes.len()
    );
    let server = PolicyServer::start().await;
    server.put("/cheapest-spot.wasm", bytes.clone());
    let cache = tempfile::tempdir().unwrap();
    let h = SourceHarness::start(fetch_config(cache.path())).await;
    let started = std::time::Instant::now();
    h.put_remote(
        "js",
        IS,
        &server.https("/cheapest-spot.wasm"),
        &sha256_hex(&bytes),
    )
    .await;
    // Compiling an engine-sized component takes tens of seconds here.
    wait_up_to(
        std::time::Duration::from_secs(300),
        "the JavaScript policy serving",
        || h.serving(IS).as_deref() == Some("cheapest-spot"),
    )
    .await;
    println!(
        "JavaScript policy, {} bytes: fetched, verified, compiled and serving in {:.1} s",
        bytes.len(),
        started.elapsed().as_secs_f64()
    );
    let msg = h.event("js", REASON_ACCEPTED).await;
    assert!(msg.contains("cheapest-spot@"), "{msg}");
    assert_eq!(h.counts.accepted(IS), 1);
    h.stop().await;
    server.stop().await;
}

/// `policy push --wait` against `dovetail dev`: a version the controller
/// refuses (the URL serves other bytes than the digest pins) fails the push
/// with the controller's reason, exit 1; the version it accepts succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_wait_reports_the_controllers_verdict() {
    let graviton = guest_bytes("dovetail-policy-graviton-first");
    let default = guest_bytes("dovetail-policy-default");
    let server = PolicyServer::start().await;
    server.put("/p.wasm", default.clone());
    let dir = tempfile::tempdir().unwrap();
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_dovetail"));
    let (_dev, kubeconfig) = dovetail_tests::start_dev(exe, dir.path());
    let push = |sha256: String| {
        let (url, kubeconfig) = (server.http("/p.wasm"), kubeconfig.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(exe)
                .args(["policy", "push", "--decision", "instance-selection"])
                .args(["--url", &url, "--sha256", &sha256, "--wait", "120"])
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .output()
                .unwrap()
        })
    };

    let refused = push(sha256_hex(&graviton)).await.unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    for part in [
        "the controller refused configmap",
        "dovetail-instance-selection",
        &format!("has sha256 {}", sha256_hex(&default)),
        &format!("pins sha256 {}", sha256_hex(&graviton)),
    ] {
        assert!(stderr.contains(part), "`{part}` in {stderr}");
    }

    let accepted = push(sha256_hex(&default)).await.unwrap();
    let stdout = String::from_utf8_lossy(&accepted.stdout);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert!(stdout.contains("accepted: "), "{stdout}");
    server.stop().await;
}

/// With no controller to report, `push --wait` gives up after its limit,
/// exit 1, saying what to check.
#[test]
fn push_wait_without_a_controller_says_what_to_check() {
    let wasm = guest("dovetail-policy-graviton-first");
    let dir = tempfile::tempdir().unwrap();
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_dovetail"));
    let (_dev, kubeconfig) = dovetail_tests::start_dev_with(exe, dir.path(), &["--no-controller"]);
    let started = std::time::Instant::now();
    let out = Command::new(exe)
        .args([
            "policy",
            "push",
            "--decision",
            "instance-selection",
            "--wait",
            "2",
        ])
        .arg(&wasm)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr
            .contains("no controller reported on configmap dovetail-instance-selection within 2s")
            && stderr.contains("is `dovetail controller` running"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "gave up in {:?}",
        started.elapsed()
    );
}

// Bad input, as every command takes it (docs/limits.md): a device as the
// config is not read, a full disk fails the print naming its output, a
// closed pipe ends it quietly.

#[test]
fn bad_input_push_a_device_config_a_full_disk_or_a_closed_pipe() {
    use dovetail_tests::bounded::{Caps, Io, Stdout, run_with};
    let wasm = guest("dovetail-policy-graviton-first");
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_dovetail"));
    let with = |extra: &[&str], stdout| {
        let mut args = vec![
            "policy",
            "push",
            wasm.to_str().unwrap(),
            "--decision",
            "instance-selection",
            "--print",
        ];
        args.extend_from_slice(extra);
        run_with(
            exe,
            &args,
            Io {
                stdout,
                ..Default::default()
            },
            Caps::default(),
        )
    };
    with(&["--config", "/dev/zero"], Stdout::Captured)
        .expect_no_panic()
        .expect_code(1)
        .expect_stderr(&["config /dev/zero: is a character device, not a file"]);
    with(&[], Stdout::Full).expect_failed_write("the push result");
    with(&[], Stdout::Closed).expect_quiet_end();
}
