//! Reading what users hand Dovetail, bounded: files are read with a size
//! cap and refused when they are streams or devices, YAML is refused past a
//! nesting depth before a parser sees it, and every refusal names the file,
//! what it was meant to be, the cause and the fix for that cause.
//!
//! The limits are documented in `docs/limits.md` ("Files").

mod error;
mod read;
mod yaml_depth;

pub use error::{InputError, Problem, show_size};
pub use read::{check_dir, read_bytes, read_optional, read_text};
pub use yaml_depth::{MAX_YAML_DEPTH, YamlTooDeep, check_yaml_depth};

/// Size limits per kind of file: far above any real one, far below what
/// would strain a machine to read and parse.
pub mod caps {
    /// A policy component (`.wasm`).
    pub const POLICY: u64 = 32 << 20;
    /// A policy's JSON config.
    pub const CONFIG: u64 = 1 << 20;
    /// A scenario for `dovetail sim`.
    pub const SCENARIO: u64 = 64 << 20;
    /// A manifest file a scenario names (`cluster.files`).
    pub const MANIFEST: u64 = 64 << 20;
    /// An instance-type catalog (`dovetail dev --catalog`).
    pub const CATALOG: u64 = 16 << 20;
    /// A decision request (`dovetail policy test --input`).
    pub const REQUEST: u64 = 64 << 20;
    /// Golden cases for a policy (`dovetail policy test --cases`), YAML.
    pub const CASES: u64 = 16 << 20;
    /// A compiled policy in the runtime's cache directory.
    pub const COMPILED_POLICY: u64 = 1 << 30;
}
