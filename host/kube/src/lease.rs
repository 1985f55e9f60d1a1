//! Leader election on a `coordination.k8s.io/v1` Lease, with the semantics of
//! client-go's `leaderelection` (which controller-runtime, and so Karpenter,
//! uses):
//!
//! - A candidate takes the Lease when it has no holder, or when the holder's
//!   record has not changed for the holder's `leaseDurationSeconds` as timed
//!   on the candidate's own clock (so clock skew between machines does not
//!   matter, only their rates).
//! - The leader renews every `retry_period`. When no renewal has succeeded
//!   for `renew_deadline`, or another holder is seen, it stops leading at
//!   once, before any follower may take over (`renew_deadline <
//!   lease_duration`).
//! - Every write carries the `resourceVersion` it read, so two candidates
//!   racing for the Lease cannot both win: the second gets 409 Conflict.
//! - Releasing clears the holder, so a follower takes over on its next try
//!   instead of waiting out the lease.
//!
//! Only the leader writes to the cluster; the caller watches
//! [`Elector::subscribe`] and stops writing as soon as it reads `false`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Which Lease to contend for, as whom, and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// Unique among the candidates: usually the pod's name.
    pub identity: String,
    /// How long followers wait, after the last change they saw, before
    /// taking the Lease from a holder that stopped renewing.
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// How often candidates try to take the Lease, and the leader renews it.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// controller-runtime's defaults, which Karpenter does not override.
    pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
    pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
    pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);

    pub fn new(
        name: impl Into<String>,
        namespace: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: Self::DEFAULT_LEASE_DURATION,
            renew_deadline: Self::DEFAULT_RENEW_DEADLINE,
            retry_period: Self::DEFAULT_RETRY_PERIOD,
        }
    }

    /// The rules client-go enforces: a leader must give up before a
    /// follower may take over, and must get several tries in before that.
    pub fn validate(&self) -> Result<(), LeaseError> {
        let bad = |why: String| Err(LeaseError::InvalidConfig(why));
        if self.name.is_empty() || self.namespace.is_empty() {
            return bad("the Lease needs a name and a namespace".into());
        }
        if self.identity.is_empty() {
            return bad("the candidate needs an identity (e.g. its pod name)".into());
        }
        if self.retry_period.is_zero() {
            return bad("retry period must be more than 0".into());
        }
        if self.lease_duration <= self.renew_deadline {
            return bad(format!(
                "lease duration ({:?}) must be longer than the renew deadline ({:?}), or a follower could take over while the leader still acts",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.renew_deadline.as_secs_f64() <= JITTER * self.retry_period.as_secs_f64() {
            return bad(format!(
                "renew deadline ({:?}) must be longer than {JITTER} × the retry period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        if self.lease_duration.as_secs() > i32::MAX as u64 || self.lease_duration.as_secs() == 0 {
            return bad("lease duration must be between 1 s and 68 years".into());
        }
        Ok(())
    }
}

/// client-go's `JitterFactor`: candidates wait up to 2.2 × the retry period,
/// so they do not all knock at once.
const JITTER: f64 = 1.2;

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("leader election: {0}")]
    InvalidConfig(String),
}

/// Where this candidate stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Leader,
    /// Another candidate (or nobody yet) holds the Lease.
    Follower {
        holder: Option<String>,
    },
}

/// Why the elector cannot be counted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unhealthy {
    #[error("leader election has stopped")]
    Stopped,
    #[error("leader election has not reached the API server yet")]
    NotStarted,
    #[error("leader election has not reached the API server for {seconds} s: {error}")]
    Unreachable { seconds: u64, error: String },
}

#[derive(Debug)]
struct Health {
    running: bool,
    role: Role,
    last_contact: Option<Instant>,
    last_error: Option<String>,
}

/// A cheap handle on an elector's health, for readiness probes.
#[derive(Debug, Clone)]
pub struct ElectorProbe {
    health: Arc<Mutex<Health>>,
    lease_duration: Duration,
}

impl ElectorProbe {
    /// `Ok` while the elector runs and is either leading or a follower that
    /// reached the API server within the lease duration (so it could take
    /// over).
    pub fn check(&self) -> Result<Role, Unhealthy> {
        let h = lock(&self.health);
        if !h.running {
            return Err(Unhealthy::Stopped);
        }
        if h.role == Role::Leader {
            return Ok(Role::Leader);
        }
        match h.last_contact {
            None => Err(h.last_error.clone().map_or(Unhealthy::NotStarted, |error| {
                Unhealthy::Unreachable { seconds: 0, error }
            })),
            Some(at) if at.elapsed() > self.lease_duration => Err(Unhealthy::Unreachable {
                seconds: at.elapsed().as_secs(),
                error: h.last_error.clone().unwrap_or_default(),
            }),
            Some(_) => Ok(h.role.clone()),
        }
    }
}

