//! What the hostile server does with a request: [`Behaviour`], one variant per misbehaviour.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;

/// The `Content-Length` the body misbehaviours announce (drip, stall, truncate, reset).
pub const ANNOUNCED_BODY_LEN: usize = 1000;
/// How many body bytes [`Behaviour::StallBody`] sends before it falls silent.
pub const STALLED_BODY_SENT: usize = 10;
/// How many body bytes [`Behaviour::TruncatedBody`] and [`Behaviour::ResetInBody`] send.
pub const CUT_BODY_SENT: usize = 100;
/// The `Content-Length` of [`Behaviour::HugeBody`]: 10 GiB.
pub const HUGE_BODY_LEN: u64 = 10 * 1024 * 1024 * 1024;
/// How deep [`Behaviour::JsonDeeplyNested`] nests its arrays.
pub const NESTING_DEPTH: usize = 10_000;
/// The `count` the lying Infrahub pages claim: 10^12.
pub const LYING_COUNT: u64 = 1_000_000_000_000;
/// The `expires_in` of [`Behaviour::TokenExpiresInMax`]: `u64::MAX`.
pub const EXPIRES_IN_MAX: u64 = u64::MAX;

/// What the server does with a request that a [`Rule`](super::Rule) picked.
///
/// Each variant says what the server does and what a correct client must do. "Must end
/// with an error" always means: a typed error, within the time its configuration allows
/// (per-attempt timeout, deadline, retry and pause caps), without panicking, and without a
/// secret in the error. Unless a variant says otherwise the server keeps the connection open
/// for the next request after a well-formed answer, and closes it after a malformed one.
///
/// The variants with a duration or a size take it as a field; [`catalogue`](super::catalogue)
/// lists every misbehaviour with the values the tests use.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Behaviour {
    /// Not a misbehaviour: what a well-behaved server answers. A Keycloak token endpoint
    /// (`POST .../protocol/openid-connect/token`) answers a fresh bearer token (a refresh
    /// token too for the `password` and `refresh_token` grants); `POST /api/auth/login` a
    /// fresh access and refresh token pair, `POST /api/auth/refresh` a fresh access token;
    /// `POST /graphql...` an empty page (`count: 0`), `InfrahubInfo` a version, a mutation
    /// `{ok: true, object: {id ...}}`; any other `POST` `201` with a `Location` inside the
    /// collection; `PUT`/`PATCH`/`DELETE` `204`; anything else `200 {}`. Credentials are not
    /// checked. This is what requests no rule picks get.
    Normal,
    /// Not a misbehaviour: exactly this answer (a `Content-Length` is added), so a test can
    /// give a call the body it needs.
    Respond {
        /// The status code.
        status: StatusCode,
        /// Extra header lines, written as given.
        headers: Vec<(String, String)>,
        /// The body.
        body: Bytes,
    },

    // ---- the response head ----
    /// Reads the request, then sends nothing and keeps the socket open (until the client
    /// closes it or the server is dropped). The client must end with a timeout error.
    StallHead,
    /// Sends the start of a head (`HTTP/1.1 200 OK\r\nContent-Ty`), then nothing, socket
    /// open. The client must end with a timeout error.
    PartialHeadStall,
    /// Sends the [`Behaviour::Normal`] answer's head one byte per `interval` (the first one
    /// after an interval), then its body at once. The head is valid but takes
    /// `len × interval` (about 100 bytes): a client must end with a timeout error when that
    /// exceeds its per-attempt timeout, whatever the progress.
    DripHead {
        /// The pause before each byte of the head.
        interval: Duration,
    },
    /// Reads the request, then closes the connection (FIN) without a byte: a pooled
    /// connection the server dropped. The client must end with a transport error (and may
    /// retry only what is safe to send twice).
    CloseBeforeResponse,
    /// Reads the request, then resets the connection (RST, `SO_LINGER` 0) without a byte.
    /// The client must end with a transport error (connection reset).
    ResetBeforeResponse,
    /// A `200` whose head holds one header line of `bytes` bytes (several MiB), then a
    /// 2-byte body; closes after. The client must refuse the head (a bounded header size)
    /// with an error, not buffer it all.
    HugeHeader {
        /// The length of the one header value.
        bytes: usize,
    },
    /// A `200` whose head holds `count` header lines (100 000), then a 2-byte body; closes
    /// after. The client must refuse the head (a bounded number of headers) with an error.
    ManyHeaders {
        /// How many header lines.
        count: usize,
    },
    /// A status line that is not HTTP (`HTTP/1.1 abc Hostile`), then a short body; closes
    /// after. The client must end with a protocol error.
    MalformedStatusLine,
    /// A `200` with two different `Content-Length`s (2 and 20), the 2-byte body, then a
    /// close. RFC 9112 §6.3: the client must treat the response as invalid and end with an
    /// error, not pick one length.
    ConflictingContentLength,

    // ---- the response body ----
    /// A `200` with `Content-Length: 1000`, then one body byte per `interval` (the first one
    /// after an interval). The client must end with a timeout error when the whole body
    /// cannot arrive within its per-attempt timeout (or an idle/total read bound).
    DripBody {
        /// The pause before each body byte.
        interval: Duration,
    },
    /// A `200` with `Content-Length: 1000`, 10 body bytes, then silence with the socket
    /// open. The client must end with a timeout error.
    StallBody,
    /// A `200` with `Content-Length: 1000`, 100 body bytes, then a close (FIN). The client
    /// must end with an error (incomplete body), never hand the 100 bytes on as the body.
    TruncatedBody,
    /// A `200` with `Content-Length: 1000`, 100 body bytes, then, 20 ms later, a reset (RST).
    /// The client must end with a transport error (connection reset) in the body.
    ResetInBody,
    /// A `200` with a chunked body that never ends: 16 KiB chunks as fast as the socket
    /// takes them. The client must end with an error at its body size bound (or its
    /// timeout), never buffer without limit.
    ChunkedForever,
    /// A `200` with a chunked body that never ends: a 2-byte chunk every `interval`. The
    /// client must end with a timeout error (every chunk is progress; only a total bound
    /// ends it).
    ChunkedDrip {
        /// The pause before each chunk.
        interval: Duration,
    },
    /// A `200` with `Content-Length: 10737418240` (10 GiB), streamed as fast as the socket
    /// takes it. The client must end with an error at its body size bound, not buffer 10 GiB.
    HugeBody,
    /// An `HTTP/1.0 200` without `Content-Length` (the body ends at close) that never
    /// closes: bytes as fast as the socket takes them. The client must end with an error
    /// at its body size bound (or its timeout).
    CloseDelimitedForever,

    // ---- throttling and Retry-After ----
    /// `429` with `Retry-After` 1, 2, 4, 8, ... seconds, doubling each time this rule
    /// answers (saturating at `u64::MAX`). The client must end with a rate-limit error once
    /// its retries or its Retry-After cap are spent, having waited at most its cap each time.
    ThrottleGrowing,
    /// `429` with `Retry-After: {seconds}` every time (a long one: a day). The client must
    /// clamp the wait to its cap or fail at once (its Retry-After mode), never sleep a day.
    ThrottleFixed {
        /// The delay sent.
        seconds: u64,
    },
    /// `429` with `Retry-After: 0` every time. The client must not retry in a hot loop:
    /// its retry count, budget and rate limit end it with a rate-limit error.
    ThrottleZero,
    /// `503` with an HTTP-date `Retry-After` of now + `after` (capped at ten years) every
    /// time. The client must clamp or fail at once as for a long delay in seconds.
    UnavailableUntil {
        /// How far in the future the date is.
        after: Duration,
    },
    /// `429` with `Retry-After: 99999999999999999999` (more than `u64::MAX`). The client
    /// must saturate (then clamp or fail), never overflow or panic.
    RetryAfterOverflow,
    /// `429` with `Retry-After: -1`. Not a valid delay: the client must ignore it (fall back
    /// to its backoff) and end with a rate-limit error after its retries.
    RetryAfterNegative,
    /// `429` with `Retry-After: 1e9`. Not a valid delay (digits only): ignore it, as above.
    RetryAfterFloat,
    /// `429` with a `Retry-After` that is neither a number nor a date, with bytes that are
    /// not ASCII (`soon \xff\xfe`, not valid UTF-8). Ignore it, never panic on `to_str`.
    RetryAfterGarbage,
    /// `429` with `Retry-After: Fri, 31 Dec 9999 23:59:59 GMT`. The client must clamp or
    /// fail at once, never overflow an `Instant`.
    RetryAfterYear9999,
    /// `429` with `Retry-After: Wed, 31 Dec 1969 23:59:59 GMT` (before the Unix epoch). A
    /// date in the past means no wait; the client must not panic or underflow.
    RetryAfterBefore1970,

    // ---- token answers (for a Keycloak token endpoint or an Infrahub login/refresh) ----
    /// A token answer whose `expires_in` is `18446744073709551615` (`u64::MAX`). The client
    /// must not overflow computing the expiry (saturate or cap the lifetime).
    TokenExpiresInMax,
    /// A token answer whose `expires_in` is `1e300`. The client must refuse it as a decode
    /// error (or cap it), never overflow.
    TokenExpiresInHuge,
    /// A token answer whose `expires_in` is `-1`. The client must refuse it as a decode
    /// error (or treat it as expired without looping on token requests).
    TokenExpiresInNegative,
    /// A token answer whose `expires_in` is the string `"300"`. JSON of the wrong shape: a
    /// decode error.
    TokenExpiresInString,
    /// A token answer without `access_token`. The client must end with a decode/auth error.
    TokenWithoutAccessToken,
    /// A token answer whose `access_token` holds a CR LF and a header line
    /// (`hostile\r\nx-injected: 1`): not a header value. The client must end with an error,
    /// never send it (header injection) and never show it.
    TokenWithNewline,

    // ---- JSON of the wrong shape (bare bodies, `200 application/json`) ----
    /// `[{"id":"hostile-1"}]` where an object is expected. A decode error.
    JsonArrayForObject,
    /// `{"id":"hostile-1","items":[]}` where an array is expected. A decode error.
    JsonObjectForArray,
    /// `"12"` where a number is expected (a count). A decode error.
    JsonStringForNumber,
    /// `null`. A decode error wherever a value is required.
    JsonNull,
    /// Arrays nested 10 000 deep (`[[[...]]]`). A decode error, never a stack overflow.
    JsonDeeplyNested,
    /// An object whose strings are not valid UTF-8 (`\xff\xfe`, `\xc3\x28`). A decode error.
    JsonInvalidUtf8,
    /// `200` with an HTML error page (`text/html`, a proxy's `502 Bad Gateway`). A decode
    /// error (the status says success, the body is not JSON).
    HtmlPage,

    // ---- 201 Created with a Location the client must not follow blindly ----
    /// `201` with a `Location` in another collection (`{base}/.../elsewhere/hostile-N`, a
    /// sibling of the collection posted to). The client must refuse it (an error), not
    /// return an id from elsewhere.
    CreatedElsewhere,
    /// `201` with a `Location` on another host (`http://elsewhere.invalid/...`). Refuse it.
    CreatedOnOtherHost,
    /// `201` with a `Location` that starts inside the collection but leaves it through `..`
    /// segments (`{collection}/../../elsewhere/hostile-N`). Refuse it (normalise first).
    CreatedWithDotDot,
    /// `201` with an empty `Location`. Refuse it: no id.
    CreatedEmptyLocation,
    /// `201` without `Location`. Refuse it: no id.
    CreatedWithoutLocation,

    // ---- Infrahub GraphQL answers that lie (for `POST /graphql...` list queries) ----
    /// `{data: {Kind: {count: 10^12, edges: [one node]}}}`: a short page (one node, ids
    /// following the requested offset) and a count that never ends. A paging client must
    /// stop at its page or item cap with an error, not page 10^12 times.
    PagesHugeCount,
    /// `{data: {Kind: {count: 10^12, edges: []}}}` for every page. The client must stop
    /// (an empty page ends paging, or a cap), never loop.
    PagesEmptyForever,
    /// The same full page (`limit` nodes, ids `hostile-1..`, at most 1000) for every offset,
    /// `count` 10^12. The client must stop at a cap (or on no progress), never loop.
    PagesSameForever,
    /// `{data: {Kind: {count: "12", edges: []}}}`: a string for the count. A decode error.
    GraphqlCountString,
    /// `{"data": null}` without `errors`. A decode error.
    GraphqlDataNull,

    // ---- authentication ----
    /// `401` to every request, also after a fresh token (`WWW-Authenticate: Bearer`, a body
    /// both clients read as an expired token). The client must renew once, replay once, then
    /// end with an auth error: no loop of token requests.
    UnauthorizedForever,

    // ---- timing ----
    /// The [`Behaviour::Normal`] answer after `delay`. Success when `delay` is within the
    /// client's per-attempt timeout and deadline; a timeout error otherwise.
    SlowSuccess {
        /// How long the server waits before it answers.
        delay: Duration,
    },
}

