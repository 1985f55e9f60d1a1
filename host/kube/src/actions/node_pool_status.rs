//! NodePool status: `status.resources`, `status.nodes` and the
//! `ValidationSucceeded`, `NodeClassReady` and `Ready` conditions, written
//! through `/status` only when they differ from what was last written.

use std::collections::HashMap;
use std::sync::Mutex;

use dovetail_api::condition::{Condition, ConditionStatus};
use dovetail_api::nodepool::NodePoolStatus;
use dovetail_api::{EC2NodeClass, NodePool};
use dovetail_control::actions::ActionError;
use dovetail_control::pool_status::{
    NodeClassReadiness, NodePoolConditions, NodePoolUsage, PoolConditionType,
};
use dovetail_core::nodeclaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::error::{self, Target};
use super::merge;
use crate::observed::{Change, Observed};

/// The longest condition message the CRD accepts.
const MAX_MESSAGE: usize = 32768;

/// Writes NodePools' status, remembering what it last wrote to each so an
/// unchanged status costs no request. The first write to a pool reads its
/// stored status first, so transition times and conditions of other types
/// survive a restart.
pub struct NodePoolStatusWriter {
    client: kube::Client,
    field_manager: String,
    written: Mutex<HashMap<String, NodePoolStatus>>,
}

impl std::fmt::Debug for NodePoolStatusWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodePoolStatusWriter")
            .field("field_manager", &self.field_manager)
            .finish_non_exhaustive()
    }
}

impl NodePoolStatusWriter {
    pub fn new(client: kube::Client, field_manager: &str) -> Self {
        Self {
            client,
            field_manager: field_manager.to_owned(),
            written: Mutex::new(HashMap::new()),
        }
    }

    /// Makes `pool`'s status say `usage` and `conditions`. A condition's
    /// transition time moves only when its status changes. Returns the
    /// NodePool the server answered with, when it wrote; nothing when the
    /// status already was so, or the pool is gone.
    pub async fn write(
        &self,
        pool: &str,
        usage: &NodePoolUsage,
        conditions: &NodePoolConditions,
    ) -> Result<Vec<Change>, ActionError> {
        let target = Target::new("patch", "nodepools/status", pool);
        let api: Api<NodePool> = Api::all(self.client.clone());
        let remembered = self.remembered(pool);
        let current = match remembered {
            Some(s) => s,
            None => match api.get_opt(pool).await {
                Ok(Some(p)) => p.status.unwrap_or_default(),
                Ok(None) => return Ok(Vec::new()),
                Err(e) => return Err(target.read().failed(&e)),
            },
        };
        let want = desired(&current, usage, conditions);
        let old = serde_json::to_value(&current).expect("a status serialises");
        let new = serde_json::to_value(&want).expect("a status serialises");
        let Some(diff) = merge::diff(&old, &new) else {
            self.remember(pool, current);
            return Ok(Vec::new());
        };
        let params = PatchParams {
            field_manager: Some(self.field_manager.clone()),
            ..PatchParams::default()
        };
        match api
            .patch_status(pool, &params, &Patch::Merge(json!({ "status": diff })))
            .await
        {
            Ok(p) => {
                self.remember(pool, p.status.clone().unwrap_or_default());
                Ok(vec![Change::Applied(Observed::NodePool(Box::new(p)))])
            }
            Err(e) => {
                // Read the stored status again next time.
                self.forget(pool);
                if error::is(&e, 404) {
                    Ok(Vec::new())
                } else {
                    Err(target.failed(&e))
                }
            }
        }
    }

    /// Drops what was written to `pool` (deleted, or its status changed by
    /// someone else): the next write reads the stored status first.
    pub fn forget(&self, pool: &str) {
        self.written.lock().expect("not poisoned").remove(pool);
    }

    fn remembered(&self, pool: &str) -> Option<NodePoolStatus> {
        self.written
            .lock()
            .expect("not poisoned")
            .get(pool)
            .cloned()
    }

    fn remember(&self, pool: &str, status: NodePoolStatus) {
        self.written
            .lock()
            .expect("not poisoned")
            .insert(pool.to_owned(), status);
    }
}

