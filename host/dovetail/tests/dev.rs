//! `dovetail dev` as a user runs it: start it, point kubectl at the
//! kubeconfig it prints, apply the Karpenter examples, stop it with Ctrl-C.
//! kubectl must be installed; without it the test fails with an install
//! hint rather than being skipped. The whole walkthrough with the attached
//! controller is in `walkthrough.rs`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dovetail_api::{EC2NodeClass, NodePool};
use dovetail_tests::{Running, example, guest, kubectl_binary};
use kube::CustomResourceExt;

fn kubectl(kubeconfig: &Path, cache: &Path, args: &[&str]) -> String {
    let out = Command::new(kubectl_binary())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .output()
        .expect("run kubectl");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{stderr}\n{stdout}"
    );
    stdout
}

/// With `--no-controller` nothing launches nodes: the pods wait, marked
/// unschedulable for a separately run `dovetail controller` to act on.
#[test]
fn dev_without_a_controller_serves_a_cluster_for_kubectl_and_stops_cleanly_on_ctrl_c() {
    kubectl_binary();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kube").join("config");
    let cache = dir.path().join("cache");
    let child = Command::new(env!("CARGO_BIN_EXE_dovetail"))
        .args([
            "dev",
            "--no-controller",
            "--port",
            "0",
            "--node-ready-after",
            "1s",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dovetail dev");
    let mut running = Running(child);
    let stdout = running.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut printed = Vec::new();
    let export = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| {
                panic!(
                    "no `export KUBECONFIG` line; printed:\n{}",
                    printed.join("\n")
                )
            });
        printed.push(line.clone());
        if line.trim_start().starts_with("export KUBECONFIG=") {
            break line;
        }
    };
    let text = printed.join("\n");
    assert!(
        export.trim()
            == format!(
                "export KUBECONFIG={} && kubectl get nodes",
                kubeconfig.display()
            ),
        "{export}"
    );
    assert!(
        text.contains(&format!(
            "No controller attached (--no-controller): pods stay Pending (PodScheduled=False, Unschedulable) until you run `dovetail controller --cloud fake --kubeconfig {}`",
            kubeconfig.display()
        )),
        "{text}"
    );
    assert!(!text.contains("Dovetail controller attached"), "{text}");
    assert!(text.contains("no authentication"), "{text}");
    assert!(kubeconfig.is_file());

    let nodes = kubectl(&kubeconfig, &cache, &["get", "nodes"]);
    assert!(
        nodes.is_empty(),
        "no nodes before anything launches: {nodes}"
    );
    let crds = kubectl(&kubeconfig, &cache, &["get", "crds", "-o", "name"]);
    for crd in [
        "nodepools.karpenter.sh",
        "nodeclaims.karpenter.sh",
        "ec2nodeclasses.karpenter.k8s.aws",
    ] {
        assert!(crds.contains(crd), "{crd} installed: {crds}");
    }
    let examples = example("karpenter");
    // kubectl's default strict validation: the server's /openapi/v3 and
    // fieldValidation=Strict check the examples against the CRDs.
    let applied = kubectl(
        &kubeconfig,
        &cache,
        &["apply", "-f", examples.to_str().unwrap()],
    );
    for object in [
        "nodepool.karpenter.sh/default",
        "ec2nodeclass.karpenter.k8s.aws/default",
        "deployment.apps/inflate",
    ] {
        assert!(applied.contains(&format!("{object} created")), "{applied}");
    }
    // No controller: the Deployment's pods are created and wait, marked
    // unschedulable for one to act on.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pods = kubectl(
            &kubeconfig,
            &cache,
            &[
                "get",
                "pods",
                "-l",
                "app=inflate",
                "-o",
                "jsonpath={range .items[*]}{.status.conditions[0].reason}{\"\\n\"}{end}",
            ],
        );
        if pods.lines().filter(|l| *l == "Unschedulable").count() == 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "5 Unschedulable inflate pods; got:\n{pods}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let pool = kubectl(
        &kubeconfig,
        &cache,
        &[
            "get",
            "nodepool",
            "default",
            "-o",
            "jsonpath={.spec.template.spec.nodeClassRef.name}",
        ],
    );
    assert_eq!(pool, "default");

    let pid = running.0.id().to_string();
    let status = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = running.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "dovetail dev still running 20 s after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(running.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(exit.success(), "exit {exit:?}; stderr:\n{stderr}");
    assert!(
        !kubeconfig.exists(),
        "the kubeconfig of a stopped cluster is removed"
    );
}

