//! Helpers shared by the workspace's tests and benches, written once here.

use pacer::events::Events;
use pacer::rate_limit::{BuildError, Quota, RateLimiter};

/// A rate limiter whose quotas never bind in a test or a bench (10^9 requests per second,
/// a burst of a million, globally and per namespace), reporting to `events`: it measures
/// the limiter's own cost on its happy path, never a wait.
///
/// ```
/// use pacer::Namespace;
/// use pacer::events::Events;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let limiter = pacer_testbed::support::open_limiter(Events::none())?;
/// for _ in 0..10_000 {
///     limiter.try_acquire(&Namespace::new("team-a"))?;
/// }
/// # Ok(()) }
/// ```
pub fn open_limiter(events: impl Into<Events>) -> Result<RateLimiter, BuildError> {
    let quota = Quota::per_second(1e9)
        .and_then(|quota| quota.with_burst(1_000_000))
        .map_err(BuildError::GlobalQuota)?;
    RateLimiter::builder()
        .global(quota)
        .per_namespace(quota)
        .observer(events)
        .build()
}
