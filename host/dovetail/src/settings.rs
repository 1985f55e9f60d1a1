//! `dovetail controller`'s settings: flags, each also read from an
//! environment variable named as Karpenter names it where Karpenter has the
//! setting, with Karpenter's defaults, so a Karpenter deployment's
//! environment carries over.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use dovetail_kube::lease::LeaseConfig;

use crate::rate_limit::RateLimitLayer;

/// The Lease the controllers elect a leader on, unless told otherwise.
pub const DEFAULT_LEASE_NAME: &str = "dovetail-leader-election";

#[derive(Debug, Clone, Args)]
pub struct ControllerArgs {
    /// Where instances come from: `fake`, the in-memory cloud of
    /// `dovetail dev`, or `aws`.
    #[arg(long, env = "CLOUD_PROVIDER", value_enum, default_value_t = Cloud::Fake)]
    pub cloud: Cloud,
    /// The cluster's name (required with `--cloud aws`; it tags and finds
    /// the instances).
    #[arg(long, env = "CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// A provisioning batch closes after this long without a new pending
    /// pod (Go duration: `1s`, `500ms`).
    #[arg(long, env = "BATCH_IDLE_DURATION", default_value = "1s")]
    pub batch_idle_duration: GoDuration,
    /// A provisioning batch closes after this long, however busy.
    #[arg(long, env = "BATCH_MAX_DURATION", default_value = "10s")]
    pub batch_max_duration: GoDuration,
    /// Karpenter's feature gates, e.g. `SpotToSpotConsolidation=true`.
    #[arg(long, env = "FEATURE_GATES", default_value = "")]
    pub feature_gates: FeatureGates,
    /// Requests a second to the API server, sustained.
    #[arg(long, env = "KUBE_CLIENT_QPS", default_value_t = 200)]
    pub kube_client_qps: u32,
    /// Requests to the API server allowed at once above the sustained rate.
    #[arg(long, env = "KUBE_CLIENT_BURST", default_value_t = 300)]
    pub kube_client_burst: u32,
    #[arg(long, env = "LOG_LEVEL", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
    /// Port of `/metrics` (Prometheus).
    #[arg(long, env = "METRICS_PORT", default_value_t = 8080)]
    pub metrics_port: u16,
    /// Port of `/healthz` and `/readyz`.
    #[arg(long, env = "HEALTH_PROBE_PORT", default_value_t = 8081)]
    pub health_probe_port: u16,
    /// Act without electing a leader: only for a single replica.
    #[arg(long, env = "DISABLE_LEADER_ELECTION")]
    pub disable_leader_election: bool,
    /// The Lease replicas elect a leader on.
    #[arg(long, env = "LEADER_ELECTION_NAME", default_value = DEFAULT_LEASE_NAME)]
    pub leader_election_name: String,
    /// The Lease's namespace [default: the controller's namespace]
    #[arg(long, env = "LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// The controller's own namespace (the pod's, set from the downward API).
    #[arg(long, env = "SYSTEM_NAMESPACE", default_value = "kube-system")]
    pub system_namespace: String,
    /// Kubeconfig to use [default: $KUBECONFIG, then ~/.kube/config, then
    /// the pod's service account]
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig [default: its current context]
    #[arg(long, env = "KUBE_CONTEXT")]
    pub context: Option<String>,
    /// Where policy ConfigMaps are watched [default: the controller's
    /// namespace]
    #[arg(long, env = "POLICY_NAMESPACE")]
    pub policy_namespace: Option<String>,
    /// The largest policy component fetched from a URL a policy ConfigMap
    /// names, in bytes: a larger body is refused as it arrives.
    #[arg(long, env = "POLICY_FETCH_MAX_BYTES", default_value_t = crate::policy_fetch::DEFAULT_MAX_BYTES)]
    pub policy_fetch_max_bytes: u64,
    /// How long fetching one policy component may take (Go duration).
    #[arg(long, env = "POLICY_FETCH_TIMEOUT", default_value = "2m")]
    pub policy_fetch_timeout: GoDuration,
    /// Where fetched policy components are cached by digest [default:
    /// dovetail-policy-cache in the temporary directory]
    #[arg(long, env = "POLICY_CACHE_DIR")]
    pub policy_cache_dir: Option<PathBuf>,
    /// How often a disruption pass may run (Karpenter: 10s). Lower it only
    /// to watch consolidation quickly on a test cluster.
    #[arg(long, env = "DISRUPTION_POLL_INTERVAL", default_value = "10s")]
    pub disruption_poll_interval: GoDuration,
    /// How long a consolidation command waits before it is validated again
    /// and carried out (Karpenter: 15s).
    #[arg(long, env = "CONSOLIDATION_VALIDATION_DELAY", default_value = "15s")]
    pub consolidation_validation_delay: GoDuration,
    /// The CPU the pod requests, in millicores (the chart sets it from
    /// `resources.requests.cpu`, as Karpenter's does): one worker thread
    /// per whole CPU, at least 2 and at most 16.
    #[arg(long, env = "CPU_REQUESTS", default_value_t = 1000)]
    pub cpu_requests: u64,
    /// The pod's memory limit in bytes (the chart sets it from
    /// `resources.limits.memory`): the controller keeps its heap under
    /// 90 % of it, as Karpenter sets Go's soft limit. Unset or -1: no limit.
    #[arg(long, env = "MEMORY_LIMIT", default_value_t = -1, allow_negative_numbers = true)]
    pub memory_limit: i64,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// The AWS provider's settings (`--cloud aws`), named as Karpenter names
/// them. Credentials and the region come from the standard AWS chain (IRSA,
/// EKS Pod Identity, the environment, a profile); `AWS_ENDPOINT_URL`
/// points the clients at another endpoint.
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// The API server address new nodes join (the cluster's external
    /// endpoint, `https://...`).
    #[arg(long, env = "CLUSTER_ENDPOINT")]
    pub cluster_endpoint: Option<String>,
    /// The SQS queue of EC2 interruption events (EventBridge rules send spot
    /// interruptions, rebalance recommendations, scheduled changes and
    /// state changes there); no queue, no interruption handling.
    #[arg(long, env = "INTERRUPTION_QUEUE")]
    pub interruption_queue: Option<String>,
    /// Memory the hypervisor keeps of each instance type's, as a fraction
    /// (Karpenter's default 0.075 is 7.5 %).
    #[arg(long, env = "VM_MEMORY_OVERHEAD_PERCENT", default_value_t = 0.075)]
    pub vm_memory_overhead_percent: f64,
    /// Network interfaces kept back from pod networking when counting a
    /// type's pods.
    #[arg(long, env = "RESERVED_ENIS", default_value_t = 0)]
    pub reserved_enis: u32,
    /// The cluster has no route to the internet: the Pricing API is not
    /// called and the prices embedded in Dovetail are used.
    /// The cluster's service CIDR, which AL2023 nodes need (nodeadm's
    /// `cidr`) [default: the /16 holding the `kubernetes` Service's IP, as
    /// EKS allocates it]. The cluster DNS address is its `.10`.
    #[arg(long, env = "SERVICE_CIDR")]
    pub service_cidr: Option<String>,
    #[arg(long, env = "ISOLATED_VPC", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub isolated_vpc: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Cloud {
    Fake,
    Aws,
}

