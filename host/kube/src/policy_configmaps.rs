//! Policy components delivered as ConfigMaps, and the outcome reported back
//! on them.
//!
//! The controller watches ConfigMaps in its namespace labelled
//! `dovetail.dev/policy` through the API (a mounted volume takes the kubelet
//! a minute or more to refresh). Each holds a component in `binaryData`
//! under a key naming the decision (`instance-selection.wasm`,
//! `consolidation-scoring.wasm`) and may hold its JSON config in `data`
//! (`<decision>.json`). `dovetail.dev/policy-mode: shadow` makes it run
//! beside the live policy without acting.
//!
//! A component too large for a ConfigMap (1 MiB) is named instead in
//! `data`: `<decision>.url` (`https://`, `http://` or `oci://`) and the
//! required `<decision>.sha256` of its bytes ([`ComponentSource::Remote`]).
//!
//! [`watch`] turns the ConfigMaps into [`PolicyEvent`]s; a ConfigMap of the
//! wrong shape arrives as [`PolicyEvent::Malformed`] with the fix, so it can
//! be refused like a policy that fails validation. [`report`] writes the
//! outcome back as an Event and a status annotation. The annotation is a
//! merge patch on metadata only, so it never fights the user's writes to
//! the data; the watch brings it back as an update whose
//! [`ConfigMapRef::content`] is unchanged, which the consumer skips.
//!
//! Validating and installing components is not done here: that needs the
//! Wasm runtime, which this crate does not depend on.

use std::collections::HashMap;
use std::fmt;
use std::time::Instant;

use dovetail_core::policy::types::Decision;
use futures::{Stream, StreamExt, future, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::policy_remote::{self, RemoteSource, UrlError};

/// The label that marks a ConfigMap as a Dovetail policy. Its value may
/// name the decision (`instance-selection`, `consolidation-scoring`).
pub const POLICY_LABEL: &str = "dovetail.dev/policy";
/// `shadow`: the policy runs beside the live one on the same inputs and
/// never acts. Absent (or `live`): it serves.
pub const MODE_LABEL: &str = "dovetail.dev/policy-mode";
/// Where the outcome of the last version is written, as JSON
/// ([`PolicyStatus`]).
pub const STATUS_ANNOTATION: &str = "dovetail.dev/policy-status";
/// Event reason when a version is serving (or shadowing).
pub const REASON_ACCEPTED: &str = "PolicyAccepted";
/// Event reason when a version is refused and the previous one keeps serving.
pub const REASON_REFUSED: &str = "PolicyRefused";
/// The component that reports the Events.
pub const REPORTING_COMPONENT: &str = "dovetail";

const FIELD_MANAGER: &str = "dovetail-policy-status";
const DECISIONS: [Decision; 2] = [Decision::InstanceSelection, Decision::ConsolidationScoring];

/// `instance-selection` → the decision; anything else → `None`.
pub fn decision_named(name: &str) -> Option<Decision> {
    DECISIONS.into_iter().find(|d| d.as_str() == name)
}

/// Whether a policy serves or only runs beside the serving one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyMode {
    Live,
    Shadow,
}

impl PolicyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyMode::Live => "live",
            PolicyMode::Shadow => "shadow",
        }
    }
}

impl fmt::Display for PolicyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which ConfigMap, at which version, and what was seen of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigMapRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    /// Digest of everything the policy is made of (its data, binaryData and
    /// the two labels), so a write that changes only metadata — such as the
    /// status annotation — is recognised as no change.
    pub content: String,
    /// What the status annotation said when this version was seen.
    pub status: Option<PolicyStatus>,
    /// When the watch delivered this version.
    pub observed_at: Instant,
}

impl fmt::Display for ConfigMapRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configmap {}/{}", self.namespace, self.name)
    }
}

/// Where a decision's component is: in the ConfigMap, or named by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentSource {
    /// `binaryData` `<decision>.wasm`.
    Inline(Vec<u8>),
    /// `data` `<decision>.url` and `<decision>.sha256`: fetched, and
    /// verified against the digest before anything else.
    Remote(RemoteSource),
}

/// A well-formed policy ConfigMap.
#[derive(Debug, Clone)]
pub struct PolicyConfigMap {
    pub configmap: ConfigMapRef,
    pub mode: PolicyMode,
    /// Where each decision's component is, in decision order; never empty.
    pub components: Vec<(Decision, ComponentSource)>,
    /// The JSON config per decision, when the ConfigMap has one.
    pub configs: HashMap<Decision, String>,
}

impl PolicyConfigMap {
    pub fn config(&self, d: Decision) -> Option<&str> {
        self.configs.get(&d).map(String::as_str)
    }
}

