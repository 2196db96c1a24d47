//! The settings as files hold them: the serde structs and their defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::names::{jitter_names, mode_names};
use super::proactive::Proactive;
use super::proxy::ProxyUrl;
use super::scope::PauseScope;
use crate::retry::Jitter;
use crate::retry_after::RetryAfterMode;

/// Every setting of the pacer stack. `Default` is the design's defaults table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The two-level rate limiter.
    pub rate_limit: RateLimitConfig,
    /// Retries: caps, backoff, budget.
    pub retry: RetryConfig,
    /// Server-given delays (`Retry-After`): cap, mode, shared pauses.
    pub retry_after: RetryAfterConfig,
    /// The per-attempt timeout in seconds (time waiting for a rate-limit slot excluded);
    /// `None` for no timeout.
    pub timeout_secs: Option<f64>,
    /// The total deadline of a logical request in seconds, covering every attempt (a buffered
    /// body included), rate-limit wait, shared pause and backoff sleep; `None` for none. The
    /// default, 300 s (the Infrahub SDK's `max_retry_duration`), is the longest any call of the
    /// ready client can take with default settings.
    pub deadline_secs: Option<f64>,
    /// How long the `client` feature's pool keeps an idle connection, in seconds; `None` keeps
    /// it until the server closes it. Set it below the server's keep-alive timeout (uvicorn,
    /// behind Infrahub, closes idle connections after 5 s): a request written into a
    /// connection the server is closing fails and, unless idempotent, is not retried.
    pub pool_idle_timeout_secs: Option<f64>,
    /// TLS settings of the `client` feature's HTTPS connector.
    pub tls: TlsConfig,
    // -- read timeout (the `client` feature's streaming bodies) --
    /// The longest the `client` feature's response body may stay silent between two frames,
    /// in seconds (an idle-read timeout: a body that keeps sending is not cut by it); `None`
    /// for no bound. A body that stays silent longer ends with a
    /// `pacer::client::ReadTimeout` error. Default 30 s; validated like the other durations
    /// (above 0, at most 86400 s, or none).
    pub read_timeout_secs: Option<f64>,
    /// Metrics naming and cardinality.
    pub metrics: MetricsConfig,
    // --- the connector: connect timeout and outbound proxies ---
    /// How long the `client` feature's connector may take to establish a connection (TCP
    /// connect, the proxy's `CONNECT` tunnel and the TLS handshake), in seconds; above 0.
    pub connect_timeout_secs: f64,
    /// The proxy every request goes through (`http://user:pass@proxy:3128`), except to the
    /// hosts of [`no_proxy`](Self::no_proxy). When set, the proxy variables of the
    /// environment (`HTTPS_PROXY`, `NO_PROXY`, ...) are ignored.
    pub proxy: Option<ProxyUrl>,
    /// Hosts reached without a proxy, as curl's `NO_PROXY` reads them: comma-separated
    /// domains (each matching itself and its subdomains; a leading `.` is optional), IP
    /// addresses, CIDR networks (`10.0.0.0/8`), or `*` for all. Applies to the `proxy`
    /// setting, and is added to the environment's `NO_PROXY` otherwise.
    pub no_proxy: Option<String>,
    /// Whether, without a `proxy` setting, the environment's `HTTPS_PROXY`, `HTTP_PROXY`,
    /// `ALL_PROXY` and `NO_PROXY` (or their lower-case forms) are honoured, as curl and
    /// reqwest do (default true; false connects directly).
    pub proxy_from_env: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            rate_limit: RateLimitConfig::default(),
            retry: RetryConfig::default(),
            retry_after: RetryAfterConfig::default(),
            timeout_secs: Some(30.0),
            deadline_secs: Some(DEFAULT_DEADLINE_SECS),
            pool_idle_timeout_secs: Some(90.0),
            tls: TlsConfig::default(),
            read_timeout_secs: Some(DEFAULT_READ_TIMEOUT_SECS),
            metrics: MetricsConfig::default(),
            connect_timeout_secs: 10.0,
            proxy: None,
            no_proxy: None,
            proxy_from_env: true,
        }
    }
}

/// The default of [`Config::deadline_secs`]: 300 s.
const DEFAULT_DEADLINE_SECS: f64 = 300.0;

/// The default of [`Config::read_timeout_secs`]: 30 s.
const DEFAULT_READ_TIMEOUT_SECS: f64 = 30.0;

