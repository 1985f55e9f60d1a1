//! Policies named by URL, for tests: a local server that hands out
//! components over http and https, a minimal OCI registry, and the
//! controller's policy source running against the in-memory API server.
//!
//! Use from a test file in `host/dovetail/tests/`:
//!
//! ```ignore
//! #[allow(dead_code)]
//! #[path = "../src/policy_fetch.rs"]
//! mod policy_fetch;
//! #[allow(dead_code)]
//! #[path = "../src/policy_source.rs"]
//! mod policy_source;
//! mod policy_server;
//!
//! let bytes = std::fs::read(js_component).unwrap();
//! let server = PolicyServer::start().await;
//! server.put("/js.wasm", bytes.clone());
//! let cache = tempfile::tempdir().unwrap();
//! let h = SourceHarness::start(fetch_config(cache.path())).await;
//! let sha = policy_fetch::sha256_hex(&bytes);
//! h.put_remote("js", Decision::InstanceSelection, &server.https("/js.wasm"), &sha).await;
//! let message = h.event("js", REASON_ACCEPTED).await;
//! ```

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use dovetail_apiserver::cluster::{Cluster, ClusterConfig};
use dovetail_core::policy::types::Decision;
use dovetail_kube::policy_configmaps::{POLICY_LABEL, PolicyStatus, STATUS_ANNOTATION};
use dovetail_policy::{Budget, PolicyHost, Runtime, RuntimeConfig, ShadowHost};
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::policy_fetch::{FetchConfig, Fetcher, sha256_hex};
use crate::policy_source::{self, ReloadCounts};

pub const NS: &str = "kube-system";
const TOKEN: &str = "anonymous-pull-token";

/// The authority the server's https certificate (for `localhost` and
/// `127.0.0.1`) is signed by: add it to [`FetchConfig::extra_roots`].
pub fn test_ca() -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(dovetail_apiserver::tls::CA_PEM.as_bytes())
        .expect("the test authority parses")
}

/// A fetch config for tests: the test authority trusted, the cache in `dir`.
pub fn fetch_config(cache_dir: &std::path::Path) -> FetchConfig {
    FetchConfig {
        cache_dir: cache_dir.to_path_buf(),
        timeout: Duration::from_secs(30),
        extra_roots: vec![test_ca()],
        ..FetchConfig::default()
    }
}

/// One repository in the registry: a tag whose manifest has the component
/// as its one layer.
struct Artifact {
    repository: String,
    tag: String,
    manifest: Vec<u8>,
    blobs: HashMap<String, Vec<u8>>,
}

#[derive(Default)]
struct Shared {
    files: Mutex<HashMap<String, Bytes>>,
    artifacts: Mutex<Vec<Artifact>>,
    /// Registry requests need the token (after the 401 challenge).
    token_required: Mutex<bool>,
    hits: AtomicU64,
    /// Paths answered 503, as by a server in trouble.
    unavailable: Mutex<std::collections::HashSet<String>>,
    token_requests: AtomicU64,
    addr: Mutex<Option<SocketAddr>>,
}

/// A loopback server answering http and https on one port.
pub struct PolicyServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// A body that never ends (1 MiB chunks), to test the size cap.
pub const ENDLESS: &str = "/endless.wasm";

impl PolicyServer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        *shared.addr.lock().unwrap() = Some(addr);
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(shared.clone());
        let listener = dovetail_apiserver::tls::DualListener::new(listener).unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    /// Answers `path` with 503 Service Unavailable while `down`.
    pub fn set_unavailable(&self, path: &str, down: bool) {
        let mut paths = self.shared.unavailable.lock().unwrap();
        if down {
            paths.insert(path.to_string());
        } else {
            paths.remove(path);
        }
    }

    /// Serves `bytes` at `path` (e.g. `/p.wasm`).
    pub fn put(&self, path: &str, bytes: Vec<u8>) {
        self.shared
            .files
            .lock()
            .unwrap()
            .insert(path.to_string(), Bytes::from(bytes));
    }

    /// Publishes `component` as `oci://…/repository:tag`, as `wkg` and
    /// `oras` do: an OCI image manifest, an empty config, one
    /// `application/wasm` layer. Returns the reference.
    pub fn publish(&self, repository: &str, tag: &str, component: &[u8]) -> String {
        let config = b"{}".to_vec();
        let digest = |b: &[u8]| format!("sha256:{}", sha256_hex(b));
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.wasm.component.v1+wasm",
            "config": {
                "mediaType": "application/vnd.wasm.config.v0+json",
                "digest": digest(&config),
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/wasm",
                "digest": digest(component),
                "size": component.len(),
            }],
        });
        let mut blobs = HashMap::new();
        blobs.insert(digest(&config), config);
        blobs.insert(digest(component), component.to_vec());
        self.shared.artifacts.lock().unwrap().push(Artifact {
            repository: repository.into(),
            tag: tag.into(),
            manifest: serde_json::to_vec(&manifest).unwrap(),
            blobs,
        });
        format!("oci://{}/{repository}:{tag}", self.addr)
    }

    /// Registry requests answer 401 with a bearer challenge until they carry
    /// the token the server's `/token` hands out to anyone.
    pub fn require_token(&self) {
        *self.shared.token_required.lock().unwrap() = true;
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn https(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// Requests answered, of any kind.
    pub fn hits(&self) -> u64 {
        self.shared.hits.load(Ordering::Relaxed)
    }

    pub fn token_requests(&self) -> u64 {
        self.shared.token_requests.load(Ordering::Relaxed)
    }

    /// Stops answering; the port is closed.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn serve(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    s.hits.fetch_add(1, Ordering::Relaxed);
    let path = uri.path();
    if path == ENDLESS {
        let chunk = Bytes::from(vec![0u8; 1 << 20]);
        let stream = futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
        return Response::new(Body::from_stream(stream));
    }
    if s.unavailable.lock().unwrap().contains(path) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if let Some(b) = s.files.lock().unwrap().get(path) {
        return b.clone().into_response();
    }
    if path == "/token" {
        s.token_requests.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::json!({ "token": TOKEN }).to_string();
        return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    let Some(v2) = path.strip_prefix("/v2/") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let authorised = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == format!("Bearer {TOKEN}").as_bytes());
    let artifacts = s.artifacts.lock().unwrap();
    for a in artifacts.iter() {
        let Some(rest) = v2
            .strip_prefix(a.repository.as_str())
            .and_then(|r| r.strip_prefix('/'))
        else {
            continue;
        };
        if *s.token_required.lock().unwrap() && !authorised {
            let addr = s.addr.lock().unwrap().unwrap();
            let challenge = format!(
                r#"Bearer realm="http://{addr}/token",service="test-registry",scope="repository:{}:pull""#,
                a.repository
            );
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
            )
                .into_response();
        }
        if rest == format!("manifests/{}", a.tag) {
            return (
                [(
                    header::CONTENT_TYPE,
                    "application/vnd.oci.image.manifest.v1+json",
                )],
                a.manifest.clone(),
            )
                .into_response();
        }
        if let Some(blob) = rest.strip_prefix("blobs/").and_then(|d| a.blobs.get(d)) {
            return blob.clone().into_response();
        }
    }
    StatusCode::NOT_FOUND.into_response()
}

