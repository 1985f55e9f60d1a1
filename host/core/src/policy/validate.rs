//! Checks on what a policy returns, before anything acts on it. A policy is
//! untrusted code: its output is held to the same contract as its input.

use super::select::{attribute_value, pick_limit};
use super::types::{
    ConsolidationContext, ProposedMove, Ranking, Selection, SelectionRequest, Verdict,
};

/// Longest reason string kept from a verdict.
pub const MAX_REASON_BYTES: usize = 4096;

/// What is wrong with a policy's output, phrased for the policy's author.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidOutput(pub String);

fn invalid(msg: impl Into<String>) -> InvalidOutput {
    InvalidOutput(msg.into())
}

/// One result per launch; picks in range, compatible, unique, within the
/// limit, and meeting every min-values requirement.
pub fn check_selection(
    request: &SelectionRequest,
    selection: &Selection,
) -> Result<(), InvalidOutput> {
    if selection.len() != request.requests.len() {
        return Err(invalid(format!(
            "returned {} results for {} launch requests",
            selection.len(),
            request.requests.len()
        )));
    }
    let rows = request.offerings.len();
    // Both marks are set per launch and cleared after it, so checking a
    // round is linear in its rows, not launches × offerings.
    let mut seen = vec![false; rows];
    let mut compatible = vec![false; rows];
    let mark = |marks: &mut [bool], rows: &[u32], on: bool| {
        for &r in rows {
            if let Some(slot) = marks.get_mut(r as usize) {
                *slot = on;
            }
        }
    };
    for (i, (launch, result)) in request.requests.iter().zip(selection).enumerate() {
        let Ok(picks) = result else { continue };
        mark(&mut compatible, &launch.compatible, true);
        if picks.len() > pick_limit(launch).max(launch.picks as usize) {
            return Err(invalid(format!(
                "request {i}: {} picks where at most {} are allowed",
                picks.len(),
                launch.picks
            )));
        }
        for &p in picks {
            let p = p as usize;
            if p >= rows {
                return Err(invalid(format!(
                    "request {i}: offering {p} is out of range (the table has {rows} rows)"
                )));
            }
            if !compatible[p] {
                return Err(invalid(format!(
                    "request {i}: offering {p} is not among the request's compatible offerings"
                )));
            }
            if std::mem::replace(&mut seen[p], true) {
                return Err(invalid(format!(
                    "request {i}: offering {p} is picked twice"
                )));
            }
        }
        for mv in &launch.min_values {
            let mut values: Vec<u32> = picks
                .iter()
                .map(|&p| attribute_value(request, p, mv.attribute))
                .collect();
            values.sort_unstable();
            values.dedup();
            if !picks.is_empty() && values.len() < mv.min as usize {
                return Err(invalid(format!(
                    "request {i}: picks have {} distinct {} but minValues asks for {}",
                    values.len(),
                    mv.attribute.label(),
                    mv.min
                )));
            }
        }
        mark(&mut seen, picks, false);
        mark(&mut compatible, &launch.compatible, false);
    }
    Ok(())
}

/// One finite score or exclusion per candidate.
pub fn check_ranking(ctx: &ConsolidationContext, ranking: &Ranking) -> Result<(), InvalidOutput> {
    if ranking.len() != ctx.candidates.len() {
        return Err(invalid(format!(
            "returned {} scores for {} candidates",
            ranking.len(),
            ctx.candidates.len()
        )));
    }
    if let Some((i, s)) = ranking
        .iter()
        .enumerate()
        .find_map(|(i, s)| s.filter(|s| !s.is_finite()).map(|s| (i, s)))
    {
        return Err(invalid(format!(
            "candidate {i} scored {s}, which is not a finite number"
        )));
    }
    Ok(())
}

/// One verdict per move, with a reason of bounded size.
pub fn check_verdicts(moves: &[ProposedMove], verdicts: &[Verdict]) -> Result<(), InvalidOutput> {
    if verdicts.len() != moves.len() {
        return Err(invalid(format!(
            "returned {} verdicts for {} moves",
            verdicts.len(),
            moves.len()
        )));
    }
    if let Some(i) = verdicts
        .iter()
        .position(|v| v.reason.len() > MAX_REASON_BYTES)
    {
        return Err(invalid(format!(
            "verdict {i} has a reason over {MAX_REASON_BYTES} bytes"
        )));
    }
    Ok(())
}
