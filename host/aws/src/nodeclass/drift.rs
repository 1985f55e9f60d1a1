//! Drift between a running instance and its EC2NodeClass's resolved status,
//! checked in Karpenter's order: AMI, security groups, subnet.

use std::collections::BTreeSet;

use dovetail_api::ec2nodeclass::EC2NodeClass;
use dovetail_control::cloud::CloudDrift;

/// What the instance runs with, as DescribeInstances reports it.
#[derive(Debug, Clone, Copy)]
pub struct InstanceFacts<'a> {
    pub image_id: Option<&'a str>,
    pub subnet_id: Option<&'a str>,
    pub security_group_ids: &'a [String],
}

/// The first drift found between the instance and the class's resolved
/// status. No status yet, or an empty resolved list, tells nothing: a
/// class that resolves nothing must not replace every node.
pub fn drift(class: &EC2NodeClass, instance: &InstanceFacts<'_>) -> Option<CloudDrift> {
    let status = class.status.as_ref()?;
    if let Some(image) = instance.image_id
        && !status.amis.is_empty()
        && !status.amis.iter().any(|a| a.id == image)
    {
        return Some(CloudDrift::Ami);
    }
    if !status.security_groups.is_empty() {
        let want: BTreeSet<&str> = status
            .security_groups
            .iter()
            .map(|g| g.id.as_str())
            .collect();
        let have: BTreeSet<&str> = instance
            .security_group_ids
            .iter()
            .map(String::as_str)
            .collect();
        if want != have {
            return Some(CloudDrift::SecurityGroup);
        }
    }
    if let Some(subnet) = instance.subnet_id
        && !status.subnets.is_empty()
        && !status.subnets.iter().any(|s| s.id == subnet)
    {
        return Some(CloudDrift::Subnet);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use dovetail_api::ec2nodeclass::{Ami, EC2NodeClassStatus, SecurityGroup, Subnet};

    fn class() -> EC2NodeClass {
        let mut class: EC2NodeClass =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "default"}}))
                .expect("a class");
        class.status = Some(EC2NodeClassStatus {
            subnets: vec![
                Subnet {
                    id: "subnet-a".into(),
                    zone: "us-east-1a".into(),
                    zone_id: None,
                },
                Subnet {
                    id: "subnet-b".into(),
                    zone: "us-east-1b".into(),
                    zone_id: None,
                },
            ],
            security_groups: vec![
                SecurityGroup {
                    id: "sg-1".into(),
                    name: None,
                },
                SecurityGroup {
                    id: "sg-2".into(),
                    name: None,
                },
            ],
            amis: vec![Ami {
                id: "ami-new".into(),
                ..Ami::default()
            }],
            ..EC2NodeClassStatus::default()
        });
        class
    }

    fn groups(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_instance_matching_the_status_has_not_drifted() {
        let sgs = groups(&["sg-2", "sg-1"]);
        let facts = InstanceFacts {
            image_id: Some("ami-new"),
            subnet_id: Some("subnet-b"),
            security_group_ids: &sgs,
        };
        assert_eq!(drift(&class(), &facts), None);
    }

    #[test]
    fn a_changed_ami_is_ami_drift() {
        let sgs = groups(&["sg-1", "sg-2"]);
        let facts = InstanceFacts {
            image_id: Some("ami-old"),
            subnet_id: Some("subnet-a"),
            security_group_ids: &sgs,
        };
        assert_eq!(drift(&class(), &facts), Some(CloudDrift::Ami));
    }

    #[test]
    fn a_subnet_no_longer_selected_is_subnet_drift() {
        let sgs = groups(&["sg-1", "sg-2"]);
        let facts = InstanceFacts {
            image_id: Some("ami-new"),
            subnet_id: Some("subnet-gone"),
            security_group_ids: &sgs,
        };
        assert_eq!(drift(&class(), &facts), Some(CloudDrift::Subnet));
    }

    #[test]
    fn a_changed_security_group_set_is_security_group_drift() {
        for ids in [&["sg-1"][..], &["sg-1", "sg-2", "sg-3"], &["sg-1", "sg-9"]] {
            let sgs = groups(ids);
            let facts = InstanceFacts {
                image_id: Some("ami-new"),
                subnet_id: Some("subnet-a"),
                security_group_ids: &sgs,
            };
            assert_eq!(
                drift(&class(), &facts),
                Some(CloudDrift::SecurityGroup),
                "{ids:?}"
            );
        }
    }

    #[test]
    fn ami_drift_is_reported_before_the_others() {
        let sgs = groups(&["sg-9"]);
        let facts = InstanceFacts {
            image_id: Some("ami-old"),
            subnet_id: Some("subnet-gone"),
            security_group_ids: &sgs,
        };
        assert_eq!(drift(&class(), &facts), Some(CloudDrift::Ami));
    }

    #[test]
    fn no_status_yet_is_no_drift() {
        let mut class = class();
        class.status = None;
        let facts = InstanceFacts {
            image_id: Some("ami-old"),
            subnet_id: Some("subnet-gone"),
            security_group_ids: &[],
        };
        assert_eq!(drift(&class, &facts), None);
    }
}
