//! The catch-all route `/admin/realms/{realm}/{*rest}`: reads the raw path (so an id holding
//! an encoded `/` stays one segment) and hands each shape of path to the module serving it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use http::{Method, Uri};

use super::Keycloak;
use super::extract::Authorized;
use super::families::USERS;
use super::groups::{self, group_not_found};
use super::realms::{self, realm_not_found, with_realm};
use super::reply::{Reply, method_not_allowed, route_not_found};
use super::segments::{decode_segment, encode_segment};
use super::{
    client_resources, client_scopes, identity_providers, memberships, role_mappings, roles,
    scope_links, users,
};

/// Serves the admin paths that have no route of their own.
pub(super) async fn nested(
    State(kc): State<Arc<Keycloak>>,
    admin: Authorized,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Reply {
    let raw = uri.path().strip_prefix("/admin/realms/").unwrap_or("");
    let segments: Vec<String> = raw.split('/').map(decode_segment).collect();
    let Some((realm, rest)) = segments.split_first() else {
        return Err(realm_not_found());
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let realm_url = format!("{}/admin/realms/{}", admin.base_url, encode_segment(realm));
    if rest == ["logout-all"] && method == Method::POST {
        return realms::logout_all(&kc, realm);
    }
    with_realm(&kc, realm, |r| match rest.as_slice() {
        ["partialImport"] if method == Method::POST => realms::partial_import(r, &body),
        ["client-scopes", tail @ ..] if tail.len() < 2 => {
            client_scopes::serve(r, &method, tail, &body, &realm_url)
        }
        [
            "client-scopes",
            scope,
            "protocol-mappers",
            "models",
            tail @ ..,
        ] => client_scopes::serve_mappers(r, &method, scope, tail, &body, &realm_url),
        [
            kind @ ("default-default-client-scopes" | "default-optional-client-scopes"),
            more @ ..,
        ] => scope_links::serve(r, &method, more, format!("realm/{kind}")),
        ["clients", client, more @ ..] => {
            client_resources::serve(r, &method, client, more, &body, &realm_url)
        }
        ["users", user, more @ ..] => {
            USERS.require(&r.users, user)?;
            match (method.as_str(), more) {
                ("PUT", ["reset-password"]) => users::reset_password(r, user, &body),
                (_, ["groups", tail @ ..]) => memberships::user_groups(r, &method, user, tail),
                (_, ["role-mappings", "realm"]) => {
                    role_mappings::serve(r, &method, format!("users/{user}/realm-roles"), &body)
                }
                (_, ["reset-password"]) => Err(method_not_allowed()),
                _ => Err(route_not_found()),
            }
        }
        ["groups", group, more @ ..] => {
            r.find_group(group).ok_or_else(group_not_found)?;
            match (method.as_str(), more) {
                ("GET", ["members"]) => memberships::group_members(r, group),
                (_, ["role-mappings", "realm"]) => {
                    role_mappings::serve(r, &method, format!("groups/{group}/realm-roles"), &body)
                }
                (_, ["members"]) => Err(method_not_allowed()),
                _ => Err(route_not_found()),
            }
        }
        ["group-by-path", path @ ..] if method == Method::GET => groups::by_path(r, path),
        ["roles-by-id", id] => roles::by_id(r, &method, id, &body),
        ["roles", name, "composites"] => role_mappings::composites(r, &method, name, &body),
        ["identity-provider", "instances", more @ ..] => {
            identity_providers::serve(r, &method, more, &body, &realm_url)
        }
        _ => Err(route_not_found()),
    })
}
