//! The reconcile loop: the same [`Controller`] the simulator runs, fed from
//! the watches and acting through the API.
//!
//! It runs on a thread of its own: the orchestration is synchronous, and
//! each action is one awaited API call (`Handle::block_on`), executed
//! before the next piece of the controller looks, exactly as in the
//! simulator. Between passes it drains the watches' changes into the
//! [`Index`]; the response of every write is applied at once, so a pass
//! never acts twice on something it has just done.
//!
//! Interruption messages wake the loop like changes; a synced leader hands
//! each to the controller before its pass.
//!
//! Only a synced leader reconciles. A follower keeps its index warm; when it
//! becomes leader it starts a fresh [`Controller`], as a restarted process
//! would, from what the cluster holds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dovetail_control::actions::{
    Action, ActionError, Event, EventReason, ObjectKind, ObjectRef, Outcome,
};
use dovetail_control::cloud::CloudProvider;
use dovetail_control::interruption::Interruption;
use dovetail_control::pool_status::{self, NodeClassReadiness, NodePoolConditions, Validation};
use dovetail_control::{Autoscaler, Cluster, ClusterState, Config, Controller, Decision};
use dovetail_core::policy::{ConsolidationScorer, InstanceSelector};
use dovetail_core::sym::Sym;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};

use crate::actions::Executor;
use crate::actions::node_pool_status::NodePoolStatusWriter;
use crate::index::Index;
use crate::observed::Change;
use crate::synced::Synced;

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub controller: Config,
    /// The longest wait between passes with nothing new: time-based work
    /// (the batch window, drains, timeouts) needs passes without changes.
    pub tick: Duration,
    /// How often NodePools' status (usage, node count, conditions) is
    /// brought up to date.
    pub pool_status_every: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            controller: Config::default(),
            tick: Duration::from_millis(200),
            pool_status_every: Duration::from_secs(1),
        }
    }
}

/// What the loop reports, for metrics, logs and readiness.
pub trait Observer: Send {
    /// After every pass a leader made.
    fn reconciled(&mut self, _decisions: &[Decision], _state: &ClusterState, _took: Duration) {}
    /// The synced gate opened or closed; `why` says what it waits for.
    fn sync_changed(&mut self, _synced: bool, _why: Option<&str>) {}
    /// After changes were applied to the index (leader or not).
    fn observed(&mut self, _state: &ClusterState, _synced: bool) {}
}

/// An observer that reports nothing.
#[derive(Debug, Default)]
pub struct Quiet;

impl Observer for Quiet {}

/// What the loop listens to.
#[derive(Debug)]
pub struct Inputs {
    pub changes: mpsc::UnboundedReceiver<Change>,
    /// Interruption messages from the cloud's queue. The leader hands each
    /// to the controller once synced; a follower drops them (the queue is
    /// read by the leader). A closed channel (no queue) is simply ignored.
    pub interruptions: mpsc::Receiver<Interruption>,
    /// Whether this process holds the leader Lease.
    pub leader: watch::Receiver<bool>,
    /// Set to `true` to stop the loop after the pass in progress.
    pub stop: watch::Receiver<bool>,
}

/// What the loop acts on: the API (actions and NodePool status) and the
/// cloud.
pub struct Outside {
    pub executor: Executor,
    pub pools: NodePoolStatusWriter,
    pub cloud: Box<dyn CloudProvider + Send>,
}

impl std::fmt::Debug for Outside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outside").finish_non_exhaustive()
    }
}