/// The attached controller buys from the fake cloud of `--catalog`: a pod
/// gets a node of the one type it sells.
#[test]
fn dev_sells_the_instance_types_of_a_catalog_file() {
    kubectl_binary();
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.yaml");
    std::fs::write(
        &catalog,
        "- name: small\n  labels: { kubernetes.io/arch: amd64, kubernetes.io/os: linux }\n  capacity: { cpu: \"2\", memory: 4Gi }\n  offerings:\n    - { zone: zone-a, capacityType: on-demand, price: 0.05 }\n",
    )
    .unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let cache = dir.path().join("cache");
    let child = Command::new(env!("CARGO_BIN_EXE_dovetail"))
        .args([
            "dev",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--health-probe-port",
            "0",
            "--node-ready-after",
            "1s",
            "--catalog",
        ])
        .arg(&catalog)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run dovetail dev");
    let mut running = Running(child);
    let mut lines = BufReader::new(running.0.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    while !printed.contains("Press Ctrl-C") {
        match lines.next() {
            Some(Ok(line)) => printed.push_str(&format!("{line}\n")),
            _ => panic!("dovetail dev stopped early; printed:\n{printed}"),
        }
    }
    assert!(printed.contains("sells 1 instance type and"), "{printed}");
    assert!(
        printed.contains("Dovetail controller attached"),
        "{printed}"
    );

    let manifests = dir.path().join("small.yaml");
    std::fs::write(
        &manifests,
        "apiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata:\n  name: default\nspec:\n  role: KarpenterNodeRole-my-cluster\n  amiSelectorTerms:\n    - alias: al2023@latest\n  subnetSelectorTerms:\n    - tags: { karpenter.sh/discovery: my-cluster }\n  securityGroupSelectorTerms:\n    - tags: { karpenter.sh/discovery: my-cluster }\n---\napiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n  name: default\nspec:\n  template:\n    spec:\n      requirements:\n        - { key: kubernetes.io/os, operator: In, values: [linux] }\n      nodeClassRef: { group: karpenter.k8s.aws, kind: EC2NodeClass, name: default }\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 1\n  selector:\n    matchLabels: { app: app }\n  template:\n    metadata:\n      labels: { app: app }\n    spec:\n      containers:\n        - name: app\n          image: app:1\n          resources:\n            requests: { cpu: 500m, memory: 512Mi }\n",
    )
    .unwrap();
    kubectl(
        &kubeconfig,
        &cache,
        &["apply", "-f", manifests.to_str().unwrap()],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let nodes = kubectl(
            &kubeconfig,
            &cache,
            &[
                "get",
                "nodes",
                "-L",
                "node.kubernetes.io/instance-type,topology.kubernetes.io/zone",
                "--no-headers",
            ],
        );
        let pod = kubectl(
            &kubeconfig,
            &cache,
            &[
                "get",
                "pods",
                "-l",
                "app=app",
                "-o",
                "jsonpath={.items[*].status.phase}",
            ],
        );
        if pod == "Running" {
            assert!(
                nodes.lines().count() == 1 && nodes.contains("small") && nodes.contains("zone-a"),
                "one node of the catalog's type: {nodes}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pod never ran on a node of the catalog: pod {pod:?}, nodes:\n{nodes}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let pid = running.0.id().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill");
    assert!(running.0.wait().unwrap().success());

    let out = Command::new(env!("CARGO_BIN_EXE_dovetail"))
        .args(["dev", "--port", "0", "--catalog", "no/such/catalog.yaml"])
        .output()
        .expect("run dovetail dev");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("catalog no/such/catalog.yaml: does not exist; fix: check the path"),
        "{stderr}"
    );
}

#[test]
fn dev_refuses_to_listen_beyond_loopback() {
    let out = Command::new(env!("CARGO_BIN_EXE_dovetail"))
        .args(["dev", "--address", "0.0.0.0", "--port", "0"])
        .output()
        .expect("run dovetail dev");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no authentication") && stderr.contains("127.0.0.1"),
        "{stderr}"
    );
}

#[test]
fn dev_names_a_bad_duration() {
    let out = Command::new(env!("CARGO_BIN_EXE_dovetail"))
        .args(["dev", "--node-ready-after", "soon"])
        .output()
        .expect("run dovetail dev");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`soon` is not a duration"), "{stderr}");
}

/// The attached controller reads its settings from the environment as
/// `dovetail controller` does; a bad one stops `dovetail dev` naming it,
/// and so does a port the controller cannot listen on, with the way out.
#[test]
fn dev_names_a_bad_controller_setting_and_a_busy_port() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dovetail"))
        .args(["dev", "--port", "0", "--kubeconfig"])
        .arg(dir.path().join("a"))
        .env("DISRUPTION_POLL_INTERVAL", "soon")
        .output()
        .expect("run dovetail dev");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`soon` is not a duration") && stderr.contains("disruption-poll-interval"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("a").exists(),
        "no kubeconfig is left behind"
    );

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_dovetail"))
        .args([
            "dev",
            "--port",
            "0",
            "--health-probe-port",
            "0",
            "--metrics-port",
            &port,
            "--kubeconfig",
        ])
        .arg(dir.path().join("b"))
        .output()
        .expect("run dovetail dev");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot listen for metrics (METRICS_PORT) on 127.0.0.1:{port}"
        )) && stderr.contains("--metrics-port and --health-probe-port")
            && stderr.contains("--no-controller"),
        "{stderr}"
    );
}

