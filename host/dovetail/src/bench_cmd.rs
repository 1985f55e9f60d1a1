//! `dovetail bench`: end-to-end figures for the decision engines.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use dovetail_core::policy::types::Decision;
use dovetail_core::policy::{Builtin, InstanceSelector};
use dovetail_core::scheduler::{choose_launches, fixtures, solve};
use dovetail_policy::PolicyHost;
use serde::Serialize;

use crate::limits;
use crate::output::{self, Stdout, outln};
use crate::policy_cmd::RunOpts;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Karpenter's scheduling benchmark: 400 synthetic instance types and
    /// "diverse" pods (a fifth each generic, zone spread, hostname spread,
    /// zone self-affinity, hostname self-anti-affinity), scheduled in one
    /// round and then given launch lists by the instance-selection policy.
    Scheduling(SchedulingArgs),
    /// One disruption pass over a synthetic cluster (on-demand nodes of the
    /// AWS catalog, unevenly filled by 50 deployments) in which single-node
    /// consolidation computes a move for every candidate, and the
    /// consolidation-scoring policy ranks and approves them.
    Consolidation(ConsolidationArgs),
    /// The in-memory API server behind `dovetail dev` and the controller's
    /// tests: creates per second, the latency of listing every pod, watch
    /// fan-out and memory with 1,000 nodes and 20,000 pods stored.
    Apiserver(crate::bench_apiserver::ApiserverArgs),
    /// `dovetail controller` as its own process against the in-memory API
    /// server holding 1,000 unmanaged nodes full of 20,000 pods: time to
    /// sync, from a burst of pending pods to their NodeClaims, to serve a
    /// policy pushed as a ConfigMap, and the controller's memory.
    Controller(crate::bench_controller::ControllerBenchArgs),
    /// The interruption queue loop draining an SQS-compatible server's
    /// queue of N mixed interruption messages: messages handled per second.
    Interruption(crate::bench_interruption::InterruptionArgs),
}

#[derive(Args)]
pub struct ConsolidationArgs {
    #[arg(long, default_value_t = 1000, value_parser = limits::CONSOLIDATION_NODES.count(), allow_negative_numbers = true)]
    nodes: usize,
    /// Pods to place on the nodes; a node takes what fits, and the report
    /// says how many were placed.
    #[arg(long, default_value_t = 20000, value_parser = limits::CONSOLIDATION_PODS.count(), allow_negative_numbers = true)]
    pods: usize,
    #[command(flatten)]
    common: Common,
}

/// What every benchmark takes.
#[derive(Args)]
pub struct Common {
    /// The policy deciding (Wasm component); the built-in default when absent.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Runs per size; the median is reported.
    #[arg(long, default_value_t = 3, value_parser = limits::BENCH_ITERATIONS.count(), allow_negative_numbers = true)]
    iterations: usize,
    /// Seed for the generated cluster or pods.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    opts: RunOpts,
}

#[derive(Serialize)]
struct ConsolidationReport {
    nodes: usize,
    pods: usize,
    candidates_evaluated: usize,
    commands: usize,
    /// Median wall time of the pass, including compiling the snapshot.
    seconds: f64,
    policy: String,
    first_command: Option<String>,
    iterations: usize,
}

