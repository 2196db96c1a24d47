//! Reading one HTTP/1.x request from a raw stream, bounded: the head with httparse, the
//! body by `Content-Length` or chunked. Whatever a client sends ends in a request or an
//! error, never a panic.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// The largest request head read (bigger: `431` and close).
const MAX_HEAD: usize = 64 * 1024;
/// The most request header lines read (more: `431` and close).
const MAX_HEADERS: usize = 128;
/// The largest request body read (bigger: `413` and close).
const MAX_BODY: usize = 4 * 1024 * 1024;
/// The longest chunk-size or trailer line of a chunked request body.
const MAX_LINE: usize = 4 * 1024;

/// A request as read from the wire.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) method: String,
    /// The path, without the query.
    pub(super) path: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub(super) version: u8,
    pub(super) headers: Vec<(String, Vec<u8>)>,
    pub(super) body: Vec<u8>,
    /// When the head was complete.
    pub(super) arrived: Instant,
}

impl Request {
    /// The first value of a header (case-insensitive name).
    pub(super) fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Whether the client lets the connection carry another request.
    pub(super) fn keep_alive(&self) -> bool {
        let connection = self
            .header("connection")
            .map(|v| String::from_utf8_lossy(v).to_ascii_lowercase());
        match connection.as_deref() {
            Some(value) if value.contains("close") => false,
            Some(value) if value.contains("keep-alive") => true,
            _ => self.version >= 1,
        }
    }

    pub(super) fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// Why no request was read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ReadError {
    /// The client closed (or the socket failed) before a whole request arrived.
    Closed,
    /// Not HTTP/1.x: answer `400` and close.
    Malformed,
    /// Past a bound: answer this status (`413`/`431`) and close.
    TooLarge(u16),
}

impl From<std::io::Error> for ReadError {
    fn from(_: std::io::Error) -> Self {
        ReadError::Closed
    }
}

/// Reads the next request; `buf` keeps bytes that arrived after it (pipelining).
pub(super) async fn read_request<R>(io: &mut R, buf: &mut BytesMut) -> Result<Request, ReadError>
where
    R: AsyncRead + Unpin,
{
    let (mut request, content_length, chunked) = loop {
        if let Some(parsed) = parse_head(buf)? {
            break parsed;
        }
        if buf.len() >= MAX_HEAD {
            return Err(ReadError::TooLarge(431));
        }
        if io.read_buf(buf).await? == 0 {
            return Err(ReadError::Closed);
        }
    };
    request.body = if chunked {
        read_chunked(io, buf).await?
    } else {
        let len = content_length.unwrap_or(0);
        fill(io, buf, len).await?;
        buf.split_to(len).to_vec()
    };
    Ok(request)
}

/// The head, once all of it is in `buf` (consumed), with its body framing.
fn parse_head(buf: &mut BytesMut) -> Result<Option<(Request, Option<usize>, bool)>, ReadError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    // Parsing no more than the bound makes a longer head Partial, then TooLarge.
    let head_len = match parsed.parse(&buf[..buf.len().min(MAX_HEAD)]) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ReadError::TooLarge(431)),
        Err(_) => return Err(ReadError::Malformed),
    };
    let target = parsed.path.unwrap_or("/");
    let path = target.split(['?', '#']).next().unwrap_or("/").to_owned();
    let headers: Vec<(String, Vec<u8>)> = parsed
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    let request = Request {
        method: parsed.method.unwrap_or("GET").to_owned(),
        path,
        version: parsed.version.unwrap_or(1),
        headers,
        body: Vec::new(),
        arrived: Instant::now(),
    };
    buf.advance(head_len);
    let chunked = request.header("transfer-encoding").is_some_and(|te| {
        String::from_utf8_lossy(te)
            .to_ascii_lowercase()
            .contains("chunked")
    });
    let content_length = if chunked {
        None
    } else {
        content_length(&request)?
    };
    Ok(Some((request, content_length, chunked)))
}

