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
//! On a Redis Cluster, connect with [`RedisStoreBuilder::connect_cluster`] instead: the
//! namespaces spread over the cluster's slots and the global bucket is touched once per lease.
//!
//! # How
//!
//! - **One round trip per decision.** A decision is one Lua script on its namespace's key,
//!   run atomically by Redis (`EVALSHA`, falling back to `EVAL` after a restart or `SCRIPT
//!   FLUSH`, via [`redis::Script`]), on **Redis's clock** (`redis.call('TIME')`), so replicas
//!   with skewed clocks agree. Its global slot comes from the replica's lease (below), so a
//!   namespace that must wait costs no second call: after the (tokio) sleep the global slot is
//!   taken from the lease too. Quotas travel as script arguments, so per-namespace overrides
//!   work and replicas need no shared configuration beyond the key prefix (replicas should
//!   nevertheless agree on quotas: each request is judged by the quotas of the replica that
//!   sends it).
//! - **Batched.** A store's decisions go through one task that sends them together: up to
//!   128 per round and 2 rounds on the wire at once. Alone, a decision goes at once; under
//!   load, those that arrive while the rounds in flight are out share the next, which runs
//!   them in order, each as if alone, reading and writing each bucket once. On one instance
//!   a round is one script call; on a cluster, where one call's keys must share a slot, one
//!   call per namespace in the round, each to its namespace's shard. A decision's timeout
//!   covers its wait in the queue and any lease call.
//! - **Same protocol as in memory.** The namespace slot decides first: refused, reserved in
//!   the future within `max_wait` (the global slot is then taken after the wait), or free now,
//!   when the global token decides; a refusal consumes nothing; a dropped waiter's namespace
//!   slot is given back by a refund script fired from `Drop` on a spawned task (never blocking
//!   in `Drop`; outside a runtime the refund is skipped and the slot comes back as the bucket
//!   refills), its global token to the lease. Waits cross the wire as durations from Redis's
//!   "now" and are slept on [`tokio::time`].
//! - **Keys.** `{prefix:ns:<namespace>}` per namespace (a Cluster hash tag of its own, so
//!   namespaces spread over slots), `{prefix}:global` for the global bucket and its leases,
//!   `{prefix:pause:<upstream>}` per paused upstream. A bucket holds its theoretical arrival
//!   time in microseconds of Redis time, with a `PEXPIRE` at the moment it has refilled: a
//!   refilled bucket is indistinguishable from a missing key, so Redis memory is bounded by
//!   the namespaces active within one refill time.
//! - **Timeouts.** Every decision and every Redis call is bounded by
//!   [`RedisStoreBuilder::timeout`] (default 50 ms, with [`tokio::time::timeout`]); a call
//!   that timed out may still be applied by Redis later, which can only waste capacity, never
//!   exceed a limit.
//! - **Reconnection.** On one instance a [`redis::aio::ConnectionManager`] (one multiplexed
//!   connection) reconnects on its own, with no backoff of its own: the limiter already leaves
//!   the store alone for its retry interval after a failure. On a cluster the client follows
//!   `MOVED` after a failover and refreshes its slot map.
//! - **Failure policy.** Chosen on the limiter:
//!   [`RateLimiterBuilder::on_store_failure`](super::RateLimiterBuilder::on_store_failure)
//!   with [`StoreFailure::FailClosed`](super::StoreFailure::FailClosed) (the default: refuse)
//!   or [`StoreFailure::Local`](super::StoreFailure::Local) (a local limiter at a share of the
//!   quotas, e.g. `1 / replicas`). Fallbacks are counted by
//!   [`RateLimiter::store_fallbacks`](super::RateLimiter::store_fallbacks). A cluster shard
//!   that fails fails the decisions of its namespaces (or of all, when it holds the global
//!   key and a lease is needed) within the timeout, and the policy applies to those; nothing
//!   panics and no request waits longer than the timeout plus `max_wait`.
//! - **Clocks.** A bucket remembers the clock of the node that wrote it. A node whose clock
//!   is behind (a failover to a replica with a slower clock, a clock stepped back) moves the
//!   bucket's times back by the difference, so no bucket freezes; a clock ahead looks like
//!   time passed, so a bucket can at most refill to its burst early.
//! - **Shared `Retry-After` pause.** [`RateLimitStore::pause_upstream`] /
//!   [`RateLimitStore::paused_until`] keep one deadline per upstream (set with `PX`, the later
//!   deadline wins), on Redis's clock too, for the `Retry-After` layer to share a server's
//!   pause across replicas.
//!
//! # Leased global tokens
//!
//! Each store (replica) takes global tokens in leases: a batch of the global bucket's tokens
//! that it spends locally, so a decision touches only its namespace's key and the global key
//! is touched once per lease. A lease is sized from the replica's own rate over its last
//! lease (enough for a quarter of the lease time to live), at most
//! [`max_lease`](RedisStoreBuilder::max_lease) tokens (default 32) and at most half of what
//! the bucket has now. It lives [`lease_ttl`](RedisStoreBuilder::lease_ttl) (default 1 s);
//! the next lease call settles it and gives its unused tokens back, as does dropping the
//! store; Redis drops a lease its replica never settled once it expired.
//!
//! Redis counts leased tokens as taken until their lease is settled or expires, and the
//! bucket never refills past its burst minus the tokens leased out. **The bound:** with `n`
//! replicas, global rate `R` and burst `B`, the fleet admits in any window of length `w` at
//! most `B + R·w + n × max_lease` requests: the single bucket's `B + R·w`, plus at most the
//! tokens the replicas held unspent when the window began. With `max_lease(1)` that excess is
//! at most one request per replica. A failover of the global key's shard can lose the leases
//! Redis had not yet replicated (Redis replicates asynchronously); each lost lease is at most
//! `max_lease` more.
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
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::{IntoConnectionInfo, Script};
use tokio::time::Instant;

