//! Validation (Karpenter's `validation.go`): a command decided earlier is
//! re-checked against a later cluster before it is carried out.

use std::collections::HashMap;

use crate::policy::ConsolidationScorer;
use crate::scheduler::{Prepared, Snapshot};

use super::candidates::{CandidateIndex, PoolIndex};
use super::command::{Command, Method};
use super::engine::Engine;
use super::settings::Settings;
use super::simulate::{Fit, Purpose};

/// Why a command no longer holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalidated(pub String);

/// Re-checks `command` against a later `snapshot` (Karpenter waits 15 s and
/// re-simulates before acting): every node must still be a candidate (not
/// nominated, protected or gone), the budgets must still allow it, and the
/// move must still work with the same replacement.
pub fn validate(
    command: &Command,
    snapshot: &Snapshot,
    now: u64,
    scorer: &dyn ConsolidationScorer,
    settings: &Settings,
) -> Result<(), Invalidated> {
    if command.method == Method::Expiration {
        return Ok(());
    }
    let prepared = Prepared::reusable(snapshot);
    let mut engine = Engine::new(snapshot, &prepared, now, scorer, settings);
    engine.compute_budgets();
    engine.collect_candidates();
    let mut cands = Vec::new();
    for name in &command.nodes {
        if let Some(e) = engine.pass.exclusions.iter().find(|e| e.node == *name) {
            return Err(Invalidated(format!("node {name}: {}", e.reason)));
        }
        let Some(c) = engine
            .candidates
            .iter()
            .position(|c| snapshot.nodes[c.node].name == *name)
        else {
            return Err(Invalidated(format!(
                "node {name} is gone or no longer a candidate"
            )));
        };
        cands.push(CandidateIndex(c));
    }
    let reason = command.reason.budget().ok_or_else(|| {
        Invalidated(format!(
            "reason {} is forceful and has no budget, but the method is {:?}",
            command.reason, command.method
        ))
    })?;
    let mut per_pool: HashMap<PoolIndex, u32> = HashMap::new();
    for &c in &cands {
        *per_pool.entry(engine.candidates[c].pool).or_default() += 1;
    }
    for (&pool, &n) in &per_pool {
        let allowed = engine.allowed(pool, reason);
        if n > allowed {
            return Err(Invalidated(format!(
                "NodePool `{}` now allows {allowed} {reason} disruptions, the command needs {n}",
                snapshot.node_pools[pool].name
            )));
        }
    }
    let replacements = match command.method {
        Method::Drift => match engine.fit(&cands, None, Purpose::Drift) {
            Fit::No(why) => return Err(Invalidated(why)),
            Fit::Delete => Vec::new(),
            Fit::Replace(claims) => claims,
        },
        Method::Emptiness if cands.iter().any(|&c| !engine.candidates[c].pods.is_empty()) => {
            return Err(Invalidated("a node is no longer empty".into()));
        }
        Method::Emptiness => Vec::new(),
        _ => {
            let multi = cands.len() > 1;
            engine
                .consolidation_move(&cands, multi)
                .map_err(Invalidated)?
                .1
        }
    };
    if replacements.len() != command.replacements.len() {
        return Err(Invalidated(format!(
            "the move now needs {} replacement nodes instead of {}",
            replacements.len(),
            command.replacements.len()
        )));
    }
    for (old, new) in command.replacements.iter().zip(&replacements) {
        if let Some(t) = old
            .instance_types
            .iter()
            .find(|t| !new.instance_types.contains(t))
        {
            return Err(Invalidated(format!(
                "the replacement changed: {t} is no longer a valid option"
            )));
        }
    }
    Ok(())
}
