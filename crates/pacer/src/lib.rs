//! pacer: tower middleware that keeps HTTP API clients polite under load.
//!
//! | module | holds |
//! |---|---|
//! | [`namespace`] | [`Namespace`], the request extension naming the tenant a request is made for |
//! | [`body`] | the replayable request body retries copy |
//! | [`rate_limit`] | the keyed two-level rate limiter and its tower layer (wait and reject modes) |
//! | [`retry`] | `RetryLayer`, `RetryPolicy`, backoff, the retry budget, the classifier and `RetryReason` |
//! | [`retry_after`] | `Retry-After`/`RateLimit` parsing, `RetryAfterLayer` and the shared pause gate |
//! | [`events`] | the observer trait the layers report to; metrics and tracing subscribe to it |
//! | `metrics` | feature `metrics`: prometheus-client metrics and `MetricsLayer` |
//! | `config` | feature `config`: `Config` with the defaults, from files and environment variables, validated once into `ValidConfig` |
//! | `auth` | feature `auth`: `BearerAuthLayer`, one single-flight bearer-token cache over an API's `TokenSource`; the API-key header |
//! | `client` | feature `client`: the ready stack over hyper-util's pooled client with rustls, from a `Config`; `ServiceBuilderExt`; a blocking facade |
//!
//! # Layering
//!
//! Each file imports only from files below it, and from the file that defines what it
//! imports (never through a parent that imports it back), so no two files import each other,
//! directly or round a circle. Bottom to top:
//!
//! 1. the vocabulary: `namespace`, the leaf files `rate_limit/level.rs` (`Level`,
//!    `RateLimited`), `retry/reason.rs` (`RetryReason`), `retry_after/cap.rs`
//!    (`RetryAfterMode`, `RetryAfterExceeded`), `rate_limit/quota.rs`, the header parsers
//!    `retry_after/parse.rs`, and `body`;
//! 2. `events` (which names that vocabulary);
//! 3. the layers: `rate_limit`, `retry_after`, `retry` (which uses `retry_after`'s parser and
//!    leaf, never the other way round);
//! 4. `metrics` (an observer of every layer's events, and a layer itself);
//! 5. `config` (the settings of every piece, and their factories);
//! 6. `client` (the ready stack from a `Config`) and `auth` (the bearer-token layer over
//!    any stack; it uses `body`, `namespace` and `retry`'s `Idempotent` marker).
//!
//! # Failure modes
//!
//! The ready client (feature `client`) ends every call within a stated bound, whatever the
//! server does: each attempt within `timeout_secs` (head and, for buffering clients, body),
//! the whole call within `deadline_secs` (300 s by default), a streaming body's silences
//! within `read_timeout_secs` (30 s by default), with typed errors (`Elapsed`,
//! `DeadlineExceeded`, `ReadTimeout`, hyper's errors, `LengthLimitError`). The README's
//! *Failure modes* table lists each hostile behaviour, what the caller gets and within what
//! time; the `config` module docs give the bound as the sum of its parts.
//!
//! See the README for how the layers compose.
#![deny(unsafe_code, missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "auth")]
pub mod auth;
pub mod body;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "config")]
pub mod config;
pub mod events;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod namespace;
pub mod rate_limit;
pub mod retry;
pub mod retry_after;

pub use namespace::Namespace;

/// The boxed error the layers return when they add failures of their own to the inner
/// service's (the same alias tower uses).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
