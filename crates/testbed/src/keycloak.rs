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
use axum::routing::{any, get, post};
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::Credentials;
use crate::util::clock::{deadline, unix_now};
use crate::util::ids::{new_id, random_secret};
use crate::util::jwt::jwt;
use crate::util::request::{base_url, basic, bearer, parse_pairs};
use crate::util::response::{empty, json, location};

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
    /// access token -> (realm it was issued by, expiry)
    access: HashMap<String, (String, Instant)>,
    /// Every admin and token request, in arrival order (bounded by `LOG_LIMIT`).
    log: Vec<RecordedRequest>,
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
    /// The other families (client scopes, identity providers, mappers, client roles,
    /// memberships ...), each a list of objects under a collection key such as
    /// `client-scopes` or `clients/{id}/roles`; see `nested`.
    collections: BTreeMap<String, Vec<Obj>>,
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
            Some((_, expires)) if Instant::now() < *expires => Ok(()),
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
    let routes = Router::new();
    let routes = routed::<Clients>(routes);
    let routes = routed::<Users>(routes);
    let routes = routed::<Groups>(routes);
    let routes = routed::<Roles>(routes);
    routes
        .route("/realms/{realm}/protocol/openid-connect/token", post(token))
        .route("/admin/serverinfo", get(serverinfo))
        .route("/admin/realms", get(list_realms).post(create_realm))
        .route(
            "/admin/realms/{realm}",
            get(get_realm).put(update_realm).delete(delete_realm),
        )
        .route("/admin/realms/{realm}/users/count", get(count_users))
        .route(
            "/admin/realms/{realm}/groups/{id}/children",
            get(list_children).post(create_child),
        )
        .route("/admin/realms/{realm}/{*rest}", any(nested))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&kc),
            record,
        ))
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
        state.access.retain(|_, (_, expires)| *expires > now);
    }
    if state.refresh.len() >= PRUNE_AT {
        state.refresh.retain(|_, grant| grant.expires > now);
    }
    let issuer = format!("{}/realms/{realm}", kc.fallback_base);
    let access = jwt("Bearer", &subject, &issuer, kc.token_lifetime.as_secs());
    state
        .access
        .insert(access.clone(), (realm.clone(), deadline(kc.token_lifetime)));
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
        "{}/admin/realms/{}",
        kc.base(&headers),
        encode_segment(&name)
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

// ---------------------------------------------------------------------------------------
// Resource families. Every family is a list of JSON objects with one shape of
// create/list/get/update/delete; a `Family` says how it is keyed and what Keycloak answers
// about it, and the code below does the rest. What a family really does differently
// (generated fields, passwords, the group tree) stays in that family's own code.

/// The error texts of a family.
#[derive(Clone, Copy)]
enum Wording {
    /// Keycloak's own texts, for the families it documents: the 400 when the unique field
    /// is missing, the 409 for a taken value (made from the value), the 404 `error`.
    Keycloak {
        missing: &'static str,
        taken: fn(&str) -> String,
        not_found: &'static str,
    },
    /// The fake's texts for the families served from the raw path, made from the name of
    /// the thing (`protocol mapper`, ...): `{what} {unique} is missing`,
    /// `{what} with {unique} {value} already exists`, `Could not find {what}`.
    Named(&'static str),
}

/// How one family of objects is keyed, and its error texts.
struct Family {
    /// The field that names a member in its URL.
    key: &'static str,
    /// The field no two members may share (409 otherwise); a new member must have it (400).
    unique: &'static str,
    /// Fields an update leaves as they are.
    fixed: &'static [&'static str],
    wording: Wording,
}

const CLIENTS: Family = Family {
    key: "id",
    unique: "clientId",
    fixed: &["id"],
    wording: Wording::Keycloak {
        missing: "Client id is required",
        taken: |client_id| format!("Client {client_id} already exists"),
        not_found: "Could not find client",
    },
};

const USERS: Family = Family {
    key: "id",
    unique: "username",
    fixed: &["id"],
    wording: Wording::Keycloak {
        missing: "User name is missing",
        taken: |_| "User exists with same username".into(),
        not_found: "User not found",
    },
};

const ROLES: Family = Family {
    key: "name",
    unique: "name",
    fixed: &["id"],
    wording: Wording::Keycloak {
        missing: "Role name is missing",
        taken: |name| format!("Role with name {name} already exists"),
        not_found: "Could not find role",
    },
};

