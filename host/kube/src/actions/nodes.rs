//! Nodes: registration patches (labels, annotations, taints, finalizer),
//! the disrupted taint, deletion and the termination finalizer.

use std::collections::BTreeMap;

use dovetail_control::actions::{ActionError, NodePatch, ObjectKind};
use dovetail_core::model::{self, Taint};
use dovetail_core::nodeclaim::TERMINATION_FINALIZER;
use dovetail_core::sym::Sym;
use k8s_openapi::api::core::v1::{Node, Taint as NodeTaint};
use kube::api::{Api, Patch};
use serde_json::{Map, Value, json};

use super::error::{self, Target};
use super::finalizer;
use super::{ATTEMPTS, Executed, Executor};
use crate::observed::{Change, Lookup, Observed};

fn applied(n: Node) -> Change {
    Change::Applied(Observed::Node(Box::new(n)))
}

fn api(ex: &Executor) -> Api<Node> {
    Api::all(ex.client.clone())
}

pub(super) async fn taint(ex: &Executor, name: Sym, taint: Taint) -> Result<Executed, ActionError> {
    let patch = NodePatch {
        add_taints: vec![taint],
        ..NodePatch::default()
    };
    self::patch(ex, name, &patch).await
}

pub(super) async fn untaint(ex: &Executor, name: Sym, key: Sym) -> Result<Executed, ActionError> {
    let patch = NodePatch {
        remove_taints: vec![key],
        ..NodePatch::default()
    };
    self::patch(ex, name, &patch).await
}

/// Reads the node, computes its labels, annotations, taints and finalizers
/// with `patch` applied, and writes what differs, guarded by the resource
/// version read; on a conflict, again from a fresh read. Already so: no
/// write. The node gone: done, there is nothing left to change.
pub(super) async fn patch(
    ex: &Executor,
    name: Sym,
    patch: &NodePatch,
) -> Result<Executed, ActionError> {
    let target = Target::new("patch", "nodes", name.as_str());
    let api = api(ex);
    for attempt in 0..ATTEMPTS {
        let Some(node) = api
            .get_opt(name.as_str())
            .await
            .map_err(|e| target.read().failed(&e))?
        else {
            return Ok(Executed::done(Vec::new()));
        };
        let Some(body) = change(&node, patch) else {
            return Ok(Executed::done(vec![applied(node)]));
        };
        match api
            .patch(name.as_str(), &ex.patch_params(), &Patch::Merge(body))
            .await
        {
            Ok(n) => return Ok(Executed::done(vec![applied(n)])),
            Err(e) if error::is(&e, 404) => return Ok(Executed::done(Vec::new())),
            Err(e) if error::is(&e, 409) => {
                tracing::debug!(node = %name, attempt, "node changed since read; reading again");
                ex.conflicted(attempt).await;
            }
            Err(e) => return Err(target.failed(&e)),
        }
    }
    Err(target.kept_conflicting(ATTEMPTS))
}

/// The merge patch that applies `patch` to `node`, pinned to the node's
/// resource version; `None` when the node already is so. Taints are
/// removed by key, then added unless one with the same key and effect is
/// there (a different value is replaced: the API allows one taint per key
/// and effect). The finalizer is not added to a node being deleted, which
/// the API server would refuse.
fn change(node: &Node, patch: &NodePatch) -> Option<Value> {
    let meta = &node.metadata;
    let mut metadata = Map::new();
    for (field, set, have) in [
        ("labels", &patch.labels, &meta.labels),
        ("annotations", &patch.annotations, &meta.annotations),
    ] {
        let changed = changed_entries(set, have.as_ref());
        if !changed.is_empty() {
            metadata.insert(field.into(), Value::Object(changed));
        }
    }
    let finalizers = meta.finalizers.clone().unwrap_or_default();
    if patch.add_finalizer
        && meta.deletion_timestamp.is_none()
        && !finalizers.iter().any(|f| f == TERMINATION_FINALIZER)
    {
        let mut f = finalizers;
        f.push(TERMINATION_FINALIZER.to_owned());
        metadata.insert("finalizers".into(), json!(f));
    }
    let have: Vec<NodeTaint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let mut taints: Vec<NodeTaint> = have
        .iter()
        .filter(|t| !patch.remove_taints.iter().any(|k| k.as_str() == t.key))
        .cloned()
        .collect();
    for t in &patch.add_taints {
        let t = node_taint(t);
        match taints
            .iter_mut()
            .find(|n| n.key == t.key && n.effect == t.effect)
        {
            Some(n) if n.value != t.value => n.value = t.value,
            Some(_) => {}
            None => taints.push(t),
        }
    }
    let mut body = Map::new();
    if taints != have {
        body.insert("spec".into(), json!({ "taints": taints }));
    }
    if metadata.is_empty() && body.is_empty() {
        return None;
    }
    metadata.insert("resourceVersion".into(), json!(meta.resource_version));
    body.insert("metadata".into(), Value::Object(metadata));
    Some(Value::Object(body))
}

