//! `helm install dovetail` as far as these machines allow, under the
//! chart's own RBAC with authorisation enforced:
//!
//! - the chart is rendered with Helm's own engine (`tests/chart/render.py`,
//!   in the virtualenv `tests/chart/run` sets up) and applied with kubectl
//!   to the in-memory API server;
//! - `dovetail controller` runs with exactly the args and env of the
//!   rendered Deployment (its `valueFrom` resolved as the kubelet would), as
//!   the chart's ServiceAccount; where a pod would read the in-cluster
//!   config, it reads a kubeconfig carrying that ServiceAccount's token;
//! - Karpenter's example manifests are applied and their pods run on
//!   launched nodes; a policy is put in by upgrading the values and serves;
//!   the Deployment scales down and the nodes drain away;
//! - the controller never meets a 403.

mod harness;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use dovetail_apiserver::AccessControl;
use dovetail_apiserver::cluster::{Cluster, ClusterConfig};
use harness::{fast_config, free_port, http_get, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

const NAMESPACE: &str = "dovetail";
const RELEASE: &str = "dovetail";
const MINUTE: Duration = Duration::from_secs(60);

/// The Python with Helm's engine, from `tests/chart/run`'s virtualenv.
fn chart_python() -> PathBuf {
    let venv = std::env::var_os("DOVETAIL_CHART_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/dovetail-chart-venv"));
    let python = venv.join("bin").join("python");
    assert!(
        python.exists(),
        "{} is missing: run tests/chart/run once to install Helm's engine (helm-python-sdk) there, or set DOVETAIL_CHART_VENV to where it is",
        python.display()
    );
    python
}

/// `helm template --include-crds` with `values`.
fn render(dir: &Path, values: &Value) -> String {
    let file = dir.join("values.yaml");
    std::fs::write(&file, serde_norway::to_string(values).unwrap()).unwrap();
    let out = Command::new(chart_python())
        .arg(dovetail_tests::workspace_root().join("tests/chart/render.py"))
        .args(["--release", RELEASE, "--namespace", NAMESPACE, "--values"])
        .arg(&file)
        .output()
        .expect("run tests/chart/render.py");
    assert!(
        out.status.success(),
        "rendering the chart failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .filter_map(|d| serde::Deserialize::deserialize(d).ok())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// kubectl with `kubeconfig`, `stdin` piped in; panics with its output on
/// failure.
fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(dovetail_tests::kubectl_binary())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the rendered Deployment runs: its container's args and env (each
/// `valueFrom` resolved as the kubelet resolves it for pod `pod`), and its
/// ServiceAccount.
struct PodRun {
    args: Vec<String>,
    env: Vec<(String, String)>,
    service_account: String,
}

fn pod_run(docs: &[Value], pod: &str) -> PodRun {
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("the chart renders a Deployment");
    let spec = &deployment["spec"]["template"]["spec"];
    let container = spec["containers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "controller"))
        .expect("a container named controller");
    let resources = &container["resources"];
    let quantity = |resource: &str, divisor: &Value| -> String {
        let (kind, name) = resource.split_once('.').expect("requests.x or limits.x");
        let text = resources[kind][name]
            .as_str()
            .unwrap_or_else(|| panic!("{resource} is not set"));
        if name == "cpu" {
            let milli = dovetail_core::resources::parse_milli(text).unwrap();
            match divisor.as_str() {
                Some("1m") => milli.to_string(),
                _ => ((milli + 999) / 1000).to_string(),
            }
        } else {
            dovetail_core::resources::parse_units(text)
                .unwrap()
                .to_string()
        }
    };
    let env = container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_string();
            let value = if let Some(v) = e["value"].as_str() {
                v.to_string()
            } else if let Some(path) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                match path {
                    "metadata.namespace" => NAMESPACE.to_string(),
                    "metadata.name" => pod.to_string(),
                    other => panic!("fieldRef {other} is not resolved by this test"),
                }
            } else if let Some(r) = e["valueFrom"]["resourceFieldRef"].as_object() {
                quantity(r["resource"].as_str().unwrap(), &r["divisor"])
            } else {
                panic!("env {name} has a source this test does not resolve: {e}")
            };
            (name, value)
        })
        .collect();
    PodRun {
        args: container["args"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| a.as_str().unwrap().to_string())
            .collect(),
        env,
        service_account: spec["serviceAccountName"]
            .as_str()
            .expect("a serviceAccountName")
            .to_string(),
    }
}

