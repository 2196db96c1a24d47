//! The value parsers of settings given as text (environment variables).

use std::path::PathBuf;

use super::schema::PauseScope;
use crate::rate_limit::Quota;

/// The longest duration a setting may name: a day. Anything longer is a typo.
pub(crate) const MAX_SECS: f64 = 86_400.0;

pub(crate) fn check_secs(secs: f64) -> Result<(), &'static str> {
    if secs.is_finite() && (0.0..=MAX_SECS).contains(&secs) {
        Ok(())
    } else {
        Err("must be a number of seconds from 0 to 86400")
    }
}

pub(crate) fn parse_number(value: &str) -> Result<f64, &'static str> {
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

pub(crate) fn parse_rate(value: &str) -> Result<f64, &'static str> {
    let rate = parse_number(value)?;
    Quota::per_second(rate)
        .map(|_| rate)
        .map_err(|_| "must be a rate above 0 and at most 1e9 per second")
}

pub(crate) fn parse_burst(value: &str) -> Result<u32, &'static str> {
    match value.trim().parse::<u32>() {
        Ok(0) | Err(_) => Err("must be a whole number from 1 to 4294967295"),
        Ok(burst) => Ok(burst),
    }
}

pub(crate) fn parse_positive(value: &str) -> Result<usize, &'static str> {
    match value.trim().parse::<usize>() {
        Ok(0) | Err(_) => Err("must be a whole number above 0"),
        Ok(n) => Ok(n),
    }
}

pub(crate) fn parse_secs(value: &str) -> Result<f64, &'static str> {
    let secs = parse_number(value)?;
    check_secs(secs).map(|()| secs)
}

pub(crate) fn parse_optional_secs(value: &str) -> Result<Option<f64>, &'static str> {
    match value.trim() {
        "" | "none" | "off" => Ok(None),
        other => parse_secs(other).map(Some),
    }
}

pub(crate) fn parse_count(value: &str) -> Result<u32, &'static str> {
    value
        .trim()
        .parse::<u32>()
        .map_err(|_| "must be a whole number from 0 to 4294967295")
}

pub(crate) fn check_ratio(ratio: f64) -> Result<(), &'static str> {
    if ratio.is_finite() && (0.0..=1000.0).contains(&ratio) {
        Ok(())
    } else {
        Err("must be a number from 0 to 1000")
    }
}

pub(crate) fn parse_ratio(value: &str) -> Result<f64, &'static str> {
    let ratio = parse_number(value)?;
    check_ratio(ratio).map(|()| ratio)
}

pub(crate) fn parse_switch(value: &str) -> Result<bool, &'static str> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err("must be on or off (true/false, yes/no, 1/0)"),
    }
}

pub(crate) fn parse_scope(value: &str) -> Result<PauseScope, &'static str> {
    match value.trim().to_ascii_lowercase().as_str() {
        "upstream" => Ok(PauseScope::Upstream),
        "namespace" => Ok(PauseScope::Namespace),
        _ => Err("must be upstream or namespace"),
    }
}

pub(crate) fn parse_path(value: &str) -> Result<Option<PathBuf>, &'static str> {
    match value.trim() {
        "" => Err("must be a file name"),
        "none" | "off" => Ok(None),
        _ => Ok(Some(PathBuf::from(value))),
    }
}

pub(crate) fn parse_fraction(value: &str) -> Result<f64, &'static str> {
    let fill = parse_number(value)?;
    if (0.0..=1.0).contains(&fill) {
        Ok(fill)
    } else {
        Err("must be within 0..=1")
    }
}

pub(crate) fn parse_prefix(value: &str) -> Result<String, &'static str> {
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