/// What the policy ConfigMaps did.
#[derive(Debug, Clone)]
pub enum PolicyEvent {
    /// Created or changed (or listed again after a restart or a 410).
    Applied(PolicyConfigMap),
    /// Created or changed, but not in a shape that can hold a policy: to be
    /// refused, leaving whatever serves now in place.
    Malformed {
        configmap: ConfigMapRef,
        /// The decisions it names (by label or key), for counting.
        decisions: Vec<Decision>,
        mode: PolicyMode,
        error: ShapeError,
    },
    /// Deleted, unlabelled, or gone when the watch relisted.
    Deleted(ConfigMapRef),
}

impl PolicyEvent {
    pub fn configmap(&self) -> &ConfigMapRef {
        match self {
            PolicyEvent::Applied(cm) => &cm.configmap,
            PolicyEvent::Malformed { configmap, .. } | PolicyEvent::Deleted(configmap) => configmap,
        }
    }
}

/// Why a labelled ConfigMap cannot hold a policy. [`ShapeError::fix`] says
/// what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error(
        "it holds no policy component: binaryData has no `instance-selection.wasm` or `consolidation-scoring.wasm` key, and data no `<decision>.url`"
    )]
    NoComponent,
    #[error(
        "key `{key}` names no decision; the decisions are instance-selection and consolidation-scoring"
    )]
    UnknownDecision { key: String },
    #[error(
        "component `{key}` is under data, which holds text; a component is binary and belongs under binaryData"
    )]
    ComponentInData { key: String },
    #[error("`{key}` is not UTF-8 text")]
    ConfigNotText { key: String },
    #[error("config `{key}` has no component `{decision}.wasm` (or `{decision}.url`) beside it")]
    ConfigWithoutComponent { key: String, decision: Decision },
    #[error(
        "key `{key}` is neither a component (`<decision>.wasm`, `<decision>.url` with `<decision>.sha256`) nor a config (`<decision>.json`)"
    )]
    UnexpectedKey { key: String },
    #[error(
        "`{decision}.url` has no `{decision}.sha256` beside it; the digest is required, as it pins the bytes fetched"
    )]
    UrlWithoutDigest { decision: Decision },
    #[error("`{decision}.sha256` has no `{decision}.url` beside it")]
    DigestWithoutUrl { decision: Decision },
    #[error("`{key}` is `{value}`, not 64 lowercase hex digits")]
    BadDigest { key: String, value: String },
    #[error("`{key}` is `{url}`, whose scheme is not https://, http:// or oci://")]
    UnknownScheme { key: String, url: String },
    #[error("`{key}` is `{url}`, which names no component: {why}")]
    BadUrl {
        key: String,
        url: String,
        why: &'static str,
    },
    #[error(
        "{decision} has both a component (`{decision}.wasm`) and a URL (`{decision}.url`); it may have one"
    )]
    UrlAndComponent { decision: Decision },
    #[error("label {POLICY_LABEL}=`{value}` names no decision")]
    UnknownLabelValue { value: String },
    #[error("label {POLICY_LABEL}={label} but the ConfigMap holds {}", list(found))]
    LabelMismatch {
        label: Decision,
        found: Vec<Decision>,
    },
    #[error("label {MODE_LABEL}=`{value}` is not a mode (shadow or live)")]
    UnknownMode { value: String },
}

fn list(ds: &[Decision]) -> String {
    let keys: Vec<String> = ds.iter().map(|d| format!("{d}.wasm")).collect();
    keys.join(" and ")
}

impl ShapeError {
    /// What to change, naming the ConfigMap `name`.
    pub fn fix(&self, name: &str) -> String {
        match self {
            ShapeError::NoComponent => format!(
                "put the component in binaryData under `<decision>.wasm`: `kubectl create configmap {name} --from-file=instance-selection.wasm=policy.wasm`, or `dovetail policy push policy.wasm --decision instance-selection`"
            ),
            ShapeError::UnknownDecision { key } => {
                let ext = key.rsplit_once('.').map_or("wasm", |(_, e)| e);
                format!(
                    "rename `{key}` to `instance-selection.{ext}` or `consolidation-scoring.{ext}`"
                )
            }
            ShapeError::ComponentInData { key } => format!(
                "move `{key}` to binaryData (base64): `kubectl create configmap {name} --from-file={key}=policy.wasm` does this, as does `dovetail policy push`"
            ),
            ShapeError::ConfigNotText { key } => {
                format!("store `{key}` as UTF-8 JSON text under data")
            }
            ShapeError::ConfigWithoutComponent { key, decision } => {
                format!("add the component as `{decision}.wasm` in binaryData, or remove `{key}`")
            }
            ShapeError::UnexpectedKey { key } => format!(
                "remove `{key}` from configmap {name}: it may hold only `<decision>.wasm`, `<decision>.url`, `<decision>.sha256` and `<decision>.json`"
            ),
            ShapeError::UrlWithoutDigest { decision } => format!(
                "add `{decision}.sha256` to data: the output of `sha256sum policy.wasm` without the file name; `dovetail policy push policy.wasm --decision {decision} --url URL --print` writes the whole ConfigMap"
            ),
            ShapeError::DigestWithoutUrl { decision } => format!(
                "add `{decision}.url` to data (https://, http:// or oci://), or remove `{decision}.sha256`"
            ),
            ShapeError::BadDigest { key, .. } => format!(
                "set `{key}` to the component's sha256 as `sha256sum policy.wasm | cut -d' ' -f1` prints it: 64 lowercase hex digits, no `sha256:` prefix"
            ),
            ShapeError::UnknownScheme { key, .. } => format!(
                "make `{key}` an https:// or http:// URL answering GET with the component, or oci://host/repository:tag for a registry artifact"
            ),
            ShapeError::BadUrl { key, .. } => format!(
                "correct `{key}`: https://host/path/policy.wasm, or oci://host[:port]/repository[:tag|@sha256:digest]"
            ),
            ShapeError::UrlAndComponent { decision } => format!(
                "remove `{decision}.wasm` from binaryData to fetch the URL, or `{decision}.url` and `{decision}.sha256` from data to serve the bytes in configmap {name}"
            ),
            ShapeError::UnknownLabelValue { .. } => format!(
                "`kubectl label configmap {name} {POLICY_LABEL}=instance-selection --overwrite` (or consolidation-scoring)"
            ),
            ShapeError::LabelMismatch { found, .. } => match found.as_slice() {
                [one] => {
                    format!("`kubectl label configmap {name} {POLICY_LABEL}={one} --overwrite`")
                }
                _ => format!(
                    "put each decision's component in its own ConfigMap, or label this one `{POLICY_LABEL}=true` to serve both"
                ),
            },
            ShapeError::UnknownMode { .. } => format!(
                "`kubectl label configmap {name} {MODE_LABEL}=shadow --overwrite`, or remove the label (`{MODE_LABEL}-`) for a live policy"
            ),
        }
    }
}

