//! The controller: every orchestration piece run in order against a
//! cluster and a cloud. The simulator calls [`Controller::reconcile`] once
//! per simulated second; the Kubernetes adapter on its own schedule.
//!
//! Each piece returns its actions; they are executed through the
//! [`Cluster`] port before the next piece looks, so a NodeClaim created by
//! the provisioner is launched in the same reconcile.

use std::sync::Arc;
use std::time::Duration;

use dovetail_core::catalog::Catalog;
use dovetail_core::disruption::Settings as DisruptionSettings;
use dovetail_core::policy::{ConsolidationScorer, InstanceSelector};

use crate::actions::{Action, ActionError, Outcome};
use crate::cloud::CloudProvider;
use crate::decision::Decision;
use crate::disruption::{Disruption, Timings};
use crate::drift::DriftChecker;
use crate::expiration::Expiration;
use crate::gc::GarbageCollector;
use crate::interruption::{self, Interruption};
use crate::lifecycle::{Lifecycle, Step};
use crate::names::Names;
use crate::provisioner::Provisioner;
use crate::state::ClusterState;
use crate::termination::Termination;
use crate::unavailable::UnavailableOfferings;

/// The cluster port: the observed state, and a way to act on it.
pub trait Cluster {
    fn state(&self) -> &ClusterState;
    /// Carries out one action. The state reflects it once the cluster does
    /// (at once in the simulator, through the watch in a real cluster).
    fn execute(&mut self, action: Action, now_ms: u64) -> Result<Outcome, ActionError>;
}

/// What makes the scaling decisions: Dovetail's [`Controller`], or another
/// autoscaler the simulator compares it with.
pub trait Autoscaler {
    /// One pass over the cluster at `now_ms` (Unix ms).
    fn reconcile(
        &mut self,
        cluster: &mut dyn Cluster,
        cloud: &mut dyn CloudProvider,
        now_ms: u64,
    ) -> Vec<Decision>;

    /// An interruption message from the cloud.
    fn interruption(
        &mut self,
        cluster: &mut dyn Cluster,
        message: &Interruption,
        now_ms: u64,
    ) -> Vec<Decision>;
}

/// Timings and settings; the defaults are Karpenter's.
#[derive(Debug, Clone)]
pub struct Config {
    pub batch_idle_ms: u64,
    pub batch_max_ms: u64,
    pub launch_timeout: Duration,
    pub registration_timeout: Duration,
    pub disruption: Timings,
    pub disruption_settings: DisruptionSettings,
    pub min_drain_ms: u64,
    pub unavailable_offering_ttl_ms: u64,
    /// Seeds NodeClaim names and policy randomness.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            batch_idle_ms: 1_000,
            batch_max_ms: 10_000,
            launch_timeout: crate::lifecycle::LAUNCH_TIMEOUT,
            registration_timeout: crate::lifecycle::REGISTRATION_TIMEOUT,
            disruption: Timings::default(),
            disruption_settings: DisruptionSettings::default(),
            min_drain_ms: crate::termination::MIN_DRAIN_MS,
            unavailable_offering_ttl_ms: crate::unavailable::DEFAULT_TTL_MS,
            seed: 0,
        }
    }
}

/// Runs `actions` through `cluster`; eviction answers go to `termination`,
/// refusals become decisions.
pub fn execute(
    cluster: &mut dyn Cluster,
    termination: &mut Termination,
    step: Step,
    now_ms: u64,
    decisions: &mut Vec<Decision>,
) {
    decisions.extend(step.decisions);
    let mut queue: std::collections::VecDeque<Action> = step.actions.into();
    while let Some(action) = queue.pop_front() {
        let evicted = match &action {
            Action::EvictPod { pod } => Some(*pod),
            _ => None,
        };
        match cluster.execute(action, now_ms) {
            Ok(Outcome::Eviction(result)) => {
                if let Some(pod) = evicted {
                    queue.extend(termination.eviction_result(pod, result, now_ms));
                }
            }
            Ok(Outcome::Done) => {}
            Err(e) => decisions.push(Decision::ActionFailed(e.to_string())),
        }
    }
}

/// Handles an interruption message and carries out what it asks for.
pub fn interrupt(
    cluster: &mut dyn Cluster,
    termination: &mut Termination,
    unavailable: &mut UnavailableOfferings,
    message: &Interruption,
    now_ms: u64,
) -> Vec<Decision> {
    let mut decisions = Vec::new();
    let step = interruption::handle(cluster.state(), unavailable, message, now_ms);
    execute(cluster, termination, step, now_ms, &mut decisions);
    decisions
}

/// The catalog the decisions see: the cloud's, less unavailable offerings.
#[derive(Debug, Default)]
pub struct CatalogView {
    base: Option<Arc<Catalog>>,
    generation: u64,
    view: Option<Arc<Catalog>>,
    /// Changes whenever the view does.
    key: u64,
}

