//! An operator restart, simulated end to end: hundreds of namespaces reconcile their Keycloak
//! realm at once through pacer's ready stack, against a fake Keycloak that limits itself
//! below the client's rate and sheds load on top.
//!
//! ```text
//! cargo run --release -p examples --example reconcile_storm
//! cargo run --release -p examples --example reconcile_storm -- --help
//! cargo run --release -p examples --example reconcile_storm -- --plot docs/reconcile_storm.svg
//! ```
//!
//! No setup: the testbed (pacer-testbed) starts in-process on a free port with a server-side
//! limit (pacer's reject mode: `429` + `Retry-After`), then every namespace runs the calls a
//! realm reconcile makes (GET the realm, create it, create its client, update it) through one
//! `pacer::client::Client` built from a `Config` (global 50 req/s, burst 100; per namespace
//! 5 req/s, burst 10: the defaults). A 429 storm with `Retry-After` and a few connection
//! resets are injected mid-run. The report shows per-namespace throughput and waits, requests
//! sent against requests needed, the 429s met and retried, the failures (zero expected) and
//! the Prometheus text of the run. With `--plot FILE.svg` it also draws, second by second, the
//! requests sent and the requests the server admitted against the server's limit, with the
//! 429s and the retries marked.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use pacer::Namespace;
use pacer::client::Client;
use pacer::config::Config;
use pacer::events::{Event, Observer};
use pacer::rate_limit::{Quota, RateLimiter};
use pacer::retry::Idempotent;
use pacer_testbed::Testbed;
use prometheus_client::registry::Registry;
use tokio::time::Instant;

type BoxError = pacer::BoxError;

