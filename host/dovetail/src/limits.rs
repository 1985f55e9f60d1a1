//! The counts, sizes and durations the command line accepts, checked as the
//! arguments are parsed, before any work starts (docs/limits.md,
//! "Command-line counts and durations"). Each limit sits far above real use
//! and far below what would exhaust a 24 GiB machine; an error names the
//! value, the limit and what to give instead. A negative number is read as a
//! number (not as a flag) and refused as one.

/// The range a count or duration flag accepts, and why its top is where it is.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub min: u64,
    pub max: u64,
    /// What is counted, plural: `pods`, `ms`.
    pub unit: &'static str,
    /// Why more is refused, for the error.
    pub why: &'static str,
}

impl Limit {
    const fn new(min: u64, max: u64, unit: &'static str, why: &'static str) -> Self {
        Self {
            min,
            max,
            unit,
            why,
        }
    }

    /// `1 to 200,000 pods`.
    fn range(&self) -> String {
        format!("{} to {} {}", count(self.min), count(self.max), self.unit)
    }

    /// `text` as a number within the limit, or why not.
    pub fn parse(&self, text: &str) -> Result<u64, String> {
        let t = text.trim().replace('_', "");
        let Ok(n) = t.parse::<u64>() else {
            if let Some(digits) = t.strip_prefix('-')
                && !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(format!(
                    "must be ≥ {}: give {} (docs/limits.md)",
                    self.min,
                    self.range()
                ));
            }
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                // Digits only, yet no u64: far above any limit.
                return Err(self.above(text));
            }
            return Err(format!(
                "`{text}` is not a whole number; give {} (docs/limits.md)",
                self.range()
            ));
        };
        self.check(n)
    }

    /// `n` within the limit, or why not.
    pub fn check(&self, n: u64) -> Result<u64, String> {
        if n < self.min {
            return Err(format!(
                "must be ≥ {}: give {} (docs/limits.md)",
                self.min,
                self.range()
            ));
        }
        if n > self.max {
            return Err(self.above(&count(n)));
        }
        Ok(n)
    }

    fn above(&self, shown: &str) -> String {
        format!(
            "{shown} is above the limit of {} {} (docs/limits.md): {}; give {}",
            count(self.max),
            self.unit,
            self.why,
            self.range()
        )
    }

    /// A clap value parser for a `usize` flag.
    pub fn count(self) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
        move |text| {
            self.parse(text)
                .and_then(|n| usize::try_from(n).map_err(|_| self.above(text)))
        }
    }

    /// A clap value parser for a `u64` flag.
    pub fn number(self) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync + 'static {
        move |text| self.parse(text)
    }
}

/// `1,047`: the simulator's thousands separator, so both speak alike.
pub use dovetail_sim::limits::count;

/// A product of counts within `max`, or an error naming the factors, the
/// limit and `fix`.
pub fn product(factors: &[(&str, u64)], max: u64, unit: &str, fix: &str) -> anyhow::Result<u64> {
    let total = factors.iter().fold(1u64, |a, (_, n)| a.saturating_mul(*n));
    if total > max {
        anyhow::bail!(
            "{} = {} {unit}, above the limit of {} (docs/limits.md); {fix}",
            factors
                .iter()
                .map(|(flag, n)| format!("{flag} {}", count(*n)))
                .collect::<Vec<_>>()
                .join(" × "),
            count(total),
            count(max)
        );
    }
    Ok(total)
}

// `dovetail bench scheduling`.
pub const SCHEDULING_PODS: Limit = Limit::new(
    1,
    200_000,
    "pods",
    "ten times Karpenter's largest benchmark size; a round holds every pod and its plan in memory",
);
pub const INSTANCE_TYPES: Limit = Limit::new(
    1,
    5_000,
    "instance types",
    "AWS sells about 1,000 instance types",
);
/// Pods × iterations of one scheduling benchmark: every run's plan is kept
/// until the median is taken.
pub const SCHEDULING_POD_ROUNDS: u64 = 2_000_000;

