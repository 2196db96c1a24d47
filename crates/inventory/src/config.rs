//! [`Config`]: the client's settings, with the Infrahub Python SDK's defaults and environment
//! variable names.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// A secret string (API token, password): sent where it belongs, shown as `***` in `Debug`
/// and `Display`, so it never reaches logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself; use only to send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(secret: &str) -> Self {
        Self::new(secret)
    }
}

impl From<String> for Secret {
    fn from(secret: String) -> Self {
        Self::new(secret)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// The `X-Priority` an Infrahub request is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    /// `X-Priority: low` (background work).
    Low,
    /// `X-Priority: high` (interactive work).
    High,
}

impl Priority {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::High => "high",
        }
    }
}

/// The client's settings. [`Default`] gives the Infrahub Python SDK's defaults;
/// [`Config::from_env`] reads the SDK's environment variables:
///
/// | variable | field | default |
/// |---|---|---|
/// | `INFRAHUB_ADDRESS` | `address` | `http://localhost:8000` |
/// | `INFRAHUB_API_TOKEN` | `api_token` | none |
/// | `INFRAHUB_USERNAME` / `INFRAHUB_PASSWORD` | `username` / `password` | none |
/// | `INFRAHUB_DEFAULT_BRANCH` | `default_branch` | `main` |
/// | `INFRAHUB_TIMEOUT` | `timeout` (seconds, per attempt) | 60 |
/// | `INFRAHUB_RATE_LIMIT_RETRY_ENABLED` | `rate_limit_retry_enabled` | true |
/// | `INFRAHUB_RATE_LIMIT_MAX_RETRIES` | `rate_limit_max_retries` | 5 |
/// | `INFRAHUB_RATE_LIMIT_BACKOFF_BASE` | `rate_limit_backoff_base` (seconds) | 0.5 |
/// | `INFRAHUB_RATE_LIMIT_BACKOFF_MAX` | `rate_limit_backoff_max` (seconds; also caps `Retry-After`) | 60 |
/// | `INFRAHUB_RETRY_ON_FAILURE` | `retry_on_failure` | false |
/// | `INFRAHUB_PAGINATION_SIZE` | `pagination_size` | 50 |
/// | `INFRAHUB_MAX_CONCURRENT_EXECUTION` | `max_concurrent_execution` | 5 |
///
/// Booleans accept `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` (any case). The client-side
/// rate limits come from `pacer`'s own `INFRAHUB_...` names (see `pacer::config`), e.g.
/// `INFRAHUB_GLOBAL_RATE_LIMIT_TPS`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The Infrahub base URL (`http://host:8000`).
    pub address: String,
    /// An API token, sent as `X-INFRAHUB-KEY`. Takes precedence over username/password.
    pub api_token: Option<Secret>,
    /// The login user (`/api/auth/login`).
    pub username: Option<String>,
    /// Its password.
    pub password: Option<Secret>,
    /// The branch operations run on unless a call names another.
    pub default_branch: String,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Whether `429`s are retried.
    pub rate_limit_retry_enabled: bool,
    /// Retries after the first attempt.
    pub rate_limit_max_retries: u32,
    /// Backoff base (`base * 2^n`, full jitter).
    pub rate_limit_backoff_base: Duration,
    /// Backoff cap; a longer `Retry-After` is clamped to it.
    pub rate_limit_backoff_max: Duration,
    /// Whether transient failures (`5xx`, timeouts, transport errors) are retried, for
    /// idempotent operations only: GraphQL queries and GETs yes, mutations never.
    pub retry_on_failure: bool,
    /// Nodes per page when paginating.
    pub pagination_size: u32,
    /// Tasks the batch helper runs at once.
    pub max_concurrent_execution: usize,
    /// `X-Priority` for every request, unless a call sets its own.
    pub priority: Option<Priority>,
    /// The rate-limit namespace of every request, unless a call sets its own.
    pub namespace: Option<String>,
    /// The client-side rate limiter and metrics settings.
    pub pacer: pacer::config::Config,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            address: "http://localhost:8000".into(),
            api_token: None,
            username: None,
            password: None,
            default_branch: "main".into(),
            timeout: Duration::from_secs(60),
            rate_limit_retry_enabled: true,
            rate_limit_max_retries: 5,
            rate_limit_backoff_base: Duration::from_millis(500),
            rate_limit_backoff_max: Duration::from_secs(60),
            retry_on_failure: false,
            pagination_size: 50,
            max_concurrent_execution: 5,
            priority: None,
            namespace: None,
            pacer: pacer::config::Config::default(),
        }
    }
}

