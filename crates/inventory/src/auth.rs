//! Infrahub's login as a [`TokenSource`] for pacer's [`BearerAuthLayer`](pacer::auth::BearerAuthLayer):
//! `POST /api/auth/login` with username and password, `POST /api/auth/refresh` with the
//! refresh token as bearer.

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Request};
use pacer::auth::{
    AuthError, ExposeSecret, Grant, InvalidAnswer, Refusal, SecretString, TokenResponse,
    TokenSource,
};
use serde_json::{Value, json};

use crate::response::error_message;

/// The rate-limit namespace token requests go out under: never a tenant's, so that no
/// tenant's empty bucket delays another's login.
pub const TOKEN_NAMESPACE: &str = "infrahub-auth";

/// Username and password for `/api/auth/login`; renewal by `/api/auth/refresh`.
pub(crate) struct InfrahubLogin {
    pub(crate) address: String,
    pub(crate) username: String,
    pub(crate) password: SecretString,
}

impl TokenSource for InfrahubLogin {
    fn token_request(&self, grant: &Grant<'_>) -> Result<Request<Bytes>, AuthError> {
        let request = match grant {
            Grant::Refresh(refresh) => {
                let mut bearer =
                    HeaderValue::try_from(format!("Bearer {}", refresh.expose_secret())).map_err(
                        |_| AuthError::request("the refresh token cannot be a header value"),
                    )?;
                bearer.set_sensitive(true);
                Request::post(format!("{}/api/auth/refresh", self.address))
                    .header(ACCEPT, "application/json")
                    .header(AUTHORIZATION, bearer)
                    .body(Bytes::new())
            }
            _ => {
                let body = json!({
                    "username": self.username,
                    "password": self.password.expose_secret(),
                });
                Request::post(format!("{}/api/auth/login", self.address))
                    .header(ACCEPT, "application/json")
                    .header(CONTENT_TYPE, "application/json")
                    .body(Bytes::from(body.to_string()))
            }
        };
        request.map_err(|_| AuthError::request("the Infrahub address is not a valid URI"))
    }

    fn parse_token(&self, _: &Grant<'_>, body: &[u8]) -> Result<TokenResponse, AuthError> {
        parse_token_answer(body)
    }

    fn refusal(&self, _: &Grant<'_>, body: &[u8]) -> Refusal {
        Refusal::new(None, error_message(body).as_deref())
    }
}

/// Reads Infrahub's token answer: an object with a string `access_token`, optionally a
/// string `refresh_token` and a lifetime `expires_in` in seconds. A lifetime that is not a
/// positive, finite number (negative, a string, `1e999`) is taken as not said: the token is
/// used until a request with it is refused. A lifetime of any size is safe (pacer caps it).
pub fn parse_token_answer(body: &[u8]) -> Result<TokenResponse, AuthError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| AuthError::InvalidAnswer(InvalidAnswer::from_json_error(&e)))?;
    let Some(access) = value.get("access_token").and_then(Value::as_str) else {
        return Err(AuthError::InvalidAnswer(InvalidAnswer::from_json_error(
            &<serde_json::Error as serde::de::Error>::missing_field("access_token"),
        )));
    };
    let mut answer = TokenResponse::new(SecretString::from(access));
    if let Some(lifetime) = value.get("expires_in").and_then(lifetime) {
        answer = answer.expires_in(lifetime);
    }
    if let Some(refresh) = value
        .get("refresh_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        let refresh_lifetime = value.get("refresh_expires_in").and_then(lifetime);
        answer = answer.refresh_token(SecretString::from(refresh), refresh_lifetime);
    }
    Ok(answer)
}

fn lifetime(value: &Value) -> Option<std::time::Duration> {
    let secs = value.as_f64().filter(|s| s.is_finite() && *s > 0.0)?;
    // Anything past a day is a day (pacer caps lifetimes there anyway).
    std::time::Duration::try_from_secs_f64(secs.min(86_400.0)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_of_any_shape_are_read_without_panic() {
        for (body, expected) in [
            (r#"{"access_token":"a","expires_in":60}"#, Some(60.0)),
            (r#"{"access_token":"a","expires_in":-5}"#, None),
            (r#"{"access_token":"a","expires_in":"soon"}"#, None),
            (r#"{"access_token":"a","expires_in":1e300}"#, Some(86_400.0)),
            (
                r#"{"access_token":"a","expires_in":18446744073709551615}"#,
                Some(86_400.0),
            ),
            (r#"{"access_token":"a"}"#, None),
        ] {
            let answer = parse_token_answer(body.as_bytes()).map_err(|e| e.to_string());
            let lifetime = answer.map(|a| a.expires_in.map(|d| d.as_secs_f64()));
            assert_eq!(lifetime, Ok(expected), "{body}");
        }
        for body in [
            "",
            "[]",
            "\"x\"",
            r#"{"access_token":5}"#,
            r#"{"token":"a"}"#,
        ] {
            assert!(parse_token_answer(body.as_bytes()).is_err(), "{body}");
        }
    }
}
