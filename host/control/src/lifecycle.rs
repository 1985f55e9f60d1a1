//! The NodeClaim lifecycle: Launched → Registered → Initialized.
//!
//! - **Launch**: the cloud creates an instance from the claim's launch list.
//!   A claim read back after a restart has none (the list is not stored in
//!   the object): it is derived from the claim's requirements and requests
//!   against the current catalog, as Karpenter's cloud provider does.
//!   Offerings that failed with insufficient capacity go into the
//!   unavailable-offerings cache; when none succeeded the claim is deleted
//!   and its pods are provisioned again. Other errors leave
//!   `Launched=Unknown` and are retried (1 s doubling to 1 min) until the
//!   launch timeout (5 min) deletes the claim.
//! - **Registration**: the node with the claim's provider ID is synced
//!   (labels, annotations, taints unless the kubelet already has them,
//!   finalizer), its `karpenter.sh/unregistered` taint removed; without such
//!   a node within the registration timeout (15 min) the claim is deleted.
//! - **Initialization**: the node is Ready, its start-up taints and known
//!   ephemeral taints are gone, and every extended resource the claim
//!   requested is registered.

use std::collections::HashMap;
use std::time::Duration;

use dovetail_core::catalog::Catalog;
use dovetail_core::labels;
use dovetail_core::model::Taint;
use dovetail_core::nodeclaim::{
    ConditionReason, ConditionStatus, ConditionType, DO_NOT_SYNC_TAINTS_LABEL, INITIALIZED_LABEL,
    LaunchedOffering, NodeClaim, REGISTERED_LABEL, UNREGISTERED_TAINT,
};
use dovetail_core::requirements::Requirements;
use dovetail_core::scheduler::compatible_offerings;
use dovetail_core::sym::Sym;

use crate::actions::{Action, Event, EventReason, NodePatch, ObjectRef};
use crate::cloud::{CloudProvider, CreateError, Launch, OfferingKey};
use crate::decision::{ClaimFailure, Decision};
use crate::snapshot::sort_labels;
use crate::state::{ClusterState, NodeEntry};
use crate::unavailable::UnavailableOfferings;

pub const LAUNCH_TIMEOUT: Duration = Duration::from_secs(5 * 60);
pub const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const RETRY_MIN_MS: u64 = 1_000;
const RETRY_MAX_MS: u64 = 60_000;

#[derive(Debug, Clone)]
pub struct Lifecycle {
    launch_timeout_ms: u64,
    registration_timeout_ms: u64,
    /// Claim → (next attempt, current delay) after a failed launch.
    retry: HashMap<Sym, (u64, u64)>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new(LAUNCH_TIMEOUT, REGISTRATION_TIMEOUT)
    }
}

/// Actions to execute and decisions to record.
#[derive(Debug, Default)]
pub struct Step {
    pub actions: Vec<Action>,
    pub decisions: Vec<Decision>,
}

impl Step {
    pub fn extend(&mut self, other: Step) {
        self.actions.extend(other.actions);
        self.decisions.extend(other.decisions);
    }
}

impl Lifecycle {
    pub fn new(launch_timeout: Duration, registration_timeout: Duration) -> Self {
        Self {
            launch_timeout_ms: launch_timeout.as_millis() as u64,
            registration_timeout_ms: registration_timeout.as_millis() as u64,
            retry: HashMap::new(),
        }
    }

    /// One pass over the unsettled NodeClaims. `catalog` is the catalog the
    /// decisions see (the cloud's, less unavailable offerings): a claim
    /// without a launch list launches from it.
    pub fn reconcile(
        &mut self,
        state: &ClusterState,
        cloud: &mut dyn CloudProvider,
        unavailable: &mut UnavailableOfferings,
        catalog: &Catalog,
        now_ms: u64,
    ) -> Step {
        let mut step = Step::default();
        let claims: Vec<&NodeClaim> = state
            .unsettled_claims()
            .map(|(_, c)| c)
            .filter(|c| !c.deleting() && !c.initialized())
            .collect();
        // Launches go to the cloud together, so a cloud that batches its
        // calls (EC2's CreateFleet) sends one request for claims alike.
        let mut launching: Vec<(&NodeClaim, Option<NodeClaim>)> = Vec::new();
        for claim in claims {
            if !claim.launched() {
                if let Some(derived) =
                    self.launch_list(claim, unavailable, catalog, now_ms, &mut step)
                {
                    launching.push((claim, derived));
                }
            } else if !claim.registered() {
                self.register(state, claim, now_ms, &mut step);
            } else {
                initialize(state, claim, now_ms, &mut step);
            }
        }
        if !launching.is_empty() {
            let requests: Vec<&NodeClaim> = launching
                .iter()
                .map(|(claim, derived)| derived.as_ref().unwrap_or(claim))
                .collect();
            let results = cloud.create_all(&requests, now_ms);
            debug_assert_eq!(results.len(), launching.len());
            for ((claim, _), result) in launching.iter().zip(results) {
                self.launched(claim, result, unavailable, now_ms, &mut step);
            }
        }
        self.retry.retain(|name, _| {
            state
                .claim_by_name(*name)
                .is_some_and(|c| !c.launched() && !c.deleting())
        });
        step
    }

