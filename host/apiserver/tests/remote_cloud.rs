//! The cluster's fake cloud from another process: a controller holding only
//! a client for the API server launches, reads and terminates the same
//! instances the kubelet model registers Nodes for.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use dovetail_apiserver::cluster::{Cluster, ClusterConfig, RemoteCloud, RemoteCloudError};
use dovetail_apiserver::{ApiServer, ServerConfig};
use dovetail_control::cloud::{
    CloudError, CloudProvider, CreateError, InstanceState, Launch, OfferingKey,
};
use dovetail_core::catalog::{CapacityType, Catalog, aws_catalog};
use dovetail_core::labels;
use dovetail_core::model::NodeClassRef;
use dovetail_core::nodeclaim::{NodeClaim, NodeClaimStatus};
use dovetail_core::requirements::{NodeSelectorRequirement, Operator};
use dovetail_core::scheduler::OfferingRef;
use dovetail_core::sym::Sym;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::ListParams;

const ZONE: &str = "us-east-1a";

async fn start() -> Cluster {
    Cluster::start(ClusterConfig {
        node_ready_after: Duration::from_millis(300),
        grace_period_scale: 0.0,
        resync: Duration::from_millis(200),
        ..ClusterConfig::default()
    })
    .await
    .expect("cluster starts")
}

/// A client of its own, as a controller in another process has.
fn client(url: &str) -> kube::Client {
    kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap()
}

/// Runs a synchronous cloud call off the runtime's workers, as the
/// controller's reconcile thread does.
async fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("no panic")
}

/// Polls `check` until it returns `Some`, failing with `what` after 20 s.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn node_for(nodes: &Api<Node>, provider_id: &str) -> Option<Node> {
    nodes
        .list(&ListParams::default())
        .await
        .ok()?
        .items
        .into_iter()
        .find(|n| n.spec.as_ref().and_then(|s| s.provider_id.as_deref()) == Some(provider_id))
}

fn offering(instance_type: &str, capacity_type: CapacityType) -> OfferingRef {
    let price = aws_catalog()
        .get(instance_type)
        .and_then(|t| t.offering(ZONE, capacity_type))
        .expect("offered")
        .price;
    OfferingRef {
        instance_type: Sym::new(instance_type),
        zone: Sym::new(ZONE),
        capacity_type,
        price,
    }
}

fn key(instance_type: &str, capacity_type: CapacityType) -> OfferingKey {
    OfferingKey {
        capacity_type,
        instance_type: Sym::new(instance_type),
        zone: Sym::new(ZONE),
    }
}

