//! The EC2NodeClass status controller, as the AWS provider runs it, for the
//! fake cloud: the fake cloud has no subnets, security groups, AMIs or
//! instance profiles to resolve, so every EC2NodeClass resolves, and its
//! readiness conditions are all True at its current generation. Without
//! them a NodePool's `NodeClassReady` would stay Unknown, as it does when
//! Karpenter runs without its provider.
//!
//! Conditions of other types (written by someone else) are kept. The status
//! is written through `/status`, only when it would change, with the
//! resourceVersion it was computed from, so a concurrent write wins and the
//! next pass computes again.

use std::time::Duration;

use dovetail_api::EC2NodeClass;
use dovetail_api::condition::{Condition, ConditionStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::informer::Informers;

/// The conditions the AWS provider's node class controllers set, and the
/// root that summarises them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClassCondition {
    SubnetsReady,
    SecurityGroupsReady,
    AmisReady,
    InstanceProfileReady,
    PlacementGroupReady,
    /// Set with the `ReservedCapacity` feature gate, on by default.
    CapacityReservationsReady,
    ValidationSucceeded,
    Ready,
}

impl ClassCondition {
    pub(crate) const ALL: [Self; 8] = [
        Self::SubnetsReady,
        Self::SecurityGroupsReady,
        Self::AmisReady,
        Self::InstanceProfileReady,
        Self::PlacementGroupReady,
        Self::CapacityReservationsReady,
        Self::ValidationSucceeded,
        Self::Ready,
    ];

    /// The condition type; a True condition's reason is the same word.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::SubnetsReady => "SubnetsReady",
            Self::SecurityGroupsReady => "SecurityGroupsReady",
            Self::AmisReady => "AMIsReady",
            Self::InstanceProfileReady => "InstanceProfileReady",
            Self::PlacementGroupReady => "PlacementGroupReady",
            Self::CapacityReservationsReady => "CapacityReservationsReady",
            Self::ValidationSucceeded => "ValidationSucceeded",
            Self::Ready => "Ready",
        }
    }

    fn is(name: &str) -> bool {
        Self::ALL.iter().any(|c| c.name() == name)
    }
}

pub(crate) async fn run(client: kube::Client, resync: Duration) {
    let mut informers = Informers::new(resync);
    // Until the CRD is installed the watch fails and retries; the loop
    // starts once it lists.
    let classes = informers.watch::<EC2NodeClass>(&client);
    let _ = classes.wait_until_ready().await;
    loop {
        for class in classes.state() {
            if let Err(e) = sync(&client, &class).await {
                tracing::warn!("EC2NodeClass status controller: {e}");
            }
        }
        informers.changed().await;
    }
}

/// The conditions `class` should have: every one this controller owns True
/// at the class's generation, a transition time kept while the status
/// holds, and the others as they are.
pub(crate) fn desired(class: &EC2NodeClass, now: Timestamp) -> Vec<Condition> {
    let current = class
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let mut conditions: Vec<Condition> = ClassCondition::ALL
        .iter()
        .map(|kind| {
            let stored = current.iter().find(|c| c.type_ == kind.name());
            let last_transition_time = match stored {
                Some(c) if c.status == ConditionStatus::True => c.last_transition_time.clone(),
                _ => None,
            };
            Condition {
                type_: kind.name().to_owned(),
                status: ConditionStatus::True,
                observed_generation: class.metadata.generation,
                last_transition_time: last_transition_time.or(Some(Time(now))),
                reason: kind.name().to_owned(),
                message: String::new(),
            }
        })
        .collect();
    conditions.extend(
        current
            .iter()
            .filter(|c| !ClassCondition::is(&c.type_))
            .cloned(),
    );
    conditions
}

async fn sync(client: &kube::Client, class: &EC2NodeClass) -> Result<(), kube::Error> {
    let Some(name) = class.metadata.name.as_deref() else {
        return Ok(());
    };
    // A class being deleted keeps the status it had.
    if class.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let conditions = desired(class, Timestamp::now());
    let current = class
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    if conditions == current {
        return Ok(());
    }
    let api: Api<EC2NodeClass> = Api::all(client.clone());
    let patch = json!({
        "metadata": { "resourceVersion": class.metadata.resource_version },
        "status": { "conditions": conditions },
    });
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if matches!(e.code, 404 | 409) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(generation: i64, conditions: serde_json::Value) -> EC2NodeClass {
        serde_json::from_value(json!({
            "apiVersion": "karpenter.k8s.aws/v1",
            "kind": "EC2NodeClass",
            "metadata": { "name": "default", "generation": generation },
            "spec": {},
            "status": { "conditions": conditions },
        }))
        .unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn every_condition_is_true_at_the_current_generation() {
        let now = at("2025-01-02T03:04:05Z");
        let got = desired(&class(3, json!([])), now);
        let names: Vec<&str> = got.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            names,
            [
                "SubnetsReady",
                "SecurityGroupsReady",
                "AMIsReady",
                "InstanceProfileReady",
                "PlacementGroupReady",
                "CapacityReservationsReady",
                "ValidationSucceeded",
                "Ready"
            ]
        );
        for c in &got {
            assert_eq!(c.status, ConditionStatus::True, "{}", c.type_);
            assert_eq!(c.reason, c.type_);
            assert_eq!(c.observed_generation, Some(3));
            assert_eq!(c.last_transition_time, Some(Time(now)));
        }
    }

    #[test]
    fn a_condition_that_stays_true_keeps_its_transition_time_and_others_are_kept() {
        let class = class(
            2,
            json!([
                { "type": "Ready", "status": "True", "reason": "Ready", "message": "",
                  "observedGeneration": 1, "lastTransitionTime": "2024-01-01T00:00:00Z" },
                { "type": "SubnetsReady", "status": "False", "reason": "SubnetsNotFound",
                  "message": "no subnets", "observedGeneration": 1,
                  "lastTransitionTime": "2024-01-01T00:00:00Z" },
                { "type": "Custom", "status": "False", "reason": "Mine", "message": "",
                  "lastTransitionTime": "2024-01-01T00:00:00Z" },
            ]),
        );
        let now = at("2025-01-02T03:04:05Z");
        let got = desired(&class, now);
        let find = |t: &str| got.iter().find(|c| c.type_ == t).unwrap();
        assert_eq!(
            find("Ready").last_transition_time,
            Some(Time(at("2024-01-01T00:00:00Z")))
        );
        assert_eq!(find("Ready").observed_generation, Some(2));
        let subnets = find("SubnetsReady");
        assert_eq!(subnets.status, ConditionStatus::True);
        assert_eq!(subnets.last_transition_time, Some(Time(now)));
        assert_eq!(subnets.message, "");
        assert_eq!(find("Custom").reason, "Mine");
        assert_eq!(find("Custom").status, ConditionStatus::False);
        // Computed again from its own answer: nothing to write.
        let mut written = class.clone();
        written.status.as_mut().unwrap().conditions = got.clone();
        assert_eq!(desired(&written, at("2026-01-01T00:00:00Z")), got);
    }
}
