//! The AWS test server: moto (EC2, SSM, SQS, IAM, EventBridge) on a free
//! loopback port, started by `tests/moto/launcher.py`, which adds the faults
//! real EC2 shows and moto does not: insufficient capacity in `CreateFleet`
//! and throttling.
//!
//! moto runs from a virtualenv that `tests/moto/install.sh` creates. Its
//! Python is found through `DOVETAIL_MOTO_PYTHON`, else
//! `DOVETAIL_MOTO_VENV/bin/python`, else
//! `${XDG_CACHE_HOME:-$HOME/.cache}/dovetail/moto-venv/bin/python` (where the
//! script installs by default). When it is missing, starting panics with the
//! install command: a test that needs the server never skips.
//!
//! The server accepts any credentials; point an SDK at [`Moto::endpoint`]
//! with dummy keys. Each [`Moto`] is its own server with its own state, so
//! tests that set faults should start their own.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The command that installs the server, named in every failure.
pub const INSTALL_COMMAND: &str = "tests/moto/install.sh";

/// How long moto may take to import and listen on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Faults the server injects. The default injects none.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Faults {
    /// Offerings without capacity in instant `CreateFleet` requests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capacity: Vec<CapacityFault>,
    /// A share of EC2 calls answered with `RequestLimitExceeded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Throttle>,
}

impl Faults {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn capacity(mut self, fault: CapacityFault) -> Self {
        self.capacity.push(fault);
        self
    }

    pub fn throttle(mut self, throttle: Throttle) -> Self {
        self.throttle = Some(throttle);
        self
    }
}

/// One (instance type, availability zone) offering that `CreateFleet`
/// cannot launch: it is reported in the response's `Errors` and the fleet
/// falls through to the next override.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityFault {
    pub instance_type: String,
    pub zone: String,
    pub code: CapacityError,
    /// Only this capacity type; both when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_type: Option<CapacityType>,
}

impl CapacityFault {
    /// `InsufficientInstanceCapacity` for `instance_type` in `zone`.
    pub fn insufficient(instance_type: &str, zone: &str) -> Self {
        Self {
            instance_type: instance_type.to_owned(),
            zone: zone.to_owned(),
            code: CapacityError::InsufficientInstanceCapacity,
            capacity_type: None,
        }
    }

    /// `UnfulfillableCapacity` for `instance_type` in `zone`.
    pub fn unfulfillable(instance_type: &str, zone: &str) -> Self {
        Self {
            code: CapacityError::UnfulfillableCapacity,
            ..Self::insufficient(instance_type, zone)
        }
    }

    /// Limits the fault to one capacity type.
    pub fn only(mut self, capacity_type: CapacityType) -> Self {
        self.capacity_type = Some(capacity_type);
        self
    }
}

/// The capacity error codes EC2 returns in `CreateFleet`'s `Errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CapacityError {
    InsufficientInstanceCapacity,
    UnfulfillableCapacity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CapacityType {
    Spot,
    OnDemand,
}

/// Throttling: each EC2 call (of `actions`, or of every action when
/// `None`) is answered `RequestLimitExceeded` (HTTP 503) with probability
/// `share`, drawn from `seed`: the same calls in the same order are
/// throttled the same way on every run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Throttle {
    pub share: f64,
    pub seed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<String>>,
}

impl Throttle {
    pub fn share(share: f64, seed: u64) -> Self {
        Self {
            share,
            seed,
            actions: None,
        }
    }

    /// Limits throttling to these EC2 actions (e.g. `CreateFleet`).
    pub fn only(mut self, actions: &[&str]) -> Self {
        self.actions = Some(actions.iter().map(|a| (*a).to_owned()).collect());
        self
    }
}

/// What the server has seen since it started or [`Moto::reset_calls`],
/// keyed `service:Action` (e.g. `ec2:CreateFleet`, `sqs:ReceiveMessage`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Calls {
    /// Every call, throttled ones included.
    pub calls: BTreeMap<String, u64>,
    /// Calls answered `RequestLimitExceeded`.
    pub throttled: BTreeMap<String, u64>,
    /// `CreateFleet` error entries returned, by error code.
    pub capacity_errors: BTreeMap<String, u64>,
}

impl Calls {
    /// Calls of `action` on `service` (e.g. `"ec2"`, `"CreateFleet"`).
    pub fn of(&self, service: &str, action: &str) -> u64 {
        self.calls
            .get(&format!("{service}:{action}"))
            .copied()
            .unwrap_or(0)
    }

    /// Throttled calls of `action` on `service`.
    pub fn throttled_of(&self, service: &str, action: &str) -> u64 {
        self.throttled
            .get(&format!("{service}:{action}"))
            .copied()
            .unwrap_or(0)
    }
}

/// A running server, stopped when dropped.
pub struct Moto {
    child: Child,
    // Closing it tells the launcher to exit, even if this process is killed
    // before `drop` runs.
    _stdin: ChildStdin,
    endpoint: String,
    python: PathBuf,
    log: tempfile::NamedTempFile,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Moto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Moto")
            .field("endpoint", &self.endpoint)
            .field("pid", &self.child.id())
            .finish()
    }
}

/// The Python that runs the server (see the module docs for the order).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("DOVETAIL_MOTO_PYTHON") {
        return PathBuf::from(p);
    }
    venv().join("bin").join("python")
}

fn venv() -> PathBuf {
    if let Some(v) = std::env::var_os("DOVETAIL_MOTO_VENV") {
        return PathBuf::from(v);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect(
            "neither XDG_CACHE_HOME nor HOME is set: set DOVETAIL_MOTO_PYTHON to moto's Python",
        );
    cache.join("dovetail").join("moto-venv")
}

/// `tests/moto/launcher.py`.
pub fn launcher() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("launcher.py")
}

