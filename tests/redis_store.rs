//! The shared rate-limit store against a real `redis-server`, started by each test on a free
//! loopback port and killed when the test ends. Without `redis-server` on `PATH` the tests
//! fail, saying how to install it.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use pacer::Namespace;
use pacer::rate_limit::redis::RedisStore;
use pacer::rate_limit::{
    Level, Quota, RateLimitLayer, RateLimitStore, RateLimited, RateLimiter, RateLimiterBuilder,
    Refund, StoreDecision, StoreFailure, StoreRequest,
};
use tokio::time::Instant;
use tower::{Layer, ServiceExt, service_fn};

#[path = "support/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer;

fn quota(rate: f64, burst: u32) -> Quota {
    Quota::per_second(rate).unwrap().with_burst(burst).unwrap()
}

fn ns(name: &str) -> Namespace {
    Namespace::new(name)
}

/// A store with a generous call timeout, so that a loaded machine does not turn the tests
/// about sharing into tests of the failure policy.
async fn store(server: &RedisServer) -> RedisStore {
    store_with_timeout(server, Duration::from_secs(1)).await
}

async fn store_with_timeout(server: &RedisServer, timeout: Duration) -> RedisStore {
    RedisStore::builder()
        .prefix("test")
        .timeout(timeout)
        .connect(server.url())
        .await
        .unwrap()
}

async fn limiter(server: &RedisServer, builder: RateLimiterBuilder) -> RateLimiter {
    builder.store(store(server).await).build().unwrap()
}

/// A limiter whose store calls time out after the default 50 ms.
async fn limiter_50ms(server: &RedisServer, builder: RateLimiterBuilder) -> RateLimiter {
    let store = store_with_timeout(server, Duration::from_millis(50)).await;
    builder.store(store).build().unwrap()
}

fn decide(namespace: &str, ns_quota: Quota, global: Quota, max_wait: Duration) -> StoreRequest {
    StoreRequest::new(ns(namespace), ns_quota, global, max_wait)
}

