//! `dovetail sim`: a scenario file through the real engines and policies,
//! alone or side by side with other policy sets and the static node-group
//! baseline.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, ValueEnum};
use dovetail_core::clock::SystemClock;
use dovetail_core::policy::types::Decision;
use dovetail_core::policy::{Builtin, ConsolidationScorer, InstanceSelector};
use dovetail_policy::{BreakerConfig, FailureClass, PolicyHost, Runtime, RuntimeConfig};
use dovetail_sim::text::{self, Run};
use dovetail_sim::{Autoscaler, Report, Scenario, Simulation, parse_scenario_in};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use serde::Serialize;

use crate::output::{self, OutputFile, outln};

/// Fuel per policy call: far more than any shipped policy needs for a
/// thousands-of-NodeClaims round, and the same on every machine.
pub(crate) const DEFAULT_FUEL: u64 = 10_000_000_000;

/// Wall-clock safety net per policy call in fuel mode; fuel is what limits a
/// call, this only stops a runaway one on a very slow machine.
const FUEL_MODE_DEADLINE: Duration = Duration::from_secs(60);

/// How long a run goes before its progress bar appears.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);

const SPEC_FORM: &str = "`scenario`, `builtin`, `static-node-groups`, `static-node-groups:spot` or \
     `LABEL:DECISION=FILE[,DECISION=FILE]` (DECISION: instance-selection, consolidation-scoring, \
     instance-selection-config or consolidation-scoring-config), e.g. \
     `savings:consolidation-scoring=dovetail_policy_savings_threshold.wasm`";

const POLICY_FORM: &str = "DECISION=FILE with DECISION instance-selection, consolidation-scoring, \
     instance-selection-config or consolidation-scoring-config, e.g. \
     `--policy consolidation-scoring=policy.wasm`";

#[derive(Args)]
#[command(after_long_help = "\
Wasm policies always run with a fuel budget (--fuel) in the simulator, so a run
is deterministic: the same scenario, seed and policies give the same report on
any machine (apart from `wall_seconds`). A failing policy call falls back to the
built-in decision and is counted under `policy failures`; it is never skipped
for a cool-down.

Examples:
  dovetail sim examples/scenarios/demo.yaml
  dovetail sim demo.yaml --baseline static-node-groups
  dovetail sim demo.yaml --compare builtin --compare static-node-groups \\
      --compare static-node-groups:spot
  dovetail sim demo.yaml --compare builtin \\
      --compare savings:consolidation-scoring=dovetail_policy_savings_threshold.wasm \\
      --json runs.json --report out.html     # one page: both runs overlaid")]
