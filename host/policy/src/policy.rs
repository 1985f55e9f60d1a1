//! A validated policy, ready to decide.
//!
//! Invariants, established by [`LoadedPolicy::load`] before anything calls it:
//! the component parsed and compiled; it imports nothing outside the sandbox;
//! it exports `dovetail:policy/meta@0.1.x` and at least one decision
//! interface, with the right function types (checked by a trial
//! instantiation, since looking exports up checks only names); `describe`
//! answered; `configure` accepted the operator's config; and every decision it
//! implements answered a built-in request with valid output.
//!
//! Each decision batch runs in a fresh `Store` and instance: nothing a policy
//! does survives into the next decision, a trapped instance (which wasmtime
//! poisons) is simply dropped, and concurrent decisions share only the
//! compiled code. With the pooling allocator this costs tens of microseconds.

use std::time::{Duration, Instant};

use dovetail_core::policy::smoke;
use dovetail_core::policy::types as core;
use dovetail_core::policy::validate;
use wasmtime::component::{Instance, InstancePre};
use wasmtime::{Store, Trap};

use crate::bindings::{consolidation_scoring, instance_selection, meta, types as wit};
use crate::error::{FailureClass, PolicyFailure};
use crate::runtime::{Budget, Runtime};
use crate::sandbox::{HostState, forbidden_import};

/// The package version this host speaks; components match it on `0.1.*`.
pub const CONTRACT: &str = "dovetail:policy@0.1.0";

/// A policy that passed validation.
pub struct LoadedPolicy {
    runtime: Runtime,
    pub info: core::PolicyInfo,
    /// `sha256:` prefix of the component's digest.
    pub digest: String,
    /// Where it came from (a path, or a name given by the caller).
    pub source: String,
    /// The config it was validated with (`{}` when none).
    pub config: String,
    /// Time spent compiling (zero when the compiled code was cached).
    pub compile_time: Duration,
    /// Whether the compiled code came from the cache.
    pub from_cache: bool,
    /// Time spent on everything else: linking, trial run, describe, smoke calls.
    pub validate_time: Duration,
    pre: InstancePre<HostState>,
    meta: meta::GuestIndices,
    selection: Option<instance_selection::GuestIndices>,
    scoring: Option<consolidation_scoring::GuestIndices>,
}

impl std::fmt::Debug for LoadedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPolicy")
            .field("info", &self.info)
            .field("digest", &self.digest)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The world a component's exports amount to.
pub fn world_name(decisions: &[core::Decision]) -> &'static str {
    let sel = decisions.contains(&core::Decision::InstanceSelection);
    let score = decisions.contains(&core::Decision::ConsolidationScoring);
    match (sel, score) {
        (true, true) => "policy",
        (true, false) => "instance-selector",
        (false, true) => "consolidation-scorer",
        (false, false) => "none",
    }
}

impl LoadedPolicy {
    /// Reads and validates the component at `path`, with `config` if given.
    /// The runtime's size limit holds while reading: a larger file, or a
    /// device, costs no more than the limit.
    pub fn load_file(
        runtime: &Runtime,
        path: &std::path::Path,
        config: Option<&str>,
    ) -> Result<Self, PolicyFailure> {
        let bytes = Self::read_file(runtime, path)?;
        Self::load(runtime, &path.display().to_string(), &bytes, config)
    }

    /// The bytes of the component at `path`, read within the runtime's size
    /// limit; every cause of failure has its own fix.
    pub fn read_file(runtime: &Runtime, path: &std::path::Path) -> Result<Vec<u8>, PolicyFailure> {
        let cap = runtime.config().max_component_bytes as u64;
        dovetail_input::read_bytes(path, "policy", cap).map_err(|e| PolicyFailure::unreadable(&e))
    }

    /// Validates `bytes` fully (see the module docs) and returns a policy
    /// ready to decide.
    pub fn load(
        runtime: &Runtime,
        source: &str,
        bytes: &[u8],
        config: Option<&str>,
    ) -> Result<Self, PolicyFailure> {
        Self::load_inner(runtime, source, bytes, config, None)
    }

