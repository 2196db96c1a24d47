//! The well-formed answers: the good Keycloak and Infrahub answers ([`Behaviour::Normal`])
//! and every misbehaviour that is valid HTTP with hostile content (Retry-After, tokens,
//! JSON shapes, `Location`, GraphQL pages, `401`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use http::StatusCode;
use serde_json::{Value, json};

use super::behaviour::{ANNOUNCED_BODY_LEN, LYING_COUNT};
use super::graphql::Operation;
use super::reply::Reply;
use super::request::Request;
use super::{Behaviour, INFRAHUB_LOGIN_PATH, INFRAHUB_REFRESH_PATH, KEYCLOAK_TOKEN_SUFFIX};

/// The version `InfrahubInfo` reports.
const INFRAHUB_VERSION: &str = "1.10.6";
/// The furthest ahead [`Behaviour::UnavailableUntil`] dates go (HTTP-dates end in 9999).
const MAX_DATE_AHEAD: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// The most nodes [`Behaviour::PagesSameForever`] puts in a page.
const MAX_PAGE: u64 = 1000;

/// What the answers need from the server: its base URL, token lifetimes, a serial number.
#[derive(Debug)]
pub(super) struct Context {
    pub(super) base: String,
    pub(super) token_lifetime: Duration,
    pub(super) refresh_lifetime: Duration,
    serial: AtomicU64,
}

impl Context {
    pub(super) fn new(base: String, token_lifetime: Duration, refresh_lifetime: Duration) -> Self {
        Self {
            base,
            token_lifetime,
            refresh_lifetime,
            serial: AtomicU64::new(0),
        }
    }

    /// A number never handed out before by this server (tokens and ids).
    fn next(&self) -> u64 {
        self.serial
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1)
    }
}