/// The controller as the pod would run it: nothing in its environment but
/// the Deployment's env, the pod's hostname and the ServiceAccount's
/// kubeconfig.
struct Pod1 {
    child: std::process::Child,
    log: PathBuf,
}

impl Pod1 {
    fn start(run: &PodRun, dir: &Path, kubeconfig: &Path, name: &str) -> Pod1 {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_dovetail"))
            .args(&run.args)
            .env_clear()
            .envs(run.env.iter().map(|(k, v)| (k, v)))
            .env("HOSTNAME", name)
            .env("KUBECONFIG", kubeconfig)
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("run dovetail");
        Pod1 { child, log }
    }

    /// SIGTERM, as the kubelet stops a container, and waits for the exit.
    fn terminate(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "the controller was still running 30 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Pod1 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- controller log ----\n{}", self.logs());
        }
    }
}

fn denials(access: &AccessControl) -> String {
    access
        .denials()
        .iter()
        .map(|d| format!("{d:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Ok once exactly `want` of the example's `inflate` pods run.
async fn inflate_running(pods: &Api<Pod>, want: usize) -> Result<(), String> {
    let n = pods
        .list(&ListParams::default().labels("app=inflate"))
        .await
        .map_err(|e| e.to_string())?
        .items
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .count();
    if n == want {
        Ok(())
    } else {
        Err(format!("{n} of {want} running"))
    }
}

/// `helm install` with `values` (ports added) on a cluster with
/// authorisation enforced, and the controller's pod started as the chart's
/// ServiceAccount; `edit` may change the rendered objects before they are
/// applied.
struct Installed {
    cluster: Cluster,
    access: AccessControl,
    dir: tempfile::TempDir,
    admin: PathBuf,
    values: Value,
    docs: Vec<Value>,
    run: PodRun,
    sa_kubeconfig: PathBuf,
    health_port: u16,
}

async fn install(mut values: Value, edit: impl Fn(&mut Vec<Value>)) -> (Installed, Pod1) {
    let mut config: ClusterConfig = fast_config();
    config.server.access = Some(AccessControl::new());
    let cluster = Cluster::start(config).await.expect("start the cluster");
    let access = cluster.access().expect("access control is on").clone();
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("admin.kubeconfig");
    std::fs::write(&admin, cluster.kubeconfig()).unwrap();

    // helm install: the namespace, then the chart's CRDs and objects.
    let (metrics_port, health_port) = (free_port(), free_port());
    values["controller"] = json!({
        "metrics": {"port": metrics_port},
        "healthProbe": {"port": health_port}
    });
    let mut docs = documents(&render(dir.path(), &values));
    edit(&mut docs);
    let rendered = docs
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n---\n");
    kubectl(&admin, &["create", "namespace", NAMESPACE], None);
    kubectl(&admin, &["apply", "-f", "-"], Some(&rendered));

    // The pod, as the chart's ServiceAccount.
    let run = pod_run(&docs, "dovetail-0");
    assert_eq!(
        run.args,
        ["controller"],
        "the chart runs `dovetail controller`"
    );
    let token = access.service_account_token(NAMESPACE, &run.service_account);
    let sa_kubeconfig = dir.path().join("sa.kubeconfig");
    std::fs::write(
        &sa_kubeconfig,
        dovetail_apiserver::cluster::kubeconfig_with_token(&cluster.url(), &token),
    )
    .unwrap();
    let pod = Pod1::start(&run, dir.path(), &sa_kubeconfig, "dovetail-0");
    wait_for("the controller to be ready", MINUTE, || async {
        match http_get(health_port, "/readyz").map(|(status, _)| status) {
            Some(200) => Ok(()),
            other => Err(format!("/readyz: {other:?}")),
        }
    })
    .await;
    let installed = Installed {
        cluster,
        access,
        dir,
        admin,
        values,
        docs,
        run,
        sa_kubeconfig,
        health_port,
    };
    (installed, pod)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_installs_runs_under_its_own_rbac_and_upgrades() {
    // Bound in one pattern so the pod goes (and shows its log on a
    // failure) before the directory holding that log.
    let (
        Installed {
            cluster,
            access,
            dir,
            admin,
            values,
            docs,
            run,
            sa_kubeconfig,
            health_port,
        },
        pod,
    ) = install(
        json!({"settings": {"clusterName": "install-e2e", "cloudProvider": "fake"}}),
        |_| {},
    )
    .await;

    // Karpenter's example: its pods run on launched nodes.
    let example = dovetail_tests::example("karpenter");
    kubectl(&admin, &["apply", "-f", example.to_str().unwrap()], None);
    let client = cluster.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let nodes: Api<Node> = Api::all(client.clone());
    let running = |want: usize| inflate_running(&pods, want);
    wait_for("the example's 5 pods to run", 2 * MINUTE, || running(5)).await;
    let launched = nodes
        .list(&ListParams::default().labels("karpenter.sh/nodepool"))
        .await
        .unwrap()
        .items;
    assert!(!launched.is_empty(), "the pods run on launched nodes");

    // Nodes launched from now on give their pods 10 s to leave when
    // drained (not part of the drift hash: the running nodes stay).
    kubectl(
        &admin,
        &[
            "patch",
            "nodepool",
            "default",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"template":{"spec":{"terminationGracePeriod":"10s"}}}}"#,
        ],
        None,
    );

    // helm upgrade with a policy: the ConfigMap is rendered again, applied,
    // and the new policy serves the next decision.
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let claims: Api<dovetail_api::NodeClaim> = Api::all(client.clone());
    let lease_uids = || async {
        leases
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|l| l.metadata.uid)
            .collect::<Vec<_>>()
    };
    let lease_before = lease_uids().await;
    assert_eq!(lease_before.len(), 1, "the leader's Lease");
    let wasm = dovetail_tests::guest_bytes("dovetail-policy-graviton-first");
    let mut upgraded = values.clone();
    upgraded["policies"] = json!({"instanceSelection": {
        "component": base64::engine::general_purpose::STANDARD.encode(&wasm)
    }});
    let rendered = render(dir.path(), &upgraded);
    kubectl(&admin, &["apply", "-f", "-"], Some(&rendered));
    // Validated and compiled off the decision path; it serves once swapped.
    wait_for(
        "the upgraded policy to be swapped in",
        2 * MINUTE,
        || async {
            if pod
                .logs()
                .contains("a policy ConfigMap's new version is serving")
            {
                Ok(())
            } else {
                Err("not yet".into())
            }
        },
    )
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .patch(
            "inflate",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 12}})),
        )
        .await
        .unwrap();
    wait_for("the upgraded policy to decide", 2 * MINUTE, || async {
        let log = pod.logs();
        if log.contains("\"decided_by\":\"graviton-first") {
            Ok(())
        } else {
            Err("no decision by graviton-first yet".into())
        }
    })
    .await;
    wait_for("12 pods to run", 2 * MINUTE, || running(12)).await;
    assert_eq!(
        lease_uids().await,
        lease_before,
        "the upgrade kept the Lease"
    );

    // helm upgrade that changes the pod template (the log level): the
    // Deployment rolls. The old pod is stopped as the kubelet stops it
    // (SIGTERM) and the new one, with the new env, takes over the same
    // Lease and every NodeClaim.
    let claim_names = || async {
        let mut names: Vec<String> = claims
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect();
        names.sort();
        names
    };
    let claims_before = claim_names().await;
    let mut rolled = upgraded.clone();
    rolled["logLevel"] = json!("debug");
    let rendered = render(dir.path(), &rolled);
    kubectl(&admin, &["apply", "-f", "-"], Some(&rendered));
    let new_run = pod_run(&documents(&rendered), "dovetail-1");
    assert!(
        new_run
            .env
            .contains(&("LOG_LEVEL".to_string(), "debug".to_string())),
        "the new pod template carries the new value"
    );
    pod.terminate();
    let _new_pod = Pod1::start(&new_run, dir.path(), &sa_kubeconfig, "dovetail-1");
    wait_for("the new pod to lead", MINUTE, || async {
        let lease = leases
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items;
        let holder = lease
            .first()
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.holder_identity.clone());
        match (
            http_get(health_port, "/readyz").map(|(status, _)| status),
            holder,
        ) {
            (Some(200), Some(h)) if h.starts_with("dovetail-1") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(lease_uids().await, lease_before, "the roll kept the Lease");
    assert_eq!(
        claim_names().await,
        claims_before,
        "the roll kept every NodeClaim"
    );
    wait_for("12 pods to run after the roll", MINUTE, || running(12)).await;

    // A node drained against a PodDisruptionBudget that allows nothing:
    // its pods are asked to leave through the Eviction API (429), and
    // deleted when the NodeClaim's 10 s grace period runs out.
    kubectl(
        &admin,
        &["apply", "-f", "-"],
        Some(
            &json!({
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "inflate", "namespace": "default"},
                "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "inflate"}}}
            })
            .to_string(),
        ),
    );
    let drained = wait_for(
        "a NodeClaim with a grace period and pods",
        MINUTE,
        || async {
            let pod_nodes: Vec<String> = pods
                .list(&ListParams::default().labels("app=inflate"))
                .await
                .map_err(|e| e.to_string())?
                .items
                .into_iter()
                .filter_map(|p| p.spec.and_then(|s| s.node_name))
                .collect();
            claims
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .into_iter()
                .find(|c| {
                    c.spec.termination_grace_period.is_some()
                        && c.status
                            .as_ref()
                            .and_then(|s| s.node_name.as_ref())
                            .is_some_and(|n| pod_nodes.contains(n))
                })
                .map(|c| c.metadata.name.unwrap())
                .ok_or_else(|| "none yet".to_string())
        },
    )
    .await;
    kubectl(
        &admin,
        &["delete", "nodeclaim", &drained, "--wait=false"],
        None,
    );
    wait_for("the drained NodeClaim to go", 2 * MINUTE, || async {
        match claims.get_opt(&drained).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err(format!("{drained} is still there")),
        }
    })
    .await;
    kubectl(
        &admin,
        &["delete", "poddisruptionbudget", "inflate", "-n", "default"],
        None,
    );

    // Scale down: nodes drain (evictions), NodeClaims go, Events are written.
    deployments
        .patch(
            "inflate",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    wait_for("every NodeClaim to go", 4 * MINUTE, || async {
        let n = claims
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items
            .len();
        if n == 0 {
            Ok(())
        } else {
            Err(format!("{n} NodeClaims left"))
        }
    })
    .await;

    let denied = denials(&access);
    assert!(
        denied.is_empty(),
        "the chart's RBAC refused the controller:\n{denied}"
    );

    every_grant_is_needed(&cluster, &access, &admin, &docs, &run.service_account);
}

