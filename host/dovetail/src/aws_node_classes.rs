//! The EC2NodeClass loop of `--cloud aws`: the leader resolves each class's
//! subnets, security groups, AMIs and instance profile with the AWS
//! adapter and writes them to the class's status with their conditions;
//! every replica keeps the resolved classes where the cloud provider reads
//! them at launch. Launch templates of deleted classes are removed.
//!
//! A class is resolved again when its spec changes (its generation) and
//! every minute (Karpenter re-resolves subnets each minute), and the list
//! is read every few seconds, so a new class is usable within seconds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dovetail_api::EC2NodeClass;
use dovetail_aws::clients::Clients;
use dovetail_aws::node_classes::NodeClasses;
use dovetail_aws::nodeclass::{self, ClusterInfo};
use dovetail_aws::templates::LaunchTemplates;
use dovetail_kube::actions::write_node_class_status;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};
use tokio::sync::watch;

/// How often the class list is read.
const POLL: Duration = Duration::from_secs(2);
/// How often an unchanged class is resolved again.
const RESOLVE_EVERY: Duration = Duration::from_secs(60);
/// How soon a class whose resolution hit an API error is resolved again.
const RETRY_AFTER: Duration = Duration::from_secs(10);

pub struct NodeClassLoop {
    pub client: kube::Client,
    pub clients: Clients,
    pub cluster: ClusterInfo,
    pub classes: NodeClasses,
    pub templates: Arc<LaunchTemplates>,
    pub leader: watch::Receiver<bool>,
    pub field_manager: &'static str,
}

impl NodeClassLoop {
    pub async fn run(mut self) {
        let api: Api<EC2NodeClass> = Api::all(self.client.clone());
        // When each class was last resolved, and at which generation.
        let mut resolved: BTreeMap<String, (Option<i64>, Instant)> = BTreeMap::new();
        let mut live: Option<BTreeSet<String>> = None;
        loop {
            match api.list(&ListParams::default()).await {
                Ok(list) => {
                    let leader = *self.leader.borrow();
                    let names: BTreeSet<String> = list
                        .items
                        .iter()
                        .filter_map(|c| c.metadata.name.clone())
                        .collect();
                    for class in list.items {
                        self.reconcile(class, leader, &mut resolved).await;
                    }
                    for gone in self
                        .classes
                        .names()
                        .into_iter()
                        .filter(|n| !names.contains(n))
                    {
                        self.classes.remove(&gone);
                        resolved.remove(&gone);
                    }
                    if leader && live.as_ref() != Some(&names) {
                        match self
                            .templates
                            .collect_garbage(&self.clients.ec2, &self.cluster.name, &names)
                            .await
                        {
                            Ok(deleted) => {
                                for name in deleted {
                                    tracing::info!(
                                        launch_template = name,
                                        "deleted the launch template of a deleted EC2NodeClass"
                                    );
                                }
                                live = Some(names);
                            }
                            Err(e) => tracing::warn!("launch template garbage collection: {e}"),
                        }
                    }
                }
                Err(e) => tracing::warn!("listing EC2NodeClasses: {e}"),
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                _ = self.leader.changed() => {}
            }
        }
    }

    async fn reconcile(
        &self,
        class: EC2NodeClass,
        leader: bool,
        resolved: &mut BTreeMap<String, (Option<i64>, Instant)>,
    ) {
        let name = class.metadata.name.clone().unwrap_or_default();
        if class.metadata.deletion_timestamp.is_some() {
            self.classes.remove(&name);
            return;
        }
        // A follower launches nothing; it keeps the leader's status so it
        // can launch the moment it leads.
        if !leader {
            self.classes.set(class);
            return;
        }
        let generation = class.metadata.generation;
        let fresh = resolved
            .get(&name)
            .is_some_and(|(g, at)| *g == generation && at.elapsed() < RESOLVE_EVERY);
        if fresh {
            return;
        }
        let resolution = nodeclass::resolve(
            &self.clients,
            &class,
            &self.cluster,
            class.status.as_ref(),
            &Time(Timestamp::now()),
        )
        .await;
        for (kind, message) in &resolution.events {
            if kind.is_warning() {
                tracing::warn!(ec2nodeclass = name, reason = kind.reason(), "{message}");
            } else {
                tracing::info!(ec2nodeclass = name, reason = kind.reason(), "{message}");
            }
        }
        for e in &resolution.errors {
            tracing::warn!(
                ec2nodeclass = name,
                "{e} (the last resolved values stand; resolved again in 10 s)"
            );
        }
        let resolution_failed = !resolution.errors.is_empty();
        let stored = match write_node_class_status(
            &self.client,
            self.field_manager,
            &class,
            &resolution.status,
        )
        .await
        {
            Ok(Some(written)) => written,
            Ok(None) => {
                let mut c = class;
                c.status = Some(resolution.status);
                c
            }
            Err(e) => {
                // Resolved again on the next pass, from the newer object.
                tracing::warn!(ec2nodeclass = name, "writing the status: {e}");
                return;
            }
        };
        // A failed call is tried again in seconds, not in a minute.
        let at = if resolution_failed {
            Instant::now()
                .checked_sub(RESOLVE_EVERY - RETRY_AFTER)
                .unwrap_or_else(Instant::now)
        } else {
            Instant::now()
        };
        resolved.insert(name, (generation, at));
        self.classes.set(stored);
    }
}
