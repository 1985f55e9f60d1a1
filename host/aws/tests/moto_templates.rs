//! Launch templates made, reused and collected on the AWS test server.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use dovetail_api::ec2nodeclass::{AmiFamily, EC2NodeClass};
use dovetail_aws::clients::Clients;
use dovetail_aws::launch::tags::{TagInputs, launch_tags};
use dovetail_aws::launch::template::{LaunchInputs, LaunchTemplateOptions};
use dovetail_aws::templates::LaunchTemplates;
use dovetail_core::catalog::CapacityType;
use dovetail_moto::Moto;

fn class() -> EC2NodeClass {
    serde_norway::from_str(&support::fixture("ec2nodeclass.yaml")).unwrap()
}

fn options(cluster: &str, node_class: &str, capacity_type: CapacityType) -> LaunchTemplateOptions {
    let class = class();
    let tags = launch_tags(TagInputs {
        cluster_name: cluster,
        node_pool: "general",
        node_class,
        class_tags: &class.spec.tags,
    })
    .unwrap();
    LaunchTemplateOptions::new(
        &class,
        &LaunchInputs {
            region: "us-east-1",
            family: &AmiFamily::AL2023,
            image_id: "ami-0123456789abcdef0",
            user_data: "dXNlciBkYXRh",
            capacity_type,
            tags: &tags,
        },
    )
    .unwrap()
}

/// Every template on the server, by name, with its tags.
async fn templates(ec2: &aws_sdk_ec2::Client) -> BTreeMap<String, BTreeMap<String, String>> {
    let answer = ec2
        .describe_launch_templates()
        .max_results(200)
        .send()
        .await
        .unwrap();
    answer
        .launch_templates()
        .iter()
        .map(|t| {
            let tags = t
                .tags()
                .iter()
                .map(|tag| {
                    (
                        tag.key().unwrap().to_string(),
                        tag.value().unwrap().to_string(),
                    )
                })
                .collect();
            (t.launch_template_name().unwrap().to_string(), tags)
        })
        .collect()
}

fn creates(moto: &Moto) -> u64 {
    moto.calls().of("ec2", "CreateLaunchTemplate")
}

#[tokio::test]
async fn equal_options_share_one_template_and_different_options_get_another() {
    let moto = Moto::start();
    let clients = Clients::local(moto.endpoint(), "us-east-1");
    let templates_cache = LaunchTemplates::new();
    let on_demand = options("demo", "default", CapacityType::OnDemand);

    let first = templates_cache
        .ensure(&clients.ec2, &on_demand)
        .await
        .unwrap();
    let second = templates_cache
        .ensure(&clients.ec2, &on_demand.clone())
        .await
        .unwrap();
    assert_eq!(first, on_demand.name());
    assert_eq!(second, first);
    assert_eq!(creates(&moto), 1);
    assert_eq!(moto.calls().of("ec2", "DescribeLaunchTemplates"), 1);

    let spot = options("demo", "default", CapacityType::Spot);
    let third = templates_cache.ensure(&clients.ec2, &spot).await.unwrap();
    assert_ne!(third, first);
    assert_eq!(creates(&moto), 2);

    let made = templates(&clients.ec2).await;
    assert_eq!(
        made.keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([first.clone(), third])
    );
    // The tags the garbage collection finds it by.
    let tags = &made[&first];
    assert_eq!(tags["kubernetes.io/cluster/demo"], "owned");
    assert_eq!(tags["karpenter.k8s.aws/ec2nodeclass"], "default");
    assert_eq!(tags["Name"], first);

    // The template holds the options' data.
    let versions = clients
        .ec2
        .describe_launch_template_versions()
        .launch_template_name(&first)
        .versions("$Latest")
        .send()
        .await
        .unwrap();
    let data = versions.launch_template_versions()[0]
        .launch_template_data()
        .unwrap();
    assert_eq!(data.image_id(), Some("ami-0123456789abcdef0"));
    assert_eq!(
        data.iam_instance_profile().and_then(|p| p.name()),
        Some("demo_1234567890")
    );
}