impl Behaviour {
    /// The behaviour's name, as in [`catalogue`](super::catalogue) and the journal.
    pub fn name(&self) -> &'static str {
        match self {
            Behaviour::Normal => "normal",
            Behaviour::Respond { .. } => "respond",
            Behaviour::StallHead => "stall_head",
            Behaviour::PartialHeadStall => "partial_head_stall",
            Behaviour::DripHead { .. } => "drip_head",
            Behaviour::CloseBeforeResponse => "close_before_response",
            Behaviour::ResetBeforeResponse => "reset_before_response",
            Behaviour::HugeHeader { .. } => "huge_header",
            Behaviour::ManyHeaders { .. } => "many_headers",
            Behaviour::MalformedStatusLine => "malformed_status_line",
            Behaviour::ConflictingContentLength => "conflicting_content_length",
            Behaviour::DripBody { .. } => "drip_body",
            Behaviour::StallBody => "stall_body",
            Behaviour::TruncatedBody => "truncated_body",
            Behaviour::ResetInBody => "reset_in_body",
            Behaviour::ChunkedForever => "chunked_forever",
            Behaviour::ChunkedDrip { .. } => "chunked_drip",
            Behaviour::HugeBody => "huge_body",
            Behaviour::CloseDelimitedForever => "close_delimited_forever",
            Behaviour::ThrottleGrowing => "throttle_growing",
            Behaviour::ThrottleFixed { .. } => "throttle_fixed",
            Behaviour::ThrottleZero => "throttle_zero",
            Behaviour::UnavailableUntil { .. } => "unavailable_until",
            Behaviour::RetryAfterOverflow => "retry_after_overflow",
            Behaviour::RetryAfterNegative => "retry_after_negative",
            Behaviour::RetryAfterFloat => "retry_after_float",
            Behaviour::RetryAfterGarbage => "retry_after_garbage",
            Behaviour::RetryAfterYear9999 => "retry_after_year_9999",
            Behaviour::RetryAfterBefore1970 => "retry_after_before_1970",
            Behaviour::TokenExpiresInMax => "token_expires_in_max",
            Behaviour::TokenExpiresInHuge => "token_expires_in_huge",
            Behaviour::TokenExpiresInNegative => "token_expires_in_negative",
            Behaviour::TokenExpiresInString => "token_expires_in_string",
            Behaviour::TokenWithoutAccessToken => "token_without_access_token",
            Behaviour::TokenWithNewline => "token_with_newline",
            Behaviour::JsonArrayForObject => "json_array_for_object",
            Behaviour::JsonObjectForArray => "json_object_for_array",
            Behaviour::JsonStringForNumber => "json_string_for_number",
            Behaviour::JsonNull => "json_null",
            Behaviour::JsonDeeplyNested => "json_deeply_nested",
            Behaviour::JsonInvalidUtf8 => "json_invalid_utf8",
            Behaviour::HtmlPage => "html_page",
            Behaviour::CreatedElsewhere => "created_elsewhere",
            Behaviour::CreatedOnOtherHost => "created_on_other_host",
            Behaviour::CreatedWithDotDot => "created_with_dot_dot",
            Behaviour::CreatedEmptyLocation => "created_empty_location",
            Behaviour::CreatedWithoutLocation => "created_without_location",
            Behaviour::PagesHugeCount => "pages_huge_count",
            Behaviour::PagesEmptyForever => "pages_empty_forever",
            Behaviour::PagesSameForever => "pages_same_forever",
            Behaviour::GraphqlCountString => "graphql_count_string",
            Behaviour::GraphqlDataNull => "graphql_data_null",
            Behaviour::UnauthorizedForever => "unauthorized_forever",
            Behaviour::SlowSuccess { .. } => "slow_success",
        }
    }
}
