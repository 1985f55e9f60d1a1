//! Policies from ConfigMaps, the whole path: a ConfigMap written with
//! `dovetail policy push`, kubectl or the API is watched, validated, swapped
//! into the live or shadow policy host, and its outcome lands on it as an
//! Event and a status annotation. kubectl must be installed; without it the
//! kubectl test fails with an install hint rather than being skipped.

// The controller's policy source, compiled into this test as it is into the binary.
#[allow(dead_code)]
#[path = "../src/policy_fetch.rs"]
mod policy_fetch;
#[allow(dead_code)]
#[path = "../src/policy_source.rs"]
mod policy_source;

use dovetail_tests::{guest, guest_bytes, kubectl_binary};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dovetail_apiserver::cluster::{Cluster, ClusterConfig};
use dovetail_core::policy::InstanceSelector;
use dovetail_core::policy::fixtures::synthetic_selection;
use dovetail_core::policy::ports::BUILTIN;
use dovetail_core::policy::types::Decision;
use dovetail_kube::policy_configmaps::{
    MODE_LABEL, OutcomeKind, POLICY_LABEL, PolicyStatus, REASON_ACCEPTED, REASON_REFUSED,
    STATUS_ANNOTATION,
};
use dovetail_policy::{Budget, PolicyHost, Runtime, RuntimeConfig, ShadowHost};
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use policy_source::ReloadCounts;

const NS: &str = "kube-system";
const IS: Decision = Decision::InstanceSelection;

struct Harness {
    cluster: Cluster,
    client: Client,
    hosts: Arc<ShadowHost>,
    counts: Arc<ReloadCounts>,
    task: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Harness {
    async fn start() -> Self {
        let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
        let client = cluster.client();
        // A deadline no busy test machine reaches: these tests are about
        // swaps, and a slow call under load is not a failed swap.
        let runtime = Runtime::new(RuntimeConfig {
            budget: Budget::Deadline(Duration::from_secs(10)),
            ..RuntimeConfig::default()
        })
        .unwrap();
        let hosts = Arc::new(ShadowHost::new(Arc::new(PolicyHost::new(runtime))));
        let dir = tempfile::tempdir().unwrap();
        let fetcher = policy_fetch::Fetcher::new(policy_fetch::FetchConfig {
            cache_dir: dir.path().join("policy-cache"),
            ..policy_fetch::FetchConfig::default()
        })
        .unwrap();
        let (task, counts) = policy_source::spawn(client.clone(), NS, hosts.clone(), fetcher);
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, cluster.kubeconfig()).unwrap();
        Self {
            cluster,
            client,
            hosts,
            counts,
            task,
            dir,
            kubeconfig,
        }
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        self.cluster.shutdown().await;
    }

    fn live(&self) -> &PolicyHost {
        self.hosts.live()
    }

    /// `dovetail policy push`, as a user runs it.
    fn push(&self, wasm: &Path, extra: &[&str]) {
        let out = Command::new(env!("CARGO_BIN_EXE_dovetail"))
            .args(["policy", "push"])
            .arg(wasm)
            .args(extra)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dovetail policy push failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A ConfigMap written through the API (server-side apply).
    async fn put(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        binary: &[(&str, &[u8])],
        data: &[(&str, &str)],
    ) {
        let cm = dovetail_kube::testing::configmap(NS, name, labels, binary, data);
        self.configmaps()
            .patch(
                name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&cm),
            )
            .await
            .unwrap();
    }