/// The controller's policy source over the in-memory API server.
pub struct SourceHarness {
    pub cluster: Cluster,
    pub client: Client,
    pub hosts: Arc<ShadowHost>,
    pub counts: Arc<ReloadCounts>,
    task: tokio::task::JoinHandle<()>,
}

fn hosts() -> Arc<ShadowHost> {
    // A deadline no busy test machine reaches: these tests are about
    // fetching and swapping, not speed.
    let runtime = Runtime::new(RuntimeConfig {
        budget: Budget::Deadline(Duration::from_secs(10)),
        ..RuntimeConfig::default()
    })
    .unwrap();
    Arc::new(ShadowHost::new(Arc::new(PolicyHost::new(runtime))))
}

impl SourceHarness {
    pub async fn start(fetch: FetchConfig) -> Self {
        let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
        let client = cluster.client();
        let hosts = hosts();
        let fetcher = Fetcher::new(fetch).unwrap();
        let (task, counts) = policy_source::spawn(client.clone(), NS, hosts.clone(), fetcher);
        Self {
            cluster,
            client,
            hosts,
            counts,
            task,
        }
    }

    /// A controller restart: a new policy source and new hosts over the
    /// same cluster, which re-reads every policy ConfigMap.
    pub async fn restart(&mut self, fetch: FetchConfig) {
        self.task.abort();
        let _ = (&mut self.task).await;
        self.hosts = hosts();
        let (task, counts) = policy_source::spawn(
            self.client.clone(),
            NS,
            self.hosts.clone(),
            Fetcher::new(fetch).unwrap(),
        );
        self.task = task;
        self.counts = counts;
    }

    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        self.cluster.shutdown().await;
    }

    pub fn live(&self) -> &PolicyHost {
        self.hosts.live()
    }

    /// The name of the policy serving `d`, if any.
    pub fn serving(&self, d: Decision) -> Option<String> {
        self.live().active(d).map(|p| p.info.name.clone())
    }

    pub fn configmaps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// A ConfigMap written through the API (server-side apply).
    pub async fn put(
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

    /// A policy ConfigMap naming `d`'s component by `url` and `sha256`.
    pub async fn put_remote(&self, name: &str, d: Decision, url: &str, sha256: &str) {
        let (url_key, sha_key) = (format!("{d}.url"), format!("{d}.sha256"));
        self.put(
            name,
            &[(POLICY_LABEL, d.as_str())],
            &[],
            &[(&url_key, url), (&sha_key, sha256)],
        )
        .await;
    }

    pub async fn events(&self, name: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), NS);
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .collect()
    }

    /// The message of the `n`th (from 1) event with `reason` on `name`,
    /// once it is there.
    pub async fn nth_event(&self, name: &str, reason: &str, n: usize) -> String {
        let start = Instant::now();
        loop {
            let found: Vec<Event> = self
                .events(name)
                .await
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some(reason))
                .collect();
            if found.len() >= n {
                let mut found = found;
                found.sort_by_key(|e| e.metadata.name.clone());
                return found[n - 1].message.clone().unwrap_or_default();
            }
            assert!(
                start.elapsed() < Duration::from_secs(40),
                "no {reason} event #{n} for configmap {name}; events: {:?}",
                self.events(name)
                    .await
                    .iter()
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The first event with `reason` on `name`.
    pub async fn event(&self, name: &str, reason: &str) -> String {
        self.nth_event(name, reason, 1).await
    }

    pub async fn status(&self, name: &str) -> Option<PolicyStatus> {
        let cm = self.configmaps().get(name).await.unwrap();
        cm.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(STATUS_ANNOTATION))
            .map(|raw| serde_json::from_str(raw).expect("the annotation is the status JSON"))
    }
}

/// Waits (up to 40 s) for `done`.
pub async fn wait(what: &str, done: impl FnMut() -> bool) {
    wait_up_to(Duration::from_secs(40), what, done).await
}

/// Waits up to `limit` for `done`.
pub async fn wait_up_to(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