use self::batch::{Decider, NamespaceStep};
use self::connection::{Connection, timed};
use self::lease::{GlobalSlot, Leases};
use self::scripts::{PAUSE, PAUSED, REFUND, RETURN_GLOBAL, duration_micros, from_micros, micros};
use super::level::Level;
use super::quota::Quota;
use super::store::{RateLimitStore, Refund, StoreDecision, StoreFuture, StoreRequest};
use super::store_error::StoreError;
use crate::namespace::Namespace;

mod batch;
mod connection;
mod lease;
mod scripts;

/// A [`RateLimitStore`] in Redis or Redis Cluster; see the [module docs](self). Cheap to
/// clone (shared).
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    connection: Connection,
    timeout: Duration,
    prefix: String,
    global_key: String,
    decider: Decider,
    leases: Arc<Leases>,
    refund: Script,
    return_global: Script,
    pause: Script,
    paused: Script,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.leases.release();
    }
}

impl RedisStore {
    /// A builder with the defaults: prefix `pacer`, timeout 50 ms, connect timeout 1 s,
    /// leases of at most 32 tokens living 1 s.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::default()
    }

    /// Connects to one Redis with the defaults; see [`RedisStoreBuilder::connect`].
    pub async fn connect(info: impl IntoConnectionInfo) -> Result<Self, StoreError> {
        Self::builder().connect(info).await
    }

    /// The key of the global bucket and its leases: `{prefix}:global`.
    pub fn global_key(&self) -> &str {
        &self.inner.global_key
    }

    /// The key of `namespace`'s bucket: `{prefix:ns:<namespace>}`, a hash tag of its own so
    /// that namespaces spread over a cluster's slots.
    pub fn namespace_key(&self, namespace: &Namespace) -> String {
        format!("{{{}:ns:{}}}", self.inner.prefix, namespace.as_str())
    }

    /// The key of the pause of upstream `key`: `{prefix:pause:<key>}`.
    pub fn pause_key(&self, key: &str) -> String {
        format!("{{{}:pause:{key}}}", self.inner.prefix)
    }

    /// The timeout of every Redis call.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// How many lease calls this store made to the global key: each settles the last lease
    /// and takes the next.
    pub fn lease_calls(&self) -> u64 {
        self.inner.leases.calls()
    }

    /// Runs a one-key `script` with `args`, bounded by the timeout.
    async fn run<T: redis::FromRedisValue>(
        inner: &Inner,
        script: &Script,
        key: String,
        args: &[f64],
    ) -> Result<T, StoreError> {
        let mut invocation = script.prepare_invoke();
        invocation.key(key);
        for arg in args {
            invocation.arg(*arg);
        }
        let mut connection = inner.connection.clone();
        timed(inner.timeout, invocation.invoke_async(&mut connection)).await
    }
}

/// `left` from now; a store answer past the clock's range is capped at a year.
fn anchor(left: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(left)
        .or_else(|| now.checked_add(Duration::from_secs(86_400 * 365)))
        .unwrap_or(now)
}

