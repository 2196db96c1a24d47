//! [`BuildError`]: why [`RateLimiterBuilder::build`](super::RateLimiterBuilder::build)
//! refused its settings.

use std::fmt;

use super::quota::QuotaError;
use crate::namespace::Namespace;

/// Why [`RateLimiterBuilder::build`](super::RateLimiterBuilder::build) refused the settings.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BuildError {
    /// The global quota is invalid.
    GlobalQuota(QuotaError),
    /// The default per-namespace quota is invalid.
    NamespaceQuota(QuotaError),
    /// The override for this namespace is invalid.
    OverrideQuota(Namespace, QuotaError),
    /// The initial fill is not in `0.0..=1.0`.
    InitialFill(f64),
    /// `max_namespaces` is zero.
    MaxNamespaces,
    /// The share of [`StoreFailure::Local`](super::StoreFailure::Local) is not in `(0, 1]`, or makes a quota too small.
    StoreFailureShare(f64),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GlobalQuota(e) => write!(f, "global quota: {e}"),
            Self::NamespaceQuota(e) => write!(f, "per-namespace quota: {e}"),
            Self::OverrideQuota(ns, e) => write!(f, "quota override for namespace {ns:?}: {e}"),
            Self::InitialFill(fill) => write!(f, "initial fill {fill} is not within 0..=1"),
            Self::MaxNamespaces => f.write_str("max_namespaces must be at least 1"),
            Self::StoreFailureShare(share) => write!(
                f,
                "local fallback share {share} is not within (0, 1] or makes a quota invalid"
            ),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::GlobalQuota(e) | Self::NamespaceQuota(e) | Self::OverrideQuota(_, e) => Some(e),
            _ => None,
        }
    }
}
