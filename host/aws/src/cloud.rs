//! [`AwsCloud`]: the cloud port on EC2.
//!
//! Launches go through `CreateFleet` (instant), lookups through
//! `DescribeInstances`, deletes through `TerminateInstances`, each through a
//! batcher with Karpenter's windows so that alike calls made together become
//! one. The port is synchronous and the controller calls it from a thread
//! of its own, so each call blocks on the runtime it was given.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_ec2::operation::create_fleet::CreateFleetInput;
use aws_sdk_ec2::types::{
    CreateFleetError, CreateFleetInstance, Filter, Instance as Ec2Instance, InstanceLifecycle,
    TargetCapacitySpecificationRequest,
};
use dovetail_api::condition::ConditionStatus;
use dovetail_api::ec2nodeclass::EC2NodeClass;
use dovetail_control::cloud::{
    CloudDrift, CloudError, CloudProvider, CreateError, Instance, InstanceState, Launch,
    OfferingKey,
};
use dovetail_core::catalog::aws::Ec2InstanceInfo;
use dovetail_core::catalog::{CapacityType, Catalog, CatalogSettings};
use dovetail_core::nodeclaim::NodeClaim;
use dovetail_core::sym::Sym;
use futures::future::join_all;
use tokio::runtime::Handle;

use crate::batch::{self, Batcher};
use crate::clients::Clients;
use crate::discovery::{Discovery, DiscoveryError, Refreshed};
use crate::instance_types;
use crate::instances;
use crate::launch::fleet::{self, FleetError, FleetPlan, SubnetChoice};
use crate::launch::options::{self, Claim, Cluster};
use crate::launch::tags::{self, TagInputs};
use crate::launch::template::LaunchTemplateOptions;
use crate::node_classes::NodeClasses;
use crate::nodeclass::drift::{InstanceFacts, drift};
use crate::templates::{LaunchTemplateError, LaunchTemplates};

/// `CreateFleet` error codes that mean the offering has no capacity now:
/// it is marked unavailable and the launch moves on (Karpenter's list).
pub const INSUFFICIENT_CAPACITY_CODES: &[&str] = &[
    "InsufficientInstanceCapacity",
    "MaxSpotInstanceCountExceeded",
    "VcpuLimitExceeded",
    "UnfulfillableCapacity",
    "Unsupported",
    "InsufficientFreeAddressesInSubnet",
    "MaxFleetCountExceeded",
    "ReservationCapacityExceeded",
];

/// Codes that say a launch template named in the request is gone.
pub const LAUNCH_TEMPLATE_NOT_FOUND_CODES: &[&str] = &[
    "InvalidLaunchTemplateName.NotFoundException",
    "InvalidLaunchTemplateId.NotFound",
];

/// Codes that say an instance ID is unknown (or malformed): for a
/// terminate, already gone; for a lookup, not found.
const INSTANCE_NOT_FOUND_CODES: &[&str] =
    &["InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"];

/// Instances per `DescribeInstances` page when listing.
const LIST_PAGE_SIZE: i32 = 1_000;

/// Whether `code` is an insufficient-capacity code.
pub fn is_insufficient_capacity(code: &str) -> bool {
    INSUFFICIENT_CAPACITY_CODES.contains(&code)
}

/// A failed EC2 call: its code when EC2 answered, else what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CallError {
    code: Option<String>,
    message: String,
}

impl CallError {
    fn from_sdk<E>(e: &aws_sdk_ec2::error::SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        Self {
            code: e.code().map(str::to_string),
            message: e
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| DisplayErrorContext(e).to_string()),
        }
    }

    fn is(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| codes.contains(&c))
    }

    fn describe(&self, action: &str) -> String {
        match &self.code {
            Some(code) => format!("ec2:{action}: {code}: {}", self.message),
            None => format!("ec2:{action}: {}", self.message),
        }
    }
}

/// One instance a fleet launched.
#[derive(Debug, Clone, PartialEq)]
struct Launched {
    id: String,
    instance_type: Option<String>,
    zone: Option<String>,
    subnet_id: Option<String>,
    image_id: Option<String>,
    capacity_type: Option<CapacityType>,
}

/// An entry of a fleet's `Errors`.
#[derive(Debug, Clone, PartialEq)]
struct FleetFault {
    code: String,
    message: String,
    instance_type: Option<String>,
    zone: Option<String>,
    subnet_id: Option<String>,
    capacity_type: Option<CapacityType>,
    template: Option<String>,
}

