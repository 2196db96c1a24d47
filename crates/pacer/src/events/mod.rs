//! What the layers report: rate-limit waits and refusals, retries, give-ups, shared pauses and
//! timeouts, delivered to an [`Observer`].
//!
//! Each layer takes an observer at construction (through its builder; there are no globals).
//! With none, reporting costs one branch. [`Metrics`](crate::metrics::Metrics) is one observer,
//! [`TracingObserver`] (feature `tracing`) another; a tuple `(A, B)` reports to both.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use pacer::events::{Event, Observer};
//! use pacer::rate_limit::RateLimiter;
//!
//! #[derive(Default)]
//! struct CountRefusals(AtomicU64);
//!
//! impl Observer for CountRefusals {
//!     fn observe(&self, event: &Event<'_>) {
//!         if let Event::RateLimitRefused { .. } = event {
//!             self.0.fetch_add(1, Ordering::Relaxed);
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let limiter = RateLimiter::builder().observer(CountRefusals::default()).build()?;
//! # Ok(()) }
//! ```

pub(crate) mod event;
pub(crate) mod observer;
#[cfg(feature = "tracing")]
mod tracing_observer;

/// The one retry reason, defined with the classifier; re-exported for the events that carry it.
pub use crate::retry::reason::RetryReason;
pub use event::{Event, RequestInfo};
pub use observer::{Events, Observer};
#[cfg(feature = "tracing")]
pub use tracing_observer::TracingObserver;
