//! The settings as files hold them: the serde structs and their defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::names::{jitter_names, mode_names};
use super::proactive::Proactive;
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
    /// The total deadline of a logical request in seconds, covering every attempt, rate-limit
    /// wait and backoff sleep; `None` (the default) for none.
    pub deadline_secs: Option<f64>,
    /// How long the `client` feature's pool keeps an idle connection, in seconds; `None` keeps
    /// it until the server closes it. Set it below the server's keep-alive timeout (uvicorn,
    /// behind Infrahub, closes idle connections after 5 s): a request written into a
    /// connection the server is closing fails and, unless idempotent, is not retried.
    pub pool_idle_timeout_secs: Option<f64>,
    /// TLS settings of the `client` feature's HTTPS connector.
    pub tls: TlsConfig,
    /// Metrics naming and cardinality.
    pub metrics: MetricsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            rate_limit: RateLimitConfig::default(),
            retry: RetryConfig::default(),
            retry_after: RetryAfterConfig::default(),
            timeout_secs: Some(30.0),
            deadline_secs: None,
            pool_idle_timeout_secs: Some(90.0),
            tls: TlsConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

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
}

impl Default for RetryAfterConfig {
    fn default() -> Self {
        Self {
            max_secs: 60.0,
            mode: RetryAfterMode::Clamp,
            pause_scope: PauseScope::Upstream,
            release_window_secs: 1.0,
            proactive: Proactive::Off,
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
    /// Distinct `namespace` label values before the rest count as `other`.
    pub max_namespace_labels: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            prefix: "pacer".to_owned(),
            max_namespace_labels: 100,
        }
    }
}
