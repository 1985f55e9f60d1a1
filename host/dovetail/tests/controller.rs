//! `dovetail controller` end to end: the controller as its own process,
//! as production runs it, against the in-memory API server and its cluster
//! in a box (fake cloud over HTTP, kubelet model, scheduler, workload
//! controllers). Each test checks what a user of the cluster would see:
//! pods running, nodes coming and going, NodeClaims, Events, metrics.

mod harness;

use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::Mutex;

use harness::{Env, wait_for};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

/// The controllers of two tests would compete for two cores: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

const MINUTE: Duration = Duration::from_secs(60);

/// One replica: no leader election.
const SINGLE: &[(&str, &str)] = &[("DISABLE_LEADER_ELECTION", "true")];

/// One replica with disruption as fast as a test can watch it: passes every
/// second, commands validated after one.
fn fast_controller(env: &Env) -> harness::Controller {
    env.controller(
        "a",
        &[
            ("DISABLE_LEADER_ELECTION", "true"),
            ("DISRUPTION_POLL_INTERVAL", "1s"),
            ("CONSOLIDATION_VALIDATION_DELAY", "1s"),
        ],
    )
}

fn condition(claim: &dovetail_api::NodeClaim, kind: &str) -> Option<String> {
    claim
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| format!("{:?}", c.status))
}

fn names(claims: &[dovetail_api::NodeClaim]) -> BTreeSet<String> {
    claims.iter().map(|c| c.name().to_string()).collect()
}