/// What one claim gets from a (possibly merged) fleet: its instance, if
/// the fleet launched enough, and all of the fleet's errors.
#[derive(Debug, Clone, PartialEq)]
struct FleetShare {
    instance: Option<Launched>,
    errors: Vec<FleetFault>,
}

type FleetAnswer = Result<FleetShare, CallError>;
type DescribeAnswer = Result<Option<Ec2Instance>, CallError>;
type TerminateAnswer = Result<(), CallError>;

struct Inner {
    clients: Clients,
    cluster: Cluster,
    node_classes: NodeClasses,
    discovery: tokio::sync::Mutex<Discovery>,
    /// The operator's settings: each class's kubelet settings go on top.
    settings: CatalogSettings,
    region: ArcSwap<Region>,
    /// The region's catalog sized for the EC2NodeClasses, remade when the
    /// region's catalog or a class's spec changes.
    sized: Mutex<Option<SizedCatalog>>,
    templates: LaunchTemplates,
    /// One lock per launch template name, for [`AwsCloud::ensure_template`].
    ensuring: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    fleets: Batcher<String, CreateFleetInput, FleetAnswer>,
    describes: Batcher<(), String, DescribeAnswer>,
    terminates: Batcher<(), String, TerminateAnswer>,
}

/// The region's catalog as discovered, sized with the operator's settings,
/// and the facts behind its types.
struct Region {
    catalog: Arc<Catalog>,
    infos: Arc<BTreeMap<Sym, Ec2InstanceInfo>>,
}

struct SizedCatalog {
    region: Arc<Catalog>,
    generation: u64,
    catalog: Arc<Catalog>,
}

/// The cloud port on EC2. Cheap to clone: clones share their state.
#[derive(Clone)]
pub struct AwsCloud {
    inner: Arc<Inner>,
    handle: Handle,
}

// By hand: the clients' configuration holds the credentials provider, which
// has no business in logs.
impl fmt::Debug for AwsCloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCloud")
            .field("region", &self.inner.clients.region)
            .field("cluster", &self.inner.cluster.name)
            .field(
                "instance_types",
                &self.inner.region.load().catalog.instance_types.len(),
            )
            .finish_non_exhaustive()
    }
}

impl AwsCloud {
    /// A cloud for `cluster` in the clients' region, launching with the
    /// EC2NodeClasses of `node_classes`. Its instance types start as
    /// [`Discovery::new`] has them until the first
    /// [`AwsCloud::refresh_catalog`].
    pub fn new(
        clients: Clients,
        cluster: Cluster,
        node_classes: NodeClasses,
        settings: CatalogSettings,
        handle: Handle,
    ) -> Self {
        let discovery = Discovery::new(&clients.region, settings.clone());
        let region = ArcSwap::from_pointee(Region {
            catalog: discovery.catalog(),
            infos: discovery.infos(),
        });
        let ec2 = clients.ec2.clone();
        let fleets = Batcher::new(batch::CREATE_FLEET, move |_key, inputs| {
            create_fleet(ec2.clone(), inputs)
        });
        let ec2 = clients.ec2.clone();
        let filters = cluster_filters(&cluster.name);
        let describes = Batcher::new(batch::DESCRIBE_INSTANCES, move |(), ids| {
            describe_instances(ec2.clone(), filters.clone(), ids)
        });
        let ec2 = clients.ec2.clone();
        let terminates = Batcher::new(batch::TERMINATE_INSTANCES, move |(), ids| {
            terminate_instances(ec2.clone(), ids)
        });
        Self {
            inner: Arc::new(Inner {
                clients,
                cluster,
                node_classes,
                discovery: tokio::sync::Mutex::new(discovery),
                settings,
                region,
                sized: Mutex::new(None),
                templates: LaunchTemplates::new(),
                ensuring: Mutex::default(),
                fleets,
                describes,
                terminates,
            }),
            handle,
        }
    }

    /// Refreshes the instance types, offerings and prices when they are due
    /// (every 12 hours, a minute after a failure) and returns what the
    /// refresh built, or `None` when none was due. On failure the last
    /// catalog stays in use.
    pub async fn refresh_catalog(&self, now_ms: u64) -> Result<Option<Refreshed>, DiscoveryError> {
        let mut discovery = self.inner.discovery.lock().await;
        if !discovery.due(now_ms) {
            return Ok(None);
        }
        let refreshed = discovery.refresh(&self.inner.clients, now_ms).await;
        let catalog = discovery.catalog();
        if !Arc::ptr_eq(&catalog, &self.inner.region.load().catalog) {
            self.inner.region.store(Arc::new(Region {
                catalog,
                infos: discovery.infos(),
            }));
        }
        refreshed.map(Some)
    }

