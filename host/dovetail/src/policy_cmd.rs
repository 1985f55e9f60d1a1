//! `dovetail policy …`: the operator's and author's tools for policies.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Args, Subcommand};
use dovetail_core::policy::document::{RequestDocument, explain_consolidation, explain_selection};
use dovetail_core::policy::fixtures::{synthetic_consolidation, synthetic_selection};
use dovetail_core::policy::parse::parse_request;
use dovetail_core::policy::select::default_select;
use dovetail_core::policy::types::Decision;
use dovetail_core::stats::percentile;
use dovetail_policy::{
    Budget, LoadedPolicy, PolicyHost, PolicyWatcher, Runtime, RuntimeConfig, policy_file_name,
};
use serde::Serialize;

use crate::limits;
use crate::output::{self, outln};

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Start a policy project: sources, build, README, example config,
    /// golden cases and a CI snippet, ready to build and test.
    New(crate::policy_new::NewArgs),
    /// Validate a policy, then put it in the cluster as the ConfigMap the
    /// controller watches (labelled `dovetail.dev/policy`), through your
    /// kubeconfig.
    Push(crate::policy_push::PushArgs),
    /// Check a policy fully (as the controller does before using it) and
    /// print its name, version, world and digest.
    Validate {
        file: PathBuf,
        #[command(flatten)]
        opts: RunOpts,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run one decision from a JSON request and print the result as JSON,
    /// or run golden cases (`--cases`) and print PASS/FAIL per case.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["input", "cases"])))]
    Test {
        file: PathBuf,
        /// Request file (see docs/policy-requests.md and examples/requests/).
        #[arg(long)]
        input: Option<PathBuf>,
        /// Golden cases file (see docs/policy-cases.md); exits 1 when any
        /// case fails, 2 when the file is malformed.
        #[arg(long)]
        cases: Option<PathBuf>,
        #[command(flatten)]
        opts: RunOpts,
        /// With --cases: print the results as JSON.
        #[arg(long, requires = "cases")]
        json: bool,
    },
    /// Measure decision latency through the real runtime.
    Bench {
        file: PathBuf,
        /// Offerings per selection request (or candidates per scoring round).
        #[arg(long, default_value_t = 400, value_parser = limits::OFFERINGS.count(), allow_negative_numbers = true)]
        offerings: usize,
        /// Launch requests per selection round.
        #[arg(long, default_value_t = 1, value_parser = limits::LAUNCHES.count(), allow_negative_numbers = true)]
        launches: usize,
        /// Timed decisions.
        #[arg(long, default_value_t = 2000, value_parser = limits::POLICY_ITERATIONS.count(), allow_negative_numbers = true)]
        iterations: usize,
        /// Which decision to measure, when the policy implements both.
        #[arg(long)]
        decision: Option<DecisionArg>,
        #[command(flatten)]
        opts: RunOpts,
        #[arg(long)]
        json: bool,
    },
    /// Measure hot-reload latency: from writing the file into a watched
    /// directory to the new version serving decisions.
    BenchReload {
        file: PathBuf,
        /// Versions written (each loaded new, then again from the
        /// compiled-code cache).
        #[arg(long, default_value_t = 20, value_parser = limits::RELOAD_ROUNDS.count(), allow_negative_numbers = true)]
        rounds: usize,
        #[arg(long)]
        json: bool,
    },
    /// Judge a policy against the built-in decisions in the simulator, over
    /// the reference scenarios or your own; exits 1 if it fails or times out.
    Judge(crate::policy_judge::JudgeArgs),
    /// Serve a policy directory with hot reload and print every change (what
    /// the controller does with its mounted ConfigMap).
    Watch {
        dir: PathBuf,
        /// Stop after this many seconds (default: run until interrupted).
        #[arg(long, value_parser = limits::WATCH_SECONDS.number(), allow_negative_numbers = true)]
        seconds: Option<u64>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum DecisionArg {
    InstanceSelection,
    ConsolidationScoring,
}

impl From<DecisionArg> for Decision {
    fn from(d: DecisionArg) -> Self {
        match d {
            DecisionArg::InstanceSelection => Decision::InstanceSelection,
            DecisionArg::ConsolidationScoring => Decision::ConsolidationScoring,
        }
    }
}

#[derive(Args)]
pub struct RunOpts {
    /// The policy's JSON config file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Wall-clock deadline per decision, in milliseconds.
    #[arg(long, default_value_t = 100, value_parser = limits::TIMEOUT_MS.number(), allow_negative_numbers = true)]
    timeout_ms: u64,
    /// Run with this fuel budget instead (deterministic).
    #[arg(long, value_parser = limits::FUEL.number(), allow_negative_numbers = true)]
    fuel: Option<u64>,
    /// Memory cap per policy instance, in MiB.
    #[arg(long, default_value_t = 64, value_parser = limits::MEMORY_MIB.count(), allow_negative_numbers = true)]
    memory_mib: usize,
}

/// A policy's config file: text within the config size limit, holding one
/// JSON document. Errors name the file.
pub fn read_config(path: &Path) -> Result<String> {
    let text = dovetail_input::read_text(path, "config", dovetail_input::caps::CONFIG)?;
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&text) {
        bail!(
            "config {}: not valid JSON: {e}; fix: write the policy's config as one JSON object",
            path.display()
        );
    }
    Ok(text)
}

impl RunOpts {
    pub fn runtime(&self) -> Result<Runtime> {
        let config = RuntimeConfig {
            budget: match self.fuel {
                Some(f) => Budget::Fuel(f),
                None => Budget::Deadline(Duration::from_millis(self.timeout_ms)),
            },
            memory_limit: self.memory_mib << 20,
            ..RuntimeConfig::default()
        };
        Ok(Runtime::new(config)?)
    }

    pub fn config(&self) -> Result<Option<String>> {
        self.config.as_deref().map(read_config).transpose()
    }

    pub fn load(&self, file: &Path) -> Result<(Runtime, LoadedPolicy)> {
        let rt = self.runtime()?;
        let config = self.config()?;
        let policy = LoadedPolicy::load_file(&rt, file, config.as_deref())
            .map_err(|e| self.name_config(e))?;
        Ok((rt, policy))
    }

    /// A policy's refusal of its config, naming the config file.
    pub fn name_config(&self, e: dovetail_policy::PolicyFailure) -> anyhow::Error {
        match &self.config {
            Some(path) if e.class == dovetail_policy::FailureClass::Config => {
                anyhow!(e).context(format!("config {}", path.display()))
            }
            _ => e.into(),
        }
    }
}

pub fn run(cmd: PolicyCommand) -> Result<()> {
    match cmd {
        PolicyCommand::New(args) => crate::policy_new::run(&args),
        PolicyCommand::Push(args) => crate::policy_push::run(&args),
        PolicyCommand::Validate { file, opts, json } => validate(&file, &opts, json),
        PolicyCommand::Test {
            file,
            input,
            cases,
            opts,
            json,
        } => match (input, cases) {
            (Some(input), _) => test(&file, &input, &opts),
            (None, Some(cases)) => crate::policy_cases::run(&file, &cases, &opts, json),
            (None, None) => unreachable!("clap requires --input or --cases"),
        },
        PolicyCommand::Bench {
            file,
            offerings,
            launches,
            iterations,
            decision,
            opts,
            json,
        } => bench(
            &file, offerings, launches, iterations, decision, &opts, json,
        ),
        PolicyCommand::BenchReload { file, rounds, json } => bench_reload(&file, rounds, json),
        PolicyCommand::Watch { dir, seconds } => watch(&dir, seconds),
        PolicyCommand::Judge(args) => crate::policy_judge::run(&args),
    }
}

#[derive(Serialize)]
struct ValidateReport<'a> {
    name: &'a str,
    version: &'a str,
    description: &'a str,
    world: &'a str,
    decisions: Vec<&'a str>,
    digest: &'a str,
    contract: &'a str,
    compile_ms: f64,
    validate_ms: f64,
}

