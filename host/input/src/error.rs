//! Why a user-named file could not be used, one variant per cause, each
//! with the fix that matches it.

use std::fmt;
use std::path::PathBuf;

/// A file that could not be read as the thing it was supposed to be.
#[derive(Debug, thiserror::Error)]
#[error("{what} {}: {problem}; fix: {}", path.display(), problem.fix(what))]
pub struct InputError {
    /// The path as the user gave it.
    pub path: PathBuf,
    /// What the file was supposed to hold: "policy", "scenario", "config", …
    pub what: &'static str,
    pub problem: Problem,
}

impl InputError {
    pub fn new(path: impl Into<PathBuf>, what: &'static str, problem: Problem) -> Self {
        Self {
            path: path.into(),
            what,
            problem,
        }
    }

    /// What to do about it.
    pub fn fix(&self) -> String {
        self.problem.fix(self.what)
    }
}

/// What was wrong with the file.
#[derive(Debug)]
#[non_exhaustive]
pub enum Problem {
    /// Nothing at that path.
    NotFound,
    /// A directory where a file was expected.
    IsDirectory,
    /// A file where a directory was expected.
    NotADirectory,
    /// A FIFO, socket or device: reading it could block or never end.
    NotAFile {
        kind: &'static str,
    },
    /// Symbolic links that lead back to themselves.
    SymlinkLoop,
    /// A symbolic link to something that does not exist.
    DanglingSymlink {
        target: PathBuf,
    },
    PermissionDenied,
    /// Over the size limit for its kind; `size` when the file system knew it
    /// before reading.
    TooLarge {
        cap: u64,
        size: Option<u64>,
    },
    /// A text file with nothing but white space in it.
    Empty,
    /// Binary data where text was expected.
    NotText {
        offset: usize,
        nul: bool,
    },
    /// Anything else the operating system reported.
    Io(std::io::Error),
}

impl Problem {
    fn fix(&self, what: &str) -> String {
        match self {
            Problem::NotFound => "check the path (relative paths start from the current directory)".into(),
            Problem::IsDirectory => format!("name the {what} file itself, not the directory holding it"),
            Problem::NotADirectory => format!("name the {what}, a directory, not a file"),
            Problem::NotAFile { .. } => format!(
                "give a regular file; to use a stream, save it to a file first (at most the {what} size limit)"
            ),
            Problem::SymlinkLoop => {
                "the symbolic links lead back to themselves: point the link at the real file (`ls -l` shows where each one leads)".into()
            }
            Problem::DanglingSymlink { .. } => {
                "the link's target is missing: restore it, or point the link at the real file".into()
            }
            Problem::PermissionDenied => {
                "make the file readable for this user (`ls -l` shows its permissions), or run as a user who may read it".into()
            }
            Problem::TooLarge { .. } => format!(
                "this is far larger than any {what} should be: check it is the right file (see docs/limits.md)"
            ),
            Problem::Empty => format!("write the {what} into the file, or leave the option out"),
            Problem::NotText { .. } => format!(
                "give the {what} as UTF-8 text; this looks like binary data, so check it is the right file"
            ),
            Problem::Io(_) => "check the file and the disk it is on, then retry".into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotFound => f.write_str("does not exist"),
            Problem::IsDirectory => f.write_str("is a directory, not a file"),
            Problem::NotADirectory => f.write_str("is a file, not a directory"),
            Problem::NotAFile { kind } => write!(f, "is a {kind}, not a file"),
            Problem::SymlinkLoop => f.write_str("is a symbolic link loop"),
            Problem::DanglingSymlink { target } => write!(
                f,
                "is a dangling symbolic link: its target {} does not exist",
                target.display()
            ),
            Problem::PermissionDenied => f.write_str("is not readable (permission denied)"),
            Problem::TooLarge {
                cap,
                size: Some(size),
            } => write!(
                f,
                "is {}, over the {} limit",
                show_size(*size),
                show_size(*cap)
            ),
            Problem::TooLarge { cap, size: None } => {
                write!(f, "is over the {} limit", show_size(*cap))
            }
            Problem::Empty => f.write_str("is empty"),
            Problem::NotText { offset, nul: true } => {
                write!(f, "is not a text file (a NUL byte at byte {offset})")
            }
            Problem::NotText { offset, nul: false } => {
                write!(f, "is not a text file (not UTF-8 at byte {offset})")
            }
            Problem::Io(e) => write!(f, "cannot be read: {e}"),
        }
    }
}

/// `32 MiB`, `1.5 GiB`, `800 bytes`: sizes as people read them.
pub fn show_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, scale) in UNITS {
        if bytes >= scale {
            let value = bytes as f64 / scale as f64;
            return if bytes.is_multiple_of(scale) {
                format!("{} {unit}", bytes / scale)
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{bytes} bytes")
}
