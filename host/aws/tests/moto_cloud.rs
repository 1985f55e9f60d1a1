//! `AwsCloud` against the AWS test server: launches through CreateFleet
//! (merged, tagged, falling through capacity errors), terminations, lookups
//! by the cluster's tags, garbage collection of leaked instances,
//! throttling, and credentials kept out of logs.

use std::sync::{Arc, Mutex, OnceLock};

use aws_sdk_ec2::types::{Instance as Ec2Instance, InstanceStateName};
use dovetail_api::ec2nodeclass::EC2NodeClass;
use dovetail_aws::clients::Clients;
use dovetail_aws::cloud::AwsCloud;
use dovetail_aws::launch::options::Cluster;
use dovetail_aws::node_classes::NodeClasses;
use dovetail_control::cloud::{CloudError, CloudProvider, CreateError, Launch, OfferingKey};
use dovetail_control::decision::Decision;
use dovetail_control::gc::GarbageCollector;
use dovetail_control::state::ClusterState;
use dovetail_control::unavailable::UnavailableOfferings;
use dovetail_core::catalog::{CapacityType, CatalogSettings};
use dovetail_core::labels;
use dovetail_core::model::label;
use dovetail_core::nodeclaim::NodeClaim;
use dovetail_core::scheduler::OfferingRef;
use dovetail_core::sym::Sym;
use dovetail_moto::{CapacityFault, Faults, Moto, Throttle};
use tokio::runtime::Runtime;

const ZONE_A: &str = "us-east-1a";
const ZONE_B: &str = "us-east-1b";

/// A server with a VPC, a subnet in each of two zones, a security group and
/// an AMI, and the runtime its clients run on.
struct Server {
    moto: Moto,
    rt: Runtime,
    subnets: Vec<(String, String)>,
    security_group: String,
    ami: String,
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

impl Server {
    fn start(faults: &Faults) -> Self {
        let moto = Moto::start_with(faults);
        let rt = runtime();
        let clients = Clients::local(moto.endpoint(), "us-east-1");
        let world = rt.block_on(dovetail_aws::testing::world(&clients, "moto-cloud", None));
        let (subnets, security_group, ami) = (world.subnets, world.security_group, world.ami);
        Self {
            moto,
            rt,
            subnets,
            security_group,
            ami,
        }
    }

    fn clients(&self) -> Clients {
        Clients::local(self.moto.endpoint(), "us-east-1")
    }

    fn subnet(&self, zone: &str) -> &str {
        &self
            .subnets
            .iter()
            .find(|(z, _)| z == zone)
            .expect("a subnet in the zone")
            .1
    }

    /// The EC2NodeClass `default`, resolved to this server's network and
    /// Ready (or with Ready `status`).
    fn class(&self, ready: &str) -> EC2NodeClass {
        let subnets: Vec<_> = self
            .subnets
            .iter()
            .map(|(zone, id)| serde_json::json!({"id": id, "zone": zone}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "apiVersion": "karpenter.k8s.aws/v1",
            "kind": "EC2NodeClass",
            "metadata": {"name": "default", "generation": 1},
            "spec": {
                "amiSelectorTerms": [{"alias": "al2023@latest"}],
                "role": "NodeRole",
                "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "test"}}],
                "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "test"}}],
                "tags": {"team": "platform", "cost-center": "1234"}
            },
            "status": {
                "instanceProfile": "test-profile",
                "subnets": subnets,
                "securityGroups": [{"id": self.security_group}],
                "amis": [{
                    "id": self.ami,
                    "requirements": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]
                }],
                "conditions": [{
                    "type": "Ready",
                    "status": ready,
                    "observedGeneration": 1,
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                    "reason": if ready == "True" { "Ready" } else { "SubnetsNotFound" },
                    "message": if ready == "True" { "" } else { "no subnet matches" }
                }]
            }
        }))
        .expect("a valid EC2NodeClass")
    }

    /// A cloud for `cluster` with the Ready class `default` and the
    /// catalog read from the server.
    fn cloud(&self, cluster: &str) -> AwsCloud {
        let classes = NodeClasses::new();
        classes.set(self.class("True"));
        self.cloud_with(cluster, self.clients(), classes)
    }

    fn cloud_with(&self, cluster: &str, clients: Clients, classes: NodeClasses) -> AwsCloud {
        let cloud = AwsCloud::new(
            clients,
            Cluster {
                name: cluster.to_string(),
                endpoint: "https://cluster.example".to_string(),
                ca_bundle: None,
                service_cidr: Some("10.100.0.0/16".to_string()),
                dns_ip: Some("10.100.0.10".to_string()),
            },
            classes,
            CatalogSettings::default(),
            self.rt.handle().clone(),
        );
        self.rt
            .block_on(cloud.refresh_catalog(unix_ms()))
            .expect("the catalog refreshes from the server")
            .expect("a first refresh is due");
        assert!(
            cloud.instance_types().get("m5.large").is_some(),
            "the server's catalog has m5.large"
        );
        cloud
    }

    fn describe(&self, instance_id: &str) -> Ec2Instance {
        let ec2 = self.clients().ec2;
        self.rt
            .block_on(ec2.describe_instances().instance_ids(instance_id).send())
            .expect("DescribeInstances")
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .next()
            .cloned()
            .expect("the instance is described")
    }
}

