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
//! removed file returns the decision to the built-in behaviour.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use dovetail_core::policy::types::Decision;
use notify::{RecursiveMode, Watcher};
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
}

/// The file's bytes, `None` when it does not exist, or why it cannot be read.
fn read_optional(path: &Path, class: FailureClass) -> Result<Option<Vec<u8>>, PolicyFailure> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PolicyFailure::new(
            path.display().to_string(),
            "",
            class,
            format!("cannot read the file: {e}"),
        )),
    }
}

/// Reads the directory once and applies what changed since `seen`.
fn reconcile(dir: &Path, host: &PolicyHost, seen: &mut HashMap<Decision, Seen>) {
    for d in [Decision::InstanceSelection, Decision::ConsolidationScoring] {
        let wasm_path = dir.join(policy_file_name(d));
        let config_path = dir.join(config_file_name(d));
        let read = read_optional(&wasm_path, FailureClass::Load)
            .and_then(|wasm| Ok((wasm, read_optional(&config_path, FailureClass::Config)?)));
        let (wasm, config) = match read {
            Ok(found) => found,
            Err(failure) => {
                host.reject_reload(d, &failure);
                continue;
            }
        };
        let config = config.map(|c| String::from_utf8_lossy(&c).into_owned());
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
        if !dir.is_dir() {
            return Err(fail("the policy directory does not exist".into()));
        }
        let (events_tx, events) = mpsc::channel::<()>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if res.is_ok() {
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