#[tokio::test]
async fn a_template_deleted_behind_its_back_is_made_again_once_forgotten() {
    let moto = Moto::start();
    let clients = Clients::local(moto.endpoint(), "us-east-1");
    let cache = LaunchTemplates::new();
    let o = options("demo", "default", CapacityType::OnDemand);
    let name = cache.ensure(&clients.ec2, &o).await.unwrap();
    clients
        .ec2
        .delete_launch_template()
        .launch_template_name(&name)
        .send()
        .await
        .unwrap();

    // Trusted from memory until told otherwise.
    assert_eq!(cache.ensure(&clients.ec2, &o).await.unwrap(), name);
    assert_eq!(creates(&moto), 1);
    assert!(templates(&clients.ec2).await.is_empty());

    cache.forget(&name);
    assert_eq!(cache.ensure(&clients.ec2, &o).await.unwrap(), name);
    assert_eq!(creates(&moto), 2);
    assert!(templates(&clients.ec2).await.contains_key(&name));
}

#[tokio::test]
async fn a_restarted_controller_finds_the_template_without_making_it() {
    let moto = Moto::start();
    let clients = Clients::local(moto.endpoint(), "us-east-1");
    let o = options("demo", "default", CapacityType::OnDemand);
    let name = LaunchTemplates::new()
        .ensure(&clients.ec2, &o)
        .await
        .unwrap();
    assert_eq!(creates(&moto), 1);

    let restarted = LaunchTemplates::new();
    assert_eq!(restarted.ensure(&clients.ec2, &o).await.unwrap(), name);
    assert_eq!(creates(&moto), 1);
    assert_eq!(moto.calls().of("ec2", "DescribeLaunchTemplates"), 2);
    assert_eq!(templates(&clients.ec2).await.len(), 1);
}

#[tokio::test]
async fn garbage_collection_deletes_only_this_clusters_templates_of_gone_classes() {
    let moto = Moto::start();
    let clients = Clients::local(moto.endpoint(), "us-east-1");
    let cache = LaunchTemplates::new();
    let live = cache
        .ensure(
            &clients.ec2,
            &options("demo", "default", CapacityType::OnDemand),
        )
        .await
        .unwrap();
    let gone_od = cache
        .ensure(
            &clients.ec2,
            &options("demo", "gone", CapacityType::OnDemand),
        )
        .await
        .unwrap();
    let gone_spot = cache
        .ensure(&clients.ec2, &options("demo", "gone", CapacityType::Spot))
        .await
        .unwrap();
    let other_cluster = cache
        .ensure(
            &clients.ec2,
            &options("other", "gone", CapacityType::OnDemand),
        )
        .await
        .unwrap();
    // A user's own template with this cluster's tags but not Dovetail's name.
    let o = options("demo", "gone", CapacityType::OnDemand);
    let mut user_tags: Vec<Tag> = o
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    user_tags.sort_by(|a, b| a.key().cmp(&b.key()));
    clients
        .ec2
        .create_launch_template()
        .launch_template_name("users-own")
        .launch_template_data(o.request_data())
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::LaunchTemplate)
                .set_tags(Some(user_tags))
                .build(),
        )
        .send()
        .await
        .unwrap();

    let live_classes = BTreeSet::from(["default".to_string()]);
    let mut deleted = cache
        .collect_garbage(&clients.ec2, "demo", &live_classes)
        .await
        .unwrap();
    deleted.sort();
    let mut expected = vec![gone_od.clone(), gone_spot];
    expected.sort();
    assert_eq!(deleted, expected);
    let left: BTreeSet<String> = templates(&clients.ec2).await.into_keys().collect();
    assert_eq!(
        left,
        BTreeSet::from([live, other_cluster, "users-own".to_string()])
    );

    // Nothing more to collect; a deleted class's template is made again
    // when its class comes back.
    assert!(
        cache
            .collect_garbage(&clients.ec2, "demo", &live_classes)
            .await
            .unwrap()
            .is_empty()
    );
    let again = cache
        .ensure(
            &clients.ec2,
            &options("demo", "gone", CapacityType::OnDemand),
        )
        .await
        .unwrap();
    assert_eq!(again, gone_od);
    let found = clients
        .ec2
        .describe_launch_templates()
        .filters(
            Filter::builder()
                .name("launch-template-name")
                .values(&gone_od)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(found.launch_templates().len(), 1);
}
