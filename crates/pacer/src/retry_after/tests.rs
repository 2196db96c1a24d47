#![allow(clippy::unwrap_used, clippy::type_complexity)]

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use proptest::prelude::*;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};

use super::*;

/// Tue, 14 Nov 2023 22:13:20 GMT.
const NOW_SECS: u64 = 1_700_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

const MAX: u64 = u64::MAX;

/// (header lines, expected delay in seconds; `None` = ignored, fall back to backoff)
const TABLE: &[(&[&[u8]], Option<u64>)] = &[
    // delay-seconds
    (&[b"0"], Some(0)),
    (&[b"5"], Some(5)),
    (&[b"120"], Some(120)),
    (&[b"007"], Some(7)),
    (&[b" 7 "], Some(7)),
    (&[b"\t7\t"], Some(7)),
    (&[b"4294967295"], Some(4_294_967_295)),
    (&[b"18446744073709551615"], Some(MAX)),
    (&[b"18446744073709551616"], Some(MAX)), // u64::MAX + 1 saturates
    (&[b"999999999999999999999999999999"], Some(MAX)), // 30 digits saturate
    (&[b"000000000000000000000000000005"], Some(5)), // 30 digits, small value
    // hostile or invalid numbers
    (&[b"-1"], None),
    (&[b"-0"], None),
    (&[b"1.5"], None),
    (&[b"+5"], None),
    (&[b"0x10"], None),
    (&[b"1e3"], None),
    (&[b"5s"], None),
    (&[b"5 5"], None),
    (&[b"5, 10"], None),
    (&["５".as_bytes()], None), // fullwidth digit five
    (&["٣".as_bytes()], None),  // Arabic-Indic digit three
    (&[b"\xff"], None),         // obs-text
    (&[b""], None),
    (&[b"   "], None),
    (&[b"\t"], None),
    (&[b"garbage"], None),
    // header multiplicity: absent, or several lines (ambiguous, treated as invalid)
    (&[], None),
    (&[b"5", b"5"], None),
    (&[b"5", b"10"], None),
    (&[b"5", b"Tue, 14 Nov 2023 22:13:50 GMT"], None),
    // IMF-fixdate
    (&[b"Tue, 14 Nov 2023 22:13:50 GMT"], Some(30)),
    (&[b"  Tue, 14 Nov 2023 22:13:50 GMT "], Some(30)),
    (&[b"Tue, 14 Nov 2023 22:13:20 GMT"], Some(0)), // exactly now
    (&[b"Tue, 14 Nov 2023 22:12:20 GMT"], Some(0)), // past
    (&[b"Thu, 01 Jan 1970 00:00:00 GMT"], Some(0)),
    (
        &[b"Fri, 31 Dec 9999 23:59:59 GMT"],
        Some(253_402_300_799 - NOW_SECS),
    ),
    // RFC 850 (two-digit year, 50-year rule relative to 2023)
    (&[b"Tuesday, 14-Nov-23 22:13:50 GMT"], Some(30)),
    (&[b"Sunday, 06-Nov-94 08:49:37 GMT"], Some(0)),
    (
        &[b"Friday, 01-Jan-72 00:00:00 GMT"],
        Some(3_218_832_000 - NOW_SECS),
    ), // 2072, not 1972
    (&[b"Tuesday, 01-Jan-74 00:00:00 GMT"], Some(0)), // 51 years ahead -> 1974
    (&[b"Tue, 14-Nov-23 22:13:50 GMT"], None),        // short weekday name
    (&[b"Tuesday, 14-Nov-2023 22:13:50 GMT"], None),  // four-digit year
    (&[b"Monday, 14-Nov-23 22:13:50 GMT"], None),     // wrong weekday
    // asctime
    (&[b"Tue Nov 14 22:13:50 2023"], Some(30)),
    (&[b"Sun Nov  6 08:49:37 1994"], Some(0)),
    (&[b"Sun Nov 6 08:49:37 1994"], None), // day not padded to two columns
    // invalid dates
    (&[b"Mon, 30 Feb 2026 00:00:00 GMT"], None), // February 30
    (&[b"Sat, 29 Feb 2025 00:00:00 GMT"], None), // not a leap year
    (&[b"Mon, 06 Nov 1994 08:49:37 GMT"], None), // 1994-11-06 was a Sunday
    (&[b"Tue, 14 Nov 2023 24:00:00 GMT"], None), // hour 24
    (&[b"Tue, 14 Nov 2023 22:13:60 GMT"], None), // leap second
    (&[b"tue, 14 nov 2023 22:13:50 gmt"], None), // case matters
    (&[b"Tue, 14 Nov 2023 22:13:50 UTC"], None),
    (&[b"Tue, 14 Nov 2023 22:13:50 +0000"], None),
    (&[b"14 Nov 2023 22:13:50 GMT"], None),
    (&[b"Tue, 14 Nov 2023 22:13:50 GMT x"], None),
    (&[b"Wed, 31 Dec 1969 23:59:59 GMT"], Some(0)), // before 1970: valid, in the past
    (&[b"Tue, 14 Nov 2023 22:13:60 GMT"], None),    // :60 only at 23:59
    (&[b"2023-11-14T22:13:50Z"], None),             // RFC 3339 is not an HTTP-date
];

