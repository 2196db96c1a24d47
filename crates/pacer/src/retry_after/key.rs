//! Which upstream a request goes to: the [`PauseKey`] its pauses are shared under, and the
//! [`Upstream`] its events name.

use std::fmt;
use std::sync::Arc;

use http::uri::Authority;
use http::{Extensions, Uri};

use super::gate::PauseKey;

pub(super) type CustomKeyFn = dyn Fn(&Uri, &Extensions) -> PauseKey + Send + Sync;

/// How a request is mapped to its [`PauseKey`].
#[derive(Clone)]
pub(super) enum KeyFn {
    Authority,
    Custom(Arc<CustomKeyFn>),
}

impl KeyFn {
    #[inline]
    pub(super) fn key(&self, uri: &Uri, extensions: &Extensions) -> PauseKey {
        match self {
            KeyFn::Authority => authority_key(uri),
            KeyFn::Custom(f) => f(uri, extensions),
        }
    }
}

impl fmt::Debug for KeyFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFn::Authority => f.write_str("Authority"),
            KeyFn::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// The default key: the URI's authority (empty for relative URIs).
fn authority_key(uri: &Uri) -> PauseKey {
    PauseKey::authority(uri.authority().map_or("", |a| a.as_str()))
}

/// The upstream a request went to, kept for naming it in events: the URI's scheme (when it is
/// `http` or `https`) and authority. Cloning an authority only bumps a reference count.
#[derive(Clone, Debug)]
pub(super) struct Upstream {
    pub(super) scheme: Option<&'static str>,
    pub(super) authority: Option<Authority>,
}

impl Upstream {
    pub(super) fn of(uri: &Uri) -> Self {
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => Some("https"),
            Some(s) if s.eq_ignore_ascii_case("http") => Some("http"),
            _ => None,
        };
        Self {
            scheme,
            authority: uri.authority().cloned(),
        }
    }

    /// `scheme://host:port`: never the user info an authority may carry (it can hold a
    /// password), empty for a relative URI.
    pub(super) fn label(&self) -> String {
        let Some(authority) = &self.authority else {
            return String::new();
        };
        let mut label = String::new();
        if let Some(scheme) = self.scheme {
            label.push_str(scheme);
            label.push_str("://");
        }
        label.push_str(authority.host());
        if let Some(port) = authority.port() {
            label.push(':');
            label.push_str(port.as_str());
        }
        label
    }
}