/// A NodeClaim of the `default` pool as a controller launches it.
fn claim(name: &str, launch: Vec<OfferingRef>) -> NodeClaim {
    NodeClaim {
        name: Sym::new(name),
        node_pool: Some(Sym::new("default")),
        labels: vec![(Sym::new(labels::NODE_POOL), Sym::new("default"))],
        annotations: Vec::new(),
        requirements: vec![
            NodeSelectorRequirement::new(labels::ZONE, Operator::In, &[ZONE]),
            NodeSelectorRequirement::new(labels::NODE_POOL, Operator::In, &["default"]),
        ],
        requests: Default::default(),
        taints: Vec::new(),
        startup_taints: Vec::new(),
        node_class_ref: NodeClassRef::default(),
        expire_after: None,
        termination_grace_period: None,
        launch,
        node_pool_hash: None,
        created_ms: 0,
        deletion_ms: None,
        finalizer: true,
        status: NodeClaimStatus::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_in_another_process_launches_reads_and_terminates_instances() {
    let cluster = start().await;
    let remote = RemoteCloud::connect(client(&cluster.url()))
        .await
        .expect("the cluster serves its fake cloud");
    assert!(Arc::ptr_eq(&remote.instance_types(), &aws_catalog()));

    let mut cloud = remote.clone();
    let launch: Launch = off_runtime(move || {
        cloud.create(
            &claim(
                "default-r1111",
                vec![offering("m5.large", CapacityType::OnDemand)],
            ),
            0,
        )
    })
    .await
    .expect("launched");
    let instance = launch.instance.clone();
    assert_eq!(instance.instance_type, Sym::new("m5.large"));
    assert_eq!(instance.zone, Sym::new(ZONE));
    assert_eq!(instance.capacity_type, CapacityType::OnDemand);
    assert_eq!(instance.state, InstanceState::Running);
    assert_eq!(instance.node_claim, Some(Sym::new("default-r1111")));
    assert!(launch.unavailable.is_empty());
    assert_eq!(
        dovetail_core::model::label(&instance.labels, Sym::new(labels::INSTANCE_TYPE)),
        Some(Sym::new("m5.large"))
    );
    assert_eq!(
        instance.allocatable,
        aws_catalog().get("m5.large").unwrap().allocatable()
    );

    // The kubelet model in the cluster registers a Node for it.
    let nodes: Api<Node> = Api::all(cluster.client());
    let pid = instance.provider_id.clone();
    let node = eventually("a Node for the instance", || async {
        node_for(&nodes, &pid).await
    })
    .await;
    let node_labels = node.metadata.labels.unwrap_or_default();
    assert_eq!(
        node_labels.get(labels::INSTANCE_TYPE).map(String::as_str),
        Some("m5.large")
    );
    // The cluster's own handle sees the same instance.
    assert_eq!(cluster.cloud().instances(), vec![instance.clone()]);

    let cloud = remote.clone();
    let p = pid.clone();
    let (got, listed, drift) = off_runtime(move || {
        (
            cloud.get(&p),
            cloud.list(),
            cloud.is_drifted(&claim("default-r1111", Vec::new())),
        )
    })
    .await;
    assert_eq!(got.expect("get"), instance);
    assert_eq!(listed.expect("list"), vec![instance.clone()]);
    assert_eq!(drift.expect("drift"), None);

    let mut cloud = remote.clone();
    let p = pid.clone();
    let (deleted, again, after) =
        off_runtime(move || (cloud.delete(&p, 0), cloud.delete(&p, 0), cloud.get(&p))).await;
    deleted.expect("terminated");
    again.expect("terminating again is no error");
    assert_eq!(after, Err(CloudError::NotFound(pid.clone())));
    assert!(cluster.cloud().instances().is_empty());
    // Its node stops reporting.
    eventually("the node unreachable", || async {
        let n = node_for(&nodes, &pid).await?;
        let taints = n.spec?.taints?;
        taints
            .iter()
            .any(|t| t.key == "node.kubernetes.io/unreachable")
            .then_some(())
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_again_for_the_same_claim_returns_the_instance_already_launched() {
    let cluster = start().await;
    let mut first = RemoteCloud::connect(client(&cluster.url())).await.unwrap();
    let launched = off_runtime(move || {
        first.create(
            &claim(
                "default-c1111",
                vec![offering("m5.xlarge", CapacityType::Spot)],
            ),
            0,
        )
    })
    .await
    .expect("launched");

    // A controller that crashed before writing the status restarts, reads
    // the NodeClaim back (no launch list) and launches again.
    let mut restarted = RemoteCloud::connect(client(&cluster.url())).await.unwrap();
    let (again, with_list, listed) = off_runtime(move || {
        (
            restarted.create(&claim("default-c1111", Vec::new()), 0),
            restarted.create(
                &claim(
                    "default-c1111",
                    vec![offering("m5.large", CapacityType::OnDemand)],
                ),
                0,
            ),
            restarted.list(),
        )
    })
    .await;
    assert_eq!(again.expect("the same instance"), launched);
    assert_eq!(with_list.expect("the same instance"), launched);
    assert_eq!(
        listed.unwrap(),
        vec![launched.instance.clone()],
        "one instance"
    );
    assert_eq!(cluster.cloud().instances().len(), 1);

    // Once its instance is terminated, the claim launches anew.
    cluster.cloud().terminate(&launched.instance.provider_id);
    let mut cloud = RemoteCloud::connect(client(&cluster.url())).await.unwrap();
    let relaunched = off_runtime(move || {
        cloud.create(
            &claim(
                "default-c1111",
                vec![offering("m5.large", CapacityType::OnDemand)],
            ),
            0,
        )
    })
    .await
    .expect("launched");
    assert_ne!(
        relaunched.instance.provider_id,
        launched.instance.provider_id
    );
    assert_eq!(relaunched.instance.instance_type, Sym::new("m5.large"));
    assert_eq!(cluster.cloud().instances(), vec![relaunched.instance]);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_capacity_comes_back_with_the_offerings_that_failed() {
    let cluster = start().await;
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 60_000;
    cluster
        .cloud()
        .add_shortage(until, &["m5.large"], &[ZONE], None);
    let mut cloud = RemoteCloud::connect(client(&cluster.url())).await.unwrap();
    let (fell_back, failed) = off_runtime(move || {
        (
            cloud.create(
                &claim(
                    "default-i1111",
                    vec![
                        offering("m5.large", CapacityType::OnDemand),
                        offering("m5.xlarge", CapacityType::OnDemand),
                    ],
                ),
                0,
            ),
            cloud.create(
                &claim(
                    "default-i2222",
                    vec![offering("m5.large", CapacityType::Spot)],
                ),
                0,
            ),
        )
    })
    .await;
    let fell_back = fell_back.expect("the second offering");
    assert_eq!(fell_back.instance.instance_type, Sym::new("m5.xlarge"));
    assert_eq!(
        fell_back.unavailable,
        vec![key("m5.large", CapacityType::OnDemand)]
    );
    match failed {
        Err(CreateError::InsufficientCapacity { offerings, .. }) => {
            assert_eq!(offerings, vec![key("m5.large", CapacityType::Spot)]);
        }
        other => panic!("expected insufficient capacity, got {other:?}"),
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_api_server_serves_no_fake_cloud() {
    let server = ApiServer::start(ServerConfig::default()).await.unwrap();
    let e = RemoteCloud::connect(client(&server.url()))
        .await
        .expect_err("no fake cloud here");
    assert!(matches!(e, RemoteCloudError::NotServed), "{e:?}");
    let message = e.to_string();
    assert!(
        message.contains("served by `dovetail dev`") && message.contains("--cloud aws"),
        "{message}"
    );
    // The path is an ordinary unknown path to the API.
    let req = http::Request::get("/dovetail.dev/fake-cloud/v1/catalog")
        .body(Vec::new())
        .unwrap();
    let err = client(&server.url()).request_text(req).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 404),
        "{err:?}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_on_another_catalog_is_refused() {
    let cluster = start().await;
    let e = RemoteCloud::connect_with(
        client(&cluster.url()),
        Arc::new(Catalog::synthetic_benchmark(10)),
    )
    .await
    .expect_err("the catalogs differ");
    assert!(
        matches!(e, RemoteCloudError::CatalogMismatch { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("same build"), "{e}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_at_all_is_unreachable() {
    // A port that was free a moment ago.
    let url = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let e = RemoteCloud::connect(client(&url))
        .await
        .expect_err("nothing listens");
    assert!(matches!(e, RemoteCloudError::Unreachable(_)), "{e:?}");
    assert!(e.to_string().contains("is `dovetail dev` running?"), "{e}");
}