    /// Starts refreshing the catalog in the background, checking every
    /// `every` whether a refresh is due; failures are logged and retried.
    /// The task ends when the returned handle is aborted or the runtime
    /// shuts down.
    pub fn start(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let cloud = self.clone();
        self.handle.spawn(async move {
            loop {
                match cloud.refresh_catalog(unix_ms()).await {
                    Ok(Some(r)) => tracing::info!(
                        instance_types = r.instance_types,
                        "refreshed EC2 instance types and prices"
                    ),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(
                        error = %e,
                        "could not refresh EC2 instance types; keeping the last ones"
                    ),
                }
                tokio::time::sleep(every).await;
            }
        })
    }

    /// The clients' region.
    pub fn region(&self) -> &str {
        &self.inner.clients.region
    }

    /// The region's catalog with every EC2NodeClass's nodes sized by its
    /// kubelet settings and root volume; made again only when the region's
    /// catalog or a class's spec changed.
    fn catalog(&self) -> Arc<Catalog> {
        let inner = &self.inner;
        let region = inner.region.load_full();
        let generation = inner.node_classes.generation();
        let mut sized = inner.sized.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = &*sized
            && Arc::ptr_eq(&s.region, &region.catalog)
            && s.generation == generation
        {
            return s.catalog.clone();
        }
        let classes: Vec<(String, CatalogSettings)> = inner
            .node_classes
            .all()
            .iter()
            .filter_map(|class| {
                let name = class.metadata.name.clone().unwrap_or_default();
                match class.catalog_settings(&inner.settings) {
                    Ok(settings) => Some((name, settings)),
                    Err(e) => {
                        // Launches for the class fail on the same error
                        // (its status says so); its nodes meanwhile are
                        // sized with the operator's settings.
                        tracing::warn!(
                            ec2nodeclass = %name,
                            error = %e,
                            "cannot size nodes with this EC2NodeClass's settings; using the defaults"
                        );
                        None
                    }
                }
            })
            .collect();
        let catalog = if classes.is_empty() {
            region.catalog.clone()
        } else {
            Arc::new(instance_types::sized_for_classes(
                &region.catalog,
                &region.infos,
                &classes,
            ))
        };
        *sized = Some(SizedCatalog {
            region: region.catalog.clone(),
            generation,
            catalog: catalog.clone(),
        });
        catalog
    }