fn validate(file: &Path, opts: &RunOpts, json: bool) -> Result<()> {
    let out = output::stdout("the validation report");
    let (_rt, p) = opts.load(file)?;
    let report = ValidateReport {
        name: &p.info.name,
        version: &p.info.version,
        description: &p.info.description,
        world: p.world(),
        decisions: p.info.decisions.iter().map(|d| d.as_str()).collect(),
        digest: &p.digest,
        contract: dovetail_policy::CONTRACT,
        compile_ms: p.compile_time.as_secs_f64() * 1e3,
        validate_ms: p.validate_time.as_secs_f64() * 1e3,
    };
    if json {
        outln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        outln!(out, "valid: {} {}", report.name, report.version)?;
        if !report.description.is_empty() {
            outln!(out, "  description: {}", report.description)?;
        }
        outln!(
            out,
            "  world:       {} ({})",
            report.world,
            report.decisions.join(", ")
        )?;
        outln!(out, "  digest:      {}", report.digest)?;
        outln!(out, "  contract:    {}", report.contract)?;
        outln!(
            out,
            "  compiled in {:.1} ms, validated in {:.1} ms",
            report.compile_ms,
            report.validate_ms
        )?;
    }
    Ok(())
}

fn test(file: &Path, input: &Path, opts: &RunOpts) -> Result<()> {
    let out = output::stdout("the decision's result");
    let text = dovetail_input::read_text(input, "request", dovetail_input::caps::REQUEST)?;
    let doc = parse_request(&text)
        .map_err(|e| anyhow!("{}: not a valid request: {e}", input.display()))?;
    let (_rt, p) = opts.load(file)?;
    let output = match doc {
        RequestDocument::InstanceSelection(doc) => {
            let req = doc
                .to_request()
                .map_err(|e| anyhow!("{}: {e}", input.display()))?;
            let selection = p.select(&req)?;
            serde_json::json!({
                "policy": p.label(),
                "decision": "instance-selection",
                "launches": explain_selection(&req, &selection),
            })
        }
        RequestDocument::ConsolidationScoring(doc) => {
            let (ctx, moves) = doc
                .to_request()
                .map_err(|e| anyhow!("{}: {e}", input.display()))?;
            let ranking = p.rank(&ctx)?;
            let verdicts = p.approve(&ctx, &moves)?;
            serde_json::json!({
                "policy": p.label(),
                "decision": "consolidation-scoring",
                "result": explain_consolidation(&ctx, &ranking, &moves, &verdicts),
            })
        }
    };
    outln!(out, "{}", serde_json::to_string_pretty(&output)?)?;
    Ok(())
}