/// The one `Content-Length` (several equal ones are one; different ones are malformed).
fn content_length(request: &Request) -> Result<Option<usize>, ReadError> {
    let mut length = None;
    for (name, value) in &request.headers {
        if name != "content-length" {
            continue;
        }
        let value = std::str::from_utf8(value).map_err(|_| ReadError::Malformed)?;
        let value = value.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ReadError::Malformed);
        }
        let parsed: usize = value.parse().map_err(|_| ReadError::TooLarge(413))?;
        if parsed > MAX_BODY {
            return Err(ReadError::TooLarge(413));
        }
        if length.is_some_and(|l| l != parsed) {
            return Err(ReadError::Malformed);
        }
        length = Some(parsed);
    }
    Ok(length)
}

/// Reads until `buf` holds at least `len` bytes.
async fn fill<R>(io: &mut R, buf: &mut BytesMut, len: usize) -> Result<(), ReadError>
where
    R: AsyncRead + Unpin,
{
    while buf.len() < len {
        if io.read_buf(buf).await? == 0 {
            return Err(ReadError::Closed);
        }
    }
    Ok(())
}

/// Reads one CRLF-terminated line (without the CRLF), at most [`MAX_LINE`] bytes.
async fn line<R>(io: &mut R, buf: &mut BytesMut) -> Result<Vec<u8>, ReadError>
where
    R: AsyncRead + Unpin,
{
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = buf.split_to(end).to_vec();
            buf.advance(2);
            return Ok(line);
        }
        if buf.len() > MAX_LINE {
            return Err(ReadError::Malformed);
        }
        if io.read_buf(buf).await? == 0 {
            return Err(ReadError::Closed);
        }
    }
}

/// A chunked body, decoded; trailers are read and dropped.
async fn read_chunked<R>(io: &mut R, buf: &mut BytesMut) -> Result<Vec<u8>, ReadError>
where
    R: AsyncRead + Unpin,
{
    let mut body = Vec::new();
    loop {
        let size_line = line(io, buf).await?;
        let size_line = std::str::from_utf8(&size_line).map_err(|_| ReadError::Malformed)?;
        let size = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| ReadError::Malformed)?;
        if size == 0 {
            while !line(io, buf).await?.is_empty() {}
            return Ok(body);
        }
        if size > MAX_BODY.saturating_sub(body.len()) {
            return Err(ReadError::TooLarge(413));
        }
        let framed = size.saturating_add(2);
        fill(io, buf, framed).await?;
        body.extend_from_slice(&buf[..size]);
        if &buf[size..framed] != b"\r\n" {
            return Err(ReadError::Malformed);
        }
        buf.advance(framed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8]) -> Result<Request, ReadError> {
        let mut io = bytes;
        read_request(&mut io, &mut BytesMut::new()).await
    }

    #[tokio::test]
    async fn reads_a_head_and_a_sized_body() {
        let request =
            read(b"POST /a/b?secret=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
                .await
                .expect("a request");
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/a/b");
        assert_eq!(request.body, b"abc");
        assert!(request.keep_alive());
    }

    #[tokio::test]
    async fn reads_a_chunked_body() {
        let request = read(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n",
        )
        .await
        .expect("a request");
        assert_eq!(request.body, b"abcde");
    }

    #[tokio::test]
    async fn refuses_what_is_not_a_request_without_panicking() {
        assert_eq!(
            read(b"\x00\xff garbage\r\n\r\n").await.err(),
            Some(ReadError::Malformed)
        );
        assert_eq!(
            read(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
                .await
                .err(),
            Some(ReadError::Malformed)
        );
        assert_eq!(
            read(b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n")
                .await
                .err(),
            Some(ReadError::TooLarge(413))
        );
        assert_eq!(
            read(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n")
                .await
                .err(),
            Some(ReadError::Malformed)
        );
        assert_eq!(
            read(b"GET / HTTP/1.1\r\nHost: x\r\n").await.err(),
            Some(ReadError::Closed)
        );
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(
            read(long.as_bytes()).await.err(),
            Some(ReadError::TooLarge(431))
        );
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "a: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(
            read(many.as_bytes()).await.err(),
            Some(ReadError::TooLarge(431))
        );
    }

    #[tokio::test]
    async fn http_1_0_closes_unless_asked_to_keep_alive() {
        let plain = read(b"GET / HTTP/1.0\r\n\r\n").await.expect("a request");
        assert!(!plain.keep_alive());
        let kept = read(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .await
            .expect("a request");
        assert!(kept.keep_alive());
    }
}
