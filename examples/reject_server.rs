//! An axum server that protects itself with the limiter in reject mode.
//!
//! ```text
//! cargo run -p examples --example reject_server            # listens on 127.0.0.1:3000
//! cargo run -p examples --example reject_server -- 127.0.0.1:8080
//! curl -i -H 'x-tenant: team-a' http://127.0.0.1:3000/
//! ```
//!
//! Requests are keyed by their `x-tenant` header. Past a tenant's quota (2 req/s, burst 5) or
//! the global one (20 req/s, burst 40), the server answers `429 Too Many Requests` at once with
//! `Retry-After` and the IETF `RateLimit-Policy` / `RateLimit` fields. On start it sends itself
//! a burst so the output shows a refusal; then it serves until interrupted.

use axum::Router;
use axum::routing::get;
use http::HeaderName;
use pacer::rate_limit::{FromHeader, Quota, RateLimitLayer, RateLimiter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let limiter = RateLimiter::builder()
        .global(Quota::per_second(20)?.with_burst(40)?)
        .per_namespace(Quota::per_second(2)?.with_burst(5)?)
        .build()?;
    let app = Router::new()
        .route("/", get(|| async { "hello, polite client\n" }))
        .layer(
            RateLimitLayer::reject(limiter)
                .with_extractor(FromHeader::new(HeaderName::from_static("x-tenant"))),
        );
    let listener = TcpListener::bind(&listen).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}/ (key: x-tenant header)");
    tokio::spawn(async move { axum::serve(listener, app).await });

    // Seven requests from one tenant: five pass (the burst), then 429s.
    for n in 1..=7 {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nx-tenant: team-a\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        let head: Vec<&str> = answer
            .lines()
            .take_while(|line| !line.is_empty())
            .filter(|line| {
                let line = line.to_ascii_lowercase();
                line.starts_with("http/")
                    || line.starts_with("retry-after")
                    || line.starts_with("ratelimit")
            })
            .collect();
        println!("request {n}: {}", head.join(" | "));
    }
    println!("serving until Ctrl-C");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
