//! Shadow mode: a candidate policy runs beside the live one on the same
//! inputs and never acts.
//!
//! [`ShadowHost`] is the decision port the controller uses. Every call is
//! answered by the live [`PolicyHost`]; when a shadow policy is installed
//! for that decision, it is run on the same input afterwards and its answer
//! compared with the live one. A difference is logged (one line, both
//! answers, both policies) and counted; a shadow failure is logged and
//! counted too, and never touches the live answer. The shadow runs on the
//! decision's thread, after the live answer is made: it adds its own time
//! to the round, nothing else.
//!
//! Answers are compared by what the controller acts on: the offerings chosen
//! per launch, in order; the order in which candidates would be consolidated
//! (not the raw scores, whose scales differ between policies); and which
//! moves are approved (not the reasons).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dovetail_core::policy::types::{
    ConsolidationContext, Decision, PolicyError, ProposedMove, Ranking, Selection,
    SelectionRequest, Verdict, capacity,
};
use dovetail_core::policy::{ConsolidationScorer, Decided, InstanceSelector};

use crate::host::PolicyHost;

/// How many differing entries a log line shows before summarising.
const SHOWN: usize = 3;

fn index(d: Decision) -> usize {
    match d {
        Decision::InstanceSelection => 0,
        Decision::ConsolidationScoring => 1,
    }
}

/// Shadow runs, disagreements and failures per decision. Shared with
/// whoever exports metrics; reads are lock-free.
#[derive(Debug, Default)]
pub struct ShadowCounts {
    runs: [AtomicU64; 2],
    disagreements: [AtomicU64; 2],
    failures: [AtomicU64; 2],
}

impl ShadowCounts {
    /// Calls on which a shadow policy ran (each `select`, `rank` and
    /// `approve` is one).
    pub fn runs(&self, d: Decision) -> u64 {
        self.runs[index(d)].load(Ordering::Relaxed)
    }

    /// Calls on which the shadow policy would have decided differently.
    pub fn disagreements(&self, d: Decision) -> u64 {
        self.disagreements[index(d)].load(Ordering::Relaxed)
    }

    /// Calls on which the shadow policy failed (the live answer stood).
    pub fn failures(&self, d: Decision) -> u64 {
        self.failures[index(d)].load(Ordering::Relaxed)
    }

    fn add(counter: &[AtomicU64; 2], d: Decision) {
        counter[index(d)].fetch_add(1, Ordering::Relaxed);
    }
}

/// The decision ports, answered by the live policies and shadowed by the
/// candidates.
pub struct ShadowHost {
    live: Arc<PolicyHost>,
    shadow: Arc<PolicyHost>,
    counts: Arc<ShadowCounts>,
}

impl std::fmt::Debug for ShadowHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShadowHost")
            .field("live", &self.live)
            .field("shadow", &self.shadow)
            .finish_non_exhaustive()
    }
}

impl ShadowHost {
    /// Shadows `live` with an empty host on the same runtime (so compiled
    /// components are shared); install candidates in [`ShadowHost::shadow`].
    pub fn new(live: Arc<PolicyHost>) -> Self {
        let shadow = Arc::new(PolicyHost::new(live.runtime().clone()));
        Self::with_shadow(live, shadow)
    }

    pub fn with_shadow(live: Arc<PolicyHost>, shadow: Arc<PolicyHost>) -> Self {
        Self {
            live,
            shadow,
            counts: Arc::default(),
        }
    }

    /// The host whose answers are acted on.
    pub fn live(&self) -> &Arc<PolicyHost> {
        &self.live
    }

    /// The host of the candidates; a decision with no policy installed here
    /// is not shadowed.
    pub fn shadow(&self) -> &Arc<PolicyHost> {
        &self.shadow
    }

    pub fn counts(&self) -> &Arc<ShadowCounts> {
        &self.counts
    }

    pub fn disagreements(&self, d: Decision) -> u64 {
        self.counts.disagreements(d)
    }

    pub fn shadow_failures(&self, d: Decision) -> u64 {
        self.counts.failures(d)
    }

