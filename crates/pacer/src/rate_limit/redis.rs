//! [`RedisStore`]: the two-level limiter's buckets in Redis, shared by several replicas.
//!
//! A single process keeps its limits in memory. When a client runs as several replicas, plug a
//! [`RedisStore`] into each replica's [`RateLimiter`](super::RateLimiter): the global and
//! per-namespace limits then hold for all replicas together, with the same semantics as in
//! memory (see the [module docs](super)).
//!
//! ```no_run
//! use std::time::Duration;
//! use pacer::Namespace;
//! use pacer::rate_limit::redis::RedisStore;
//! use pacer::rate_limit::{Quota, RateLimitLayer, RateLimiter, StoreFailure};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::builder()
//!     .prefix("keycloak-operator")
//!     .timeout(Duration::from_millis(50))
//!     .connect("redis://127.0.0.1:6379/")
//!     .await?;
//! let limiter = RateLimiter::builder()
//!     .global(Quota::per_second(50)?.with_burst(100)?)
//!     .per_namespace(Quota::per_second(5)?.with_burst(10)?)
//!     .store(store)
//!     // Redis out: each of the 3 replicas goes on alone at a third of every quota.
//!     .on_store_failure(StoreFailure::local_share_of(3))
//!     .build()?;
//! let layer = RateLimitLayer::new(limiter.clone()); // unchanged: works over any store
//! limiter.acquire(&Namespace::new("team-a")).await?;
//! # let _ = layer; Ok(()) }
//! ```
//!
//! # How
//!
//! - **One round trip per decision.** Each step is one Lua script, run atomically by Redis
//!   (`EVALSHA`, falling back to `EVAL` after a restart or `SCRIPT FLUSH`, via
//!   [`redis::Script`]): the same two-level GCRA as in memory, both levels or neither, on
//!   **Redis's clock** (`redis.call('TIME')`), so replicas with skewed clocks agree. Quotas
//!   travel as script arguments, so per-namespace overrides work and replicas need no shared
//!   configuration beyond the key prefix (replicas should nevertheless agree on quotas: each
//!   request is judged by the quotas of the replica that sends it).
//! - **Batched first steps.** A store's first steps go through one task that sends them
//!   together: up to 128 decisions per script call and 2 calls on the wire at once. Alone, a
//!   decision goes at once; under load, those that arrive while the calls in flight are out
//!   share the next call, which runs them in order, each as if alone, reading Redis's clock
//!   and the global bucket once. That saves Redis a script call per decision: at 64 concurrent
//!   tasks it serves several times the decisions per second of one call each (README,
//!   *Shared limits*). A decision's timeout covers its wait in the queue.
//! - **Same protocol as in memory.** The namespace slot is taken first (reserved in the
//!   future when within `max_wait`); the global slot only once the namespace slot has come,
//!   by a second script call after the (tokio) sleep; a refusal consumes nothing; a dropped
//!   waiter's reservations are given back by a refund script, fired from `Drop` on a spawned
//!   task (never blocking in `Drop`; outside a runtime the refund is skipped and the slot
//!   comes back as the bucket refills). Waits cross the wire as durations from Redis's "now"
//!   and are slept on [`tokio::time`].
//! - **Keys.** `{prefix}:g` (global) and `{prefix}:ns:<namespace>`, each holding the bucket's
//!   theoretical arrival time in microseconds of Redis time, with a `PEXPIRE` at the moment
//!   the bucket has refilled: a refilled bucket is indistinguishable from a missing key, so
//!   Redis memory is bounded by the namespaces active within one refill time. The braces are
//!   a Redis Cluster hash tag: every key of one limiter lives in one slot, as a two-key atomic
//!   script requires.
//! - **Timeouts.** Every Redis call is bounded by [`RedisStoreBuilder::timeout`] (default
//!   50 ms, with [`tokio::time::timeout`]); a call that timed out may still be applied by
//!   Redis later, which can only waste capacity, never exceed a limit.
//! - **Reconnection.** A [`redis::aio::ConnectionManager`] (one multiplexed connection)
//!   reconnects on its own after Redis went away, with no backoff of its own: the limiter
//!   already leaves the store alone for its retry interval after a failure.
//! - **Failure policy.** Chosen on the limiter:
//!   [`RateLimiterBuilder::on_store_failure`](super::RateLimiterBuilder::on_store_failure)
//!   with [`StoreFailure::FailClosed`](super::StoreFailure::FailClosed) (the default: refuse)
//!   or [`StoreFailure::Local`](super::StoreFailure::Local) (a local limiter at a share of the
//!   quotas, e.g. `1 / replicas`). Fallbacks are counted by
//!   [`RateLimiter::store_fallbacks`](super::RateLimiter::store_fallbacks). Nothing panics
//!   and no request waits longer than the timeout plus `max_wait`.
//! - **Shared `Retry-After` pause.** [`RateLimitStore::pause_upstream`] /
//!   [`RateLimitStore::paused_until`] keep one deadline per upstream in `{prefix}:pause:<key>`
//!   (set with `PX`, the later deadline wins), on Redis's clock too, for the `Retry-After`
//!   layer to share a server's pause across replicas.
//!
//! # Why the `redis` crate
//!
//! redis-rs is the client most Rust users already have; its [`redis::Script`] does the
//! `EVALSHA`-then-`EVAL` dance, and its `ConnectionManager` gives a cheap-to-clone multiplexed
//! connection that reconnects by itself, which is all this store needs. fred offers more
//! (pools, cluster routing, its own reconnect policies) at the price of a much larger
//! dependency tree and API. The 0.32 line is used because it is the newest that builds with
//! the workspace's `rust-version` (1.85).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, Script};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use super::level::Level;
use super::quota::{Gcra, Quota};
use super::store::{RateLimitStore, Refund, StoreDecision, StoreFuture, StoreRequest};
use super::store_error::StoreError;
use crate::namespace::Namespace;

