//! EC2 instances as the cloud port reports them: `DescribeInstances` output
//! to [`Instance`], with what the catalog knows of the instance's type
//! (labels, capacity, allocatable, the offering's price).

use aws_sdk_ec2::types::{Instance as Ec2Instance, InstanceLifecycleType, InstanceStateName};
use dovetail_control::cloud::{Instance, InstanceState};
use dovetail_control::snapshot::{instance_labels, sort_labels};
use dovetail_core::catalog::{CapacityType, Catalog};
use dovetail_core::labels;
use dovetail_core::model::Labels;
use dovetail_core::requirements::NodeSelectorRequirement;
use dovetail_core::sym::Sym;

use crate::launch::tags::{NODE_CLAIM, NODE_CLASS};

/// Why a `DescribeInstances` entry cannot be reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceError {
    #[error("EC2 described an instance without {0}")]
    Missing(&'static str),
}

/// `aws:///<zone>/<instance-id>`.
pub fn provider_id(zone: &str, instance_id: &str) -> String {
    format!("aws:///{zone}/{instance_id}")
}

/// The instance ID of a provider ID (its last path segment), if it has one.
pub fn instance_id(provider_id: &str) -> Option<&str> {
    let rest = provider_id.strip_prefix("aws:///")?;
    let id = rest.rsplit('/').next()?;
    id.starts_with("i-").then_some(id)
}

/// How it was bought: spot from its lifecycle, on-demand otherwise.
pub fn capacity_type(instance: &Ec2Instance) -> CapacityType {
    match instance.instance_lifecycle() {
        Some(InstanceLifecycleType::Spot) => CapacityType::Spot,
        _ => CapacityType::OnDemand,
    }
}

/// Its state. A stopping or stopped instance still exists and still costs
/// its volumes, so it counts as running: garbage collection may take it.
pub fn state(instance: &Ec2Instance) -> InstanceState {
    match instance.state().and_then(|s| s.name()) {
        Some(InstanceStateName::Pending) => InstanceState::Pending,
        Some(InstanceStateName::ShuttingDown) => InstanceState::ShuttingDown,
        Some(InstanceStateName::Terminated) => InstanceState::Terminated,
        _ => InstanceState::Running,
    }
}

/// The value of tag `key`.
pub fn tag<'a>(instance: &'a Ec2Instance, key: &str) -> Option<&'a str> {
    instance
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// The node labels an instance of `instance_type` gets in `zone` with
/// `capacity_type`: the catalog type's (multi-valued ones as
/// `requirements` pin them), zone, capacity type and region.
pub fn labels(
    catalog: &Catalog,
    instance_type: Sym,
    zone: Sym,
    capacity_type: CapacityType,
    requirements: &[NodeSelectorRequirement],
) -> Labels {
    let mut l = match catalog.get(instance_type.as_str()) {
        Some(it) => instance_labels(it, zone, capacity_type, requirements),
        None => vec![
            (Sym::new(labels::INSTANCE_TYPE), instance_type),
            (Sym::new(labels::ZONE), zone),
            (
                Sym::new(labels::CAPACITY_TYPE),
                Sym::new(capacity_type.label()),
            ),
        ],
    };
    l.push((Sym::new(labels::REGION), catalog.region));
    sort_labels(l)
}

/// The port's view of a described instance. A type the catalog does not
/// know (dropped since launch) still reports, without capacity or price.
pub fn from_ec2(
    instance: &Ec2Instance,
    catalog: &Catalog,
    requirements: &[NodeSelectorRequirement],
) -> Result<Instance, InstanceError> {
    let id = instance
        .instance_id()
        .ok_or(InstanceError::Missing("an instance ID"))?;
    let zone = instance
        .placement()
        .and_then(|p| p.availability_zone())
        .ok_or(InstanceError::Missing("an availability zone"))?;
    let type_name = instance
        .instance_type()
        .ok_or(InstanceError::Missing("an instance type"))?;
    let instance_type = Sym::new(type_name.as_str());
    let zone = Sym::new(zone);
    let capacity_type = capacity_type(instance);
    let it = catalog.get(instance_type.as_str());
    let price = it
        .and_then(|it| it.offering(zone.as_str(), capacity_type))
        .map_or(0.0, |o| o.price);
    // Sized as its EC2NodeClass sizes nodes (its kubelet settings).
    let size = catalog.sizing(
        instance_type.as_str(),
        tag(instance, NODE_CLASS).unwrap_or_default(),
    );
    Ok(Instance {
        provider_id: provider_id(zone.as_str(), id),
        instance_type,
        zone,
        capacity_type,
        price,
        image_id: instance.image_id().map(str::to_string),
        labels: labels(catalog, instance_type, zone, capacity_type, requirements),
        capacity: size.map(|s| s.capacity.clone()).unwrap_or_default(),
        allocatable: size.map(|s| s.allocatable()).unwrap_or_default(),
        state: state(instance),
        launched_ms: instance.launch_time().map_or(0, launched_ms),
        node_claim: tag(instance, NODE_CLAIM).map(Sym::new),
    })
}