// The families served from the raw path, with the fake's own texts.
const CLIENT_SCOPES: Family = Family::named("client scope", "id", "name", &["id"]);
/// Protocol mappers of a client or of a client scope.
const PROTOCOL_MAPPERS: Family = Family::named("protocol mapper", "id", "name", &["id"]);
/// Client roles are named in URLs like realm roles, but an update may replace their `id`.
const CLIENT_ROLES: Family = Family::named("role", "name", "name", &[]);
const IDENTITY_PROVIDERS: Family = Family::named("identity provider", "alias", "alias", &[]);
const IDENTITY_PROVIDER_MAPPERS: Family = Family::named("mapper", "id", "name", &["id"]);

impl Family {
    const fn named(
        what: &'static str,
        key: &'static str,
        unique: &'static str,
        fixed: &'static [&'static str],
    ) -> Self {
        Self {
            key,
            unique,
            fixed,
            wording: Wording::Named(what),
        }
    }

    fn missing(&self) -> Response {
        match self.wording {
            Wording::Keycloak { missing, .. } => bad_request(missing),
            Wording::Named(what) => bad_request(&format!("{what} {} is missing", self.unique)),
        }
    }

    fn taken(&self, value: &str) -> Response {
        conflict(match self.wording {
            Wording::Keycloak { taken, .. } => taken(value),
            Wording::Named(what) => format!("{what} with {} {value} already exists", self.unique),
        })
    }

    fn not_found(&self) -> Response {
        match self.wording {
            Wording::Keycloak { not_found, .. } => error(StatusCode::NOT_FOUND, not_found),
            Wording::Named(what) => not_found(what),
        }
    }

    fn find<'a>(&self, items: &'a [Obj], id: &str) -> Option<&'a Obj> {
        items.iter().find(|o| str_field(o, self.key) == Some(id))
    }

    /// The member `id`, or this family's 404.
    fn require<'a>(&self, items: &'a [Obj], id: &str) -> Result<&'a Obj, Response> {
        self.find(items, id).ok_or_else(|| self.not_found())
    }

    /// 409 if a member other than `except` (a key) already has `value` as its unique field.
    fn check_free(&self, items: &[Obj], value: &str, except: Option<&str>) -> Result<(), Response> {
        let taken = items.iter().any(|o| {
            str_field(o, self.unique) == Some(value)
                && except.is_none_or(|id| str_field(o, self.key) != Some(id))
        });
        if taken {
            return Err(self.taken(value));
        }
        Ok(())
    }

    /// The unique value of a new member: 400 if it has none, 409 if another member has it.
    fn claim(&self, items: &[Obj], rep: &Obj) -> Result<String, Response> {
        let value = str_field(rep, self.unique).ok_or_else(|| self.missing())?;
        self.check_free(items, value, None)?;
        Ok(value.to_owned())
    }

    fn get(&self, items: &[Obj], id: &str) -> Reply {
        let item = self.require(items, id)?;
        Ok(json(StatusCode::OK, &Value::Object(item.clone())))
    }

    /// Overlays `update` on the member `id`, keeping the unique field unique.
    fn update(&self, items: &mut [Obj], id: &str, mut update: Obj) -> Reply {
        if let Some(value) = str_field(&update, self.unique) {
            self.check_free(items, value, Some(id))?;
        }
        let item = items
            .iter_mut()
            .find(|o| str_field(o, self.key) == Some(id))
            .ok_or_else(|| self.not_found())?;
        for field in self.fixed {
            update.remove(*field);
        }
        merge(item, update);
        Ok(empty(StatusCode::NO_CONTENT))
    }

    fn delete(&self, items: &mut Vec<Obj>, id: &str) -> Reply {
        let before = items.len();
        items.retain(|o| str_field(o, self.key) != Some(id));
        if items.len() == before {
            return Err(self.not_found());
        }
        Ok(empty(StatusCode::NO_CONTENT))
    }

    /// Adds `rep` to a family served from the raw path: `id` is generated for families keyed
    /// by it; the `Location` is `{here}/{key}`.
    fn create(&self, items: &mut Vec<Obj>, mut rep: Obj, here: &str) -> Reply {
        self.claim(items, &rep)?;
        if self.key == "id" {
            rep.insert("id".into(), Value::String(new_id()));
        }
        let id = str_field(&rep, self.key).unwrap_or("").to_owned();
        items.push(rep);
        Ok(created(format!("{here}/{}", encode_segment(&id))))
    }

    /// Serves `GET`/`POST` on a raw-path family (at `here`) and `GET`/`PUT`/`DELETE` on the
    /// member named by the first segment of `tail` (any further segments are ignored).
    fn serve(
        &self,
        items: &mut Vec<Obj>,
        method: &Method,
        tail: &[&str],
        body: &[u8],
        here: &str,
    ) -> Reply {
        match (method.as_str(), tail.first().copied()) {
            ("GET", None) => Ok(json(StatusCode::OK, &Value::Array(values(items.iter())))),
            ("POST", None) => self.create(items, parse_object(body)?, here),
            ("GET", Some(id)) => self.get(items, id),
            ("PUT", Some(id)) => self.update(items, id, parse_object(body)?),
            ("DELETE", Some(id)) => self.delete(items, id),
            _ => Err(error(
                StatusCode::METHOD_NOT_ALLOWED,
                "HTTP 405 Method Not Allowed",
            )),
        }
    }
}

