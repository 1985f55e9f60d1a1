//! The cluster-state index: every watched object converted to
//! `dovetail-core` values once, when its change is applied, and kept in a
//! [`ClusterState`] the orchestration reads on every pass without
//! converting anything.
//!
//! - A change whose resource version is not newer than the one held is
//!   skipped: a write's response and the watch event for the same write
//!   both arrive, in either order.
//! - [`Change::Relisting`] … [`Change::Listed`] delete the objects of that
//!   kind not seen again in between (a watch that expired relists). One
//!   applied shortly before the relist began may be a write's response
//!   newer than the list: it stays in doubt until the watch brings it back
//!   or [`RELIST_DOUBT`] passes. Deleting it at once would, for a NodeClaim
//!   just created, let the next pass create it again.
//! - An object that cannot be converted is recorded in
//!   [`Index::problems`] and never stops the index. The last good value of
//!   a Node, NodeClaim or Pod stays (dropping a NodeClaim would make its
//!   instance look orphaned); a NodePool that fails validation is dropped,
//!   so a malformed pool never provisions, and is named in
//!   [`Index::node_pool_problems`].
//!
//! The index also keeps what the writes need: each object's uid and
//! resource version ([`Lookup`]).

mod keys;
mod lists;
mod nodes;
mod pods;
mod pools;

use std::collections::{BTreeMap, HashMap, HashSet};

use dovetail_api::k8s::Objects;
use dovetail_control::ClusterState;
use dovetail_control::actions::ObjectKind;
use dovetail_core::model::{DaemonSet, Namespace, Pod, PodDisruptionBudget, PodKey};
use dovetail_core::nodeclaim::{LaunchedOffering, NodeClaim};
use dovetail_core::scheduler::OfferingRef;
use dovetail_core::sym::Sym;

use crate::observed::{Change, Lookup, Observed, WatchedKind, trim_metadata};

use keys::{Key, Meta, Rv};

const KINDS: usize = WatchedKind::ALL.len();

/// How long an object a relist did not list, but that was applied shortly
/// before the relist began, is kept while the watch may still bring it.
pub const RELIST_DOUBT: std::time::Duration = std::time::Duration::from_secs(10);
const RELIST_DOUBT_MS: u64 = RELIST_DOUBT.as_millis() as u64;

/// How long a launch plan waits for its NodeClaim to be applied before it
/// is forgotten (its create failed, and a retry makes a new name).
const LAUNCH_PLAN_TTL_MS: u64 = 10 * 60 * 1000;

/// The cluster as the watches report it, converted for the orchestration.
#[derive(Debug)]
pub struct Index {
    state: ClusterState,
    /// Pods refer to claims, volumes and classes through this; none is
    /// watched, so it is empty and the conversion's defaults apply.
    lookup: Objects,
    /// uid and resource version of every object held, by kind.
    metas: [HashMap<Key, Meta>; KINDS],
    /// Objects seen since a kind's [`Change::Relisting`], until its
    /// [`Change::Listed`].
    relists: [Option<HashSet<Key>>; KINDS],
    /// Lists (DaemonSets, budgets, namespaces) changed during their kind's
    /// relist, to hand to the state when it ends.
    deferred: [bool; KINDS],
    /// When each kind's current relist began (Unix ms).
    relist_started: [u64; KINDS],
    /// Objects a relist did not list but that may be newer than it, with
    /// when they are deleted unless seen again (Unix ms).
    in_doubt: HashMap<(WatchedKind, Key), u64>,
    /// Why an object could not be converted, by kind and key.
    problems: BTreeMap<(WatchedKind, Key), String>,
    /// Pods bound to a node the index does not hold yet, by pod.
    parked: HashMap<PodKey, Parked>,
    /// The same pods, by node name.
    waiting: HashMap<Sym, Vec<PodKey>>,
    /// What the controller planned for NodeClaims it is creating and the
    /// objects do not carry: the offerings to try, the offering launched.
    launch_plans: HashMap<Sym, LaunchPlan>,
    /// EC2NodeClasses by name: whether each is Ready.
    node_classes: BTreeMap<Sym, bool>,
    daemon_sets: BTreeMap<Key, DaemonSet>,
    pdbs: BTreeMap<Key, PodDisruptionBudget>,
    namespaces: BTreeMap<Key, Namespace>,
    conversions: u64,
}

#[derive(Debug)]
struct Parked {
    node: Sym,
    pod: Pod,
}

#[derive(Debug)]
struct LaunchPlan {
    launch: Vec<OfferingRef>,
    launched: Option<LaunchedOffering>,
    planned_ms: u64,
}

/// An object the index could not convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Problem<'a> {
    pub kind: WatchedKind,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    /// What is wrong, naming each bad field and the fix.
    pub message: &'a str,
}

impl Default for Index {
    fn default() -> Self {
        Self::new()
    }
}

impl Index {
    pub fn new() -> Self {
        Self::with_state(ClusterState::new())
    }

