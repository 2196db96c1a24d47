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
//! | `retry.budget_min_per_sec` | the global rate, rounded up (see below) | `RATE_LIMIT_RETRY_BUDGET_MIN_PER_SEC` (`auto` for the default) |
//! | `retry_after.max_secs` | 60 | `RATE_LIMIT_RETRY_AFTER_MAX` |
//! | `retry_after.mode` | `clamp` (`clamp`, `fail`) | `RATE_LIMIT_RETRY_AFTER_MODE` |
//! | `retry_after.pause_scope` | `upstream` (`upstream`, `namespace`) | `RATE_LIMIT_PAUSE_SCOPE` |
//! | `retry_after.release_window_secs` | 1 | `RATE_LIMIT_PAUSE_RELEASE_WINDOW` |
//! | `retry_after.proactive` | `off` (`off`, `ratelimit`, `x-ratelimit-reset-delta`, `x-ratelimit-reset-epoch`) | `RETRY_AFTER_PROACTIVE` |
//! | `retry_after.shared` | `true`: pauses are shared through the rate limiter's store when it has one | `RETRY_AFTER_SHARED` |
//! | `timeout_secs` (per attempt) | 30 | `TIMEOUT` (`off` for none) |
//! | `deadline_secs` (whole request, retries and buffered bodies included) | 300 | `DEADLINE` (`off` for none) |
//! | `read_timeout_secs` (silence between two frames of a streaming body) | 30 | `READ_TIMEOUT_SECS` (`off` for none) |
//! | `pool_idle_timeout_secs` (idle pooled connections) | 90 | `POOL_IDLE_TIMEOUT` (`off` to keep them) |
//! | `tls.extra_ca_file` | none | `TLS_EXTRA_CA_FILE` (a PEM file) |
//! | `tls.insecure` (**dangerous**: no certificate verification) | false | `TLS_INSECURE` |
//! | `connect_timeout_secs` (TCP connect, proxy tunnel, TLS handshake) | 10 | `CONNECT_TIMEOUT_SECS` |
//! | `proxy` (`http://user:pass@proxy:3128`; credentials never shown) | none | `PROXY` (`off` for none) |
//! | `no_proxy` (hosts reached directly, as curl's `NO_PROXY`) | none | `NO_PROXY` |
//! | `proxy_from_env` (honour `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`) | true | `PROXY_FROM_ENV` |
//! | `metrics.prefix` | `pacer` | `METRICS_PREFIX` |
//! | `metrics.max_namespace_labels` (namespaces with overrides always have a label of their own) | 100 | `METRICS_MAX_NAMESPACE_LABELS` |
//! | `metrics.namespace_label_idle_secs` (an idle namespace's label slot is released once every slot is taken) | 300 | `METRICS_NAMESPACE_LABEL_IDLE_SECS` |
//!
//! Durations are seconds, fractions allowed (`0.5`). A value that does not parse or is out of
//! range is an error naming the variable (or field) and the value — never a silent default.
//!
//! [`Config::validate`] checks every value once (see its table for what each may be) and
//! answers a [`ValidConfig`] of typed values, whose factories ([`ValidConfig::rate_limiter`],
//! [`ValidConfig::retry_policy`], [`ValidConfig::retry_after_layer`],
//! [`ValidConfig::timeout`], ...) cannot fail; the `client` feature's `Client::from_config`
//! validates once and assembles all of them. Every constructor validates too:
//! [`Config::from_toml_str`], [`Config::from_json_str`], [`Config::from_file`] and
//! [`Config::merge_env_vars`] refuse a negative, NaN, infinite or out-of-range value with a
//! [`ConfigError`] naming the setting or variable. The text parsers the environment overlay
//! uses are public in [`parse`], for clients with variables of their own.
//!
//! # How long a call can take
//!
//! With the default settings no call of the `client` feature's stack (or of a buffering
//! client over it: `collect_responses`, the blocking client, pacer-admin, pacer-inventory)
//! takes longer than `deadline_secs`, 300 s: the deadline covers every attempt (each bounded
//! by `timeout_secs`, 30 s, head and buffered body included), every wait for a rate-limit
//! slot (each at most `rate_limit.max_wait_secs`, 30 s), every shared `Retry-After` pause and
//! retry sleep (each at most `retry_after.max_secs`, 60 s, or `retry.backoff_max_secs`, 60 s),
//! and ends the call with `DeadlineExceeded` when it passes. A streaming body read by the
//! caller after the head arrived is bounded between frames by `read_timeout_secs` (30 s,
//! `ReadTimeout`). With `deadline_secs` off, the bound is the sum of the parts:
//! `(max_retries + 1) × (max_wait + timeout) + max_retries × max(retry_after.max_secs,
//! backoff_max_secs)`, 6 × 60 s + 5 × 60 s = 660 s with the other defaults.
//!
//! Two settings decide how server-given delays are honoured: `retry_after.max_secs` caps a
//! `Retry-After` (both the shared pause and the retry's sleep); above it `mode = "clamp"`
//! waits the cap, `mode = "fail"` gives up at once with
//! [`RetryAfterExceeded`](crate::retry::RetryAfterExceeded) (the shared pause is still clamped
//! to the cap). `pause_scope = "namespace"` keeps one tenant's `429` from holding the others:
//! pauses are keyed by upstream *and* [`Namespace`](crate::Namespace).
//!
//! `retry_after.proactive` ([`Proactive`]) turns on proactive pacing in the layers built from
//! the configuration (the `client` feature's `Layers` and `Client`, and the API clients on
//! them): an ordinary response saying the quota is used up (`RateLimit: "default";r=0;t=30`,
//! or `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset`, read as delta or epoch seconds as
//! configured) pauses the upstream before a `429` happens.
//!
//! # The retry budget's floor
//!
//! `retry.budget_min_per_sec` unset (the default) makes the floor of a budget built from the
//! configuration follow `rate_limit.global_rate` (rounded up): in the stack built from it every
//! retry waits for a rate-limit token, so retries within the budget's floor cannot push the
//! client past its own rate, and after a restart the 429s of the first burst are retried
//! instead of handed back to the callers. A standalone
//! [`RetryBudget`](crate::retry::RetryBudget) keeps its fixed default of 10 retries per
//! second: in front of a service without pacer's limiter, nothing else bounds what retries
//! add, so the floor must stay small.
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
//! assert_eq!(config.validate()?.backoff().max(), std::time::Duration::from_secs(10));
//!
//! // A bad value names the variable and the value:
//! let error = Config::default()
//!     .merge_env_vars("INFRAHUB", [("INFRAHUB_RATE_LIMIT_MAX_RETRIES".to_owned(), "many".to_owned())])
//!     .unwrap_err();
//! assert!(error.to_string().contains("INFRAHUB_RATE_LIMIT_MAX_RETRIES=\"many\""));
//! # Ok(()) }
//! ```

mod env;
mod error;
mod factories;
mod files;
mod names;
pub mod parse;
mod proactive;
mod proxy;
mod schema;
mod scope;
mod valid;
mod validate;

pub use error::ConfigError;
pub use proactive::Proactive;
pub use proxy::ProxyUrl;
pub use schema::{
    Config, MetricsConfig, QuotaConfig, RateLimitConfig, RetryAfterConfig, RetryConfig, TlsConfig,
};
pub use scope::PauseScope;
pub use valid::ValidConfig;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod validation_tests;
