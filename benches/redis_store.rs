//! The shared Redis store against the in-memory limiter and against the fixed-window limiter
//! users write by hand over the same Redis (`INCR` + `EXPIRE` on a key per window, one
//! pipelined round trip).
//!
//! `flock /tmp/pacer-bench.lock cargo bench -p benches --bench redis_store`
//!
//! Starts its own `redis-server` on a free loopback port (persisting nothing) and kills it at
//! the end; without `redis-server` only the in-memory figures are measured.
//!
//! - `decision/*`: latency of one decision, one at a time (one round trip for Redis).
//! - `concurrent/<tasks>/*`: decisions per second with 1, 8, 64 and 256 tasks deciding at
//!   once over one multiplexed connection per limiter (the shape of a busy client replica).
//! - `cluster/<tasks>/*`: the same over a Redis Cluster of three masters (started with
//!   `redis-server --cluster-enabled yes` and `redis-cli --cluster create`, the tests'
//!   harness): pacer's decisions spread over the shards of their namespaces, the fixed
//!   window's keys too.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pacer::Namespace;
use pacer::rate_limit::redis::RedisStore;
use pacer::rate_limit::{Quota, RateLimiter};
use redis::aio::{ConnectionLike, ConnectionManager};

#[path = "../tests/support/redis_cluster.rs"]
mod redis_cluster;
use redis_cluster::RedisCluster;

/// How many tasks decide at once in the `concurrent` rows.
const CONCURRENCY: [u64; 4] = [1, 8, 64, 256];

struct RedisServer {
    port: u16,
    child: Child,
}

impl RedisServer {
    fn start() -> Option<Self> {
        let found = Command::new("redis-server").arg("--version").output();
        if !found.is_ok_and(|out| out.status.success()) {
            eprintln!("SKIPPED the Redis benches: redis-server is not installed");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = Self { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let pong = redis::Client::open(server.url())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut con| redis::cmd("PING").query::<String>(&mut con));
            if pong.is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("SKIPPED the Redis benches: redis-server did not answer PING");
        None
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Quotas that never bind: the figures are the cost of deciding, not of waiting.
fn limiter_builder() -> pacer::rate_limit::RateLimiterBuilder {
    let roomy = Quota::per_second(1e6)
        .unwrap()
        .with_burst(1_000_000)
        .unwrap();
    RateLimiter::builder().global(roomy).per_namespace(roomy)
}

/// The hand-written fixed-window limiter: `INCR` the window's key, `EXPIRE` it, compare.
async fn fixed_window(connection: &mut impl ConnectionLike, name: &str, limit: u64) -> bool {
    let window = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // The name is the key's hash tag: on a cluster, a namespace's windows live on its shard.
    let key = format!("fw:{{{name}}}:{window}");
    let (count,): (u64,) = redis::pipe()
        .incr(&key, 1)
        .expire(&key, 2)
        .ignore()
        .query_async(connection)
        .await
        .unwrap();
    count <= limit
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let namespace = Namespace::new("team-a");
    let memory = limiter_builder().build().unwrap();

    let server = RedisServer::start();
    let shared = server.as_ref().map(|server| {
        runtime.block_on(async {
            let store = RedisStore::builder()
                .prefix("bench")
                .timeout(Duration::from_millis(500))
                .connect(server.url())
                .await
                .unwrap();
            let limiter = limiter_builder().store(store).build().unwrap();
            let client = redis::Client::open(server.url()).unwrap();
            let connection = ConnectionManager::new(client).await.unwrap();
            (limiter, connection)
        })
    });

    let mut group = c.benchmark_group("decision");
    group.throughput(Throughput::Elements(1));
    group.bench_function("memory/try_acquire", |b| {
        b.iter(|| black_box(memory.try_acquire(black_box(&namespace))))
    });
    if let Some((limiter, connection)) = &shared {
        group.bench_function("redis/pacer_gcra", |b| {
            b.to_async(&runtime)
                .iter(|| async { black_box(limiter.try_acquire_async(&namespace).await) })
        });
        group.bench_function("redis/incr_expire_fixed_window", |b| {
            b.to_async(&runtime).iter(|| async {
                let mut connection = connection.clone();
                black_box(fixed_window(&mut connection, "team-a", u64::MAX).await)
            })
        });
    }
    group.finish();

    for concurrency in CONCURRENCY {
        concurrent(c, &runtime, shared.as_ref(), concurrency);
    }
    drop(shared);
    drop(server);

    // Without redis-server the cluster rows are not measured either (the harness would fail).
    if redis_server_found() {
        let cluster = RedisCluster::start(3, 0);
        let on_cluster = runtime.block_on(async {
            let store = RedisStore::builder()
                .prefix("bench")
                .timeout(Duration::from_millis(500))
                .connect_cluster(cluster.seed_urls())
                .await
                .unwrap();
            let limiter = limiter_builder().store(store).build().unwrap();
            let client = redis::cluster::ClusterClient::new(cluster.seed_urls()).unwrap();
            let connection = client.get_async_connection().await.unwrap();
            (limiter, connection)
        });
        for concurrency in CONCURRENCY {
            concurrent_on(c, &runtime, &on_cluster, "cluster", concurrency);
        }
        drop(on_cluster);
        drop(cluster);
    }
    drop(runtime);
}

fn redis_server_found() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// `concurrency` tasks deciding at once, each `iters` times, for pacer's script and for the
/// hand-written fixed window.
fn concurrent(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    shared: Option<&(RateLimiter, ConnectionManager)>,
    concurrency: u64,
) {
    if let Some(shared) = shared {
        concurrent_on(c, runtime, shared, "concurrent", concurrency);
    }
}

/// `concurrency` tasks deciding at once over `shared`'s limiter and its connection.
fn concurrent_on<C: ConnectionLike + Clone + Send + Sync + 'static>(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    shared: &(RateLimiter, C),
    name: &str,
    concurrency: u64,
) {
    let mut group = c.benchmark_group(format!("{name}/{concurrency}"));
    group.throughput(Throughput::Elements(concurrency));
    {
        let (limiter, connection) = shared;
        group.bench_function("redis/pacer_gcra", |b| {
            b.to_async(runtime).iter_custom(|iters| async move {
                let start = Instant::now();
                let tasks: Vec<_> = (0..concurrency)
                    .map(|i| {
                        let limiter = limiter.clone();
                        let namespace = Namespace::new(format!("ns-{}", i % 8));
                        tokio::spawn(async move {
                            for _ in 0..iters {
                                black_box(limiter.try_acquire_async(&namespace).await.is_ok());
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
                start.elapsed()
            })
        });
        group.bench_function("redis/incr_expire_fixed_window", |b| {
            b.to_async(runtime).iter_custom(|iters| async move {
                let start = Instant::now();
                let tasks: Vec<_> = (0..concurrency)
                    .map(|i| {
                        let mut connection = connection.clone();
                        let name = format!("ns-{}", i % 8);
                        tokio::spawn(async move {
                            for _ in 0..iters {
                                black_box(fixed_window(&mut connection, &name, u64::MAX).await);
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = redis_store;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = benches
}
criterion_main!(redis_store);
