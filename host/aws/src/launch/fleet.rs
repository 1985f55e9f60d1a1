//! `CreateFleet` requests: one instance, from a list of offerings in the
//! instance-selection policy's order.
//!
//! A fleet buys one capacity type: the first offering's, which is the
//! policy's first choice. Its overrides are that capacity type's offerings,
//! in the policy's order, for at most [`MAX_INSTANCE_TYPES`] instance types,
//! each in the zones where the EC2NodeClass has a subnet (one subnet per
//! zone). EC2 then picks with `price-capacity-optimized` for spot and
//! `lowest-price` for on-demand, as Karpenter asks.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::operation::create_fleet::CreateFleetInput;
use aws_sdk_ec2::types::{
    DefaultTargetCapacityType, FleetLaunchTemplateConfigRequest,
    FleetLaunchTemplateOverridesRequest, FleetLaunchTemplateSpecificationRequest,
    FleetOnDemandAllocationStrategy, FleetType, InstanceType, OnDemandOptionsRequest, ResourceType,
    SpotAllocationStrategy, SpotOptionsRequest, TagSpecification,
    TargetCapacitySpecificationRequest,
};
use dovetail_core::catalog::CapacityType;
use dovetail_core::scheduler::OfferingRef;
use dovetail_core::sym::Sym;

use super::template::to_tags;

/// Karpenter's cap on instance types in one fleet request.
pub const MAX_INSTANCE_TYPES: usize = 60;

/// A subnet the EC2NodeClass resolved, with its free addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetChoice {
    pub id: String,
    pub zone: String,
    pub available_ips: u64,
}

/// One subnet per zone: the one with the most free addresses, the lowest
/// id among equals.
pub fn subnet_per_zone(subnets: &[SubnetChoice]) -> BTreeMap<String, String> {
    let mut best: BTreeMap<&str, &SubnetChoice> = BTreeMap::new();
    for s in subnets {
        let better = best.get(s.zone.as_str()).is_none_or(|b| {
            (s.available_ips, std::cmp::Reverse(&s.id))
                > (b.available_ips, std::cmp::Reverse(&b.id))
        });
        if better {
            best.insert(&s.zone, s);
        }
    }
    best.into_iter()
        .map(|(zone, s)| (zone.to_string(), s.id.clone()))
        .collect()
}

/// The launch template (and its AMI) an instance type launches with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRef {
    pub name: String,
    pub image_id: String,
}

/// One override: an instance type in a zone's subnet.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub instance_type: Sym,
    pub zone: Sym,
    pub subnet_id: String,
    pub image_id: String,
    /// USD per hour, as the offering was priced.
    pub price: f64,
}

/// What a `CreateFleet` call asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetPlan {
    pub capacity_type: CapacityType,
    /// Instances wanted: one per NodeClaim merged into the call.
    pub count: i32,
    /// By launch template name, each in the policy's order.
    pub configs: BTreeMap<String, Vec<Override>>,
}

/// Why no fleet can be asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    #[error("no offering to launch")]
    NoOfferings,
    #[error(
        "no offering of {capacity_type} capacity is in a zone with a subnet (zones with subnets: {zones})"
    )]
    NoSubnet {
        capacity_type: CapacityType,
        zones: String,
    },
    #[error(
        "capacity reservations are not supported yet: the NodePool's first offering is reserved"
    )]
    Reserved,
}

