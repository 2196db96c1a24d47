//! The fake Keycloak: the OpenID Connect token endpoint and an in-memory subset of the admin
//! REST API.
//!
//! Representations are stored as JSON objects (`serde_json::Map`), so fields this fake does
//! not know are kept and returned: a read-modify-write by a client round-trips.

// Handlers answer errors as ready responses (`Result<Response, Response>`, the axum idiom);
// their size does not matter for a test server.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::Credentials;
use crate::util::{
    base_url, basic, bearer, deadline, empty, json, jwt, location, new_id, parse_pairs,
    random_secret, unix_now,
};

/// The Keycloak version the fake claims to be (`GET /admin/serverinfo`).
pub(crate) const VERSION: &str = "26.6.0";

/// Tokens are pruned of expired entries once the table holds this many.
const PRUNE_AT: usize = 4096;

type Obj = Map<String, Value>;
type Reply = Result<Response, Response>;

#[derive(Debug)]
pub(crate) struct Keycloak {
    state: Mutex<KcState>,
    token_lifetime: Duration,
    refresh_lifetime: Duration,
    fallback_base: String,
}

#[derive(Debug, Default)]
struct KcState {
    realms: BTreeMap<String, Realm>,
    access: HashMap<String, Instant>,
    refresh: HashMap<String, RefreshGrant>,
}

#[derive(Debug, Clone)]
struct RefreshGrant {
    realm: String,
    client_id: String,
    subject: String,
    expires: Instant,
}

#[derive(Debug, Default)]
struct Realm {
    rep: Obj,
    clients: Vec<Obj>,
    users: Vec<Obj>,
    /// user id -> password
    passwords: HashMap<String, String>,
    groups: Vec<Group>,
    roles: Vec<Obj>,
}

#[derive(Debug)]
struct Group {
    rep: Obj,
    parent: Option<String>,
}

fn error(status: StatusCode, message: &str) -> Response {
    json(status, &json!({ "error": message }))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(
        status,
        &json!({ "error": error, "error_description": description }),
    )
}

fn conflict(message: String) -> Response {
    json(StatusCode::CONFLICT, &json!({ "errorMessage": message }))
}

fn bad_request(message: &str) -> Response {
    json(StatusCode::BAD_REQUEST, &json!({ "errorMessage": message }))
}

fn created(url: String) -> Response {
    let mut response = empty(StatusCode::CREATED);
    response.headers_mut().insert(LOCATION, location(url));
    response
}

fn str_field<'a>(obj: &'a Obj, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

fn parse_object(body: &[u8]) -> Result<Obj, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        _ => Err(bad_request("Invalid JSON: expected an object")),
    }
}

/// Overlays the fields of `update` on `target` (Keycloak's updates ignore absent fields).
fn merge(target: &mut Obj, update: Obj) {
    for (key, value) in update {
        target.insert(key, value);
    }
}

/// `first`/`max` pagination over `items`.
fn page<T: Clone>(items: Vec<T>, query: &HashMap<String, String>, default_max: usize) -> Vec<T> {
    let first = query
        .get("first")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let max = query
        .get("max")
        .and_then(|v| v.parse::<i64>().ok())
        .map_or(default_max, |m| if m < 0 { usize::MAX } else { m as usize });
    items.into_iter().skip(first).take(max).collect()
}

fn contains_ci(haystack: Option<&str>, needle: &str) -> bool {
    haystack.is_some_and(|h| h.to_lowercase().contains(&needle.to_lowercase()))
}