/// The scripts' logic, step by step, through the store's own API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_burst_rate_refusal_and_refunds() {
    let server = RedisServer::start();
    let store = store(&server).await;
    // A global bucket that never binds here, slow enough that its key outlives each step.
    let (ns_quota, global) = (quota(2.0, 3), quota(10.0, 1000));
    let a = || decide("a", ns_quota, global, Duration::ZERO);

    // Burst: three at once, then a refusal that tells the wait and consumes nothing.
    for _ in 0..3 {
        let decision = store.decide(a()).await.unwrap();
        assert_eq!(
            decision,
            StoreDecision::Admitted {
                global_wait: Duration::ZERO
            }
        );
    }
    let key = store.namespace_key(&ns("a"));
    assert_eq!(key, "{test:ns:a}");
    let before: String = server.query(&["GET", &key]);
    for _ in 0..5 {
        match store.decide(a()).await.unwrap() {
            StoreDecision::Refused { level, wait } => {
                assert_eq!(level, Level::Namespace);
                assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
            }
            other => panic!("not refused: {other:?}"),
        }
    }
    let after: String = server.query(&["GET", &key]);
    assert_eq!(before, after, "a refusal changed the bucket");

    // The scripts are re-sent when Redis lost them (EVALSHA falls back to EVAL).
    let _: String = server.query(&["SCRIPT", "FLUSH"]);
    assert!(matches!(
        store.decide(a()).await.unwrap(),
        StoreDecision::Refused { .. }
    ));

    // Rate: one every 500 ms.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(matches!(
        store.decide(a()).await.unwrap(),
        StoreDecision::Admitted { .. }
    ));
    assert!(matches!(
        store.decide(a()).await.unwrap(),
        StoreDecision::Refused { .. }
    ));

    // A refund gives one slot back.
    store
        .refund(Refund::new().namespace(ns("a"), ns_quota))
        .await
        .unwrap();
    assert!(matches!(
        store.decide(a()).await.unwrap(),
        StoreDecision::Admitted { .. }
    ));

    // Within max_wait the namespace slot is reserved in the future, the global one untouched.
    let queued = store
        .decide(decide("a", ns_quota, global, Duration::from_secs(5)))
        .await
        .unwrap();
    let StoreDecision::Queued { wait } = queued else {
        panic!("not queued: {queued:?}")
    };
    assert!(wait > Duration::from_millis(300) && wait <= Duration::from_secs(1));
    // The global slot comes from this replica's lease: the global key was touched once, by
    // the first decision's lease, and the wait's second step touches nothing in Redis.
    let leases = store.lease_calls();
    let global_before: Vec<String> = server.query(&["HGETALL", store.global_key()]);
    assert!(!global_before.is_empty());
    assert_eq!(
        store.reserve_global(global, Duration::ZERO).await.unwrap(),
        Ok(Duration::ZERO)
    );
    assert_eq!(store.lease_calls(), leases);
    let global_after: Vec<String> = server.query(&["HGETALL", store.global_key()]);
    assert_eq!(global_before, global_after);

    // A global refusal leaves no trace in the namespace bucket: its key is not even created.
    // (Another prefix: buckets of their own for another global quota.)
    let store = RedisStore::builder()
        .prefix("tight")
        .connect(server.url())
        .await
        .unwrap();
    let tight = quota(1.0, 1);
    let first = store
        .decide(decide("x", ns_quota, tight, Duration::ZERO))
        .await
        .unwrap();
    assert!(matches!(first, StoreDecision::Admitted { .. }));
    let refused = store
        .decide(decide("y", ns_quota, tight, Duration::ZERO))
        .await
        .unwrap();
    assert!(matches!(
        refused,
        StoreDecision::Refused {
            level: Level::Global,
            ..
        }
    ));
    let exists: i64 = server.query(&["EXISTS", &store.namespace_key(&ns("y"))]);
    assert_eq!(exists, 0);
    // A refused second step consumes nothing either: the bucket's arrival time stays.
    let tat = || -> String { server.query(&["HGET", store.global_key(), "tat"]) };
    let before = tat();
    let second = store.reserve_global(tight, Duration::ZERO).await.unwrap();
    assert!(second.is_err());
    assert_eq!(before, tat());

    // The shared pause keeps the later deadline.
    let far = Instant::now() + Duration::from_secs(5);
    let near = Instant::now() + Duration::from_secs(1);
    assert!(store.paused_until("upstream").await.unwrap().is_none());
    let kept = store.pause_upstream("upstream", far).await.unwrap();
    assert!(kept >= far - Duration::from_millis(5));
    let still = store.pause_upstream("upstream", near).await.unwrap();
    assert!(
        still >= far - Duration::from_millis(10),
        "an earlier deadline won"
    );
    let until = store.paused_until("upstream").await.unwrap().unwrap();
    assert!(until >= far - Duration::from_millis(10) && until <= far + Duration::from_millis(100));
    let pttl: i64 = server.query(&["PTTL", "{tight:pause:upstream}"]);
    assert!((4000..=5000).contains(&pttl), "pause PTTL {pttl}");
}

/// Three limiters (replicas) with a 20 req/s global limit, saturating it together for 10 s of
/// real time, admit the burst plus 200 together, within 2%; counted against Redis's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_the_global_limit() {
    let server = RedisServer::start();
    const BURST: u32 = 20;
    const RUN: Duration = Duration::from_secs(10);
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let builder = RateLimiter::builder()
            .global(quota(20.0, BURST))
            .per_namespace(quota(1000.0, 1000));
        replicas.push(limiter(&server, builder).await);
    }
    let redis_start = server.time_micros();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (r, replica) in replicas.iter().enumerate() {
        for t in 0..4 {
            let replica = replica.clone();
            let name = ns(&format!("replica-{r}-task-{t}"));
            tasks.push(tokio::spawn(async move {
                let mut admitted = 0u32;
                while start.elapsed() < RUN {
                    match replica.try_acquire_async(&name).await {
                        Ok(()) => admitted += 1,
                        Err(refused) => {
                            assert_eq!(refused.level, Level::Global);
                            let left = RUN.saturating_sub(start.elapsed());
                            tokio::time::sleep(refused.retry_after.min(left)).await;
                        }
                    }
                }
                admitted
            }));
        }
    }
    let mut per_replica = [0u32; 3];
    for (i, task) in tasks.into_iter().enumerate() {
        per_replica[i / 4] += task.await.unwrap();
    }
    let redis_elapsed = Duration::from_micros(server.time_micros() - redis_start);
    let total: u32 = per_replica.iter().sum();
    // The hard bound, on Redis's clock: never more than burst + rate * elapsed.
    let bound = f64::from(BURST) + 20.0 * redis_elapsed.as_secs_f64();
    assert!(
        f64::from(total) <= bound + 1.0,
        "{total} admitted in {redis_elapsed:?} of Redis time > {bound}"
    );
    // Saturated for the whole run: the burst plus 200, within 2%.
    let expected = f64::from(BURST) + 200.0;
    assert!(
        (f64::from(total) - expected).abs() <= expected * 0.02,
        "{total} admitted, expected {expected} within 2% ({per_replica:?})"
    );
    assert!(
        per_replica.iter().all(|&n| n > 20),
        "a replica starved: {per_replica:?}"
    );
    for replica in &replicas {
        assert_eq!(replica.store_fallbacks(), 0);
    }
    eprintln!("admitted {total} ({per_replica:?}) in {redis_elapsed:?} of Redis time");
}

