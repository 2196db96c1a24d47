//! Keyed two-level rate limiting: one global bucket plus one bucket per [`Namespace`](crate::Namespace).
//!
//! A Kubernetes operator reconciling many tenants against one API must never overload it (mass
//! reconciliation, a restart) and must not let one tenant monopolise it. [`RateLimiter`] keeps a
//! global bucket (default 50 req/s, burst 100) and one bucket per namespace (default 5 req/s,
//! burst 10, with per-namespace overrides); every request takes a slot in both.
//!
//! ```
//! use std::time::Duration;
//! use pacer::Namespace;
//! use pacer::rate_limit::{Quota, RateLimiter};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let limiter = RateLimiter::builder()
//!     .global(Quota::per_second(50)?.with_burst(100)?)
//!     .per_namespace(Quota::per_second(5)?.with_burst(10)?)
//!     .namespace_override("platform", Quota::per_second(20)?.with_burst(40)?)
//!     .max_wait(Duration::from_secs(30))
//!     .build()?;
//!
//! let team_a = Namespace::new("team-a");
//! limiter.acquire(&team_a).await?; // waits for a slot if needed, at most `max_wait`
//! limiter.try_acquire(&team_a)?; // never waits
//! # Ok(()) }
//! ```
//!
//! As tower middleware, over any `http` service:
//!
//! ```
//! use pacer::Namespace;
//! use pacer::rate_limit::{RateLimitLayer, RateLimiter};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let limiter = RateLimiter::builder().build()?;
//! let client = ServiceBuilder::new()
//!     .layer(RateLimitLayer::new(limiter))
//!     .service(service_fn(|_req: http::Request<()>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(()))
//!     }));
//!
//! let mut request = http::Request::new(());
//! request.extensions_mut().insert(Namespace::new("team-a"));
//! let response = client.oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(()) }
//! ```
//!
//! # Algorithm
//!
//! Each bucket is a GCRA cell (generic cell rate algorithm): one theoretical arrival time, the
//! exact equivalent of a token bucket, kept in nanoseconds on [`tokio::time::Instant`] so that
//! tests with paused time are exact. It is implemented here rather than taken from governor,
//! whose clock ignores tokio's paused time and which cannot decide two limits atomically.
//!
//! # Semantics
//!
//! - **Order.** A request takes its namespace slot first and waits for it, then takes a global
//!   slot and waits for that. A namespace that is itself waiting never holds a global slot in
//!   the future, so a tenant with a deep backlog draws on the global bucket no faster than its
//!   own rate and cannot push other tenants back.
//! - **Both or neither.** A request refused by the global bucket leaves no trace in its
//!   namespace bucket, and a refusal consumes nothing.
//! - **`max_wait`.** A request that would wait longer than `max_wait` fails at once with
//!   [`RateLimited`] (which level, how long) instead of waiting.
//! - **Cancellation.** Dropping a waiting [`Acquire`] (or the layer's response future) gives its
//!   reservations back. A refund returns one slot's worth of capacity to the bucket, which the
//!   next arrival may use: when the dropped waiter was the last in line this is exactly as if it
//!   had never come; otherwise the next arrival takes the freed slot at the end of the line, so
//!   at one instant one more request than the burst may pass per refund, and the long-run rate
//!   is unchanged.
//! - **Restart protection.** [`RateLimiterBuilder::initial_fill`] below 1 starts every bucket
//!   partly empty, as if it had been in use up to the limiter's creation, so a restarted process
//!   cannot send a full burst at once. A namespace first seen later starts as full as it would be
//!   had it existed since then.
//!
//! # Memory
//!
//! Namespaces may come from untrusted input (a server keying on a header), so the table is
//! bounded:
//!
//! - A namespace whose bucket has refilled is indistinguishable from one never seen, so it is
//!   forgotten. Eviction is incremental: the table is split into shards of about 1 024 entries,
//!   and one shard is swept at a time, paced so that every shard is swept once per refill time
//!   of the slowest namespace quota. No call ever sweeps more than one shard (plus its own when
//!   it is full), so there is no stop-the-world pause.
//! - `max_namespaces` (default 100 000) caps the table; the cap is split evenly across shards.
//!   **Overflow policy:** when a new namespace finds its shard full even after that shard's
//!   refilled buckets were evicted, it is accounted to one shared *overflow* bucket with the
//!   default per-namespace quota (and, as always, to the global bucket). A flood of made-up
//!   names therefore gets one namespace's worth of capacity in total, cannot evict or reset
//!   real tenants' buckets, and cannot grow memory; real tenants that arrive during such a flood
//!   share that overflow bucket until their shard has room again.
//! - **No names are kept.** A bucket is found by its namespace's key
//!   ([`Namespace`](crate::Namespace) computes it once, when made: a 64-bit SipHash of the
//!   name under random keys drawn once per process), so an entry is 16 bytes (about 20 to 40
//!   bytes with the hash table's slack) whatever the name's length, a decision hashes nothing
//!   and compares one integer, and evicting frees nothing. Two live namespaces share a bucket
//!   only if their keys collide: about n²/2^65 among n live namespaces (3 in 100 million at
//!   a million), and without the process's keys nobody can pick names that collide.
//!
//! # Many threads
//!
//! Every decision writes the global bucket and its namespace's shard, so threads deciding at
//! once contend for those cache lines. [`RateLimiterBuilder::thread_leases`] (opt-in) lets
//! each thread lease slots of a bucket in one write and spend them from its own memory;
//! the bound on admitted requests stays exact (see [`thread_lease`] for the proof and what it
//! costs: slots that may lapse unused, 96 KiB per thread).
//!
//! # Shared store (several replicas)
//!
//! The buckets sit behind [`RateLimitStore`]. By default they live in this process's memory,
//! on a concrete path ([`RateLimiter::try_acquire`] and the layer's synchronous first step stay
//! allocation-free, with no virtual call). [`RateLimiterBuilder::store`] puts them in a shared
//! store instead, e.g. [`redis::RedisStore`] (feature `redis`), so that the replicas of a client
//! share their global and per-namespace limits with the semantics above; the layer works
//! unchanged over it. The limiter keeps the configuration and passes each request's quotas to
//! the store.
//!
//! - **Async first step.** Asking a shared store takes a round trip, so with a store the
//!   first step is done by the returned future: [`RateLimiter::acquire`] and the wait-mode
//!   layer need nothing else, the reject-mode layer awaits the decision before calling the
//!   service, and [`RateLimiter::try_acquire_async`] is the never-waiting variant.
//!   [`RateLimiter::try_acquire`], being synchronous, cannot ask the store: over one it decides
//!   by the failure policy (and counts a fallback).
//! - **Failures.** A store error or timeout applies [`StoreFailure`]: refuse
//!   ([`Level::Store`], the default) or decide in a local limiter at a share of the quotas.
//!   The store is then left alone for [`RateLimiterBuilder::store_retry_interval`], and
//!   [`RateLimiter::store_fallbacks`] counts the decisions made meanwhile. A request never
//!   waits longer than the store's timeout plus `max_wait`.
//! - **Clocks.** A shared store decides on its own clock (Redis: its `TIME`) and answers
//!   waits as durations, which the limiter sleeps on [`tokio::time`]; tokio's paused time
//!   therefore does not move a shared store's buckets.
//! - **Restart protection and `max_namespaces`** apply to the in-memory state (and to the
//!   local fallback); a shared store keeps its buckets across client restarts and bounds its
//!   own memory (Redis keys expire once refilled).
//!
//! # Server mode
//!
//! [`RateLimitLayer::reject`] never waits: it answers `429 Too Many Requests` with
//! `Retry-After` (whole seconds, rounded up, at least 1) and the IETF
//! `RateLimit-Policy`/`RateLimit` fields (draft-ietf-httpapi-ratelimit-headers), e.g.
//!
//! ```text
//! Retry-After: 1
//! RateLimit-Policy: "namespace";q=10;w=2, "global";q=100;w=2
//! RateLimit: "namespace";r=0;t=1
//! ```
//!
//! where `q` is the bucket's burst, `w` the seconds it takes to refill from empty, `r` the
//! remaining requests and `t` the seconds until the refusing bucket has a slot again.
//! A refusal because a shared store is unavailable ([`Level::Store`], fail closed) is not a
//! rate limit: it is answered `503 Service Unavailable` with `Retry-After` only.
//! Use [`FromHeader`] (or a closure) to key on what the client sends; malformed or oversized
//! names fall back to the default namespace.

mod acquire;
pub(crate) mod builder;
pub mod clock;
mod error;
mod extract;
mod layer;
pub(crate) mod level;
pub(crate) mod limiter;
mod memory;
mod quota;
#[cfg(feature = "redis")]
pub mod redis;
mod reject;
pub(crate) mod store;
pub(crate) mod store_error;
pub mod thread_lease;

pub use acquire::Acquire;
pub use builder::RateLimiterBuilder;
pub use clock::{Clock, LimiterClock};
pub use error::BuildError;
pub use extract::{ExtractNamespace, FromExtension, FromHeader};
pub use layer::{RateLimit, RateLimitLayer, Reject, ResponseFuture, Wait};
pub use level::{Level, RateLimited};
pub use limiter::RateLimiter;
pub use quota::{Quota, QuotaError};
pub use reject::{RATELIMIT, RATELIMIT_POLICY, RejectFuture};
pub use store::{RateLimitStore, Refund, StoreDecision, StoreFailure, StoreFuture, StoreRequest};
pub use store_error::StoreError;
pub use thread_lease::{ThreadLeases, ThreadLeasesError};

#[cfg(test)]
mod clock_tests;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod thread_lease_tests;