/// One server for the tests that set no faults and count no calls; each
/// uses a cluster name of its own.
fn shared() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(&Faults::none()))
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

fn offering(cloud: &AwsCloud, instance_type: &str, zone: &str, ct: CapacityType) -> OfferingRef {
    let price = cloud
        .instance_types()
        .get(instance_type)
        .and_then(|it| it.offering(zone, ct))
        .map(|o| o.price)
        .unwrap_or_else(|| panic!("{instance_type} is offered {ct:?} in {zone}"));
    OfferingRef {
        instance_type: Sym::new(instance_type),
        zone: Sym::new(zone),
        capacity_type: ct,
        price,
    }
}

fn claim(name: &str, launch: Vec<OfferingRef>) -> NodeClaim {
    dovetail_aws::testing::node_claim(name, launch, 0)
}

/// m5.large on demand in zone a, then zone b.
fn m5_large(cloud: &AwsCloud) -> Vec<OfferingRef> {
    vec![
        offering(cloud, "m5.large", ZONE_A, CapacityType::OnDemand),
        offering(cloud, "m5.large", ZONE_B, CapacityType::OnDemand),
    ]
}

fn key(instance_type: &str, zone: &str) -> OfferingKey {
    OfferingKey {
        capacity_type: CapacityType::OnDemand,
        instance_type: Sym::new(instance_type),
        zone: Sym::new(zone),
    }
}

fn instance_id(provider_id: &str) -> &str {
    provider_id.rsplit('/').next().expect("a provider ID")
}

fn tag<'a>(i: &'a Ec2Instance, key: &str) -> Option<&'a str> {
    i.tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn state(i: &Ec2Instance) -> Option<InstanceStateName> {
    i.state().and_then(|s| s.name()).cloned()
}