/// Per-namespace limits are shared the same way, in wait mode and through the layer;
/// overrides travel with each request; dropped waiters give their slots back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_namespace_limits_in_wait_mode() {
    let server = RedisServer::start();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let builder = RateLimiter::builder()
            .global(quota(1000.0, 1000))
            .per_namespace(quota(10.0, 2))
            .namespace_override("big", quota(1.0, 30))
            .namespace_override("dropped", quota(1.0, 2))
            .max_wait(Duration::from_secs(5));
        replicas.push(limiter(&server, builder).await);
    }

    // 15 requests of one namespace, 5 per replica at once: 2 at once, then one per 100 ms.
    let start = Instant::now();
    let mut tasks = Vec::new();
    for replica in &replicas {
        for _ in 0..5 {
            let replica = replica.clone();
            tasks.push(tokio::spawn(async move {
                replica.acquire(&ns("team-a")).await.unwrap();
                start.elapsed()
            }));
        }
    }
    let mut times = Vec::new();
    for task in tasks {
        times.push(task.await.unwrap());
    }
    times.sort();
    for (k, at) in times.iter().enumerate().skip(2) {
        let earliest = Duration::from_millis(100) * (k as u32 - 1);
        assert!(
            *at + Duration::from_millis(15) >= earliest,
            "request {k} went at {at:?}, before {earliest:?}: {times:?}"
        );
    }
    assert!(
        times[14] < Duration::from_millis(1300 + 1500),
        "too slow: {times:?}"
    );

    // An override is shared too: 30 in total across the replicas, then refusals.
    let mut admitted = 0;
    for i in 0..60 {
        if replicas[i % 3].try_acquire_async(&ns("big")).await.is_ok() {
            admitted += 1;
        }
    }
    assert!((30..=31).contains(&admitted), "big admitted {admitted}");

    // Through the layer, unchanged: wait mode delays the request.
    let service =
        RateLimitLayer::new(replicas[0].clone()).layer(service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(()))
        }));
    let mut request = Request::new(());
    request.extensions_mut().insert(ns("layered"));
    let asked = Instant::now();
    for _ in 0..3 {
        let mut request = Request::new(());
        request.extensions_mut().insert(ns("layered"));
        service.clone().oneshot(request).await.unwrap();
    }
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_millis(90) && waited < Duration::from_millis(500),
        "the third layered request waited {waited:?}"
    );
    // Reject mode over the store: 429 with the bucket's fields once the burst is spent.
    let reject =
        RateLimitLayer::reject(replicas[1].clone()).layer(service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
    let tenant = || {
        let mut request = Request::new(());
        request.extensions_mut().insert(ns("rejected"));
        request
    };
    assert_eq!(
        reject.clone().oneshot(tenant()).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        reject.clone().oneshot(tenant()).await.unwrap().status(),
        StatusCode::OK
    );
    let response = reject.clone().oneshot(tenant()).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["ratelimit"], "\"namespace\";r=0;t=1");

    // Dropped waiters give their reservations back: 1 req/s, burst 2, spent; 20 waiters on one
    // replica (those within max_wait queue), dropped; the next request on another replica
    // waits at most the second it would have without them, not the 5 they had reserved.
    let quiet = ns("dropped");
    replicas[0].try_acquire_async(&quiet).await.unwrap();
    replicas[0].try_acquire_async(&quiet).await.unwrap();
    let mut waiters = Vec::new();
    for _ in 0..20 {
        let replica = replicas[0].clone();
        let quiet = quiet.clone();
        waiters.push(tokio::spawn(async move { replica.acquire(&quiet).await }));
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    for waiter in &waiters {
        waiter.abort();
    }
    for waiter in waiters {
        let _ = waiter.await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // refunds run on spawned tasks
    let refused = replicas[2].try_acquire_async(&quiet).await.unwrap_err();
    assert_eq!(refused.level, Level::Namespace);
    assert!(
        refused.retry_after <= Duration::from_secs(1),
        "20 dropped waiters still hold slots: next in {:?}",
        refused.retry_after
    );
}

/// Waiters holding a future global slot (their namespace slot was free) give both back when
/// dropped, so the next request, on another replica, waits as if they had never come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_global_waiters_give_their_slots_back() {
    let server = RedisServer::start();
    let builder = || {
        RateLimiter::builder()
            .global(quota(1.0, 1))
            .per_namespace(quota(100.0, 100))
            .max_wait(Duration::from_secs(30))
    };
    let (first, second) = (
        limiter(&server, builder()).await,
        limiter(&server, builder()).await,
    );
    first.try_acquire_async(&ns("a")).await.unwrap();
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let first = first.clone();
            tokio::spawn(async move { first.acquire(&ns("b")).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // All five hold a global slot, 1 to 5 s ahead.
    let held = second.try_acquire_async(&ns("c")).await.unwrap_err();
    assert_eq!(held.level, Level::Global);
    assert!(held.retry_after > Duration::from_secs(4), "{held:?}");
    for waiter in &waiters {
        waiter.abort();
    }
    for waiter in waiters {
        assert!(waiter.await.unwrap_err().is_cancelled());
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // refunds run on spawned tasks
    let refused = second.try_acquire_async(&ns("c")).await.unwrap_err();
    assert_eq!(refused.level, Level::Global);
    assert!(
        refused.retry_after <= Duration::from_secs(1),
        "dropped waiters still hold global slots: next in {:?}",
        refused.retry_after
    );
}

/// Keys carry a TTL that ends when their bucket has refilled: memory in Redis is bounded by
/// the namespaces active within one refill time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_expire_once_their_bucket_has_refilled() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let limiter = RateLimiter::builder()
        .global(quota(100.0, 10)) // refill time 100 ms
        .per_namespace(quota(2.0, 3)) // one request refills in 500 ms
        .shared_store(std::sync::Arc::new(store.clone()))
        .build()
        .unwrap();
    for i in 0..50 {
        let _ = limiter.try_acquire_async(&ns(&format!("tenant-{i}"))).await;
    }
    let ns_key = store.namespace_key(&ns("tenant-0"));
    let ns_ttl: i64 = server.query(&["PTTL", &ns_key]);
    assert!((1..=500).contains(&ns_ttl), "namespace PTTL {ns_ttl}");
    let keys: i64 = server.query(&["DBSIZE"]);
    assert!(keys >= 10, "only {keys} keys");
    let global_ttl: i64 = server.query(&["PTTL", store.global_key()]);
    assert!((1..=1000).contains(&global_ttl), "global PTTL {global_ttl}");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let keys: i64 = server.query(&["DBSIZE"]);
    assert_eq!(keys, 0, "keys outlived their refill time");
    let exists: i64 = server.query(&["EXISTS", store.global_key(), &ns_key]);
    assert_eq!(exists, 0);
    assert_eq!(limiter.tracked_namespaces(), 0);
}

/// Killing Redis mid-run switches to the configured policy within the timeout; restarting it
/// brings the shared limits back on their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_falls_back_then_recovers() {
    let mut server = RedisServer::start();
    let base = || {
        RateLimiter::builder()
            .global(quota(10.0, 10))
            .per_namespace(quota(1000.0, 1000))
            .max_wait(Duration::from_millis(200))
            .store_retry_interval(Duration::from_millis(100))
    };
    // Local fallback at half of every quota (two replicas): 5 req/s, burst 5.
    let local = limiter_50ms(
        &server,
        base().on_store_failure(StoreFailure::local_share_of(2)),
    )
    .await;
    let closed = limiter_50ms(&server, base()).await;
    let a = ns("a");
    local.try_acquire_async(&a).await.unwrap();
    closed.try_acquire_async(&a).await.unwrap();
    assert_eq!((local.store_fallbacks(), closed.store_fallbacks()), (0, 0));

    server.kill();
    // Local: the fallback's burst of 5 then its own refusals, each answered quickly.
    let mut admitted = 0;
    for _ in 0..20 {
        let asked = Instant::now();
        let outcome = local.try_acquire_async(&a).await;
        assert!(asked.elapsed() < Duration::from_millis(200), "hung");
        match outcome {
            Ok(()) => admitted += 1,
            Err(refused) => assert_eq!(refused.level, Level::Global),
        }
    }
    assert_eq!(admitted, 5);
    assert!(local.store_fallbacks() >= 20);
    // Fail closed: refused with the store as the reason; wait mode answers within max_wait.
    let asked = Instant::now();
    let refused: RateLimited = closed.acquire(&a).await.unwrap_err();
    assert_eq!(refused.level, Level::Store);
    assert!(asked.elapsed() < Duration::from_millis(300));
    assert!(closed.store_fallbacks() >= 1);
    // In reject mode, a fail-closed refusal is a 503, not a 429.
    let reject = RateLimitLayer::reject(closed.clone()).layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    }));
    let response = reject.oneshot(Request::new(())).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));

    server.restart();
    // Recovery: within a few retry intervals decisions are Redis's again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let before = (local.store_fallbacks(), closed.store_fallbacks());
        let outcomes = (
            local.try_acquire_async(&ns("after")).await,
            closed.try_acquire_async(&ns("after")).await,
        );
        let after = (local.store_fallbacks(), closed.store_fallbacks());
        if before == after && outcomes.0.is_ok() && outcomes.1.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery after restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exists: i64 = server.query(&["EXISTS", "{test:ns:after}", "{test}:global"]);
    assert_eq!(exists, 2, "the decisions did not reach Redis");
}

