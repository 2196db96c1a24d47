//! Deadlines on tokio's clock and wall-clock times (Unix seconds, RFC 3339 timestamps).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::{OffsetDateTime, UtcOffset};
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

/// The wall-clock time as Infrahub writes its timestamps (`branched_from`, `created_at`):
/// RFC 3339 in UTC with microseconds, `2024-01-01T00:00:00.000000Z`.
pub(crate) fn timestamp() -> String {
    rfc3339_micros(OffsetDateTime::now_utc())
}

fn rfc3339_micros(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let at = |nanos: i128| OffsetDateTime::from_unix_timestamp_nanos(nanos).expect("in range");
        assert_eq!(
            rfc3339_micros(at(1_704_067_200_000_000_000)),
            "2024-01-01T00:00:00.000000Z"
        );
        // A leap day, and nanoseconds cut (not rounded) to microseconds.
        assert_eq!(
            rfc3339_micros(at(951_782_400_123_456_789)),
            "2000-02-29T00:00:00.123456Z"
        );
        // Another offset is written in UTC.
        let paris = at(1_704_067_200_000_000_000)
            .to_offset(UtcOffset::from_hms(1, 0, 0).expect("an offset"));
        assert_eq!(rfc3339_micros(paris), "2024-01-01T00:00:00.000000Z");
        assert_eq!(timestamp().len(), "2024-01-01T00:00:00.000000Z".len());
    }
}
