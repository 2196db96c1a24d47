//! JWT-shaped tokens.

use rand::Rng;
use serde_json::json;

use super::base64::base64url;
use super::clock::unix_now;
use super::ids::new_id;

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
