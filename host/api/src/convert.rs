//! From the API to `dovetail-core`: a NodePool to the model the engines
//! decide on, an EC2NodeClass to the catalog's capacity settings. Both
//! validate first, so what converts is what Karpenter would accept.

use std::time::Duration;

use dovetail_core::catalog::{CatalogSettings, EvictionThreshold, KubeReserved};
use dovetail_core::disruption::budgets::{self, BudgetWindow};
use dovetail_core::model::{self, sorted_labels};
use dovetail_core::nodeclaim;
use dovetail_core::requirements::{self, Requirement};
use dovetail_core::resources::{self, Resources};
use dovetail_core::sym::Sym;

use crate::ec2nodeclass::{AmiFamily, EC2NodeClass, InstanceStorePolicy};
use crate::error::{ErrorKind, FieldError, Path, ValidationErrors};
use crate::nodeclaim::NodeClaim;
use crate::nodepool::{self, ConsolidationPolicy, DisruptionReason, NodePool};
use crate::requirement::{NodeSelectorRequirementWithMinValues, Operator};
use crate::taint::{Taint, TaintEffect};

/// Why an object cannot be converted: it is invalid, or uses something the
/// engines do not model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
}

fn unsupported(
    kind: &'static str,
    name: &str,
    path: &Path,
    message: String,
    fix: &str,
) -> ConversionError {
    ConversionError::Invalid(ValidationErrors {
        kind,
        name: name.to_owned(),
        errors: vec![FieldError {
            path: path.to_string(),
            kind: ErrorKind::NotSupported,
            message,
            fix: fix.to_owned(),
        }],
    })
}

/// A checked duration; validation has accepted its text.
fn duration_of(text: &str) -> Duration {
    dovetail_core::disruption::parse_go_duration(text).unwrap_or_default()
}