/// A Redis that stops answering (`DEBUG SLEEP 1`) never holds a request longer than the call
/// timeout plus `max_wait`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_redis_does_not_hang_requests() {
    let server = RedisServer::start();
    let max_wait = Duration::from_millis(200);
    let base = || {
        RateLimiter::builder()
            .global(quota(1000.0, 1000))
            .per_namespace(quota(1000.0, 1000))
            .max_wait(max_wait)
    };
    let closed = limiter_50ms(&server, base()).await;
    let local = limiter_50ms(
        &server,
        base().on_store_failure(StoreFailure::Local { share: 1.0 }),
    )
    .await;
    closed.try_acquire_async(&ns("warm")).await.unwrap();
    local.try_acquire_async(&ns("warm")).await.unwrap();

    let mut sleeper = server.connection();
    let debug = std::thread::spawn(move || {
        redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(1)
            .query::<String>(&mut sleeper)
    });
    tokio::time::sleep(Duration::from_millis(50)).await; // let DEBUG SLEEP start

    let mut tasks = Vec::new();
    for i in 0..10 {
        for limiter in [closed.clone(), local.clone()] {
            tasks.push(tokio::spawn(async move {
                let asked = Instant::now();
                let outcome = limiter.acquire(&ns(&format!("n{i}"))).await;
                (outcome, asked.elapsed())
            }));
        }
    }
    // The call timeout plus max_wait, and some slack for a loaded machine: far below the
    // second Redis sleeps.
    let bound = Duration::from_millis(50) + max_wait + Duration::from_millis(200);
    for (i, task) in tasks.into_iter().enumerate() {
        let (outcome, took) = task.await.unwrap();
        assert!(took <= bound, "a request took {took:?}");
        if i % 2 == 0 {
            assert_eq!(outcome.unwrap_err().level, Level::Store);
        } else {
            outcome.unwrap();
        }
    }
    assert!(closed.store_fallbacks() >= 10 && local.store_fallbacks() >= 10);
    let debug = debug.join().unwrap();
    assert!(debug.is_ok(), "DEBUG SLEEP failed: {debug:?}");
    // Redis answers again: back to shared decisions once the retry interval is over.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = closed.store_fallbacks();
    closed.try_acquire_async(&ns("later")).await.unwrap();
    assert_eq!(closed.store_fallbacks(), before);
}

