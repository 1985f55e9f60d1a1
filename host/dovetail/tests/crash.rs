//! Crash safety: `dovetail controller` killed (SIGKILL) at random points
//! of a 50-pod scale-up and started again. Whatever it was doing — a
//! NodeClaim half created, an instance launched but not recorded, a node
//! half registered — the restarted controller finishes the job without
//! duplicates, and garbage collection leaves no instance without a
//! NodeClaim.

mod harness;

use std::collections::BTreeSet;
use std::time::Duration;

use harness::{Env, wait_for};

/// A small deterministic generator, so a failing trial can be replayed
/// from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const TRIALS: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_scale_up_the_controller_recovers_without_duplicates() {
    let seed = std::env::var("DOVETAIL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_D0E5_u64);
    for trial in 0..TRIALS {
        let mut rng = Rng(seed.wrapping_add(trial).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let env = Env::start().await;
        env.apply_pool(|_| {}).await;
        let mut ctl = env.controller(
            &format!("trial-{trial}"),
            &[("DISABLE_LEADER_ELECTION", "true")],
        );
        env.deploy("inflate", 50, "500m", "512Mi").await;
        let kills = 1 + rng.below(3);
        let mut at = Vec::new();
        for _ in 0..kills {
            let after = 200 + rng.below(2_500);
            at.push(after);
            tokio::time::sleep(Duration::from_millis(after)).await;
            ctl.kill();
            tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
            ctl.restart();
        }
        let what = format!("trial {trial} (seed {seed}, killed after {at:?} ms)");
        wait_for(
            &format!("{what}: 50 pods Running"),
            Duration::from_secs(180),
            || async {
                let phases = env.phases("inflate").await;
                match phases.get("Running") {
                    Some(50) if phases.values().sum::<usize>() == 50 => Ok(()),
                    _ => Err(format!("{phases:?}")),
                }
            },
        )
        .await;
        // Every instance belongs to exactly one NodeClaim (garbage
        // collection terminates any the crash left without one), and every
        // NodeClaim to exactly one node.
        wait_for(
            &format!("{what}: instances and NodeClaims agree"),
            Duration::from_secs(120),
            || async {
                let claims = env.claim_list().await;
                let ids: Vec<String> = claims
                    .iter()
                    .filter(|c| c.metadata.deletion_timestamp.is_none())
                    .filter_map(|c| c.status.as_ref()?.provider_id.clone())
                    .collect();
                let unique: BTreeSet<&String> = ids.iter().collect();
                let instances: BTreeSet<String> = env
                    .cluster
                    .cloud()
                    .instances()
                    .into_iter()
                    .map(|i| i.provider_id)
                    .collect();
                let nodes = env.node_list().await.len();
                if unique.len() == ids.len()
                    && ids.len() == claims.len()
                    && unique.iter().map(|s| (*s).clone()).collect::<BTreeSet<_>>() == instances
                    && nodes == claims.len()
                {
                    Ok(())
                } else {
                    Err(format!(
                        "{} claims, {} provider IDs ({} distinct), {} instances, {nodes} nodes",
                        claims.len(),
                        ids.len(),
                        unique.len(),
                        instances.len()
                    ))
                }
            },
        )
        .await;
        ctl.kill();
        env.cluster.shutdown().await;
    }
}