/// Karpenter's levels, and `warn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// The smallest heap the controller is let run in: its caches and one
/// provisioning round on a small cluster.
const MIN_HEAP_TARGET: u64 = 128 << 20;

impl ControllerArgs {
    /// Worker threads from the CPU request: one per whole CPU, 2 to 16
    /// (the watches and the servers want two even on a small request).
    pub fn worker_threads(&self) -> usize {
        usize::try_from(self.cpu_requests.div_ceil(1000))
            .unwrap_or(usize::MAX)
            .clamp(2, 16)
    }

    /// 90 % of the memory limit, when there is one.
    pub fn heap_target(&self) -> Option<u64> {
        u64::try_from(self.memory_limit)
            .ok()
            .filter(|&l| l > 0)
            .map(|l| l / 10 * 9)
    }

    /// Everything that cannot be checked one flag at a time.
    pub fn validate(&self) -> Result<()> {
        if self.cloud == Cloud::Aws {
            if self.cluster_name.as_deref().is_none_or(str::is_empty) {
                bail!("--cloud aws needs the cluster's name: set CLUSTER_NAME (or --cluster-name)");
            }
            match self.aws.cluster_endpoint.as_deref() {
                None | Some("") => bail!(
                    "--cloud aws needs the address new nodes join: set CLUSTER_ENDPOINT (or --cluster-endpoint) to the cluster's API endpoint, e.g. https://ABCD.gr7.us-east-1.eks.amazonaws.com"
                ),
                Some(e) if !(e.starts_with("https://") || e.starts_with("http://")) => bail!(
                    "CLUSTER_ENDPOINT `{e}` is not a URL: give it with its scheme, e.g. https://ABCD.gr7.us-east-1.eks.amazonaws.com"
                ),
                Some(_) => {}
            }
            dovetail_aws::instance_types::operator_settings(
                self.aws.vm_memory_overhead_percent,
                self.aws.reserved_enis,
            )?;
            if let Some(cidr) = self.aws.service_cidr.as_deref()
                && parse_ipv4_cidr(cidr).is_none()
            {
                bail!(
                    "SERVICE_CIDR `{cidr}` is not an IPv4 CIDR: give it as address/prefix, e.g. 10.100.0.0/16"
                );
            }
            if self
                .aws
                .interruption_queue
                .as_deref()
                .is_some_and(|q| q.is_empty() || q.len() > 80)
            {
                bail!(
                    "INTERRUPTION_QUEUE must be an SQS queue name of 1 to 80 characters (or unset for no interruption handling)"
                );
            }
        }
        if self.cpu_requests == 0 {
            bail!(
                "CPU_REQUESTS is 0: give the pod's CPU request in millicores (e.g. 1000), or leave it unset"
            );
        }
        if self.memory_limit == 0 || self.memory_limit < -1 {
            bail!(
                "MEMORY_LIMIT is {}: give the pod's memory limit in bytes (e.g. 1073741824), or -1 for none",
                self.memory_limit
            );
        }
        if let Some(target) = self.heap_target()
            && target < MIN_HEAP_TARGET
        {
            bail!(
                "MEMORY_LIMIT is {} bytes, leaving a heap target of {} MiB; the controller needs at least {} MiB: raise the pod's memory limit to 256Mi or more",
                self.memory_limit,
                target >> 20,
                MIN_HEAP_TARGET >> 20
            );
        }
        if self.policy_fetch_max_bytes == 0 {
            bail!(
                "POLICY_FETCH_MAX_BYTES is 0: give the largest policy component to fetch in bytes (default {})",
                crate::policy_fetch::DEFAULT_MAX_BYTES
            );
        }
        if self.policy_fetch_timeout.0.is_zero() {
            bail!("POLICY_FETCH_TIMEOUT must be more than 0 (e.g. `2m`)");
        }
        if self.batch_idle_duration.0.is_zero() {
            bail!("BATCH_IDLE_DURATION must be more than 0 (e.g. `1s`)");
        }
        if self.batch_idle_duration.0 > self.batch_max_duration.0 {
            bail!(
                "BATCH_IDLE_DURATION ({}) is longer than BATCH_MAX_DURATION ({}): no batch could ever wait that long idle; lower the first or raise the second",
                self.batch_idle_duration,
                self.batch_max_duration
            );
        }
        if self.kube_client_qps == 0 || self.kube_client_burst == 0 {
            bail!(
                "KUBE_CLIENT_QPS and KUBE_CLIENT_BURST must be at least 1 (defaults 200 and 300)"
            );
        }
        if self.metrics_port != 0 && self.metrics_port == self.health_probe_port {
            bail!(
                "METRICS_PORT and HEALTH_PROBE_PORT are both {}; give them different ports",
                self.metrics_port
            );
        }
        for (what, value) in [
            ("LEADER_ELECTION_NAME", self.leader_election_name.as_str()),
            (
                "LEADER_ELECTION_NAMESPACE",
                self.leader_election_namespace(),
            ),
            ("SYSTEM_NAMESPACE", self.system_namespace.as_str()),
            ("POLICY_NAMESPACE", self.policy_namespace()),
        ] {
            if !is_dns_label_or_subdomain(value) {
                bail!(
                    "{what} `{value}` is not a valid Kubernetes name: use lower-case letters, digits, `-` and `.`"
                );
            }
        }
        Ok(())
    }

