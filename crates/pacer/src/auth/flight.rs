//! The one token request: a spawned task that asks the [`TokenSource`] for a request, sends
//! it through the inner service under the token namespace, reads the capped answer, and
//! hands the outcome to the cache, bounded by `token_timeout`.
//!
//! It is spawned rather than driven by the caller that started it, so that caller may be
//! dropped (or time out) without cancelling the renewal the others wait for.

use std::sync::Arc;

use bytes::Bytes;
use http::header::HeaderValue;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use secrecy::ExposeSecret;
use tokio::time::Instant;
use tower_service::Service;

use super::cache::{FlightStart, Fresh, RefreshUpdate};
use super::error::{AuthError, InvalidAnswer};
use super::shared::Shared;
use super::source::{Grant, TokenResponse};
use crate::BoxError;
use crate::retry::classify::Idempotent;

/// Starts the token request `start` allows on the current tokio runtime, with `service`.
/// Without a runtime the flight is dropped at once, and its waiters get
/// [`AuthError::Aborted`].
pub(crate) fn spawn<S, ReqBody, ResBody>(shared: Arc<Shared>, service: S, start: FlightStart)
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    ReqBody: From<Bytes> + Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    // The guard is made before the task, so even a task that never runs finishes the flight.
    let guard = Guard {
        shared,
        start: Some(start),
    };
    let flight = run(guard, service);
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        drop(handle.spawn(flight));
    }
}

/// Finishes the flight with [`AuthError::Aborted`] if it is dropped unfinished (runtime
/// shut down, a panic in the source or the inner service).
struct Guard {
    shared: Arc<Shared>,
    start: Option<FlightStart>,
}