    /// Runs the shadow policy for `d`, if any, and compares its answer with
    /// `live`. `diff` returns both answers shown for people when they differ.
    fn compare<T>(
        &self,
        d: Decision,
        call: &'static str,
        live: &Decided<T>,
        run: impl FnOnce(&PolicyHost) -> Decided<T>,
        diff: impl FnOnce(&T, &T) -> Option<(String, String)>,
    ) {
        let Some(candidate) = self.shadow.active(d) else {
            return;
        };
        ShadowCounts::add(&self.counts.runs, d);
        // The shadow host already turns policy failures into fallbacks; a
        // panic in the host itself must not reach the live decision either.
        let shadow = match catch_unwind(AssertUnwindSafe(|| run(&self.shadow))) {
            Ok(s) => s,
            Err(_) => {
                ShadowCounts::add(&self.counts.failures, d);
                tracing::error!(decision = %d, call, shadow = %candidate.label(), "shadow policy run panicked; the live answer stands");
                return;
            }
        };
        if let Some(why) = &shadow.fallback {
            ShadowCounts::add(&self.counts.failures, d);
            tracing::warn!(decision = %d, call, shadow = %candidate.label(), "shadow policy failed; the live answer stands: {why}");
            return;
        }
        if let Some((live_answer, shadow_answer)) = diff(&live.value, &shadow.value) {
            ShadowCounts::add(&self.counts.disagreements, d);
            tracing::info!(
                decision = %d,
                call,
                live = %live.by,
                shadow = %shadow.by,
                live_answer = %live_answer,
                shadow_answer = %shadow_answer,
                "shadow policy disagrees"
            );
        }
    }
}

/// `m5.large/us-east-1a/spot`
fn offering(req: &SelectionRequest, row: u32) -> String {
    let o = &req.offerings;
    let r = row as usize;
    match (
        o.instance_type.get(r),
        o.zone.get(r),
        o.capacity_type.get(r),
    ) {
        (Some(&t), Some(&z), Some(&c)) => format!(
            "{}/{}/{}",
            req.dictionaries.instance_type(t),
            req.dictionaries.zones.get(z as usize),
            capacity::name(c)
        ),
        _ => format!("row {row}"),
    }
}

fn show_pick(req: &SelectionRequest, pick: &Result<Vec<u32>, PolicyError>) -> String {
    match pick {
        Ok(rows) => {
            let mut s: Vec<String> = rows.iter().take(SHOWN).map(|&r| offering(req, r)).collect();
            if rows.len() > SHOWN {
                s.push(format!("+{}", rows.len() - SHOWN));
            }
            format!("[{}]", s.join(" "))
        }
        Err(e) => format!("error({:?})", e.kind),
    }
}

/// Same launches, same offerings in the same order; errors by kind.
fn same_pick(a: &Result<Vec<u32>, PolicyError>, b: &Result<Vec<u32>, PolicyError>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a == b,
        (Err(a), Err(b)) => a.kind == b.kind,
        _ => false,
    }
}

fn selection_diff(
    req: &SelectionRequest,
    live: &Selection,
    shadow: &Selection,
) -> Option<(String, String)> {
    if live.len() != shadow.len() {
        return Some((
            format!("{} answers", live.len()),
            format!("{} answers", shadow.len()),
        ));
    }
    let differ: Vec<usize> = (0..live.len())
        .filter(|&i| !same_pick(&live[i], &shadow[i]))
        .collect();
    if differ.is_empty() {
        return None;
    }
    let show = |sel: &Selection| {
        let mut parts: Vec<String> = differ
            .iter()
            .take(SHOWN)
            .map(|&i| format!("launch {i}: {}", show_pick(req, &sel[i])))
            .collect();
        if differ.len() > SHOWN {
            parts.push(format!(
                "{} more of {} differ",
                differ.len() - SHOWN,
                live.len()
            ));
        }
        parts.join("; ")
    };
    Some((show(live), show(shadow)))
}

/// Candidates in consolidation order (lowest score first, ties by row);
/// excluded ones left out.
fn order(ranking: &Ranking) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..ranking.len())
        .filter(|&i| ranking[i].is_some())
        .collect();
    rows.sort_by(|&a, &b| {
        let key = |i: usize| ranking[i].unwrap_or(f64::INFINITY);
        key(a).total_cmp(&key(b)).then(a.cmp(&b))
    });
    rows
}

fn ranking_diff(
    ctx: &ConsolidationContext,
    live: &Ranking,
    shadow: &Ranking,
) -> Option<(String, String)> {
    let (a, b) = (order(live), order(shadow));
    if a == b {
        return None;
    }
    let name = |row: usize| {
        ctx.candidates.node.get(row).map_or_else(
            || format!("row {row}"),
            |&n| ctx.node_names.get(n as usize).to_string(),
        )
    };
    let show = |o: &[usize], all: usize| {
        let mut s: Vec<String> = o.iter().take(SHOWN).map(|&r| name(r)).collect();
        if o.len() > SHOWN {
            s.push(format!("+{}", o.len() - SHOWN));
        }
        let excluded = all - o.len();
        if excluded > 0 {
            s.push(format!("({excluded} excluded)"));
        }
        format!("[{}]", s.join(" "))
    };
    Some((show(&a, live.len()), show(&b, shadow.len())))
}

