//! Realms: the seeded one, their CRUD, partial import and logout of every session.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::Keycloak;
use super::extract::{Authorized, Rep};
use super::rep::{json_obj, merge, parse_object, str_field};
use super::reply::{Reply, bad_request, conflict, created, error};
use super::segments::encode_segment;
use super::state::Realm;
use crate::Credentials;
use crate::util::clock::unix_now;
use crate::util::ids::new_id;
use crate::util::response::{empty, json};

/// The realm a testbed starts with: a public `admin-cli`, the confidential client with
/// service accounts, the admin user and an `admin` role, from `credentials`.
pub(super) fn seeded(credentials: &Credentials, token_lifetime: Duration) -> Realm {
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
    realm
}

/// Keycloak's 404 for an unknown realm.
pub(super) fn realm_not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Realm not found.")
}

/// Runs `f` on the realm named `realm`, or answers 404.
pub(super) fn with_realm<T>(
    kc: &Keycloak,
    realm: &str,
    f: impl FnOnce(&mut Realm) -> Result<T, Response>,
) -> Result<T, Response> {
    let mut state = kc.lock();
    let r = state.realms.get_mut(realm).ok_or_else(realm_not_found)?;
    f(r)
}

/// `GET /admin/realms`.
pub(super) async fn list_realms(State(kc): State<Arc<Keycloak>>, _: Authorized) -> Reply {
    let state = kc.lock();
    let realms: Vec<Value> = state
        .realms
        .values()
        .map(|r| Value::Object(r.rep.clone()))
        .collect();
    Ok(json(StatusCode::OK, &Value::Array(realms)))
}

/// `POST /admin/realms`.
pub(super) async fn create_realm(
    State(kc): State<Arc<Keycloak>>,
    admin: Authorized,
    Rep(mut rep): Rep,
) -> Reply {
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
        admin.base_url,
        encode_segment(&name)
    )))
}

/// `GET /admin/realms/{realm}`.
pub(super) async fn get_realm(
    State(kc): State<Arc<Keycloak>>,
    _: Authorized,
    Path(realm): Path<String>,
) -> Reply {
    with_realm(&kc, &realm, |r| {
        Ok(json(StatusCode::OK, &Value::Object(r.rep.clone())))
    })
}

/// `PUT /admin/realms/{realm}`: overlays the fields given; a new `realm` renames it.
pub(super) async fn update_realm(
    State(kc): State<Arc<Keycloak>>,
    _: Authorized,
    Path(realm): Path<String>,
    Rep(mut update): Rep,
) -> Reply {
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

/// `DELETE /admin/realms/{realm}`.
pub(super) async fn delete_realm(
    State(kc): State<Arc<Keycloak>>,
    _: Authorized,
    Path(realm): Path<String>,
) -> Reply {
    match kc.lock().realms.remove(&realm) {
        Some(_) => Ok(empty(StatusCode::NO_CONTENT)),
        None => Err(realm_not_found()),
    }
}

/// `POST /admin/realms/{realm}/partialImport`: adds the realm roles not there yet.
pub(super) fn partial_import(r: &mut Realm, body: &[u8]) -> Reply {
    let import = parse_object(body)?;
    let mut added = 0;
    if let Some(Value::Array(roles)) = import.get("roles").and_then(|r| r.get("realm")) {
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

/// `POST /admin/realms/{realm}/logout-all`: ends every session of the realm, so the access
/// and refresh tokens it issued stop working.
pub(super) fn logout_all(kc: &Keycloak, realm: &str) -> Reply {
    let mut state = kc.lock();
    if !state.realms.contains_key(realm) {
        return Err(realm_not_found());
    }
    state.access.retain(|issued_by| issued_by != realm);
    state.refresh.retain(|grant| grant.realm != realm);
    Ok(json(StatusCode::OK, &json!({})))
}