fn desired(
    current: &NodePoolStatus,
    usage: &NodePoolUsage,
    conditions: &NodePoolConditions,
) -> NodePoolStatus {
    let now = Time(Timestamp::now());
    let mut list: Vec<Condition> = conditions
        .all()
        .iter()
        .map(|c| {
            let status = match c.status {
                nodeclaim::ConditionStatus::True => ConditionStatus::True,
                nodeclaim::ConditionStatus::False => ConditionStatus::False,
                nodeclaim::ConditionStatus::Unknown => ConditionStatus::Unknown,
            };
            let stored = current.conditions.iter().find(|s| s.type_ == c.kind.name());
            let last_transition_time = match stored {
                Some(s) if s.status == status => s.last_transition_time.clone(),
                _ => None,
            }
            .or_else(|| Some(now.clone()));
            Condition {
                type_: c.kind.name().to_owned(),
                status,
                observed_generation: stored.and_then(|s| s.observed_generation),
                last_transition_time,
                reason: c.reason.to_string(),
                message: c.message.chars().take(MAX_MESSAGE).collect(),
            }
        })
        .collect();
    list.extend(
        current
            .conditions
            .iter()
            .filter(|s| !PoolConditionType::ALL.iter().any(|t| t.name() == s.type_))
            .cloned(),
    );
    NodePoolStatus {
        resources: NodePoolStatus::resources_from_core(&usage.resources, usage.nodes),
        nodes: usage.nodes,
        node_class_observed_generation: current.node_class_observed_generation,
        conditions: list,
    }
}

/// The readiness of a NodePool's EC2NodeClass, from the object (`None`:
/// not found), as Karpenter's NodePool readiness controller reads it.
pub fn node_class_readiness(class: Option<&EC2NodeClass>) -> NodeClassReadiness {
    let Some(class) = class else {
        return NodeClassReadiness::NotFound;
    };
    if class.metadata.deletion_timestamp.is_some() {
        return NodeClassReadiness::Terminating;
    }
    let ready = class
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    match ready {
        Some(c) if c.status == ConditionStatus::True => NodeClassReadiness::Ready,
        Some(c) if c.status == ConditionStatus::False => NodeClassReadiness::NotReady {
            reason: c.reason.clone(),
            message: c.message.clone(),
        },
        _ => NodeClassReadiness::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A class whose `Ready` condition is `ready` (`status`, `reason`).
    fn class(ready: Option<(&str, &str)>) -> EC2NodeClass {
        let mut c: EC2NodeClass = serde_json::from_value(json!({
            "apiVersion": "karpenter.k8s.aws/v1",
            "kind": "EC2NodeClass",
            "metadata": { "name": "default" },
        }))
        .unwrap();
        c.status = ready.map(|(status, reason)| {
            serde_json::from_value(json!({ "conditions": [{
                "type": "Ready", "status": status, "reason": reason,
                "message": "subnets not found", "lastTransitionTime": "2024-01-01T00:00:00Z",
            }] }))
            .unwrap()
        });
        c
    }

    #[test]
    fn a_node_class_is_read_as_karpenter_reads_it() {
        assert_eq!(node_class_readiness(None), NodeClassReadiness::NotFound);
        assert_eq!(
            node_class_readiness(Some(&class(None))),
            NodeClassReadiness::Unknown
        );
        assert_eq!(
            node_class_readiness(Some(&class(Some(("True", "Ready"))))),
            NodeClassReadiness::Ready
        );
        assert_eq!(
            node_class_readiness(Some(&class(Some(("False", "SubnetsNotFound"))))),
            NodeClassReadiness::NotReady {
                reason: "SubnetsNotFound".into(),
                message: "subnets not found".into(),
            }
        );
        assert_eq!(
            node_class_readiness(Some(&class(Some(("Unknown", "AwaitingReconciliation"))))),
            NodeClassReadiness::Unknown
        );
        let mut deleting = class(Some(("True", "Ready")));
        deleting.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert_eq!(
            node_class_readiness(Some(&deleting)),
            NodeClassReadiness::Terminating
        );
    }
}
