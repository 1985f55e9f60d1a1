//! Every way a policy can fail, classified, with a message that names the
//! policy and its digest and says what to fix.

use std::fmt;

/// What went wrong, coarsely: each class has its own counter and fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// The file could not become a usable policy: unreadable, empty, too big,
    /// not a component, wrong world or version, forbidden imports, or it
    /// failed its trial instantiation, `describe` or smoke call.
    Load,
    /// The operator's config was refused by `configure`.
    Config,
    /// The wall-clock deadline passed (epoch interruption).
    Timeout,
    /// The fuel budget ran out (deterministic mode).
    OutOfFuel,
    /// The policy asked for more memory than its cap.
    OutOfMemory,
    /// The policy trapped: a panic, `unreachable`, a stack overflow, a bad
    /// memory access.
    Trap,
    /// The policy returned an error on purpose.
    PolicyError,
    /// The policy answered, but the answer breaks the contract.
    InvalidOutput,
    /// The host could not run the policy (e.g. no instance slot free).
    Host,
    /// The policy's file (or its config's, or its directory) could not be
    /// read: missing, a directory, a link loop, a dangling link, not
    /// readable, too large, not a file. Each cause carries its own fix.
    File,
}

impl FailureClass {
    pub const ALL: [FailureClass; 10] = [
        FailureClass::Load,
        FailureClass::Config,
        FailureClass::Timeout,
        FailureClass::OutOfFuel,
        FailureClass::OutOfMemory,
        FailureClass::Trap,
        FailureClass::PolicyError,
        FailureClass::InvalidOutput,
        FailureClass::Host,
        FailureClass::File,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Load => "load",
            FailureClass::Config => "config",
            FailureClass::Timeout => "timeout",
            FailureClass::OutOfFuel => "out-of-fuel",
            FailureClass::OutOfMemory => "out-of-memory",
            FailureClass::Trap => "trap",
            FailureClass::PolicyError => "policy-error",
            FailureClass::InvalidOutput => "invalid-output",
            FailureClass::Host => "host",
            FailureClass::File => "file",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            FailureClass::Load => {
                "build the policy with `cargo build --release --target wasm32-wasip2` against wit/policy.wit (dovetail:policy@0.1.x) and check it with `dovetail policy validate`"
            }
            FailureClass::Config => "correct the field in the policy's .config.json",
            FailureClass::Timeout => {
                "make the policy faster or raise its deadline (--timeout-ms); it must not loop forever"
            }
            FailureClass::OutOfFuel => "make the policy cheaper or raise its fuel budget",
            FailureClass::OutOfMemory => {
                "allocate less (requests are columns: avoid copying them) or raise the memory cap"
            }
            FailureClass::Trap => {
                "the policy crashed: reproduce with `dovetail policy test` and fix the panic"
            }
            FailureClass::PolicyError => "see the policy's message; it refused the request",
            FailureClass::InvalidOutput => {
                "return one entry per request, only offered rows, no duplicates, finite scores"
            }
            FailureClass::Host => "retry; if it persists, lower concurrency or report it",
            FailureClass::File => "check the path names a readable policy file",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified policy failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyFailure {
    /// The policy's name when known, else where it came from.
    pub policy: String,
    /// `sha256:` and the first 12 hex digits of the component, when known.
    pub digest: String,
    pub class: FailureClass,
    pub detail: String,
    /// A fix for this failure's particular cause, where the class's own
    /// is too coarse (a file problem).
    fix: Option<String>,
}

impl PolicyFailure {
    pub fn new(
        policy: impl Into<String>,
        digest: impl Into<String>,
        class: FailureClass,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            policy: policy.into(),
            digest: digest.into(),
            class,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A file that could not be read, with the fix for its cause.
    pub fn unreadable(e: &dovetail_input::InputError) -> Self {
        Self {
            policy: e.path.display().to_string(),
            digest: String::new(),
            class: FailureClass::File,
            detail: format!("the {} {}", e.what, e.problem),
            fix: Some(e.fix()),
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> &str {
        self.fix.as_deref().unwrap_or(self.class.hint())
    }
}

impl fmt::Display for PolicyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digest = if self.digest.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.digest)
        };
        write!(
            f,
            "policy `{}`{digest} failed [{}]: {}; fix: {}",
            self.policy,
            self.class,
            self.detail,
            self.hint()
        )
    }
}
