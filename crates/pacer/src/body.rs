//! Request bodies that can be sent more than once.
//!
//! [`Retry`](crate::retry::Retry) needs a fresh copy of the request body for every attempt. It
//! asks for one through [`TryCloneBody`]:
//!
//! - every `Clone` body is replayable as is (`http_body_util::Full<Bytes>`, `Empty`, `String`,
//!   ...), at the cost of its `clone()`;
//! - any other body (a stream, hyper's `Incoming`) can be wrapped in a [`ReplayBody`], which
//!   records what the first attempt streams, up to a cap, so later attempts can replay it. A body
//!   larger than the cap is still sent once, in full, but never retried.
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, StreamBody};
//! use pacer::body::{ReplayBody, TryCloneBody};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let chunks = futures_util::stream::iter(["hello ", "world"].map(|s| {
//!     Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from(s)))
//! }));
//! let body = ReplayBody::with_limit(StreamBody::new(chunks), 1024);
//! let first = body.try_clone_body().unwrap();
//! assert_eq!(first.collect().await.unwrap().to_bytes(), "hello world");
//! let second = body.try_clone_body().unwrap(); // replayed from the buffer
//! assert_eq!(second.collect().await.unwrap().to_bytes(), "hello world");
//! # }
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

/// Error type of boxed body errors.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// The default buffer cap of a [`ReplayBody`]: 64 KiB.
pub const DEFAULT_REPLAY_LIMIT: usize = 64 * 1024;

/// A body that can produce an identical copy of itself, or says it cannot.
///
/// Implemented for every `Clone` type and for [`ReplayBody`].
pub trait TryCloneBody: Sized {
    /// A copy that yields the same bytes from the start, or `None` if the body cannot be replayed.
    fn try_clone_body(&self) -> Option<Self>;
}

impl<B: Clone> TryCloneBody for B {
    fn try_clone_body(&self) -> Option<Self> {
        Some(self.clone())
    }
}

/// Wraps any body so that it can be replayed, buffering up to a limit.
///
/// Handles made with [`TryCloneBody::try_clone_body`] share one buffer: whichever handle is read
/// furthest pulls the next frame from the wrapped body and records it; the others replay the
/// record, so every handle yields the same bytes in the same order. Once more than `limit` bytes
/// have been read (or if the body's size hint says it will be), the record is dropped and
/// `try_clone_body` returns `None`: the attempt in flight keeps streaming, but there is no retry.
/// A body whose wrapped stream failed cannot be replayed either.
///
/// Handles are meant to be read one after the other, as retries are: if two handles are polled
/// concurrently they still yield the same bytes, but the wrapped body keeps only the waker of the
/// last handle that found it pending.
///
/// Data frames are yielded as [`Bytes`] (`copy_to_bytes`, which does not copy when the wrapped
/// body yields `Bytes`); trailers are replayed too.
pub struct ReplayBody<B> {
    shared: Arc<Mutex<Shared<B>>>,
    /// Index of the next data chunk this handle yields.
    pos: usize,
    trailers_sent: bool,
}

struct Shared<B> {
    /// The wrapped body, until it ends or fails.
    inner: Option<Pin<Box<B>>>,
    /// Recorded chunks; emptied once `capped`.
    chunks: Vec<Bytes>,
    /// Chunks read from `inner` so far.
    read: usize,
    buffered: usize,
    limit: usize,
    capped: bool,
    failed: bool,
    trailers: Option<HeaderMap>,
    hint: SizeHint,
}

impl<B: Body> ReplayBody<B> {
    /// Wraps `body` with the default limit, [`DEFAULT_REPLAY_LIMIT`].
    pub fn new(body: B) -> Self {
        Self::with_limit(body, DEFAULT_REPLAY_LIMIT)
    }

    /// Wraps `body`, buffering at most `limit` bytes for replay.
    pub fn with_limit(body: B, limit: usize) -> Self {
        let hint = body.size_hint();
        let capped = usize::try_from(hint.lower()).map_or(true, |lower| lower > limit);
        Self {
            shared: Arc::new(Mutex::new(Shared {
                inner: Some(Box::pin(body)),
                chunks: Vec::new(),
                read: 0,
                buffered: 0,
                limit,
                capped,
                failed: false,
                trailers: None,
                hint,
            })),
            pos: 0,
            trailers_sent: false,
        }
    }
}

impl<B> ReplayBody<B> {
    fn lock(&self) -> MutexGuard<'_, Shared<B>> {
        // A panic while holding the lock leaves consistent state (every update is a single
        // assignment or push), so a poisoned lock is still usable.
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether this body can still be replayed (it has not exceeded its limit nor failed).
    pub fn is_replayable(&self) -> bool {
        let s = self.lock();
        !s.capped && !s.failed
    }
}

impl<B> TryCloneBody for ReplayBody<B> {
    fn try_clone_body(&self) -> Option<Self> {
        self.is_replayable().then(|| Self {
            shared: Arc::clone(&self.shared),
            pos: 0,
            trailers_sent: false,
        })
    }
}

impl<B> fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("ReplayBody")
            .field("buffered", &s.buffered)
            .field("limit", &s.limit)
            .field("capped", &s.capped)
            .field("pos", &self.pos)
            .finish()
    }
}

