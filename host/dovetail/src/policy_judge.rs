//! `dovetail policy judge`: a policy against the built-in decisions, scenario
//! by scenario, through the simulator's compare runs, with a verdict a
//! policy repository's CI can gate on.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;
use dovetail_core::policy::types::Decision;
use dovetail_policy::{FailureClass, LoadedPolicy, Runtime};
use dovetail_sim::text::Run;
use dovetail_sim::{Scenario, Totals, parse_scenario};
use serde::Serialize;

use crate::output::{self, outln};
use crate::policy_cmd::DecisionArg;
use crate::sim_cmd::{self, DEFAULT_FUEL, PolicyLimits, PolicySet, Spec};

/// The reference scenarios, built in so a judge runs anywhere: provisioning
/// and consolidation of a small cluster, a batch burst that comes and goes,
/// an existing cluster consolidated after a scale-down, a spot interruption
/// storm, and 12 hours of small shifts where consolidation policies differ.
const REFERENCE: [(&str, &str); 5] = [
    (
        "demo",
        include_str!("../../../examples/scenarios/demo.yaml"),
    ),
    (
        "batch-burst",
        include_str!("../../../examples/scenarios/batch-burst.yaml"),
    ),
    (
        "start-state",
        include_str!("../../../examples/scenarios/start-state.yaml"),
    ),
    (
        "spot-storm",
        include_str!("../../../examples/scenarios/spot-storm.yaml"),
    ),
    (
        "churn-12h",
        include_str!("../../../examples/scenarios/churn-12h.yaml"),
    ),
];

/// The judged policy's run label (the other run is `builtin`).
const POLICY: &str = "policy";

#[derive(Args)]
#[command(after_long_help = "\
Each scenario runs twice, as `dovetail sim --compare builtin --compare
policy:DECISION=POLICY` would: once with the built-in decisions and once
with the policy deciding what it implements (or --decision), the built-in
deciding the rest. A scenario's own `policies:` are ignored. Policies run
with a fuel budget, so a judge gives the same figures on every machine.

The command exits 1 when the policy failed or timed out (ran out of fuel)
in any call of any scenario: the simulator then had the built-in decide
instead. It exits 0 otherwise, whatever the figures: read the table for how
the policy compares.

Examples:
  dovetail policy judge my_policy.wasm
  dovetail policy judge my_policy.wasm --decision consolidation-scoring \\
      --config config.json
  dovetail policy judge my_policy.wasm --scenarios scenarios/ --json")]
pub struct JudgeArgs {
    /// The policy component (.wasm).
    policy: PathBuf,
    /// Judge this decision only (default: every decision the policy
    /// implements).
    #[arg(long)]
    decision: Option<DecisionArg>,
    /// The policy's JSON config.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Judge over every `*.yaml` scenario in DIR, in name order, instead of
    /// the built-in reference scenarios (demo, batch-burst, start-state,
    /// spot-storm and churn-12h from examples/scenarios/).
    #[arg(long, value_name = "DIR")]
    scenarios: Option<PathBuf>,
    /// Fuel per policy call; a call that runs out counts as a timeout.
    #[arg(long, default_value_t = DEFAULT_FUEL, value_parser = crate::limits::FUEL.number(), allow_negative_numbers = true)]
    fuel: u64,
    /// Memory cap per policy instance for a small request, in MiB.
    #[arg(long, default_value_t = 64, value_parser = crate::limits::MEMORY_MIB.count(), allow_negative_numbers = true)]
    memory_mib: usize,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

/// A scenario to judge over and where it came from.
struct Named {
    name: String,
    scenario: Scenario,
}

/// The figures the judge compares, for one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Figures {
    cost_usd: f64,
    disruptions: usize,
    pods_evicted: usize,
    pending_p99_seconds: f64,
    policy_failures: u64,
    policy_timeouts: u64,
}