/// Settings of the retry layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Retries after the first attempt (0 disables retries).
    pub max_retries: u32,
    /// The first backoff delay, in seconds.
    pub backoff_base_secs: f64,
    /// The longest backoff delay, in seconds (applied before the jitter).
    pub backoff_max_secs: f64,
    /// How the backoff is randomised: `full`, `equal`, `decorrelated` or `none`.
    #[serde(with = "jitter_names")]
    pub jitter: Jitter,
    /// Whether a retry budget keeps retries to a share of the traffic.
    pub budget: bool,
    /// Retries earned per successful request.
    pub budget_ratio: f64,
    /// Retries per second allowed even with an empty budget; `None` (the default): the global
    /// rate, rounded up, since every retry of the stack built from a configuration pays a
    /// rate-limit token (see [the module docs](super#the-retry-budgets-floor)).
    pub budget_min_per_sec: Option<u32>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 5,
            backoff_base_secs: 0.5,
            backoff_max_secs: 60.0,
            jitter: Jitter::Full,
            budget: true,
            budget_ratio: 0.2,
            budget_min_per_sec: None,
        }
    }
}

/// Settings of server-given delays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryAfterConfig {
    /// The longest server-given delay honoured as is, in seconds.
    pub max_secs: f64,
    /// Above the cap: `clamp` (wait the cap) or `fail` (give up at once).
    #[serde(with = "mode_names")]
    pub mode: RetryAfterMode,
    /// Which requests share a pause.
    pub pause_scope: PauseScope,
    /// Held requests are released spread over this many seconds when a pause ends.
    pub release_window_secs: f64,
    /// Proactive pacing: pause before a `429` when a response says the quota is used up.
    pub proactive: Proactive,
    /// Share pauses with the other replicas through the rate limiter's store, when it has
    /// one (e.g. Redis). Default true; without a store it changes nothing.
    pub shared: bool,
}

impl Default for RetryAfterConfig {
    fn default() -> Self {
        Self {
            max_secs: 60.0,
            mode: RetryAfterMode::Clamp,
            pause_scope: PauseScope::Upstream,
            release_window_secs: 1.0,
            proactive: Proactive::Off,
            shared: true,
        }
    }
}

/// TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// A PEM file of CA certificates trusted in addition to the built-in web roots (for a
    /// private CA in front of the API).
    pub extra_ca_file: Option<PathBuf>,
    /// **Dangerous**: accept any server certificate (expired, self-signed, for another name),
    /// as `curl --insecure` does. Handshake signatures are still checked, but anyone on the
    /// path can impersonate the server and read the credentials sent to it. For a test
    /// server only; prefer [`extra_ca_file`](Self::extra_ca_file). Default false.
    pub insecure: bool,
}

/// Settings of the rate limiter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per second for the whole process.
    pub global_rate: f64,
    /// The global burst.
    pub global_burst: u32,
    /// Requests per second for each namespace.
    pub namespace_rate: f64,
    /// Each namespace's burst.
    pub namespace_burst: u32,
    /// Quotas of their own for some namespaces.
    pub overrides: BTreeMap<String, QuotaConfig>,
    /// The longest a request waits for a slot, in seconds.
    pub max_wait_secs: f64,
    /// The most namespaces tracked at once.
    pub max_namespaces: usize,
    /// The share of each bucket available at start (restart protection), `0..=1`.
    pub initial_fill: f64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            global_rate: 50.0,
            global_burst: 100,
            namespace_rate: 5.0,
            namespace_burst: 10,
            overrides: BTreeMap::new(),
            max_wait_secs: 30.0,
            max_namespaces: 100_000,
            initial_fill: 1.0,
        }
    }
}

/// A rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Requests per second.
    pub rate: f64,
    /// Requests admitted at once.
    pub burst: u32,
}

/// Metrics settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// The prefix of every metric name.
    pub prefix: String,
    /// Namespaces (besides those with overrides) with a `namespace` label value of their own
    /// at once; while every slot is taken, new ones count as `other`.
    pub max_namespace_labels: usize,
    /// Whole seconds a namespace without requests keeps its label slot once every slot is
    /// taken (see [`MetricsBuilder::namespace_label_idle`](crate::metrics::MetricsBuilder::namespace_label_idle)).
    pub namespace_label_idle_secs: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            prefix: "pacer".to_owned(),
            max_namespace_labels: 100,
            namespace_label_idle_secs: 300,
        }
    }
}
