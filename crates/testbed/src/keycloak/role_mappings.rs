//! Sets of realm roles: the realm role mappings of users and groups, and composite roles.

use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::Value;

use super::families::ROLES;
use super::links::{add_link, link_ids, remove_link};
use super::rep::{Obj, parse_array, str_field};
use super::reply::{Reply, method_not_allowed};
use super::state::Realm;
use crate::util::response::{empty, json};

/// `GET`/`POST`/`DELETE` of a set of realm roles (role mappings, composites) under `key`.
pub(super) fn serve(r: &mut Realm, method: &Method, key: String, body: &[u8]) -> Reply {
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
        _ => Err(method_not_allowed()),
    }
}
impl Realm {
    /// Realm roles by id, as the ids in role-mapping bodies refer to them.
    fn realm_roles_by_ids(&self, ids: &[String]) -> Vec<Value> {
        self.roles
            .iter()
            .filter(|role| str_field(role, "id").is_some_and(|id| ids.iter().any(|i| i == id)))
            .map(|role| Value::Object(role.clone()))
            .collect()
    }

    /// The ids of the realm roles a role-mapping body names (by id, else by name).
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

/// `/admin/realms/{realm}/roles/{name}/composites`: the realm roles a role is made of; the
/// role's `composite` flag follows.
pub(super) fn composites(r: &mut Realm, method: &Method, name: &str, body: &[u8]) -> Reply {
    let role_id = r
        .roles
        .iter()
        .find(|role| str_field(role, "name") == Some(name))
        .and_then(|role| str_field(role, "id").map(str::to_owned))
        .ok_or_else(|| ROLES.not_found())?;
    let response = serve(r, method, format!("roles/{role_id}/composites"), body)?;
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
