//! `pacer-testbed`: serves the fake Keycloak and Infrahub on one port until Ctrl-C.
//!
//! ```text
//! cargo run -p pacer-testbed -- --listen 127.0.0.1:8080 --rate 50 --burst 100 --latency-ms 20
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use http::HeaderName;
use pacer::rate_limit::{Quota, RateLimiter};
use pacer_testbed::{Credentials, Testbed};

/// Fake Keycloak and Infrahub servers for pacer, with rate limits and fault injection.
#[derive(Debug, Parser)]
#[command(name = "pacer-testbed", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Server-side rate limit: sustained requests per second (reject mode, 429 + Retry-After).
    #[arg(long)]
    rate: Option<f64>,
    /// Burst of the server-side rate limit (default: the rate rounded up).
    #[arg(long, requires = "rate")]
    burst: Option<u32>,
    /// Per-key rate limit (requests per second per value of --key-header).
    #[arg(long, requires = "key_header")]
    key_rate: Option<f64>,
    /// Burst of the per-key rate limit.
    #[arg(long, requires = "key_rate")]
    key_burst: Option<u32>,
    /// Header to key the per-key rate limit on (e.g. x-tenant).
    #[arg(long)]
    key_header: Option<HeaderName>,
    /// Probability (0..=1) of answering any request 429.
    #[arg(long, default_value_t = 0.0)]
    throttle_probability: f64,
    /// Retry-After (seconds) sent with injected 429s.
    #[arg(long, default_value_t = 1)]
    retry_after: u64,
    /// Start with a 429 storm for this many seconds.
    #[arg(long)]
    storm_secs: Option<u64>,
    /// Latency added to every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = 300)]
    token_lifetime: u64,
    /// Refresh token lifetime in seconds.
    #[arg(long, default_value_t = 1800)]
    refresh_lifetime: u64,
    /// Keycloak confidential client id.
    #[arg(long, default_value = "pacer")]
    client_id: String,
    /// Keycloak confidential client secret.
    #[arg(long, default_value = "pacer-secret")]
    client_secret: String,
    /// Keycloak admin user (password grant with admin-cli).
    #[arg(long, default_value = "admin")]
    admin_user: String,
    /// Keycloak admin password.
    #[arg(long, default_value = "admin")]
    admin_password: String,
    /// Infrahub login user.
    #[arg(long, default_value = "admin")]
    infrahub_user: String,
    /// Infrahub login password.
    #[arg(long, default_value = "infrahub")]
    infrahub_password: String,
    /// Infrahub API key (X-INFRAHUB-KEY).
    #[arg(long, default_value = "testbed-api-key")]
    infrahub_api_key: String,
}

fn limiter(args: &Args) -> Result<Option<RateLimiter>, Box<dyn std::error::Error>> {
    if args.rate.is_none() && args.key_rate.is_none() {
        return Ok(None);
    }
    let mut builder = RateLimiter::builder();
    // An unset level is effectively unlimited.
    let huge = Quota::per_second(1e9)?.with_burst(u32::MAX)?;
    builder = builder.global(match args.rate {
        Some(rate) => {
            let quota = Quota::per_second(rate)?;
            match args.burst {
                Some(burst) => quota.with_burst(burst)?,
                None => quota,
            }
        }
        None => huge,
    });
    builder = builder.per_namespace(match args.key_rate {
        Some(rate) => {
            let quota = Quota::per_second(rate)?;
            match args.key_burst {
                Some(burst) => quota.with_burst(burst)?,
                None => quota,
            }
        }
        None => huge,
    });
    Ok(Some(builder.build()?))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pacer-testbed: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let credentials = Credentials {
        keycloak_client_id: args.client_id.clone(),
        keycloak_client_secret: args.client_secret.clone(),
        keycloak_admin_user: args.admin_user.clone(),
        keycloak_admin_password: args.admin_password.clone(),
        infrahub_user: args.infrahub_user.clone(),
        infrahub_password: args.infrahub_password.clone(),
        infrahub_api_key: args.infrahub_api_key.clone(),
        ..Credentials::default()
    };
    let mut builder = Testbed::builder()
        .addr(args.listen)
        .credentials(credentials)
        .token_lifetime(Duration::from_secs(args.token_lifetime))
        .refresh_lifetime(Duration::from_secs(args.refresh_lifetime));
    if let Some(limiter) = limiter(&args)? {
        builder = builder.rate_limit(limiter);
    }
    if let Some(header) = args.key_header.clone() {
        builder = builder.rate_limit_key(header);
    }
    let testbed = builder.start().await?;
    let retry_after = Some(Duration::from_secs(args.retry_after));
    let faults = testbed.faults();
    faults.set_latency(Duration::from_millis(args.latency_ms));
    faults.set_throttle_probability(args.throttle_probability, retry_after);
    if let Some(secs) = args.storm_secs {
        faults.storm_for(Duration::from_secs(secs), retry_after);
    }
    let c = testbed.credentials();
    println!("pacer-testbed listening on {}", testbed.addr());
    println!(
        "Keycloak  {}  (realm {}, token endpoint {}/realms/{}/protocol/openid-connect/token)",
        testbed.keycloak_url(),
        c.keycloak_realm,
        testbed.keycloak_url(),
        c.keycloak_realm
    );
    println!(
        "          client_credentials: client_id={} client_secret={}",
        c.keycloak_client_id, c.keycloak_client_secret
    );
    println!(
        "          password: client_id=admin-cli username={} password={}",
        c.keycloak_admin_user, c.keycloak_admin_password
    );
    println!(
        "Infrahub  {}  (GraphQL {}/graphql)",
        testbed.infrahub_url(),
        testbed.infrahub_url()
    );
    println!(
        "          login: username={} password={}  X-INFRAHUB-KEY: {}",
        c.infrahub_user, c.infrahub_password, c.infrahub_api_key
    );
    println!("Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    let stats = testbed.stats().clone();
    testbed.shutdown().await;
    println!(
        "served {} requests ({} answered 429, {} injected faults, {} resets)",
        stats.requests(),
        stats.too_many_requests(),
        stats.injected(),
        stats.resets()
    );
    Ok(())
}
