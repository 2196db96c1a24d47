//! [`Config::validate`]: every value checked once, the first bad one named, into a
//! [`ValidConfig`] of typed values.

use std::num::NonZeroUsize;
use std::time::Duration;

use super::error::ConfigError;
use super::parse::{MAX_SECS, check_ratio};
use super::schema::Config;
use super::valid::{BudgetSettings, ValidConfig};
use crate::namespace::Namespace;
use crate::rate_limit::Quota;
use crate::rate_limit::builder::CheckedLimits;
use crate::retry::Backoff;

impl Config {
    /// Checks every value, naming the first bad one, and answers the checked settings as
    /// typed values, from which the pieces of the stack are built without further checks.
    ///
    /// What each number may be (checked here, whether it came from a file, a variable or a pub
    /// field set in code):
    ///
    /// | setting | allowed | why zero is allowed or not |
    /// |---|---|---|
    /// | rates | above 0, at most 1e9 per second | a zero rate admits nothing, ever |
    /// | bursts | 1 to 4294967295 | a zero burst admits nothing |
    /// | `rate_limit.max_wait_secs` | 0 to 86400 s | 0: never wait, refuse at once |
    /// | `rate_limit.max_namespaces`, `metrics.max_namespace_labels`, `metrics.namespace_label_idle_secs` | at least 1 | |
    /// | `rate_limit.initial_fill` | 0 to 1 | 0: buckets start empty |
    /// | `timeout_secs`, `deadline_secs`, `read_timeout_secs` | above 0, at most 86400 s, or none | a zero timeout or deadline fails every request: say none instead |
    /// | `pool_idle_timeout_secs` | 0 to 86400 s, or none | 0: no idle connection is kept |
    /// | `connect_timeout_secs` | above 0, at most 86400 s | a zero connect timeout connects nowhere |
    /// | `retry.backoff_base_secs` <= `backoff_max_secs` | 0 to 86400 s | 0: retry at once |
    /// | `retry.budget_ratio` | 0 to 1000 | 0: only the per-second floor pays for retries |
    /// | `retry_after.max_secs` | 0 to 86400 s | 0: no server-given delay is waited (clamp), or any fails (fail) |
    /// | `retry_after.release_window_secs` | 0 to 86400 s | 0: held requests go all at once |
    ///
    /// NaN and infinities are refused everywhere; 86400 s (a day) is the longest duration a
    /// setting may name.
    pub fn validate(&self) -> Result<ValidConfig, ConfigError> {
        let rl = &self.rate_limit;
        let global = quota(
            "rate_limit.global_rate/global_burst",
            rl.global_rate,
            rl.global_burst,
        )?;
        let namespace = quota(
            "rate_limit.namespace_rate/namespace_burst",
            rl.namespace_rate,
            rl.namespace_burst,
        )?;
        let mut overrides = Vec::with_capacity(rl.overrides.len());
        for (name, q) in &rl.overrides {
            let field = format!("rate_limit.overrides.{name}");
            overrides.push((
                Namespace::new(name.as_str()),
                quota(&field, q.rate, q.burst)?,
            ));
        }
        let max_wait = secs("rate_limit.max_wait_secs", rl.max_wait_secs, Zero::Allowed)?;
        let max_namespaces = NonZeroUsize::new(rl.max_namespaces).ok_or_else(|| {
            invalid(
                "rate_limit.max_namespaces",
                "0".into(),
                "must be at least 1".into(),
            )
        })?;
        if !(0.0..=1.0).contains(&rl.initial_fill) {
            return Err(invalid(
                "rate_limit.initial_fill",
                rl.initial_fill.to_string(),
                "must be within 0..=1".into(),
            ));
        }
        let timeout = optional_secs("timeout_secs", self.timeout_secs, Zero::Refused)?;
        let deadline = optional_secs("deadline_secs", self.deadline_secs, Zero::Refused)?;
        let pool_idle_timeout = optional_secs(
            "pool_idle_timeout_secs",
            self.pool_idle_timeout_secs,
            Zero::Allowed,
        )?;
        // -- read timeout --
        let read_timeout =
            optional_secs("read_timeout_secs", self.read_timeout_secs, Zero::Refused)?;
        let retry = &self.retry;
        let base = secs(
            "retry.backoff_base_secs",
            retry.backoff_base_secs,
            Zero::Allowed,
        )?;
        let max = secs(
            "retry.backoff_max_secs",
            retry.backoff_max_secs,
            Zero::Allowed,
        )?;
        if base > max {
            return Err(invalid(
                "retry.backoff_base_secs/backoff_max_secs",
                format!("{}/{}", retry.backoff_base_secs, retry.backoff_max_secs),
                "the backoff base must not exceed its max".into(),
            ));
        }
        check_ratio(retry.budget_ratio).map_err(|reason| {
            invalid(
                "retry.budget_ratio",
                retry.budget_ratio.to_string(),
                reason.into(),
            )
        })?;
        let ra = &self.retry_after;
        let retry_after_cap = secs("retry_after.max_secs", ra.max_secs, Zero::Allowed)?;
        let release_window = secs(
            "retry_after.release_window_secs",
            ra.release_window_secs,
            Zero::Allowed,
        )?;
        if let Some(path) = &self.tls.extra_ca_file {
            if path.as_os_str().is_empty() {
                return Err(invalid(
                    "tls.extra_ca_file",
                    String::new(),
                    "must be a file name".into(),
                ));
            }
        }
        // --- the connector ---
        let connect_timeout = secs(
            "connect_timeout_secs",
            self.connect_timeout_secs,
            Zero::Refused,
        )?;
        if self.metrics.max_namespace_labels == 0 {
            return Err(invalid(
                "metrics.max_namespace_labels",
                "0".into(),
                "must be at least 1".into(),
            ));
        }
        if self.metrics.namespace_label_idle_secs == 0 {
            // Zero would release a label between two requests of a busy tenant.
            return Err(invalid(
                "metrics.namespace_label_idle_secs",
                "0".into(),
                "must be at least 1".into(),
            ));
        }
        Ok(ValidConfig {
            config: self.clone(),
            limits: CheckedLimits {
                global,
                namespace,
                overrides,
                max_wait,
                max_namespaces,
                initial_fill: rl.initial_fill,
            },
            max_retries: retry.max_retries,
            backoff: Backoff::new(base, max).jitter(retry.jitter),
            budget: retry.budget.then_some(BudgetSettings {
                ratio: retry.budget_ratio,
                min_per_sec: retry.budget_min_per_sec.unwrap_or_else(|| {
                    // Validated above: finite, above 0, at most 1e9.
                    let rate = rl.global_rate.ceil().clamp(1.0, f64::from(u32::MAX));
                    rate as u32
                }),
            }),
            retry_after_cap,
            retry_after_mode: ra.mode,
            pause_scope: ra.pause_scope,
            release_window,
            timeout,
            deadline,
            pool_idle_timeout,
            read_timeout,
            connect_timeout,
        })
    }
}

