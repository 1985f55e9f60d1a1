//! The engine every policy runs on: compiled once per content digest,
//! instantiated fresh for every decision batch, bounded in time and memory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dovetail_input::caps;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::error::{FailureClass, PolicyFailure};
use crate::sandbox::HostState;

/// How long a policy may run, and how that is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// A wall-clock deadline per call, enforced by epoch interruption.
    Deadline(Duration),
    /// A fixed amount of fuel per call: the same input always completes or
    /// runs out identically, whatever the machine's load (for simulation,
    /// replay and tests). A generous wall-clock deadline still applies.
    Fuel(u64),
}

/// Runtime settings; the defaults suit a controller.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub budget: Budget,
    /// Wall-clock cap in fuel mode, as a safety net.
    pub fuel_mode_deadline: Duration,
    /// Linear memory cap per policy instance for a small request.
    pub memory_limit: usize,
    /// Extra time a call gets per row of its request (offerings, compatible
    /// rows, candidates, moves): a round with thousands of NodeClaims is a
    /// lot of honest work, and a fixed deadline would fail it.
    pub deadline_per_row: Duration,
    /// Extra memory a call gets per byte of its request (the request itself
    /// lands in the instance's memory, and the policy works on copies),
    /// up to `max_memory_limit`.
    pub memory_per_request_byte: usize,
    pub max_memory_limit: usize,
    /// Largest component file accepted.
    pub max_component_bytes: usize,
    /// Epoch tick; deadlines are rounded up to whole ticks.
    pub tick: Duration,
    /// Where compiled code is cached across restarts (`None`: memory only).
    pub cache_dir: Option<PathBuf>,
    /// Most policy instances alive at once (pooling allocator slots).
    pub max_concurrent_instances: u32,
    /// Compile a component's functions on a thread pool. Faster on many
    /// cores, but each pool thread keeps its own allocator heap and stack
    /// afterwards: a controller that compiles a policy now and then gives
    /// up some compile time to stay small.
    pub parallel_compilation: bool,
    /// Bytes of each pooled linear memory kept resident between instances.
    /// Kept pages spare a fresh instance its page faults, which otherwise
    /// dominate a decision's fixed cost; every warm slot holds them.
    pub keep_resident: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            budget: Budget::Deadline(Duration::from_millis(100)),
            fuel_mode_deadline: Duration::from_secs(2),
            memory_limit: 64 << 20,
            deadline_per_row: Duration::from_nanos(100),
            memory_per_request_byte: 4,
            max_memory_limit: 1 << 30,
            max_component_bytes: caps::POLICY as usize,
            tick: Duration::from_millis(2),
            cache_dir: None,
            max_concurrent_instances: 64,
            parallel_compilation: true,
            keep_resident: 4 << 20,
        }
    }
}

impl RuntimeConfig {
    /// Deterministic settings: fuel instead of a wall-clock deadline.
    pub fn deterministic(fuel: u64) -> Self {
        Self {
            budget: Budget::Fuel(fuel),
            ..Self::default()
        }
    }
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) config: RuntimeConfig,
    compiled: Mutex<HashMap<[u8; 32], Component>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A shared policy engine. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A compiled component and what identifies it.
#[derive(Clone)]
pub(crate) struct Compiled {
    pub(crate) component: Component,
    pub(crate) digest: String,
    pub(crate) compile_time: Duration,
    pub(crate) cached: bool,
}

/// `sha256:` plus the first 12 hex digits, as shown to people.
pub fn short_digest(full: &[u8; 32]) -> String {
    let hex: String = full.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn engine_config(config: &RuntimeConfig, pooling: bool) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true)
        .cranelift_opt_level(OptLevel::Speed)
        .epoch_interruption(true)
        .consume_fuel(matches!(config.budget, Budget::Fuel(_)))
        // Policies are synchronous; the async machinery only adds call overhead.
        .concurrency_support(false)
        .parallel_compilation(config.parallel_compilation)
        .max_wasm_stack(1 << 20);
    if pooling {
        let slots = config.max_concurrent_instances.max(4);
        let mut p = PoolingAllocationConfig::default();
        p.total_component_instances(slots)
            .total_core_instances(slots * 4)
            .total_memories(slots * 2)
            .total_tables(slots * 4)
            .max_memory_size(
                config
                    .memory_limit
                    .max(config.max_memory_limit)
                    .max(1 << 20),
            )
            .max_unused_warm_slots(slots / 2)
            // Keep touched pages resident and reset only those (PAGEMAP_SCAN
            // where the kernel has it).
            .linear_memory_keep_resident(config.keep_resident)
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    c
}