/// Every way values can give a policy renders a ConfigMap the controller
/// reads as that policy: a component inline, one named by URL and pinned
/// by its digest, each live or in shadow, with its config.
#[test]
fn policies_in_values_render_configmaps_the_controller_reads() {
    use dovetail_core::policy::Decision;
    use dovetail_kube::policy_configmaps::{ComponentSource, PolicyEvent, PolicyMode, parse};
    use k8s_openapi::api::core::v1::ConfigMap;

    let dir = tempfile::tempdir().unwrap();
    let wasm = dovetail_tests::guest_bytes("dovetail-policy-graviton-first");
    let digest = "0123456789abcdef".repeat(4);
    let values = json!({
        "settings": {"clusterName": "policies", "cloudProvider": "fake"},
        "policies": {
            "instanceSelection": {
                "component": base64::engine::general_purpose::STANDARD.encode(&wasm),
                "config": {"prefer": "arm64"},
                "shadow": {"url": "oci://registry.example.com/acme/spot:1.2", "sha256": digest}
            },
            "consolidationScoring": {
                "url": "https://policies.example.com/savings.wasm",
                "sha256": digest,
                "config": "{\"min-savings-percent\": 20}"
            }
        }
    });
    let mut read: Vec<(String, PolicyMode, Decision, String, Option<String>)> =
        documents(&render(dir.path(), &values))
            .into_iter()
            .filter(|d| d["kind"] == "ConfigMap")
            .map(|d| {
                let cm: ConfigMap = serde_json::from_value(d).unwrap();
                match parse(&cm, std::time::Instant::now()) {
                    PolicyEvent::Applied(p) => {
                        assert_eq!(p.components.len(), 1, "{:?}", p.configmap);
                        let (decision, source) = p.components[0].clone();
                        let source = match source {
                            ComponentSource::Inline(bytes) if bytes == wasm => {
                                "the component given".to_string()
                            }
                            ComponentSource::Inline(bytes) => {
                                format!("{} other bytes", bytes.len())
                            }
                            ComponentSource::Remote(r) => format!("{} sha256:{}", r.url, r.sha256),
                        };
                        let config = p.config(decision).map(str::to_string);
                        (p.configmap.name.clone(), p.mode, decision, source, config)
                    }
                    other => {
                        panic!("the controller does not read the chart's ConfigMap: {other:?}")
                    }
                }
            })
            .collect();
    read.sort_by(|a, b| a.0.cmp(&b.0));
    let remote = |url: &str| format!("{url} sha256:{digest}");
    assert_eq!(
        read,
        vec![
            (
                "dovetail-consolidation-scoring".to_string(),
                PolicyMode::Live,
                Decision::ConsolidationScoring,
                remote("https://policies.example.com/savings.wasm"),
                Some("{\"min-savings-percent\": 20}".to_string())
            ),
            (
                "dovetail-instance-selection".to_string(),
                PolicyMode::Live,
                Decision::InstanceSelection,
                "the component given".to_string(),
                Some("{\"prefer\":\"arm64\"}".to_string())
            ),
            (
                "dovetail-instance-selection-shadow".to_string(),
                PolicyMode::Shadow,
                Decision::InstanceSelection,
                remote("oci://registry.example.com/acme/spot:1.2"),
                None
            ),
        ]
    );
}