impl From<&Totals> for Figures {
    fn from(t: &Totals) -> Self {
        Self {
            cost_usd: t.cost_usd,
            disruptions: t.disruptions,
            pods_evicted: t.pods_evicted,
            pending_p99_seconds: t.pending_p99_seconds,
            policy_failures: t.policy_failures,
            policy_timeouts: t.policy_timeouts,
        }
    }
}

/// One scenario's outcome.
#[derive(Debug, Serialize)]
struct Judged {
    scenario: String,
    builtin: Figures,
    policy: Figures,
    /// What the failures were (the last failure's message per decision).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Verdict {
    pass: bool,
    policy_failures: u64,
    policy_timeouts: u64,
    /// Scenarios where the policy failed or timed out.
    failed_in: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Judgement {
    policy: String,
    decisions: Vec<&'static str>,
    scenarios: Vec<Judged>,
    verdict: Verdict,
}

pub fn run(args: &JudgeArgs) -> Result<()> {
    let out = output::stdout("the judgement");
    let scenarios = match &args.scenarios {
        Some(dir) => read_dir(dir)?,
        None => reference()?,
    };
    let limits = PolicyLimits {
        fuel: args.fuel,
        memory_mib: args.memory_mib,
    };
    let mut runtime = None;
    let (label, decisions) = inspect(&mut runtime, limits, args)?;
    let set = PolicySet::one(
        &args.policy,
        &decisions,
        args.config.as_deref(),
        &format!("policy {}", args.policy.display()),
    );
    let specs = [
        Spec::Builtin,
        Spec::Custom {
            label: POLICY.to_string(),
            set,
        },
    ];
    let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
    eprintln!(
        "note: judging {label} ({}) against the built-in over {} scenario{}: {}",
        decision_list(&decisions),
        scenarios.len(),
        if scenarios.len() == 1 { "" } else { "s" },
        names.join(", ")
    );

    let mut judged = Vec::with_capacity(scenarios.len());
    for Named { name, scenario } in &scenarios {
        if let Some(estimate) = scenario.size().estimate() {
            eprintln!("note: {name}: {estimate}, for each of 2 runs");
        }
        // A host per scenario: its failure counts are that scenario's.
        let hosts = sim_cmd::load_hosts(&mut runtime, limits, &specs, &PolicySet::default())?;
        let runs = sim_cmd::run_specs(scenario, &specs, &hosts, &format!("{name} "))
            .with_context(|| format!("scenario {name}"))?;
        judged.push(judge(name, &runs));
    }
    let verdict = verdict(&judged);
    let judgement = Judgement {
        policy: label,
        decisions: decisions.iter().map(|d| d.as_str()).collect(),
        scenarios: judged,
        verdict,
    };
    if args.json {
        outln!(out, "{}", serde_json::to_string_pretty(&judgement)?)?;
    } else {
        out.text(&render(&judgement))?;
    }
    let v = &judgement.verdict;
    if !v.pass {
        bail!(
            "{} failed {} in {} of {} scenarios ({}); see the verdict above",
            judgement.policy,
            calls(v.policy_failures, v.policy_timeouts),
            v.failed_in.len(),
            judgement.scenarios.len(),
            v.failed_in.join(", ")
        );
    }
    Ok(())
}

/// Loads the policy once, to check it and learn its label and which of its
/// decisions to judge.
fn inspect(
    runtime: &mut Option<Runtime>,
    limits: PolicyLimits,
    args: &JudgeArgs,
) -> Result<(String, Vec<Decision>)> {
    let rt = sim_cmd::runtime(runtime, limits)?;
    let config = args
        .config
        .as_deref()
        .map(crate::policy_cmd::read_config)
        .transpose()?;
    let policy = LoadedPolicy::load_file(&rt, &args.policy, config.as_deref()).map_err(|e| {
        let what = match &args.config {
            Some(c) if e.class == FailureClass::Config => format!(" with config {}", c.display()),
            _ => String::new(),
        };
        anyhow!("policy {}{what}: {e}", args.policy.display())
    })?;
    let implemented = policy.info.decisions.clone();
    let decisions = match args.decision.map(Decision::from) {
        Some(d) if !policy.implements(d) => bail!(
            "--decision {d}: {} does not implement it (it implements {}); drop --decision \
             or name one it implements",
            policy.label(),
            decision_list(&implemented)
        ),
        Some(d) => vec![d],
        None => implemented,
    };
    Ok((policy.label(), decisions))
}

fn decision_list(decisions: &[Decision]) -> String {
    decisions
        .iter()
        .map(|d| d.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn reference() -> Result<Vec<Named>> {
    REFERENCE
        .iter()
        .map(|(name, text)| {
            let scenario = parse_scenario(text)
                .map_err(|e| anyhow!("reference scenario {name} is not valid: {e}"))?;
            Ok(Named {
                name: (*name).to_string(),
                scenario,
            })
        })
        .collect()
}

/// Every `*.yaml` in `dir`, in name order, each parsed before any runs: a
/// broken one fails the judge at once, naming its file.
fn read_dir(dir: &Path) -> Result<Vec<Named>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        anyhow!(
            "--scenarios {}: cannot read the directory: {e}; name a directory of scenario \
             files (*.yaml)",
            dir.display()
        )
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("--scenarios {}: cannot list it", dir.display()))?
            .path();
        // Anything named *.yaml but a directory is read, so a device, a FIFO
        // or a dangling link is refused by name rather than skipped unseen.
        if path.extension().is_some_and(|e| e == "yaml") && !path.is_dir() {
            files.push(path);
        }
    }
    if files.is_empty() {
        bail!(
            "--scenarios {}: no scenario files (*.yaml) in it; add one (see examples/scenarios/) \
             or drop --scenarios to judge over the reference scenarios",
            dir.display()
        );
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let scenario = sim_cmd::read_scenario(&path, false)?;
            if scenario.policies.instance_selection.is_some()
                || scenario.policies.consolidation_scoring.is_some()
            {
                eprintln!(
                    "note: scenario {}: its `policies:` are ignored; the judge compares the \
                     built-in with the judged policy",
                    path.display()
                );
            }
            let name = path
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            Ok(Named { name, scenario })
        })
        .collect()
}

