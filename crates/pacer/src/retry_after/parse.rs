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
/// RFC 850's two-digit year follows RFC 9110 section 5.6.7: a year that would be more than
/// 50 years after `now`'s year is taken to be in the previous century (the `httpdate` crate
/// uses a fixed 1970 pivot instead, so pacer resolves the year itself). The comparison is done
/// on calendar years.
///
/// Dates must be real: a wrong weekday (`Mon, 06 Nov 1994 ...`, which was a Sunday), day 30 of
/// February, hour 24 or a year before 1970 are rejected, as `httpdate` rejects them.
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
fn parse_http_date(s: &[u8], now: SystemTime) -> Option<SystemTime> {
    if s.len() > MAX_DATE_LEN || !s.is_ascii() {
        return None;
    }
    if WEEKDAYS.iter().any(|(long, _)| s.starts_with(long)) {
        // RFC 850: resolved here, never by `httpdate`'s fixed-pivot parser.
        let fixdate = rfc850_to_imf_fixdate(s, now)?;
        let text = std::str::from_utf8(&fixdate).ok()?;
        return httpdate::parse_http_date(text).ok();
    }
    // IMF-fixdate and asctime are fixed-length and exact in `httpdate`; its RFC 850 parser
    // only accepts input starting with a long weekday name, which was handled above.
    let text = std::str::from_utf8(s).ok()?;
    httpdate::parse_http_date(text).ok()
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

/// Rewrites `Sunday, 06-Nov-94 08:49:37 GMT` as the IMF-fixdate
/// `Sun, 06 Nov 1994 08:49:37 GMT`, resolving the two-digit year with RFC 9110's 50-year
/// rule relative to `now`. Returns `None` when `s` is not shaped like an RFC 850 date; the
/// rewritten date is validated (weekday, day of month) by `httpdate` afterwards.
fn rfc850_to_imf_fixdate(s: &[u8], now: SystemTime) -> Option<[u8; 29]> {
    let (abbrev, rest) = WEEKDAYS.iter().find_map(|(long, short)| {
        let rest = s.strip_prefix(*long)?.strip_prefix(b", ")?;
        Some((*short, rest))
    })?;
    // `06-Nov-94 08:49:37 GMT`
    if rest.len() != 22 || rest[2] != b'-' || rest[6] != b'-' || rest[9] != b' ' {
        return None;
    }
    if rest[12] != b':' || rest[15] != b':' || &rest[18..] != b" GMT" {
        return None;
    }
    let yy = two_digits(&rest[7..9])?;
    let year = resolve_two_digit_year(yy, civil_year(now));
    if !(1000..=9999).contains(&year) {
        return None;
    }
    let mut out = [0u8; 29];
    out[..3].copy_from_slice(abbrev);
    out[3..5].copy_from_slice(b", ");
    out[5..7].copy_from_slice(&rest[0..2]); // day
    out[7] = b' ';
    out[8..11].copy_from_slice(&rest[3..6]); // month
    out[11] = b' ';
    let year = year as u16; // in 1000..=9999, checked above
    out[12] = b'0' + (year / 1000) as u8;
    out[13] = b'0' + (year / 100 % 10) as u8;
    out[14] = b'0' + (year / 10 % 10) as u8;
    out[15] = b'0' + (year % 10) as u8;
    out[16..29].copy_from_slice(&rest[9..22]); // ` 08:49:37 GMT`
    Some(out)
}

fn two_digits(s: &[u8]) -> Option<i64> {
    match s {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some(i64::from(a - b'0') * 10 + i64::from(b - b'0'))
        }
        _ => None,
    }
}

/// RFC 9110 section 5.6.7: a two-digit year that appears to be more than 50 years in the
/// future is the most recent past year with the same last two digits.
fn resolve_two_digit_year(yy: i64, now_year: i64) -> i64 {
    let mut year = now_year - now_year.rem_euclid(100) + yy;
    if year > now_year + 50 {
        year -= 100;
    } else if year + 100 <= now_year + 50 {
        year += 100;
    }
    year
}

/// The proleptic Gregorian year of `t` (UTC); times before 1970 count as 1970.
fn civil_year(t: SystemTime) -> i64 {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // Days since 1970-01-01, then Howard Hinnant's `civil_from_days`.
    let z = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2) + 719_468;
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

    #[test]
    fn civil_year_matches_known_dates() {
        assert_eq!(civil_year(at(0)), 1970);
        assert_eq!(civil_year(at(784_111_777)), 1994); // 1994-11-06
        assert_eq!(civil_year(at(951_782_400)), 2000); // 2000-02-29
        assert_eq!(civil_year(at(1_704_067_199)), 2023); // 2023-12-31T23:59:59
        assert_eq!(civil_year(at(1_704_067_200)), 2024); // 2024-01-01
        assert_eq!(civil_year(UNIX_EPOCH - Duration::from_secs(10)), 1970);
    }

    #[test]
    fn fifty_year_rule() {
        assert_eq!(resolve_two_digit_year(94, 2026), 1994);
        assert_eq!(resolve_two_digit_year(76, 2026), 2076); // exactly 50 years ahead: kept
        assert_eq!(resolve_two_digit_year(77, 2026), 1977); // 51 years ahead: previous century
        assert_eq!(resolve_two_digit_year(26, 2026), 2026);
        assert_eq!(resolve_two_digit_year(10, 2090), 2110);
        assert_eq!(resolve_two_digit_year(40, 2090), 2140);
        assert_eq!(resolve_two_digit_year(41, 2090), 2041);
        assert_eq!(resolve_two_digit_year(69, 1999), 1969); // 2069 is 70 years ahead
        assert_eq!(resolve_two_digit_year(49, 1999), 2049);
        assert_eq!(resolve_two_digit_year(50, 1999), 1950);
    }

    #[test]
    fn split_respects_quotes() {
        let v: Vec<&[u8]> = split_members(br#""a,b";r=0, c;t=1 ,"#).collect();
        assert_eq!(v, vec![&br#""a,b";r=0"#[..], b"c;t=1", b""]);
    }
}