    /// Whether `claim` launches in this pass, and with which launch list
    /// (`Some` when it had none and one is derived from the catalog).
    /// `None` when it timed out (and fails) or waits for its retry.
    #[allow(clippy::option_option)]
    fn launch_list(
        &mut self,
        claim: &NodeClaim,
        unavailable: &UnavailableOfferings,
        catalog: &Catalog,
        now_ms: u64,
        step: &mut Step,
    ) -> Option<Option<NodeClaim>> {
        // Launched stays Unknown from creation until it is True: the timeout
        // counts from creation.
        let since = claim.created_ms;
        if now_ms.saturating_sub(since) >= self.launch_timeout_ms {
            let why = claim
                .condition(ConditionType::Launched)
                .map(|c| c.message.clone())
                .unwrap_or_default();
            fail(claim, ClaimFailure::LaunchTimeout(why), step);
            return None;
        }
        if self
            .retry
            .get(&claim.name)
            .is_some_and(|&(next, _)| next > now_ms)
        {
            return None;
        }
        Some(
            claim
                .launch
                .is_empty()
                .then(|| with_derived_launch(claim, catalog, unavailable, now_ms)),
        )
    }

    /// Records what the cloud answered for `claim`'s launch.
    fn launched(
        &mut self,
        claim: &NodeClaim,
        result: Result<Launch, CreateError>,
        unavailable: &mut UnavailableOfferings,
        now_ms: u64,
        step: &mut Step,
    ) {
        match result {
            Ok(launch) => {
                for key in &launch.unavailable {
                    unavailable.mark(*key, now_ms);
                }
                self.retry.remove(&claim.name);
                let i = launch.instance;
                let mut c = claim.clone();
                let mut l = i.labels.clone();
                l.extend(c.labels.iter().copied());
                c.labels = sort_labels(l);
                let offering = LaunchedOffering {
                    instance_type: i.instance_type,
                    zone: i.zone,
                    capacity_type: i.capacity_type,
                    price: i.price,
                };
                c.status.provider_id = Some(i.provider_id);
                c.status.image_id = i.image_id;
                c.status.capacity = i.capacity;
                c.status.allocatable = i.allocatable;
                c.status.launched = Some(offering);
                c.set_true(ConditionType::Launched, now_ms);
                step.actions.push(Action::UpdateNodeClaim(c));
                step.decisions.push(Decision::Launched {
                    claim: claim.name,
                    offering,
                });
            }
            Err(CreateError::InsufficientCapacity { offerings, message }) => {
                for key in &offerings {
                    unavailable.mark(*key, now_ms);
                }
                step.actions.push(Action::Event(Event::warning(
                    ObjectRef::node_claim(claim.name),
                    EventReason::InsufficientCapacityError,
                    format!("NodeClaim {} event: {message}", claim.name),
                )));
                fail(claim, ClaimFailure::InsufficientCapacity(offerings), step);
            }
            Err(CreateError::NodeClassNotReady(message)) => {
                fail(claim, ClaimFailure::NodeClassNotReady(message), step);
            }
            Err(CreateError::Failed { reason, message }) => {
                let delay = self
                    .retry
                    .get(&claim.name)
                    .map_or(RETRY_MIN_MS, |&(_, d)| (d * 2).min(RETRY_MAX_MS));
                self.retry.insert(claim.name, (now_ms + delay, delay));
                let mut c = claim.clone();
                let message: String = message.chars().take(300).collect();
                if c.set_condition(
                    ConditionType::Launched,
                    ConditionStatus::Unknown,
                    ConditionReason::CreateError(reason),
                    message.clone(),
                    now_ms,
                ) {
                    step.actions.push(Action::UpdateNodeClaim(c));
                    step.actions.push(Action::Event(Event::warning(
                        ObjectRef::node_claim(claim.name),
                        EventReason::LaunchFailed,
                        message,
                    )));
                }
            }
        }
    }