/// The two runs of one scenario, `[builtin, policy]`.
fn judge(name: &str, runs: &[Run]) -> Judged {
    let (builtin, policy) = (&runs[0], &runs[1]);
    let notes = policy
        .notes
        .iter()
        .map(|n| {
            let n = n.strip_prefix(&format!("{}: ", policy.label)).unwrap_or(n);
            format!("{name}: {n}")
        })
        .collect();
    Judged {
        scenario: name.to_string(),
        builtin: Figures::from(&builtin.report.totals),
        policy: Figures::from(&policy.report.totals),
        notes,
    }
}

fn verdict(judged: &[Judged]) -> Verdict {
    let failed_in = judged
        .iter()
        .filter(|j| j.policy.policy_failures > 0 || j.policy.policy_timeouts > 0)
        .map(|j| j.scenario.clone())
        .collect::<Vec<_>>();
    Verdict {
        pass: failed_in.is_empty(),
        policy_failures: judged.iter().map(|j| j.policy.policy_failures).sum(),
        policy_timeouts: judged.iter().map(|j| j.policy.policy_timeouts).sum(),
        failed_in,
    }
}

/// `3 calls (1 of them a timeout)`.
fn calls(failures: u64, timeouts: u64) -> String {
    let n = |k: u64, one: &str, many: &str| format!("{k} {}", if k == 1 { one } else { many });
    // Timeouts are failures too; a count of timeouts alone still reads.
    let failures = failures.max(timeouts);
    match timeouts {
        0 => n(failures, "call", "calls"),
        t if t == failures => format!("{} (timed out)", n(failures, "call", "calls")),
        t => format!("{} ({} of them timed out)", n(failures, "call", "calls"), t),
    }
}

