//! A hostile HTTP/1.1 server: a real TCP server on loopback that misbehaves on demand at
//! the socket level (raw bytes written with tokio, so it can lie about lengths, stall, drip
//! and reset), and that speaks just enough of Keycloak's token endpoint and Infrahub's
//! login/refresh for a client to reach the exchange that misbehaves.
//!
//! It is the evidence for pacer's promise that a client ends every call with a typed error
//! within its configured time, never panics on what a server sends and never shows a
//! secret: one test per misbehaviour and per client points the client at this server.
//!
//! - [`HostileServer`]: started with [`HostileServer::builder`], listens on `127.0.0.1` (a
//!   free port), [`url`](HostileServer::url) for the clients, a request
//!   [journal](HostileServer::journal) (method, path, header names, arrival time, never a
//!   credential), stops every connection when dropped.
//! - [`Rule`]: path prefix (+ method, + the n-th request) → [`Behaviour`], evaluated in order;
//!   a request no rule picks gets [`Behaviour::Normal`]: a fresh Keycloak token from
//!   `POST /realms/{realm}/protocol/openid-connect/token` (lifetime
//!   [`HostileBuilder::token_lifetime`]), an Infrahub token pair from `POST /api/auth/login`,
//!   an access token from `POST /api/auth/refresh`, and plausible answers elsewhere.
//! - [`Behaviour`]: one variant per misbehaviour, each saying what a correct client must do;
//!   [`catalogue`] lists them as data (name, [`Category`], behaviour, description).
//! - [`Blackhole`]: an address whose connect never completes.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use pacer_testbed::hostile::{Behaviour, HostileServer, Rule, keycloak_token_path};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! // The first admin call succeeds, every later one stalls after 10 bytes of its body.
//! let server = HostileServer::builder()
//!     .rule(Rule::new("/admin", Behaviour::Normal).nth(1))
//!     .rule(Rule::new("/admin", Behaviour::StallBody).from_nth(2))
//!     .start()
//!     .await?;
//! let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! let bound = Duration::from_secs(5);
//!
//! // The token endpoint answers as Keycloak's does.
//! let request = http::Request::post(format!("{}{}", server.url(), keycloak_token_path("master")))
//!     .header("content-type", "application/x-www-form-urlencoded")
//!     .body(Full::new(Bytes::from("grant_type=client_credentials&client_id=c&client_secret=s")))?;
//! let response = tokio::time::timeout(bound, client.request(request)).await??;
//! let body = tokio::time::timeout(bound, response.into_body().collect()).await??.to_bytes();
//! let token: serde_json::Value = serde_json::from_slice(&body)?;
//! let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap_or_default());
//!
//! let get = || {
//!     http::Request::get(format!("{}/admin/realms/master", server.url()))
//!         .header("authorization", bearer.as_str())
//!         .body(Full::new(Bytes::new()))
//! };
//! let first = tokio::time::timeout(bound, client.request(get()?)).await??;
//! assert_eq!(first.status(), 200);
//! tokio::time::timeout(bound, first.into_body().collect()).await??;
//!
//! // The second: a valid head, then the body stalls; only the caller's bound ends it.
//! let second = tokio::time::timeout(bound, client.request(get()?)).await??;
//! assert_eq!(second.headers()["content-length"], "1000");
//! let stalled = tokio::time::timeout(Duration::from_millis(200), second.into_body().collect()).await;
//! assert!(stalled.is_err());
//!
//! // Rules can change while the server runs; the journal shows what arrived.
//! server.clear_rules();
//! server.rule(Rule::new("/admin", Behaviour::UnauthorizedForever));
//! assert_eq!(server.count("/admin/realms/master"), 2);
//! let journal = server.journal();
//! assert_eq!(journal[2].behaviour, "stall_body");
//! assert!(journal[2].has_header("authorization"));
//! assert_eq!(journal[2].header("authorization"), None); // never recorded
//! # Ok(()) }
//! ```
//!
//! # Blocking clients
//!
//! The server runs on the tokio runtime that starts it. A test of a blocking client keeps a
//! multi-thread runtime alive for it and calls the client from its own thread:
//!
//! ```
//! use std::io::{Read, Write};
//! use pacer_testbed::hostile::{Behaviour, HostileServer, Rule};
//!
//! # fn main() -> std::io::Result<()> {
//! let runtime = tokio::runtime::Runtime::new()?;
//! let server = runtime.block_on(
//!     HostileServer::builder().rule(Rule::new("/", Behaviour::ThrottleZero)).start(),
//! )?;
//! let mut stream = std::net::TcpStream::connect(server.addr())?; // any blocking client
//! stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
//! stream.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")?;
//! let mut answer = String::new();
//! stream.read_to_string(&mut answer)?;
//! assert!(answer.starts_with("HTTP/1.1 429"));
//! # Ok(()) }
//! ```
//!
//! # Behaviours
//!
//! Intervals and sizes are the [`catalogue`]'s (a 20 ms drip interval); every duration and
//! size is a field a test can change. The server uses tokio time: in a runtime with paused
//! time its intervals auto-advance.
//!
//! | name | variant | the server | a correct client |
//! |---|---|---|---|
//! | `stall_head` | [`StallHead`](Behaviour::StallHead) | reads the request, sends nothing, keeps the socket open | time out |
//! | `partial_head_stall` | [`PartialHeadStall`](Behaviour::PartialHeadStall) | sends `HTTP/1.1 200 OK\r\nContent-Ty`, then nothing | time out |
//! | `drip_head` | [`DripHead`](Behaviour::DripHead) | sends a valid head one byte per interval | time out when the head outlasts the attempt timeout |
//! | `close_before_response` | [`CloseBeforeResponse`](Behaviour::CloseBeforeResponse) | reads the request, closes (FIN) without a byte | transport error; retry only what is safe to repeat |
//! | `reset_before_response` | [`ResetBeforeResponse`](Behaviour::ResetBeforeResponse) | reads the request, resets (RST) without a byte | transport error (connection reset) |
//! | `huge_header` | [`HugeHeader`](Behaviour::HugeHeader) | one header line of 8 MiB | refuse the head at a size bound |
//! | `many_headers` | [`ManyHeaders`](Behaviour::ManyHeaders) | 100 000 header lines | refuse the head at a header-count bound |
//! | `malformed_status_line` | [`MalformedStatusLine`](Behaviour::MalformedStatusLine) | status line `HTTP/1.1 abc Hostile` | protocol error |
//! | `conflicting_content_length` | [`ConflictingContentLength`](Behaviour::ConflictingContentLength) | `Content-Length: 2` and `Content-Length: 20` | protocol error, never pick one |
//! | `drip_body` | [`DripBody`](Behaviour::DripBody) | `Content-Length: 1000`, one byte per interval | time out (attempt timeout or read bound) |
//! | `stall_body` | [`StallBody`](Behaviour::StallBody) | `Content-Length: 1000`, 10 bytes, then silence | time out |
//! | `truncated_body` | [`TruncatedBody`](Behaviour::TruncatedBody) | `Content-Length: 1000`, 100 bytes, then FIN | incomplete-body error |
//! | `reset_in_body` | [`ResetInBody`](Behaviour::ResetInBody) | `Content-Length: 1000`, 100 bytes, then RST | transport error (reset) in the body |
//! | `chunked_forever` | [`ChunkedForever`](Behaviour::ChunkedForever) | a chunked body that never ends, as fast as possible | error at the body size bound |
//! | `chunked_drip` | [`ChunkedDrip`](Behaviour::ChunkedDrip) | a chunked body that never ends, a chunk per interval | time out (total bound) |
//! | `huge_body` | [`HugeBody`](Behaviour::HugeBody) | `Content-Length` of 10 GiB, streamed as fast as possible | error at the body size bound |
//! | `close_delimited_forever` | [`CloseDelimitedForever`](Behaviour::CloseDelimitedForever) | HTTP/1.0, no length, bytes forever | error at the body size bound |
//! | `throttle_growing` | [`ThrottleGrowing`](Behaviour::ThrottleGrowing) | `429`, `Retry-After` 1, 2, 4, ... s | rate-limit error after bounded waits |
//! | `throttle_fixed` | [`ThrottleFixed`](Behaviour::ThrottleFixed) | `429`, `Retry-After: 86400` | clamp to the cap or fail at once |
//! | `throttle_zero` | [`ThrottleZero`](Behaviour::ThrottleZero) | `429`, `Retry-After: 0`, forever | no hot loop: rate-limit error after bounded retries |
//! | `unavailable_until` | [`UnavailableUntil`](Behaviour::UnavailableUntil) | `503`, `Retry-After` an HTTP-date an hour ahead | clamp to the cap or fail at once |
//! | `retry_after_overflow` | [`RetryAfterOverflow`](Behaviour::RetryAfterOverflow) | `429`, `Retry-After: 99999999999999999999` | saturate, then clamp or fail |
//! | `retry_after_negative` | [`RetryAfterNegative`](Behaviour::RetryAfterNegative) | `429`, `Retry-After: -1` | ignore it (backoff), rate-limit error |
//! | `retry_after_float` | [`RetryAfterFloat`](Behaviour::RetryAfterFloat) | `429`, `Retry-After: 1e9` | ignore it (backoff), rate-limit error |
//! | `retry_after_garbage` | [`RetryAfterGarbage`](Behaviour::RetryAfterGarbage) | `429`, `Retry-After: soon \xff\xfe` (not UTF-8) | ignore it, never panic |
//! | `retry_after_year_9999` | [`RetryAfterYear9999`](Behaviour::RetryAfterYear9999) | `429`, `Retry-After: Fri, 31 Dec 9999 23:59:59 GMT` | clamp or fail, never overflow |
//! | `retry_after_before_1970` | [`RetryAfterBefore1970`](Behaviour::RetryAfterBefore1970) | `429`, `Retry-After: Wed, 31 Dec 1969 23:59:59 GMT` | a past date: no wait, no underflow |
//! | `token_expires_in_max` | [`TokenExpiresInMax`](Behaviour::TokenExpiresInMax) | token with `expires_in: 18446744073709551615` | no overflow computing the expiry |
//! | `token_expires_in_huge` | [`TokenExpiresInHuge`](Behaviour::TokenExpiresInHuge) | token with `expires_in: 1e300` | decode error (or a capped lifetime) |
//! | `token_expires_in_negative` | [`TokenExpiresInNegative`](Behaviour::TokenExpiresInNegative) | token with `expires_in: -1` | decode error, no token-request loop |
//! | `token_expires_in_string` | [`TokenExpiresInString`](Behaviour::TokenExpiresInString) | token with `expires_in: "300"` | decode error |
//! | `token_without_access_token` | [`TokenWithoutAccessToken`](Behaviour::TokenWithoutAccessToken) | token answer without `access_token` | decode/auth error |
//! | `token_with_newline` | [`TokenWithNewline`](Behaviour::TokenWithNewline) | `access_token` with CR LF and a header line | error; never send or show it |
//! | `json_array_for_object` | [`JsonArrayForObject`](Behaviour::JsonArrayForObject) | `[{"id":"hostile-1"}]` | decode error |
//! | `json_object_for_array` | [`JsonObjectForArray`](Behaviour::JsonObjectForArray) | `{"id":"hostile-1","items":[]}` | decode error |
//! | `json_string_for_number` | [`JsonStringForNumber`](Behaviour::JsonStringForNumber) | `"12"` | decode error |
//! | `json_null` | [`JsonNull`](Behaviour::JsonNull) | `null` | decode error |
//! | `json_deeply_nested` | [`JsonDeeplyNested`](Behaviour::JsonDeeplyNested) | arrays nested 10 000 deep | decode error, no stack overflow |
//! | `json_invalid_utf8` | [`JsonInvalidUtf8`](Behaviour::JsonInvalidUtf8) | strings that are not UTF-8 | decode error |
//! | `html_page` | [`HtmlPage`](Behaviour::HtmlPage) | `200` with an HTML `502 Bad Gateway` page | decode error |
//! | `created_elsewhere` | [`CreatedElsewhere`](Behaviour::CreatedElsewhere) | `201`, `Location` in a sibling collection | refuse the Location |
//! | `created_on_other_host` | [`CreatedOnOtherHost`](Behaviour::CreatedOnOtherHost) | `201`, `Location` on `elsewhere.invalid` | refuse the Location |
//! | `created_with_dot_dot` | [`CreatedWithDotDot`](Behaviour::CreatedWithDotDot) | `201`, `Location` leaving the collection by `..` | refuse the Location |
//! | `created_empty_location` | [`CreatedEmptyLocation`](Behaviour::CreatedEmptyLocation) | `201`, `Location:` empty | refuse: no id |
//! | `created_without_location` | [`CreatedWithoutLocation`](Behaviour::CreatedWithoutLocation) | `201` without `Location` | refuse: no id |
//! | `pages_huge_count` | [`PagesHugeCount`](Behaviour::PagesHugeCount) | `count` 10^12, one node per page | stop at a page/item cap |
//! | `pages_empty_forever` | [`PagesEmptyForever`](Behaviour::PagesEmptyForever) | `count` 10^12, empty pages | stop, never loop |
//! | `pages_same_forever` | [`PagesSameForever`](Behaviour::PagesSameForever) | `count` 10^12, the same page for every offset | stop at a cap |
//! | `graphql_count_string` | [`GraphqlCountString`](Behaviour::GraphqlCountString) | `count: "12"` | decode error |
//! | `graphql_data_null` | [`GraphqlDataNull`](Behaviour::GraphqlDataNull) | `{"data": null}` without errors | decode error |
//! | `unauthorized_forever` | [`UnauthorizedForever`](Behaviour::UnauthorizedForever) | `401` always, also after a fresh token | renew once, replay once, auth error |
//! | `slow_success` | [`SlowSuccess`](Behaviour::SlowSuccess) | the normal answer after a delay (2 s) | success within the timeout, else time out |
//!
//! Connection level (not a route: there is no connection to misbehave on):
//! [`Blackhole::start`] gives an address whose connect never completes; a correct client
//! ends with a connect-timeout error within its configured time.

