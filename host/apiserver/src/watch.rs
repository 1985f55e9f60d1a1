//! Watches: initial events, commit-ordered changes, selector transitions, bookmarks,
//! `sendInitialEvents`, `timeoutSeconds`, and the in-stream 410 for a compacted revision.
//!
//! Validation happens in [`plan`], before the HTTP layer answers 200; after that, every problem
//! is reported inside the stream, as a real server does (kube-rs only relists on an in-stream
//! ERROR with code 410).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::event_log::{Event, EventType};
use crate::filter::ObjectFilter;
use crate::list::invalid_options;
use crate::resource::ResourceInfo;
use crate::status::ApiError;
use crate::store::{Store, parse_resource_version};
use crate::stored::Stored;

/// The annotation on the bookmark that ends a streaming list's initial events.
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// The query parameters of a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchOptions {
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub send_initial_events: Option<bool>,
    pub allow_bookmarks: bool,
    /// When the server ends the stream.
    pub timeout: Duration,
    /// How often a bookmark is sent when bookmarks are allowed.
    pub bookmark_interval: Duration,
}

/// Where a validated watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Current objects as ADDED first; with `end_bookmark`, then the initial-events-end bookmark.
    Initial { end_bookmark: bool },
    /// Changes after this revision only.
    After(u64),
    /// Changes after the current revision only.
    Now,
}

/// Checks a watch request; errors here are HTTP errors, not stream events.
pub fn plan(opts: &WatchOptions) -> Result<Start, ApiError> {
    let rv = opts.resource_version.as_deref().filter(|s| !s.is_empty());
    let rv_match = opts
        .resource_version_match
        .as_deref()
        .filter(|s| !s.is_empty());
    let parsed = rv.map(parse_resource_version).transpose()?;
    match opts.send_initial_events {
        Some(send) => {
            if send && !opts.allow_bookmarks {
                return Err(invalid_options(
                    "ListOptions",
                    "allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
                ));
            }
            if rv_match != Some("NotOlderThan") {
                return Err(invalid_options(
                    "ListOptions",
                    "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            Ok(match (send, parsed) {
                (true, _) => Start::Initial { end_bookmark: true },
                (false, None | Some(0)) => Start::Now,
                (false, Some(n)) => Start::After(n),
            })
        }
        None => {
            if rv_match.is_some() {
                return Err(invalid_options(
                    "ListOptions",
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                ));
            }
            Ok(match parsed {
                None | Some(0) => Start::Initial {
                    end_bookmark: false,
                },
                Some(n) => Start::After(n),
            })
        }
    }
}

/// One watch event, `{"type","object"}` on the wire. The object is shared with the store, so
/// fanning a change out to many watchers copies nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchEvent {
    pub event_type: &'static str,
    pub object: Arc<Stored>,
}

impl Serialize for WatchEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = serializer.serialize_map(Some(2))?;
        m.serialize_entry("type", self.event_type)?;
        m.serialize_entry("object", self.object.json())?;
        m.end()
    }
}

fn event(event_type: &'static str, object: Value) -> WatchEvent {
    shared(event_type, Arc::new(Stored::new(object)))
}

fn shared(event_type: &'static str, object: Arc<Stored>) -> WatchEvent {
    WatchEvent { event_type, object }
}

fn bookmark(res: &ResourceInfo, revision: u64, initial_end: bool) -> WatchEvent {
    let mut metadata = json!({ "resourceVersion": revision.to_string() });
    if initial_end {
        metadata["annotations"] = json!({ INITIAL_EVENTS_END: "true" });
    }
    event(
        "BOOKMARK",
        json!({ "kind": res.kind, "apiVersion": res.api_version(), "metadata": metadata }),
    )
}

/// What a watcher with `filter` sees of one committed change: an object that starts matching
/// is ADDED, one that stops matching is DELETED.
fn translate(e: &Event, filter: &ObjectFilter) -> Option<WatchEvent> {
    let was = e.previous.as_ref().is_some_and(|p| filter.matches(p));
    let is = filter.matches(&e.object);
    let kind = match e.event_type {
        EventType::Added if is => "ADDED",
        EventType::Deleted if was => "DELETED",
        EventType::Modified => match (was, is) {
            (true, true) => "MODIFIED",
            (false, true) => "ADDED",
            (true, false) => "DELETED",
            (false, false) => return None,
        },
        _ => return None,
    };
    Some(shared(kind, e.object.clone()))
}

