//! What a policy instance can see: nothing but its request and a log.
//!
//! Rust guests built with std import a handful of WASI interfaces. They are
//! satisfied by an empty context: no environment, arguments, preopened
//! directories or sockets; stdout and stderr go to small in-memory buffers
//! (stderr is kept to explain panics); the clocks read the request's `now` and
//! never move; randomness is seeded from the request's seed. Any other import
//! is refused when the policy is loaded.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::log::{Host as LogHost, Level};

/// Bytes of guest stdout/stderr kept per decision.
const OUTPUT_CAPACITY: usize = 16 * 1024;
/// Bytes of log messages accepted per decision; the rest is dropped.
const LOG_BUDGET: usize = 64 * 1024;

/// Interface name prefixes a policy may import. Versions are matched by the
/// linker; these only keep capabilities out.
pub const ALLOWED_IMPORTS: [&str; 6] = [
    "dovetail:policy/",
    "wasi:io/",
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
];

/// Why an import is refused, or `None` when it is allowed.
pub fn forbidden_import(name: &str) -> Option<String> {
    if ALLOWED_IMPORTS.iter().any(|p| name.starts_with(p))
        && (!name.starts_with("dovetail:policy/")
            || name.starts_with("dovetail:policy/log@")
            || name.starts_with("dovetail:policy/types@"))
    {
        return None;
    }
    let what = if name.starts_with("wasi:sockets/") || name.starts_with("wasi:http/") {
        "network access"
    } else {
        "an interface"
    };
    Some(format!(
        "imports `{name}`: {what} Dovetail does not give policies; only dovetail:policy/log and the WASI interfaces Rust std links (io, cli, clocks, random, filesystem — all empty) are allowed"
    ))
}

/// Per-store state: limits, the empty WASI context and the log sink.
pub struct HostState {
    pub(crate) memory_limit: usize,
    /// This call's wall-clock allowance, for messages.
    pub(crate) deadline: Duration,
    /// Set when the guest tried to grow past `memory_limit`.
    pub(crate) memory_exceeded: Option<usize>,
    pub(crate) policy: String,
    log_budget: usize,
    wasi: WasiCtx,
    table: ResourceTable,
    stderr: MemoryOutputPipe,
}

struct FixedClock(Duration);

impl HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        self.0
    }
}

impl HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }
    fn now(&self) -> u64 {
        self.0.as_nanos() as u64
    }
}

impl HostState {
    pub fn new(policy: &str, memory_limit: usize, now_ms: u64, seed: u64) -> Self {
        let stderr = MemoryOutputPipe::new(OUTPUT_CAPACITY);
        let now = Duration::from_millis(now_ms);
        let wasi = WasiCtx::builder()
            .stdout(MemoryOutputPipe::new(OUTPUT_CAPACITY))
            .stderr(stderr.clone())
            .wall_clock(FixedClock(now))
            .monotonic_clock(FixedClock(now))
            .secure_random(StdRng::seed_from_u64(seed))
            .insecure_random(StdRng::seed_from_u64(seed.rotate_left(17)))
            .insecure_random_seed(u128::from(seed))
            .max_random_size(64 * 1024)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            memory_limit,
            deadline: Duration::ZERO,
            memory_exceeded: None,
            policy: policy.to_string(),
            log_budget: LOG_BUDGET,
            wasi,
            table: ResourceTable::new(),
            stderr,
        }
    }

    /// `; it wrote: …` with the end of the guest's stderr (a panic message,
    /// usually), or nothing when it wrote nothing.
    pub fn stderr_note(&self) -> String {
        let tail = self.stderr_tail();
        if tail.is_empty() {
            tail
        } else {
            format!("; it wrote: {tail}")
        }
    }

    fn stderr_tail(&self) -> String {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        let start = text.len().saturating_sub(600);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].replace('\n', " | ")
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_exceeded = Some(desired);
            return Err(wasmtime::format_err!(
                "memory limit of {} MiB exceeded: the policy asked for {} MiB",
                self.memory_limit >> 20,
                desired >> 20
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl LogHost for HostState {
    fn enabled(&mut self, level: Level) -> bool {
        match level {
            Level::Trace => tracing::enabled!(target: "dovetail::guest", tracing::Level::TRACE),
            Level::Debug => tracing::enabled!(target: "dovetail::guest", tracing::Level::DEBUG),
            Level::Info => tracing::enabled!(target: "dovetail::guest", tracing::Level::INFO),
            Level::Warn => tracing::enabled!(target: "dovetail::guest", tracing::Level::WARN),
            Level::Error => tracing::enabled!(target: "dovetail::guest", tracing::Level::ERROR),
        }
    }

    fn log(&mut self, level: Level, message: String) {
        if message.len() > self.log_budget {
            self.log_budget = 0;
            return;
        }
        self.log_budget -= message.len();
        let policy = self.policy.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "dovetail::guest", policy, "{message}"),
            Level::Debug => tracing::debug!(target: "dovetail::guest", policy, "{message}"),
            Level::Info => tracing::info!(target: "dovetail::guest", policy, "{message}"),
            Level::Warn => tracing::warn!(target: "dovetail::guest", policy, "{message}"),
            Level::Error => tracing::error!(target: "dovetail::guest", policy, "{message}"),
        }
    }
}

impl crate::bindings::types::Host for HostState {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_logging_and_std_wasi_are_allowed() {
        assert!(forbidden_import("dovetail:policy/log@0.1.0").is_none());
        assert!(forbidden_import("dovetail:policy/types@0.1.0").is_none());
        assert!(forbidden_import("dovetail:policy/secrets@0.1.0").is_some());
        assert!(forbidden_import("wasi:cli/environment@0.2.6").is_none());
        assert!(forbidden_import("wasi:filesystem/preopens@0.2.6").is_none());
        let net = forbidden_import("wasi:sockets/tcp@0.2.6").unwrap();
        assert!(net.contains("network access"), "{net}");
        assert!(forbidden_import("wasi:http/outgoing-handler@0.2.6").is_some());
        assert!(forbidden_import("acme:spy/exfiltrate").is_some());
    }
}