/// Script calls Redis has run since its stats were reset (`EVALSHA` and `EVAL`), read from
/// Redis itself (`INFO commandstats`).
async fn script_calls(server: &RedisServer) -> u64 {
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut raw)
        .await
        .unwrap();
    info.lines()
        .filter(|line| line.starts_with("cmdstat_evalsha:") || line.starts_with("cmdstat_eval:"))
        .filter_map(|line| {
            let calls = line.split("calls=").nth(1)?.split(',').next()?;
            calls.parse::<u64>().ok()
        })
        .sum()
}

async fn reset_stats(server: &RedisServer) {
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut raw)
        .await
        .unwrap();
}

/// Decisions made at once share script calls, and each is still judged alone and in order:
/// 400 concurrent decisions over 8 namespaces with a global burst of 50 admit exactly 50, and
/// a namespace burst of 10 admits exactly 10 of 200 decisions for one namespace; Redis counts
/// fewer script calls than decisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_decisions_share_script_calls_and_stay_exact() {
    let server = RedisServer::start();
    let limiter = limiter(
        &server,
        RateLimiter::builder()
            .global(Quota::per_hour(1).unwrap().with_burst(50).unwrap())
            .per_namespace(Quota::per_hour(1).unwrap().with_burst(1_000).unwrap())
            .max_wait(Duration::ZERO),
    )
    .await;
    // One decision first, so that the script is loaded and later calls are `EVALSHA`s.
    limiter.try_acquire_async(&ns("warm-up")).await.unwrap();
    reset_stats(&server).await;
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                limiter
                    .try_acquire_async(&ns(&format!("team-{}", i % 8)))
                    .await
                    .is_ok()
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += usize::from(task.await.unwrap());
    }
    assert_eq!(
        admitted, 49,
        "the global burst of 50, less the warm-up's slot"
    );
    let calls = script_calls(&server).await;
    assert!(calls < 400, "{calls} script calls for 400 decisions");
    assert!(calls >= 1);

    let limiter = limiter_with_prefix(&server, "batch-ns").await;
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.try_acquire_async(&ns("solo")).await.is_ok() })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += usize::from(task.await.unwrap());
    }
    assert_eq!(admitted, 10, "the namespace burst");
}