fn invalid(field: &str, value: String, reason: String) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        value,
        reason,
    }
}

fn quota(field: &str, rate: f64, burst: u32) -> Result<Quota, ConfigError> {
    Quota::per_second(rate)
        .and_then(|quota| quota.with_burst(burst))
        .map_err(|e| invalid(field, format!("{rate}/{burst}"), e.to_string()))
}

/// Whether a zero duration means something for a setting.
#[derive(Clone, Copy, PartialEq)]
enum Zero {
    Allowed,
    Refused,
}

/// `value` seconds as a duration: finite, from 0 (or above 0) to [`MAX_SECS`].
fn secs(field: &str, value: f64, zero: Zero) -> Result<Duration, ConfigError> {
    let in_range = value.is_finite() && (0.0..=MAX_SECS).contains(&value);
    if !in_range {
        return Err(invalid(
            field,
            value.to_string(),
            "must be a number of seconds from 0 to 86400".into(),
        ));
    }
    if zero == Zero::Refused && value == 0.0 {
        return Err(invalid(
            field,
            value.to_string(),
            "must be above 0 seconds (leave it unset for none)".into(),
        ));
    }
    Duration::try_from_secs_f64(value).map_err(|e| invalid(field, value.to_string(), e.to_string()))
}

fn optional_secs(
    field: &str,
    value: Option<f64>,
    zero: Zero,
) -> Result<Option<Duration>, ConfigError> {
    value.map(|value| secs(field, value, zero)).transpose()
}
