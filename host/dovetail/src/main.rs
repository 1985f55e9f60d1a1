//! The `dovetail` command.

mod aws_cloud;
mod aws_node_classes;
mod bench_apiserver;
mod bench_cmd;
mod bench_controller;
mod bench_interruption;
mod controller_cmd;
mod crds_cmd;
mod demo_cmd;
mod dev_cmd;
mod heap;
mod kube_client;
mod limits;
mod logs;
mod metrics;
mod output;
mod policy_cases;
mod policy_cmd;
mod policy_fetch;
mod policy_judge;
mod policy_new;
mod policy_push;
mod policy_source;
mod rate_limit;
mod serve;
mod settings;
mod sim_cmd;
mod snapshot_cmd;

use anyhow::Result;
use clap::{Parser, Subcommand};

// The API server and the simulator allocate many small JSON and model values; mimalloc serves
// them markedly faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "dovetail",
    version,
    about = "Just-in-time Kubernetes node autoscaler for AWS, with decisions you can swap at run time",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate, run and benchmark decision policies (Wasm components).
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Watch Dovetail scale a Deployment up and consolidate after it scales
    /// down, on a simulated cluster (no cloud, no cluster needed).
    Demo,
    /// Run a scenario file on a simulated cluster with the real engines and
    /// policies, and report cost and disruption.
    Sim(sim_cmd::SimArgs),
    /// Benchmark the decision engines, the in-memory API server and the controller.
    #[command(subcommand)]
    Bench(bench_cmd::BenchCommand),
    /// Run a local cluster in a box (in-memory API server, virtual nodes
    /// from a fake cloud, scheduler and workload controllers) with
    /// Karpenter's CRDs installed, for kubectl. No cloud or cluster needed.
    Dev(dev_cmd::DevArgs),
    /// Read a live cluster (read-only, through your kubeconfig) and write its scheduling state
    /// as a scenario for `dovetail sim`: NodePools, EC2NodeClasses, NodeClaims, Nodes, Pods,
    /// DaemonSets, PodDisruptionBudgets and Namespaces, without secrets or environment values.
    Snapshot(snapshot_cmd::SnapshotArgs),
    /// Run the autoscaler: watch the cluster, provision NodeClaims for pending pods, register,
    /// disrupt and terminate nodes, with policies hot-swapped from ConfigMaps. Settings come
    /// from flags or Karpenter's environment variables.
    Controller(Box<settings::ControllerArgs>),
    /// Print the NodePool, NodeClaim and EC2NodeClass CRDs (Karpenter's v1
    /// API) as YAML, for `kubectl apply -f -`.
    Crds,
}

fn main() {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|c| c == "controller")
    {
        controller_cmd::lean_memory();
    }
    let cli = Cli::parse();
    // The controller logs JSON at LOG_LEVEL through its own subscriber.
    if let Command::Controller(args) = cli.command {
        if let Err(e) = controller_cmd::run(*args) {
            fail(&e);
        }
        return;
    }
    // The simulator counts policy failures and reports them in its summary;
    // a line per failed call would bury it.
    let default_filter = match cli.command {
        Command::Sim(_) => "warn,dovetail_policy=off",
        Command::Policy(policy_cmd::PolicyCommand::Judge(_)) => "warn,dovetail_policy=off",
        // A client dropped mid-watch is routine for a local server; the
        // attached controller's decisions and policy swaps are what the
        // user came to see.
        Command::Dev(_) => {
            "warn,hyper=off,dovetail::decision=info,dovetail::policy_source=info,dovetail_policy::shadow=info"
        }
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DOVETAIL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(output::colour(&std::io::stderr()))
        .init();
    if let Err(e) = run(cli).and_then(|()| Ok(output::flush_stdout()?)) {
        fail(&e);
    }
}

/// Ends the process for `e`: quietly (exit 0) when stdout's reader went away, as
/// behind `| head`; otherwise with one line on stderr (scripts and people
/// both read it) and exit 1 (2 for a malformed cases file).
fn fail(e: &anyhow::Error) -> ! {
    if output::is_closed_stdout(e) {
        std::process::exit(0);
    }
    // Not `eprintln!`: it panics when stderr cannot be written either.
    let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("error: {e:#}\n"));
    std::process::exit(policy_cases::exit_code(e));
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Policy(cmd) => policy_cmd::run(cmd),
        Command::Bench(cmd) => bench_cmd::run(cmd),
        Command::Demo => demo_cmd::run(),
        Command::Sim(args) => sim_cmd::run(args),
        Command::Crds => crds_cmd::run(),
        Command::Dev(args) => dev_cmd::run(args),
        Command::Snapshot(args) => snapshot_cmd::run(args),
        Command::Controller(args) => controller_cmd::run(*args),
    }
}
