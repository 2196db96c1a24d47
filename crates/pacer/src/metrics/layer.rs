//! [`MetricsLayer`] and its service [`MetricsService`].

use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use super::families::Metrics;
use super::future::ResponseFuture;
use super::guard::Guard;
use super::labels::{ERROR_CLASS, method_index};
use super::recorded_body::MetricsBody;

/// Measures each logical request with [`Metrics`]: counts by method, status class and
/// namespace, duration until the response body ends, in-flight requests.
#[derive(Debug, Clone)]
pub struct MetricsLayer {
    metrics: Metrics,
}

impl MetricsLayer {
    /// Records into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`MetricsLayer`] produces.
#[derive(Debug, Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for MetricsService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Response = Response<MetricsBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let start = Instant::now();
        let series = self.metrics.inner.namespaces.series_of(&request, start);
        let method = method_index(request.method());
        self.metrics.inner.in_flight.inc();
        let guard = Guard {
            metrics: self.metrics.clone(),
            series,
            method,
            status_class: ERROR_CLASS,
            start,
        };
        ResponseFuture::new(self.inner.call(request), guard)
    }
}
