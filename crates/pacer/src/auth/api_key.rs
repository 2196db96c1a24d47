//! API-key authentication: no token source, one sensitive header on every request.

use http::HeaderValue;
use http::header::{HeaderName, InvalidHeaderValue};
use secrecy::{ExposeSecret, SecretString};
use tower_http::set_header::SetRequestHeaderLayer;

/// The layer [`api_key_layer`] builds: tower-http's `SetRequestHeaderLayer`, overriding the
/// header on every request with a value marked sensitive. Its `Debug` names the header,
/// never the value.
pub type ApiKeyLayer = SetRequestHeaderLayer<HeaderValue>;

/// Sets `header: key` on every request (replacing any value the request had), e.g.
/// Infrahub's `X-INFRAHUB-KEY`. The value is marked sensitive: hyper keeps it out of HTTP/2
/// header compression tables and `Debug` prints `Sensitive`.
///
/// Fails when `key` cannot be a header value (control characters); the error says nothing of
/// the key.
pub fn api_key_layer(
    header: HeaderName,
    key: &SecretString,
) -> Result<ApiKeyLayer, InvalidHeaderValue> {
    let mut value = HeaderValue::from_str(key.expose_secret())?;
    value.set_sensitive(true);
    Ok(SetRequestHeaderLayer::overriding(header, value))
}
