//! [`RetryLayer`] and its service [`Retry`].

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::future::ResponseFuture;
use super::policy::RetryPolicy;
use crate::BoxError;
use crate::body::TryCloneBody;

/// Applies [`Retry`] to a service. `Clone + Debug`; clones share the policy (and its budget).
#[derive(Clone, Debug, Default)]
pub struct RetryLayer {
    policy: Arc<RetryPolicy>,
}

impl RetryLayer {
    /// A layer retrying with `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
        }
    }
}

impl<S: Clone> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry {
            spare: Arc::new(Mutex::new(inner.clone())),
            inner,
            policy: Arc::clone(&self.policy),
        }
    }
}

/// Retries failed requests according to a [`RetryPolicy`]; see the [module docs](super).
///
/// The first attempt calls the inner service that `poll_ready` made ready. Retries call a
/// clone of the service as it was when the `Retry` was built (made ready in turn), so a
/// request that needs no retry clones no service.
#[derive(Clone, Debug)]
pub struct Retry<S> {
    inner: S,
    // Cloned only when a request is retried: cloning a whole client stack per request (a
    // handful of reference counts) is most of what a retry layer costs on the happy path.
    // The mutex keeps the future `Send` for services that are `Send` but not `Sync` (such as
    // tower's `BoxCloneService`); it is only locked to clone, on a retry.
    spare: Arc<Mutex<S>>,
    policy: Arc<RetryPolicy>,
}

impl<S: Clone> Retry<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        Self {
            spare: Arc::new(Mutex::new(inner.clone())),
            inner,
            policy: Arc::new(policy),
        }
    }
}

impl<S> Retry<S> {
    /// A [`RetryLayer`] with `policy`.
    pub fn layer(policy: RetryPolicy) -> RetryLayer {
        RetryLayer::new(policy)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Retry<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    ReqBody: TryCloneBody,
    ResBody: Body,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, ReqBody, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let (parts, body) = req.into_parts();
        let (send, template) = match body.try_clone_body() {
            Some(copy) => (copy, Some(body)),
            None => (body, None),
        };
        // The service that `poll_ready` made ready takes the first attempt.
        let future = self.inner.call(Request::from_parts(parts.clone(), send));
        ResponseFuture::new(
            future,
            Arc::clone(&self.spare),
            Arc::clone(&self.policy),
            parts,
            template,
        )
    }
}
