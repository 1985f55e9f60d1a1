//! Fetching policy components named by URL (`https://`, `http://`,
//! `oci://`) in a policy ConfigMap, for the policy source to validate and
//! swap in like any other version.
//!
//! The ConfigMap pins the bytes by sha256, so the digest is checked before
//! anything else is done with them, and plain HTTP is as safe as HTTPS. A
//! body is refused as it streams past the size cap, never buffered first;
//! the whole fetch has a deadline. Fetched components are cached on disk by
//! digest (written aside, then renamed into place) and re-verified when
//! read, so a restart with the same ConfigMap needs no network.
//!
//! The OCI client is the minimum a public artifact needs: the manifest, the
//! component's layer, and the anonymous bearer-token flow registries answer
//! a 401 with. Credentials and proxies are not supported.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dovetail_core::policy::types::Decision;
use dovetail_kube::policy_remote::{Location, OciReference, RemoteSource};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The default cap on a fetched component (`POLICY_FETCH_MAX_BYTES`).
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
/// The default deadline of one fetch (`POLICY_FETCH_TIMEOUT`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Where fetched components are cached unless `POLICY_CACHE_DIR` says.
pub fn default_cache_dir() -> PathBuf {
    std::env::temp_dir().join("dovetail-policy-cache")
}

/// The setting naming the size cap, for messages.
const MAX_BYTES_SETTING: &str = "POLICY_FETCH_MAX_BYTES";
const TIMEOUT_SETTING: &str = "POLICY_FETCH_TIMEOUT";
/// Manifests and token answers are small; registries cap manifests at 4 MiB.
const MANIFEST_CAP: u64 = 4 << 20;
const TOKEN_CAP: u64 = 1 << 20;
/// Redirects followed (registries send blobs to a CDN; release pages to storage).
const MAX_REDIRECTS: usize = 10;
/// Cached components kept; the oldest beyond this are removed.
const CACHE_KEEP: usize = 8;

/// Manifest types asked for: OCI and Docker, image and index (an index is
/// recognised in order to say so).
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json";
/// Layer media types that hold a Wasm component.
const WASM_LAYER_TYPES: [&str; 2] = [
    "application/wasm",
    "application/vnd.wasm.content.layer.v1+wasm",
];

/// How components are fetched and where they are cached.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    pub cache_dir: PathBuf,
    /// Largest component accepted, in bytes.
    pub max_bytes: u64,
    /// Deadline of one fetch, redirects and token included.
    pub timeout: Duration,
    /// Authorities trusted beside the system's (which `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR` can replace).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// After a failure that may pass (unreachable, timed out, a server
    /// error), the wait before fetching again; it doubles on each failure.
    pub retry_after: Duration,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            cache_dir: default_cache_dir(),
            max_bytes: DEFAULT_MAX_BYTES,
            timeout: DEFAULT_TIMEOUT,
            extra_roots: Vec::new(),
            retry_after: DEFAULT_RETRY_AFTER,
        }
    }
}

/// Why a remote component was not obtained. [`FetchError::fix`] says what to do.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the component at {url} has sha256 {actual}, but the configmap pins sha256 {expected}")]
    DigestMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("cannot reach {url}: {error}")]
    Unreachable { url: String, error: String },
    #[error("fetching {url} took longer than {}s ({TIMEOUT_SETTING})", timeout.as_secs_f64())]
    TimedOut { url: String, timeout: Duration },
    #[error("{url} is larger than the cap of {cap} bytes ({MAX_BYTES_SETTING}){}", size.map(|s| format!(": it is {s} bytes")).unwrap_or_default())]
    TooLarge {
        url: String,
        cap: u64,
        size: Option<u64>,
    },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: StatusCode },
    #[error("registry {registry}: {why}")]
    Registry { registry: String, why: String },
    #[error("cannot set up HTTPS: {0}")]
    Tls(String),
}

/// The first wait before fetching a failed source again.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(10);

impl FetchError {
    /// Whether the same request may succeed later with nothing changed:
    /// the network, a timeout, the server's own trouble or rate limit.
    pub fn may_pass(&self) -> bool {
        match self {
            FetchError::Unreachable { .. } | FetchError::TimedOut { .. } => true,
            FetchError::Status { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
            }
            FetchError::DigestMismatch { .. }
            | FetchError::TooLarge { .. }
            | FetchError::Registry { .. }
            | FetchError::Tls(_) => false,
        }
    }

