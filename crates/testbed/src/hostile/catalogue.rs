//! Every misbehaviour as data ([`catalogue`]), for suites that iterate them and for docs.

use std::time::Duration;

use super::Behaviour;

/// The interval the catalogue gives the dripping behaviours.
pub const CATALOGUE_INTERVAL: Duration = Duration::from_millis(20);
/// The delay the catalogue gives [`Behaviour::SlowSuccess`].
pub const CATALOGUE_DELAY: Duration = Duration::from_secs(2);
/// The header size the catalogue gives [`Behaviour::HugeHeader`]: 8 MiB.
pub const CATALOGUE_HEADER_BYTES: usize = 8 * 1024 * 1024;
/// The header count the catalogue gives [`Behaviour::ManyHeaders`].
pub const CATALOGUE_HEADER_COUNT: usize = 100_000;
/// The delay the catalogue gives [`Behaviour::ThrottleFixed`]: a day.
pub const CATALOGUE_LONG_RETRY_AFTER: u64 = 86_400;
/// How far ahead the catalogue's [`Behaviour::UnavailableUntil`] date is: an hour.
pub const CATALOGUE_UNAVAILABLE_FOR: Duration = Duration::from_secs(3600);

/// Where a misbehaviour sits, which also says which request it is meant to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Category {
    /// The response head (any request).
    Head,
    /// The response body after a valid head (any request).
    Body,
    /// `429`/`503` with hostile `Retry-After` values (any request).
    Throttle,
    /// Token answers: meant for a Keycloak token endpoint or `POST /api/auth/login` /
    /// `POST /api/auth/refresh`.
    Token,
    /// JSON of the wrong shape (any request that expects JSON).
    Json,
    /// `201 Created` with a bad `Location`: meant for a create (`POST` to a collection).
    Location,
    /// Lying GraphQL answers: meant for `POST /graphql...` list (or count) queries.
    Pages,
    /// `401` forever (any authenticated request).
    Auth,
    /// A slow but correct answer (any request).
    Timing,
}

impl Category {
    /// A short lower-case name (`head`, `body`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Category::Head => "head",
            Category::Body => "body",
            Category::Throttle => "throttle",
            Category::Token => "token",
            Category::Json => "json",
            Category::Location => "location",
            Category::Pages => "pages",
            Category::Auth => "auth",
            Category::Timing => "timing",
        }
    }
}

/// One misbehaviour of the [`catalogue`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// Its name, [`Behaviour::name`] (unique in the catalogue).
    pub name: &'static str,
    /// Where it sits and which request it answers.
    pub category: Category,
    /// The behaviour, with the catalogue's durations and sizes (short intervals).
    pub behaviour: Behaviour,
    /// What the server does, in one line.
    pub does: &'static str,
    /// What a correct client must do.
    pub client_must: &'static str,
}