    async fn launch(&self, claim: &NodeClaim, now_ms: u64) -> Result<Launch, CreateError> {
        let inner = &self.inner;
        let class_name = claim.node_class_ref.name.as_str();
        let class = inner
            .node_classes
            .get(class_name)
            .ok_or_else(|| {
                CreateError::NodeClassNotReady(format!(
                    "EC2NodeClass {class_name} not found: create it, or point the NodePool's nodeClassRef at one that exists"
                ))
            })?;
        ready(&class)?;
        let status = class.status.as_ref().ok_or_else(|| {
            CreateError::NodeClassNotReady(format!("EC2NodeClass {class_name} has no status yet"))
        })?;
        let capacity_type = claim
            .launch
            .first()
            .map(|o| o.capacity_type)
            .ok_or_else(|| CreateError::InsufficientCapacity {
                offerings: Vec::new(),
                message: format!("NodeClaim {} lists no offering to launch", claim.name),
            })?;
        let catalog = self.catalog();
        let mut types = Vec::new();
        let mut seen = BTreeSet::new();
        for o in &claim.launch {
            if seen.insert(o.instance_type)
                && let Some(it) = catalog.get(o.instance_type.as_str())
                && let Some(size) = catalog.sizing(o.instance_type.as_str(), class_name)
            {
                types.push((it, size));
            }
        }
        let node_pool = claim.node_pool.map(|p| p.to_string()).unwrap_or_default();
        let sets = options::option_sets(
            &class,
            &inner.cluster,
            &inner.clients.region,
            Claim {
                node_pool: &node_pool,
                labels: &claim.labels,
                taints: &claim.taints,
                startup_taints: &claim.startup_taints,
                capacity_type,
            },
            &types,
        )
        .map_err(|e| failed("LaunchTemplateOptionsInvalid", e.to_string()))?;
        if sets.by_type.is_empty() {
            return Err(failed(
                "NoCompatibleAMI",
                format!(
                    "none of EC2NodeClass {class_name}'s AMIs is for the NodeClaim's instance types ({}): check spec.amiSelectorTerms",
                    types
                        .iter()
                        .map(|(t, _)| t.name.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let ensured = join_all(sets.templates.values().map(|o| self.ensure_template(o))).await;
        for r in ensured {
            r.map_err(|e| failed("LaunchTemplateCreationFailed", e.to_string()))?;
        }
        let subnets = fleet::subnet_per_zone(
            &status
                .subnets
                .iter()
                .map(|s| SubnetChoice {
                    id: s.id.clone(),
                    zone: s.zone.clone(),
                    available_ips: 0,
                })
                .collect::<Vec<_>>(),
        );
        let plan = fleet::plan(&claim.launch, &subnets, |t| sets.by_type.get(&t).cloned())
            .map_err(|e| match e {
                FleetError::NoSubnet { .. } => failed("SubnetResolutionFailed", e.to_string()),
                _ => failed("LaunchFailed", e.to_string()),
            })?;
        let launch_tags = tags::launch_tags(TagInputs {
            cluster_name: &inner.cluster.name,
            node_pool: &node_pool,
            node_class: class_name,
            class_tags: &class.spec.tags,
        })
        .map_err(|e| failed("TagValidationFailed", e.to_string()))?;
        let input = plan.request(&launch_tags, class.spec.context.as_deref());
        // Requests alike in everything are merged: the key is the whole
        // request, which every claim asks with a count of one.
        let key = format!("{input:?}");
        let share = inner
            .fleets
            .submit(key, input)
            .await
            .map_err(|e| failed("LaunchFailed", e.to_string()))?;
        let share = match share {
            Ok(share) => share,
            Err(e) => {
                if e.is(LAUNCH_TEMPLATE_NOT_FOUND_CODES) {
                    for name in plan.configs.keys() {
                        inner.templates.forget(name);
                    }
                }
                return Err(failed(
                    e.code.as_deref().unwrap_or("LaunchFailed"),
                    e.describe("CreateFleet"),
                ));
            }
        };
        let unavailable = unavailable_offerings(&share.errors, &plan, &subnets);
        let Some(launched) = share.instance else {
            return Err(no_instance(&share.errors, unavailable, &plan, inner));
        };
        let instance = self.instance_of(&launched, &plan, claim, &catalog, now_ms);
        self.tag_for_claim(&launched.id, claim).await;
        tracing::info!(
            node_claim = %claim.name,
            provider_id = %instance.provider_id,
            instance_type = %instance.instance_type,
            zone = %instance.zone,
            capacity_type = instance.capacity_type.label(),
            "launched instance"
        );
        Ok(Launch {
            instance,
            unavailable,
        })
    }

    /// Ensures one template at a time per name: alike launches made
    /// together wait for the first to make it, then go on together, so
    /// they still meet in the `CreateFleet` window.
    async fn ensure_template(
        &self,
        options: &LaunchTemplateOptions,
    ) -> Result<String, LaunchTemplateError> {
        let gate = {
            let mut gates = self
                .inner
                .ensuring
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            gates.entry(options.name()).or_default().clone()
        };
        let _one_at_a_time = gate.lock().await;
        self.inner
            .templates
            .ensure(&self.inner.clients.ec2, options)
            .await
    }

    fn instance_of(
        &self,
        launched: &Launched,
        plan: &FleetPlan,
        claim: &NodeClaim,
        catalog: &Catalog,
        now_ms: u64,
    ) -> Instance {
        // What the fleet says, else the plan's override it launched from.
        let chosen = plan.overrides().find(|o| {
            launched.instance_type.as_deref() == Some(o.instance_type.as_str())
                && (launched.zone.as_deref() == Some(o.zone.as_str())
                    || launched.subnet_id.as_deref() == Some(o.subnet_id.as_str()))
        });
        let instance_type = launched
            .instance_type
            .as_deref()
            .map(Sym::new)
            .or(chosen.map(|o| o.instance_type))
            .unwrap_or_else(|| Sym::new(""));
        let zone = launched
            .zone
            .as_deref()
            .map(Sym::new)
            .or(chosen.map(|o| o.zone))
            .unwrap_or_else(|| Sym::new(""));
        let capacity_type = launched.capacity_type.unwrap_or(plan.capacity_type);
        let it = catalog.get(instance_type.as_str());
        let price = it
            .and_then(|it| it.offering(zone.as_str(), capacity_type))
            .map(|o| o.price)
            .or(chosen.map(|o| o.price))
            .unwrap_or(0.0);
        let size = catalog.sizing(instance_type.as_str(), &claim.node_class_ref.name);
        Instance {
            provider_id: instances::provider_id(zone.as_str(), &launched.id),
            instance_type,
            zone,
            capacity_type,
            price,
            image_id: launched
                .image_id
                .clone()
                .or_else(|| chosen.map(|o| o.image_id.clone())),
            labels: instances::labels(
                catalog,
                instance_type,
                zone,
                capacity_type,
                &claim.requirements,
            ),
            capacity: size.map(|s| s.capacity.clone()).unwrap_or_default(),
            allocatable: size.map(|s| s.allocatable()).unwrap_or_default(),
            state: InstanceState::Pending,
            launched_ms: now_ms,
            node_claim: Some(claim.name),
        }
    }

    /// Names the instance after its claim. A merged fleet cannot carry
    /// per-claim tags, so they follow the launch; a failure leaves the
    /// instance launched (it still has the cluster's tags) and is logged.
    async fn tag_for_claim(&self, instance_id: &str, claim: &NodeClaim) {
        let node_name = claim.status.node_name.unwrap_or(claim.name);
        let tags = match tags::claim_tags(
            &self.inner.cluster.name,
            claim.name.as_str(),
            node_name.as_str(),
        ) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(node_claim = %claim.name, error = %e, "instance left without its NodeClaim tags");
                return;
            }
        };
        let sent = self
            .inner
            .clients
            .ec2
            .create_tags()
            .resources(instance_id)
            .set_tags(Some(crate::launch::template::to_tags(&tags)))
            .send()
            .await;
        if let Err(e) = sent {
            tracing::warn!(
                node_claim = %claim.name,
                instance = instance_id,
                error = %CallError::from_sdk(&e).describe("CreateTags"),
                "instance left without its NodeClaim tags"
            );
        }
    }

    async fn describe(&self, provider_id: &str) -> Result<Ec2Instance, CloudError> {
        let id = instances::instance_id(provider_id)
            .ok_or_else(|| CloudError::NotFound(provider_id.to_string()))?;
        match self.inner.describes.submit((), id.to_string()).await {
            Ok(Ok(Some(i))) => Ok(i),
            Ok(Ok(None)) => Err(CloudError::NotFound(provider_id.to_string())),
            Ok(Err(e)) => Err(CloudError::Other(e.describe("DescribeInstances"))),
            Err(e) => Err(CloudError::Other(e.to_string())),
        }
    }

    async fn list_all(&self) -> Result<Vec<Instance>, CloudError> {
        let mut pages = self
            .inner
            .clients
            .ec2
            .describe_instances()
            .set_filters(Some(cluster_filters(&self.inner.cluster.name)))
            .max_results(LIST_PAGE_SIZE)
            .into_paginator()
            .send();
        let catalog = self.catalog();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                CloudError::Other(CallError::from_sdk(&e).describe("DescribeInstances"))
            })?;
            for i in page.reservations().iter().flat_map(|r| r.instances()) {
                match instances::from_ec2(i, &catalog, &[]) {
                    Ok(i) if i.state != InstanceState::Terminated => out.push(i),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "skipped an instance EC2 described"),
                }
            }
        }
        Ok(out)
    }

    async fn terminate(&self, provider_id: &str) -> Result<(), CloudError> {
        let Some(id) = instances::instance_id(provider_id) else {
            return Err(CloudError::Other(format!(
                "{provider_id} is not an EC2 provider ID (aws:///<zone>/<instance-id>)"
            )));
        };
        match self.inner.terminates.submit((), id.to_string()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CloudError::Other(e.describe("TerminateInstances"))),
            Err(e) => Err(CloudError::Other(e.to_string())),
        }
    }
}

