//! The garbage collectors, for what the cluster's controllers own: a
//! ReplicaSet whose Deployment is gone, a pod whose ReplicaSet or DaemonSet
//! is gone, is deleted (background cascading deletion); and a pod bound to
//! a node that no longer exists is deleted at once, as the pod garbage
//! collector does (no kubelet is left to confirm it). As upstream, the
//! owner's or node's absence is confirmed with a live read first, so one
//! the cache has not seen yet is never taken for a deleted one.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::reflector::{ObjectRef, Store};

use super::informer::Informers;

pub(crate) async fn run(client: kube::Client, resync: Duration) {
    let mut informers = Informers::new(resync);
    let deployments = informers.watch::<Deployment>(&client);
    let sets = informers.watch::<ReplicaSet>(&client);
    let daemons = informers.watch::<DaemonSet>(&client);
    let pods = informers.watch::<Pod>(&client);
    let nodes = informers.watch::<Node>(&client);
    let _ = nodes.wait_until_ready().await;
    let _ = deployments.wait_until_ready().await;
    let _ = sets.wait_until_ready().await;
    let _ = daemons.wait_until_ready().await;
    let _ = pods.wait_until_ready().await;
    loop {
        if let Err(e) = pass(&client, &deployments, &sets, &daemons, &pods, &nodes).await {
            tracing::warn!("garbage collector: {e}");
        }
        informers.changed().await;
    }
}

/// Whether the cache holds the owner: the object of its name, with its uid.
/// (A lookup, not a scan: the collector asks once per pod.)
fn cached<K: kube::Resource<DynamicType = ()> + Clone>(
    store: &Store<K>,
    ns: &str,
    owner: &OwnerReference,
) -> bool {
    store
        .get(&ObjectRef::new(&owner.name).within(ns))
        .is_some_and(|o: Arc<K>| o.meta().uid.as_deref() == Some(owner.uid.as_str()))
}

async fn pass(
    client: &kube::Client,
    deployments: &Store<Deployment>,
    sets: &Store<ReplicaSet>,
    daemons: &Store<DaemonSet>,
    pods: &Store<Pod>,
    nodes: &Store<Node>,
) -> Result<(), kube::Error> {
    for rs in sets.state() {
        let ns = rs.metadata.namespace.as_deref().unwrap_or("default");
        for owner in owners(&rs.metadata).filter(|o| o.kind == "Deployment") {
            if !cached(deployments, ns, owner) && gone::<Deployment>(client, ns, owner).await? {
                collect::<ReplicaSet>(client, &rs.metadata).await?;
            }
        }
    }
    for pod in pods.state() {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        for owner in owners(&pod.metadata) {
            let orphan = match owner.kind.as_str() {
                "ReplicaSet" => {
                    !cached(sets, ns, owner) && gone::<ReplicaSet>(client, ns, owner).await?
                }
                "DaemonSet" => {
                    !cached(daemons, ns, owner) && gone::<DaemonSet>(client, ns, owner).await?
                }
                _ => false,
            };
            if orphan {
                collect::<Pod>(client, &pod.metadata).await?;
            }
        }
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("");
        if !node.is_empty()
            && nodes.get(&ObjectRef::new(node)).is_none()
            && Api::<Node>::all(client.clone())
                .get_opt(node)
                .await?
                .is_none()
        {
            force_delete(client, &pod.metadata).await?;
        }
    }
    Ok(())
}

/// Deletes a pod with no grace period: its node is gone, so no kubelet will confirm it.
async fn force_delete(client: &kube::Client, meta: &ObjectMeta) -> Result<(), kube::Error> {
    delete::<Pod>(client, meta, Some(0)).await
}

/// The apps/v1 owner references: the kinds this collector knows.
fn owners(meta: &ObjectMeta) -> impl Iterator<Item = &OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .filter(|o| o.api_version == "apps/v1")
}

/// Whether the owner no longer exists, read live: absent, or a new object
/// under the same name.
async fn gone<K>(
    client: &kube::Client,
    ns: &str,
    owner: &OwnerReference,
) -> Result<bool, kube::Error>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    Ok(match api.get_opt(&owner.name).await? {
        None => true,
        Some(o) => o.meta().uid.as_deref() != Some(owner.uid.as_str()),
    })
}

async fn collect<K>(client: &kube::Client, meta: &ObjectMeta) -> Result<(), kube::Error>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    if meta.deletion_timestamp.is_some() {
        return Ok(());
    }
    delete::<K>(client, meta, None).await
}

/// Deletes the object `meta` names, if it is still the same object (uid precondition); gone or
/// replaced meanwhile is no error.
async fn delete<K>(
    client: &kube::Client,
    meta: &ObjectMeta,
    grace_period_seconds: Option<u32>,
) -> Result<(), kube::Error>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(
        client.clone(),
        meta.namespace.as_deref().unwrap_or("default"),
    );
    let params = DeleteParams {
        grace_period_seconds,
        preconditions: Some(Preconditions {
            uid: meta.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api
        .delete(meta.name.as_deref().unwrap_or(""), &params)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if matches!(e.code, 404 | 409) => Ok(()),
        Err(e) => Err(e),
    }
}
