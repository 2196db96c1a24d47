//! Every parser of server or operator input in pacer, fed arbitrary bytes and strings: header
//! parsers (`Retry-After`, `RateLimit` in its three forms, `X-RateLimit-Reset`), the text
//! parsers of the environment overlay and the configuration files. None may panic; huge numbers
//! are refused or saturate; a delay they answer can always be added to a clock reading once
//! capped the way the layers cap it.
#![cfg(feature = "config")]
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use pacer::config::{Config, parse};
use pacer::retry_after::{
    ResetHeader, parse_retry_after, rate_limit_reset, retry_after, x_rate_limit_reset,
};
use proptest::prelude::*;

const HEADER_NAMES: [&str; 7] = [
    "retry-after",
    "ratelimit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "ratelimit-policy",
];

/// The cap every layer applies to a server-given delay before it meets a clock (a day at
/// most, in pacer's configuration).
const CAP: Duration = Duration::from_secs(86_400);

/// Header values as a server may send them: any bytes that are a valid field value, with a
/// bias towards the shapes the parsers look for (numbers of any size, dates, dictionaries).
fn value_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        "[0-9]{0,40}".prop_map(String::into_bytes),
        "-?[0-9]{1,30}(\\.[0-9]{0,10})?".prop_map(String::into_bytes),
        "[A-Za-z]{3}, [0-9]{1,2} [A-Za-z]{3} [0-9]{1,6} [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2} GMT"
            .prop_map(String::into_bytes),
        "(\"[a-z]{0,5}\";)?(r|t|q|w|remaining|reset|limit)=[0-9-]{0,25}([,;] ?[a-z]{1,9}=[0-9a-z\"-]{0,25}){0,4}"
            .prop_map(String::into_bytes),
    ]
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    proptest::collection::vec((0..HEADER_NAMES.len(), value_bytes()), 0..6).prop_map(|fields| {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                map.append(HeaderName::from_static(HEADER_NAMES[name]), value);
            }
        }
        map
    })
}

/// Any wall-clock time a host may have, from 1970 to the year 10 000.
fn now() -> impl Strategy<Value = SystemTime> {
    (0u64..253_402_300_800).prop_map(|secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

fn fits_a_clock(delay: Duration) {
    let capped = delay.min(CAP);
    assert!(tokio::time::Instant::now().checked_add(capped).is_some());
    assert!(std::time::Instant::now().checked_add(capped).is_some());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn header_parsers_never_panic(map in headers(), now in now()) {
        if let Some(value) = map.get("retry-after") {
            if let Some(delay) = parse_retry_after(value, now) {
                fits_a_clock(delay);
            }
        }
        for delay in [
            retry_after(&map, now),
            rate_limit_reset(&map),
            x_rate_limit_reset(&map, ResetHeader::DeltaSeconds, now),
            x_rate_limit_reset(&map, ResetHeader::EpochSeconds, now),
        ]
        .into_iter()
        .flatten()
        {
            fits_a_clock(delay);
        }
    }

    #[test]
    fn retry_after_seconds_of_any_size_are_exact_or_refused(digits in "[0-9]{1,40}") {
        let value = HeaderValue::from_str(&digits).unwrap();
        let parsed = parse_retry_after(&value, SystemTime::now());
        match digits.parse::<u64>() {
            // A number that fits is taken exactly; one that does not is refused or saturates,
            // never wraps around to a short delay.
            Ok(secs) => prop_assert_eq!(parsed, Some(Duration::from_secs(secs))),
            Err(_) => prop_assert!(
                parsed.is_none() || parsed >= Some(Duration::from_secs(u64::MAX / 2)),
                "{digits} gave {parsed:?}"
            ),
        }
    }

    #[test]
    fn environment_parsers_never_panic(text in "\\PC{0,40}") {
        if let Ok(n) = parse::parse_number(&text) {
            prop_assert!(n.is_finite());
        }
        if let Ok(rate) = parse::parse_rate(&text) {
            prop_assert!(rate.is_finite() && rate > 0.0);
        }
        if let Ok(secs) = parse::parse_secs(&text) {
            prop_assert!(secs.is_finite() && secs >= 0.0);
        }
        // Zero is a number here; `validate` refuses it where it means nothing.
        if let Ok(Some(secs)) = parse::parse_optional_secs(&text) {
            prop_assert!(secs.is_finite() && secs >= 0.0);
        }
        if let Ok(duration) = parse::parse_duration(&text) {
            fits_a_clock(duration);
        }
        if let Ok(duration) = parse::parse_positive_duration(&text) {
            prop_assert!(!duration.is_zero());
            fits_a_clock(duration);
        }
        if let Ok(ratio) = parse::parse_ratio(&text) {
            prop_assert!(ratio.is_finite() && ratio >= 0.0);
        }
        if let Ok(fraction) = parse::parse_fraction(&text) {
            prop_assert!((0.0..=1.0).contains(&fraction));
        }
        let _ = parse::parse_burst(&text);
        let _ = parse::parse_positive(&text);
        let _ = parse::parse_count(&text);
        let _ = parse::parse_switch(&text);
        let _ = parse::parse_scope(&text);
        let _ = parse::parse_proactive(&text);
        let _ = parse::parse_budget_floor(&text);
        let _ = parse::parse_jitter(&text);
        let _ = parse::parse_retry_after_mode(&text);
        let _ = parse::parse_path(&text);
        let _ = parse::parse_prefix(&text);
    }

    #[test]
    fn config_texts_never_panic_and_what_parses_validates(text in "\\PC{0,200}") {
        // Every constructor validates: what it answers is usable as is.
        for config in [Config::from_toml_str(&text), Config::from_json_str(&text)]
            .into_iter()
            .flatten()
        {
            prop_assert!(config.validate().is_ok());
        }
    }

    #[test]
    fn config_numbers_of_any_value_are_errors_or_valid(
        setting in prop::sample::select(vec![
            "timeout_secs", "deadline_secs", "read_timeout_secs", "connect_timeout_secs",
            "pool_idle_timeout_secs",
        ]),
        number in prop_oneof![
            any::<f64>().prop_map(|n| format!("{n:?}")),
            "-?[0-9]{1,400}(\\.[0-9]{1,5})?(e-?[0-9]{1,4})?",
            Just("nan".to_owned()),
            Just("inf".to_owned()),
            Just("-inf".to_owned()),
        ],
    ) {
        let toml = format!("{setting} = {number}");
        if let Ok(config) = Config::from_toml_str(&toml) {
            let valid = config.validate().unwrap();
            for duration in [valid.timeout(), valid.deadline()].into_iter().flatten() {
                fits_a_clock(duration);
            }
        }
        let json = format!("{{\"{setting}\": {number}}}");
        if let Ok(config) = Config::from_json_str(&json) {
            prop_assert!(config.validate().is_ok());
        }
    }
}
