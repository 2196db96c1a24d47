//! `RetryAfterLayer` against a real rate-limiting server: nginx `limit_req` in front of a tiny
//! backend, all on loopback. nginx answers excess requests with `429` and `Retry-After: 1`;
//! every request of a burst must eventually get its `200`.
//!
//! The retry loop below is the test's own (a plain loop, no backoff: the pause gate is what
//! spaces the attempts). Fails, saying how to install it, when nginx is not installed.

#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pacer::retry_after::{PauseGate, RetryAfterLayer};
use tower::{Service, ServiceBuilder, ServiceExt};

const BURST: usize = 30;
const MAX_ATTEMPTS: usize = 40;
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
const TEST_TIMEOUT: Duration = Duration::from_secs(90);
/// The longest the pause gate may hold one request in total. The burst needs about 6 s to
/// drain at nginx's 5 r/s, so the last requests wait that long at the gate: the bound must be
/// above it, or they fail (as they should) with `RetryAfterExceeded`.
const MAX_HOLD: Duration = Duration::from_secs(30);

fn nginx_binary() -> Option<PathBuf> {
    let candidates = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"];
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running nginx, killed and cleaned up on drop (also when the test panics).
struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Nginx {
    fn start(bin: &Path, port: u16, backend: SocketAddr) -> Nginx {
        let dir = std::env::temp_dir().join(format!(
            "pacer-nginx-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        let conf = format!(
            r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    limit_req_zone $binary_remote_addr zone=api:1m rate=5r/s;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            limit_req zone=api burst=5 nodelay;
            limit_req_status 429;
            error_page 429 = @throttled;
            proxy_pass http://{backend};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
        location @throttled {{
            add_header Retry-After 1 always;
            return 429 "slow down\n";
        }}
    }}
}}
"#
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut nginx = Nginx { child, dir };
        nginx.wait_listening(port);
        nginx
    }

    fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
                panic!("nginx exited early ({status}):\n{log}");
            }
            if TcpStream::connect_timeout(
                &SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

async fn start_backend() -> SocketAddr {
    let app = axum::Router::new().fallback(|| async { "ok" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// nginx in front of a fresh backend, on a free port; panics, saying how to install it,
/// without nginx.
async fn start_nginx() -> (Nginx, u16) {
    let bin =
        nginx_binary().expect("this test needs nginx: apt-get install nginx-light (.ci/run does)");
    let backend = start_backend().await;
    let port = free_port();
    (Nginx::start(&bin, port, backend), port)
}

/// Runs request `i` of the burst for every `i` at once and collects the outcomes in order,
/// failing the test if the whole burst takes longer than `TEST_TIMEOUT`.
async fn burst<T, F, Fut>(request: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let run = async {
        let tasks: Vec<_> = (0..BURST).map(|i| tokio::spawn(request(i))).collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        outcomes
    };
    tokio::time::timeout(TEST_TIMEOUT, run)
        .await
        .expect("burst did not finish in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_through_nginx_limit_req_ends_all_ok() {
    let (_nginx, port) = start_nginx().await;

    let gate = PauseGate::new();
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let svc = ServiceBuilder::new()
        .layer(
            RetryAfterLayer::new()
                .with_gate(gate.clone())
                .max_delay(MAX_HOLD),
        )
        // Per-attempt timeout inside the layer, as in pacer's stack: waiting at the pause
        // gate is not part of an attempt.
        .timeout(ATTEMPT_TIMEOUT)
        .service(client);

    let throttled = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let attempts = burst(|i| {
        let mut svc = svc.clone();
        let throttled = throttled.clone();
        async move {
            for attempt in 1..=MAX_ATTEMPTS {
                let req = Request::get(format!("http://127.0.0.1:{port}/items/{i}"))
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let res = match svc.ready().await {
                    Ok(svc) => svc.call(req).await,
                    Err(e) => Err(e),
                }
                .unwrap_or_else(|e| panic!("attempt {attempt} of request {i}: {e}"));
                let status = res.status();
                let retry_after = res.headers().get("retry-after").cloned();
                // Drain the body so the connection goes back to the pool.
                let _ = res.into_body().collect().await;
                match status {
                    StatusCode::OK => return attempt,
                    StatusCode::TOO_MANY_REQUESTS => {
                        assert_eq!(retry_after.unwrap(), "1");
                        throttled.fetch_add(1, Ordering::Relaxed);
                    }
                    other => panic!("unexpected status {other}"),
                }
            }
            panic!("request {i} still throttled after {MAX_ATTEMPTS} attempts");
        }
    })
    .await;

    let n429 = throttled.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    println!(
        "nginx limit_req: {BURST} requests all 200 in {elapsed:.2?}; {n429} responses were 429, \
         max attempts for one request {}",
        attempts.iter().max().unwrap()
    );
    assert_eq!(attempts.len(), BURST);
    // nginx must really have limited the burst, or the test proves nothing.
    assert!(n429 > 0, "nginx never answered 429");
    // Without the shared pause, this tight retry loop gets tens of thousands of 429s in the
    // same time (measured: ~35,000); with it, each request is throttled only a few times.
    assert!(
        n429 <= 5 * BURST,
        "{n429} 429s: the pause gate did not hold the burst"
    );
    // 30 requests at 5 r/s with a burst of 5 cannot finish in less than ~4.8 s.
    assert!(elapsed >= Duration::from_secs(4), "{elapsed:?}");
}

/// The same burst through pacer's own stack, outermost first: `RetryLayer` (which waits what
/// `Retry-After` asks) over `RetryAfterLayer` (which holds every other request to the upstream)
/// over a per-attempt timeout over hyper's client. Every request must end 200 by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_through_the_pacer_stack_ends_all_ok() {
    let (_nginx, port) = start_nginx().await;

    let policy = pacer::retry::RetryPolicy::new()
        .max_retries(20)
        .without_budget()
        .seed(7);
    let svc = ServiceBuilder::new()
        .layer(pacer::retry::RetryLayer::new(policy))
        .layer(RetryAfterLayer::new().max_delay(MAX_HOLD))
        .timeout(ATTEMPT_TIMEOUT)
        .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());

    let started = Instant::now();
    let outcomes = burst(|i| {
        let svc = svc.clone();
        async move {
            let req = Request::get(format!("http://127.0.0.1:{port}/items/{i}"))
                .body(Empty::<Bytes>::new())
                .unwrap();
            let res = svc
                .oneshot(req)
                .await
                .unwrap_or_else(|e| panic!("request {i}: {e}"));
            let attempts = res
                .extensions()
                .get::<pacer::retry::RetryInfo>()
                .map_or(1, |info| info.attempts);
            (res.status(), attempts)
        }
    })
    .await;
    let throttled: u32 = outcomes.iter().map(|(_, attempts)| attempts - 1).sum();
    println!(
        "pacer stack through nginx limit_req: {BURST} requests in {:.2?}; {throttled} 429s seen and retried",
        started.elapsed()
    );
    assert!(
        outcomes.iter().all(|(status, _)| *status == StatusCode::OK),
        "{outcomes:?}"
    );
    assert!(throttled > 0, "nginx never answered 429");
    assert!(throttled as usize <= 5 * BURST, "{throttled} 429s");
}
