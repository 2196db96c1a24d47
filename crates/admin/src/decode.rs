//! What the client makes of an answer, as plain functions over bytes: the JSON of an
//! operation, the [`Error`] of a non-2xx answer, the id a create's `Location` names. Each
//! takes anything a server can send and returns a typed result, never a panic; they are
//! public so that their guarantees can be tested (and reused) on their own.

use bytes::Bytes;
use http::Response;
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

pub use crate::error::excerpt;

/// Decodes `body` as `T`. `secret_body`: the operation's bodies carry secrets, so the
/// error quotes nothing of the body (see [`Error::Decode`]).
pub fn json<T: DeserializeOwned>(body: &[u8], secret_body: bool) -> Result<T> {
    serde_json::from_slice(body).map_err(|source| Error::decode(body, source, secret_body))
}

/// The [`Error`] for a non-2xx `response`; with `secret_body`, nothing of the body is kept.
pub fn error_for(response: &Response<Bytes>, secret_body: bool) -> Error {
    Error::from_response(response, secret_body)
}

/// The id a create's `Location` names, percent-decoded (role names may hold spaces).
///
/// `collection` is the URL the create was sent to (no query). The `Location` must be that
/// collection plus exactly one non-empty path segment: an absolute URL of the same scheme
/// and host (compared without case), or an absolute path; a query or fragment is ignored.
/// A subgroup, created into `.../groups/{parent}/children`, is named under `.../groups`.
/// Anything else (another host, a sibling collection, `..`, more segments, bytes that are
/// not text) is an [`Error::Decode`] that does not quote the header; an empty one is
/// [`Error::MissingLocation`].
pub fn created_id(collection: &str, location: &[u8]) -> Result<String> {
    let Ok(location) = std::str::from_utf8(location) else {
        return Err(refused("the Location header is not text"));
    };
    let location = location.trim();
    if location.is_empty() {
        return Err(Error::MissingLocation);
    }
    let location = location.split(['?', '#']).next().unwrap_or_default();
    let (origin, collection_path) = split_origin(collection);
    let path = if location.starts_with('/') && !location.starts_with("//") {
        location
    } else {
        let (location_origin, path) = split_origin(location);
        if location_origin.is_empty() || !location_origin.eq_ignore_ascii_case(origin) {
            return Err(refused("the Location header names another host"));
        }
        path
    };
    let collection_path = collection_path.trim_end_matches('/');
    let under = |collection: &str| {
        path.strip_prefix(collection)
            .and_then(|rest| rest.strip_prefix('/'))
    };
    // A subgroup is created into `.../groups/{parent}/children` and named, as Keycloak
    // does, under `.../groups`.
    let parents = collection_path
        .strip_suffix("/children")
        .and_then(|parent| parent.rsplit_once('/'))
        .map(|(groups, _)| groups)
        .filter(|groups| groups.ends_with("/groups"));
    let Some(rest) = under(collection_path).or_else(|| parents.and_then(under)) else {
        return Err(refused(
            "the Location header is not under the collection the request created into",
        ));
    };
    let segment = rest.strip_suffix('/').unwrap_or(rest);
    if segment.is_empty() || segment.contains('/') {
        return Err(refused(
            "the Location header does not name one object of the collection",
        ));
    }
    let id = percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| refused("the id in the Location header is not UTF-8"))?;
    if id == "." || id == ".." {
        return Err(refused(
            "the id in the Location header is a path, not a name",
        ));
    }
    Ok(id.into_owned())
}

/// `https://kc:8443/admin/x` -> (`https://kc:8443`, `/admin/x`); no scheme: (``, all).
fn split_origin(url: &str) -> (&str, &str) {
    let Some(scheme_end) = url.find("://") else {
        return ("", url);
    };
    let after = scheme_end + 3;
    let path_start = url
        .get(after..)
        .and_then(|rest| rest.find('/'))
        .map_or(url.len(), |index| after + index);
    (
        url.get(..path_start).unwrap_or(url),
        url.get(path_start..).unwrap_or(""),
    )
}

fn refused(why: &str) -> Error {
    Error::Decode {
        source: serde::de::Error::custom(why),
        excerpt: String::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const CLIENTS: &str = "http://kc/admin/realms/r/clients";

    fn id(location: &str) -> Option<String> {
        created_id(CLIENTS, location.as_bytes()).ok()
    }

    #[test]
    fn ids_from_location() {
        assert_eq!(
            id("http://kc/admin/realms/r/clients/abc-1").as_deref(),
            Some("abc-1")
        );
        assert_eq!(
            created_id(
                "http://kc/admin/realms/r/roles",
                b"http://kc/admin/realms/r/roles/my%20role"
            )
            .ok()
            .as_deref(),
            Some("my role")
        );
        assert_eq!(
            id("HTTP://KC/admin/realms/r/clients/x/").as_deref(),
            Some("x")
        );
        assert_eq!(id("/admin/realms/r/clients/x?y=1").as_deref(), Some("x"));
        assert_eq!(id("/admin/realms/r/clients/a%2Fb").as_deref(), Some("a/b"));
        let children = "http://kc/admin/realms/r/groups/p-1/children";
        assert_eq!(
            created_id(children, b"http://kc/admin/realms/r/groups/c-2")
                .ok()
                .as_deref(),
            Some("c-2")
        );
        assert!(created_id(children, b"http://kc/admin/realms/r/users/c-2").is_err());
        assert!(matches!(
            created_id(CLIENTS, b""),
            Err(Error::MissingLocation)
        ));
    }

    #[test]
    fn locations_outside_the_collection_are_refused() {
        for location in [
            "http://kc/",
            "http://elsewhere.invalid/admin/realms/r/clients/abc",
            "http://kc/admin/realms/r/users/abc",
            "http://kc/admin/realms/r/clients/../users/abc",
            "http://kc/admin/realms/r/clients/a/b",
            "http://kc/admin/realms/r/clients/%2E%2E",
            "http://kc/admin/realms/r/clientsX/abc",
            "//elsewhere.invalid/admin/realms/r/clients/abc",
            "abc",
        ] {
            let error = created_id(CLIENTS, location.as_bytes()).unwrap_err();
            assert!(matches!(error, Error::Decode { .. }), "{location}: {error}");
            assert!(!error.to_string().contains("elsewhere"), "{error}");
        }
        assert!(matches!(
            created_id(CLIENTS, b"\xff\xfe"),
            Err(Error::Decode { .. })
        ));
    }
}
