//! Deadlines on tokio's clock and wall-clock times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// The instant `lifetime` from now, saturating at about 30 years (a lifetime given as
/// "forever" must not overflow the clock).
pub(crate) fn deadline(lifetime: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(lifetime)
        .or_else(|| now.checked_add(Duration::from_secs(30 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
