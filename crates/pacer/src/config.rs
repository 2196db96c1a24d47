//! [`Config`]: every setting of the stack, with the defaults of the design, loadable from a TOML
//! or JSON file and from environment variables with a prefix the caller chooses.
//!
//! | setting | default | environment variable (after `{PREFIX}_`) |
//! |---|---|---|
//! | `rate_limit.global_rate` | 50 req/s | `GLOBAL_RATE_LIMIT_TPS` |
//! | `rate_limit.global_burst` | 100 | `GLOBAL_RATE_LIMIT_BURST` |
//! | `rate_limit.namespace_rate` | 5 req/s | `NAMESPACE_RATE_LIMIT_TPS` |
//! | `rate_limit.namespace_burst` | 10 | `NAMESPACE_RATE_LIMIT_BURST` |
//! | `rate_limit.max_wait_secs` | 30 | `RATE_LIMIT_MAX_WAIT` |
//! | `rate_limit.max_namespaces` | 100 000 | `RATE_LIMIT_MAX_NAMESPACES` |
//! | `rate_limit.initial_fill` | 1.0 | `RATE_LIMIT_INITIAL_FILL` |
//! | `rate_limit.overrides.<ns>` | none | (file only) |
//! | `retry.max_retries` | 5 (at most 6 sends) | `RATE_LIMIT_MAX_RETRIES` |
//! | `retry.backoff_base_secs` | 0.5 | `RATE_LIMIT_BACKOFF_BASE` |
//! | `retry.backoff_max_secs` | 60 | `RATE_LIMIT_BACKOFF_MAX` |
//! | `retry.jitter` | `full` (`full`, `equal`, `decorrelated`, `none`) | `RATE_LIMIT_BACKOFF_JITTER` |
//! | `retry.budget` | on | `RATE_LIMIT_RETRY_BUDGET` (`on`/`off`, `true`/`false`, `1`/`0`) |
//! | `retry.budget_ratio` | 0.2 retries per success | `RATE_LIMIT_RETRY_BUDGET_RATIO` |
//! | `retry.budget_min_per_sec` | 10 | `RATE_LIMIT_RETRY_BUDGET_MIN_PER_SEC` |
//! | `retry_after.max_secs` | 60 | `RATE_LIMIT_RETRY_AFTER_MAX` |
//! | `retry_after.mode` | `clamp` (`clamp`, `fail`) | `RATE_LIMIT_RETRY_AFTER_MODE` |
//! | `retry_after.pause_scope` | `upstream` (`upstream`, `namespace`) | `RATE_LIMIT_PAUSE_SCOPE` |
//! | `retry_after.release_window_secs` | 1 | `RATE_LIMIT_PAUSE_RELEASE_WINDOW` |
//! | `timeout_secs` (per attempt) | 30 | `TIMEOUT` (`off` for none) |
//! | `deadline_secs` (whole request, retries included) | none | `DEADLINE` (`off` for none) |
//! | `pool_idle_timeout_secs` (idle pooled connections) | 90 | `POOL_IDLE_TIMEOUT` (`off` to keep them) |
//! | `tls.extra_ca_file` | none | `TLS_EXTRA_CA_FILE` (a PEM file) |
//! | `metrics.prefix` | `pacer` | `METRICS_PREFIX` |
//! | `metrics.max_namespace_labels` | 100 | `METRICS_MAX_NAMESPACE_LABELS` |
//!
//! Durations are seconds, fractions allowed (`0.5`). A value that does not parse or is out of
//! range is an error naming the variable (or field) and the value — never a silent default.
//!
//! The pieces of the stack are built from a `Config` with [`Config::rate_limiter`],
//! [`Config::retry_policy`], [`Config::retry_after_layer`] and [`Config::timeout`]; the
//! `client` feature's `Client::from_config` assembles all of them.
//!
//! Two settings decide how server-given delays are honoured: `retry_after.max_secs` caps a
//! `Retry-After` (both the shared pause and the retry's sleep); above it `mode = "clamp"`
//! waits the cap, `mode = "fail"` gives up at once with
//! [`RetryAfterExceeded`](crate::retry::RetryAfterExceeded) (the shared pause is still clamped
//! to the cap). `pause_scope = "namespace"` keeps one tenant's `429` from holding the others:
//! pauses are keyed by upstream *and* [`Namespace`].
//!
//! ```
//! use pacer::config::Config;
//!
//! # fn main() -> Result<(), pacer::config::ConfigError> {
//! let config = Config::from_toml_str(r#"
//!     [rate_limit]
//!     global_rate = 20
//!     namespace_burst = 4
//!     [rate_limit.overrides.platform]
//!     rate = 10
//!     burst = 20
//! "#)?;
//! assert_eq!(config.rate_limit.global_rate, 20.0);
//! assert_eq!(config.rate_limit.namespace_rate, 5.0); // the default
//!
//! // An operator reading KEYCLOAK_API_GLOBAL_RATE_LIMIT_TPS and friends:
//! let config = Config::default().merge_env_vars(
//!     "KEYCLOAK_API",
//!     [("KEYCLOAK_API_GLOBAL_RATE_LIMIT_TPS".to_owned(), "25".to_owned())],
//! )?;
//! assert_eq!(config.rate_limit.global_rate, 25.0);
//!
//! // The Infrahub client's names for the retry settings:
//! let config = Config::default().merge_env_vars(
//!     "INFRAHUB",
//!     [
//!         ("INFRAHUB_RATE_LIMIT_MAX_RETRIES".to_owned(), "3".to_owned()),
//!         ("INFRAHUB_RATE_LIMIT_BACKOFF_BASE".to_owned(), "0.25".to_owned()),
//!         ("INFRAHUB_RATE_LIMIT_BACKOFF_MAX".to_owned(), "10".to_owned()),
//!     ],
//! )?;
//! assert_eq!(config.retry.max_retries, 3);
//! assert_eq!(config.backoff().max(), std::time::Duration::from_secs(10));
//!
//! // A bad value names the variable and the value:
//! let error = Config::default()
//!     .merge_env_vars("INFRAHUB", [("INFRAHUB_RATE_LIMIT_MAX_RETRIES".to_owned(), "many".to_owned())])
//!     .unwrap_err();
//! assert!(error.to_string().contains("INFRAHUB_RATE_LIMIT_MAX_RETRIES=\"many\""));
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Namespace;
use crate::rate_limit::{BuildError, Quota, QuotaError, RateLimiter};
use crate::retry::{Backoff, Jitter, RetryAfterMode, RetryBudget, RetryPolicy};
use crate::retry_after::{PauseGate, PauseKey, RetryAfterLayer};

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
    /// Retries per second allowed even with an empty budget.
    pub budget_min_per_sec: u32,
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
            budget_min_per_sec: 10,
        }
    }
}