/// A limiter of its own keys (`prefix`): namespace burst 10, nothing refills within a test.
async fn limiter_with_prefix(server: &RedisServer, prefix: &str) -> RateLimiter {
    let store = RedisStore::builder()
        .prefix(prefix)
        .timeout(Duration::from_secs(1))
        .connect(server.url())
        .await
        .unwrap();
    RateLimiter::builder()
        .global(Quota::per_hour(1).unwrap().with_burst(100_000).unwrap())
        .per_namespace(Quota::per_hour(1).unwrap().with_burst(10).unwrap())
        .max_wait(Duration::ZERO)
        .store(store)
        .build()
        .unwrap()
}

/// The store is input too: whatever another writer left in a bucket's key (a number past any
/// clock, infinity, NaN, a negative time, text), each decision ends within the store's
/// timeout with an answer, and a bucket that reads as past any limit refuses with a wait
/// past a year (never a wait of zero) instead of admitting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_bucket_values_are_decided_and_bounded() {
    let server = RedisServer::start();
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // (what another writer left, whether a decision over it may be admitted)
    let values = [
        ("1e300", false),
        ("1.7976931348623157e308", false),
        ("inf", false),
        ("-inf", true),
        ("nan", true),
        ("-5", true),
        ("not a number", true),
        ("", true),
    ];
    let mut prefixes = 0;
    // A store of its own for each value: no lease in hand, so the global value is read.
    let mut fresh = || {
        prefixes += 1;
        let prefix = format!("corrupt-{prefixes}");
        let url = server.url();
        async move {
            let store = RedisStore::builder()
                .prefix(prefix)
                .timeout(Duration::from_secs(1))
                .connect(url)
                .await
                .unwrap();
            let limiter = RateLimiter::builder()
                .global(quota(1000.0, 1000))
                .per_namespace(quota(10.0, 10))
                .max_wait(Duration::ZERO)
                .store(store.clone())
                .build()
                .unwrap();
            (store, limiter)
        }
    };
    for level in [Level::Namespace, Level::Global] {
        for (value, admits) in values {
            let (store, limiter) = fresh().await;
            // A namespace bucket is a string; the global bucket is the `tat` of a hash.
            let (key, write) = match level {
                Level::Namespace => {
                    let key = store.namespace_key(&ns("team-a"));
                    (key.clone(), redis::cmd("SET").arg(key).arg(value).clone())
                }
                _ => {
                    let key = store.global_key().to_owned();
                    let mut write = redis::cmd("HSET");
                    write.arg(&key).arg("tat").arg(value);
                    // A lease field that does not parse is dropped, not a failure.
                    write.arg("l:garbage").arg(value);
                    (key, write)
                }
            };
            let () = write.query_async(&mut raw).await.unwrap();
            let decided = tokio::time::timeout(
                Duration::from_secs(10),
                limiter.try_acquire_async(&ns("team-a")),
            )
            .await
            .unwrap_or_else(|_| panic!("{key} = {value:?} held the decision"));
            match decided {
                Ok(()) => assert!(admits, "{key} = {value:?} admitted"),
                Err(refused) => {
                    assert!(!admits, "{key} = {value:?} refused: {refused:?}");
                    assert_eq!(refused.level, level, "{key} = {value:?}");
                    assert!(
                        refused.retry_after > Duration::from_secs(365 * 86_400),
                        "{key} = {value:?}: {refused:?}"
                    );
                }
            }
            assert_eq!(limiter.store_fallbacks(), 0, "{key} = {value:?} failed");
        }
    }
    // A global key of the wrong type is a store failure: refused by the policy, not a panic.
    let (store, limiter) = fresh().await;
    let () = redis::cmd("SET")
        .arg(store.global_key())
        .arg("1")
        .query_async(&mut raw)
        .await
        .unwrap();
    let refused = limiter.try_acquire_async(&ns("team-a")).await.unwrap_err();
    assert_eq!(refused.level, Level::Store);
    assert_eq!(limiter.store_fallbacks(), 1);
}