/// The digest the status annotation and [`ConfigMapRef::content`] use:
/// `sha256:` and the first 16 hex digits.
fn digest_of(h: Sha256) -> String {
    let d = h.finalize();
    let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Digest of what the policy is made of: data, binaryData and the two
/// labels. Metadata otherwise (annotations, resource version) is left out.
pub fn content_digest(cm: &ConfigMap) -> String {
    let mut h = Sha256::new();
    let mut field = |tag: &str, key: &str, value: &[u8]| {
        for part in [tag.as_bytes(), key.as_bytes()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update((value.len() as u64).to_le_bytes());
        h.update(value);
    };
    let labels = cm.metadata.labels.as_ref();
    for label in [POLICY_LABEL, MODE_LABEL] {
        if let Some(v) = labels.and_then(|l| l.get(label)) {
            field("label", label, v.as_bytes());
        }
    }
    for (k, v) in cm.binary_data.iter().flatten() {
        field("binaryData", k, &v.0);
    }
    for (k, v) in cm.data.iter().flatten() {
        field("data", k, v.as_bytes());
    }
    digest_of(h)
}

/// Reads a policy ConfigMap as the watch delivered it at `observed_at`.
pub fn parse(cm: &ConfigMap, observed_at: Instant) -> PolicyEvent {
    let meta = &cm.metadata;
    let configmap = ConfigMapRef {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        resource_version: meta.resource_version.clone().unwrap_or_default(),
        content: content_digest(cm),
        status: meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(STATUS_ANNOTATION))
            .and_then(|s| serde_json::from_str(s).ok()),
        observed_at,
    };
    let labels = meta.labels.as_ref();
    let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
    let mut named: Vec<Decision> = Vec::new();
    // The first problem found is reported; fixing it shows the next.
    let mut errors: Vec<ShapeError> = Vec::new();
    let mode = match label(MODE_LABEL) {
        None | Some("live") => PolicyMode::Live,
        Some("shadow") => PolicyMode::Shadow,
        Some(other) => {
            errors.push(ShapeError::UnknownMode {
                value: other.to_string(),
            });
            PolicyMode::Live
        }
    };
    let by_label = match label(POLICY_LABEL).unwrap_or("") {
        "" | "true" => None,
        value => match decision_named(value) {
            Some(d) => {
                if !named.contains(&d) {
                    named.push(d);
                }
                Some(d)
            }
            None => {
                errors.push(ShapeError::UnknownLabelValue {
                    value: value.to_string(),
                });
                None
            }
        },
    };
    let split = |key: &str| -> Option<(Option<Decision>, &'static str)> {
        let (stem, ext) = key.rsplit_once('.')?;
        let ext = match ext {
            "wasm" => "wasm",
            "json" => "json",
            "url" => "url",
            "sha256" => "sha256",
            _ => return None,
        };
        Some((decision_named(stem), ext))
    };
    let mut components = Vec::new();
    let mut configs = HashMap::new();
    let mut urls: HashMap<Decision, (String, String)> = HashMap::new();
    let mut digests: HashMap<Decision, (String, String)> = HashMap::new();
    // Text under a text key (url, sha256, json), wherever it was put.
    let mut text_key = |d: Decision, ext: &str, key: &str, text: String| match ext {
        "url" => {
            urls.insert(d, (key.to_string(), text));
        }
        "sha256" => {
            digests.insert(d, (key.to_string(), text));
        }
        _ => {
            configs.insert(d, text);
        }
    };
    for (key, bytes) in cm.binary_data.iter().flatten() {
        match split(key) {
            Some((Some(d), "wasm")) => {
                if !named.contains(&d) {
                    named.push(d);
                }
                components.push((d, ComponentSource::Inline(bytes.0.clone())));
            }
            Some((Some(d), ext)) => match String::from_utf8(bytes.0.clone()) {
                Ok(text) => text_key(d, ext, key, text),
                Err(_) => errors.push(ShapeError::ConfigNotText { key: key.clone() }),
            },
            Some((None, _)) => errors.push(ShapeError::UnknownDecision { key: key.clone() }),
            None => errors.push(ShapeError::UnexpectedKey { key: key.clone() }),
        }
    }
    for (key, text) in cm.data.iter().flatten() {
        match split(key) {
            Some((Some(d), "wasm")) => {
                if !named.contains(&d) {
                    named.push(d);
                }
                errors.push(ShapeError::ComponentInData { key: key.clone() });
            }
            Some((Some(d), ext)) => text_key(d, ext, key, text.clone()),
            Some((None, _)) => errors.push(ShapeError::UnknownDecision { key: key.clone() }),
            None => errors.push(ShapeError::UnexpectedKey { key: key.clone() }),
        }
    }
    for d in DECISIONS {
        match (urls.remove(&d), digests.remove(&d)) {
            (None, None) => {}
            (None, Some(_)) => errors.push(ShapeError::DigestWithoutUrl { decision: d }),
            (Some(_), None) => errors.push(ShapeError::UrlWithoutDigest { decision: d }),
            (Some((url_key, url)), Some((digest_key, digest))) => {
                if !named.contains(&d) {
                    named.push(d);
                }
                if components.iter().any(|(c, _)| *c == d) {
                    errors.push(ShapeError::UrlAndComponent { decision: d });
                    continue;
                }
                let Some(sha256) = policy_remote::parse_sha256(&digest) else {
                    errors.push(ShapeError::BadDigest {
                        key: digest_key,
                        // Enough to recognise it; the event stays one line.
                        value: digest.trim().chars().take(80).collect(),
                    });
                    continue;
                };
                match policy_remote::parse_url(&url) {
                    Ok(location) => components.push((
                        d,
                        ComponentSource::Remote(RemoteSource {
                            url: url.trim().to_string(),
                            location,
                            sha256,
                        }),
                    )),
                    Err(UrlError::UnknownScheme) => {
                        errors.push(ShapeError::UnknownScheme { key: url_key, url })
                    }
                    Err(UrlError::Malformed(why)) => errors.push(ShapeError::BadUrl {
                        key: url_key,
                        url,
                        why,
                    }),
                }
            }
        }
    }
    components.sort_by_key(|(d, _)| DECISIONS.iter().position(|x| x == d));
    if errors.is_empty() {
        let found: Vec<Decision> = components.iter().map(|(d, _)| *d).collect();
        if let Some(d) = configs.keys().find(|d| !found.contains(d)) {
            errors.push(ShapeError::ConfigWithoutComponent {
                key: format!("{d}.json"),
                decision: *d,
            });
        } else if found.is_empty() {
            errors.push(ShapeError::NoComponent);
        } else if let Some(label) = by_label.filter(|l| found != [*l]) {
            errors.push(ShapeError::LabelMismatch { label, found });
        }
    }
    match errors.into_iter().next() {
        Some(error) => PolicyEvent::Malformed {
            configmap,
            decisions: named,
            mode,
            error,
        },
        None => PolicyEvent::Applied(PolicyConfigMap {
            configmap,
            mode,
            components,
            configs,
        }),
    }
}

/// Turns watcher events into [`PolicyEvent`]s, remembering what exists so
/// that a ConfigMap missing from a relist (after a 410 or a reconnect) is
/// reported deleted.
#[derive(Debug, Default)]
pub struct PolicyTracker {
    known: HashMap<String, ConfigMapRef>,
    /// Names listed since the relist began.
    relisting: Option<HashMap<String, ConfigMapRef>>,
}

impl PolicyTracker {
    pub fn on(&mut self, event: watcher::Event<ConfigMap>, now: Instant) -> Vec<PolicyEvent> {
        match event {
            watcher::Event::Init => {
                self.relisting = Some(HashMap::new());
                Vec::new()
            }
            watcher::Event::InitApply(cm) => {
                let ev = parse(&cm, now);
                let seen = self.relisting.get_or_insert_with(HashMap::new);
                seen.insert(ev.configmap().name.clone(), ev.configmap().clone());
                vec![ev]
            }
            watcher::Event::InitDone => {
                let seen = self.relisting.take().unwrap_or_default();
                let old = std::mem::replace(&mut self.known, seen);
                let mut gone: Vec<ConfigMapRef> = old
                    .into_values()
                    .filter(|c| !self.known.contains_key(&c.name))
                    .collect();
                gone.sort_by(|a, b| a.name.cmp(&b.name));
                gone.into_iter()
                    .map(|mut c| {
                        c.observed_at = now;
                        PolicyEvent::Deleted(c)
                    })
                    .collect()
            }
            watcher::Event::Apply(cm) => {
                let ev = parse(&cm, now);
                self.known
                    .insert(ev.configmap().name.clone(), ev.configmap().clone());
                vec![ev]
            }
            watcher::Event::Delete(cm) => {
                let name = cm.metadata.name.clone().unwrap_or_default();
                let mut gone = self
                    .known
                    .remove(&name)
                    .unwrap_or_else(|| parse(&cm, now).configmap().clone());
                gone.observed_at = now;
                vec![PolicyEvent::Deleted(gone)]
            }
        }
    }
}

/// Policy ConfigMaps in `namespace`, as events; runs until dropped.
/// Watch errors are logged and retried with backoff.
pub fn watch(client: Client, namespace: &str) -> impl Stream<Item = PolicyEvent> + Send + 'static {
    watch_with(client, namespace, watcher::Config::default())
}