fn lock(health: &Mutex<Health>) -> std::sync::MutexGuard<'_, Health> {
    // The state is plain values: a panic elsewhere leaves it usable.
    health.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running candidate for the Lease.
#[derive(Debug)]
pub struct Elector {
    leading: watch::Receiver<bool>,
    probe: ElectorProbe,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Elector {
    /// Starts contending for the Lease in the background. The config must
    /// pass [`LeaseConfig::validate`].
    pub fn spawn(client: Client, config: LeaseConfig) -> Result<Self, LeaseError> {
        config.validate()?;
        let (leading_tx, leading) = watch::channel(false);
        let (stop, stop_rx) = oneshot::channel();
        let health = Arc::new(Mutex::new(Health {
            running: true,
            role: Role::Follower { holder: None },
            last_contact: None,
            last_error: None,
        }));
        let probe = ElectorProbe {
            health: health.clone(),
            lease_duration: config.lease_duration,
        };
        let candidate = Candidate {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
            health,
            leading: leading_tx,
        };
        let task = tokio::spawn(candidate.run(stop_rx));
        Ok(Self {
            leading,
            probe,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// `true` while leading. Every change is sent, so a receiver that waits
    /// on `changed()` sees a lost leadership as soon as the elector does.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    pub fn probe(&self) -> ElectorProbe {
        self.probe.clone()
    }

    /// Stops contending. When leading, the Lease is handed back (holder
    /// cleared) so a follower takes over on its next try. Returns once this
    /// candidate no longer leads.
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Elector {
    fn drop(&mut self) {
        // Dropping the stop sender ends the task, which releases the Lease
        // if it can (the runtime may be shutting down too).
        self.stop.take();
    }
}

/// The record as last read, and when it was first seen in that state.
#[derive(Debug)]
struct Observed {
    spec: LeaseSpec,
    since: Instant,
}

enum Attempt {
    /// This candidate holds the Lease (taken or renewed).
    Held,
    /// Someone else does, or won the race for it.
    HeldBy(Option<String>),
}

struct Candidate {
    api: Api<Lease>,
    config: LeaseConfig,
    observed: Option<Observed>,
    health: Arc<Mutex<Health>>,
    leading: watch::Sender<bool>,
}

impl Candidate {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        'outer: loop {
            // Follow until the Lease is ours.
            loop {
                let attempt =
                    tokio::time::timeout(self.config.renew_deadline, self.try_acquire_or_renew())
                        .await;
                match self.record(attempt) {
                    Some(Attempt::Held) => break,
                    Some(Attempt::HeldBy(holder)) => self.set_role(Role::Follower { holder }),
                    None => {}
                }
                tokio::select! {
                    _ = &mut stop => break 'outer,
                    () = tokio::time::sleep(jittered(self.config.retry_period)) => {}
                }
            }
            tracing::info!(lease = %self.config.name, identity = %self.config.identity, "became leader");
            self.set_role(Role::Leader);
            // Lead until a renewal fails for too long or someone else holds it.
            let mut renewed = Instant::now();
            loop {
                // Wake at the deadline at the latest, so leadership ends on time.
                let wake = (Instant::now() + self.config.retry_period)
                    .min(renewed + self.config.renew_deadline);
                tokio::select! {
                    _ = &mut stop => break 'outer,
                    () = tokio::time::sleep_until(wake) => {}
                }
                let left = self.config.renew_deadline.saturating_sub(renewed.elapsed());
                let attempt = tokio::time::timeout(left, self.try_acquire_or_renew()).await;
                match self.record(attempt) {
                    Some(Attempt::Held) => renewed = Instant::now(),
                    Some(Attempt::HeldBy(holder)) => {
                        tracing::warn!(lease = %self.config.name, holder = ?holder, "lost the Lease to another holder; no longer leader");
                        self.set_role(Role::Follower { holder });
                        break;
                    }
                    None => {}
                }
                if renewed.elapsed() >= self.config.renew_deadline {
                    tracing::error!(lease = %self.config.name, deadline = ?self.config.renew_deadline, "could not renew the Lease within the renew deadline; no longer leader");
                    self.set_role(Role::Follower { holder: None });
                    // Whatever we believed about the record is stale.
                    self.observed = None;
                    break;
                }
            }
        }
        if *self.leading.borrow() {
            // Stop acting first, then hand the Lease back.
            self.set_role(Role::Follower { holder: None });
            let released = tokio::time::timeout(self.config.renew_deadline, self.release()).await;
            match released {
                Ok(Ok(())) => tracing::info!(lease = %self.config.name, "released the Lease"),
                Ok(Err(e)) => {
                    tracing::warn!(lease = %self.config.name, "could not release the Lease, it expires in {:?}: {e}", self.config.lease_duration)
                }
                Err(_) => {
                    tracing::warn!(lease = %self.config.name, "releasing the Lease timed out; it expires in {:?}", self.config.lease_duration)
                }
            }
        }
        lock(&self.health).running = false;
    }

    /// Notes the outcome of an attempt for health reports.
    fn record(
        &mut self,
        attempt: Result<Result<Attempt, kube::Error>, tokio::time::error::Elapsed>,
    ) -> Option<Attempt> {
        let mut h = lock(&self.health);
        match attempt {
            Ok(Ok(a)) => {
                h.last_contact = Some(Instant::now());
                h.last_error = None;
                Some(a)
            }
            Ok(Err(e)) => {
                let hint = match &e {
                    kube::Error::Api(s) if s.code == 403 => format!(
                        "{e}; grant get, create and update on leases (coordination.k8s.io) named {} in namespace {}",
                        self.config.name, self.config.namespace
                    ),
                    _ => e.to_string(),
                };
                tracing::warn!(lease = %self.config.name, "leader election: {hint}");
                h.last_error = Some(hint);
                None
            }
            Err(_) => {
                h.last_error = Some("the API server did not answer in time".into());
                None
            }
        }
    }

    fn set_role(&self, role: Role) {
        let leader = role == Role::Leader;
        lock(&self.health).role = role;
        self.leading
            .send_if_modified(|l| std::mem::replace(l, leader) != leader);
    }

    /// client-go's `tryAcquireOrRenew`.
    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let me = self.config.identity.clone();
        let duration = self.config.lease_duration.as_secs() as i32;
        let Some(current) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(&created, true);
                    Ok(Attempt::Held)
                }
                // Another candidate created it first.
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::HeldBy(None)),
                Err(e) => Err(e),
            };
        };
        self.observe(&current, false);
        let observed = self.observed.as_ref().expect("just observed");
        let spec = &observed.spec;
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let held_by_me = holder.as_deref() == Some(me.as_str());
        let their_duration =
            Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64);
        if let Some(other) = &holder
            && !held_by_me
            && observed.since.elapsed() < their_duration
        {
            return Ok(Attempt::HeldBy(Some(other.clone())));
        }
        let mut next = current;
        let spec = next.spec.get_or_insert_with(LeaseSpec::default);
        if !held_by_me {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(me);
        spec.lease_duration_seconds = Some(duration);
        spec.renew_time = Some(now);
        // `next` keeps the resourceVersion read above: a write by anyone in
        // between makes this one fail with 409.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &next)
            .await
        {
            Ok(written) => {
                self.observe(&written, true);
                Ok(Attempt::Held)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::HeldBy(None)),
            Err(e) => Err(e),
        }
    }

    /// Keeps the record; restarts the expiry clock when it changed (or when
    /// this candidate wrote it).
    fn observe(&mut self, lease: &Lease, written: bool) {
        let spec = lease.spec.clone().unwrap_or_default();
        let changed = self.observed.as_ref().is_none_or(|o| o.spec != spec);
        let since = match &self.observed {
            Some(o) if !changed && !written => o.since,
            _ => Instant::now(),
        };
        self.observed = Some(Observed { spec, since });
    }

    /// Clears the holder if it is still this candidate, guarded by the
    /// resourceVersion read; retried from a fresh read on conflict.
    async fn release(&mut self) -> Result<(), kube::Error> {
        for _ in 0..3 {
            let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
                return Ok(());
            };
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
                return Ok(());
            }
            let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
            spec.holder_identity = None;
            // As client-go does: a 1 s lease and fresh times, so any reader
            // sees the Lease free at once.
            spec.lease_duration_seconds = Some(1);
            spec.acquire_time = Some(now.clone());
            spec.renew_time = Some(now);
            debug_assert!(lease.metadata.resource_version.is_some());
            match self
                .api
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await
            {
                Ok(written) => {
                    self.observe(&written, true);
                    return Ok(());
                }
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// `base` × a random factor in [1, 1 + JITTER).
fn jittered(base: Duration) -> Duration {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0);
    let unit = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    base.mul_f64(1.0 + JITTER * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_controller_runtimes() {
        let c = LeaseConfig::new("dovetail-leader-election", "kube-system", "pod-a");
        assert_eq!(c.lease_duration, Duration::from_secs(15));
        assert_eq!(c.renew_deadline, Duration::from_secs(10));
        assert_eq!(c.retry_period, Duration::from_secs(2));
        c.validate().unwrap();
    }

    #[test]
    fn a_leader_must_give_up_before_a_follower_takes_over() {
        let mut c = LeaseConfig::new("l", "ns", "me");
        c.renew_deadline = Duration::from_secs(15);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("longer than the renew deadline"), "{e}");
        let mut c = LeaseConfig::new("l", "ns", "me");
        c.retry_period = Duration::from_secs(9);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("1.2 × the retry period"), "{e}");
        let c = LeaseConfig::new("l", "ns", "");
        assert!(c.validate().unwrap_err().to_string().contains("identity"));
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(2));
            assert!(
                d >= Duration::from_secs(2) && d < Duration::from_millis(4400),
                "{d:?}"
            );
        }
    }
}
