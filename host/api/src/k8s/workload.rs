//! Workloads' pod templates, DaemonSets and Namespaces.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use dovetail_core::model::{self, Owner, OwnerKind, TaintEffect, Toleration, TolerationOperator};
use dovetail_core::sym::Sym;

use crate::error::Path;

use super::lookup::Lookup;
use super::object::namespace_of;
use super::pod::{Source, convert_spec, metadata, string_map};
use super::report::Report;
use super::{ConvertError, Converted, ObjectRef};

/// A controller that creates pods from a template.
pub trait Workload {
    /// `Deployment`, `StatefulSet`, …
    const KIND: &'static str;
    /// The controller of the pods it creates (a Deployment's pods are owned
    /// by its ReplicaSet).
    const OWNER: OwnerKind;
    fn metadata(&self) -> &ObjectMeta;
    fn template(&self) -> Option<&k8s::PodTemplateSpec>;
    /// Claims made for each pod (a StatefulSet's `volumeClaimTemplates`).
    fn claim_templates(&self) -> &[k8s::PersistentVolumeClaim] {
        &[]
    }
}

impl Workload for Deployment {
    const KIND: &'static str = "Deployment";
    const OWNER: OwnerKind = OwnerKind::ReplicaSet;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn template(&self) -> Option<&k8s::PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }
}

impl Workload for ReplicaSet {
    const KIND: &'static str = "ReplicaSet";
    const OWNER: OwnerKind = OwnerKind::ReplicaSet;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn template(&self) -> Option<&k8s::PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }
}

impl Workload for StatefulSet {
    const KIND: &'static str = "StatefulSet";
    const OWNER: OwnerKind = OwnerKind::StatefulSet;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn template(&self) -> Option<&k8s::PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }
    fn claim_templates(&self) -> &[k8s::PersistentVolumeClaim] {
        self.spec
            .as_ref()
            .and_then(|s| s.volume_claim_templates.as_deref())
            .unwrap_or_default()
    }
}

impl Workload for Job {
    const KIND: &'static str = "Job";
    const OWNER: OwnerKind = OwnerKind::Job;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn template(&self) -> Option<&k8s::PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }
}

/// The pod `workload` creates, as [`pod`](super::pod) converts a pod: named
/// after the workload, in its namespace, owned by it (by name: a
/// Deployment's ReplicaSet is named after the Deployment here, as its hash
/// suffix is not known), pending. What the API server adds to a pod when it
/// is created is added here from `lookup`: the priority of its priority
/// class, its runtime class's overhead and scheduling.
pub fn pod_template<W: Workload>(
    workload: &W,
    lookup: &impl Lookup,
) -> Result<Converted<model::Pod>, ConvertError> {
    let meta = workload.metadata();
    let mut report = Report::new(ObjectRef::namespaced(W::KIND, meta));
    let pod = template_pod(
        meta,
        workload.template(),
        W::OWNER,
        workload.claim_templates(),
        lookup,
        &mut report,
    );
    report.finish(pod)
}

fn template_pod(
    meta: &ObjectMeta,
    template: Option<&k8s::PodTemplateSpec>,
    owner: OwnerKind,
    claim_templates: &[k8s::PersistentVolumeClaim],
    lookup: &dyn Lookup,
    report: &mut Report,
) -> model::Pod {
    let root = Path::root("");
    let mut out = model::Pod::default();
    // The workload's name and namespace; the template's labels and
    // annotations.
    let mut named = template
        .and_then(|t| t.metadata.clone())
        .unwrap_or_default();
    named.name = meta.name.clone();
    named.namespace = Some(namespace_of(meta).to_owned());
    metadata(&named, &root.field("metadata"), report, &mut out);
    out.owner = Some(Owner {
        kind: owner,
        name: out.name,
    });
    let tpath = root.field("spec").field("template");
    match template.and_then(|t| t.spec.as_ref()) {
        Some(spec) => {
            let name = meta.name.clone().unwrap_or_default();
            let source = Source {
                spec,
                path: tpath.field("spec"),
                pod_name: &name,
                template: true,
                claim_templates,
                claim_templates_path: root.field("spec"),
            };
            convert_spec(&source, lookup, report, &mut out);
        }
        None => report.required(&tpath.field("spec"), "give the workload a pod template"),
    }
    out
}

/// Tolerations the DaemonSet controller adds to every pod it creates.
fn daemon_tolerations(host_network: bool) -> Vec<Toleration> {
    let t = |key: &str, effect| Toleration {
        key: Some(Sym::new(key)),
        operator: TolerationOperator::Exists,
        value: None,
        effect: Some(effect),
    };
    let mut v = vec![
        t("node.kubernetes.io/not-ready", TaintEffect::NoExecute),
        t("node.kubernetes.io/unreachable", TaintEffect::NoExecute),
        t("node.kubernetes.io/disk-pressure", TaintEffect::NoSchedule),
        t(
            "node.kubernetes.io/memory-pressure",
            TaintEffect::NoSchedule,
        ),
        t("node.kubernetes.io/pid-pressure", TaintEffect::NoSchedule),
        t(super::UNSCHEDULABLE_TAINT, TaintEffect::NoSchedule),
    ];
    if host_network {
        v.push(t(
            "node.kubernetes.io/network-unavailable",
            TaintEffect::NoSchedule,
        ));
    }
    v
}

/// A DaemonSet: its pod as [`pod_template`] converts one, owned by the
/// DaemonSet, with the tolerations its controller adds to every pod it
/// creates (not-ready, unreachable, disk, memory and PID pressure,
/// unschedulable; network-unavailable with `hostNetwork`).
pub fn daemon_set(
    ds: &DaemonSet,
    lookup: &impl Lookup,
) -> Result<Converted<model::DaemonSet>, ConvertError> {
    let meta = &ds.metadata;
    let mut report = Report::new(ObjectRef::namespaced("DaemonSet", meta));
    let template = ds.spec.as_ref().map(|s| &s.template);
    let mut pod = template_pod(
        meta,
        template,
        OwnerKind::DaemonSet,
        &[],
        lookup,
        &mut report,
    );
    let host_network = template
        .and_then(|t| t.spec.as_ref())
        .is_some_and(|s| s.host_network == Some(true));
    for t in daemon_tolerations(host_network) {
        if !pod.tolerations.contains(&t) {
            pod.tolerations.push(t);
        }
    }
    report.finish(model::DaemonSet {
        name: pod.name,
        pod,
    })
}

/// The label the API server gives every namespace, naming it.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A Namespace and its labels, with `kubernetes.io/metadata.name`, which the
/// API server always sets.
pub fn namespace(ns: &k8s::Namespace) -> Result<Converted<model::Namespace>, ConvertError> {
    let meta = &ns.metadata;
    let mut report = Report::new(ObjectRef::cluster("Namespace", meta));
    let name = meta.name.clone().unwrap_or_default();
    if name.is_empty() {
        report.required(
            &Path::root("metadata").field("name"),
            "give the namespace a name",
        );
    }
    let mut labels = meta.labels.clone().unwrap_or_default();
    labels
        .entry(NAMESPACE_NAME_LABEL.to_owned())
        .or_insert_with(|| name.clone());
    report.finish(model::Namespace {
        name: Sym::new(&name),
        labels: string_map(Some(&labels)),
    })
}