fn launched_ms(t: &aws_sdk_ec2::primitives::DateTime) -> u64 {
    t.to_millis().map_or(0, |ms| u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{InstanceState as Ec2State, InstanceType, Placement, Tag};

    fn described(
        state: InstanceStateName,
        lifecycle: Option<InstanceLifecycleType>,
    ) -> Ec2Instance {
        Ec2Instance::builder()
            .instance_id("i-0abc")
            .instance_type(InstanceType::from("m5.large"))
            .placement(Placement::builder().availability_zone("us-east-1b").build())
            .image_id("ami-1")
            .state(Ec2State::builder().name(state).build())
            .set_instance_lifecycle(lifecycle)
            .launch_time(aws_sdk_ec2::primitives::DateTime::from_millis(
                1_700_000_000_123,
            ))
            .tags(
                Tag::builder()
                    .key(NODE_CLAIM)
                    .value("default-x7k2p")
                    .build(),
            )
            .build()
    }

    #[test]
    fn a_described_instance_reports_its_offering_labels_and_claim() {
        let catalog = Catalog::aws_us_east_1();
        let i = from_ec2(
            &described(
                InstanceStateName::Running,
                Some(InstanceLifecycleType::Spot),
            ),
            &catalog,
            &[],
        )
        .unwrap();
        assert_eq!(i.provider_id, "aws:///us-east-1b/i-0abc");
        assert_eq!(i.capacity_type, CapacityType::Spot);
        assert_eq!(i.state, InstanceState::Running);
        assert_eq!(i.launched_ms, 1_700_000_000_123);
        assert_eq!(i.node_claim, Some(Sym::new("default-x7k2p")));
        assert_eq!(i.image_id.as_deref(), Some("ami-1"));
        let it = catalog.get("m5.large").unwrap();
        assert_eq!(i.capacity, it.capacity);
        assert_eq!(i.allocatable, it.allocatable());
        let price = it.offering("us-east-1b", CapacityType::Spot).unwrap().price;
        assert_eq!(i.price, price);
        let label =
            |k: &str| dovetail_core::model::label(&i.labels, Sym::new(k)).map(|v| v.to_string());
        assert_eq!(label(labels::ZONE).as_deref(), Some("us-east-1b"));
        assert_eq!(label(labels::CAPACITY_TYPE).as_deref(), Some("spot"));
        assert_eq!(label(labels::REGION).as_deref(), Some("us-east-1"));
        assert_eq!(label(labels::INSTANCE_TYPE).as_deref(), Some("m5.large"));
        assert_eq!(label(labels::INSTANCE_CPU).as_deref(), Some("2"));
    }

    #[test]
    fn lifecycle_and_state_map_to_the_port() {
        let catalog = Catalog::aws_us_east_1();
        let on_demand =
            from_ec2(&described(InstanceStateName::Pending, None), &catalog, &[]).unwrap();
        assert_eq!(on_demand.capacity_type, CapacityType::OnDemand);
        assert_eq!(on_demand.state, InstanceState::Pending);
        for (name, want) in [
            (InstanceStateName::ShuttingDown, InstanceState::ShuttingDown),
            (InstanceStateName::Terminated, InstanceState::Terminated),
            (InstanceStateName::Stopped, InstanceState::Running),
        ] {
            assert_eq!(state(&described(name, None)), want);
        }
    }

    #[test]
    fn provider_ids_round_trip() {
        assert_eq!(
            instance_id(&provider_id("us-east-1a", "i-0123")),
            Some("i-0123")
        );
        assert_eq!(instance_id("kind://node"), None);
        assert_eq!(instance_id("aws:///us-east-1a/"), None);
    }

    #[test]
    fn an_instance_without_an_id_is_an_error_not_a_panic() {
        let bare = Ec2Instance::builder().build();
        assert_eq!(
            from_ec2(&bare, &Catalog::aws_us_east_1(), &[]),
            Err(InstanceError::Missing("an instance ID"))
        );
    }
}