/// How far a shared `Retry-After` pause reaches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PauseScope {
    /// Every request to the same upstream (scheme-less authority) waits (the default).
    #[default]
    Upstream,
    /// Only requests to the same upstream made for the same [`Namespace`] wait.
    Namespace,
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
}

impl Default for RetryAfterConfig {
    fn default() -> Self {
        Self {
            max_secs: 60.0,
            mode: RetryAfterMode::Clamp,
            pause_scope: PauseScope::Upstream,
            release_window_secs: 1.0,
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

impl Config {
    /// Parses a TOML document; missing settings keep their defaults, unknown ones are errors.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            source_name: "TOML".to_owned(),
            message: e.to_string(),
        })
    }

    /// Parses a JSON document; missing settings keep their defaults, unknown ones are errors.
    pub fn from_json_str(text: &str) -> Result<Self, ConfigError> {
        serde_json::from_str(text).map_err(|e| ConfigError::Parse {
            source_name: "JSON".to_owned(),
            message: e.to_string(),
        })
    }

    /// Reads a `.toml` or `.json` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let parsed = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Self::from_toml_str(&text),
            Some("json") => Self::from_json_str(&text),
            _ => {
                return Err(ConfigError::File {
                    path: path.to_owned(),
                    message: "unknown format: the file name must end in .toml or .json".to_owned(),
                });
            }
        };
        parsed.map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                source_name: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Overrides settings from this process's environment variables named `{prefix}_...` (see
    /// the module docs for the names).
    pub fn merge_env(self, prefix: &str) -> Result<Self, ConfigError> {
        self.merge_env_vars(prefix, std::env::vars())
    }

    /// Overrides settings from the given `(name, value)` pairs, as [`merge_env`](Self::merge_env)
    /// does from the environment; pairs without the prefix are ignored.
    pub fn merge_env_vars(
        mut self,
        prefix: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let prefix = format!("{}_", prefix.trim_end_matches('_'));
        // Blame the settings themselves, not the first variable, for what was wrong before.
        self.validate()?;
        for (name, value) in vars {
            let Some(key) = name.strip_prefix(&prefix) else {
                continue;
            };
            let bad = |reason: &str| ConfigError::Env {
                variable: name.clone(),
                value: value.clone(),
                reason: reason.to_owned(),
            };
            let rl = &mut self.rate_limit;
            match key {
                "GLOBAL_RATE_LIMIT_TPS" => rl.global_rate = parse_rate(&value).map_err(bad)?,
                "GLOBAL_RATE_LIMIT_BURST" => rl.global_burst = parse_burst(&value).map_err(bad)?,
                "NAMESPACE_RATE_LIMIT_TPS" => {
                    rl.namespace_rate = parse_rate(&value).map_err(bad)?
                }
                "NAMESPACE_RATE_LIMIT_BURST" => {
                    rl.namespace_burst = parse_burst(&value).map_err(bad)?;
                }
                "RATE_LIMIT_MAX_WAIT" => rl.max_wait_secs = parse_secs(&value).map_err(bad)?,
                "RATE_LIMIT_MAX_NAMESPACES" => {
                    rl.max_namespaces = parse_positive(&value).map_err(bad)?;
                }
                "RATE_LIMIT_INITIAL_FILL" => {
                    rl.initial_fill = parse_fraction(&value).map_err(bad)?;
                }
                "RATE_LIMIT_MAX_RETRIES" => {
                    self.retry.max_retries = parse_count(&value).map_err(bad)?;
                }
                "RATE_LIMIT_BACKOFF_BASE" => {
                    self.retry.backoff_base_secs = parse_secs(&value).map_err(bad)?;
                }
                "RATE_LIMIT_BACKOFF_MAX" => {
                    self.retry.backoff_max_secs = parse_secs(&value).map_err(bad)?;
                }
                "RATE_LIMIT_BACKOFF_JITTER" => {
                    self.retry.jitter = jitter_names::parse(&value).map_err(bad)?;
                }
                "RATE_LIMIT_RETRY_BUDGET" => {
                    self.retry.budget = parse_switch(&value).map_err(bad)?
                }
                "RATE_LIMIT_RETRY_BUDGET_RATIO" => {
                    self.retry.budget_ratio = parse_ratio(&value).map_err(bad)?;
                }
                "RATE_LIMIT_RETRY_BUDGET_MIN_PER_SEC" => {
                    self.retry.budget_min_per_sec = parse_count(&value).map_err(bad)?;
                }
                "RATE_LIMIT_RETRY_AFTER_MAX" => {
                    self.retry_after.max_secs = parse_secs(&value).map_err(bad)?;
                }
                "RATE_LIMIT_RETRY_AFTER_MODE" => {
                    self.retry_after.mode = mode_names::parse(&value).map_err(bad)?;
                }
                "RATE_LIMIT_PAUSE_SCOPE" => {
                    self.retry_after.pause_scope = parse_scope(&value).map_err(bad)?;
                }
                "RATE_LIMIT_PAUSE_RELEASE_WINDOW" => {
                    self.retry_after.release_window_secs = parse_secs(&value).map_err(bad)?;
                }
                "TIMEOUT" => self.timeout_secs = parse_optional_secs(&value).map_err(bad)?,
                "DEADLINE" => self.deadline_secs = parse_optional_secs(&value).map_err(bad)?,
                "POOL_IDLE_TIMEOUT" => {
                    self.pool_idle_timeout_secs = parse_optional_secs(&value).map_err(bad)?;
                }
                "TLS_EXTRA_CA_FILE" => {
                    self.tls.extra_ca_file = parse_path(&value).map_err(bad)?;
                }
                "METRICS_PREFIX" => self.metrics.prefix = parse_prefix(&value).map_err(bad)?,
                "METRICS_MAX_NAMESPACE_LABELS" => {
                    self.metrics.max_namespace_labels = parse_positive(&value).map_err(bad)?;
                }
                _ => continue,
            }
            // A value fine alone may clash with another setting (a backoff base above its
            // max); name the variable that made it so.
            self.validate().map_err(|e| ConfigError::Env {
                variable: name.clone(),
                value: value.clone(),
                reason: e.to_string(),
            })?;
        }
        self.validate()?;
        Ok(self)
    }

    /// Checks every value, naming the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let rl = &self.rate_limit;
        let invalid = |field: &str, value: String, reason: String| ConfigError::Invalid {
            field: field.to_owned(),
            value,
            reason,
        };
        quota(rl.global_rate, rl.global_burst).map_err(|e| {
            invalid(
                "rate_limit.global_rate/global_burst",
                format!("{}/{}", rl.global_rate, rl.global_burst),
                e.to_string(),
            )
        })?;
        quota(rl.namespace_rate, rl.namespace_burst).map_err(|e| {
            invalid(
                "rate_limit.namespace_rate/namespace_burst",
                format!("{}/{}", rl.namespace_rate, rl.namespace_burst),
                e.to_string(),
            )
        })?;
        for (name, q) in &rl.overrides {
            quota(q.rate, q.burst).map_err(|e| {
                invalid(
                    &format!("rate_limit.overrides.{name}"),
                    format!("{}/{}", q.rate, q.burst),
                    e.to_string(),
                )
            })?;
        }
        check_secs(rl.max_wait_secs).map_err(|r| {
            invalid(
                "rate_limit.max_wait_secs",
                rl.max_wait_secs.to_string(),
                r.into(),
            )
        })?;
        if rl.max_namespaces == 0 {
            return Err(invalid(
                "rate_limit.max_namespaces",
                "0".into(),
                "must be at least 1".into(),
            ));
        }
        if !(0.0..=1.0).contains(&rl.initial_fill) {
            return Err(invalid(
                "rate_limit.initial_fill",
                rl.initial_fill.to_string(),
                "must be within 0..=1".into(),
            ));
        }
        if let Some(timeout) = self.timeout_secs {
            check_secs(timeout)
                .map_err(|r| invalid("timeout_secs", timeout.to_string(), r.into()))?;
        }
        if let Some(deadline) = self.deadline_secs {
            check_secs(deadline)
                .map_err(|r| invalid("deadline_secs", deadline.to_string(), r.into()))?;
        }
        if let Some(idle) = self.pool_idle_timeout_secs {
            check_secs(idle)
                .map_err(|r| invalid("pool_idle_timeout_secs", idle.to_string(), r.into()))?;
        }
        let retry = &self.retry;
        check_secs(retry.backoff_base_secs).map_err(|r| {
            invalid(
                "retry.backoff_base_secs",
                retry.backoff_base_secs.to_string(),
                r.into(),
            )
        })?;
        check_secs(retry.backoff_max_secs).map_err(|r| {
            invalid(
                "retry.backoff_max_secs",
                retry.backoff_max_secs.to_string(),
                r.into(),
            )
        })?;
        if retry.backoff_base_secs > retry.backoff_max_secs {
            return Err(invalid(
                "retry.backoff_base_secs/backoff_max_secs",
                format!("{}/{}", retry.backoff_base_secs, retry.backoff_max_secs),
                "the backoff base must not exceed its max".into(),
            ));
        }
        check_ratio(retry.budget_ratio).map_err(|r| {
            invalid(
                "retry.budget_ratio",
                retry.budget_ratio.to_string(),
                r.into(),
            )
        })?;
        let ra = &self.retry_after;
        check_secs(ra.max_secs)
            .map_err(|r| invalid("retry_after.max_secs", ra.max_secs.to_string(), r.into()))?;
        check_secs(ra.release_window_secs).map_err(|r| {
            invalid(
                "retry_after.release_window_secs",
                ra.release_window_secs.to_string(),
                r.into(),
            )
        })?;
        if let Some(path) = &self.tls.extra_ca_file {
            if path.as_os_str().is_empty() {
                return Err(invalid(
                    "tls.extra_ca_file",
                    String::new(),
                    "must be a file name".into(),
                ));
            }
        }
        Ok(())
    }

    /// Builds the rate limiter these settings describe (no observer attached; add one with
    /// [`RateLimiter::builder`] directly when needed).
    pub fn rate_limiter(&self) -> Result<RateLimiter, ConfigError> {
        self.validate()?;
        self.rate_limiter_builder()?
            .build()
            .map_err(ConfigError::RateLimiter)
    }

    /// The rate limiter builder these settings describe, to add an observer before building.
    pub fn rate_limiter_builder(
        &self,
    ) -> Result<crate::rate_limit::RateLimiterBuilder, ConfigError> {
        let rl = &self.rate_limit;
        let mut builder = RateLimiter::builder()
            .global(quota(rl.global_rate, rl.global_burst).map_err(quota_error)?)
            .per_namespace(quota(rl.namespace_rate, rl.namespace_burst).map_err(quota_error)?)
            .max_wait(Duration::from_secs_f64(rl.max_wait_secs))
            .max_namespaces(rl.max_namespaces)
            .initial_fill(rl.initial_fill);
        for (name, q) in &rl.overrides {
            builder = builder.namespace_override(
                Namespace::new(name.as_str()),
                quota(q.rate, q.burst).map_err(quota_error)?,
            );
        }
        Ok(builder)
    }

    /// The per-attempt timeout.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_secs.map(Duration::from_secs_f64)
    }

    /// The total deadline of a logical request.
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline_secs.map(Duration::from_secs_f64)
    }

    /// How long the client's pool keeps an idle connection.
    pub fn pool_idle_timeout(&self) -> Option<Duration> {
        self.pool_idle_timeout_secs.map(Duration::from_secs_f64)
    }

    /// The backoff these settings describe.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(
            Duration::from_secs_f64(self.retry.backoff_base_secs),
            Duration::from_secs_f64(self.retry.backoff_max_secs),
        )
        .jitter(self.retry.jitter)
    }

    /// The retry budget these settings describe, `None` when it is off. Each call builds a
    /// new budget: share one by cloning the policy that holds it.
    pub fn retry_budget(&self) -> Option<RetryBudget> {
        self.retry.budget.then(|| {
            RetryBudget::builder()
                .deposit_ratio(self.retry.budget_ratio)
                .min_retries_per_sec(self.retry.budget_min_per_sec)
                .build()
        })
    }

    /// The retry policy these settings describe (default classifier, no observer: add one with
    /// [`RetryPolicy::observer`]).
    pub fn retry_policy(&self) -> Result<RetryPolicy, ConfigError> {
        self.validate()?;
        let mut policy = RetryPolicy::new()
            .max_retries(self.retry.max_retries)
            .backoff(self.backoff())
            .retry_after_cap(Duration::from_secs_f64(self.retry_after.max_secs))
            .retry_after_mode(self.retry_after.mode);
        policy = match self.retry_budget() {
            Some(budget) => policy.budget(budget),
            None => policy.without_budget(),
        };
        if let Some(deadline) = self.deadline() {
            policy = policy.deadline(deadline);
        }
        Ok(policy)
    }

    /// The shared pause gate these settings describe (its release window).
    pub fn pause_gate(&self) -> PauseGate {
        PauseGate::builder()
            .release_window(Duration::from_secs_f64(
                self.retry_after.release_window_secs,
            ))
            .build()
    }

    /// The `Retry-After` layer these settings describe, with a new [`pause_gate`](Self::pause_gate):
    /// the cap, and pauses keyed by upstream or by upstream and [`Namespace`].
    pub fn retry_after_layer(&self) -> Result<RetryAfterLayer, ConfigError> {
        self.validate()?;
        let layer = RetryAfterLayer::new()
            .with_gate(self.pause_gate())
            .max_delay(Duration::from_secs_f64(self.retry_after.max_secs));
        Ok(match self.retry_after.pause_scope {
            PauseScope::Upstream => layer,
            PauseScope::Namespace => layer.key_fn(|uri, extensions| {
                let authority = uri.authority().map_or("", |a| a.as_str());
                let namespace = extensions.get::<Namespace>().map(Namespace::as_str);
                PauseKey::new(
                    authority,
                    Some(namespace.unwrap_or(Namespace::DEFAULT_NAME)),
                )
            }),
        })
    }

    /// A [`Metrics`](crate::metrics::Metrics) builder with these settings' prefix and label cap.
    #[cfg(feature = "metrics")]
    pub fn metrics_builder(&self) -> crate::metrics::MetricsBuilder {
        crate::metrics::Metrics::builder()
            .prefix(self.metrics.prefix.clone())
            .max_namespace_labels(self.metrics.max_namespace_labels)
    }
}

