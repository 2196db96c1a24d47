//! [`Settings`]: the `Copy` settings a response future reads to turn a response into a pause.

use std::time::{Duration, SystemTime};

use http::StatusCode;

use super::parse::{self, ResetHeader, rate_limit_reset, retry_after, x_rate_limit_reset};

/// The settings a response future needs: all `Copy`, so nothing is allocated per request.
#[derive(Clone, Copy, Debug)]
pub(super) struct Settings {
    pub(super) max_delay: Duration,
    pub(super) rate_limit_header: bool,
    pub(super) x_rate_limit_reset: Option<ResetHeader>,
    pub(super) wall_clock: fn() -> SystemTime,
}

impl Settings {
    /// The pause a response asks for, capped; `None` for no pause.
    pub(super) fn delay_for(
        &self,
        status: StatusCode,
        headers: &http::HeaderMap,
    ) -> Option<Duration> {
        let throttled =
            status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE;
        if !throttled && !self.rate_limit_header && self.x_rate_limit_reset.is_none() {
            return None;
        }
        let now = (self.wall_clock)();
        let mut delay = None;
        if throttled {
            delay = retry_after(headers, now);
        }
        if delay.is_none() && self.rate_limit_header {
            delay = rate_limit_reset(headers);
        }
        if delay.is_none() {
            if let Some(mode) = self.x_rate_limit_reset {
                delay = if throttled {
                    // The status already says the quota is used up.
                    parse::x_rate_limit_reset_value(headers, mode, now)
                } else {
                    x_rate_limit_reset(headers, mode, now)
                };
            }
        }
        delay
            .filter(|d| !d.is_zero())
            .map(|d| d.min(self.max_delay))
    }
}
