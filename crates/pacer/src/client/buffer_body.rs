//! [`BufferBody`], the request extension the body bounds read. A leaf of its own: the bounds,
//! [`collect_responses`](super::collect_responses) and the blocking client all insert or read
//! it, and none of them should import another for it.

/// A request extension asking the ready stack to read the response body whole, at most
/// `max_bytes`, inside the attempt (so the per-attempt timeout and the deadline cover it).
///
/// [`collect_responses`](super::collect_responses) and
/// [`blocking::Client`](super::blocking::Client) insert it; insert it yourself to get a
/// [`Client`](super::Client) response whose body is already in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferBody {
    max_bytes: usize,
}

impl BufferBody {
    /// Read the body whole, refusing one longer than `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        Self { max_bytes }
    }

    /// The largest body read.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}