/// Runs one watch, sending `{"type","object"}` events until the timeout, a compaction, or the
/// receiver going away.
pub async fn run(
    store: Arc<Store>,
    res: ResourceInfo,
    namespace: String,
    opts: WatchOptions,
    start: Start,
    filter: ObjectFilter,
    tx: mpsc::Sender<WatchEvent>,
) {
    let deadline = Instant::now() + opts.timeout;
    let mut revisions = store.subscribe();
    revisions.borrow_and_update();
    let mut position = match start {
        Start::Now => store.revision(),
        Start::After(n) => n,
        Start::Initial { end_bookmark } => {
            let (revision, objects) = match store.snapshot(&res, &namespace, None, None) {
                Ok(x) => x,
                Err(_) => unreachable!("the current revision is never compacted"),
            };
            for (_, obj) in objects.into_iter().filter(|(_, o)| filter.matches(o)) {
                if tx.send(shared("ADDED", obj)).await.is_err() {
                    return;
                }
            }
            if end_bookmark && tx.send(bookmark(&res, revision, true)).await.is_err() {
                return;
            }
            revision
        }
    };
    let mut ticks = tokio::time::interval_at(
        Instant::now() + opts.bookmark_interval,
        opts.bookmark_interval,
    );
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        revisions.borrow_and_update();
        match store.events_since(&res, &namespace, position) {
            Err(c) => {
                let err = ApiError::Expired(format!(
                    "too old resource version: {} ({})",
                    c.requested, c.oldest
                ));
                let _ = tx.send(event("ERROR", err.to_status())).await;
                return;
            }
            Ok((revision, events)) => {
                for e in &events {
                    if let Some(ev) = translate(e, &filter)
                        && tx.send(ev).await.is_err()
                    {
                        return;
                    }
                }
                position = position.max(revision);
            }
        }
        tokio::select! {
            changed = revisions.changed() => if changed.is_err() { return },
            _ = ticks.tick(), if opts.allow_bookmarks => {
                if tx.send(bookmark(&res, position, false)).await.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep_until(deadline) => return,
            _ = tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Registry;
    use crate::store::{DeleteOptions, Subresource};

    fn opts(rv: Option<&str>) -> WatchOptions {
        WatchOptions {
            resource_version: rv.map(str::to_string),
            resource_version_match: None,
            send_initial_events: None,
            allow_bookmarks: false,
            timeout: Duration::from_secs(5),
            bookmark_interval: Duration::from_secs(60),
        }
    }

    fn cms() -> ResourceInfo {
        Registry::default()
            .find("", "v1", "configmaps")
            .unwrap()
            .clone()
    }

    async fn next(rx: &mut mpsc::Receiver<WatchEvent>) -> Value {
        let e = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("an event within 5s")
            .expect("stream open");
        serde_json::to_value(e).unwrap()
    }

    fn spawn(store: &Arc<Store>, o: WatchOptions) -> mpsc::Receiver<WatchEvent> {
        let start = plan(&o).unwrap();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(run(
            store.clone(),
            cms(),
            "default".into(),
            o,
            start,
            ObjectFilter::everything(),
            tx,
        ));
        rx
    }

    #[tokio::test]
    async fn resumes_after_a_revision_in_commit_order() {
        let store = Arc::new(Store::default());
        let r = cms();
        let a = store
            .create(&r, "default", json!({ "metadata": { "name": "a" } }))
            .unwrap();
        let rv = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        let mut rx = spawn(&store, opts(Some(&rv)));
        let mut a2 = a.clone();
        a2["data"] = json!({ "k": "v" });
        store
            .update(&r, "default", "a", a2, Subresource::Main)
            .unwrap();
        store
            .delete(&r, "default", "a", &DeleteOptions::default())
            .unwrap();
        let m = next(&mut rx).await;
        assert_eq!(m["type"], "MODIFIED");
        assert_eq!(m["object"]["data"]["k"], "v");
        let d = next(&mut rx).await;
        assert_eq!(d["type"], "DELETED");
        assert!(
            d["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                > m["object"]["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
        );
    }

    #[tokio::test]
    async fn zero_starts_with_current_objects_and_streaming_lists_end_with_a_bookmark() {
        let store = Arc::new(Store::default());
        store
            .create(&cms(), "default", json!({ "metadata": { "name": "a" } }))
            .unwrap();
        let mut rx = spawn(&store, opts(Some("0")));
        assert_eq!(next(&mut rx).await["type"], "ADDED");

        let mut o = opts(Some("0"));
        o.send_initial_events = Some(true);
        assert_eq!(
            plan(&o).unwrap_err().code(),
            422,
            "needs bookmarks and NotOlderThan"
        );
        o.allow_bookmarks = true;
        o.resource_version_match = Some("NotOlderThan".into());
        let mut rx = spawn(&store, o);
        assert_eq!(next(&mut rx).await["type"], "ADDED");
        let b = next(&mut rx).await;
        assert_eq!(b["type"], "BOOKMARK");
        assert_eq!(
            b["object"]["metadata"]["annotations"][INITIAL_EVENTS_END],
            "true"
        );
        assert_eq!(
            b["object"]["metadata"]["resourceVersion"],
            store.revision().to_string()
        );
    }

    #[tokio::test]
    async fn a_compacted_revision_is_an_in_stream_410() {
        let store = Arc::new(Store::default());
        let old = store.revision();
        store
            .create(&cms(), "default", json!({ "metadata": { "name": "a" } }))
            .unwrap();
        store.compact();
        let mut rx = spawn(&store, opts(Some(&old.to_string())));
        let e = next(&mut rx).await;
        assert_eq!(e["type"], "ERROR");
        assert_eq!(e["object"]["code"], 410);
        assert_eq!(e["object"]["reason"], "Expired");
        assert!(rx.recv().await.is_none(), "the stream ends after the error");
    }

    #[tokio::test]
    async fn bookmarks_and_timeout() {
        let store = Arc::new(Store::default());
        let mut o = opts(None);
        o.allow_bookmarks = true;
        o.bookmark_interval = Duration::from_millis(50);
        o.timeout = Duration::from_millis(300);
        o.resource_version = Some(store.revision().to_string());
        let mut rx = spawn(&store, o);
        let b = next(&mut rx).await;
        assert_eq!(b["type"], "BOOKMARK");
        assert_eq!(b["object"]["kind"], "ConfigMap");
        assert_eq!(
            b["object"]["metadata"]["resourceVersion"],
            store.revision().to_string()
        );
        while let Some(ev) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("closes by timeout")
        {
            assert_eq!(ev.event_type, "BOOKMARK");
        }
    }
}
