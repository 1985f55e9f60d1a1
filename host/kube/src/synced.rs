//! The synced gate: no provisioning or disruption until every watched kind
//! has been listed and NodeClaims and Nodes agree.
//!
//! Karpenter's cluster state is synced when it holds every NodeClaim and
//! Node its caches hold. Here the index is the cache, so what remains is
//! that every kind's latest list is complete, and that the NodeClaim and
//! Node watches, which run independently, have caught up with each other:
//!
//! - a NodeClaim (not being deleted) whose status names its node and
//!   provider ID has that Node in the index;
//! - a Node registered to a NodeClaim (`karpenter.sh/registered`, not being
//!   deleted) has a NodeClaim with its provider ID in the index.
//!
//! A disagreement that lasts longer than watch lag can explain
//! ([`Synced::with_agreement_grace`], 1 minute by default) is the cluster's
//! own state, not lag — a Node deleted by hand, its finalizer forced away —
//! and stops holding the gate: it is logged, and garbage collection and the
//! termination deal with it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use dovetail_core::model::label;
use dovetail_core::nodeclaim::REGISTERED_LABEL;
use dovetail_core::sym::Sym;

use crate::index::Index;
use crate::observed::{Change, WatchedKind};

/// How long a NodeClaim/Node disagreement holds the gate by default.
pub const DEFAULT_AGREEMENT_GRACE: Duration = Duration::from_secs(60);

/// Tracks each kind's lists and decides whether the index can be decided
/// on.
#[derive(Debug, Clone)]
pub struct Synced {
    /// Per kind: listed since its last relist began.
    listed: BTreeMap<WatchedKind, bool>,
    /// Disagreements and when each was first seen (Unix ms).
    disagreements: BTreeMap<Disagreement, u64>,
    /// Disagreements already logged as lasting.
    logged: BTreeSet<Disagreement>,
    grace_ms: u64,
    why_not: Option<NotSynced>,
}

/// Why the gate is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSynced {
    /// These kinds have not been listed since their watch started or
    /// relisted.
    NotListed(Vec<WatchedKind>),
    /// The NodeClaim and Node watches disagree.
    Disagree(Disagreement),
}

/// One way NodeClaims and Nodes disagree.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Disagreement {
    /// The NodeClaim names a node the index does not hold.
    NodeMissing {
        claim: String,
        node: String,
        provider_id: String,
    },
    /// The registered Node's NodeClaim is not in the index.
    ClaimMissing { node: String, provider_id: String },
}

impl fmt::Display for NotSynced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotSynced::NotListed(kinds) => {
                let names: Vec<&str> = kinds.iter().map(|k| k.plural()).collect();
                write!(f, "waiting for the list of {}", names.join(", "))
            }
            NotSynced::Disagree(d) => d.fmt(f),
        }
    }
}

impl fmt::Display for Disagreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disagreement::NodeMissing {
                claim,
                node,
                provider_id,
            } => write!(
                f,
                "NodeClaim {claim} is registered as Node {node} ({provider_id}), which has not been seen yet"
            ),
            Disagreement::ClaimMissing { node, provider_id } => write!(
                f,
                "Node {node} is registered to a NodeClaim with provider ID {provider_id}, which has not been seen yet"
            ),
        }
    }
}

impl Default for Synced {
    fn default() -> Self {
        Self::new()
    }
}

impl Synced {
    pub fn new() -> Self {
        Self {
            listed: WatchedKind::ALL.iter().map(|&k| (k, false)).collect(),
            disagreements: BTreeMap::new(),
            logged: BTreeSet::new(),
            grace_ms: DEFAULT_AGREEMENT_GRACE.as_millis() as u64,
            why_not: Some(NotSynced::NotListed(WatchedKind::ALL.to_vec())),
        }
    }

    /// How long a NodeClaim/Node disagreement holds the gate.
    pub fn with_agreement_grace(mut self, grace: Duration) -> Self {
        self.grace_ms = grace.as_millis() as u64;
        self
    }

    /// Notes a change on its way to the index: a relist closes its kind
    /// until it is listed.
    pub fn observe(&mut self, change: &Change) {
        match change {
            Change::Relisting(kind) => {
                self.listed.insert(*kind, false);
            }
            Change::Listed(kind) => {
                self.listed.insert(*kind, true);
            }
            Change::Applied(_) | Change::Deleted(_) => {}
        }
    }

    /// Whether `kind` has been listed since its last relist began.
    pub fn listed(&self, kind: WatchedKind) -> bool {
        self.listed.get(&kind).copied().unwrap_or(false)
    }

    /// Checks the gate at `now_ms` (Unix ms); [`Synced::why_not`] then
    /// tells why it is closed.
    pub fn synced(&mut self, index: &Index, now_ms: u64) -> bool {
        self.why_not = self.check(index, now_ms);
        self.why_not.is_none()
    }

    /// Why the gate was closed at the last [`Synced::synced`], for readyz
    /// and logs.
    pub fn why_not(&self) -> Option<&NotSynced> {
        self.why_not.as_ref()
    }

    fn check(&mut self, index: &Index, now_ms: u64) -> Option<NotSynced> {
        let unlisted: Vec<WatchedKind> = WatchedKind::ALL
            .into_iter()
            .filter(|k| !self.listed(*k))
            .collect();
        if !unlisted.is_empty() {
            return Some(NotSynced::NotListed(unlisted));
        }
        let found = disagreements(index);
        self.disagreements.retain(|d, _| found.contains(d));
        self.logged.retain(|d| found.contains(d));
        let mut blocking = None;
        for d in found {
            let since = *self.disagreements.entry(d.clone()).or_insert(now_ms);
            if now_ms.saturating_sub(since) < self.grace_ms {
                blocking.get_or_insert(d);
            } else if self.logged.insert(d.clone()) {
                tracing::warn!("{d}, for longer than watch lag explains: no longer waiting for it");
            }
        }
        blocking.map(NotSynced::Disagree)
    }
}