    /// What to change; `decision` names the ConfigMap keys.
    pub fn fix(&self, decision: Decision) -> String {
        match self {
            FetchError::DigestMismatch { actual, .. } => format!(
                "if {actual} is the component you mean to serve, set `{decision}.sha256` to it; otherwise point `{decision}.url` at the component whose `sha256sum` matches `{decision}.sha256`"
            ),
            FetchError::Unreachable { .. } => format!(
                "check `{decision}.url` and that the controller's pod can reach it (DNS, NetworkPolicy, egress)"
            ),
            FetchError::TimedOut { timeout, .. } => format!(
                "serve the component from nearer the cluster, or raise {TIMEOUT_SETTING} (now {}s)",
                timeout.as_secs_f64()
            ),
            FetchError::TooLarge { cap, .. } => format!(
                "raise {MAX_BYTES_SETTING} (now {cap}) on the controller if the component is meant to be this large, or check that `{decision}.url` names the component"
            ),
            FetchError::Status { status, .. } => match status.as_u16() {
                404 | 410 => format!("check `{decision}.url`: nothing is there"),
                401 | 403 => format!(
                    "the controller fetches without credentials: make the object public, or use a pre-signed URL in `{decision}.url`"
                ),
                s if s >= 500 => "the server failed: check its logs".to_string(),
                _ => format!("check `{decision}.url`: it must answer GET with the component bytes"),
            },
            FetchError::Registry { .. } => format!(
                "check `{decision}.url` names a public artifact whose component is a layer of type application/wasm; or serve the component over https:// instead"
            ),
            FetchError::Tls(_) => {
                "check the system's certificate authorities (SSL_CERT_FILE, SSL_CERT_DIR)"
                    .to_string()
            }
        }
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Fetches, verifies and caches remote components.
#[derive(Clone)]
pub struct Fetcher {
    config: Arc<FetchConfig>,
    client: HttpClient,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Whether the bytes were read from the cache or the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Cache,
    Network,
}

impl Fetcher {
    /// The first wait before fetching a failed source again.
    pub fn retry_after(&self) -> Duration {
        self.config.retry_after
    }

    pub fn new(config: FetchConfig) -> Result<Self, FetchError> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::warn!("reading the system's certificate authorities: {e}");
        }
        roots.add_parsable_certificates(native.certs);
        for cert in &config.extra_roots {
            roots
                .add(cert.clone())
                .map_err(|e| FetchError::Tls(e.to_string()))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| FetchError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            config: Arc::new(config),
            client,
        })
    }

    /// The component `source` names, verified against its digest: from the
    /// cache when it is there, else fetched (and then cached).
    pub async fn fetch(&self, source: &RemoteSource) -> Result<(Vec<u8>, Origin), FetchError> {
        if let Some(bytes) = self.read_cached(&source.sha256).await {
            return Ok((bytes, Origin::Cache));
        }
        let timeout = self.config.timeout;
        let fetched = tokio::time::timeout(timeout, self.download(source))
            .await
            .map_err(|_| FetchError::TimedOut {
                url: source.url.clone(),
                timeout,
            })??;
        // Before anything else is done with them.
        let actual = sha256_hex(&fetched);
        if actual != source.sha256 {
            return Err(FetchError::DigestMismatch {
                url: source.url.clone(),
                expected: source.sha256.clone(),
                actual,
            });
        }
        self.store(&source.sha256, &fetched).await;
        Ok((fetched, Origin::Network))
    }

    async fn download(&self, source: &RemoteSource) -> Result<Vec<u8>, FetchError> {
        match &source.location {
            Location::Http(url) => {
                let resp = self.get(url, &HeaderMap::new()).await?;
                let resp = ok(url, resp)?;
                read_capped(url, resp, self.config.max_bytes).await
            }
            Location::Oci(r) => self.download_oci(r, &source.sha256).await,
        }
    }

    // ---- the cache ----

    fn cache_path(&self, sha256: &str) -> PathBuf {
        self.config.cache_dir.join(format!("sha256-{sha256}.wasm"))
    }

    async fn read_cached(&self, sha256: &str) -> Option<Vec<u8>> {
        let path = self.cache_path(sha256);
        let bytes = tokio::fs::read(&path).await.ok()?;
        if sha256_hex(&bytes) == sha256 {
            // Marks it recently used, for pruning.
            let _ = std::fs::File::options()
                .append(true)
                .open(&path)
                .and_then(|f| f.set_modified(SystemTime::now()));
            return Some(bytes);
        }
        tracing::warn!(path = %path.display(), "cached policy component does not match its digest; fetching it again");
        let _ = tokio::fs::remove_file(&path).await;
        None
    }

    /// Best effort: a cache that cannot be written costs a fetch after a
    /// restart, nothing more.
    async fn store(&self, sha256: &str, bytes: &[u8]) {
        let dir = self.config.cache_dir.clone();
        let path = self.cache_path(sha256);
        let bytes = bytes.to_vec();
        let stored = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            // Written aside, then renamed: a reader never sees half a file.
            let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
            tmp.write_all(&bytes)?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path).map_err(|e| e.error)?;
            prune(&dir, CACHE_KEEP);
            Ok(())
        })
        .await;
        match stored {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(
                dir = %self.config.cache_dir.display(),
                "cannot cache the fetched policy component: {e}; set POLICY_CACHE_DIR to a writable directory"
            ),
            Err(e) => tracing::warn!("caching the fetched policy component stopped: {e}"),
        }
    }

    // ---- HTTP ----

    /// GET `url`, following redirects; `Authorization` is sent only to the
    /// host it was meant for.
    async fn get(&self, url: &str, headers: &HeaderMap) -> Result<Response<Incoming>, FetchError> {
        let mut current = url.to_string();
        let first_host = authority(url);
        for _ in 0..=MAX_REDIRECTS {
            let uri: Uri = current.parse().map_err(|e| FetchError::Unreachable {
                url: current.clone(),
                error: format!("not a URL: {e}"),
            })?;
            let mut req = Request::get(uri).header(
                header::USER_AGENT,
                concat!("dovetail/", env!("CARGO_PKG_VERSION")),
            );
            let same_host = authority(&current) == first_host;
            for (k, v) in headers {
                if k != header::AUTHORIZATION || same_host {
                    req = req.header(k, v);
                }
            }
            let req = req.body(Empty::new()).expect("a GET with valid parts");
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| FetchError::Unreachable {
                    url: current.clone(),
                    error: chain(&e),
                })?;
            if !resp.status().is_redirection() || resp.status() == StatusCode::NOT_MODIFIED {
                return Ok(resp);
            }
            let Some(location) = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
            else {
                return Ok(resp);
            };
            current = resolve(&current, location);
        }
        Err(FetchError::Unreachable {
            url: url.to_string(),
            error: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    // ---- OCI ----

    async fn download_oci(&self, r: &OciReference, sha256: &str) -> Result<Vec<u8>, FetchError> {
        let base = format!(
            "{}://{}/v2/{}",
            registry_scheme(&r.registry),
            r.registry,
            r.repository
        );
        let registry_error = |why: String| FetchError::Registry {
            registry: r.registry.clone(),
            why,
        };
        let mut token: Option<String> = None;
        let manifest_url = format!("{base}/manifests/{}", r.reference);
        let resp = self
            .registry_get(&manifest_url, Some(MANIFEST_ACCEPT), r, &mut token)
            .await?;
        let resp = ok(&manifest_url, resp)?;
        let body = read_capped(&manifest_url, resp, MANIFEST_CAP).await?;
        let manifest: Manifest = serde_json::from_slice(&body)
            .map_err(|e| registry_error(format!("the manifest of {r} is not JSON: {e}")))?;
        if !manifest.manifests.is_empty() {
            return Err(registry_error(format!(
                "{r} is an index of {} manifests, not an artifact; name the artifact's own manifest (by tag or @sha256:)",
                manifest.manifests.len()
            )));
        }
        let wasm: Vec<&Descriptor> = manifest
            .layers
            .iter()
            .filter(|l| WASM_LAYER_TYPES.contains(&l.media_type.as_str()))
            .collect();
        let layer = match (wasm.as_slice(), manifest.layers.as_slice()) {
            ([one], _) => *one,
            ([], [only]) => only,
            _ => {
                let types: Vec<&str> = manifest
                    .layers
                    .iter()
                    .map(|l| l.media_type.as_str())
                    .collect();
                return Err(registry_error(format!(
                    "{r} has {} layers ({}); expected one of type {}",
                    manifest.layers.len(),
                    types.join(", "),
                    WASM_LAYER_TYPES.join(" or ")
                )));
            }
        };
        let url = r.to_string();
        if layer.size > self.config.max_bytes {
            return Err(FetchError::TooLarge {
                url,
                cap: self.config.max_bytes,
                size: Some(layer.size),
            });
        }
        // The manifest already says which bytes the layer holds.
        if let Some(actual) = layer.digest.strip_prefix("sha256:")
            && actual != sha256
        {
            return Err(FetchError::DigestMismatch {
                url,
                expected: sha256.to_string(),
                actual: actual.to_string(),
            });
        }
        let blob_url = format!("{base}/blobs/{}", layer.digest);
        let resp = self.registry_get(&blob_url, None, r, &mut token).await?;
        let resp = ok(&blob_url, resp)?;
        read_capped(&blob_url, resp, self.config.max_bytes).await
    }

    /// GET from a registry; a 401 with a bearer challenge gets an anonymous
    /// token, kept for the next request, and one retry.
    async fn registry_get(
        &self,
        url: &str,
        accept: Option<&str>,
        r: &OciReference,
        token: &mut Option<String>,
    ) -> Result<Response<Incoming>, FetchError> {
        let headers = |token: &Option<String>| {
            let mut h = HeaderMap::new();
            if let Some(a) = accept {
                h.insert(
                    header::ACCEPT,
                    HeaderValue::from_str(a).expect("a constant header"),
                );
            }
            if let Some(t) = token
                && let Ok(v) = HeaderValue::from_str(&format!("Bearer {t}"))
            {
                h.insert(header::AUTHORIZATION, v);
            }
            h
        };
        let resp = self.get(url, &headers(token)).await?;
        if resp.status() != StatusCode::UNAUTHORIZED || token.is_some() {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_challenge)
            .ok_or_else(|| FetchError::Registry {
                registry: r.registry.clone(),
                why: format!("{url} answered 401 without a bearer challenge; only anonymous pulls are supported"),
            })?;
        *token = Some(self.anonymous_token(&challenge, r).await?);
        let resp = self.get(url, &headers(token)).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(FetchError::Registry {
                registry: r.registry.clone(),
                why: format!("{r} is not public: the registry refuses an anonymous pull"),
            });
        }
        Ok(resp)
    }

    async fn anonymous_token(&self, c: &Challenge, r: &OciReference) -> Result<String, FetchError> {
        let scope = c
            .scope
            .clone()
            .unwrap_or_else(|| format!("repository:{}:pull", r.repository));
        let mut query = vec![("scope", scope.as_str())];
        if let Some(s) = &c.service {
            query.push(("service", s));
        }
        let query = serde_urlencoded::to_string(&query).expect("strings encode");
        let sep = if c.realm.contains('?') { '&' } else { '?' };
        let url = format!("{}{sep}{query}", c.realm);
        let resp = self.get(&url, &HeaderMap::new()).await?;
        let resp = ok(&url, resp)?;
        let body = read_capped(&url, resp, TOKEN_CAP).await?;
        #[derive(Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token = serde_json::from_slice(&body).map_err(|e| FetchError::Registry {
            registry: r.registry.clone(),
            why: format!("the token service {} answered no JSON: {e}", c.realm),
        })?;
        t.token
            .or(t.access_token)
            .ok_or_else(|| FetchError::Registry {
                registry: r.registry.clone(),
                why: format!("the token service {} answered no token", c.realm),
            })
    }
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: u64,
}

