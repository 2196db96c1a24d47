//! The environment overlay: `{PREFIX}_...` variables over a [`Config`].

use super::error::ConfigError;
use super::parse::{
    parse_budget_floor, parse_burst, parse_count, parse_fraction, parse_jitter,
    parse_optional_secs, parse_path, parse_positive, parse_prefix, parse_proactive, parse_rate,
    parse_ratio, parse_retry_after_mode, parse_scope, parse_secs, parse_switch,
};
use super::proxy::{ProxyUrl, redact_userinfo};
use super::schema::Config;

impl Config {
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
            // A proxy URL may hold a password: errors show it redacted.
            let shown = if key == "PROXY" {
                redact_userinfo(&value)
            } else {
                value.clone()
            };
            let bad = |reason: &str| ConfigError::Env {
                variable: name.clone(),
                value: shown.clone(),
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
                    self.retry.jitter = parse_jitter(&value).map_err(bad)?;
                }
                "RATE_LIMIT_RETRY_BUDGET" => {
                    self.retry.budget = parse_switch(&value).map_err(bad)?
                }
                "RATE_LIMIT_RETRY_BUDGET_RATIO" => {
                    self.retry.budget_ratio = parse_ratio(&value).map_err(bad)?;
                }
                "RATE_LIMIT_RETRY_BUDGET_MIN_PER_SEC" => {
                    self.retry.budget_min_per_sec = parse_budget_floor(&value).map_err(bad)?;
                }
                "RATE_LIMIT_RETRY_AFTER_MAX" => {
                    self.retry_after.max_secs = parse_secs(&value).map_err(bad)?;
                }
                "RATE_LIMIT_RETRY_AFTER_MODE" => {
                    self.retry_after.mode = parse_retry_after_mode(&value).map_err(bad)?;
                }
                "RATE_LIMIT_PAUSE_SCOPE" => {
                    self.retry_after.pause_scope = parse_scope(&value).map_err(bad)?;
                }
                "RATE_LIMIT_PAUSE_RELEASE_WINDOW" => {
                    self.retry_after.release_window_secs = parse_secs(&value).map_err(bad)?;
                }
                "RETRY_AFTER_SHARED" => {
                    self.retry_after.shared = parse_switch(&value).map_err(bad)?;
                }
                "RETRY_AFTER_PROACTIVE" => {
                    self.retry_after.proactive = parse_proactive(&value).map_err(bad)?;
                }
                "TIMEOUT" => self.timeout_secs = parse_optional_secs(&value).map_err(bad)?,
                "DEADLINE" => self.deadline_secs = parse_optional_secs(&value).map_err(bad)?,
                "POOL_IDLE_TIMEOUT" => {
                    self.pool_idle_timeout_secs = parse_optional_secs(&value).map_err(bad)?;
                }
                // -- read timeout --
                "READ_TIMEOUT_SECS" => {
                    self.read_timeout_secs = parse_optional_secs(&value).map_err(bad)?;
                }
                "TLS_EXTRA_CA_FILE" => {
                    self.tls.extra_ca_file = parse_path(&value).map_err(bad)?;
                }
                // --- the connector: connect timeout and outbound proxies ---
                "CONNECT_TIMEOUT_SECS" => {
                    self.connect_timeout_secs = parse_secs(&value).map_err(bad)?;
                }
                "PROXY" => {
                    self.proxy = match value.trim() {
                        "" | "none" | "off" => None,
                        url => Some(ProxyUrl::parse(url).map_err(bad)?),
                    };
                }
                "NO_PROXY" => self.no_proxy = Some(value.trim().to_owned()),
                "PROXY_FROM_ENV" => self.proxy_from_env = parse_switch(&value).map_err(bad)?,
                "TLS_INSECURE" => self.tls.insecure = parse_switch(&value).map_err(bad)?,
                "METRICS_PREFIX" => self.metrics.prefix = parse_prefix(&value).map_err(bad)?,
                "METRICS_MAX_NAMESPACE_LABELS" => {
                    self.metrics.max_namespace_labels = parse_positive(&value).map_err(bad)?;
                }
                "METRICS_NAMESPACE_LABEL_IDLE_SECS" => {
                    let secs = parse_positive(&value).map_err(bad)?;
                    self.metrics.namespace_label_idle_secs =
                        u64::try_from(secs).unwrap_or(u64::MAX);
                }
                _ => continue,
            }
            // A value fine alone may clash with another setting (a backoff base above its
            // max); name the variable that made it so.
            self.validate().map_err(|e| ConfigError::Env {
                variable: name.clone(),
                value: shown.clone(),
                reason: e.to_string(),
            })?;
        }
        self.validate()?;
        Ok(self)
    }
}
