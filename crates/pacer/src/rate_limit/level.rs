//! The rate limiter's refusal vocabulary: which bucket refused ([`Level`]) and the refusal
//! itself ([`RateLimited`]). A leaf: the stores, the layer and the events name these without
//! depending on the limiter.

use std::fmt;
use std::time::Duration;

use crate::namespace::Namespace;

/// Which bucket refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// The bucket shared by all namespaces.
    Global,
    /// The bucket of the request's namespace.
    Namespace,
    /// Not a bucket: the shared store could not decide, and the failure policy is
    /// [`StoreFailure::FailClosed`](super::StoreFailure::FailClosed). Nothing was consumed.
    Store,
}

impl Level {
    /// `"global"`, `"namespace"` or `"store"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::Namespace => "namespace",
            Self::Store => "store",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request was refused by the rate limiter; nothing was consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimited {
    /// The namespace the request was made for.
    pub namespace: Namespace,
    /// The bucket that refused it.
    pub level: Level,
    /// How long until that bucket would have had a slot.
    pub retry_after: Duration,
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rate limited by the {} bucket for namespace {:?}: next slot in {:?}",
            self.level, self.namespace, self.retry_after
        )
    }
}

impl std::error::Error for RateLimited {}