impl NodePool {
    /// The NodePool as the engines see it. Validates first.
    pub fn to_core(&self) -> Result<model::NodePool, ConversionError> {
        self.validate()?;
        let name = self.name();
        let fail = |path: Path, message: String, fix: &str| {
            unsupported(nodepool::KIND, name, &path, message, fix)
        };
        let spec = &self.spec;
        let t = &spec.template;
        let tspec = Path::root("spec").field("template").field("spec");
        if spec.replicas.is_some() {
            return Err(fail(
                Path::root("spec").field("replicas"),
                "static NodePools (`replicas`) are not supported by Dovetail yet".into(),
                "remove `replicas` to let Dovetail size the pool",
            ));
        }
        let mut pool = model::NodePool::new(name);
        pool.weight = spec.weight.unwrap_or(0);
        pool.labels = sorted_labels(
            t.metadata
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        pool.annotations = sorted_labels(
            t.metadata
                .annotations
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        pool.taints = t.spec.taints.iter().map(core_taint).collect();
        pool.startup_taints = t.spec.startup_taints.iter().map(core_taint).collect();
        pool.requirements = Vec::with_capacity(t.spec.requirements.len());
        for (i, r) in t.spec.requirements.iter().enumerate() {
            let term = core_requirement(r);
            // The engines' own reading of a requirement, which validation has
            // already matched; kept so nothing unreadable slips through.
            Requirement::from_term(&term).map_err(|e| {
                fail(
                    tspec.field("requirements").index(i),
                    e.to_string(),
                    "fix the requirement",
                )
            })?;
            pool.requirements.push(term);
        }
        if let Some(r) = &t.spec.node_class_ref {
            pool.node_class_ref = model::NodeClassRef {
                group: r.group.clone(),
                kind: r.kind.clone(),
                name: r.name.clone(),
            };
        }
        pool.expire_after = t.spec.expire_after.duration().unwrap_or(None);
        pool.termination_grace_period = t
            .spec
            .termination_grace_period
            .as_ref()
            .and_then(|d| d.duration());
        pool.limits = Vec::with_capacity(spec.limits.len());
        for (resource, q) in &spec.limits {
            let parsed = if resource == resources::CPU {
                resources::parse_milli(&q.0)
            } else {
                resources::parse_units(&q.0)
            }
            .map_err(|e| {
                fail(
                    Path::root("spec").field("limits").key(resource),
                    e.to_string(),
                    "give a quantity such as `100` or `400Gi`",
                )
            })?;
            pool.limits.push((Sym::new(resource), parsed));
        }
        let d = &spec.disruption;
        pool.disruption.consolidation_policy = match d.consolidation_policy {
            ConsolidationPolicy::WhenEmpty => model::ConsolidationPolicy::WhenEmpty,
            ConsolidationPolicy::Balanced => model::ConsolidationPolicy::Balanced,
            _ => model::ConsolidationPolicy::WhenEmptyOrUnderutilized,
        };
        pool.disruption.consolidate_after = d.consolidate_after.duration().unwrap_or(None);
        pool.disruption.budgets = Vec::with_capacity(d.budgets.len());
        for (i, b) in d.budgets.iter().enumerate() {
            let at = Path::root("spec")
                .field("disruption")
                .field("budgets")
                .index(i);
            let bad = |field: &str, e: budgets::InvalidBudget| {
                fail(at.field(field), e.to_string(), "see the message")
            };
            let window = match (&b.schedule, &b.duration) {
                (Some(s), Some(duration)) => Some(
                    BudgetWindow::new(
                        s.parse().map_err(|e| bad("schedule", e))?,
                        duration_of(duration.as_str()),
                    )
                    .map_err(|e| bad("duration", e))?,
                ),
                _ => None,
            };
            pool.disruption.budgets.push(model::Budget {
                nodes: b.nodes.parse().map_err(|e| bad("nodes", e))?,
                reasons: b.reasons.iter().filter_map(core_reason).collect(),
                window,
            });
        }
        Ok(pool)
    }

    /// Dovetail's drift hash of the template ([`model::NodePool::template_hash`]).
    pub fn template_hash(&self) -> Result<u64, ConversionError> {
        self.to_core().map(|p| p.template_hash())
    }
}

impl NodeClaim {
    /// The NodeClaim as the controller's state holds it: its spec, the
    /// NodePool it belongs to (its `karpenter.sh/nodepool` label) and the
    /// template hash it was made from, creation and deletion times, whether
    /// the termination finalizer is on it, and the status Karpenter wrote
    /// (node name, provider ID, image, capacity, allocatable, conditions of
    /// the types Karpenter sets). Validates first. The launch list and the
    /// launched offering (with its price) are the cloud provider's to fill.
    pub fn to_core(&self) -> Result<nodeclaim::NodeClaim, ConversionError> {
        self.validate()?;
        let meta = &self.metadata;
        let spec = &self.spec;
        let labels = sorted_labels(
            meta.labels
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let annotations = sorted_labels(
            meta.annotations
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let node_pool = model::label(&labels, Sym::new(dovetail_core::labels::NODE_POOL));
        let node_pool_hash =
            model::label(&annotations, Sym::new(nodeclaim::NODEPOOL_HASH_ANNOTATION))
                .and_then(|h| h.as_str().parse().ok());
        let ms = |t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time| {
            u64::try_from(t.0.as_millisecond()).unwrap_or(0)
        };
        let mut status = nodeclaim::NodeClaimStatus::default();
        if let Some(s) = &self.status {
            status.node_name = s
                .node_name
                .as_deref()
                .filter(|n| !n.is_empty())
                .map(Sym::new);
            status.provider_id = s.provider_id.clone().filter(|p| !p.is_empty());
            status.image_id = s.image_id.clone().filter(|i| !i.is_empty());
            let list = |m: &std::collections::BTreeMap<
                String,
                k8s_openapi::apimachinery::pkg::api::resource::Quantity,
            >| {
                // Validation has accepted every quantity.
                Resources::from_list(m.iter().map(|(k, v)| (k.as_str(), v.0.as_str())))
                    .unwrap_or_default()
            };
            status.capacity = list(&s.capacity);
            status.allocatable = list(&s.allocatable);
            status.last_pod_event_ms = s.last_pod_event_time.as_ref().map(ms);
            for c in &s.conditions {
                let Some(kind) = nodeclaim::ConditionType::from_name(&c.type_) else {
                    continue;
                };
                let status_of = match c.status {
                    crate::ConditionStatus::True => nodeclaim::ConditionStatus::True,
                    crate::ConditionStatus::False => nodeclaim::ConditionStatus::False,
                    _ => nodeclaim::ConditionStatus::Unknown,
                };
                let reason = if status_of == nodeclaim::ConditionStatus::True
                    && (c.reason.is_empty() || c.reason == c.type_)
                {
                    nodeclaim::ConditionReason::Succeeded(kind)
                } else {
                    nodeclaim::ConditionReason::parse(kind, &c.reason)
                };
                status.conditions.push(nodeclaim::Condition {
                    kind,
                    status: status_of,
                    reason,
                    message: c.message.clone(),
                    last_transition_ms: c.last_transition_time.as_ref().map_or(0, ms),
                });
            }
        }
        let node_class_ref = spec
            .node_class_ref
            .as_ref()
            .map(|r| model::NodeClassRef {
                group: r.group.clone(),
                kind: r.kind.clone(),
                name: r.name.clone(),
            })
            .unwrap_or_default();
        Ok(nodeclaim::NodeClaim {
            name: Sym::new(self.name()),
            node_pool,
            labels,
            annotations,
            requirements: spec.requirements.iter().map(core_requirement).collect(),
            requests: Resources::from_list(
                spec.resources
                    .requests
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.0.as_str())),
            )
            .unwrap_or_default(),
            taints: spec.taints.iter().map(core_taint).collect(),
            startup_taints: spec.startup_taints.iter().map(core_taint).collect(),
            node_class_ref,
            expire_after: spec.expire_after.duration().unwrap_or(None),
            termination_grace_period: spec
                .termination_grace_period
                .as_ref()
                .and_then(|d| d.duration()),
            launch: Vec::new(),
            node_pool_hash,
            created_ms: meta.creation_timestamp.as_ref().map_or(0, ms),
            deletion_ms: meta.deletion_timestamp.as_ref().map(ms),
            finalizer: meta
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == nodeclaim::TERMINATION_FINALIZER),
            status,
        })
    }
}

fn core_reason(r: &DisruptionReason) -> Option<budgets::DisruptionReason> {
    match r {
        DisruptionReason::Empty => Some(budgets::DisruptionReason::Empty),
        DisruptionReason::Underutilized => Some(budgets::DisruptionReason::Underutilized),
        DisruptionReason::Drifted => Some(budgets::DisruptionReason::Drifted),
        DisruptionReason::Other(_) => None,
    }
}

fn core_taint(t: &Taint) -> model::Taint {
    model::Taint {
        key: Sym::new(&t.key),
        value: t.value.as_deref().filter(|v| !v.is_empty()).map(Sym::new),
        effect: match t.effect {
            TaintEffect::PreferNoSchedule => model::TaintEffect::PreferNoSchedule,
            TaintEffect::NoExecute => model::TaintEffect::NoExecute,
            _ => model::TaintEffect::NoSchedule,
        },
    }
}

fn core_requirement(
    r: &NodeSelectorRequirementWithMinValues,
) -> requirements::NodeSelectorRequirement {
    use requirements::Operator as Op;
    requirements::NodeSelectorRequirement {
        key: r.key.clone(),
        operator: match r.operator {
            Operator::In => Op::In,
            Operator::NotIn => Op::NotIn,
            Operator::Exists => Op::Exists,
            Operator::DoesNotExist => Op::DoesNotExist,
            Operator::Gt => Op::Gt,
            Operator::Lt => Op::Lt,
            Operator::Gte => Op::Gte,
            Operator::Lte | Operator::Other(_) => Op::Lte,
        },
        values: r.values.clone(),
        min_values: r.min_values.and_then(|m| u32::try_from(m).ok()),
    }
}

/// The device that holds a family's ephemeral storage, and its default size.
fn ephemeral_device(family: &AmiFamily) -> Option<(&'static str, i64)> {
    match family {
        AmiFamily::AL2 | AmiFamily::AL2023 => Some(("/dev/xvda", 20 * resources::GIB)),
        AmiFamily::Bottlerocket => Some(("/dev/xvdb", 20 * resources::GIB)),
        AmiFamily::Windows2019 | AmiFamily::Windows2022 | AmiFamily::Windows2025 => {
            Some(("/dev/sda1", 50 * resources::GIB))
        }
        AmiFamily::Custom | AmiFamily::Other(_) => None,
    }
}

/// Karpenter's default EBS volume.
const DEFAULT_VOLUME: i64 = 20 * resources::GIB;

impl EC2NodeClass {
    /// `base` (the operator's settings: VM overhead, reserved ENIs, spot
    /// model) with this class's kubelet and root volume applied, as
    /// Karpenter sizes nodes: `maxPods`, `podsPerCore` (not on
    /// Bottlerocket), `kubeReserved` and `systemReserved`, `evictionHard`
    /// `memory.available` and `nodefs.available`, and the ephemeral storage
    /// from the root volume (or the family's default device). Validates
    /// first. Instance-store RAID0 storage, which differs per instance type,
    /// is refused.
    pub fn catalog_settings(
        &self,
        base: &CatalogSettings,
    ) -> Result<CatalogSettings, ConversionError> {
        self.validate()?;
        let name = self.name();
        let spec_path = Path::root("spec");
        let fail = |path: Path, message: String, fix: &str| {
            unsupported(crate::ec2nodeclass::KIND, name, &path, message, fix)
        };
        let family = self.ami_family().unwrap_or(AmiFamily::AL2023);
        let mut s = base.clone();
        let windows = matches!(
            family,
            AmiFamily::Windows2019 | AmiFamily::Windows2022 | AmiFamily::Windows2025
        );
        let bottlerocket = family == AmiFamily::Bottlerocket;
        s.eni_limited_memory_overhead = !(windows || bottlerocket);
        let spec = &self.spec;
        if spec.instance_store_policy == Some(InstanceStorePolicy::RAID0) {
            return Err(fail(
                spec_path.field("instanceStorePolicy"),
                "instance-store RAID0 ephemeral storage depends on the instance type, which Dovetail's catalog settings cannot express yet".into(),
                "remove instanceStorePolicy to size ephemeral storage from the root volume",
            ));
        }
        let kubelet = spec.kubelet.clone().unwrap_or_default();
        let kpath = spec_path.field("kubelet");
        s.max_pods = match kubelet.max_pods {
            Some(n) => Some(u32::try_from(n).unwrap_or(0)),
            // Windows has no ENI-limited pod density.
            None if windows => Some(110),
            None => base.max_pods,
        };
        if let Some(n) = kubelet.pods_per_core {
            s.pods_per_core = (!bottlerocket).then(|| u32::try_from(n).unwrap_or(0));
        }
        let quantity = |field: &str, key: &str, text: &str| -> Result<i64, ConversionError> {
            let parsed = if key == "cpu" {
                resources::parse_milli(text)
            } else {
                resources::parse_units(text)
            };
            parsed.map_err(|e| {
                fail(
                    kpath.field(field).key(key),
                    e.to_string(),
                    "give a quantity such as `100m` or `1Gi`",
                )
            })
        };
        let mut kube_reserved = KubeReserved::default();
        for (key, v) in &kubelet.kube_reserved {
            let q = quantity("kubeReserved", key, v)?;
            match key.as_str() {
                "cpu" => kube_reserved.cpu = Some(q),
                "memory" => kube_reserved.memory = Some(q),
                "ephemeral-storage" => kube_reserved.ephemeral_storage = Some(q),
                _ => {}
            }
        }
        s.kube_reserved = kube_reserved;
        let mut system_reserved = Resources::default();
        for (key, v) in &kubelet.system_reserved {
            let q = quantity("systemReserved", key, v)?;
            match key.as_str() {
                "cpu" => system_reserved.cpu = q,
                "memory" => system_reserved.memory = q,
                "ephemeral-storage" => system_reserved.ephemeral = q,
                _ => {}
            }
        }
        s.system_reserved = system_reserved;
        for (key, v) in &kubelet.eviction_hard {
            let threshold = match v.strip_suffix('%') {
                Some(p) => EvictionThreshold::Percent(p.parse().map_err(|_| {
                    fail(
                        kpath.field("evictionHard").key(key),
                        format!("`{v}` is not a percentage"),
                        "write it like `10%`",
                    )
                })?),
                None => EvictionThreshold::Quantity(quantity("evictionHard", key, v)?),
            };
            match key.as_str() {
                "memory.available" => s.eviction_memory = threshold,
                "nodefs.available" => s.eviction_nodefs = threshold,
                _ => {}
            }
        }
        s.ephemeral_storage = self
            .ephemeral_storage(&family)
            .map_err(|(path, e)| fail(path, e, "give the size as a quantity such as `100Gi`"))?;
        Ok(s)
    }