fn values<'a>(items: impl Iterator<Item = &'a Obj>) -> Vec<Value> {
    items.cloned().map(Value::Object).collect()
}

/// A family with its own routes, `/admin/realms/{realm}/{PATH}` and `.../{PATH}/{id}`,
/// served by the generic handlers below.
trait Routed: 'static {
    const PATH: &'static str;
    /// The answer to a `GET` on the collection, with the query's filters and paging.
    fn list(r: &Realm, query: &HashMap<String, String>) -> Value;
    /// Adds a member; the answer is the last segment of its `Location`.
    fn insert(r: &mut Realm, rep: Obj) -> Result<String, Response>;
    /// The answers to `GET`, `PUT` and `DELETE` on the member `id` (its URL segment).
    fn get(r: &Realm, id: &str) -> Reply;
    fn update(r: &mut Realm, id: &str, update: Obj) -> Reply;
    fn delete(r: &mut Realm, id: &str) -> Reply;
}

/// Adds the collection and member routes of `F`.
fn routed<F: Routed>(routes: Router<Arc<Keycloak>>) -> Router<Arc<Keycloak>> {
    let collection = format!("/admin/realms/{{realm}}/{}", F::PATH);
    let member = format!("{collection}/{{id}}");
    routes
        .route(&collection, get(list_members::<F>).post(create_member::<F>))
        .route(
            &member,
            get(get_member::<F>)
                .put(update_member::<F>)
                .delete(delete_member::<F>),
        )
}

async fn list_members<F: Routed>(
    State(kc): State<Arc<Keycloak>>,
    Path(realm): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    let query = parse_pairs(query.unwrap_or_default().as_bytes());
    with_realm(&kc, &realm, |r| {
        Ok(json(StatusCode::OK, &F::list(r, &query)))
    })
}

async fn create_member<F: Routed>(
    State(kc): State<Arc<Keycloak>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    kc.authorize(&headers)?;
    let rep = parse_object(&body)?;
    let base = kc.base(&headers);
    with_realm(&kc, &realm, |r| {
        let segment = F::insert(r, rep)?;
        Ok(created(format!(
            "{base}/admin/realms/{}/{}/{segment}",
            encode_segment(&realm),
            F::PATH
        )))
    })
}

async fn get_member<F: Routed>(
    State(kc): State<Arc<Keycloak>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    with_realm(&kc, &realm, |r| F::get(r, &id))
}

async fn update_member<F: Routed>(
    State(kc): State<Arc<Keycloak>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    kc.authorize(&headers)?;
    let update = parse_object(&body)?;
    with_realm(&kc, &realm, |r| F::update(r, &id, update))
}

async fn delete_member<F: Routed>(
    State(kc): State<Arc<Keycloak>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    kc.authorize(&headers)?;
    with_realm(&kc, &realm, |r| F::delete(r, &id))
}

// --- clients

struct Clients;

impl Routed for Clients {
    const PATH: &'static str = "clients";

    fn list(r: &Realm, query: &HashMap<String, String>) -> Value {
        let search = query.get("search").is_some_and(|v| v == "true");
        let items = r.clients.iter().filter(|c| match query.get("clientId") {
            None => true,
            Some(wanted) if search => contains_ci(str_field(c, "clientId"), wanted),
            Some(wanted) => str_field(c, "clientId") == Some(wanted.as_str()),
        });
        Value::Array(page(values(items), query, usize::MAX))
    }

