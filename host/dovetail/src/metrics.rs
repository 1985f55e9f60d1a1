//! The controller's Prometheus metrics. Every behaviour Dovetail shares with
//! Karpenter is reported under Karpenter's metric name and labels, so its
//! dashboards and alerts work unchanged; the policy runtime has its own
//! `dovetail_policy_*` series.
//!
//! The controller feeds them from what it already produces: the
//! orchestration's [`Decision`]s, the cluster-state index, the policy host's
//! counters. Nothing here decides anything.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use dovetail_control::decision::{ClaimFailure, Decision};
use dovetail_control::{ClusterState, InterruptionKind};
use dovetail_core::disruption::UnconsolidatedReason;
use dovetail_core::disruption::budgets::DisruptionReason;
use dovetail_core::disruption::{CommandReason, Method};
use dovetail_core::labels;
use dovetail_core::model::{ConsolidationPolicy, OwnerKind, PodKey, PodPhase};
use dovetail_core::nodeclaim::NodeClaim;
use dovetail_core::policy::ports::BUILTIN;
use dovetail_core::policy::types::{
    ConsolidationContext, Decision as PolicyDecision, ProposedMove, Ranking, Selection,
    SelectionRequest, Verdict,
};
use dovetail_core::policy::{ConsolidationScorer, Decided, InstanceSelector};
use dovetail_core::resources::Resources;
use dovetail_core::sym::Sym;
use dovetail_policy::{FailureClass, PolicyHost};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Karpenter's (and controller-runtime's) duration buckets, in seconds.
const DURATION_BUCKETS: [f64; 45] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0, 120.0, 150.0, 300.0, 450.0, 600.0,
];

