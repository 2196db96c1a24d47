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
//! | `timeout_secs` (per attempt) | 30 | `TIMEOUT` |
//! | `metrics.prefix` | `pacer` | `METRICS_PREFIX` |
//! | `metrics.max_namespace_labels` | 100 | `METRICS_MAX_NAMESPACE_LABELS` |
//!
//! Durations are seconds, fractions allowed (`0.5`). A value that does not parse or is out of
//! range is an error naming the variable (or field) and the value — never a silent default.
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
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Namespace;
use crate::rate_limit::{BuildError, Quota, QuotaError, RateLimiter};

/// Every setting of the pacer stack. `Default` is the design's defaults table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The two-level rate limiter.
    pub rate_limit: RateLimitConfig,
    /// The per-attempt timeout in seconds (time waiting for a rate-limit slot excluded);
    /// `None` for no timeout.
    pub timeout_secs: Option<f64>,
    /// Metrics naming and cardinality.
    pub metrics: MetricsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            rate_limit: RateLimitConfig::default(),
            timeout_secs: Some(30.0),
            metrics: MetricsConfig::default(),
        }
    }
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
                "TIMEOUT" => self.timeout_secs = parse_optional_secs(&value).map_err(bad)?,
                "METRICS_PREFIX" => self.metrics.prefix = parse_prefix(&value).map_err(bad)?,
                "METRICS_MAX_NAMESPACE_LABELS" => {
                    self.metrics.max_namespace_labels = parse_positive(&value).map_err(bad)?;
                }
                _ => {}
            }
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
        config.validate().unwrap();
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