/// The answer for a well-formed behaviour; `None` for the socket-level ones (and for
/// [`Behaviour::SlowSuccess`], whose wait is the connection's job). `answered` counts the
/// deciding rule's answers (see [`Behaviour::ThrottleGrowing`]).
pub(super) fn reply(
    behaviour: &Behaviour,
    answered: u64,
    request: &Request,
    cx: &Context,
) -> Option<Reply> {
    use Behaviour as B;
    let reply = match behaviour {
        B::Normal => normal(request, cx),
        B::Respond { status, headers, body } => {
            let mut reply = Reply::new(*status).body(body.to_vec());
            for (name, value) in headers {
                reply = reply.header(name, value.as_bytes());
            }
            reply
        }
        B::ThrottleGrowing => too_many(doubling(answered).to_string()),
        B::ThrottleFixed { seconds } => too_many(seconds.to_string()),
        B::ThrottleZero => too_many("0"),
        B::UnavailableUntil { after } => {
            let now = SystemTime::now();
            let date = now.checked_add((*after).min(MAX_DATE_AHEAD)).unwrap_or(now);
            Reply::json(
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"service unavailable","errors":[{"message":"service unavailable"}]}"#,
            )
            .header("Retry-After", httpdate::fmt_http_date(date))
        }
        B::RetryAfterOverflow => too_many("99999999999999999999"),
        B::RetryAfterNegative => too_many("-1"),
        B::RetryAfterFloat => too_many("1e9"),
        B::RetryAfterGarbage => too_many(&b"soon \xff\xfe"[..]),
        B::RetryAfterYear9999 => too_many("Fri, 31 Dec 9999 23:59:59 GMT"),
        B::RetryAfterBefore1970 => too_many("Wed, 31 Dec 1969 23:59:59 GMT"),
        B::TokenExpiresInMax
        | B::TokenExpiresInHuge
        | B::TokenExpiresInNegative
        | B::TokenExpiresInString
        | B::TokenWithoutAccessToken
        | B::TokenWithNewline => bad_token(behaviour, cx),
        B::JsonArrayForObject => ok_json(r#"[{"id":"hostile-1"}]"#),
        B::JsonObjectForArray => ok_json(r#"{"id":"hostile-1","items":[]}"#),
        B::JsonStringForNumber => ok_json(r#""12""#),
        B::JsonNull => ok_json("null"),
        B::JsonDeeplyNested => {
            let depth = super::behaviour::NESTING_DEPTH;
            ok_json(["[".repeat(depth), "]".repeat(depth)].concat())
        }
        B::JsonInvalidUtf8 => ok_json(&b"{\"id\":\"hostile-\xff\xfe\",\"name\":\"\xc3\x28\"}"[..]),
        B::HtmlPage => Reply::new(StatusCode::OK)
            .header("Content-Type", "text/html; charset=utf-8")
            .body(
                "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n\
                 <body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n",
            ),
        B::CreatedElsewhere
        | B::CreatedOnOtherHost
        | B::CreatedWithDotDot
        | B::CreatedEmptyLocation
        | B::CreatedWithoutLocation => created(behaviour, request, cx),
        B::PagesHugeCount
        | B::PagesEmptyForever
        | B::PagesSameForever
        | B::GraphqlCountString
        | B::GraphqlDataNull => lying_page(behaviour, request),
        B::UnauthorizedForever => Reply::json(
            StatusCode::UNAUTHORIZED,
            r#"{"error":"HTTP 401 Unauthorized","errors":[{"message":"Expired Signature"}]}"#,
        )
        .header("WWW-Authenticate", r#"Bearer error="invalid_token""#),
        B::StallHead
        | B::PartialHeadStall
        | B::DripHead { .. }
        | B::CloseBeforeResponse
        | B::ResetBeforeResponse
        | B::HugeHeader { .. }
        | B::ManyHeaders { .. }
        | B::MalformedStatusLine
        | B::ConflictingContentLength
        | B::DripBody { .. }
        | B::StallBody
        | B::TruncatedBody
        | B::ResetInBody
        | B::ChunkedForever
        | B::ChunkedDrip { .. }
        | B::HugeBody
        | B::CloseDelimitedForever
        | B::SlowSuccess { .. } => return None,
    };
    Some(reply)
}

/// 1, 2, 4, ... for the 1st, 2nd, 3rd answer, `u64::MAX` once it no longer fits.
fn doubling(answered: u64) -> u64 {
    let shift = u32::try_from(answered.saturating_sub(1)).unwrap_or(u32::MAX);
    1u64.checked_shl(shift).unwrap_or(u64::MAX)
}

fn too_many(retry_after: impl Into<Vec<u8>>) -> Reply {
    Reply::json(
        StatusCode::TOO_MANY_REQUESTS,
        r#"{"error":"too many requests","errors":[{"message":"too many requests"}]}"#,
    )
    .header("Retry-After", retry_after)
}

fn ok_json(body: impl Into<Vec<u8>>) -> Reply {
    Reply::json(StatusCode::OK, body)
}

/// What a well-behaved Keycloak or Infrahub answers (see [`Behaviour::Normal`]).
pub(super) fn normal(request: &Request, cx: &Context) -> Reply {
    let path = request.path.as_str();
    match request.method.as_str() {
        "POST" if path.ends_with(KEYCLOAK_TOKEN_SUFFIX) => keycloak_token(request, cx),
        "POST" if path == INFRAHUB_LOGIN_PATH => {
            let n = cx.next();
            ok_json(
                json!({"access_token": format!("hostile-access-{n}"), "refresh_token": format!("hostile-refresh-{n}")})
                    .to_string(),
            )
        }
        "POST" if path == INFRAHUB_REFRESH_PATH => {
            ok_json(json!({"access_token": format!("hostile-access-{}", cx.next())}).to_string())
        }
        "POST" if path.starts_with("/graphql") => graphql(request, cx),
        "POST" => {
            let collection = path.trim_end_matches('/');
            Reply::new(StatusCode::CREATED).header(
                "Location",
                format!("{}{collection}/hostile-{}", cx.base, cx.next()),
            )
        }
        "PUT" | "PATCH" | "DELETE" => Reply::new(StatusCode::NO_CONTENT),
        _ => ok_json("{}"),
    }
}

/// A Keycloak token: no refresh token for `client_credentials` (as Keycloak), one for the
/// `password` and `refresh_token` grants.
fn keycloak_token(request: &Request, cx: &Context) -> Reply {
    let n = cx.next();
    let grant = form_urlencoded::parse(&request.body)
        .find(|(key, _)| key == "grant_type")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let mut token = json!({
        "access_token": format!("hostile-access-{n}"),
        "expires_in": cx.token_lifetime.as_secs(),
        "refresh_expires_in": 0,
        "token_type": "Bearer",
        "not-before-policy": 0,
        "scope": "profile email",
    });
    if grant != "client_credentials" {
        token["refresh_token"] = format!("hostile-refresh-{n}").into();
        token["refresh_expires_in"] = cx.refresh_lifetime.as_secs().into();
    }
    ok_json(token.to_string())
}

/// A token answer (both APIs' fields) with one hostile field, written as raw JSON text
/// (`1e300` and `u64::MAX` exactly as the tests name them).
fn bad_token(behaviour: &Behaviour, cx: &Context) -> Reply {
    let n = cx.next();
    let refresh = cx.refresh_lifetime.as_secs();
    let access = format!(r#""access_token":"hostile-access-{n}","#);
    let (access, expires_in) = match behaviour {
        Behaviour::TokenExpiresInMax => (access, u64::MAX.to_string()),
        Behaviour::TokenExpiresInHuge => (access, "1e300".to_owned()),
        Behaviour::TokenExpiresInNegative => (access, "-1".to_owned()),
        Behaviour::TokenExpiresInString => (access, r#""300""#.to_owned()),
        Behaviour::TokenWithoutAccessToken => (String::new(), "300".to_owned()),
        _ => (
            r#""access_token":"hostile\r\nx-injected: 1","#.to_owned(),
            "300".to_owned(),
        ),
    };
    ok_json(format!(
        r#"{{{access}"expires_in":{expires_in},"refresh_token":"hostile-refresh-{n}","refresh_expires_in":{refresh},"token_type":"Bearer"}}"#
    ))
}

/// `201 Created` with a `Location` that is not inside the collection posted to.
fn created(behaviour: &Behaviour, request: &Request, cx: &Context) -> Reply {
    let id = format!("hostile-{}", cx.next());
    let collection = request.path.trim_end_matches('/');
    let parent = collection.rsplit_once('/').map_or("", |(parent, _)| parent);
    let base = &cx.base;
    let location = match behaviour {
        Behaviour::CreatedElsewhere => Some(format!("{base}{parent}/elsewhere/{id}")),
        Behaviour::CreatedOnOtherHost => Some(format!("http://elsewhere.invalid{collection}/{id}")),
        Behaviour::CreatedWithDotDot => Some(format!("{base}{collection}/../../elsewhere/{id}")),
        Behaviour::CreatedEmptyLocation => Some(String::new()),
        _ => None,
    };
    let reply = Reply::new(StatusCode::CREATED);
    match location {
        Some(location) => reply.header("Location", location),
        None => reply,
    }
}

/// A node of `kind` that the generated Infrahub types decode (`id` is all they require).
fn node(kind: &str, n: u64) -> Value {
    json!({
        "id": format!("hostile-{n}"),
        "hfid": [format!("hostile-{n}")],
        "display_label": format!("hostile {n}"),
        "__typename": kind,
    })
}

fn graphql(request: &Request, cx: &Context) -> Reply {
    let op = Operation::read(&request.body);
    let field = op.field.as_str();
    let value = if field == "InfrahubInfo" {
        json!({"version": INFRAHUB_VERSION})
    } else if op.mutation {
        let kind = ["Create", "Update", "Upsert"]
            .iter()
            .find_map(|suffix| field.strip_suffix(suffix));
        match kind {
            Some(kind) => json!({"ok": true, "object": node(kind, cx.next())}),
            None => json!({"ok": true}),
        }
    } else {
        json!({"count": 0, "edges": []})
    };
    ok_json(json!({"data": {field: value}}).to_string())
}

/// The GraphQL answers that lie about pages or shapes.
fn lying_page(behaviour: &Behaviour, request: &Request) -> Reply {
    let op = Operation::read(&request.body);
    let kind = op.field.as_str();
    let edge = |n: u64| json!({"node": node(kind, n)});
    let page = match behaviour {
        Behaviour::PagesHugeCount => {
            json!({"count": LYING_COUNT, "edges": [edge(op.offset.saturating_add(1))]})
        }
        Behaviour::PagesEmptyForever => json!({"count": LYING_COUNT, "edges": []}),
        Behaviour::PagesSameForever => {
            let edges: Vec<Value> = (1..=op.limit.clamp(1, MAX_PAGE)).map(edge).collect();
            json!({"count": LYING_COUNT, "edges": edges})
        }
        Behaviour::GraphqlCountString => json!({"count": "12", "edges": []}),
        _ => return ok_json(r#"{"data":null}"#),
    };
    ok_json(json!({"data": {kind: page}}).to_string())
}

/// The 1000-byte JSON document the body misbehaviours send (or start to).
pub(super) fn announced_body() -> Vec<u8> {
    let padding = ANNOUNCED_BODY_LEN.saturating_sub(r#"{"pad":""}"#.len());
    format!(r#"{{"pad":"{}"}}"#, "a".repeat(padding)).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_retry_after_doubles_then_saturates() {
        let delays: Vec<u64> = [0, 1, 2, 3, 4, 64, 65, u64::MAX]
            .into_iter()
            .map(doubling)
            .collect();
        assert_eq!(delays, [1, 1, 2, 4, 8, 1 << 63, u64::MAX, u64::MAX]);
    }

    #[test]
    fn the_announced_body_is_json_of_the_announced_length() {
        let body = announced_body();
        assert_eq!(body.len(), ANNOUNCED_BODY_LEN);
        assert!(serde_json::from_slice::<Value>(&body).is_ok());
    }
}