/// The global slot for the namespace step: `-1` when a token is held, else how long until
/// the global bucket has one.
fn global_arg(slot: &GlobalSlot) -> f64 {
    match slot {
        GlobalSlot::Held(_) => -1.0,
        GlobalSlot::Refused(wait) => duration_micros(*wait),
    }
}

impl RedisStore {
    async fn decide_now(
        inner: Arc<Inner>,
        request: StoreRequest,
    ) -> Result<StoreDecision, StoreError> {
        // The global token first, from the lease in hand: a lease call only when it ran out.
        let global = inner
            .leases
            .take(request.global_quota, request.max_wait)
            .await?;
        let (ns_t, ns_tau) = micros(request.namespace_quota);
        let step = NamespaceStep {
            key: format!("{{{}:ns:{}}}", inner.prefix, request.namespace.as_str()),
            args: [
                ns_t,
                ns_tau,
                duration_micros(request.max_wait),
                global_arg(&global),
            ],
        };
        // On any way out but an admission, a held token goes back to the lease (its drop).
        let (kind, wait) = inner.decider.decide(step).await?;
        let wait = from_micros(wait);
        match (kind, global) {
            (0, GlobalSlot::Held(token)) => Ok(StoreDecision::Admitted {
                global_wait: token.commit(),
            }),
            (1, _) => Ok(StoreDecision::Queued { wait }),
            (2, _) => Ok(StoreDecision::Refused {
                level: Level::Namespace,
                wait,
            }),
            (3, GlobalSlot::Refused(_)) => Ok(StoreDecision::Refused {
                level: Level::Global,
                wait,
            }),
            (kind, _) => Err(StoreError::Protocol(format!(
                "decide script replied kind {kind}"
            ))),
        }
    }
}

impl RateLimitStore for RedisStore {
    fn decide(&self, request: StoreRequest) -> StoreFuture<StoreDecision> {
        let inner = Arc::clone(&self.inner);
        let timeout = inner.timeout;
        Box::pin(async move {
            // One bound over the whole decision: a lease call, the queue and the call.
            match tokio::time::timeout(timeout, Self::decide_now(inner, request)).await {
                Ok(decision) => decision,
                Err(_elapsed) => Err(StoreError::Timeout(timeout)),
            }
        })
    }

    fn reserve_global(
        &self,
        global: Quota,
        max_wait: Duration,
    ) -> StoreFuture<Result<Duration, Duration>> {
        let leases = Arc::clone(&self.inner.leases);
        let timeout = self.inner.timeout;
        Box::pin(async move {
            let take = leases.take(global, max_wait);
            match tokio::time::timeout(timeout, take).await {
                Ok(Ok(GlobalSlot::Held(token))) => Ok(Ok(token.commit())),
                Ok(Ok(GlobalSlot::Refused(wait))) => Ok(Err(wait)),
                Ok(Err(error)) => Err(error),
                Err(_elapsed) => Err(StoreError::Timeout(timeout)),
            }
        })
    }

    fn refund(&self, refund: Refund) -> StoreFuture<()> {
        let inner = Arc::clone(&self.inner);
        let namespace = refund
            .namespace
            .map(|(namespace, quota)| (self.namespace_key(&namespace), micros(quota).0));
        // A global slot is given back only by a waiter that held one ahead (a slot of now is
        // spent at once): it goes back to the bucket, whose lease it may no longer be in.
        let global = refund.global.map(|quota| micros(quota).0);
        Box::pin(async move {
            if let Some((key, interval)) = namespace {
                Self::run::<i64>(&inner, &inner.refund, key, &[interval]).await?;
            }
            if let Some(interval) = global {
                let key = inner.global_key.clone();
                Self::run::<i64>(&inner, &inner.return_global, key, &[interval]).await?;
            }
            Ok(())
        })
    }

    fn pause_upstream(&self, key: &str, until: Instant) -> StoreFuture<Instant> {
        let left = until.saturating_duration_since(Instant::now());
        let inner = Arc::clone(&self.inner);
        let key = self.pause_key(key);
        // The answer is relative to Redis's now: anchored when it arrives, so the pause can
        // only end later than asked, never earlier.
        Box::pin(async move {
            let args = [duration_micros(left)];
            let left = Self::run::<i64>(&inner, &inner.pause, key, &args).await?;
            Ok(anchor(from_micros(left)))
        })
    }

