//! A cluster in a box around the API server: a fake cloud, a kubelet model,
//! a scheduler, the Deployment, ReplicaSet, DaemonSet and
//! PodDisruptionBudget controllers, a garbage collector for what they own
//! and the EC2NodeClass status the AWS provider would write. Each runs as a small tokio task and acts
//! only through the API, over HTTP, as its upstream counterpart does; none
//! reaches into the store.
//!
//! The fake cloud is also served on the API server's listener, under
//! [`cloud_api::PREFIX`], so a controller in another process launches the
//! instances the kubelet model registers Nodes for: see [`RemoteCloud`].
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use dovetail_apiserver::cluster::{Cluster, ClusterConfig};
//! use dovetail_core::catalog::CapacityType;
//!
//! let cluster = Cluster::start(ClusterConfig::default()).await?;
//! // A node appears for the instance, Ready after `node_ready_after`.
//! cluster.cloud().launch("default-abcde", "m5.large", "us-east-1a", CapacityType::OnDemand)?;
//! cluster.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod cloud_api;
mod cloud_routes;
mod daemonset;
mod deployment;
mod disruption;
mod expectations;
mod fake_cloud;
mod garbage_collector;
mod informer;
mod kubeconfig;
mod kubelet;
mod node_class_status;
mod remote_cloud;
mod replicaset;
mod scheduler;

use std::sync::Arc;
use std::time::Duration;

use dovetail_core::catalog::{Catalog, aws_catalog};
use tokio::task::JoinHandle;

use crate::server::{ApiServer, ServeError, ServerConfig};

pub use fake_cloud::FakeCloud;
pub use kubeconfig::{kubeconfig, kubeconfig_with_token};
pub use remote_cloud::{RemoteCloud, RemoteCloudError};

/// Where the kubelet model finds the instances it registers Nodes for.
#[derive(Clone)]
pub(crate) enum Machines {
    /// The cluster's own fake cloud.
    Fake(FakeCloud),
    /// Another cloud (an AWS test server through the AWS adapter): its
    /// `list()` is called off the async workers, as it may block.
    External(Arc<dyn InstanceSource>),
}

/// A cloud the kubelet model can list instances of.
pub trait InstanceSource: Send + Sync + 'static {
    /// Every instance not yet terminated.
    fn list(
        &self,
    ) -> Result<Vec<dovetail_control::cloud::Instance>, dovetail_control::cloud::CloudError>;
}

impl Machines {
    /// The running and pending instances; `None` when the cloud could not
    /// be asked (the kubelet model tries again on its next pass).
    pub(crate) async fn instances(&self) -> Option<Vec<dovetail_control::cloud::Instance>> {
        match self {
            Self::Fake(cloud) => Some(cloud.instances()),
            Self::External(source) => {
                let source = source.clone();
                match tokio::task::spawn_blocking(move || source.list()).await {
                    Ok(Ok(list)) => Some(list),
                    Ok(Err(e)) => {
                        tracing::warn!("kubelet model: listing instances: {e}");
                        None
                    }
                    Err(e) => {
                        tracing::warn!("kubelet model: listing instances: {e}");
                        None
                    }
                }
            }
        }
    }
}

/// How to run the cluster.
#[derive(Clone)]
pub struct ClusterConfig {
    pub server: ServerConfig,
    /// The instances Nodes are registered for: `None` for the cluster's own
    /// fake cloud.
    pub machines: Option<Arc<dyn InstanceSource>>,
    /// Whether the stand-in EC2NodeClass status controller runs (it marks
    /// every class resolved). Off when a real AWS adapter resolves them.
    pub node_class_status: bool,
    /// Instance types, offerings and prices of the fake cloud.
    pub catalog: Arc<Catalog>,
    /// Registration to Ready for a launched instance's node.
    pub node_ready_after: Duration,
    /// Scales a deleted pod's grace period before the kubelet model
    /// confirms the deletion: 1.0 waits the full period, 0.0 not at all.
    pub grace_period_scale: f64,
    /// How often the kubelet model renews its nodes' Leases.
    pub lease_interval: Duration,
    /// How often each component looks again with no change to wake it, for
    /// time-based work (readiness, grace periods, expired disruptions).
    pub resync: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            machines: None,
            node_class_status: true,
            catalog: aws_catalog(),
            node_ready_after: Duration::from_secs(5),
            grace_period_scale: 1.0,
            lease_interval: Duration::from_secs(10),
            resync: Duration::from_millis(500),
        }
    }
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("server", &self.server)
            .field("external_machines", &self.machines.is_some())
            .field("node_class_status", &self.node_class_status)
            .field("node_ready_after", &self.node_ready_after)
            .field("resync", &self.resync)
            .finish_non_exhaustive()
    }
}

/// Why the cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("cannot make a client for the API server at {url}: {source}")]
    Client {
        url: String,
        #[source]
        source: kube::Error,
    },
}

/// A running API server with the cluster's components around it.
pub struct Cluster {
    server: Option<ApiServer>,
    cloud: FakeCloud,
    client: kube::Client,
    tasks: Vec<JoinHandle<()>>,
}