/// The decision ports, swappable behind them (the policy host).
#[derive(Clone)]
pub struct Policies {
    pub selector: Arc<dyn InstanceSelector + Send + Sync>,
    pub scorer: Arc<dyn ConsolidationScorer + Send + Sync>,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies").finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A seed no earlier run of the controller used: NodeClaim names come from
/// it, and a restarted controller must not reuse its predecessor's names.
fn fresh_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// Runs the loop on the calling thread until `inputs.stop` is set or the
/// watches end. Call it from a thread that is not one of `handle`'s
/// workers.
pub fn run(
    handle: Handle,
    outside: Outside,
    policies: Policies,
    config: RunnerConfig,
    mut inputs: Inputs,
    observer: &mut dyn Observer,
) {
    let Outside {
        executor,
        pools,
        mut cloud,
    } = outside;
    let mut index = Index::new();
    let mut synced = Synced::new();
    let mut was_synced: Option<bool> = None;
    let mut controller: Option<Controller<'_>> = None;
    let selector: &dyn InstanceSelector = &*policies.selector;
    let scorer: &dyn ConsolidationScorer = &*policies.scorer;
    let mut pool_status = PoolStatus {
        writer: pools,
        last: None,
        reported: HashMap::new(),
    };
    // Set once the interruption channel is closed: no queue feeds it.
    let mut interruptions_closed = false;
    // An interruption taken off the channel, waiting for the controller.
    let mut waiting: Vec<Interruption> = Vec::new();
    loop {
        if *inputs.stop.borrow() {
            return;
        }
        // A leader that is not synced yet leaves interruptions on the
        // channel until it is; everyone else takes them as they come.
        let take_interruptions = !interruptions_closed
            && waiting.is_empty()
            && (controller.is_some() || !*inputs.leader.borrow());
        let first = handle.block_on(async {
            tokio::select! {
                change = inputs.changes.recv() => Wake::Change(change),
                message = inputs.interruptions.recv(), if take_interruptions => Wake::Interruption(message),
                _ = tokio::time::sleep(config.tick) => Wake::Tick,
                _ = inputs.stop.changed() => Wake::Tick,
            }
        });
        let now = now_ms();
        match first {
            Wake::Change(None) => return,
            Wake::Change(Some(change)) => {
                synced.observe(&change);
                index.apply(change, now);
            }
            Wake::Interruption(Some(message)) => waiting.push(message),
            Wake::Interruption(None) => interruptions_closed = true,
            Wake::Tick => {}
        }
        while let Ok(change) = inputs.changes.try_recv() {
            synced.observe(&change);
            index.apply(change, now);
        }
        index.settle(now);
        let is_synced = synced.synced(&index, now);
        if was_synced != Some(is_synced) {
            let why = synced.why_not().map(ToString::to_string);
            observer.sync_changed(is_synced, why.as_deref());
            was_synced = Some(is_synced);
        }
        observer.observed(index.state(), is_synced);
        let leader = *inputs.leader.borrow();
        if !leader {
            // A new leader starts from the cluster, not from what this
            // process remembered when it last led.
            controller = None;
            while let Ok(message) = inputs.interruptions.try_recv() {
                waiting.push(message);
            }
            for message in waiting.drain(..) {
                tracing::debug!(
                    instance = message.instance_id,
                    kind = ?message.kind,
                    "not the leader: dropping an interruption (the leader reads the queue)"
                );
            }
            continue;
        }
        if !is_synced {
            continue;
        }
        let controller = controller.get_or_insert_with(|| {
            let mut c = config.controller.clone();
            c.seed = fresh_seed();
            Controller::new(c, selector, scorer)
        });
        while let Ok(message) = inputs.interruptions.try_recv() {
            waiting.push(message);
        }
        let started = Instant::now();
        let mut api = ApiCluster {
            index: &mut index,
            executor: &executor,
            handle: &handle,
            leader: &inputs.leader,
        };
        let mut decisions = Vec::new();
        for message in waiting.drain(..) {
            decisions.extend(controller.interruption(&mut api, &message, now));
        }
        decisions.extend(controller.reconcile(&mut api, cloud.as_mut(), now));
        observer.reconciled(&decisions, index.state(), started.elapsed());
        if pool_status
            .last
            .is_none_or(|t| t.elapsed() >= config.pool_status_every)
        {
            pool_status.last = Some(Instant::now());
            pool_status.write(&handle, &executor, &mut index, now);
        }
    }
}

/// What woke the loop.
enum Wake {
    Change(Option<Change>),
    Interruption(Option<Interruption>),
    Tick,
}

/// NodePools' status: what their nodes add up to, and their conditions.
struct PoolStatus {
    writer: NodePoolStatusWriter,
    last: Option<Instant>,
    /// Validation failures already announced with an Event, by pool.
    reported: HashMap<Sym, String>,
}

impl PoolStatus {
    fn write(&mut self, handle: &Handle, executor: &Executor, index: &mut Index, now_ms: u64) {
        let usage = pool_status::usage(index.state());
        let class = |name: &str| match index.node_class_ready(name) {
            None => NodeClassReadiness::NotFound,
            Some(true) => NodeClassReadiness::Ready,
            Some(false) => NodeClassReadiness::Unknown,
        };
        let mut pools: Vec<(Sym, Validation, NodeClassReadiness)> = index
            .state()
            .node_pools()
            .iter()
            .map(|p| (p.name, Validation::Succeeded, class(&p.node_class_ref.name)))
            .collect();
        let mut events = Vec::new();
        for (name, message) in index.node_pool_problems() {
            let name = Sym::new(name);
            pools.push((
                name,
                Validation::Failed(message.to_string()),
                NodeClassReadiness::Unknown,
            ));
            if self.reported.get(&name).map(String::as_str) != Some(message) {
                self.reported.insert(name, message.to_string());
                events.push(Action::Event(Event::warning(
                    ObjectRef {
                        kind: ObjectKind::NodePool,
                        namespace: None,
                        name,
                    },
                    EventReason::NodePoolValidationFailed,
                    message.to_string(),
                )));
            }
        }
        self.reported.retain(|name, _| {
            pools
                .iter()
                .any(|(p, v, _)| p == name && *v != Validation::Succeeded)
        });
        for (name, validation, class) in pools {
            let conditions = NodePoolConditions::new(&validation, &class);
            let usage = usage.get(&name).cloned().unwrap_or_default();
            match handle.block_on(self.writer.write(name.as_str(), &usage, &conditions)) {
                Ok(changes) => {
                    for c in changes {
                        index.apply(c, now_ms);
                    }
                }
                Err(e) => tracing::warn!(nodepool = name.as_str(), "status: {e}"),
            }
        }
        for event in events {
            if let Err(e) = handle.block_on(executor.execute(event, &*index)) {
                tracing::warn!("{e}");
            }
        }
    }
}

/// The cluster port over the API: reads from the index, writes through the
/// executor.
struct ApiCluster<'a> {
    index: &'a mut Index,
    executor: &'a Executor,
    handle: &'a Handle,
    leader: &'a watch::Receiver<bool>,
}

impl Cluster for ApiCluster<'_> {
    fn state(&self) -> &ClusterState {
        self.index.state()
    }

    fn execute(&mut self, action: Action, now_ms: u64) -> Result<Outcome, ActionError> {
        // The Lease can be lost in the middle of a pass: from then on the
        // new leader acts, and this process must not.
        if !*self.leader.borrow() {
            return Err(ActionError {
                action: format!("{action:?}").chars().take(120).collect(),
                message: "this controller lost the leader Lease; the new leader carries on".into(),
            });
        }
        match &action {
            // Nominations are the controller's own memory, as Karpenter's.
            Action::Nominate { pods, target } => {
                self.index.state_mut().nominate_all(pods, *target, now_ms);
            }
            // The object does not carry the launch list: the index keeps
            // it for when the claim comes back.
            Action::CreateNodeClaim(claim) | Action::UpdateNodeClaim(claim) => {
                self.index.expect_claim(claim, now_ms);
            }
            _ => {}
        }
        let done = self
            .handle
            .block_on(self.executor.execute(action, &*self.index))?;
        for change in done.changes {
            self.index.apply(change, now_ms);
        }
        Ok(done.outcome)
    }
}