#[test]
fn a_launch_goes_through_create_fleet_with_the_class_network_and_karpenter_tags() {
    let server = shared();
    let mut cloud = server.cloud("launch");
    let offerings = vec![
        offering(&cloud, "m5.large", ZONE_A, CapacityType::OnDemand),
        offering(&cloud, "m5.large", ZONE_B, CapacityType::OnDemand),
        offering(&cloud, "m5.xlarge", ZONE_A, CapacityType::OnDemand),
    ];
    let Launch {
        instance,
        unavailable,
    } = cloud
        .create(&claim("default-launch", offerings), unix_ms())
        .expect("the launch succeeds");
    assert!(unavailable.is_empty(), "{unavailable:?}");
    // One of the requested offerings (the test server takes the first
    // override it is sent; EC2 the cheapest).
    let chosen = (instance.instance_type.as_str(), instance.zone.as_str());
    assert!(
        [
            ("m5.large", ZONE_A),
            ("m5.large", ZONE_B),
            ("m5.xlarge", ZONE_A)
        ]
        .contains(&chosen),
        "{chosen:?}"
    );
    let (chosen_type, chosen_zone) = chosen;
    assert!(
        instance
            .provider_id
            .starts_with(&format!("aws:///{chosen_zone}/i-")),
        "{}",
        instance.provider_id
    );
    assert_eq!(instance.node_claim, Some(Sym::new("default-launch")));

    // Labels, capacity and price from the catalog entry.
    let catalog = cloud.instance_types();
    let it = catalog.get(chosen_type).unwrap();
    assert_eq!(instance.capacity, it.capacity);
    assert_eq!(instance.allocatable, it.allocatable());
    assert!(instance.allocatable.get("cpu") < instance.capacity.get("cpu"));
    assert_eq!(
        instance.price,
        it.offering(chosen_zone, CapacityType::OnDemand)
            .unwrap()
            .price
    );
    let l = |k: &str| label(&instance.labels, Sym::new(k)).map(|v| v.to_string());
    assert_eq!(l(labels::INSTANCE_TYPE).as_deref(), Some(chosen_type));
    assert_eq!(l(labels::ZONE).as_deref(), Some(chosen_zone));
    assert_eq!(l(labels::CAPACITY_TYPE).as_deref(), Some("on-demand"));
    assert_eq!(l(labels::REGION).as_deref(), Some("us-east-1"));
    assert_eq!(l(labels::ARCH).as_deref(), Some("amd64"));

    // The instance in EC2: the class's subnet of its zone, its AMI, and
    // every tag Karpenter puts on an instance, the class's own included.
    let ec2 = server.describe(instance_id(&instance.provider_id));
    assert_eq!(ec2.subnet_id(), Some(server.subnet(chosen_zone)));
    assert_eq!(ec2.instance_type().map(|t| t.as_str()), Some(chosen_type));
    assert_eq!(ec2.image_id(), Some(server.ami.as_str()));
    assert_eq!(instance.image_id.as_deref(), Some(server.ami.as_str()));
    for (k, v) in [
        ("kubernetes.io/cluster/launch", "owned"),
        ("karpenter.sh/nodepool", "default"),
        ("karpenter.k8s.aws/ec2nodeclass", "default"),
        ("eks:eks-cluster-name", "launch"),
        ("karpenter.sh/nodeclaim", "default-launch"),
        ("Name", "default-launch"),
        ("team", "platform"),
        ("cost-center", "1234"),
    ] {
        assert_eq!(tag(&ec2, k), Some(v), "tag {k} on {:?}", ec2.tags());
    }

    // The fleet asked for the three overrides, each with its zone's subnet
    // and the AMI.
    let fleets = server
        .rt
        .block_on(server.clients().ec2.describe_fleets().send())
        .expect("DescribeFleets");
    let ours = fleets
        .fleets()
        .iter()
        .find(|f| {
            f.tags()
                .iter()
                .any(|t| t.key() == Some("eks:eks-cluster-name") && t.value() == Some("launch"))
        })
        .expect("the fleet is tagged with the cluster");
    let overrides: Vec<(String, String, String)> = ours
        .launch_template_configs()
        .iter()
        .flat_map(|c| c.overrides())
        .map(|o| {
            (
                o.instance_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                o.subnet_id().unwrap_or_default().to_string(),
                o.image_id().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let mut want = vec![
        (
            "m5.large".to_string(),
            server.subnet(ZONE_A).to_string(),
            server.ami.clone(),
        ),
        (
            "m5.large".to_string(),
            server.subnet(ZONE_B).to_string(),
            server.ami.clone(),
        ),
        (
            "m5.xlarge".to_string(),
            server.subnet(ZONE_A).to_string(),
            server.ami.clone(),
        ),
    ];
    let mut got = overrides.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        ours.target_capacity_specification()
            .and_then(|t| t.total_target_capacity()),
        Some(1)
    );
}

#[test]
fn ten_alike_claims_are_one_create_fleet_of_ten_instances() {
    let server = Server::start(&Faults::none());
    let mut cloud = server.cloud("merged");
    let launch = m5_large(&cloud);
    let claims: Vec<NodeClaim> = (0..10)
        .map(|i| claim(&format!("default-{i}"), launch.clone()))
        .collect();
    server.moto.reset_calls();
    let refs: Vec<&NodeClaim> = claims.iter().collect();
    let results = cloud.create_all(&refs, unix_ms());
    let calls = server.moto.calls();
    assert_eq!(calls.of("ec2", "CreateFleet"), 1, "{calls:?}");
    let mut ids = Vec::new();
    for (c, r) in claims.iter().zip(&results) {
        let launch = r.as_ref().expect("every claim gets an instance");
        assert_eq!(launch.instance.node_claim, Some(c.name));
        ids.push(launch.instance.provider_id.clone());
        // Each instance carries its own claim's tags.
        let ec2 = server.describe(instance_id(&launch.instance.provider_id));
        assert_eq!(tag(&ec2, "karpenter.sh/nodeclaim"), Some(c.name.as_str()));
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10, "ten distinct instances");
    assert_eq!(cloud.list().unwrap().len(), 10);
}

#[test]
fn terminating_is_idempotent() {
    let server = shared();
    let mut cloud = server.cloud("terminate");
    let launch = cloud
        .create(&claim("default-term", m5_large(&cloud)), unix_ms())
        .expect("launched");
    let pid = launch.instance.provider_id;
    assert_eq!(cloud.get(&pid).unwrap().provider_id, pid);
    cloud.delete(&pid, unix_ms()).expect("terminated");
    cloud
        .delete(&pid, unix_ms())
        .expect("terminating again is fine");
    cloud
        .delete("aws:///us-east-1a/i-0123456789abcdef0", unix_ms())
        .expect("an unknown instance is already gone");
    assert!(matches!(
        state(&server.describe(instance_id(&pid))),
        Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown)
    ));
    assert_eq!(cloud.get(&pid), Err(CloudError::NotFound(pid.clone())));
    assert!(cloud.list().unwrap().iter().all(|i| i.provider_id != pid));
}

#[test]
fn list_and_get_see_only_the_clusters_instances() {
    let server = shared();
    let mut ours = server.cloud("ours");
    let mut theirs = server.cloud("theirs");
    let mine = ours
        .create(&claim("default-ours", m5_large(&ours)), unix_ms())
        .expect("launched")
        .instance;
    let other = theirs
        .create(&claim("default-theirs", m5_large(&theirs)), unix_ms())
        .expect("launched")
        .instance;
    let listed = ours.list().unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|i| i.provider_id.as_str())
            .collect::<Vec<_>>(),
        vec![mine.provider_id.as_str()]
    );
    let got = ours.get(&mine.provider_id).unwrap();
    assert_eq!(got.node_claim, Some(Sym::new("default-ours")));
    assert_eq!(got.instance_type.as_str(), "m5.large");
    assert_eq!(got.capacity, mine.capacity);
    assert_eq!(
        ours.get(&other.provider_id),
        Err(CloudError::NotFound(other.provider_id.clone()))
    );
    assert_eq!(
        ours.get("aws:///us-east-1a/i-0123456789abcdef0"),
        Err(CloudError::NotFound(
            "aws:///us-east-1a/i-0123456789abcdef0".into()
        ))
    );
}

