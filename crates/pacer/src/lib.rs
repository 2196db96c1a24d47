//! pacer: tower middleware that keeps HTTP API clients polite under load.
//!
//! | module | holds |
//! |---|---|
//! | [`namespace`] | [`Namespace`], the request extension naming the tenant a request is made for |
//! | [`rate_limit`] | the keyed two-level rate limiter and its tower layer (wait and reject modes) |
//! | [`events`] | the observer trait the layers report to; metrics and tracing subscribe to it |
//! | `metrics` | feature `metrics`: prometheus-client metrics and `MetricsLayer` |
//! | `config` | feature `config`: `Config` with the defaults, from files and environment variables |
//! | `auth` | feature `auth`: `BearerAuthLayer`, one single-flight bearer-token cache over an API's `TokenSource`; the API-key header |
//! | `client` | feature `client`: the ready stack over hyper-util's pooled client with rustls, from a `Config`; `ServiceBuilderExt`; a blocking facade |
//!
//! See the README for how the layers compose.
#![deny(unsafe_code, missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

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