    /// Like [`LoadedPolicy::load`], for a policy that must implement `decision`:
    /// a component of another world is refused before its config is tried.
    pub fn load_for(
        decision: core::Decision,
        runtime: &Runtime,
        source: &str,
        bytes: &[u8],
        config: Option<&str>,
    ) -> Result<Self, PolicyFailure> {
        Self::load_inner(runtime, source, bytes, config, Some(decision))
    }

    fn load_inner(
        runtime: &Runtime,
        source: &str,
        bytes: &[u8],
        config: Option<&str>,
        expect: Option<core::Decision>,
    ) -> Result<Self, PolicyFailure> {
        let compiled = runtime.compile(source, bytes)?;
        let start = Instant::now();
        let digest = compiled.digest.clone();
        let load_err =
            |detail: String| PolicyFailure::new(source, digest.clone(), FailureClass::Load, detail);
        let engine = &runtime.inner.engine;
        let ty = compiled.component.component_type();
        for (name, _) in ty.imports(engine) {
            if let Some(why) = forbidden_import(name) {
                return Err(load_err(why));
            }
        }
        let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
        let pre = runtime
            .inner
            .linker
            .instantiate_pre(&compiled.component)
            .map_err(|e| {
                load_err(format!(
                    "its imports do not match what Dovetail provides: {e:#}"
                ))
            })?;
        let meta = meta::GuestIndices::new(&pre).map_err(|_| load_err(wrong_world(&exports)))?;
        let selection = instance_selection::GuestIndices::new(&pre).ok();
        let scoring = consolidation_scoring::GuestIndices::new(&pre).ok();
        if selection.is_none() && scoring.is_none() {
            return Err(load_err(wrong_world(&exports)));
        }
        let exported: Vec<core::Decision> = [
            (selection.is_some(), core::Decision::InstanceSelection),
            (scoring.is_some(), core::Decision::ConsolidationScoring),
        ]
        .into_iter()
        .filter_map(|(has, d)| has.then_some(d))
        .collect();
        if let Some(d) = expect.filter(|d| !exported.contains(d)) {
            return Err(load_err(wrong_decision(&exported, d)));
        }
        let mut policy = LoadedPolicy {
            runtime: runtime.clone(),
            info: core::PolicyInfo {
                name: source.to_string(),
                version: String::new(),
                description: String::new(),
                decisions: Vec::new(),
            },
            digest: digest.clone(),
            source: source.to_string(),
            config: config.map_or("{}".into(), |c| c.to_string()),
            compile_time: compiled.compile_time,
            from_cache: compiled.cached,
            validate_time: Duration::ZERO,
            pre,
            meta,
            selection,
            scoring,
        };
        // Trial instantiation: loads every export with its full type, which
        // name lookup alone does not check, then asks who the policy is.
        let info = policy
            .run(0, 0, RequestSize::setup(false), |store, instance, p| {
                if let Some(s) = &p.selection {
                    s.load(&mut *store, instance)?;
                }
                if let Some(s) = &p.scoring {
                    s.load(&mut *store, instance)?;
                }
                p.meta
                    .load(&mut *store, instance)?
                    .call_describe(&mut *store)
            })
            .map_err(|f| match f.class {
                // The budget, not the component, is what to change.
                FailureClass::OutOfMemory | FailureClass::Timeout | FailureClass::OutOfFuel => {
                    PolicyFailure::new(
                        source,
                        digest.clone(),
                        f.class,
                        format!("trial run failed: {}", f.detail),
                    )
                }
                _ => load_err(format!("trial run failed: [{}] {}", f.class, f.detail)),
            })?;
        let claimed: Vec<core::Decision> = info.decisions.iter().map(decision).collect();
        if let Some(missing) = claimed.iter().find(|d| !exported.contains(d)) {
            return Err(load_err(format!(
                "describe() claims {missing} but the component does not export it"
            )));
        }
        if info.name.trim().is_empty() {
            return Err(load_err("describe() returned an empty name".into()));
        }
        policy.info = core::PolicyInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            decisions: exported,
        };
        // The configure call runs in every decision; run it once here so a
        // bad config is reported now, naming the field.
        policy.run(0, 0, RequestSize::setup(true), |_, _, _| Ok(()))?;
        if policy.selection.is_some() {
            let req = smoke::selection();
            policy
                .select(&req)
                .map_err(|f| smoke_err(&policy, "instance selection", f))?;
        }
        if policy.scoring.is_some() {
            let (ctx, moves) = smoke::consolidation();
            policy
                .rank(&ctx)
                .map_err(|f| smoke_err(&policy, "consolidation rank", f))?;
            policy
                .approve(&ctx, &moves)
                .map_err(|f| smoke_err(&policy, "consolidation approve", f))?;
        }
        policy.validate_time = start.elapsed();
        Ok(policy)
    }

    /// `name@version`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.info.name, self.info.version)
    }

    pub fn implements(&self, d: core::Decision) -> bool {
        match d {
            core::Decision::InstanceSelection => self.selection.is_some(),
            core::Decision::ConsolidationScoring => self.scoring.is_some(),
        }
    }

    pub fn world(&self) -> &'static str {
        world_name(&self.info.decisions)
    }

    fn failure(&self, class: FailureClass, detail: impl Into<String>) -> PolicyFailure {
        PolicyFailure::new(self.info.name.clone(), self.digest.clone(), class, detail)
    }

    /// Runs `f` in a fresh store and instance, within the runtime's budget,
    /// after applying the policy's config when `configure` is set.
    fn run<R>(
        &self,
        now_ms: u64,
        seed: u64,
        size: RequestSize,
        f: impl FnOnce(&mut Store<HostState>, &Instance, &Self) -> wasmtime::Result<R>,
    ) -> Result<R, PolicyFailure> {
        let rt = &self.runtime.inner;
        let c = &rt.config;
        let memory_limit = c
            .memory_limit
            .saturating_add(size.bytes.saturating_mul(c.memory_per_request_byte))
            .min(c.max_memory_limit.max(c.memory_limit));
        let mut store = Store::new(
            &rt.engine,
            HostState::new(&self.info.name, memory_limit, now_ms, seed),
        );
        store.limiter(|s| s);
        let extra = c
            .deadline_per_row
            .saturating_mul(size.rows.min(u32::MAX as usize) as u32);
        let deadline = match c.budget {
            Budget::Deadline(d) => d + extra,
            Budget::Fuel(fuel) => {
                store
                    .set_fuel(fuel)
                    .map_err(|e| self.failure(FailureClass::Host, format!("fuel: {e}")))?;
                c.fuel_mode_deadline + extra
            }
        };
        store.data_mut().deadline = deadline;
        // The deadline is set before instantiation: start-up code runs under it too.
        store.set_epoch_deadline(self.runtime.ticks(deadline));
        store.epoch_deadline_trap();
        let instance = match self.pre.instantiate(&mut store) {
            Ok(i) => i,
            Err(e) => return Err(self.classify(&store, e, "instantiate")),
        };
        if size.configure {
            let meta = self
                .meta
                .load(&mut store, &instance)
                .map_err(|e| self.classify(&store, e, "configure"))?;
            match meta.call_configure(&mut store, &self.config) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let field = if e.field.is_empty() {
                        "(document)"
                    } else {
                        &e.field
                    };
                    return Err(self.failure(
                        FailureClass::Config,
                        format!("config field `{field}`: {}", e.message),
                    ));
                }
                Err(e) => return Err(self.classify(&store, e, "configure")),
            }
        }
        f(&mut store, &instance, self).map_err(|e| self.classify(&store, e, "call"))
    }

    fn classify(
        &self,
        store: &Store<HostState>,
        err: wasmtime::Error,
        stage: &str,
    ) -> PolicyFailure {
        let state = store.data();
        if let Some(asked) = state.memory_exceeded {
            return self.failure(
                FailureClass::OutOfMemory,
                format!(
                    "asked for {} MiB of memory; the cap is {} MiB",
                    asked >> 20,
                    state.memory_limit >> 20
                ),
            );
        }
        let rt = &self.runtime.inner.config;
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => {
                let limit = state.deadline;
                self.failure(
                    FailureClass::Timeout,
                    format!(
                        "still running after its {} ms deadline; stopped",
                        limit.as_millis()
                    ),
                )
            }
            Some(Trap::OutOfFuel) => {
                let fuel = match rt.budget {
                    Budget::Fuel(f) => f,
                    Budget::Deadline(_) => 0,
                };
                self.failure(
                    FailureClass::OutOfFuel,
                    format!("used all of its {fuel} fuel"),
                )
            }
            Some(trap) => self.failure(
                FailureClass::Trap,
                format!("trapped during {stage}: {trap}{}", state.stderr_note()),
            ),
            None if stage == "instantiate" => self.failure(
                FailureClass::Host,
                format!("could not create an instance: {err:#}"),
            ),
            None => self.failure(
                FailureClass::Trap,
                format!("failed during {stage}: {err:#}{}", state.stderr_note()),
            ),
        }
    }

    /// One instance-selection round.
    pub fn select(
        &self,
        request: &core::SelectionRequest,
    ) -> Result<core::Selection, PolicyFailure> {
        let Some(indices) = &self.selection else {
            return Err(self.failure(FailureClass::Load, "does not implement instance selection"));
        };
        let launches: Vec<Vec<wit::MinValues>> = request
            .requests
            .iter()
            .map(|l| l.min_values.iter().map(min_values).collect())
            .collect();
        let requests: Vec<wit::LaunchRequest<'_>> = request
            .requests
            .iter()
            .zip(&launches)
            .map(|(l, mv)| wit::LaunchRequest {
                node_pool: l.node_pool,
                demand: demand(l.demand),
                compatible: &l.compatible,
                min_values: mv,
                picks: l.picks,
            })
            .collect();
        let o = &request.offerings;
        let wire = wit::SelectionRequest {
            now_ms: request.now_ms,
            seed: request.seed,
            dictionaries: dictionaries(&request.dictionaries),
            offerings: wit::OfferingTable {
                instance_type: &o.instance_type,
                vcpu: &o.vcpu,
                memory_mib: &o.memory_mib,
                gpus: &o.gpus,
                alloc_cpu_milli: &o.alloc_cpu_milli,
                alloc_memory_mib: &o.alloc_memory_mib,
                alloc_pods: &o.alloc_pods,
                zone: &o.zone,
                capacity_type: &o.capacity_type,
                price_per_hour: &o.price_per_hour,
                available: &o.available,
            },
            requests: &requests,
        };
        let rows = o.len()
            + request
                .requests
                .iter()
                .map(|l| l.compatible.len())
                .sum::<usize>();
        // Eleven columns of at most 8 bytes per offering, 4 per compatible row.
        let size = RequestSize::call(rows, o.len() * 48 + (rows - o.len()) * 4);
        let out = self.run(request.now_ms, request.seed, size, |store, instance, _| {
            indices
                .load(&mut *store, instance)?
                .call_select(&mut *store, wire)
        })?;
        let selection: core::Selection = out.into_iter().map(|r| r.map_err(policy_error)).collect();
        validate::check_selection(request, &selection)
            .map_err(|e| self.failure(FailureClass::InvalidOutput, e.0))?;
        Ok(selection)
    }

    fn scorer(&self) -> Result<&consolidation_scoring::GuestIndices, PolicyFailure> {
        self.scoring.as_ref().ok_or_else(|| {
            self.failure(
                FailureClass::Load,
                "does not implement consolidation scoring",
            )
        })
    }

    /// Ranks consolidation candidates.
    pub fn rank(&self, ctx: &core::ConsolidationContext) -> Result<core::Ranking, PolicyFailure> {
        let indices = self.scorer()?;
        let n = ctx.candidates.len();
        let out = self.run(
            ctx.now_ms,
            ctx.seed,
            RequestSize::call(n, n * 64),
            |store, instance, _| {
                indices
                    .load(&mut *store, instance)?
                    .call_rank(&mut *store, context(ctx))
            },
        )?;
        let ranking = out.map_err(|e| {
            self.failure(
                FailureClass::PolicyError,
                format!("rank refused: {}", e.message),
            )
        })?;
        validate::check_ranking(ctx, &ranking)
            .map_err(|e| self.failure(FailureClass::InvalidOutput, e.0))?;
        Ok(ranking)
    }

    /// Approves or rejects each proposed move.
    pub fn approve(
        &self,
        ctx: &core::ConsolidationContext,
        moves: &[core::ProposedMove],
    ) -> Result<Vec<core::Verdict>, PolicyFailure> {
        let indices = self.scorer()?;
        let table = core::MoveTable::from_moves(moves);
        let wire = wit::MoveTable {
            reason: &table.reason,
            removed: &table.removed,
            removed_ends: &table.removed_ends,
            replaces: &table.replaces,
            replacement_price_per_hour: &table.replacement_price_per_hour,
            savings_per_hour: &table.savings_per_hour,
            pods_evicted: &table.pods_evicted,
            disruption_cost: &table.disruption_cost,
        };
        let rows = ctx.candidates.len() + table.removed.len();
        let size = RequestSize::call(rows, ctx.candidates.len() * 64 + table.removed.len() * 48);
        let out = self.run(ctx.now_ms, ctx.seed, size, |store, instance, _| {
            indices
                .load(&mut *store, instance)?
                .call_approve(&mut *store, context(ctx), wire)
        })?;
        let verdicts: Vec<core::Verdict> = out
            .map_err(|e| {
                self.failure(
                    FailureClass::PolicyError,
                    format!("approve refused: {}", e.message),
                )
            })?
            .into_iter()
            .map(|v| core::Verdict {
                approve: v.approve,
                reason: v.reason,
            })
            .collect();
        validate::check_verdicts(moves, &verdicts)
            .map_err(|e| self.failure(FailureClass::InvalidOutput, e.0))?;
        Ok(verdicts)
    }
}

