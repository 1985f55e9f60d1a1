//! Objects that events apply, patch or delete during a run, and what the
//! cluster's controllers do about them, as they would in Kubernetes: a
//! workload scales to its replicas and rolls out a changed template; a
//! deleted pod is replaced by its controller (a StatefulSet's under the same
//! name; a pod without a controller is gone); a deleted node of Dovetail's is
//! drained and terminated by Dovetail, another one goes at once with its
//! instance; a deleted NodePool takes its NodeClaims with it.

use dovetail_api::k8s::ObjectRef;
use dovetail_control::Cluster;
use dovetail_control::actions::Action;
use dovetail_control::state::{NodeId, PodId};
use dovetail_core::model::{DaemonSet, Pod, PodKey};
use dovetail_core::nodeclaim::{
    DISRUPTED_TAINT, INITIALIZED_LABEL, REGISTERED_LABEL, UNREGISTERED_TAINT,
};
use dovetail_core::sym::Sym;

use crate::cloud::instance_id;
use crate::engine::{NOT_READY_TAINT, SimEvent, Simulation};
use crate::types::{
    Deployment, InitialNode, InitialPod, Job, Manifest, PdbSpec, Rollout, WorkloadKind,
};
use crate::world::Owner;

impl Simulation<'_> {
    fn changed(&mut self, summary: String) {
        self.events.push(SimEvent::Changed {
            at_ms: self.now,
            summary,
        });
    }

    pub(crate) fn apply(&mut self, m: Manifest) {
        match m {
            Manifest::Workload(d) => self.apply_workload(d),
            Manifest::Job(j) => self.apply_job(j),
            Manifest::Pod(p) => self.apply_pod(p),
            Manifest::Node(n) => self.apply_node(n),
            Manifest::DaemonSet(ds) => self.apply_daemon_set(ds),
            Manifest::PodDisruptionBudget(b) => self.apply_pdb(b),
            Manifest::NodePool(p) => {
                self.changed(format!("NodePool {} applied", p.name));
                self.world.state.apply_node_pool(p);
            }
            Manifest::Namespace(ns) => {
                let mut all = self.world.state.namespaces().to_vec();
                self.changed(format!("Namespace {} applied", ns.name));
                match all.iter_mut().find(|n| n.name == ns.name) {
                    Some(n) => *n = ns,
                    None => all.push(ns),
                }
                self.world.state.set_namespaces(all);
                self.world.sched_dirty = true;
            }
        }
    }

    fn workload_index(&self, kinds: &[WorkloadKind], namespace: Sym, name: &str) -> Option<usize> {
        self.scenario.deployments.iter().position(|d| {
            kinds.contains(&d.kind) && d.name == name && d.template.namespace == namespace
        })
    }

    fn apply_workload(&mut self, d: Deployment) {
        let what = format!("{} {}/{}", d.kind.name(), d.template.namespace, d.name);
        let Some(i) = self.workload_index(&[d.kind], d.template.namespace, &d.name) else {
            self.changed(format!("{what} created with {} replicas", d.replicas));
            let replicas = d.replicas;
            self.scenario.deployments.push(d);
            self.workload_revision.push(0);
            self.next_diurnal.push(0);
            let i = self.scenario.deployments.len() - 1;
            self.set_replicas(i, replicas);
            return;
        };
        let old = &self.scenario.deployments[i];
        let new_template = old.template != d.template;
        self.changed(format!(
            "{what} applied: {} → {} replicas{}",
            self.live_pods(i).len(),
            d.replicas,
            if new_template {
                match d.rollout {
                    Rollout::OnDelete => ", new template (pods change when deleted)",
                    _ => ", new template rolling out",
                }
            } else {
                ""
            }
        ));
        let replicas = d.replicas;
        let rollout = d.rollout;
        self.scenario.deployments[i] = d;
        if new_template {
            self.workload_revision[i] += 1;
            if rollout != Rollout::OnDelete {
                self.rolling.insert(i);
            }
        }
        self.set_replicas(i, replicas);
    }

    /// The live pods of workload `d`, oldest first.
    pub(crate) fn live_pods(&self, d: usize) -> Vec<PodId> {
        let mut pods: Vec<PodId> = self
            .world
            .owners
            .iter()
            .filter(|(_, o)| **o == Owner::Deployment(d))
            .map(|(&p, _)| p)
            .collect();
        pods.sort();
        pods
    }

    /// Workloads rolling out a new template replace their pods, within
    /// their surge and unavailability limits.
    pub(crate) fn rollouts(&mut self) {
        for d in self.rolling.clone() {
            let rev = self.workload_revision[d];
            let pods = self.live_pods(d);
            let (mut old, new): (Vec<PodId>, Vec<PodId>) = pods
                .into_iter()
                .partition(|p| self.revisions.get(p).is_none_or(|r| *r != rev));
            if old.is_empty() {
                self.rolling.remove(&d);
                continue;
            }
            let w = &self.scenario.deployments[d];
            let replicas = w.replicas;
            let bound =
                |s: &Self, p: &PodId| s.world.state.pod(*p).is_some_and(|e| e.node.is_some());
            match w.rollout {
                Rollout::OnDelete => {
                    self.rolling.remove(&d);
                }
                Rollout::Recreate => {
                    for p in old {
                        self.remove_pod(p);
                    }
                    self.set_replicas(d, replicas);
                }
                Rollout::Rolling {
                    max_surge,
                    max_unavailable,
                } => {
                    let surge = max_surge.of(replicas, true);
                    let mut unavailable = max_unavailable.of(replicas, false);
                    if surge == 0 && unavailable == 0 {
                        unavailable = 1;
                    }
                    // Old pods not running are unavailable already.
                    let (running, waiting): (Vec<PodId>, Vec<PodId>) =
                        old.iter().partition(|p| bound(self, p));
                    for p in waiting {
                        self.remove_pod(p);
                    }
                    old = running;
                    let available = old.len() + new.iter().filter(|p| bound(self, p)).count();
                    let removable = available.saturating_sub(replicas.saturating_sub(unavailable));
                    // The youngest old pods go first.
                    for &p in old.iter().rev().take(removable) {
                        self.remove_pod(p);
                    }
                    let old_left = old.len().saturating_sub(removable);
                    let room = (replicas + surge).saturating_sub(old_left + new.len());
                    let wanted = replicas.saturating_sub(new.len());
                    for _ in 0..wanted.min(room) {
                        self.new_pod(Owner::Deployment(d), None);
                    }
                }
            }
        }
    }

    fn apply_job(&mut self, j: Job) {
        let what = format!("Job {}/{}", j.template.namespace, j.name);
        let found = self
            .scenario
            .jobs
            .iter()
            .position(|o| o.name == j.name && o.template.namespace == j.template.namespace);
        match found {
            Some(i) if !self.deleted_jobs.contains(&i) => {
                self.changed(format!(
                    "{what} applied: parallelism {}, completions {}",
                    j.parallelism, j.completions
                ));
                let o = &mut self.scenario.jobs[i];
                // A Job's template cannot change; its counts can.
                o.parallelism = j.parallelism;
                o.completions = j.completions;
                self.top_up_job(i);
            }
            _ => {
                self.changed(format!("{what} created"));
                let j_succeeded = j.succeeded;
                self.scenario.jobs.push(Job {
                    at_ms: self.now,
                    ..j
                });
                self.jobs.push(crate::engine::JobState {
                    created: j_succeeded,
                    completed: j_succeeded,
                    active: 0,
                });
                let i = self.scenario.jobs.len() - 1;
                self.top_up_job(i);
            }
        }
    }

    fn apply_pod(&mut self, p: InitialPod) {
        let now_ms = self.now_ms();
        let key = p.pod.key();
        match self.world.state.pod_id(&key) {
            // Only its labels and annotations can change.
            Some(id) => {
                self.changed(format!("Pod {key}: labels and annotations applied"));
                let Some(mut pod) = self.world.state.pod(id).map(|e| Pod::clone(&e.pod)) else {
                    return;
                };
                pod.labels = p.pod.labels;
                pod.annotations = p.pod.annotations;
                self.world.state.apply_pod(pod, None, now_ms);
            }
            None => {
                self.changed(match p.node {
                    Some(n) => format!("Pod {key} created on node {n}"),
                    None => format!("Pod {key} created"),
                });
                self.add_pod(p, now_ms);
            }
        }
    }

    fn apply_node(&mut self, n: InitialNode) {
        let name = n.node.name;
        let Some(id) = self.world.state.node_id(name) else {
            self.changed(format!("Node {name} joined"));
            self.add_node(&n, false, true);
            self.world.sched_dirty = true;
            return;
        };
        self.changed(format!(
            "Node {name}: labels, annotations and taints applied"
        ));
        let ready = n.ready;
        self.world.state.update_node(id, |e| {
            // What Dovetail and the kubelet keep on the node stays.
            let kept_labels: Vec<_> = e
                .node
                .labels
                .iter()
                .copied()
                .filter(|(k, _)| [REGISTERED_LABEL, INITIALIZED_LABEL].contains(&k.as_str()))
                .collect();
            let kept_taints: Vec<_> = e
                .node
                .taints
                .iter()
                .copied()
                .filter(|t| {
                    [DISRUPTED_TAINT, UNREGISTERED_TAINT, NOT_READY_TAINT].contains(&t.key.as_str())
                })
                .collect();
            let mut labels = n.node.labels.clone();
            labels.retain(|(k, _)| !kept_labels.iter().any(|(l, _)| l == k));
            labels.extend(kept_labels);
            labels.sort_by_key(|&(k, _)| k);
            e.node.labels = labels;
            e.node.annotations = n.node.annotations.clone();
            let mut taints = n.node.taints.clone();
            taints.retain(|t| !kept_taints.iter().any(|k| k.key == t.key));
            taints.extend(kept_taints);
            e.node.taints = taints;
        });
        self.world.state.set_node_ready(id, ready);
        self.world.sched_dirty = true;
    }

    fn apply_daemon_set(&mut self, ds: DaemonSet) {
        let mut all = self.world.state.daemon_sets().to_vec();
        let what = format!("DaemonSet {}/{}", ds.pod.namespace, ds.name);
        let same = |o: &DaemonSet| o.name == ds.name && o.pod.namespace == ds.pod.namespace;
        match all.iter_mut().find(|o| same(o)) {
            Some(o) if *o == ds => return,
            Some(o) => {
                self.changed(format!("{what} applied: its pods are replaced"));
                *o = ds.clone();
                self.world.state.set_daemon_sets(all);
                self.delete_daemon_pods(&ds);
            }
            None => {
                self.changed(format!("{what} created"));
                all.push(ds.clone());
                self.world.state.set_daemon_sets(all);
            }
        }
        // The DaemonSet controller: a pod on every registered node it runs on.
        let nodes: Vec<NodeId> = self
            .world
            .state
            .nodes()
            .filter(|(id, e)| {
                !self.awaiting_daemons.contains(id) && !e.has_taint(UNREGISTERED_TAINT)
            })
            .map(|(id, _)| id)
            .collect();
        for id in nodes {
            self.place_daemons(id);
        }
    }

    fn delete_daemon_pods(&mut self, ds: &DaemonSet) {
        let now_ms = self.now_ms();
        let pods: Vec<PodId> = self
            .world
            .state
            .pods()
            .filter(|(_, e)| {
                e.pod.namespace == ds.pod.namespace && e.pod.daemon_set() == Some(ds.name)
            })
            .map(|(id, _)| id)
            .collect();
        for p in pods {
            self.world.state.delete_pod(p, now_ms);
        }
        self.world.sched_dirty = true;
    }

    fn apply_pdb(&mut self, b: PdbSpec) {
        let mut specs = self.world.pdb_specs.clone();
        self.changed(format!(
            "PodDisruptionBudget {}/{} applied",
            b.namespace, b.name
        ));
        match specs
            .iter_mut()
            .find(|o| o.namespace == b.namespace && o.name == b.name)
        {
            Some(o) => *o = b,
            None => specs.push(b),
        }
        self.world.set_pdb_specs(specs);
    }

    pub(crate) fn delete(&mut self, object: &ObjectRef) {
        let namespace = Sym::new(object.namespace.as_deref().unwrap_or("default"));
        let name = object.name.as_str();
        match object.kind {
            "Pod" => self.delete_pod(PodKey {
                namespace,
                name: Sym::new(name),
            }),
            "Node" => self.delete_node(Sym::new(name)),
            "NodeClaim" => {
                let name = Sym::new(name);
                if self.world.state.claim_by_name(name).is_none() {
                    self.changed(format!("NodeClaim {name} not found: nothing deleted"));
                    return;
                }
                self.changed(format!(
                    "NodeClaim {name} deleted: Dovetail drains and terminates its node"
                ));
                let now_ms = self.now_ms();
                let _ = self.world.execute(Action::DeleteNodeClaim { name }, now_ms);
            }
            "Deployment" | "StatefulSet" | "ReplicaSet" => {
                let kind = match object.kind {
                    "Deployment" => WorkloadKind::Deployment,
                    "StatefulSet" => WorkloadKind::StatefulSet,
                    _ => WorkloadKind::ReplicaSet,
                };
                let Some(d) = self.workload_index(&[kind], namespace, name) else {
                    return;
                };
                self.changed(format!("{object} deleted with its pods"));
                for p in self.live_pods(d) {
                    self.remove_pod(p);
                }
                let w = &mut self.scenario.deployments[d];
                w.replicas = 0;
                w.diurnal = None;
                self.rolling.remove(&d);
            }
            "Job" => {
                let Some(j) = self
                    .scenario
                    .jobs
                    .iter()
                    .position(|o| o.name == name && o.template.namespace == namespace)
                else {
                    return;
                };
                self.changed(format!("{object} deleted with its pods"));
                self.deleted_jobs.insert(j);
                let pods: Vec<PodId> = self
                    .world
                    .owners
                    .iter()
                    .filter(|(_, o)| **o == Owner::Job(j))
                    .map(|(&p, _)| p)
                    .collect();
                for p in pods {
                    self.remove_pod(p);
                }
                self.jobs[j].active = 0;
            }
            "DaemonSet" => {
                let mut all = self.world.state.daemon_sets().to_vec();
                let Some(i) = all
                    .iter()
                    .position(|o| o.name.as_str() == name && o.pod.namespace == namespace)
                else {
                    return;
                };
                self.changed(format!("{object} deleted with its pods"));
                let ds = all.remove(i);
                self.world.state.set_daemon_sets(all);
                self.delete_daemon_pods(&ds);
            }
            "PodDisruptionBudget" => {
                let mut specs = self.world.pdb_specs.clone();
                specs.retain(|o| !(o.namespace == namespace && o.name.as_str() == name));
                self.changed(format!("{object} deleted"));
                self.world.set_pdb_specs(specs);
            }
            "NodePool" => {
                let pool = Sym::new(name);
                self.changed(format!(
                    "{object} deleted: Dovetail drains and terminates its nodes"
                ));
                self.world.state.delete_node_pool(pool);
                // Its NodeClaims are owned by it, and go with it.
                let claims: Vec<Sym> = self
                    .world
                    .state
                    .claims()
                    .filter(|(_, c)| c.node_pool == Some(pool) && !c.deleting())
                    .map(|(_, c)| c.name)
                    .collect();
                let now_ms = self.now_ms();
                for name in claims {
                    let _ = self.world.execute(Action::DeleteNodeClaim { name }, now_ms);
                }
            }
            other => unreachable!("events do not delete {other} objects"),
        }
    }

    /// A deleted pod, replaced as its controller would replace it.
    fn delete_pod(&mut self, key: PodKey) {
        let now_ms = self.now_ms();
        let Some(id) = self.world.state.pod_id(&key) else {
            self.changed(format!("Pod {key} not found: nothing deleted"));
            return;
        };
        let pod = self.world.state.pod(id).map(|e| (e.pod.clone(), e.node));
        let Some((pod, node)) = pod else { return };
        match self.world.owners.get(&id).copied() {
            Some(Owner::Deployment(d)) => {
                self.changed(format!(
                    "Pod {key} deleted: its {} makes another",
                    match self.scenario.deployments[d].kind {
                        WorkloadKind::StatefulSet => "StatefulSet",
                        _ => "ReplicaSet",
                    }
                ));
                self.remove_pod(id);
                self.new_pod(Owner::Deployment(d), None);
            }
            Some(Owner::Job(j)) => {
                self.changed(format!("Pod {key} deleted: its Job makes another"));
                self.remove_pod(id);
                self.jobs[j].active = self.jobs[j].active.saturating_sub(1);
                self.jobs[j].created = self.jobs[j].created.saturating_sub(1);
                self.top_up_job(j);
            }
            Some(Owner::Other) => {
                self.changed(format!("Pod {key} deleted: its controller makes another"));
                self.world.lose_pod(id, now_ms, false);
            }
            Some(Owner::Bare) => {
                self.changed(format!("Pod {key} deleted: no controller replaces it"));
                self.remove_pod(id);
            }
            None if pod.is_static() => {
                self.changed(format!(
                    "Pod {key} is a static pod: its kubelet keeps it, so deleting it changes nothing"
                ));
            }
            None => {
                self.changed(format!(
                    "Pod {key} deleted: its DaemonSet makes another on its node"
                ));
                self.world.state.delete_pod(id, now_ms);
                if let Some(n) = node {
                    self.place_daemons(n);
                }
            }
        }
        self.world.sched_dirty = true;
    }

    /// A deleted Node: Dovetail's are drained and terminated by Dovetail (its
    /// finalizer holds the object meanwhile); any other goes at once, its
    /// pods with it, and its instance with it.
    fn delete_node(&mut self, name: Sym) {
        let now_ms = self.now_ms();
        let Some(id) = self.world.state.node_id(name) else {
            self.changed(format!("Node {name} not found: nothing deleted"));
            return;
        };
        let Some(entry) = self.world.state.node(id) else {
            return;
        };
        let provider_id = entry.provider_id.clone();
        if entry.finalizer {
            self.changed(format!(
                "Node {name} deleted: Dovetail drains and terminates it"
            ));
            let _ = self.world.execute(Action::DeleteNode { name }, now_ms);
            return;
        }
        self.changed(format!("Node {name} deleted: its pods are rescheduled"));
        self.why.insert(name, "deleted by an event".into());
        for p in self.world.state.delete_node(id, now_ms) {
            self.world.lose_pod(p, now_ms, false);
        }
        if let Some(i) = provider_id.as_deref().and_then(instance_id) {
            self.cloud.terminate(i, self.now);
        }
        let why = self.why.remove(&name).unwrap_or_default();
        self.events.push(SimEvent::NodeDeleted {
            at_ms: self.now,
            name,
            why,
        });
    }
}
