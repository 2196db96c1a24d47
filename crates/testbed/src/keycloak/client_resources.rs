//! A client's sub-resources, served from the raw path: protocol mappers, client roles, the
//! secret, the service-account user, default and optional client scopes.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::families::{CLIENT_ROLES, CLIENTS, PROTOCOL_MAPPERS};
use super::rep::{json_obj, parse_object, str_field};
use super::reply::{Reply, bad_request, method_not_allowed, route_not_found};
use super::scope_links;
use super::segments::encode_segment;
use super::state::Realm;
use crate::util::clock::unix_now;
use crate::util::ids::{new_id, random_secret};
use crate::util::response::json;

/// `/admin/realms/{realm}/clients/{client}/...`, `more` being what follows the client's id;
/// `realm_url` is the realm's URL.
pub(super) fn serve(
    r: &mut Realm,
    method: &Method,
    client: &str,
    more: &[&str],
    body: &[u8],
    realm_url: &str,
) -> Reply {
    CLIENTS.require(&r.clients, client)?;
    let client_url = format!("{realm_url}/clients/{}", encode_segment(client));
    match more {
        ["protocol-mappers", "models", tail @ ..] => {
            let here = format!("{client_url}/protocol-mappers/models");
            let mappers = r.items_mut(format!("clients/{client}/protocol-mappers"));
            PROTOCOL_MAPPERS.serve(mappers, method, tail, body, &here)
        }
        ["roles", tail @ ..] => roles(r, method, client, tail, body, &client_url),
        ["client-secret"] if matches!(*method, Method::GET | Method::POST) => {
            secret(r, method, client)
        }
        ["service-account-user"] if method == Method::GET => service_account_user(r, client),
        ["client-secret" | "service-account-user"] => Err(method_not_allowed()),
        [
            kind @ ("default-client-scopes" | "optional-client-scopes"),
            tail @ ..,
        ] => scope_links::serve(r, method, tail, format!("clients/{client}/{kind}")),
        _ => Err(route_not_found()),
    }
}

/// `clients/{client}/roles[/{name}]`: client roles are named in URLs, yet carry a generated
/// id.
fn roles(
    r: &mut Realm,
    method: &Method,
    client: &str,
    tail: &[&str],
    body: &[u8],
    client_url: &str,
) -> Reply {
    let roles = r.items_mut(format!("clients/{client}/roles"));
    if method == Method::POST && tail.is_empty() {
        let mut rep = parse_object(body)?;
        rep.insert("id".into(), Value::String(new_id()));
        rep.insert("clientRole".into(), Value::Bool(true));
        rep.insert("containerId".into(), Value::String(client.to_owned()));
        rep.entry("composite").or_insert(Value::Bool(false));
        return CLIENT_ROLES.create(roles, rep, &format!("{client_url}/roles"));
    }
    CLIENT_ROLES.serve(roles, method, tail, body, "")
}

/// `clients/{client}/client-secret`: `GET` the secret, `POST` a new one.
fn secret(r: &mut Realm, method: &Method, client: &str) -> Reply {
    let entry = r
        .clients
        .iter_mut()
        .find(|c| str_field(c, "id") == Some(client))
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

/// `GET clients/{client}/service-account-user`: the client's service-account user, made on
/// first use.
fn service_account_user(r: &mut Realm, client: &str) -> Reply {
    let entry = r
        .clients
        .iter()
        .find(|c| str_field(c, "id") == Some(client))
        .cloned()
        .unwrap_or_default();
    if entry.get("serviceAccountsEnabled").and_then(Value::as_bool) != Some(true) {
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
