//! Every decoder of pacer-admin, fed arbitrary bytes and arbitrary JSON (biased towards the
//! field names the decoders look for), answers a value or a typed error and never panics:
//! `decode::json` for the generated representations and `ServerInfo`, `decode::error_for`
//! for any status and body, `decode::created_id` for any collection and `Location`,
//! `decode::excerpt`, and the token source's answer and refusal parsers. Beyond "no panic":
//! an id from `created_id` is one non-empty segment directly under the collection (and a
//! well-formed `Location` gives back the id it encodes), excerpts stay within their bound,
//! and a secret under a secret-looking key (or anywhere, for a secret operation) never shows
//! in an error.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use pacer::auth::{Grant, MAX_REFUSAL_TEXT, SecretString, TokenSource};
use pacer_admin::auth::KeycloakTokenSource;
use pacer_admin::decode::{created_id, error_for, excerpt, json};
use pacer_admin::types::{
    ClientRepresentation, ComponentExportRepresentation, CredentialRepresentation,
    RealmRepresentation, UserRepresentation,
};
use pacer_admin::{Credentials, EXCERPT_LIMIT, Error, REDACTED_EXCERPT, ServerInfo, looks_secret};
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use proptest::prelude::*;
use serde_json::Value;

/// What no error may show: it stands for a secret in the generated bodies.
const SENTINEL: &str = "SENTINEL-93b2";

/// The longest excerpt: [`EXCERPT_LIMIT`] bytes and the `…` that marks a cut.
const EXCERPT_MAX: usize = EXCERPT_LIMIT + '…'.len_utf8();

const KEYS: &[&str] = &[
    "id",
    "clientId",
    "name",
    "realm",
    "enabled",
    "type",
    "value",
    "secret",
    "secretData",
    "password",
    "bindCredential",
    "credentials",
    "config",
    "attributes",
    "access",
    "users",
    "clients",
    "components",
    "subComponents",
    "smtpServer",
    "redirectUris",
    "protocolMappers",
    "systemInfo",
    "version",
    "errorMessage",
    "error",
    "error_description",
    "access_token",
    "refresh_token",
    "expires_in",
    "refresh_expires_in",
    "newField",
];

/// Strings the decoders compare against, so that near-valid shapes come up.
const STRINGS: &[&str] = &[
    "secret", "password", "Bearer", "26.6.0", "true", "300", "", "a/b", "..",
];

fn json_value() -> impl Strategy<Value = Value> {
    pacer_testbed::support::arbitrary_json(STRINGS, KEYS)
}

/// `value` with whatever is under a secret-looking key replaced by the sentinel: the
/// sentinel then appears only where an answer's secret would.
fn with_secrets(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let value = if looks_secret(&key) {
                        Value::String(SENTINEL.to_owned())
                    } else {
                        with_secrets(value)
                    };
                    (key, value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(with_secrets).collect()),
        other => other,
    }
}

/// Arbitrary bytes, deep nesting and the text of arbitrary JSON cut anywhere.
fn bodies() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        (1usize..3000, any::<bool>()).prop_map(|(depth, object)| {
            let open = if object { "{\"a\":" } else { "[" };
            open.repeat(depth).into_bytes()
        }),
        (json_value(), any::<prop::sample::Index>()).prop_map(|(value, cut)| {
            let text = value.to_string().into_bytes();
            let at = cut.index(text.len() + 1);
            text[..at].to_vec()
        }),
    ]
}

fn statuses() -> impl Strategy<Value = StatusCode> {
    (100u16..1000).prop_map(|code| StatusCode::from_u16(code).unwrap())
}

/// The excerpt or message an error carries, if any.
fn quoted(error: &Error) -> Option<&str> {
    match error {
        Error::NotFound { message } | Error::Conflict { message } => Some(message),
        Error::Server { excerpt, .. }
        | Error::Status { excerpt, .. }
        | Error::Decode { excerpt, .. } => Some(excerpt),
        _ => None,
    }
}

