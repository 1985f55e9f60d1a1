//! The API as the real `kubectl` sees it. kubectl must be installed; a missing kubectl fails the
//! tests with an install hint rather than skipping them.

use std::path::{Path, PathBuf};
use std::process::Command;

use dovetail_apiserver::{ApiServer, ServerConfig};

struct Kubectl {
    server: ApiServer,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

fn kubectl_binary() -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "kubectl not found on PATH: install it (https://kubernetes.io/docs/tasks/tools/#kubectl) to run these tests"
        )
    })
}

fn write_kubeconfig(dir: &Path, url: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: dovetail\n  cluster:\n    server: {url}\ncontexts:\n- name: dovetail\n  context:\n    cluster: dovetail\n    user: dovetail\n    namespace: default\ncurrent-context: dovetail\nusers:\n- name: dovetail\n  user: {{}}\n"
        ),
    )
    .unwrap();
    path
}

impl Kubectl {
    async fn start() -> Self {
        let server = ApiServer::start(ServerConfig::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = write_kubeconfig(dir.path(), &server.url());
        Self {
            server,
            dir,
            kubeconfig,
        }
    }

    /// Runs kubectl with a fresh cache; returns (success, stdout, stderr).
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let mut cmd = Command::new(kubectl_binary());
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args);
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed:\n{err}\n{out}");
        out
    }

    /// `kubectl create -f` of a manifest written to a file first.
    async fn create(&self, file: &str, manifest: &str) {
        let path = self.dir.path().join(file);
        std::fs::write(&path, manifest).unwrap();
        // Strict validation needs /openapi/v3, which this server does not serve yet.
        self.ok(&["create", "-f", path.to_str().unwrap(), "--validate=false"])
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_shows_the_columns_of_a_real_cluster() {
    let k = Kubectl::start().await;
    let out = k.ok(&["get", "namespaces"]).await;
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "AGE"], "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("kube-system") && l.contains("Active")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resources_lists_the_served_kinds() {
    let k = Kubectl::start().await;
    let out = k.ok(&["api-resources"]).await;
    for want in [
        "pods",
        "deployments",
        "leases",
        "customresourcedefinitions",
        "poddisruptionbudgets",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(want)),
            "{want} missing:\n{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_from_a_file_get_as_yaml_json_and_table_then_delete() {
    let k = Kubectl::start().await;
    k.create(
        "settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  colour: blue\n",
    )
    .await;
    let yaml = k.ok(&["get", "configmap", "settings", "-o", "yaml"]).await;
    assert!(
        yaml.contains("colour: blue") && yaml.contains("resourceVersion:"),
        "{yaml}"
    );
    let json = k.ok(&["get", "configmap", "settings", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["kind"], "ConfigMap");
    let table = k.ok(&["get", "configmaps"]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "DATA", "AGE"], "{table}");
    k.ok(&["delete", "configmap", "settings", "--wait=false"])
        .await;
    let (ok, _, err) = k.run(&["get", "configmap", "settings"]).await;
    assert!(!ok && err.contains("not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_bodies_are_refused_with_415_naming_the_media_type() {
    // Typed kubectl commands (`create configmap`) send protobuf; this server speaks JSON only.
    let k = Kubectl::start().await;
    let (ok, _, err) = k
        .run(&["create", "configmap", "x", "--from-literal=a=b"])
        .await;
    assert!(
        !ok && err.contains("application/vnd.kubernetes.protobuf"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_changes() {
    let k = Kubectl::start().await;
    let mut cmd = Command::new(kubectl_binary());
    cmd.arg("--kubeconfig")
        .arg(&k.kubeconfig)
        .arg("--cache-dir")
        .arg(k.dir.path().join("cache"))
        .args(["get", "namespaces", "-w", "--request-timeout=3s"]);
    let running = tokio::task::spawn_blocking(move || cmd.output());
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let namespaces = k.server.store().resource("", "v1", "namespaces").unwrap();
    k.server
        .store()
        .create(
            &namespaces,
            "",
            serde_json::json!({ "metadata": { "name": "arrived-later" } }),
        )
        .unwrap();
    let out = running.await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.lines().next().is_some_and(|l| l.starts_with("NAME")),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("kube-system"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let later = stdout.lines().find(|l| l.starts_with("arrived-later"));
    assert!(
        later.is_some_and(|l| l.contains("Active")),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_in_each_flavour_and_select_by_label() {
    let k = Kubectl::start().await;
    k.create(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: flags\n  labels:\n    team: web\ndata:\n  a: \"1\"\n",
    )
    .await;
    // kubectl's default patch type is strategic merge.
    k.ok(&["patch", "configmap", "flags", "-p", r#"{"data":{"b":"2"}}"#])
        .await;
    k.ok(&[
        "patch",
        "configmap",
        "flags",
        "--type=merge",
        "-p",
        r#"{"data":{"a":null}}"#,
    ])
    .await;
    k.ok(&[
        "patch",
        "configmap",
        "flags",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/data/c","value":"3"}]"#,
    ])
    .await;
    let json = k.ok(&["get", "configmap", "flags", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["data"],
        serde_json::json!({ "b": "2", "c": "3" }),
        "{json}"
    );
    let names = k
        .ok(&["get", "configmaps", "-l", "team=web", "-o", "name"])
        .await;
    assert_eq!(names.trim(), "configmap/flags");
    let none = k
        .ok(&["get", "configmaps", "-l", "team notin (web)", "-o", "name"])
        .await;
    assert!(!none.contains("flags"), "{none}");
}
