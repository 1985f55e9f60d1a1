//! The disruption controller: computes each PodDisruptionBudget's status
//! (expected, healthy and desired pods, disruptions allowed, the
//! DisruptionAllowed condition) and prunes `disruptedPods` entries the
//! eviction endpoint wrote once their pod is gone or two minutes passed,
//! as upstream's does. The API server never computes it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use dovetail_api::k8s::{PdbAmount, PdbRule, pdb as convert_pdb, pdb_rule};
use dovetail_core::model::Labels;
use dovetail_core::sym::Sym;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, PostParams};

use super::informer::Informers;
use super::{controller_of, pod_ready};

/// How long an eviction's `disruptedPods` entry holds a pod out of the
/// healthy count while its deletion is expected (upstream `DeletionTimeout`).
const DELETION_TIMEOUT_SECONDS: i64 = 120;

const CONDITION: &str = "DisruptionAllowed";

pub(crate) async fn run(client: kube::Client, resync: Duration) {
    let mut informers = Informers::new(resync);
    let budgets = informers.watch::<PodDisruptionBudget>(&client);
    let pods = informers.watch::<Pod>(&client);
    let sets = informers.watch::<ReplicaSet>(&client);
    let deployments = informers.watch::<Deployment>(&client);
    let _ = budgets.wait_until_ready().await;
    let _ = pods.wait_until_ready().await;
    let _ = sets.wait_until_ready().await;
    let _ = deployments.wait_until_ready().await;
    loop {
        let workloads = Workloads {
            pods: pods.state(),
            sets: sets.state(),
            deployments: deployments.state(),
        };
        for pdb in budgets.state() {
            if let Err(e) = sync(&client, &pdb, &workloads).await {
                tracing::warn!("disruption controller: {e}");
            }
        }
        informers.changed().await;
    }
}

struct Workloads {
    pods: Vec<Arc<Pod>>,
    sets: Vec<Arc<ReplicaSet>>,
    deployments: Vec<Arc<Deployment>>,
}

impl Workloads {
    /// The replicas the pods' controllers want, each controller counted
    /// once (upstream `getExpectedScale`): a ReplicaSet's, or its
    /// Deployment's when a Deployment owns it.
    fn expected_scale(&self, pods: &[&Pod]) -> Result<u32, String> {
        let mut counted = BTreeSet::new();
        let mut total = 0u32;
        for p in pods {
            let name = p.metadata.name.as_deref().unwrap_or("");
            let owner = controller_of(&p.metadata)
                .ok_or_else(|| format!("found no controllers for pod {name:?}"))?;
            let rs = (owner.kind == "ReplicaSet")
                .then(|| {
                    self.sets
                        .iter()
                        .find(|s| s.metadata.uid.as_deref() == Some(owner.uid.as_str()))
                })
                .flatten()
                .ok_or_else(|| format!("found no controllers for pod {name:?}"))?;
            let deployment = controller_of(&rs.metadata)
                .filter(|o| o.kind == "Deployment")
                .and_then(|o| {
                    self.deployments
                        .iter()
                        .find(|d| d.metadata.uid.as_deref() == Some(o.uid.as_str()))
                });
            let (uid, replicas) = match deployment {
                Some(d) => (
                    d.metadata.uid.clone(),
                    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                ),
                None => (
                    rs.metadata.uid.clone(),
                    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                ),
            };
            if counted.insert(uid) {
                total += replicas.max(0) as u32;
            }
        }
        Ok(total)
    }
}

/// Expected and desired healthy pods (upstream `getExpectedPodCount`).
fn expected_and_desired(
    rule: Option<PdbRule>,
    pods: &[&Pod],
    workloads: &Workloads,
) -> Result<(u32, u32), String> {
    match rule {
        None => Ok((pods.len() as u32, 0)),
        Some(PdbRule::MinAvailable(PdbAmount::Count(n))) => Ok((pods.len() as u32, n)),
        Some(PdbRule::MinAvailable(a)) => {
            let expected = workloads.expected_scale(pods)?;
            Ok((expected, a.of(expected)))
        }
        Some(PdbRule::MaxUnavailable(a)) => {
            let expected = workloads.expected_scale(pods)?;
            Ok((expected, expected.saturating_sub(a.of(expected))))
        }
    }
}

