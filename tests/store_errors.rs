//! Failures of the shared rate-limit store are visible: against a real `redis-server` that is
//! killed mid-run, every failed call is reported as `Event::StoreError` and counted in
//! `pacer_rate_limit_store_errors_total{kind}`, and the failure policy applies. Without
//! `redis-server` on `PATH` the test prints why it skips and passes.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pacer::Namespace;
use pacer::events::{Event, Observer};
use pacer::metrics::Metrics;
use pacer::rate_limit::redis::RedisStore;
use pacer::rate_limit::{Level, RateLimiter, StoreFailure};
use prometheus_client::registry::Registry;

/// A `redis-server` of our own, on a free loopback port, persisting nothing.
struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// `None` (after saying so) when `redis-server` is not installed.
    fn start() -> Option<Self> {
        let version = Command::new("redis-server").arg("--version").output();
        if !version.is_ok_and(|out| out.status.success()) {
            // Written to stderr directly, past the test harness's capture, so it shows.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: redis-server is not installed (apt-get install redis-server)"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self { port, child: None };
        server.restart();
        Some(server)
    }

    /// Starts (again) on the same port and waits until it answers `PING`.
    fn restart(&mut self) {
        let version = Command::new("redis-server")
            .arg("--version")
            .output()
            .unwrap();
        // Redis 7 refuses DEBUG unless told otherwise; older versions do not know the option.
        let debug_allowed = String::from_utf8_lossy(&version.stdout)
            .split("v=")
            .nth(1)
            .and_then(|v| v.split('.').next())
            .and_then(|major| major.parse::<u32>().ok())
            .is_some_and(|major| major >= 7);
        let mut command = Command::new("redis-server");
        command.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"]);
        command.args(["--save", "", "--appendonly", "no"]);
        if debug_allowed {
            command.args(["--enable-debug-command", "yes"]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let pong = redis::Client::open(self.url())
                .and_then(|client| client.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut con| redis::cmd("PING").query::<String>(&mut con));
            if pong.is_ok() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A plain synchronous connection, for looking at keys.
    fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Redis's clock, in microseconds.
    fn time_micros(&self) -> u64 {
        let (secs, micros): (u64, u64) = redis::cmd("TIME").query(&mut self.connection()).unwrap();
        secs * 1_000_000 + micros
    }

    fn query<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        command.query(&mut self.connection()).unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Keeps the store errors it is told about: operation, kind and message.
#[derive(Default, Clone)]
struct StoreErrors(Arc<Mutex<Vec<(String, String, String)>>>);

impl Observer for StoreErrors {
    fn observe(&self, event: &Event<'_>) {
        if let Event::StoreError {
            operation,
            kind,
            error,
        } = event
        {
            self.0.lock().unwrap().push((
                (*operation).to_owned(),
                (*kind).to_owned(),
                error.to_string(),
            ));
        }
    }
}

fn scrape(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

async fn limiter(
    redis: &RedisServer,
    policy: StoreFailure,
) -> (RateLimiter, StoreErrors, Registry) {
    let store = RedisStore::builder()
        .prefix("store-errors")
        .timeout(Duration::from_millis(200))
        .connect(redis.url())
        .await
        .unwrap();
    let mut registry = Registry::with_prefix("pacer");
    let metrics = Metrics::new(&mut registry);
    let errors = StoreErrors::default();
    let limiter = RateLimiter::builder()
        .store(store)
        .on_store_failure(policy)
        .observer((metrics, errors.clone()))
        .build()
        .unwrap();
    (limiter, errors, registry)
}

#[tokio::test]
async fn a_killed_redis_is_reported_counted_and_fails_closed() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (limiter, errors, registry) = limiter(&redis, StoreFailure::FailClosed).await;
    let namespace = Namespace::new("team-a");
    limiter.acquire(&namespace).await.unwrap();
    assert!(errors.0.lock().unwrap().is_empty());
    assert!(!scrape(&registry).contains("pacer_rate_limit_store_errors_total{"));

    redis.kill();
    let refused = limiter.acquire(&namespace).await.unwrap_err();
    assert_eq!(refused.level, Level::Store);

    let seen = errors.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0, "decide");
    assert!(seen[0].1 == "backend" || seen[0].1 == "timeout", "{seen:?}");
    assert!(seen[0].2.contains("rate-limit store"), "{seen:?}");
    let text = scrape(&registry);
    let line = format!(
        "pacer_rate_limit_store_errors_total{{kind=\"{}\"}} 1",
        seen[0].1
    );
    assert!(text.contains(&line), "{text}");
    assert!(
        text.contains("pacer_rate_limit_store_fallbacks_total 1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_killed_redis_under_the_local_policy_still_admits_and_is_reported() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (limiter, errors, registry) = limiter(&redis, StoreFailure::local_share_of(2)).await;
    let namespace = Namespace::new("team-b");
    redis.kill();
    limiter.acquire(&namespace).await.unwrap();
    assert_eq!(errors.0.lock().unwrap().len(), 1);
    assert_eq!(limiter.store_fallbacks(), 1);
    let text = scrape(&registry);
    assert!(
        text.contains("pacer_rate_limit_store_errors_total{kind="),
        "{text}"
    );
}