pub struct SimArgs {
    /// The scenario (YAML; see examples/scenarios/). Policy paths in its
    /// `policies:` are relative to its directory.
    scenario: PathBuf,
    /// A Wasm policy for one decision, overriding the scenario's `policies:`:
    /// `instance-selection=FILE` or `consolidation-scoring=FILE`, or the
    /// policy's JSON config as `instance-selection-config=FILE` or
    /// `consolidation-scoring-config=FILE`. Repeatable; decisions without a
    /// policy use the built-in.
    #[arg(long = "policy", value_name = "DECISION=FILE")]
    policies: Vec<String>,
    /// JSON config for the Wasm policies of the plain run (the scenario's
    /// policies and --policy) that have no `DECISION-config` of their own.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run the scenario once per SPEC and print one side-by-side table
    /// (repeatable). SPEC: `scenario` (the scenario's policies and --policy),
    /// `builtin`, `static-node-groups` (on-demand unless the scenario's
    /// groups say otherwise), `static-node-groups:spot` (the same groups
    /// bought as spot), or `LABEL:DECISION=FILE[,DECISION=FILE]`
    /// (DECISION as for --policy; decisions it does not name use the
    /// built-in). Columns are the SPECs in order, preceded by `scenario`
    /// unless one of them is the plain run (`builtin` is, when the scenario
    /// and --policy name no Wasm policy). Savings are against the first
    /// column.
    #[arg(long = "compare", value_name = "SPEC")]
    compare: Vec<String>,
    /// Also run Cluster-Autoscaler-like static node groups (the scenario's
    /// `baseline.nodeGroups`, or on-demand m5 groups of four sizes) and
    /// compare; the same as `--compare static-node-groups`
    /// (`static-node-groups-spot`: `--compare static-node-groups:spot`).
    #[arg(long, value_enum, value_name = "BASELINE")]
    baseline: Option<BaselineArg>,
    /// Override the scenario's seed (every run).
    #[arg(long)]
    seed: Option<u64>,
    /// Fuel per Wasm policy call (the simulator always runs policies with
    /// fuel, for determinism).
    #[arg(long, default_value_t = DEFAULT_FUEL, value_parser = crate::limits::FUEL.number(), allow_negative_numbers = true)]
    fuel: u64,
    /// Memory cap per policy instance for a small request, in MiB.
    #[arg(long, default_value_t = 64, value_parser = crate::limits::MEMORY_MIB.count(), allow_negative_numbers = true)]
    memory_mib: usize,
    /// Write the JSON report here: the report itself for one run, or
    /// `{"runs": [{"label": …, "report": …}, …]}` when comparing.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write an HTML report here: one self-contained page (no scripts, no
    /// network) with charts over simulated time, the cost by NodePool and
    /// capacity type, launches, disruption budgets and decisions. When
    /// comparing, one page with the comparison table and every run's curves
    /// overlaid.
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    /// Refuse a scenario with warnings (fields Karpenter's NodePool schema
    /// does not have, which are otherwise ignored with a warning).
    #[arg(long)]
    strict: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BaselineArg {
    /// Cluster Autoscaler with fixed instance-type node groups.
    StaticNodeGroups,
    /// The same node groups, bought as spot.
    StaticNodeGroupsSpot,
}

/// What every Wasm policy of a simulated run may use, per call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PolicyLimits {
    pub fuel: u64,
    pub memory_mib: usize,
}

/// The two decisions, their `--policy` keys and scenario fields.
const DECISIONS: [(Decision, &str, &str); 2] = [
    (
        Decision::InstanceSelection,
        "instance-selection",
        "policies.instanceSelection",
    ),
    (
        Decision::ConsolidationScoring,
        "consolidation-scoring",
        "policies.consolidationScoring",
    ),
];

/// A Wasm policy file and where it was named, for error messages.
#[derive(Debug, Clone, PartialEq)]
struct Source {
    path: PathBuf,
    named_by: String,
}

/// The Wasm policies (and their configs) of one run, by decision.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PolicySet {
    wasm: [Option<Source>; 2],
    config: [Option<PathBuf>; 2],
}

impl PolicySet {
    /// One policy file deciding `decisions` (the others built-in), with its
    /// config; `named_by` says where the file was named, for errors.
    pub(crate) fn one(
        file: &Path,
        decisions: &[Decision],
        config: Option<&Path>,
        named_by: &str,
    ) -> Self {
        let mut set = Self::default();
        for (i, (decision, _, _)) in DECISIONS.iter().enumerate() {
            if decisions.contains(decision) {
                set.wasm[i] = Some(Source {
                    path: file.to_path_buf(),
                    named_by: named_by.to_string(),
                });
                set.config[i] = config.map(Path::to_path_buf);
            }
        }
        set
    }

    fn is_builtin(&self) -> bool {
        self.wasm.iter().all(Option::is_none)
    }

