//! The parsers of settings given as text, as the environment overlay
//! ([`Config::merge_env_vars`](super::Config::merge_env_vars)) reads them: public so that
//! clients with variables of their own (pacer-inventory's `INFRAHUB_*`) read them the same way.
//!
//! Each takes the raw text (surrounding whitespace is ignored) and answers the value, or why
//! the text is refused (a short reason, for an error that also names the variable and the
//! value). None panics, whatever the text: numbers are finite and in range before they are
//! answered, so a caller can build a `Duration` or a quota from them without a check of its
//! own.
//!
//! ```
//! use std::time::Duration;
//! use pacer::config::parse;
//!
//! assert_eq!(parse::parse_switch(" on "), Ok(true));
//! assert_eq!(parse::parse_duration("0.25"), Ok(Duration::from_millis(250)));
//! assert!(parse::parse_duration("-1").is_err());
//! assert!(parse::parse_duration("NaN").is_err());
//! assert!(parse::parse_duration("1e300").is_err());
//! assert_eq!(parse::parse_optional_secs("off"), Ok(None));
//! ```

use std::path::PathBuf;
use std::time::Duration;

use super::proactive::Proactive;
use super::scope::PauseScope;
use crate::rate_limit::Quota;
use crate::retry::Jitter;
use crate::retry_after::RetryAfterMode;

/// The longest duration a setting may name, in seconds: a day. Anything longer is a typo.
pub const MAX_SECS: f64 = 86_400.0;

/// Why a text was refused: a short phrase, e.g. `"not a number"`.
pub type Reason = &'static str;

pub(crate) fn check_secs(secs: f64) -> Result<(), Reason> {
    if secs.is_finite() && (0.0..=MAX_SECS).contains(&secs) {
        Ok(())
    } else {
        Err("must be a number of seconds from 0 to 86400")
    }
}

pub(crate) fn check_ratio(ratio: f64) -> Result<(), Reason> {
    if ratio.is_finite() && (0.0..=1000.0).contains(&ratio) {
        Ok(())
    } else {
        Err("must be a number from 0 to 1000")
    }
}

/// A finite number (`1`, `0.5`, `1e3`); NaN and infinities are refused.
pub fn parse_number(value: &str) -> Result<f64, Reason> {
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

/// A rate in requests per second: above 0, at most 1e9 (what [`Quota::per_second`] accepts).
pub fn parse_rate(value: &str) -> Result<f64, Reason> {
    let rate = parse_number(value)?;
    Quota::per_second(rate)
        .map(|_| rate)
        .map_err(|_| "must be a rate above 0 and at most 1e9 per second")
}

/// A burst: a whole number from 1 to `u32::MAX`.
pub fn parse_burst(value: &str) -> Result<u32, Reason> {
    match value.trim().parse::<u32>() {
        Ok(0) | Err(_) => Err("must be a whole number from 1 to 4294967295"),
        Ok(burst) => Ok(burst),
    }
}

/// A whole number above 0 (a cap on a count).
pub fn parse_positive(value: &str) -> Result<usize, Reason> {
    match value.trim().parse::<usize>() {
        Ok(0) | Err(_) => Err("must be a whole number above 0"),
        Ok(n) => Ok(n),
    }
}

/// A whole number from 0 to `u32::MAX` (a count, e.g. of retries).
pub fn parse_count(value: &str) -> Result<u32, Reason> {
    value
        .trim()
        .parse::<u32>()
        .map_err(|_| "must be a whole number from 0 to 4294967295")
}

/// Seconds, fractions allowed, from 0 to [`MAX_SECS`].
pub fn parse_secs(value: &str) -> Result<f64, Reason> {
    let secs = parse_number(value)?;
    check_secs(secs).map(|()| secs)
}

/// [`parse_secs`] as a [`Duration`].
pub fn parse_duration(value: &str) -> Result<Duration, Reason> {
    let secs = parse_secs(value)?;
    Duration::try_from_secs_f64(secs).map_err(|_| "must be a number of seconds from 0 to 86400")
}

/// [`parse_duration`] refusing zero, for a timeout that cannot meaningfully be zero.
pub fn parse_positive_duration(value: &str) -> Result<Duration, Reason> {
    match parse_duration(value)? {
        Duration::ZERO => Err("must be above 0 seconds"),
        duration => Ok(duration),
    }
}

/// [`parse_secs`], or `None` for an empty value, `none` or `off`.
pub fn parse_optional_secs(value: &str) -> Result<Option<f64>, Reason> {
    match value.trim() {
        "" | "none" | "off" => Ok(None),
        other => parse_secs(other).map(Some),
    }
}

/// A ratio from 0 to 1000 (retries earned per success).
pub fn parse_ratio(value: &str) -> Result<f64, Reason> {
    let ratio = parse_number(value)?;
    check_ratio(ratio).map(|()| ratio)
}

/// A fraction from 0 to 1 (a bucket's initial fill).
pub fn parse_fraction(value: &str) -> Result<f64, Reason> {
    let fill = parse_number(value)?;
    if (0.0..=1.0).contains(&fill) {
        Ok(fill)
    } else {
        Err("must be within 0..=1")
    }
}

/// A switch: `on`/`off`, `true`/`false`, `yes`/`no`, `1`/`0`, in any case.
pub fn parse_switch(value: &str) -> Result<bool, Reason> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err("must be on or off (true/false, yes/no, 1/0)"),
    }
}

