//! Pure header parsing: no clock is read here, `now` is always passed in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};

/// Longest value that can be an HTTP-date (RFC 850 with the longest weekday name is 33 bytes).
/// Anything longer that is not all digits is rejected before any date parsing.
const MAX_DATE_LEN: usize = 40;

/// `RateLimit` (IETF draft `httpapi-ratelimit-headers`).
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// `RateLimit-Remaining` (early drafts, separate fields).
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset` (early drafts, separate fields).
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
/// `X-RateLimit-Remaining` (de-facto, GitHub and many others).
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `X-RateLimit-Reset` (de-facto; delta or epoch seconds depending on the server).
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// How a server's `X-RateLimit-Reset` header is to be read.
///
/// The header is not standardised: GitHub sends Unix epoch seconds, many others send seconds
/// from now. Both are plain integers, so pacer never guesses: the configuration says which one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResetHeader {
    /// The value is a number of seconds from now (`X-RateLimit-Reset: 30`).
    DeltaSeconds,
    /// The value is a Unix timestamp in seconds (`X-RateLimit-Reset: 1700000030`); a time in
    /// the past means no delay.
    EpochSeconds,
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Strips optional whitespace (SP / HTAB only, as in RFC 9110 `OWS`).
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_ows(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_ows(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Parses a non-empty run of ASCII digits, saturating at `u64::MAX`.
fn parse_digits_saturating(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |acc, d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// Parses one `Retry-After` field value (RFC 9110 section 10.2.3).
///
/// Accepted, after optional surrounding SP/HTAB:
/// - `delay-seconds`: one or more ASCII digits. Values too large for a `u64` saturate to
///   `u64::MAX` seconds (callers cap the delay anyway) instead of being rejected.
/// - an HTTP-date in any of the three forms RFC 9110 requires recipients to accept:
///   IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`)
///   and asctime (`Sun Nov  6 08:49:37 1994`). The delay is the date minus `now`; a date at or
///   before `now` gives [`Duration::ZERO`].
///
/// RFC 850's two-digit year follows RFC 9110 section 5.6.7: a date that would be more than
/// 50 years in the future (later than the same instant 50 calendar years after `now`) is
/// taken to be in the previous century (the `httpdate` crate uses a fixed 1970 pivot
/// instead, so pacer resolves the year itself). A valid date before 1970 is in the past
/// (delay 0), and `23:59:60` (a leap second) is a valid time of day.
///
/// Dates must be real: a wrong weekday (`Mon, 06 Nov 1994 ...`, which was a Sunday), day 30 of
/// February, hour 24, minute 60 or a second 60 other than at `23:59` are rejected.
///
/// Everything else is `None`, so the caller falls back to its own backoff: `-1`, `+5`, `1.5`,
/// `0x10`, non-ASCII digits such as `５`, empty or whitespace-only values, lists (`5, 10`),
/// lowercase month names and so on. The function never panics and never allocates.
pub fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let s = trim_ows(value.as_bytes());
    if let Some(secs) = parse_digits_saturating(s) {
        return Some(Duration::from_secs(secs));
    }
    let date = parse_http_date(s, now)?;
    // A date at or before `now` (before 1970 included) is simply in the past.
    let Ok(after_epoch) = u64::try_from(date) else {
        return Some(Duration::ZERO);
    };
    let date = UNIX_EPOCH.checked_add(Duration::from_secs(after_epoch))?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The `Retry-After` delay of a response's headers.
///
/// Exactly one `Retry-After` field line must be present. Several lines (or one line holding a
/// list, which is not valid syntax either) are ambiguous: rather than picking one, pacer
/// treats them as invalid and returns `None`, so the caller falls back to its own backoff.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    single(headers, &http::header::RETRY_AFTER).and_then(|v| parse_retry_after(v, now))
}

/// The only value of `name`, or `None` when it is absent or repeated.
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    Some(first)
}