/// The examples are what a Karpenter user writes: accepted by the CRDs'
/// schemas and by Karpenter's validation.
#[test]
fn the_karpenter_examples_are_valid() {
    let schema = |crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition| {
        serde_json::to_value(crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap())
            .unwrap()
    };
    let check = |file: &str, schema: serde_json::Value| -> serde_json::Value {
        let text = std::fs::read_to_string(example(&format!("karpenter/{file}"))).unwrap();
        let value: serde_json::Value = serde_norway::from_str(&text).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let problems: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(problems.is_empty(), "{file}: {problems:?}");
        value
    };
    let pool: NodePool =
        serde_json::from_value(check("nodepool.yaml", schema(NodePool::crd()))).unwrap();
    pool.validate()
        .unwrap_or_else(|e| panic!("nodepool.yaml: {e}"));
    let class: EC2NodeClass =
        serde_json::from_value(check("ec2nodeclass.yaml", schema(EC2NodeClass::crd()))).unwrap();
    class
        .validate()
        .unwrap_or_else(|e| panic!("ec2nodeclass.yaml: {e}"));
    assert_eq!(
        pool.spec
            .template
            .spec
            .node_class_ref
            .as_ref()
            .map(|r| r.name.as_str()),
        class.metadata.name.as_deref()
    );
}

/// Runs `dovetail dev` on a free port until dropped; returns it once its kubeconfig exists.
fn start_dev(dir: &Path) -> (Running, PathBuf) {
    dovetail_tests::start_dev(Path::new(env!("CARGO_BIN_EXE_dovetail")), dir)
}