/// Every typed decoder on `body`, for a plain and for a secret operation: a value or an
/// [`Error::Decode`] within its bound; a secret operation's error quotes nothing.
fn every_json_decoder(body: &[u8]) {
    fn one<T: serde::de::DeserializeOwned + std::fmt::Debug>(body: &[u8]) {
        for secret_body in [false, true] {
            match json::<T>(body, secret_body) {
                Ok(value) => {
                    let _ = format!("{value:?}");
                }
                Err(error) => {
                    let Error::Decode { excerpt, .. } = &error else {
                        panic!("not a decode error: {error:?}");
                    };
                    assert!(excerpt.len() <= EXCERPT_MAX, "{}", excerpt.len());
                    if secret_body {
                        assert_eq!(excerpt, REDACTED_EXCERPT);
                        let shown = format!("{error} {error:?}");
                        assert!(!shown.contains(SENTINEL), "{shown}");
                    }
                }
            }
        }
    }
    one::<RealmRepresentation>(body);
    one::<ClientRepresentation>(body);
    one::<UserRepresentation>(body);
    one::<ComponentExportRepresentation>(body);
    one::<CredentialRepresentation>(body);
    one::<Vec<ClientRepresentation>>(body);
    one::<Vec<UserRepresentation>>(body);
    one::<ServerInfo>(body);
    one::<serde_json::Map<String, Value>>(body);
    if let Ok(info) = json::<ServerInfo>(body, false) {
        let _ = info.version();
    }
}

/// The error of a non-2xx answer: the variant its status calls for, its quote within its
/// bound and, for a secret operation, [`REDACTED_EXCERPT`] whatever the body says (even
/// Keycloak's message, which could echo the secret).
fn check_error_for(status: StatusCode, body: &[u8], retry_after: Option<&[u8]>) {
    let mut response = Response::new(Bytes::copy_from_slice(body));
    *response.status_mut() = status;
    if let Some(value) = retry_after.and_then(|bytes| HeaderValue::from_bytes(bytes).ok()) {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, value);
    }
    for secret_body in [false, true] {
        let error = error_for(&response, secret_body);
        let _ = format!("{error} {error:?}");
        let expected = match status.as_u16() {
            404 => matches!(error, Error::NotFound { .. }),
            409 => matches!(error, Error::Conflict { .. }),
            429 => matches!(error, Error::RateLimited { .. }),
            401 | 403 => matches!(error, Error::Unauthorized { .. }),
            500..=599 => matches!(error, Error::Server { .. }),
            _ => matches!(error, Error::Status { .. }),
        };
        assert!(expected, "{status}: {error:?}");
        if let Some(quote) = quoted(&error) {
            assert!(quote.len() <= EXCERPT_MAX, "{}", quote.len());
            if secret_body {
                assert_eq!(quote, REDACTED_EXCERPT, "{status}");
            }
        }
    }
}

fn token_parsers(body: &[u8]) {
    let source = KeycloakTokenSource::new(
        "http://kc.invalid",
        Credentials::client_credentials("master", "c", "s"),
    );
    let refresh = SecretString::from("r");
    for grant in [Grant::Credentials, Grant::Refresh(&refresh)] {
        if let Ok(answer) = source.parse_token(&grant, body) {
            let _ = format!("{answer:?}");
        }
        let refusal = source.refusal(&grant, body);
        for text in [refusal.error(), refusal.description()]
            .into_iter()
            .flatten()
        {
            assert!(text.chars().count() <= MAX_REFUSAL_TEXT);
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    }
}

const ORIGIN: &str = "http://kc:8080";

fn collections() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "/admin/realms/r/clients",
        "/admin/realms/r/roles",
        "/admin/realms/r/users",
        "/admin/realms/r/groups/p-1/children",
        "/admin/realms",
        "/auth/admin/realms/r%2Fx/clients/",
    ])
    .prop_map(|path| format!("{ORIGIN}{path}"))
}

