//! One disruption pass: which nodes to remove or replace, and why.
//!
//! Karpenter's order, one method acting per pass: emptiness, drift,
//! multi-node consolidation, single-node consolidation; expiration is
//! forceful and outside budgets. Every fit check is a what-if solve of the
//! provisioning engine over the cluster without the candidates, so the
//! constraints are exactly the scheduler's. The consolidation-scoring port
//! ranks candidates and approves each proposed move.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use crate::catalog::CapacityType;
use crate::labels;
use crate::model::{ConsolidationPolicy, Node, NodePool, Pod, PodKey, label};
use crate::policy::ConsolidationScorer;
use crate::policy::consolidate::pod_disruption_cost;
use crate::policy::types::{
    CandidateTable, ConsolidationContext, Dictionary, NodePoolStats, ProposedMove,
};
use crate::requirements::Requirements;
use crate::scheduler::{DictionaryIndex, NodeClaimPlan, Plan, Prepared, Snapshot, solve_without};
use crate::sym::Sym;

use super::balanced::PoolPolicies;
use super::budgets::{BudgetReport, DisruptionReason, PoolCounts, budget_report};

/// Karpenter's single-node spot-to-spot rule: at least this many cheaper
/// types, and the current one not among them.
pub const SPOT_TO_SPOT_TYPES: usize = 15;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Karpenter's `SpotToSpotConsolidation` feature gate (off by default).
    pub spot_to_spot: bool,
    /// Most candidates multi-node consolidation considers at once.
    pub max_multi_node: usize,
    /// Single-node consolidation computes every candidate's move before
    /// asking the policy (benchmarks), instead of stopping at the first
    /// batch with an approved one. The command chosen is the same.
    pub evaluate_all: bool,
    /// Single-node consolidation looks only at these nodes: the caller
    /// knows the others had no approved move against the same cluster
    /// (e.g. the cluster is unchanged since such a pass, and these nodes
    /// have just become consolidatable). `None`: every candidate.
    pub single_node_only: Option<Vec<Sym>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            spot_to_spot: false,
            max_multi_node: 100,
            evaluate_all: false,
            single_node_only: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Method {
    Expiration,
    Emptiness,
    Drift,
    MultiNodeConsolidation,
    SingleNodeConsolidation,
}

/// A decision to carry out: remove `nodes`, launching `replacements` first.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Command {
    pub method: Method,
    /// `Expired`, `Empty`, `Drifted` or `Underutilized`.
    pub reason: &'static str,
    pub nodes: Vec<Sym>,
    #[serde(skip)]
    pub node_indices: Vec<usize>,
    pub replacements: Vec<NodeClaimPlan>,
    pub savings_per_hour: f64,
    pub pods_evicted: Vec<PodKey>,
    /// `name@version` of the policy that approved it (or `engine`).
    pub decided_by: String,
    pub policy_reason: String,
}

/// A node left out of disruption, with a reason fit for a Kubernetes Event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exclusion {
    pub node: Sym,
    pub reason: String,
}

/// What one pass found and decided.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pass {
    pub commands: Vec<Command>,
    pub exclusions: Vec<Exclusion>,
    /// Candidates whose move was computed (fit-checked).
    pub candidates_evaluated: usize,
    /// Moves the policy rejected: the nodes and its reason.
    pub rejected: Vec<(Vec<Sym>, String)>,
    /// Invalid budgets (their NodePools were failed closed).
    pub budget_errors: Vec<String>,
}

/// A consolidation candidate.
#[derive(Debug, Clone)]
struct Candidate {
    node: usize,
    pool: usize,
    /// Pods that would have to move (not DaemonSet pods).
    pods: Vec<Pod>,
    price: f64,
    capacity_type: CapacityType,
    instance_type: Sym,
    zone: Sym,
    disruption_cost: f64,
    consolidatable: bool,
    drift: Option<String>,
}

/// Parses a Go duration (`90s`, `5m`, `1h30m`, `1.5h`).
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

/// Whether `pod`'s `karpenter.sh/do-not-disrupt` protects it at `now`:
/// `"true"`, or a duration it has not yet run for. Other values are ignored,
/// as Karpenter ignores them.
fn protected_pod(pod: &Pod, now: u64) -> bool {
    // By text: this runs for every pod, and interning takes a global lock.
    let value = pod
        .annotations
        .iter()
        .find(|(k, _)| k.as_str() == labels::DO_NOT_DISRUPT)
        .map(|&(_, v)| v);
    match value {
        Some(v) if v.as_str() == "true" => true,
        Some(v) => parse_go_duration(v.as_str())
            .is_some_and(|d| now.saturating_sub(pod.started_at) < d.as_secs()),
        None => false,
    }
}

