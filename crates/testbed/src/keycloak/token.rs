//! The OpenID Connect token endpoint and its grants.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::Keycloak;
use super::rep::str_field;
use super::reply::oauth_error;
use super::state::RefreshGrant;
use crate::util::ids::new_id;
use crate::util::request::{basic, parse_pairs};
use crate::util::response::json;
use crate::util::tokens::Presented;

/// `POST /realms/{realm}/protocol/openid-connect/token`: the `client_credentials`,
/// `password` and `refresh_token` grants, with client secrets in the form or in HTTP Basic.
pub(super) async fn token(
    State(kc): State<Arc<Keycloak>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let form = parse_pairs(&body);
    let (client_id, client_secret) = match basic(&headers) {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
        ),
    };
    let Some(client_id) = client_id else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client or Invalid client credentials",
        );
    };
    let grant_type = form.get("grant_type").map(String::as_str).unwrap_or("");
    let mut state = kc.lock();
    let Some(r) = state.realms.get(&realm) else {
        return oauth_error(
            StatusCode::NOT_FOUND,
            "Realm does not exist",
            "Realm does not exist",
        );
    };
    let client = r
        .clients
        .iter()
        .find(|c| str_field(c, "clientId") == Some(client_id.as_str()))
        .cloned();
    let Some(client) = client else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client or Invalid client credentials",
        );
    };
    let public = client
        .get("publicClient")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !public && str_field(&client, "secret") != client_secret.as_deref() {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client or Invalid client credentials",
        );
    }
    if client.get("enabled").and_then(Value::as_bool) == Some(false) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client or Invalid client credentials",
        );
    }
    let flag = |name: &str| client.get(name).and_then(Value::as_bool);
    let (subject, with_refresh) = match grant_type {
        "client_credentials" => {
            if public || flag("serviceAccountsEnabled") != Some(true) {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized_client",
                    "Client not enabled to retrieve service account",
                );
            }
            // Keycloak issues no refresh token for this grant by default.
            (format!("service-account-{client_id}"), false)
        }
        "password" => {
            if flag("directAccessGrantsEnabled") == Some(false) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unauthorized_client",
                    "Client not allowed for direct access grants",
                );
            }
            let username = form.get("username").map(|u| u.to_lowercase());
            let user = username.as_deref().and_then(|name| {
                r.users
                    .iter()
                    .find(|u| str_field(u, "username") == Some(name))
            });
            let ok = user.is_some_and(|u| {
                let id = str_field(u, "id").unwrap_or("");
                u.get("enabled").and_then(Value::as_bool) != Some(false)
                    && r.passwords.get(id).map(String::as_str)
                        == form.get("password").map(String::as_str)
            });
            if !ok {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_grant",
                    "Invalid user credentials",
                );
            }
            (username.unwrap_or_default(), true)
        }
        "refresh_token" => {
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            match state.refresh.check(&presented) {
                Presented::Unknown => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "Invalid refresh token",
                    );
                }
                Presented::Expired => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "Token is not active",
                    );
                }
                Presented::Live(grant) if grant.client_id != client_id || grant.realm != realm => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "Invalid refresh token. Token client and authorized client don't match",
                    );
                }
                Presented::Live(grant) => (grant.subject.clone(), true),
            }
        }
        "" => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing form parameter: grant_type",
            );
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Unsupported grant_type",
            );
        }
    };
    let issuer = format!("{}/realms/{realm}", kc.fallback_base);
    let access = state.access.mint(
        "Bearer",
        &subject,
        &issuer,
        kc.token_lifetime,
        realm.clone(),
    );
    let mut body = json!({
        "access_token": access,
        "expires_in": kc.token_lifetime.as_secs(),
        "refresh_expires_in": 0,
        "token_type": "Bearer",
        "not-before-policy": 0,
        "scope": "profile email",
    });
    if with_refresh {
        let grant = RefreshGrant {
            realm: realm.clone(),
            client_id,
            subject: subject.clone(),
        };
        let refresh = state
            .refresh
            .mint("Refresh", &subject, &issuer, kc.refresh_lifetime, grant);
        body["refresh_token"] = Value::String(refresh);
        body["refresh_expires_in"] = json!(kc.refresh_lifetime.as_secs());
        body["session_state"] = Value::String(new_id());
    }
    json(StatusCode::OK, &body)
}
