//! Launch-template option sets: which launch template each instance type
//! of a launch uses.
//!
//! An instance type's template is fixed by its AMI (the first of the
//! EC2NodeClass's resolved AMIs whose requirements it meets) and its user
//! data, which carries the type's pod capacity and reserved resources. Types
//! that agree on all of it share one template, so a launch needs as many
//! templates as there are distinct option sets among its types.

use std::collections::BTreeMap;

use dovetail_api::ec2nodeclass::{Ami, EC2NodeClass, InstanceStorePolicy};
use dovetail_core::catalog::{CapacityType, InstanceType, SizingRef};
use dovetail_core::model::Taint;
use dovetail_core::requirements::{NodeSelectorRequirement, Operator, Requirements};
use dovetail_core::sym::Sym;

use super::fleet::TemplateRef;
use super::tags::{self, TagError, TagInputs};
use super::template::{LaunchInputs, LaunchTemplateOptions, TemplateError};
use crate::user_data::{self, Bootstrap, NodeTaint, UserDataError};

/// What the operator knows about the cluster (`CLUSTER_NAME`,
/// `CLUSTER_ENDPOINT`, `CLUSTER_CA_BUNDLE`, the service CIDR and the DNS
/// service's address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
    pub endpoint: String,
    pub ca_bundle: Option<String>,
    pub service_cidr: Option<String>,
    pub dns_ip: Option<String>,
}

/// The NodeClaim being launched.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    pub node_pool: &'a str,
    pub labels: &'a [(Sym, Sym)],
    pub taints: &'a [Taint],
    pub startup_taints: &'a [Taint],
    pub capacity_type: CapacityType,
}

/// Why a launch's templates cannot be worked out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    #[error("EC2NodeClass {0} names no AMI family and no alias: set spec.amiFamily")]
    NoAmiFamily(String),
    #[error(transparent)]
    Tags(#[from] TagError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    UserData(#[from] UserDataError),
}

/// The templates of one launch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OptionSets {
    /// By template name.
    pub templates: BTreeMap<String, LaunchTemplateOptions>,
    /// The template each launchable instance type uses.
    pub by_type: BTreeMap<Sym, TemplateRef>,
    /// Types none of the class's AMIs is for (wrong architecture, or a GPU
    /// type with only standard AMIs): they cannot launch with this class.
    pub without_ami: Vec<Sym>,
}

/// The first AMI whose requirements `instance_type` meets, as Karpenter
/// picks it. An AMI with unreadable requirements is never picked.
pub fn ami_for<'a>(amis: &'a [Ami], instance_type: &InstanceType) -> Option<&'a Ami> {
    let labels = Requirements::from_labels(instance_type.labels.iter().map(|(k, v)| (k, v)));
    amis.iter().find(|ami| {
        let terms: Option<Vec<NodeSelectorRequirement>> = ami
            .requirements
            .iter()
            .map(|r| {
                Some(NodeSelectorRequirement {
                    key: r.key.clone(),
                    operator: operator(&r.operator)?,
                    values: r.values.clone(),
                    min_values: None,
                })
            })
            .collect();
        let Some(terms) = terms else { return false };
        Requirements::from_terms(&terms)
            .is_ok_and(|wanted| labels.compatible(&wanted, false, "AMI").is_ok())
    })
}

fn operator(name: &str) -> Option<Operator> {
    use Operator::*;
    [In, NotIn, Exists, DoesNotExist, Gt, Lt, Gte, Lte]
        .into_iter()
        .find(|o| o.as_str() == name)
}

/// The launch template of every type in `types` (each with its sizing
/// under `class`) for `claim` with `class`.
pub fn option_sets(
    class: &EC2NodeClass,
    cluster: &Cluster,
    region: &str,
    claim: Claim<'_>,
    types: &[(&InstanceType, SizingRef<'_>)],
) -> Result<OptionSets, OptionsError> {
    let class_name = class.metadata.name.clone().unwrap_or_default();
    let family = class
        .ami_family()
        .ok_or_else(|| OptionsError::NoAmiFamily(class_name.clone()))?;
    let launch_tags = tags::launch_tags(TagInputs {
        cluster_name: &cluster.name,
        node_pool: claim.node_pool,
        node_class: &class_name,
        class_tags: &class.spec.tags,
    })?;
    let amis = class
        .status
        .as_ref()
        .map(|s| s.amis.as_slice())
        .unwrap_or_default();
    let to_node = |t: &[Taint]| t.iter().map(NodeTaint::from).collect::<Vec<_>>();
    let labels = user_data::node_labels(claim.labels, claim.capacity_type, &family);
    let mut sets = OptionSets::default();
    for &(it, size) in types {
        let Some(ami) = ami_for(amis, it) else {
            sets.without_ami.push(it.name);
            continue;
        };
        let bootstrap = Bootstrap {
            cluster_name: cluster.name.clone(),
            cluster_endpoint: cluster.endpoint.clone(),
            ca_bundle: cluster.ca_bundle.clone(),
            cluster_cidr: cluster.service_cidr.clone(),
            kubelet: user_data::resolved_kubelet(
                class.spec.kubelet.as_ref(),
                size,
                cluster.dns_ip.as_deref(),
            ),
            labels: labels.clone(),
            taints: to_node(claim.taints),
            startup_taints: to_node(claim.startup_taints),
            instance_store_raid0: class.spec.instance_store_policy
                == Some(InstanceStorePolicy::RAID0),
            custom: class.spec.user_data.clone(),
        };
        let encoded = user_data::user_data(&family, &bootstrap)?;
        let options = LaunchTemplateOptions::new(
            class,
            &LaunchInputs {
                region,
                family: &family,
                image_id: &ami.id,
                user_data: &encoded,
                capacity_type: claim.capacity_type,
                tags: &launch_tags,
            },
        )?;
        let name = options.name();
        sets.by_type.insert(
            it.name,
            TemplateRef {
                name: name.clone(),
                image_id: ami.id.clone(),
            },
        );
        sets.templates.entry(name).or_insert(options);
    }
    Ok(sets)
}