/// The delay announced by the IETF `RateLimit` field when a quota is exhausted.
///
/// Understands:
/// - the structured-field list of current drafts, `RateLimit: "default";r=0;t=30` (several
///   policies may be listed, comma separated or on several field lines);
/// - the older dictionary form, `RateLimit: limit=100, remaining=0, reset=30`;
/// - the oldest separate fields, `RateLimit-Remaining: 0` with `RateLimit-Reset: 30`.
///
/// Returns the largest reset (`t` / `reset`, in seconds from now) among the policies whose
/// remaining quota (`r` / `remaining`) is 0, or `None` when no policy is exhausted or nothing
/// parses. Malformed members are skipped; the function never panics or allocates.
pub fn rate_limit_reset(headers: &HeaderMap) -> Option<Duration> {
    let mut best: Option<u64> = None;
    let mut consider = |secs: u64| best = Some(best.map_or(secs, |b| b.max(secs)));

    for value in headers.get_all(&RATELIMIT) {
        let mut old_remaining = None;
        let mut old_reset = None;
        for member in split_members(value.as_bytes()) {
            match parse_member(member) {
                Member::Item { r, t } => {
                    if let (Some(0), Some(t)) = (r, t) {
                        consider(t);
                    }
                }
                Member::Entry(b"remaining", v) => old_remaining = Some(v),
                Member::Entry(b"reset", v) => old_reset = Some(v),
                Member::Entry(..) | Member::Invalid => {}
            }
        }
        if let (Some(0), Some(t)) = (old_remaining, old_reset) {
            consider(t);
        }
    }

    let remaining = single(headers, &RATELIMIT_REMAINING).and_then(integer);
    let reset = single(headers, &RATELIMIT_RESET).and_then(integer);
    if let (Some(0), Some(t)) = (remaining, reset) {
        consider(t);
    }
    best.map(Duration::from_secs)
}

/// The delay announced by `X-RateLimit-Reset` when `X-RateLimit-Remaining` is 0.
///
/// `mode` says whether the reset is delta seconds or a Unix epoch timestamp; an epoch in the
/// past gives [`Duration::ZERO`]. Absent, repeated or malformed fields give `None`, and so
/// does a remaining count other than 0 (the reset time is sent on every response by most
/// servers; it only matters once the quota is used up).
pub fn x_rate_limit_reset(
    headers: &HeaderMap,
    mode: ResetHeader,
    now: SystemTime,
) -> Option<Duration> {
    let remaining = single(headers, &X_RATELIMIT_REMAINING).and_then(integer)?;
    if remaining != 0 {
        return None;
    }
    x_rate_limit_reset_value(headers, mode, now)
}

/// `X-RateLimit-Reset` alone, read as `mode` says, regardless of `X-RateLimit-Remaining`.
pub(crate) fn x_rate_limit_reset_value(
    headers: &HeaderMap,
    mode: ResetHeader,
    now: SystemTime,
) -> Option<Duration> {
    let reset = single(headers, &X_RATELIMIT_RESET).and_then(integer)?;
    match mode {
        ResetHeader::DeltaSeconds => Some(Duration::from_secs(reset)),
        ResetHeader::EpochSeconds => {
            let at = UNIX_EPOCH.checked_add(Duration::from_secs(reset))?;
            Some(at.duration_since(now).unwrap_or(Duration::ZERO))
        }
    }
}

/// A header value that is a non-negative integer (digits only, OWS allowed), saturating.
fn integer(value: &HeaderValue) -> Option<u64> {
    parse_digits_saturating(trim_ows(value.as_bytes()))
}

/// Splits a structured-field list on top-level commas (commas inside quoted strings do not
/// split). Yields trimmed members; empty members are yielded as empty slices.
fn split_members(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let s = rest?;
        let mut in_string = false;
        let mut escaped = false;
        for (i, &b) in s.iter().enumerate() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
            } else if b == b'"' {
                in_string = true;
            } else if b == b',' {
                rest = s.get(i + 1..);
                return Some(trim_ows(&s[..i]));
            }
        }
        rest = None;
        Some(trim_ows(s))
    })
}

enum Member<'a> {
    /// A list item (`"policy";r=0;t=30` or `policy;r=0;t=30`) with its `r` and `t` parameters.
    Item {
        r: Option<u64>,
        t: Option<u64>,
    },
    /// An old dictionary entry `key=integer`.
    Entry(&'a [u8], u64),
    Invalid,
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.' | b'*')
}