fn changed_entries(
    set: &model::Labels,
    have: Option<&BTreeMap<String, String>>,
) -> Map<String, Value> {
    set.iter()
        .filter(|(k, v)| {
            have.and_then(|h| h.get(k.as_str())).map(String::as_str) != Some(v.as_str())
        })
        .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.as_str().to_owned())))
        .collect()
}

/// A taint as the Node carries it.
pub(super) fn node_taint(t: &Taint) -> NodeTaint {
    NodeTaint {
        key: t.key.as_str().to_owned(),
        value: t.value.map(|v| v.as_str().to_owned()),
        effect: match t.effect {
            model::TaintEffect::NoSchedule => "NoSchedule",
            model::TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            model::TaintEffect::NoExecute => "NoExecute",
        }
        .to_owned(),
        time_added: None,
    }
}

/// Requests deletion, of this very node when its uid is known.
pub(super) async fn delete(
    ex: &Executor,
    name: Sym,
    lookup: &dyn Lookup,
) -> Result<Executed, ActionError> {
    let target = Target::new("delete", "nodes", name.as_str());
    let uid = lookup.uid(ObjectKind::Node, None, name.as_str());
    finalizer::delete(&api(ex), name.as_str(), uid, &target, |o| {
        Observed::Node(Box::new(o))
    })
    .await
}

pub(super) async fn remove_finalizer(ex: &Executor, name: Sym) -> Result<Executed, ActionError> {
    let target = Target::new("patch", "nodes", name.as_str());
    finalizer::remove_executed(ex, &api(ex), name.as_str(), &target, |o| {
        Observed::Node(Box::new(o))
    })
    .await
}

#[cfg(test)]
mod tests {
    use dovetail_core::model::TaintEffect;
    use k8s_openapi::api::core::v1::NodeSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn node(taints: &[(&str, Option<&str>, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some("n".into()),
                resource_version: Some("7".into()),
                labels: Some([("a".to_owned(), "1".to_owned())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                taints: Some(
                    taints
                        .iter()
                        .map(|(k, v, e)| NodeTaint {
                            key: (*k).into(),
                            value: v.map(str::to_owned),
                            effect: (*e).into(),
                            time_added: None,
                        })
                        .collect(),
                ),
                ..NodeSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn a_patch_writes_only_what_differs() {
        let n = node(&[("karpenter.sh/unregistered", None, "NoExecute")]);
        let p = NodePatch {
            labels: vec![
                (Sym::new("a"), Sym::new("1")),
                (Sym::new("karpenter.sh/registered"), Sym::new("true")),
            ],
            add_taints: vec![Taint::new("gpu", "true", TaintEffect::NoSchedule)],
            remove_taints: vec![Sym::new("karpenter.sh/unregistered")],
            add_finalizer: true,
            ..NodePatch::default()
        };
        assert_eq!(
            change(&n, &p),
            Some(json!({
                "metadata": {
                    "resourceVersion": "7",
                    "labels": { "karpenter.sh/registered": "true" },
                    "finalizers": ["karpenter.sh/termination"],
                },
                "spec": { "taints": [{ "key": "gpu", "value": "true", "effect": "NoSchedule" }] },
            }))
        );
    }

    #[test]
    fn a_taint_already_there_is_no_write_and_a_new_value_replaces_the_old() {
        let n = node(&[("karpenter.sh/disrupted", None, "NoSchedule")]);
        let same = NodePatch {
            add_taints: vec![Taint::new(
                "karpenter.sh/disrupted",
                "",
                TaintEffect::NoSchedule,
            )],
            ..NodePatch::default()
        };
        assert_eq!(change(&n, &same), None);
        let other = NodePatch {
            add_taints: vec![Taint::new(
                "karpenter.sh/disrupted",
                "x",
                TaintEffect::NoSchedule,
            )],
            ..NodePatch::default()
        };
        assert_eq!(
            change(&n, &other).unwrap()["spec"]["taints"],
            json!([{ "key": "karpenter.sh/disrupted", "value": "x", "effect": "NoSchedule" }])
        );
        let gone = NodePatch {
            remove_taints: vec![Sym::new("absent")],
            ..NodePatch::default()
        };
        assert_eq!(change(&n, &gone), None);
    }
}