    /// The orchestration's settings, Karpenter's defaults where these flags
    /// do not reach.
    pub fn control_config(&self) -> dovetail_control::Config {
        let mut config = dovetail_control::Config {
            batch_idle_ms: self.batch_idle_duration.0.as_millis() as u64,
            batch_max_ms: self.batch_max_duration.0.as_millis() as u64,
            ..dovetail_control::Config::default()
        };
        config.disruption_settings.spot_to_spot = self.feature_gates.spot_to_spot_consolidation;
        config.disruption.poll_ms = self.disruption_poll_interval.0.as_millis() as u64;
        config.disruption.validation_delay_ms =
            self.consolidation_validation_delay.0.as_millis() as u64;
        config
    }

    pub fn leader_election_namespace(&self) -> &str {
        non_empty(self.leader_election_namespace.as_deref()).unwrap_or(&self.system_namespace)
    }

    /// How policy components named by URL are fetched and cached.
    pub fn fetch_config(&self) -> crate::policy_fetch::FetchConfig {
        crate::policy_fetch::FetchConfig {
            cache_dir: self
                .policy_cache_dir
                .clone()
                .unwrap_or_else(crate::policy_fetch::default_cache_dir),
            max_bytes: self.policy_fetch_max_bytes,
            timeout: self.policy_fetch_timeout.0,
            extra_roots: Vec::new(),
            retry_after: crate::policy_fetch::DEFAULT_RETRY_AFTER,
        }
    }

