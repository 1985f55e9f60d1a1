//! Kubernetes Events (`core/v1`) with Karpenter's reasons, aggregated as
//! client-go's event correlator does: the same object, reason and message
//! again within the window bumps `count` and `lastTimestamp` of the Event
//! already written instead of writing another.
//!
//! `Nominated` Events have Karpenter's extra rate limit (5 a second, bursts
//! of 10): one per pending pod each planning round would otherwise load the
//! API server with thousands of writes on a large scale-up. Those over the
//! limit are dropped.
//!
//! Events are best effort: one that cannot be written is logged and
//! dropped, never an error the orchestration sees.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use dovetail_control::actions::{Event, EventReason, EventType, ObjectKind};
use k8s_openapi::api::core::v1::{Event as KubeEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::time::Instant;

use super::error;
use crate::observed::Lookup;

/// client-go's aggregation window.
pub(super) const AGGREGATION_WINDOW: Duration = Duration::from_secs(600);

/// `source.component` of every Event.
pub(super) const SOURCE_COMPONENT: &str = "dovetail";
/// `reportingComponent` (events.k8s.io's `reportingController`).
pub(super) const REPORTING_CONTROLLER: &str = "dovetail.dev/controller";

/// Remembered Events beyond this are pruned of those past the window.
const REMEMBERED: usize = 4096;

/// Karpenter's limit on `Nominated` Events: a bucket of 10, refilled at 5
/// a second.
const NOMINATED_BURST: f64 = 10.0;
const NOMINATED_PER_SECOND: f64 = 5.0;

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full() -> Self {
        Self {
            tokens: NOMINATED_BURST,
            at: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let refill = now.duration_since(self.at).as_secs_f64() * NOMINATED_PER_SECOND;
        self.tokens = (self.tokens + refill).min(NOMINATED_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    kind: &'static str,
    namespace: Option<String>,
    name: String,
    reason: String,
    message: String,
    warning: bool,
}

#[derive(Debug, Clone)]
struct Written {
    namespace: String,
    name: String,
    count: i32,
    at: Instant,
}

#[derive(Debug)]
pub(super) struct Recorder {
    window: Duration,
    written: Mutex<HashMap<Key, Written>>,
    nominated: Mutex<Bucket>,
}

/// `apiVersion` and `kind` of an involved object.
fn type_of(kind: ObjectKind) -> (&'static str, &'static str) {
    match kind {
        ObjectKind::Pod => ("v1", "Pod"),
        ObjectKind::Node => ("v1", "Node"),
        ObjectKind::NodeClaim => ("karpenter.sh/v1", "NodeClaim"),
        ObjectKind::NodePool => ("karpenter.sh/v1", "NodePool"),
    }
}

impl Recorder {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            written: Mutex::new(HashMap::new()),
            nominated: Mutex::new(Bucket::full()),
        }
    }

    pub async fn record(&self, client: &kube::Client, event: &Event, lookup: &dyn Lookup) {
        if event.reason == EventReason::Nominated
            && !self
                .nominated
                .lock()
                .expect("not poisoned")
                .take(Instant::now())
        {
            tracing::debug!(object = %event.object.name, "Nominated Event over the rate limit; dropped");
            return;
        }
        let (api_version, kind) = type_of(event.object.kind);
        let object_namespace = event.object.namespace.map(|n| n.as_str().to_owned());
        let key = Key {
            kind,
            namespace: object_namespace.clone(),
            name: event.object.name.as_str().to_owned(),
            reason: event.reason.to_string(),
            message: event.message.clone(),
            warning: event.kind == EventType::Warning,
        };
        let now = Instant::now();
        let previous = {
            let written = self.written.lock().expect("not poisoned");
            written
                .get(&key)
                .filter(|w| now.duration_since(w.at) < self.window)
                .cloned()
        };
        let result = match previous {
            Some(w) => match bump(client, &w).await {
                Ok(()) => Ok(Written {
                    count: w.count + 1,
                    at: now,
                    ..w
                }),
                // Deleted meanwhile (Events expire): write it afresh.
                Err(e) if error::is(&e, 404) => {
                    create(client, event, &key, api_version, lookup).await
                }
                Err(e) => Err(e),
            },
            None => create(client, event, &key, api_version, lookup).await,
        };
        match result {
            Ok(w) => {
                let mut written = self.written.lock().expect("not poisoned");
                if written.len() >= REMEMBERED {
                    written.retain(|_, w| now.duration_since(w.at) < self.window);
                }
                written.insert(key, Written { at: now, ..w });
            }
            Err(e) => tracing::warn!(
                object = %format!("{kind} {}", event.object.name),
                reason = %event.reason,
                error = %e,
                "could not write the Event; it is dropped"
            ),
        }
    }
}

fn now() -> Time {
    Time(Timestamp::now())
}

async fn bump(client: &kube::Client, w: &Written) -> Result<(), kube::Error> {
    let api: Api<KubeEvent> = Api::namespaced(client.clone(), &w.namespace);
    let patch = json!({ "count": w.count + 1, "lastTimestamp": now() });
    api.patch(&w.name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map(drop)
}

async fn create(
    client: &kube::Client,
    event: &Event,
    key: &Key,
    api_version: &str,
    lookup: &dyn Lookup,
) -> Result<Written, kube::Error> {
    // Cluster-scoped objects' Events go to `default`, as client-go puts them.
    let namespace = key.namespace.clone().unwrap_or_else(|| "default".into());
    let stamp = Timestamp::now();
    // client-go's naming: the object's name and a unique hexadecimal time.
    let name = format!("{}.{:x}", key.name, stamp.as_nanosecond());
    let uid = lookup.uid(event.object.kind, key.namespace.as_deref(), &key.name);
    let object = KubeEvent {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(api_version.to_owned()),
            kind: Some(key.kind.to_owned()),
            name: Some(key.name.clone()),
            namespace: key.namespace.clone(),
            uid,
            ..ObjectReference::default()
        },
        reason: Some(key.reason.clone()),
        message: Some(key.message.clone()),
        type_: Some(if key.warning { "Warning" } else { "Normal" }.to_owned()),
        source: Some(EventSource {
            component: Some(SOURCE_COMPONENT.to_owned()),
            host: None,
        }),
        reporting_component: Some(REPORTING_CONTROLLER.to_owned()),
        first_timestamp: Some(Time(stamp)),
        last_timestamp: Some(Time(stamp)),
        count: Some(1),
        ..KubeEvent::default()
    };
    let api: Api<KubeEvent> = Api::namespaced(client.clone(), &namespace);
    api.create(&PostParams::default(), &object).await?;
    Ok(Written {
        namespace,
        name,
        count: 1,
        at: Instant::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nominations_come_in_bursts_of_ten_then_five_a_second() {
        let start = Instant::now();
        let mut b = Bucket {
            tokens: NOMINATED_BURST,
            at: start,
        };
        let taken = (0..20).filter(|_| b.take(start)).count();
        assert_eq!(taken, 10);
        assert!(!b.take(start + Duration::from_millis(100)));
        assert!(b.take(start + Duration::from_millis(300)));
        let later = start + Duration::from_secs(60);
        assert_eq!(
            (0..20).filter(|_| b.take(later)).count(),
            10,
            "never more than a burst"
        );
    }
}
