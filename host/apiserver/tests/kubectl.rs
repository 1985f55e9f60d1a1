//! The API as the real `kubectl` sees it. kubectl must be installed; a missing kubectl fails the
//! tests with an install hint rather than skipping them.

use std::path::{Path, PathBuf};
use std::process::Command;

use dovetail_apiserver::{ApiServer, ServerConfig};

mod support;

struct Kubectl {
    server: ApiServer,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
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
        support::kubectl(self.dir.path(), &self.kubeconfig, args).await
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
        self.ok(&["create", "-f", path.to_str().unwrap()]).await;
    }

    /// Writes a manifest to a file in the test's directory and returns its path.
    fn file(&self, name: &str, manifest: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, manifest).unwrap();
        path.to_str().unwrap().to_string()
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

/// `kubectl get -o json` of one object.
async fn get_json(k: &Kubectl, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let out = k.ok(&all).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

// Typed `kubectl create` commands send protobuf bodies, validated strictly by default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_configmap_from_files_and_literals_sends_protobuf_that_is_stored_exactly() {
    let k = Kubectl::start().await;
    let file = k.dir.path().join("app.properties");
    std::fs::write(&file, "colour=blue\nsize=3\n").unwrap();
    let from_file = format!("--from-file={}", file.display());
    k.ok(&["create", "configmap", "props", &from_file]).await;
    k.ok(&[
        "create",
        "configmap",
        "lits",
        "--from-literal=a=1",
        "--from-literal=b=two words",
    ])
    .await;
    let props = get_json(&k, &["configmap", "props"]).await;
    assert_eq!(
        props["data"],
        serde_json::json!({ "app.properties": "colour=blue\nsize=3\n" }),
        "{props}"
    );
    assert!(props.get("binaryData").is_none(), "{props}");
    let lits = get_json(&k, &["configmap", "lits"]).await;
    assert_eq!(
        lits["data"],
        serde_json::json!({ "a": "1", "b": "two words" }),
        "{lits}"
    );
    assert!(lits["metadata"]["uid"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_secret_namespace_serviceaccount_and_deployment_from_protobuf() {
    let k = Kubectl::start().await;
    k.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=password=s3cret",
    ])
    .await;
    let secret = get_json(&k, &["secret", "creds"]).await;
    assert_eq!(
        secret["data"],
        serde_json::json!({ "password": "czNjcmV0" }),
        "{secret}"
    );
    assert_eq!(secret["type"], "Opaque");

    k.ok(&["create", "namespace", "team"]).await;
    let ns = get_json(&k, &["namespace", "team"]).await;
    assert_eq!(ns["status"]["phase"], "Active", "{ns}");
    assert_eq!(ns["spec"]["finalizers"], serde_json::json!(["kubernetes"]));
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team"
    );

    k.ok(&["create", "serviceaccount", "robot"]).await;
    let sa = get_json(&k, &["serviceaccount", "robot"]).await;
    assert_eq!(sa["metadata"]["name"], "robot", "{sa}");

    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--replicas=2",
        "--port=80",
    ])
    .await;
    let d = get_json(&k, &["deployment", "web"]).await;
    assert_eq!(d["spec"]["replicas"], 2, "{d}");
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "web");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        (
            &c["name"],
            &c["image"],
            &c["ports"][0]["containerPort"],
            &c["ports"][0]["protocol"]
        ),
        (
            &serde_json::json!("nginx"),
            &serde_json::json!("nginx:1.27"),
            &serde_json::json!(80),
            &serde_json::json!("TCP")
        ),
        "{d}"
    );
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_run_creates_a_defaulted_pending_pod() {
    let k = Kubectl::start().await;
    k.ok(&["run", "web", "--image=nginx:1.27", "--labels=app=web"])
        .await;
    let pod = get_json(&k, &["pod", "web"]).await;
    assert_eq!(pod["metadata"]["labels"]["app"], "web", "{pod}");
    assert_eq!(pod["spec"]["containers"][0]["image"], "nginx:1.27");
    assert_eq!(pod["spec"]["restartPolicy"], "Always");
    assert_eq!(
        pod["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(pod["status"]["qosClass"], "BestEffort");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protobuf_kind_the_server_cannot_decode_is_refused_naming_it_and_the_json_route() {
    let k = Kubectl::start().await;
    let (ok, _, err) = k
        .run(&["create", "service", "clusterip", "web", "--tcp=80:8080"])
        .await;
    assert!(
        !ok && err.contains("v1 Service") && err.contains("send it as JSON"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_dry_run_prints_the_defaulted_object_and_stores_nothing() {
    let k = Kubectl::start().await;
    let before = k.server.store().revision();
    let out = k
        .ok(&[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--dry-run=server",
            "-o",
            "json",
        ])
        .await;
    let d: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(d["spec"]["replicas"], 1, "{out}");
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );
    assert!(d["metadata"]["uid"].is_string());
    assert!(d["metadata"].get("resourceVersion").is_none(), "{out}");
    let pod = k.dir.path().join("pod.yaml");
    std::fs::write(
        &pod,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    image: busybox:1.36\n",
    )
    .unwrap();
    let yaml = k
        .ok(&[
            "create",
            "-f",
            pod.to_str().unwrap(),
            "--dry-run=server",
            "-o",
            "yaml",
        ])
        .await;
    for want in [
        "dnsPolicy: ClusterFirst",
        "restartPolicy: Always",
        "schedulerName: default-scheduler",
        "terminationGracePeriodSeconds: 30",
        "imagePullPolicy: IfNotPresent",
        "key: node.kubernetes.io/not-ready",
        "tolerationSeconds: 300",
        "phase: Pending",
        "qosClass: BestEffort",
    ] {
        assert!(yaml.contains(want), "{want} missing:\n{yaml}");
    }
    assert_eq!(k.server.store().revision(), before, "nothing was written");
    let (ok, _, err) = k.run(&["get", "deployment", "web"]).await;
    assert!(!ok && err.contains("not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_changes() {
    let k = Kubectl::start().await;
    let mut cmd = Command::new(support::kubectl_binary());
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

fn deployment(replicas: u32, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: {image}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_conflicts_name_the_manager_until_forced() {
    let k = Kubectl::start().await;
    let first = k.file("web.yaml", &deployment(1, "nginx:1"));
    let out = k.ok(&["apply", "--server-side", "-f", &first]).await;
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let managed = k
        .ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
            "--show-managed-fields",
        ])
        .await;
    assert_eq!(managed.trim(), "kubectl", "{managed}");

    let second = k.file("web-3.yaml", &deployment(3, "nginx:1"));
    let (ok, _, err) = k
        .run(&[
            "apply",
            "--server-side",
            "--field-manager=scaler",
            "-f",
            &second,
        ])
        .await;
    assert!(!ok, "a second manager changing replicas must conflict");
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"),
        "{err}"
    );
    k.ok(&[
        "apply",
        "--server-side",
        "--field-manager=scaler",
        "--force-conflicts",
        "-f",
        &second,
    ])
    .await;
    let replicas = k
        .ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.replicas}",
        ])
        .await;
    assert_eq!(replicas.trim(), "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_validation_refuses_a_typo_naming_the_field() {
    let k = Kubectl::start().await;
    let typo = k.file(
        "typo.yaml",
        &deployment(1, "nginx:1").replace("  replicas: 1", "  replicaz: 1"),
    );
    for verb in ["apply", "create"] {
        let (ok, _, err) = k.run(&[verb, "-f", &typo]).await;
        assert!(!ok, "kubectl {verb} of a typo must fail");
        assert!(
            err.contains("strict decoding error: unknown field \"spec.replicaz\""),
            "kubectl {verb}: {err}"
        );
    }
    let (ok, _, _) = k.run(&["get", "deployment", "web"]).await;
    assert!(!ok, "nothing was created");
    // Without strict validation the typo is dropped with a warning.
    let (ok, _, err) = k.run(&["create", "--validate=warn", "-f", &typo]).await;
    assert!(
        ok && err.contains("unknown field \"spec.replicaz\""),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_reads_a_custom_resource_schema_from_openapi_v3() {
    let k = Kubectl::start().await;
    let crd = dovetail_api::crd::crds()
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some("nodepools.karpenter.sh"))
        .expect("Karpenter's NodePool CRD");
    let path = k.file("nodepools.json", &serde_json::to_string(&crd).unwrap());
    k.ok(&["apply", "-f", &path]).await;
    let out = k.ok(&["explain", "nodepool.spec"]).await;
    assert!(out.contains("KIND:       NodePool"), "{out}");
    assert!(out.contains("FIELDS:"), "{out}");
    for field in ["disruption", "limits", "template", "weight"] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(field)),
            "{field} missing:\n{out}"
        );
    }
    // The same schema refuses a typo'd field under kubectl's default strict validation.
    let typo = k.file(
        "nodepool.yaml",
        "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n  name: default\nspec:\n  wieght: 10\n  template:\n    spec:\n      nodeClassRef:\n        group: karpenter.k8s.aws\n        kind: EC2NodeClass\n        name: default\n      requirements: []\n",
    );
    let (ok, _, err) = k.run(&["apply", "-f", &typo]).await;
    assert!(
        !ok && err.contains("unknown field \"spec.wieght\""),
        "{err}"
    );
    // Spelled right, it applies server-side through the CRD's list and map types.
    let fixed = k.file(
        "nodepool-fixed.yaml",
        &std::fs::read_to_string(&typo)
            .unwrap()
            .replace("wieght", "weight"),
    );
    let out = k.ok(&["apply", "--server-side", "-f", &fixed]).await;
    assert!(
        out.contains("nodepool.karpenter.sh/default serverside-applied"),
        "{out}"
    );
    let weight = k
        .ok(&[
            "get",
            "nodepool",
            "default",
            "-o",
            "jsonpath={.spec.weight}",
        ])
        .await;
    assert_eq!(weight.trim(), "10");
}

/// Plays the part of a kubelet or a finalizing controller while kubectl waits.
fn store_update(
    k: &Kubectl,
    plural: &str,
    name: &str,
    change: impl FnOnce(&mut serde_json::Value),
) {
    use dovetail_apiserver::store::Subresource;
    let store = k.server.store();
    let res = store.resource("", "v1", plural).unwrap();
    let mut obj = store.get(&res, "default", name).unwrap();
    change(&mut obj);
    let sub = if obj.get("status").is_some() && plural == "pods" {
        Subresource::Status
    } else {
        Subresource::Main
    };
    store.update(&res, "default", name, obj, sub).unwrap();
}

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels:\n    app: web\nspec:\n  containers:\n  - name: app\n    image: nginx:1.27\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_condition_returns_once_the_pod_turns_ready() {
    let k = Kubectl::start().await;
    k.create("pod.yaml", POD).await;
    let started = std::time::Instant::now();
    let (waited, ()) = tokio::join!(
        k.run(&["wait", "--for=condition=Ready", "pod/web", "--timeout=30s"]),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            store_update(&k, "pods", "web", |p| {
                p["status"]["conditions"] =
                    serde_json::json!([{ "type": "Ready", "status": "True" }]);
            });
        }
    );
    let (ok, out, err) = waited;
    assert!(ok, "kubectl wait failed:\n{err}\n{out}");
    assert!(out.contains("pod/web condition met"), "{out}");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1500),
        "kubectl wait returned before the pod was Ready"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_wait_returns_when_the_last_finalizer_goes() {
    let k = Kubectl::start().await;
    k.create(
        "held.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers:\n  - example.com/hold\ndata:\n  a: \"1\"\n",
    )
    .await;
    let started = std::time::Instant::now();
    let (deleted, ()) = tokio::join!(
        k.run(&[
            "delete",
            "configmap",
            "held",
            "--wait=true",
            "--timeout=30s"
        ]),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            store_update(&k, "configmaps", "held", |cm| {
                assert!(
                    cm["metadata"]["deletionTimestamp"].is_string(),
                    "kubectl delete marks the object for deletion first: {cm}"
                );
                cm["metadata"]["finalizers"] = serde_json::json!([]);
            });
        }
    );
    let (ok, out, err) = deleted;
    assert!(ok, "kubectl delete --wait failed:\n{err}\n{out}");
    assert!(out.contains("configmap \"held\" deleted"), "{out}");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1500),
        "kubectl delete --wait returned while a finalizer still held the object"
    );
    let (ok, _, err) = k.run(&["get", "configmap", "held"]).await;
    assert!(!ok && err.contains("not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_shows_the_pod_and_its_events() {
    let k = Kubectl::start().await;
    k.create("pod.yaml", POD).await;
    let uid = get_json(&k, &["pod", "web"]).await["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    k.create(
        "event.yaml",
        &format!(
            "apiVersion: v1\nkind: Event\nmetadata:\n  name: web.1\ninvolvedObject:\n  apiVersion: v1\n  kind: Pod\n  name: web\n  namespace: default\n  uid: {uid}\nreason: Scheduled\nmessage: Successfully assigned default/web to node-a\ntype: Normal\nsource:\n  component: default-scheduler\ncount: 1\nfirstTimestamp: \"2026-01-01T00:00:00Z\"\nlastTimestamp: \"2026-01-01T00:00:00Z\"\n"
        ),
    )
    .await;
    let out = k.ok(&["describe", "pod", "web"]).await;
    for want in [
        "Name:",
        "Namespace:",
        "default",
        "app=web",
        "Containers:",
        "nginx:1.27",
        "Events:",
        "Scheduled",
        "Successfully assigned default/web to node-a",
    ] {
        assert!(out.contains(want), "describe lacks {want:?}:\n{out}");
    }
}

/// `kubectl scale` writes the replicas through the scale subresource; a
/// `--resource-version` precondition that no longer holds is refused, and
/// the Scale reads back with the Deployment's selector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_sets_the_replicas_through_the_scale_subresource() {
    let k = Kubectl::start().await;
    k.create("web.yaml", &deployment(5, "nginx:1")).await;
    let out = k
        .ok(&["scale", "deployment", "web", "--replicas", "1"])
        .await;
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    let d = get_json(&k, &["deployment", "web"]).await;
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["metadata"]["generation"], 2, "a spec change: {d}");

    k.ok(&[
        "scale",
        "deployment",
        "web",
        "--current-replicas",
        "1",
        "--replicas",
        "3",
    ])
    .await;
    // A PUT of a Scale naming a resourceVersion the Deployment has moved past.
    let stale = k.file(
        "stale.json",
        r#"{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"web","namespace":"default","resourceVersion":"1"},"spec":{"replicas":2}}"#,
    );
    let (ok, _, err) = k
        .run(&[
            "replace",
            "--raw",
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
            "-f",
            &stale,
        ])
        .await;
    assert!(!ok && err.contains("the object has been modified"), "{err}");
    let (ok, _, err) = k
        .run(&["scale", "deployment", "web", "--replicas", "-1"])
        .await;
    assert!(!ok, "{err}");

    let scale = k
        .ok(&[
            "get",
            "--raw",
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
        ])
        .await;
    let scale: serde_json::Value = serde_json::from_str(&scale).unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["selector"], "app=web");
}