/// Every disagreement between the NodeClaims and Nodes of `index`.
fn disagreements(index: &Index) -> BTreeSet<Disagreement> {
    let state = index.state();
    let mut found = BTreeSet::new();
    for (_, claim) in state.claims() {
        if claim.deleting() {
            continue;
        }
        let (Some(node), Some(provider_id)) = (claim.status.node_name, &claim.status.provider_id)
        else {
            continue;
        };
        if state.node_by_provider_id(provider_id).is_none() && state.node_id(node).is_none() {
            found.insert(Disagreement::NodeMissing {
                claim: claim.name.to_string(),
                node: node.to_string(),
                provider_id: provider_id.clone(),
            });
        }
    }
    let registered = Sym::new(REGISTERED_LABEL);
    for (_, node) in state.nodes() {
        if node.deletion_ms.is_some() {
            continue;
        }
        let Some(provider_id) = &node.provider_id else {
            continue;
        };
        let is_registered =
            label(&node.node.labels, registered).is_some_and(|v| v.as_str() == "true");
        if is_registered && state.claim_by_provider_id(provider_id).is_none() {
            found.insert(Disagreement::ClaimMissing {
                node: node.node.name.to_string(),
                provider_id: provider_id.clone(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::observed::Observed;

    const NOW: u64 = 1_700_000_000_000;

    fn all_listed(synced: &mut Synced) {
        for kind in WatchedKind::ALL {
            synced.observe(&Change::Relisting(kind));
            synced.observe(&Change::Listed(kind));
        }
    }

    fn claim(rv: u64, registered: bool) -> Change {
        let mut status = json!({});
        if registered {
            status = json!({ "nodeName": "n1", "providerID": "aws:///us-east-1a/i-1" });
        }
        Change::Applied(Observed::NodeClaim(Box::new(
            serde_json::from_value(json!({
                "apiVersion": "karpenter.sh/v1",
                "kind": "NodeClaim",
                "metadata": { "name": "default-a", "resourceVersion": rv.to_string() },
                "spec": {
                    "nodeClassRef": { "group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default" },
                    "requirements": [],
                },
                "status": status,
            }))
            .unwrap(),
        )))
    }

    fn node(rv: u64) -> Change {
        Change::Applied(Observed::Node(Box::new(
            serde_json::from_value(json!({
                "metadata": {
                    "name": "n1", "resourceVersion": rv.to_string(),
                    "labels": { "karpenter.sh/registered": "true", "karpenter.sh/nodepool": "default" },
                },
                "spec": { "providerID": "aws:///us-east-1a/i-1" },
            }))
            .unwrap(),
        )))
    }

    #[test]
    fn closed_until_every_kind_is_listed_and_again_while_one_relists() {
        let index = Index::new();
        let mut synced = Synced::new();
        assert!(!synced.synced(&index, NOW));
        for kind in WatchedKind::ALL {
            synced.observe(&Change::Relisting(kind));
        }
        for kind in &WatchedKind::ALL[..7] {
            synced.observe(&Change::Listed(*kind));
        }
        assert!(!synced.synced(&index, NOW));
        assert_eq!(
            synced.why_not(),
            Some(&NotSynced::NotListed(vec![WatchedKind::Namespace]))
        );
        assert_eq!(
            synced.why_not().unwrap().to_string(),
            "waiting for the list of Namespaces"
        );
        synced.observe(&Change::Listed(WatchedKind::Namespace));
        assert!(synced.synced(&index, NOW));
        assert_eq!(synced.why_not(), None);

        synced.observe(&Change::Relisting(WatchedKind::Pod));
        assert!(!synced.synced(&index, NOW));
        synced.observe(&Change::Listed(WatchedKind::Pod));
        assert!(synced.synced(&index, NOW));
    }

    #[test]
    fn a_registered_claim_waits_for_its_node_and_a_registered_node_for_its_claim() {
        let mut synced = Synced::new();
        all_listed(&mut synced);
        let mut index = Index::new();
        index.apply(claim(1, true), NOW);
        assert!(!synced.synced(&index, NOW));
        let why = synced.why_not().unwrap().to_string();
        assert!(
            why.contains("NodeClaim default-a") && why.contains("Node n1"),
            "{why}"
        );
        index.apply(node(2), NOW);
        assert!(synced.synced(&index, NOW));

        let mut index = Index::new();
        index.apply(node(1), NOW);
        assert!(!synced.synced(&index, NOW));
        assert!(matches!(
            synced.why_not(),
            Some(NotSynced::Disagree(Disagreement::ClaimMissing { .. }))
        ));
        // A claim not yet registered is no match; the registered one is.
        index.apply(claim(2, false), NOW);
        assert!(!synced.synced(&index, NOW));
        index.apply(claim(3, true), NOW);
        assert!(synced.synced(&index, NOW));
    }

    #[test]
    fn a_disagreement_outlasting_watch_lag_stops_holding_the_gate() {
        let mut synced = Synced::new().with_agreement_grace(Duration::from_secs(30));
        all_listed(&mut synced);
        let mut index = Index::new();
        index.apply(claim(1, true), NOW);
        assert!(!synced.synced(&index, NOW));
        assert!(!synced.synced(&index, NOW + 29_000));
        assert!(synced.synced(&index, NOW + 30_000));
    }
}
