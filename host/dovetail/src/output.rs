//! Output as a Unix tool writes it: every write to stdout or to an output
//! file is checked, a reader that goes away (`dovetail demo | head -1`) ends
//! the command quietly, output files are opened before the work that fills
//! them, and colour goes only to a terminal and never under `NO_COLOR`.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

/// A write that failed, naming what was being written.
#[derive(Debug)]
pub struct OutputError {
    /// What and where, e.g. "the simulation report to stdout".
    what: String,
    stdout: bool,
    source: io::Error,
}

impl OutputError {
    /// Stdout's reader went away: the command has nothing left to do.
    pub fn is_closed_stdout(&self) -> bool {
        self.stdout && self.source.kind() == io::ErrorKind::BrokenPipe
    }
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write {}: {}", self.what, self.source)?;
        let fix = match self.source.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                "; free space on that device or write elsewhere"
            }
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                "; write somewhere you may write"
            }
            io::ErrorKind::BrokenPipe => "; the reading end closed before the output was done",
            _ => "",
        };
        f.write_str(fix)
    }
}

// No `source()`: the message already ends with the I/O error and its fix.
impl std::error::Error for OutputError {}

/// True when `e` (or anything it wraps) is a write to stdout whose reader is
/// gone. Dovetail then exits 0 without a word, as `| head` users expect
/// (documented in docs/limits.md, "Output").
pub fn is_closed_stdout(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<OutputError>())
        .any(OutputError::is_closed_stdout)
}

/// Stdout for one command's output; `what` names it in errors.
pub struct Stdout {
    what: String,
}

/// Stdout, for writing `what` (e.g. "the demo's timeline").
pub fn stdout(what: &str) -> Stdout {
    Stdout {
        what: format!("{what} to stdout"),
    }
}

impl Stdout {
    /// Writes one line.
    pub fn line(&self, args: fmt::Arguments<'_>) -> Result<(), OutputError> {
        let mut out = io::stdout().lock();
        out.write_fmt(args)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| self.error(e))
    }

    /// Writes `text` as it is.
    pub fn text(&self, text: &str) -> Result<(), OutputError> {
        io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| self.error(e))
    }

    fn error(&self, source: io::Error) -> OutputError {
        OutputError {
            what: self.what.clone(),
            stdout: true,
            source,
        }
    }
}

/// Writes a line to a [`Stdout`]: `outln!(out, "{x}")?`.
macro_rules! outln {
    ($out:expr) => {
        $out.line(format_args!(""))
    };
    ($out:expr, $($t:tt)*) => {
        $out.line(format_args!($($t)*))
    };
}
pub(crate) use outln;

/// Flushes stdout before the process exits; Rust's own flush at exit
/// ignores a failure, which would lose the end of the output silently.
pub fn flush_stdout() -> Result<(), OutputError> {
    io::stdout().flush().map_err(|source| OutputError {
        what: "the end of the output to stdout".to_string(),
        stdout: true,
        source,
    })
}

/// An output file opened before the work that fills it, so a bad path fails
/// in milliseconds, not after the run. Nothing is truncated until
/// [`OutputFile::write`]: a run that fails leaves an earlier file as it was,
/// and a file this created is removed again.
#[derive(Debug)]
pub struct OutputFile {
    path: PathBuf,
    what: String,
    file: Option<File>,
    created: bool,
}

impl OutputFile {
    /// Opens (creating it when absent) `path`, given by `flag`, for `what`
    /// (e.g. "the HTML report").
    pub fn open(flag: &str, path: &Path, what: &str) -> anyhow::Result<Self> {
        let existed = path.symlink_metadata().is_ok();
        let file = File::options()
            .write(true)
            .create(true)
            // Not yet: an earlier file stays until the new contents are ready.
            .truncate(false)
            .open(path)
            .map_err(|e| open_error(flag, path, what, &e))?;
        Ok(OutputFile {
            path: path.to_path_buf(),
            what: format!("{what} to {}", path.display()),
            file: Some(file),
            created: !existed,
        })
    }