#[derive(Debug)]
struct ReplayError(&'static str);

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl StdError for ReplayError {}

impl<B> Body for ReplayBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Self {
            shared,
            pos,
            trailers_sent,
        } = self.get_mut();
        let mut s = shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *pos < s.read {
            // Behind the frontier: replay the record.
            return match s.chunks.get(*pos) {
                Some(chunk) if !s.capped => {
                    *pos += 1;
                    Poll::Ready(Some(Ok(Frame::data(chunk.clone()))))
                }
                _ => Poll::Ready(Some(Err(ReplayError(
                    "replay body: the buffered copy exceeded its limit",
                )
                .into()))),
            };
        }
        if s.failed {
            return Poll::Ready(Some(Err(ReplayError(
                "replay body: the original body failed",
            )
            .into())));
        }
        if !*trailers_sent {
            if let Some(trailers) = &s.trailers {
                *trailers_sent = true;
                return Poll::Ready(Some(Ok(Frame::trailers(trailers.clone()))));
            }
        }
        let Some(inner) = s.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match inner.as_mut().poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                s.inner = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                s.inner = None;
                s.failed = true;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(mut data) => {
                    let bytes = data.copy_to_bytes(data.remaining());
                    s.read += 1;
                    *pos = s.read;
                    if !s.capped {
                        s.buffered = s.buffered.saturating_add(bytes.len());
                        if s.buffered > s.limit {
                            s.capped = true;
                            s.chunks = Vec::new();
                        } else {
                            s.chunks.push(bytes.clone());
                        }
                    }
                    Poll::Ready(Some(Ok(Frame::data(bytes))))
                }
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => {
                        s.trailers = Some(trailers.clone());
                        *trailers_sent = true;
                        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                    }
                    // http-body 1 frames are data or trailers; anything else is dropped.
                    Err(_) => {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                },
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        let s = self.lock();
        self.pos >= s.read
            && s.inner.is_none()
            && !s.failed
            && (self.trailers_sent || s.trailers.is_none())
    }

    fn size_hint(&self) -> SizeHint {
        let s = self.lock();
        if self.pos == 0 && !self.trailers_sent {
            // A fresh handle yields the whole body.
            s.hint
        } else if s.inner.is_none() && !s.capped && !s.failed {
            let rest: usize = s.chunks.iter().skip(self.pos).map(Bytes::len).sum();
            SizeHint::with_exact(rest as u64)
        } else {
            SizeHint::default()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    type Item = Result<Frame<Bytes>, std::io::Error>;
    type Frames = Vec<Item>;
    type Stream = StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Item>>>;

    fn stream(frames: Frames) -> Stream {
        StreamBody::new(futures_util::stream::iter(frames))
    }

    fn data(s: &'static str) -> Item {
        Ok(Frame::data(Bytes::from_static(s.as_bytes())))
    }

    #[tokio::test]
    async fn replays_data_and_trailers() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", "42".parse().unwrap());
        let body = ReplayBody::new(stream(vec![
            data("a"),
            data("bc"),
            Ok(Frame::trailers(trailers.clone())),
        ]));
        for _ in 0..3 {
            let copy = body.try_clone_body().unwrap();
            let collected = copy.collect().await.unwrap();
            assert_eq!(collected.trailers(), Some(&trailers));
            assert_eq!(collected.to_bytes(), "abc");
        }
    }

    #[tokio::test]
    async fn a_handle_behind_replays_what_the_front_read() {
        let body = ReplayBody::new(stream(vec![data("1"), data("2"), data("3")]));
        let mut first = body.try_clone_body().unwrap();
        let f = first.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(f, "1");
        // The first attempt stopped half way (e.g. answered early); the retry gets everything.
        let second = body.try_clone_body().unwrap();
        assert_eq!(second.size_hint().exact(), None);
        assert_eq!(second.collect().await.unwrap().to_bytes(), "123");
        // The first one continues consistently from the record.
        assert_eq!(first.collect().await.unwrap().to_bytes(), "23");
        let third = body.try_clone_body().unwrap();
        assert_eq!(third.collect().await.unwrap().to_bytes(), "123");
    }

    #[tokio::test]
    async fn over_the_limit_streams_once_and_stops_replaying() {
        let body =
            ReplayBody::with_limit(stream(vec![data("aaaa"), data("bbbb"), data("cccc")]), 6);
        let first = body.try_clone_body().unwrap();
        assert!(body.is_replayable());
        assert_eq!(first.collect().await.unwrap().to_bytes(), "aaaabbbbcccc");
        assert!(!body.is_replayable());
        assert!(body.try_clone_body().is_none());
    }

    #[test]
    fn a_size_hint_above_the_limit_is_never_replayable() {
        let body = ReplayBody::with_limit(
            http_body_util::Full::new(Bytes::from_static(b"0123456789")),
            9,
        );
        assert!(body.try_clone_body().is_none());
        assert_eq!(body.size_hint().exact(), Some(10));
        let body = ReplayBody::with_limit(
            http_body_util::Full::new(Bytes::from_static(b"0123456789")),
            10,
        );
        assert_eq!(body.try_clone_body().unwrap().size_hint().exact(), Some(10));
    }

    #[tokio::test]
    async fn a_failed_source_is_not_replayed() {
        let body = ReplayBody::new(stream(vec![data("a"), Err(std::io::Error::other("boom"))]));
        let first = body.try_clone_body().unwrap();
        assert!(first.collect().await.is_err());
        assert!(body.try_clone_body().is_none());
    }

    #[tokio::test]
    async fn end_of_stream_and_hints_after_replay() {
        let body = ReplayBody::new(stream(vec![data("ab"), data("c")]));
        let first = body.try_clone_body().unwrap();
        assert!(!first.is_end_stream());
        assert_eq!(first.collect().await.unwrap().to_bytes(), "abc");
        let mut second = body.try_clone_body().unwrap();
        second.frame().await.unwrap().unwrap();
        assert_eq!(second.size_hint().exact(), Some(1));
        second.frame().await.unwrap().unwrap();
        assert!(second.is_end_stream());
        assert!(second.frame().await.is_none());
    }
}