fn reschedulable(pod: &Pod) -> bool {
    pod.daemon_set.is_none()
}

/// The reason a node cannot be disrupted at all, if any.
fn blocked(snapshot: &Snapshot, node: &Node, now: u64) -> Option<String> {
    if label(&node.annotations, Sym::new(labels::DO_NOT_DISRUPT))
        .is_some_and(|v| v.as_str() == "true")
    {
        return Some(format!(
            "node has annotation {}=true",
            labels::DO_NOT_DISRUPT
        ));
    }
    if node.nominated {
        return Some("node is nominated for pending pods".into());
    }
    for pod in node.pods.iter().filter(|p| reschedulable(p)) {
        if protected_pod(pod, now) {
            return Some(format!(
                "pod {} has annotation {}",
                pod.key(),
                labels::DO_NOT_DISRUPT
            ));
        }
        let pdbs: Vec<_> = snapshot.pdbs.iter().filter(|b| b.covers(pod)).collect();
        if pdbs.len() > 1 {
            return Some(format!(
                "pod {} is covered by {} PodDisruptionBudgets, so it cannot be evicted",
                pod.key(),
                pdbs.len()
            ));
        }
        if let Some(b) = pdbs.first()
            && b.disruptions_allowed <= 0
        {
            return Some(format!(
                "PodDisruptionBudget {}/{} prevents evicting pod {}",
                b.namespace,
                b.name,
                pod.key()
            ));
        }
    }
    None
}

/// What drift checks against, computed once per NodePool and pass.
struct PoolFacts {
    hash: u64,
    requirements: Option<Requirements>,
}

impl PoolFacts {
    fn new(pool: &NodePool) -> Self {
        Self {
            hash: pool.template_hash(),
            requirements: Requirements::from_terms(&pool.requirements).ok(),
        }
    }
}

/// Why a node has drifted from its NodePool, if it has.
fn drift(pool: &NodePool, facts: &PoolFacts, node: &Node) -> Option<String> {
    if let Some(h) = node.node_pool_hash
        && h != facts.hash
    {
        return Some(format!("NodePool `{}` template changed", pool.name));
    }
    let reqs = facts.requirements.as_ref()?;
    let node_labels = Requirements::from_labels(node.labels.iter().map(|(k, v)| (k, v)));
    if let Err(e) = node_labels.compatible(reqs, false, "the node") {
        return Some(format!(
            "no longer meets NodePool `{}` requirements: {e}",
            pool.name
        ));
    }
    None
}

/// Runs one disruption pass over `snapshot` at `now` (Unix seconds).
pub fn disrupt(
    snapshot: &Snapshot,
    now: u64,
    scorer: &dyn ConsolidationScorer,
    settings: &Settings,
) -> Pass {
    let prepared = Prepared::reusable(snapshot);
    Engine::new(snapshot, &prepared, now, scorer, settings).run()
}

/// As [`disrupt`], with `prepared` made by [`Prepared::reusable`] from this
/// same `snapshot`: a caller that passes over an unchanged cluster again
/// (a simulator) compiles it once.
pub fn disrupt_prepared(
    snapshot: &Snapshot,
    prepared: &Prepared,
    now: u64,
    scorer: &dyn ConsolidationScorer,
    settings: &Settings,
) -> Pass {
    Engine::new(snapshot, prepared, now, scorer, settings).run()
}

struct Engine<'a> {
    snapshot: &'a Snapshot,
    now: u64,
    scorer: PoolPolicies<'a>,
    settings: &'a Settings,
    prepared: &'a Prepared,
    candidates: Vec<Candidate>,
    budgets: Vec<BudgetReport>,
    /// Nodes this pass expires: gone for every other decision.
    expiring: Vec<usize>,
    /// Pods of nodes already on their way out (marked for deletion or
    /// expiring): every what-if must find them a place too, as Karpenter's
    /// simulation does, or two moves would count on the same room.
    deleting_pods: Vec<Pod>,
    pass: Pass,
}

/// A proposed move and its replacement NodeClaims, or why there is none.
type MoveResult = Result<(ProposedMove, Vec<NodeClaimPlan>), String>;

/// The outcome of a what-if without some nodes.
enum Fit {
    /// Every pod fits on the remaining nodes.
    Delete,
    /// Every pod fits with these new NodeClaims.
    Replace(Vec<NodeClaimPlan>),
    No(String),
}