#[test]
fn garbage_collection_terminates_an_instance_no_claim_owns() {
    let server = shared();
    let mut cloud = server.cloud("leak");
    let leaked = cloud
        .create(&claim("default-gone", m5_large(&cloud)), unix_ms())
        .expect("launched")
        .instance;
    let state_without_claims = ClusterState::new();
    let mut gc = GarbageCollector::default();
    // Not yet 30 s old: kept.
    let step = gc.reconcile(&state_without_claims, &mut cloud, unix_ms());
    assert!(step.decisions.is_empty(), "{:?}", step.decisions);
    let later = unix_ms() + 60_000;
    let mut gc = GarbageCollector::default();
    let step = gc.reconcile(&state_without_claims, &mut cloud, later);
    assert!(
        step.decisions.iter().any(|d| matches!(
            d,
            Decision::InstanceCollected { provider_id } if *provider_id == leaked.provider_id
        )),
        "{:?}",
        step.decisions
    );
    assert!(matches!(
        state(&server.describe(instance_id(&leaked.provider_id))),
        Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown)
    ));
    assert!(cloud.list().unwrap().is_empty());
}

#[test]
fn capacity_errors_move_the_launch_on_and_mark_offerings_unavailable() {
    let server =
        Server::start(&Faults::none().capacity(CapacityFault::insufficient("m5.large", ZONE_A)));
    let mut cloud = server.cloud("capacity");
    let launch = cloud
        .create(&claim("default-cap", m5_large(&cloud)), unix_ms())
        .expect("the second offering has capacity");
    assert_eq!(launch.instance.zone.as_str(), ZONE_B);
    assert_eq!(launch.unavailable, vec![key("m5.large", ZONE_A)]);

    server.moto.set_faults(
        &Faults::none()
            .capacity(CapacityFault::insufficient("m5.large", ZONE_A))
            .capacity(CapacityFault::unfulfillable("m5.large", ZONE_B)),
    );
    let err = cloud
        .create(&claim("default-none", m5_large(&cloud)), unix_ms())
        .expect_err("no offering has capacity");
    let CreateError::InsufficientCapacity { offerings, message } = err else {
        panic!("want insufficient capacity, got {err:?}");
    };
    let mut sorted = offerings.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![key("m5.large", ZONE_A), key("m5.large", ZONE_B)]
    );
    assert!(
        message.contains("InsufficientInstanceCapacity"),
        "{message}"
    );
    assert!(message.contains("UnfulfillableCapacity"), "{message}");

    // The controller's cache keeps them out of plans for 3 minutes.
    let now = 1_000_000;
    let mut cache = UnavailableOfferings::default();
    for o in &offerings {
        cache.mark(*o, now);
    }
    let catalog = cloud.instance_types();
    let available = |at: u64, cache: &UnavailableOfferings| {
        let view = cache.apply(&catalog);
        let it = view.get("m5.large").unwrap();
        (
            !cache.is_unavailable(&key("m5.large", ZONE_A), at),
            it.offering(ZONE_A, CapacityType::OnDemand)
                .unwrap()
                .available,
        )
    };
    assert_eq!(available(now + 179_999, &cache), (false, false));
    cache.expire(now + 180_000);
    assert_eq!(available(now + 180_000, &cache), (true, true));
}