    /// Applies `KEY=FILE`; `what` names the argument in errors.
    fn set(&mut self, item: &str, what: &str, form: &str) -> Result<()> {
        let Some((key, file)) = item.split_once('=').filter(|(_, f)| !f.is_empty()) else {
            bail!("{what}: `{item}` is not of the form {form}");
        };
        let (i, is_config) = match DECISIONS.iter().position(|(_, k, _)| *k == key) {
            Some(i) => (i, false),
            None => match key
                .strip_suffix("-config")
                .and_then(|k| DECISIONS.iter().position(|(_, d, _)| *d == k))
            {
                Some(i) => (i, true),
                None => bail!("{what}: unknown decision `{key}`; write {form}"),
            },
        };
        let given = if is_config {
            self.config[i].clone()
        } else {
            self.wasm[i].as_ref().map(|s| s.path.clone())
        };
        if let Some(first) = given {
            bail!(
                "{what}: {key} is given twice, as {} and as {file}; give one file per decision",
                first.display()
            );
        }
        if is_config {
            self.config[i] = Some(PathBuf::from(file));
        } else {
            self.wasm[i] = Some(Source {
                path: PathBuf::from(file),
                named_by: what.to_string(),
            });
        }
        Ok(())
    }

    /// Every config must belong to a policy.
    fn check_configs(&self, what: &str) -> Result<()> {
        for (i, (_, key, _)) in DECISIONS.iter().enumerate() {
            if let (None, Some(c)) = (&self.wasm[i], &self.config[i]) {
                bail!(
                    "{what}: {key}-config={} is given but there is no {key} policy to configure; \
                     add {key}=FILE or drop the config",
                    c.display()
                );
            }
        }
        Ok(())
    }
}

/// What decides in one run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Spec {
    /// The scenario's policies with the `--policy` overrides.
    Scenario,
    Builtin,
    /// Cluster-Autoscaler-like node groups; `spot`: bought as spot.
    StaticNodeGroups {
        spot: bool,
    },
    Custom {
        label: String,
        set: PolicySet,
    },
}

impl Spec {
    pub(crate) fn label(&self) -> &str {
        match self {
            Spec::Scenario => "scenario",
            Spec::Builtin => "builtin",
            Spec::StaticNodeGroups { spot: false } => "static-node-groups",
            Spec::StaticNodeGroups { spot: true } => "static-node-groups-spot",
            Spec::Custom { label, .. } => label,
        }
    }
}

fn parse_spec(text: &str) -> Result<Spec> {
    match text {
        "scenario" => return Ok(Spec::Scenario),
        "builtin" => return Ok(Spec::Builtin),
        "static-node-groups" => return Ok(Spec::StaticNodeGroups { spot: false }),
        "static-node-groups:spot" | "static-node-groups-spot" => {
            return Ok(Spec::StaticNodeGroups { spot: true });
        }
        _ => {}
    }
    let what = format!("--compare {text}");
    let Some((label, items)) = text.split_once(':') else {
        bail!("{what}: expected {SPEC_FORM}");
    };
    if label.is_empty()
        || !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        bail!(
            "{what}: label `{label}` must be letters, digits, `-`, `_` or `.` (it names the \
             column and the HTML file); expected {SPEC_FORM}"
        );
    }
    let mut set = PolicySet::default();
    for item in items.split(',') {
        set.set(item, &what, SPEC_FORM)?;
    }
    if set.is_builtin() {
        bail!("{what}: names no policy file; expected {SPEC_FORM}, or `builtin`");
    }
    set.check_configs(&what)?;
    Ok(Spec::Custom {
        label: label.to_string(),
        set,
    })
}