fn quota(rate: f64, burst: u32) -> Result<Quota, QuotaError> {
    Quota::per_second(rate)?.with_burst(burst)
}

fn quota_error(error: QuotaError) -> ConfigError {
    ConfigError::RateLimiter(BuildError::GlobalQuota(error))
}

/// The longest duration a setting may name: a day. Anything longer is a typo.
const MAX_SECS: f64 = 86_400.0;

fn check_secs(secs: f64) -> Result<(), &'static str> {
    if secs.is_finite() && (0.0..=MAX_SECS).contains(&secs) {
        Ok(())
    } else {
        Err("must be a number of seconds from 0 to 86400")
    }
}

fn parse_number(value: &str) -> Result<f64, &'static str> {
    value
        .trim()
        .parse::<f64>()
        .map_err(|_| "not a number")
        .and_then(|n| {
            if n.is_finite() {
                Ok(n)
            } else {
                Err("not a finite number")
            }
        })
}

fn parse_rate(value: &str) -> Result<f64, &'static str> {
    let rate = parse_number(value)?;
    Quota::per_second(rate)
        .map(|_| rate)
        .map_err(|_| "must be a rate above 0 and at most 1e9 per second")
}

fn parse_burst(value: &str) -> Result<u32, &'static str> {
    match value.trim().parse::<u32>() {
        Ok(0) | Err(_) => Err("must be a whole number from 1 to 4294967295"),
        Ok(burst) => Ok(burst),
    }
}

