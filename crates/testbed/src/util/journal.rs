//! Journals of the requests a fake received: bounded, oldest first, with their own lock so
//! that recording never waits behind a long request. Also the one way both fakes read a
//! request's body before it is served, so that it can be recorded and still handled.

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use http::request::Parts;

/// The largest body a fake reads: the bodies clients send are small; this bounds a hostile
/// one.
const BODY_LIMIT: usize = 16 << 20;

/// A bounded journal: past `cap` entries the oldest are dropped.
#[derive(Debug)]
pub(crate) struct Journal<T> {
    entries: Mutex<VecDeque<T>>,
    cap: usize,
}

impl<T: Clone> Journal<T> {
    /// An empty journal keeping at most `cap` entries.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            entries: Mutex::new(VecDeque::new()),
            cap,
        }
    }

    /// Appends `entry`, dropping the oldest one if the journal is full.
    pub(crate) fn record(&self, entry: T) {
        let mut entries = self.lock();
        if entries.len() >= self.cap {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    /// The entries, oldest first.
    pub(crate) fn entries(&self) -> Vec<T> {
        self.lock().iter().cloned().collect()
    }

    /// Forgets every entry.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<T>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A request read whole: its head, and its body (at most 16 MiB).
pub(crate) struct Buffered {
    pub(crate) parts: Parts,
    pub(crate) body: Bytes,
}

impl Buffered {
    /// Reads `request`'s body; `None` if it is larger than the limit or fails.
    pub(crate) async fn read(request: Request) -> Option<Self> {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, BODY_LIMIT).await.ok()?;
        Some(Self { parts, body })
    }

    /// The path and query as sent (percent-encoding included).
    pub(crate) fn target(&self) -> String {
        let uri = &self.parts.uri;
        uri.path_and_query()
            .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned())
    }

    /// The body as text (lossy UTF-8).
    pub(crate) fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The request again, to be served.
    pub(crate) fn into_request(self) -> Request {
        Request::from_parts(self.parts, Body::from(self.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_journal_drops_its_oldest_entry() {
        let journal = Journal::new(3);
        for i in 0..5 {
            journal.record(i);
        }
        assert_eq!(journal.entries(), [2, 3, 4]);
        journal.clear();
        assert!(journal.entries().is_empty());
    }

    #[tokio::test]
    async fn a_buffered_request_keeps_its_target_and_body() {
        let request = Request::post("/a%2Fb?x=1")
            .body(Body::from("hello"))
            .expect("a request");
        let buffered = Buffered::read(request).await.expect("read");
        assert_eq!(buffered.target(), "/a%2Fb?x=1");
        assert_eq!(buffered.body_text(), "hello");
        let again = buffered.into_request();
        let body = axum::body::to_bytes(again.into_body(), 100)
            .await
            .expect("body");
        assert_eq!(&body[..], b"hello");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused() {
        let request = Request::post("/")
            .body(Body::from(vec![b'x'; BODY_LIMIT + 1]))
            .expect("a request");
        assert!(Buffered::read(request).await.is_none());
    }
}