/// Every misbehaviour the server knows (not [`Behaviour::Normal`] nor
/// [`Behaviour::Respond`]), in the order of the module docs' table, with short intervals
/// ([`CATALOGUE_INTERVAL`]) so tests stay fast. The connection-level blackhole is not a
/// route behaviour: see [`Blackhole`](super::Blackhole).
pub fn catalogue() -> Vec<Entry> {
    use Behaviour as B;
    use Category as C;
    let entry = |category, behaviour: Behaviour, does, client_must| Entry {
        name: behaviour.name(),
        category,
        behaviour,
        does,
        client_must,
    };
    let interval = CATALOGUE_INTERVAL;
    vec![
        entry(
            C::Head,
            B::StallHead,
            "reads the request, sends nothing, keeps the socket open",
            "time out",
        ),
        entry(
            C::Head,
            B::PartialHeadStall,
            "sends `HTTP/1.1 200 OK\\r\\nContent-Ty`, then nothing",
            "time out",
        ),
        entry(
            C::Head,
            B::DripHead { interval },
            "sends a valid head one byte per interval",
            "time out when the head outlasts the attempt timeout",
        ),
        entry(
            C::Head,
            B::CloseBeforeResponse,
            "reads the request, closes (FIN) without a byte",
            "transport error; retry only what is safe to repeat",
        ),
        entry(
            C::Head,
            B::ResetBeforeResponse,
            "reads the request, resets (RST) without a byte",
            "transport error (connection reset)",
        ),
        entry(
            C::Head,
            B::HugeHeader {
                bytes: CATALOGUE_HEADER_BYTES,
            },
            "one header line of 8 MiB",
            "refuse the head at a size bound",
        ),
        entry(
            C::Head,
            B::ManyHeaders {
                count: CATALOGUE_HEADER_COUNT,
            },
            "100 000 header lines",
            "refuse the head at a header-count bound",
        ),
        entry(
            C::Head,
            B::MalformedStatusLine,
            "status line `HTTP/1.1 abc Hostile`",
            "protocol error",
        ),
        entry(
            C::Head,
            B::ConflictingContentLength,
            "`Content-Length: 2` and `Content-Length: 20`",
            "protocol error, never pick one",
        ),
        entry(
            C::Body,
            B::DripBody { interval },
            "`Content-Length: 1000`, one byte per interval",
            "time out (attempt timeout or read bound)",
        ),
        entry(
            C::Body,
            B::StallBody,
            "`Content-Length: 1000`, 10 bytes, then silence",
            "time out",
        ),
        entry(
            C::Body,
            B::TruncatedBody,
            "`Content-Length: 1000`, 100 bytes, then FIN",
            "incomplete-body error",
        ),
        entry(
            C::Body,
            B::ResetInBody,
            "`Content-Length: 1000`, 100 bytes, then RST",
            "transport error (reset) in the body",
        ),
        entry(
            C::Body,
            B::ChunkedForever,
            "a chunked body that never ends, as fast as possible",
            "error at the body size bound",
        ),
        entry(
            C::Body,
            B::ChunkedDrip { interval },
            "a chunked body that never ends, a chunk per interval",
            "time out (total bound)",
        ),
        entry(
            C::Body,
            B::HugeBody,
            "`Content-Length` of 10 GiB, streamed as fast as possible",
            "error at the body size bound",
        ),
        entry(
            C::Body,
            B::CloseDelimitedForever,
            "HTTP/1.0, no length, bytes forever",
            "error at the body size bound",
        ),
        entry(
            C::Throttle,
            B::ThrottleGrowing,
            "`429`, `Retry-After` 1, 2, 4, ... s",
            "rate-limit error after bounded waits",
        ),
        entry(
            C::Throttle,
            B::ThrottleFixed {
                seconds: CATALOGUE_LONG_RETRY_AFTER,
            },
            "`429`, `Retry-After: 86400`",
            "clamp to the cap or fail at once",
        ),
        entry(
            C::Throttle,
            B::ThrottleZero,
            "`429`, `Retry-After: 0`, forever",
            "no hot loop: rate-limit error after bounded retries",
        ),
        entry(
            C::Throttle,
            B::UnavailableUntil {
                after: CATALOGUE_UNAVAILABLE_FOR,
            },
            "`503`, `Retry-After` an HTTP-date an hour ahead",
            "clamp to the cap or fail at once",
        ),
        entry(
            C::Throttle,
            B::RetryAfterOverflow,
            "`429`, `Retry-After: 99999999999999999999`",
            "saturate, then clamp or fail",
        ),
        entry(
            C::Throttle,
            B::RetryAfterNegative,
            "`429`, `Retry-After: -1`",
            "ignore it (backoff), rate-limit error",
        ),
        entry(
            C::Throttle,
            B::RetryAfterFloat,
            "`429`, `Retry-After: 1e9`",
            "ignore it (backoff), rate-limit error",
        ),
        entry(
            C::Throttle,
            B::RetryAfterGarbage,
            "`429`, `Retry-After: soon \\xff\\xfe` (not UTF-8)",
            "ignore it, never panic",
        ),
        entry(
            C::Throttle,
            B::RetryAfterYear9999,
            "`429`, `Retry-After: Fri, 31 Dec 9999 23:59:59 GMT`",
            "clamp or fail, never overflow",
        ),
        entry(
            C::Throttle,
            B::RetryAfterBefore1970,
            "`429`, `Retry-After: Wed, 31 Dec 1969 23:59:59 GMT`",
            "a past date: no wait, no underflow",
        ),
        entry(
            C::Token,
            B::TokenExpiresInMax,
            "token with `expires_in: 18446744073709551615`",
            "no overflow computing the expiry",
        ),
        entry(
            C::Token,
            B::TokenExpiresInHuge,
            "token with `expires_in: 1e300`",
            "decode error (or a capped lifetime)",
        ),
        entry(
            C::Token,
            B::TokenExpiresInNegative,
            "token with `expires_in: -1`",
            "decode error, no token-request loop",
        ),
        entry(
            C::Token,
            B::TokenExpiresInString,
            "token with `expires_in: \"300\"`",
            "decode error",
        ),
        entry(
            C::Token,
            B::TokenWithoutAccessToken,
            "token answer without `access_token`",
            "decode/auth error",
        ),
        entry(
            C::Token,
            B::TokenWithNewline,
            "`access_token` with CR LF and a header line",
            "error; never send or show it",
        ),
        entry(
            C::Json,
            B::JsonArrayForObject,
            "`[{\"id\":\"hostile-1\"}]`",
            "decode error",
        ),
        entry(
            C::Json,
            B::JsonObjectForArray,
            "`{\"id\":\"hostile-1\",\"items\":[]}`",
            "decode error",
        ),
        entry(C::Json, B::JsonStringForNumber, "`\"12\"`", "decode error"),
        entry(C::Json, B::JsonNull, "`null`", "decode error"),
        entry(
            C::Json,
            B::JsonDeeplyNested,
            "arrays nested 10 000 deep",
            "decode error, no stack overflow",
        ),
        entry(
            C::Json,
            B::JsonInvalidUtf8,
            "strings that are not UTF-8",
            "decode error",
        ),
        entry(
            C::Json,
            B::HtmlPage,
            "`200` with an HTML `502 Bad Gateway` page",
            "decode error",
        ),
        entry(
            C::Location,
            B::CreatedElsewhere,
            "`201`, `Location` in a sibling collection",
            "refuse the Location",
        ),
        entry(
            C::Location,
            B::CreatedOnOtherHost,
            "`201`, `Location` on `elsewhere.invalid`",
            "refuse the Location",
        ),
        entry(
            C::Location,
            B::CreatedWithDotDot,
            "`201`, `Location` leaving the collection by `..`",
            "refuse the Location",
        ),
        entry(
            C::Location,
            B::CreatedEmptyLocation,
            "`201`, `Location:` empty",
            "refuse: no id",
        ),
        entry(
            C::Location,
            B::CreatedWithoutLocation,
            "`201` without `Location`",
            "refuse: no id",
        ),
        entry(
            C::Pages,
            B::PagesHugeCount,
            "`count` 10^12, one node per page",
            "stop at a page/item cap",
        ),
        entry(
            C::Pages,
            B::PagesEmptyForever,
            "`count` 10^12, empty pages",
            "stop, never loop",
        ),
        entry(
            C::Pages,
            B::PagesSameForever,
            "`count` 10^12, the same page for every offset",
            "stop at a cap",
        ),
        entry(
            C::Pages,
            B::GraphqlCountString,
            "`count: \"12\"`",
            "decode error",
        ),
        entry(
            C::Pages,
            B::GraphqlDataNull,
            "`{\"data\": null}` without errors",
            "decode error",
        ),
        entry(
            C::Auth,
            B::UnauthorizedForever,
            "`401` always, also after a fresh token",
            "renew once, replay once, auth error",
        ),
        entry(
            C::Timing,
            B::SlowSuccess {
                delay: CATALOGUE_DELAY,
            },
            "the normal answer after a delay (2 s)",
            "success within the timeout, else time out",
        ),
    ]
}