/// The runs to make, in column order, with the plain run's policies.
fn plan(args: &SimArgs, scenario: &Scenario) -> Result<(Vec<Spec>, PolicySet)> {
    let dir = args
        .scenario
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut plain = PolicySet::default();
    let named = [
        &scenario.policies.instance_selection,
        &scenario.policies.consolidation_scoring,
    ];
    for (i, file) in named.into_iter().enumerate() {
        if let Some(file) = file {
            let path = dir.join(file);
            let (_, key, field) = DECISIONS[i];
            // Only nothing at all is "not found": a directory, a device or a
            // dangling link is named as such when the policy is read.
            if path.symlink_metadata().is_err() {
                bail!(
                    "scenario {}: {field}: policy file {} not found; fix: the path is relative to \
                     the scenario file's directory: correct it, or override it with --policy \
                     {key}=FILE",
                    args.scenario.display(),
                    path.display()
                );
            }
            plain.wasm[i] = Some(Source {
                path,
                named_by: format!("scenario {} {field}", args.scenario.display()),
            });
        }
    }
    // The flags override the scenario's policies, but each decision once.
    let mut flags = PolicySet::default();
    for p in &args.policies {
        flags.set(p, &format!("--policy {p}"), POLICY_FORM)?;
    }
    for i in 0..2 {
        if flags.wasm[i].is_some() {
            plain.wasm[i] = flags.wasm[i].take();
        }
        if flags.config[i].is_some() {
            plain.config[i] = flags.config[i].take();
        }
    }
    plain.check_configs("--policy")?;
    if let Some(config) = &args.config {
        if plain.is_builtin() {
            bail!(
                "--config {}: the scenario and --policy name no Wasm policy to configure; add \
                 --policy DECISION=FILE or drop --config",
                config.display()
            );
        }
        for i in 0..2 {
            if plain.wasm[i].is_some() && plain.config[i].is_none() {
                plain.config[i] = Some(config.clone());
            }
        }
    }

    let mut specs = args
        .compare
        .iter()
        .map(|s| parse_spec(s))
        .collect::<Result<Vec<_>>>()?;
    if let Some(baseline) = args.baseline {
        let spec = Spec::StaticNodeGroups {
            spot: baseline == BaselineArg::StaticNodeGroupsSpot,
        };
        if !specs.contains(&spec) {
            specs.push(spec);
        }
    }
    if !specs.is_empty() {
        let has_plain = specs.contains(&Spec::Scenario)
            || (plain.is_builtin() && specs.contains(&Spec::Builtin));
        if !has_plain {
            specs.insert(0, Spec::Scenario);
        }
    } else {
        specs.push(Spec::Scenario);
    }
    for (i, s) in specs.iter().enumerate() {
        if specs[..i].iter().any(|t| t.label() == s.label()) {
            bail!(
                "--compare: the label `{}` is used twice; give each run its own label",
                s.label()
            );
        }
    }
    Ok((specs, plain))
}

/// The runtime the runs' policies share (its compiled-code cache with
/// them), started on first use.
pub(crate) fn runtime(runtime: &mut Option<Runtime>, limits: PolicyLimits) -> Result<Runtime> {
    Ok(match runtime {
        Some(rt) => rt.clone(),
        None => {
            let config = RuntimeConfig {
                fuel_mode_deadline: FUEL_MODE_DEADLINE,
                memory_limit: limits.memory_mib << 20,
                ..RuntimeConfig::deterministic(limits.fuel)
            };
            runtime
                .insert(Runtime::new(config).context("cannot start the policy runtime")?)
                .clone()
        }
    })
}

/// Loads a run's policies into their own host; `None`: all built-in.
fn load_host(
    runtime: &mut Option<Runtime>,
    limits: PolicyLimits,
    label: &str,
    set: &PolicySet,
) -> Result<Option<PolicyHost>> {
    if set.is_builtin() {
        return Ok(None);
    }
    let rt = self::runtime(runtime, limits)?;
    // A failing call falls back and is counted; the breaker's wall-clock
    // cool-down would make runs differ, so it never opens here.
    let breaker = BreakerConfig {
        failures_to_open: u32::MAX,
        cooldown: Duration::ZERO,
    };
    let host = PolicyHost::with_clock(rt, std::sync::Arc::new(SystemClock), breaker);
    for (i, (decision, key, _)) in DECISIONS.iter().enumerate() {
        let Some(src) = &set.wasm[i] else { continue };
        let bytes = dovetail_policy::LoadedPolicy::read_file(host.runtime(), &src.path)
            .map_err(|e| anyhow!("run `{label}`: {}: {e}", src.named_by))?;
        let config = set.config[i]
            .as_ref()
            .map(|c| {
                crate::policy_cmd::read_config(c)
                    .with_context(|| format!("run `{label}`: the {key} policy's config"))
            })
            .transpose()?;
        host.load_and_install(
            *decision,
            &src.path.display().to_string(),
            &bytes,
            config.as_deref(),
        )
        .map_err(|e| {
            let fuel =
                if e.class == FailureClass::OutOfFuel || e.to_string().contains("out-of-fuel") {
                    format!(" (in the simulator, raise --fuel, now {})", limits.fuel)
                } else {
                    String::new()
                };
            let config = match &set.config[i] {
                Some(c) if e.class == FailureClass::Config => format!("config {}: ", c.display()),
                _ => String::new(),
            };
            anyhow!("run `{label}`: {}: {config}{e}{fuel}", src.named_by)
        })?;
    }
    Ok(Some(host))
}

