//! The shared `Retry-After` pause across replicas, against a real `redis-server` (started on a
//! free loopback port, killed when the test ends). Without `redis-server` on `PATH` the tests
//! fail, saying how to install it.
#![allow(clippy::unwrap_used, dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use pacer::client::Client;
use pacer::config::Config;
use pacer::rate_limit::redis::RedisStore;
use pacer::rate_limit::{RateLimitStore, RateLimiter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "support/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer;

/// An HTTP/1.1 server answering `429` with `Retry-After: 2` on `/busy` and `200` otherwise,
/// logging when each request arrived.
async fn upstream() -> (String, Arc<Mutex<Vec<(String, std::time::Instant)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&log);
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 1024];
                loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                        buffer.drain(..end + 4);
                        let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                        seen.lock()
                            .unwrap()
                            .push((path.clone(), std::time::Instant::now()));
                        let answer = if path == "/busy" {
                            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 2\r\ncontent-length: 0\r\n\r\n"
                        } else {
                            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                        };
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, log)
}

fn get(url: String) -> Request<Full<Bytes>> {
    Request::get(url).body(Full::new(Bytes::new())).unwrap()
}

/// A ready client of its own (own limiter, own Redis connection, own gate), retrying nothing.
async fn replica(redis: &RedisServer, config: &Config) -> (Client, RedisStore) {
    let store = RedisStore::builder()
        .prefix("shared-pause")
        .timeout(Duration::from_millis(500))
        .connect(redis.url())
        .await
        .unwrap();
    let limiter = RateLimiter::builder().store(store.clone()).build().unwrap();
    let client = Client::builder(config)
        .rate_limiter(limiter)
        .build()
        .unwrap();
    (client, store)
}

fn config() -> Config {
    let mut config = Config::default();
    config.retry.max_retries = 0;
    config.retry_after.release_window_secs = 0.0;
    config
}

#[tokio::test]
async fn one_replicas_429_pauses_the_other_replica() {
    let redis = RedisServer::start();
    let (url, log) = upstream().await;
    let config = config();
    let (first, store) = replica(&redis, &config).await;
    let (second, _) = replica(&redis, &config).await;
    assert!(first.layers().retry_after.shared_pause().is_some());

    let response = first.send(get(format!("{url}/busy"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let throttled_at = log.lock().unwrap()[0].1;
    // The pause is written to Redis from a task of its own: wait until it is there.
    let authority = url.trim_start_matches("http://").to_owned();
    let mut written = None;
    for _ in 0..200 {
        written = store.paused_until(&authority).await.unwrap();
        if written.is_some() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(written.is_some(), "the pause never reached the store");

    // The other replica never saw the 429, yet its next request waits for the pause.
    let response = second.send(get(format!("{url}/after"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[1].0, "/after");
    let waited = log[1].1.duration_since(throttled_at);
    assert!(
        waited >= Duration::from_millis(1900),
        "sent after {waited:?}"
    );
    assert!(waited < Duration::from_secs(10), "sent after {waited:?}");
}

#[tokio::test]
async fn a_shared_pause_longer_than_the_cap_fails_like_a_local_one() {
    let redis = RedisServer::start();
    let (url, log) = upstream().await;
    let mut config = config();
    config.retry_after.max_secs = 1.0;
    let (second, store) = replica(&redis, &config).await;
    // Another replica (with a longer cap) paused the upstream for 30 s.
    let authority = url.trim_start_matches("http://").to_owned();
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    store.pause_upstream(&authority, until).await.unwrap();

    let error = second.send(get(format!("{url}/after"))).await.unwrap_err();
    assert!(
        error
            .downcast_ref::<pacer::retry_after::RetryAfterExceeded>()
            .is_some(),
        "{error}"
    );
    assert!(log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_shared_setting_off_keeps_pauses_local() {
    let redis = RedisServer::start();
    let mut config = config();
    config.retry_after.shared = false;
    let (client, _) = replica(&redis, &config).await;
    assert!(client.layers().retry_after.shared_pause().is_none());
}

/// The store is input too: whatever another writer left under the pause key (a number past
/// any clock, infinity, NaN, a negative deadline, text), a replica's request ends within its
/// bounds, succeeding or failing like a too-long `Retry-After`, and never panics.
#[tokio::test]
async fn a_corrupt_or_huge_pause_in_the_store_is_bounded() {
    let redis = RedisServer::start();
    let (url, log) = upstream().await;
    let mut config = config();
    config.retry_after.max_secs = 1.0;
    let authority = url.trim_start_matches("http://").to_owned();
    let mut raw = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // (what another writer left, whether the request may go)
    for (value, goes) in [
        ("1e300", false),
        ("9223372036854775807", false),
        ("1.7976931348623157e308", false),
        ("inf", false),
        ("0x7fffffffffffffff", false),
        ("-inf", true),
        ("nan", true),
        ("-5", true),
        ("not a number", true),
        ("", true),
    ] {
        // A fresh replica (fresh gate) asks the store before its first request.
        let (client, store) = replica(&redis, &config).await;
        let () = redis::cmd("SET")
            .arg(store.pause_key(&authority))
            .arg(value)
            .query_async(&mut raw)
            .await
            .unwrap();
        let sent = tokio::time::timeout(
            Duration::from_secs(20),
            client.send(get(format!("{url}/after"))),
        )
        .await
        .unwrap_or_else(|_| panic!("a pause of {value:?} held the request past its bounds"));
        match sent {
            Ok(response) => {
                assert!(
                    goes,
                    "{value:?} is a pause past any cap, yet the request went"
                );
                assert_eq!(response.status(), StatusCode::OK, "{value:?}");
            }
            Err(error) => {
                assert!(!goes, "{value:?} is no pause, yet: {error}");
                assert!(
                    error
                        .downcast_ref::<pacer::retry_after::RetryAfterExceeded>()
                        .is_some(),
                    "{value:?}: {error}"
                );
            }
        }
    }
    assert_eq!(
        log.lock().unwrap().len(),
        5,
        "the five requests that may go went"
    );
}