impl Keycloak {
    pub(crate) fn new(
        credentials: &Credentials,
        token_lifetime: Duration,
        refresh_lifetime: Duration,
        fallback_base: String,
    ) -> Self {
        let mut realm = Realm {
            rep: json_obj(json!({
                "id": new_id(),
                "realm": credentials.keycloak_realm,
                "displayName": "Keycloak",
                "enabled": true,
                "accessTokenLifespan": token_lifetime.as_secs(),
            })),
            ..Realm::default()
        };
        realm.clients.push(json_obj(json!({
            "id": new_id(),
            "clientId": "admin-cli",
            "name": "${client_admin-cli}",
            "enabled": true,
            "publicClient": true,
            "directAccessGrantsEnabled": true,
            "serviceAccountsEnabled": false,
            "protocol": "openid-connect",
        })));
        realm.clients.push(json_obj(json!({
            "id": new_id(),
            "clientId": credentials.keycloak_client_id,
            "enabled": true,
            "publicClient": false,
            "secret": credentials.keycloak_client_secret,
            "directAccessGrantsEnabled": false,
            "serviceAccountsEnabled": true,
            "protocol": "openid-connect",
        })));
        let admin_id = new_id();
        realm.users.push(json_obj(json!({
            "id": admin_id,
            "username": credentials.keycloak_admin_user,
            "enabled": true,
            "emailVerified": false,
            "createdTimestamp": unix_now() * 1000,
        })));
        realm
            .passwords
            .insert(admin_id, credentials.keycloak_admin_password.clone());
        realm.roles.push(json_obj(json!({
            "id": new_id(),
            "name": "admin",
            "description": "${role_admin}",
            "composite": false,
            "clientRole": false,
        })));
        let mut state = KcState::default();
        state
            .realms
            .insert(credentials.keycloak_realm.clone(), realm);
        Self {
            state: Mutex::new(state),
            token_lifetime,
            refresh_lifetime,
            fallback_base,
        }
    }

    fn lock(&self) -> MutexGuard<'_, KcState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Ok` if the request carries a live access token, else Keycloak's 401.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Response> {
        let unauthorized = || error(StatusCode::UNAUTHORIZED, "HTTP 401 Unauthorized");
        let token = bearer(headers).ok_or_else(unauthorized)?;
        match self.lock().access.get(token) {
            Some(expires) if Instant::now() < *expires => Ok(()),
            _ => Err(unauthorized()),
        }
    }

    fn base(&self, headers: &HeaderMap) -> String {
        base_url(headers, &self.fallback_base)
    }
}

fn json_obj(value: Value) -> Obj {
    match value {
        Value::Object(obj) => obj,
        _ => Obj::new(),
    }
}

pub(crate) fn router(kc: Arc<Keycloak>) -> Router {
    Router::new()
        .route("/realms/{realm}/protocol/openid-connect/token", post(token))
        .route("/admin/serverinfo", get(serverinfo))
        .route("/admin/realms", get(list_realms).post(create_realm))
        .route(
            "/admin/realms/{realm}",
            get(get_realm).put(update_realm).delete(delete_realm),
        )
        .route(
            "/admin/realms/{realm}/clients",
            get(list_clients).post(create_client),
        )
        .route(
            "/admin/realms/{realm}/clients/{id}",
            get(get_client).put(update_client).delete(delete_client),
        )
        .route(
            "/admin/realms/{realm}/users",
            get(list_users).post(create_user),
        )
        .route("/admin/realms/{realm}/users/count", get(count_users))
        .route(
            "/admin/realms/{realm}/users/{id}",
            get(get_user).put(update_user).delete(delete_user),
        )
        .route(
            "/admin/realms/{realm}/groups",
            get(list_groups).post(create_group),
        )
        .route(
            "/admin/realms/{realm}/groups/{id}",
            get(get_group).put(update_group).delete(delete_group),
        )
        .route(
            "/admin/realms/{realm}/groups/{id}/children",
            get(list_children).post(create_child),
        )
        .route(
            "/admin/realms/{realm}/roles",
            get(list_roles).post(create_role),
        )
        .route(
            "/admin/realms/{realm}/roles/{name}",
            get(get_role).put(update_role).delete(delete_role),
        )
        .with_state(kc)
}

// ---------------------------------------------------------------------------------------
// Token endpoint