fn parse_positive(value: &str) -> Result<usize, &'static str> {
    match value.trim().parse::<usize>() {
        Ok(0) | Err(_) => Err("must be a whole number above 0"),
        Ok(n) => Ok(n),
    }
}

fn parse_secs(value: &str) -> Result<f64, &'static str> {
    let secs = parse_number(value)?;
    check_secs(secs).map(|()| secs)
}

fn parse_optional_secs(value: &str) -> Result<Option<f64>, &'static str> {
    match value.trim() {
        "" | "none" | "off" => Ok(None),
        other => parse_secs(other).map(Some),
    }
}

fn parse_count(value: &str) -> Result<u32, &'static str> {
    value
        .trim()
        .parse::<u32>()
        .map_err(|_| "must be a whole number from 0 to 4294967295")
}

fn check_ratio(ratio: f64) -> Result<(), &'static str> {
    if ratio.is_finite() && (0.0..=1000.0).contains(&ratio) {
        Ok(())
    } else {
        Err("must be a number from 0 to 1000")
    }
}

fn parse_ratio(value: &str) -> Result<f64, &'static str> {
    let ratio = parse_number(value)?;
    check_ratio(ratio).map(|()| ratio)
}

fn parse_switch(value: &str) -> Result<bool, &'static str> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err("must be on or off (true/false, yes/no, 1/0)"),
    }
}

