//! [`Config::validate`]: every value checked, the first bad one named.

use super::error::ConfigError;
use super::factories::quota;
use super::parse::{check_ratio, check_secs};
use super::schema::Config;

impl Config {
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
}