/// The provisioner's name in Karpenter's `controller` label.
const PROVISIONER: &str = "provisioner";

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CreatedLabels {
    reason: String,
    nodepool: String,
    min_values_relaxed: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClaimTerminatedLabels {
    nodepool: String,
    capacity_type: String,
    zone: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DisruptedLabels {
    reason: String,
    nodepool: String,
    capacity_type: String,
    consolidation_policy: String,
    termination_mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    nodepool: String,
    zone: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DisruptionDecisionLabels {
    decision: String,
    reason: String,
    consolidation_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsolidationTypeLabels {
    consolidation_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageTypeLabels {
    message_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolReasonLabels {
    nodepool: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    resource_type: String,
    nodepool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    decision: String,
    policy: String,
    digest: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    decision: String,
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    decision: String,
    outcome: String,
}

/// What a NodeClaim's metrics are labelled with, remembered while it exists
/// so the decisions about it (which carry only its name) can be labelled.
#[derive(Debug, Clone, Copy)]
struct ClaimInfo {
    node_pool: Option<Sym>,
    capacity_type: Option<&'static str>,
    zone: Option<Sym>,
    termination_mode: &'static str,
    consolidation_policy: Option<ConsolidationPolicy>,
}

impl ClaimInfo {
    fn of(claim: &NodeClaim, state: &ClusterState) -> Self {
        let launched = claim.status.launched.as_ref();
        let label = |key: &str| {
            let key = Sym::new(key);
            claim
                .labels
                .iter()
                .find(|(k, _)| *k == key)
                .map(|&(_, v)| v)
        };
        Self {
            node_pool: claim.node_pool,
            capacity_type: launched
                .map(|o| o.capacity_type.label())
                .or_else(|| label(labels::CAPACITY_TYPE).map(Sym::as_str)),
            zone: launched.map(|o| o.zone).or_else(|| label(labels::ZONE)),
            termination_mode: termination_mode(claim),
            consolidation_policy: claim
                .node_pool
                .and_then(|p| state.node_pool(p))
                .map(|p| p.disruption.consolidation_policy),
        }
    }

    fn unknown(node_pool: Option<Sym>) -> Self {
        Self {
            node_pool,
            capacity_type: None,
            zone: None,
            termination_mode: "graceful",
            consolidation_policy: None,
        }
    }
}

/// Karpenter's `termination_mode` label.
fn termination_mode(claim: &NodeClaim) -> &'static str {
    match claim.termination_grace_period {
        None => "graceful",
        Some(d) if d.is_zero() => "forceful",
        Some(_) => "eventual",
    }
}

fn sym_str(s: Option<Sym>) -> String {
    s.map(|s| s.as_str().to_owned()).unwrap_or_default()
}

/// One pod's `karpenter_pods_state` series, kept as interned values so
/// twenty thousand pods cost little until a scrape renders them.
#[derive(Debug, Clone, Copy)]
struct PodRow {
    key: PodKey,
    owner: Option<(OwnerKind, Sym)>,
    node: Option<Sym>,
    node_pool: Option<Sym>,
    zone: Option<Sym>,
    arch: Option<Sym>,
    capacity_type: Option<Sym>,
    instance_type: Option<Sym>,
    phase: PodPhase,
}

impl PodRow {
    /// Karpenter's labels, in its order. The pod's readiness is not in
    /// Dovetail's model, so there is no `ready` label.
    fn labels(&self) -> [(&'static str, String); 12] {
        let s = |v: Option<Sym>| v.map(|v| v.as_str().to_owned()).unwrap_or_default();
        let owner = self.owner.map_or_else(String::new, |(kind, name)| {
            let (api_version, plural) = match kind {
                OwnerKind::ReplicaSet => ("apps/v1", "replicasets"),
                OwnerKind::StatefulSet => ("apps/v1", "statefulsets"),
                OwnerKind::DaemonSet => ("apps/v1", "daemonsets"),
                OwnerKind::Job => ("batch/v1", "jobs"),
                OwnerKind::Node => ("v1", "nodes"),
                OwnerKind::Other => return String::new(),
            };
            format!(
                "/apis/{api_version}/namespaces/{}/{plural}/{name}",
                self.key.namespace
            )
        });
        let phase = match self.phase {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
            PodPhase::Unknown => "Unknown",
        };
        [
            ("name", self.key.name.as_str().to_owned()),
            ("namespace", self.key.namespace.as_str().to_owned()),
            ("owner", owner),
            ("node", s(self.node)),
            ("scheduled", self.node.is_some().to_string()),
            ("nodepool", s(self.node_pool)),
            ("zone", s(self.zone)),
            ("arch", s(self.arch)),
            ("capacity_type", s(self.capacity_type)),
            ("instance_type", s(self.instance_type)),
            ("phase", phase.to_owned()),
            ("managed", self.node_pool.is_some().to_string()),
        ]
    }
}

/// `karpenter_pods_state`, rendered from the last observed pods at scrape
/// time.
#[derive(Debug, Default)]
struct PodsState {
    rows: Mutex<Vec<PodRow>>,
}

impl Collector for PodsState {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let gauge = Gauge::<i64>::default();
        let mut family = encoder.encode_descriptor(
            "karpenter_pods_state",
            "The current state of each pod, labelled by its name, namespace, owner, node, NodePool, zone, architecture, capacity type, instance type and phase",
            None,
            gauge.metric_type(),
        )?;
        for row in rows.iter() {
            let labels = row.labels();
            family
                .encode_family(&labels.as_slice())?
                .encode_gauge(&1i64)?;
        }
        Ok(())
    }
}

/// What the policy host's counters were at the last look.
#[derive(Debug, Default, Clone, Copy)]
struct SlotSeen {
    decisions: u64,
    fallbacks: u64,
    failures: [u64; FailureClass::ALL.len()],
}

#[derive(Debug, Default)]
struct Memo {
    /// By NodeClaim name and by node name.
    claims: HashMap<Sym, ClaimInfo>,
    /// The claims of the observation before, so a decision about a claim
    /// that has just left the index still finds its labels.
    previous: HashMap<Sym, ClaimInfo>,
    /// NodeClaims seen registered; `None` until the first observation,
    /// which only records what is there.
    registered: Option<HashSet<Sym>>,
    usage: HashSet<ResourceLabels>,
    limits: HashSet<ResourceLabels>,
    policy: [Option<SlotSeen>; 2],
}

impl Memo {
    fn claim(&self, name: Sym) -> Option<ClaimInfo> {
        self.claims
            .get(&name)
            .or_else(|| self.previous.get(&name))
            .copied()
    }
}

pub struct Metrics {
    registry: Registry,
    nodeclaims_created: Family<CreatedLabels, Counter>,
    nodeclaims_terminated: Family<ClaimTerminatedLabels, Counter>,
    nodeclaims_disrupted: Family<DisruptedLabels, Counter>,
    nodes_created: Family<NodeLabels, Counter>,
    nodes_terminated: Family<NodeLabels, Counter>,
    pods_state: std::sync::Arc<PodsState>,
    scheduling_duration: Family<ControllerLabels, Histogram>,
    queue_depth: Family<ControllerLabels, Gauge>,
    disruption_decisions: Family<DisruptionDecisionLabels, Counter>,
    failed_validations: Family<ConsolidationTypeLabels, Counter>,
    queue_failures: Family<DisruptionDecisionLabels, Counter>,
    eligible_nodes: Family<ReasonLabels, Gauge>,
    allowed_disruptions: Family<PoolReasonLabels, Gauge>,
    nodepools_usage: Family<ResourceLabels, FloatGauge>,
    nodepools_limit: Family<ResourceLabels, FloatGauge>,
    cluster_state_synced: Gauge,
    cluster_state_node_count: Gauge,
    policy_decisions: Family<PolicyLabels, Counter>,
    policy_latency: Family<DecisionLabels, Histogram>,
    policy_fallbacks: Family<ClassLabels, Counter>,
    policy_failures: Family<ClassLabels, Counter>,
    policy_breaker: Family<DecisionLabels, Gauge>,
    policy_reloads: Family<ReloadLabels, Counter>,
    policy_shadow_disagreements: Family<DecisionLabels, Counter>,
    interruption_received: Family<MessageTypeLabels, Counter>,
    interruption_deleted: Counter,
    interruption_queue_duration: Histogram,
    interruption_malformed: Counter,
    memo: Mutex<Memo>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 4 s: policies answer in milliseconds, a deadline
    // stops them in seconds.
    Histogram::new(exponential_buckets(0.00025, 2.0, 15))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Self {
            nodeclaims_created: Family::default(),
            nodeclaims_terminated: Family::default(),
            nodeclaims_disrupted: Family::default(),
            nodes_created: Family::default(),
            nodes_terminated: Family::default(),
            pods_state: Default::default(),
            scheduling_duration: Family::new_with_constructor(duration_histogram),
            queue_depth: Family::default(),
            disruption_decisions: Family::default(),
            failed_validations: Family::default(),
            queue_failures: Family::default(),
            eligible_nodes: Family::default(),
            allowed_disruptions: Family::default(),
            nodepools_usage: Family::default(),
            nodepools_limit: Family::default(),
            cluster_state_synced: Gauge::default(),
            cluster_state_node_count: Gauge::default(),
            policy_decisions: Family::default(),
            policy_latency: Family::new_with_constructor(latency_histogram),
            policy_fallbacks: Family::default(),
            policy_failures: Family::default(),
            policy_breaker: Family::default(),
            policy_reloads: Family::default(),
            policy_shadow_disagreements: Family::default(),
            interruption_received: Family::default(),
            interruption_deleted: Counter::default(),
            interruption_queue_duration: duration_histogram(),
            interruption_malformed: Counter::default(),
            memo: Mutex::default(),
            registry: Registry::default(),
        };
        // Counters are registered without `_total`: the encoder adds it.
        let r = &mut registry;
        r.register(
            "karpenter_nodeclaims_created",
            "NodeClaims created, by why, NodePool and whether minValues was relaxed",
            m.nodeclaims_created.clone(),
        );
        r.register(
            "karpenter_nodeclaims_terminated",
            "NodeClaims whose termination finished, by NodePool, capacity type and zone",
            m.nodeclaims_terminated.clone(),
        );
        r.register(
            "karpenter_nodeclaims_disrupted",
            "NodeClaims deleted for a reason other than their own deletion, by reason, NodePool, capacity type, consolidation policy and termination mode",
            m.nodeclaims_disrupted.clone(),
        );
        r.register(
            "karpenter_nodes_created",
            "Nodes that registered for a NodeClaim, by NodePool and zone",
            m.nodes_created.clone(),
        );
        r.register(
            "karpenter_nodes_terminated",
            "Nodes whose termination finished, by NodePool and zone",
            m.nodes_terminated.clone(),
        );
        r.register_collector(Box::new(m.pods_state.clone()));
        r.register(
            "karpenter_scheduler_scheduling_duration_seconds",
            "How long scheduling simulations take, in seconds",
            m.scheduling_duration.clone(),
        );
        r.register(
            "karpenter_scheduler_queue_depth",
            "Pods waiting to be scheduled",
            m.queue_depth.clone(),
        );
        r.register(
            "karpenter_voluntary_disruption_decisions",
            "Disruption commands started, by decision (delete or replace), reason and consolidation type",
            m.disruption_decisions.clone(),
        );
        r.register(
            "karpenter_voluntary_disruption_failed_validations",
            "Disruption commands that no longer held when validated, by consolidation type",
            m.failed_validations.clone(),
        );
        r.register(
            "karpenter_voluntary_disruption_queue_failures",
            "Started disruption commands given up, by decision, reason and consolidation type",
            m.queue_failures.clone(),
        );
        r.register(
            "karpenter_voluntary_disruption_eligible_nodes",
            "Nodes the last disruption pass found eligible, by reason",
            m.eligible_nodes.clone(),
        );
        r.register(
            "karpenter_nodepools_allowed_disruptions",
            "Nodes a NodePool's budgets let be disrupted at once, by NodePool and reason",
            m.allowed_disruptions.clone(),
        );
        r.register(
            "karpenter_nodepools_usage",
            "Resources a NodePool's NodeClaims hold, by NodePool and resource type",
            m.nodepools_usage.clone(),
        );
        r.register(
            "karpenter_nodepools_limit",
            "A NodePool's resource limits, by NodePool and resource type",
            m.nodepools_limit.clone(),
        );
        r.register(
            "karpenter_cluster_state_synced",
            "1 when the cluster state agrees with the API server, else 0",
            m.cluster_state_synced.clone(),
        );
        r.register(
            "karpenter_cluster_state_node_count",
            "Nodes in the cluster state",
            m.cluster_state_node_count.clone(),
        );
        r.register(
            "dovetail_policy_decisions",
            "Decisions asked of each decision slot, by the policy serving it and its digest",
            m.policy_decisions.clone(),
        );
        r.register(
            "dovetail_policy_latency_seconds",
            "How long each call to a decision took, policy or built-in, in seconds",
            m.policy_latency.clone(),
        );
        r.register(
            "dovetail_policy_fallbacks",
            "Decisions made by the built-in because the policy failed (by failure class) or was skipped while its circuit breaker was open (class circuit-open)",
            m.policy_fallbacks.clone(),
        );
        r.register(
            "dovetail_policy_failures",
            "Policy calls that failed, by failure class",
            m.policy_failures.clone(),
        );
        r.register(
            "dovetail_policy_circuit_breaker_state",
            "1 while a decision's circuit breaker is open (its policy skipped), else 0",
            m.policy_breaker.clone(),
        );
        r.register(
            "dovetail_policy_reloads",
            "New policy versions accepted or refused, by decision",
            m.policy_reloads.clone(),
        );
        r.register(
            "dovetail_policy_shadow_disagreements",
            "Rounds where the shadow policy would have decided differently from the live one",
            m.policy_shadow_disagreements.clone(),
        );
        r.register(
            "karpenter_interruption_received_messages",
            "Interruption queue messages read, by message type (no_op for events that need nothing)",
            m.interruption_received.clone(),
        );
        r.register(
            "karpenter_interruption_deleted_messages",
            "Interruption queue messages deleted from the queue",
            m.interruption_deleted.clone(),
        );
        r.register(
            "karpenter_interruption_message_queue_duration_seconds",
            "How long an interruption message waited between its event and its handling, in seconds",
            m.interruption_queue_duration.clone(),
        );
        r.register(
            "dovetail_interruption_malformed_messages",
            "Interruption queue messages that could not be read (deleted all the same)",
            m.interruption_malformed.clone(),
        );
        for d in [
            PolicyDecision::InstanceSelection,
            PolicyDecision::ConsolidationScoring,
        ] {
            // Present from the start, so alerts on them have a series.
            m.policy_breaker.get_or_create(&decision_labels(d)).set(0);
        }
        Self { registry, ..m }
    }

    /// The exposition, in Prometheus's text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    fn memo(&self) -> MutexGuard<'_, Memo> {
        self.memo.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts what a reconcile decided. Call [`Metrics::observe_state`]
    /// before, so decisions about existing NodeClaims find their labels.
    pub fn observe_decisions(&self, decisions: &[Decision]) {
        let mut memo = self.memo();
        for decision in decisions {
            match decision {
                Decision::Provisioned { claims, .. } => {
                    for c in claims {
                        self.created("provisioned", c.node_pool);
                        memo.claims
                            .entry(c.name)
                            .or_insert_with(|| ClaimInfo::unknown(c.node_pool));
                    }
                }
                Decision::Launched { claim, offering } => {
                    let info = memo
                        .claims
                        .entry(*claim)
                        .or_insert_with(|| ClaimInfo::unknown(None));
                    info.capacity_type = Some(offering.capacity_type.label());
                    info.zone = Some(offering.zone);
                }
                Decision::ClaimFailed { claim, failure } => {
                    let reason = match failure {
                        ClaimFailure::InsufficientCapacity(_) => "insufficient_capacity",
                        ClaimFailure::NodeClassNotReady(_) => "nodeclass_not_ready",
                        ClaimFailure::LaunchTimeout(_) => "launch_timeout",
                        ClaimFailure::RegistrationTimeout => "registration_timeout",
                    };
                    self.disrupted(reason, memo.claim(*claim), false);
                }
                Decision::Pass(report) => self.observe_pass(report),
                Decision::CommandStarted {
                    command,
                    replacements,
                } => {
                    let labels = DisruptionDecisionLabels {
                        decision: if replacements.is_empty() {
                            "delete"
                        } else {
                            "replace"
                        }
                        .into(),
                        reason: command_reason(command.reason).into(),
                        consolidation_type: consolidation_type(command.method).into(),
                    };
                    self.disruption_decisions.get_or_create(&labels).inc();
                    for (i, &name) in replacements.iter().enumerate() {
                        let pool = command.replacements.get(i).map(|p| p.node_pool);
                        self.created(command_reason(command.reason), pool);
                        memo.claims
                            .entry(name)
                            .or_insert_with(|| ClaimInfo::unknown(pool));
                    }
                }
                Decision::CommandInvalidated { command, .. } => {
                    let labels = ConsolidationTypeLabels {
                        consolidation_type: consolidation_type(command.method).into(),
                    };
                    self.failed_validations.get_or_create(&labels).inc();
                }
                Decision::CommandAbandoned { command, .. } => {
                    let labels = DisruptionDecisionLabels {
                        decision: if command.replacements.is_empty() {
                            "delete"
                        } else {
                            "replace"
                        }
                        .into(),
                        reason: command_reason(command.reason).into(),
                        consolidation_type: consolidation_type(command.method).into(),
                    };
                    self.queue_failures.get_or_create(&labels).inc();
                }
                Decision::Disrupting { command, .. } => {
                    let consolidating = matches!(
                        command.method,
                        Method::SingleNodeConsolidation | Method::MultiNodeConsolidation
                    );
                    for node in &command.nodes {
                        self.disrupted(
                            command_reason(command.reason),
                            memo.claim(*node),
                            consolidating,
                        );
                    }
                }
                Decision::Expired { claim, .. } => {
                    self.disrupted("expired", memo.claim(*claim), false);
                }
                Decision::Interrupted { claim, kind } => {
                    // A rebalance recommendation only raises an event.
                    let reason = match kind {
                        InterruptionKind::SpotInterruption => "spot_interrupted",
                        InterruptionKind::ScheduledChange => "scheduled_change",
                        InterruptionKind::InstanceStopping => "instance_stopped",
                        InterruptionKind::InstanceTerminating => "instance_terminated",
                        InterruptionKind::CapacityReservationInterruption => {
                            "capacity_reservation_interrupted"
                        }
                        InterruptionKind::RebalanceRecommendation => continue,
                    };
                    self.disrupted(reason, memo.claim(*claim), false);
                }
                Decision::ClaimCollected { claim } => {
                    self.disrupted("garbage_collected", memo.claim(*claim), false);
                }
                Decision::Terminated { claim, node } => {
                    let info = claim
                        .and_then(|c| memo.claim(c))
                        .or_else(|| node.and_then(|n| memo.claim(n)))
                        .unwrap_or(ClaimInfo::unknown(None));
                    if claim.is_some() {
                        let labels = ClaimTerminatedLabels {
                            nodepool: sym_str(info.node_pool),
                            capacity_type: info.capacity_type.unwrap_or_default().into(),
                            zone: sym_str(info.zone),
                        };
                        self.nodeclaims_terminated.get_or_create(&labels).inc();
                    }
                    if node.is_some() {
                        let labels = NodeLabels {
                            nodepool: sym_str(info.node_pool),
                            zone: sym_str(info.zone),
                        };
                        self.nodes_terminated.get_or_create(&labels).inc();
                    }
                }
                Decision::Unschedulable { .. }
                | Decision::InstanceCollected { .. }
                | Decision::ActionFailed(_)
                | Decision::ScaledUp { .. }
                | Decision::ScaledDown { .. } => {}
            }
        }
    }

    fn created(&self, reason: &str, node_pool: Option<Sym>) {
        let labels = CreatedLabels {
            reason: reason.into(),
            nodepool: sym_str(node_pool),
            // Dovetail's scheduler never relaxes minValues.
            min_values_relaxed: "false".into(),
        };
        self.nodeclaims_created.get_or_create(&labels).inc();
    }

    fn disrupted(&self, reason: &str, info: Option<ClaimInfo>, consolidating: bool) {
        let info = info.unwrap_or(ClaimInfo::unknown(None));
        // As Karpenter: the consolidation policy only for consolidation.
        let policy = match info.consolidation_policy.filter(|_| consolidating) {
            None => "",
            Some(ConsolidationPolicy::WhenEmpty) => "when_empty",
            Some(ConsolidationPolicy::WhenEmptyOrUnderutilized) => "when_empty_or_underutilized",
            Some(ConsolidationPolicy::Balanced) => "balanced",
        };
        let labels = DisruptedLabels {
            reason: reason.into(),
            nodepool: sym_str(info.node_pool),
            capacity_type: info.capacity_type.unwrap_or_default().into(),
            consolidation_policy: policy.into(),
            termination_mode: info.termination_mode.into(),
        };
        self.nodeclaims_disrupted.get_or_create(&labels).inc();
    }

    /// Eligible nodes are those the pass accounted for under a reason: the
    /// nodes of the command it proposed, the candidates whose move it
    /// computed (underutilized), and those only a budget held back.
    fn observe_pass(&self, report: &dovetail_control::decision::PassReport) {
        let mut eligible = [0i64; 3];
        let slot = |r: DisruptionReason| match r {
            DisruptionReason::Empty => 0,
            DisruptionReason::Underutilized => 1,
            DisruptionReason::Drifted => 2,
        };
        if let Some((method, nodes)) = &report.proposed {
            let reason = match method {
                Method::Emptiness => Some(DisruptionReason::Empty),
                Method::Drift => Some(DisruptionReason::Drifted),
                Method::SingleNodeConsolidation | Method::MultiNodeConsolidation => {
                    Some(DisruptionReason::Underutilized)
                }
                Method::Expiration => None,
            };
            if let Some(r) = reason {
                eligible[slot(r)] += nodes.len() as i64;
            }
        }
        for u in &report.unconsolidated {
            match &u.reason {
                UnconsolidatedReason::NoMove(_) | UnconsolidatedReason::Rejected(_) => {
                    eligible[slot(DisruptionReason::Underutilized)] += 1;
                }
                UnconsolidatedReason::NoBudget { reason, .. } => eligible[slot(*reason)] += 1,
                _ => {}
            }
        }
        for r in DisruptionReason::ALL {
            let labels = ReasonLabels {
                reason: r.name().to_lowercase(),
            };
            self.eligible_nodes
                .get_or_create(&labels)
                .set(eligible[slot(r)]);
        }
        for budget in &report.budgets {
            for allowance in &budget.reasons {
                let labels = PoolReasonLabels {
                    nodepool: budget.node_pool.clone(),
                    reason: allowance.reason.name().to_owned(),
                };
                self.allowed_disruptions
                    .get_or_create(&labels)
                    .set(i64::from(allowance.limit));
            }
        }
    }

    /// Gauges from the cluster-state index, and nodes newly registered.
    pub fn observe_state(&self, state: &ClusterState, synced: bool) {
        self.cluster_state_synced.set(i64::from(synced));
        self.cluster_state_node_count.set(state.node_count() as i64);
        self.queue_depth
            .get_or_create(&ControllerLabels {
                controller: PROVISIONER.into(),
            })
            .set(state.pending().len() as i64);

        let mut memo = self.memo();
        let mut claims = HashMap::default();
        let mut registered = HashSet::new();
        let mut usage: HashMap<Sym, (Resources, i64)> = HashMap::default();
        for (_, claim) in state.claims() {
            let info = ClaimInfo::of(claim, state);
            claims.insert(claim.name, info);
            if let Some(node) = claim.status.node_name {
                claims.insert(node, info);
            }
            if claim.registered() {
                registered.insert(claim.name);
                if let Some(seen) = &memo.registered
                    && !seen.contains(&claim.name)
                {
                    let labels = NodeLabels {
                        nodepool: sym_str(info.node_pool),
                        zone: sym_str(info.zone),
                    };
                    self.nodes_created.get_or_create(&labels).inc();
                }
            }
            if let Some(pool) = claim.node_pool
                && claim.launched()
            {
                let (resources, nodes) = usage.entry(pool).or_default();
                resources.add(&claim.status.capacity);
                *nodes += 1;
            }
        }
        memo.registered = Some(registered);
        memo.previous = std::mem::replace(&mut memo.claims, claims);

        // NodePool usage and limits, dropping series of pools that went.
        let mut usage_now = HashSet::new();
        let mut limits_now = HashSet::new();
        for pool in state.node_pools() {
            let name = pool.name.as_str();
            let (resources, nodes) = usage.remove(&pool.name).unwrap_or_default();
            for (resource, value) in resource_values(&resources, nodes) {
                let labels = ResourceLabels {
                    resource_type: resource,
                    nodepool: name.to_owned(),
                };
                self.nodepools_usage.get_or_create(&labels).set(value);
                usage_now.insert(labels);
            }
            for &(resource, value) in &pool.limits {
                let (resource, value) = scaled(resource.as_str(), value);
                let labels = ResourceLabels {
                    resource_type: resource,
                    nodepool: name.to_owned(),
                };
                self.nodepools_limit.get_or_create(&labels).set(value);
                limits_now.insert(labels);
            }
        }
        for gone in memo.usage.difference(&usage_now) {
            self.nodepools_usage.remove(gone);
        }
        for gone in memo.limits.difference(&limits_now) {
            self.nodepools_limit.remove(gone);
        }
        memo.usage = usage_now;
        memo.limits = limits_now;
        drop(memo);

        let label = |labels: &dovetail_core::model::Labels, key: &str| {
            dovetail_core::model::label(labels, Sym::new(key))
        };
        let rows = state
            .pods()
            .map(|(_, entry)| {
                let node = entry.node.and_then(|id| state.node(id));
                let node_label = |key: &str| node.and_then(|n| label(&n.node.labels, key));
                PodRow {
                    key: entry.pod.key(),
                    owner: entry.pod.owner.map(|o| (o.kind, o.name)),
                    node: node.map(|n| n.node.name),
                    node_pool: node_label(labels::NODE_POOL),
                    zone: node_label(labels::ZONE),
                    arch: node_label(labels::ARCH),
                    capacity_type: node_label(labels::CAPACITY_TYPE),
                    instance_type: node_label(labels::INSTANCE_TYPE),
                    phase: entry.pod.phase,
                }
            })
            .collect();
        *self
            .pods_state
            .rows
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = rows;
    }

    /// The policy host's counters since the last look, and its breakers.
    pub fn observe_policy_host(&self, host: &PolicyHost) {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut memo = self.memo();
        for (i, d) in [
            PolicyDecision::InstanceSelection,
            PolicyDecision::ConsolidationScoring,
        ]
        .into_iter()
        .enumerate()
        {
            let status = host.status(d);
            let now = SlotSeen {
                decisions: status.decisions,
                fallbacks: status.fallbacks,
                failures: FailureClass::ALL.map(|c| status.failures.get(c)),
            };
            let before = memo.policy[i].unwrap_or_default();
            memo.policy[i] = Some(now);
            // Counters only grow; smaller ones mean a new host: start over.
            if now.decisions < before.decisions || now.fallbacks < before.fallbacks {
                continue;
            }
            let decision = d.as_str().to_owned();
            let (policy, digest) = host
                .active(d)
                .map_or((BUILTIN.to_owned(), String::new()), |p| {
                    (p.label(), p.digest.clone())
                });
            let new_decisions = now.decisions - before.decisions;
            if new_decisions > 0 {
                self.policy_decisions
                    .get_or_create(&PolicyLabels {
                        decision: decision.clone(),
                        policy,
                        digest,
                    })
                    .inc_by(new_decisions);
            }
            let mut new_failures = 0;
            for (k, class) in FailureClass::ALL.into_iter().enumerate() {
                let n = now.failures[k].saturating_sub(before.failures[k]);
                if n == 0 {
                    continue;
                }
                new_failures += n;
                let labels = ClassLabels {
                    decision: decision.clone(),
                    class: class.as_str().into(),
                };
                self.policy_failures.get_or_create(&labels).inc_by(n);
                self.policy_fallbacks.get_or_create(&labels).inc_by(n);
            }
            let skipped = (now.fallbacks - before.fallbacks).saturating_sub(new_failures);
            if skipped > 0 {
                let labels = ClassLabels {
                    decision: decision.clone(),
                    class: "circuit-open".into(),
                };
                self.policy_fallbacks.get_or_create(&labels).inc_by(skipped);
            }
            let open = status.breaker_open_until_ms.is_some_and(|u| now_ms < u);
            self.policy_breaker
                .get_or_create(&DecisionLabels { decision })
                .set(i64::from(open));
        }
    }

    /// A new policy version for `decision` was validated and swapped in
    /// (`accepted`), or refused with the previous one left serving.
    pub fn policy_reload(&self, decision: PolicyDecision, accepted: bool) {
        let labels = ReloadLabels {
            decision: decision.as_str().into(),
            outcome: if accepted { "accepted" } else { "refused" }.into(),
        };
        self.policy_reloads.get_or_create(&labels).inc();
    }

    /// The shadow policy for `decision` answered differently from the live
    /// one in a round.
    pub fn shadow_disagreement(&self, decision: PolicyDecision) {
        self.policy_shadow_disagreements
            .get_or_create(&decision_labels(decision))
            .inc();
    }

    /// One provisioning scheduling simulation took `secs`.
    pub fn scheduling_duration(&self, secs: f64) {
        self.scheduling_duration
            .get_or_create(&ControllerLabels {
                controller: PROVISIONER.into(),
            })
            .observe(secs);
    }

    /// One call to `decision`'s policy (or the built-in) took `secs`.
    pub fn policy_latency(&self, decision: PolicyDecision, secs: f64) {
        self.policy_latency
            .get_or_create(&decision_labels(decision))
            .observe(secs);
    }
}

fn decision_labels(d: PolicyDecision) -> DecisionLabels {
    DecisionLabels {
        decision: d.as_str().into(),
    }
}

/// Karpenter's `reason` label values: the reason in lower case.
fn command_reason(reason: CommandReason) -> &'static str {
    match reason {
        CommandReason::Expired => "expired",
        CommandReason::Empty => "empty",
        CommandReason::Drifted => "drifted",
        CommandReason::Underutilized => "underutilized",
    }
}

/// Karpenter's `consolidation_type`: empty for what is not consolidation.
fn consolidation_type(method: Method) -> &'static str {
    match method {
        Method::SingleNodeConsolidation => "single",
        Method::MultiNodeConsolidation => "multi",
        Method::Expiration | Method::Emptiness | Method::Drift => "",
    }
}

/// A resource quantity as Karpenter reports it: CPU in cores, everything
/// else in its unit; names lower-case with `_` for `-`.
fn scaled(resource: &str, value: i64) -> (String, f64) {
    let name = resource.to_lowercase().replace('-', "_");
    let value = if resource == "cpu" {
        value as f64 / 1000.0
    } else {
        value as f64
    };
    (name, value)
}

fn resource_values(r: &Resources, nodes: i64) -> Vec<(String, f64)> {
    let mut out = vec![
        scaled("cpu", r.cpu),
        scaled("memory", r.memory),
        scaled("pods", r.pods),
        scaled("ephemeral-storage", r.ephemeral),
        scaled("nodes", nodes),
    ];
    out.extend(r.extended.iter().map(|&(k, v)| scaled(k.as_str(), v)));
    out
}

/// Decision ports that time every call into [`Metrics`], around the policy
/// host (or any other implementation).
#[derive(Debug)]
pub struct Timed<T> {
    inner: T,
    metrics: std::sync::Arc<Metrics>,
}

impl<T> Timed<T> {
    pub fn new(inner: T, metrics: std::sync::Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn time<R>(&self, d: PolicyDecision, call: impl FnOnce() -> R) -> R {
        let start = Instant::now();
        let out = call();
        self.metrics
            .policy_latency(d, start.elapsed().as_secs_f64());
        out
    }
}

impl<T> InstanceSelector for Timed<T>
where
    T: std::ops::Deref + Send + Sync,
    T::Target: InstanceSelector,
{
    fn select(&self, request: &SelectionRequest) -> Decided<Selection> {
        self.time(PolicyDecision::InstanceSelection, || {
            self.inner.select(request)
        })
    }
}

impl<T> ConsolidationScorer for Timed<T>
where
    T: std::ops::Deref + Send + Sync,
    T::Target: ConsolidationScorer,
{
    fn rank(&self, ctx: &ConsolidationContext) -> Decided<Ranking> {
        self.time(PolicyDecision::ConsolidationScoring, || {
            self.inner.rank(ctx)
        })
    }

    fn approve(&self, ctx: &ConsolidationContext, moves: &[ProposedMove]) -> Decided<Vec<Verdict>> {
        self.time(PolicyDecision::ConsolidationScoring, || {
            self.inner.approve(ctx, moves)
        })
    }
}

/// The interruption queue's metrics, under Karpenter's names.
impl dovetail_aws::interruption::InterruptionMetrics for Metrics {
    fn received(&self, kind: &str) {
        self.interruption_received
            .get_or_create(&MessageTypeLabels {
                message_type: kind.to_owned(),
            })
            .inc();
    }

    fn deleted(&self) {
        self.interruption_deleted.inc();
    }

    fn latency(&self, seconds: f64) {
        self.interruption_queue_duration.observe(seconds);
    }

    fn malformed(&self) {
        self.interruption_malformed.inc();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use dovetail_control::decision::{CreatedClaim, PassReport};
    use dovetail_control::testing::{FakeCloud, MemoryCluster};
    use dovetail_control::{Autoscaler, Config, Controller};
    use dovetail_core::builders::{node_pool, pod};
    use dovetail_core::catalog::Catalog;
    use dovetail_core::disruption::{Command, Unconsolidated};
    use dovetail_core::policy::Builtin;
    use dovetail_core::requirements::Operator;

    use super::*;

    const START: u64 = 1_800_000_000_000;

    /// The value of the series `name{labels}` (labels exactly as written),
    /// or `None` when the exposition has no such line.
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn a_pod_provisioned_registered_and_terminated_is_counted_as_karpenter_counts_it() {
        let mut state = ClusterState::new();
        state.apply_node_pool(
            node_pool("default")
                .require(labels::INSTANCE_TYPE, Operator::In, &["m5.large"])
                .require(labels::CAPACITY_TYPE, Operator::In, &["on-demand"])
                .require(labels::ZONE, Operator::In, &["us-east-1a"])
                .limit("cpu", "100")
                .limit("memory", "400Gi")
                .build(),
        );
        let mut cluster = MemoryCluster::new(state);
        let mut cloud = FakeCloud::new(Arc::new(Catalog::aws_us_east_1()));
        let mut ctl = Controller::new(Config::default(), &Builtin, &Builtin);
        let m = Metrics::new();
        m.observe_state(&cluster.state, false);
        let web = cluster
            .state
            .apply_pod(pod("web").cpu("1").memory("1Gi").build(), None, START);
        m.observe_state(&cluster.state, false);
        let text = m.encode();
        assert_eq!(value(&text, "karpenter_cluster_state_synced"), Some(0.0));
        assert_eq!(
            value(
                &text,
                r#"karpenter_scheduler_queue_depth{controller="provisioner"}"#
            ),
            Some(1.0)
        );

        let mut decisions = ctl.reconcile(&mut cluster, &mut cloud, START);
        decisions.extend(ctl.reconcile(&mut cluster, &mut cloud, START + 1_100));
        m.observe_decisions(&decisions);
        let claim = decisions
            .iter()
            .find_map(|d| match d {
                Decision::Provisioned { claims, .. } => Some(claims[0].name),
                _ => None,
            })
            .expect("provisioned after the idle second");
        let node = cluster.register(&cloud, claim, START + 2_000);
        let decisions = ctl.reconcile(&mut cluster, &mut cloud, START + 3_000);
        cluster.state.bind(web, node, START + 3_000);
        m.observe_state(&cluster.state, true);
        m.observe_decisions(&decisions);
        let node_name = cluster.state.node(node).unwrap().node.name;
        m.observe_decisions(&[Decision::Terminated {
            claim: Some(claim),
            node: Some(node_name),
        }]);

        let text = m.encode();
        for (series, want) in [
            (
                r#"karpenter_nodeclaims_created_total{reason="provisioned",nodepool="default",min_values_relaxed="false"}"#,
                1.0,
            ),
            (
                r#"karpenter_nodes_created_total{nodepool="default",zone="us-east-1a"}"#,
                1.0,
            ),
            (
                r#"karpenter_nodeclaims_terminated_total{nodepool="default",capacity_type="on-demand",zone="us-east-1a"}"#,
                1.0,
            ),
            (
                r#"karpenter_nodes_terminated_total{nodepool="default",zone="us-east-1a"}"#,
                1.0,
            ),
            ("karpenter_cluster_state_synced", 1.0),
            ("karpenter_cluster_state_node_count", 1.0),
            (
                r#"karpenter_scheduler_queue_depth{controller="provisioner"}"#,
                0.0,
            ),
            (
                r#"karpenter_nodepools_usage{resource_type="cpu",nodepool="default"}"#,
                2.0,
            ),
            (
                r#"karpenter_nodepools_usage{resource_type="nodes",nodepool="default"}"#,
                1.0,
            ),
            (
                r#"karpenter_nodepools_limit{resource_type="cpu",nodepool="default"}"#,
                100.0,
            ),
            (
                r#"karpenter_nodepools_limit{resource_type="memory",nodepool="default"}"#,
                400.0 * 1024.0 * 1024.0 * 1024.0,
            ),
        ] {
            assert_eq!(value(&text, series), Some(want), "{series} in\n{text}");
        }
        let pod_line = format!(
            r#"karpenter_pods_state{{name="web",namespace="default",owner="",node="{node_name}",scheduled="true",nodepool="default",zone="us-east-1a",arch="amd64",capacity_type="on-demand",instance_type="m5.large",phase="Pending",managed="true"}}"#
        );
        assert_eq!(value(&text, &pod_line), Some(1.0), "{pod_line} in\n{text}");
        // A registration is counted once, however often the state is seen.
        m.observe_state(&cluster.state, true);
        assert_eq!(
            value(
                &m.encode(),
                r#"karpenter_nodes_created_total{nodepool="default",zone="us-east-1a"}"#
            ),
            Some(1.0)
        );
        // A NodePool that goes takes its series with it.
        cluster.state.delete_node_pool(Sym::new("default"));
        m.observe_state(&cluster.state, true);
        let text = m.encode();
        for gone in ["karpenter_nodepools_usage{", "karpenter_nodepools_limit{"] {
            assert!(
                !text.lines().any(|l| l.starts_with(gone)),
                "{gone} in\n{text}"
            );
        }
    }

    fn command(method: Method, reason: CommandReason, nodes: &[&str]) -> Command {
        Command {
            method,
            reason,
            nodes: nodes.iter().map(|n| Sym::new(n)).collect(),
            node_indices: Vec::new(),
            replacements: Vec::new(),
            savings_per_hour: 0.1,
            pods_evicted: Vec::new(),
            decided_by: BUILTIN.into(),
            policy_reason: "cheaper".into(),
        }
    }

    #[test]
    fn disruption_decisions_use_karpenters_reasons_and_types() {
        let m = Metrics::new();
        let single = command(
            Method::SingleNodeConsolidation,
            CommandReason::Underutilized,
            &["n1"],
        );
        let empty = command(Method::Emptiness, CommandReason::Empty, &["n2", "n3"]);
        m.observe_decisions(&[
            Decision::Provisioned {
                pods: 1,
                claims: vec![CreatedClaim {
                    name: Sym::new("n1"),
                    node_pool: Some(Sym::new("spot")),
                    requirements: Vec::new(),
                    launch: Vec::new(),
                    pods: 1,
                }],
                decided_by: BUILTIN.into(),
                fallback: None,
            },
            Decision::CommandStarted {
                command: single.clone(),
                replacements: Vec::new(),
            },
            Decision::CommandStarted {
                command: empty.clone(),
                replacements: Vec::new(),
            },
            Decision::CommandInvalidated {
                command: single.clone(),
                why: "a pod arrived".into(),
            },
            Decision::Disrupting {
                command: single,
                replacements: Vec::new(),
            },
            Decision::Expired {
                claim: Sym::new("n9"),
                after: std::time::Duration::from_secs(3600),
            },
            Decision::ClaimFailed {
                claim: Sym::new("n8"),
                failure: ClaimFailure::RegistrationTimeout,
            },
            Decision::Interrupted {
                claim: Sym::new("n7"),
                kind: InterruptionKind::SpotInterruption,
            },
            Decision::Interrupted {
                claim: Sym::new("n6"),
                kind: InterruptionKind::RebalanceRecommendation,
            },
            Decision::Pass(Box::new(PassReport {
                proposed: Some((Method::Emptiness, vec![Sym::new("n2"), Sym::new("n3")])),
                unconsolidated: vec![
                    Unconsolidated {
                        node: Sym::new("n4"),
                        reason: UnconsolidatedReason::NoMove("no cheaper type".into()),
                    },
                    Unconsolidated {
                        node: Sym::new("n5"),
                        reason: UnconsolidatedReason::RecentlyChanged {
                            consolidate_after_seconds: 30,
                        },
                    },
                ],
                ..PassReport::default()
            })),
        ]);
        let text = m.encode();
        for (series, want) in [
            (
                r#"karpenter_voluntary_disruption_decisions_total{decision="delete",reason="underutilized",consolidation_type="single"}"#,
                1.0,
            ),
            (
                r#"karpenter_voluntary_disruption_decisions_total{decision="delete",reason="empty",consolidation_type=""}"#,
                1.0,
            ),
            (
                r#"karpenter_voluntary_disruption_failed_validations_total{consolidation_type="single"}"#,
                1.0,
            ),
            // n1 was provisioned for the spot pool: its labels follow it.
            (
                r#"karpenter_nodeclaims_disrupted_total{reason="underutilized",nodepool="spot",capacity_type="",consolidation_policy="",termination_mode="graceful"}"#,
                1.0,
            ),
            (
                r#"karpenter_nodeclaims_disrupted_total{reason="expired",nodepool="",capacity_type="",consolidation_policy="",termination_mode="graceful"}"#,
                1.0,
            ),
            (
                r#"karpenter_nodeclaims_disrupted_total{reason="registration_timeout",nodepool="",capacity_type="",consolidation_policy="",termination_mode="graceful"}"#,
                1.0,
            ),
            (
                r#"karpenter_nodeclaims_disrupted_total{reason="spot_interrupted",nodepool="",capacity_type="",consolidation_policy="",termination_mode="graceful"}"#,
                1.0,
            ),
            (
                r#"karpenter_voluntary_disruption_eligible_nodes{reason="empty"}"#,
                2.0,
            ),
            (
                r#"karpenter_voluntary_disruption_eligible_nodes{reason="underutilized"}"#,
                1.0,
            ),
            (
                r#"karpenter_voluntary_disruption_eligible_nodes{reason="drifted"}"#,
                0.0,
            ),
        ] {
            assert_eq!(value(&text, series), Some(want), "{series} in\n{text}");
        }
        assert!(
            !text.contains("rebalance"),
            "a rebalance recommendation deletes nothing"
        );
    }

    #[test]
    fn policy_series_follow_the_host_and_the_reload_outcomes() {
        use dovetail_core::policy::fixtures::synthetic_selection;
        use dovetail_policy::{Runtime, RuntimeConfig};

        let host = Arc::new(PolicyHost::new(
            Runtime::new(RuntimeConfig::default()).unwrap(),
        ));
        let bytes = dovetail_tests::guest_bytes("dovetail-guest-hostile");
        let policy = host
            .load_and_install(
                PolicyDecision::InstanceSelection,
                "hostile.wasm",
                &bytes,
                Some(r#"{"mode": "panic"}"#),
            )
            .unwrap();
        let m = Arc::new(Metrics::new());
        let timed = Timed::new(host.clone(), m.clone());
        let calm = synthetic_selection(24, 2, 1);
        let trigger = synthetic_selection(24, 2, 666);
        timed.select(&calm);
        m.observe_policy_host(&host);
        // Three failures open the breaker; the next call is skipped.
        for _ in 0..4 {
            let decided = timed.select(&trigger);
            assert!(decided.fallback.is_some());
        }
        m.observe_policy_host(&host);
        m.policy_reload(PolicyDecision::InstanceSelection, true);
        m.policy_reload(PolicyDecision::ConsolidationScoring, false);
        m.shadow_disagreement(PolicyDecision::ConsolidationScoring);

        let text = m.encode();
        let digest = &policy.digest;
        for (series, want) in [
            (
                format!(
                    r#"dovetail_policy_decisions_total{{decision="instance-selection",policy="hostile@0.0.1",digest="{digest}"}}"#
                ),
                5.0,
            ),
            (
                r#"dovetail_policy_failures_total{decision="instance-selection",class="trap"}"#.into(),
                3.0,
            ),
            (
                r#"dovetail_policy_fallbacks_total{decision="instance-selection",class="trap"}"#.into(),
                3.0,
            ),
            (
                r#"dovetail_policy_fallbacks_total{decision="instance-selection",class="circuit-open"}"#.into(),
                1.0,
            ),
            (
                r#"dovetail_policy_circuit_breaker_state{decision="instance-selection"}"#.into(),
                1.0,
            ),
            (
                r#"dovetail_policy_circuit_breaker_state{decision="consolidation-scoring"}"#.into(),
                0.0,
            ),
            (
                r#"dovetail_policy_latency_seconds_count{decision="instance-selection"}"#.into(),
                5.0,
            ),
            (
                r#"dovetail_policy_reloads_total{decision="instance-selection",outcome="accepted"}"#.into(),
                1.0,
            ),
            (
                r#"dovetail_policy_reloads_total{decision="consolidation-scoring",outcome="refused"}"#.into(),
                1.0,
            ),
            (
                r#"dovetail_policy_shadow_disagreements_total{decision="consolidation-scoring"}"#.into(),
                1.0,
            ),
        ] {
            assert_eq!(value(&text, &series), Some(want), "{series} in\n{text}");
        }
        // Nothing new happened: looking again adds nothing.
        m.observe_policy_host(&host);
        assert_eq!(m.encode(), text);
    }

    #[test]
    fn scheduling_durations_use_karpenters_buckets() {
        let m = Metrics::new();
        m.scheduling_duration(0.3);
        let text = m.encode();
        assert!(
            text.contains("# TYPE karpenter_scheduler_scheduling_duration_seconds histogram\n"),
            "{text}"
        );
        assert!(text.contains("# HELP karpenter_scheduler_scheduling_duration_seconds How long scheduling simulations take, in seconds.\n"));
        assert_eq!(
            value(
                &text,
                r#"karpenter_scheduler_scheduling_duration_seconds_bucket{controller="provisioner",le="0.35"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                r#"karpenter_scheduler_scheduling_duration_seconds_bucket{controller="provisioner",le="0.25"}"#
            ),
            Some(0.0)
        );
    }

    #[test]
    fn interruption_queue_metrics_are_karpenters() {
        use dovetail_aws::interruption::InterruptionMetrics;
        let m = Metrics::new();
        m.received("spot_interrupted");
        m.received("spot_interrupted");
        m.received("no_op");
        m.deleted();
        m.deleted();
        m.deleted();
        m.latency(2.2);
        m.malformed();
        let text = m.encode();
        for (series, want) in [
            (
                r#"karpenter_interruption_received_messages_total{message_type="spot_interrupted"}"#,
                2.0,
            ),
            (
                r#"karpenter_interruption_received_messages_total{message_type="no_op"}"#,
                1.0,
            ),
            ("karpenter_interruption_deleted_messages_total", 3.0),
            (
                r#"karpenter_interruption_message_queue_duration_seconds_bucket{le="2.5"}"#,
                1.0,
            ),
            (
                r#"karpenter_interruption_message_queue_duration_seconds_bucket{le="2"}"#,
                0.0,
            ),
            (
                "karpenter_interruption_message_queue_duration_seconds_count",
                1.0,
            ),
            ("dovetail_interruption_malformed_messages_total", 1.0),
        ] {
            assert_eq!(value(&text, series), Some(want), "{series} in\n{text}");
        }
    }
}