#[test]
fn throttled_calls_are_retried_until_they_succeed() {
    let server = Server::start(&Faults::none());
    let mut cloud = server.cloud("throttled");
    server.moto.reset_calls();
    server
        .moto
        .set_faults(&Faults::none().throttle(Throttle::share(0.4, 7)));
    let mut pids = Vec::new();
    for i in 0..3 {
        let launch = cloud
            .create(
                &claim(&format!("default-t{i}"), m5_large(&cloud)),
                unix_ms(),
            )
            .expect("the launch succeeds through throttling");
        pids.push(launch.instance.provider_id);
    }
    let listed = cloud.list().expect("the list succeeds through throttling");
    assert_eq!(listed.len(), 3);
    for pid in &pids {
        cloud.get(pid).expect("found through throttling");
    }
    let calls = server.moto.calls();
    let throttled: u64 = calls.throttled.values().sum();
    assert!(throttled > 0, "some calls were throttled: {calls:?}");
    let fleets = calls.of("ec2", "CreateFleet");
    assert_eq!(
        fleets,
        3 + calls.throttled_of("ec2", "CreateFleet"),
        "each throttled CreateFleet was sent again: {calls:?}"
    );
}

#[test]
fn a_class_that_is_missing_or_not_ready_cannot_launch() {
    let server = shared();
    let classes = NodeClasses::new();
    let mut cloud = server.cloud_with("notready", server.clients(), classes.clone());
    let launch = m5_large(&cloud);
    match cloud.create(&claim("default-nc", launch.clone()), unix_ms()) {
        Err(CreateError::NodeClassNotReady(m)) => assert!(m.contains("default"), "{m}"),
        other => panic!("want NodeClassNotReady, got {other:?}"),
    }
    classes.set(server.class("False"));
    match cloud.create(&claim("default-nc", launch), unix_ms()) {
        Err(CreateError::NodeClassNotReady(m)) => {
            assert!(
                m.contains("default") && m.contains("no subnet matches"),
                "{m}"
            )
        }
        other => panic!("want NodeClassNotReady, got {other:?}"),
    }
    assert!(cloud.list().unwrap().is_empty());
}

/// Captured log output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_secret_key_is_in_no_log_line_and_no_debug_output() {
    const SECRET: &str = "dovetailSECRETkey0000DoNotLogMe0000xyzzy";
    let captured = Captured::default();
    let writer = captured.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_writer(move || writer.clone())
            .finish(),
    )
    .expect("the only subscriber of this test binary");
    let server = shared();
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(server.moto.endpoint())
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("AKIDDOVETAIL", SECRET, None, None, "test"),
            ),
        )
        .sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep().expect("tokio sleep"))
        .time_source(aws_smithy_async::time::SystemTimeSource::new())
        .build();
    let clients = Clients::from_config(&config, false).expect("a region");
    let classes = NodeClasses::new();
    classes.set(server.class("True"));
    let mut cloud = server.cloud_with("secrets", clients, classes);
    let launch = cloud
        .create(&claim("default-secret", m5_large(&cloud)), unix_ms())
        .expect("launched");
    cloud.list().unwrap();
    cloud.get(&launch.instance.provider_id).unwrap();
    cloud
        .delete(&launch.instance.provider_id, unix_ms())
        .unwrap();
    let debug = format!("{cloud:?} {cloud:#?}");
    assert!(!debug.contains(SECRET), "{debug}");
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_string();
    assert!(logs.contains("launched instance"), "the capture works");
    assert!(!logs.contains(SECRET), "the secret key is in the logs");
}

