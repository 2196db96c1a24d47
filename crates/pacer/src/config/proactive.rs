//! [`Proactive`]: whether the `Retry-After` layer pauses an upstream *before* a `429`, from the
//! quota fields of ordinary responses. A leaf, so that the schema and the value parsers can
//! both name it.

use serde::{Deserialize, Serialize};

use crate::retry_after::{ResetHeader, RetryAfterLayer};

/// Proactive pacing (`retry_after.proactive`): which response fields, besides `Retry-After`
/// on a `429`/`503`, pause the upstream as soon as they say the quota is used up.
///
/// `X-RateLimit-Reset` means seconds from now on some servers and a Unix time on others, so
/// it is never guessed: say which.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Proactive {
    /// Only `Retry-After` on `429`/`503` pauses (the default).
    #[default]
    #[serde(rename = "off")]
    Off,
    /// Also the IETF `RateLimit` field: `RateLimit: "default";r=0;t=30` pauses 30 s.
    #[serde(rename = "ratelimit")]
    RateLimit,
    /// Also `X-RateLimit-Reset` as seconds from now, when `X-RateLimit-Remaining` is 0.
    #[serde(rename = "x-ratelimit-reset-delta")]
    XRateLimitResetDelta,
    /// Also `X-RateLimit-Reset` as a Unix time in seconds, when `X-RateLimit-Remaining` is 0.
    #[serde(rename = "x-ratelimit-reset-epoch")]
    XRateLimitResetEpoch,
}

impl Proactive {
    /// The name files and variables use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::RateLimit => "ratelimit",
            Self::XRateLimitResetDelta => "x-ratelimit-reset-delta",
            Self::XRateLimitResetEpoch => "x-ratelimit-reset-epoch",
        }
    }

    /// `layer` with this pacing turned on.
    pub(crate) fn apply(self, layer: RetryAfterLayer) -> RetryAfterLayer {
        match self {
            Self::Off => layer,
            Self::RateLimit => layer.rate_limit_header(true),
            Self::XRateLimitResetDelta => layer.x_rate_limit_reset(ResetHeader::DeltaSeconds),
            Self::XRateLimitResetEpoch => layer.x_rate_limit_reset(ResetHeader::EpochSeconds),
        }
    }
}