// `dovetail bench consolidation`.
pub const CONSOLIDATION_NODES: Limit = Limit::new(
    1,
    20_000,
    "nodes",
    "four times Kubernetes' supported 5,000 nodes; every candidate's what-if walks the cluster",
);
pub const CONSOLIDATION_PODS: Limit = Limit::new(
    0,
    500_000,
    "pods",
    "more than three times Kubernetes' supported 150,000 pods per cluster",
);

/// Runs per size of `bench scheduling` and `bench consolidation`, and full
/// lists of `bench apiserver`.
pub const BENCH_ITERATIONS: Limit = Limit::new(
    1,
    100,
    "iterations",
    "the median of a few runs is reported; every run's result is kept until then",
);

// `dovetail bench apiserver` and `dovetail bench controller`.
pub const API_PODS: Limit = Limit::new(
    0,
    200_000,
    "pods",
    "the in-memory API server keeps every object and its JSON; 20,000 pods take about 600 MiB",
);
pub const API_NODES: Limit = Limit::new(
    0,
    20_000,
    "nodes",
    "four times Kubernetes' supported 5,000 nodes",
);
pub const WATCHERS: Limit = Limit::new(
    0,
    1_000,
    "watchers",
    "each watcher receives every write, so watchers × writes events are delivered",
);
pub const WATCHED_WRITES: Limit =
    Limit::new(0, 1_000_000, "writes", "each write reaches every watcher");
pub const CONCURRENCY: Limit = Limit::new(
    1,
    1_024,
    "requests",
    "beyond a few dozen requests in flight the server's cores, not the client, set the pace",
);
pub const PENDING: Limit = Limit::new(
    1,
    20_000,
    "pods",
    "a provisioning burst far larger than a real one; each needs a NodeClaim and a node",
);
pub const MESSAGES: Limit = Limit::new(
    1,
    100_000,
    "messages",
    "larger runs only measure the test server, not the interruption loop",
);
pub const SWAPS: Limit = Limit::new(
    1,
    100,
    "swaps",
    "the median of a few policy updates is reported",
);

// `dovetail policy bench` and `bench-reload`.
pub const OFFERINGS: Limit = Limit::new(
    1,
    100_000,
    "offerings",
    "a real request has a few hundred; the AWS catalog has about 25,000 offerings in a region",
);
pub const LAUNCHES: Limit = Limit::new(
    1,
    10_000,
    "launches",
    "a provisioning round rarely needs more than a few thousand NodeClaims",
);
pub const POLICY_ITERATIONS: Limit = Limit::new(
    1,
    1_000_000,
    "iterations",
    "one latency sample per decision is kept; the default 2,000 gives stable percentiles",
);
/// Offerings × launches of one synthetic request.
pub const REQUEST_ROWS: u64 = 10_000_000;
/// Offering rows decided over a whole `policy bench` (iterations ×
/// offerings × launches): minutes of work.
pub const BENCH_ROWS: u64 = 500_000_000;
/// Above this many rows, `policy bench` says up front that it is long.
pub const LARGE_BENCH_ROWS: u64 = 50_000_000;
pub const RELOAD_ROUNDS: Limit = Limit::new(
    1,
    200,
    "rounds",
    "each round compiles a new version (about half a second) and keeps its compiled code",
);
/// Above this many rounds, `bench-reload` says up front that it is long.
pub const LARGE_RELOAD_ROUNDS: usize = 50;

// `dovetail policy test --cases`.
/// Cases in one cases file: each runs a decision and keeps its request.
pub const POLICY_CASES: usize = 10_000;
/// Bytes of the request files one cases file names, in all (each file is
/// read once and kept, built, until the run ends).
pub const POLICY_CASES_REQUEST_BYTES: u64 = 256 << 20;

// Policy runtime settings (`policy …`, `bench`, `sim`).
pub const TIMEOUT_MS: Limit = Limit::new(
    1,
    60_000,
    "ms",
    "a decision that takes a minute has failed; shipped policies decide in milliseconds",
);
pub const FUEL: Limit = Limit::new(
    1,
    1_000_000_000_000,
    "units of fuel",
    "a hundred times the simulator's default, which no shipped policy comes near",
);
pub const MEMORY_MIB: Limit = Limit::new(
    1,
    4_096,
    "MiB",
    "per policy instance; shipped policies need a few MiB",
);
pub const WATCH_SECONDS: Limit = Limit::new(
    0,
    31_536_000,
    "seconds",
    "a year; leave --seconds out to run until interrupted",
);