/// `+3 (+25.0%)`, `-0.0123 (-2.1%)`, `0`; the percent only against a
/// non-zero built-in figure.
fn delta(builtin: f64, policy: f64, decimals: usize) -> String {
    match delta_parts(builtin, policy, decimals) {
        (text, Some(pct)) => format!("{text} ({pct})"),
        (text, None) => text,
    }
}

/// The signed difference as shown, and its percentage of the built-in's
/// figure when there is one; `0` and no percentage when they show equal.
fn delta_parts(builtin: f64, policy: f64, decimals: usize) -> (String, Option<String>) {
    let d = policy - builtin;
    let text = format!("{d:+.decimals$}");
    if text
        .trim_start_matches(['+', '-'])
        .chars()
        .all(|c| matches!(c, '0' | '.'))
    {
        return ("0".into(), None);
    }
    let pct = (builtin.abs() > f64::EPSILON).then(|| format!("{:+.1}%", d / builtin * 100.0));
    (text, pct)
}

/// Cents once either cost reaches 10 USD, else 4 decimals (as `dovetail
/// sim`).
fn money_decimals(a: f64, b: f64) -> usize {
    if a.abs() >= 10.0 || b.abs() >= 10.0 {
        2
    } else {
        4
    }
}

/// The table, the failures' notes and the verdict line.
fn render(j: &Judgement) -> String {
    let mut rows: Vec<[String; 5]> = vec![[
        "scenario".into(),
        "measure".into(),
        "built-in".into(),
        "policy".into(),
        "delta".into(),
    ]];
    for s in &j.scenarios {
        let (b, p) = (&s.builtin, &s.policy);
        let num = |name: &str, b: f64, p: f64, decimals: usize| {
            [
                String::new(),
                name.to_string(),
                format!("{b:.decimals$}"),
                format!("{p:.decimals$}"),
                delta(b, p, decimals),
            ]
        };
        let mut group = vec![
            num(
                "cost (USD)",
                b.cost_usd,
                p.cost_usd,
                money_decimals(b.cost_usd, p.cost_usd),
            ),
            num("disruptions", b.disruptions as f64, p.disruptions as f64, 0),
            num(
                "pods evicted",
                b.pods_evicted as f64,
                p.pods_evicted as f64,
                0,
            ),
            num(
                "pending p99 (s)",
                b.pending_p99_seconds,
                p.pending_p99_seconds,
                0,
            ),
        ];
        // The built-in cannot fail: its column and the delta say nothing.
        for (name, n) in [
            ("policy failures", p.policy_failures),
            ("policy timeouts", p.policy_timeouts),
        ] {
            group.push([
                String::new(),
                name.into(),
                "-".into(),
                n.to_string(),
                "-".into(),
            ]);
        }
        group[0][0] = s.scenario.clone();
        rows.extend(group);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({}) against the built-in, {} scenario{}\n",
        j.policy,
        j.decisions.join(", "),
        j.scenarios.len(),
        if j.scenarios.len() == 1 { "" } else { "s" }
    );
    for r in &rows {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {:>w4$}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4]
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for s in &j.scenarios {
        for note in &s.notes {
            let _ = writeln!(out, "note: {note}");
        }
    }
    let _ = writeln!(out, "\n{}", verdict_line(j));
    out
}

