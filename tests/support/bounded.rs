//! Running a command as a bad-input test must: with a memory cap and a
//! timeout of its own, so a regression fails the test instead of taking
//! the machine down.

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a bounded run did.
#[derive(Debug)]
pub struct Bounded {
    /// The exit code; `None` when the process was killed (by the caps or a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The largest resident set seen while it ran.
    pub peak_rss_mib: u64,
    pub elapsed: Duration,
    /// Why the run was stopped, when it was.
    pub killed: Option<String>,
}

impl Bounded {
    /// Panics, naming the run, unless it exited with `code` inside its caps.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert!(
            self.killed.is_none(),
            "{}: {self:#?}",
            self.killed.as_ref().unwrap()
        );
        assert_eq!(self.code, Some(code), "exit code: {self:#?}");
        self
    }

    /// Panics unless the run ended as a command does when its stdout's
    /// reader went away (`| head`): exit 0, not a word, no panic.
    pub fn expect_quiet_end(&self) -> &Self {
        self.expect_no_panic().expect_code(0);
        assert_eq!(self.stderr, "", "a closed pipe is not worth a word");
        self
    }

    /// Panics unless the run failed on a full disk (stdout `/dev/full`)
    /// naming `what` it could not write, with one `error:` line: exit 1.
    pub fn expect_failed_write(&self, what: &str) -> &Self {
        self.expect_no_panic().expect_code(1).expect_stderr(&[
            &format!("error: cannot write {what} to stdout: "),
            "No space left on device",
            "free space on that device or write elsewhere",
        ])
    }

    /// Panics if the run panicked.
    pub fn expect_no_panic(&self) -> &Self {
        assert!(
            !self.stderr.contains("panicked"),
            "panicked: {}",
            self.stderr
        );
        self
    }

    /// Panics unless stderr holds every one of `parts`.
    pub fn expect_stderr(&self, parts: &[&str]) -> &Self {
        for p in parts {
            assert!(
                self.stderr.contains(p),
                "stderr lacks {p:?}: {}",
                self.stderr
            );
        }
        self
    }
}

/// Caps for a bounded run.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub memory_mib: u64,
    pub timeout: Duration,
}

impl Default for Caps {
    /// Far above what refusing bad input needs, far below harm.
    fn default() -> Self {
        Caps {
            memory_mib: 1024,
            timeout: Duration::from_secs(20),
        }
    }
}

/// Runs `program args` with `stdin` (closed when `None`), sampling its
/// resident memory every 10 ms and killing it past either cap.
pub fn run(program: &Path, args: &[&str], stdin: Option<&[u8]>, caps: Caps) -> Bounded {
    run_with(
        program,
        args,
        Io {
            stdin,
            ..Io::default()
        },
        caps,
    )
}

/// Where a bounded run's stdout goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Stdout {
    /// Read into [`Bounded::stdout`].
    #[default]
    Captured,
    /// A pipe whose reader is gone before the child starts, as behind
    /// `| head` once `head` has had its fill: every write fails with EPIPE.
    Closed,
    /// `/dev/full`: every write fails with ENOSPC, as on a full disk.
    Full,
}

/// A bounded run's stdin, stdout and environment.
#[derive(Debug, Clone, Copy)]
pub struct Io<'a> {
    /// Closed when `None`.
    pub stdin: Option<&'a [u8]>,
    pub stdout: Stdout,
    /// Variables to set (`Some`) or remove (`None`); `NO_COLOR=1` is set
    /// unless this says otherwise.
    pub env: &'a [(&'a str, Option<&'a str>)],
}

impl Default for Io<'_> {
    fn default() -> Self {
        Io {
            stdin: None,
            stdout: Stdout::Captured,
            env: &[],
        }
    }
}

/// [`run`] with a choice of stdout and environment.
pub fn run_with(program: &Path, args: &[&str], io: Io<'_>, caps: Caps) -> Bounded {
    let stdout = match io.stdout {
        Stdout::Captured => Stdio::piped(),
        Stdout::Closed => {
            let (reader, writer) = std::io::pipe().expect("create a pipe");
            drop(reader);
            Stdio::from(writer)
        }
        Stdout::Full => Stdio::from(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .expect("open /dev/full (Linux provides it)"),
        ),
    };
    let mut command = Command::new(program);
    command.args(args).env("NO_COLOR", "1");
    for (name, value) in io.env {
        match value {
            Some(v) => command.env(name, v),
            None => command.env_remove(name),
        };
    }
    let mut child = command
        .stdin(if io.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    if let Some(input) = io.stdin {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_vec();
        // A process that stops reading early closes the pipe; that is its right.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let out = drain(&mut child);
    let start = Instant::now();
    let mut peak = 0;
    let mut killed = None;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        peak = peak.max(rss_mib(child.id()));
        if peak > caps.memory_mib {
            killed = Some(format!("over {} MiB (saw {peak} MiB)", caps.memory_mib));
        } else if start.elapsed() > caps.timeout {
            killed = Some(format!("still running after {:?}", caps.timeout));
        }
        if killed.is_some() {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    let (stdout, stderr) = out.join().unwrap();
    Bounded {
        code,
        stdout,
        stderr,
        peak_rss_mib: peak,
        elapsed,
        killed,
    }
}

/// Reads stdout and stderr on threads, so a chatty child never blocks on a full pipe.
fn drain(child: &mut Child) -> std::thread::JoinHandle<(String, String)> {
    use std::io::Read as _;
    // Not captured when the run sends stdout elsewhere: read as empty.
    let mut out = child.stdout.take();
    let mut err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let e = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = err.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        });
        let mut s = Vec::new();
        if let Some(out) = out.as_mut() {
            let _ = out.read_to_end(&mut s);
        }
        (String::from_utf8_lossy(&s).into_owned(), e.join().unwrap())
    })
}

fn rss_mib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}