mod answers;
mod behaviour;
mod blackhole;
mod catalogue;
mod graphql;
mod journal;
mod perform;
mod reply;
mod request;
mod rule;
mod server;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use behaviour::{
    ANNOUNCED_BODY_LEN, Behaviour, CUT_BODY_SENT, EXPIRES_IN_MAX, HUGE_BODY_LEN, LYING_COUNT,
    NESTING_DEPTH, STALLED_BODY_SENT,
};
pub use blackhole::Blackhole;
pub use catalogue::{
    CATALOGUE_DELAY, CATALOGUE_HEADER_BYTES, CATALOGUE_HEADER_COUNT, CATALOGUE_INTERVAL,
    CATALOGUE_LONG_RETRY_AFTER, CATALOGUE_UNAVAILABLE_FOR, Category, Entry, catalogue,
};
pub use journal::{JOURNAL_CAP, JournalEntry};
pub use rule::Rule;

/// The end of every Keycloak token endpoint's path (`/realms/{realm}` before it).
pub const KEYCLOAK_TOKEN_SUFFIX: &str = "/protocol/openid-connect/token";
/// Infrahub's login path.
pub const INFRAHUB_LOGIN_PATH: &str = "/api/auth/login";
/// Infrahub's refresh path.
pub const INFRAHUB_REFRESH_PATH: &str = "/api/auth/refresh";
/// The prefix of Infrahub's GraphQL paths (`/graphql` and `/graphql/{branch}`).
pub const GRAPHQL_PATH: &str = "/graphql";