    /// Bytes of ephemeral storage, as Karpenter's `ephemeralStorage` reads
    /// the block device mappings.
    fn ephemeral_storage(&self, family: &AmiFamily) -> Result<i64, (Path, String)> {
        let mappings = &self.spec.block_device_mappings;
        let size = |i: usize| -> Result<Option<i64>, (Path, String)> {
            let Some(q) = mappings[i]
                .ebs
                .as_ref()
                .and_then(|e| e.volume_size.as_ref())
            else {
                return Ok(None);
            };
            let path = Path::root("spec")
                .field("blockDeviceMappings")
                .index(i)
                .field("ebs")
                .field("volumeSize");
            resources::parse_units(&q.0)
                .map(Some)
                .map_err(|e| (path, e.to_string()))
        };
        if !mappings.is_empty() {
            if let Some(i) = mappings.iter().position(|m| m.root_volume)
                && let Some(bytes) = size(i)?
            {
                return Ok(bytes);
            }
            match ephemeral_device(family) {
                None => return Ok(size(mappings.len() - 1)?.unwrap_or(DEFAULT_VOLUME)),
                Some((device, _)) => {
                    if let Some(i) = mappings
                        .iter()
                        .position(|m| m.device_name.as_deref() == Some(device))
                        && let Some(bytes) = size(i)?
                    {
                        return Ok(bytes);
                    }
                }
            }
        }
        Ok(ephemeral_device(family).map_or(DEFAULT_VOLUME, |(_, bytes)| bytes))
    }
}