async fn token(
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
            let grant = state.refresh.get(&presented).cloned();
            match grant {
                None => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "Invalid refresh token",
                    );
                }
                Some(grant) if Instant::now() >= grant.expires => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "Token is not active",
                    );
                }
                Some(grant) if grant.client_id != client_id || grant.realm != realm => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "Invalid refresh token. Token client and authorized client don't match",
                    );
                }
                Some(grant) => (grant.subject, true),
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
    let now = Instant::now();
    if state.access.len() >= PRUNE_AT {
        state.access.retain(|_, expires| *expires > now);
    }
    if state.refresh.len() >= PRUNE_AT {
        state.refresh.retain(|_, grant| grant.expires > now);
    }
    let issuer = format!("{}/realms/{realm}", kc.fallback_base);
    let access = jwt("Bearer", &subject, &issuer, kc.token_lifetime.as_secs());
    state
        .access
        .insert(access.clone(), deadline(kc.token_lifetime));
    let mut body = json!({
        "access_token": access,
        "expires_in": kc.token_lifetime.as_secs(),
        "refresh_expires_in": 0,
        "token_type": "Bearer",
        "not-before-policy": 0,
        "scope": "profile email",
    });
    if with_refresh {
        let refresh = jwt("Refresh", &subject, &issuer, kc.refresh_lifetime.as_secs());
        state.refresh.insert(
            refresh.clone(),
            RefreshGrant {
                realm: realm.clone(),
                client_id,
                subject,
                expires: deadline(kc.refresh_lifetime),
            },
        );
        body["refresh_token"] = Value::String(refresh);
        body["refresh_expires_in"] = json!(kc.refresh_lifetime.as_secs());
        body["session_state"] = Value::String(new_id());
    }
    json(StatusCode::OK, &body)
}

// ---------------------------------------------------------------------------------------
// Admin API

async fn serverinfo(State(kc): State<Arc<Keycloak>>, headers: HeaderMap) -> Reply {
    kc.authorize(&headers)?;
    Ok(json(
        StatusCode::OK,
        &json!({
            "systemInfo": {
                "version": VERSION,
                "serverTime": unix_now().to_string(),
                "uptime": "0 days, 0 hours, 0 minutes",
                "javaVersion": "21",
            },
            "builtinProtocolMappers": {},
            "enums": {},
        }),
    ))
}

fn realm_not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Realm not found.")
}

/// Runs `f` on the realm named `realm`, or answers 404.
fn with_realm<T>(
    kc: &Keycloak,
    realm: &str,
    f: impl FnOnce(&mut Realm) -> Result<T, Response>,
) -> Result<T, Response> {
    let mut state = kc.lock();
    let r = state.realms.get_mut(realm).ok_or_else(realm_not_found)?;
    f(r)
}

async fn list_realms(State(kc): State<Arc<Keycloak>>, headers: HeaderMap) -> Reply {
    kc.authorize(&headers)?;
    let state = kc.lock();
    let realms: Vec<Value> = state
        .realms
        .values()
        .map(|r| Value::Object(r.rep.clone()))
        .collect();
    Ok(json(StatusCode::OK, &Value::Array(realms)))
}

async fn create_realm(State(kc): State<Arc<Keycloak>>, headers: HeaderMap, body: Bytes) -> Reply {
    kc.authorize(&headers)?;
    let mut rep = parse_object(&body)?;
    let Some(name) = str_field(&rep, "realm").map(str::to_owned) else {
        return Err(bad_request("Realm name cannot be empty"));
    };
    if name.is_empty() {
        return Err(bad_request("Realm name cannot be empty"));
    }
    let mut state = kc.lock();
    if state.realms.contains_key(&name) {
        return Err(conflict(format!("Realm {name} already exists")));
    }
    rep.entry("id").or_insert_with(|| Value::String(new_id()));
    rep.entry("enabled").or_insert(Value::Bool(false));
    state.realms.insert(
        name.clone(),
        Realm {
            rep,
            ..Realm::default()
        },
    );
    Ok(created(format!(
        "{}/admin/realms/{name}",
        kc.base(&headers)
    )))
}