    fn paused_until(&self, key: &str) -> StoreFuture<Option<Instant>> {
        let inner = Arc::clone(&self.inner);
        let key = self.pause_key(key);
        Box::pin(async move {
            let left = Self::run::<i64>(&inner, &inner.paused, key, &[]).await?;
            Ok((left >= 0).then(|| anchor(from_micros(left))))
        })
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let deployment = match self.inner.connection {
            Connection::Single(_) => "single",
            Connection::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("deployment", &deployment)
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
    lease_ttl: Duration,
    max_lease: u32,
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        Self {
            prefix: "pacer".to_owned(),
            timeout: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(1),
            lease_ttl: Duration::from_secs(1),
            max_lease: 32,
        }
    }
}

impl RedisStoreBuilder {
    /// The prefix of every key (default `pacer`): limiters that share a prefix share their
    /// buckets. Braces are not allowed in it (keys use braces as Cluster hash tags).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest any one decision or Redis call may take before it counts as a failure
    /// (default 50 ms).
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

    /// How long a lease of global tokens lives (default 1 s, at least 10 ms): this replica
    /// spends its tokens within it, and Redis drops a lease its replica did not settle after
    /// it.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_millis(10));
        self
    }

    /// The most global tokens one lease takes (default 32, at least 1). With `n` replicas the
    /// fleet admits at most `n × max_lease` requests above the global limit (see the
    /// [module docs](self#leased-global-tokens)); 1 makes the global limit exact at one
    /// global call per request.
    pub fn max_lease(mut self, tokens: u32) -> Self {
        self.max_lease = tokens.max(1);
        self
    }

    fn check_prefix(&self) -> Result<(), StoreError> {
        if self.prefix.contains(['{', '}']) {
            return Err(StoreError::Protocol(format!(
                "key prefix {:?} must not contain braces",
                self.prefix
            )));
        }
        Ok(())
    }

    /// Connects to one Redis (`redis://host:port/db`, or any [`IntoConnectionInfo`]). Fails
    /// when Redis cannot be reached now; once connected, the store reconnects on its own.
    pub async fn connect(self, info: impl IntoConnectionInfo) -> Result<RedisStore, StoreError> {
        self.check_prefix()?;
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
        Ok(self.store(Connection::Single(connection)))
    }

    /// Connects to a Redis Cluster through any of its nodes (`redis://host:port/` each; the
    /// client learns the others). Namespaces spread over the cluster's slots, the global
    /// bucket is one key on one shard, touched once per lease. Fails when no node can be
    /// reached now; once connected, the client follows failovers and slot moves.
    pub async fn connect_cluster<I: IntoConnectionInfo>(
        self,
        nodes: impl IntoIterator<Item = I>,
    ) -> Result<RedisStore, StoreError> {
        self.check_prefix()?;
        let backend = |e: redis::RedisError| StoreError::Backend(Box::new(e));
        let client = ClusterClient::builder(nodes)
            .connection_timeout(self.connect_timeout)
            .response_timeout(self.timeout)
            // A call is bounded by the store's timeout; within it the client may follow a
            // `MOVED` or retry once on a reconnected node, without long backoffs.
            .retries(2)
            .min_retry_wait(5)
            .max_retry_wait(20)
            .build()
            .map_err(backend)?;
        let connect = client.get_async_connection();
        let connection = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(connection) => connection.map_err(backend)?,
            Err(_elapsed) => return Err(StoreError::Timeout(self.connect_timeout)),
        };
        Ok(self.store(Connection::Cluster(connection)))
    }

    fn store(self, connection: Connection) -> RedisStore {
        let global_key = format!("{{{}}}:global", self.prefix);
        let leases = Leases::new(
            connection.clone(),
            global_key.clone(),
            replica_id(),
            self.lease_ttl,
            self.max_lease,
            self.timeout,
        );
        RedisStore {
            inner: Arc::new(Inner {
                decider: Decider::new(connection.clone(), self.timeout),
                leases: Arc::new(leases),
                connection,
                timeout: self.timeout,
                prefix: self.prefix,
                global_key,
                refund: Script::new(REFUND),
                return_global: Script::new(RETURN_GLOBAL),
                pause: Script::new(PAUSE),
                paused: Script::new(PAUSED),
            }),
        }
    }
}

/// A name for this store's leases that no other store picks: 64 random bits (the standard
/// library's per-process random hash keys, mixed with the time and a counter).
fn replica_id() -> String {
    static STORES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(STORES.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(since_epoch.as_nanos());
    format!("{:016x}", hasher.finish())
}