/// Loads every run's policies, each run into its own host (so its counts
/// are its own), before the first run: a bad policy fails fast. `plain`:
/// the policies of [`Spec::Scenario`].
pub(crate) fn load_hosts(
    runtime: &mut Option<Runtime>,
    limits: PolicyLimits,
    specs: &[Spec],
    plain: &PolicySet,
) -> Result<Vec<Option<PolicyHost>>> {
    specs
        .iter()
        .map(|spec| match spec {
            Spec::Scenario => load_host(runtime, limits, spec.label(), plain),
            Spec::Custom { label, set } => load_host(runtime, limits, label, set),
            Spec::Builtin | Spec::StaticNodeGroups { .. } => Ok(None),
        })
        .collect()
}

/// Runs `scenario` once per spec, in order, with the hosts of
/// [`load_hosts`]; `prefix` starts every progress bar.
pub(crate) fn run_specs(
    scenario: &Scenario,
    specs: &[Spec],
    hosts: &[Option<PolicyHost>],
    prefix: &str,
) -> Result<Vec<Run>> {
    let several = specs.len() > 1;
    specs
        .iter()
        .zip(hosts)
        .map(|(spec, host)| {
            let prefix = if several {
                format!("{prefix}{} ", spec.label())
            } else {
                prefix.to_string()
            };
            simulate(scenario, spec, host.as_ref(), &prefix)
        })
        .collect()
}

