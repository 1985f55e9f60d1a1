//! The cluster's fake cloud from another process: a [`CloudProvider`] that
//! calls the endpoints `dovetail dev` serves on its API server's listener
//! (see [`super::cloud_api`]). Instances live in the `dovetail dev` process,
//! so they outlive a controller that crashes or restarts, and the kubelet
//! model registers a Node for each.

use std::sync::Arc;
use std::time::Duration;

use dovetail_control::cloud::{
    CloudDrift, CloudError, CloudProvider, CreateError, Instance, Launch,
};
use dovetail_core::catalog::{Catalog, aws_catalog};
use dovetail_core::nodeclaim::NodeClaim;
use http::{Method, Request, StatusCode};
use serde::de::DeserializeOwned;
use tokio::runtime::Handle;

use super::cloud_api::{
    CATALOG_PATH, CatalogInfo, DRIFT_PATH, DriftDto, ErrorDto, INSTANCE_PATH, INSTANCES_PATH,
    InstanceDto, LaunchDto, NodeClaimDto, PREFIX, ProviderIdQuery, catalog_digest,
};

/// Why [`RemoteCloud::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteCloudError {
    #[error("the API server serves no fake cloud (nothing at {PREFIX}): {NOT_SERVED}")]
    NotServed,
    #[error(
        "the fake cloud launches from a different catalog ({served}) than this controller decides with ({expected}); run `dovetail dev` and the controller from the same build, with the default catalog"
    )]
    CatalogMismatch { served: String, expected: String },
    #[error("cannot reach the fake cloud at {PREFIX} (is `dovetail dev` running?): {0}")]
    Unreachable(String),
}

const NOT_SERVED: &str = "the fake cloud is served by `dovetail dev`; start it, or use --cloud aws";

/// A call that did not succeed: the cloud's own answer, or why none came.
#[derive(Debug)]
enum Failure {
    Cloud(ErrorDto),
    /// The server answered 404 the Kubernetes way: it has no fake cloud.
    NotServed,
    Transport(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cloud(e) => e.fmt(f),
            Self::NotServed => write!(f, "the API server serves no fake cloud: {NOT_SERVED}"),
            Self::Transport(m) => f.write_str(m),
        }
    }
}

/// The fake cloud `dovetail dev` serves, reached over HTTP with a
/// [`kube::Client`] for its API server.
///
/// [`CloudProvider`] is synchronous: each call blocks on the runtime it was
/// connected on ([`Handle::block_on`]). Call it from a thread that is not a
/// runtime worker — a plain `std::thread` or `spawn_blocking`, as the
/// controller's reconcile loop runs on its own thread; from inside an async
/// task it panics. The runtime should be multi-threaded, or its thread busy
/// in `block_on`, so something drives the connection meanwhile.
#[derive(Clone)]
pub struct RemoteCloud {
    client: kube::Client,
    runtime: Handle,
    catalog: Arc<Catalog>,
    timeout: Duration,
}

