//! Loopback requests counted in instructions: a measure of what a layer adds to a real
//! request that does not move with the machine's load, for a machine too noisy to time a
//! few microseconds in a ~40-170 µs request to the precision the `stack` bench needs.
//!
//! `loopback_instructions <variant> <requests>` sends `requests` requests, one after the
//! other, with hyper-util's client to a hyper server on 127.0.0.1 (its own thread), through
//! `variant`: the bare client, the four pacer layers (with and without tower's `Timeout`),
//! each pacer layer alone, or what a user would pick instead (tower's `Retry`, tower-http's
//! `TraceLayer`, tower's `Timeout`). `benches/instructions.sh` runs every variant under
//! valgrind's cachegrind at two request counts and prints the difference per request: the
//! user-space instructions of one request (client and server threads; the kernel is not
//! counted), and what each variant adds to the bare client's.
//!
//! Without arguments (as `cargo bench` runs it) every variant sends a few requests, so the
//! binary cannot rot.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::time::Duration;

use common::{CloneOnly, loopback_calls, loopback_setup, open_limiter, pacer_layers};
use pacer::events::Events;
use pacer::metrics::{Metrics, MetricsLayer};
use pacer::rate_limit::RateLimitLayer;
use pacer::retry::{RetryLayer, RetryPolicy};
use pacer::retry_after::RetryAfterLayer;
use prometheus_client::registry::Registry;
use tower::Layer;
use tower::timeout::TimeoutLayer;

/// The variants, in the order `instructions.sh` prints them (`--list` prints them).
const VARIANTS: [&str; 10] = [
    "bare",
    "pacer_layers",
    "pacer_layers_and_timeout",
    "metrics",
    "retry",
    "retry_after",
    "rate_limit",
    "tower_retry",
    "tower_http_trace",
    "tower_timeout",
];

/// Requests sent before counting starts, so that connection setup and first-use
/// initialisation fall outside what two runs with different counts differ by.
const WARM_UP: usize = 200;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for variant in VARIANTS {
            println!("{variant}");
        }
        return;
    }
    let variant = args.iter().find(|a| VARIANTS.contains(&a.as_str()));
    let requests = args.iter().find_map(|a| a.parse::<usize>().ok());
    match (variant, requests) {
        (Some(variant), Some(requests)) => run(variant, requests),
        _ => {
            for variant in VARIANTS {
                run(variant, 20);
            }
        }
    }
}

fn run(variant: &str, requests: usize) {
    let (rt, client, template) = loopback_setup();
    let _guard = rt.enter();
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let timeout = TimeoutLayer::new(Duration::from_secs(10));
    let rt = &rt;
    let template = &template;
    macro_rules! send {
        ($svc:expr) => {{
            let svc = $svc;
            send(variant, requests, |n| loopback_calls(rt, &svc, template, n))
        }};
    }
    match variant {
        "bare" => send!(client),
        "pacer_layers" => send!(pacer_layers(&metrics, true).service(client)),
        "pacer_layers_and_timeout" => {
            send!(pacer_layers(&metrics, true).layer(timeout).service(client))
        }
        "metrics" => send!(MetricsLayer::new(metrics.clone()).layer(client)),
        "retry" => send!(RetryLayer::new(RetryPolicy::new()).layer(client)),
        "retry_after" => send!(
            RetryAfterLayer::new()
                .observer(metrics.clone())
                .layer(client)
        ),
        "rate_limit" => send!(RateLimitLayer::new(open_limiter(Events::none())).layer(client)),
        "tower_retry" => send!(tower::retry::RetryLayer::new(CloneOnly).layer(client)),
        "tower_http_trace" => send!(tower_http::trace::TraceLayer::new_for_http().layer(client)),
        "tower_timeout" => send!(timeout.layer(client)),
        _ => unreachable!("checked against VARIANTS"),
    }
}

/// Sends the warm-up requests, then `requests` more, and says how long those took.
fn send(variant: &str, requests: usize, mut svc: impl FnMut(usize)) {
    svc(WARM_UP);
    let start = std::time::Instant::now();
    svc(requests);
    eprintln!(
        "{variant}: {requests} requests, {:.1} µs each",
        start.elapsed().as_secs_f64() * 1e6 / requests as f64
    );
}