    pub fn policy_namespace(&self) -> &str {
        non_empty(self.policy_namespace.as_deref()).unwrap_or(&self.system_namespace)
    }

    /// The Lease to contend for as `identity`; `None` when leader election
    /// is off.
    pub fn lease_config(&self, identity: impl Into<String>) -> Option<LeaseConfig> {
        (!self.disable_leader_election).then(|| {
            LeaseConfig::new(
                &self.leader_election_name,
                self.leader_election_namespace(),
                identity,
            )
        })
    }

    pub fn metrics_address(&self, ip: IpAddr) -> SocketAddr {
        SocketAddr::new(ip, self.metrics_port)
    }

    pub fn health_probe_address(&self, ip: IpAddr) -> SocketAddr {
        SocketAddr::new(ip, self.health_probe_port)
    }

    /// `KUBE_CLIENT_QPS` and `KUBE_CLIENT_BURST` as a client layer.
    pub fn rate_limit(&self) -> RateLimitLayer {
        RateLimitLayer::new(self.kube_client_qps, self.kube_client_burst)
    }

    /// Where the API server is and how to reach it: the kubeconfig given,
    /// else the usual search ending with the pod's service account.
    pub async fn kube_config(&self) -> Result<kube::Config> {
        use kube::config::{KubeConfigOptions, Kubeconfig};
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let file = Kubeconfig::read_from(path)
                    .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
                Ok(kube::Config::from_custom_kubeconfig(file, &options).await?)
            }
            (None, Some(context)) => kube::Config::from_kubeconfig(&options)
                .await
                .with_context(|| format!("loading context `{context}` from the kubeconfig")),
            (None, None) => kube::Config::infer().await.context(
                "no kubeconfig and not in a pod: pass --kubeconfig, set KUBECONFIG, or run in the cluster",
            ),
        }
    }

    /// A client held to `KUBE_CLIENT_QPS`/`KUBE_CLIENT_BURST`.
    pub fn client(&self, config: kube::Config) -> Result<kube::Client> {
        Ok(kube::client::ClientBuilder::try_from(config)?
            .with_layer(&self.rate_limit())
            .build())
    }
}