fn parse_member(m: &[u8]) -> Member<'_> {
    // The item itself: a quoted string or a token.
    let params = if let Some(after_quote) = m.strip_prefix(b"\"") {
        let mut escaped = false;
        let mut end = None;
        for (i, &b) in after_quote.iter().enumerate() {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                end = Some(i);
                break;
            }
        }
        match end {
            Some(i) => &after_quote[i + 1..],
            None => return Member::Invalid,
        }
    } else {
        let end = m
            .iter()
            .position(|&b| b == b';' || b == b'=')
            .unwrap_or(m.len());
        let (token, rest) = m.split_at(end);
        if token.is_empty() {
            return Member::Invalid;
        }
        if let Some(value) = rest.strip_prefix(b"=") {
            // Old dictionary form: `remaining=0`. Keys are compared case-insensitively there.
            return match parse_digits_saturating(trim_ows(value)) {
                Some(v) => Member::Entry(lowercase_known_key(trim_ows(token)), v),
                None => Member::Invalid,
            };
        }
        rest
    };

    let mut r = None;
    let mut t = None;
    for param in params.split(|&b| b == b';').skip(1) {
        let param = trim_ows(param);
        let Some(eq) = param.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (key, value) = (&param[..eq], &param[eq + 1..]);
        if key.is_empty() || !key.iter().all(|&b| is_key_byte(b)) {
            continue;
        }
        // sf-integer: at most 15 digits; negative values are not a remaining quota or a reset.
        let value = if value.len() <= 15 {
            parse_digits_saturating(value)
        } else {
            None
        };
        match key {
            b"r" => r = value,
            b"t" => t = value,
            _ => {}
        }
    }
    Member::Item { r, t }
}

/// Maps the two keys of the old dictionary form to static lowercase slices, case-insensitively.
fn lowercase_known_key(key: &[u8]) -> &'static [u8] {
    if key.eq_ignore_ascii_case(b"remaining") {
        b"remaining"
    } else if key.eq_ignore_ascii_case(b"reset") {
        b"reset"
    } else {
        b""
    }
}

/// Parses an HTTP-date (any of the three forms) without allocating.
///
/// `httpdate` is exact for IMF-fixdate and asctime from 1970 on with seconds below 60, and is
/// used for those. What it gets wrong by RFC 9110 is parsed here: RFC 850 (its two-digit
/// years use a fixed pivot instead of the 50-year rule), dates before 1970 (valid dates,
/// simply in the past) and the leap second `23:59:60`.
/// Answers the date in seconds since 1970 (negative before).
fn parse_http_date(s: &[u8], now: SystemTime) -> Option<i64> {
    if s.len() > MAX_DATE_LEN || !s.is_ascii() {
        return None;
    }
    let is_rfc850 = WEEKDAYS.iter().any(|(long, _)| s.starts_with(long));
    if !is_rfc850 {
        if let Ok(date) = httpdate::parse_http_date(std::str::from_utf8(s).ok()?) {
            return Some(unix_seconds_of(date));
        }
    }
    let fields = if is_rfc850 {
        rfc850_fields(s, now)?
    } else {
        imf_fixdate_fields(s).or_else(|| asctime_fields(s))?
    };
    fields.unix_seconds()
}

