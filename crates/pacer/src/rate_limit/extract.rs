//! [`ExtractNamespace`]: how the rate-limit layer finds the namespace a request is made for.

use http::Request;
use http::header::HeaderName;

use crate::namespace::Namespace;

/// Finds the namespace a request is made for.
///
/// Implemented for [`FromExtension`] (the default: the [`Namespace`] extension), [`FromHeader`]
/// (servers keying on a tenant header) and any `Fn(&Request<B>) -> Namespace` closure (for
/// example a path segment).
pub trait ExtractNamespace<B> {
    /// The namespace of `request`.
    fn extract(&self, request: &Request<B>) -> Namespace;
}

/// Reads the [`Namespace`] request extension; requests without one use the default namespace.
#[derive(Debug, Clone, Copy, Default)]
pub struct FromExtension;

impl<B> ExtractNamespace<B> for FromExtension {
    #[inline]
    fn extract(&self, request: &Request<B>) -> Namespace {
        Namespace::of(request)
    }
}

/// Reads the namespace from a request header, as a server keying on a tenant header does.
///
/// Header values are untrusted: a missing value, or one that is not 1 to
/// [`Namespace::MAX_UNTRUSTED_LEN`] bytes of visible ASCII, is accounted to the default
/// namespace, so malformed names cannot escape the limit.
#[derive(Debug, Clone)]
pub struct FromHeader(HeaderName);

impl FromHeader {
    /// Keys requests on the value of `header`.
    pub fn new(header: HeaderName) -> Self {
        Self(header)
    }
}

impl<B> ExtractNamespace<B> for FromHeader {
    fn extract(&self, request: &Request<B>) -> Namespace {
        request
            .headers()
            .get(&self.0)
            .and_then(|value| Namespace::from_untrusted(value.as_bytes()))
            .unwrap_or_default()
    }
}

impl<B, F> ExtractNamespace<B> for F
where
    F: Fn(&Request<B>) -> Namespace,
{
    fn extract(&self, request: &Request<B>) -> Namespace {
        self(request)
    }
}
