//! A policy that behaves until asked not to. The misbehaviour is chosen by
//! the config's `mode` and triggered only by requests whose seed is
//! [`TRIGGER_SEED`], so the policy passes its load-time smoke calls and the
//! tests decide when it attacks. With `trigger: always` it attacks every
//! request but the smoke calls (whose seed is [`SMOKE_SEED`]): what a policy
//! broken on real rounds looks like, e.g. in the simulator.

use dovetail_policy_sdk::prelude::*;

/// Requests with this seed trigger the configured misbehaviour.
pub const TRIGGER_SEED: u64 = 666;

/// The seed of the host's load-time smoke requests.
pub const SMOKE_SEED: u64 = 7;

#[derive(Default)]
pub struct Hostile {
    mode: String,
    always: bool,
}

impl Hostile {
    fn triggered(&self, seed: u64) -> bool {
        if self.always {
            seed != SMOKE_SEED
        } else {
            seed == TRIGGER_SEED
        }
    }
}

impl Policy for Hostile {
    const NAME: &'static str = "hostile";
    const VERSION: &'static str = "0.0.1";

    fn configure(&mut self, config: &Config) -> Result<(), ConfigError> {
        config.deny_unknown(&["mode", "trigger"])?;
        self.mode = config.string("mode", "none")?;
        self.always = match config.string("trigger", "seed")?.as_str() {
            "seed" => false,
            "always" => true,
            other => {
                return Err(ConfigError::new(
                    "trigger",
                    format!("`{other}`: expected `seed` or `always`"),
                ));
            }
        };
        Ok(())
    }
}

fn spin() -> u64 {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
        if std::hint::black_box(n) == u64::MAX {
            return n;
        }
    }
}

fn snoop() -> String {
    let file = match std::fs::read_to_string("/etc/passwd") {
        Ok(text) => format!("read {} bytes", text.len()),
        Err(e) => format!("denied ({e})"),
    };
    let vars = std::env::vars().count();
    let home = std::env::var("HOME").unwrap_or_else(|_| "unset".into());
    let args = std::env::args().count();
    let dir = match std::fs::read_dir("/") {
        Ok(d) => format!("{} entries", d.count()),
        Err(e) => format!("denied ({e})"),
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    // std seeds its hashers from the WASI random source.
    let random =
        std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 42u64);
    format!(
        "file={file}; env_vars={vars}; HOME={home}; args={args}; root_dir={dir}; now_ms={now_ms}; random={random}"
    )
}

fn recurse(depth: u64) -> u64 {
    let pad = std::hint::black_box([depth; 64]);
    if depth == u64::MAX {
        return pad[0];
    }
    recurse(depth + 1) + std::hint::black_box(pad[1])
}

impl SelectInstances for Hostile {
    fn select(&self, req: &SelectionRequest) -> Selection {
        if !self.triggered(req.seed) {
            return default_select(req);
        }
        match self.mode.as_str() {
            "loop" => vec![Ok(vec![spin() as u32])],
            "slow" => {
                // Busy for a while (hundreds of ms), then a normal answer.
                let mut n = 0u64;
                while std::hint::black_box(n) < 300_000_000 {
                    n += 1;
                }
                default_select(req)
            }
            "memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![7u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("hostile policy panicked on purpose"),
            "unreachable" => {
                #[cfg(target_arch = "wasm32")]
                core::arch::wasm32::unreachable();
                #[cfg(not(target_arch = "wasm32"))]
                unreachable!()
            }
            "stack-overflow" => vec![Ok(vec![recurse(0) as u32])],
            "snoop" => req
                .requests
                .iter()
                .map(|_| Err(PolicyError::new(ErrorKind::Internal, snoop())))
                .collect(),
            "chatty" => {
                // 10 MiB of log lines: the host keeps a bounded amount.
                let line = "x".repeat(1024);
                for _ in 0..10_240 {
                    dovetail_policy_sdk::log(dovetail_policy_sdk::Level::Warn, &line);
                }
                default_select(req)
            }
            "out-of-range" => req.requests.iter().map(|_| Ok(vec![9_999_999])).collect(),
            "duplicate" => req.requests.iter().map(|_| Ok(vec![0, 0])).collect(),
            "wrong-count" => Vec::new(),
            _ => default_select(req),
        }
    }

    fn pick(
        &self,
        req: &SelectionRequest,
        launch: &LaunchRequest,
    ) -> Result<Vec<u32>, PolicyError> {
        default_pick(req, launch)
    }
}

impl ScoreConsolidation for Hostile {
    fn rank(&self, ctx: &ConsolidationContext) -> Result<Ranking, PolicyError> {
        if self.triggered(ctx.seed) && self.mode == "nan-score" {
            return Ok(vec![Some(f64::NAN); ctx.candidates.len()]);
        }
        if self.triggered(ctx.seed) && self.mode == "refuse" {
            return Err(PolicyError::new(ErrorKind::Internal, "refusing on purpose"));
        }
        Ok(default_rank(ctx))
    }

    fn approve_move(&self, ctx: &ConsolidationContext, mv: &ProposedMove) -> Verdict {
        approve_strictly_cheaper(ctx, mv)
    }
}

dovetail_policy_sdk::export_policy!(Hostile);