/// [`watch`] with watcher settings (e.g. a short server-side timeout); the
/// label selector is added here.
pub fn watch_with(
    client: Client,
    namespace: &str,
    config: watcher::Config,
) -> impl Stream<Item = PolicyEvent> + Send + 'static {
    let api: Api<ConfigMap> = Api::namespaced(client, namespace);
    let namespace = namespace.to_string();
    let mut tracker = PolicyTracker::default();
    watcher::watcher(api, config.labels(POLICY_LABEL))
        .default_backoff()
        .filter_map(move |r| {
            future::ready(match r {
                Ok(e) => Some(e),
                Err(e) => {
                    tracing::warn!(namespace = %namespace, "watching policy configmaps: {e}; retrying");
                    None
                }
            })
        })
        .flat_map(move |e| stream::iter(tracker.on(e, Instant::now())))
}

/// A component that was accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedPolicy {
    pub decision: Decision,
    pub name: String,
    pub version: String,
    /// `sha256:…` of the component, as the runtime names it.
    pub digest: String,
}

impl fmt::Display for AcceptedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} policy {}@{} ({})",
            self.decision, self.name, self.version, self.digest
        )
    }
}

/// Why a version was refused, what to do about it, and what serves instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub fix: String,
    /// What keeps serving, e.g. `instance-selection: graviton-first@0.1.0 (sha256:…)`.
    pub still_serving: String,
}

