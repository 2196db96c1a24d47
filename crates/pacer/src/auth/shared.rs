//! What every clone of a layer, its services and its token flights share: the source, the
//! settings and the cache, with the defaults of the settings. Below both the layer and the
//! flight, which each use it.

use std::fmt;
use std::time::Duration;

use super::cache::{Cache, Timing};
use super::source::TokenSource;
use crate::namespace::Namespace;

/// The namespace token requests are made for unless
/// [`BearerAuthBuilder::namespace`](super::BearerAuthBuilder::namespace) says
/// otherwise.
pub const DEFAULT_TOKEN_NAMESPACE: &str = "auth";
/// How long before expiry a token is renewed by default: 30 s (at most half its lifetime).
pub const DEFAULT_RENEW_MARGIN: Duration = Duration::from_secs(30);
/// The default bound of one token request, every exchange and body of it: 30 s.
pub const DEFAULT_TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// The default cap on a token answer's body: 64 KiB.
pub const DEFAULT_MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;
/// How long after a failed early renewal the next one may start, by default: 1 s.
pub const DEFAULT_RENEW_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Settings of a layer.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) namespace: Namespace,
    pub(crate) token_timeout: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) timing: Timing,
}

/// What every clone of a layer and its services share: the source, the settings, the cache.
pub(crate) struct Shared {
    pub(crate) source: Box<dyn TokenSource>,
    pub(crate) source_type: &'static str,
    pub(crate) settings: Settings,
    pub(crate) cache: Cache,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The source's type, never its fields (they hold the credentials).
        f.debug_struct("BearerAuthLayer")
            .field("source", &self.source_type)
            .field("namespace", &self.settings.namespace)
            .field("renew_margin", &self.settings.timing.margin)
            .field("token_timeout", &self.settings.token_timeout)
            .finish_non_exhaustive()
    }
}
