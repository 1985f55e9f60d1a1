//! The core's decision ports, backed by swappable Wasm policies.
//!
//! A decision never fails because of a policy: when the active policy fails,
//! instance selection falls back to the built-in default and consolidation
//! makes no move; the failure is counted by class and logged. A policy that
//! fails `failures_to_open` times in a row is skipped for `cooldown`, then
//! tried again (one failure re-opens the breaker, one success closes it).
//! Swapping a policy is one atomic pointer store: decisions in flight finish
//! on the version they started with.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use dovetail_core::clock::{Clock, SystemClock};
use dovetail_core::policy::consolidate::default_approve;
use dovetail_core::policy::ports::BUILTIN;
use dovetail_core::policy::select::default_select;
use dovetail_core::policy::types::{
    ConsolidationContext, Decision, ProposedMove, Ranking, Selection, SelectionRequest, Verdict,
};
use dovetail_core::policy::{ConsolidationScorer, Decided, InstanceSelector};

use crate::error::{FailureClass, PolicyFailure};
use crate::policy::{LoadedPolicy, wrong_decision};
use crate::runtime::Runtime;

/// When to stop calling a failing policy, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    pub failures_to_open: u32,
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures_to_open: 3,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// Failures counted per class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureCounts([u64; FailureClass::ALL.len()]);