async fn get_realm(
    State(kc): State<Arc<Keycloak>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    with_realm(&kc, &realm, |r| {
        Ok(json(StatusCode::OK, &Value::Object(r.rep.clone())))
    })
}

async fn update_realm(
    State(kc): State<Arc<Keycloak>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    kc.authorize(&headers)?;
    let mut update = parse_object(&body)?;
    let mut state = kc.lock();
    let new_name = str_field(&update, "realm")
        .filter(|n| !n.is_empty() && *n != realm)
        .map(str::to_owned);
    if let Some(new_name) = &new_name {
        if state.realms.contains_key(new_name) {
            return Err(conflict(format!("Realm {new_name} already exists")));
        }
    }
    let Some(mut r) = state.realms.remove(&realm) else {
        return Err(realm_not_found());
    };
    update.remove("id");
    merge(&mut r.rep, update);
    state.realms.insert(new_name.unwrap_or(realm), r);
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn delete_realm(
    State(kc): State<Arc<Keycloak>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    match kc.lock().realms.remove(&realm) {
        Some(_) => Ok(empty(StatusCode::NO_CONTENT)),
        None => Err(realm_not_found()),
    }
}

// --- clients

fn client_not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Could not find client")
}

async fn list_clients(
    State(kc): State<Arc<Keycloak>>,
    Path(realm): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    let query = parse_pairs(query.unwrap_or_default().as_bytes());
    let search = query.get("search").is_some_and(|v| v == "true");
    with_realm(&kc, &realm, |r| {
        let items: Vec<Value> = r
            .clients
            .iter()
            .filter(|c| match query.get("clientId") {
                None => true,
                Some(wanted) if search => contains_ci(str_field(c, "clientId"), wanted),
                Some(wanted) => str_field(c, "clientId") == Some(wanted.as_str()),
            })
            .map(|c| Value::Object(c.clone()))
            .collect();
        Ok(json(
            StatusCode::OK,
            &Value::Array(page(items, &query, usize::MAX)),
        ))
    })
}

async fn create_client(
    State(kc): State<Arc<Keycloak>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    kc.authorize(&headers)?;
    let mut rep = parse_object(&body)?;
    let base = kc.base(&headers);
    with_realm(&kc, &realm, |r| {
        let Some(client_id) = str_field(&rep, "clientId").map(str::to_owned) else {
            return Err(bad_request("Client id is required"));
        };
        if r.clients
            .iter()
            .any(|c| str_field(c, "clientId") == Some(client_id.as_str()))
        {
            return Err(conflict(format!("Client {client_id} already exists")));
        }
        let id = match str_field(&rep, "id") {
            Some(id) if !id.is_empty() => {
                if r.clients.iter().any(|c| str_field(c, "id") == Some(id)) {
                    return Err(conflict(format!("Client {id} already exists")));
                }
                id.to_owned()
            }
            _ => new_id(),
        };
        rep.insert("id".into(), Value::String(id.clone()));
        rep.entry("enabled").or_insert(Value::Bool(true));
        rep.entry("publicClient").or_insert(Value::Bool(false));
        rep.entry("protocol")
            .or_insert(Value::String("openid-connect".into()));
        if rep.get("publicClient") == Some(&Value::Bool(false)) {
            rep.entry("secret")
                .or_insert_with(|| Value::String(random_secret()));
        }
        r.clients.push(rep);
        Ok(created(format!("{base}/admin/realms/{realm}/clients/{id}")))
    })
}

async fn get_client(
    State(kc): State<Arc<Keycloak>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    with_realm(&kc, &realm, |r| {
        r.clients
            .iter()
            .find(|c| str_field(c, "id") == Some(id.as_str()))
            .map(|c| json(StatusCode::OK, &Value::Object(c.clone())))
            .ok_or_else(client_not_found)
    })
}

