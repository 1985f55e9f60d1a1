//! Nodes: labels, taints, capacity, readiness and what makes one managed.

use k8s_openapi::api::core::v1 as k8s;

use dovetail_core::labels;
use dovetail_core::model::{self, Taint, TaintEffect, label};
use dovetail_core::nodeclaim::{INITIALIZED_LABEL, NODEPOOL_HASH_ANNOTATION};
use dovetail_core::sym::Sym;

use crate::error::Path;

use super::pod::{string_map, taint_effect};
use super::report::{Report, seconds};
use super::resources::resource_list;
use super::{ConvertError, Converted, ObjectRef, WarningReason};

/// The taint the node lifecycle controller puts on a cordoned node.
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// A Node as the engines see it.
///
/// - Managed when it has the `karpenter.sh/nodepool` label (`node_pool`);
///   then it is initialised when labelled `karpenter.sh/initialized=true`
///   and its `karpenter.sh/nodepool-hash` is the template hash it was
///   launched with. A node Dovetail does not manage is initialised once
///   Ready, as nothing else will mark it.
/// - `ready` is the Ready condition; a cordoned node (`spec.unschedulable`)
///   carries the `node.kubernetes.io/unschedulable:NoSchedule` taint, as
///   Kubernetes adds it; a node being deleted is marked for deletion.
/// - Allocatable is the capacity when the kubelet has not reported it.
///
/// Left for the caller: bound pods (from their `spec.nodeName`), start-up
/// taints and the launch price (from its NodeClaim and the catalog), and
/// when pods last came or went (`last_pod_event`, set to the creation time).
pub fn node(node: &k8s::Node) -> Result<Converted<model::Node>, ConvertError> {
    let meta = &node.metadata;
    let mut report = Report::new(ObjectRef::cluster("Node", meta));
    let root = Path::root("");
    let mut out = model::Node::default();
    match meta.name.as_deref() {
        Some(n) if !n.is_empty() => out.name = Sym::new(n),
        _ => report.required(
            &root.field("metadata").field("name"),
            "give the node a name",
        ),
    }
    out.labels = string_map(meta.labels.as_ref());
    out.annotations = string_map(meta.annotations.as_ref());
    out.created_at = meta.creation_timestamp.as_ref().map_or(0, seconds);
    out.last_pod_event = out.created_at;
    out.marked_for_deletion = meta.deletion_timestamp.is_some();

    let spec = node.spec.as_ref();
    let at = root.field("spec").field("taints");
    for (i, t) in spec
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = at.index(i);
        if t.key.is_empty() {
            report.required(&at.field("key"), "name the taint");
            continue;
        }
        if let Some(effect) = taint_effect(&t.effect, &at.field("effect"), &mut report) {
            out.taints
                .push(Taint::new(&t.key, t.value.as_deref().unwrap_or(""), effect));
        }
    }
    if spec.and_then(|s| s.unschedulable) == Some(true)
        && !out
            .taints
            .iter()
            .any(|t| t.key.as_str() == UNSCHEDULABLE_TAINT && t.effect == TaintEffect::NoSchedule)
    {
        out.taints
            .push(Taint::new(UNSCHEDULABLE_TAINT, "", TaintEffect::NoSchedule));
    }

    let status = node.status.as_ref();
    let status_path = root.field("status");
    out.capacity = resource_list(
        status.and_then(|s| s.capacity.as_ref()),
        &status_path.field("capacity"),
        &mut report,
    );
    out.allocatable = match status.and_then(|s| s.allocatable.as_ref()) {
        Some(a) => resource_list(Some(a), &status_path.field("allocatable"), &mut report),
        None => out.capacity.clone(),
    };
    for (i, c) in status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        if c.type_ == "Ready" {
            out.ready = match c.status.as_str() {
                "True" => true,
                "False" | "Unknown" => false,
                other => {
                    report.not_supported(
                        &status_path.field("conditions").index(i).field("status"),
                        other,
                        &["True", "False", "Unknown"],
                    );
                    false
                }
            };
        }
    }

    out.node_pool = label(&out.labels, Sym::new(labels::NODE_POOL));
    if out.node_pool.is_some() {
        out.initialized =
            label(&out.labels, Sym::new(INITIALIZED_LABEL)).is_some_and(|v| v.as_str() == "true");
        if let Some(hash) = label(&out.annotations, Sym::new(NODEPOOL_HASH_ANNOTATION)) {
            match hash.as_str().parse::<u64>() {
                Ok(h) => out.node_pool_hash = Some(h),
                Err(_) => report.warn(
                    &root
                        .field("metadata")
                        .field("annotations")
                        .key(NODEPOOL_HASH_ANNOTATION),
                    WarningReason::InvalidNodePoolHash {
                        value: hash.as_str().to_owned(),
                    },
                ),
            }
        }
    } else {
        out.initialized = out.ready;
    }
    report.finish(out)
}