/// `Location`s near the ones a create into `collection` gets: this or another origin, a
/// path under the collection or beside it, segments holding what ends or escapes a segment.
fn locations(collection: String) -> impl Strategy<Value = Vec<u8>> {
    let own = collection[ORIGIN.len()..].trim_end_matches('/').to_owned();
    let origin = prop::sample::select(vec![
        "",
        ORIGIN,
        "HTTP://KC:8080",
        "http://kc",
        "http://elsewhere.invalid",
        "//kc:8080",
        "https://kc:8080",
    ]);
    let others = prop::sample::select(vec![
        "/admin/realms/r/clients",
        "/admin/realms/r/roles",
        "/admin/realms/r/users",
        "/admin/realms/r/groups",
        "/admin/realms/r/groups/p-1/children",
        "/admin/realms",
        "/auth/admin/realms/r%2Fx/clients",
        "/admin/realms/r/clientsX",
        "",
    ])
    .prop_map(str::to_owned);
    let path = prop_oneof![Just(own), others];
    let segment = prop_oneof![
        "[a-z0-9-]{0,8}",
        ".{0,8}",
        prop::sample::select(vec![
            "",
            ".",
            "..",
            "%2E",
            "%2E%2E",
            "%2F",
            "a/b",
            "x?y=1",
            "x#f",
            "%ff",
            "my%20role",
            " ",
        ])
        .prop_map(str::to_owned),
    ];
    prop_oneof![
        3 => (origin, path, prop::collection::vec(segment, 0..3), any::<bool>()).prop_map(
            |(origin, path, segments, slash)| {
                let mut location = format!("{origin}{path}");
                for segment in segments {
                    location.push('/');
                    location.push_str(&segment);
                }
                if slash {
                    location.push('/');
                }
                location.into_bytes()
            }
        ),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// Whether `id` is what `location` names as one non-empty segment directly under
/// `collection` (or, for a subgroup, under the parent's `groups` collection).
fn names_one_segment(collection: &str, location: &[u8], id: &str) -> bool {
    let Ok(location) = std::str::from_utf8(location) else {
        return false;
    };
    let location = location.trim();
    let location = location.split(['?', '#']).next().unwrap_or_default();
    let path = if location.starts_with('/') && !location.starts_with("//") {
        location
    } else {
        match location.get(..ORIGIN.len()) {
            Some(origin) if origin.eq_ignore_ascii_case(ORIGIN) => &location[ORIGIN.len()..],
            _ => return false,
        }
    };
    let collection_path = collection[ORIGIN.len()..].trim_end_matches('/');
    let mut parents = vec![collection_path.to_owned()];
    if let Some((groups, _)) = collection_path
        .strip_suffix("/children")
        .and_then(|parent| parent.rsplit_once('/'))
    {
        parents.push(groups.to_owned());
    }
    parents.iter().any(|parent| {
        let Some(rest) = path
            .strip_prefix(parent.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            return false;
        };
        let segment = rest.strip_suffix('/').unwrap_or(rest);
        !segment.is_empty()
            && !segment.contains('/')
            && percent_decode_str(segment).decode_utf8().ok().as_deref() == Some(id)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes_never_panic(
        body in bodies(),
        status in statuses(),
        retry_after in prop::option::of(prop::collection::vec(any::<u8>(), 0..24)),
    ) {
        every_json_decoder(&body);
        check_error_for(status, &body, retry_after.as_deref());
        token_parsers(&body);
        let cut = excerpt(&body);
        prop_assert!(cut.len() <= EXCERPT_MAX, "{}", cut.len());
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value(), status in statuses()) {
        let body = value.to_string();
        every_json_decoder(body.as_bytes());
        check_error_for(status, body.as_bytes(), None);
        token_parsers(body.as_bytes());
        // As an element of a list, and as what a representation's field holds.
        let list = Value::Array(vec![value.clone(), value.clone()]).to_string();
        every_json_decoder(list.as_bytes());
        for key in ["config", "credentials", "systemInfo", "components", "attributes"] {
            let wrapped = serde_json::json!({ key: value.clone() }).to_string();
            every_json_decoder(wrapped.as_bytes());
        }
    }

    #[test]
    fn secrets_under_secret_keys_never_show_in_errors(value in json_value(), status in statuses()) {
        let body = with_secrets(serde_json::json!({ "clientId": "a", "secret": value.clone(), "wrapped": value })).to_string();
        // The sentinel is there, under secret keys only.
        prop_assert!(body.contains(SENTINEL));
        every_json_decoder(body.as_bytes());
        for secret_body in [false, true] {
            let error = error_for(&{
                let mut response = Response::new(Bytes::from(body.clone()));
                *response.status_mut() = status;
                response
            }, secret_body);
            let shown = format!("{error} {error:?}");
            prop_assert!(!shown.contains(SENTINEL), "{shown}");
            for result in [
                json::<RealmRepresentation>(body.as_bytes(), secret_body).map(drop),
                json::<Vec<ClientRepresentation>>(body.as_bytes(), secret_body).map(drop),
                json::<bool>(body.as_bytes(), secret_body).map(drop),
            ] {
                if let Err(error) = result {
                    // The decoder's own message may quote the value it choked on (never
                    // one under a secret key of a plain string field); the excerpt never.
                    let quote = quoted(&error).unwrap_or_default();
                    prop_assert!(!quote.contains(SENTINEL), "{quote}");
                }
            }
        }
    }

    #[test]
    fn excerpts_are_bounded_text(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..4096),
            ".{0,1200}".prop_map(String::into_bytes),
        ],
    ) {
        let cut = excerpt(&body);
        prop_assert!(cut.len() <= EXCERPT_MAX, "{}", cut.len());
        if let Ok(text) = std::str::from_utf8(&body) {
            if body.len() <= EXCERPT_LIMIT {
                prop_assert_eq!(&cut, text);
            } else {
                // Cut at a character boundary (no more than one character short of the
                // bound), the text kept as it is, and the cut marked.
                let kept = cut.strip_suffix('…');
                prop_assert!(kept.is_some(), "a cut without its mark: {cut:?}");
                let kept = kept.unwrap_or_default();
                prop_assert!(text.starts_with(kept), "{cut:?}");
                prop_assert!(kept.len() > EXCERPT_LIMIT - 4, "{}", kept.len());
            }
        }
    }

    #[test]
    fn created_ids_are_one_segment_of_the_collection(
        (collection, location) in collections()
            .prop_flat_map(|collection| (Just(collection.clone()), locations(collection))),
    ) {
        match created_id(&collection, &location) {
            Ok(id) => {
                prop_assert!(!id.is_empty());
                prop_assert!(id != "." && id != "..", "{id}");
                prop_assert!(
                    names_one_segment(&collection, &location, &id),
                    "{collection} {:?} -> {id:?}",
                    String::from_utf8_lossy(&location)
                );
            }
            Err(error) => prop_assert!(
                matches!(error, Error::Decode { .. } | Error::MissingLocation),
                "{error:?}"
            ),
        }
    }

    #[test]
    fn a_well_formed_location_gives_back_its_id(
        collection in collections(),
        id in ".{1,16}".prop_filter("a path, not a name", |id| id != "." && id != ".."),
        absolute in any::<bool>(),
        query in prop::option::of("[a-z=&]{0,8}"),
    ) {
        let encoded = utf8_percent_encode(&id, NON_ALPHANUMERIC).to_string();
        let base = if absolute { collection.clone() } else { collection[ORIGIN.len()..].to_owned() };
        let mut location = format!("{}/{encoded}", base.trim_end_matches('/'));
        if let Some(query) = query {
            location.push('?');
            location.push_str(&query);
        }
        prop_assert_eq!(created_id(&collection, location.as_bytes()).ok(), Some(id));
    }
}