async fn update_client(
    State(kc): State<Arc<Keycloak>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    kc.authorize(&headers)?;
    let mut update = parse_object(&body)?;
    with_realm(&kc, &realm, |r| {
        if let Some(new_client_id) = str_field(&update, "clientId") {
            if r.clients.iter().any(|c| {
                str_field(c, "clientId") == Some(new_client_id)
                    && str_field(c, "id") != Some(id.as_str())
            }) {
                return Err(conflict(format!("Client {new_client_id} already exists")));
            }
        }
        let client = r
            .clients
            .iter_mut()
            .find(|c| str_field(c, "id") == Some(id.as_str()))
            .ok_or_else(client_not_found)?;
        update.remove("id");
        merge(client, update);
        Ok(empty(StatusCode::NO_CONTENT))
    })
}

async fn delete_client(
    State(kc): State<Arc<Keycloak>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    with_realm(&kc, &realm, |r| {
        let before = r.clients.len();
        r.clients
            .retain(|c| str_field(c, "id") != Some(id.as_str()));
        if r.clients.len() == before {
            return Err(client_not_found());
        }
        Ok(empty(StatusCode::NO_CONTENT))
    })
}

// --- users

fn user_not_found() -> Response {
    error(StatusCode::NOT_FOUND, "User not found")
}

fn user_matches(user: &Obj, query: &HashMap<String, String>) -> bool {
    let exact = query.get("exact").is_some_and(|v| v == "true");
    let field_matches = |field: &str| match query.get(field) {
        None => true,
        Some(wanted) if exact => {
            str_field(user, field).is_some_and(|v| v.eq_ignore_ascii_case(wanted))
        }
        Some(wanted) => contains_ci(str_field(user, field), wanted),
    };
    let search = match query.get("search").map(|s| s.trim_matches('*')) {
        None | Some("") => true,
        Some(needle) => ["username", "email", "firstName", "lastName"]
            .iter()
            .any(|f| contains_ci(str_field(user, f), needle)),
    };
    let enabled = match query.get("enabled") {
        None => true,
        Some(v) => user.get("enabled").and_then(Value::as_bool) == Some(v == "true"),
    };
    ["username", "email", "firstName", "lastName"]
        .iter()
        .all(|f| field_matches(f))
        && search
        && enabled
}

async fn list_users(
    State(kc): State<Arc<Keycloak>>,
    Path(realm): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    let query = parse_pairs(query.unwrap_or_default().as_bytes());
    with_realm(&kc, &realm, |r| {
        let items: Vec<Value> = r
            .users
            .iter()
            .filter(|u| user_matches(u, &query))
            .map(|u| Value::Object(u.clone()))
            .collect();
        Ok(json(
            StatusCode::OK,
            &Value::Array(page(items, &query, 100)),
        ))
    })
}

async fn count_users(
    State(kc): State<Arc<Keycloak>>,
    Path(realm): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    let query = parse_pairs(query.unwrap_or_default().as_bytes());
    with_realm(&kc, &realm, |r| {
        let count = r.users.iter().filter(|u| user_matches(u, &query)).count();
        Ok(json(StatusCode::OK, &json!(count)))
    })
}

/// Takes the password out of a `credentials` list (Keycloak never returns it).
fn take_password(rep: &mut Obj) -> Option<String> {
    let credentials = rep.remove("credentials")?;
    credentials.as_array()?.iter().find_map(|c| {
        let kind = c.get("type").and_then(Value::as_str).unwrap_or("password");
        (kind == "password")
            .then(|| c.get("value").and_then(Value::as_str).map(str::to_owned))
            .flatten()
    })
}