#[test]
fn retry_after_table() {
    assert!(TABLE.len() >= 40, "{} rows", TABLE.len());
    for (lines, expected) in TABLE {
        let mut headers = HeaderMap::new();
        for line in *lines {
            headers.append(
                http::header::RETRY_AFTER,
                HeaderValue::from_bytes(line).unwrap(),
            );
        }
        let got = retry_after(&headers, now());
        let expected = expected.map(Duration::from_secs);
        assert_eq!(
            got,
            expected,
            "Retry-After {:?}",
            lines
                .iter()
                .map(|l| String::from_utf8_lossy(l))
                .collect::<Vec<_>>()
        );
        if let [single] = lines {
            let value = HeaderValue::from_bytes(single).unwrap();
            assert_eq!(parse_retry_after(&value, now()), expected);
        }
    }
}

#[test]
fn long_hostile_values_are_rejected_quickly() {
    let long = "Tue, ".repeat(10_000);
    let value = HeaderValue::from_str(&long).unwrap();
    assert_eq!(parse_retry_after(&value, now()), None);
    let digits = "9".repeat(60_000);
    let value = HeaderValue::from_str(&digits).unwrap();
    assert_eq!(
        parse_retry_after(&value, now()),
        Some(Duration::from_secs(MAX))
    );
}

#[test]
fn rfc850_follows_the_fifty_year_rule_relative_to_now() {
    let value = HeaderValue::from_static("Saturday, 01-Jan-00 00:00:00 GMT");
    // In 1990, "00" is 2000 (10 years ahead); in 2023 it is 2000 too (in the past).
    let in_1990 = UNIX_EPOCH + Duration::from_secs(631_152_000); // 1990-01-01
    assert_eq!(
        parse_retry_after(&value, in_1990),
        Some(Duration::from_secs(946_684_800 - 631_152_000))
    );
    assert_eq!(parse_retry_after(&value, now()), Some(Duration::ZERO));
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_static(value));
    }
    map
}

