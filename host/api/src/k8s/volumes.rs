//! Volume topology: the zones a pod's volumes confine it to, from their
//! PersistentVolumes' node affinity or their StorageClasses' allowed
//! topologies, as Karpenter's `VolumeTopology` reads them.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1 as k8s;

use dovetail_core::labels;
use dovetail_core::requirements::{NodeSelectorRequirement, Operator, Requirement};
use dovetail_core::sym::Sym;

use crate::error::{ErrorKind, Path};

use super::WarningReason;
use super::lookup::Lookup;
use super::pod::Source;
use super::report::Report;
use super::selectors::node_operator;
use super::selectors::normalized_label;

/// What a pod's volumes require of its node.
#[derive(Debug, Default)]
pub(crate) struct Topology {
    /// The zones every volume allows; `None` when no volume constrains the
    /// zone, empty when they allow no zone in common.
    pub zones: Option<Vec<Sym>>,
    /// Requirements on other keys, for every node-affinity term.
    pub requirements: Vec<NodeSelectorRequirement>,
}

struct Collect<'a> {
    zones: Option<BTreeSet<Sym>>,
    requirements: Vec<NodeSelectorRequirement>,
    lookup: &'a dyn Lookup,
}

pub(crate) fn topology(
    src: &Source<'_>,
    namespace: &str,
    lookup: &dyn Lookup,
    report: &mut Report,
) -> Topology {
    let mut c = Collect {
        zones: None,
        requirements: Vec::new(),
        lookup,
    };
    for (i, v) in src.spec.volumes.iter().flatten().enumerate() {
        let at = src.path.field("volumes").index(i);
        if let Some(pvc) = &v.persistent_volume_claim {
            match lookup.claim(namespace, &pvc.claim_name) {
                Some(claim) => c.claim(claim.spec.as_ref(), &at, report),
                None => report.warn(
                    &at.field("persistentVolumeClaim").field("claimName"),
                    WarningReason::UnresolvedClaim {
                        namespace: namespace.to_owned(),
                        name: pvc.claim_name.clone(),
                    },
                ),
            }
        } else if let Some(ephemeral) = &v.ephemeral {
            // The ephemeral-volume controller names the claim after the pod
            // and the volume; until it exists its template says where the
            // volume will be provisioned.
            let created = (!src.template)
                .then(|| lookup.claim(namespace, &format!("{}-{}", src.pod_name, v.name)))
                .flatten();
            match (created, &ephemeral.volume_claim_template) {
                (Some(claim), _) => c.claim(claim.spec.as_ref(), &at, report),
                (None, Some(t)) => c.claim(Some(&t.spec), &at, report),
                (None, None) => {}
            }
        }
    }
    for (i, claim) in src.claim_templates.iter().enumerate() {
        let at = src
            .claim_templates_path
            .field("volumeClaimTemplates")
            .index(i);
        c.claim(claim.spec.as_ref(), &at, report);
    }
    Topology {
        zones: c.zones.map(|z| z.into_iter().collect()),
        requirements: c.requirements,
    }
}

impl Collect<'_> {
    /// A claim's requirements: its bound volume's, else its class's.
    fn claim(
        &mut self,
        spec: Option<&k8s::PersistentVolumeClaimSpec>,
        at: &Path,
        report: &mut Report,
    ) {
        let Some(spec) = spec else {
            return;
        };
        if let Some(name) = spec.volume_name.as_deref().filter(|n| !n.is_empty()) {
            match self.lookup.volume(name) {
                Some(pv) => self.volume(pv, at, report),
                None => report.warn(
                    at,
                    WarningReason::UnresolvedVolume {
                        name: name.to_owned(),
                    },
                ),
            }
            return;
        }
        let class = match spec.storage_class_name.as_deref() {
            // No class: the claim binds only to a volume made beforehand.
            Some("") => return,
            Some(name) => match self.lookup.storage_class(name) {
                Some(c) => c,
                None => {
                    report.warn(
                        at,
                        WarningReason::UnresolvedStorageClass {
                            name: name.to_owned(),
                        },
                    );
                    return;
                }
            },
            None => match self.lookup.default_storage_class() {
                Some(c) => c,
                None => return,
            },
        };
        let owner = format!(
            "StorageClass `{}`",
            class.metadata.name.as_deref().unwrap_or_default()
        );
        // Terms are ORed; Karpenter uses the first.
        if let Some(term) = class.allowed_topologies.iter().flatten().next() {
            for e in term.match_label_expressions.iter().flatten() {
                let r = NodeSelectorRequirement {
                    key: e.key.clone(),
                    operator: Operator::In,
                    values: e.values.clone(),
                    min_values: None,
                };
                self.add(r, &owner, at, report);
            }
        }
    }

    fn volume(&mut self, pv: &k8s::PersistentVolume, at: &Path, report: &mut Report) {
        let Some(spec) = &pv.spec else {
            return;
        };
        let owner = format!(
            "PersistentVolume `{}`",
            pv.metadata.name.as_deref().unwrap_or_default()
        );
        let Some(term) = spec
            .node_affinity
            .as_ref()
            .and_then(|a| a.required.as_ref())
            .and_then(|r| r.node_selector_terms.first())
        else {
            return;
        };
        // A local or hostPath volume's hostname pins the node it was made
        // on; a rescheduled pod gets a new volume, so Karpenter drops it.
        let local = spec.local.is_some() || spec.host_path.is_some();
        for e in term.match_expressions.iter().flatten() {
            if local && e.key == labels::HOSTNAME {
                continue;
            }
            let Some(operator) = node_operator(&e.operator) else {
                report.error(
                    at,
                    ErrorKind::NotSupported,
                    format!("{owner} has node affinity operator `{}`", e.operator),
                    "fix the volume's spec.nodeAffinity: use In, NotIn, Exists, DoesNotExist, Gt or Lt",
                );
                continue;
            };
            let r = NodeSelectorRequirement {
                key: e.key.clone(),
                operator,
                values: e.values.clone().unwrap_or_default(),
                min_values: None,
            };
            self.add(r, &owner, at, report);
        }
    }

    fn add(&mut self, mut r: NodeSelectorRequirement, owner: &str, at: &Path, report: &mut Report) {
        r.key = normalized_label(&r.key).to_owned();
        if let Err(e) = Requirement::from_term(&r) {
            report.error(
                at,
                ErrorKind::Invalid,
                format!("{owner} has a topology requirement Dovetail cannot read: {e}"),
                "fix the requirement in that object",
            );
            return;
        }
        if r.key == labels::ZONE && r.operator == Operator::In {
            let zones: BTreeSet<Sym> = r.values.iter().map(|z| Sym::new(z)).collect();
            let before = self.zones.as_ref().is_none_or(|z| !z.is_empty());
            let now = match self.zones.take() {
                Some(prev) => prev.intersection(&zones).copied().collect(),
                None => zones,
            };
            if before && now.is_empty() {
                report.warn(at, WarningReason::DisjointVolumeZones);
            }
            self.zones = Some(now);
            return;
        }
        report.warn(at, WarningReason::VolumeRequirement { key: r.key.clone() });
        self.requirements.push(r);
    }
}