/// A setting that could not be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// An environment variable has a value that cannot be used.
    Env {
        /// The variable.
        variable: String,
        /// Its value (never a secret's).
        value: String,
        /// What was expected.
        reason: String,
    },
    /// A setting is invalid.
    Invalid {
        /// The setting.
        setting: &'static str,
        /// Why.
        reason: String,
    },
    /// The pacer settings are invalid.
    Pacer(pacer::config::ConfigError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Env {
                variable,
                value,
                reason,
            } => write!(f, "{variable}={value:?} is invalid: {reason}"),
            ConfigError::Invalid { setting, reason } => write!(f, "{setting} is invalid: {reason}"),
            ConfigError::Pacer(error) => write!(f, "rate limit settings: {error}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Pacer(error) => Some(error),
            _ => None,
        }
    }
}

const PREFIX: &str = "INFRAHUB_";

/// Below uvicorn's default keep-alive timeout (5 s), which Infrahub is served with.
const INFRAHUB_POOL_IDLE_SECS: f64 = 4.0;

impl Config {
    /// The defaults overridden by this process's `INFRAHUB_*` environment variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_vars(std::env::vars())
    }

    /// The defaults overridden by the given `(name, value)` pairs, read as
    /// [`from_env`](Self::from_env) reads the environment; other names are ignored.
    pub fn from_env_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(name, _)| name.starts_with(PREFIX))
            .collect();
        let mut config = Self::default();
        for (name, value) in &vars {
            let bad = |reason: &str| ConfigError::Env {
                variable: name.clone(),
                value: value.clone(),
                reason: reason.to_owned(),
            };
            match &name[PREFIX.len()..] {
                "ADDRESS" => config.address = parse_address(value).map_err(bad)?,
                "API_TOKEN" => config.api_token = non_empty(value).map(Secret::new),
                "USERNAME" => config.username = non_empty(value).map(str::to_owned),
                "PASSWORD" => config.password = non_empty(value).map(Secret::new),
                "DEFAULT_BRANCH" => {
                    config.default_branch = non_empty(value)
                        .ok_or_else(|| bad("expected a branch name"))?
                        .to_owned();
                }
                "TIMEOUT" => config.timeout = parse_seconds(value, false).map_err(bad)?,
                "RATE_LIMIT_RETRY_ENABLED" => {
                    config.rate_limit_retry_enabled = parse_bool(value).map_err(bad)?;
                }
                "RATE_LIMIT_MAX_RETRIES" => {
                    config.rate_limit_max_retries = value
                        .trim()
                        .parse()
                        .map_err(|_| bad("expected a whole number of retries (0 or more)"))?;
                }
                "RATE_LIMIT_BACKOFF_BASE" => {
                    config.rate_limit_backoff_base = parse_seconds(value, false).map_err(bad)?;
                }
                "RATE_LIMIT_BACKOFF_MAX" => {
                    config.rate_limit_backoff_max = parse_seconds(value, false).map_err(bad)?;
                }
                "RETRY_ON_FAILURE" => config.retry_on_failure = parse_bool(value).map_err(bad)?,
                "PAGINATION_SIZE" => {
                    config.pagination_size = parse_positive(value).map_err(bad)?;
                }
                "MAX_CONCURRENT_EXECUTION" => {
                    config.max_concurrent_execution = parse_positive(value).map_err(bad)? as usize;
                }
                _ => {}
            }
        }
        // The secrets never reach pacer's parser (whose errors quote values), and the settings
        // read above are the SDK's own: `pacer_config` applies them, pacer need not read them
        // a second time.
        let pacer_vars = vars.into_iter().filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "INFRAHUB_API_TOKEN"
                    | "INFRAHUB_PASSWORD"
                    | "INFRAHUB_TIMEOUT"
                    | "INFRAHUB_RATE_LIMIT_MAX_RETRIES"
                    | "INFRAHUB_RATE_LIMIT_BACKOFF_BASE"
                    | "INFRAHUB_RATE_LIMIT_BACKOFF_MAX"
            )
        });
        config.pacer = pacer::config::Config::default()
            .merge_env_vars("INFRAHUB", pacer_vars)
            .map_err(ConfigError::Pacer)?;
        config.validate()?;
        Ok(config)
    }

    /// The pacer settings the client's stack is built from: `pacer` with the retry and
    /// timeout settings of this configuration (theirs win: they are the SDK's names).
    pub fn pacer_config(&self) -> pacer::config::Config {
        let mut pacer = self.pacer.clone();
        pacer.retry.max_retries = self.rate_limit_max_retries;
        pacer.retry.backoff_base_secs = self.rate_limit_backoff_base.as_secs_f64();
        pacer.retry.backoff_max_secs = self.rate_limit_backoff_max.as_secs_f64();
        pacer.retry_after.max_secs = self.rate_limit_backoff_max.as_secs_f64();
        pacer.retry_after.mode = pacer::retry::RetryAfterMode::Clamp;
        pacer.timeout_secs = Some(self.timeout.as_secs_f64());
        // Infrahub runs on uvicorn, which closes connections idle for 5 s: drop them first, so
        // that no mutation is written into a connection the server is closing.
        pacer.pool_idle_timeout_secs = Some(
            pacer
                .pool_idle_timeout_secs
                .map_or(INFRAHUB_POOL_IDLE_SECS, |secs| {
                    secs.min(INFRAHUB_POOL_IDLE_SECS)
                }),
        );
        pacer
    }

    /// Checks the settings that cannot be checked by their types.
    pub fn validate(&self) -> Result<(), ConfigError> {
        parse_address(&self.address).map_err(|reason| ConfigError::Invalid {
            setting: "address",
            reason: reason.to_owned(),
        })?;
        let invalid = |setting, reason: &str| ConfigError::Invalid {
            setting,
            reason: reason.to_owned(),
        };
        if self.default_branch.is_empty() {
            return Err(invalid("default_branch", "empty"));
        }
        if self.timeout.is_zero() {
            return Err(invalid("timeout", "must be more than zero"));
        }
        if self.rate_limit_backoff_base > self.rate_limit_backoff_max {
            return Err(invalid(
                "rate_limit_backoff_base",
                "must not exceed rate_limit_backoff_max",
            ));
        }
        if self.pagination_size == 0 {
            return Err(invalid("pagination_size", "must be at least 1"));
        }
        if self.max_concurrent_execution == 0 {
            return Err(invalid("max_concurrent_execution", "must be at least 1"));
        }
        if self.username.is_some() != self.password.is_some() && self.api_token.is_none() {
            return Err(invalid(
                "username",
                "username and password must be given together",
            ));
        }
        self.pacer_config()
            .validate()
            .map(drop)
            .map_err(ConfigError::Pacer)
    }
}

fn non_empty(value: &str) -> Option<&str> {
    let value = value.trim();
    (!value.is_empty()).then_some(value)
}

fn parse_address(value: &str) -> Result<String, &'static str> {
    let value = value.trim().trim_end_matches('/');
    let uri: http::Uri = value
        .parse()
        .map_err(|_| "expected an http:// or https:// URL")?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(_)) => Ok(value.to_owned()),
        _ => Err("expected an http:// or https:// URL"),
    }
}

fn parse_bool(value: &str) -> Result<bool, &'static str> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false"),
    }
}

fn parse_seconds(value: &str, allow_zero: bool) -> Result<Duration, &'static str> {
    let seconds: f64 = value
        .trim()
        .parse()
        .map_err(|_| "expected a number of seconds")?;
    if !seconds.is_finite() || seconds < 0.0 || (!allow_zero && seconds == 0.0) {
        return Err("expected a positive, finite number of seconds");
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| "expected a smaller number of seconds")
}

fn parse_positive(value: &str) -> Result<u32, &'static str> {
    match value.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number of at least 1"),
    }
}