/// `Bearer realm="…",service="…",scope="…"`.
#[derive(Debug, PartialEq, Eq)]
struct Challenge {
    realm: String,
    service: Option<String>,
    scope: Option<String>,
}

fn bearer_challenge(header: &str) -> Option<Challenge> {
    let rest = header.trim();
    let (scheme, params) = rest.split_once(' ').unwrap_or((rest, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let (mut realm, mut service, mut scope) = (None, None, None);
    let mut chars = params.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        match key.trim().to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            "scope" => scope = Some(value),
            _ => {}
        }
    }
    Some(Challenge {
        realm: realm?,
        service,
        scope,
    })
}

/// Plain HTTP for a registry on this machine (as container tools treat
/// one); HTTPS for any other.
fn registry_scheme(registry: &str) -> &'static str {
    let host = match registry.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => registry.split(':').next().unwrap_or(registry),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback { "http" } else { "https" }
}

fn authority(url: &str) -> Option<String> {
    url.parse::<Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.as_str().to_ascii_lowercase()))
}

/// A `Location` against the URL that sent it.
fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let Ok(uri) = base.parse::<Uri>() else {
        return location.to_string();
    };
    let origin = format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("https"),
        uri.authority().map_or("", |a| a.as_str())
    );
    if let Some(rest) = location.strip_prefix("//") {
        format!("{}://{rest}", uri.scheme_str().unwrap_or("https"))
    } else if location.starts_with('/') {
        format!("{origin}{location}")
    } else {
        let dir = uri.path().rsplit_once('/').map_or("", |(d, _)| d);
        format!("{origin}{dir}/{location}")
    }
}

