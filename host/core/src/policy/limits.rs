//! How large a request document may be, row by row.
//!
//! Far above any real cluster (AWS offers about 16,000 instance type × zone ×
//! capacity type rows in its largest region; Karpenter plans a few thousand
//! NodeClaims per round) and far below what exhausts memory once the rows
//! become columns. Documented in `docs/limits.md`.

/// `offerings[]` rows of a selection request.
pub const MAX_OFFERINGS: usize = 200_000;
/// `requests[]` rows (planned NodeClaims) of a selection request.
pub const MAX_LAUNCH_REQUESTS: usize = 10_000;
/// `min_values[]` rows of one launch request (six attributes can be counted).
pub const MAX_MIN_VALUES: usize = 64;
/// Compatible offering rows summed over all launch requests, counting an
/// omitted `compatible` as every offering: the wire table holds each one.
pub const MAX_COMPATIBLE_ROWS: usize = 20_000_000;
/// `candidates[]` rows (nodes) of a consolidation request.
pub const MAX_CANDIDATES: usize = 100_000;
/// `node_pools[]` rows of a consolidation request.
pub const MAX_NODE_POOLS: usize = 10_000;
/// `moves[]` rows of a consolidation request.
pub const MAX_MOVES: usize = 100_000;
/// Removed nodes summed over all moves.
pub const MAX_REMOVED_ROWS: usize = 1_000_000;