impl FailureCounts {
    pub fn get(&self, class: FailureClass) -> u64 {
        self.0[class as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    fn add(&mut self, class: FailureClass) {
        self.0[class as usize] += 1;
    }
}

/// What a decision slot is doing, for status reports and tests.
#[derive(Debug, Clone, Default)]
pub struct SlotStatus {
    /// `name@version (digest)` of the active policy; `None` = built-in.
    pub active: Option<String>,
    pub active_digest: Option<String>,
    pub decisions: u64,
    pub fallbacks: u64,
    pub failures: FailureCounts,
    pub last_failure: Option<String>,
    pub reloads: u64,
    pub rejected_reloads: u64,
    pub last_reload_error: Option<String>,
    /// Unix ms until which the breaker skips the policy.
    pub breaker_open_until_ms: Option<u64>,
}

#[derive(Default)]
struct SlotState {
    consecutive_failures: u32,
    status: SlotStatus,
}

struct Slot {
    active: ArcSwapOption<LoadedPolicy>,
    state: Mutex<SlotState>,
}

impl Slot {
    fn new() -> Self {
        Self {
            active: ArcSwapOption::empty(),
            state: Mutex::new(SlotState::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SlotState> {
        // A panic elsewhere must not stop decisions: the state is counters.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Decision ports backed by the active policies.
pub struct PolicyHost {
    runtime: Runtime,
    clock: Arc<dyn Clock>,
    breaker: BreakerConfig,
    selection: Slot,
    scoring: Slot,
}

impl std::fmt::Debug for PolicyHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyHost")
            .field(
                "selection",
                &self.status(Decision::InstanceSelection).active,
            )
            .field(
                "scoring",
                &self.status(Decision::ConsolidationScoring).active,
            )
            .finish_non_exhaustive()
    }
}

enum Attempt<T> {
    Decided(T, String),
    Fallback(String),
}

impl PolicyHost {
    /// A host with built-in behaviour until policies are installed.
    pub fn new(runtime: Runtime) -> Self {
        Self::with_clock(runtime, Arc::new(SystemClock), BreakerConfig::default())
    }

    pub fn with_clock(runtime: Runtime, clock: Arc<dyn Clock>, breaker: BreakerConfig) -> Self {
        Self {
            runtime,
            clock,
            breaker,
            selection: Slot::new(),
            scoring: Slot::new(),
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn slot(&self, d: Decision) -> &Slot {
        match d {
            Decision::InstanceSelection => &self.selection,
            Decision::ConsolidationScoring => &self.scoring,
        }
    }

    /// The policy serving `d`, if any (else the built-in behaviour).
    pub fn active(&self, d: Decision) -> Option<Arc<LoadedPolicy>> {
        self.slot(d).active.load_full()
    }

    /// Makes `policy` serve `d`. It must implement `d`.
    pub fn install(&self, d: Decision, policy: Arc<LoadedPolicy>) -> Result<(), PolicyFailure> {
        if !policy.implements(d) {
            return Err(PolicyFailure::new(
                policy.info.name.clone(),
                policy.digest.clone(),
                FailureClass::Load,
                wrong_decision(&policy.info.decisions, d),
            ));
        }
        let slot = self.slot(d);
        tracing::info!(decision = %d, policy = %policy.label(), digest = %policy.digest, "policy active");
        slot.active.store(Some(policy.clone()));
        let mut st = slot.state();
        st.consecutive_failures = 0;
        st.status.breaker_open_until_ms = None;
        st.status.reloads += 1;
        st.status.last_reload_error = None;
        Ok(())
    }

    /// Validates `bytes` off the decision path and, if valid, swaps it in.
    /// On failure the active policy keeps serving and the reason is kept in
    /// the slot's status.
    pub fn load_and_install(
        &self,
        d: Decision,
        source: &str,
        bytes: &[u8],
        config: Option<&str>,
    ) -> Result<Arc<LoadedPolicy>, PolicyFailure> {
        let result = LoadedPolicy::load_for(d, &self.runtime, source, bytes, config)
            .map(Arc::new)
            .and_then(|p| self.install(d, p.clone()).map(|()| p));
        if let Err(f) = &result {
            self.reject_reload(d, f);
        }
        result
    }

    /// Records a reload that did not happen, leaving the active policy alone.
    pub fn reject_reload(&self, d: Decision, failure: &PolicyFailure) {
        let still = self
            .active(d)
            .map_or_else(|| BUILTIN.to_string(), |p| p.label());
        tracing::error!(decision = %d, still_serving = %still, "policy rejected: {failure}");
        let mut st = self.slot(d).state();
        st.status.rejected_reloads += 1;
        st.status.last_reload_error = Some(failure.to_string());
    }

    /// Returns `d` to the built-in behaviour.
    pub fn clear(&self, d: Decision) {
        let slot = self.slot(d);
        slot.active.store(None);
        let mut st = slot.state();
        st.consecutive_failures = 0;
        st.status.breaker_open_until_ms = None;
        tracing::info!(decision = %d, "built-in policy active");
    }

    pub fn status(&self, d: Decision) -> SlotStatus {
        let mut status = self.slot(d).state().status.clone();
        if let Some(p) = self.active(d) {
            status.active = Some(format!("{} ({})", p.label(), p.digest));
            status.active_digest = Some(p.digest.clone());
        }
        status
    }

    /// Runs `call` on the active policy unless there is none or its breaker
    /// is open; records the outcome.
    fn attempt<T>(
        &self,
        d: Decision,
        call: impl FnOnce(&LoadedPolicy) -> Result<T, PolicyFailure>,
    ) -> Attempt<T> {
        let slot = self.slot(d);
        let Some(policy) = slot.active.load_full() else {
            slot.state().status.decisions += 1;
            return Attempt::Fallback(String::new());
        };
        let now = self.clock.now_ms();
        {
            let mut st = slot.state();
            st.status.decisions += 1;
            if let Some(until) = st.status.breaker_open_until_ms.filter(|&u| now < u) {
                st.status.fallbacks += 1;
                return Attempt::Fallback(format!(
                    "policy `{}` skipped for another {} s after {} failures in a row; last: {}",
                    policy.label(),
                    (until - now).div_ceil(1000),
                    st.consecutive_failures,
                    st.status.last_failure.as_deref().unwrap_or("-")
                ));
            }
        }
        match call(&policy) {
            Ok(v) => {
                let mut st = slot.state();
                st.consecutive_failures = 0;
                st.status.breaker_open_until_ms = None;
                Attempt::Decided(v, policy.label())
            }
            Err(f) => {
                tracing::warn!(decision = %d, class = %f.class, "falling back to the built-in decision: {f}");
                let mut st = slot.state();
                st.consecutive_failures += 1;
                st.status.fallbacks += 1;
                st.status.failures.add(f.class);
                st.status.last_failure = Some(f.to_string());
                if st.consecutive_failures >= self.breaker.failures_to_open {
                    let until = now + self.breaker.cooldown.as_millis() as u64;
                    st.status.breaker_open_until_ms = Some(until);
                    tracing::error!(decision = %d, policy = %policy.label(), cooldown_s = self.breaker.cooldown.as_secs(), "policy keeps failing; skipping it for the cool-down");
                }
                Attempt::Fallback(f.to_string())
            }
        }
    }
}

fn fallback<T>(value: T, why: String) -> Decided<T> {
    Decided {
        value,
        by: BUILTIN.to_string(),
        fallback: (!why.is_empty()).then_some(why),
    }
}

impl InstanceSelector for PolicyHost {
    fn select(&self, request: &SelectionRequest) -> Decided<Selection> {
        match self.attempt(Decision::InstanceSelection, |p| p.select(request)) {
            Attempt::Decided(v, by) => Decided::by(v, by),
            Attempt::Fallback(why) => fallback(default_select(request), why),
        }
    }
}

impl ConsolidationScorer for PolicyHost {
    fn rank(&self, ctx: &ConsolidationContext) -> Decided<Ranking> {
        match self.attempt(Decision::ConsolidationScoring, |p| p.rank(ctx)) {
            Attempt::Decided(v, by) => Decided::by(v, by),
            Attempt::Fallback(why) if why.is_empty() => {
                fallback(dovetail_core::policy::consolidate::default_rank(ctx), why)
            }
            // A failed scorer means no move this round: exclude everyone.
            Attempt::Fallback(why) => fallback(vec![None; ctx.candidates.len()], why),
        }
    }

    fn approve(&self, ctx: &ConsolidationContext, moves: &[ProposedMove]) -> Decided<Vec<Verdict>> {
        match self.attempt(Decision::ConsolidationScoring, |p| p.approve(ctx, moves)) {
            Attempt::Decided(v, by) => Decided::by(v, by),
            Attempt::Fallback(why) if why.is_empty() => fallback(default_approve(ctx, moves), why),
            Attempt::Fallback(why) => {
                let reason = format!("no move while the consolidation policy fails: {why}");
                fallback(
                    moves
                        .iter()
                        .map(|_| Verdict::reject(reason.clone()))
                        .collect(),
                    why,
                )
            }
        }
    }
}
