//! The small pieces: token answers, refusals, error classification, the API-key header.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use http::{HeaderName, StatusCode};
use secrecy::{ExposeSecret, SecretString};

use super::*;

const SECRET: &str = "s3cr3t-t0ken";

#[test]
fn token_answers_of_every_lifetime_parse_without_overflow() {
    let answer = TokenResponse::from_json(
        br#"{"access_token":"a","expires_in":300,"refresh_token":"r","refresh_expires_in":1800,"token_type":"Bearer"}"#,
    )
    .unwrap();
    assert_eq!(answer.access_token.expose_secret(), "a");
    assert_eq!(answer.expires_in, Some(Duration::from_secs(300)));
    assert_eq!(answer.refresh_token.unwrap().expose_secret(), "r");
    assert_eq!(answer.refresh_expires_in, Some(Duration::from_secs(1800)));

    let max = format!(
        r#"{{"access_token":"a","expires_in":{m},"refresh_token":"r","refresh_expires_in":{m}}}"#,
        m = u64::MAX
    );
    let answer = TokenResponse::from_json(max.as_bytes()).unwrap();
    assert_eq!(answer.expires_in, Some(Duration::from_secs(u64::MAX)));
    assert_eq!(
        answer.refresh_expires_in,
        Some(Duration::from_secs(u64::MAX))
    );

    // 0 and absent both mean "not said"; an empty refresh token is none.
    for body in [
        &br#"{"access_token":"a","expires_in":0,"refresh_expires_in":0}"#[..],
        br#"{"access_token":"a"}"#,
        br#"{"access_token":"a","expires_in":null,"refresh_token":""}"#,
    ] {
        let answer = TokenResponse::from_json(body).unwrap();
        assert_eq!(answer.expires_in, None);
        assert!(answer.refresh_token.is_none());
        assert_eq!(answer.refresh_expires_in, None);
    }
}

#[test]
fn wrong_shapes_are_typed_errors_that_do_not_quote_the_answer() {
    type Expected = fn(&InvalidAnswer) -> bool;
    let cases: [(&[u8], Expected); 8] = [
        (b"", |e| matches!(e, InvalidAnswer::NotJson { .. })),
        (b"<html>s3cr3t-t0ken</html>", |e| {
            matches!(e, InvalidAnswer::NotJson { .. })
        }),
        (br#"{"access_token":"s3cr3t-t0ken""#, |e| {
            matches!(e, InvalidAnswer::NotJson { .. })
        }),
        (b"[]", |e| matches!(e, InvalidAnswer::WrongShape { .. })),
        (br#"{"token":"s3cr3t-t0ken"}"#, |e| {
            matches!(e, InvalidAnswer::WrongShape { .. })
        }),
        (br#"{"access_token":1234}"#, |e| {
            matches!(e, InvalidAnswer::WrongShape { .. })
        }),
        (
            br#"{"access_token":"a","expires_in":"s3cr3t-t0ken"}"#,
            |e| matches!(e, InvalidAnswer::WrongShape { .. }),
        ),
        (br#"{"access_token":"a","expires_in":-1}"#, |e| {
            matches!(e, InvalidAnswer::WrongShape { .. })
        }),
    ];
    for (body, expected) in cases {
        let error = TokenResponse::from_json(body).unwrap_err();
        let AuthError::InvalidAnswer(what) = &error else {
            panic!("{error:?}");
        };
        assert!(
            expected(what),
            "{:?}: {what:?}",
            String::from_utf8_lossy(body)
        );
        for shown in [error.to_string(), format!("{error:?}")] {
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(!shown.contains("1234"), "{shown}");
        }
        assert!(!error.is_refused());
    }
}

