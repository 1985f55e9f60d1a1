//! The ReplicaSet controller: keeps `spec.replicas` active pods from the
//! template, owned by the ReplicaSet, and reports how many are ready.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};

use super::expectations::Expectations;
use super::informer::Informers;
use super::{owned_pods, owner_reference, pod_active, pod_ready, write_status};

pub(crate) async fn run(client: kube::Client, resync: Duration) {
    let mut informers = Informers::new(resync);
    let sets = informers.watch::<ReplicaSet>(&client);
    let pods = informers.watch::<Pod>(&client);
    let _ = sets.wait_until_ready().await;
    let _ = pods.wait_until_ready().await;
    let mut expectations = Expectations::default();
    loop {
        let pods = pods.state();
        for rs in sets.state() {
            if let Err(e) = sync(&client, &rs, &pods, &mut expectations).await {
                tracing::warn!("replicaset controller: {e}");
            }
        }
        informers.changed().await;
    }
}

async fn sync(
    client: &kube::Client,
    rs: &ReplicaSet,
    pods: &[Arc<Pod>],
    expectations: &mut Expectations,
) -> Result<(), kube::Error> {
    let (Some(name), Some(ns), Some(uid)) = (
        rs.metadata.name.as_deref(),
        rs.metadata.namespace.as_deref(),
        rs.metadata.uid.as_deref(),
    ) else {
        return Ok(());
    };
    let owned = owned_pods(pods, ns, uid);
    if !expectations.satisfied(uid, owned.clone()) {
        return Ok(());
    }
    let mut active: Vec<&Pod> = owned.filter(|p| pod_active(p)).collect();
    let want = if rs.metadata.deletion_timestamp.is_some() {
        0
    } else {
        rs.spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1)
            .max(0) as usize
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    if active.len() < want {
        let template = rs
            .spec
            .as_ref()
            .and_then(|s| s.template.clone())
            .unwrap_or_default();
        let tmeta = template.metadata.unwrap_or_default();
        for _ in active.len()..want {
            let pod = Pod {
                metadata: ObjectMeta {
                    generate_name: Some(format!("{name}-")),
                    namespace: Some(ns.into()),
                    labels: tmeta.labels.clone(),
                    annotations: tmeta.annotations.clone(),
                    owner_references: Some(vec![owner_reference(
                        "apps/v1",
                        "ReplicaSet",
                        &rs.metadata,
                    )]),
                    ..ObjectMeta::default()
                },
                spec: template.spec.clone(),
                status: None,
            };
            let created = api.create(&PostParams::default(), &pod).await?;
            expectations.created(uid, created.metadata.name.unwrap_or_default());
        }
    } else if active.len() > want {
        // Upstream's order: unscheduled, then not running, then not
        // ready, then the newest first.
        active.sort_by_key(|p| {
            let bound = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
            let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            let created = p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            (bound, running, pod_ready(p), std::cmp::Reverse(created))
        });
        for p in &active[..active.len() - want] {
            let pname = p.metadata.name.as_deref().unwrap_or("");
            match api.delete(pname, &DeleteParams::default()).await {
                Ok(_) => expectations.deleted(uid, p.metadata.uid.clone().unwrap_or_default()),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    update_status(client, rs, &active).await
}

async fn update_status(
    client: &kube::Client,
    rs: &ReplicaSet,
    active: &[&Pod],
) -> Result<(), kube::Error> {
    let min_ready = rs
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let now = k8s_openapi::jiff::Timestamp::now();
    let ready = active.iter().filter(|p| pod_ready(p)).count() as i32;
    let available = active
        .iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .find(|c| c.type_ == "Ready" && c.status == "True")
                .is_some_and(|c| {
                    c.last_transition_time
                        .as_ref()
                        .is_none_or(|t| now.duration_since(t.0).as_secs() >= i64::from(min_ready))
                })
        })
        .count() as i32;
    let labelled = active.len() as i32;
    let old = rs.status.clone().unwrap_or_default();
    let new = ReplicaSetStatus {
        replicas: active.len() as i32,
        fully_labeled_replicas: Some(labelled),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        observed_generation: rs.metadata.generation,
        ..old.clone()
    };
    if new == old {
        return Ok(());
    }
    write_status(client, rs, new).await
}