impl std::fmt::Debug for RemoteCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteCloud")
            .field("instance_types", &self.catalog.instance_types.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RemoteCloud {
    /// How long one call waits for an answer before it fails.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// Connects to the fake cloud behind `client`'s API server, on the
    /// current runtime, deciding with the embedded catalog (the one `dovetail
    /// dev` launches from by default). Fails when the server serves no fake
    /// cloud, or launches from another catalog.
    pub async fn connect(client: kube::Client) -> Result<Self, RemoteCloudError> {
        Self::connect_with(client, aws_catalog()).await
    }

    /// [`RemoteCloud::connect`] for a cloud launching from `catalog`.
    pub async fn connect_with(
        client: kube::Client,
        catalog: Arc<Catalog>,
    ) -> Result<Self, RemoteCloudError> {
        let cloud = Self {
            client,
            runtime: Handle::current(),
            catalog,
            timeout: Self::DEFAULT_TIMEOUT,
        };
        let served: CatalogInfo = match cloud.call(Method::GET, CATALOG_PATH, None).await {
            Ok(info) => info,
            Err(Failure::NotServed) => return Err(RemoteCloudError::NotServed),
            Err(e) => return Err(RemoteCloudError::Unreachable(e.to_string())),
        };
        let expected = catalog_digest(&cloud.catalog);
        if served.digest != expected {
            return Err(RemoteCloudError::CatalogMismatch {
                served: format!(
                    "{}, {} instance types, {}",
                    served.region, served.instance_types, served.digest
                ),
                expected: format!(
                    "{}, {} instance types, {}",
                    cloud.catalog.region,
                    cloud.catalog.instance_types.len(),
                    expected
                ),
            });
        }
        Ok(cloud)
    }

    /// How long each call waits for an answer
    /// ([`RemoteCloud::DEFAULT_TIMEOUT`] unless set).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// One request under [`PREFIX`]; a 2xx body is read as `T`, anything
    /// else as the cloud's [`ErrorDto`] when it is one.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, Failure> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{PREFIX}{path_and_query}"));
        if body.is_some() {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(body.unwrap_or_default())
            .map_err(|e| Failure::Transport(format!("cannot build the request: {e}")))?;
        let exchange = async {
            let res = self
                .client
                .send(req.map(kube::client::Body::from))
                .await
                .map_err(|e| Failure::Transport(e.to_string()))?;
            let status = res.status();
            let bytes = res
                .into_body()
                .collect_bytes()
                .await
                .map_err(|e| Failure::Transport(e.to_string()))?;
            if status.is_success() {
                return serde_json::from_slice(&bytes).map_err(|e| {
                    Failure::Transport(format!("the fake cloud answered {status} with {e}"))
                });
            }
            Err(match serde_json::from_slice::<ErrorDto>(&bytes) {
                Ok(e) => Failure::Cloud(e),
                // A server without the routes answers with a Status.
                Err(_) if status == StatusCode::NOT_FOUND => Failure::NotServed,
                Err(_) => Failure::Transport(format!(
                    "the fake cloud answered {status}: {}",
                    String::from_utf8_lossy(&bytes).trim()
                )),
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Transport(format!(
                    "no answer within {:?}",
                    self.timeout
                )))
            })
    }

    /// [`RemoteCloud::call`], blocking this (non-runtime) thread.
    fn block<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, Failure> {
        self.runtime
            .block_on(self.call(method, path_and_query, body))
    }

    fn instance_path(provider_id: &str) -> String {
        let query = serde_urlencoded::to_string(ProviderIdQuery {
            provider_id: provider_id.to_string(),
        })
        .expect("a string query encodes");
        format!("{INSTANCE_PATH}?{query}")
    }
}

fn claim_body(claim: &NodeClaim) -> Vec<u8> {
    serde_json::to_vec(&NodeClaimDto::from(claim)).expect("DTOs serialise")
}

fn cloud_error(f: Failure) -> CloudError {
    match f {
        Failure::Cloud(ErrorDto::NotFound { provider_id }) => CloudError::NotFound(provider_id),
        other => CloudError::Other(format!("fake cloud: {other}")),
    }
}

impl CloudProvider for RemoteCloud {
    /// Idempotent per NodeClaim, as the served cloud is: a retry after a
    /// lost answer returns the instance already launched.
    fn create(&mut self, claim: &NodeClaim, _now_ms: u64) -> Result<Launch, CreateError> {
        match self.block::<LaunchDto>(Method::POST, INSTANCES_PATH, Some(claim_body(claim))) {
            Ok(l) => Ok(l.into()),
            Err(Failure::Cloud(ErrorDto::InsufficientCapacity { offerings, message })) => {
                Err(CreateError::InsufficientCapacity {
                    offerings: offerings.into_iter().map(Into::into).collect(),
                    message,
                })
            }
            Err(Failure::Cloud(ErrorDto::NodeClassNotReady { message })) => {
                Err(CreateError::NodeClassNotReady(message))
            }
            Err(Failure::Cloud(ErrorDto::Failed { reason, message })) => {
                Err(CreateError::Failed { reason, message })
            }
            Err(Failure::Cloud(other)) => Err(CreateError::Failed {
                reason: "FakeCloudError".into(),
                message: other.to_string(),
            }),
            Err(f @ (Failure::Transport(_) | Failure::NotServed)) => Err(CreateError::Failed {
                reason: "FakeCloudUnreachable".into(),
                message: f.to_string(),
            }),
        }
    }

    fn delete(&mut self, provider_id: &str, _now_ms: u64) -> Result<(), CloudError> {
        match self.block::<serde_json::Value>(
            Method::DELETE,
            &Self::instance_path(provider_id),
            None,
        ) {
            Ok(_) | Err(Failure::Cloud(ErrorDto::NotFound { .. })) => Ok(()),
            Err(f) => Err(cloud_error(f)),
        }
    }

    fn get(&self, provider_id: &str) -> Result<Instance, CloudError> {
        self.block::<InstanceDto>(Method::GET, &Self::instance_path(provider_id), None)
            .map(Into::into)
            .map_err(cloud_error)
    }

    fn list(&self) -> Result<Vec<Instance>, CloudError> {
        self.block::<Vec<InstanceDto>>(Method::GET, INSTANCES_PATH, None)
            .map(|l| l.into_iter().map(Into::into).collect())
            .map_err(cloud_error)
    }

    fn instance_types(&self) -> Arc<Catalog> {
        self.catalog.clone()
    }

    fn is_drifted(&self, claim: &NodeClaim) -> Result<Option<CloudDrift>, CloudError> {
        self.block::<DriftDto>(Method::POST, DRIFT_PATH, Some(claim_body(claim)))
            .map(|d| d.drift.map(Into::into))
            .map_err(cloud_error)
    }
}