impl CatalogView {
    pub fn refresh(&mut self, cloud: &dyn CloudProvider, unavailable: &UnavailableOfferings) {
        let base = cloud.instance_types();
        let same = self.base.as_ref().is_some_and(|b| Arc::ptr_eq(b, &base))
            && self.generation == unavailable.generation()
            && self.view.is_some();
        if same {
            return;
        }
        self.view = Some(unavailable.apply(&base));
        self.base = Some(base);
        self.generation = unavailable.generation();
        self.key += 1;
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        self.view.as_ref().expect("refreshed before use")
    }

    pub fn key(&self) -> u64 {
        self.key
    }
}

/// Dovetail's controller.
pub struct Controller<'a> {
    selector: &'a dyn InstanceSelector,
    scorer: &'a dyn ConsolidationScorer,
    names: Names,
    provisioner: Provisioner,
    lifecycle: Lifecycle,
    disruption: Disruption,
    drift: DriftChecker,
    expiration: Expiration,
    termination: Termination,
    gc: GarbageCollector,
    unavailable: UnavailableOfferings,
    catalog: CatalogView,
}

impl std::fmt::Debug for Controller<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("unavailable", &self.unavailable.len())
            .field("executing", &self.disruption.queue().executing())
            .field("draining", &self.termination.draining())
            .finish_non_exhaustive()
    }
}

impl<'a> Controller<'a> {
    pub fn new(
        config: Config,
        selector: &'a dyn InstanceSelector,
        scorer: &'a dyn ConsolidationScorer,
    ) -> Self {
        Self {
            selector,
            scorer,
            names: Names::new(config.seed),
            provisioner: Provisioner::new(config.batch_idle_ms, config.batch_max_ms, config.seed),
            lifecycle: Lifecycle::new(config.launch_timeout, config.registration_timeout),
            disruption: Disruption::new(config.disruption, config.disruption_settings),
            drift: DriftChecker::default(),
            expiration: Expiration::default(),
            termination: Termination::new(config.min_drain_ms),
            gc: GarbageCollector::default(),
            unavailable: UnavailableOfferings::new(config.unavailable_offering_ttl_ms),
            catalog: CatalogView::default(),
        }
    }

    pub fn unavailable(&self) -> &UnavailableOfferings {
        &self.unavailable
    }
}

impl Autoscaler for Controller<'_> {
    fn reconcile(
        &mut self,
        cluster: &mut dyn Cluster,
        cloud: &mut dyn CloudProvider,
        now_ms: u64,
    ) -> Vec<Decision> {
        let mut decisions = Vec::new();
        self.unavailable.expire(now_ms);
        self.catalog.refresh(cloud, &self.unavailable);
        let round = self.provisioner.reconcile(
            cluster.state(),
            self.catalog.catalog(),
            self.catalog.key(),
            self.selector,
            &mut self.names,
            now_ms,
        );
        let step = Step {
            actions: round.actions,
            decisions: round.decisions,
        };
        execute(cluster, &mut self.termination, step, now_ms, &mut decisions);
        let step = self.lifecycle.reconcile(
            cluster.state(),
            cloud,
            &mut self.unavailable,
            self.catalog.catalog(),
            now_ms,
        );
        execute(cluster, &mut self.termination, step, now_ms, &mut decisions);
        let step = self.expiration.reconcile(cluster.state(), now_ms);
        execute(cluster, &mut self.termination, step, now_ms, &mut decisions);
        let step = self.drift.reconcile(cluster.state(), cloud, now_ms);
        execute(cluster, &mut self.termination, step, now_ms, &mut decisions);
        // Terminations finish before a pass looks, so the pass sees the
        // cluster without the nodes that just went.
        let step = self.termination.reconcile(cluster.state(), cloud, now_ms);
        execute(cluster, &mut self.termination, step, now_ms, &mut decisions);
        self.catalog.refresh(cloud, &self.unavailable);
        let step = self.disruption.reconcile(
            cluster.state(),
            self.catalog.catalog(),
            self.catalog.key(),
            self.scorer,
            &mut self.names,
            now_ms,
        );
        execute(cluster, &mut self.termination, step, now_ms, &mut decisions);
        // And the nodes a command just handed over start draining now.
        let step = self.termination.reconcile(cluster.state(), cloud, now_ms);
        execute(cluster, &mut self.termination, step, now_ms, &mut decisions);
        let step = self.gc.reconcile(cluster.state(), cloud, now_ms);
        execute(cluster, &mut self.termination, step, now_ms, &mut decisions);
        decisions
    }

    fn interruption(
        &mut self,
        cluster: &mut dyn Cluster,
        message: &Interruption,
        now_ms: u64,
    ) -> Vec<Decision> {
        interrupt(
            cluster,
            &mut self.termination,
            &mut self.unavailable,
            message,
            now_ms,
        )
    }
}