fn smoke_err(policy: &LoadedPolicy, what: &str, f: PolicyFailure) -> PolicyFailure {
    PolicyFailure::new(
        f.policy,
        policy.digest.clone(),
        if f.class == FailureClass::Config {
            FailureClass::Config
        } else {
            FailureClass::Load
        },
        format!("failed its {what} smoke call: [{}] {}", f.class, f.detail),
    )
}

/// Why a component exporting `exported` cannot serve `wanted`.
pub(crate) fn wrong_decision(exported: &[core::Decision], wanted: core::Decision) -> String {
    let names: Vec<&str> = exported.iter().map(|d| d.as_str()).collect();
    let files: Vec<String> = names.iter().map(|d| format!("{d}.wasm")).collect();
    format!(
        "it implements {} ({} world), not {wanted}; deploy it as {}",
        names.join(" and "),
        world_name(exported),
        files.join(" or ")
    )
}

fn wrong_world(exports: &[String]) -> String {
    let ours: Vec<&String> = exports
        .iter()
        .filter(|e| e.starts_with("dovetail:policy/"))
        .collect();
    if let Some(other) = ours.iter().find(|e| !e.contains("@0.1.")) {
        return format!(
            "it was built against `{other}`, but this Dovetail speaks {CONTRACT} (any 0.1.x); rebuild it against this release's wit/policy.wit"
        );
    }
    let shown = if exports.is_empty() {
        "nothing".to_string()
    } else {
        exports.join(", ")
    };
    format!(
        "it exports {shown}; a Dovetail policy exports dovetail:policy/meta and instance-selection and/or consolidation-scoring (worlds instance-selector, consolidation-scorer or policy of {CONTRACT})"
    )
}