    fn register(&self, state: &ClusterState, claim: &NodeClaim, now_ms: u64, step: &mut Step) {
        let provider_id = claim.status.provider_id.as_deref().unwrap_or_default();
        let Some(node) = state
            .node_by_provider_id(provider_id)
            .and_then(|id| state.node(id))
        else {
            let launched = claim
                .condition(ConditionType::Launched)
                .map_or(claim.created_ms, |c| c.last_transition_ms);
            if now_ms.saturating_sub(launched) >= self.registration_timeout_ms {
                fail(claim, ClaimFailure::RegistrationTimeout, step);
            }
            return;
        };
        let mut patch = NodePatch {
            labels: claim.labels.clone(),
            annotations: claim.annotations.clone(),
            add_finalizer: !node.finalizer,
            ..NodePatch::default()
        };
        patch
            .labels
            .push((Sym::new(REGISTERED_LABEL), Sym::new("true")));
        patch.labels = sort_labels(patch.labels);
        let synced =
            dovetail_core::model::label(&node.node.labels, Sym::new(DO_NOT_SYNC_TAINTS_LABEL))
                .is_some_and(|v| v.as_str() == "true");
        if !synced {
            patch.add_taints = claim
                .taints
                .iter()
                .chain(&claim.startup_taints)
                .filter(|t| !node.node.taints.contains(t))
                .copied()
                .collect();
        }
        if node.has_taint(UNREGISTERED_TAINT) {
            patch.remove_taints.push(Sym::new(UNREGISTERED_TAINT));
        }
        step.actions.push(Action::PatchNode {
            name: node.node.name,
            patch,
        });
        let mut c = claim.clone();
        c.status.node_name = Some(node.node.name);
        c.set_true(ConditionType::Registered, now_ms);
        step.actions.push(Action::UpdateNodeClaim(c));
    }
}

/// `claim` with the launch list its requirements and requests admit in
/// `catalog`: available offerings not in the unavailable-offerings cache,
/// cheapest first. Requirements that do not compile admit nothing; the
/// cloud then answers with insufficient capacity (or the instance it already
/// launched for the claim), as it would for an empty list.
fn with_derived_launch(
    claim: &NodeClaim,
    catalog: &Catalog,
    unavailable: &UnavailableOfferings,
    now_ms: u64,
) -> NodeClaim {
    let mut c = claim.clone();
    if let Ok(requirements) = Requirements::from_terms(&claim.requirements) {
        c.launch = compatible_offerings(
            catalog,
            &claim.node_class_ref.name,
            &requirements,
            &claim.requests,
        );
        // The view may predate marks made earlier in this pass.
        c.launch.retain(|o| {
            let key = OfferingKey {
                capacity_type: o.capacity_type,
                instance_type: o.instance_type,
                zone: o.zone,
            };
            !unavailable.is_unavailable(&key, now_ms)
        });
    }
    c
}

/// Deletes a claim that will not become a node.
fn fail(claim: &NodeClaim, failure: ClaimFailure, step: &mut Step) {
    step.actions
        .push(Action::DeleteNodeClaim { name: claim.name });
    step.decisions.push(Decision::ClaimFailed {
        claim: claim.name,
        failure,
    });
}

/// Why a registered node is not initialised yet, if it is not.
pub fn not_initialized(claim: &NodeClaim, node: &NodeEntry) -> Option<(ConditionReason, String)> {
    if !node.node.ready {
        return Some((
            ConditionReason::NodeNotReady,
            "Node status is NotReady".into(),
        ));
    }
    let has = |t: &Taint| {
        node.node
            .taints
            .iter()
            .any(|n| n.key == t.key && n.effect == t.effect)
    };
    if let Some(t) = claim.startup_taints.iter().find(|t| has(t)) {
        return Some((
            ConditionReason::StartupTaintsExist,
            format!("StartupTaint \"{t}\" still exists"),
        ));
    }
    if let Some(t) = node
        .node
        .taints
        .iter()
        .find(|t| labels::is_ephemeral_taint(t.key.as_str()))
    {
        return Some((
            ConditionReason::KnownEphemeralTaintsExist,
            format!("KnownEphemeralTaint \"{t}\" still exists"),
        ));
    }
    if let Some((name, _)) = claim
        .requests
        .extended
        .iter()
        .find(|&&(name, v)| v > 0 && node.node.allocatable.extended(name) == 0)
    {
        return Some((
            ConditionReason::ResourceNotRegistered,
            format!("Resource \"{name}\" was requested but not registered"),
        ));
    }
    None
}

fn initialize(state: &ClusterState, claim: &NodeClaim, now_ms: u64, step: &mut Step) {
    let Some(node) = state.node_of_claim(claim).and_then(|n| state.node(n)) else {
        let mut c = claim.clone();
        if c.set_condition(
            ConditionType::Initialized,
            ConditionStatus::Unknown,
            ConditionReason::NodeNotFound,
            "Node not registered with cluster",
            now_ms,
        ) {
            step.actions.push(Action::UpdateNodeClaim(c));
        }
        return;
    };
    let mut c = claim.clone();
    match not_initialized(claim, node) {
        Some((reason, message)) => {
            if c.set_condition(
                ConditionType::Initialized,
                ConditionStatus::Unknown,
                reason,
                message,
                now_ms,
            ) {
                step.actions.push(Action::UpdateNodeClaim(c));
            }
        }
        None => {
            step.actions.push(Action::PatchNode {
                name: node.node.name,
                patch: NodePatch {
                    labels: vec![(Sym::new(INITIALIZED_LABEL), Sym::new("true"))],
                    ..NodePatch::default()
                },
            });
            c.set_true(ConditionType::Initialized, now_ms);
            step.actions.push(Action::UpdateNodeClaim(c));
        }
    }
}