/// A dropped store gives the unused tokens of its lease back to the global bucket, and its
/// lease leaves the global hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_store_gives_its_unused_leased_tokens_back() {
    let server = RedisServer::start();
    let store = RedisStore::builder()
        .prefix("drop")
        .timeout(Duration::from_secs(1))
        .max_lease(8)
        .connect(server.url())
        .await
        .unwrap();
    let global_key = store.global_key().to_owned();
    // 10/s: one token is 100 ms of the bucket's arrival time.
    let limiter = RateLimiter::builder()
        .global(quota(10.0, 20))
        .per_namespace(quota(1000.0, 1000))
        .store(store.clone())
        .build()
        .unwrap();
    // The first lease is one token (no rate known yet); the second is sized from the rate.
    for _ in 0..3 {
        limiter.try_acquire_async(&ns("a")).await.unwrap();
    }
    assert_eq!(
        store.lease_calls(),
        3 - 1,
        "one lease of one token, then one of several"
    );
    let ahead = || {
        let tat: f64 = server
            .query::<String>(&["HGET", &global_key, "tat"])
            .parse()
            .unwrap();
        let now = server.time_micros() as f64;
        Duration::from_micros((tat - now).max(0.0) as u64)
    };
    let leases = || {
        let fields: Vec<String> = server.query(&["HKEYS", &global_key]);
        fields
            .iter()
            .filter(|field| field.starts_with("l:"))
            .count()
    };
    assert_eq!(leases(), 1);
    // 1 + 8 tokens taken (8 = min(max_lease, half of the 19 left)): 900 ms ahead.
    let before = ahead();
    assert!(before > Duration::from_millis(700), "{before:?}");
    drop(limiter);
    drop(store);
    tokio::time::sleep(Duration::from_millis(200)).await; // the release runs on a task
    assert_eq!(leases(), 0, "the lease is still in the global hash");
    // The 3 spent tokens stay taken (300 ms), less the time passed; the 6 unused came back.
    let after = ahead();
    assert!(after < Duration::from_millis(300), "{after:?}");
}
