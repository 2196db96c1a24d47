//! A well-formed HTTP/1.1 answer, encoded by hand (so header values may hold any byte a
//! hostile test needs, such as a non-UTF-8 `Retry-After`).

use http::StatusCode;

/// A status, header lines and a body; [`Reply::head`] adds `Content-Length`.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) headers: Vec<(String, Vec<u8>)>,
    pub(super) body: Vec<u8>,
}

impl Reply {
    pub(super) fn new(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `status` with a JSON body.
    pub(super) fn json(status: StatusCode, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status)
            .header("Content-Type", "application/json")
            .body(body)
    }

    pub(super) fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub(super) fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The status line, the headers, `Content-Length`, `Connection: close` when the
    /// connection ends after this answer, and the blank line.
    pub(super) fn head(&self, keep_alive: bool) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\n",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or("Hostile")
        )
        .into_bytes();
        for (name, value) in &self.headers {
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        if !keep_alive {
            head.extend_from_slice(b"Connection: close\r\n");
        }
        head.extend_from_slice(b"\r\n");
        head
    }

    /// The whole answer; the body is left out for a `HEAD` request.
    pub(super) fn encode(&self, keep_alive: bool, head_only: bool) -> Vec<u8> {
        let mut bytes = self.head(keep_alive);
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}