/// The path of `realm`'s Keycloak token endpoint, for a [`Rule`] on it.
pub fn keycloak_token_path(realm: &str) -> String {
    format!("/realms/{realm}{KEYCLOAK_TOKEN_SUFFIX}")
}

/// Configures and starts a [`HostileServer`]; see [`HostileServer::builder`].
#[derive(Clone, Debug)]
pub struct HostileBuilder {
    addr: SocketAddr,
    rules: Vec<Rule>,
    token_lifetime: Duration,
    refresh_lifetime: Duration,
}

impl Default for HostileBuilder {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            rules: Vec::new(),
            token_lifetime: Duration::from_secs(300),
            refresh_lifetime: Duration::from_secs(1800),
        }
    }
}

impl HostileBuilder {
    /// The address to listen on (default `127.0.0.1:0`: loopback, a free port).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Adds a rule after those already given (rules are evaluated in order).
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// The `expires_in` of the good Keycloak tokens, in whole seconds (default 300 s).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// The `refresh_expires_in` of the good Keycloak refresh tokens (default 1800 s).
    pub fn refresh_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh_lifetime = lifetime;
        self
    }

    /// Binds the address and starts serving on the current tokio runtime.
    pub async fn start(self) -> io::Result<HostileServer> {
        let listener = TcpListener::bind(self.addr).await?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}");
        let shared = Arc::new(server::Shared {
            rules: rule::Rules::new(self.rules),
            journal: journal::Journal::default(),
            context: answers::Context::new(url.clone(), self.token_lifetime, self.refresh_lifetime),
            connections: AtomicU64::new(0),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server::serve(listener, Arc::clone(&shared), stopped));
        Ok(HostileServer {
            addr,
            url,
            shared,
            stop: Some(stop),
            task,
        })
    }
}