/// The fleet for `offerings` (the policy's order), given the subnet of
/// each zone and each instance type's launch template. Offerings whose
/// type has no template are left out, as are repeated (type, zone) pairs.
pub fn plan(
    offerings: &[OfferingRef],
    subnets: &BTreeMap<String, String>,
    template_for: impl Fn(Sym) -> Option<TemplateRef>,
) -> Result<FleetPlan, FleetError> {
    let first = offerings.first().ok_or(FleetError::NoOfferings)?;
    let capacity_type = first.capacity_type;
    if capacity_type == CapacityType::Reserved {
        return Err(FleetError::Reserved);
    }
    let mut types: Vec<Sym> = Vec::new();
    let mut seen: BTreeSet<(Sym, Sym)> = BTreeSet::new();
    let mut configs: BTreeMap<String, Vec<Override>> = BTreeMap::new();
    for o in offerings
        .iter()
        .filter(|o| o.capacity_type == capacity_type)
    {
        let Some(subnet_id) = subnets.get(o.zone.as_str()) else {
            continue;
        };
        if !types.contains(&o.instance_type) {
            if types.len() == MAX_INSTANCE_TYPES {
                continue;
            }
            types.push(o.instance_type);
        }
        if !seen.insert((o.instance_type, o.zone)) {
            continue;
        }
        let Some(template) = template_for(o.instance_type) else {
            continue;
        };
        configs.entry(template.name).or_default().push(Override {
            instance_type: o.instance_type,
            zone: o.zone,
            subnet_id: subnet_id.clone(),
            image_id: template.image_id,
            price: o.price,
        });
    }
    if configs.is_empty() {
        return Err(FleetError::NoSubnet {
            capacity_type,
            zones: subnets.keys().cloned().collect::<Vec<_>>().join(", "),
        });
    }
    Ok(FleetPlan {
        capacity_type,
        count: 1,
        configs,
    })
}

impl FleetPlan {
    /// Every override, in template-name order then the policy's.
    pub fn overrides(&self) -> impl Iterator<Item = &Override> {
        self.configs.values().flatten()
    }

    /// The distinct instance types asked for.
    pub fn instance_types(&self) -> BTreeSet<Sym> {
        self.overrides().map(|o| o.instance_type).collect()
    }

    /// The `CreateFleet` request: `instant`, the plan's count, tagged on
    /// the instance, its volumes and the fleet, with the EC2NodeClass's
    /// `context` if it has one.
    pub fn request(
        &self,
        tags: &BTreeMap<String, String>,
        context: Option<&str>,
    ) -> CreateFleetInput {
        let configs = self
            .configs
            .iter()
            .map(|(name, overrides)| {
                FleetLaunchTemplateConfigRequest::builder()
                    .launch_template_specification(
                        FleetLaunchTemplateSpecificationRequest::builder()
                            .launch_template_name(name)
                            .version("$Latest")
                            .build(),
                    )
                    .set_overrides(Some(
                        overrides
                            .iter()
                            .map(|o| {
                                FleetLaunchTemplateOverridesRequest::builder()
                                    .instance_type(InstanceType::from(o.instance_type.as_str()))
                                    .subnet_id(&o.subnet_id)
                                    .availability_zone(o.zone.as_str())
                                    .image_id(&o.image_id)
                                    .build()
                            })
                            .collect(),
                    ))
                    .build()
            })
            .collect();
        let spot = self.capacity_type == CapacityType::Spot;
        let tag_specifications = [
            ResourceType::Instance,
            ResourceType::Volume,
            ResourceType::Fleet,
        ]
        .into_iter()
        .map(|r| {
            TagSpecification::builder()
                .resource_type(r)
                .set_tags(Some(to_tags(tags)))
                .build()
        })
        .collect();
        let mut input = CreateFleetInput::builder()
            .r#type(FleetType::Instant)
            .set_launch_template_configs(Some(configs))
            .target_capacity_specification(
                TargetCapacitySpecificationRequest::builder()
                    .total_target_capacity(self.count)
                    .default_target_capacity_type(if spot {
                        DefaultTargetCapacityType::Spot
                    } else {
                        DefaultTargetCapacityType::OnDemand
                    })
                    .build(),
            )
            .set_tag_specifications(Some(tag_specifications))
            .set_context(context.map(str::to_string));
        input = if spot {
            input.spot_options(
                SpotOptionsRequest::builder()
                    .allocation_strategy(SpotAllocationStrategy::PriceCapacityOptimized)
                    .build(),
            )
        } else {
            input.on_demand_options(
                OnDemandOptionsRequest::builder()
                    .allocation_strategy(FleetOnDemandAllocationStrategy::LowestPrice)
                    .build(),
            )
        };
        input
            .build()
            .expect("CreateFleet input has its required fields")
    }
}