impl Runtime {
    /// Builds the engine (pooling allocator when the machine allows it,
    /// on-demand otherwise) and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, PolicyFailure> {
        let engine = Engine::new(&engine_config(&config, true))
            .or_else(|pooled| {
                tracing::warn!(error = %pooled, "pooling allocator unavailable; instantiating on demand");
                Engine::new(&engine_config(&config, false))
            })
            .map_err(|e| {
                PolicyFailure::new("runtime", "", FailureClass::Host, format!("engine: {e}"))
            })?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .and_then(|()| {
                crate::bindings::log::add_to_linker::<
                    HostState,
                    wasmtime::component::HasSelf<HostState>,
                >(&mut linker, |s| s)
            })
            .map_err(|e| {
                PolicyFailure::new("runtime", "", FailureClass::Host, format!("linker: {e}"))
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = stop.clone();
            let tick = config.tick;
            std::thread::Builder::new()
                .name("dovetail-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| {
                    PolicyFailure::new("runtime", "", FailureClass::Host, format!("ticker: {e}"))
                })?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                config,
                compiled: Mutex::new(HashMap::new()),
                stop,
            }),
        })
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Epoch ticks covering `d`, plus one because the current tick may be
    /// nearly over.
    pub(crate) fn ticks(&self, d: Duration) -> u64 {
        let tick = self.inner.config.tick.as_nanos().max(1);
        (d.as_nanos().div_ceil(tick) as u64).max(1) + 1
    }

    /// Compiles `bytes`, or returns the component already compiled for the
    /// same digest (in memory, then in the cache directory).
    pub(crate) fn compile(&self, source: &str, bytes: &[u8]) -> Result<Compiled, PolicyFailure> {
        let full: [u8; 32] = Sha256::digest(bytes).into();
        let digest = short_digest(&full);
        let fail =
            |detail: String| PolicyFailure::new(source, digest.clone(), FailureClass::Load, detail);
        let limit = self.inner.config.max_component_bytes;
        if bytes.is_empty() {
            return Err(fail("the file is empty".into()));
        }
        if bytes.len() > limit {
            return Err(fail(format!(
                "the file is {:.1} MiB, over the {} MiB limit for a policy",
                bytes.len() as f64 / (1 << 20) as f64,
                limit >> 20
            )));
        }
        if Engine::detect_precompiled(bytes).is_some() {
            return Err(fail(
                "this is precompiled native code; give the .wasm component instead".into(),
            ));
        }
        if !bytes.starts_with(b"\0asm") {
            return Err(fail("not a WebAssembly file (no \\0asm header)".into()));
        }
        if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
            return Err(fail(
                "this is a core Wasm module, not a component; build for the wasm32-wasip2 target"
                    .into(),
            ));
        }
        if let Some(component) = self.inner.compiled.lock().expect("cache lock").get(&full) {
            return Ok(Compiled {
                component: component.clone(),
                digest,
                compile_time: Duration::ZERO,
                cached: true,
            });
        }
        let start = Instant::now();
        let (component, cached) = match self.read_cached(&full) {
            Some(c) => (c, true),
            None => {
                let c = Component::new(&self.inner.engine, bytes)
                    .map_err(|e| fail(format!("not a valid component: {e:#}")))?;
                self.write_cached(&full, &c);
                (c, false)
            }
        };
        // Pay for the copy-on-write memory image now, not on the first decision.
        let _ = component.initialize_copy_on_write_image();
        let compile_time = start.elapsed();
        self.inner
            .compiled
            .lock()
            .expect("cache lock")
            .insert(full, component.clone());
        Ok(Compiled {
            component,
            digest,
            compile_time,
            cached,
        })
    }

    fn cache_path(&self, full: &[u8; 32]) -> Option<PathBuf> {
        use std::hash::{Hash, Hasher};
        let dir = self.inner.config.cache_dir.as_ref()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner
            .engine
            .precompile_compatibility_hash()
            .hash(&mut h);
        let hex: String = full.iter().map(|b| format!("{b:02x}")).collect();
        Some(dir.join(format!("{hex}-{:016x}.cwasm", h.finish())))
    }

    fn read_cached(&self, full: &[u8; 32]) -> Option<Component> {
        let path = self.cache_path(full)?;
        if !path.exists() {
            return None;
        }
        match deserialize(&self.inner.engine, &path) {
            Ok(c) => Some(c),
            Err(e) => {
                // A stale or damaged entry is not an error: recompile.
                tracing::warn!(path = %path.display(), error = %e, "dropping unusable compiled-policy cache entry");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    fn write_cached(&self, full: &[u8; 32], component: &Component) {
        let Some(path) = self.cache_path(full) else {
            return;
        };
        let write = || -> std::io::Result<()> {
            let dir = path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            let bytes = component.serialize().map_err(std::io::Error::other)?;
            let tmp = dir.join(format!(".{}.tmp", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            tracing::warn!(path = %path.display(), error = %e, "could not cache compiled policy");
        }
    }
}

/// Loads compiled code written by [`Runtime::write_cached`].
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // Read into memory rather than map the file: a mapped file truncated by
    // someone else would crash the process instead of failing this load.
    let bytes = dovetail_input::read_bytes(path, "compiled policy", caps::COMPILED_POLICY)?;
    // SAFETY: only files this runtime wrote into its own cache directory are
    // read, named by the source digest and the engine's compatibility hash;
    // wasmtime still checks the embedded engine metadata and refuses a mismatch.
    unsafe { Component::deserialize(engine, bytes) }
}
