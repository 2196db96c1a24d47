//! Users: list, search and count, CRUD, passwords (taken out of `credentials`, never
//! returned), lower-cased user names.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::Keycloak;
use super::extract::{Authorized, ListQuery};
use super::families::USERS;
use super::listing::{contains_ci, page};
use super::realms::with_realm;
use super::rep::{Obj, parse_object, str_field, values};
use super::reply::{Reply, bad_request, conflict};
use super::routed::Routed;
use super::state::Realm;
use crate::util::clock::unix_now;
use crate::util::ids::new_id;
use crate::util::response::{empty, json};

/// Whether `user` matches a list or count query (`username`, `email`, `firstName`,
/// `lastName`, `exact`, `search`, `enabled`).
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

/// `GET /admin/realms/{realm}/users/count`.
pub(super) async fn count_users(
    State(kc): State<Arc<Keycloak>>,
    _: Authorized,
    Path(realm): Path<String>,
    ListQuery(query): ListQuery,
) -> Reply {
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

/// Keycloak's 409 if a user other than `except` (an id) has the email `rep` gives; emails
/// compare ignoring case, as Keycloak stores them lower-cased.
fn email_free(r: &Realm, rep: &Obj, except: Option<&str>) -> Result<(), Response> {
    let Some(email) = str_field(rep, "email") else {
        return Ok(());
    };
    let taken = r.users.iter().any(|u| {
        except.is_none_or(|id| str_field(u, "id") != Some(id))
            && str_field(u, "email").is_some_and(|e| e.eq_ignore_ascii_case(email))
    });
    if taken {
        return Err(conflict("User exists with same email".into()));
    }
    Ok(())
}

/// Keycloak keeps user names lower-cased.
fn lower_username(rep: &mut Obj) {
    if let Some(name) = str_field(rep, "username").map(str::to_lowercase) {
        rep.insert("username".into(), Value::String(name));
    }
}

/// `/admin/realms/{realm}/users[/{id}]`.
pub(super) struct Users;

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
        email_free(r, &rep, None)?;
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

    /// The email must stay unique too: taking another user's is a 409, as in Keycloak.
    fn update(r: &mut Realm, id: &str, mut update: Obj) -> Reply {
        USERS.require(&r.users, id)?;
        lower_username(&mut update);
        email_free(r, &update, Some(id))?;
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

/// `PUT /admin/realms/{realm}/users/{id}/reset-password`: the password for the `password`
/// grant.
pub(super) fn reset_password(r: &mut Realm, user: &str, body: &[u8]) -> Reply {
    let credential = parse_object(body)?;
    let Some(value) = str_field(&credential, "value") else {
        return Err(bad_request("Password is missing"));
    };
    r.passwords.insert(user.to_owned(), value.to_owned());
    Ok(empty(StatusCode::NO_CONTENT))
}