/// This process's name among the candidates for the Lease: the host name
/// (the pod's name in a cluster) and a random suffix, as controller-runtime
/// makes it, so a restarted pod is a new candidate.
pub fn leader_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "dovetail".into());
    format!("{host}_{}", uuid::Uuid::new_v4())
}

/// `a.b.c.d/n` as its address and prefix length.
pub fn parse_ipv4_cidr(cidr: &str) -> Option<(std::net::Ipv4Addr, u8)> {
    let (addr, prefix) = cidr.split_once('/')?;
    let prefix: u8 = prefix.parse().ok()?;
    (prefix <= 32).then_some(())?;
    Some((addr.parse().ok()?, prefix))
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

fn is_dns_label_or_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.len() <= 63
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// A duration written as Go writes them: a sequence of decimal numbers, each
/// with an optional fraction and a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`,
/// `h`), e.g. `1s`, `500ms`, `1m30s`, `1.5h`; `0` alone is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoDuration(pub Duration);

impl FromStr for GoDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        use dovetail_core::disruption::{GoDurationError, parse_go_duration_exact};
        parse_go_duration_exact(text).map(Self).map_err(|e| {
            let why = match e {
                GoDurationError::Malformed => String::new(),
                other => format!(" ({other})"),
            };
            format!(
                "`{text}` is not a duration{why}: write a number and a unit, e.g. `1s`, `500ms`, `1m30s`"
            )
        })
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            write!(f, "{}s", d.as_secs())
        } else if d.subsec_nanos().is_multiple_of(1_000_000) {
            write!(f, "{}ms", d.as_millis())
        } else {
            write!(f, "{}ns", d.as_nanos())
        }
    }
}

/// Karpenter's feature gates. Dovetail has the behaviour of each gate at its
/// Karpenter default; only `SpotToSpotConsolidation` can be switched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeatureGates {
    pub spot_to_spot_consolidation: bool,
}

/// Every gate Karpenter knows, with the one value Dovetail runs with
/// (`None`: either works).
const GATES: [(&str, Option<bool>); 6] = [
    ("SpotToSpotConsolidation", None),
    ("ReservedCapacity", Some(true)),
    ("NodeRepair", Some(false)),
    ("NodeOverlay", Some(false)),
    ("StaticCapacity", Some(false)),
    ("CapacityBuffer", Some(false)),
];

impl FromStr for FeatureGates {
    type Err = String;