fn labels_of(pod: &Pod) -> Labels {
    let mut l: Labels = pod
        .metadata
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| (Sym::new(k), Sym::new(v)))
        .collect();
    l.sort();
    l
}

async fn sync(
    client: &kube::Client,
    pdb: &PodDisruptionBudget,
    workloads: &Workloads,
) -> Result<(), kube::Error> {
    let (Some(name), Some(ns)) = (
        pdb.metadata.name.as_deref(),
        pdb.metadata.namespace.as_deref(),
    ) else {
        return Ok(());
    };
    let now = k8s_openapi::jiff::Timestamp::now();
    let old = pdb.status.clone().unwrap_or_default();
    let computed = convert_pdb(pdb)
        .map_err(|e| e.to_string())
        .and_then(|c| {
            pdb_rule(pdb)
                .map(|r| (c.value, r))
                .map_err(|e| e.to_string())
        })
        .and_then(|(budget, rule)| {
            let pods: Vec<&Pod> = workloads
                .pods
                .iter()
                .map(|p| p.as_ref())
                .filter(|p| {
                    p.metadata.namespace.as_deref() == Some(ns)
                        && budget.selector.matches(&labels_of(p))
                })
                .collect();
            // Evictions still expected to delete their pod.
            let disrupted: BTreeMap<String, Time> = old
                .disrupted_pods
                .iter()
                .flatten()
                .filter(|(pod, at)| {
                    now.duration_since(at.0).as_secs() < DELETION_TIMEOUT_SECONDS
                        && pods.iter().any(|p| {
                            p.metadata.name.as_deref() == Some(pod)
                                && p.metadata.deletion_timestamp.is_none()
                        })
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let healthy = pods
                .iter()
                .filter(|p| {
                    p.metadata.deletion_timestamp.is_none()
                        && !disrupted.contains_key(p.metadata.name.as_deref().unwrap_or(""))
                        && pod_ready(p)
                })
                .count() as u32;
            let (expected, desired) = expected_and_desired(rule, &pods, workloads)?;
            Ok((expected, desired, healthy, disrupted))
        });
    let (expected, desired, healthy, disrupted, condition) = match computed {
        Ok((expected, desired, healthy, disrupted)) => {
            let allowed = healthy.saturating_sub(desired);
            let (status, reason) = if allowed > 0 {
                ("True", "SufficientPods")
            } else {
                ("False", "InsufficientPods")
            };
            (
                expected,
                desired,
                healthy,
                disrupted,
                (status, reason, String::new()),
            )
        }
        // Upstream's fail-safe: nothing may be disrupted.
        Err(message) => (0, 0, 0, BTreeMap::new(), ("False", "SyncFailed", message)),
    };
    let allowed = if condition.1 == "SyncFailed" {
        0
    } else {
        healthy.saturating_sub(desired)
    };
    let old_condition = old
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == CONDITION);
    let same = old_condition.is_some_and(|c| {
        c.status == condition.0 && c.reason == condition.1 && c.message == condition.2
    });
    let condition = match old_condition {
        Some(c) if same => c.clone(),
        _ => Condition {
            type_: CONDITION.into(),
            status: condition.0.into(),
            reason: condition.1.into(),
            message: condition.2,
            last_transition_time: Time(now),
            observed_generation: pdb.metadata.generation,
        },
    };
    let new = PodDisruptionBudgetStatus {
        current_healthy: healthy as i32,
        desired_healthy: desired as i32,
        expected_pods: expected as i32,
        disruptions_allowed: allowed as i32,
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        observed_generation: pdb.metadata.generation,
        conditions: Some(vec![condition]),
    };
    if new == old {
        return Ok(());
    }
    let mut updated = pdb.clone();
    updated.status = Some(new);
    let api: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    // A PUT with the cached resourceVersion: an eviction that changed the
    // status meanwhile wins, and the next pass recomputes.
    match api
        .replace_status(name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if matches!(e.code, 404 | 409) => Ok(()),
        Err(e) => Err(e),
    }
}