    /// A client may bring its own `id`, which must be free too; the `Location` carries the
    /// id as given (not percent-encoded).
    fn insert(r: &mut Realm, mut rep: Obj) -> Result<String, Response> {
        CLIENTS.claim(&r.clients, &rep)?;
        let id = match str_field(&rep, "id") {
            Some(id) if !id.is_empty() => {
                if CLIENTS.find(&r.clients, id).is_some() {
                    return Err(CLIENTS.taken(id));
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
        Ok(id)
    }

    fn get(r: &Realm, id: &str) -> Reply {
        CLIENTS.get(&r.clients, id)
    }

    fn update(r: &mut Realm, id: &str, update: Obj) -> Reply {
        CLIENTS.update(&mut r.clients, id, update)
    }

    fn delete(r: &mut Realm, id: &str) -> Reply {
        CLIENTS.delete(&mut r.clients, id)
    }
}

// --- users

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

/// Keycloak keeps user names lower-cased.
fn lower_username(rep: &mut Obj) {
    if let Some(name) = str_field(rep, "username").map(str::to_lowercase) {
        rep.insert("username".into(), Value::String(name));
    }
}

struct Users;

impl Routed for Users {
    const PATH: &'static str = "users";

    fn list(r: &Realm, query: &HashMap<String, String>) -> Value {
        let items = r.users.iter().filter(|u| user_matches(u, query));
        Value::Array(page(values(items), query, 100))
    }

    /// The email must be free as well; the password goes to the side table.
    fn insert(r: &mut Realm, mut rep: Obj) -> Result<String, Response> {
        lower_username(&mut rep);
        USERS.claim(&r.users, &rep)?;
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
        rep.entry("enabled").or_insert(Value::Bool(false));
        rep.entry("emailVerified").or_insert(Value::Bool(false));
        rep.insert("createdTimestamp".into(), json!(unix_now() * 1000));
        if let Some(password) = password {
            r.passwords.insert(id.clone(), password);
        }
        r.users.push(rep);
        Ok(id)
    }

    fn get(r: &Realm, id: &str) -> Reply {
        USERS.get(&r.users, id)
    }

    fn update(r: &mut Realm, id: &str, mut update: Obj) -> Reply {
        lower_username(&mut update);
        let password = take_password(&mut update);
        let reply = USERS.update(&mut r.users, id, update)?;
        if let Some(password) = password {
            r.passwords.insert(id.to_owned(), password);
        }
        Ok(reply)
    }

    fn delete(r: &mut Realm, id: &str) -> Reply {
        let reply = USERS.delete(&mut r.users, id)?;
        r.passwords.remove(id);
        Ok(reply)
    }
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

struct Groups;

impl Routed for Groups {
    const PATH: &'static str = "groups";

    fn list(r: &Realm, query: &HashMap<String, String>) -> Value {
        group_page(r, None, query)
    }

    fn insert(r: &mut Realm, rep: Obj) -> Result<String, Response> {
        r.add_group(rep, None)
    }

    fn get(r: &Realm, id: &str) -> Reply {
        let group = r.find_group(id).ok_or_else(group_not_found)?;
        Ok(json(StatusCode::OK, &r.group_view(group)))
    }

    /// Names are unique among siblings; the computed fields of the view are not stored.
    fn update(r: &mut Realm, id: &str, mut update: Obj) -> Reply {
        let index = r
            .groups
            .iter()
            .position(|g| str_field(&g.rep, "id") == Some(id))
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
    }

    /// Removes the group and all its descendants.
    fn delete(r: &mut Realm, id: &str) -> Reply {
        r.find_group(id).ok_or_else(group_not_found)?;
        let mut doomed = vec![id.to_owned()];
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
    }
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
            "{base}/admin/realms/{}/groups/{child}",
            encode_segment(&realm)
        )))
    })
}

// --- realm roles

struct Roles;

impl Routed for Roles {
    const PATH: &'static str = "roles";

    fn list(r: &Realm, query: &HashMap<String, String>) -> Value {
        let items = r.roles.iter().filter(|role| match query.get("search") {
            Some(needle) => contains_ci(str_field(role, "name"), needle),
            None => true,
        });
        Value::Array(page(values(items), query, usize::MAX))
    }

    fn insert(r: &mut Realm, mut rep: Obj) -> Result<String, Response> {
        let name = ROLES.claim(&r.roles, &rep)?;
        rep.insert("id".into(), Value::String(new_id()));
        rep.entry("composite").or_insert(Value::Bool(false));
        rep.insert("clientRole".into(), Value::Bool(false));
        r.roles.push(rep);
        Ok(encode_segment(&name))
    }