fn parse_scope(value: &str) -> Result<PauseScope, &'static str> {
    match value.trim().to_ascii_lowercase().as_str() {
        "upstream" => Ok(PauseScope::Upstream),
        "namespace" => Ok(PauseScope::Namespace),
        _ => Err("must be upstream or namespace"),
    }
}

fn parse_path(value: &str) -> Result<Option<PathBuf>, &'static str> {
    match value.trim() {
        "" => Err("must be a file name"),
        "none" | "off" => Ok(None),
        _ => Ok(Some(PathBuf::from(value))),
    }
}

/// `Jitter` by its lower-case name in files and variables.
mod jitter_names {
    use super::Jitter;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn parse(value: &str) -> Result<Jitter, &'static str> {
        match value.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(Jitter::Full),
            "equal" => Ok(Jitter::Equal),
            "decorrelated" => Ok(Jitter::Decorrelated),
            "none" => Ok(Jitter::None),
            _ => Err("must be full, equal, decorrelated or none"),
        }
    }

    pub(super) fn name(jitter: Jitter) -> &'static str {
        match jitter {
            Jitter::Equal => "equal",
            Jitter::Decorrelated => "decorrelated",
            Jitter::None => "none",
            Jitter::Full => "full",
        }
    }

    pub(super) fn serialize<S: Serializer>(jitter: &Jitter, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(name(*jitter))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Jitter, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(|reason| D::Error::custom(format!("jitter {text:?}: {reason}")))
    }
}