/// A grant taken out for real, not replayed: installed without `create`
/// on nodeclaims, the controller meets a 403, names the grant it lacks and
/// keeps serving while the pods wait; `helm upgrade` back to the chart's
/// own roles lets the same controller launch their nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_grant_is_named_and_the_controller_goes_on_once_it_is_back() {
    let without_create = |docs: &mut Vec<Value>| {
        let core = docs
            .iter_mut()
            .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "dovetail-core")
            .expect("the chart's core ClusterRole");
        let mut removed = 0;
        for rule in core["rules"].as_array_mut().unwrap() {
            if rule["resources"] == json!(["nodeclaims"]) {
                let verbs = rule["verbs"].as_array_mut().unwrap();
                let before = verbs.len();
                verbs.retain(|v| *v != "create");
                removed += before - verbs.len();
            }
        }
        assert_eq!(removed, 1, "the chart grants create on nodeclaims once");
    };
    let (
        Installed {
            cluster,
            access,
            dir,
            admin,
            values,
            health_port,
            ..
        },
        pod,
    ) = install(
        json!({"settings": {"clusterName": "install-rbac", "cloudProvider": "fake"}}),
        without_create,
    )
    .await;
    let example = dovetail_tests::example("karpenter");
    kubectl(&admin, &["apply", "-f", example.to_str().unwrap()], None);

    let fix = "grant Dovetail's ServiceAccount `create` on `nodeclaims`";
    wait_for(
        "the controller to name the grant it lacks",
        MINUTE,
        || async {
            if pod.logs().contains(fix) {
                Ok(())
            } else {
                Err("not yet".into())
            }
        },
    )
    .await;
    let denied = access.denials();
    assert!(
        !denied.is_empty()
            && denied
                .iter()
                .all(|d| d.attributes.verb == "create" && d.attributes.resource == "nodeclaims"),
        "only create on nodeclaims is refused:\n{}",
        denials(&access)
    );
    assert!(
        denied[0]
            .message
            .contains("cannot create resource \"nodeclaims\""),
        "{}",
        denied[0].message
    );
    assert_eq!(
        http_get(health_port, "/healthz").map(|(status, _)| status),
        Some(200),
        "the controller keeps serving"
    );
    let client = cluster.client();
    let claims: Api<dovetail_api::NodeClaim> = Api::all(client.clone());
    assert!(
        claims
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "no NodeClaim was made"
    );

    // helm upgrade with the chart as it is: the grant is back.
    let rendered = render(dir.path(), &values);
    kubectl(&admin, &["apply", "-f", "-"], Some(&rendered));
    let pods: Api<Pod> = Api::namespaced(client, "default");
    wait_for("the example's 5 pods to run", 2 * MINUTE, || {
        inflate_running(&pods, 5)
    })
    .await;
}