/// Reads and parses a scenario file (its files relative to its folder);
/// with `strict`, its warnings are errors, otherwise they are printed.
pub(crate) fn read_scenario(path: &Path, strict: bool) -> Result<Scenario> {
    let text = dovetail_input::read_text(path, "scenario", dovetail_input::caps::SCENARIO)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let scenario = parse_scenario_in(&text, dir)
        .with_context(|| format!("scenario {} is not valid", path.display()))?;
    if strict && !scenario.warnings.is_empty() {
        bail!(
            "scenario {} is not valid (--strict makes its warnings errors): {}",
            path.display(),
            scenario
                .warnings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    for w in &scenario.warnings {
        eprintln!("warning: {w}");
    }
    Ok(scenario)
}

fn simulate(
    scenario: &Scenario,
    spec: &Spec,
    host: Option<&PolicyHost>,
    prefix: &str,
) -> Result<Run> {
    let mut scenario = scenario.clone();
    if let Spec::StaticNodeGroups { spot } = *spec {
        let groups = if spot {
            scenario.spot_baseline_groups()
        } else {
            scenario.baseline_groups()
        };
        if spot && groups.is_empty() && !scenario.baseline_groups().is_empty() {
            bail!(
                "static-node-groups:spot: the catalog sells none of the baseline's instance types \
                 as spot; name types it does in `baseline.nodeGroups`"
            );
        }
        if groups.is_empty() {
            bail!(
                "static-node-groups: the scenario has no `baseline.nodeGroups` and its catalog \
                 has none of the default m5.large/xlarge/2xlarge/4xlarge groups; add \
                 `baseline: {{ nodeGroups: [{{ instanceType: TYPE }}] }}` to the scenario"
            );
        }
        scenario.autoscaler = Autoscaler::StaticNodeGroups(groups);
    }
    let selector: &dyn InstanceSelector = match host {
        Some(h) if h.active(Decision::InstanceSelection).is_some() => h,
        _ => &Builtin,
    };
    let scorer: &dyn ConsolidationScorer = match host {
        Some(h) if h.active(Decision::ConsolidationScoring).is_some() => h,
        _ => &Builtin,
    };

    let bar = progress_bar(scenario.duration_ms / 1000, prefix);
    let terminal = output::stderr_is_terminal();
    let mut shown = false;
    let duration = scenario.duration_ms as f64 / 1000.0;
    let started = Instant::now();
    let mut report =
        Simulation::new(scenario, selector, scorer).run_with_progress(&mut |_| {}, &mut |done| {
            bar.set_position((done * duration).round() as u64);
            if !shown && terminal && started.elapsed() >= PROGRESS_AFTER {
                shown = true;
                bar.set_draw_target(ProgressDrawTarget::stderr());
                bar.enable_steady_tick(Duration::from_millis(200));
            }
        });
    report.wall_seconds = Some(started.elapsed().as_secs_f64());
    bar.finish_and_clear();

    let label = spec.label().to_string();
    if matches!(spec, Spec::StaticNodeGroups { .. }) {
        return Ok(Run {
            label,
            report,
            deciders: None,
            notes: Vec::new(),
        });
    }
    let mut deciders = [String::new(), String::new()];
    let mut notes = Vec::new();
    let fuel = match host {
        Some(h) => match h.runtime().config().budget {
            dovetail_policy::Budget::Fuel(f) => f,
            dovetail_policy::Budget::Deadline(_) => 0,
        },
        None => 0,
    };
    for (i, (decision, key, _)) in DECISIONS.iter().enumerate() {
        let Some(h) = host.filter(|h| h.active(*decision).is_some()) else {
            deciders[i] = "built-in".to_string();
            continue;
        };
        let status = h.status(*decision);
        let active = status.active.unwrap_or_default();
        // `name@version (digest)`: the table shows the name and version.
        deciders[i] = active.split(" (").next().unwrap_or_default().to_string();
        report.totals.policy_failures += status.fallbacks;
        report.totals.policy_timeouts += status.failures.get(FailureClass::OutOfFuel)
            + status.failures.get(FailureClass::Timeout);
        if status.fallbacks > 0 {
            notes.push(format!(
                "{label}: {key} policy {active} failed {} of {} calls and the built-in decided \
                 instead; last failure: {}",
                status.fallbacks,
                status.decisions,
                status.last_failure.as_deref().unwrap_or("-")
            ));
            let out_of_fuel = status.failures.get(FailureClass::OutOfFuel);
            if out_of_fuel > 0 {
                notes.push(format!(
                    "{label}: {out_of_fuel} {key} calls ran out of fuel; raise --fuel (now {fuel})"
                ));
            }
        }
    }
    report.autoscaler = format!(
        "dovetail (instance-selection: {}, consolidation-scoring: {})",
        deciders[0], deciders[1]
    );
    Ok(Run {
        label,
        report,
        deciders: Some(deciders),
        notes,
    })
}

fn key_simulated(s: &ProgressState, w: &mut dyn fmt::Write) {
    let _ = w.write_str(&dovetail_sim::clock(s.pos()));
}

fn key_total(s: &ProgressState, w: &mut dyn fmt::Write) {
    let _ = w.write_str(&dovetail_sim::clock(s.len().unwrap_or(0)));
}

fn key_wall(s: &ProgressState, w: &mut dyn fmt::Write) {
    let _ = write!(w, "{:.1} s", s.elapsed().as_secs_f64());
}

/// A bar over simulated seconds; hidden until [`simulate`] shows it.
fn progress_bar(seconds: u64, prefix: &str) -> ProgressBar {
    let style =
        ProgressStyle::with_template("{prefix}[{bar:30}] {simulated} / {total} simulated, {wall}")
            .expect("the progress template is valid")
            .with_key("simulated", key_simulated)
            .with_key("total", key_total)
            .with_key("wall", key_wall)
            .progress_chars("=> ");
    ProgressBar::with_draw_target(Some(seconds), ProgressDrawTarget::hidden())
        .with_style(style)
        .with_prefix(prefix.to_string())
}

pub fn run(args: SimArgs) -> Result<()> {
    let mut scenario = read_scenario(&args.scenario, args.strict)?;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    let (specs, plain) = plan(&args, &scenario)?;
    if let Some(estimate) = scenario.size().estimate() {
        let runs = if specs.len() > 1 {
            format!(", for each of {} runs", specs.len())
        } else {
            String::new()
        };
        eprintln!("note: {estimate}{runs}; a progress bar shows on a terminal");
    }
    // Before the runs: a bad output path fails now, not after them.
    let json_file = (args.json.as_deref())
        .map(|p| OutputFile::open("--json", p, "the JSON report"))
        .transpose()?;
    let report_file = (args.report.as_deref())
        .map(|p| OutputFile::open("--report", p, "the HTML report"))
        .transpose()?;

    let limits = PolicyLimits {
        fuel: args.fuel,
        memory_mib: args.memory_mib,
    };
    let hosts = load_hosts(&mut None, limits, &specs, &plain)?;
    let several = specs.len() > 1;
    let runs = run_specs(&scenario, &specs, &hosts, "")?;

    let out = text::report(&args.scenario.display().to_string(), &scenario, &runs);
    // The files first: a reader of stdout that stops early (`| head`) must not cost them.
    let mut written = Vec::new();
    if let Some(file) = json_file {
        let json = if several {
            #[derive(Serialize)]
            struct Labelled<'a> {
                label: &'a str,
                report: &'a Report,
            }
            #[derive(Serialize)]
            struct Runs<'a> {
                runs: Vec<Labelled<'a>>,
            }
            serde_json::to_string_pretty(&Runs {
                runs: runs
                    .iter()
                    .map(|r| Labelled {
                        label: &r.label,
                        report: &r.report,
                    })
                    .collect(),
            })?
        } else {
            serde_json::to_string_pretty(&runs[0].report)?
        };
        let path = file.path().to_path_buf();
        file.write((json + "\n").as_bytes())?;
        written.push(("JSON", path));
    }
    if let Some(file) = report_file {
        let title = format!("Dovetail simulation: {}", args.scenario.display());
        let page = if several {
            dovetail_sim::compare_html(&title, &runs)
        } else {
            runs[0].report.to_html(&title)
        };
        let path = file.path().to_path_buf();
        file.write(page.as_bytes())?;
        written.push(("HTML", path));
    }
    let stdout = output::stdout("the simulation report");
    stdout.text(&out)?;
    for (kind, path) in written {
        outln!(stdout, "{kind} report: {}", path.display())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_malformed_ones_name_the_form() {
        assert_eq!(parse_spec("builtin").unwrap(), Spec::Builtin);
        let Spec::Custom { label, set } =
            parse_spec("s:consolidation-scoring=a.wasm,consolidation-scoring-config=c.json")
                .unwrap()
        else {
            panic!("custom");
        };
        assert_eq!(label, "s");
        assert_eq!(set.wasm[1].as_ref().unwrap().path, Path::new("a.wasm"));
        assert_eq!(set.config[1].as_deref(), Some(Path::new("c.json")));
        assert!(set.wasm[0].is_none());

        for bad in [
            "foo=bar",
            "x:",
            "x:scoring=a.wasm",
            "x:instance-selection=",
            "bad label:instance-selection=a.wasm",
            "x:instance-selection-config=c.json",
        ] {
            let e = format!("{:#}", parse_spec(bad).unwrap_err());
            assert!(e.contains(&format!("--compare {bad}")), "{e}");
            assert!(
                e.contains("LABEL:DECISION=FILE") || e.contains("instance-selection=FILE"),
                "{e}"
            );
        }
    }
}
