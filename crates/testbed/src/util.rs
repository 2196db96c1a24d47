//! Small helpers shared by both fakes: JSON responses, ids, tokens, query strings.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::response::Response;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, StatusCode};
use rand::Rng;
use serde_json::{Value, json};
use tokio::time::Instant;

/// A JSON response with `status`.
pub(crate) fn json(status: StatusCode, value: &Value) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An empty response with `status`.
pub(crate) fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// A random UUID (version 4 layout), the id format both Keycloak and Infrahub use.
pub(crate) fn new_id() -> String {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The instant `lifetime` from now, saturating at about 30 years (a lifetime given as
/// "forever" must not overflow the clock).
pub(crate) fn deadline(lifetime: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(lifetime)
        .or_else(|| now.checked_add(Duration::from_secs(30 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url, as JWTs use.
pub(crate) fn base64url(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = ((n >> (18 - 6 * i)) & 0x3f) as usize;
            out.push(char::from(BASE64URL[index]));
        }
    }
    out
}

/// Decodes standard or url-safe base64 (padding optional); `None` if malformed.
pub(crate) fn base64_decode(input: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in input.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A JWT-shaped token (`header.claims.signature`) whose claims carry `exp`, `iat`, `jti`,
/// `typ` and `sub`, so clients that peek at the expiry can; the signature is random bytes
/// (nothing verifies it but this testbed, which looks tokens up by value).
pub(crate) fn jwt(typ: &str, subject: &str, issuer: &str, lifetime_secs: u64) -> String {
    let now = unix_now();
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let claims = json!({
        "exp": now.saturating_add(lifetime_secs),
        "iat": now,
        "jti": new_id(),
        "iss": issuer,
        "sub": subject,
        "typ": typ,
    });
    let signature: [u8; 32] = rand::rng().random();
    format!(
        "{}.{}.{}",
        base64url(header.to_string().as_bytes()),
        base64url(claims.to_string().as_bytes()),
        base64url(&signature)
    )
}

/// A random opaque secret.
pub(crate) fn random_secret() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    base64url(&bytes)
}

/// Parses a query string or a form body; later duplicates win.
pub(crate) fn parse_pairs(input: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(input).into_owned().collect()
}

/// The `Bearer` token of a request, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The `Basic` credentials of a request, if any and well formed.
pub(crate) fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    let user = form_urlencoded::parse(format!("u={user}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    let password = form_urlencoded::parse(format!("p={password}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    Some((user, password))
}

/// The base URL a client used to reach us (from `Host`), for `Location` headers.
pub(crate) fn base_url(headers: &HeaderMap, fallback: &str) -> String {
    match headers.get(HOST).and_then(|h| h.to_str().ok()) {
        Some(host) if !host.is_empty() && host.bytes().all(|b| b.is_ascii_graphic()) => {
            format!("http://{host}")
        }
        _ => fallback.to_owned(),
    }
}

/// A `Location` header value; falls back to the path alone if the URL is not a valid header.
pub(crate) fn location(url: String) -> HeaderValue {
    HeaderValue::try_from(url).unwrap_or_else(|_| HeaderValue::from_static("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for input in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            let encoded = base64url(input);
            assert_eq!(base64_decode(&encoded).as_deref(), Some(input));
        }
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_decode("Zm9vYg=="), Some(b"foob".to_vec()));
        assert_eq!(base64_decode("!!"), None);
    }

    #[test]
    fn ids_look_like_uuids() {
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
    }
}
