//! The controller as production runs it: `dovetail controller` as its own
//! process, against the in-memory API server and cluster in a box that the
//! test runs (so a test can also compact the watch history or write
//! alongside the controller), with the fake cloud reached over HTTP.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dovetail_api::{EC2NodeClass, NodeClaim, NodePool};
use dovetail_apiserver::cluster::{Cluster, ClusterConfig};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};

pub struct Env {
    pub cluster: Cluster,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

/// A fast cluster: nodes Ready half a second after launch, pods deleted at
/// once (grace periods scaled to zero).
pub fn fast_config() -> ClusterConfig {
    ClusterConfig {
        node_ready_after: Duration::from_millis(500),
        grace_period_scale: 0.0,
        resync: Duration::from_millis(200),
        ..ClusterConfig::default()
    }
}

impl Env {
    pub async fn start() -> Env {
        Env::with(fast_config()).await
    }

    pub async fn with(config: ClusterConfig) -> Env {
        let cluster = Cluster::start(config).await.expect("start the cluster");
        let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
        for crd in dovetail_api::crd::crds() {
            crds.create(&PostParams::default(), &crd)
                .await
                .expect("install a CRD");
        }
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, cluster.kubeconfig()).unwrap();
        Env {
            cluster,
            dir,
            kubeconfig,
        }
    }

    pub fn client(&self) -> kube::Client {
        self.cluster.client()
    }

    pub fn pools(&self) -> Api<NodePool> {
        Api::all(self.client())
    }

    pub fn claims(&self) -> Api<NodeClaim> {
        Api::all(self.client())
    }

    pub fn nodes(&self) -> Api<Node> {
        Api::all(self.client())
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client(), "default")
    }

    /// The example EC2NodeClass and NodePool, the pool changed by `edit`.
    pub async fn apply_pool(&self, edit: impl FnOnce(&mut NodePool)) {
        let class: EC2NodeClass = read_example("ec2nodeclass.yaml");
        let classes: Api<EC2NodeClass> = Api::all(self.client());
        if classes.get_opt("default").await.unwrap().is_none() {
            classes
                .create(&PostParams::default(), &class)
                .await
                .expect("create the EC2NodeClass");
        }
        let mut pool: NodePool = read_example("nodepool.yaml");
        edit(&mut pool);
        self.pools()
            .create(&PostParams::default(), &pool)
            .await
            .expect("create the NodePool");
    }

    /// A Deployment of `replicas` pods requesting `cpu` and `memory` each.
    pub async fn deploy(&self, name: &str, replicas: i32, cpu: &str, memory: &str) {
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "terminationGracePeriodSeconds": 0,
                        "containers": [{"name": "c", "image": "pause",
                            "resources": {"requests": {"cpu": cpu, "memory": memory}}}]
                    }
                }
            }
        }))
        .unwrap();
        let api: Api<Deployment> = Api::namespaced(self.client(), "default");
        api.create(&PostParams::default(), &d)
            .await
            .expect("create the Deployment");
    }

    pub async fn scale(&self, name: &str, replicas: i32) {
        let api: Api<Deployment> = Api::namespaced(self.client(), "default");
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}})),
        )
        .await
        .expect("scale the Deployment");
    }

    /// Pods of `app` by phase.
    pub async fn phases(&self, app: &str) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        let pods = self
            .pods()
            .list(&ListParams::default().labels(&format!("app={app}")))
            .await
            .unwrap();
        for p in pods {
            let phase = p
                .status
                .and_then(|s| s.phase)
                .unwrap_or_else(|| "Unknown".into());
            *out.entry(phase).or_default() += 1;
        }
        out
    }

    pub async fn running(&self, app: &str) -> usize {
        self.phases(app).await.get("Running").copied().unwrap_or(0)
    }

    pub async fn claim_list(&self) -> Vec<NodeClaim> {
        self.claims()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }

    pub async fn node_list(&self) -> Vec<Node> {
        self.nodes()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }

    /// Starts `dovetail controller` against this cluster.
    pub fn controller(&self, name: &str, env: &[(&str, &str)]) -> Controller {
        Controller::start(self, "fake", name, env)
    }

    /// Starts `dovetail controller --cloud <cloud>` against this cluster.
    pub fn controller_on(&self, cloud: &str, name: &str, env: &[(&str, &str)]) -> Controller {
        Controller::start(self, cloud, name, env)
    }
}

pub fn read_example<T: serde::de::DeserializeOwned>(file: &str) -> T {
    let path = dovetail_tests::example("karpenter").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `dovetail controller` process; killed when dropped.
pub struct Controller {
    pub name: String,
    child: Option<Child>,
    pub metrics_port: u16,
    pub health_port: u16,
    pub log: PathBuf,
    args: Vec<(String, String)>,
    kubeconfig: PathBuf,
    cloud: String,
}

impl Controller {
    fn start(env: &Env, cloud: &str, name: &str, extra: &[(&str, &str)]) -> Controller {
        let mut c = Controller {
            name: name.into(),
            cloud: cloud.into(),
            child: None,
            metrics_port: 0,
            health_port: 0,
            log: env.dir.path().join(format!("{name}.log")),
            args: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            kubeconfig: env.kubeconfig.clone(),
        };
        c.restart();
        c
    }

    /// Starts the process again (after [`kill`](Self::kill)), appending to
    /// the same log.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is still running", self.name);
        self.metrics_port = free_port();
        self.health_port = free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dovetail"));
        cmd.arg("controller")
            .arg("--cloud")
            .arg(&self.cloud)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("METRICS_PORT", self.metrics_port.to_string())
            .env("HEALTH_PROBE_PORT", self.health_port.to_string())
            .env("HOSTNAME", &self.name)
            .env("LOG_LEVEL", "info")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        for (k, v) in &self.args {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("run dovetail controller"));
    }

    /// SIGKILL: the process dies wherever it is.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running 30 s after SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn metrics(&self) -> String {
        http_get(self.metrics_port, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    /// The value of one series (the sum over series whose labels contain
    /// every `labels` pair), 0 when absent.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_value(&self.metrics(), name, labels)
    }

    pub fn ready(&self) -> bool {
        http_get(self.health_port, "/readyz").is_some_and(|(s, _)| s == 200)
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- {} log ----\n{}", self.name, self.logs());
        }
    }
}

/// GET a path on 127.0.0.1:`port`: (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest),
                None => (series, ""),
            };
            if n != name {
                return None;
            }
            labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// Polls `check` every 200 ms until it returns `Some`, or panics with
/// `what` and the last value seen after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) => {
                assert!(
                    Instant::now() < deadline,
                    "timed out after {timeout:?} waiting for {what}; last seen: {last}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