/// The class `default` with kubelet `maxPods` and kube-reserved memory.
fn with_kubelet(mut class: EC2NodeClass, max_pods: i32) -> EC2NodeClass {
    class.spec.kubelet = Some(
        serde_json::from_value(serde_json::json!({
            "maxPods": max_pods,
            "kubeReserved": {"memory": "1Gi"}
        }))
        .expect("valid kubelet settings"),
    );
    class
}

/// The latest version's user data of every launch template, decoded.
fn template_user_data(server: &Server) -> Vec<String> {
    use base64::Engine as _;
    let ec2 = server.clients().ec2;
    let names: Vec<String> = server
        .rt
        .block_on(ec2.describe_launch_templates().send())
        .expect("DescribeLaunchTemplates")
        .launch_templates()
        .iter()
        .filter_map(|t| t.launch_template_name().map(str::to_string))
        .collect();
    names
        .iter()
        .filter_map(|name| {
            let versions = server
                .rt
                .block_on(
                    ec2.describe_launch_template_versions()
                        .launch_template_name(name)
                        .versions("$Latest")
                        .send(),
                )
                .expect("DescribeLaunchTemplateVersions");
            let data = versions
                .launch_template_versions()
                .first()?
                .launch_template_data()?
                .user_data()?
                .to_string();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .ok()?;
            String::from_utf8(bytes).ok()
        })
        .collect()
}

#[test]
fn an_ec2_node_classs_kubelet_settings_size_its_nodes_and_their_user_data() {
    let server = shared();
    let classes = NodeClasses::new();
    classes.set(with_kubelet(server.class("True"), 8));
    let mut cloud = server.cloud_with("sizing", server.clients(), classes.clone());

    // The scheduler sees m5.large as the class sizes it: 8 pods, 1 GiB
    // kube-reserved memory; a class without kubelet settings keeps the
    // ENI-limited 29.
    let catalog = cloud.instance_types();
    let sized = catalog.sizing("m5.large", "default").expect("m5.large");
    assert_eq!(sized.capacity.pods, 8);
    assert_eq!(sized.overhead.kube_reserved.memory, 1 << 30);
    let other = catalog.sizing("m5.large", "other").expect("m5.large");
    assert_eq!(other.capacity.pods, 29);
    assert_ne!(other.overhead.kube_reserved.memory, 1 << 30);

    // The launched instance reports that capacity and allocatable.
    let Launch { instance, .. } = cloud
        .create(
            &claim(
                "default-sizing",
                vec![offering(&cloud, "m5.large", ZONE_A, CapacityType::OnDemand)],
            ),
            unix_ms(),
        )
        .expect("the launch succeeds");
    assert_eq!(instance.capacity.pods, 8);
    assert_eq!(instance.allocatable, sized.allocatable());
    // So does the instance read back from EC2.
    let read = cloud.get(&instance.provider_id).expect("the instance");
    assert_eq!(read.capacity.pods, 8);
    assert_eq!(read.allocatable, sized.allocatable());

    // The node's kubelet is told the same: maxPods 8 and 1Gi kube-reserved
    // memory in the NodeConfig of the template it launched from.
    let ours: Vec<String> = template_user_data(server)
        .into_iter()
        .filter(|d| d.contains("name: sizing"))
        .collect();
    assert!(!ours.is_empty(), "a launch template for cluster `sizing`");
    assert!(
        ours.iter()
            .all(|d| d.contains("maxPods: 8") && d.contains("memory: 1Gi")),
        "{ours:?}"
    );

    // Editing the class resizes at once.
    classes.set(with_kubelet(server.class("True"), 12));
    let catalog = cloud.instance_types();
    assert_eq!(
        catalog.sizing("m5.large", "default").unwrap().capacity.pods,
        12
    );
    cloud
        .delete(&instance.provider_id, unix_ms())
        .expect("the instance terminates");
}