    fn get(r: &Realm, name: &str) -> Reply {
        ROLES.get(&r.roles, name)
    }

    fn update(r: &mut Realm, name: &str, update: Obj) -> Reply {
        ROLES.update(&mut r.roles, name, update)
    }

    fn delete(r: &mut Realm, name: &str) -> Reply {
        ROLES.delete(&mut r.roles, name)
    }
}

// ---------------------------------------------------------------------------------------
// Request log: what the fake saw, in order, so tests can compare two clients' traffic.

/// At most this many requests are kept in the log; older ones are dropped.
const LOG_LIMIT: usize = 10_000;

/// One request the fake Keycloak received (the `Authorization` header is not kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The method.
    pub method: String,
    /// The raw path and query, as sent (percent-encoding included).
    pub target: String,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

async fn record(
    State(kc): State<Arc<Keycloak>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return bad_request("request body too large");
    };
    {
        let mut state = kc.lock();
        if state.log.len() >= LOG_LIMIT {
            state.log.remove(0);
        }
        state.log.push(RecordedRequest {
            method: parts.method.to_string(),
            target: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        });
    }
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

impl Keycloak {
    /// The requests received so far, oldest first.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().log.clone()
    }

    /// Forgets the requests received so far.
    pub(crate) fn clear_requests(&self) {
        self.lock().log.clear();
    }
}