fn consolidation(args: &ConsolidationArgs) -> Result<()> {
    use dovetail_core::disruption::{Settings, disrupt, fixtures};
    use dovetail_core::policy::ConsolidationScorer;
    let host = load_policy(
        args.common.policy.as_deref(),
        &args.common.opts,
        Decision::ConsolidationScoring,
    )?;
    let (scorer, name): (&dyn ConsolidationScorer, String) = match &host {
        Some((host, name)) => (host, name.clone()),
        None => (&Builtin, dovetail_core::policy::ports::BUILTIN.to_string()),
    };
    let (snapshot, now) = fixtures::consolidation_cluster(args.nodes, args.pods, args.common.seed);
    let pods: usize = snapshot.nodes.iter().map(|n| n.pods.len()).sum();
    placed_all(args.nodes, args.pods, pods)?;
    // Multi-node consolidation off: the pass goes on to single-node, made to
    // evaluate every candidate (Karpenter's times out after 37–49).
    let settings = Settings {
        max_multi_node: 0,
        evaluate_all: true,
        ..Settings::default()
    };
    let mut runs = Vec::new();
    for _ in 0..args.common.iterations {
        let start = Instant::now();
        let pass = disrupt(&snapshot, now, scorer, &settings);
        runs.push((start.elapsed().as_secs_f64(), pass));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (seconds, pass) = runs.swap_remove(runs.len() / 2);
    let report = ConsolidationReport {
        nodes: snapshot.nodes.len(),
        pods,
        candidates_evaluated: pass.candidates_evaluated,
        commands: pass.commands.len(),
        seconds,
        policy: name,
        first_command: pass.commands.first().map(|c| {
            format!(
                "{:?} {} ({}): saves ${:.4}/h, {} replacement(s), {} pods evicted — {}",
                c.method,
                c.nodes
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                c.reason,
                c.savings_per_hour,
                c.replacements.len(),
                c.pods_evicted.len(),
                c.policy_reason
            )
        }),
        iterations: args.common.iterations,
    };
    let out = output::stdout("the benchmark figures");
    if args.common.json {
        outln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        outln!(out, "policy: {}", report.policy)?;
        outln!(
            out,
            "{} nodes, {} pods: {} candidates evaluated in {:.3} s, {} command(s)",
            report.nodes,
            report.pods,
            report.candidates_evaluated,
            report.seconds,
            report.commands
        )?;
        if let Some(c) = &report.first_command {
            outln!(out, "first: {c}")?;
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct SchedulingArgs {
    /// Pods to schedule; without it, runs Karpenter's sizes 1 to 20,000.
    #[arg(long, value_parser = limits::SCHEDULING_PODS.count(), allow_negative_numbers = true)]
    pods: Option<usize>,
    /// Synthetic instance types.
    #[arg(long, default_value_t = 400, value_parser = limits::INSTANCE_TYPES.count(), allow_negative_numbers = true)]
    instance_types: usize,
    #[command(flatten)]
    common: Common,
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Scheduling(args) => scheduling(&args),
        BenchCommand::Consolidation(args) => consolidation(&args),
        BenchCommand::Apiserver(args) => crate::bench_apiserver::run(&args),
        BenchCommand::Controller(args) => crate::bench_controller::run(&args),
        BenchCommand::Interruption(args) => crate::bench_interruption::run(&args),
    }
}

#[derive(Serialize)]
struct SchedulingReport {
    pods: usize,
    nodes: usize,
    unschedulable: usize,
    instance_types: usize,
    /// Median wall time of the whole round: simulation plus launch choice.
    seconds: f64,
    solve_seconds: f64,
    launch_seconds: f64,
    pods_per_sec: f64,
    policy: String,
    /// Set when the policy failed and the built-in chose instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_fallback: Option<String>,
    iterations: usize,
}

/// A host serving the policy in `file` for `decision`, and its
/// `name@version`; `None` without a file (the built-in decides).
fn load_policy(
    file: Option<&std::path::Path>,
    opts: &RunOpts,
    decision: Decision,
) -> Result<Option<(PolicyHost, String)>> {
    let Some(file) = file else { return Ok(None) };
    let runtime = opts.runtime()?;
    let bytes = dovetail_policy::LoadedPolicy::read_file(&runtime, file)?;
    let host = PolicyHost::new(runtime);
    let config = opts.config()?;
    let p = host
        .load_and_install(
            decision,
            &file.display().to_string(),
            &bytes,
            config.as_deref(),
        )
        .map_err(|e| opts.name_config(e))?;
    let name = format!("{}@{}", p.info.name, p.info.version);
    Ok(Some((host, name)))
}

const SIZES: [usize; 9] = [1, 50, 100, 500, 1000, 2000, 5000, 10000, 20000];

/// Refuses a consolidation cluster holding under half the pods asked for
/// (the fixture never overfills a node), and says so when it holds fewer.
fn placed_all(nodes: usize, asked: usize, placed: usize) -> Result<()> {
    if placed == asked {
        return Ok(());
    }
    // Nodes the pods would need at the fill reached.
    let needed = (asked as u64 * nodes as u64).div_ceil(placed.max(1) as u64);
    if placed * 2 < asked {
        bail!(
            "--pods {asked} do not fit on --nodes {nodes}: the nodes take {placed} of them (a \
             node takes what its CPU and pod count allow); pass --nodes {needed} or more, or \
             --pods {placed} or fewer"
        );
    }
    eprintln!(
        "note: the nodes took {placed} of the {asked} pods asked for (a node takes what fits); \
         the pass runs with {placed}; pass --nodes {needed} or more for all of them"
    );
    Ok(())
}

fn scheduling(args: &SchedulingArgs) -> Result<()> {
    let host = load_policy(
        args.common.policy.as_deref(),
        &args.common.opts,
        Decision::InstanceSelection,
    )?;
    let selector: &dyn InstanceSelector = match &host {
        Some((host, _)) => host,
        None => &Builtin,
    };
    let snapshot = fixtures::benchmark_snapshot(args.instance_types);
    let sizes: Vec<usize> = match args.pods {
        Some(n) => vec![n],
        None => SIZES.to_vec(),
    };
    let pods_flag = if args.pods.is_some() {
        "--pods"
    } else {
        "the sweep's pods"
    };
    limits::product(
        &[
            (pods_flag, sizes.iter().sum::<usize>() as u64),
            ("--iterations", args.common.iterations as u64),
        ],
        limits::SCHEDULING_POD_ROUNDS,
        "pods scheduled",
        "every run's plan is kept until the median is taken; lower --iterations",
    )?;
    let out = output::stdout("the benchmark figures");
    let mut reports = Vec::new();
    for &n in &sizes {
        let pods = fixtures::diverse_pods(n, args.common.seed);
        let mut runs = Vec::new();
        for i in 0..args.common.iterations {
            let start = Instant::now();
            let plan = solve(&snapshot, &pods);
            let solved = start.elapsed().as_secs_f64();
            let launch = choose_launches(
                &plan,
                &snapshot.catalog,
                selector,
                0,
                args.common.seed + i as u64,
            );
            let total = start.elapsed().as_secs_f64();
            if let Some(e) = launch.launches.iter().find_map(|l| l.as_ref().err()) {
                bail!("a NodeClaim got no launch list: {e}");
            }
            runs.push((total, solved, plan, launch));
        }
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (seconds, solve_seconds, plan, launch) = runs.swap_remove(runs.len() / 2);
        let report = SchedulingReport {
            pods: n,
            nodes: plan.node_claims.len(),
            unschedulable: plan.unschedulable.len(),
            instance_types: args.instance_types,
            seconds,
            solve_seconds,
            launch_seconds: seconds - solve_seconds,
            pods_per_sec: n as f64 / seconds,
            policy: launch.by,
            policy_fallback: launch.fallback,
            iterations: args.common.iterations,
        };
        if !args.common.json {
            print_row(&out, &report, reports.is_empty())?;
        }
        reports.push(report);
    }
    if args.common.json {
        let json = if reports.len() == 1 {
            serde_json::to_string_pretty(&reports[0])?
        } else {
            serde_json::to_string_pretty(&reports)?
        };
        outln!(out, "{json}")?;
    } else {
        let pods: usize = reports.iter().map(|r| r.pods).sum();
        let secs: f64 = reports.iter().map(|r| r.seconds).sum();
        if reports.len() > 1 {
            outln!(
                out,
                "total: {pods} pods in {secs:.3} s = {:.0} pods/s",
                pods as f64 / secs
            )?;
        }
        if let Some(f) = reports.iter().find_map(|r| r.policy_fallback.as_ref()) {
            outln!(
                out,
                "warning: the policy failed and the built-in default chose instead: {f}"
            )?;
        }
    }
    Ok(())
}

fn print_row(out: &Stdout, r: &SchedulingReport, header: bool) -> Result<(), output::OutputError> {
    if header {
        outln!(out, "policy: {}", r.policy)?;
        outln!(
            out,
            "{:>7} {:>6} {:>10} {:>10} {:>10} {:>10}",
            "pods",
            "nodes",
            "seconds",
            "solve s",
            "launch s",
            "pods/s"
        )?;
    }
    outln!(
        out,
        "{:>7} {:>6} {:>10.4} {:>10.4} {:>10.4} {:>10.0}{}",
        r.pods,
        r.nodes,
        r.seconds,
        r.solve_seconds,
        r.launch_seconds,
        r.pods_per_sec,
        if r.unschedulable > 0 {
            format!("  ({} unschedulable)", r.unschedulable)
        } else {
            String::new()
        }
    )
}