async fn create_user(
    State(kc): State<Arc<Keycloak>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    kc.authorize(&headers)?;
    let mut rep = parse_object(&body)?;
    let base = kc.base(&headers);
    with_realm(&kc, &realm, |r| {
        let Some(username) = str_field(&rep, "username").map(str::to_lowercase) else {
            return Err(bad_request("User name is missing"));
        };
        if r.users
            .iter()
            .any(|u| str_field(u, "username") == Some(username.as_str()))
        {
            return Err(conflict("User exists with same username".into()));
        }
        if let Some(email) = str_field(&rep, "email") {
            if r.users
                .iter()
                .any(|u| str_field(u, "email").is_some_and(|e| e.eq_ignore_ascii_case(email)))
            {
                return Err(conflict("User exists with same email".into()));
            }
        }
        let password = take_password(&mut rep);
        let id = new_id();
        rep.insert("id".into(), Value::String(id.clone()));
        rep.insert("username".into(), Value::String(username));
        rep.entry("enabled").or_insert(Value::Bool(false));
        rep.entry("emailVerified").or_insert(Value::Bool(false));
        rep.insert("createdTimestamp".into(), json!(unix_now() * 1000));
        if let Some(password) = password {
            r.passwords.insert(id.clone(), password);
        }
        r.users.push(rep);
        Ok(created(format!("{base}/admin/realms/{realm}/users/{id}")))
    })
}

async fn get_user(
    State(kc): State<Arc<Keycloak>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    with_realm(&kc, &realm, |r| {
        r.users
            .iter()
            .find(|u| str_field(u, "id") == Some(id.as_str()))
            .map(|u| json(StatusCode::OK, &Value::Object(u.clone())))
            .ok_or_else(user_not_found)
    })
}

async fn update_user(
    State(kc): State<Arc<Keycloak>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    kc.authorize(&headers)?;
    let mut update = parse_object(&body)?;
    with_realm(&kc, &realm, |r| {
        if let Some(name) = str_field(&update, "username").map(str::to_lowercase) {
            if r.users.iter().any(|u| {
                str_field(u, "username") == Some(name.as_str())
                    && str_field(u, "id") != Some(id.as_str())
            }) {
                return Err(conflict("User exists with same username".into()));
            }
            update.insert("username".into(), Value::String(name));
        }
        let password = take_password(&mut update);
        let user = r
            .users
            .iter_mut()
            .find(|u| str_field(u, "id") == Some(id.as_str()))
            .ok_or_else(user_not_found)?;
        update.remove("id");
        merge(user, update);
        if let Some(password) = password {
            r.passwords.insert(id.clone(), password);
        }
        Ok(empty(StatusCode::NO_CONTENT))
    })
}

async fn delete_user(
    State(kc): State<Arc<Keycloak>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    with_realm(&kc, &realm, |r| {
        let before = r.users.len();
        r.users.retain(|u| str_field(u, "id") != Some(id.as_str()));
        if r.users.len() == before {
            return Err(user_not_found());
        }
        r.passwords.remove(&id);
        Ok(empty(StatusCode::NO_CONTENT))
    })
}

// --- groups

fn group_not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Could not find group by id")
}

impl Realm {
    fn group_view(&self, group: &Group) -> Value {
        let id = str_field(&group.rep, "id").unwrap_or("");
        let mut rep = group.rep.clone();
        let children = self
            .groups
            .iter()
            .filter(|g| g.parent.as_deref() == Some(id))
            .count();
        rep.insert("path".into(), Value::String(self.group_path(group)));
        rep.insert("subGroupCount".into(), json!(children));
        rep.entry("subGroups").or_insert_with(|| json!([]));
        if let Some(parent) = &group.parent {
            rep.insert("parentId".into(), Value::String(parent.clone()));
        }
        Value::Object(rep)
    }

    fn group_path(&self, group: &Group) -> String {
        let mut names = vec![str_field(&group.rep, "name").unwrap_or("").to_owned()];
        let mut parent = group.parent.clone();
        // Bounded by the number of groups, so a cycle (impossible here) cannot hang.
        for _ in 0..self.groups.len() {
            let Some(pid) = parent else { break };
            let Some(p) = self.find_group(&pid) else {
                break;
            };
            names.push(str_field(&p.rep, "name").unwrap_or("").to_owned());
            parent = p.parent.clone();
        }
        names.reverse();
        format!("/{}", names.join("/"))
    }

    fn find_group(&self, id: &str) -> Option<&Group> {
        self.groups
            .iter()
            .find(|g| str_field(&g.rep, "id") == Some(id))
    }