impl Cluster {
    /// Starts the server, then every component against it.
    pub async fn start(config: ClusterConfig) -> Result<Self, ClusterError> {
        let cloud = FakeCloud::new(config.catalog.clone());
        let server =
            ApiServer::start_with(config.server.clone(), cloud_routes::routes(cloud.clone()))
                .await?;
        // With access control on, the cluster's own components act as the administrator.
        let token = config.server.access.as_ref().map(|a| a.admin_token());
        let client = client(&server.url(), token)?;
        let resync = config.resync;
        let machines = match &config.machines {
            Some(source) => Machines::External(source.clone()),
            None => Machines::Fake(cloud.clone()),
        };
        let mut tasks = vec![
            tokio::spawn(kubelet::run(
                client.clone(),
                machines,
                kubelet::Settings {
                    ready_after: config.node_ready_after,
                    grace_period_scale: config.grace_period_scale,
                    lease_interval: config.lease_interval,
                    resync,
                },
            )),
            tokio::spawn(scheduler::run(
                client.clone(),
                config.catalog.clone(),
                resync,
            )),
            tokio::spawn(deployment::run(client.clone(), resync)),
            tokio::spawn(replicaset::run(client.clone(), resync)),
            tokio::spawn(daemonset::run(client.clone(), resync)),
            tokio::spawn(disruption::run(client.clone(), resync)),
            tokio::spawn(garbage_collector::run(client.clone(), resync)),
        ];
        if config.node_class_status {
            tasks.push(tokio::spawn(node_class_status::run(client.clone(), resync)));
        }
        Ok(Self {
            server: Some(server),
            cloud,
            client,
            tasks,
        })
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        self.server().url()
    }

    pub fn server(&self) -> &ApiServer {
        self.server
            .as_ref()
            .expect("the server runs until shutdown")
    }

    /// The fake cloud: launch and terminate instances, inject shortages.
    /// A clone shares the same instances.
    pub fn cloud(&self) -> &FakeCloud {
        &self.cloud
    }

    /// A client for the server (the administrator when access control is on).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// A kubeconfig for the server: without credentials, or, when access
    /// control is on, the administrator's token at the https address (which
    /// kubectl and helm need to send it).
    pub fn kubeconfig(&self) -> String {
        match (self.access(), self.server().https_url()) {
            (Some(access), Some(https)) => kubeconfig_with_token(&https, access.admin_token()),
            _ => kubeconfig(&self.url()),
        }
    }

    /// `https://127.0.0.1:<port>`, when access control is on.
    pub fn https_url(&self) -> Option<String> {
        self.server().https_url()
    }

    /// The server's access control, when on.
    pub fn access(&self) -> Option<&crate::AccessControl> {
        self.server().access()
    }

    /// Stops every component, then the server.
    pub async fn shutdown(mut self) {
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self.server)
            .field("cloud", &self.cloud)
            .field("tasks", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn client(url: &str, token: Option<&str>) -> Result<kube::Client, ClusterError> {
    let uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| ClusterError::Client {
            url: url.to_string(),
            source: kube::Error::Service(e.into()),
        })?;
    let mut config = kube::Config::new(uri);
    config.auth_info.token = token.map(|t| t.to_string().into());
    kube::Client::try_from(config).map_err(|source| ClusterError::Client {
        url: url.to_string(),
        source,
    })
}

/// Unix ms now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The pods in `namespace` controlled by the object with `uid`.
pub(crate) fn owned_pods<'a>(
    pods: &'a [Arc<k8s_openapi::api::core::v1::Pod>],
    namespace: &'a str,
    uid: &'a str,
) -> impl Iterator<Item = &'a k8s_openapi::api::core::v1::Pod> + Clone {
    pods.iter().map(|p| p.as_ref()).filter(move |p| {
        p.metadata.namespace.as_deref() == Some(namespace) && controlled_by(&p.metadata, uid)
    })
}

/// Writes a controller's status for a namespaced object with a merge patch. An object gone
/// or changed meanwhile is no error: the next pass computes the status again.
pub(crate) async fn write_status<K>(
    client: &kube::Client,
    object: &K,
    status: impl serde::Serialize,
) -> Result<(), kube::Error>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let meta = object.meta();
    let api: kube::Api<K> = kube::Api::namespaced(
        client.clone(),
        meta.namespace.as_deref().unwrap_or("default"),
    );
    let patch = serde_json::json!({ "status": status });
    match api
        .patch_status(
            meta.name.as_deref().unwrap_or(""),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if matches!(e.code, 404 | 409) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether `obj` is controlled by the object with `uid`.
pub(crate) fn controlled_by(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    uid: &str,
) -> bool {
    controller_of(meta).is_some_and(|o| o.uid == uid)
}

/// The owner reference with `controller: true`.
pub(crate) fn controller_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
}

/// The owner reference a controller puts on what it creates.
pub(crate) fn owner_reference(
    api_version: &str,
    kind: &str,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A pod's Ready condition is True.
pub(crate) fn pod_ready(pod: &k8s_openapi::api::core::v1::Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Neither Succeeded nor Failed, and not being deleted.
pub(crate) fn pod_active(pod: &k8s_openapi::api::core::v1::Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}