impl CloudProvider for AwsCloud {
    fn create(&mut self, claim: &NodeClaim, now_ms: u64) -> Result<Launch, CreateError> {
        self.handle.block_on(self.launch(claim, now_ms))
    }

    /// Every launch at once, so alike ones meet in the `CreateFleet`
    /// batcher and go out as one fleet.
    fn create_all(
        &mut self,
        claims: &[&NodeClaim],
        now_ms: u64,
    ) -> Vec<Result<Launch, CreateError>> {
        let this = &*self;
        self.handle
            .block_on(join_all(claims.iter().map(|c| this.launch(c, now_ms))))
    }

    fn delete(&mut self, provider_id: &str, _now_ms: u64) -> Result<(), CloudError> {
        self.handle.block_on(self.terminate(provider_id))
    }

    fn get(&self, provider_id: &str) -> Result<Instance, CloudError> {
        let described = self.handle.block_on(self.describe(provider_id))?;
        let instance = instances::from_ec2(&described, &self.catalog(), &[])
            .map_err(|e| CloudError::Other(e.to_string()))?;
        if instance.state == InstanceState::Terminated {
            return Err(CloudError::NotFound(provider_id.to_string()));
        }
        Ok(instance)
    }

    fn list(&self) -> Result<Vec<Instance>, CloudError> {
        self.handle.block_on(self.list_all())
    }