async fn all_running(env: &Env, app: &str, n: usize) {
    wait_for(&format!("{n} {app} pods Running"), 2 * MINUTE, || async {
        let phases = env.phases(app).await;
        match phases.get("Running") {
            Some(&r) if r == n && phases.values().sum::<usize>() == n => Ok(()),
            _ => Err(format!("{phases:?}")),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_pods_get_nodes_and_run() {
    let _one = serial().await;
    let env = Env::start().await;
    env.apply_pool(|_| {}).await;
    let ctl = env.controller("a", SINGLE);
    env.deploy("inflate", 5, "1", "1536Mi").await;
    all_running(&env, "inflate", 5).await;

    let claims = env.claim_list().await;
    assert!(!claims.is_empty());
    for c in &claims {
        let meta = &c.metadata;
        let labels = meta.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get("karpenter.sh/nodepool").map(String::as_str),
            Some("default")
        );
        let annotations = meta.annotations.clone().unwrap_or_default();
        assert!(
            annotations.contains_key("karpenter.sh/nodepool-hash"),
            "{annotations:?}"
        );
        assert!(annotations.contains_key("karpenter.sh/nodepool-hash-version"));
        let owner = &meta
            .owner_references
            .as_ref()
            .expect("owned by its NodePool")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("NodePool", "default")
        );
        assert!(
            meta.finalizers
                .iter()
                .flatten()
                .any(|f| f == "karpenter.sh/termination")
        );
        for kind in ["Launched", "Registered", "Initialized"] {
            assert_eq!(
                condition(c, kind).as_deref(),
                Some("True"),
                "{kind} on {}",
                c.name()
            );
        }
    }
    let nodes = env.node_list().await;
    assert_eq!(nodes.len(), claims.len(), "one node per NodeClaim");
    for n in &nodes {
        let labels = n.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get("karpenter.sh/initialized").map(String::as_str),
            Some("true")
        );
        assert_eq!(
            labels.get("karpenter.sh/registered").map(String::as_str),
            Some("true")
        );
        let taints = n
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        assert!(
            !taints.iter().any(|t| t.key == "karpenter.sh/unregistered"),
            "{taints:?}"
        );
        assert!(
            n.metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == "karpenter.sh/termination")
        );
    }
    let pool = env.pools().get("default").await.unwrap();
    let status = pool.status.expect("NodePool status written");
    assert_eq!(status.nodes, nodes.len() as i64);
    assert!(
        status.resources.contains_key("cpu"),
        "{:?}",
        status.resources
    );

    wait_for("the controller's metrics", MINUTE, || async {
        let created = ctl.metric("karpenter_nodeclaims_created_total", &[]);
        let synced = ctl.metric("karpenter_cluster_state_synced", &[]);
        if created >= claims.len() as f64 && synced == 1.0 {
            Ok(())
        } else {
            Err(format!("created {created}, synced {synced}"))
        }
    })
    .await;
    assert!(ctl.ready(), "readyz once synced");
    let events: Api<Event> = Api::namespaced(env.client(), "default");
    let events = events.list(&ListParams::default()).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("Nominated")),
        "Nominated events for the pods"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_taints_hold_initialization_until_removed() {
    let _one = serial().await;
    let env = Env::start().await;
    env.apply_pool(|p| {
        p.spec.template.spec.startup_taints = vec![dovetail_api::taint::Taint {
            key: "example.com/agent-not-ready".into(),
            value: None,
            effect: dovetail_api::taint::TaintEffect::NoSchedule,
            time_added: None,
        }];
    })
    .await;
    let _ctl = env.controller("a", SINGLE);
    env.deploy("inflate", 1, "1", "1Gi").await;
    let node = wait_for(
        "a registered node carrying the startup taint",
        MINUTE,
        || async {
            for n in env.node_list().await {
                let labels = n.metadata.labels.clone().unwrap_or_default();
                let tainted = n
                    .spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_some_and(|t| t.iter().any(|t| t.key == "example.com/agent-not-ready"));
                if labels.contains_key("karpenter.sh/registered") && tainted {
                    return Ok(n);
                }
            }
            Err("none".into())
        },
    )
    .await;
    let name = node.metadata.name.clone().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let claim = env.claim_list().await.pop().unwrap();
    assert_ne!(
        condition(&claim, "Initialized").as_deref(),
        Some("True"),
        "held by the startup taint"
    );
    assert_eq!(
        env.running("inflate").await,
        0,
        "the pod cannot land on a tainted node"
    );

    // The agent the taint waits for removes it (from the node as it is
    // now: the kubelet has lifted its not-ready taint meanwhile).
    let node = env.nodes().get(&name).await.unwrap();
    let taints: Vec<_> = node
        .spec
        .and_then(|s| s.taints)
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.key != "example.com/agent-not-ready")
        .collect();
    env.nodes()
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"taints": taints}})),
        )
        .await
        .unwrap();
    all_running(&env, "inflate", 1).await;
    wait_for(
        "Initialized=True and the initialized label",
        MINUTE,
        || async {
            let claim = env.claim_list().await.pop().unwrap();
            let node = env.nodes().get(&name).await.unwrap();
            let init = node
                .metadata
                .labels
                .unwrap_or_default()
                .get("karpenter.sh/initialized")
                .cloned();
            if condition(&claim, "Initialized").as_deref() == Some("True")
                && init.as_deref() == Some("true")
            {
                Ok(())
            } else {
                Err(format!("{:?} {init:?}", condition(&claim, "Initialized")))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consolidation_launches_the_replacement_before_draining() {
    let _one = serial().await;
    let env = Env::start().await;
    // On-demand only: replacing a spot node with a cheaper spot node needs
    // the SpotToSpotConsolidation feature gate, as in Karpenter.
    env.apply_pool(|p| {
        p.spec.disruption.consolidate_after = dovetail_api::NillableDuration::new("0s");
        on_demand_only(p);
    })
    .await;
    let _ctl = fast_controller(&env);
    env.deploy("inflate", 8, "1", "1536Mi").await;
    all_running(&env, "inflate", 8).await;
    let before = names(&env.claim_list().await);
    env.scale("inflate", 1).await;
    // The big node is replaced by a smaller one: a new NodeClaim is
    // initialised while the old node still exists, then the old one goes.
    let replaced = wait_for(
        "a cheaper replacement and the old node gone",
        3 * MINUTE,
        || async {
            let now = env.claim_list().await;
            let fresh: Vec<_> = now.iter().filter(|c| !before.contains(c.name())).collect();
            let old_left = now.iter().filter(|c| before.contains(c.name())).count();
            if old_left == 0 && !fresh.is_empty() {
                Ok(fresh
                    .iter()
                    .map(|c| c.name().to_string())
                    .collect::<Vec<_>>())
            } else {
                Err(format!("old {old_left}, new {}", fresh.len()))
            }
        },
    )
    .await;
    all_running(&env, "inflate", 1).await;
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    let events: Api<Event> = Api::all(env.client());
    let reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(
        reasons.iter().any(|r| r == "DisruptionLaunching"),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r == "DisruptionTerminating"),
        "{reasons:?}"
    );
}

fn on_demand_only(p: &mut dovetail_api::NodePool) {
    for r in &mut p.spec.template.spec.requirements {
        if r.key == "karpenter.sh/capacity-type" {
            r.values = vec!["on-demand".into()];
        }
    }
}

/// Claims of the `default` pool, names only.
async fn claim_names(env: &Env) -> BTreeSet<String> {
    names(&env.claim_list().await)
}

/// Waits until none of `old` is left and `n` claims exist, all pods running.
async fn replaced(env: &Env, old: &BTreeSet<String>, what: &str) {
    wait_for(what, 3 * MINUTE, || async {
        let now = claim_names(env).await;
        if now.is_disjoint(old) && !now.is_empty() {
            Ok(())
        } else {
            Err(format!("old {old:?}, now {now:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodepool_change_drifts_and_replaces_its_nodes() {
    let _one = serial().await;
    let env = Env::start().await;
    env.apply_pool(|_| {}).await;
    let _ctl = fast_controller(&env);
    env.deploy("inflate", 2, "1", "1Gi").await;
    all_running(&env, "inflate", 2).await;
    let before = claim_names(&env).await;
    // A new template label: the NodePool hash changes, the claims drift.
    env.pools()
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"template": {"metadata": {"labels": {"team": "checkout"}}}}})),
        )
        .await
        .unwrap();
    replaced(&env, &before, "drifted NodeClaims replaced").await;
    all_running(&env, "inflate", 2).await;
    for n in env.node_list().await {
        let labels = n.metadata.labels.unwrap_or_default();
        assert_eq!(
            labels.get("team").map(String::as_str),
            Some("checkout"),
            "replacement carries the new template"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodeclaims_are_replaced_when_they_expire() {
    let _one = serial().await;
    let env = Env::start().await;
    env.apply_pool(|p| {
        p.spec.template.spec.expire_after = dovetail_api::NillableDuration::new("20s");
    })
    .await;
    let _ctl = fast_controller(&env);
    env.deploy("inflate", 2, "1", "1Gi").await;
    all_running(&env, "inflate", 2).await;
    let before = claim_names(&env).await;
    replaced(&env, &before, "expired NodeClaims replaced").await;
    all_running(&env, "inflate", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_holds_the_drain_to_max_unavailable() {
    let _one = serial().await;
    let env = Env::start().await;
    env.apply_pool(|_| {}).await;
    let _ctl = env.controller("a", SINGLE);
    env.deploy("web", 4, "250m", "256Mi").await;
    all_running(&env, "web", 4).await;
    let pdb: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}
    }))
    .unwrap();
    Api::<PodDisruptionBudget>::namespaced(env.client(), "default")
        .create(&PostParams::default(), &pdb)
        .await
        .unwrap();
    let claims = env.claim_list().await;
    assert_eq!(claims.len(), 1, "four small pods fit one node");
    // Deleting the NodeClaim drains its node through the Eviction API.
    env.claims()
        .delete(claims[0].name(), &DeleteParams::default())
        .await
        .unwrap();
    let old = claims[0].name().to_string();
    let worst = std::cell::Cell::new(0usize);
    wait_for(
        "the old NodeClaim gone and 4 pods running again",
        3 * MINUTE,
        || async {
            let phases = env.phases("web").await;
            let running = phases.get("Running").copied().unwrap_or(0);
            worst.set(worst.get().max(4usize.saturating_sub(running)));
            let left = claim_names(&env).await.contains(&old);
            if !left && running == 4 {
                Ok(())
            } else {
                Err(format!("{phases:?}, old claim left: {left}"))
            }
        },
    )
    .await;
    let worst = worst.get();
    assert!(
        worst <= 1,
        "at most maxUnavailable=1 pod down at once, saw {worst}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn do_not_disrupt_pods_keep_their_node() {
    let _one = serial().await;
    let env = Env::start().await;
    env.apply_pool(|p| {
        p.spec.disruption.consolidate_after = dovetail_api::NillableDuration::new("0s");
    })
    .await;
    let _ctl = fast_controller(&env);
    env.deploy("inflate", 8, "1", "1536Mi").await;
    all_running(&env, "inflate", 8).await;
    // One pod says do-not-disrupt: its node stays however empty it gets.
    let pods = env
        .pods()
        .list(&ListParams::default().labels("app=inflate"))
        .await
        .unwrap();
    let keeper = pods.items[0].metadata.name.clone().unwrap();
    let keeper_node = pods.items[0]
        .spec
        .as_ref()
        .unwrap()
        .node_name
        .clone()
        .unwrap();
    env.pods()
        .patch(
            &keeper,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {
                "annotations": {"karpenter.sh/do-not-disrupt": "true"},
                "labels": {"app": "keeper"},
                "ownerReferences": null
            }})),
        )
        .await
        .unwrap();
    env.scale("inflate", 0).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let node = env.nodes().get_opt(&keeper_node).await.unwrap();
    assert!(
        node.is_some_and(|n| n.metadata.deletion_timestamp.is_none()),
        "the do-not-disrupt pod's node stays"
    );
    assert_eq!(env.running("keeper").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_nodepool_is_reported_and_the_others_keep_working() {
    let _one = serial().await;
    let env = Env::start().await;
    env.apply_pool(|_| {}).await;
    // The CRD's schema accepts it; Karpenter's rules do not (a requirement
    // on a label only Karpenter may set).
    let mut broken: dovetail_api::NodePool = harness::read_example("nodepool.yaml");
    broken.metadata.name = Some("broken".into());
    broken.spec.template.spec.requirements.push(
        serde_json::from_value(serde_json::json!({
            "key": "karpenter.sh/nodepool", "operator": "In", "values": ["x"]
        }))
        .unwrap(),
    );
    broken.spec.weight = Some(100);
    env.pools()
        .create(&PostParams::default(), &broken)
        .await
        .unwrap();
    let _ctl = env.controller("a", SINGLE);
    env.deploy("inflate", 2, "1", "1Gi").await;
    all_running(&env, "inflate", 2).await;
    for c in env.claim_list().await {
        let pool = c
            .metadata
            .labels
            .unwrap_or_default()
            .get("karpenter.sh/nodepool")
            .cloned();
        assert_eq!(pool.as_deref(), Some("default"));
    }
    wait_for(
        "ValidationSucceeded=False on the broken pool, with an event",
        MINUTE,
        || async {
            let pool = env.pools().get("broken").await.unwrap();
            let cond = pool
                .status
                .iter()
                .flat_map(|s| s.conditions.iter())
                .find(|c| c.type_ == "ValidationSucceeded")
                .map(|c| (format!("{:?}", c.status), c.message.clone()));
            let events: Api<Event> = Api::all(env.client());
            let warned = events
                .list(&ListParams::default())
                .await
                .unwrap()
                .into_iter()
                .any(|e| {
                    e.involved_object.name.as_deref() == Some("broken")
                        && e.type_.as_deref() == Some("Warning")
                });
            match cond {
                Some((s, m)) if s == "False" && m.contains("karpenter.sh/nodepool") && warned => {
                    Ok(())
                }
                other => Err(format!("{other:?}, event: {warned}")),
            }
        },
    )
    .await;
}

async fn lease_holder(env: &Env) -> Option<String> {
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(env.client(), "kube-system");
    let lease = leases.get_opt("dovetail-leader-election").await.ok()??;
    lease.spec?.holder_identity.filter(|h| !h.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_and_a_follower_takes_over_on_sigterm() {
    let _one = serial().await;
    let env = Env::start().await;
    env.apply_pool(|_| {}).await;
    let election = [("LEADER_ELECTION_NAMESPACE", "kube-system")];
    let mut a = env.controller("a", &election);
    wait_for("a to lead", MINUTE, || async {
        match lease_holder(&env).await {
            Some(h) if h.starts_with('a') => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let b = env.controller("b", &election);
    wait_for("b ready as a follower", MINUTE, || async {
        if b.ready() {
            Ok(())
        } else {
            Err("not ready".into())
        }
    })
    .await;
    env.deploy("inflate", 3, "1", "1Gi").await;
    all_running(&env, "inflate", 3).await;
    assert!(a.metric("karpenter_nodeclaims_created_total", &[]) >= 1.0);
    assert_eq!(
        b.metric("karpenter_nodeclaims_created_total", &[]),
        0.0,
        "a follower never writes"
    );

    let exit = a.terminate();
    assert!(
        exit.success(),
        "clean exit on SIGTERM: {exit:?}\n{}",
        a.logs()
    );
    let started = std::time::Instant::now();
    wait_for("b to lead", Duration::from_secs(15), || async {
        match lease_holder(&env).await {
            Some(h) if h.starts_with('b') => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "within the lease duration"
    );
    env.scale("inflate", 6).await;
    all_running(&env, "inflate", 6).await;
    assert!(
        b.metric("karpenter_nodeclaims_created_total", &[]) >= 1.0,
        "the new leader provisions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_expiring_mid_run_relists_and_carries_on() {
    let _one = serial().await;
    let env = Env::start().await;
    env.apply_pool(|_| {}).await;
    let _ctl = env.controller("a", SINGLE);
    env.deploy("inflate", 2, "1", "1Gi").await;
    all_running(&env, "inflate", 2).await;
    let claims_before = env.claim_list().await.len();
    // Every open watch gets 410 Gone and must relist.
    env.cluster.server().store().compact();
    env.scale("inflate", 6).await;
    all_running(&env, "inflate", 6).await;
    env.cluster.server().store().compact();
    env.scale("inflate", 10).await;
    all_running(&env, "inflate", 10).await;
    let claims = env.claim_list().await;
    assert!(claims.len() > claims_before);
    let nodes = env.node_list().await;
    assert_eq!(
        nodes.len(),
        claims.len(),
        "every NodeClaim has its node, no duplicates"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_a_conflict_storm() {
    let _one = serial().await;
    let env = Env::start().await;
    env.apply_pool(|p| {
        p.spec.disruption.consolidate_after = dovetail_api::NillableDuration::new("0s");
    })
    .await;
    let _ctl = fast_controller(&env);
    // Another writer touches every Node and NodeClaim all the time: the
    // controller's guarded writes keep meeting 409 Conflict.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let storm = {
        let (nodes, claims, stop) = (env.nodes(), env.claims(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            let mut patched = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let patch = Patch::Merge(
                    serde_json::json!({"metadata": {"annotations": {"example.com/storm": n.to_string()}}}),
                );
                for node in nodes.list(&ListParams::default()).await.unwrap() {
                    let name = node.metadata.name.unwrap();
                    if nodes
                        .patch(&name, &PatchParams::default(), &patch)
                        .await
                        .is_ok()
                    {
                        patched += 1;
                    }
                }
                for claim in claims.list(&ListParams::default()).await.unwrap() {
                    if claims
                        .patch(claim.name(), &PatchParams::default(), &patch)
                        .await
                        .is_ok()
                    {
                        patched += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            patched
        })
    };
    env.deploy("inflate", 10, "1", "1536Mi").await;
    all_running(&env, "inflate", 10).await;
    env.scale("inflate", 2).await;
    wait_for(
        "consolidated down to what 2 pods need",
        3 * MINUTE,
        || async {
            let claims = env.claim_list().await;
            let all_init = claims
                .iter()
                .all(|c| condition(c, "Initialized").as_deref() == Some("True"));
            if claims.len() == 1 && all_init {
                Ok(())
            } else {
                Err(format!("{} claims", claims.len()))
            }
        },
    )
    .await;
    all_running(&env, "inflate", 2).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let patched = storm.await.unwrap();
    // How many writes fit in the scenario depends on the machine's load;
    // a score of them lands among the controller's own either way.
    assert!(patched >= 20, "the storm wrote only {patched} times");
    for n in env.node_list().await {
        let labels = n.metadata.labels.unwrap_or_default();
        assert_eq!(
            labels.get("karpenter.sh/initialized").map(String::as_str),
            Some("true")
        );
        let taints = n.spec.and_then(|s| s.taints).unwrap_or_default();
        assert!(
            !taints.iter().any(|t| t.key == "karpenter.sh/disrupted"),
            "{taints:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_swapped_100_times_under_load_fail_no_decision() {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::ConfigMap;

    let _one = serial().await;
    let env = Env::start().await;
    env.apply_pool(|_| {}).await;
    let ctl = env.controller("a", SINGLE);
    let good = dovetail_tests::guest_bytes("dovetail-policy-default");
    let bad = b"\0asm but not a component".to_vec();
    let configmaps: Api<ConfigMap> = Api::namespaced(env.client(), "kube-system");
    let mut cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "dovetail-instance-selection", "namespace": "kube-system",
                     "labels": {"dovetail.dev/policy": "instance-selection"}},
    }))
    .unwrap();
    env.deploy("inflate", 2, "500m", "512Mi").await;
    let mut created = false;
    for swap in 0..100usize {
        let bytes = if swap % 2 == 0 { &good } else { &bad };
        cm.binary_data = Some(
            [(
                "instance-selection.wasm".to_string(),
                ByteString(bytes.clone()),
            )]
            .into(),
        );
        let written = if created {
            configmaps
                .replace(
                    &cm.metadata.name.clone().unwrap(),
                    &PostParams::default(),
                    &cm,
                )
                .await
        } else {
            created = true;
            configmaps.create(&PostParams::default(), &cm).await
        }
        .expect("write the policy ConfigMap");
        let rv = written.metadata.resource_version.clone().unwrap();
        // Judged: the status annotation names this version.
        let judged = wait_for(&format!("swap {swap} judged"), MINUTE, || async {
            let now = configmaps.get("dovetail-instance-selection").await.unwrap();
            let status = now
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("dovetail.dev/policy-status"))
                .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
            match status {
                Some(s) if s["resourceVersion"] == rv.as_str() => Ok((now, s)),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        let (now, status) = judged;
        let expected = if swap % 2 == 0 { "Accepted" } else { "Refused" };
        assert!(
            status["outcome"]
                .as_str()
                .is_some_and(|o| o.eq_ignore_ascii_case(expected)),
            "swap {swap}: {status}"
        );
        cm = now;
        // Decisions keep flowing meanwhile: the workload keeps changing.
        if swap % 10 == 5 {
            env.scale("inflate", if swap % 20 == 5 { 12 } else { 3 })
                .await;
        }
    }
    env.scale("inflate", 8).await;
    all_running(&env, "inflate", 8).await;
    wait_for("the reload counters", MINUTE, || async {
        let m = ctl.metrics();
        let accepted = harness::metric_value(
            &m,
            "dovetail_policy_reloads_total",
            &[("outcome", "accepted")],
        );
        let refused = harness::metric_value(
            &m,
            "dovetail_policy_reloads_total",
            &[("outcome", "refused")],
        );
        if accepted == 50.0 && refused == 50.0 {
            Ok(())
        } else {
            Err(format!("{accepted} accepted, {refused} refused"))
        }
    })
    .await;
    let m = ctl.metrics();
    let value = |name: &str, labels: &[(&str, &str)]| harness::metric_value(&m, name, labels);
    assert_eq!(
        value("dovetail_policy_failures_total", &[]),
        0.0,
        "no failed decision"
    );
    assert_eq!(
        value("dovetail_policy_fallbacks_total", &[]),
        0.0,
        "no fallback to the built-in"
    );
    assert!(
        ctl.metric(
            "dovetail_policy_decisions_total",
            &[("decision", "instance-selection")]
        ) >= 2.0,
        "provisioning decisions were made during the swaps"
    );
    assert!(ctl.metric("karpenter_nodeclaims_created_total", &[]) >= 2.0);
}