/// An operator restart: every namespace reconciles at once through pacer's ready stack.
#[derive(Parser, Debug)]
#[command(name = "reconcile_storm")]
struct Args {
    /// Namespaces reconciling at once (one realm each).
    #[arg(long, default_value_t = 300)]
    namespaces: usize,
    /// Client: global rate, requests per second.
    #[arg(long, default_value_t = 50.0)]
    client_rate: f64,
    /// Client: global burst.
    #[arg(long, default_value_t = 100)]
    client_burst: u32,
    /// Client: rate of each namespace, requests per second.
    #[arg(long, default_value_t = 5.0)]
    namespace_rate: f64,
    /// Client: burst of each namespace.
    #[arg(long, default_value_t = 10)]
    namespace_burst: u32,
    /// Server: the fake Keycloak's own limit, requests per second (below the client's).
    #[arg(long, default_value_t = 40.0)]
    server_rate: f64,
    /// Server: its burst.
    #[arg(long, default_value_t = 40)]
    server_burst: u32,
    /// Fault: this many requests answered 429 with Retry-After, starting at --storm-at.
    #[arg(long, default_value_t = 30)]
    storm: u64,
    /// Fault: the storm's Retry-After, in seconds.
    #[arg(long, default_value_t = 2)]
    storm_retry_after: u64,
    /// Fault: when the storm starts, in seconds after the restart.
    #[arg(long, default_value_t = 3.0)]
    storm_at: f64,
    /// Fault: connections reset mid-request (at --storm-at too).
    #[arg(long, default_value_t = 5)]
    resets: u64,
    /// Fault: added server latency in milliseconds, for every request.
    #[arg(long, default_value_t = 5)]
    latency_ms: u64,
    /// Fault: probability that any request is answered 429 (Retry-After 1).
    #[arg(long, default_value_t = 0.0)]
    throttle_probability: f64,
    /// Client: share of each bucket available at start (restart protection: a restarted
    /// operator does not fire its whole burst at once).
    #[arg(long, default_value_t = 0.2)]
    initial_fill: f64,
    /// Retries per second the retry budget allows even when it is empty (default: the client
    /// rate, pacer's own default for a stack built from a configuration, since every retry
    /// pays a rate-limit token anyway).
    #[arg(long)]
    retry_budget_floor: Option<u32>,
    /// Namespaces reported under their own name in the metrics (the rest as `other`).
    #[arg(long, default_value_t = 5)]
    metrics_namespaces: usize,
    /// Leave out the Prometheus text.
    #[arg(long)]
    no_metrics_text: bool,
    /// Draw the run, second by second, into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

/// Cumulative counts at one instant of the run.
#[derive(Clone, Copy, Default)]
struct Sample {
    at: f64,
    sent: u64,
    too_many: u64,
    retries: u64,
}

/// Per-second rates between consecutive samples: (second, sent, admitted, 429s, retries).
fn per_second(samples: &[Sample]) -> Vec<(f64, f64, f64, f64, f64)> {
    samples
        .windows(2)
        .filter_map(|w| {
            let dt = w[1].at - w[0].at;
            (dt > 0.0).then(|| {
                let sent = w[1].sent.saturating_sub(w[0].sent) as f64 / dt;
                let too_many = w[1].too_many.saturating_sub(w[0].too_many) as f64 / dt;
                let retries = w[1].retries.saturating_sub(w[0].retries) as f64 / dt;
                (w[1].at, sent, (sent - too_many).max(0.0), too_many, retries)
            })
        })
        .collect()
}

/// The chart of `--plot`: requests sent and admitted per second against the server's limit,
/// with 429s and retries marked.
fn plot(path: &Path, samples: &[Sample], args: &Args) -> Result<(), BoxError> {
    use plotters::prelude::*;

    let rates = per_second(samples);
    let end = rates.last().map_or(1.0, |r| r.0).max(1.0);
    let top = rates
        .iter()
        .map(|r| r.1.max(r.4))
        .fold(args.server_rate, f64::max)
        * 1.15;
    let root = SVGBackend::new(path, (960, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "reconcile storm: {} namespaces, client {}/s, server limit {}/s",
                args.namespaces, args.client_rate, args.server_rate
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..end, 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the restart")
        .y_desc("requests per second")
        .light_line_style(WHITE.mix(0.0))
        .draw()?;

    let limit = RGBColor(120, 120, 120);
    chart
        .draw_series(LineSeries::new(
            [(0.0, args.server_rate), (end, args.server_rate)],
            limit.stroke_width(2),
        ))?
        .label(format!("server limit ({}/s)", args.server_rate))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], limit.stroke_width(2)));
    let sent = RGBColor(31, 119, 180);
    chart
        .draw_series(LineSeries::new(
            rates.iter().map(|r| (r.0, r.1)),
            sent.stroke_width(2),
        ))?
        .label("sent")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], sent.stroke_width(2)));
    let admitted = RGBColor(44, 160, 44);
    chart
        .draw_series(LineSeries::new(
            rates.iter().map(|r| (r.0, r.2)),
            admitted.stroke_width(2),
        ))?
        .label("admitted (not 429)")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], admitted.stroke_width(2)));
    // Retries first, so the 429 crosses (most retries follow a 429) stay visible on top.
    let retried = RGBColor(255, 127, 14);
    chart
        .draw_series(
            rates
                .iter()
                .filter(|r| r.4 > 0.0)
                .map(|r| Circle::new((r.0, r.4), 5, retried.filled())),
        )?
        .label("retries per second")
        .legend(move |(x, y)| Circle::new((x + 10, y), 5, retried.filled()));
    let throttled = RGBColor(214, 39, 40);
    chart
        .draw_series(
            rates
                .iter()
                .filter(|r| r.3 > 0.0)
                .map(|r| Cross::new((r.0, r.3), 6, throttled.stroke_width(2))),
        )?
        .label("429s per second")
        .legend(move |(x, y)| Cross::new((x + 10, y), 6, throttled.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Per-namespace facts from the layers' events.
#[derive(Default)]
struct Collected {
    waits: Mutex<HashMap<String, Duration>>,
    throttled_retries: AtomicU64,
    other_retries: AtomicU64,
}

#[derive(Clone, Default)]
struct Collector(Arc<Collected>);

impl Observer for Collector {
    fn observe(&self, event: &Event<'_>) {
        match event {
            Event::RateLimitWait {
                namespace, waited, ..
            } => {
                let mut waits = self.0.waits.lock().unwrap_or_else(|p| p.into_inner());
                *waits.entry(namespace.as_str().to_owned()).or_default() += *waited;
            }
            Event::Retry {
                reason,
                from_server,
                ..
            } => {
                let counter = if reason.is_throttled(*from_server) {
                    &self.0.throttled_retries
                } else {
                    &self.0.other_retries
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// One namespace's reconcile.
struct Outcome {
    namespace: String,
    calls: u32,
    elapsed: Duration,
    failure: Option<String>,
}

/// The calls of one realm reconcile. Creates are marked idempotent: a create replayed after a
/// lost response answers 409, which a reconcile accepts as "exists".
async fn reconcile(client: &Client, base: &str, token: &str, namespace: &str) -> Outcome {
    let started = Instant::now();
    let realm = format!("tenant-{namespace}");
    let steps: [(http::Method, String, Option<String>, &[u16]); 4] = [
        (
            http::Method::GET,
            format!("/admin/realms/{realm}"),
            None,
            &[200, 404],
        ),
        (
            http::Method::POST,
            "/admin/realms".to_owned(),
            Some(format!(r#"{{"realm":"{realm}","enabled":true}}"#)),
            &[201, 409],
        ),
        (
            http::Method::POST,
            format!("/admin/realms/{realm}/clients"),
            Some(r#"{"clientId":"app","publicClient":false}"#.to_owned()),
            &[201, 409],
        ),
        (
            http::Method::PUT,
            format!("/admin/realms/{realm}"),
            Some(format!(r#"{{"displayName":"Tenant {namespace}"}}"#)),
            &[204],
        ),
    ];
    let mut calls = 0;
    for (method, path, body, accepted) in steps {
        calls += 1;
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{base}{path}"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json");
        if method == http::Method::POST {
            request = request.extension(Idempotent);
        }
        let request = request
            .extension(Namespace::new(namespace.to_owned()))
            .body(Full::from(body.unwrap_or_default()));
        let failure = match request {
            Err(e) => Some(e.to_string()),
            Ok(request) => match client.send(request).await {
                Ok(response) if accepted.contains(&response.status().as_u16()) => {
                    // Read the body so the connection goes back to the pool.
                    let _ = response.into_body().collect().await;
                    None
                }
                Ok(response) => Some(format!("{method} {path}: {}", response.status())),
                Err(e) => Some(format!("{method} {path}: {e}")),
            },
        };
        if failure.is_some() {
            return Outcome {
                namespace: namespace.to_owned(),
                calls,
                elapsed: started.elapsed(),
                failure,
            };
        }
    }
    Outcome {
        namespace: namespace.to_owned(),
        calls,
        elapsed: started.elapsed(),
        failure: None,
    }
}

async fn fetch_token(client: &Client, testbed: &Testbed) -> Result<String, BoxError> {
    let creds = testbed.credentials();
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        creds.keycloak_client_id, creds.keycloak_client_secret
    );
    let mut request = Request::post(format!(
        "{}/realms/master/protocol/openid-connect/token",
        testbed.keycloak_url()
    ))
    .header("content-type", "application/x-www-form-urlencoded")
    .body(Full::from(form))?;
    request.extensions_mut().insert(Namespace::new("operator"));
    let response = client.send(request).await?;
    if response.status() != StatusCode::OK {
        return Err(format!("token endpoint answered {}", response.status()).into());
    }
    let body = response.into_body().collect().await?.to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body)?;
    json["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "no access_token".into())
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// min / median / max of `values`, sorted in place.
fn spread<T: PartialOrd + Copy>(values: &mut [T]) -> Option<(T, T, T)> {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    Some((*values.first()?, values[values.len() / 2], *values.last()?))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();

    // The server: the fake Keycloak, limited below the client's rate.
    let server_quota = Quota::per_second(args.server_rate)?.with_burst(args.server_burst)?;
    let server_limit = RateLimiter::builder()
        .global(server_quota)
        .per_namespace(server_quota)
        .build()?;
    let testbed = Testbed::builder().rate_limit(server_limit).start().await?;
    let faults = testbed.faults().clone();
    if args.latency_ms > 0 {
        faults.set_latency(Duration::from_millis(args.latency_ms));
    }
    if args.throttle_probability > 0.0 {
        faults.set_throttle_probability(args.throttle_probability, Some(Duration::from_secs(1)));
    }

    // The client: the ready stack from a Config (what an operator reads from its environment).
    let mut config = Config::default().merge_env("RECONCILE")?;
    config.rate_limit.global_rate = args.client_rate;
    config.rate_limit.global_burst = args.client_burst;
    config.rate_limit.namespace_rate = args.namespace_rate;
    config.rate_limit.namespace_burst = args.namespace_burst;
    config.rate_limit.initial_fill = args.initial_fill;
    config.metrics.max_namespace_labels = args.metrics_namespaces;
    // The budget's floor follows the client's rate by default in a configured stack: every
    // retry waits for a rate-limit token too, so it cannot push the client past its limit.
    config.retry.budget_min_per_sec = args.retry_budget_floor;
    config.validate()?;
    let mut registry = Registry::default();
    let metrics = config.metrics_builder().register(&mut registry);
    let collector = Collector::default();
    let client = Client::builder(&config)
        .metrics(metrics)
        .observer(collector.clone())
        .build()?;

    println!(
        "pacer reconcile storm: {} namespaces, client {}/s (burst {}) and {}/s per namespace \
         (burst {}), buckets {:.0}% full at start, server limit {}/s (burst {}) at {}",
        args.namespaces,
        args.client_rate,
        args.client_burst,
        args.namespace_rate,
        args.namespace_burst,
        args.initial_fill * 100.0,
        args.server_rate,
        args.server_burst,
        testbed.base_url()
    );
    println!(
        "faults: {} x 429 (Retry-After {}s) and {} connection resets at +{}s, {} ms latency, \
         random 429 p={}\n",
        args.storm,
        args.storm_retry_after,
        args.resets,
        args.storm_at,
        args.latency_ms,
        args.throttle_probability
    );

    let token = fetch_token(&client, &testbed).await?;
    let started = Instant::now();
    let done = Arc::new(AtomicU64::new(0));

    // The restart: every namespace at once.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.namespaces {
        let client = client.clone();
        let base = testbed.keycloak_url().to_owned();
        let token = token.clone();
        let done = Arc::clone(&done);
        tasks.spawn(async move {
            let outcome = reconcile(&client, &base, &token, &format!("ns-{i:03}")).await;
            done.fetch_add(1, Ordering::Relaxed);
            outcome
        });
    }

    // Faults mid-run, and a progress line.
    let storm = {
        let faults = faults.clone();
        let (count, retry_after, resets) = (args.storm, args.storm_retry_after, args.resets);
        let at = Duration::from_secs_f64(args.storm_at.max(0.0));
        tokio::spawn(async move {
            tokio::time::sleep(at).await;
            faults.storm(count, Some(Duration::from_secs(retry_after)));
            faults.reset_connections(resets);
        })
    };
    // One sample a second (and one at the end) for --plot.
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sample_now = {
        let stats = testbed.stats().clone();
        let collector = collector.clone();
        let samples = Arc::clone(&samples);
        move || {
            let retries = collector.0.throttled_retries.load(Ordering::Relaxed)
                + collector.0.other_retries.load(Ordering::Relaxed);
            samples
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Sample {
                    at: started.elapsed().as_secs_f64(),
                    sent: stats.requests(),
                    too_many: stats.too_many_requests(),
                    retries,
                });
        }
    };
    let sampler = {
        let sample_now = sample_now.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                sample_now();
            }
        })
    };
    let progress = {
        let done = Arc::clone(&done);
        let stats = testbed.stats().clone();
        let total = args.namespaces as u64;
        tokio::spawn(async move {
            loop {
                let n = done.load(Ordering::Relaxed);
                eprint!(
                    "\r  {:>5.1}s  reconciled {n:>4}/{total}  requests sent {:>5}  429s {:>4}",
                    started.elapsed().as_secs_f64(),
                    stats.requests(),
                    stats.too_many_requests()
                );
                let _ = std::io::stderr().flush();
                if n >= total {
                    eprintln!();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    let mut outcomes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        outcomes.push(joined?);
    }
    let wall = started.elapsed();
    sampler.abort();
    sample_now();
    progress.await?;
    storm.abort();

    // The report.
    let waits = collector
        .0
        .waits
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let wait_of = |ns: &str| waits.get(ns).copied().unwrap_or_default();
    let stats = testbed.stats();
    let needed = 1 + 4 * args.namespaces as u64;
    outcomes.sort_by(|a, b| a.namespace.cmp(&b.namespace));
    let failures: Vec<&Outcome> = outcomes.iter().filter(|o| o.failure.is_some()).collect();

    println!(
        "\n== per namespace ({} reconciles of 4 calls) ==",
        outcomes.len()
    );
    let mut durations: Vec<f64> = outcomes.iter().map(|o| o.elapsed.as_secs_f64()).collect();
    let mut rates: Vec<f64> = outcomes
        .iter()
        .map(|o| f64::from(o.calls) / o.elapsed.as_secs_f64().max(1e-9))
        .collect();
    let mut waited: Vec<f64> = outcomes
        .iter()
        .map(|o| wait_of(&o.namespace).as_secs_f64())
        .collect();
    println!("{:<28} {:>9} {:>9} {:>9}", "", "min", "median", "max");
    for (label, values, unit) in [
        ("reconcile time", &mut durations, "s"),
        ("throughput (calls/s)", &mut rates, ""),
        ("rate-limit wait", &mut waited, "s"),
    ] {
        if let Some((min, median, max)) = spread(values) {
            println!("{label:<28} {min:>8.2}{unit} {median:>8.2}{unit} {max:>8.2}{unit}");
        }
    }
    let mut by_time: Vec<&Outcome> = outcomes.iter().collect();
    by_time.sort_by_key(|o| o.elapsed);
    println!(
        "\n{:<10} {:>14} {:>12} {:>16}",
        "namespace", "reconcile", "calls/s", "rate-limit wait"
    );
    let shown: Vec<&Outcome> = by_time
        .iter()
        .take(3)
        .chain(by_time.iter().skip(by_time.len().saturating_sub(3).max(3)))
        .copied()
        .collect();
    for (i, o) in shown.iter().enumerate() {
        if i == 3 {
            println!("{:<10}", "...");
        }
        println!(
            "{:<10} {:>14} {:>12.2} {:>16}",
            o.namespace,
            secs(o.elapsed),
            f64::from(o.calls) / o.elapsed.as_secs_f64().max(1e-9),
            secs(wait_of(&o.namespace))
        );
    }

    let throttled = collector.0.throttled_retries.load(Ordering::Relaxed);
    let other = collector.0.other_retries.load(Ordering::Relaxed);
    println!("\n== totals ==");
    println!(
        "wall time                  {} for {} namespaces ({:.1} calls/s overall; the server \
         admits {}/s)",
        secs(wall),
        args.namespaces,
        (needed - 1) as f64 / wall.as_secs_f64(),
        args.server_rate
    );
    println!(
        "requests needed / sent     {needed} / {} (+{} retries)",
        stats.requests(),
        stats.requests().saturating_sub(needed)
    );
    println!(
        "429s met                   {} ({} from the server's limit, {} injected)",
        stats.too_many_requests(),
        stats.rate_limited(),
        stats.too_many_requests() - stats.rate_limited()
    );
    println!("retried                    {throttled} after 429, {other} after resets/5xx/timeouts");
    println!("connection resets          {}", stats.resets());
    println!("failures                   {}", failures.len());
    for o in failures.iter().take(10) {
        println!("  {}: {}", o.namespace, o.failure.as_deref().unwrap_or(""));
    }

    if let Some(path) = &args.plot {
        let samples = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
        plot(path, &samples, &args)?;
        println!("\nchart of the run written to {}", path.display());
    }

    if !args.no_metrics_text {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        println!("\n== Prometheus text of the run ==\n{text}");
    }
    testbed.shutdown().await;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} namespaces failed to reconcile", failures.len()).into())
    }
}