    /// An index around `state`, configured beforehand (scheduler
    /// settings, nomination window); it should hold no objects.
    pub fn with_state(state: ClusterState) -> Self {
        Self {
            state,
            lookup: Objects::new(),
            metas: Default::default(),
            relists: Default::default(),
            deferred: Default::default(),
            relist_started: Default::default(),
            in_doubt: HashMap::new(),
            problems: BTreeMap::new(),
            parked: HashMap::new(),
            waiting: HashMap::new(),
            launch_plans: HashMap::new(),
            node_classes: BTreeMap::new(),
            daemon_sets: BTreeMap::new(),
            pdbs: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            conversions: 0,
        }
    }

    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    /// For what no watched object carries: nominations, scheduler
    /// settings. Objects change only through [`Index::apply`].
    pub fn state_mut(&mut self) -> &mut ClusterState {
        &mut self.state
    }

    /// Objects converted so far: one per change that was not skipped.
    pub fn conversions(&self) -> u64 {
        self.conversions
    }

    /// The controller is creating `claim`: its launch list and launched
    /// offering, which the NodeClaim object does not carry, are kept for it
    /// when the object arrives (and through its later updates).
    pub fn expect_claim(&mut self, claim: &NodeClaim, now_ms: u64) {
        self.launch_plans
            .retain(|_, p| now_ms.saturating_sub(p.planned_ms) < LAUNCH_PLAN_TTL_MS);
        self.launch_plans.insert(
            claim.name,
            LaunchPlan {
                launch: claim.launch.clone(),
                launched: claim.status.launched,
                planned_ms: now_ms,
            },
        );
    }

    /// Applies one change from a watch or a write's response.
    pub fn apply(&mut self, change: Change, now_ms: u64) {
        self.settle(now_ms);
        match change {
            Change::Relisting(kind) => {
                self.relists[kind.position()] = Some(HashSet::new());
                self.relist_started[kind.position()] = now_ms;
            }
            Change::Listed(kind) => self.listed(kind, now_ms),
            Change::Applied(object) => self.applied(object, now_ms),
            Change::Deleted(object) => self.deleted(&object, now_ms),
        }
    }

    fn applied(&mut self, mut object: Observed, now_ms: u64) {
        let kind = object.kind();
        let meta = object.meta();
        let Some(key) = Key::of(kind, meta) else {
            tracing::warn!(kind = kind.name(), "an object without a name is ignored");
            return;
        };
        if let Some(seen) = &mut self.relists[kind.position()] {
            seen.insert(key);
        }
        self.in_doubt.remove(&(kind, key));
        let rv = Rv::of(meta);
        if let Some(held) = self.metas[kind.position()].get(&key)
            && !rv.newer_than(&held.rv)
        {
            return;
        }
        self.metas[kind.position()].insert(key, Meta::of(meta, now_ms));
        self.conversions += 1;
        // A write's response is not trimmed by the watch.
        trim_metadata(object.meta_mut());
        match object {
            Observed::NodePool(o) => self.apply_node_pool(key, *o),
            Observed::NodeClaim(o) => self.apply_claim(key, *o, now_ms),
            Observed::Ec2NodeClass(o) => self.apply_node_class(key, &o),
            Observed::Node(o) => self.apply_node(key, &o, now_ms),
            Observed::Pod(o) => self.apply_pod(key, &o, now_ms),
            Observed::DaemonSet(o) => self.apply_daemon_set(key, &o),
            Observed::Pdb(o) => self.apply_pdb(key, &o),
            Observed::Namespace(o) => self.apply_namespace(key, &o),
        }
    }

    fn deleted(&mut self, object: &Observed, now_ms: u64) {
        let kind = object.kind();
        let Some(key) = Key::of(kind, object.meta()) else {
            return;
        };
        // A newer object by the same name is a later incarnation (deleted
        // and created again, the create's response first): it stays.
        let rv = Rv::of(object.meta());
        if self.metas[kind.position()]
            .get(&key)
            .is_some_and(|held| rv.older_than(&held.rv))
        {
            return;
        }
        self.remove(kind, key, now_ms);
    }

    fn listed(&mut self, kind: WatchedKind, now_ms: u64) {
        let Some(seen) = self.relists[kind.position()].take() else {
            return;
        };
        let started = self.relist_started[kind.position()];
        let unlisted: Vec<(Key, u64)> = self.metas[kind.position()]
            .iter()
            .filter(|(k, _)| !seen.contains(k))
            .map(|(k, m)| (*k, m.applied_ms))
            .collect();
        for (key, applied_ms) in unlisted {
            if applied_ms.saturating_add(RELIST_DOUBT_MS) >= started {
                self.in_doubt.insert((kind, key), now_ms + RELIST_DOUBT_MS);
            } else {
                self.remove(kind, key, now_ms);
            }
        }
        if std::mem::take(&mut self.deferred[kind.position()]) {
            match kind {
                WatchedKind::DaemonSet => self.push_daemon_sets(),
                WatchedKind::Pdb => self.push_pdbs(),
                WatchedKind::Namespace => self.push_namespaces(),
                _ => {}
            }
        }
    }