/// `t` in whole seconds since 1970 (negative before), saturating.
fn unix_seconds_of(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

const WEEKDAYS: [(&[u8], &[u8]); 7] = [
    (b"Monday", b"Mon"),
    (b"Tuesday", b"Tue"),
    (b"Wednesday", b"Wed"),
    (b"Thursday", b"Thu"),
    (b"Friday", b"Fri"),
    (b"Saturday", b"Sat"),
    (b"Sunday", b"Sun"),
];

const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// The fields of an HTTP-date, not yet checked.
#[derive(Debug, Clone, Copy)]
struct DateFields {
    /// 0 = Monday.
    weekday: usize,
    year: i64,
    /// 1..=12.
    month: i64,
    day: i64,
    hour: i64,
    min: i64,
    sec: i64,
}

impl DateFields {
    /// Seconds since 1970 (negative before) if the date is real: the day exists in its month,
    /// the time of day is at most `23:59:60` (`:60` only as a leap second at the end of a
    /// day), and the weekday is the date's.
    fn unix_seconds(&self) -> Option<i64> {
        let leap_second = self.sec == 60 && self.hour == 23 && self.min == 59;
        let time_ok = self.hour < 24 && self.min < 60 && (self.sec < 60 || leap_second);
        if !time_ok || !(1..=12).contains(&self.month) || self.day < 1 {
            return None;
        }
        if self.day > days_in_month(self.year, self.month) {
            return None;
        }
        let days = days_from_civil(self.year, self.month, self.day);
        // 1970-01-01 was a Thursday (3 with Monday as 0).
        if usize::try_from((days + 3).rem_euclid(7)).ok()? != self.weekday {
            return None;
        }
        Some(days * 86_400 + self.hour * 3_600 + self.min * 60 + self.sec)
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

fn month_of(s: &[u8]) -> Option<i64> {
    let index = MONTHS.iter().position(|m| *m == s)?;
    i64::try_from(index).ok().map(|i| i + 1)
}

/// `08:49:37`
fn time_of_day(s: &[u8]) -> Option<(i64, i64, i64)> {
    match s {
        [h1, h2, b':', m1, m2, b':', s1, s2] => Some((
            digits(&[*h1, *h2])?,
            digits(&[*m1, *m2])?,
            digits(&[*s1, *s2])?,
        )),
        _ => None,
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`
fn imf_fixdate_fields(s: &[u8]) -> Option<DateFields> {
    if s.len() != 29 || &s[3..5] != b", " || s[7] != b' ' || s[11] != b' ' || s[16] != b' ' {
        return None;
    }
    if &s[25..] != b" GMT" {
        return None;
    }
    let weekday = WEEKDAYS.iter().position(|(_, short)| *short == &s[..3])?;
    let (hour, min, sec) = time_of_day(&s[17..25])?;
    Some(DateFields {
        weekday,
        year: digits(&s[12..16])?,
        month: month_of(&s[8..11])?,
        day: digits(&s[5..7])?,
        hour,
        min,
        sec,
    })
}

/// `Sun Nov  6 08:49:37 1994`
fn asctime_fields(s: &[u8]) -> Option<DateFields> {
    if s.len() != 24 || s[3] != b' ' || s[7] != b' ' || s[10] != b' ' || s[19] != b' ' {
        return None;
    }
    let weekday = WEEKDAYS.iter().position(|(_, short)| *short == &s[..3])?;
    let day = match &s[8..10] {
        [b' ', d] => digits(&[*d])?,
        both => digits(both)?,
    };
    let (hour, min, sec) = time_of_day(&s[11..19])?;
    Some(DateFields {
        weekday,
        year: digits(&s[20..24])?,
        month: month_of(&s[4..7])?,
        day,
        hour,
        min,
        sec,
    })
}

/// `Sunday, 06-Nov-94 08:49:37 GMT`, its two-digit year resolved by RFC 9110 section 5.6.7
/// relative to the instant `now`: a date that appears to be more than 50 years in the future
/// is in the most recent past year with the same last two digits.
fn rfc850_fields(s: &[u8], now: SystemTime) -> Option<DateFields> {
    let (weekday, rest) = WEEKDAYS.iter().enumerate().find_map(|(i, (long, _))| {
        let rest = s.strip_prefix(*long)?.strip_prefix(b", ")?;
        Some((i, rest))
    })?;
    // `06-Nov-94 08:49:37 GMT`
    if rest.len() != 22 || rest[2] != b'-' || rest[6] != b'-' || rest[9] != b' ' {
        return None;
    }
    if &rest[18..] != b" GMT" {
        return None;
    }
    let yy = digits(&rest[7..9])?;
    let (hour, min, sec) = time_of_day(&rest[10..18])?;
    let mut fields = DateFields {
        weekday,
        year: 0,
        month: month_of(&rest[3..6])?,
        day: digits(&rest[0..2])?,
        hour,
        min,
        sec,
    };
    let now_secs = unix_seconds_of(now);
    let now_year = civil_year(now);
    // "More than 50 years in the future": later than the same instant 50 calendar years on
    // (a 29 February is taken as the 28th of a common year).
    let limit = fifty_years_after(now_secs, now_year)?;
    // The latest candidate is a century after `now`'s; step back until it is not too far
    // ahead. The date is checked (weekday, day) afterwards, in its resolved year.
    let mut year = now_year - now_year.rem_euclid(100) + yy + 100;
    for _ in 0..3 {
        let days = days_from_civil(year, fields.month, fields.day);
        if days * 86_400 + hour * 3_600 + min * 60 + sec <= limit {
            break;
        }
        year -= 100;
    }
    fields.year = year;
    Some(fields)
}

/// The instant 50 calendar years after `now_secs` (in year `now_year`), in seconds since 1970.
fn fifty_years_after(now_secs: i64, now_year: i64) -> Option<i64> {
    let days = now_secs.div_euclid(86_400);
    let time = now_secs.rem_euclid(86_400);
    let year_start = days_from_civil(now_year, 1, 1);
    // Month and day of `now`.
    let mut month = 1;
    let mut day_of_year = days - year_start;
    while month < 12 && day_of_year >= days_in_month(now_year, month) {
        day_of_year -= days_in_month(now_year, month);
        month += 1;
    }
    let day = (day_of_year + 1).min(days_in_month(now_year + 50, month));
    days_from_civil(now_year + 50, month, day)
        .checked_mul(86_400)?
        .checked_add(time)
}

/// The proleptic Gregorian year of `t` (UTC), before 1970 too.
fn civil_year(t: SystemTime) -> i64 {
    let secs = unix_seconds_of(t);
    // Days since 1970-01-01, then Howard Hinnant's `civil_from_days`.
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(month <= 2)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn date(text: &str, now: SystemTime) -> Option<i64> {
        parse_http_date(text.as_bytes(), now)
    }

    #[test]
    fn civil_year_matches_known_dates() {
        assert_eq!(civil_year(at(0)), 1970);
        assert_eq!(civil_year(at(784_111_777)), 1994); // 1994-11-06
        assert_eq!(civil_year(at(951_782_400)), 2000); // 2000-02-29
        assert_eq!(civil_year(at(1_704_067_199)), 2023); // 2023-12-31T23:59:59
        assert_eq!(civil_year(at(1_704_067_200)), 2024); // 2024-01-01
        assert_eq!(civil_year(UNIX_EPOCH - Duration::from_secs(10)), 1969);
    }

    #[test]
    fn days_from_civil_matches_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1994, 11, 6), 784_111_777 / 86_400);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 951_782_400 / 86_400 + 1);
    }

    #[test]
    fn fifty_year_rule_is_about_the_instant() {
        // now: 2026-06-15T12:00:00Z.
        let now = at(1_781_524_800);
        assert_eq!(civil_year(now), 2026);
        // 2076-06-15T12:00:00 is exactly 50 years ahead: kept in 2076.
        assert_eq!(
            date("Monday, 15-Jun-76 12:00:00 GMT", now),
            Some(days_from_civil(2076, 6, 15) * 86_400 + 43_200)
        );
        // One second later is more than 50 years ahead: 1976 (a Tuesday), in the past.
        assert_eq!(date("Monday, 15-Jun-76 12:00:01 GMT", now), None); // wrong weekday for 1976
        assert_eq!(
            date("Tuesday, 15-Jun-76 12:00:01 GMT", now),
            Some(days_from_civil(1976, 6, 15) * 86_400 + 43_201)
        );
        // Later in 2076 (same calendar year as the limit) is also the previous century: a
        // calendar-year comparison would wrongly keep 2076 (where 7 Dec is a Monday).
        assert_eq!(date("Monday, 07-Dec-76 00:00:00 GMT", now), None);
        assert_eq!(
            date("Tuesday, 07-Dec-76 00:00:00 GMT", now),
            Some(days_from_civil(1976, 12, 7) * 86_400)
        );
        // Earlier in 2076 stays in 2076.
        assert_eq!(
            date("Wednesday, 01-Jan-76 00:00:00 GMT", now),
            Some(days_from_civil(2076, 1, 1) * 86_400)
        );
    }

    #[test]
    fn dates_before_1970_and_leap_seconds_are_valid() {
        let now = at(1_700_000_000);
        assert_eq!(date("Wed, 31 Dec 1969 23:59:59 GMT", now), Some(-1));
        assert_eq!(date("Thu, 01 Jan 1970 00:00:00 GMT", now), Some(0));
        let value = HeaderValue::from_static("Mon, 01 Jan 1900 00:00:00 GMT");
        assert_eq!(parse_retry_after(&value, now), Some(Duration::ZERO));
        let value = HeaderValue::from_static("Sat, 31 Dec 2016 23:59:60 GMT");
        let ten_before = UNIX_EPOCH + Duration::from_secs(1_483_228_790);
        assert_eq!(
            parse_retry_after(&value, ten_before),
            Some(Duration::from_secs(10))
        );
        // 2016-12-31 had a leap second.
        let before = UNIX_EPOCH + Duration::from_secs(1_483_228_700);
        assert_eq!(
            date("Sat, 31 Dec 2016 23:59:60 GMT", before),
            Some(1_483_228_800)
        );
        assert_eq!(
            date("Sat Dec 31 23:59:60 2016", before),
            Some(1_483_228_800)
        );
        assert_eq!(
            date("Saturday, 31-Dec-16 23:59:60 GMT", before),
            Some(1_483_228_800)
        );
        // `:60` is only a leap second at the end of a day; `:61` never.
        assert_eq!(date("Sat, 31 Dec 2016 12:00:60 GMT", before), None);
        assert_eq!(date("Sat, 31 Dec 2016 23:59:61 GMT", before), None);
    }

    #[test]
    fn split_respects_quotes() {
        let v: Vec<&[u8]> = split_members(br#""a,b";r=0, c;t=1 ,"#).collect();
        assert_eq!(v, vec![&br#""a,b";r=0"#[..], b"c;t=1", b""]);
    }
}