/// The first step of a batch of decisions, each atomically and in order, as if each were its
/// own call: namespace slot first, global only when the namespace slot is free now; both or
/// neither. The clock is read once, and the global bucket read once and written once at the
/// end. Times in microseconds of Redis time (fractions allowed).
///
/// KEYS: the global bucket, then one namespace bucket per decision. ARGV: per decision, its
/// namespace interval and tolerance, global interval and tolerance, max wait. Replies
/// `{kind, wait}` per decision, flattened: 0 admitted (wait = global wait), 1 queued, 2
/// refused by the namespace bucket, 3 refused by the global bucket.
const DECIDE_BATCH: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function put(key, tat)
  redis.call('SET', key, string.format('%.17g', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
end
-- A stored time that is not a number, or NaN, reads as no bucket; a reply is capped at
-- 2^53 us, as Lua makes garbage of a larger (or infinite) number turned into an integer.
local function tat_of(key)
  local tat = tonumber(redis.call('GET', key) or '') or 0
  if tat ~= tat or tat < now then tat = now end
  return tat
end
local function us(x) return math.min(math.ceil(x), 9007199254740992) end
local g_tat = tat_of(KEYS[1])
local g_taken = false
local out = {}
for i = 2, #KEYS do
  local a = (i - 2) * 5
  local ns_t, ns_tau = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local g_t, g_tau = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local max_wait = tonumber(ARGV[a + 5])
  local ns_tat = tat_of(KEYS[i])
  local ns_wait = math.max(ns_tat - ns_tau - now, 0)
  if ns_wait > max_wait then
    out[#out + 1] = 2
    out[#out + 1] = us(ns_wait)
  elseif ns_wait > 0 then
    put(KEYS[i], ns_tat + ns_t)
    out[#out + 1] = 1
    out[#out + 1] = us(ns_wait)
  else
    local g_wait = math.max(g_tat - g_tau - now, 0)
    if g_wait > max_wait then
      out[#out + 1] = 3
      out[#out + 1] = us(g_wait)
    else
      put(KEYS[i], ns_tat + ns_t)
      g_tat = g_tat + g_t
      g_taken = true
      out[#out + 1] = 0
      out[#out + 1] = us(g_wait)
    end
  end
end
if g_taken then put(KEYS[1], g_tat) end
return out
";

/// The most decisions one [`DECIDE_BATCH`] call carries.
const MAX_BATCH: usize = 128;

/// How many batch calls may be on the wire at once; while all are, decisions queue up and
/// go together in the next one.
const MAX_BATCHES_IN_FLIGHT: usize = 2;

/// The second step: a global slot within the max wait. KEYS: global bucket. ARGV: interval,
/// tolerance, max wait. Replies `{0, wait}` when taken, `{1, wait}` when refused.
const RESERVE_GLOBAL: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local g_t, g_tau, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
-- A stored time that is not a number, or NaN, reads as no bucket; a reply is capped at
-- 2^53 us, as Lua makes garbage of a larger (or infinite) number turned into an integer.
local function tat_of(key)
  local tat = tonumber(redis.call('GET', key) or '') or 0
  if tat ~= tat or tat < now then tat = now end
  return tat
end
local function us(x) return math.min(math.ceil(x), 9007199254740992) end
local tat = tat_of(KEYS[1])
local wait = math.max(tat - g_tau - now, 0)
if wait > max_wait then return {1, us(wait)} end
tat = tat + g_t
redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
return {0, us(wait)}
";

/// Gives back one slot per key: KEYS[i] gets its arrival time moved back by ARGV[i]; a bucket
/// that is full again is deleted (a missing key is a full bucket).
const REFUND: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '')
  if tat then
    tat = tat - tonumber(ARGV[i])
    if tat <= now then
      redis.call('DEL', KEYS[i])
    else
      redis.call('SET', KEYS[i], string.format('%.17g', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
    end
  end
end
return 0
";

/// Pauses an upstream for ARGV[1] microseconds from Redis's now, keeping a later deadline
/// already set. Replies the microseconds left of the pause in force.
const PAUSE: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local deadline = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '')
if current and current >= deadline then return math.min(math.ceil(current - now), 9007199254740992) end
if deadline <= now then return 0 end
redis.call('SET', KEYS[1], string.format('%.17g', deadline), 'PX', math.max(1, math.ceil((deadline - now) / 1000)))
return math.ceil(deadline - now)
";

/// Replies the microseconds left of the pause in force for KEYS[1], or -1 when none. A value
/// past 2^53 (infinity too) is answered as 2^53, as Lua turns a larger one into garbage when it
/// makes it an integer reply: a corrupt huge pause then fails requests like a too-long
/// `Retry-After` instead of being read as no pause at all.
const PAUSED: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local current = tonumber(redis.call('GET', KEYS[1]) or '')
if current and current > now then return math.min(math.ceil(current - now), 9007199254740992) end
return -1
";

/// A [`RateLimitStore`] in Redis; see the [module docs](self). Cheap to clone (shared).
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    connection: ConnectionManager,
    timeout: Duration,
    prefix: String,
    global_key: String,
    /// The decisions waiting for the batcher task (see [`batch_decisions`]).
    decisions: mpsc::UnboundedSender<PendingDecision>,
    reserve_global: Script,
    refund: Script,
    pause: Script,
    paused: Script,
}

impl RedisStore {
    /// A builder with the defaults: prefix `pacer`, timeout 50 ms, connect timeout 1 s.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::default()
    }

    /// Connects with the defaults; see [`RedisStoreBuilder::connect`].
    pub async fn connect(info: impl IntoConnectionInfo) -> Result<Self, StoreError> {
        Self::builder().connect(info).await
    }

    /// The key of the global bucket: `{prefix}:g`.
    pub fn global_key(&self) -> &str {
        &self.inner.global_key
    }

    /// The key of `namespace`'s bucket: `{prefix}:ns:<namespace>`.
    pub fn namespace_key(&self, namespace: &Namespace) -> String {
        format!("{{{}}}:ns:{}", self.inner.prefix, namespace.as_str())
    }

    /// The key of the pause of upstream `key`: `{prefix}:pause:<key>`.
    pub fn pause_key(&self, key: &str) -> String {
        format!("{{{}}}:pause:{key}", self.inner.prefix)
    }

    /// The timeout of every Redis call.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Runs `script` with `keys` and `args`, bounded by the timeout.
    fn run<T: redis::FromRedisValue + Send + 'static>(
        &self,
        script: fn(&Inner) -> &Script,
        keys: Vec<String>,
        args: Vec<f64>,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + 'static {
        let inner = Arc::clone(&self.inner);
        async move {
            let mut connection = inner.connection.clone();
            let mut invocation = script(&inner).prepare_invoke();
            for key in &keys {
                invocation.key(key);
            }
            for arg in &args {
                invocation.arg(*arg);
            }
            match tokio::time::timeout(inner.timeout, invocation.invoke_async(&mut connection))
                .await
            {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) => Err(StoreError::Backend(Box::new(error))),
                Err(_elapsed) => Err(StoreError::Timeout(inner.timeout)),
            }
        }
    }
}

/// A quota's emission interval and tolerance in microseconds, the script's unit.
fn micros(quota: Quota) -> (f64, f64) {
    let gcra = Gcra::new(quota, 1.0);
    (gcra.t as f64 / 1e3, gcra.tau as f64 / 1e3)
}

fn duration_micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn from_micros(micros: i64) -> Duration {
    Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

/// `left` from now; a store answer past the clock's range is capped at a year.
fn anchor(left: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(left)
        .or_else(|| now.checked_add(Duration::from_secs(86_400 * 365)))
        .unwrap_or(now)
}

/// One decision waiting for its batch.
struct PendingDecision {
    namespace_key: String,
    /// [`DECIDE_BATCH`]'s five arguments of this decision.
    args: [f64; 5],
    reply: oneshot::Sender<Result<(i64, i64), StoreError>>,
}

/// The batcher task: takes the decisions queued by every clone of one store and sends them
/// to Redis together, up to [`MAX_BATCH`] per [`DECIDE_BATCH`] call and
/// [`MAX_BATCHES_IN_FLIGHT`] calls at once. Alone, a decision goes at once, in a batch of
/// one; under load, decisions that arrive while the calls in flight are out go together in
/// the next, which saves Redis a script call, a clock read and the global bucket's read and
/// write per decision. Ends when every clone of the store is dropped.
async fn batch_decisions(
    mut queue: mpsc::UnboundedReceiver<PendingDecision>,
    connection: ConnectionManager,
    global_key: String,
    timeout: Duration,
) {
    let script = Arc::new(Script::new(DECIDE_BATCH));
    let global_key: Arc<str> = Arc::from(global_key);
    let in_flight = Arc::new(Semaphore::new(MAX_BATCHES_IN_FLIGHT));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // Wait for a free call slot first: decisions pile up in the queue meanwhile.
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            return;
        };
        if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return; // every store clone is gone
        }
        // A caller that gave up (timed out, dropped) needs no decision: none is taken for it.
        batch.retain(|pending: &PendingDecision| !pending.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let decisions = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        let mut connection = connection.clone();
        let script = Arc::clone(&script);
        let global_key = Arc::clone(&global_key);
        tokio::spawn(async move {
            let mut invocation = script.prepare_invoke();
            invocation.key(&*global_key);
            for pending in &decisions {
                invocation.key(&pending.namespace_key);
            }
            for pending in &decisions {
                for arg in pending.args {
                    invocation.arg(arg);
                }
            }
            let call = invocation.invoke_async::<Vec<i64>>(&mut connection);
            let reply = tokio::time::timeout(timeout, call).await;
            drop(permit);
            let answers = match reply {
                Ok(Ok(flat)) if flat.len() == 2 * decisions.len() => Ok(flat),
                Ok(Ok(flat)) => Err(format!(
                    "decide script replied {} numbers for {} decisions",
                    flat.len(),
                    decisions.len()
                )),
                Ok(Err(error)) => {
                    let error = Arc::new(error);
                    for pending in decisions {
                        let _ = pending.reply.send(Err(StoreError::Backend(Box::new(
                            SharedRedisError(Arc::clone(&error)),
                        ))));
                    }
                    return;
                }
                Err(_elapsed) => {
                    for pending in decisions {
                        let _ = pending.reply.send(Err(StoreError::Timeout(timeout)));
                    }
                    return;
                }
            };
            match answers {
                Ok(flat) => {
                    for (pending, answer) in decisions.into_iter().zip(flat.chunks_exact(2)) {
                        let _ = pending.reply.send(Ok((answer[0], answer[1])));
                    }
                }
                Err(message) => {
                    for pending in decisions {
                        let _ = pending
                            .reply
                            .send(Err(StoreError::Protocol(message.clone())));
                    }
                }
            }
        });
    }
}

/// One Redis error handed to every decision of the batch it failed.
#[derive(Debug, Clone)]
struct SharedRedisError(Arc<redis::RedisError>);

impl fmt::Display for SharedRedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for SharedRedisError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

impl RateLimitStore for RedisStore {
    fn decide(&self, request: StoreRequest) -> StoreFuture<StoreDecision> {
        let (ns_t, ns_tau) = micros(request.namespace_quota);
        let (g_t, g_tau) = micros(request.global_quota);
        let (reply, answer) = oneshot::channel();
        let pending = PendingDecision {
            namespace_key: self.namespace_key(&request.namespace),
            args: [ns_t, ns_tau, g_t, g_tau, duration_micros(request.max_wait)],
            reply,
        };
        let queued = self.inner.decisions.send(pending);
        let timeout = self.inner.timeout;
        Box::pin(async move {
            if queued.is_err() {
                return Err(StoreError::Protocol(
                    "the store's batcher task is gone (its runtime was shut down)".to_owned(),
                ));
            }
            // The timeout covers the wait in the queue and the call.
            let (kind, wait) = match tokio::time::timeout(timeout, answer).await {
                Ok(Ok(answer)) => answer?,
                Ok(Err(_dropped)) => {
                    return Err(StoreError::Protocol(
                        "the store's batcher task dropped a decision".to_owned(),
                    ));
                }
                Err(_elapsed) => return Err(StoreError::Timeout(timeout)),
            };
            let wait = from_micros(wait);
            match kind {
                0 => Ok(StoreDecision::Admitted { global_wait: wait }),
                1 => Ok(StoreDecision::Queued { wait }),
                2 => Ok(StoreDecision::Refused {
                    level: Level::Namespace,
                    wait,
                }),
                3 => Ok(StoreDecision::Refused {
                    level: Level::Global,
                    wait,
                }),
                other => Err(StoreError::Protocol(format!(
                    "decide script replied kind {other}"
                ))),
            }
        })
    }

    fn reserve_global(
        &self,
        global: Quota,
        max_wait: Duration,
    ) -> StoreFuture<Result<Duration, Duration>> {
        let (g_t, g_tau) = micros(global);
        let keys = vec![self.inner.global_key.clone()];
        let args = vec![g_t, g_tau, duration_micros(max_wait)];
        let call = self.run::<(i64, i64)>(|inner| &inner.reserve_global, keys, args);
        Box::pin(async move {
            let (refused, wait) = call.await?;
            let wait = from_micros(wait);
            Ok(if refused == 0 { Ok(wait) } else { Err(wait) })
        })
    }

    fn refund(&self, refund: Refund) -> StoreFuture<()> {
        let mut keys = Vec::with_capacity(2);
        let mut args = Vec::with_capacity(2);
        if let Some((namespace, quota)) = &refund.namespace {
            keys.push(self.namespace_key(namespace));
            args.push(micros(*quota).0);
        }
        if let Some(quota) = refund.global {
            keys.push(self.inner.global_key.clone());
            args.push(micros(quota).0);
        }
        if keys.is_empty() {
            return Box::pin(std::future::ready(Ok(())));
        }
        let call = self.run::<i64>(|inner| &inner.refund, keys, args);
        Box::pin(async move { call.await.map(drop) })
    }

    fn pause_upstream(&self, key: &str, until: Instant) -> StoreFuture<Instant> {
        let left = until.saturating_duration_since(Instant::now());
        let call = self.run::<i64>(
            |inner| &inner.pause,
            vec![self.pause_key(key)],
            vec![duration_micros(left)],
        );
        // The answer is relative to Redis's now: anchored when it arrives, so the pause can
        // only end later than asked, never earlier.
        Box::pin(async move { Ok(anchor(from_micros(call.await?))) })
    }

    fn paused_until(&self, key: &str) -> StoreFuture<Option<Instant>> {
        let call = self.run::<i64>(|inner| &inner.paused, vec![self.pause_key(key)], Vec::new());
        Box::pin(async move {
            let left = call.await?;
            Ok((left >= 0).then(|| anchor(from_micros(left))))
        })
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RedisStore`]; see [`RedisStore::builder`] for the defaults.
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    prefix: String,
    timeout: Duration,
    connect_timeout: Duration,
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        Self {
            prefix: "pacer".to_owned(),
            timeout: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(1),
        }
    }
}

impl RedisStoreBuilder {
    /// The prefix of every key (default `pacer`): limiters that share a prefix share their
    /// buckets. Braces are not allowed in it (the prefix is the keys' Cluster hash tag).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest any one Redis call may take before it counts as a failure (default 50 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest one connection attempt may take, at start and on reconnection (default
    /// 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connects to Redis (`redis://host:port/db`, or any [`IntoConnectionInfo`]). Fails when
    /// Redis cannot be reached now; once connected, the store reconnects on its own.
    pub async fn connect(self, info: impl IntoConnectionInfo) -> Result<RedisStore, StoreError> {
        if self.prefix.contains(['{', '}']) {
            return Err(StoreError::Protocol(format!(
                "key prefix {:?} must not contain braces",
                self.prefix
            )));
        }
        let backend = |e: redis::RedisError| StoreError::Backend(Box::new(e));
        let client = redis::Client::open(info).map_err(backend)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.connect_timeout)
            // No backoff inside the manager: a failed reconnection fails the calls waiting for
            // it, and the next call starts a new one (the limiter paces those).
            .set_number_of_retries(0);
        let connect = ConnectionManager::new_with_config(client, config);
        let connection = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(connection) => connection.map_err(backend)?,
            Err(_elapsed) => return Err(StoreError::Timeout(self.connect_timeout)),
        };
        let global_key = format!("{{{}}}:g", self.prefix);
        let (decisions, queue) = mpsc::unbounded_channel();
        tokio::spawn(batch_decisions(
            queue,
            connection.clone(),
            global_key.clone(),
            self.timeout,
        ));
        Ok(RedisStore {
            inner: Arc::new(Inner {
                connection,
                timeout: self.timeout,
                decisions,
                global_key,
                prefix: self.prefix,
                reserve_global: Script::new(RESERVE_GLOBAL),
                refund: Script::new(REFUND),
                pause: Script::new(PAUSE),
                paused: Script::new(PAUSED),
            }),
        })
    }
}