fn decision(d: &meta::Decision) -> core::Decision {
    match d {
        meta::Decision::InstanceSelection => core::Decision::InstanceSelection,
        meta::Decision::ConsolidationScoring => core::Decision::ConsolidationScoring,
    }
}

fn policy_error(e: wit::PolicyError) -> core::PolicyError {
    core::PolicyError {
        kind: match e.kind {
            wit::ErrorKind::InvalidInput => core::ErrorKind::InvalidInput,
            wit::ErrorKind::NoAcceptableOffering => core::ErrorKind::NoAcceptableOffering,
            wit::ErrorKind::Unsatisfiable => core::ErrorKind::Unsatisfiable,
            wit::ErrorKind::Internal => core::ErrorKind::Internal,
        },
        message: e.message,
    }
}

fn min_values(m: &core::MinValues) -> wit::MinValues {
    wit::MinValues {
        attribute: match m.attribute {
            core::Attribute::InstanceType => wit::Attribute::InstanceType,
            core::Attribute::Family => wit::Attribute::Family,
            core::Attribute::Category => wit::Attribute::Category,
            core::Attribute::Zone => wit::Attribute::Zone,
            core::Attribute::CapacityType => wit::Attribute::CapacityType,
            core::Attribute::Architecture => wit::Attribute::Architecture,
        },
        min: m.min,
    }
}