/// `dovetail snapshot` reads what kubectl applied to `dovetail dev`, writes a scenario without
/// secrets, and `dovetail sim` runs that scenario unchanged.
#[test]
fn snapshot_of_a_dev_cluster_runs_in_the_simulator() {
    kubectl_binary();
    let dir = tempfile::tempdir().unwrap();
    let (_dev, kubeconfig) = start_dev(dir.path());
    let cache = dir.path().join("cache");
    kubectl(
        &kubeconfig,
        &cache,
        &["apply", "-f", example("karpenter").to_str().unwrap()],
    );
    let secret_pod = dir.path().join("secret-pod.yaml");
    std::fs::write(
        &secret_pod,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: with-secrets\n  annotations:\n    vault.example/token: s3cr3t-annotation\nspec:\n  containers:\n  - name: app\n    image: app:1\n    env:\n    - name: PASSWORD\n      value: hunter2\n    resources:\n      requests:\n        cpu: 250m\n",
    )
    .unwrap();
    kubectl(
        &kubeconfig,
        &cache,
        &["apply", "-f", secret_pod.to_str().unwrap()],
    );
    // The Deployment's pods exist once its controllers have run.
    let deadline = Instant::now() + Duration::from_secs(30);
    while kubectl(&kubeconfig, &cache, &["get", "pods", "-o", "name"])
        .lines()
        .count()
        < 6
    {
        assert!(
            Instant::now() < deadline,
            "the Deployment's pods never appeared"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let scenario = dir.path().join("snapshot.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_dovetail"))
        .args(["snapshot", "--duration", "10m", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("-o")
        .arg(&scenario)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 nodepools")
            && stderr.contains("1 ec2nodeclasses")
            && stderr.contains("6 pods"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&scenario).unwrap();
    for secret in ["hunter2", "PASSWORD", "s3cr3t-annotation", "managedFields"] {
        assert!(!text.contains(secret), "{secret} in the snapshot:\n{text}");
    }

    let sim = Command::new(env!("CARGO_BIN_EXE_dovetail"))
        .arg("sim")
        .arg(&scenario)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&sim.stdout);
    assert!(
        sim.status.success(),
        "dovetail sim refused the snapshot:\n{}\n{report}",
        String::from_utf8_lossy(&sim.stderr)
    );
    assert!(report.contains("launched"), "{report}");
}

/// `dovetail policy push` validates first, then writes the labelled ConfigMap the controller
/// watches; a policy that fails validation never reaches the cluster.
#[test]
fn policy_push_writes_the_labelled_configmap_and_refuses_a_broken_policy() {
    kubectl_binary();
    let dir = tempfile::tempdir().unwrap();
    let (_dev, kubeconfig) = start_dev(dir.path());
    let cache = dir.path().join("cache");
    let push = |wasm: &Path, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dovetail"))
            .args(["policy", "push"])
            .arg(wasm)
            .args(extra)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .output()
            .unwrap()
    };
    let wasm = guest("dovetail-policy-default");
    let config = dir.path().join("config.json");
    std::fs::write(&config, "{}").unwrap();
    let out = push(
        &wasm,
        &[
            "--decision",
            "instance-selection",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("to configmap kube-system/dovetail-instance-selection"),
        "{stdout}"
    );
    let cm: serde_json::Value = serde_json::from_str(&kubectl(
        &kubeconfig,
        &cache,
        &[
            "get",
            "configmap",
            "-n",
            "kube-system",
            "-l",
            "dovetail.dev/policy=instance-selection",
            "-o",
            "json",
        ],
    ))
    .unwrap();
    let item = &cm["items"][0];
    assert_eq!(item["metadata"]["name"], "dovetail-instance-selection");
    let pushed = item["binaryData"]["instance-selection.wasm"]
        .as_str()
        .unwrap();
    use base64::Engine;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(pushed)
            .unwrap(),
        std::fs::read(&wasm).unwrap(),
        "the component arrives byte for byte"
    );
    assert_eq!(item["data"]["instance-selection.json"], "{}");

    let broken = guest("dovetail-guest-wrong-version");
    let out = push(&broken, &["--decision", "instance-selection", "--shadow"]);
    assert!(!out.status.success(), "a broken policy is refused");
    let all = kubectl(
        &kubeconfig,
        &cache,
        &["get", "configmaps", "-n", "kube-system", "-o", "name"],
    );
    assert!(
        !all.contains("shadow"),
        "nothing was written for the refused policy: {all}"
    );
}
