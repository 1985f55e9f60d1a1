//! Hot reload from a policy directory.
//!
//! File names map to decisions: `instance-selection.wasm` and
//! `consolidation-scoring.wasm`, each with an optional
//! `<decision>.config.json`. The directory may be a plain folder or a mounted
//! Kubernetes ConfigMap, whose entries are symlinks through `..data` to a
//! timestamped folder that the kubelet replaces with one atomic rename; both
//! are handled by re-reading the entries (following links) whenever anything
//! in the folder changes, and acting only when the content differs.
//!
//! Loading and validation run on the watcher's own thread, never on a
//! decision path. A valid change is swapped in atomically; an invalid one
//! leaves the old policy serving and is reported (log and slot status). A
//! removed file returns the decision to the built-in behaviour. A file that
//! cannot be read (a dangling link, a link loop, a device) is reported the
//! same way, once until its cause changes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use dovetail_core::policy::types::Decision;
use dovetail_input::{InputError, Problem, caps};
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};

use crate::error::{FailureClass, PolicyFailure};
use crate::host::PolicyHost;

/// `instance-selection.wasm` / `consolidation-scoring.wasm`.
pub fn policy_file_name(d: Decision) -> String {
    format!("{}.wasm", d.as_str())
}

/// `instance-selection.config.json` / `consolidation-scoring.config.json`.
pub fn config_file_name(d: Decision) -> String {
    format!("{}.config.json", d.as_str())
}

/// Quiet period after the last change before reloading, so a file written
/// in several steps is read once, whole.
const SETTLE: Duration = Duration::from_millis(5);

/// What was last seen for a decision, to act on real changes only.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Absent,
    Content([u8; 32]),
    /// The files could not be read, for this reason (reported once, until
    /// it changes).
    Unreadable(String),
}

/// The policy and its config, `None` where a file does not exist, or why
/// they cannot be read. A dangling link is reported, not taken for an
/// absent file: someone meant a policy to be there.
fn read_pair(
    host: &PolicyHost,
    wasm_path: &Path,
    config_path: &Path,
) -> Result<(Option<Vec<u8>>, Option<String>), PolicyFailure> {
    let unreadable = |e: InputError| PolicyFailure::unreadable(&e);
    let cap = host.runtime().config().max_component_bytes as u64;
    let wasm = dovetail_input::read_optional(wasm_path, "policy", cap).map_err(unreadable)?;
    let config = match dovetail_input::read_text(config_path, "config", caps::CONFIG) {
        Ok(text) => Some(text),
        Err(InputError {
            problem: Problem::NotFound,
            ..
        }) => None,
        Err(e) => return Err(unreadable(e)),
    };
    Ok((wasm, config))
}

/// Reads the directory once and applies what changed since `seen`.
fn reconcile(dir: &Path, host: &PolicyHost, seen: &mut HashMap<Decision, Seen>) {
    for d in [Decision::InstanceSelection, Decision::ConsolidationScoring] {
        let wasm_path = dir.join(policy_file_name(d));
        let config_path = dir.join(config_file_name(d));
        let (wasm, config) = match read_pair(host, &wasm_path, &config_path) {
            Ok(found) => found,
            Err(failure) => {
                let now = Seen::Unreadable(failure.to_string());
                if seen.get(&d) != Some(&now) {
                    host.reject_reload(d, &failure);
                    seen.insert(d, now);
                }
                continue;
            }
        };
        let now = match &wasm {
            None => Seen::Absent,
            Some(bytes) => {
                let mut h = Sha256::new();
                h.update(bytes);
                h.update([0xff]);
                h.update(config.as_deref().unwrap_or("").as_bytes());
                Seen::Content(h.finalize().into())
            }
        };
        if seen.get(&d) == Some(&now) {
            continue;
        }
        match wasm {
            None => {
                if host.active(d).is_some() {
                    host.clear(d);
                }
            }
            Some(bytes) => {
                // Errors are recorded by the host; the old policy keeps serving.
                let _ = host.load_and_install(
                    d,
                    &wasm_path.display().to_string(),
                    &bytes,
                    config.as_deref(),
                );
            }
        }
        seen.insert(d, now);
    }
}

/// Whether an event can change what the directory holds. Opening and
/// reading a file are events too, and the watcher's own reads must not
/// trigger another reconcile (and another report of the same refusal).
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Watches a policy directory and keeps a [`PolicyHost`] in step with it.
/// Stops when dropped.
pub struct PolicyWatcher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    _watcher: notify::RecommendedWatcher,
}

impl std::fmt::Debug for PolicyWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyWatcher").finish_non_exhaustive()
    }
}

impl PolicyWatcher {
    /// Loads what `dir` holds now, then follows its changes.
    pub fn spawn(dir: impl Into<PathBuf>, host: Arc<PolicyHost>) -> Result<Self, PolicyFailure> {
        let dir: PathBuf = dir.into();
        let shown = dir.display().to_string();
        let fail = |e: String| PolicyFailure::new(shown.clone(), "", FailureClass::Host, e);
        dovetail_input::check_dir(&dir, "policy directory")
            .map_err(|e| PolicyFailure::unreadable(&e))?;
        let (events_tx, events) = mpsc::channel::<()>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if res.is_ok_and(|e| changes_content(&e.kind)) {
                let _ = events_tx.send(());
            }
        })
        .map_err(|e| fail(format!("cannot watch: {e}")))?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| fail(format!("cannot watch: {e}")))?;
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let mut seen = HashMap::new();
        reconcile(&dir, &host, &mut seen);
        let thread = std::thread::Builder::new()
            .name("dovetail-policy-watch".into())
            .spawn(move || {
                loop {
                    if stop_rx.try_recv().is_ok() {
                        return;
                    }
                    match events.recv_timeout(Duration::from_millis(200)) {
                        Ok(()) => {}
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                    // Let a burst of events settle, then read once.
                    while events.recv_timeout(SETTLE).is_ok() {}
                    reconcile(&dir, &host, &mut seen);
                }
            })
            .map_err(|e| fail(format!("cannot start the watcher thread: {e}")))?;
        Ok(Self {
            stop: Some(stop_tx),
            thread: Some(thread),
            _watcher: watcher,
        })
    }
}

impl Drop for PolicyWatcher {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