#[test]
fn refusals_are_read_from_oauth_json_and_cleaned() {
    let refusal = Refusal::from_oauth_json(
        br#"{"error":"invalid_grant","error_description":"Invalid user credentials"}"#,
    );
    assert_eq!(refusal.error(), Some("invalid_grant"));
    assert_eq!(refusal.description(), Some("Invalid user credentials"));
    assert_eq!(Refusal::from_oauth_json(b"not json"), Refusal::default());
    assert_eq!(
        Refusal::from_oauth_json(br#"{"error":7}"#),
        Refusal::default()
    );

    // Control characters cannot forge log lines; long texts are cut.
    let long = "x".repeat(10_000);
    let refusal = Refusal::new(Some("bad\r\nlevel=error fake"), Some(&long));
    assert_eq!(refusal.error(), Some("bad\u{fffd}\u{fffd}level=error fake"));
    assert_eq!(
        refusal.description().unwrap().chars().count(),
        MAX_REFUSAL_TEXT
    );
}

#[test]
fn statuses_are_told_apart() {
    let refused = AuthError::from_status(StatusCode::BAD_REQUEST, || {
        Refusal::new(Some("invalid_client"), None)
    });
    assert!(refused.is_refused());
    assert_eq!(refused.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(refused.refusal().unwrap().error(), Some("invalid_client"));
    assert_eq!(
        refused.to_string(),
        "the token endpoint refused the request (400 Bad Request): invalid_client"
    );
    for status in [401, 403, 404] {
        let status = StatusCode::from_u16(status).unwrap();
        assert!(AuthError::from_status(status, Refusal::default).is_refused());
    }
    for status in [408, 429, 500, 503, 302] {
        let status = StatusCode::from_u16(status).unwrap();
        let error = AuthError::from_status(status, || unreachable!("not read for {status}"));
        assert!(!error.is_refused(), "{status}");
        assert_eq!(error.status(), Some(status));
        assert!(error.refusal().is_none());
    }
    let timed_out = AuthError::TimedOut {
        after: Duration::from_secs(30),
    };
    assert!(!timed_out.is_refused());
    assert_eq!(timed_out.status(), None);
    // The transport cause stays reachable, and the error is cheap to share.
    let unreachable = AuthError::unreachable(std::io::Error::other("connection refused"));
    let shared = unreachable.clone();
    assert!(std::error::Error::source(&shared).is_some());
    assert!(shared.to_string().contains("connection refused"));
}

#[test]
fn the_api_key_header_is_sensitive_and_absent_from_debug() {
    use tower::{Layer, ServiceExt};

    let key = SecretString::from(SECRET);
    let layer = api_key_layer(HeaderName::from_static("x-infrahub-key"), &key).unwrap();
    assert!(!format!("{layer:?}").contains(SECRET));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let recorder = {
        let seen = std::sync::Arc::clone(&seen);
        tower::service_fn(move |request: http::Request<()>| {
            let value = request.headers().get("x-infrahub-key").cloned();
            *seen.lock().unwrap() = value;
            async { Ok::<_, std::convert::Infallible>(http::Response::new(())) }
        })
    };
    let service = layer.layer(recorder);
    assert!(!format!("{service:?}").contains(SECRET));
    let mut request = http::Request::new(());
    request
        .headers_mut()
        .insert("x-infrahub-key", http::HeaderValue::from_static("caller's"));
    tokio_test::block_on(service.oneshot(request)).unwrap();
    let value = seen.lock().unwrap().clone().unwrap();
    assert_eq!(value, SECRET, "overrides what the request had");
    assert!(value.is_sensitive());
    assert!(!format!("{value:?}").contains(SECRET));

    let error = api_key_layer(
        HeaderName::from_static("x-infrahub-key"),
        &SecretString::from("bad\nkey"),
    )
    .unwrap_err();
    assert!(!format!("{error:?} {error}").contains("bad"));
}

#[test]
fn secrets_are_redacted_in_debug() {
    let grant_secret = SecretString::from(SECRET);
    let grant = Grant::Refresh(&grant_secret);
    assert!(!format!("{grant:?}").contains(SECRET));
    let answer = TokenResponse::new(SecretString::from(SECRET))
        .expires_in(Duration::from_secs(1))
        .refresh_token(SecretString::from(SECRET), None);
    assert!(!format!("{answer:?}").contains(SECRET));
}

/// A request body that cannot be copied, so a request with it cannot be replayed.
struct OneShot;

impl From<bytes::Bytes> for OneShot {
    fn from(_: bytes::Bytes) -> Self {
        OneShot
    }
}

impl crate::body::TryCloneBody for OneShot {
    fn try_clone_body(&self) -> Option<Self> {
        None
    }
}

struct Plain;

impl TokenSource for Plain {
    fn token_request(&self, _: &Grant<'_>) -> Result<http::Request<bytes::Bytes>, AuthError> {
        Ok(http::Request::post("http://auth.test/token")
            .body(bytes::Bytes::new())
            .unwrap())
    }
}

#[tokio::test(start_paused = true)]
async fn a_401_to_a_request_that_cannot_be_replayed_is_returned_and_the_token_dropped() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::{Layer, ServiceExt};

    let tokens = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let upstream = {
        let (tokens, calls) = (Arc::clone(&tokens), Arc::clone(&calls));
        tower::service_fn(move |request: http::Request<OneShot>| {
            let token = request.uri().path() == "/token";
            let n = if token { &tokens } else { &calls }.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut response = http::Response::new(http_body_util::Full::new(
                    bytes::Bytes::from(format!(r#"{{"access_token":"t-{n}"}}"#)),
                ));
                if !token {
                    *response.status_mut() = StatusCode::UNAUTHORIZED;
                }
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    let service = BearerAuthLayer::new(Plain).layer(upstream);
    let request = || {
        http::Request::get("http://api.test/")
            .body(OneShot)
            .unwrap()
    };
    let response = service.clone().oneshot(request()).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "returned as it is"
    );
    assert_eq!(
        (tokens.load(Ordering::SeqCst), calls.load(Ordering::SeqCst)),
        (1, 1),
        "no replay"
    );
    // The refused token is not used again: the next call gets a new one.
    service.clone().oneshot(request()).await.unwrap();
    assert_eq!(
        (tokens.load(Ordering::SeqCst), calls.load(Ordering::SeqCst)),
        (2, 2)
    );
}