    fn add_group(&mut self, mut rep: Obj, parent: Option<String>) -> Result<String, Response> {
        let Some(name) = str_field(&rep, "name").map(str::to_owned) else {
            return Err(bad_request("Group name is missing"));
        };
        if self
            .groups
            .iter()
            .any(|g| g.parent == parent && str_field(&g.rep, "name") == Some(name.as_str()))
        {
            return Err(conflict(match parent {
                None => format!("Top level group named '{name}' already exists."),
                Some(_) => format!("Sibling group named '{name}' already exists."),
            }));
        }
        let id = new_id();
        rep.insert("id".into(), Value::String(id.clone()));
        rep.remove("subGroups");
        self.groups.push(Group { rep, parent });
        Ok(id)
    }
}

fn group_page(r: &Realm, parent: Option<&str>, query: &HashMap<String, String>) -> Value {
    let items: Vec<Value> = r
        .groups
        .iter()
        .filter(|g| g.parent.as_deref() == parent)
        .filter(|g| match query.get("search") {
            Some(needle) => contains_ci(str_field(&g.rep, "name"), needle),
            None => true,
        })
        .map(|g| r.group_view(g))
        .collect();
    Value::Array(page(items, query, 100))
}

async fn list_groups(
    State(kc): State<Arc<Keycloak>>,
    Path(realm): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    let query = parse_pairs(query.unwrap_or_default().as_bytes());
    with_realm(&kc, &realm, |r| {
        Ok(json(StatusCode::OK, &group_page(r, None, &query)))
    })
}

async fn create_group(
    State(kc): State<Arc<Keycloak>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    kc.authorize(&headers)?;
    let rep = parse_object(&body)?;
    let base = kc.base(&headers);
    with_realm(&kc, &realm, |r| {
        let id = r.add_group(rep, None)?;
        Ok(created(format!("{base}/admin/realms/{realm}/groups/{id}")))
    })
}

async fn get_group(
    State(kc): State<Arc<Keycloak>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    with_realm(&kc, &realm, |r| {
        let group = r.find_group(&id).ok_or_else(group_not_found)?;
        Ok(json(StatusCode::OK, &r.group_view(group)))
    })
}

async fn update_group(
    State(kc): State<Arc<Keycloak>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    kc.authorize(&headers)?;
    let mut update = parse_object(&body)?;
    with_realm(&kc, &realm, |r| {
        let index = r
            .groups
            .iter()
            .position(|g| str_field(&g.rep, "id") == Some(id.as_str()))
            .ok_or_else(group_not_found)?;
        if let Some(name) = str_field(&update, "name") {
            let parent = r.groups[index].parent.clone();
            if r.groups.iter().enumerate().any(|(i, g)| {
                i != index && g.parent == parent && str_field(&g.rep, "name") == Some(name)
            }) {
                return Err(conflict(format!(
                    "Sibling group named '{name}' already exists."
                )));
            }
        }
        for computed in ["id", "path", "subGroupCount", "subGroups", "parentId"] {
            update.remove(computed);
        }
        merge(&mut r.groups[index].rep, update);
        Ok(empty(StatusCode::NO_CONTENT))
    })
}

async fn delete_group(
    State(kc): State<Arc<Keycloak>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    with_realm(&kc, &realm, |r| {
        r.find_group(&id).ok_or_else(group_not_found)?;
        // Remove the group and all its descendants.
        let mut doomed = vec![id.clone()];
        let mut i = 0;
        while i < doomed.len() {
            let current = doomed[i].clone();
            doomed.extend(
                r.groups
                    .iter()
                    .filter(|g| g.parent.as_deref() == Some(current.as_str()))
                    .filter_map(|g| str_field(&g.rep, "id").map(str::to_owned)),
            );
            i += 1;
        }
        r.groups.retain(|g| {
            !str_field(&g.rep, "id").is_some_and(|gid| doomed.iter().any(|d| d == gid))
        });
        Ok(empty(StatusCode::NO_CONTENT))
    })
}