    fn instance_types(&self) -> Arc<Catalog> {
        self.catalog()
    }

    fn is_drifted(&self, claim: &NodeClaim) -> Result<Option<CloudDrift>, CloudError> {
        let Some(provider_id) = &claim.status.provider_id else {
            return Ok(None);
        };
        let Some(class) = self.inner.node_classes.get(&claim.node_class_ref.name) else {
            return Ok(None);
        };
        let described = self.handle.block_on(self.describe(provider_id))?;
        let groups: Vec<String> = described
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_string))
            .collect();
        Ok(drift(
            &class,
            &InstanceFacts {
                image_id: described.image_id(),
                subnet_id: described.subnet_id(),
                security_group_ids: &groups,
            },
        ))
    }
}

/// Whether `class` may launch: its `Ready` condition true for its current
/// generation.
fn ready(class: &EC2NodeClass) -> Result<(), CreateError> {
    let name = class.metadata.name.as_deref().unwrap_or_default();
    let condition = class
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    let Some(c) = condition else {
        return Err(CreateError::NodeClassNotReady(format!(
            "EC2NodeClass {name} is not resolved yet (no Ready condition)"
        )));
    };
    if c.status != ConditionStatus::True {
        return Err(CreateError::NodeClassNotReady(format!(
            "EC2NodeClass {name} is not Ready ({}: {})",
            c.reason, c.message
        )));
    }
    if let (Some(seen), Some(now)) = (c.observed_generation, class.metadata.generation)
        && seen != now
    {
        return Err(CreateError::NodeClassNotReady(format!(
            "EC2NodeClass {name} changed (generation {now}) and is not resolved again yet"
        )));
    }
    Ok(())
}

fn failed(reason: &str, message: String) -> CreateError {
    CreateError::Failed {
        reason: reason.to_string(),
        message,
    }
}