/// `RetryAfterMode` as `clamp` or `fail` in files and variables.
mod mode_names {
    use super::RetryAfterMode;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn parse(value: &str) -> Result<RetryAfterMode, &'static str> {
        match value.trim().to_ascii_lowercase().as_str() {
            "clamp" => Ok(RetryAfterMode::Clamp),
            "fail" | "fail_fast" | "failfast" => Ok(RetryAfterMode::FailFast),
            _ => Err("must be clamp or fail"),
        }
    }

    pub(super) fn serialize<S: Serializer>(mode: &RetryAfterMode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match mode {
            RetryAfterMode::Clamp => "clamp",
            RetryAfterMode::FailFast => "fail",
        })
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RetryAfterMode, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(|reason| D::Error::custom(format!("mode {text:?}: {reason}")))
    }
}

fn parse_fraction(value: &str) -> Result<f64, &'static str> {
    let fill = parse_number(value)?;
    if (0.0..=1.0).contains(&fill) {
        Ok(fill)
    } else {
        Err("must be within 0..=1")
    }
}

fn parse_prefix(value: &str) -> Result<String, &'static str> {
    let valid = value
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if valid {
        Ok(value.to_owned())
    } else {
        Err(
            "must be a Prometheus metric name prefix: letters, digits and _, not starting with a digit",
        )
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// An environment variable holds a bad value.
    Env {
        /// The variable.
        variable: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting holds a bad value.
    Invalid {
        /// The setting.
        field: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A document did not parse.
    Parse {
        /// The file, or the format.
        source_name: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A file could not be read.
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The rate limiter refused the settings.
    RateLimiter(BuildError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env {
                variable,
                value,
                reason,
            } => write!(f, "environment variable {variable}={value:?}: {reason}"),
            Self::Invalid {
                field,
                value,
                reason,
            } => write!(f, "setting {field} = {value}: {reason}"),
            Self::Parse {
                source_name,
                message,
            } => write!(f, "{source_name}: {message}"),
            Self::File { path, message } => write!(f, "{}: {message}", path.display()),
            Self::RateLimiter(e) => write!(f, "rate limiter: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_are_the_design_table() {
        let config = Config::default();
        let rl = &config.rate_limit;
        assert_eq!((rl.global_rate, rl.global_burst), (50.0, 100));
        assert_eq!((rl.namespace_rate, rl.namespace_burst), (5.0, 10));
        assert_eq!(rl.max_wait_secs, 30.0);
        assert_eq!(config.metrics.prefix, "pacer");
        assert_eq!(config.retry.max_retries, 5);
        assert_eq!(
            config.backoff(),
            Backoff::new(Duration::from_millis(500), Duration::from_secs(60)).jitter(Jitter::Full)
        );
        assert_eq!(config.retry_after.max_secs, 60.0);
        assert_eq!(config.retry_after.mode, RetryAfterMode::Clamp);
        assert_eq!(config.retry_after.pause_scope, PauseScope::Upstream);
        assert_eq!(config.timeout(), Some(Duration::from_secs(30)));
        assert_eq!(config.deadline(), None);
        assert_eq!(config.pool_idle_timeout(), Some(Duration::from_secs(90)));
        assert!(config.retry_budget().is_some());
        config.validate().unwrap();
        // The policy built from the defaults is the retry module's own default policy.
        assert_eq!(
            format!("{:?}", config.retry_policy().unwrap()),
            format!("{:?}", RetryPolicy::new())
        );
        // An empty document is the defaults.
        assert_eq!(Config::from_toml_str("").unwrap(), config);
        assert_eq!(Config::from_json_str("{}").unwrap(), config);
    }

    #[test]
    fn environment_overrides_with_a_prefix() {
        let config = Config::default()
            .merge_env_vars(
                "KEYCLOAK_API",
                env(&[
                    ("KEYCLOAK_API_GLOBAL_RATE_LIMIT_TPS", "20"),
                    ("KEYCLOAK_API_GLOBAL_RATE_LIMIT_BURST", "40"),
                    ("KEYCLOAK_API_NAMESPACE_RATE_LIMIT_TPS", "0.5"),
                    ("KEYCLOAK_API_RATE_LIMIT_MAX_WAIT", "2.5"),
                    ("KEYCLOAK_API_TIMEOUT", "off"),
                    ("OTHER_GLOBAL_RATE_LIMIT_TPS", "nonsense"),
                ]),
            )
            .unwrap();
        assert_eq!(config.rate_limit.global_rate, 20.0);
        assert_eq!(config.rate_limit.global_burst, 40);
        assert_eq!(config.rate_limit.namespace_rate, 0.5);
        assert_eq!(config.rate_limit.max_wait_secs, 2.5);
        assert_eq!(config.timeout(), None);
    }

    #[test]
    fn bad_environment_values_name_the_variable_and_value() {
        for (variable, value) in [
            ("P_GLOBAL_RATE_LIMIT_TPS", "fast"),
            ("P_GLOBAL_RATE_LIMIT_TPS", "0"),
            ("P_GLOBAL_RATE_LIMIT_TPS", "-3"),
            ("P_GLOBAL_RATE_LIMIT_TPS", "NaN"),
            ("P_GLOBAL_RATE_LIMIT_BURST", "0"),
            ("P_GLOBAL_RATE_LIMIT_BURST", "1.5"),
            ("P_RATE_LIMIT_MAX_WAIT", "-1"),
            ("P_RATE_LIMIT_MAX_WAIT", "inf"),
            ("P_RATE_LIMIT_INITIAL_FILL", "2"),
            ("P_RATE_LIMIT_MAX_NAMESPACES", "0"),
            ("P_METRICS_PREFIX", "9lives"),
            ("P_RATE_LIMIT_MAX_RETRIES", "many"),
            ("P_RATE_LIMIT_MAX_RETRIES", "-1"),
            ("P_RATE_LIMIT_BACKOFF_BASE", "soon"),
            ("P_RATE_LIMIT_BACKOFF_BASE", "120"), // above the default max of 60
            ("P_RATE_LIMIT_BACKOFF_MAX", "0.1"),  // below the default base of 0.5
            ("P_RATE_LIMIT_BACKOFF_MAX", "1e9"),
            ("P_RATE_LIMIT_BACKOFF_JITTER", "lots"),
            ("P_RATE_LIMIT_RETRY_BUDGET", "maybe"),
            ("P_RATE_LIMIT_RETRY_BUDGET_RATIO", "-0.5"),
            ("P_RATE_LIMIT_RETRY_BUDGET_MIN_PER_SEC", "1.5"),
            ("P_RATE_LIMIT_RETRY_AFTER_MAX", "-60"),
            ("P_RATE_LIMIT_RETRY_AFTER_MODE", "ignore"),
            ("P_RATE_LIMIT_PAUSE_SCOPE", "galaxy"),
            ("P_RATE_LIMIT_PAUSE_RELEASE_WINDOW", "NaN"),
            ("P_TIMEOUT", "forever"),
            ("P_DEADLINE", "-5"),
            ("P_POOL_IDLE_TIMEOUT", "-1"),
            ("P_POOL_IDLE_TIMEOUT", "a while"),
            ("P_TLS_EXTRA_CA_FILE", ""),
        ] {
            let error = Config::default()
                .merge_env_vars("P", env(&[(variable, value)]))
                .unwrap_err();
            let message = error.to_string();
            assert!(
                message.contains(variable) && message.contains(value),
                "{message}"
            );
        }
    }

    #[test]
    fn retry_settings_from_the_environment() {
        let config = Config::default()
            .merge_env_vars(
                "INFRAHUB",
                env(&[
                    ("INFRAHUB_RATE_LIMIT_MAX_RETRIES", "2"),
                    ("INFRAHUB_RATE_LIMIT_BACKOFF_BASE", "0.1"),
                    ("INFRAHUB_RATE_LIMIT_BACKOFF_MAX", "4"),
                    ("INFRAHUB_RATE_LIMIT_BACKOFF_JITTER", "Decorrelated"),
                    ("INFRAHUB_RATE_LIMIT_RETRY_BUDGET", "off"),
                    ("INFRAHUB_RATE_LIMIT_RETRY_AFTER_MAX", "10"),
                    ("INFRAHUB_RATE_LIMIT_RETRY_AFTER_MODE", "fail"),
                    ("INFRAHUB_RATE_LIMIT_PAUSE_SCOPE", "namespace"),
                    ("INFRAHUB_DEADLINE", "90"),
                    ("INFRAHUB_POOL_IDLE_TIMEOUT", "4"),
                    ("INFRAHUB_TLS_EXTRA_CA_FILE", "/etc/ssl/private-ca.pem"),
                ]),
            )
            .unwrap();
        assert_eq!(config.retry.max_retries, 2);
        assert_eq!(
            config.backoff(),
            Backoff::new(Duration::from_millis(100), Duration::from_secs(4))
                .jitter(Jitter::Decorrelated)
        );
        assert!(config.retry_budget().is_none());
        assert_eq!(config.retry_after.mode, RetryAfterMode::FailFast);
        assert_eq!(config.retry_after.pause_scope, PauseScope::Namespace);
        assert_eq!(config.deadline(), Some(Duration::from_secs(90)));
        assert_eq!(config.pool_idle_timeout(), Some(Duration::from_secs(4)));
        assert_eq!(
            config.tls.extra_ca_file.as_deref(),
            Some(Path::new("/etc/ssl/private-ca.pem"))
        );
        let policy = format!("{:?}", config.retry_policy().unwrap());
        assert!(policy.contains("max_retries: 2"), "{policy}");
        assert!(policy.contains("budget: None"), "{policy}");
        assert!(policy.contains("deadline: Some(90s)"), "{policy}");
        assert!(policy.contains("FailFast"), "{policy}");
        // Base and max set together in either order are checked together.
        let config = Config::default()
            .merge_env_vars(
                "P",
                env(&[
                    ("P_RATE_LIMIT_BACKOFF_MAX", "100"),
                    ("P_RATE_LIMIT_BACKOFF_BASE", "80"),
                ]),
            )
            .unwrap();
        assert_eq!(config.backoff().base(), Duration::from_secs(80));
    }

    #[tokio::test(start_paused = true)]
    async fn namespace_pause_scope_keys_pauses_by_tenant() {
        use tower::{Layer, ServiceExt, service_fn};

        let upstream = service_fn(|req: http::Request<()>| async move {
            let busy = req.uri().path() == "/busy";
            let res = http::Response::builder()
                .status(if busy { 429 } else { 200 })
                .header("retry-after", "5")
                .body(())
                .unwrap();
            Ok::<_, std::convert::Infallible>(res)
        });
        let request = |path: &str, namespace: &str| {
            let mut req = http::Request::get(format!("http://api.test{path}"))
                .body(())
                .unwrap();
            req.extensions_mut().insert(Namespace::new(namespace));
            req
        };
        for (scope, other_tenant_waits) in [("upstream", true), ("namespace", false)] {
            let config =
                Config::from_toml_str(&format!("[retry_after]\npause_scope = \"{scope}\"\n"))
                    .unwrap();
            let svc = config.retry_after_layer().unwrap().layer(upstream);
            let res = svc.clone().oneshot(request("/busy", "a")).await.unwrap();
            assert_eq!(res.status(), 429);
            // The refused tenant is paused in both scopes.
            let refused_key = match scope {
                "upstream" => PauseKey::authority("api.test"),
                _ => PauseKey::new("api.test", Some("a")),
            };
            assert!(svc.gate().is_paused(refused_key), "{scope}");
            let start = tokio::time::Instant::now();
            svc.clone().oneshot(request("/ok", "b")).await.unwrap();
            assert_eq!(
                start.elapsed() >= Duration::from_secs(5),
                other_tenant_waits,
                "{scope}"
            );
        }
    }

    #[test]
    fn every_section_round_trips_through_toml_and_json() {
        let mut config = Config::default();
        config.retry.jitter = Jitter::Equal;
        config.retry_after.mode = RetryAfterMode::FailFast;
        config.retry_after.pause_scope = PauseScope::Namespace;
        config.deadline_secs = Some(12.5);
        config.tls.extra_ca_file = Some(PathBuf::from("ca.pem"));
        let toml_text = r#"
            deadline_secs = 12.5
            [retry]
            jitter = "equal"
            [retry_after]
            mode = "fail"
            pause_scope = "namespace"
            [tls]
            extra_ca_file = "ca.pem"
        "#;
        assert_eq!(Config::from_toml_str(toml_text).unwrap(), config);
        let json_text = serde_json::to_string(&config).unwrap();
        assert_eq!(Config::from_json_str(&json_text).unwrap(), config);
        let error = Config::from_toml_str("[retry]\njitter = \"wild\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("wild"), "{error}");
        let error = Config::from_toml_str("[retry]\nbackoff_base_secs = 9\nbackoff_max_secs = 3\n")
            .unwrap()
            .retry_policy()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("backoff_base_secs") && error.contains("9/3"),
            "{error}"
        );
    }

    #[test]
    fn files_parse_and_unknown_settings_are_errors() {
        let dir = std::env::temp_dir().join(format!("pacer-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let toml_path = dir.join("pacer.toml");
        std::fs::write(
            &toml_path,
            "timeout_secs = 5\n[rate_limit.overrides.platform]\nrate = 10\nburst = 20\n",
        )
        .unwrap();
        let config = Config::from_file(&toml_path).unwrap();
        assert_eq!(config.timeout(), Some(Duration::from_secs(5)));
        let limiter = config.rate_limiter().unwrap();
        assert_eq!(
            limiter.namespace_quota(&Namespace::new("platform")).burst(),
            20
        );

        let json_path = dir.join("pacer.json");
        std::fs::write(&json_path, r#"{"rate_limit": {"global_rat": 3}}"#).unwrap();
        let error = Config::from_file(&json_path).unwrap_err().to_string();
        assert!(
            error.contains("pacer.json") && error.contains("global_rat"),
            "{error}"
        );

        let error = Config::from_toml_str("[rate_limit]\nnamespace_rate = 0\n")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(error.contains("namespace_rate"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
