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
use std::cmp::Ordering;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};

/// The name of the tenant a request is made for; cheap to clone (a shared `Arc<str>` and its
/// key).
///
/// Carried as an [`http::Request`] extension. Equality, order and hashing are by name.
///
/// A namespace also carries its **key**: a 64-bit SipHash of its name under a random key
/// drawn once per process, computed once when the namespace is made. The rate limiter's
/// in-memory table is keyed by it alone (see the [`rate_limit`](crate::rate_limit) module's
/// *Memory* section), so a decision hashes nothing and compares no string.
#[derive(Clone)]
pub struct Namespace {
    name: Arc<str>,
    key: u64,
}

/// The process's random SipHash keys for [`Namespace::key`].
fn keyed_hasher() -> &'static RandomState {
    static HASHER: OnceLock<RandomState> = OnceLock::new();
    HASHER.get_or_init(RandomState::new)
}

impl PartialEq for Namespace {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        // Different keys: different names, without reading them. Same allocation: same name
        // (std only short-cuts `Arc` equality by pointer for sized types).
        self.key == other.key && (Arc::ptr_eq(&self.name, &other.name) || *self.name == *other.name)
    }
}

impl Eq for Namespace {}

impl PartialOrd for Namespace {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Namespace {
    fn cmp(&self, other: &Self) -> Ordering {
        self.name.cmp(&other.name)
    }
}

impl Hash for Namespace {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        // By name, exactly as `str` hashes: `Borrow<str>` look-ups depend on it.
        self.name.as_ref().hash(state);
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
        let name = name.into();
        let key = keyed_hasher().hash_one(&*name);
        Self { name, key }
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
        &self.name
    }

    /// The namespace's key: a keyed 64-bit hash of its name (random SipHash keys per
    /// process), computed when it was made. Two namespaces with one name have one key; two
    /// different names share one with a chance of 2^-64, and without the process's keys
    /// nobody can make them share one on purpose.
    #[inline]
    pub(crate) fn key(&self) -> u64 {
        self.key
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
        fmt::Debug::fmt(&*self.name, f)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Borrow<str> for Namespace {
    fn borrow(&self) -> &str {
        &self.name
    }
}

impl AsRef<str> for Namespace {
    fn as_ref(&self) -> &str {
        &self.name
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
        Self::new(name)
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
        assert!(Arc::ptr_eq(&a.name, &b.name));
        assert_eq!(a.as_str(), "default");
    }

    #[test]
    fn keys_follow_names() {
        let a = Namespace::new("team-a");
        assert_eq!(a.key(), Namespace::from(String::from("team-a")).key());
        assert_eq!(a.key(), Namespace::from(Arc::<str>::from("team-a")).key());
        assert_ne!(a.key(), Namespace::new("team-b").key());
        assert_eq!(a, Namespace::new("team-a"));
        assert_ne!(a, Namespace::new("team-b"));
        // A thousand names, a thousand keys: a collision here would be a broken hasher.
        let keys: std::collections::HashSet<u64> = (0..1000)
            .map(|i| Namespace::new(format!("t{i}")).key())
            .collect();
        assert_eq!(keys.len(), 1000);
    }
}
