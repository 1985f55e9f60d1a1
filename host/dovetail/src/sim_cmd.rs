//! `dovetail sim`: a scenario file through the real engines and policies.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use dovetail_core::policy::types::Decision;
use dovetail_core::policy::{Builtin, ConsolidationScorer, InstanceSelector};
use dovetail_policy::PolicyHost;
use dovetail_sim::{Simulation, parse_scenario};

use crate::policy_cmd::RunOpts;

#[derive(Args)]
pub struct SimArgs {
    /// The scenario (YAML; see examples/scenarios/).
    scenario: PathBuf,
    /// `instance-selection=FILE` or `consolidation-scoring=FILE` (Wasm
    /// components); the built-in decides otherwise. Repeatable.
    #[arg(long = "policy")]
    policies: Vec<String>,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an HTML report with charts here (opens without a network).
    #[arg(long)]
    report: Option<PathBuf>,
    #[command(flatten)]
    opts: RunOpts,
}

pub fn run(args: SimArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.scenario)
        .with_context(|| format!("cannot read scenario {}", args.scenario.display()))?;
    let mut scenario =
        parse_scenario(&text).with_context(|| format!("scenario {}", args.scenario.display()))?;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    let host = PolicyHost::new(args.opts.runtime()?);
    let (mut selection, mut scoring) = (false, false);
    for p in &args.policies {
        let Some((decision, file)) = p.split_once('=') else {
            bail!("--policy {p}: write DECISION=FILE, e.g. instance-selection=policy.wasm");
        };
        let d = match decision {
            "instance-selection" => {
                selection = true;
                Decision::InstanceSelection
            }
            "consolidation-scoring" => {
                scoring = true;
                Decision::ConsolidationScoring
            }
            other => bail!(
                "--policy {p}: unknown decision `{other}`; use instance-selection or consolidation-scoring"
            ),
        };
        let bytes = std::fs::read(file).with_context(|| format!("cannot read policy {file}"))?;
        host.load_and_install(d, file, &bytes, args.opts.config()?.as_deref())?;
    }
    let selector: &dyn InstanceSelector = if selection { &host } else { &Builtin };
    let scorer: &dyn ConsolidationScorer = if scoring { &host } else { &Builtin };
    let started = Instant::now();
    let mut report = Simulation::new(scenario, selector, scorer).run(&mut |_| {});
    report.wall_seconds = Some(started.elapsed().as_secs_f64());
    let t = &report.totals;
    println!(
        "{:<28} {:>12}",
        "simulated",
        format!("{} min", report.duration_seconds / 60)
    );
    println!("{:<28} {:>12}", "nodes launched", t.nodes_launched);
    println!("{:<28} {:>12}", "nodes terminated", t.nodes_terminated);
    println!("{:<28} {:>12}", "pods evicted", t.pods_evicted);
    println!("{:<28} {:>12}", "cost (USD)", format!("{:.4}", t.cost_usd));
    println!(
        "{:<28} {:>12}",
        "pending p50/p95/max (s)",
        format!(
            "{:.0}/{:.0}/{:.0}",
            t.pending_p50_seconds, t.pending_p95_seconds, t.pending_max_seconds
        )
    );
    println!(
        "{:<28} {:>12}",
        "wall time (s)",
        format!("{:.2}", report.wall_seconds.unwrap_or(0.0))
    );
    for d in &report.decisions {
        println!("decision: {d}");
    }
    if let Some(path) = &args.report {
        let title = format!("Dovetail simulation: {}", args.scenario.display());
        std::fs::write(path, report.to_html(&title))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
