//! [`Config`]: the client's settings, with the Infrahub Python SDK's defaults and environment
//! variable names.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use pacer::auth::{ExposeSecret, SecretString};
use pacer::config::parse;

use crate::error::ConfigError;

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
/// | `INFRAHUB_ADDRESS` | `address` (no user-info: credentials go in the settings below) | `http://localhost:8000` |
/// | `INFRAHUB_API_TOKEN` | `api_token` | none |
/// | `INFRAHUB_USERNAME` / `INFRAHUB_PASSWORD` | `username` / `password` | none |
/// | `INFRAHUB_DEFAULT_BRANCH` | `default_branch` | `main` |
/// | `INFRAHUB_TIMEOUT` | `timeout` (seconds, per attempt) | 60 |
/// | `INFRAHUB_RATE_LIMIT_RETRY_ENABLED` | `rate_limit_retry_enabled` | true |
/// | `INFRAHUB_RATE_LIMIT_MAX_RETRIES` | `rate_limit_max_retries` | 5 |
/// | `INFRAHUB_RATE_LIMIT_BACKOFF_BASE` | `rate_limit_backoff_base` (seconds) | 0.5 |
/// | `INFRAHUB_RATE_LIMIT_BACKOFF_MAX` | `rate_limit_backoff_max` (seconds; also caps `Retry-After`) | 60 |
/// | `INFRAHUB_RETRY_ON_FAILURE` | `retry_on_failure` | false |
/// | `INFRAHUB_RETRY_DELAY` | `retry_delay` (seconds before the first retry of a failure) | 5 |
/// | `INFRAHUB_RETRY_MAX_DELAY` | `retry_max_delay` (seconds; the cap of the doubling delay) | 5 |
/// | `INFRAHUB_MAX_RETRY_DURATION` | `max_retry_duration` (seconds; the total deadline of a call) | 300 |
/// | `INFRAHUB_PAGINATION_SIZE` | `pagination_size` | 50 |
/// | `INFRAHUB_MAX_CONCURRENT_EXECUTION` | `max_concurrent_execution` | 5 |
/// | `INFRAHUB_PROXY` | `proxy` (a secret: it may hold credentials) | none |
/// | `INFRAHUB_TLS_INSECURE` | `tls_insecure` | false |
/// | `INFRAHUB_TLS_CA_FILE` | `tls_ca_file` (a PEM CA certificate or bundle) | none |
///
/// The SDK's meanings: with `retry_on_failure`, a call that fails for a transient reason (a
/// `5xx`, a timeout, a connection error; for queries only, never mutations) is tried again
/// `retry_delay` later, until `max_retry_duration` has passed since the call began. The SDK
/// waits the same `retry_delay` every time; `retry_max_delay` (not an SDK setting: its
/// default, equal to `retry_delay`, keeps the SDK's fixed delay) lets the delay double from
/// `retry_delay` up to it instead. `max_retry_duration` is also the total deadline of every
/// call (rate-limit waits, `429` retries and token requests included), so that with default
/// settings no call takes longer than 300 s. `tls_insecure` turns certificate verification
/// off; `tls_ca_file` adds a CA to the trusted roots.
///
/// Booleans accept `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` (any case); numbers and
/// durations are read by [`pacer::config::parse`] (durations: seconds, fractions allowed,
/// from 0 to a day). A bad value is a [`ConfigError::Env`] naming the variable (a secret's
/// value is never quoted). The client-side rate limits come from `pacer`'s own `INFRAHUB_...`
/// names (see `pacer::config`), e.g. `INFRAHUB_GLOBAL_RATE_LIMIT_TPS`.
///
/// `Debug` redacts the secrets and any user-info in `address`.
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// The Infrahub base URL (`http://host:8000`).
    pub address: String,
    /// An API token, sent as `X-INFRAHUB-KEY`. Takes precedence over username/password.
    pub api_token: Option<SecretString>,
    /// The login user (`/api/auth/login`).
    pub username: Option<String>,
    /// Its password.
    pub password: Option<SecretString>,
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
    /// The delay before the first retry of a failure (`retry_on_failure`).
    pub retry_delay: Duration,
    /// The longest delay between retries of a failure: the delay doubles from `retry_delay`
    /// up to it (equal to `retry_delay`: a fixed delay, as the SDK waits).
    pub retry_max_delay: Duration,
    /// How long a call may take in all, its retries included (the SDK's bound on retrying).
    pub max_retry_duration: Duration,
    /// Nodes per page when paginating.
    pub pagination_size: u32,
    /// Tasks the batch helper runs at once.
    pub max_concurrent_execution: usize,
    /// The proxy every request goes through (`http://user:pass@proxy:3128`); a secret, as it
    /// may carry credentials.
    pub proxy: Option<SecretString>,
    /// Whether TLS certificates go unverified (self-signed test servers only).
    pub tls_insecure: bool,
    /// A PEM file of CA certificates trusted besides the built-in roots.
    pub tls_ca_file: Option<PathBuf>,
    /// `X-Priority` for every request, unless a call sets its own.
    pub priority: Option<Priority>,
    /// The rate-limit namespace of every request, unless a call sets its own.
    pub namespace: Option<String>,
    /// The client-side rate limiter and metrics settings.
    pub pacer: pacer::config::Config,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("address", &redact_userinfo(&self.address))
            .field("api_token", &self.api_token)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("default_branch", &self.default_branch)
            .field("timeout", &self.timeout)
            .field("rate_limit_retry_enabled", &self.rate_limit_retry_enabled)
            .field("rate_limit_max_retries", &self.rate_limit_max_retries)
            .field("rate_limit_backoff_base", &self.rate_limit_backoff_base)
            .field("rate_limit_backoff_max", &self.rate_limit_backoff_max)
            .field("retry_on_failure", &self.retry_on_failure)
            .field("retry_delay", &self.retry_delay)
            .field("retry_max_delay", &self.retry_max_delay)
            .field("max_retry_duration", &self.max_retry_duration)
            .field("pagination_size", &self.pagination_size)
            .field("max_concurrent_execution", &self.max_concurrent_execution)
            .field("proxy", &self.proxy)
            .field("tls_insecure", &self.tls_insecure)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("priority", &self.priority)
            .field("namespace", &self.namespace)
            .field("pacer", &self.pacer)
            .finish()
    }
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
            retry_delay: Duration::from_secs(5),
            retry_max_delay: Duration::from_secs(5),
            max_retry_duration: Duration::from_secs(300),
            pagination_size: 50,
            max_concurrent_execution: 5,
            proxy: None,
            tls_insecure: false,
            tls_ca_file: None,
            priority: None,
            namespace: None,
            pacer: pacer::config::Config::default(),
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
        let mut retry_max_delay_set = false;
        for (name, value) in &vars {
            let bad = |reason: &str| ConfigError::Env {
                variable: name.clone(),
                value: value.clone(),
                reason: reason.to_owned(),
            };
            match &name[PREFIX.len()..] {
                "ADDRESS" => {
                    config.address = parse_address(value).map_err(|reason| ConfigError::Env {
                        variable: name.clone(),
                        value: redact_userinfo(value),
                        reason: reason.to_owned(),
                    })?;
                }
                "API_TOKEN" => config.api_token = non_empty(value).map(SecretString::from),
                "USERNAME" => config.username = non_empty(value).map(str::to_owned),
                "PASSWORD" => config.password = non_empty(value).map(SecretString::from),
                "DEFAULT_BRANCH" => {
                    config.default_branch = non_empty(value)
                        .ok_or_else(|| bad("expected a branch name"))?
                        .to_owned();
                }
                "TIMEOUT" => config.timeout = parse::parse_positive_duration(value).map_err(bad)?,
                "RATE_LIMIT_RETRY_ENABLED" => {
                    config.rate_limit_retry_enabled = parse::parse_switch(value).map_err(bad)?;
                }
                "RATE_LIMIT_MAX_RETRIES" => {
                    config.rate_limit_max_retries = parse::parse_count(value).map_err(bad)?;
                }
                "RATE_LIMIT_BACKOFF_BASE" => {
                    config.rate_limit_backoff_base =
                        parse::parse_positive_duration(value).map_err(bad)?;
                }
                "RATE_LIMIT_BACKOFF_MAX" => {
                    config.rate_limit_backoff_max =
                        parse::parse_positive_duration(value).map_err(bad)?;
                }
                "RETRY_ON_FAILURE" => {
                    config.retry_on_failure = parse::parse_switch(value).map_err(bad)?;
                }
                "RETRY_DELAY" => {
                    config.retry_delay = parse::parse_positive_duration(value).map_err(bad)?;
                }
                "RETRY_MAX_DELAY" => {
                    config.retry_max_delay = parse::parse_positive_duration(value).map_err(bad)?;
                    retry_max_delay_set = true;
                }
                "MAX_RETRY_DURATION" => {
                    config.max_retry_duration =
                        parse::parse_positive_duration(value).map_err(bad)?;
                }
                "PAGINATION_SIZE" => {
                    config.pagination_size = parse::parse_positive(value)
                        .ok()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| bad("expected a whole number from 1 to 4294967295"))?;
                }
                "MAX_CONCURRENT_EXECUTION" => {
                    config.max_concurrent_execution = parse::parse_positive(value).map_err(bad)?;
                }
                "PROXY" => {
                    config.proxy = match non_empty(value) {
                        None => None,
                        Some(proxy) => {
                            pacer::config::ProxyUrl::parse(proxy).map_err(|reason| {
                                ConfigError::Env {
                                    variable: name.clone(),
                                    value: "***".into(),
                                    reason: reason.to_owned(),
                                }
                            })?;
                            Some(SecretString::from(proxy))
                        }
                    };
                }
                "TLS_INSECURE" => config.tls_insecure = parse::parse_switch(value).map_err(bad)?,
                "TLS_CA_FILE" => {
                    config.tls_ca_file = match non_empty(value) {
                        None => None,
                        Some(path) => parse::parse_path(path).map_err(bad)?,
                    };
                }
                _ => {}
            }
        }
        // The SDK's delay is fixed: unless its cap is named too, the cap follows the delay.
        if !retry_max_delay_set {
            config.retry_max_delay = config.retry_delay;
        }
        // The secrets never reach pacer's parser (whose errors quote values), and the settings
        // read above are the SDK's own: `pacer_config` applies them, pacer need not read them
        // a second time.
        let pacer_vars = vars.into_iter().filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "INFRAHUB_API_TOKEN"
                    | "INFRAHUB_PASSWORD"
                    | "INFRAHUB_PROXY"
                    | "INFRAHUB_ADDRESS"
                    | "INFRAHUB_TLS_INSECURE"
                    | "INFRAHUB_TLS_CA_FILE"
                    | "INFRAHUB_RETRY_DELAY"
                    | "INFRAHUB_RETRY_MAX_DELAY"
                    | "INFRAHUB_MAX_RETRY_DURATION"
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
        // The SDK's bound on retrying is the call's total deadline (a shorter
        // `INFRAHUB_DEADLINE` wins).
        let max_retry_duration = self.max_retry_duration.as_secs_f64();
        pacer.deadline_secs = Some(
            pacer
                .deadline_secs
                .map_or(max_retry_duration, |secs| secs.min(max_retry_duration)),
        );
        if let Some(ca_file) = &self.tls_ca_file {
            pacer.tls.extra_ca_file = Some(ca_file.clone());
        }
        if let Some(proxy) = &self.proxy {
            // `validate`, which every client constructor runs first, refuses a proxy that does
            // not parse: none is dropped here in favour of a direct connection.
            pacer.proxy = pacer::config::ProxyUrl::parse(proxy.expose_secret()).ok();
        }
        pacer.tls.insecure = pacer.tls.insecure || self.tls_insecure;
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
        if self.retry_delay.is_zero() {
            return Err(invalid("retry_delay", "must be more than zero"));
        }
        if self.retry_delay > self.retry_max_delay {
            return Err(invalid("retry_delay", "must not exceed retry_max_delay"));
        }
        if self.max_retry_duration.is_zero() {
            return Err(invalid("max_retry_duration", "must be more than zero"));
        }
        if let Some(proxy) = &self.proxy {
            pacer::config::ProxyUrl::parse(proxy.expose_secret())
                .map_err(|reason| invalid("proxy", reason))?;
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

/// An `http(s)://host[:port]` base URL, without user-info: credentials in a URL end up in
/// logs and errors, so they are refused (they belong in `api_token` or `username`/`password`).
fn parse_address(value: &str) -> Result<String, &'static str> {
    let value = value.trim().trim_end_matches('/');
    let uri: http::Uri = value
        .parse()
        .map_err(|_| "expected an http:// or https:// URL")?;
    match (uri.scheme_str(), uri.authority()) {
        (_, Some(authority)) if authority.as_str().contains('@') => {
            Err("must not hold user-info (user:password@); set the credentials on their own")
        }
        (Some("http" | "https"), Some(_)) => Ok(value.to_owned()),
        _ => Err("expected an http:// or https:// URL"),
    }
}

/// `value` with anything between `://` and an `@` of its authority replaced by `***`, for
/// an error that quotes an address.
pub(crate) fn redact_userinfo(value: &str) -> String {
    let Some(start) = value.find("://").map(|i| i + 3) else {
        return value.to_owned();
    };
    let authority_end = value[start..]
        .find(['/', '?', '#'])
        .map_or(value.len(), |i| start + i);
    match value[start..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &value[..start], &value[start + at..]),
        None => value.to_owned(),
    }
}
