//! Clients: list and search (`clientId`, `search`, `first`, `max`), CRUD; a confidential
//! client gets a generated secret.

use std::collections::HashMap;

use axum::response::Response;
use serde_json::Value;

use super::families::CLIENTS;
use super::listing::{contains_ci, page};
use super::rep::{Obj, str_field, values};
use super::reply::Reply;
use super::routed::Routed;
use super::state::Realm;
use crate::util::ids::{new_id, random_secret};

/// `/admin/realms/{realm}/clients[/{id}]`.
pub(super) struct Clients;

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
