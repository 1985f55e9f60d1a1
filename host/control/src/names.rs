//! NodeClaim names: `<prefix>-<five characters>`, as Kubernetes'
//! `generateName` makes them, drawn from a seeded generator so a simulation
//! replays exactly.

use dovetail_core::rng::SplitMix;
use dovetail_core::sym::Sym;

use crate::state::ClusterState;

const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

#[derive(Debug, Clone)]
pub struct Names {
    rng: SplitMix,
}

impl Names {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: SplitMix::new(seed),
        }
    }

    /// A name no NodeClaim or node in `state` has, nor any in `taken`.
    pub fn next(&mut self, prefix: &str, state: &ClusterState, taken: &[Sym]) -> Sym {
        loop {
            let mut bits = self.rng.next_u64();
            let mut name = String::with_capacity(prefix.len() + 6);
            name.push_str(prefix);
            name.push('-');
            for _ in 0..5 {
                name.push(ALPHABET[(bits % ALPHABET.len() as u64) as usize] as char);
                bits /= ALPHABET.len() as u64;
            }
            let sym = Sym::new(&name);
            if state.claim_id(sym).is_none()
                && state.node_id(sym).is_none()
                && !taken.contains(&sym)
            {
                return sym;
            }
        }
    }
}