fn verdict_diff(live: &[Verdict], shadow: &[Verdict]) -> Option<(String, String)> {
    let approvals = |v: &[Verdict]| v.iter().map(|v| v.approve).collect::<Vec<_>>();
    if approvals(live) == approvals(shadow) {
        return None;
    }
    let show = |v: &[Verdict]| {
        let approved: Vec<String> = v
            .iter()
            .enumerate()
            .filter(|(_, v)| v.approve)
            .map(|(i, _)| i.to_string())
            .collect();
        format!("approves moves [{}] of {}", approved.join(" "), v.len())
    };
    Some((show(live), show(shadow)))
}

impl InstanceSelector for ShadowHost {
    fn select(&self, request: &SelectionRequest) -> Decided<Selection> {
        let live = self.live.select(request);
        self.compare(
            Decision::InstanceSelection,
            "select",
            &live,
            |h| h.select(request),
            |a, b| selection_diff(request, a, b),
        );
        live
    }
}

impl ConsolidationScorer for ShadowHost {
    fn rank(&self, ctx: &ConsolidationContext) -> Decided<Ranking> {
        let live = self.live.rank(ctx);
        self.compare(
            Decision::ConsolidationScoring,
            "rank",
            &live,
            |h| h.rank(ctx),
            |a, b| ranking_diff(ctx, a, b),
        );
        live
    }

