//! The Deployment controller, replicas and templates only: the ReplicaSet
//! for the current template (named by its `pod-template-hash`) runs the
//! Deployment's replicas, every older one is scaled to 0. No rollout
//! strategy: a template change replaces all pods at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::informer::Informers;
use super::{controlled_by, owner_reference, write_status};

/// The label that ties a ReplicaSet and its pods to one template.
pub(crate) const POD_TEMPLATE_HASH: &str = "pod-template-hash";

pub(crate) async fn run(client: kube::Client, resync: Duration) {
    let mut informers = Informers::new(resync);
    let deployments = informers.watch::<Deployment>(&client);
    let sets = informers.watch::<ReplicaSet>(&client);
    let _ = deployments.wait_until_ready().await;
    let _ = sets.wait_until_ready().await;
    loop {
        let sets = sets.state();
        for d in deployments.state() {
            if let Err(e) = sync(&client, &d, &sets).await {
                tracing::warn!("deployment controller: {e}");
            }
        }
        informers.changed().await;
    }
}

async fn sync(
    client: &kube::Client,
    d: &Deployment,
    sets: &[Arc<ReplicaSet>],
) -> Result<(), kube::Error> {
    let (Some(name), Some(ns), Some(uid)) = (
        d.metadata.name.as_deref(),
        d.metadata.namespace.as_deref(),
        d.metadata.uid.as_deref(),
    ) else {
        return Ok(());
    };
    if d.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let Some(spec) = &d.spec else { return Ok(()) };
    let replicas = spec.replicas.unwrap_or(1);
    let hash = template_hash(&spec.template);
    let owned: Vec<&ReplicaSet> = sets
        .iter()
        .map(|s| s.as_ref())
        .filter(|s| s.metadata.namespace.as_deref() == Some(ns) && controlled_by(&s.metadata, uid))
        .collect();
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let is_new = |s: &ReplicaSet| {
        s.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(POD_TEMPLATE_HASH))
            .is_some_and(|h| *h == hash)
    };
    match owned.iter().find(|s| is_new(s)) {
        None => {
            let mut template = spec.template.clone();
            let meta = template.metadata.get_or_insert_default();
            meta.labels
                .get_or_insert_default()
                .insert(POD_TEMPLATE_HASH.into(), hash.clone());
            let mut selector: LabelSelector = spec.selector.clone();
            selector
                .match_labels
                .get_or_insert_default()
                .insert(POD_TEMPLATE_HASH.into(), hash.clone());
            let mut labels: BTreeMap<String, String> = meta.labels.clone().unwrap_or_default();
            labels.insert(POD_TEMPLATE_HASH.into(), hash.clone());
            let rs = ReplicaSet {
                metadata: ObjectMeta {
                    name: Some(format!("{name}-{hash}")),
                    namespace: Some(ns.into()),
                    labels: Some(labels),
                    annotations: Some(BTreeMap::from([(
                        "deployment.kubernetes.io/desired-replicas".into(),
                        replicas.to_string(),
                    )])),
                    owner_references: Some(vec![owner_reference(
                        "apps/v1",
                        "Deployment",
                        &d.metadata,
                    )]),
                    ..ObjectMeta::default()
                },
                spec: Some(k8s_openapi::api::apps::v1::ReplicaSetSpec {
                    replicas: Some(replicas),
                    selector,
                    template: Some(template),
                    min_ready_seconds: spec.min_ready_seconds,
                }),
                status: None,
            };
            match api.create(&PostParams::default(), &rs).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        Some(rs) => scale(&api, rs, replicas).await?,
    }
    for rs in owned.iter().filter(|s| !is_new(s)) {
        scale(&api, rs, 0).await?;
    }
    update_status(client, d, &owned, replicas, is_new).await
}

async fn scale(api: &Api<ReplicaSet>, rs: &ReplicaSet, replicas: i32) -> Result<(), kube::Error> {
    if rs.spec.as_ref().and_then(|s| s.replicas) == Some(replicas) {
        return Ok(());
    }
    let name = rs.metadata.name.as_deref().unwrap_or("");
    let patch = json!({ "spec": { "replicas": replicas } });
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

async fn update_status(
    client: &kube::Client,
    d: &Deployment,
    owned: &[&ReplicaSet],
    replicas: i32,
    is_new: impl Fn(&ReplicaSet) -> bool,
) -> Result<(), kube::Error> {
    let count = |f: fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> i32,
                 sets: &mut dyn Iterator<Item = &&ReplicaSet>|
     -> i32 { sets.filter_map(|s| s.status.as_ref()).map(f).sum() };
    let total = count(|s| s.replicas, &mut owned.iter());
    let ready = count(|s| s.ready_replicas.unwrap_or(0), &mut owned.iter());
    let available = count(|s| s.available_replicas.unwrap_or(0), &mut owned.iter());
    let updated = count(|s| s.replicas, &mut owned.iter().filter(|s| is_new(s)));
    // Available when at most the default maxUnavailable (25%, rounded
    // down) of the replicas is missing.
    let max_unavailable = replicas / 4;
    let (status, reason, message) = if available >= replicas - max_unavailable {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    let old = d.status.clone().unwrap_or_default();
    let old_available = old
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Available")
        .cloned();
    let condition = match old_available {
        Some(c) if c.status == status && c.reason.as_deref() == Some(reason) => c,
        _ => {
            let now = Time(k8s_openapi::jiff::Timestamp::now());
            DeploymentCondition {
                type_: "Available".into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                last_transition_time: Some(now.clone()),
                last_update_time: Some(now),
            }
        }
    };
    let new = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(total),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        unavailable_replicas: Some((replicas - available).max(0)),
        conditions: Some(vec![condition]),
        ..old.clone()
    };
    if new == old {
        return Ok(());
    }
    write_status(client, d, new).await
}

/// The `pod-template-hash` of a template, encoded as Kubernetes encodes it
/// (FNV-32a, then each decimal digit mapped to a consonant or digit).
pub(crate) fn template_hash(template: &k8s_openapi::api::core::v1::PodTemplateSpec) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let text = serde_json::to_string(template).unwrap_or_default();
    let hash = text.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_hash_is_stable_safe_and_changes_with_the_template() {
        let template = |image: &str| -> k8s_openapi::api::core::v1::PodTemplateSpec {
            serde_json::from_value(json!({
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "web", "image": image }] },
            }))
            .unwrap()
        };
        let a = template_hash(&template("web:1"));
        assert_eq!(a, template_hash(&template("web:1")));
        assert_ne!(a, template_hash(&template("web:2")));
        assert!(!a.is_empty() && a.len() <= 10, "{a}");
        // No vowels: a hash never spells a word in a name.
        assert!(
            a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
            "{a}"
        );
    }
}