/// A running hostile server. Dropping it stops the accept loop and aborts every
/// connection task (stalled and endless ones included), so tests can start many;
/// [`HostileServer::shutdown`] also waits for that.
#[derive(Debug)]
pub struct HostileServer {
    addr: SocketAddr,
    url: String,
    shared: Arc<server::Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl HostileServer {
    /// A builder: `127.0.0.1:0`, no rules (every request gets [`Behaviour::Normal`]),
    /// 300 s tokens.
    pub fn builder() -> HostileBuilder {
        HostileBuilder::default()
    }

    /// Starts a server with the defaults.
    pub async fn start() -> io::Result<HostileServer> {
        Self::builder().start().await
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the base URL for both clients (Keycloak and Infrahub paths
    /// are served on the same port).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Adds a rule after the existing ones, for the requests that arrive from now on.
    pub fn rule(&self, rule: Rule) {
        self.shared.rules.push(rule);
    }

    /// Removes every rule: requests get [`Behaviour::Normal`] again.
    pub fn clear_rules(&self) {
        self.shared.rules.clear();
    }

    /// The requests read so far, oldest first (at most [`JOURNAL_CAP`]).
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.shared.journal.entries()
    }

    /// How many requests had exactly this path (without the query).
    pub fn count(&self, path: &str) -> u64 {
        self.shared.journal.count(path)
    }

    /// How many requests were read in all.
    pub fn requests(&self) -> u64 {
        self.shared.journal.total()
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Forgets the journal and the counts (not the rules' own counters).
    pub fn clear_journal(&self) {
        self.shared.journal.clear();
    }

    /// Stops the server and waits until the accept loop and every connection have ended.
    pub async fn shutdown(mut self) {
        self.stop.take();
        let _ = (&mut self.task).await;
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        // The accept loop sees the sender go, aborts every connection task and ends.
        self.stop.take();
    }
}