/// The outcome of one ConfigMap version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyOutcome {
    /// Serving (live) or running beside the live policy (shadow).
    Accepted {
        mode: PolicyMode,
        policies: Vec<AcceptedPolicy>,
    },
    /// Refused; the previous policy keeps serving.
    Refused(Refusal),
}

/// `accepted` or `refused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeKind {
    Accepted,
    Refused,
}

impl PolicyOutcome {
    pub fn kind(&self) -> OutcomeKind {
        match self {
            PolicyOutcome::Accepted { .. } => OutcomeKind::Accepted,
            PolicyOutcome::Refused(_) => OutcomeKind::Refused,
        }
    }

    /// The one-line message of the Event and the annotation.
    pub fn message(&self) -> String {
        match self {
            PolicyOutcome::Accepted { mode, policies } => {
                let what: Vec<String> = policies.iter().map(|p| p.to_string()).collect();
                match mode {
                    PolicyMode::Live => format!("{} serving", what.join(", ")),
                    PolicyMode::Shadow => format!(
                        "{} running in shadow mode: compared with the live policy, never acting",
                        what.join(", ")
                    ),
                }
            }
            PolicyOutcome::Refused(r) => format!(
                "refused: {}; fix: {}; still serving: {}",
                r.reason, r.fix, r.still_serving
            ),
        }
    }

    /// Whether the annotation on `cm` already records this outcome for this
    /// content (a restarted controller re-reads every ConfigMap; it need not
    /// say the same thing again).
    pub fn already_reported(&self, cm: &ConfigMapRef) -> bool {
        cm.status.as_ref().is_some_and(|s| {
            s.content == cm.content
                && s.outcome == self.kind()
                && match self {
                    PolicyOutcome::Accepted { policies, .. } => &s.policies == policies,
                    PolicyOutcome::Refused(_) => true,
                }
        })
    }
}

/// The status annotation's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    pub outcome: OutcomeKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AcceptedPolicy>,
    pub message: String,
    /// [`ConfigMapRef::content`] of the version this is about.
    pub content: String,
    pub resource_version: String,
    /// RFC 3339.
    pub time: String,
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("writing the {reason} event for {configmap}: {source}")]
    Event {
        reason: &'static str,
        configmap: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the {STATUS_ANNOTATION} annotation on {configmap}: {source}")]
    Annotation {
        configmap: String,
        #[source]
        source: kube::Error,
    },
}