    /// Deletes the objects a relist left in doubt whose time is up. Every
    /// [`Index::apply`] does this first; call it before a pass when no
    /// change came for a while.
    pub fn settle(&mut self, now_ms: u64) {
        if self.in_doubt.is_empty() {
            return;
        }
        let expired: Vec<(WatchedKind, Key)> = self
            .in_doubt
            .iter()
            .filter(|(_, until)| **until <= now_ms)
            .map(|(k, _)| *k)
            .collect();
        for (kind, key) in expired {
            self.remove(kind, key, now_ms);
        }
    }

    fn remove(&mut self, kind: WatchedKind, key: Key, now_ms: u64) {
        self.in_doubt.remove(&(kind, key));
        self.metas[kind.position()].remove(&key);
        self.problems.remove(&(kind, key));
        if let Some(seen) = &mut self.relists[kind.position()] {
            seen.remove(&key);
        }
        match kind {
            WatchedKind::NodePool => self.state.delete_node_pool(key.name),
            WatchedKind::NodeClaim => self.delete_claim(key.name, now_ms),
            WatchedKind::Ec2NodeClass => {
                self.node_classes.remove(&key.name);
            }
            WatchedKind::Node => self.delete_node(key.name, now_ms),
            WatchedKind::Pod => self.delete_pod(pod_key(key), now_ms),
            WatchedKind::DaemonSet => self.delete_daemon_set(key),
            WatchedKind::Pdb => self.delete_pdb(key),
            WatchedKind::Namespace => self.delete_namespace(key),
        }
    }

    /// Records why an object could not be converted; logged once per
    /// distinct message.
    fn problem(&mut self, kind: WatchedKind, key: Key, message: String) {
        let entry = self.problems.entry((kind, key)).or_default();
        if *entry != message {
            tracing::warn!(
                kind = kind.name(),
                namespace = key.namespace.map(|n| n.as_str()),
                name = key.name.as_str(),
                "{message}"
            );
            *entry = message;
        }
    }

    fn clear_problem(&mut self, kind: WatchedKind, key: Key) {
        self.problems.remove(&(kind, key));
    }

    /// Every object that could not be converted, by kind, namespace and
    /// name.
    pub fn problems(&self) -> impl Iterator<Item = Problem<'_>> {
        self.problems.iter().map(|((kind, key), message)| Problem {
            kind: *kind,
            namespace: key.namespace.map(|n| n.as_str()),
            name: key.name.as_str(),
            message,
        })
    }

    /// NodePools that fail validation, by name, with the message naming
    /// each bad field and the fix. None of them provisions.
    pub fn node_pool_problems(&self) -> impl Iterator<Item = (&str, &str)> {
        self.problems
            .iter()
            .filter(|((kind, _), _)| *kind == WatchedKind::NodePool)
            .map(|((_, key), message)| (key.name.as_str(), message.as_str()))
    }

    /// Whether the EC2NodeClass `name` is Ready; `None` when the index
    /// holds no such class.
    pub fn node_class_ready(&self, name: &str) -> Option<bool> {
        self.node_classes.get(&Sym::new(name)).copied()
    }

    /// The EC2NodeClasses held, by name, with whether each is Ready.
    pub fn node_classes(&self) -> impl Iterator<Item = (&str, bool)> {
        self.node_classes.iter().map(|(n, r)| (n.as_str(), *r))
    }

    /// How many objects of `kind` the index holds (including those it
    /// could not convert).
    pub fn count(&self, kind: WatchedKind) -> usize {
        self.metas[kind.position()].len()
    }

    /// Whether the index holds an object of `kind` by that name.
    pub fn contains(&self, kind: WatchedKind, namespace: Option<&str>, name: &str) -> bool {
        self.metas[kind.position()].contains_key(&Key::new(namespace, name))
    }

    fn meta(&self, kind: ObjectKind, namespace: Option<&str>, name: &str) -> Option<&Meta> {
        let kind = match kind {
            ObjectKind::Pod => WatchedKind::Pod,
            ObjectKind::Node => WatchedKind::Node,
            ObjectKind::NodeClaim => WatchedKind::NodeClaim,
            ObjectKind::NodePool => WatchedKind::NodePool,
        };
        let namespace = keys::namespaced(kind).then(|| namespace.unwrap_or("default"));
        self.metas[kind.position()].get(&Key::new(namespace, name))
    }
}

impl Lookup for Index {
    fn uid(&self, kind: ObjectKind, namespace: Option<&str>, name: &str) -> Option<String> {
        self.meta(kind, namespace, name)
            .map(|m| m.uid.to_string())
            .filter(|u| !u.is_empty())
    }

    fn resource_version(
        &self,
        kind: ObjectKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<String> {
        self.meta(kind, namespace, name).map(|m| m.rv.to_string())
    }
}

fn pod_key(key: Key) -> PodKey {
    PodKey {
        namespace: key.namespace.unwrap_or_default(),
        name: key.name,
    }
}

/// A conversion error as one line: the object, then each field with its
/// fix.
fn one_line(error: &impl std::fmt::Display) -> String {
    error
        .to_string()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Unix ms of a Kubernetes time.
fn ms(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> u64 {
    u64::try_from(t.0.as_millisecond()).unwrap_or(0)
}