/// A [`PauseScope`]: `upstream` or `namespace`.
pub fn parse_scope(value: &str) -> Result<PauseScope, Reason> {
    match value.trim().to_ascii_lowercase().as_str() {
        "upstream" => Ok(PauseScope::Upstream),
        "namespace" => Ok(PauseScope::Namespace),
        _ => Err("must be upstream or namespace"),
    }
}

/// A [`Proactive`] pacing: `off`, `ratelimit`, `x-ratelimit-reset-delta`
/// or `x-ratelimit-reset-epoch`.
pub fn parse_proactive(value: &str) -> Result<Proactive, Reason> {
    match value.trim().to_ascii_lowercase().as_str() {
        "off" => Ok(Proactive::Off),
        "ratelimit" => Ok(Proactive::RateLimit),
        "x-ratelimit-reset-delta" => Ok(Proactive::XRateLimitResetDelta),
        "x-ratelimit-reset-epoch" => Ok(Proactive::XRateLimitResetEpoch),
        _ => Err("must be off, ratelimit, x-ratelimit-reset-delta or x-ratelimit-reset-epoch"),
    }
}

/// A retry budget floor: a count of retries per second, or `auto` (`None`: follow the global
/// rate).
pub fn parse_budget_floor(value: &str) -> Result<Option<u32>, Reason> {
    if value.trim().eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    parse_count(value).map(Some)
}

/// A [`Jitter`]: `full`, `equal`, `decorrelated` or `none`.
pub fn parse_jitter(value: &str) -> Result<Jitter, Reason> {
    match value.trim().to_ascii_lowercase().as_str() {
        "full" => Ok(Jitter::Full),
        "equal" => Ok(Jitter::Equal),
        "decorrelated" => Ok(Jitter::Decorrelated),
        "none" => Ok(Jitter::None),
        _ => Err("must be full, equal, decorrelated or none"),
    }
}

/// A [`RetryAfterMode`]: `clamp`, or `fail` (also `fail_fast`, `failfast`).
pub fn parse_retry_after_mode(value: &str) -> Result<RetryAfterMode, Reason> {
    match value.trim().to_ascii_lowercase().as_str() {
        "clamp" => Ok(RetryAfterMode::Clamp),
        "fail" | "fail_fast" | "failfast" => Ok(RetryAfterMode::FailFast),
        _ => Err("must be clamp or fail"),
    }
}

/// A file name, or `None` for `none` or `off`; an empty value is refused.
pub fn parse_path(value: &str) -> Result<Option<PathBuf>, Reason> {
    match value.trim() {
        "" => Err("must be a file name"),
        "none" | "off" => Ok(None),
        _ => Ok(Some(PathBuf::from(value))),
    }
}

/// A Prometheus metric name prefix: ASCII letters, digits and `_`, not starting with a digit.
pub fn parse_prefix(value: &str) -> Result<String, Reason> {
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