/// Writes `outcome` on the ConfigMap: a core/v1 Event (`PolicyAccepted`,
/// Normal, or `PolicyRefused`, Warning) and the status annotation. Returns
/// the status written. A ConfigMap deleted meanwhile is not an error.
pub async fn report(
    client: &Client,
    cm: &ConfigMapRef,
    outcome: &PolicyOutcome,
) -> Result<PolicyStatus, ReportError> {
    let now = Timestamp::now();
    let message = outcome.message();
    let status = PolicyStatus {
        outcome: outcome.kind(),
        policies: match outcome {
            PolicyOutcome::Accepted { policies, .. } => policies.clone(),
            PolicyOutcome::Refused(_) => Vec::new(),
        },
        message: message.clone(),
        content: cm.content.clone(),
        resource_version: cm.resource_version.clone(),
        time: now.to_string(),
    };
    let (reason, type_) = match outcome {
        PolicyOutcome::Accepted { .. } => (REASON_ACCEPTED, "Normal"),
        PolicyOutcome::Refused(_) => (REASON_REFUSED, "Warning"),
    };
    let event = Event {
        metadata: ObjectMeta {
            // As client-go names them: the object's name and a unique suffix.
            name: Some(format!("{}.{:x}", cm.name, now.as_nanosecond())),
            namespace: Some(cm.namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("ConfigMap".into()),
            name: Some(cm.name.clone()),
            namespace: Some(cm.namespace.clone()),
            uid: Some(cm.uid.clone()).filter(|u| !u.is_empty()),
            resource_version: Some(cm.resource_version.clone()).filter(|v| !v.is_empty()),
            ..ObjectReference::default()
        },
        reason: Some(reason.into()),
        message: Some(message),
        type_: Some(type_.into()),
        count: Some(1),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        action: Some("Reload".into()),
        reporting_component: Some(REPORTING_COMPONENT.into()),
        reporting_instance: Some(REPORTING_COMPONENT.into()),
        source: Some(EventSource {
            component: Some(REPORTING_COMPONENT.into()),
            host: None,
        }),
        ..Event::default()
    };
    let events: Api<Event> = Api::namespaced(client.clone(), &cm.namespace);
    events
        .create(&PostParams::default(), &event)
        .await
        .map_err(|source| ReportError::Event {
            reason,
            configmap: cm.to_string(),
            source,
        })?;
    let annotation = serde_json::to_string(&status).expect("plain data serialises");
    let patch = serde_json::json!({
        "metadata": { "annotations": { STATUS_ANNOTATION: annotation } }
    });
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &cm.namespace);
    match configmaps
        .patch(
            &cm.name,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PatchParams::default()
            },
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(status),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(status),
        Err(source) => Err(ReportError::Annotation {
            configmap: cm.to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(labels: &[(&str, &str)], binary: &[(&str, &[u8])], data: &[(&str, &str)]) -> ConfigMap {
        let mut c = crate::testing::configmap("kube-system", "p", labels, binary, data);
        c.metadata.uid = Some("u1".into());
        c.metadata.resource_version = Some("7".into());
        c
    }

    fn error_of(ev: PolicyEvent) -> ShapeError {
        match ev {
            PolicyEvent::Malformed { error, .. } => error,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_component_and_its_config_are_read_by_decision() {
        let c = cm(
            &[(POLICY_LABEL, "consolidation-scoring")],
            &[("consolidation-scoring.wasm", b"\0asm")],
            &[("consolidation-scoring.json", "{\"x\":1}")],
        );
        let PolicyEvent::Applied(p) = parse(&c, Instant::now()) else {
            panic!("accepted shape")
        };
        assert_eq!(p.mode, PolicyMode::Live);
        assert_eq!(
            p.components,
            vec![(
                Decision::ConsolidationScoring,
                ComponentSource::Inline(b"\0asm".to_vec())
            )]
        );
        assert_eq!(p.config(Decision::ConsolidationScoring), Some("{\"x\":1}"));
        assert_eq!(
            (p.configmap.name.as_str(), p.configmap.uid.as_str()),
            ("p", "u1")
        );
    }

    #[test]
    fn shadow_mode_and_both_decisions_in_one_configmap() {
        let c = cm(
            &[(POLICY_LABEL, "true"), (MODE_LABEL, "shadow")],
            &[
                ("instance-selection.wasm", b"a"),
                ("consolidation-scoring.wasm", b"b"),
            ],
            &[],
        );
        let PolicyEvent::Applied(p) = parse(&c, Instant::now()) else {
            panic!("accepted shape")
        };
        assert_eq!(p.mode, PolicyMode::Shadow);
        let ds: Vec<Decision> = p.components.iter().map(|(d, _)| *d).collect();
        assert_eq!(
            ds,
            [Decision::InstanceSelection, Decision::ConsolidationScoring]
        );
    }

    #[test]
    fn shape_errors_name_the_key_and_the_fix() {
        let now = Instant::now();
        let e = error_of(parse(&cm(&[(POLICY_LABEL, "")], &[], &[]), now));
        assert_eq!(e, ShapeError::NoComponent);
        assert!(e.fix("p").contains("--from-file=instance-selection.wasm="));

        let e = error_of(parse(
            &cm(
                &[(POLICY_LABEL, "")],
                &[("instance-selector.wasm", b"x")],
                &[],
            ),
            now,
        ));
        assert!(e.to_string().contains("`instance-selector.wasm`"), "{e}");
        assert!(e.fix("p").contains("instance-selection.wasm"));

        let e = error_of(parse(
            &cm(
                &[(POLICY_LABEL, "instance-selection")],
                &[],
                &[("instance-selection.wasm", "AGFzbQ==")],
            ),
            now,
        ));
        assert!(matches!(e, ShapeError::ComponentInData { .. }), "{e}");
        assert!(e.to_string().contains("binaryData"), "{e}");

        let e = error_of(parse(
            &cm(
                &[(POLICY_LABEL, "instance-selection")],
                &[("consolidation-scoring.wasm", b"x")],
                &[],
            ),
            now,
        ));
        assert!(matches!(e, ShapeError::LabelMismatch { .. }), "{e}");
        assert!(
            e.fix("p")
                .contains("dovetail.dev/policy=consolidation-scoring --overwrite"),
            "{}",
            e.fix("p")
        );

        let e = error_of(parse(
            &cm(
                &[(POLICY_LABEL, ""), (MODE_LABEL, "dry-run")],
                &[("instance-selection.wasm", b"x")],
                &[],
            ),
            now,
        ));
        assert!(matches!(e, ShapeError::UnknownMode { .. }), "{e}");

        let e = error_of(parse(
            &cm(
                &[(POLICY_LABEL, "")],
                &[("instance-selection.wasm", b"x")],
                &[("consolidation-scoring.json", "{}")],
            ),
            now,
        ));
        assert!(
            matches!(e, ShapeError::ConfigWithoutComponent { .. }),
            "{e}"
        );

        let e = error_of(parse(
            &cm(
                &[(POLICY_LABEL, "")],
                &[("instance-selection.wasm", b"x")],
                &[("README", "hi")],
            ),
            now,
        ));
        assert!(matches!(e, ShapeError::UnexpectedKey { .. }), "{e}");
    }

    const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn a_url_and_its_digest_name_a_remote_component() {
        let c = cm(
            &[(POLICY_LABEL, "instance-selection")],
            &[],
            &[
                ("instance-selection.url", "https://example.com/p.wasm"),
                ("instance-selection.sha256", &format!("{HEX}\n")),
                ("instance-selection.json", "{}"),
            ],
        );
        let PolicyEvent::Applied(p) = parse(&c, Instant::now()) else {
            panic!("accepted shape")
        };
        let [(d, ComponentSource::Remote(r))] = p.components.as_slice() else {
            panic!("{:?}", p.components)
        };
        assert_eq!(*d, Decision::InstanceSelection);
        assert_eq!(r.url, "https://example.com/p.wasm");
        assert_eq!(r.sha256, HEX, "the trailing newline is not part of it");
        assert_eq!(p.config(*d), Some("{}"));

        let c = cm(
            &[(POLICY_LABEL, "")],
            &[("instance-selection.wasm", b"x")],
            &[
                ("consolidation-scoring.url", "oci://ghcr.io/acme/scorer:1.0"),
                ("consolidation-scoring.sha256", HEX),
            ],
        );
        let PolicyEvent::Applied(p) = parse(&c, Instant::now()) else {
            panic!("accepted shape")
        };
        let kinds: Vec<(Decision, bool)> = p
            .components
            .iter()
            .map(|(d, s)| (*d, matches!(s, ComponentSource::Remote(_))))
            .collect();
        assert_eq!(
            kinds,
            [
                (Decision::InstanceSelection, false),
                (Decision::ConsolidationScoring, true)
            ]
        );
    }

    #[test]
    fn remote_shape_errors_name_the_key_and_the_fix() {
        let now = Instant::now();
        let label = [(POLICY_LABEL, "instance-selection")];
        let e = error_of(parse(
            &cm(
                &label,
                &[],
                &[("instance-selection.url", "https://x/p.wasm")],
            ),
            now,
        ));
        assert_eq!(
            e,
            ShapeError::UrlWithoutDigest {
                decision: Decision::InstanceSelection
            }
        );
        assert!(
            e.fix("p").contains("add `instance-selection.sha256`"),
            "{}",
            e.fix("p")
        );
        assert!(
            e.fix("p").contains("sha256sum policy.wasm"),
            "{}",
            e.fix("p")
        );

        let e = error_of(parse(
            &cm(
                &label,
                &[],
                &[
                    ("instance-selection.url", "https://x/p.wasm"),
                    ("instance-selection.sha256", &format!("sha256:{HEX}")),
                ],
            ),
            now,
        ));
        assert!(matches!(e, ShapeError::BadDigest { .. }), "{e}");
        assert!(e.to_string().contains("not 64 lowercase hex digits"), "{e}");
        assert!(e.fix("p").contains("no `sha256:` prefix"), "{}", e.fix("p"));

        let e = error_of(parse(
            &cm(
                &label,
                &[],
                &[
                    ("instance-selection.url", "s3://bucket/p.wasm"),
                    ("instance-selection.sha256", HEX),
                ],
            ),
            now,
        ));
        assert!(matches!(e, ShapeError::UnknownScheme { .. }), "{e}");
        assert!(e.to_string().contains("`s3://bucket/p.wasm`"), "{e}");
        assert!(e.fix("p").contains("oci://"), "{}", e.fix("p"));

        let e = error_of(parse(
            &cm(
                &label,
                &[("instance-selection.wasm", b"\0asm")],
                &[
                    ("instance-selection.url", "https://x/p.wasm"),
                    ("instance-selection.sha256", HEX),
                ],
            ),
            now,
        ));
        assert!(matches!(e, ShapeError::UrlAndComponent { .. }), "{e}");
        assert!(
            e.fix("p").contains("remove `instance-selection.wasm`"),
            "{}",
            e.fix("p")
        );

        let e = error_of(parse(
            &cm(&label, &[], &[("instance-selection.sha256", HEX)]),
            now,
        ));
        assert!(matches!(e, ShapeError::DigestWithoutUrl { .. }), "{e}");

        let e = error_of(parse(
            &cm(
                &label,
                &[],
                &[
                    ("instance-selection.url", "oci://ghcr.io"),
                    ("instance-selection.sha256", HEX),
                ],
            ),
            now,
        ));
        assert!(matches!(e, ShapeError::BadUrl { .. }), "{e}");
        assert!(e.to_string().contains("no repository"), "{e}");
    }

    #[test]
    fn the_content_digest_ignores_annotations_and_versions() {
        let mut a = cm(
            &[(POLICY_LABEL, "")],
            &[("instance-selection.wasm", b"x")],
            &[],
        );
        let before = content_digest(&a);
        a.metadata.resource_version = Some("8".into());
        a.metadata.annotations = Some([(STATUS_ANNOTATION.to_string(), "{}".to_string())].into());
        assert_eq!(content_digest(&a), before);
        a.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(MODE_LABEL.into(), "shadow".into());
        assert_ne!(content_digest(&a), before, "the mode is content");
    }

    #[test]
    fn a_relist_reports_configmaps_that_vanished_meanwhile() {
        let now = Instant::now();
        let mut t = PolicyTracker::default();
        let mut a = cm(
            &[(POLICY_LABEL, "")],
            &[("instance-selection.wasm", b"x")],
            &[],
        );
        let mut b = a.clone();
        a.metadata.name = Some("a".into());
        b.metadata.name = Some("b".into());
        assert!(t.on(watcher::Event::Init, now).is_empty());
        assert_eq!(t.on(watcher::Event::InitApply(a.clone()), now).len(), 1);
        assert!(t.on(watcher::Event::InitDone, now).is_empty());
        assert_eq!(t.on(watcher::Event::Apply(b), now).len(), 1);
        // After a 410 the watcher relists; `b` was deleted while it could not see.
        t.on(watcher::Event::Init, now);
        t.on(watcher::Event::InitApply(a), now);
        let gone = t.on(watcher::Event::InitDone, now);
        assert!(
            matches!(gone.as_slice(), [PolicyEvent::Deleted(c)] if c.name == "b"),
            "{gone:?}"
        );
        // And nothing more the next time.
        t.on(watcher::Event::Init, now);
        assert_eq!(t.on(watcher::Event::InitDone, now).len(), 1, "`a` gone too");
    }

    #[test]
    fn an_outcome_already_on_the_annotation_is_recognised() {
        let c = cm(
            &[(POLICY_LABEL, "")],
            &[("instance-selection.wasm", b"x")],
            &[],
        );
        let PolicyEvent::Applied(mut p) = parse(&c, Instant::now()) else {
            panic!()
        };
        let accepted = PolicyOutcome::Accepted {
            mode: PolicyMode::Live,
            policies: vec![AcceptedPolicy {
                decision: Decision::InstanceSelection,
                name: "x".into(),
                version: "1".into(),
                digest: "sha256:1".into(),
            }],
        };
        assert!(!accepted.already_reported(&p.configmap));
        p.configmap.status = Some(PolicyStatus {
            outcome: OutcomeKind::Accepted,
            policies: match &accepted {
                PolicyOutcome::Accepted { policies, .. } => policies.clone(),
                _ => unreachable!(),
            },
            message: accepted.message(),
            content: p.configmap.content.clone(),
            resource_version: "7".into(),
            time: "t".into(),
        });
        assert!(accepted.already_reported(&p.configmap));
        p.configmap.content = "sha256:other".into();
        assert!(!accepted.already_reported(&p.configmap));
    }
}