impl Guard {
    fn finish(&mut self, result: Result<Fresh, AuthError>, refresh: RefreshUpdate) {
        if let Some(start) = self.start.take() {
            let outcome =
                self.shared
                    .cache
                    .finish(start, result, refresh, &self.shared.settings.timing);
            trace_outcome(&self.shared, &outcome);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.finish(Err(AuthError::Aborted), RefreshUpdate::Keep);
    }
}

async fn run<S, ReqBody, ResBody>(mut guard: Guard, mut service: S)
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    ReqBody: From<Bytes>,
    ResBody: Body,
    ResBody::Error: Into<BoxError>,
{
    let shared = Arc::clone(&guard.shared);
    let refresh = guard.start.as_ref().and_then(|s| s.refresh.clone());
    let timeout = shared.settings.token_timeout;
    let obtained = tokio::time::timeout(
        timeout,
        obtain(&shared, &mut service, refresh.as_ref().map(Grant::Refresh)),
    )
    .await;
    let (result, update) = match obtained {
        Ok(obtained) => obtained,
        Err(_elapsed) => (
            Err(AuthError::TimedOut { after: timeout }),
            RefreshUpdate::Keep,
        ),
    };
    guard.finish(result, update);
}

/// A token: from the refresh token when there is one (falling back to the credentials when
/// the endpoint refuses it), else from the credentials.
async fn obtain<S, ReqBody, ResBody>(
    shared: &Shared,
    service: &mut S,
    refresh: Option<Grant<'_>>,
) -> (Result<Fresh, AuthError>, RefreshUpdate)
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    ReqBody: From<Bytes>,
    ResBody: Body,
    ResBody::Error: Into<BoxError>,
{
    let mut update = RefreshUpdate::Keep;
    if let Some(grant) = refresh {
        match exchange(shared, service, &grant).await {
            Ok((answer, sent_at)) => {
                if answer.refresh_token.is_some() {
                    update = replace(&answer, sent_at);
                }
                return (fresh(answer, sent_at), update);
            }
            // An expired or revoked refresh token: forget it, start over from the
            // credentials.
            Err(AuthError::Refused { status, .. })
                if matches!(status.as_u16(), 400 | 401 | 403) =>
            {
                #[cfg(feature = "tracing")]
                tracing::debug!(
                    namespace = %shared.settings.namespace,
                    %status,
                    "refresh token refused; using the credentials"
                );
                update = RefreshUpdate::Clear;
            }
            Err(error) => return (Err(error), update),
        }
    }
    match exchange(shared, service, &Grant::Credentials).await {
        Ok((answer, sent_at)) => {
            let update = if answer.refresh_token.is_some() {
                replace(&answer, sent_at)
            } else {
                RefreshUpdate::Clear
            };
            (fresh(answer, sent_at), update)
        }
        Err(error) => (Err(error), update),
    }
}

fn replace(answer: &TokenResponse, sent_at: Instant) -> RefreshUpdate {
    match &answer.refresh_token {
        Some(token) => RefreshUpdate::Replace {
            token: token.clone(),
            lifetime: answer.refresh_expires_in,
            sent_at,
        },
        None => RefreshUpdate::Keep,
    }
}

/// The bearer header of `answer`, marked sensitive; a token that is empty or not a header
/// value is refused.
fn fresh(answer: TokenResponse, sent_at: Instant) -> Result<Fresh, AuthError> {
    let token = answer.access_token.expose_secret();
    if token.is_empty() {
        return Err(AuthError::InvalidAnswer(InvalidAnswer::NotAHeaderValue));
    }
    let mut bearer = HeaderValue::try_from(format!("Bearer {token}"))
        .map_err(|_| AuthError::InvalidAnswer(InvalidAnswer::NotAHeaderValue))?;
    bearer.set_sensitive(true);
    Ok(Fresh {
        bearer,
        lifetime: answer.expires_in,
        sent_at,
    })
}

/// One request to the token endpoint and its answer, read to the end (capped).
async fn exchange<S, ReqBody, ResBody>(
    shared: &Shared,
    service: &mut S,
    grant: &Grant<'_>,
) -> Result<(TokenResponse, Instant), AuthError>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    ReqBody: From<Bytes>,
    ResBody: Body,
    ResBody::Error: Into<BoxError>,
{
    let source = &*shared.source;
    let mut request = source.token_request(grant)?.map(ReqBody::from);
    let extensions = request.extensions_mut();
    // The token namespace, never the caller's: every tenant waits for this request, so it
    // must not queue behind one tenant's empty bucket.
    extensions.insert(shared.settings.namespace.clone());
    if source.is_repeatable(grant) {
        extensions.insert(Idempotent);
    } else {
        extensions.remove::<Idempotent>();
    }
    #[cfg(feature = "tracing")]
    tracing::debug!(
        namespace = %shared.settings.namespace,
        grant = grant.kind(),
        "token request"
    );
    let sent_at = Instant::now();
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(AuthError::unreachable)?;
    let response = service
        .call(request)
        .await
        .map_err(AuthError::unreachable)?;
    let (parts, body) = response.into_parts();
    let limit = shared.settings.max_response_bytes;
    let body = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => {
            return Err(AuthError::InvalidAnswer(InvalidAnswer::TooLarge { limit }));
        }
        Err(error) => return Err(AuthError::unreachable(error)),
    };
    if !parts.status.is_success() {
        return Err(AuthError::from_status(parts.status, || {
            source.refusal(grant, &body)
        }));
    }
    let answer = source.parse_token(grant, &body)?;
    Ok((answer, sent_at))
}

#[cfg(feature = "tracing")]
fn trace_outcome(shared: &Shared, outcome: &Result<super::cache::Issued, AuthError>) {
    match outcome {
        Ok(issued) => tracing::debug!(
            namespace = %shared.settings.namespace,
            generation = issued.generation,
            "token obtained"
        ),
        Err(error) => tracing::warn!(
            namespace = %shared.settings.namespace,
            error = %error,
            "token request failed"
        ),
    }
}

#[cfg(not(feature = "tracing"))]
fn trace_outcome(_: &Shared, _: &Result<super::cache::Issued, AuthError>) {}