/// The offerings a fleet's insufficient-capacity errors name.
fn unavailable_offerings(
    errors: &[FleetFault],
    plan: &FleetPlan,
    subnets: &BTreeMap<String, String>,
) -> Vec<OfferingKey> {
    let zone_of_subnet: HashMap<&str, &str> = subnets
        .iter()
        .map(|(zone, id)| (id.as_str(), zone.as_str()))
        .collect();
    let mut out: Vec<OfferingKey> = Vec::new();
    for e in errors.iter().filter(|e| is_insufficient_capacity(&e.code)) {
        let Some(instance_type) = &e.instance_type else {
            continue;
        };
        let zone = e.zone.as_deref().or_else(|| {
            e.subnet_id
                .as_deref()
                .and_then(|s| zone_of_subnet.get(s).copied())
        });
        let Some(zone) = zone else { continue };
        let key = OfferingKey {
            capacity_type: e.capacity_type.unwrap_or(plan.capacity_type),
            instance_type: Sym::new(instance_type),
            zone: Sym::new(zone),
        };
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

/// Why a fleet launched nothing for this claim.
fn no_instance(
    errors: &[FleetFault],
    unavailable: Vec<OfferingKey>,
    plan: &FleetPlan,
    inner: &Inner,
) -> CreateError {
    let message = if errors.is_empty() {
        "CreateFleet returned fewer instances than asked for, and no error".to_string()
    } else {
        errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join("; ")
    };
    if let Some(e) = errors
        .iter()
        .find(|e| LAUNCH_TEMPLATE_NOT_FOUND_CODES.contains(&e.code.as_str()))
    {
        // Made again by the retry's `ensure`.
        match &e.template {
            Some(name) => inner.templates.forget(name),
            None => plan.configs.keys().for_each(|n| inner.templates.forget(n)),
        }
        return failed(&e.code, message);
    }
    if let Some(e) = errors.iter().find(|e| !is_insufficient_capacity(&e.code)) {
        return failed(&e.code, message);
    }
    // Every error was capacity (or the fleet gave none): the claim goes back
    // to be planned elsewhere.
    let offerings = if unavailable.is_empty() {
        plan.overrides()
            .map(|o| OfferingKey {
                capacity_type: plan.capacity_type,
                instance_type: o.instance_type,
                zone: o.zone,
            })
            .collect()
    } else {
        unavailable
    };
    CreateError::InsufficientCapacity { offerings, message }
}

fn capacity_type_of(l: Option<&InstanceLifecycle>) -> Option<CapacityType> {
    match l? {
        InstanceLifecycle::Spot => Some(CapacityType::Spot),
        InstanceLifecycle::OnDemand => Some(CapacityType::OnDemand),
        _ => None,
    }
}

fn launched(i: &CreateFleetInstance) -> impl Iterator<Item = Launched> + '_ {
    let overrides = i
        .launch_template_and_overrides()
        .and_then(|l| l.overrides());
    i.instance_ids().iter().map(move |id| Launched {
        id: id.clone(),
        instance_type: i
            .instance_type()
            .map(|t| t.as_str().to_string())
            .or_else(|| {
                overrides
                    .and_then(|o| o.instance_type())
                    .map(|t| t.as_str().to_string())
            }),
        zone: overrides
            .and_then(|o| o.availability_zone())
            .map(str::to_string),
        subnet_id: overrides.and_then(|o| o.subnet_id()).map(str::to_string),
        image_id: overrides.and_then(|o| o.image_id()).map(str::to_string),
        capacity_type: capacity_type_of(i.lifecycle()),
    })
}

fn fault(e: &CreateFleetError) -> FleetFault {
    let lt = e.launch_template_and_overrides();
    let overrides = lt.and_then(|l| l.overrides());
    FleetFault {
        code: e.error_code().unwrap_or("LaunchFailed").to_string(),
        message: e.error_message().unwrap_or_default().to_string(),
        instance_type: overrides
            .and_then(|o| o.instance_type())
            .map(|t| t.as_str().to_string()),
        zone: overrides
            .and_then(|o| o.availability_zone())
            .map(str::to_string),
        subnet_id: overrides.and_then(|o| o.subnet_id()).map(str::to_string),
        capacity_type: capacity_type_of(e.lifecycle()),
        template: lt
            .and_then(|l| l.launch_template_specification())
            .and_then(|s| s.launch_template_name())
            .map(str::to_string),
    }
}

/// One `CreateFleet` for every claim of a batch: the shared request with
/// one instance per claim, handed out in order.
async fn create_fleet(ec2: aws_sdk_ec2::Client, inputs: Vec<CreateFleetInput>) -> Vec<FleetAnswer> {
    let n = inputs.len();
    let Some(input) = inputs.into_iter().next() else {
        return Vec::new();
    };
    let target = input.target_capacity_specification.clone().map(|t| {
        TargetCapacitySpecificationRequest::builder()
            .total_target_capacity(i32::try_from(n).unwrap_or(i32::MAX))
            .set_default_target_capacity_type(t.default_target_capacity_type)
            .set_on_demand_target_capacity(t.on_demand_target_capacity)
            .set_spot_target_capacity(t.spot_target_capacity)
            .set_target_capacity_unit_type(t.target_capacity_unit_type)
            .build()
    });
    let sent = ec2
        .create_fleet()
        .set_type(input.r#type)
        .set_launch_template_configs(input.launch_template_configs)
        .set_target_capacity_specification(target)
        .set_tag_specifications(input.tag_specifications)
        .set_context(input.context)
        .set_spot_options(input.spot_options)
        .set_on_demand_options(input.on_demand_options)
        .send()
        .await;
    let out = match sent {
        Ok(out) => out,
        Err(e) => return vec![Err(CallError::from_sdk(&e)); n],
    };
    let errors: Vec<FleetFault> = out.errors().iter().map(fault).collect();
    let mut launched: Vec<Launched> = out.instances().iter().flat_map(launched).collect();
    if launched.len() < n {
        tracing::warn!(
            asked = n,
            launched = launched.len(),
            errors = errors.len(),
            "CreateFleet launched fewer instances than asked for"
        );
    }
    launched.truncate(n);
    let mut launched = launched.into_iter();
    (0..n)
        .map(|_| {
            Ok(FleetShare {
                instance: launched.next(),
                errors: errors.clone(),
            })
        })
        .collect()
}

fn cluster_filters(cluster_name: &str) -> Vec<Filter> {
    tags::instance_filters(cluster_name)
        .into_iter()
        .map(|(name, values)| {
            Filter::builder()
                .name(name)
                .set_values(Some(values))
                .build()
        })
        .collect()
}

/// The instances of `ids` (one answer each, `None` for one EC2 does not
/// have among the cluster's). An unknown ID fails the whole call, so then
/// each is asked alone.
async fn describe_instances(
    ec2: aws_sdk_ec2::Client,
    filters: Vec<Filter>,
    ids: Vec<String>,
) -> Vec<DescribeAnswer> {
    let unique: Vec<String> = ids
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    match describe_ids(&ec2, &filters, &unique).await {
        Ok(found) => ids.iter().map(|id| Ok(found.get(id).cloned())).collect(),
        Err(e) if e.is(INSTANCE_NOT_FOUND_CODES) && unique.len() > 1 => {
            let mut answers: HashMap<String, DescribeAnswer> = HashMap::new();
            for id in &unique {
                let one = describe_ids(&ec2, &filters, std::slice::from_ref(id)).await;
                answers.insert(
                    id.clone(),
                    match one {
                        Ok(mut found) => Ok(found.remove(id)),
                        Err(e) if e.is(INSTANCE_NOT_FOUND_CODES) => Ok(None),
                        Err(e) => Err(e),
                    },
                );
            }
            ids.iter()
                .map(|id| answers.get(id).cloned().unwrap_or(Ok(None)))
                .collect()
        }
        Err(e) if e.is(INSTANCE_NOT_FOUND_CODES) => ids.iter().map(|_| Ok(None)).collect(),
        Err(e) => vec![Err(e); ids.len()],
    }
}

async fn describe_ids(
    ec2: &aws_sdk_ec2::Client,
    filters: &[Filter],
    ids: &[String],
) -> Result<HashMap<String, Ec2Instance>, CallError> {
    let mut pages = ec2
        .describe_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .set_filters(Some(filters.to_vec()))
        .into_paginator()
        .send();
    let mut found = HashMap::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| CallError::from_sdk(&e))?;
        for i in page.reservations().iter().flat_map(|r| r.instances()) {
            if let Some(id) = i.instance_id() {
                found.insert(id.to_string(), i.clone());
            }
        }
    }
    Ok(found)
}