/// One path segment, percent-encoded as Keycloak's URI builder does.
fn encode_segment(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn decode_segment(value: &str) -> String {
    let plus_kept = value.replace('+', "%2B");
    form_urlencoded::parse(format!("x={plus_kept}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// The other resource families, served from `Realm::collections` by one handler that reads
// the raw path (so an id holding an encoded `/` stays one segment).

fn not_found(what: &str) -> Response {
    error(StatusCode::NOT_FOUND, &format!("Could not find {what}"))
}

/// The ids in a set of references under `key`: client default scopes, group memberships ...
fn link_ids(r: &Realm, key: &str) -> Vec<String> {
    r.items(key)
        .iter()
        .filter_map(|o| str_field(o, "id").map(str::to_owned))
        .collect()
}

fn add_link(r: &mut Realm, key: String, id: &str) {
    let items = r.items_mut(key);
    if !items.iter().any(|o| str_field(o, "id") == Some(id)) {
        items.push(json_obj(json!({ "id": id })));
    }
}

fn remove_link(r: &mut Realm, key: String, id: &str) {
    r.items_mut(key).retain(|o| str_field(o, "id") != Some(id));
}

fn parse_array(body: &[u8]) -> Result<Vec<Obj>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => Ok(items.into_iter().map(json_obj).collect()),
        _ => Err(bad_request("Invalid JSON: expected an array")),
    }
}

impl Realm {
    /// The objects under `key` in `collections`: a raw-path family or a set of links.
    fn items(&self, key: &str) -> &[Obj] {
        self.collections.get(key).map_or(&[], Vec::as_slice)
    }

    fn items_mut(&mut self, key: String) -> &mut Vec<Obj> {
        self.collections.entry(key).or_default()
    }

    /// Realm roles by id, as the ids in role-mapping bodies refer to them.
    fn realm_roles_by_ids(&self, ids: &[String]) -> Vec<Value> {
        self.roles
            .iter()
            .filter(|role| str_field(role, "id").is_some_and(|id| ids.iter().any(|i| i == id)))
            .map(|role| Value::Object(role.clone()))
            .collect()
    }

    fn role_ids(&self, body: &[Obj]) -> Result<Vec<String>, Response> {
        body.iter()
            .map(|wanted| {
                self.roles
                    .iter()
                    .find(|role| {
                        (str_field(wanted, "id").is_some()
                            && str_field(role, "id") == str_field(wanted, "id"))
                            || (str_field(wanted, "id").is_none()
                                && str_field(role, "name") == str_field(wanted, "name"))
                    })
                    .and_then(|role| str_field(role, "id").map(str::to_owned))
                    .ok_or_else(|| ROLES.not_found())
            })
            .collect()
    }
}

#[allow(clippy::too_many_lines)]
async fn nested(
    State(kc): State<Arc<Keycloak>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    kc.authorize(&headers)?;
    let raw = uri.path().strip_prefix("/admin/realms/").unwrap_or("");
    let segments: Vec<String> = raw.split('/').map(decode_segment).collect();
    let Some((realm, rest)) = segments.split_first() else {
        return Err(realm_not_found());
    };
    let realm_name = realm.clone();
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let base = format!(
        "{}/admin/realms/{}",
        kc.base(&headers),
        encode_segment(&realm_name)
    );
    if rest == ["logout-all"] && method == Method::POST {
        let mut state = kc.lock();
        if !state.realms.contains_key(&realm_name) {
            return Err(realm_not_found());
        }
        // Ends every session of the realm: the access tokens it issued stop working.
        state
            .access
            .retain(|_, (issued_by, _)| *issued_by != realm_name);
        state.refresh.retain(|_, grant| grant.realm != realm_name);
        return Ok(json(StatusCode::OK, &json!({})));
    }
    with_realm(&kc, &realm_name, |r| {
        let location = |path: &str| format!("{base}/{path}");
        match rest.as_slice() {
            ["partialImport"] if method == Method::POST => {
                let import = parse_object(&body)?;
                let mut added = 0;
                if let Some(Value::Array(roles)) = import.get("roles").and_then(|r| r.get("realm"))
                {
                    for role in roles.iter().cloned().map(json_obj) {
                        let name = str_field(&role, "name").map(str::to_owned);
                        if name.is_some()
                            && !r
                                .roles
                                .iter()
                                .any(|x| str_field(x, "name") == name.as_deref())
                        {
                            let mut role = role;
                            role.insert("id".into(), Value::String(new_id()));
                            r.roles.push(role);
                            added += 1;
                        }
                    }
                }
                Ok(json(
                    StatusCode::OK,
                    &json!({ "overwritten": 0, "added": added, "skipped": 0, "results": [] }),
                ))
            }
            // --- client scopes and their protocol mappers
            ["client-scopes", tail @ ..] if tail.len() < 2 => {
                let here = location("client-scopes");
                let scopes = r.items_mut("client-scopes".into());
                CLIENT_SCOPES.serve(scopes, &method, tail, &body, &here)
            }
            ["client-scopes", id, "protocol-mappers", "models", tail @ ..] => {
                CLIENT_SCOPES.require(r.items("client-scopes"), id)?;
                let scope_location = location(&format!("client-scopes/{}", encode_segment(id)));
                let here = format!("{scope_location}/protocol-mappers/models");
                let mappers = r.items_mut(format!("client-scopes/{id}/protocol-mappers"));
                PROTOCOL_MAPPERS.serve(mappers, &method, tail, &body, &here)
            }
            [
                kind @ ("default-default-client-scopes" | "default-optional-client-scopes"),
                more @ ..,
            ] => scope_links(r, &method, more, format!("realm/{kind}")),
            // --- client sub-resources
            ["clients", client, more @ ..] => {
                CLIENTS.require(&r.clients, client)?;
                let client_location = location(&format!("clients/{}", encode_segment(client)));
                match more {
                    ["protocol-mappers", "models", tail @ ..] => {
                        let here = format!("{client_location}/protocol-mappers/models");
                        let mappers = r.items_mut(format!("clients/{client}/protocol-mappers"));
                        PROTOCOL_MAPPERS.serve(mappers, &method, tail, &body, &here)
                    }
                    ["roles", tail @ ..] => {
                        let roles = r.items_mut(format!("clients/{client}/roles"));
                        if method == Method::POST && tail.is_empty() {
                            // Client roles are named in URLs, yet carry a generated id.
                            let mut rep = parse_object(&body)?;
                            rep.insert("id".into(), Value::String(new_id()));
                            rep.insert("clientRole".into(), Value::Bool(true));
                            rep.insert("containerId".into(), Value::String((*client).to_owned()));
                            rep.entry("composite").or_insert(Value::Bool(false));
                            return CLIENT_ROLES.create(
                                roles,
                                rep,
                                &format!("{client_location}/roles"),
                            );
                        }
                        CLIENT_ROLES.serve(roles, &method, tail, &body, "")
                    }
                    ["client-secret"] => {
                        let entry = r
                            .clients
                            .iter_mut()
                            .find(|c| str_field(c, "id") == Some(*client))
                            .ok_or_else(|| CLIENTS.not_found())?;
                        if method == Method::POST {
                            entry.insert("secret".into(), Value::String(random_secret()));
                        }
                        let secret = entry.get("secret").cloned().unwrap_or(Value::Null);
                        Ok(json(
                            StatusCode::OK,
                            &json!({ "type": "secret", "value": secret }),
                        ))
                    }
                    ["service-account-user"] if method == Method::GET => {
                        let entry = r
                            .clients
                            .iter()
                            .find(|c| str_field(c, "id") == Some(*client))
                            .cloned()
                            .unwrap_or_default();
                        if entry.get("serviceAccountsEnabled").and_then(Value::as_bool)
                            != Some(true)
                        {
                            return Err(bad_request("Service account not enabled for the client"));
                        }
                        let client_id = str_field(&entry, "clientId").unwrap_or("").to_lowercase();
                        let username = format!("service-account-{client_id}");
                        if let Some(user) = r
                            .users
                            .iter()
                            .find(|u| str_field(u, "username") == Some(username.as_str()))
                        {
                            return Ok(json(StatusCode::OK, &Value::Object(user.clone())));
                        }
                        let user = json_obj(json!({
                            "id": new_id(), "username": username, "enabled": true,
                            "serviceAccountClientId": client, "createdTimestamp": unix_now() * 1000,
                        }));
                        r.users.push(user.clone());
                        Ok(json(StatusCode::OK, &Value::Object(user)))
                    }
                    [
                        kind @ ("default-client-scopes" | "optional-client-scopes"),
                        tail @ ..,
                    ] => scope_links(r, &method, tail, format!("clients/{client}/{kind}")),
                    _ => Err(not_found("resource")),
                }
            }
            // --- users: passwords, groups, realm role mappings
            ["users", user, more @ ..] => {
                USERS.require(&r.users, user)?;
                match (method.as_str(), more) {
                    ("PUT", ["reset-password"]) => {
                        let credential = parse_object(&body)?;
                        let Some(value) = str_field(&credential, "value") else {
                            return Err(bad_request("Password is missing"));
                        };
                        r.passwords.insert((*user).to_owned(), value.to_owned());
                        Ok(empty(StatusCode::NO_CONTENT))
                    }
                    ("GET", ["groups"]) => {
                        let ids = link_ids(r, &format!("users/{user}/groups"));
                        let groups: Vec<Value> = r
                            .groups
                            .iter()
                            .filter(|g| {
                                str_field(&g.rep, "id")
                                    .is_some_and(|id| ids.iter().any(|i| i == id))
                            })
                            .map(|g| r.group_view(g))
                            .collect();
                        Ok(json(StatusCode::OK, &Value::Array(groups)))
                    }
                    ("PUT", ["groups", group]) => {
                        r.find_group(group).ok_or_else(group_not_found)?;
                        add_link(r, format!("users/{user}/groups"), group);
                        Ok(empty(StatusCode::NO_CONTENT))
                    }
                    ("DELETE", ["groups", group]) => {
                        r.find_group(group).ok_or_else(group_not_found)?;
                        remove_link(r, format!("users/{user}/groups"), group);
                        Ok(empty(StatusCode::NO_CONTENT))
                    }
                    (_, ["role-mappings", "realm"]) => {
                        role_mappings(r, &method, format!("users/{user}/realm-roles"), &body)
                    }
                    _ => Err(not_found("resource")),
                }
            }
            // --- groups: members, by path, realm role mappings
            ["groups", group, more @ ..] => {
                r.find_group(group).ok_or_else(group_not_found)?;
                match (method.as_str(), more) {
                    ("GET", ["members"]) => {
                        let members: Vec<Value> = r
                            .users
                            .iter()
                            .filter(|u| {
                                let id = str_field(u, "id").unwrap_or("");
                                link_ids(r, &format!("users/{id}/groups"))
                                    .iter()
                                    .any(|g| g == group)
                            })
                            .map(|u| Value::Object(u.clone()))
                            .collect();
                        Ok(json(StatusCode::OK, &Value::Array(members)))
                    }
                    (_, ["role-mappings", "realm"]) => {
                        role_mappings(r, &method, format!("groups/{group}/realm-roles"), &body)
                    }
                    _ => Err(not_found("resource")),
                }
            }
            ["group-by-path", path @ ..] if method == Method::GET => {
                let wanted = format!("/{}", path.join("/"));
                r.groups
                    .iter()
                    .find(|g| r.group_path(g) == wanted)
                    .map(|g| json(StatusCode::OK, &r.group_view(g)))
                    .ok_or_else(group_not_found)
            }
            // --- realm roles by id, composites
            ["roles-by-id", id] => {
                let index = r
                    .roles
                    .iter()
                    .position(|role| str_field(role, "id") == Some(*id))
                    .ok_or_else(|| ROLES.not_found())?;
                match method.as_str() {
                    "GET" => Ok(json(StatusCode::OK, &Value::Object(r.roles[index].clone()))),
                    "PUT" => {
                        let mut update = parse_object(&body)?;
                        update.remove("id");
                        merge(&mut r.roles[index], update);
                        Ok(empty(StatusCode::NO_CONTENT))
                    }
                    "DELETE" => {
                        r.roles.remove(index);
                        Ok(empty(StatusCode::NO_CONTENT))
                    }
                    _ => Err(not_found("resource")),
                }
            }
            ["roles", name, "composites"] => {
                let role_id = r
                    .roles
                    .iter()
                    .find(|role| str_field(role, "name") == Some(*name))
                    .and_then(|role| str_field(role, "id").map(str::to_owned))
                    .ok_or_else(|| ROLES.not_found())?;
                let response =
                    role_mappings(r, &method, format!("roles/{role_id}/composites"), &body)?;
                let composite = !link_ids(r, &format!("roles/{role_id}/composites")).is_empty();
                if let Some(role) = r
                    .roles
                    .iter_mut()
                    .find(|role| str_field(role, "id") == Some(role_id.as_str()))
                {
                    role.insert("composite".into(), Value::Bool(composite));
                }
                Ok(response)
            }
            // --- identity providers and their mappers
            ["identity-provider", "instances", more @ ..] => {
                match more {
                    [] | [_] => {
                        if let (&Method::DELETE, [alias]) = (&method, more) {
                            // An identity provider's mappers go with it.
                            r.collections
                                .remove(&format!("identity-providers/{alias}/mappers"));
                        }
                        let here = location("identity-provider/instances");
                        let idps = r.items_mut("identity-providers".into());
                        IDENTITY_PROVIDERS.serve(idps, &method, more, &body, &here)
                    }
                    [alias, "mappers", tail @ ..] => {
                        IDENTITY_PROVIDERS.require(r.items("identity-providers"), alias)?;
                        let idp = location(&format!(
                            "identity-provider/instances/{}",
                            encode_segment(alias)
                        ));
                        let here = format!("{idp}/mappers");
                        let mappers = r.items_mut(format!("identity-providers/{alias}/mappers"));
                        IDENTITY_PROVIDER_MAPPERS.serve(mappers, &method, tail, &body, &here)
                    }
                    _ => Err(not_found("resource")),
                }
            }
            _ => Err(error(StatusCode::NOT_FOUND, "HTTP 404 Not Found")),
        }
    })
}

/// `GET` of the client scopes linked under `key` (id and name), `PUT`/`DELETE` of one link.
fn scope_links(r: &mut Realm, method: &Method, tail: &[&str], key: String) -> Reply {
    match (method.as_str(), tail) {
        ("GET", []) => {
            let ids = link_ids(r, &key);
            let scopes: Vec<Value> = r
                .items("client-scopes")
                .iter()
                .filter(|s| str_field(s, "id").is_some_and(|id| ids.iter().any(|i| i == id)))
                .map(|s| json!({ "id": s.get("id"), "name": s.get("name") }))
                .collect();
            Ok(json(StatusCode::OK, &Value::Array(scopes)))
        }
        ("PUT", [scope]) => {
            CLIENT_SCOPES.require(r.items("client-scopes"), scope)?;
            add_link(r, key, scope);
            Ok(empty(StatusCode::NO_CONTENT))
        }
        ("DELETE", [scope]) => {
            remove_link(r, key, scope);
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(not_found("resource")),
    }
}

/// `GET`/`POST`/`DELETE` of a set of realm roles (role mappings, composites) under `key`.
fn role_mappings(r: &mut Realm, method: &Method, key: String, body: &[u8]) -> Reply {
    match method.as_str() {
        "GET" => {
            let ids = link_ids(r, &key);
            Ok(json(
                StatusCode::OK,
                &Value::Array(r.realm_roles_by_ids(&ids)),
            ))
        }
        "POST" => {
            let ids = r.role_ids(&parse_array(body)?)?;
            for id in ids {
                add_link(r, key.clone(), &id);
            }
            Ok(empty(StatusCode::NO_CONTENT))
        }
        "DELETE" => {
            let ids = r.role_ids(&parse_array(body)?)?;
            for id in ids {
                remove_link(r, key.clone(), &id);
            }
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "HTTP 405 Method Not Allowed",
        )),
    }
}
