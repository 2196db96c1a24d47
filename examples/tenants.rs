//! Several tenants share one API through the two-level rate limiter.
//!
//! ```text
//! cargo run --release -p examples --example tenants
//! ```
//!
//! Four namespaces send bursts of requests at once through `RateLimitLayer` over a stand-in
//! HTTP service. The global bucket (20 req/s) caps the total, each namespace's bucket (5 req/s,
//! 10 for `platform`) caps each tenant, and a tenant with a deep backlog does not hold back
//! the others. The table shows each tenant's achieved rate and how long its requests waited.

use std::convert::Infallible;
use std::time::Duration;

use http::{Request, Response};
use pacer::Namespace;
use pacer::rate_limit::{Quota, RateLimitLayer, RateLimiter};
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt, service_fn};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let limiter = RateLimiter::builder()
        .global(Quota::per_second(20)?.with_burst(20)?)
        .per_namespace(Quota::per_second(5)?.with_burst(5)?)
        .namespace_override("platform", Quota::per_second(10)?.with_burst(10)?)
        .max_wait(Duration::from_secs(30))
        .build()?;
    println!("{limiter:?}\n");

    // A stand-in for the HTTP client: answers at once, so all waiting is the limiter's.
    let api = service_fn(|_request: Request<()>| async { Ok::<_, Infallible>(Response::new(())) });
    let client = ServiceBuilder::new()
        .layer(RateLimitLayer::new(limiter.clone()))
        .service(api);

    let tenants = [
        ("platform", 60),
        ("team-a", 30),
        ("team-b", 30),
        ("team-c", 5),
    ];
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (name, count) in tenants {
        for _ in 0..count {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut request = Request::new(());
                request.extensions_mut().insert(Namespace::new(name));
                let asked = Instant::now();
                client
                    .oneshot(request)
                    .await
                    .map(|_| (name, asked.elapsed(), start.elapsed()))
            }));
        }
    }

    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await??);
    }
    println!(
        "{:<10} {:>8} {:>10} {:>12} {:>10} {:>10}",
        "namespace", "requests", "done at", "achieved", "mean wait", "max wait"
    );
    for (name, count) in tenants {
        let mine: Vec<_> = outcomes.iter().filter(|(n, ..)| *n == name).collect();
        let done = mine.iter().map(|(_, _, at)| *at).max().unwrap_or_default();
        let max_wait = mine
            .iter()
            .map(|(_, wait, _)| *wait)
            .max()
            .unwrap_or_default();
        let mean_wait = mine.iter().map(|(_, wait, _)| *wait).sum::<Duration>() / count;
        // The first burst goes at once; the rate shows over the rest.
        let achieved = if done.is_zero() {
            "burst only".to_owned()
        } else {
            format!("{:.1} req/s", count as f64 / done.as_secs_f64())
        };
        println!(
            "{name:<10} {count:>8} {:>9.2}s {achieved:>12} {:>9.2}s {:>9.2}s",
            done.as_secs_f64(),
            mean_wait.as_secs_f64(),
            max_wait.as_secs_f64()
        );
    }
    let total: u32 = tenants.iter().map(|(_, count)| count).sum();
    let elapsed = start.elapsed();
    println!(
        "\nall {total} requests in {:.2}s: {:.1} req/s against a global limit of 20 req/s (burst 20)",
        elapsed.as_secs_f64(),
        f64::from(total) / elapsed.as_secs_f64()
    );
    println!(
        "namespaces tracked now: {} (each is forgotten once its bucket has refilled)",
        limiter.tracked_namespaces()
    );
    Ok(())
}
