//! Realm roles: by name (their own routes) and by id.

use std::collections::HashMap;

use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::Value;

use super::families::ROLES;
use super::listing::{contains_ci, page};
use super::rep::{Obj, merge, parse_object, str_field, values};
use super::reply::{Reply, method_not_allowed};
use super::routed::Routed;
use super::segments::encode_segment;
use super::state::Realm;
use crate::util::ids::new_id;
use crate::util::response::{empty, json};

/// `/admin/realms/{realm}/roles[/{name}]`: realm roles, named in URLs.
pub(super) struct Roles;

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

/// `/admin/realms/{realm}/roles-by-id/{id}`: `GET`, `PUT` (the id stays), `DELETE`.
pub(super) fn by_id(r: &mut Realm, method: &Method, id: &str, body: &[u8]) -> Reply {
    let index = r
        .roles
        .iter()
        .position(|role| str_field(role, "id") == Some(id))
        .ok_or_else(|| ROLES.not_found())?;
    match method.as_str() {
        "GET" => Ok(json(StatusCode::OK, &Value::Object(r.roles[index].clone()))),
        "PUT" => {
            let mut update = parse_object(body)?;
            update.remove("id");
            merge(&mut r.roles[index], update);
            Ok(empty(StatusCode::NO_CONTENT))
        }
        "DELETE" => {
            r.roles.remove(index);
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(method_not_allowed()),
    }
}