/// One verb on one resource, as a rule of its own: the unit the chart's
/// roles are checked in, so a verb a rule grants beside needed ones is
/// caught too.
fn grants(rule: &Value) -> Vec<Value> {
    let list = |key: &str| -> Vec<Value> { rule[key].as_array().cloned().unwrap_or_default() };
    assert!(
        rule.get("nonResourceURLs").is_none(),
        "the chart grants no non-resource URLs: {rule}"
    );
    let mut out = Vec::new();
    for group in list("apiGroups") {
        for resource in list("resources") {
            for verb in list("verbs") {
                let mut grant = json!({
                    "apiGroups": [group], "resources": [resource], "verbs": [verb]
                });
                if let Some(names) = rule.get("resourceNames") {
                    grant["resourceNames"] = names.clone();
                }
                out.push(grant);
            }
        }
    }
    out
}

/// Removes each of the chart's grants (one verb on one resource) in turn
/// and shows the scenario then fails: the server's own authoriser, asked
/// again about every request the controller made, refuses at least one.
/// Authorisation depends only on the stored RBAC and the request, so the
/// first refused request is where the scenario would meet its 403;
/// replaying them proves it without running the scenario once per grant.
fn every_grant_is_needed(
    cluster: &Cluster,
    access: &AccessControl,
    admin: &Path,
    docs: &[Value],
    service_account: &str,
) {
    let user = dovetail_apiserver::authn::UserInfo::service_account(NAMESPACE, service_account);
    let made: Vec<_> = access
        .decisions()
        .into_iter()
        .filter(|d| d.user.name == user.name && d.allowed)
        .collect();
    assert!(!made.is_empty(), "the controller's requests were recorded");
    let store = cluster.server().store().clone();
    // The roles the chart binds to its ServiceAccount.
    let bound: Vec<(String, String)> = docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRoleBinding" || d["kind"] == "RoleBinding")
        .filter(|d| {
            d["subjects"].as_array().into_iter().flatten().any(|s| {
                s["kind"] == "ServiceAccount" && s["name"].as_str() == Some(service_account)
            })
        })
        .map(|d| {
            (
                d["roleRef"]["kind"].as_str().unwrap().to_string(),
                d["roleRef"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let roles: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            let kind = d["kind"].as_str().unwrap_or_default();
            let name = d["metadata"]["name"].as_str().unwrap_or_default();
            bound.iter().any(|(k, n)| k == kind && n == name)
        })
        .collect();
    assert_eq!(roles.len(), bound.len(), "every bound role is in the chart");
    let mut unneeded = Vec::new();
    let mut checked = 0;
    for role in roles {
        let all: Vec<Value> = role["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(grants)
            .collect();
        for (i, grant) in all.iter().enumerate() {
            let mut reduced = role.clone();
            reduced["rules"] = Value::Array(
                all.iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, g)| g.clone())
                    .collect(),
            );
            kubectl(admin, &["apply", "-f", "-"], Some(&reduced.to_string()));
            let refused = made
                .iter()
                .filter(|d| !access.authorize(&store, &d.user, &d.attributes).allowed)
                .count();
            if refused == 0 {
                unneeded.push(format!(
                    "{} {}: {grant}",
                    role["kind"].as_str().unwrap(),
                    role["metadata"]["name"].as_str().unwrap()
                ));
            }
            checked += 1;
        }
        kubectl(admin, &["apply", "-f", "-"], Some(&role.to_string()));
    }
    assert!(checked >= 20, "only {checked} grants were checked");
    assert!(
        unneeded.is_empty(),
        "the scenario needed none of these grants; take them out of the chart or exercise them:\n{}",
        unneeded.join("\n")
    );
}