/// Terminates `ids`, one answer each. An unknown ID fails the whole call,
/// so then each is terminated alone and an unknown one counts as done.
async fn terminate_instances(ec2: aws_sdk_ec2::Client, ids: Vec<String>) -> Vec<TerminateAnswer> {
    let unique: Vec<String> = ids
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let all = terminate_ids(&ec2, &unique).await;
    match all {
        Ok(()) => ids.iter().map(|_| Ok(())).collect(),
        Err(e) if e.is(INSTANCE_NOT_FOUND_CODES) && unique.len() > 1 => {
            let mut answers: HashMap<String, TerminateAnswer> = HashMap::new();
            for id in &unique {
                let one = match terminate_ids(&ec2, std::slice::from_ref(id)).await {
                    Err(e) if e.is(INSTANCE_NOT_FOUND_CODES) => Ok(()),
                    r => r,
                };
                answers.insert(id.clone(), one);
            }
            ids.iter()
                .map(|id| answers.get(id).cloned().unwrap_or(Ok(())))
                .collect()
        }
        Err(e) if e.is(INSTANCE_NOT_FOUND_CODES) => ids.iter().map(|_| Ok(())).collect(),
        Err(e) => vec![Err(e); ids.len()],
    }
}

async fn terminate_ids(ec2: &aws_sdk_ec2::Client, ids: &[String]) -> Result<(), CallError> {
    ec2.terminate_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| CallError::from_sdk(&e))
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