pub const PUSH_WAIT_SECONDS: Limit = Limit::new(
    1,
    3_600,
    "seconds",
    "an hour; a policy that takes longer to report on has a problem to look at",
);

// `dovetail dev`.
/// How long a launched node may take to turn Ready.
pub const NODE_READY_AFTER_MAX: std::time::Duration = std::time::Duration::from_secs(3_600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_in_range_parse() {
        assert_eq!(SCHEDULING_PODS.parse("1"), Ok(1));
        assert_eq!(SCHEDULING_PODS.parse("200000"), Ok(200_000));
        assert_eq!(SCHEDULING_PODS.parse("20_000"), Ok(20_000));
        assert_eq!(CONSOLIDATION_PODS.parse("0"), Ok(0));
        assert_eq!(POLICY_ITERATIONS.count()("2000"), Ok(2000));
    }

    #[test]
    fn too_large_names_the_value_the_limit_and_why() {
        let e = SCHEDULING_PODS.parse("10000000").unwrap_err();
        assert!(
            e.starts_with(
                "10,000,000 is above the limit of 200,000 pods (docs/limits.md): ten times"
            ),
            "{e}"
        );
        assert!(e.ends_with("give 1 to 200,000 pods"), "{e}");
        // Past u64 too.
        let e = POLICY_ITERATIONS
            .parse("99999999999999999999999")
            .unwrap_err();
        assert!(e.contains("above the limit of 1,000,000 iterations"), "{e}");
    }

    #[test]
    fn negative_and_zero_name_the_minimum() {
        let e = POLICY_ITERATIONS.parse("-1").unwrap_err();
        assert_eq!(
            e,
            "must be ≥ 1: give 1 to 1,000,000 iterations (docs/limits.md)"
        );
        let e = CONSOLIDATION_PODS.parse("-5").unwrap_err();
        assert!(e.starts_with("must be ≥ 0: give 0 to 500,000 pods"), "{e}");
        let e = POLICY_ITERATIONS.parse("0").unwrap_err();
        assert!(e.starts_with("must be ≥ 1"), "{e}");
    }

    #[test]
    fn words_are_not_numbers() {
        let e = OFFERINGS.parse("many").unwrap_err();
        assert!(
            e.starts_with("`many` is not a whole number; give 1 to 100,000"),
            "{e}"
        );
        assert!(OFFERINGS.parse("1.5").is_err());
        assert!(OFFERINGS.parse("-").is_err());
    }

    #[test]
    fn every_limit_is_a_range() {
        for l in [
            SCHEDULING_PODS,
            INSTANCE_TYPES,
            CONSOLIDATION_NODES,
            CONSOLIDATION_PODS,
            BENCH_ITERATIONS,
            API_PODS,
            API_NODES,
            WATCHERS,
            WATCHED_WRITES,
            CONCURRENCY,
            PENDING,
            SWAPS,
            OFFERINGS,
            LAUNCHES,
            POLICY_ITERATIONS,
            RELOAD_ROUNDS,
            TIMEOUT_MS,
            FUEL,
            MEMORY_MIB,
            WATCH_SECONDS,
            PUSH_WAIT_SECONDS,
        ] {
            assert!(l.min <= l.max, "{l:?}");
            assert!(
                l.check(l.max).is_ok() && l.check(l.max + 1).is_err(),
                "{l:?}"
            );
        }
        // A policy's memory in bytes never overflows.
        assert!(MEMORY_MIB.max.checked_shl(20).is_some());
    }

    #[test]
    fn products_name_their_factors() {
        assert_eq!(
            product(&[("--a", 3), ("--b", 4)], 12, "rows", "lower --a").unwrap(),
            12
        );
        let e = product(&[("--a", 3), ("--b", 5)], 12, "rows", "lower --a")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "--a 3 × --b 5 = 15 rows, above the limit of 12 (docs/limits.md); lower --a"
        );
    }
}