fn ok(url: &str, resp: Response<Incoming>) -> Result<Response<Incoming>, FetchError> {
    if resp.status().is_success() {
        Ok(resp)
    } else {
        Err(FetchError::Status {
            url: url.to_string(),
            status: resp.status(),
        })
    }
}

/// The body, refused as soon as it passes `cap` (or says it will).
async fn read_capped(url: &str, resp: Response<Incoming>, cap: u64) -> Result<Vec<u8>, FetchError> {
    let too_large = |size| FetchError::TooLarge {
        url: url.to_string(),
        cap,
        size,
    };
    let declared = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared
        && len > cap
    {
        return Err(too_large(Some(len)));
    }
    let mut body = resp.into_body();
    let mut out = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| FetchError::Unreachable {
            url: url.to_string(),
            error: format!("the body broke off: {}", chain(&e)),
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() as u64 + data.len() as u64 > cap {
                return Err(too_large(None));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// An error and its causes, `: `-joined (hyper's own says only "client error").
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Keeps the `keep` most recently used components in `dir`.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("sha256-") && name.ends_with(".wasm")
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if files.len() <= keep {
        return;
    }
    files.sort();
    for (_, path) in &files[..files.len() - keep] {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_are_read() {
        let c = bearer_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/x:pull""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/x:pull".into()),
            }
        );
        assert_eq!(bearer_challenge(r#"Basic realm="x""#), None);
        assert_eq!(
            bearer_challenge(r#"Bearer realm="http://127.0.0.1:1/token""#)
                .unwrap()
                .service,
            None
        );
    }

    #[test]
    fn redirects_resolve_against_the_url_that_sent_them() {
        let base = "https://h.example:8443/a/b/p.wasm";
        assert_eq!(resolve(base, "https://cdn/x"), "https://cdn/x");
        assert_eq!(resolve(base, "/x?y=1"), "https://h.example:8443/x?y=1");
        assert_eq!(resolve(base, "//cdn/x"), "https://cdn/x");
        assert_eq!(resolve(base, "q.wasm"), "https://h.example:8443/a/b/q.wasm");
    }

    #[test]
    fn only_a_registry_on_this_machine_is_spoken_to_in_plain_http() {
        assert_eq!(registry_scheme("127.0.0.1:5000"), "http");
        assert_eq!(registry_scheme("localhost"), "http");
        assert_eq!(registry_scheme("[::1]:5000"), "http");
        assert_eq!(registry_scheme("ghcr.io"), "https");
        assert_eq!(registry_scheme("10.0.0.1:5000"), "https");
    }

    #[test]
    fn the_cache_keeps_the_most_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..4 {
            let p = dir.path().join(format!("sha256-{i}.wasm"));
            std::fs::write(&p, b"x").unwrap();
            let f = std::fs::File::options().append(true).open(&p).unwrap();
            f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1000 + i))
                .unwrap();
        }
        std::fs::write(dir.path().join("other"), b"y").unwrap();
        prune(dir.path(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["other", "sha256-2.wasm", "sha256-3.wasm"]);
    }
}
