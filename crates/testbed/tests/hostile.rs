//! The hostile server really misbehaves as documented: for every behaviour of the
//! catalogue a test named after it talks raw TCP to the server and checks the bytes, their
//! timing and how the connection ends; then the rules, the default answers, the journal,
//! the blackhole and the server's own robustness. Real sockets, real (short) time: every
//! wait is bounded by `BOUND`, so a server that does not do what it says fails the test
//! instead of hanging it.

use std::io::ErrorKind;
use std::time::{Duration, SystemTime};

use http::Method;
use pacer_testbed::hostile::{
    self, Behaviour, Blackhole, CATALOGUE_HEADER_BYTES, CATALOGUE_HEADER_COUNT, Category,
    HostileServer, Rule, keycloak_token_path,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// The longest any single step of a test may take.
const BOUND: Duration = Duration::from_secs(10);
/// How long "nothing arrives" is watched for.
const SILENCE: Duration = Duration::from_millis(300);
/// The drip interval the timing tests use.
const DRIP: Duration = Duration::from_millis(10);

// ---------------------------------------------------------------------------------------
// A raw HTTP/1.1 client, just enough to see what the server sends.

/// A parsed response head (hand-parsed: httparse's fixed header array would refuse the
/// heads the hostile server is meant to send).
#[derive(Debug)]
struct Head {
    status_line: String,
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    len: usize,
}

impl Head {
    fn parse(raw: &[u8]) -> Head {
        let text = &raw[..raw.len() - 4];
        let mut lines = text
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let status_line =
            String::from_utf8_lossy(lines.next().expect("a status line")).into_owned();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .map(|line| {
                let colon = line.iter().position(|&b| b == b':').expect("a header line");
                let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
                let value = line[colon + 1..].trim_ascii().to_vec();
                (name, value)
            })
            .collect();
        Head {
            status_line,
            status,
            headers,
            len: raw.len(),
        }
    }

    fn all(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    fn get(&self, name: &str) -> Option<&[u8]> {
        self.all(name).first().copied()
    }

    fn str(&self, name: &str) -> &str {
        std::str::from_utf8(self.get(name).unwrap_or_else(|| panic!("no {name} header")))
            .expect("a UTF-8 header")
    }

    fn content_length(&self) -> usize {
        self.str("content-length")
            .parse()
            .expect("a Content-Length")
    }
}

/// What one read saw.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    Data(Vec<u8>),
    Eof,
    Failed(ErrorKind),
    Silent,
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(server: &HostileServer) -> Conn {
        let stream = timeout(BOUND, TcpStream::connect(server.addr()))
            .await
            .expect("connect in time")
            .expect("connect");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, request: &[u8]) {
        timeout(BOUND, self.stream.write_all(request))
            .await
            .expect("write in time")
            .expect("write");
    }

    /// One read from the socket (or what is buffered), waiting at most `wait`.
    async fn next(&mut self, wait: Duration) -> Read {
        if !self.buf.is_empty() {
            return Read::Data(std::mem::take(&mut self.buf));
        }
        let mut chunk = vec![0; 64 * 1024];
        match timeout(wait, self.stream.read(&mut chunk)).await {
            Err(_) => Read::Silent,
            Ok(Ok(0)) => Read::Eof,
            Ok(Ok(n)) => {
                chunk.truncate(n);
                Read::Data(chunk)
            }
            Ok(Err(e)) => Read::Failed(e.kind()),
        }
    }

    /// Reads until the buffer holds a blank line; returns the head's bytes (the rest stays
    /// buffered). Panics past `limit` bytes, on EOF or after `BOUND`.
    async fn raw_head(&mut self, limit: usize) -> Vec<u8> {
        let deadline = Instant::now() + BOUND;
        let mut searched = 0;
        loop {
            if let Some(at) = self.buf[searched..]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
            {
                let end = searched + at + 4;
                let rest = self.buf.split_off(end);
                return std::mem::replace(&mut self.buf, rest);
            }
            searched = self.buf.len().saturating_sub(3);
            assert!(
                self.buf.len() <= limit,
                "no end of head within {limit} bytes"
            );
            let mut chunk = vec![0; 256 * 1024];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .expect("the head in time")
                .expect("a read");
            assert_ne!(
                n,
                0,
                "EOF before the end of the head: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn head(&mut self) -> Head {
        Head::parse(&self.raw_head(64 * 1024).await)
    }

    /// Exactly `n` more bytes.
    async fn exact(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + BOUND;
        while self.buf.len() < n {
            let mut chunk = vec![0; 64 * 1024];
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .expect("the bytes in time")
                .expect("a read");
            assert_ne!(read, 0, "EOF after {} of {n} bytes", self.buf.len());
            self.buf.extend_from_slice(&chunk[..read]);
        }
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }

    /// A whole `Content-Length` response.
    async fn response(&mut self) -> (Head, Vec<u8>) {
        let head = self.head().await;
        let body = self.exact(head.content_length()).await;
        (head, body)
    }

    /// Reads until the connection ends (or `limit` bytes, or `BOUND`): the bytes and how it
    /// ended (`None`: it had not ended at `limit`).
    async fn drain(&mut self, limit: usize) -> (usize, Option<Read>) {
        let deadline = Instant::now() + BOUND;
        let mut total = std::mem::take(&mut self.buf).len();
        let mut chunk = vec![0; 256 * 1024];
        while total < limit {
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .expect("bytes or an end in time");
            match read {
                Ok(0) => return (total, Some(Read::Eof)),
                Ok(n) => total += n,
                Err(e) => return (total, Some(Read::Failed(e.kind()))),
            }
        }
        (total, None)
    }

    /// Checks that nothing arrives for a while and the socket stays open.
    async fn assert_silent(&mut self) {
        assert_eq!(
            self.next(SILENCE).await,
            Read::Silent,
            "expected silence on an open socket"
        );
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: hostile\r\n\r\n").into_bytes()
}

fn post(path: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: hostile\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn post_json(path: &str, body: &Value) -> Vec<u8> {
    post(path, "application/json", &body.to_string())
}

/// A server where every request gets `behaviour`.
async fn serving(behaviour: Behaviour) -> HostileServer {
    HostileServer::builder()
        .rule(Rule::new("/", behaviour))
        .start()
        .await
        .expect("the server starts")
}

/// One request to a server where every request gets `behaviour`; the connection, ready to
/// read the answer.
async fn ask(behaviour: Behaviour, request: &[u8]) -> (HostileServer, Conn) {
    let server = serving(behaviour).await;
    let mut conn = Conn::open(&server).await;
    conn.send(request).await;
    (server, conn)
}

/// A whole well-formed answer to one request.
async fn answer(behaviour: Behaviour, request: &[u8]) -> (Head, Vec<u8>) {
    let (_server, mut conn) = ask(behaviour, request).await;
    conn.response().await
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("a JSON body")
}

// ---------------------------------------------------------------------------------------
// The response head.

#[tokio::test]
async fn stall_head() {
    let (server, mut conn) = ask(Behaviour::StallHead, &get("/admin/serverinfo")).await;
    conn.assert_silent().await;
    assert_eq!(server.count("/admin/serverinfo"), 1, "the request was read");
}

#[tokio::test]
async fn partial_head_stall() {
    let (_server, mut conn) = ask(Behaviour::PartialHeadStall, &get("/x")).await;
    let start = conn.exact(27).await;
    assert_eq!(start, b"HTTP/1.1 200 OK\r\nContent-Ty");
    conn.assert_silent().await;
}

#[tokio::test]
async fn drip_head() {
    let (_server, mut conn) = ask(Behaviour::DripHead { interval: DRIP }, &get("/x")).await;
    let sent = Instant::now();
    let mut received = Vec::new();
    let mut reads = 0;
    // The body follows the last byte of the head at once: it may come in the same read.
    let head_len = loop {
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match conn.next(BOUND).await {
            Read::Data(bytes) => {
                reads += 1;
                received.extend_from_slice(&bytes);
            }
            other => panic!("the head ended early: {other:?}"),
        }
    };
    let took = sent.elapsed();
    // Each byte waits an interval first: the head cannot arrive sooner than that.
    assert!(
        took >= DRIP * head_len as u32,
        "{head_len} bytes in {took:?}"
    );
    assert!(
        reads >= 10,
        "the head came in {reads} reads, not byte by byte"
    );
    let head = Head::parse(&received[..head_len]);
    assert_eq!(head.status, 200);
    conn.buf = received.split_off(head_len);
    assert_eq!(conn.exact(head.content_length()).await, b"{}");
}

#[tokio::test]
async fn close_before_response() {
    let (_server, mut conn) = ask(Behaviour::CloseBeforeResponse, &get("/x")).await;
    assert_eq!(conn.next(BOUND).await, Read::Eof);
}

#[tokio::test]
async fn reset_before_response() {
    let (_server, mut conn) = ask(Behaviour::ResetBeforeResponse, &get("/x")).await;
    assert_eq!(
        conn.next(BOUND).await,
        Read::Failed(ErrorKind::ConnectionReset)
    );
}

#[tokio::test]
async fn huge_header() {
    let behaviour = Behaviour::HugeHeader {
        bytes: CATALOGUE_HEADER_BYTES,
    };
    let (_server, mut conn) = ask(behaviour, &get("/x")).await;
    let head = Head::parse(&conn.raw_head(2 * CATALOGUE_HEADER_BYTES).await);
    assert!(
        head.len > CATALOGUE_HEADER_BYTES,
        "a head of {} bytes",
        head.len
    );
    assert_eq!(
        head.get("x-hostile-huge").map(<[u8]>::len),
        Some(CATALOGUE_HEADER_BYTES)
    );
    assert_eq!(conn.exact(head.content_length()).await, b"{}");
    assert_eq!(conn.next(BOUND).await, Read::Eof);
}

#[tokio::test]
async fn many_headers() {
    let behaviour = Behaviour::ManyHeaders {
        count: CATALOGUE_HEADER_COUNT,
    };
    let (_server, mut conn) = ask(behaviour, &get("/x")).await;
    let head = Head::parse(&conn.raw_head(16 * 1024 * 1024).await);
    let hostile = head
        .headers
        .iter()
        .filter(|(n, _)| n.starts_with("x-hostile-"))
        .count();
    assert_eq!(hostile, CATALOGUE_HEADER_COUNT);
    assert_eq!(head.str("x-hostile-99999"), "99999");
    assert_eq!(conn.exact(head.content_length()).await, b"{}");
}

#[tokio::test]
async fn malformed_status_line() {
    let (_server, mut conn) = ask(Behaviour::MalformedStatusLine, &get("/x")).await;
    let raw = conn.raw_head(64 * 1024).await;
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let parsed = httparse::Response::new(&mut headers).parse(&raw);
    assert!(parsed.is_err(), "an HTTP parser refuses it: {parsed:?}");
    assert_eq!(Head::parse(&raw).status_line, "HTTP/1.1 abc Hostile");
    assert_eq!(conn.drain(1024).await, (2, Some(Read::Eof)));
}

#[tokio::test]
async fn conflicting_content_length() {
    let (_server, mut conn) = ask(Behaviour::ConflictingContentLength, &get("/x")).await;
    let head = conn.head().await;
    assert_eq!(head.status, 200);
    assert_eq!(head.all("content-length"), [&b"2"[..], b"20"]);
    assert_eq!(conn.drain(1024).await, (2, Some(Read::Eof)));
}

// ---------------------------------------------------------------------------------------
// The response body.

#[tokio::test]
async fn drip_body() {
    let (_server, mut conn) = ask(Behaviour::DripBody { interval: DRIP }, &get("/x")).await;
    let sent = Instant::now();
    let head = conn.head().await;
    assert_eq!(
        (head.status, head.content_length()),
        (200, hostile::ANNOUNCED_BODY_LEN)
    );
    let mut body = std::mem::take(&mut conn.buf);
    let mut reads = 0;
    while body.len() < 30 {
        match conn.next(BOUND).await {
            Read::Data(bytes) => {
                reads += 1;
                body.extend_from_slice(&bytes);
            }
            other => panic!("the body ended early: {other:?}"),
        }
    }
    let took = sent.elapsed();
    // Each byte waits an interval first: n bytes cannot arrive sooner than n intervals.
    assert!(
        took >= DRIP * body.len() as u32,
        "{} bytes in {took:?}",
        body.len()
    );
    assert!(
        reads >= 10,
        "30 bytes came in {reads} reads, not one by one"
    );
    assert!(body.starts_with(br#"{"pad":"aaa"#));
}

#[tokio::test]
async fn stall_body() {
    let (_server, mut conn) = ask(Behaviour::StallBody, &get("/x")).await;
    let head = conn.head().await;
    assert_eq!(head.content_length(), hostile::ANNOUNCED_BODY_LEN);
    assert_eq!(
        conn.exact(hostile::STALLED_BODY_SENT).await.len(),
        hostile::STALLED_BODY_SENT
    );
    conn.assert_silent().await;
}

#[tokio::test]
async fn truncated_body() {
    let (_server, mut conn) = ask(Behaviour::TruncatedBody, &get("/x")).await;
    let head = conn.head().await;
    assert_eq!(head.content_length(), hostile::ANNOUNCED_BODY_LEN);
    assert_eq!(
        conn.drain(1 << 20).await,
        (hostile::CUT_BODY_SENT, Some(Read::Eof))
    );
}

#[tokio::test]
async fn reset_in_body() {
    let (_server, mut conn) = ask(Behaviour::ResetInBody, &get("/x")).await;
    let head = conn.head().await;
    assert_eq!(head.content_length(), hostile::ANNOUNCED_BODY_LEN);
    assert_eq!(
        conn.drain(1 << 20).await,
        (
            hostile::CUT_BODY_SENT,
            Some(Read::Failed(ErrorKind::ConnectionReset))
        )
    );
}

#[tokio::test]
async fn chunked_forever() {
    let (_server, mut conn) = ask(Behaviour::ChunkedForever, &get("/x")).await;
    let head = conn.head().await;
    assert_eq!(head.str("transfer-encoding"), "chunked");
    assert_eq!(conn.exact(12).await, b"1\r\n[\r\n4000\r\n");
    let (read, end) = conn.drain(16 << 20).await;
    assert!(
        read >= 16 << 20 && end.is_none(),
        "ended after {read} bytes: {end:?}"
    );
}

#[tokio::test]
async fn chunked_drip() {
    let (_server, mut conn) = ask(Behaviour::ChunkedDrip { interval: DRIP }, &get("/x")).await;
    let head = conn.head().await;
    assert_eq!(head.str("transfer-encoding"), "chunked");
    let started = Instant::now();
    let mut body = Vec::new();
    while started.elapsed() < SILENCE {
        match conn.next(SILENCE).await {
            Read::Data(bytes) => body.extend_from_slice(&bytes),
            Read::Silent => break,
            other => panic!("the body ended: {other:?}"),
        }
    }
    let chunks = body.windows(7).filter(|w| w == b"2\r\n1,\r\n").count();
    let most = SILENCE.as_millis() / DRIP.as_millis() + 2;
    assert!(
        (5..=most as usize).contains(&chunks),
        "{chunks} chunks in {SILENCE:?}"
    );
    assert!(
        !body.windows(5).any(|w| w == b"0\r\n\r\n"),
        "the body ended"
    );
}

#[tokio::test]
async fn huge_body() {
    let (_server, mut conn) = ask(Behaviour::HugeBody, &get("/x")).await;
    let head = conn.head().await;
    assert_eq!(head.str("content-length"), "10737418240");
    let (read, end) = conn.drain(64 << 20).await;
    assert!(
        read >= 64 << 20 && end.is_none(),
        "ended after {read} bytes: {end:?}"
    );
}

#[tokio::test]
async fn close_delimited_forever() {
    let (_server, mut conn) = ask(Behaviour::CloseDelimitedForever, &get("/x")).await;
    let head = conn.head().await;
    assert!(
        head.status_line.starts_with("HTTP/1.0 200"),
        "{}",
        head.status_line
    );
    assert_eq!(head.get("content-length"), None);
    assert_eq!(head.get("transfer-encoding"), None);
    let (read, end) = conn.drain(16 << 20).await;
    assert!(
        read >= 16 << 20 && end.is_none(),
        "ended after {read} bytes: {end:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Throttling and Retry-After.

/// The `Retry-After` of a `429` answer to `behaviour`.
async fn retry_after(behaviour: Behaviour) -> Vec<u8> {
    let (head, _) = answer(behaviour, &get("/x")).await;
    assert_eq!(head.status, 429);
    head.get("retry-after").expect("a Retry-After").to_vec()
}

#[tokio::test]
async fn throttle_growing() {
    let (_server, mut conn) = ask(Behaviour::ThrottleGrowing, &get("/x")).await;
    let mut delays = Vec::new();
    for n in 0..6 {
        if n > 0 {
            conn.send(&get("/x")).await;
        }
        let (head, _) = conn.response().await;
        assert_eq!(head.status, 429);
        delays.push(head.str("retry-after").to_owned());
    }
    assert_eq!(delays, ["1", "2", "4", "8", "16", "32"]);
}

#[tokio::test]
async fn throttle_fixed() {
    let behaviour = Behaviour::ThrottleFixed {
        seconds: hostile::CATALOGUE_LONG_RETRY_AFTER,
    };
    let (_server, mut conn) = ask(behaviour, &get("/x")).await;
    for _ in 0..3 {
        let (head, _) = conn.response().await;
        assert_eq!((head.status, head.str("retry-after")), (429, "86400"));
        conn.send(&get("/x")).await;
    }
}

#[tokio::test]
async fn throttle_zero() {
    let (_server, mut conn) = ask(Behaviour::ThrottleZero, &get("/x")).await;
    for _ in 0..3 {
        let (head, _) = conn.response().await;
        assert_eq!((head.status, head.str("retry-after")), (429, "0"));
        conn.send(&get("/x")).await;
    }
}

#[tokio::test]
async fn unavailable_until() {
    let after = hostile::CATALOGUE_UNAVAILABLE_FOR;
    let (head, _) = answer(Behaviour::UnavailableUntil { after }, &get("/x")).await;
    assert_eq!(head.status, 503);
    let date = httpdate::parse_http_date(head.str("retry-after")).expect("an HTTP-date");
    let ahead = date
        .duration_since(SystemTime::now())
        .expect("a date in the future");
    assert!(
        ahead > after - Duration::from_secs(60) && ahead <= after,
        "{ahead:?} ahead"
    );
}

#[tokio::test]
async fn retry_after_overflow() {
    let value = retry_after(Behaviour::RetryAfterOverflow).await;
    assert_eq!(value, b"99999999999999999999");
    assert!(
        std::str::from_utf8(&value)
            .expect("ASCII")
            .parse::<u64>()
            .is_err(),
        "more than u64"
    );
}

#[tokio::test]
async fn retry_after_negative() {
    assert_eq!(retry_after(Behaviour::RetryAfterNegative).await, b"-1");
}

#[tokio::test]
async fn retry_after_float() {
    assert_eq!(retry_after(Behaviour::RetryAfterFloat).await, b"1e9");
}

#[tokio::test]
async fn retry_after_garbage() {
    let value = retry_after(Behaviour::RetryAfterGarbage).await;
    assert_eq!(value, b"soon \xff\xfe");
    assert!(std::str::from_utf8(&value).is_err(), "not UTF-8");
    assert!(
        http::HeaderValue::from_bytes(&value).is_ok(),
        "still a header value hyper accepts"
    );
}

#[tokio::test]
async fn retry_after_year_9999() {
    let value = retry_after(Behaviour::RetryAfterYear9999).await;
    assert_eq!(value, b"Fri, 31 Dec 9999 23:59:59 GMT");
    let date = httpdate::parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT").expect("a valid date");
    let ahead = date
        .duration_since(SystemTime::now())
        .expect("in the future");
    assert!(ahead > Duration::from_secs(7_000 * 365 * 24 * 3600));
}

#[tokio::test]
async fn retry_after_before_1970() {
    let value = retry_after(Behaviour::RetryAfterBefore1970).await;
    assert_eq!(value, b"Wed, 31 Dec 1969 23:59:59 GMT");
}

// ---------------------------------------------------------------------------------------
// Token answers.

/// The JSON a Keycloak token request gets under `behaviour`, and its raw text.
async fn token(behaviour: Behaviour) -> (Value, String) {
    let request = post(
        &keycloak_token_path("master"),
        "application/x-www-form-urlencoded",
        "grant_type=client_credentials&client_id=pacer&client_secret=s3cret",
    );
    let (head, body) = answer(behaviour, &request).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.str("content-type"), "application/json");
    (json_of(&body), String::from_utf8(body).expect("UTF-8"))
}

#[tokio::test]
async fn token_expires_in_max() {
    let (token, text) = token(Behaviour::TokenExpiresInMax).await;
    assert!(
        text.contains(r#""expires_in":18446744073709551615"#),
        "{text}"
    );
    assert_eq!(token["expires_in"].as_u64(), Some(u64::MAX));
    assert!(token["access_token"].is_string());
}

#[tokio::test]
async fn token_expires_in_huge() {
    let (token, text) = token(Behaviour::TokenExpiresInHuge).await;
    assert!(text.contains(r#""expires_in":1e300"#), "{text}");
    assert_eq!(token["expires_in"].as_f64(), Some(1e300));
    assert_eq!(token["expires_in"].as_u64(), None);
}

#[tokio::test]
async fn token_expires_in_negative() {
    let (token, _) = token(Behaviour::TokenExpiresInNegative).await;
    assert_eq!(token["expires_in"].as_i64(), Some(-1));
    assert_eq!(token["expires_in"].as_u64(), None);
}

#[tokio::test]
async fn token_expires_in_string() {
    let (token, _) = token(Behaviour::TokenExpiresInString).await;
    assert_eq!(token["expires_in"], "300");
}

#[tokio::test]
async fn token_without_access_token() {
    let (token, _) = token(Behaviour::TokenWithoutAccessToken).await;
    assert!(token.get("access_token").is_none(), "{token}");
    assert!(token["refresh_token"].is_string());
}

#[tokio::test]
async fn token_with_newline() {
    let (token, _) = token(Behaviour::TokenWithNewline).await;
    let access = token["access_token"].as_str().expect("a string");
    assert!(access.contains("\r\nx-injected: 1"), "{access:?}");
    assert!(http::HeaderValue::from_str(&format!("Bearer {access}")).is_err());
}

// ---------------------------------------------------------------------------------------
// JSON of the wrong shape.

async fn body_of(behaviour: Behaviour) -> Vec<u8> {
    let (head, body) = answer(behaviour, &get("/admin/realms/master")).await;
    assert_eq!(head.status, 200);
    body
}

#[tokio::test]
async fn json_array_for_object() {
    assert!(json_of(&body_of(Behaviour::JsonArrayForObject).await).is_array());
}

#[tokio::test]
async fn json_object_for_array() {
    assert!(json_of(&body_of(Behaviour::JsonObjectForArray).await).is_object());
}

#[tokio::test]
async fn json_string_for_number() {
    assert_eq!(
        json_of(&body_of(Behaviour::JsonStringForNumber).await),
        "12"
    );
}

#[tokio::test]
async fn json_null() {
    assert!(json_of(&body_of(Behaviour::JsonNull).await).is_null());
}

#[tokio::test]
async fn json_deeply_nested() {
    let body = body_of(Behaviour::JsonDeeplyNested).await;
    let depth = hostile::NESTING_DEPTH;
    assert_eq!(body.len(), 2 * depth);
    assert!(body[..depth].iter().all(|&b| b == b'[') && body[depth..].iter().all(|&b| b == b']'));
    let error = serde_json::from_slice::<Value>(&body).expect_err("deeper than serde_json goes");
    assert!(error.to_string().contains("recursion limit"), "{error}");
}

#[tokio::test]
async fn json_invalid_utf8() {
    let body = body_of(Behaviour::JsonInvalidUtf8).await;
    assert!(std::str::from_utf8(&body).is_err());
    assert!(serde_json::from_slice::<Value>(&body).is_err());
}

#[tokio::test]
async fn html_page() {
    let (head, body) = answer(Behaviour::HtmlPage, &get("/admin/realms/master")).await;
    assert_eq!(head.status, 200);
    assert!(head.str("content-type").starts_with("text/html"));
    assert!(String::from_utf8_lossy(&body).contains("<h1>502 Bad Gateway</h1>"));
    assert!(serde_json::from_slice::<Value>(&body).is_err());
}

// ---------------------------------------------------------------------------------------
// 201 Created with a bad Location.

const USERS: &str = "/admin/realms/master/users";

/// The `Location` (if any) of a create under `behaviour`, and the server's URL.
async fn location(behaviour: Behaviour) -> (Option<String>, String) {
    let (server, mut conn) = ask(behaviour, &post_json(USERS, &json!({"username": "u"}))).await;
    let (head, body) = conn.response().await;
    assert_eq!(head.status, 201);
    assert!(body.is_empty());
    let location = head
        .get("location")
        .map(|v| String::from_utf8(v.to_vec()).expect("UTF-8"));
    (location, server.url().to_owned())
}

#[tokio::test]
async fn created_elsewhere() {
    let (location, url) = location(Behaviour::CreatedElsewhere).await;
    let location = location.expect("a Location");
    assert!(
        location.starts_with(&format!("{url}/admin/realms/master/elsewhere/hostile-")),
        "{location}"
    );
    assert!(!location.starts_with(&format!("{url}{USERS}/")));
}

#[tokio::test]
async fn created_on_other_host() {
    let (location, url) = location(Behaviour::CreatedOnOtherHost).await;
    let location = location.expect("a Location");
    assert!(
        location.starts_with(&format!("http://elsewhere.invalid{USERS}/hostile-")),
        "{location}"
    );
    assert!(!location.starts_with(&url));
}

#[tokio::test]
async fn created_with_dot_dot() {
    let (location, url) = location(Behaviour::CreatedWithDotDot).await;
    let location = location.expect("a Location");
    // A naive prefix check passes; the path it names is outside the collection.
    assert!(
        location.starts_with(&format!("{url}{USERS}/../../elsewhere/hostile-")),
        "{location}"
    );
}

#[tokio::test]
async fn created_empty_location() {
    let (location, _) = location(Behaviour::CreatedEmptyLocation).await;
    assert_eq!(location.as_deref(), Some(""));
}

#[tokio::test]
async fn created_without_location() {
    let (location, _) = location(Behaviour::CreatedWithoutLocation).await;
    assert_eq!(location, None);
}

// ---------------------------------------------------------------------------------------
// Infrahub GraphQL answers that lie.

/// The generated client's list query, with `offset` and `limit` as variables.
fn list_query(offset: u64, limit: u64) -> Vec<u8> {
    post_json(
        "/graphql/main",
        &json!({
            "query": "query BuiltinTagList($offset: Int, $limit: Int) {\n  BuiltinTag(offset: $offset, limit: $limit) {\n    count\n    edges {\n      node {\n        id\n      }\n    }\n  }\n}\n",
            "variables": {"offset": offset, "limit": limit},
        }),
    )
}

/// The `data.BuiltinTag` of page (`offset`, `limit`) under `behaviour`, on one connection.
async fn pages(behaviour: Behaviour, offsets: &[u64], limit: u64) -> Vec<Value> {
    let server = serving(behaviour).await;
    let mut conn = Conn::open(&server).await;
    let mut pages = Vec::new();
    for &offset in offsets {
        conn.send(&list_query(offset, limit)).await;
        let (head, body) = conn.response().await;
        assert_eq!(head.status, 200);
        pages.push(json_of(&body)["data"]["BuiltinTag"].clone());
    }
    pages
}

fn ids(page: &Value) -> Vec<&str> {
    page["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|edge| edge["node"]["id"].as_str().expect("an id"))
        .collect()
}

#[tokio::test]
async fn pages_huge_count() {
    let pages = pages(Behaviour::PagesHugeCount, &[0, 1, 2], 50).await;
    for (n, page) in pages.iter().enumerate() {
        assert_eq!(page["count"], 1_000_000_000_000u64);
        assert_eq!(
            ids(page),
            [format!("hostile-{}", n + 1)],
            "a short page that moves on"
        );
    }
}

#[tokio::test]
async fn pages_empty_forever() {
    for page in pages(Behaviour::PagesEmptyForever, &[0, 50, 100], 50).await {
        assert_eq!(page["count"], hostile::LYING_COUNT);
        assert!(ids(&page).is_empty());
    }
}

#[tokio::test]
async fn pages_same_forever() {
    let pages = pages(Behaviour::PagesSameForever, &[0, 25, 1_000_000], 25).await;
    let first = ids(&pages[0]);
    assert_eq!(first.len(), 25);
    for page in &pages {
        assert_eq!(page["count"], hostile::LYING_COUNT);
        assert_eq!(ids(page), first, "the same page whatever the offset");
    }
}

#[tokio::test]
async fn graphql_count_string() {
    let pages = pages(Behaviour::GraphqlCountString, &[0], 50).await;
    assert_eq!(pages[0]["count"], "12");
}

#[tokio::test]
async fn graphql_data_null() {
    let (_, body) = answer(Behaviour::GraphqlDataNull, &list_query(0, 50)).await;
    assert_eq!(json_of(&body), json!({"data": null}));
}

// ---------------------------------------------------------------------------------------
// Authentication and timing.

#[tokio::test]
async fn unauthorized_forever() {
    let server = HostileServer::builder()
        .rule(Rule::new("/graphql", Behaviour::UnauthorizedForever))
        .start()
        .await
        .expect("the server starts");
    let mut conn = Conn::open(&server).await;
    let login = json!({"username": "admin", "password": "infrahub"});
    conn.send(&post_json(hostile::INFRAHUB_LOGIN_PATH, &login))
        .await;
    let (_, body) = conn.response().await;
    let tokens = json_of(&body);
    let mut access = tokens["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned();
    for round in 0..2 {
        let query = json!({"query": "query { InfrahubInfo { version } }"}).to_string();
        let request = format!(
            "POST /graphql HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {access}\r\nContent-Length: {}\r\n\r\n{query}",
            query.len()
        );
        conn.send(request.as_bytes()).await;
        let (head, body) = conn.response().await;
        assert_eq!(head.status, 401, "round {round}");
        assert!(head.str("www-authenticate").starts_with("Bearer"));
        assert_eq!(json_of(&body)["errors"][0]["message"], "Expired Signature");
        // A fresh token changes nothing.
        let refresh = format!(
            "POST {} HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\n\r\n",
            hostile::INFRAHUB_REFRESH_PATH,
            tokens["refresh_token"].as_str().expect("a refresh token")
        );
        conn.send(refresh.as_bytes()).await;
        let (_, body) = conn.response().await;
        let renewed = json_of(&body)["access_token"]
            .as_str()
            .expect("a token")
            .to_owned();
        assert_ne!(renewed, access);
        access = renewed;
    }
}

#[tokio::test]
async fn slow_success() {
    let delay = Duration::from_millis(300);
    let (_server, mut conn) = ask(
        Behaviour::SlowSuccess { delay },
        &get("/admin/realms/master"),
    )
    .await;
    let sent = Instant::now();
    assert_eq!(conn.next(delay / 2).await, Read::Silent);
    let (head, body) = conn.response().await;
    assert!(sent.elapsed() >= delay);
    assert_eq!((head.status, body.as_slice()), (200, &b"{}"[..]));
}

// ---------------------------------------------------------------------------------------
// The connection level.

#[tokio::test]
async fn blackhole_connect_hangs_for_more_than_two_seconds() {
    let blackhole = Blackhole::start()
        .await
        .expect("a blackhole on this kernel");
    assert_eq!(blackhole.url(), format!("http://{}", blackhole.addr()));
    let started = Instant::now();
    let connect = timeout(
        Duration::from_millis(2100),
        TcpStream::connect(blackhole.addr()),
    )
    .await;
    assert!(connect.is_err(), "the connect completed: {connect:?}");
    assert!(started.elapsed() >= Duration::from_secs(2));
}

// ---------------------------------------------------------------------------------------
// The catalogue.

#[test]
fn the_catalogue_has_every_misbehaviour_once_each_with_a_test_and_a_row_in_the_docs() {
    let catalogue = hostile::catalogue();
    assert!(catalogue.len() >= 20, "{} misbehaviours", catalogue.len());
    let names: std::collections::HashSet<_> = catalogue.iter().map(|e| e.name).collect();
    assert_eq!(names.len(), catalogue.len(), "names are unique");
    let docs = include_str!("../src/hostile/mod.rs");
    let tests = include_str!("hostile.rs");
    for entry in &catalogue {
        assert_eq!(entry.name, entry.behaviour.name());
        assert!(
            !entry.does.is_empty() && !entry.client_must.is_empty(),
            "{}",
            entry.name
        );
        assert!(
            docs.contains(&format!("//! | `{}` |", entry.name)),
            "{} is not in the docs' table",
            entry.name
        );
        assert!(
            tests.contains(&format!("async fn {}()", entry.name)),
            "{} has no test here",
            entry.name
        );
    }
    for category in [
        Category::Head,
        Category::Body,
        Category::Throttle,
        Category::Token,
        Category::Json,
    ] {
        assert!(
            catalogue.iter().any(|e| e.category == category),
            "{category:?}"
        );
    }
    assert!(
        !names.contains("normal") && !names.contains("respond"),
        "not misbehaviours"
    );
}

// ---------------------------------------------------------------------------------------
// Default answers: enough Keycloak and Infrahub to reach the misbehaving exchange.

#[tokio::test]
async fn the_token_endpoint_answers_like_keycloak() {
    let server = HostileServer::builder()
        .token_lifetime(Duration::from_secs(42))
        .start()
        .await
        .expect("the server starts");
    let mut conn = Conn::open(&server).await;
    let form = "application/x-www-form-urlencoded";
    let path = keycloak_token_path("team-a");
    conn.send(&post(
        &path,
        form,
        "grant_type=client_credentials&client_id=c&client_secret=s",
    ))
    .await;
    let (head, body) = conn.response().await;
    assert_eq!(head.status, 200);
    let first = json_of(&body);
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["expires_in"], 42);
    assert!(
        first.get("refresh_token").is_none(),
        "no refresh token for client_credentials"
    );

    conn.send(&post(
        &path,
        form,
        "grant_type=password&client_id=admin-cli&username=a&password=p",
    ))
    .await;
    let second = json_of(&conn.response().await.1);
    assert!(second["refresh_token"].is_string());
    assert_eq!(second["refresh_expires_in"], 1800);
    assert_ne!(
        first["access_token"], second["access_token"],
        "every token is fresh"
    );
}

#[tokio::test]
async fn infrahub_login_refresh_and_graphql_answer() {
    let server = HostileServer::start().await.expect("the server starts");
    let mut conn = Conn::open(&server).await;
    conn.send(&post_json(
        hostile::INFRAHUB_LOGIN_PATH,
        &json!({"username": "u", "password": "p"}),
    ))
    .await;
    let login = json_of(&conn.response().await.1);
    assert!(login["access_token"].is_string() && login["refresh_token"].is_string());
    conn.send(&post(
        hostile::INFRAHUB_REFRESH_PATH,
        "application/json",
        "",
    ))
    .await;
    let refreshed = json_of(&conn.response().await.1);
    assert!(refreshed["access_token"].is_string());
    assert_ne!(refreshed["access_token"], login["access_token"]);

    conn.send(&post_json(
        "/graphql",
        &json!({"query": "query { InfrahubInfo { version } }"}),
    ))
    .await;
    assert!(json_of(&conn.response().await.1)["data"]["InfrahubInfo"]["version"].is_string());
    conn.send(&list_query(0, 50)).await;
    assert_eq!(
        json_of(&conn.response().await.1),
        json!({"data": {"BuiltinTag": {"count": 0, "edges": []}}})
    );
    let create = json!({"query": "mutation C($data: BuiltinTagCreateInput!) { BuiltinTagCreate(data: $data) { ok object { id } } }"});
    conn.send(&post_json("/graphql/main", &create)).await;
    let created = json_of(&conn.response().await.1);
    assert_eq!(created["data"]["BuiltinTagCreate"]["ok"], true);
    assert!(created["data"]["BuiltinTagCreate"]["object"]["id"].is_string());
}

#[tokio::test]
async fn other_requests_get_plausible_answers_on_one_connection() {
    let server = HostileServer::start().await.expect("the server starts");
    let mut conn = Conn::open(&server).await;
    conn.send(&post_json(USERS, &json!({"username": "u"})))
        .await;
    let (head, _) = conn.response().await;
    assert_eq!(head.status, 201);
    assert!(
        head.str("location")
            .starts_with(&format!("{}{USERS}/hostile-", server.url()))
    );
    conn.send(b"PUT /admin/realms/master HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
        .await;
    assert_eq!(conn.response().await.0.status, 204);
    conn.send(&get("/admin/realms/master")).await;
    let (head, body) = conn.response().await;
    assert_eq!((head.status, body.as_slice()), (200, &b"{}"[..]));
    conn.send(b"HEAD /admin/realms/master HTTP/1.1\r\n\r\n")
        .await;
    let head = conn.head().await;
    assert_eq!((head.status, head.content_length()), (200, 2));
    // No body after the HEAD answer: the next answer follows at once.
    conn.send(&get("/x")).await;
    assert_eq!(conn.response().await.0.status, 200);
    assert_eq!(server.connections(), 1, "the connection was kept alive");
}

// ---------------------------------------------------------------------------------------
// Rules.

#[tokio::test]
async fn the_first_call_succeeds_and_the_second_misbehaves() {
    let server = HostileServer::builder()
        .rule(Rule::new("/admin", Behaviour::Normal).nth(1))
        .rule(Rule::new("/admin", Behaviour::ResetBeforeResponse).from_nth(2))
        .start()
        .await
        .expect("the server starts");
    let mut conn = Conn::open(&server).await;
    conn.send(&get("/admin/realms/a")).await;
    assert_eq!(conn.response().await.0.status, 200);
    conn.send(&get("/admin/realms/a")).await;
    assert_eq!(
        conn.next(BOUND).await,
        Read::Failed(ErrorKind::ConnectionReset)
    );
    // ... and every later one.
    let mut again = Conn::open(&server).await;
    again.send(&get("/admin/realms/b")).await;
    assert_eq!(
        again.next(BOUND).await,
        Read::Failed(ErrorKind::ConnectionReset)
    );
    // Other paths are not touched.
    let mut other = Conn::open(&server).await;
    other.send(&get("/api/schema")).await;
    assert_eq!(other.response().await.0.status, 200);
    let behaviours: Vec<_> = server.journal().iter().map(|e| e.behaviour).collect();
    assert_eq!(
        behaviours,
        [
            "normal",
            "reset_before_response",
            "reset_before_response",
            "normal"
        ]
    );
}

#[tokio::test]
async fn only_the_nth_request_and_only_its_method() {
    let server = HostileServer::builder()
        .rule(
            Rule::new("/realms/", Behaviour::ThrottleZero)
                .method(Method::POST)
                .nth(2),
        )
        .start()
        .await
        .expect("the server starts");
    let mut conn = Conn::open(&server).await;
    let token = post(
        &keycloak_token_path("master"),
        "application/x-www-form-urlencoded",
        "grant_type=client_credentials",
    );
    let mut statuses = Vec::new();
    for request in [get("/realms/master"), token.clone(), token.clone(), token] {
        conn.send(&request).await;
        statuses.push(conn.response().await.0.status);
    }
    // The GET does not count; the second POST is the misbehaving one, the third is fine.
    assert_eq!(statuses, [200, 200, 429, 200]);
}

#[tokio::test]
async fn rules_are_evaluated_in_order_and_change_while_the_server_runs() {
    let server = HostileServer::builder()
        .rule(Rule::new("/admin/realms/a", Behaviour::ThrottleZero))
        .rule(Rule::new("/admin", Behaviour::UnauthorizedForever))
        .start()
        .await
        .expect("the server starts");
    let mut conn = Conn::open(&server).await;
    let mut status = async |path: &str| {
        conn.send(&get(path)).await;
        conn.response().await.0.status
    };
    assert_eq!(
        status("/admin/realms/a/users").await,
        429,
        "the first matching rule wins"
    );
    assert_eq!(status("/admin/realms/b").await, 401);
    server.clear_rules();
    assert_eq!(status("/admin/realms/a").await, 200);
    server.rule(Rule::new("/", Behaviour::JsonNull));
    assert_eq!(status("/anything").await, 200);
    assert_eq!(
        server.journal().last().map(|e| e.behaviour),
        Some("json_null")
    );
}

// ---------------------------------------------------------------------------------------
// The journal.

#[tokio::test]
async fn the_journal_records_names_times_and_connections_but_no_secret() {
    let server = HostileServer::start().await.expect("the server starts");
    let secrets = [
        "Bearer tok3n-SECRET",
        "session=c00kie-SECRET",
        "api-k3y-SECRET",
    ];
    let request = format!(
        "GET /admin/realms/x?password=q-SECRET HTTP/1.1\r\nHost: h\r\nAuthorization: {}\r\nCookie: {}\r\nX-INFRAHUB-KEY: {}\r\nUser-Agent: raw\r\n\r\n",
        secrets[0], secrets[1], secrets[2]
    );
    let mut first = Conn::open(&server).await;
    first.send(request.as_bytes()).await;
    first.response().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut second = Conn::open(&server).await;
    second
        .send(&post_json("/graphql", &json!({"query": "{ X { count } }"})))
        .await;
    second.response().await;

    let journal = server.journal();
    assert_eq!(journal.len(), 2);
    let entry = &journal[0];
    assert_eq!(
        (entry.method.as_str(), entry.path.as_str()),
        ("GET", "/admin/realms/x")
    );
    assert_eq!(
        entry.header_names(),
        [
            "host",
            "authorization",
            "cookie",
            "x-infrahub-key",
            "user-agent"
        ]
    );
    assert!(entry.has_header("Authorization") && entry.has_header("x-infrahub-key"));
    assert_eq!(entry.header("authorization"), None);
    assert_eq!(entry.header("cookie"), None);
    assert_eq!(entry.header("user-agent"), Some("raw"));
    let shown = format!("{journal:?}");
    assert!(
        !shown.contains("SECRET"),
        "a secret in the journal: {shown}"
    );
    assert_eq!((journal[0].connection, journal[1].connection), (1, 2));
    assert!(journal[1].arrived.duration_since(journal[0].arrived) >= Duration::from_millis(50));
    assert_eq!(
        journal[1].body_len,
        json!({"query": "{ X { count } }"}).to_string().len()
    );
    assert_eq!(
        (
            server.count("/admin/realms/x"),
            server.count("/graphql"),
            server.count("/nope")
        ),
        (1, 1, 0)
    );
    assert_eq!(server.requests(), 2);
    server.clear_journal();
    assert!(server.journal().is_empty());
    assert_eq!(server.requests(), 0);
}

// ---------------------------------------------------------------------------------------
// The server itself: robust against what clients send, gone when dropped.

#[tokio::test]
async fn malformed_and_abandoned_requests_do_not_hurt_the_server() {
    let server = HostileServer::start().await.expect("the server starts");
    for garbage in [
        &b"\x00\x01\x02 not http\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
    ] {
        let mut conn = Conn::open(&server).await;
        conn.send(garbage).await;
        let (head, _) = conn.response().await;
        assert!(matches!(head.status, 400 | 413), "{}", head.status_line);
    }
    // A head too big, and a client that leaves halfway.
    let mut conn = Conn::open(&server).await;
    conn.send(format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(100 * 1024)).as_bytes())
        .await;
    assert_eq!(conn.head().await.status, 431);
    let mut leaving = Conn::open(&server).await;
    leaving
        .send(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc")
        .await;
    drop(leaving);
    let mut fine = Conn::open(&server).await;
    fine.send(&get("/x")).await;
    assert_eq!(fine.response().await.0.status, 200);
}

#[tokio::test]
async fn dropping_the_server_ends_its_connections_and_its_port() {
    for behaviour in [
        Behaviour::StallHead,
        Behaviour::ChunkedDrip { interval: DRIP },
        Behaviour::HugeBody,
    ] {
        let (server, mut conn) = ask(behaviour.clone(), &get("/x")).await;
        let addr = server.addr();
        // Let the connection task start on the behaviour before the server goes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(server);
        let (_, end) = conn.drain(usize::MAX).await;
        assert!(
            end.is_some(),
            "{behaviour:?}: the connection outlived the server"
        );
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "{behaviour:?}: the port still accepts"
        );
    }
}

#[tokio::test]
async fn shutdown_waits_for_every_connection() {
    let (server, mut conn) = ask(Behaviour::StallBody, &get("/x")).await;
    conn.head().await;
    timeout(BOUND, server.shutdown())
        .await
        .expect("shutdown in time");
    let (_, end) = conn.drain(usize::MAX).await;
    assert!(matches!(end, Some(Read::Eof | Read::Failed(_))), "{end:?}");
}

#[tokio::test]
async fn many_servers_start_and_stop() {
    let mut running = Vec::new();
    for _ in 0..50 {
        running.push(ask(Behaviour::StallHead, &get("/x")).await);
    }
    let mut conns = Vec::new();
    for (server, conn) in running {
        drop(server);
        conns.push(conn);
    }
    for mut conn in conns {
        // EOF, or a reset when the server went before it accepted the connection.
        let end = conn.next(BOUND).await;
        assert!(
            matches!(end, Read::Eof | Read::Failed(_)),
            "a stalled connection outlived its server: {end:?}"
        );
    }
}