    /// `Name=true,Name=false`, as Kubernetes components take them.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut gates = Self::default();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((name, value)) = item.split_once('=') else {
                return Err(format!(
                    "feature gate `{item}` has no value: write `{item}=true` or `{item}=false`"
                ));
            };
            let (name, value) = (name.trim(), value.trim());
            let value: bool = match value {
                "true" | "True" | "TRUE" => true,
                "false" | "False" | "FALSE" => false,
                _ => {
                    return Err(format!(
                        "feature gate `{name}={value}`: the value must be true or false"
                    ));
                }
            };
            let Some(&(_, fixed)) = GATES.iter().find(|(known, _)| *known == name) else {
                let known: Vec<&str> = GATES.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "unknown feature gate `{name}`; the known gates are {}",
                    known.join(", ")
                ));
            };
            if let Some(fixed) = fixed
                && value != fixed
            {
                return Err(format!(
                    "feature gate `{name}={value}` is not supported: Dovetail always runs with {name}={fixed}; remove it or set it to {fixed}"
                ));
            }
            if name == "SpotToSpotConsolidation" {
                gates.spot_to_spot_consolidation = value;
            }
        }
        Ok(gates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: ControllerArgs,
    }

    fn parse(flags: &[&str]) -> Result<ControllerArgs, String> {
        Cli::try_parse_from(std::iter::once("dovetail").chain(flags.iter().copied()))
            .map(|c| c.args)
            .map_err(|e| e.to_string())
    }

    fn secs(s: u64) -> GoDuration {
        GoDuration(Duration::from_secs(s))
    }

    #[test]
    fn policy_fetch_settings_default_and_are_checked() {
        let a = parse(&[]).unwrap();
        let f = a.fetch_config();
        assert_eq!(f.max_bytes, 64 << 20);
        assert_eq!(f.timeout, secs(120).0);
        assert_eq!(
            f.cache_dir,
            std::env::temp_dir().join("dovetail-policy-cache")
        );
        let a = parse(&[
            "--policy-fetch-max-bytes",
            "1000",
            "--policy-cache-dir",
            "/var/cache/p",
        ])
        .unwrap();
        assert_eq!(
            (a.fetch_config().max_bytes, a.fetch_config().cache_dir),
            (1000, PathBuf::from("/var/cache/p"))
        );
        let e = parse(&["--policy-fetch-max-bytes", "0"])
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("POLICY_FETCH_MAX_BYTES is 0"), "{e}");
    }

    #[test]
    fn defaults_are_karpenters() {
        let a = parse(&[]).unwrap();
        a.validate().unwrap();
        assert_eq!(a.cloud, Cloud::Fake);
        assert_eq!(a.batch_idle_duration, secs(1));
        assert_eq!(a.batch_max_duration, secs(10));
        assert_eq!(a.kube_client_qps, 200);
        assert_eq!(a.kube_client_burst, 300);
        assert_eq!(a.log_level, LogLevel::Info);
        assert_eq!((a.metrics_port, a.health_probe_port), (8080, 8081));
        assert!(!a.disable_leader_election);
        assert!(!a.feature_gates.spot_to_spot_consolidation);
        let lease = a.lease_config("pod-a").unwrap();
        assert_eq!(
            (lease.name.as_str(), lease.namespace.as_str()),
            ("dovetail-leader-election", "kube-system")
        );
        assert_eq!(lease.lease_duration, Duration::from_secs(15));
        assert_eq!(a.policy_namespace(), "kube-system");
        let c = a.control_config();
        assert_eq!((c.batch_idle_ms, c.batch_max_ms), (1_000, 10_000));
        assert!(!c.disruption_settings.spot_to_spot);
    }

    #[test]
    fn the_pods_resources_size_threads_and_the_heap_target() {
        let a = parse(&[]).unwrap();
        assert_eq!((a.worker_threads(), a.heap_target()), (2, None));
        let a = parse(&["--cpu-requests", "3500", "--memory-limit", "1073741824"]).unwrap();
        a.validate().unwrap();
        assert_eq!(a.worker_threads(), 4);
        assert_eq!(a.heap_target(), Some(966_367_638));
        let a = parse(&["--cpu-requests", "250"]).unwrap();
        assert_eq!(a.worker_threads(), 2);
        let a = parse(&["--cpu-requests", "64000"]).unwrap();
        assert_eq!(a.worker_threads(), 16);
        for (flags, says) in [
            (&["--cpu-requests", "0"][..], "CPU_REQUESTS is 0"),
            (&["--memory-limit", "0"][..], "MEMORY_LIMIT is 0"),
            (&["--memory-limit", "-5"][..], "MEMORY_LIMIT is -5"),
            (
                &["--memory-limit", "67108864"][..],
                "raise the pod's memory limit",
            ),
        ] {
            let e = parse(flags).unwrap().validate().unwrap_err().to_string();
            assert!(e.contains(says), "{flags:?}: {e}");
        }
    }

    #[test]
    fn flags_reach_the_controller_config() {
        let a = parse(&[
            "--batch-idle-duration",
            "500ms",
            "--batch-max-duration",
            "1m30s",
            "--feature-gates",
            "SpotToSpotConsolidation=true,ReservedCapacity=true,NodeRepair=false",
            "--system-namespace",
            "dovetail",
            "--disable-leader-election",
        ])
        .unwrap();
        a.validate().unwrap();
        let c = a.control_config();
        assert_eq!((c.batch_idle_ms, c.batch_max_ms), (500, 90_000));
        assert!(c.disruption_settings.spot_to_spot);
        assert_eq!(a.lease_config("x"), None);
        assert_eq!(a.leader_election_namespace(), "dovetail");
        assert_eq!(a.policy_namespace(), "dovetail");
    }

    #[test]
    fn the_lease_namespace_defaults_to_the_controllers() {
        let a = parse(&["--system-namespace", "karpenter"]).unwrap();
        assert_eq!(a.lease_config("x").unwrap().namespace, "karpenter");
        let a = parse(&[
            "--system-namespace",
            "karpenter",
            "--leader-election-namespace",
            "leases",
        ])
        .unwrap();
        assert_eq!(a.lease_config("x").unwrap().namespace, "leases");
    }

    #[test]
    fn go_durations() {
        let d = |s: &str| s.parse::<GoDuration>().map(|d| d.0);
        assert_eq!(d("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(d("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(d("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(d(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(d("2h45m10.5s"), Ok(Duration::from_millis(9_910_500)));
        assert_eq!(d("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(d("100µs"), Ok(Duration::from_micros(100)));
        assert_eq!(d("3ns"), Ok(Duration::from_nanos(3)));
        assert_eq!(d("0"), Ok(Duration::ZERO));
        for (bad, why) in [
            ("1", "has no unit"),
            ("10", "has no unit"),
            ("1d", "unknown unit `d`"),
            ("-1s", "negative"),
            ("", "not a duration"),
            ("s", "not a duration"),
            ("1.2.3s", "not a duration"),
            ("99999999999999999999h", "too large"),
        ] {
            let e = d(bad).unwrap_err();
            assert!(e.contains(why) && e.contains("e.g. `1s`"), "{bad}: {e}");
        }
        assert_eq!(
            GoDuration(Duration::from_millis(1500)).to_string(),
            "1500ms"
        );
        assert_eq!(secs(10).to_string(), "10s");
    }

    #[test]
    fn bad_flags_are_refused_naming_the_fix() {
        let e = parse(&["--batch-idle-duration", "1"]).unwrap_err();
        assert!(
            e.contains("--batch-idle-duration") && e.contains("no unit"),
            "{e}"
        );
        let e = parse(&["--feature-gates", "SpotToSpot=true"]).unwrap_err();
        assert!(
            e.contains("unknown feature gate `SpotToSpot`")
                && e.contains(
                    "SpotToSpotConsolidation, ReservedCapacity, NodeRepair, NodeOverlay, StaticCapacity, CapacityBuffer"
                ),
            "{e}"
        );
        let e = parse(&["--feature-gates", "NodeRepair=true"]).unwrap_err();
        assert!(
            e.contains("Dovetail always runs with NodeRepair=false"),
            "{e}"
        );
        let e = parse(&["--feature-gates", "SpotToSpotConsolidation=yes"]).unwrap_err();
        assert!(e.contains("must be true or false"), "{e}");
        let e = parse(&["--feature-gates", "SpotToSpotConsolidation"]).unwrap_err();
        assert!(e.contains("SpotToSpotConsolidation=true"), "{e}");
        let e = parse(&["--log-level", "verbose"]).unwrap_err();
        assert!(e.contains("debug, info, warn, error"), "{e}");
        let e = parse(&["--cloud", "gcp"]).unwrap_err();
        assert!(e.contains("fake, aws"), "{e}");
    }

    #[test]
    fn settings_that_clash_are_refused() {
        let check = |flags: &[&str]| parse(flags).unwrap().validate().unwrap_err().to_string();
        let e = check(&["--batch-idle-duration", "20s"]);
        assert!(
            e.contains("BATCH_IDLE_DURATION (20s) is longer than BATCH_MAX_DURATION (10s)"),
            "{e}"
        );
        let e = check(&["--batch-idle-duration", "0"]);
        assert!(e.contains("more than 0"), "{e}");
        let e = check(&["--kube-client-qps", "0"]);
        assert!(e.contains("KUBE_CLIENT_QPS"), "{e}");
        let e = check(&["--metrics-port", "9000", "--health-probe-port", "9000"]);
        assert!(e.contains("different ports"), "{e}");
        let e = check(&["--leader-election-name", "Leader_Election"]);
        assert!(e.contains("LEADER_ELECTION_NAME `Leader_Election`"), "{e}");
    }

    #[test]
    fn aws_settings_are_checked_with_the_fix_named() {
        let check = |flags: &[&str]| {
            let mut all = vec!["--cloud", "aws"];
            all.extend_from_slice(flags);
            parse(&all).unwrap().validate().map_err(|e| e.to_string())
        };
        let e = check(&[]).unwrap_err();
        assert!(e.contains("CLUSTER_NAME"), "{e}");
        let e = check(&["--cluster-name", "prod"]).unwrap_err();
        assert!(e.contains("CLUSTER_ENDPOINT"), "{e}");
        let e = check(&[
            "--cluster-name",
            "prod",
            "--cluster-endpoint",
            "prod.example",
        ])
        .unwrap_err();
        assert!(e.contains("is not a URL"), "{e}");
        let ok = [
            "--cluster-name",
            "prod",
            "--cluster-endpoint",
            "https://prod.example",
        ];
        check(&ok).unwrap();
        let with = |extra: &[&str]| {
            let mut v = ok.to_vec();
            v.extend_from_slice(extra);
            check(&v)
        };
        let e = with(&["--vm-memory-overhead-percent", "7.5"]).unwrap_err();
        assert!(e.contains("VM_MEMORY_OVERHEAD_PERCENT is 7.5"), "{e}");
        let e = with(&["--service-cidr", "10.100.0.0"]).unwrap_err();
        assert!(e.contains("SERVICE_CIDR `10.100.0.0`"), "{e}");
        with(&[
            "--service-cidr",
            "10.100.0.0/16",
            "--isolated-vpc",
            "--reserved-enis",
            "1",
        ])
        .unwrap();
        let long = "q".repeat(81);
        let e = with(&["--interruption-queue", &long]).unwrap_err();
        assert!(e.contains("INTERRUPTION_QUEUE"), "{e}");
    }

    #[test]
    fn leader_identities_are_unique_per_process_start() {
        let (a, b) = (leader_identity(), leader_identity());
        assert_ne!(a, b);
        assert!(a.contains('_'));
    }

    /// Set in the environment of the child process that checks variables.
    const CHILD: &str = "DOVETAIL_SETTINGS_ENV_CHILD";

    /// The same settings from Karpenter's variable names. The environment is
    /// the process's, so the check runs in a child process of this test
    /// binary with the variables set.
    #[test]
    fn environment_variables_set_what_flags_set() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "settings::tests::env_child", "--nocapture"])
            .env(CHILD, "1")
            .env("BATCH_IDLE_DURATION", "250ms")
            .env("BATCH_MAX_DURATION", "2s")
            .env("FEATURE_GATES", "SpotToSpotConsolidation=true")
            .env("KUBE_CLIENT_QPS", "50")
            .env("KUBE_CLIENT_BURST", "60")
            .env("LOG_LEVEL", "debug")
            .env("METRICS_PORT", "9090")
            .env("HEALTH_PROBE_PORT", "9091")
            .env("DISABLE_LEADER_ELECTION", "true")
            .env("LEADER_ELECTION_NAME", "karpenter-leader-election")
            .env("LEADER_ELECTION_NAMESPACE", "")
            .env("SYSTEM_NAMESPACE", "karpenter")
            .env("CLUSTER_NAME", "dev")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn env_child() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        let a = parse(&[]).unwrap();
        a.validate().unwrap();
        assert_eq!(a.batch_idle_duration.0, Duration::from_millis(250));
        assert_eq!(a.batch_max_duration, secs(2));
        assert!(a.feature_gates.spot_to_spot_consolidation);
        assert_eq!((a.kube_client_qps, a.kube_client_burst), (50, 60));
        assert_eq!(a.log_level, LogLevel::Debug);
        assert_eq!((a.metrics_port, a.health_probe_port), (9090, 9091));
        assert!(a.disable_leader_election);
        assert_eq!(a.leader_election_name, "karpenter-leader-election");
        // Empty, as Karpenter's chart leaves it: the controller's namespace.
        assert_eq!(a.leader_election_namespace(), "karpenter");
        assert_eq!(a.cluster_name.as_deref(), Some("dev"));
        // A flag still wins over its variable.
        let a = parse(&["--kube-client-qps", "7"]).unwrap();
        assert_eq!(a.kube_client_qps, 7);
    }
}