#[derive(Serialize)]
struct BenchReport {
    policy: String,
    decision: &'static str,
    offerings: usize,
    launches: usize,
    iterations: usize,
    calls_per_sec: f64,
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    max_us: f64,
    native_p50_us: Option<f64>,
}

fn time_calls(iterations: usize, mut f: impl FnMut() -> Result<()>) -> Result<(Vec<f64>, f64)> {
    for _ in 0..iterations.min(50) {
        f()?;
    }
    let mut samples = Vec::with_capacity(iterations);
    let all = Instant::now();
    for _ in 0..iterations {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let total = all.elapsed().as_secs_f64();
    samples.sort_by(f64::total_cmp);
    Ok((samples, total))
}

fn bench(
    file: &Path,
    offerings: usize,
    launches: usize,
    iterations: usize,
    decision: Option<DecisionArg>,
    opts: &RunOpts,
    json: bool,
) -> Result<()> {
    let out = output::stdout("the benchmark figures");
    let (_rt, p) = opts.load(file)?;
    let decision = match decision.map(Decision::from) {
        Some(d) if !p.implements(d) => bail!("{} does not implement {d}", p.label()),
        Some(d) => d,
        None => p.info.decisions[0],
    };
    let rows = limits::product(
        &[
            ("--offerings", offerings as u64),
            ("--launches", launches as u64),
        ],
        limits::REQUEST_ROWS,
        "offering rows in one request",
        "lower --offerings or --launches",
    )?;
    let work = limits::product(
        &[
            ("--iterations", iterations as u64),
            ("--offerings", offerings as u64),
            ("--launches", launches as u64),
        ],
        limits::BENCH_ROWS,
        "offering rows decided",
        "lower --iterations",
    )?;
    if work > limits::LARGE_BENCH_ROWS {
        eprintln!(
            "note: {iterations} decisions of {rows} offering rows each ({} rows in all); at a \
             few hundred nanoseconds a row this takes minutes",
            limits::count(work)
        );
    }
    let (samples, total, native) = match decision {
        Decision::InstanceSelection => {
            let req = synthetic_selection(offerings, launches, 42);
            let (samples, total) =
                time_calls(iterations, || p.select(&req).map(drop).map_err(Into::into))?;
            let (native, _) = time_calls(iterations, || {
                std::hint::black_box(default_select(&req));
                Ok(())
            })?;
            (samples, total, Some(percentile(&native, 0.5)))
        }
        Decision::ConsolidationScoring => {
            let (ctx, moves) = synthetic_consolidation(offerings, 42);
            let (samples, total) = time_calls(iterations, || {
                p.rank(&ctx)?;
                p.approve(&ctx, &moves)?;
                Ok(())
            })?;
            (samples, total, None)
        }
    };
    let report = BenchReport {
        policy: p.label(),
        decision: decision.as_str(),
        offerings,
        launches,
        iterations,
        calls_per_sec: iterations as f64 / total,
        p50_us: percentile(&samples, 0.5),
        p90_us: percentile(&samples, 0.9),
        p99_us: percentile(&samples, 0.99),
        max_us: percentile(&samples, 1.0),
        native_p50_us: native,
    };
    if json {
        outln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        let unit = if decision == Decision::InstanceSelection {
            format!("{offerings} offerings, {launches} launch(es)")
        } else {
            format!("{offerings} candidates, rank + approve")
        };
        outln!(out, "{} — {} ({unit})", report.policy, report.decision)?;
        outln!(
            out,
            "  {:.0} decisions/s   p50 {:.1} µs   p90 {:.1} µs   p99 {:.1} µs   max {:.1} µs",
            report.calls_per_sec,
            report.p50_us,
            report.p90_us,
            report.p99_us,
            report.max_us
        )?;
        if let Some(n) = report.native_p50_us {
            outln!(out, "  built-in native default: p50 {n:.1} µs")?;
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct ReloadReport {
    policy: String,
    rounds: usize,
    cold_p50_ms: f64,
    cold_max_ms: f64,
    cached_p50_ms: f64,
    cached_max_ms: f64,
}

/// Writes `bytes` into the watched directory the way a kubelet updates a
/// ConfigMap (write aside, then rename) and waits until it serves, or until
/// the watcher rejects it.
fn reload_once(host: &PolicyHost, dir: &Path, bytes: &[u8], digest: &str) -> Result<f64> {
    let target = dir.join(policy_file_name(Decision::InstanceSelection));
    let tmp = dir.join(".incoming.tmp");
    let rejected = host.status(Decision::InstanceSelection).rejected_reloads;
    let start = Instant::now();
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &target)?;
    loop {
        let status = host.status(Decision::InstanceSelection);
        if status.active_digest.as_deref() == Some(digest) {
            return Ok(start.elapsed().as_secs_f64() * 1e3);
        }
        if status.rejected_reloads > rejected {
            bail!(
                "the watcher rejected the policy: {}",
                status
                    .last_reload_error
                    .as_deref()
                    .unwrap_or("no reason given")
            );
        }
        if start.elapsed() > Duration::from_secs(10) {
            bail!("the new version did not become active within 10 s");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// A copy of the component with a custom section appended: same code, new
/// digest, so the runtime must compile it afresh.
fn with_nonce(bytes: &[u8], nonce: usize) -> Vec<u8> {
    let name = b"dovetail-bench-nonce";
    let payload = format!("{nonce:08}");
    let body_len = 1 + name.len() + payload.len();
    let mut out = bytes.to_vec();
    out.push(0); // custom section id
    out.push(body_len as u8); // fits in one LEB128 byte
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(payload.as_bytes());
    out
}

/// Round `i`'s version and its digest, made when needed: only one copy of
/// the component is in memory at a time.
fn variant(bytes: &[u8], i: usize) -> (Vec<u8>, String) {
    use sha2::Digest as _;
    let b = with_nonce(bytes, i);
    let full: [u8; 32] = sha2::Sha256::digest(&b).into();
    (b, dovetail_policy::short_digest(&full))
}

fn bench_reload(file: &Path, rounds: usize, json: bool) -> Result<()> {
    let out = output::stdout("the reload figures");
    let rt = Runtime::new(RuntimeConfig::default())?;
    let bytes = LoadedPolicy::read_file(&rt, file)?;
    let host = Arc::new(PolicyHost::new(rt));
    // Removed when dropped: on success, on an error and on a panic; an
    // interrupt removes it through `remove_on_interrupt`.
    let dir = tempfile::Builder::new()
        .prefix("dovetail-reload-")
        .tempdir()
        .context("cannot create a temporary directory to watch")?;
    let _interrupt = remove_on_interrupt(dir.path())?;
    let watcher = PolicyWatcher::spawn(dir.path(), host.clone())?;
    if rounds > limits::LARGE_RELOAD_ROUNDS {
        eprintln!(
            "note: {rounds} rounds load {} versions, each new one compiled (about half a second)",
            2 * rounds
        );
    }
    let mut cold = Vec::with_capacity(rounds);
    let mut cached = Vec::with_capacity(rounds);
    let mut label = String::new();
    // Cold: every version is new to the runtime and compiled on reload.
    for i in 0..rounds {
        let (b, d) = variant(&bytes, i);
        cold.push(reload_once(&host, dir.path(), &b, &d)?);
    }
    // Cached: the same versions again, their compiled code already at hand.
    for i in 0..rounds {
        let (b, d) = variant(&bytes, i);
        cached.push(reload_once(&host, dir.path(), &b, &d)?);
    }
    if let Some(p) = host.active(Decision::InstanceSelection) {
        label = p.label();
    }
    drop(watcher);
    dir.close()
        .context("cannot remove the temporary watched directory")?;
    cold.sort_by(f64::total_cmp);
    cached.sort_by(f64::total_cmp);
    let report = ReloadReport {
        policy: label,
        rounds,
        cold_p50_ms: percentile(&cold, 0.5),
        cold_max_ms: percentile(&cold, 1.0),
        cached_p50_ms: percentile(&cached, 0.5),
        cached_max_ms: percentile(&cached, 1.0),
    };
    if json {
        outln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        outln!(
            out,
            "{} — reload from file change to serving ({} rounds)",
            report.policy,
            report.rounds
        )?;
        outln!(
            out,
            "  new component (compile + validate): p50 {:.1} ms, max {:.1} ms",
            report.cold_p50_ms,
            report.cold_max_ms
        )?;
        outln!(
            out,
            "  seen before (compiled-code cache):  p50 {:.1} ms, max {:.1} ms",
            report.cached_p50_ms,
            report.cached_max_ms
        )?;
    }
    Ok(())
}

/// On SIGINT or SIGTERM, removes `dir` and exits 130 (a signal ends the
/// process without running destructors, so a guard alone would leave it).
/// The handlers are installed before this returns; they stay for the rest of
/// the process, which ends soon after.
#[cfg(unix)]
fn remove_on_interrupt(dir: &Path) -> Result<std::thread::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("cannot start the signal handler")?;
    let (mut int, mut term) = rt
        .block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            ))
        })
        .context("cannot install the signal handler")?;
    let dir = dir.to_path_buf();
    Ok(std::thread::spawn(move || {
        rt.block_on(async {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        });
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!("interrupted");
        std::process::exit(130);
    }))
}

#[cfg(not(unix))]
fn remove_on_interrupt(_dir: &Path) -> Result<()> {
    Ok(())
}

fn watch(dir: &Path, seconds: Option<u64>) -> Result<()> {
    let out = output::stdout("the policies' status");
    let rt = Runtime::new(RuntimeConfig::default())?;
    let host = Arc::new(PolicyHost::new(rt));
    let _watcher = PolicyWatcher::spawn(dir, host.clone())?;
    let start = Instant::now();
    let mut last = String::new();
    loop {
        let mut line = String::new();
        for d in [Decision::InstanceSelection, Decision::ConsolidationScoring] {
            let s = host.status(d);
            line.push_str(&format!(
                "{d}: {}{}   ",
                s.active.as_deref().unwrap_or("built-in default"),
                s.last_reload_error
                    .as_deref()
                    .map(|e| format!(" (last change rejected: {e})"))
                    .unwrap_or_default()
            ));
        }
        if line != last {
            outln!(out, "{}", line.trim_end())?;
            last = line;
        }
        if seconds.is_some_and(|s| start.elapsed() >= Duration::from_secs(s)) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