impl Moto {
    /// Starts a server without faults.
    pub fn start() -> Self {
        Self::start_with(&Faults::none())
    }

    /// Starts a server with `faults` in force from the first call.
    pub fn start_with(faults: &Faults) -> Self {
        Self::start_using(&python(), faults)
    }

    /// Starts a server with the given Python (which must have moto).
    pub fn start_using(python: &Path, faults: &Faults) -> Self {
        assert!(
            python.is_file(),
            "the AWS test server's Python is missing: {} does not exist. Install the server with `{INSTALL_COMMAND}` \
             (or point DOVETAIL_MOTO_PYTHON at a Python that has moto)",
            python.display()
        );
        let log = tempfile::Builder::new()
            .prefix("dovetail-moto-")
            .suffix(".log")
            .tempfile()
            .expect("create the server's log file");
        let stderr = log.reopen().expect("open the server's log file");
        let faults_json = serde_json::to_string(faults).expect("faults serialise");
        let mut child = Command::new(python)
            .arg(launcher())
            .args(["--exit-with-stdin", "--faults", &faults_json])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} for the AWS test server ({e}): install it with `{INSTALL_COMMAND}`",
                    python.display()
                )
            });
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep the pipe drained so the server never blocks writing to it.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut moto = Moto {
            child,
            _stdin: stdin,
            endpoint: String::new(),
            python: python.to_path_buf(),
            log,
            agent,
        };
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) if !line.trim().is_empty() => line,
            Ok(_) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = moto.child.wait().ok();
                moto.fail(&format!("exited before listening ({status:?})"))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                moto.fail(&format!("did not listen within {START_TIMEOUT:?}"))
            }
        };
        #[derive(Deserialize)]
        struct Ready {
            endpoint: String,
        }
        moto.endpoint = serde_json::from_str::<Ready>(&line)
            .unwrap_or_else(|e| {
                moto.fail(&format!("printed {line:?} instead of its endpoint ({e})"))
            })
            .endpoint;
        moto.wait_until_answering();
        moto
    }

    /// `http://127.0.0.1:PORT`: the endpoint URL for every AWS client.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Replaces the faults in force; the throttling draw restarts from its seed.
    pub fn set_faults(&self, faults: &Faults) {
        let body = serde_json::to_string(faults).expect("faults serialise");
        let (status, answer) = self.control("POST", "/_dovetail/faults", Some(&body));
        assert_eq!(
            status, 200,
            "the AWS test server refused faults {body}: {answer}"
        );
    }

    pub fn clear_faults(&self) {
        self.set_faults(&Faults::none());
    }

    /// Adds SSM public parameters that moto lacks (`/aws/service/...`: the
    /// EKS and Bottlerocket AMI aliases) in `region`; the SSM API itself
    /// refuses names under `/aws/`, as AWS does. A later value for the same
    /// name becomes its next version.
    pub fn add_public_parameters(&self, region: &str, parameters: &[(&str, &str)]) {
        let parameters: BTreeMap<&str, &str> = parameters.iter().copied().collect();
        let body = serde_json::json!({"region": region, "parameters": parameters}).to_string();
        let (status, answer) = self.control("POST", "/_dovetail/public-parameters", Some(&body));
        assert_eq!(
            status, 200,
            "the AWS test server refused public parameters {body}: {answer}"
        );
    }

    /// Calls seen since start or the last [`Moto::reset_calls`].
    pub fn calls(&self) -> Calls {
        let (status, answer) = self.control("GET", "/_dovetail/calls", None);
        assert_eq!(status, 200, "the AWS test server's call counts: {answer}");
        serde_json::from_str(&answer).expect("call counts are JSON")
    }

    pub fn reset_calls(&self) {
        let (status, answer) = self.control("DELETE", "/_dovetail/calls", None);
        assert_eq!(status, 200, "resetting call counts: {answer}");
    }

    /// Back to a fresh server: moto's state (instances, templates, queues,
    /// added public parameters, ...), faults and call counts.
    pub fn reset(&self) {
        let (status, answer) = self.control("POST", "/moto-api/reset", Some(""));
        assert_eq!(status, 200, "resetting the AWS test server: {answer}");
        self.clear_faults();
        self.reset_calls();
    }

    /// What the server logged (Python errors behind an HTTP 500 land here).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    fn control(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let url = format!("{}{path}", self.endpoint);
        let result = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or("")),
        };
        let mut response = result.unwrap_or_else(|e| {
            panic!(
                "the AWS test server at {} did not answer {method} {path}: {e}\n--- server log ---\n{}",
                self.endpoint,
                self.log()
            )
        });
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .unwrap_or_else(|e| format!("(unreadable body: {e})"));
        (status, text)
    }

    fn wait_until_answering(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let url = format!("{}/_dovetail/faults", self.endpoint);
        loop {
            match self.agent.get(&url).call() {
                Ok(r) if r.status() == 200 => return,
                answer if Instant::now() > deadline => {
                    self.fail(&format!("does not answer at {url}: {answer:?}"))
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn fail(&self, what: &str) -> ! {
        let mut log = String::new();
        if let Ok(mut f) = std::fs::File::open(self.log.path()) {
            let _ = f.read_to_string(&mut log);
        }
        panic!(
            "the AWS test server ({} {}) {what}. If moto is not installed, run `{INSTALL_COMMAND}`.\n--- server log ---\n{log}",
            self.python.display(),
            launcher().display(),
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