async fn list_children(
    State(kc): State<Arc<Keycloak>>,
    Path((realm, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    let query = parse_pairs(query.unwrap_or_default().as_bytes());
    with_realm(&kc, &realm, |r| {
        r.find_group(&id).ok_or_else(group_not_found)?;
        Ok(json(StatusCode::OK, &group_page(r, Some(&id), &query)))
    })
}

async fn create_child(
    State(kc): State<Arc<Keycloak>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    kc.authorize(&headers)?;
    let rep = parse_object(&body)?;
    let base = kc.base(&headers);
    with_realm(&kc, &realm, |r| {
        r.find_group(&id).ok_or_else(group_not_found)?;
        let child = r.add_group(rep, Some(id))?;
        Ok(created(format!(
            "{base}/admin/realms/{realm}/groups/{child}"
        )))
    })
}

// --- realm roles

fn role_not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Could not find role")
}

async fn list_roles(
    State(kc): State<Arc<Keycloak>>,
    Path(realm): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    let query = parse_pairs(query.unwrap_or_default().as_bytes());
    with_realm(&kc, &realm, |r| {
        let items: Vec<Value> = r
            .roles
            .iter()
            .filter(|role| match query.get("search") {
                Some(needle) => contains_ci(str_field(role, "name"), needle),
                None => true,
            })
            .map(|role| Value::Object(role.clone()))
            .collect();
        Ok(json(
            StatusCode::OK,
            &Value::Array(page(items, &query, usize::MAX)),
        ))
    })
}

async fn create_role(
    State(kc): State<Arc<Keycloak>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    kc.authorize(&headers)?;
    let mut rep = parse_object(&body)?;
    let base = kc.base(&headers);
    with_realm(&kc, &realm, |r| {
        let Some(name) = str_field(&rep, "name").map(str::to_owned) else {
            return Err(bad_request("Role name is missing"));
        };
        if r.roles
            .iter()
            .any(|role| str_field(role, "name") == Some(name.as_str()))
        {
            return Err(conflict(format!("Role with name {name} already exists")));
        }
        rep.insert("id".into(), Value::String(new_id()));
        rep.entry("composite").or_insert(Value::Bool(false));
        rep.insert("clientRole".into(), Value::Bool(false));
        r.roles.push(rep);
        let encoded: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
        Ok(created(format!(
            "{base}/admin/realms/{realm}/roles/{}",
            encoded.replace('+', "%20")
        )))
    })
}

async fn get_role(
    State(kc): State<Arc<Keycloak>>,
    Path((realm, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    with_realm(&kc, &realm, |r| {
        r.roles
            .iter()
            .find(|role| str_field(role, "name") == Some(name.as_str()))
            .map(|role| json(StatusCode::OK, &Value::Object(role.clone())))
            .ok_or_else(role_not_found)
    })
}

async fn update_role(
    State(kc): State<Arc<Keycloak>>,
    Path((realm, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    kc.authorize(&headers)?;
    let mut update = parse_object(&body)?;
    with_realm(&kc, &realm, |r| {
        if let Some(new_name) = str_field(&update, "name") {
            if new_name != name
                && r.roles
                    .iter()
                    .any(|role| str_field(role, "name") == Some(new_name))
            {
                return Err(conflict(format!(
                    "Role with name {new_name} already exists"
                )));
            }
        }
        let role = r
            .roles
            .iter_mut()
            .find(|role| str_field(role, "name") == Some(name.as_str()))
            .ok_or_else(role_not_found)?;
        update.remove("id");
        merge(role, update);
        Ok(empty(StatusCode::NO_CONTENT))
    })
}

async fn delete_role(
    State(kc): State<Arc<Keycloak>>,
    Path((realm, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    with_realm(&kc, &realm, |r| {
        let before = r.roles.len();
        r.roles
            .retain(|role| str_field(role, "name") != Some(name.as_str()));
        if r.roles.len() == before {
            return Err(role_not_found());
        }
        Ok(empty(StatusCode::NO_CONTENT))
    })
}