    fn configmaps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), NS)
    }

    async fn delete(&self, name: &str) {
        self.configmaps()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }

    async fn events(&self, name: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), NS);
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .collect()
    }

    async fn event(&self, name: &str, reason: &str) -> Event {
        let start = Instant::now();
        loop {
            if let Some(e) = self
                .events(name)
                .await
                .into_iter()
                .rev()
                .find(|e| e.reason.as_deref() == Some(reason))
            {
                return e;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no {reason} event for configmap {name}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The status annotation once it reports `outcome`: the counters move
    /// before the report is written.
    async fn status_reaching(&self, name: &str, outcome: OutcomeKind) -> PolicyStatus {
        let start = Instant::now();
        loop {
            let status = self.status(name).await;
            if status.outcome == outcome {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "configmap {name} still reports {:?}, not {outcome:?}",
                status.outcome
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn status(&self, name: &str) -> PolicyStatus {
        let start = Instant::now();
        loop {
            let cm = self.configmaps().get(name).await.unwrap();
            if let Some(raw) = cm
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(STATUS_ANNOTATION))
            {
                return serde_json::from_str(raw).expect("the annotation is the status JSON");
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no status annotation on configmap {name}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn active_name(host: &PolicyHost, d: Decision) -> Option<String> {
    host.active(d).map(|p| p.info.name.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_configmaps_drive_the_live_and_shadow_policies() {
    let h = Harness::start().await;
    let graviton = guest("dovetail-policy-graviton-first");
    let req = synthetic_selection(200, 2, 3);
    assert_eq!(
        h.hosts.select(&req).by,
        BUILTIN,
        "built-in until a policy arrives"
    );

    // A good policy, pushed the way a user does: accepted, serving, reported.
    h.push(&graviton, &["--decision", "instance-selection"]);
    wait("graviton-first serving", || {
        active_name(h.live(), IS).as_deref() == Some("graviton-first")
    })
    .await;
    let digest = h.live().active(IS).unwrap().digest.clone();
    assert!(h.hosts.select(&req).by.starts_with("graviton-first@"));
    let ev = h
        .event("dovetail-instance-selection", REASON_ACCEPTED)
        .await;
    assert_eq!(ev.type_.as_deref(), Some("Normal"));
    let msg = ev.message.unwrap();
    for part in ["graviton-first", "0.1.0", digest.as_str()] {
        assert!(msg.contains(part), "`{part}` in {msg}");
    }
    let status = h.status("dovetail-instance-selection").await;
    assert_eq!(status.outcome, OutcomeKind::Accepted);
    assert_eq!(status.policies[0].digest, digest);
    assert_eq!(h.counts.accepted(IS), 1);
    assert!(h.counts.last_swap().is_some());

    // Bytes that are not a component: refused with the fix, the previous
    // policy still serving.
    h.put(
        "dovetail-instance-selection",
        &[(POLICY_LABEL, "instance-selection")],
        &[("instance-selection.wasm", b"this is not a wasm component")],
        &[],
    )
    .await;
    wait("the refusal", || h.counts.refused(IS) == 1).await;
    assert_eq!(active_name(h.live(), IS).as_deref(), Some("graviton-first"));
    let ev = h.event("dovetail-instance-selection", REASON_REFUSED).await;
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    let msg = ev.message.unwrap();
    assert!(msg.contains("fix: build the policy"), "{msg}");
    assert!(
        msg.contains("still serving: instance-selection: graviton-first@0.1.0"),
        "{msg}"
    );
    h.status_reaching("dovetail-instance-selection", OutcomeKind::Refused)
        .await;
    // The report's own write (the annotation) does not count as a change.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        (h.counts.accepted(IS), h.counts.refused(IS)),
        (1, 1),
        "no reload from the status annotation"
    );
    assert_eq!(h.events("dovetail-instance-selection").await.len(), 2);

    // A shadow policy runs beside the live one and never acts.
    h.push(
        &guest("dovetail-policy-default"),
        &["--decision", "instance-selection", "--shadow"],
    );
    wait("the shadow policy", || {
        active_name(h.hosts.shadow(), IS).as_deref() == Some("default")
    })
    .await;
    assert_eq!(active_name(h.live(), IS).as_deref(), Some("graviton-first"));
    let ev = h
        .event("dovetail-instance-selection-shadow", REASON_ACCEPTED)
        .await;
    assert!(ev.message.unwrap().contains("shadow mode"));
    for seed in 0..5 {
        let answer = h.hosts.select(&synthetic_selection(200, 4, seed));
        assert!(answer.by.starts_with("graviton-first@"), "{}", answer.by);
    }
    assert_eq!(h.hosts.counts().runs(IS), 5);
    assert!(
        h.hosts.disagreements(IS) > 0,
        "default and graviton-first differ"
    );

    // A ConfigMap of the wrong shape is refused, naming the fix.
    h.put(
        "handmade",
        &[(POLICY_LABEL, "instance-selection"), (MODE_LABEL, "shadow")],
        &[],
        &[("instance-selection.wasm", "AGFzbQ0AAQA=")],
    )
    .await;
    let ev = h.event("handmade", REASON_REFUSED).await;
    let msg = ev.message.unwrap();
    assert!(msg.contains("belongs under binaryData"), "{msg}");
    assert!(
        msg.contains("still serving: instance-selection: default@"),
        "{msg}"
    );
    assert_eq!(
        active_name(h.hosts.shadow(), IS).as_deref(),
        Some("default")
    );

    // Deleting returns the decision to the built-in, or ends the shadow.
    h.delete("dovetail-instance-selection").await;
    wait("the built-in", || h.live().active(IS).is_none()).await;
    assert_eq!(h.hosts.select(&req).by, BUILTIN);
    h.delete("dovetail-instance-selection-shadow").await;
    wait("no shadow", || h.hosts.shadow().active(IS).is_none()).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_configmap_for_a_decision_waits_for_the_first() {
    let h = Harness::start().await;
    let scorer = guest_bytes("dovetail-policy-savings-threshold");
    let balanced = guest_bytes("dovetail-policy-balanced");
    let d = Decision::ConsolidationScoring;
    h.put(
        "first",
        &[(POLICY_LABEL, "consolidation-scoring")],
        &[("consolidation-scoring.wasm", &scorer)],
        &[(
            "consolidation-scoring.json",
            r#"{"min-savings-percent": 30}"#,
        )],
    )
    .await;
    wait("first serving", || {
        active_name(h.live(), d).as_deref() == Some("savings-threshold")
    })
    .await;
    assert!(h.live().active(d).unwrap().config.contains("30"));
    h.put(
        "second",
        &[(POLICY_LABEL, "")],
        &[("consolidation-scoring.wasm", &balanced)],
        &[],
    )
    .await;
    let msg = h.event("second", REASON_REFUSED).await.message.unwrap();
    assert!(
        msg.contains("configmap first already provides the live consolidation-scoring policy"),
        "{msg}"
    );
    assert!(
        msg.contains("delete one of configmaps first and second"),
        "{msg}"
    );
    h.delete("first").await;
    wait("second serving", || {
        active_name(h.live(), d).as_deref() == Some("balanced")
    })
    .await;
    h.event("second", REASON_ACCEPTED).await;
    h.stop().await;
}

async fn kubectl(h: &Harness, args: &[&str]) -> String {
    let mut cmd = Command::new(kubectl_binary());
    cmd.arg("--kubeconfig")
        .arg(&h.kubeconfig)
        .arg("--cache-dir")
        .arg(h.dir.path().join("cache"))
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("run kubectl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_configmap_and_label_is_accepted() {
    kubectl_binary();
    let h = Harness::start().await;
    let wasm = guest("dovetail-policy-graviton-first");
    let from_file = format!("--from-file=instance-selection.wasm={}", wasm.display());
    kubectl(
        &h,
        &["create", "configmap", "my-selector", "-n", NS, &from_file],
    )
    .await;
    // Not a policy until labelled.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.live().active(IS).is_none());
    kubectl(
        &h,
        &[
            "label",
            "configmap",
            "my-selector",
            "-n",
            NS,
            "dovetail.dev/policy=instance-selection",
        ],
    )
    .await;
    wait("the kubectl-made policy serving", || {
        active_name(h.live(), IS).as_deref() == Some("graviton-first")
    })
    .await;
    h.event("my-selector", REASON_ACCEPTED).await;
    let described = kubectl(&h, &["describe", "configmap", "my-selector", "-n", NS]).await;
    assert!(described.contains("PolicyAccepted"), "{described}");
    assert!(described.contains("graviton-first@0.1.0"), "{described}");
    let annotation = kubectl(
        &h,
        &[
            "get",
            "configmap",
            "my-selector",
            "-n",
            NS,
            "-o",
            r"jsonpath={.metadata.annotations.dovetail\.dev/policy-status}",
        ],
    )
    .await;
    assert!(
        annotation.contains(r#""outcome":"accepted""#),
        "{annotation}"
    );
    h.stop().await;
}

/// Decisions keep flowing while the ConfigMap is swapped 100 times between
/// good and bad versions: none fails, and the last good version serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_the_configmap_100_times_under_load_never_fails_a_decision() {
    let h = Harness::start().await;
    let good = [
        guest_bytes("dovetail-policy-default"),
        guest_bytes("dovetail-policy-graviton-first"),
    ];
    let truncated = good[0][..good[0].len() / 2].to_vec();
    let hostile = guest_bytes("dovetail-guest-hostile");
    let name = "dovetail-instance-selection";
    let labels = [(POLICY_LABEL, "instance-selection")];
    h.put(name, &labels, &[("instance-selection.wasm", &good[0])], &[])
        .await;
    wait("the first version", || h.live().active(IS).is_some()).await;
    let digest = |i: usize| {
        use sha2::Digest as _;
        dovetail_policy::short_digest(&sha2::Sha256::digest(&good[i]).into())
    };

    let stop = Arc::new(AtomicBool::new(false));
    let decisions = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let worker = {
        let (hosts, stop, decisions, failures) = (
            h.hosts.clone(),
            stop.clone(),
            decisions.clone(),
            failures.clone(),
        );
        std::thread::spawn(move || {
            let req = synthetic_selection(200, 2, 1);
            while !stop.load(Ordering::Relaxed) {
                let d = hosts.select(&req);
                let ok = d.fallback.is_none()
                    && d.by != BUILTIN
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
    };

    let mut last_good = 0usize;
    for swap in 1..=100usize {
        let seen = h.counts.accepted(IS) + h.counts.refused(IS);
        match swap % 4 {
            // Good: alternate between the two shipped selectors.
            0 | 2 => {
                last_good = 1 - last_good;
                h.put(
                    name,
                    &labels,
                    &[("instance-selection.wasm", &good[last_good])],
                    &[],
                )
                .await;
            }
            // Bad: a half-written component.
            1 => {
                h.put(
                    name,
                    &labels,
                    &[("instance-selection.wasm", &truncated)],
                    &[],
                )
                .await;
            }
            // Bad: a valid component whose config it refuses.
            _ => {
                h.put(
                    name,
                    &labels,
                    &[("instance-selection.wasm", &hostile)],
                    &[("instance-selection.json", r#"{"mood": "grumpy"}"#)],
                )
                .await;
            }
        }
        wait(&format!("swap {swap} acted on"), || {
            h.counts.accepted(IS) + h.counts.refused(IS) > seen
        })
        .await;
        assert_eq!(
            h.live().status(IS).active_digest.as_deref(),
            Some(digest(last_good).as_str()),
            "after swap {swap} the last good version serves"
        );
    }
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();
    let total = decisions.load(Ordering::Relaxed);
    assert!(total > 100, "decisions kept flowing ({total})");
    assert_eq!(failures.load(Ordering::Relaxed), 0, "of {total} decisions");
    assert_eq!(h.counts.refused(IS), 50);
    assert_eq!(h.counts.accepted(IS), 51);
    // The report follows the swap; the annotation ends on the last version.
    let start = Instant::now();
    loop {
        let status = h.status(name).await;
        if status.outcome == OutcomeKind::Accepted
            && status.policies.first().map(|p| p.digest.as_str())
                == Some(digest(last_good).as_str())
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the annotation never reported the last version: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.stop().await;
}