    /// The path given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file's contents with `contents`.
    pub fn write(mut self, contents: &[u8]) -> Result<(), OutputError> {
        let mut file = self.file.take().expect("an output file is written once");
        let result = (|| {
            // A regular file is replaced; a pipe or device (`/dev/stdout`)
            // cannot be truncated and needs not be.
            if file.metadata()?.is_file() {
                file.set_len(0)?;
            }
            file.write_all(contents)?;
            file.flush()
        })();
        result.map_err(|source| OutputError {
            what: self.what.clone(),
            stdout: false,
            source,
        })
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        // Never written: the command failed before its output was ready.
        if self.file.take().is_some() && self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Why `path` cannot be opened for writing, with the fix for that cause.
fn open_error(flag: &str, path: &Path, what: &str, e: &io::Error) -> anyhow::Error {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fix = match e.kind() {
        io::ErrorKind::IsADirectory => "it is a directory: name a file in it instead".to_string(),
        io::ErrorKind::NotFound => format!(
            "the directory {} does not exist: create it (mkdir -p {}) or choose another path",
            parent.display(),
            parent.display()
        ),
        io::ErrorKind::NotADirectory => format!(
            "{} is not a directory: choose a path inside a directory",
            parent.display()
        ),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            "it may not be written: choose a path you may write, or fix its permissions".to_string()
        }
        _ => "choose another path".to_string(),
    };
    anyhow::anyhow!(
        "{flag} {}: cannot open {what} for writing: {e}; {fix}",
        path.display()
    )
}

/// Whether to colour what goes to `stream`: only a terminal, and never when
/// `NO_COLOR` is set to anything but the empty string (no-color.org).
pub fn colour(stream: &impl io::IsTerminal) -> bool {
    colour_for(
        stream.is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

fn colour_for(terminal: bool, no_color: Option<&OsStr>) -> bool {
    terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Whether stderr may show a progress bar: a terminal (a bar drawn into a
/// file or pipe is only noise).
pub fn stderr_is_terminal() -> bool {
    io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_for(true, None));
        assert!(colour_for(true, Some(OsStr::new(""))));
        assert!(!colour_for(true, Some(OsStr::new("1"))));
        assert!(!colour_for(false, None));
    }

    #[test]
    fn a_closed_pipe_is_quiet_only_on_stdout() {
        let pipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        let on_stdout = anyhow::Error::new(stdout("x").error(pipe())).context("outer");
        assert!(is_closed_stdout(&on_stdout));
        let on_file = anyhow::Error::new(OutputError {
            what: "x".into(),
            stdout: false,
            source: pipe(),
        });
        assert!(!is_closed_stdout(&on_file));
        let full = anyhow::Error::new(
            stdout("the report").error(io::Error::from(io::ErrorKind::StorageFull)),
        );
        assert!(!is_closed_stdout(&full));
        assert!(
            format!("{full:#}").starts_with("cannot write the report to stdout: "),
            "{full:#}"
        );
    }

    #[test]
    fn an_output_file_is_opened_up_front_and_replaced_only_when_written() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.json");
        std::fs::write(&old, "earlier report, longer than the new one").unwrap();
        drop(OutputFile::open("--json", &old, "the JSON report").unwrap());
        assert_eq!(
            std::fs::read_to_string(&old).unwrap(),
            "earlier report, longer than the new one"
        );
        let f = OutputFile::open("--json", &old, "the JSON report").unwrap();
        f.write(b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "new");

        let fresh = dir.path().join("fresh.json");
        drop(OutputFile::open("--json", &fresh, "the JSON report").unwrap());
        assert!(!fresh.exists(), "a file never written is removed again");

        let e = OutputFile::open("--json", dir.path(), "the JSON report").unwrap_err();
        assert!(format!("{e}").contains("is a directory"), "{e}");
        let missing = dir.path().join("no/such/dir/r.json");
        let e = OutputFile::open("--report", &missing, "the HTML report").unwrap_err();
        let e = format!("{e}");
        assert!(
            e.starts_with(&format!("--report {}", missing.display())),
            "{e}"
        );
        assert!(e.contains("does not exist: create it"), "{e}");
    }
}