    fn approve(&self, ctx: &ConsolidationContext, moves: &[ProposedMove]) -> Decided<Vec<Verdict>> {
        let live = self.live.approve(ctx, moves);
        self.compare(
            Decision::ConsolidationScoring,
            "approve",
            &live,
            |h| h.approve(ctx, moves),
            |a, b| verdict_diff(a, b),
        );
        live
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use dovetail_core::policy::fixtures::{synthetic_consolidation, synthetic_selection};
    use dovetail_tests::{TRIGGER_SEED, guest_bytes};

    use super::*;
    use crate::{Budget, LoadedPolicy, Runtime, RuntimeConfig};

    /// Log lines written while capturing.
    #[derive(Clone, Default)]
    struct Log(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Log {
        fn capture<T>(&self, f: impl FnOnce() -> T) -> T {
            let log = self.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || log.clone())
                .with_ansi(false)
                .finish();
            tracing::subscriber::with_default(subscriber, f)
        }

        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    fn runtime() -> Runtime {
        // A deadline no busy test machine reaches: a slow call is not a failure here.
        Runtime::new(RuntimeConfig {
            budget: Budget::Deadline(Duration::from_secs(10)),
            ..RuntimeConfig::default()
        })
        .unwrap()
    }

    fn install(host: &PolicyHost, d: Decision, package: &str, config: Option<&str>) {
        let p = LoadedPolicy::load_for(d, host.runtime(), package, &guest_bytes(package), config)
            .unwrap();
        host.install(d, Arc::new(p)).unwrap();
    }

    fn hosts(live: &[(Decision, &str)], shadow: &[(Decision, &str, Option<&str>)]) -> ShadowHost {
        let rt = runtime();
        let host = ShadowHost::new(Arc::new(PolicyHost::new(rt)));
        for (d, p) in live {
            install(host.live(), *d, p, None);
        }
        for (d, p, c) in shadow {
            install(host.shadow(), *d, p, *c);
        }
        host
    }

    #[test]
    fn a_disagreeing_shadow_is_counted_and_the_live_answer_stands() {
        let host = hosts(
            &[(Decision::InstanceSelection, "dovetail-policy-default")],
            &[(
                Decision::InstanceSelection,
                "dovetail-policy-graviton-first",
                None,
            )],
        );
        let alone = PolicyHost::new(host.live().runtime().clone());
        install(
            &alone,
            Decision::InstanceSelection,
            "dovetail-policy-default",
            None,
        );
        let log = Log::default();
        let mut differing = 0;
        for seed in 0..5 {
            let req = synthetic_selection(200, 4, seed);
            let answer = log.capture(|| host.select(&req));
            assert_eq!(answer, alone.select(&req), "the live answer, untouched");
            assert!(answer.by.starts_with("default@"), "{}", answer.by);
            let graviton = host.shadow().select(&req);
            differing += u64::from(selection_diff(&req, &answer.value, &graviton.value).is_some());
        }
        assert!(
            differing > 0,
            "graviton-first prefers other offerings than default"
        );
        let counts = host.counts();
        assert_eq!(host.disagreements(Decision::InstanceSelection), differing);
        assert_eq!(counts.runs(Decision::InstanceSelection), 5);
        assert_eq!(counts.failures(Decision::InstanceSelection), 0);
        assert_eq!(host.disagreements(Decision::ConsolidationScoring), 0);
        // One line per disagreement, naming both policies and both answers.
        let text = log.text();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("shadow policy disagrees"))
            .collect();
        assert_eq!(lines.len() as u64, differing, "{text}");
        let line = lines[0];
        for part in [
            "decision=instance-selection",
            "live=default@",
            "shadow=graviton-first@",
            "live_answer=launch ",
            "shadow_answer=launch ",
        ] {
            assert!(line.contains(part), "`{part}` in {line}");
        }
    }

    #[test]
    fn the_same_policy_in_shadow_never_disagrees() {
        let host = hosts(
            &[
                (Decision::InstanceSelection, "dovetail-policy-default"),
                (Decision::ConsolidationScoring, "dovetail-policy-default"),
            ],
            &[
                (Decision::InstanceSelection, "dovetail-policy-default", None),
                (
                    Decision::ConsolidationScoring,
                    "dovetail-policy-default",
                    None,
                ),
            ],
        );
        for seed in 0..3 {
            host.select(&synthetic_selection(200, 4, seed));
            let (ctx, moves) = synthetic_consolidation(50, seed);
            host.rank(&ctx);
            host.approve(&ctx, &moves);
        }
        let c = host.counts();
        assert_eq!(c.runs(Decision::InstanceSelection), 3);
        assert_eq!(c.runs(Decision::ConsolidationScoring), 6);
        assert_eq!(c.disagreements(Decision::InstanceSelection), 0);
        assert_eq!(c.disagreements(Decision::ConsolidationScoring), 0);
        assert_eq!(c.failures(Decision::ConsolidationScoring), 0);
    }

    #[test]
    fn a_scorer_that_ranks_differently_is_counted_against_the_builtin() {
        // No live policy: the built-in answers, balanced shadows it.
        let host = hosts(
            &[],
            &[(
                Decision::ConsolidationScoring,
                "dovetail-policy-balanced",
                None,
            )],
        );
        let (ctx, moves) = synthetic_consolidation(60, 7);
        let live = host.rank(&ctx);
        assert_eq!(live.by, dovetail_core::policy::ports::BUILTIN);
        assert_eq!(
            live.value,
            dovetail_core::policy::consolidate::default_rank(&ctx)
        );
        host.approve(&ctx, &moves);
        let shadow = host.shadow().rank(&ctx);
        assert_ne!(
            order(&live.value),
            order(&shadow.value),
            "balanced orders differently"
        );
        assert!(host.disagreements(Decision::ConsolidationScoring) >= 1);
        assert_eq!(host.counts().runs(Decision::ConsolidationScoring), 2);
    }

    #[test]
    fn a_failing_shadow_never_touches_the_live_answer() {
        let host = hosts(
            &[(Decision::InstanceSelection, "dovetail-policy-default")],
            &[(
                Decision::InstanceSelection,
                "dovetail-guest-hostile",
                Some(r#"{"mode": "panic"}"#),
            )],
        );
        let req = synthetic_selection(100, 3, TRIGGER_SEED);
        let answer = host.select(&req);
        assert!(answer.fallback.is_none(), "{:?}", answer.fallback);
        assert!(answer.by.starts_with("default@"), "{}", answer.by);
        assert!(
            answer
                .value
                .iter()
                .all(|r| r.as_ref().is_ok_and(|p| !p.is_empty()))
        );
        assert_eq!(host.shadow_failures(Decision::InstanceSelection), 1);
        assert_eq!(host.disagreements(Decision::InstanceSelection), 0);
        assert_eq!(
            host.live()
                .status(Decision::InstanceSelection)
                .failures
                .total(),
            0
        );
    }

    #[test]
    fn nothing_runs_without_a_shadow_policy() {
        let host = hosts(
            &[(Decision::InstanceSelection, "dovetail-policy-default")],
            &[],
        );
        host.select(&synthetic_selection(50, 2, 1));
        assert_eq!(host.counts().runs(Decision::InstanceSelection), 0);
        assert_eq!(
            host.shadow().status(Decision::InstanceSelection).decisions,
            0
        );
    }
}
