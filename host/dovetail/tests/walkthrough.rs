//! The README's "Try it with kubectl" walkthrough, step for step: the real
//! kubectl (and `dovetail policy push`) against `dovetail dev` with its
//! attached controller, checking at each step what the README says the user
//! sees. Only the waits are shortened, as the README says how: the
//! controller's disruption settings come from the environment of
//! `dovetail dev`, and the NodePool's `consolidateAfter` is patched to `0s`.
//!
//! kubectl must be installed; without it the test fails with an install
//! hint rather than being skipped.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dovetail_core::catalog::{CapacityType, aws_catalog};
use dovetail_tests::{Running, example, guest, kubectl_binary, workspace_root};
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);

/// Lines a process writes, collected by a thread.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn collect(from: impl Read + Send + 'static) -> Self {
        let lines = Self::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines().map_while(Result::ok) {
                sink.0.lock().unwrap().push(line);
            }
        });
        lines
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

/// `dovetail dev` as the README starts it, and the user's shell around it.
struct Walk {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    dev: Running,
    /// What `dovetail dev` printed before "Press Ctrl-C".
    banner: String,
    stdout: Lines,
    /// The controller's decisions and policy swaps.
    log: Lines,
    metrics: String,
}

impl Walk {
    fn start() -> Self {
        kubectl_binary();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("dovetail-dev.yaml");
        let mut child = Command::new(env!("CARGO_BIN_EXE_dovetail"))
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
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            // As the README starts it; the two settings after it are the
            // README's way to watch consolidation sooner.
            .env("FEATURE_GATES", "SpotToSpotConsolidation=true")
            .env("DISRUPTION_POLL_INTERVAL", "1s")
            .env("CONSOLIDATION_VALIDATION_DELAY", "1s")
            .env_remove("DOVETAIL_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run dovetail dev");
        let log = Lines::collect(child.stderr.take().unwrap());
        let stdout = Lines::collect(child.stdout.take().unwrap());
        let dev = Running(child);
        let deadline = Instant::now() + MINUTE;
        let banner = loop {
            let text = stdout.text();
            if text.contains("Press Ctrl-C") {
                break text;
            }
            assert!(
                Instant::now() < deadline,
                "dovetail dev did not start; printed:\n{text}\n{}",
                log.text()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let metrics = banner
            .split("metrics at http://")
            .nth(1)
            .and_then(|rest| rest.split("/metrics").next())
            .unwrap_or_else(|| panic!("no metrics address printed:\n{banner}"))
            .to_string();
        Self {
            dir,
            kubeconfig,
            dev,
            banner,
            stdout,
            log,
            metrics,
        }
    }

    /// A command run in the user's shell after `export KUBECONFIG=…`.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .current_dir(workspace_root());
        cmd
    }

    fn kubectl_output(&self, args: &[&str]) -> Output {
        self.command(&kubectl_binary())
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .output()
            .expect("run kubectl")
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_output(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn kubectl_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl(&all)).expect("kubectl prints JSON")
    }

    /// `dovetail policy push FILE --decision instance-selection [--shadow]`.
    fn push(&self, wasm: &Path, extra: &[&str]) -> String {
        let out = self
            .command(Path::new(env!("CARGO_BIN_EXE_dovetail")))
            .args(["policy", "push"])
            .arg(wasm)
            .args(["--decision", "instance-selection"])
            .args(extra)
            .output()
            .expect("run dovetail policy push");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "dovetail policy push failed:\n{}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Polls `check` until it says `Ok`, failing with `what`, its last
    /// answer and the controller's log after `timeout`.
    fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            match check() {
                Ok(v) => return v,
                Err(last) if Instant::now() >= deadline => panic!(
                    "timed out waiting for {what}; last seen: {last}\ndovetail dev logged:\n{}",
                    self.log.text()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }

    fn nodes(&self) -> Vec<NodeView> {
        self.kubectl_json(&["get", "nodes"])["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(NodeView::from)
            .collect()
    }

    /// Phases of the inflate pods not being deleted.
    fn inflate(&self) -> Vec<String> {
        self.kubectl_json(&["get", "pods", "-l", "app=inflate"])["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| p["status"]["phase"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// `n` inflate pods, all Running, on Ready nodes.
    fn running(&self, n: usize) -> Result<Vec<NodeView>, String> {
        let phases = self.inflate();
        let nodes = self.nodes();
        if phases.len() == n
            && phases.iter().all(|p| p == "Running")
            && !nodes.is_empty()
            && nodes.iter().all(|n| n.ready)
        {
            Ok(nodes)
        } else {
            Err(format!("pods {phases:?}, nodes {nodes:?}"))
        }
    }

    fn events(&self) -> String {
        self.kubectl(&["get", "events", "-n", "kube-system"])
    }

    fn shadow_disagreements(&self) -> f64 {
        let mut stream = std::net::TcpStream::connect(&self.metrics).expect("reach /metrics");
        write!(stream, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text.lines()
            .find(|l| {
                l.starts_with(
                    "dovetail_policy_shadow_disagreements_total{decision=\"instance-selection\"}",
                )
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

/// What the README has the user look at on a node.
#[derive(Debug, Clone)]
struct NodeView {
    name: String,
    ready: bool,
    instance_type: String,
    arch: String,
    /// USD an hour, from the fake cloud's catalog.
    price: f64,
}

impl From<&Value> for NodeView {
    fn from(node: &Value) -> Self {
        let labels = &node["metadata"]["labels"];
        let label = |k: &str| labels[k].as_str().unwrap_or("").to_string();
        let instance_type = label("node.kubernetes.io/instance-type");
        let capacity_type = CapacityType::from_label(&label("karpenter.sh/capacity-type"))
            .expect("a node's capacity type");
        let price = aws_catalog()
            .get(&instance_type)
            .and_then(|t| t.offering(&label("topology.kubernetes.io/zone"), capacity_type))
            .map(|o| o.price)
            .expect("the catalog sells the node's offering");
        let ready = node["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        Self {
            name: node["metadata"]["name"].as_str().unwrap_or("").to_string(),
            ready,
            instance_type,
            arch: label("kubernetes.io/arch"),
            price,
        }
    }
}

fn total(nodes: &[NodeView]) -> f64 {
    nodes.iter().map(|n| n.price).sum()
}

#[test]
fn the_readme_walkthrough_provisions_consolidates_and_swaps_policies_live() {
    let walk = Walk::start();
    assert!(
        walk.banner
            .contains("Dovetail controller attached (leader election off"),
        "{}",
        walk.banner
    );

    // kubectl apply -f examples/karpenter/ → NodeClaims and nodes appear, pods Running.
    let applied = walk.kubectl(&["apply", "-f", example("karpenter").to_str().unwrap()]);
    for object in [
        "nodepool.karpenter.sh/default",
        "ec2nodeclass.karpenter.k8s.aws/default",
        "deployment.apps/inflate",
    ] {
        assert!(applied.contains(&format!("{object} created")), "{applied}");
    }
    let before = walk.wait("5 inflate pods Running on Ready nodes", 2 * MINUTE, || {
        walk.running(5)
    });
    let claims = walk.kubectl(&["get", "nodeclaims", "--no-headers"]);
    assert_eq!(
        claims.lines().count(),
        before.len(),
        "a NodeClaim per node: {claims}"
    );
    for node in &before {
        assert!(claims.contains(&node.instance_type), "{claims}");
    }
    // The fake cloud's EC2NodeClass status makes the class, and so the pool, Ready.
    walk.wait("the EC2NodeClass and the NodePool Ready", MINUTE, || {
        let ready = walk.kubectl(&["get", "ec2nodeclasses,nodepools", "--no-headers"]);
        if ready.lines().filter(|l| l.contains(" True ")).count() == 2 {
            Ok(())
        } else {
            Err(ready)
        }
    });

    // kubectl scale deployment inflate --replicas 1, watched with
    // `kubectl get nodeclaims -w`: a cheaper NodeClaim replaces the node.
    walk.kubectl(&[
        "patch",
        "nodepool",
        "default",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"disruption":{"consolidateAfter":"0s"}}}"#,
    ]);
    let mut watch = Running(
        walk.command(&kubectl_binary())
            .arg("--cache-dir")
            .arg(walk.dir.path().join("watch-cache"))
            .args(["get", "nodeclaims", "-w"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run kubectl get nodeclaims -w"),
    );
    let watched = Lines::collect(watch.0.stdout.take().unwrap());
    let scaled = walk.kubectl(&["scale", "deployment", "inflate", "--replicas", "1"]);
    assert!(
        scaled.contains("deployment.apps/inflate scaled"),
        "{scaled}"
    );
    let after = walk.wait(
        "consolidation to a cheaper node for the one pod left",
        2 * MINUTE,
        || {
            let nodes = walk.running(1)?;
            if total(&nodes) < total(&before) && nodes.len() <= before.len() {
                Ok(nodes)
            } else {
                Err(format!("{nodes:?}, before {before:?}"))
            }
        },
    );
    assert!(
        walk.log.text().contains("(Underutilized)"),
        "the dev shell logs the disruption:\n{}",
        walk.log.text()
    );
    let replacement = after
        .iter()
        .find(|n| !before.iter().any(|b| b.name == n.name))
        .expect("a new node for the pod");
    walk.wait("the watch to print the new NodeClaim", MINUTE, || {
        let text = watched.text();
        if text.contains(&replacement.instance_type) {
            Ok(())
        } else {
            Err(text)
        }
    });
    drop(watch);

    // Swap a policy live: allow arm64, push graviton-first, see it accepted.
    walk.kubectl(&[
        "patch",
        "nodepool",
        "default",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/requirements/0/values","value":["amd64","arm64"]}]"#,
    ]);
    let arch = walk.kubectl(&[
        "get",
        "nodepool",
        "default",
        "-o",
        "jsonpath={.spec.template.spec.requirements[0]}",
    ]);
    let arch: Value = serde_json::from_str(&arch).unwrap();
    assert_eq!(arch["key"], "kubernetes.io/arch", "the README's patch path");
    assert_eq!(arch["values"], serde_json::json!(["amd64", "arm64"]));
    let graviton = guest("dovetail-policy-graviton-first");
    let pushed = walk.push(&graviton, &[]);
    assert!(
        pushed.contains("pushed instance-selection policy graviton-first")
            && pushed.contains("to configmap kube-system/dovetail-instance-selection"),
        "{pushed}"
    );
    walk.wait("PolicyAccepted on the pushed ConfigMap", MINUTE, || {
        let described = walk.kubectl(&[
            "describe",
            "configmap",
            "-n",
            "kube-system",
            "dovetail-instance-selection",
        ]);
        if described.contains("PolicyAccepted")
            && described.contains("instance-selection policy graviton-first@")
            && described.contains("dovetail.dev/policy-status:")
        {
            Ok(())
        } else {
            Err(described)
        }
    });
    let status = walk.kubectl(&[
        "get",
        "configmap",
        "-n",
        "kube-system",
        "dovetail-instance-selection",
        "-o",
        r"jsonpath={.metadata.annotations.dovetail\.dev/policy-status}",
    ]);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["outcome"], "accepted", "{status}");

    // The next launch is graviton-first's: an arm64 node.
    walk.kubectl(&["scale", "deployment", "inflate", "--replicas", "5"]);
    let arm = walk.wait("an arm64 node for the new pods", 2 * MINUTE, || {
        let nodes = walk.nodes();
        nodes
            .iter()
            .find(|n| n.arch == "arm64" && n.ready && !after.iter().any(|a| a.name == n.name))
            .cloned()
            .ok_or_else(|| format!("{nodes:?}"))
    });
    walk.wait("5 inflate pods Running", 2 * MINUTE, || walk.running(5));
    let log = walk.log.text();
    assert!(
        log.contains("decided_by=graviton-first@"),
        "the launch names the policy that chose {}:\n{log}",
        arm.instance_type
    );
    let listed = walk.kubectl(&[
        "get",
        "nodes",
        "-L",
        "kubernetes.io/arch,node.kubernetes.io/instance-type",
    ]);
    assert!(
        listed.lines().any(|l| l.contains(&arm.name)
            && l.contains("arm64")
            && l.contains(&arm.instance_type)),
        "{listed}"
    );

    // Shadow mode: the default policy beside graviton-first, never acting.
    let default = guest("dovetail-policy-default");
    let pushed = walk.push(&default, &["--shadow"]);
    assert!(
        pushed
            .contains("to configmap kube-system/dovetail-instance-selection-shadow in shadow mode"),
        "{pushed}"
    );
    walk.wait("PolicyAccepted in shadow mode", MINUTE, || {
        let described = walk.kubectl(&[
            "describe",
            "configmap",
            "-n",
            "kube-system",
            "dovetail-instance-selection-shadow",
        ]);
        if described.contains("PolicyAccepted") && described.contains("running in shadow mode") {
            Ok(())
        } else {
            Err(described)
        }
    });
    let graviton_launches = || {
        walk.log
            .text()
            .lines()
            .filter(|l| {
                l.contains("decision=\"provisioned\"") && l.contains("decided_by=graviton-first@")
            })
            .count()
    };
    let launched = graviton_launches();
    walk.kubectl(&["scale", "deployment", "inflate", "--replicas", "12"]);
    walk.wait("12 inflate pods Running", 2 * MINUTE, || walk.running(12));
    assert!(
        graviton_launches() > launched,
        "graviton-first still decides, not the shadow:\n{}",
        walk.log.text()
    );
    walk.wait("a shadow disagreement counted", MINUTE, || {
        let n = walk.shadow_disagreements();
        if n >= 1.0 && walk.log.text().contains("shadow policy disagrees") {
            Ok(())
        } else {
            Err(format!("{n} disagreements"))
        }
    });

    // With kubectl alone: back to the built-in, then graviton-first from a
    // ConfigMap made by kubectl; a broken one is refused.
    walk.kubectl(&[
        "delete",
        "configmap",
        "-n",
        "kube-system",
        "dovetail-instance-selection",
    ]);
    let wasm = format!("instance-selection.wasm={}", graviton.display());
    walk.kubectl(&[
        "create",
        "configmap",
        "graviton-first",
        "-n",
        "kube-system",
        "--from-file",
        &wasm,
    ]);
    walk.kubectl(&[
        "label",
        "configmap",
        "graviton-first",
        "-n",
        "kube-system",
        "dovetail.dev/policy=instance-selection",
    ]);
    walk.wait(
        "PolicyAccepted on the kubectl-made ConfigMap",
        MINUTE,
        || {
            let events = walk.events();
            if events.lines().any(|l| {
                l.contains("PolicyAccepted")
                    && l.contains("configmap/graviton-first")
                    && l.contains("graviton-first@")
            }) {
                Ok(())
            } else {
                Err(events)
            }
        },
    );
    walk.kubectl(&[
        "create",
        "configmap",
        "broken",
        "-n",
        "kube-system",
        "--from-file=instance-selection.wasm=README.md",
    ]);
    walk.kubectl(&[
        "label",
        "configmap",
        "broken",
        "-n",
        "kube-system",
        "dovetail.dev/policy=instance-selection",
    ]);
    walk.wait("PolicyRefused on the broken ConfigMap", MINUTE, || {
        let events = walk.events();
        if events.lines().any(|l| {
            l.contains("Warning")
                && l.contains("PolicyRefused")
                && l.contains("configmap/broken")
                && l.contains("belongs under binaryData")
                && l.contains("still serving: instance-selection: graviton-first@")
        }) {
            Ok(())
        } else {
            Err(events)
        }
    });

    // Ctrl-C stops the controller and the cluster and removes the kubeconfig.
    let mut dev = walk.dev;
    let status = Command::new("kill")
        .args(["-INT", &dev.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(s) = dev.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "dovetail dev still running 30 s after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit {exit:?}:\n{}", walk.log.text());
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        walk.stdout.text().ends_with("Stopped."),
        "{}",
        walk.stdout.text()
    );
    assert!(!walk.kubeconfig.exists(), "the kubeconfig is removed");
}
