//! [`Namespace`]: the tenant a request is made for.
//!
//! A client marks each request with the namespace (tenant, Kubernetes namespace, pipeline) it
//! works for by inserting a [`Namespace`] into the request's extensions; the rate limiter keeps
//! one bucket per namespace so that no tenant can monopolise the upstream API.
//!
//! ```
//! use pacer::Namespace;
//!
//! let mut request = http::Request::new(());
//! request.extensions_mut().insert(Namespace::new("team-a"));
//! assert_eq!(Namespace::of(&request).as_str(), "team-a");
//!
//! // A request without one is accounted to the default namespace.
//! assert_eq!(Namespace::of(&http::Request::new(())), Namespace::default());
//! ```

use std::borrow::Borrow;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// The name of the tenant a request is made for; cheap to clone (a shared `Arc<str>`).
///
/// Carried as an [`http::Request`] extension. Equality and hashing are by name.
#[derive(Clone, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(Arc<str>);

impl PartialEq for Namespace {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        // The limiter compares a request's namespace with the clone it stored: usually the same
        // allocation. std only short-cuts `Arc` equality by pointer for sized types.
        Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
    }
}

impl Namespace {
    /// The longest name [`Namespace::from_untrusted`] accepts, in bytes (the DNS name limit,
    /// which also covers Kubernetes namespace names).
    pub const MAX_UNTRUSTED_LEN: usize = 253;

    /// The name used for requests that carry no namespace.
    pub const DEFAULT_NAME: &'static str = "default";

    /// A namespace with the given name. Names are trusted here; use
    /// [`Namespace::from_untrusted`] for names taken from requests a server receives.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    /// A namespace from bytes an untrusted peer sent (a header, a path segment): `None` unless
    /// they are 1 to [`Self::MAX_UNTRUSTED_LEN`] bytes of visible ASCII, so hostile input
    /// can neither smuggle control characters into logs nor make each key arbitrarily large.
    pub fn from_untrusted(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty()
            || bytes.len() > Self::MAX_UNTRUSTED_LEN
            || !bytes.iter().all(|b| b.is_ascii_graphic())
        {
            return None;
        }
        // Visible ASCII is valid UTF-8.
        std::str::from_utf8(bytes).ok().map(Self::new)
    }

    /// The namespace of `request`: its [`Namespace`] extension, or the default namespace.
    pub fn of<B>(request: &http::Request<B>) -> Self {
        request
            .extensions()
            .get::<Self>()
            .cloned()
            .unwrap_or_default()
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Namespace {
    /// The namespace named [`Namespace::DEFAULT_NAME`]; shared, so this does not allocate.
    fn default() -> Self {
        static DEFAULT: OnceLock<Namespace> = OnceLock::new();
        DEFAULT
            .get_or_init(|| Namespace::new(Namespace::DEFAULT_NAME))
            .clone()
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Borrow<str> for Namespace {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Namespace {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Namespace {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

impl From<String> for Namespace {
    fn from(name: String) -> Self {
        Self::new(name)
    }
}

impl From<Arc<str>> for Namespace {
    fn from(name: Arc<str>) -> Self {
        Self(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_names_are_bounded_and_visible_ascii() {
        assert_eq!(
            Namespace::from_untrusted(b"team-a")
                .as_ref()
                .map(Namespace::as_str),
            Some("team-a")
        );
        assert!(Namespace::from_untrusted(b"").is_none());
        assert!(Namespace::from_untrusted(b"a b").is_none());
        assert!(Namespace::from_untrusted(b"a\nb").is_none());
        assert!(Namespace::from_untrusted("é".as_bytes()).is_none());
        assert!(Namespace::from_untrusted(&[b'a'; Namespace::MAX_UNTRUSTED_LEN]).is_some());
        assert!(Namespace::from_untrusted(&[b'a'; Namespace::MAX_UNTRUSTED_LEN + 1]).is_none());
    }

    #[test]
    fn default_is_shared_and_named_default() {
        let a = Namespace::default();
        let b = Namespace::default();
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(a.as_str(), "default");
    }
}