impl<'a> Engine<'a> {
    fn new(
        snapshot: &'a Snapshot,
        prepared: &'a Prepared,
        now: u64,
        scorer: &'a dyn ConsolidationScorer,
        settings: &'a Settings,
    ) -> Self {
        Engine {
            snapshot,
            now,
            scorer: PoolPolicies::new(scorer, &snapshot.node_pools),
            settings,
            prepared,
            candidates: Vec::new(),
            budgets: Vec::new(),
            expiring: Vec::new(),
            deleting_pods: Vec::new(),
            pass: Pass::default(),
        }
    }

    fn pool_index(&self, node: &Node) -> Option<usize> {
        let name = node.node_pool?;
        self.snapshot.node_pools.iter().position(|p| p.name == name)
    }

    fn run(mut self) -> Pass {
        let s = self.snapshot;
        // Expiration is forceful and independent of the methods below, which
        // then see the expiring nodes as already going.
        self.expire();
        self.expiring = self
            .pass
            .commands
            .iter()
            .flat_map(|c| c.node_indices.iter().copied())
            .collect();
        self.deleting_pods = s
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| n.marked_for_deletion || self.expiring.contains(i))
            .flat_map(|(_, n)| n.pods.iter().filter(|p| reschedulable(p)).cloned())
            .collect();
        // Budgets per NodePool.
        for pool in &s.node_pools {
            let mut counts = PoolCounts::default();
            for (i, n) in s.nodes.iter().enumerate() {
                if n.node_pool == Some(pool.name) {
                    counts.add_node(n.ready, n.marked_for_deletion || self.expiring.contains(&i));
                }
            }
            let report = budget_report(pool, counts, self.now);
            if let Some(e) = &report.error {
                self.pass.budget_errors.push(e.to_string());
            }
            self.budgets.push(report);
        }
        self.collect_candidates();
        let _ = self.emptiness() || self.drift() || self.multi_node() || self.single_node();
        self.pass
    }

    fn expire(&mut self) {
        let s = self.snapshot;
        for (i, node) in s.nodes.iter().enumerate() {
            if node.marked_for_deletion {
                continue;
            }
            let Some(p) = self.pool_index(node) else {
                continue;
            };
            let Some(expire_after) = s.node_pools[p].expire_after else {
                continue;
            };
            if node.created_at + expire_after.as_secs() <= self.now {
                self.pass.commands.push(Command {
                    method: Method::Expiration,
                    reason: "Expired",
                    nodes: vec![node.name],
                    node_indices: vec![i],
                    replacements: Vec::new(),
                    savings_per_hour: 0.0,
                    pods_evicted: node
                        .pods
                        .iter()
                        .filter(|p| reschedulable(p))
                        .map(Pod::key)
                        .collect(),
                    decided_by: "engine".into(),
                    policy_reason: format!(
                        "older than NodePool `{}` expireAfter {}s",
                        s.node_pools[p].name,
                        expire_after.as_secs()
                    ),
                });
            }
        }
    }

    fn collect_candidates(&mut self) {
        let s = self.snapshot;
        let ct_key = Sym::new(labels::CAPACITY_TYPE);
        let it_key = Sym::new(labels::INSTANCE_TYPE);
        let zone_key = Sym::new(labels::ZONE);
        let facts: Vec<PoolFacts> = s.node_pools.iter().map(PoolFacts::new).collect();
        for (i, node) in s.nodes.iter().enumerate() {
            if node.marked_for_deletion || !node.initialized || self.expiring.contains(&i) {
                continue;
            }
            let Some(p) = self.pool_index(node) else {
                continue;
            };
            let pool = &s.node_pools[p];
            if let Some(why) = blocked(s, node, self.now) {
                self.pass.exclusions.push(Exclusion {
                    node: node.name,
                    reason: why,
                });
                continue;
            }
            let (Some(instance_type), Some(zone), Some(capacity_type)) = (
                label(&node.labels, it_key),
                label(&node.labels, zone_key),
                label(&node.labels, ct_key).and_then(|c| CapacityType::from_label(c.as_str())),
            ) else {
                self.pass.exclusions.push(Exclusion {
                    node: node.name,
                    reason: "node lacks its instance-type, zone or capacity-type label".into(),
                });
                continue;
            };
            let consolidatable = match pool.disruption.consolidate_after {
                None => false,
                Some(after) => self.now.saturating_sub(node.last_pod_event) >= after.as_secs(),
            };
            let pods: Vec<Pod> = node
                .pods
                .iter()
                .filter(|p| reschedulable(p))
                .cloned()
                .collect();
            let disruption_cost = pods
                .iter()
                .map(|p| pod_disruption_cost(p.deletion_cost(), p.priority))
                .sum();
            self.candidates.push(Candidate {
                node: i,
                pool: p,
                pods,
                price: node.price_per_hour,
                capacity_type,
                instance_type,
                zone,
                disruption_cost,
                consolidatable,
                drift: drift(pool, &facts[p], node),
            });
        }
    }

    fn allowed(&self, pool: usize, reason: DisruptionReason) -> u32 {
        self.budgets[pool].allowed(reason)
    }

    /// The policy's context over `rows` (candidate indices).
    fn context(&self, rows: &[usize], reason: DisruptionReason) -> ConsolidationContext {
        let s = self.snapshot;
        let mut index = DictionaryIndex::default();
        let mut node_names = Dictionary::default();
        let mut c = CandidateTable::default();
        for p in &s.node_pools {
            index.node_pool(p.name);
        }
        for &r in rows {
            let cand = &self.candidates[r];
            let node = &s.nodes[cand.node];
            let it = index.instance_type(&s.catalog, cand.instance_type);
            let zone = index.zone(cand.zone);
            let used = node.pods.iter().fold((0i64, 0i64), |(c, m), p| {
                (c + p.requests.cpu, m + p.requests.memory)
            });
            let share = |u: i64, a: i64| {
                if a > 0 {
                    (u as f64 / a as f64) as f32
                } else {
                    0.0
                }
            };
            c.node.push(node_names.push(node.name.as_str()));
            c.node_pool.push(cand.pool as u16);
            c.instance_type.push(it);
            c.capacity_type.push(cand.capacity_type.code());
            c.zone.push(zone);
            c.price_per_hour.push(cand.price);
            c.age_seconds.push(self.now.saturating_sub(node.created_at));
            c.expire_after_seconds.push(
                s.node_pools[cand.pool]
                    .expire_after
                    .map_or(0, |d| d.as_secs()),
            );
            c.cpu_utilisation.push(share(used.0, node.allocatable.cpu));
            c.memory_utilisation
                .push(share(used.1, node.allocatable.memory));
            c.pods.push(cand.pods.len() as u32);
            c.disruption_cost.push(cand.disruption_cost);
            c.reason.push(reason.code());
        }
        let mut stats = NodePoolStats::default();
        for p in &s.node_pools {
            let nodes: Vec<&Node> = s
                .nodes
                .iter()
                .filter(|n| n.node_pool == Some(p.name))
                .collect();
            stats.nodes.push(nodes.len() as u32);
            stats
                .cost_per_hour
                .push(nodes.iter().map(|n| n.price_per_hour).sum());
            stats.disruption_cost.push(
                nodes
                    .iter()
                    .flat_map(|n| n.pods.iter().filter(|p| reschedulable(p)))
                    .map(|p| pod_disruption_cost(p.deletion_cost(), p.priority))
                    .sum(),
            );
        }
        ConsolidationContext {
            now_ms: self.now * 1000,
            seed: self.now,
            dictionaries: index.dicts,
            node_names,
            candidates: c,
            node_pools: stats,
        }
    }

    /// `rows` in the policy's order; rows it scores `None` are dropped.
    fn ranked(
        &mut self,
        rows: Vec<usize>,
        reason: DisruptionReason,
    ) -> (Vec<usize>, ConsolidationContext) {
        let ctx = self.context(&rows, reason);
        let ranking = self.scorer.rank(&ctx).value;
        let mut scored: Vec<(f64, Sym, usize)> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, &r)| {
                let score = ranking.get(i).copied().flatten()?;
                Some((score, self.snapshot.nodes[self.candidates[r].node].name, r))
            })
            .collect();
        scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        // Candidate indices (not positions in `rows`): callers index
        // `self.candidates` with them.
        (scored.into_iter().map(|s| s.2).collect(), ctx)
    }

    /// What-if: the pods of `cands` rescheduled without their nodes.
    fn fit(&self, cands: &[usize], price_cap: Option<f64>) -> Fit {
        let removed: Vec<usize> = cands
            .iter()
            .map(|&c| self.candidates[c].node)
            .chain(self.expiring.iter().copied())
            .collect();
        let mut pods: Vec<Pod> = cands
            .iter()
            .flat_map(|&c| self.candidates[c].pods.iter().cloned())
            .collect();
        if pods.is_empty() {
            return Fit::Delete;
        }
        pods.extend(self.deleting_pods.iter().cloned());
        let plan: Plan = solve_without(self.snapshot, self.prepared, &pods, &removed, price_cap);
        if let Some(u) = plan.unschedulable.first() {
            return Fit::No(format!(
                "pod {} would not fit elsewhere: {}",
                u.pod, u.reason
            ));
        }
        if plan.node_claims.is_empty() {
            Fit::Delete
        } else if plan.node_claims.iter().any(|c| c.offerings.is_empty()) {
            Fit::No("no replacement is cheaper".into())
        } else {
            Fit::Replace(plan.node_claims)
        }
    }

    /// A consolidation move for `cands`: delete, or replace by one strictly
    /// cheaper NodeClaim. `multi` relaxes the spot-to-spot type count rule.
    fn consolidation_move(&self, cands: &[usize], multi: bool) -> MoveResult {
        let price: f64 = cands.iter().map(|&c| self.candidates[c].price).sum();
        let evicted: u32 = cands
            .iter()
            .map(|&c| self.candidates[c].pods.len() as u32)
            .sum();
        let cost: f64 = cands
            .iter()
            .map(|&c| self.candidates[c].disruption_cost)
            .sum();
        let all_spot = cands
            .iter()
            .all(|&c| self.candidates[c].capacity_type == CapacityType::Spot);
        let any_on_demand = cands
            .iter()
            .any(|&c| self.candidates[c].capacity_type == CapacityType::OnDemand);
        let own_types: Vec<Sym> = cands
            .iter()
            .map(|&c| self.candidates[c].instance_type)
            .collect();
        let mv = |replacement: Option<f64>| ProposedMove {
            reason: DisruptionReason::Underutilized.code(),
            removed: Vec::new(),
            replacement_price_per_hour: replacement,
            savings_per_hour: price - replacement.unwrap_or(0.0),
            pods_evicted: evicted,
            disruption_cost: cost,
        };
        match self.fit(cands, Some(price)) {
            Fit::No(why) => Err(why),
            Fit::Delete => Ok((mv(None), Vec::new())),
            Fit::Replace(claims) if claims.len() > 1 => Err(format!(
                "its pods need {} new nodes; consolidation never replaces one node by several",
                claims.len()
            )),
            Fit::Replace(mut claims) => {
                let mut claim = claims.remove(0);
                // Only strictly cheaper offerings; for several nodes, never
                // one of the same type as a removed node.
                claim.offerings.retain(|o| {
                    o.price < price && !(multi && own_types.contains(&o.instance_type))
                });
                if claim.offerings.is_empty() {
                    return Err(format!("no replacement is cheaper than ${price:.4}/h"));
                }
                let spot_offered = claim
                    .offerings
                    .iter()
                    .any(|o| o.capacity_type == CapacityType::Spot);
                if all_spot && spot_offered {
                    claim
                        .offerings
                        .retain(|o| o.capacity_type == CapacityType::Spot);
                    if !self.settings.spot_to_spot {
                        return Err("spot-to-spot consolidation is disabled".into());
                    }
                    let mut cheaper: Vec<Sym> = Vec::new();
                    for o in &claim.offerings {
                        if !cheaper.contains(&o.instance_type) {
                            cheaper.push(o.instance_type);
                        }
                    }
                    if !multi {
                        if cheaper.len() < SPOT_TO_SPOT_TYPES {
                            return Err(format!(
                                "spot-to-spot needs at least {SPOT_TO_SPOT_TYPES} cheaper instance types, found {}",
                                cheaper.len()
                            ));
                        }
                        if cheaper[..SPOT_TO_SPOT_TYPES].contains(&own_types[0]) {
                            return Err(format!(
                                "spot-to-spot: {} is already among the {SPOT_TO_SPOT_TYPES} cheapest types",
                                own_types[0]
                            ));
                        }
                    }
                    let keep: Vec<Sym> = cheaper.into_iter().take(SPOT_TO_SPOT_TYPES).collect();
                    claim.offerings.retain(|o| keep.contains(&o.instance_type));
                } else if any_on_demand && spot_offered {
                    // On-demand to [on-demand, spot]: prices were compared
                    // assuming spot, so launch spot only.
                    claim
                        .offerings
                        .retain(|o| o.capacity_type == CapacityType::Spot);
                }
                let mut types: Vec<Sym> = Vec::new();
                for o in &claim.offerings {
                    if !types.contains(&o.instance_type) {
                        types.push(o.instance_type);
                    }
                }
                claim.instance_types = types;
                let replacement = claim.offerings[0].price;
                Ok((mv(Some(replacement)), vec![claim]))
            }
        }
    }

    fn command(
        &self,
        method: Method,
        reason: DisruptionReason,
        cands: &[usize],
        replacements: Vec<NodeClaimPlan>,
        savings: f64,
        (decided_by, policy_reason): (String, String),
    ) -> Command {
        let s = self.snapshot;
        Command {
            method,
            reason: reason.name(),
            nodes: cands
                .iter()
                .map(|&c| s.nodes[self.candidates[c].node].name)
                .collect(),
            node_indices: cands.iter().map(|&c| self.candidates[c].node).collect(),
            replacements,
            savings_per_hour: savings,
            pods_evicted: cands
                .iter()
                .flat_map(|&c| self.candidates[c].pods.iter().map(Pod::key))
                .collect(),
            decided_by,
            policy_reason,
        }
    }

    /// Deletes empty nodes, as many as the Empty budgets allow.
    fn emptiness(&mut self) -> bool {
        let rows: Vec<usize> = (0..self.candidates.len())
            .filter(|&c| self.candidates[c].consolidatable && self.candidates[c].pods.is_empty())
            .collect();
        if rows.is_empty() {
            return false;
        }
        let (order, ctx) = self.ranked(rows.clone(), DisruptionReason::Empty);
        let moves: Vec<ProposedMove> = order
            .iter()
            .map(|&c| {
                let row = rows.iter().position(|&r| r == c).unwrap_or(0) as u32;
                ProposedMove {
                    reason: DisruptionReason::Empty.code(),
                    removed: vec![row],
                    replacement_price_per_hour: None,
                    savings_per_hour: self.candidates[c].price,
                    pods_evicted: 0,
                    disruption_cost: 0.0,
                }
            })
            .collect();
        self.pass.candidates_evaluated += order.len();
        let decided = self.scorer.approve(&ctx, &moves);
        let mut used: HashMap<usize, u32> = HashMap::new();
        let mut chosen = Vec::new();
        let mut savings = 0.0;
        let mut reasons = Vec::new();
        for (&c, verdict) in order.iter().zip(&decided.value) {
            let pool = self.candidates[c].pool;
            if !verdict.approve {
                self.pass.rejected.push((
                    vec![self.snapshot.nodes[self.candidates[c].node].name],
                    verdict.reason.clone(),
                ));
                continue;
            }
            let n = used.entry(pool).or_default();
            if *n >= self.allowed(pool, DisruptionReason::Empty) {
                continue;
            }
            *n += 1;
            savings += self.candidates[c].price;
            chosen.push(c);
            reasons.push(verdict.reason.clone());
        }
        if chosen.is_empty() {
            return false;
        }
        let cmd = self.command(
            Method::Emptiness,
            DisruptionReason::Empty,
            &chosen,
            Vec::new(),
            savings,
            (
                decided.by.clone(),
                reasons.first().cloned().unwrap_or_default(),
            ),
        );
        self.pass.commands.push(cmd);
        true
    }

    /// Replaces the first drifted node whose pods can move (empty drifted
    /// nodes all at once), within the Drifted budgets.
    fn drift(&mut self) -> bool {
        let mut drifted: Vec<usize> = (0..self.candidates.len())
            .filter(|&c| self.candidates[c].drift.is_some())
            .collect();
        if drifted.is_empty() {
            return false;
        }
        // Cheapest to disrupt first, as Karpenter orders candidates.
        drifted.sort_by(|&a, &b| {
            let (x, y) = (&self.candidates[a], &self.candidates[b]);
            x.disruption_cost.total_cmp(&y.disruption_cost).then(
                self.snapshot.nodes[x.node]
                    .name
                    .cmp(&self.snapshot.nodes[y.node].name),
            )
        });
        let mut used: HashMap<usize, u32> = HashMap::new();
        let mut empty = Vec::new();
        for &c in &drifted {
            let pool = self.candidates[c].pool;
            let n = used.entry(pool).or_default();
            if self.candidates[c].pods.is_empty()
                && *n < self.allowed(pool, DisruptionReason::Drifted)
            {
                *n += 1;
                empty.push(c);
            }
        }
        if !empty.is_empty() {
            let why = self.candidates[empty[0]].drift.clone().unwrap_or_default();
            let cmd = self.command(
                Method::Drift,
                DisruptionReason::Drifted,
                &empty,
                Vec::new(),
                0.0,
                ("engine".into(), why),
            );
            self.pass.commands.push(cmd);
            return true;
        }
        for &c in &drifted {
            let pool = self.candidates[c].pool;
            if self.allowed(pool, DisruptionReason::Drifted) == 0 {
                continue;
            }
            self.pass.candidates_evaluated += 1;
            let replacements = match self.fit(&[c], None) {
                Fit::No(_) => continue,
                Fit::Delete => Vec::new(),
                Fit::Replace(claims) => claims,
            };
            let why = self.candidates[c].drift.clone().unwrap_or_default();
            let cmd = self.command(
                Method::Drift,
                DisruptionReason::Drifted,
                &[c],
                replacements,
                0.0,
                ("engine".into(), why),
            );
            self.pass.commands.push(cmd);
            return true;
        }
        false
    }

    /// Candidates for underutilisation moves, in the policy's order, within
    /// budgets.
    fn underutilized(&mut self) -> (Vec<usize>, Vec<usize>, ConsolidationContext) {
        let rows: Vec<usize> = (0..self.candidates.len())
            .filter(|&c| {
                let cand = &self.candidates[c];
                cand.consolidatable
                    && self.snapshot.node_pools[cand.pool]
                        .disruption
                        .consolidation_policy
                        != ConsolidationPolicy::WhenEmpty
                    && self.allowed(cand.pool, DisruptionReason::Underutilized) > 0
            })
            .collect();
        let (order, ctx) = self.ranked(rows.clone(), DisruptionReason::Underutilized);
        (rows, order, ctx)
    }

    fn approve_one(
        &mut self,
        ctx: &ConsolidationContext,
        rows: &[usize],
        cands: &[usize],
        mut mv: ProposedMove,
    ) -> Option<(String, String)> {
        mv.removed = cands
            .iter()
            .map(|c| rows.iter().position(|r| r == c).unwrap_or(0) as u32)
            .collect();
        let decided = self.scorer.approve(ctx, &[mv]);
        let verdict = decided.value.into_iter().next()?;
        if verdict.approve {
            Some((decided.by, verdict.reason))
        } else {
            let names = cands
                .iter()
                .map(|&c| self.snapshot.nodes[self.candidates[c].node].name)
                .collect();
            self.pass.rejected.push((names, verdict.reason));
            None
        }
    }

    /// Karpenter's multi-node consolidation: the largest prefix (of at most
    /// 100, at least 2) of the ranked candidates whose pods fit on the rest
    /// plus at most one cheaper node, found by binary search.
    fn multi_node(&mut self) -> bool {
        let (rows, order, ctx) = self.underutilized();
        let mut used: HashMap<usize, u32> = HashMap::new();
        let mut within: Vec<usize> = Vec::new();
        for &c in &order {
            if within.len() >= self.settings.max_multi_node {
                break;
            }
            let pool = self.candidates[c].pool;
            let n = used.entry(pool).or_default();
            if *n < self.allowed(pool, DisruptionReason::Underutilized) {
                *n += 1;
                within.push(c);
            }
        }
        if within.len() < 2 {
            return false;
        }
        self.pass.candidates_evaluated += within.len();
        let (mut lo, mut hi) = (2usize, within.len());
        let mut best = None;
        while lo <= hi {
            let mid = (lo + hi) / 2;
            match self.consolidation_move(&within[..mid], true) {
                Ok((mv, claims)) if mv.savings_per_hour > 0.0 => {
                    best = Some((mid, mv, claims));
                    lo = mid + 1;
                }
                _ => hi = mid - 1,
            }
        }
        let Some((n, mv, claims)) = best else {
            return false;
        };
        let savings = mv.savings_per_hour;
        let prefix = within[..n].to_vec();
        let Some((by, why)) = self.approve_one(&ctx, &rows, &prefix, mv) else {
            return false;
        };
        let cmd = self.command(
            Method::MultiNodeConsolidation,
            DisruptionReason::Underutilized,
            &prefix,
            claims,
            savings,
            (by, why),
        );
        self.pass.commands.push(cmd);
        true
    }

    /// Candidates' best moves in rank order, approved by the policy batch by
    /// batch; the first approved in rank order acts. Batches start at a few
    /// per core and double, so a pass that finds a move early stops early,
    /// and one that finds none still makes few policy calls.
    /// [`Settings::evaluate_all`] sends every move in one call instead.
    fn single_node(&mut self) -> bool {
        let (rows, mut order, ctx) = self.underutilized();
        if let Some(only) = &self.settings.single_node_only {
            let s = self.snapshot;
            order.retain(|&c| only.contains(&s.nodes[self.candidates[c].node].name));
        }
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut batch = if self.settings.evaluate_all {
            order.len()
        } else {
            4 * workers
        };
        let mut start = 0;
        while start < order.len() {
            let end = (start + batch.max(1)).min(order.len());
            if self.single_node_batch(&rows, &order[start..end], &ctx, workers) {
                return true;
            }
            start = end;
            batch *= 2;
        }
        false
    }

    fn single_node_batch(
        &mut self,
        rows: &[usize],
        order: &[usize],
        ctx: &ConsolidationContext,
        workers: usize,
    ) -> bool {
        // Every candidate's what-if is independent: spread them over the
        // machine's cores, keeping rank order in the results.
        let workers = workers.min(order.len().max(1));
        let chunk = order.len().div_ceil(workers.max(1)).max(1);
        let this = &*self;
        let results: Vec<(usize, MoveResult)> = std::thread::scope(|scope| {
            let handles: Vec<_> = order
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|&c| (c, this.consolidation_move(&[c], false)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        self.pass.candidates_evaluated += results.len();
        let mut moves = Vec::new();
        let mut found = Vec::new();
        for (c, result) in results {
            if let Ok((mut mv, claims)) = result {
                mv.removed = vec![rows.iter().position(|&r| r == c).unwrap_or(0) as u32];
                moves.push(mv);
                found.push((c, claims));
            }
        }
        if moves.is_empty() {
            return false;
        }
        let decided = self.scorer.approve(ctx, &moves);
        for ((c, claims), (mv, verdict)) in found.into_iter().zip(moves.iter().zip(decided.value)) {
            if verdict.approve {
                let cmd = self.command(
                    Method::SingleNodeConsolidation,
                    DisruptionReason::Underutilized,
                    &[c],
                    claims,
                    mv.savings_per_hour,
                    (decided.by.clone(), verdict.reason),
                );
                self.pass.commands.push(cmd);
                return true;
            }
            self.pass.rejected.push((
                vec![self.snapshot.nodes[self.candidates[c].node].name],
                verdict.reason,
            ));
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("true"), None);
        assert_eq!(parse_go_duration(""), None);
    }
}

/// Why a command no longer holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalidated(pub String);

/// Re-checks `command` against a later `snapshot` (Karpenter waits 15 s and
/// re-simulates before acting): every node must still be a candidate (not
/// nominated, protected or gone), the budgets must still allow it, and the
/// move must still work with the same replacement.
pub fn validate(
    command: &Command,
    snapshot: &Snapshot,
    now: u64,
    scorer: &dyn ConsolidationScorer,
    settings: &Settings,
) -> Result<(), Invalidated> {
    if command.method == Method::Expiration {
        return Ok(());
    }
    let prepared = Prepared::reusable(snapshot);
    let mut engine = Engine::new(snapshot, &prepared, now, scorer, settings);
    for pool in &snapshot.node_pools {
        let mut counts = PoolCounts::default();
        for n in snapshot
            .nodes
            .iter()
            .filter(|n| n.node_pool == Some(pool.name))
        {
            counts.add_node(n.ready, n.marked_for_deletion);
        }
        engine.budgets.push(budget_report(pool, counts, now));
    }
    engine.collect_candidates();
    let mut cands = Vec::new();
    for name in &command.nodes {
        if let Some(e) = engine.pass.exclusions.iter().find(|e| e.node == *name) {
            return Err(Invalidated(format!("node {name}: {}", e.reason)));
        }
        let Some(c) = engine
            .candidates
            .iter()
            .position(|c| snapshot.nodes[c.node].name == *name)
        else {
            return Err(Invalidated(format!(
                "node {name} is gone or no longer a candidate"
            )));
        };
        cands.push(c);
    }
    let reason = DisruptionReason::from_name(command.reason)
        .ok_or_else(|| Invalidated(format!("unknown reason {}", command.reason)))?;
    let mut per_pool: HashMap<usize, u32> = HashMap::new();
    for &c in &cands {
        *per_pool.entry(engine.candidates[c].pool).or_default() += 1;
    }
    for (&pool, &n) in &per_pool {
        let allowed = engine.allowed(pool, reason);
        if n > allowed {
            return Err(Invalidated(format!(
                "NodePool `{}` now allows {allowed} {reason} disruptions, the command needs {n}",
                snapshot.node_pools[pool].name
            )));
        }
    }
    let replacements = match command.method {
        Method::Drift => match engine.fit(&cands, None) {
            Fit::No(why) => return Err(Invalidated(why)),
            Fit::Delete => Vec::new(),
            Fit::Replace(claims) => claims,
        },
        Method::Emptiness if cands.iter().any(|&c| !engine.candidates[c].pods.is_empty()) => {
            return Err(Invalidated("a node is no longer empty".into()));
        }
        Method::Emptiness => Vec::new(),
        _ => {
            let multi = cands.len() > 1;
            engine
                .consolidation_move(&cands, multi)
                .map_err(Invalidated)?
                .1
        }
    };
    if replacements.len() != command.replacements.len() {
        return Err(Invalidated(format!(
            "the move now needs {} replacement nodes instead of {}",
            replacements.len(),
            command.replacements.len()
        )));
    }
    for (old, new) in command.replacements.iter().zip(&replacements) {
        if let Some(t) = old
            .instance_types
            .iter()
            .find(|t| !new.instance_types.contains(t))
        {
            return Err(Invalidated(format!(
                "the replacement changed: {t} is no longer a valid option"
            )));
        }
    }
    Ok(())
}