fn demand(d: core::Demand) -> wit::Demand {
    wit::Demand {
        cpu_milli: d.cpu_milli,
        memory_mib: d.memory_mib,
        pods: d.pods,
        gpus: d.gpus,
    }
}

fn dictionary(d: &core::Dictionary) -> wit::Dictionary<'_> {
    wit::Dictionary {
        text: &d.text,
        ends: &d.ends,
    }
}

fn dictionaries(d: &core::Dictionaries) -> wit::Dictionaries<'_> {
    wit::Dictionaries {
        instance_types: dictionary(&d.instance_types),
        families: dictionary(&d.families),
        categories: dictionary(&d.categories),
        zones: dictionary(&d.zones),
        architectures: dictionary(&d.architectures),
        node_pools: dictionary(&d.node_pools),
        type_family: &d.type_family,
        type_category: &d.type_category,
        type_architecture: &d.type_architecture,
    }
}

fn context(ctx: &core::ConsolidationContext) -> wit::ConsolidationContext<'_> {
    let c = &ctx.candidates;
    wit::ConsolidationContext {
        now_ms: ctx.now_ms,
        seed: ctx.seed,
        dictionaries: dictionaries(&ctx.dictionaries),
        node_names: dictionary(&ctx.node_names),
        candidates: wit::CandidateTable {
            node: &c.node,
            node_pool: &c.node_pool,
            instance_type: &c.instance_type,
            capacity_type: &c.capacity_type,
            zone: &c.zone,
            price_per_hour: &c.price_per_hour,
            age_seconds: &c.age_seconds,
            expire_after_seconds: &c.expire_after_seconds,
            cpu_utilisation: &c.cpu_utilisation,
            memory_utilisation: &c.memory_utilisation,
            pods: &c.pods,
            disruption_cost: &c.disruption_cost,
            reason: &c.reason,
        },
        node_pools: wit::NodePoolStats {
            nodes: &ctx.node_pools.nodes,
            cost_per_hour: &ctx.node_pools.cost_per_hour,
            disruption_cost: &ctx.node_pools.disruption_cost,
        },
    }
}

/// How big a call's request is: its limits grow with it.
#[derive(Debug, Clone, Copy)]
struct RequestSize {
    rows: usize,
    bytes: usize,
    /// Apply the policy's config first.
    configure: bool,
}

impl RequestSize {
    fn setup(configure: bool) -> Self {
        Self {
            rows: 0,
            bytes: 0,
            configure,
        }
    }

    fn call(rows: usize, bytes: usize) -> Self {
        Self {
            rows,
            bytes,
            configure: true,
        }
    }
}