fn verdict_line(j: &Judgement) -> String {
    let v = &j.verdict;
    let n = j.scenarios.len();
    if !v.pass {
        return format!(
            "verdict: FAIL: {} failed {} in {} of {n} scenarios ({}); the built-in decided \
             instead",
            j.policy,
            calls(v.policy_failures, v.policy_timeouts),
            v.failed_in.len(),
            v.failed_in.join(", ")
        );
    }
    let sum = |f: &dyn Fn(&Figures) -> f64| -> (f64, f64) {
        (
            j.scenarios.iter().map(|s| f(&s.builtin)).sum(),
            j.scenarios.iter().map(|s| f(&s.policy)).sum(),
        )
    };
    let (cb, cp) = sum(&|f| f.cost_usd);
    let (db, dp) = sum(&|f| f.disruptions as f64);
    let (eb, ep) = sum(&|f| f.pods_evicted as f64);
    let m = money_decimals(cb, cp);
    let change = |b: f64, p: f64, decimals: usize| match delta_parts(b, p, decimals) {
        (text, Some(pct)) => format!("{text}, {pct}"),
        (text, None) => text,
    };
    format!(
        "verdict: PASS: {} never failed or timed out in {n} scenario{}; in all, policy vs \
         built-in: cost {cp:.m$} vs {cb:.m$} USD ({}), disruptions {dp:.0} vs {db:.0} ({}), \
         pods evicted {ep:.0} vs {eb:.0} ({})",
        j.policy,
        if n == 1 { "" } else { "s" },
        change(cb, cp, m),
        change(db, dp, 0),
        change(eb, ep, 0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(cost: f64, disruptions: usize, failures: u64, timeouts: u64) -> Figures {
        Figures {
            cost_usd: cost,
            disruptions,
            pods_evicted: 4,
            pending_p99_seconds: 36.0,
            policy_failures: failures,
            policy_timeouts: timeouts,
        }
    }

    fn judgement(policy: Figures) -> Judgement {
        let scenarios = vec![Judged {
            scenario: "demo".into(),
            builtin: figures(2.0, 4, 0, 0),
            policy,
            notes: Vec::new(),
        }];
        Judgement {
            policy: "p@0.1.0".into(),
            decisions: vec!["consolidation-scoring"],
            verdict: verdict(&scenarios),
            scenarios,
        }
    }

    #[test]
    fn deltas_carry_sign_and_percent_against_a_non_zero_builtin() {
        assert_eq!(delta(2.0, 1.5, 4), "-0.5000 (-25.0%)");
        assert_eq!(delta(4.0, 5.0, 0), "+1 (+25.0%)");
        assert_eq!(delta(0.0, 3.0, 0), "+3");
        assert_eq!(delta(36.0, 36.0, 0), "0");
        assert_eq!(delta(0.12, 0.120_01, 4), "0");
    }

    #[test]
    fn the_table_has_every_measure_and_the_verdict_passes_without_failures() {
        let text = render(&judgement(figures(1.5, 5, 0, 0)));
        for measure in [
            "cost (USD)",
            "disruptions",
            "pods evicted",
            "pending p99 (s)",
            "policy failures",
            "policy timeouts",
        ] {
            assert!(text.contains(measure), "{measure}: {text}");
        }
        assert!(
            text.lines().any(|l| l.starts_with("demo ")
                && l.contains(" cost (USD) ")
                && l.ends_with("-0.5000 (-25.0%)")),
            "{text}"
        );
        assert!(text.contains("verdict: PASS: p@0.1.0"), "{text}");
        assert!(
            text.contains(
                "cost 1.5000 vs 2.0000 USD (-0.5000, -25.0%), disruptions 5 vs 4 (+1, +25.0%), pods evicted 4 vs 4 (0)"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_failure_or_timeout_fails_the_verdict_naming_the_scenario() {
        let j = judgement(figures(2.0, 4, 3, 1));
        assert!(!j.verdict.pass);
        assert_eq!(j.verdict.failed_in, ["demo"]);
        let text = render(&j);
        assert!(
            text.contains("verdict: FAIL: p@0.1.0 failed 3 calls (1 of them timed out) in 1 of 1 scenarios (demo)"),
            "{text}"
        );
        assert!(!judgement(figures(2.0, 4, 0, 2)).verdict.pass);
    }
}