#[test]
fn rate_limit_field_table() {
    let cases: &[(&[(&str, &str)], Option<u64>)] = &[
        (&[("ratelimit", r#""default";r=0;t=30"#)], Some(30)),
        (&[("ratelimit", r#""default";r=5;t=30"#)], None),
        (&[("ratelimit", r#""default";t=30;r=0"#)], Some(30)),
        (&[("ratelimit", "default;r=0;t=12")], Some(12)),
        (
            &[("ratelimit", r#""a,b";r=0;t=3, "day";r=0;t=80"#)],
            Some(80),
        ),
        (
            &[("ratelimit", r#""hour";r=1;t=3, "day";r=0;t=80"#)],
            Some(80),
        ),
        (
            &[
                ("ratelimit", r#""hour";r=0;t=3"#),
                ("ratelimit", r#""day";r=0;t=9"#),
            ],
            Some(9),
        ),
        (&[("ratelimit", r#""default";r=0"#)], None),
        (&[("ratelimit", r#""default";r=0;t=-1"#)], None),
        (&[("ratelimit", r#""default";r=0;t=1.5"#)], None),
        (
            &[("ratelimit", r#""default";r=0;t=1234567890123456"#)],
            None,
        ),
        (&[("ratelimit", r#""unterminated;r=0;t=3"#)], None),
        (
            &[("ratelimit", "limit=100, remaining=0, reset=30")],
            Some(30),
        ),
        (&[("ratelimit", "limit=100, remaining=3, reset=30")], None),
        (&[("ratelimit", "Limit=100, Remaining=0, Reset=7")], Some(7)),
        (&[("ratelimit", "")], None),
        (&[("ratelimit", ",,;;==")], None),
        (
            &[("ratelimit-remaining", "0"), ("ratelimit-reset", "4")],
            Some(4),
        ),
        (
            &[("ratelimit-remaining", "2"), ("ratelimit-reset", "4")],
            None,
        ),
        (&[], None),
    ];
    for (pairs, expected) in cases {
        assert_eq!(
            rate_limit_reset(&headers(pairs)),
            expected.map(Duration::from_secs),
            "{pairs:?}"
        );
    }
}

#[test]
fn x_rate_limit_reset_is_read_as_configured() {
    let delta = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "15")]);
    assert_eq!(
        x_rate_limit_reset(&delta, ResetHeader::DeltaSeconds, now()),
        Some(Duration::from_secs(15))
    );
    // As an epoch, 15 is long past.
    assert_eq!(
        x_rate_limit_reset(&delta, ResetHeader::EpochSeconds, now()),
        Some(Duration::ZERO)
    );
    let epoch = headers(&[
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "1700000042"),
    ]);
    assert_eq!(
        x_rate_limit_reset(&epoch, ResetHeader::EpochSeconds, now()),
        Some(Duration::from_secs(42))
    );
    let left = headers(&[("x-ratelimit-remaining", "9"), ("x-ratelimit-reset", "15")]);
    assert_eq!(
        x_rate_limit_reset(&left, ResetHeader::DeltaSeconds, now()),
        None
    );
    let bad = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "-5")]);
    assert_eq!(
        x_rate_limit_reset(&bad, ResetHeader::DeltaSeconds, now()),
        None
    );
    let huge = headers(&[
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "99999999999999999999999"),
    ]);
    // Saturates; must not panic on the epoch addition.
    let _ = x_rate_limit_reset(&huge, ResetHeader::EpochSeconds, now());
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            let _ = parse_retry_after(&value, now());
            let mut map = HeaderMap::new();
            map.insert(http::header::RETRY_AFTER, value.clone());
            map.insert("ratelimit", value.clone());
            map.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
            map.insert("x-ratelimit-reset", value);
            let _ = retry_after(&map, now());
            let _ = rate_limit_reset(&map);
            let _ = x_rate_limit_reset(&map, ResetHeader::EpochSeconds, now());
        }
    }

    #[test]
    fn parse_never_panics_on_date_shaped_input(
        s in "[A-Za-z]{3,9}, [0-9 ]{2}[ -][A-Za-z]{3}[ -][0-9]{2,4} [0-9]{2}:[0-9]{2}:[0-9]{2} [A-Z]{3}",
        t in any::<u64>(),
    ) {
        let value = HeaderValue::from_str(&s).unwrap();
        let now = UNIX_EPOCH.checked_add(Duration::from_secs(t % (1 << 40))).unwrap_or(UNIX_EPOCH);
        let _ = parse_retry_after(&value, now);
    }

    #[test]
    fn delay_seconds_round_trip(n in any::<u32>()) {
        let value = HeaderValue::from(n);
        prop_assert_eq!(parse_retry_after(&value, now()), Some(Duration::from_secs(u64::from(n))));
    }

    #[test]
    fn imf_fixdate_round_trips(delta in 0u64..10_000_000) {
        let date = httpdate::fmt_http_date(now() + Duration::from_secs(delta));
        let value = HeaderValue::from_str(&date).unwrap();
        prop_assert_eq!(parse_retry_after(&value, now()), Some(Duration::from_secs(delta)));
    }
}

// ---- the layer, through a scripted service, in paused time ----

type Log = Arc<Mutex<Vec<(Instant, String)>>>;

/// An upstream that records when each request (by `authority + path`) reached it and answers
/// with `respond(&request)`.
fn scripted<F>(
    respond: F,
) -> (
    Log,
    impl Service<
        Request<()>,
        Response = Response<()>,
        Error = Infallible,
        Future = impl Future<Output = Result<Response<()>, Infallible>> + Send,
    > + Clone
    + Send,
)
where
    F: Fn(&Request<()>) -> Response<()> + Send + Sync + 'static,
{
    let log: Log = Arc::default();
    let respond = Arc::new(respond);
    let svc_log = log.clone();
    let svc = service_fn(move |req: Request<()>| {
        let target = format!(
            "{}{}",
            req.uri().authority().map_or("", |a| a.as_str()),
            req.uri().path()
        );
        svc_log.lock().unwrap().push((Instant::now(), target));
        let res = respond(&req);
        async move { Ok::<_, Infallible>(res) }
    });
    (log, svc)
}

fn status_with(status: u16, pairs: &[(&'static str, &'static str)]) -> Response<()> {
    let mut res = Response::builder().status(status);
    for (k, v) in pairs {
        res = res.header(*k, *v);
    }
    res.body(()).unwrap()
}

/// `/throttle` answers 429 with `retry_after`, everything else 200.
fn throttle_once(retry_after: &'static str) -> impl Fn(&Request<()>) -> Response<()> {
    move |req| {
        if req.uri().path() == "/throttle" {
            status_with(429, &[("retry-after", retry_after)])
        } else {
            status_with(200, &[])
        }
    }
}

fn get(uri: &str) -> Request<()> {
    Request::get(uri).body(()).unwrap()
}

fn layer() -> RetryAfterLayer {
    RetryAfterLayer::new()
        .with_gate(
            PauseGate::builder()
                .seed(7)
                .release_window(Duration::from_secs(1))
                .build(),
        )
        .wall_clock(now)
}

async fn send<S>(svc: &S, uri: &str) -> StatusCode
where
    S: Service<Request<()>, Response = Response<()>, Error = crate::BoxError> + Clone,
{
    svc.clone().oneshot(get(uri)).await.unwrap().status()
}

fn times_of(log: &Log, target: &str) -> Vec<Instant> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|(_, t)| t == target)
        .map(|(at, _)| *at)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn http_date_30s_ahead_pauses_the_upstream_30s() {
    let (log, upstream) = scripted(throttle_once("Tue, 14 Nov 2023 22:13:50 GMT"));
    let svc = layer().layer(upstream);
    let t0 = Instant::now();
    assert_eq!(send(&svc, "http://api.test/throttle").await, 429);
    assert!(svc.gate().is_paused(PauseKey::authority("api.test")));
    // An unrelated request (other path) to the same upstream is held, then released within
    // the 1 s window after the pause.
    assert_eq!(send(&svc, "http://api.test/other").await, 200);
    let at = times_of(&log, "api.test/other")[0] - t0;
    assert!(
        at >= Duration::from_secs(30) && at < Duration::from_secs(31),
        "{at:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn past_date_and_zero_do_not_pause() {
    for value in ["Tue, 14 Nov 2023 22:12:20 GMT", "0", "garbage", "-1"] {
        let (log, upstream) = scripted(throttle_once(value));
        let svc = layer().layer(upstream);
        let t0 = Instant::now();
        assert_eq!(send(&svc, "http://api.test/throttle").await, 429);
        assert_eq!(send(&svc, "http://api.test/other").await, 200);
        assert_eq!(times_of(&log, "api.test/other"), vec![t0], "{value}");
        assert!(svc.gate().is_empty(), "{value}");
    }
}

#[tokio::test(start_paused = true)]
async fn pause_holds_concurrent_requests_but_not_other_upstreams() {
    let (log, upstream) = scripted(throttle_once("10"));
    let svc = layer().layer(upstream);
    let t0 = Instant::now();
    assert_eq!(send(&svc, "http://api.test/throttle").await, 429);

    let held = tokio::spawn({
        let svc = svc.clone();
        async move { send(&svc, "http://API.test/items?page=2").await }
    });
    // A different upstream goes at once, even with the same path.
    assert_eq!(send(&svc, "http://other.test/items").await, 200);
    assert_eq!(times_of(&log, "other.test/items"), vec![t0]);
    // A different port is a different authority.
    assert_eq!(send(&svc, "http://api.test:8080/items").await, 200);
    assert_eq!(times_of(&log, "api.test:8080/items"), vec![t0]);

    assert_eq!(held.await.unwrap(), 200);
    let at = times_of(&log, "API.test/items")[0] - t0;
    assert!(
        at >= Duration::from_secs(10) && at < Duration::from_secs(11),
        "{at:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn held_requests_are_spread_over_the_release_window() {
    let (log, upstream) = scripted(throttle_once("5"));
    let svc = layer().layer(upstream);
    let t0 = Instant::now();
    assert_eq!(send(&svc, "http://api.test/throttle").await, 429);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let svc = svc.clone();
            tokio::spawn(async move { send(&svc, &format!("http://api.test/w{i}")).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let mut times: Vec<Duration> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, t)| t.starts_with("api.test/w"))
        .map(|(at, _)| *at - t0)
        .collect();
    assert_eq!(times.len(), 20);
    times.sort();
    assert!(times[0] >= Duration::from_secs(5), "{times:?}");
    assert!(times[19] < Duration::from_secs(6), "{times:?}");
    times.dedup();
    assert!(times.len() >= 18, "not spread: {times:?}");
    // Spread over most of the window, not bunched at one end.
    assert!(times[times.len() - 1] - times[0] > Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn zero_release_window_releases_everyone_at_the_end() {
    let (log, upstream) = scripted(throttle_once("3"));
    let gate = PauseGate::builder().release_window(Duration::ZERO).build();
    let svc = RetryAfterLayer::new().with_gate(gate).layer(upstream);
    let t0 = Instant::now();
    send(&svc, "http://api.test/throttle").await;
    let a = tokio::spawn({
        let svc = svc.clone();
        async move { send(&svc, "http://api.test/a").await }
    });
    send(&svc, "http://api.test/b").await;
    a.await.unwrap();
    assert_eq!(
        times_of(&log, "api.test/a"),
        vec![t0 + Duration::from_secs(3)]
    );
    assert_eq!(
        times_of(&log, "api.test/b"),
        vec![t0 + Duration::from_secs(3)]
    );
}

#[tokio::test(start_paused = true)]
async fn delay_is_capped() {
    let (log, upstream) = scripted(throttle_once("3600"));
    let svc = layer().max_delay(Duration::from_secs(60)).layer(upstream);
    let t0 = Instant::now();
    send(&svc, "http://api.test/throttle").await;
    send(&svc, "http://api.test/x").await;
    let at = times_of(&log, "api.test/x")[0] - t0;
    assert!(
        at >= Duration::from_secs(60) && at < Duration::from_secs(61),
        "{at:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn only_429_and_503_pause_by_default() {
    let (log, upstream) = scripted(|req| match req.uri().path() {
        "/503" => status_with(503, &[("retry-after", "4")]),
        "/301" => status_with(301, &[("retry-after", "4")]),
        "/ok" => status_with(200, &[("retry-after", "4"), ("ratelimit", "\"d\";r=0;t=9")]),
        _ => status_with(200, &[]),
    });
    let svc = layer().layer(upstream);
    let t0 = Instant::now();
    send(&svc, "http://a.test/301").await;
    send(&svc, "http://a.test/ok").await;
    send(&svc, "http://a.test/x").await;
    assert_eq!(times_of(&log, "a.test/x"), vec![t0]);
    send(&svc, "http://a.test/503").await;
    send(&svc, "http://a.test/y").await;
    let at = times_of(&log, "a.test/y")[0] - t0;
    assert!(at >= Duration::from_secs(4) && at < Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn proactive_sources_pause_before_a_429() {
    let respond = |req: &Request<()>| match req.uri().path() {
        "/rl" => status_with(200, &[("ratelimit", "\"default\";r=0;t=7")]),
        "/x" => status_with(
            200,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1700000012"),
            ],
        ),
        "/x-left" => status_with(
            200,
            &[
                ("x-ratelimit-remaining", "3"),
                ("x-ratelimit-reset", "1700000012"),
            ],
        ),
        "/429-x" => status_with(429, &[("x-ratelimit-reset", "1700000020")]),
        _ => status_with(200, &[]),
    };
    let (log, upstream) = scripted(respond);
    let svc = layer()
        .rate_limit_header(true)
        .x_rate_limit_reset(ResetHeader::EpochSeconds)
        .layer(upstream);
    let t0 = Instant::now();
    send(&svc, "http://rl.test/rl").await;
    send(&svc, "http://rl.test/after").await;
    let at = times_of(&log, "rl.test/after")[0] - t0;
    assert!(at >= Duration::from_secs(7) && at < Duration::from_secs(8));

    send(&svc, "http://x.test/x-left").await;
    assert!(!svc.gate().is_paused(PauseKey::authority("x.test")));
    send(&svc, "http://x.test/x").await;
    // Wall clock is fixed, so the reset is 12 s away from the fixed `now`.
    assert_eq!(
        svc.gate().paused_until(PauseKey::authority("x.test")),
        Some(Instant::now() + Duration::from_secs(12))
    );
    send(&svc, "http://y.test/429-x").await;
    assert_eq!(
        svc.gate().paused_until(PauseKey::authority("y.test")),
        Some(Instant::now() + Duration::from_secs(20))
    );
}

#[tokio::test(start_paused = true)]
async fn a_pause_extended_while_waiting_holds_the_waiter_longer() {
    let (log, upstream) = scripted(throttle_once("5"));
    let svc = layer().layer(upstream);
    let t0 = Instant::now();
    send(&svc, "http://api.test/throttle").await;
    let held = tokio::spawn({
        let svc = svc.clone();
        async move { send(&svc, "http://api.test/held").await }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Another layer sharing the gate learns of a longer pause.
    svc.gate()
        .pause(PauseKey::authority("api.test"), Duration::from_secs(10));
    held.await.unwrap();
    let at = times_of(&log, "api.test/held")[0] - t0;
    assert!(
        at >= Duration::from_secs(12) && at < Duration::from_secs(13),
        "{at:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn namespace_keying_is_one_function() {
    #[derive(Clone)]
    struct Tenant(&'static str);
    let (log, upstream) = scripted(throttle_once("10"));
    let svc = layer()
        .key_fn(|uri, ext| {
            PauseKey::new(
                uri.authority().map_or("", |a| a.as_str()),
                ext.get::<Tenant>().map(|t| t.0),
            )
        })
        .layer(upstream);
    let with = |uri: &str, t: &'static str| {
        let mut r = get(uri);
        r.extensions_mut().insert(Tenant(t));
        r
    };
    let t0 = Instant::now();
    svc.clone()
        .oneshot(with("http://kc.test/throttle", "red"))
        .await
        .unwrap();
    svc.clone()
        .oneshot(with("http://kc.test/blue", "blue"))
        .await
        .unwrap();
    assert_eq!(times_of(&log, "kc.test/blue"), vec![t0]);
    svc.clone()
        .oneshot(with("http://kc.test/red", "red"))
        .await
        .unwrap();
    assert!(times_of(&log, "kc.test/red")[0] - t0 >= Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn dropping_a_waiting_request_leaves_nothing_behind() {
    let (log, upstream) = scripted(throttle_once("5"));
    let mut svc = layer().layer(upstream);
    send(&svc, "http://api.test/throttle").await;

    std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
    let mut fut = tokio_test::task::spawn(svc.call(get("http://api.test/dropped")));
    assert!(fut.poll().is_pending());
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(fut.poll().is_pending());
    drop(fut);

    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(times_of(&log, "api.test/dropped").is_empty());
    // Only the layer's own handles to the gate remain.
    assert_eq!(Arc::strong_count(&log), 2); // the test's and the upstream's
    assert_eq!(send(&svc, "http://api.test/later").await, 200);
    assert!(svc.gate().is_empty());
}

#[tokio::test(start_paused = true)]
async fn waiting_future_is_pending_until_time_advances() {
    let (_log, upstream) = scripted(throttle_once("5"));
    let mut svc = layer().layer(upstream);
    send(&svc, "http://api.test/throttle").await;
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
    let mut fut = tokio_test::task::spawn(svc.call(get("http://api.test/w")));
    assert!(fut.poll().is_pending());
    tokio::time::advance(Duration::from_millis(4_999)).await;
    assert!(fut.poll().is_pending());
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(fut.is_woken());
    match fut.poll() {
        std::task::Poll::Ready(Ok(res)) => assert_eq!(res.status(), 200),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn tracked_upstreams_are_capped() {
    let (_log, upstream) = scripted(throttle_once("30"));
    let gate = PauseGate::builder().max_upstreams(100).seed(1).build();
    let svc = RetryAfterLayer::new()
        .with_gate(gate.clone())
        .layer(upstream);
    for i in 0..10_000 {
        // 1 ms apart, so the pauses end in the order they were set (10 s < 30 s pause).
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(send(&svc, &format!("http://h{i}.test/throttle")).await, 429);
        assert!(gate.len() <= 100);
    }
    assert_eq!(gate.len(), 100);
    // Overflow evicts the soonest-ending pauses, so the newest upstreams are the ones kept.
    assert!(gate.is_paused(PauseKey::authority("h9999.test")));
    assert!(!gate.is_paused(PauseKey::authority("h0.test")));
    // Once every pause has ended, the next check drops them all.
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(send(&svc, "http://h1.test/x").await, 200);
    assert!(gate.is_empty());
}

#[test]
fn layer_and_service_are_clone_and_debug() {
    fn assert_clone_debug<T: Clone + std::fmt::Debug + Send + Sync>() {}
    assert_clone_debug::<RetryAfterLayer>();
    assert_clone_debug::<PauseGate>();
    assert_clone_debug::<
        RetryAfter<tower::util::BoxCloneSyncService<Request<()>, Response<()>, Infallible>>,
    >();
    let layer = RetryAfterLayer::new();
    assert!(format!("{layer:?}").contains("RetryAfterLayer"));
}

#[tokio::test(start_paused = true)]
async fn gate_is_usable_without_tower() {
    let gate = PauseGate::builder()
        .seed(3)
        .release_window(Duration::from_millis(500))
        .build();
    let key = PauseKey::new("kc.test", Some("tenant-a"));
    let t0 = Instant::now();
    gate.wait(key).await; // not paused: immediate
    assert_eq!(Instant::now(), t0);

    let past = t0.checked_sub(Duration::from_secs(1)).unwrap_or(t0);
    gate.pause_until(key, past); // already over: ignored
    assert!(gate.is_empty());
    gate.pause(key, Duration::from_secs(3));
    gate.pause(key, Duration::from_secs(1)); // never shortens
    assert_eq!(gate.paused_until(key), Some(t0 + Duration::from_secs(3)));
    assert!(!gate.is_paused(PauseKey::new("kc.test", Some("tenant-b"))));
    assert!(!gate.is_paused(PauseKey::authority("kc.test")));

    let clone = gate.clone();
    clone.wait(key).await;
    let waited = Instant::now() - t0;
    assert!(waited >= Duration::from_secs(3) && waited < Duration::from_millis(3_500));
    assert!(!gate.is_paused(key));
}

// ---- pause events ----

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Started(String, Duration, bool),
    Ended(String),
}

/// Records every pause event with the (paused) time it arrived at, relative to `t0`.
#[derive(Clone)]
struct Recorder {
    t0: Instant,
    seen: Arc<Mutex<Vec<(Duration, Seen)>>>,
}

impl Recorder {
    fn new() -> Self {
        Self {
            t0: Instant::now(),
            seen: Arc::default(),
        }
    }

    fn events(&self) -> Vec<(Duration, Seen)> {
        self.seen.lock().unwrap().clone()
    }
}

impl crate::events::Observer for Recorder {
    fn observe(&self, event: &crate::events::Event<'_>) {
        use crate::events::Event;
        let seen = match *event {
            Event::PauseStarted {
                upstream,
                delay,
                extended,
            } => Seen::Started(upstream.to_owned(), delay, extended),
            Event::PauseEnded { upstream } => Seen::Ended(upstream.to_owned()),
            _ => return,
        };
        self.seen
            .lock()
            .unwrap()
            .push((Instant::now() - self.t0, seen));
    }
}

/// An upstream that answers `/<ms>/<seconds>` with a 429 asking for `<seconds>`, after
/// `<ms>` milliseconds, and everything else with 200 at once.
fn slow_throttler() -> impl Service<
    Request<()>,
    Response = Response<()>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<()>, Infallible>> + Send,
> + Clone
+ Send {
    service_fn(|req: Request<()>| {
        let mut parts = req.uri().path().trim_start_matches('/').split('/');
        let plan = parts
            .next()
            .and_then(|ms| ms.parse::<u64>().ok())
            .zip(parts.next().map(str::to_owned));
        async move {
            let Some((ms, seconds)) = plan else {
                return Ok(status_with(200, &[]));
            };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(Response::builder()
                .status(429)
                .header("retry-after", seconds)
                .body(())
                .unwrap())
        }
    })
}

/// Calls `svc` for each URI before polling any, so all are in flight at once.
async fn all_at_once<S>(svc: &S, uris: &[&str]) -> Vec<StatusCode>
where
    S: Service<Request<()>, Response = Response<()>, Error = crate::BoxError> + Clone,
{
    let mut futures = Vec::new();
    for uri in uris {
        let mut svc = svc.clone();
        futures.push(svc.ready().await.unwrap().call(get(uri)));
    }
    futures_util::future::join_all(futures)
        .await
        .into_iter()
        .map(|res| res.unwrap().status())
        .collect()
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn started(upstream: &str, delay: Duration, extended: bool) -> Seen {
    Seen::Started(upstream.to_owned(), delay, extended)
}

fn ended(upstream: &str) -> Seen {
    Seen::Ended(upstream.to_owned())
}

#[tokio::test(start_paused = true)]
async fn a_pause_is_reported_once_when_it_opens_and_once_when_it_ends() {
    let recorder = Recorder::new();
    let svc = layer().observer(recorder.clone()).layer(slow_throttler());
    // Five 429s for the same pause at the same instant, one 0.3 s later (moves the end by
    // 0.3 s: silent), one 2.5 s later (moves it by 2.5 s: reported as an extension), and a
    // second upstream with its own pause.
    let statuses = all_at_once(
        &svc,
        &[
            "http://api.test/0/5",
            "http://api.test/0/5",
            "http://api.test/0/5",
            "http://api.test/0/5",
            "http://api.test/0/5",
            "http://api.test/300/5",
            "http://api.test/2500/5",
            "https://user:secret@Other.test:8443/0/2?token=hunter2",
        ],
    )
    .await;
    assert!(statuses.iter().all(|s| *s == 429), "{statuses:?}");
    // Nobody waits: the ends are reported on time all the same.
    tokio::time::sleep(secs(20)).await;
    assert_eq!(
        recorder.events(),
        vec![
            (secs(0), started("http://api.test", secs(5), false)),
            (secs(0), started("https://Other.test:8443", secs(2), false)),
            (secs(2), ended("https://Other.test:8443")),
            (
                Duration::from_millis(2500),
                started("http://api.test", secs(5), true)
            ),
            (Duration::from_millis(7500), ended("http://api.test")),
        ]
    );
    assert!(svc.gate().is_empty());
}

#[tokio::test(start_paused = true)]
async fn held_and_cancelled_requests_do_not_repeat_the_end() {
    let recorder = Recorder::new();
    let (log, upstream) = scripted(throttle_once("5"));
    let mut svc = layer().observer(recorder.clone()).layer(upstream);
    assert_eq!(send(&svc, "http://api.test/throttle").await, 429);

    let held: Vec<_> = (0..20)
        .map(|i| {
            let svc = svc.clone();
            tokio::spawn(async move { send(&svc, &format!("http://api.test/held{i}")).await })
        })
        .collect();
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
    let mut cancelled = tokio_test::task::spawn(svc.call(get("http://api.test/cancelled")));
    assert!(cancelled.poll().is_pending());
    tokio::time::sleep(secs(2)).await;
    drop(cancelled);
    for request in held {
        assert_eq!(request.await.unwrap(), 200);
    }
    let released = times_of(&log, "api.test/held0")[0] - recorder.t0;
    assert!(released >= secs(5) && released < secs(6), "{released:?}");
    assert_eq!(send(&svc, "http://api.test/after").await, 200);
    tokio::time::sleep(secs(10)).await;

    assert_eq!(
        recorder.events(),
        vec![
            (secs(0), started("http://api.test", secs(5), false)),
            (secs(5), ended("http://api.test")),
        ]
    );
}

#[test]
fn without_a_runtime_the_end_is_reported_by_the_next_look_up() {
    // No tokio runtime, so no timer task (and the real clock): the first look-up after the
    // end reports it, once.
    let recorder = Recorder::new();
    let gate = PauseGate::builder().seed(1).build();
    let key = PauseKey::authority("api.test");
    let events = crate::events::Events::new(recorder.clone());
    gate.pause_observed(key, Duration::from_millis(1), &events, "http://api.test");
    std::thread::sleep(Duration::from_millis(20)); // only ever longer than asked
    assert_eq!(gate.release_at(key), None);
    assert_eq!(gate.release_at(key), None);
    let seen: Vec<Seen> = recorder.events().into_iter().map(|(_, e)| e).collect();
    assert_eq!(
        seen,
        vec![
            started("http://api.test", Duration::from_millis(1), false),
            ended("http://api.test"),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_pause_evicted_to_make_room_is_reported_ended() {
    let recorder = Recorder::new();
    let svc = RetryAfterLayer::new()
        .with_gate(PauseGate::builder().max_upstreams(1).seed(1).build())
        .observer(recorder.clone())
        .layer(slow_throttler());
    send(&svc, "http://a.test/0/30").await;
    tokio::time::advance(secs(1)).await;
    send(&svc, "http://b.test/0/10").await;
    tokio::time::sleep(secs(60)).await;
    assert_eq!(
        recorder.events(),
        vec![
            (secs(0), started("http://a.test", secs(30), false)),
            (secs(1), ended("http://a.test")),
            (secs(1), started("http://b.test", secs(10), false)),
            (secs(11), ended("http://b.test")),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_pause_opened_without_observer_is_adopted_by_a_layer_with_one() {
    let recorder = Recorder::new();
    let gate = PauseGate::builder().seed(1).build();
    let silent = RetryAfterLayer::new()
        .with_gate(gate.clone())
        .layer(slow_throttler());
    let observed = RetryAfterLayer::new()
        .with_gate(gate.clone())
        .observer(recorder.clone())
        .layer(slow_throttler());
    // In flight before the pause opens, answered 1 s into it with a shorter delay.
    let mut observed_svc = observed.clone();
    let in_flight = observed_svc
        .ready()
        .await
        .unwrap()
        .call(get("http://api.test/1000/3"));
    assert_eq!(send(&silent, "http://api.test/0/10").await, 429);
    assert_eq!(in_flight.await.unwrap().status(), 429);
    tokio::time::sleep(secs(30)).await;
    assert_eq!(
        recorder.events(),
        vec![
            (secs(1), started("http://api.test", secs(9), false)),
            (secs(10), ended("http://api.test")),
        ]
    );
}
