//! Idempotent reconcile helpers: make an object look like `desired`, whatever state it is in.
//!
//! Each helper looks the object up by its natural key (realm name, `clientId`, scope name,
//! top-level group name, role name, username), creates it when absent, and updates it when a
//! field set in `desired` differs from what Keycloak holds. A `409` on create (somebody — or a
//! retry of ours — created it meanwhile) is read as "exists": the helper reads it and goes on.
//! So a repeated or retried reconcile never duplicates anything, and a second pass over the
//! same input changes nothing ([`Outcome::Unchanged`]).
//!
//! "Differs" compares only the fields `desired` sets (`Some`, and keys of `extra`), at the top
//! level; an update sends Keycloak's current object with those fields replaced, so fields the
//! caller does not manage — including ones this client does not know — are kept. Give values
//! the way Keycloak stores them (e.g. usernames in lower case), or every pass will update.
//!
//! ```no_run
//! # async fn run(client: pacer_admin::AdminClient) -> pacer_admin::Result<()> {
//! use pacer_admin::types::{ClientRepresentation, RealmRepresentation};
//! let team = client.namespace("team-a");
//! team.ensure_realm(&RealmRepresentation {
//!     realm: Some("team-a".into()),
//!     enabled: Some(true),
//!     ..Default::default()
//! })
//! .await?;
//! let outcome = team
//!     .ensure_client("team-a", &ClientRepresentation {
//!         client_id: Some("billing".into()),
//!         public_client: Some(false),
//!         ..Default::default()
//!     })
//!     .await?;
//! println!("{} {}", outcome.id(), outcome.changed());
//! # Ok(()) }
//! ```

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::client::NamespacedClient;
use crate::error::{Error, Result};
use crate::types::{
    ClientRepresentation, ClientScopeRepresentation, ClientsListQuery, GroupRepresentation,
    RoleRepresentation, UserRepresentation, UsersListQuery,
};

/// What a reconcile did. Each carries the object's id as the API addresses it (for realms
/// and realm roles, their name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It was absent and is now created.
    Created(String),
    /// It existed and differed; it is now updated.
    Updated(String),
    /// It existed as desired; nothing was sent.
    Unchanged(String),
}

impl Outcome {
    /// The object's id.
    pub fn id(&self) -> &str {
        match self {
            Outcome::Created(id) | Outcome::Updated(id) | Outcome::Unchanged(id) => id,
        }
    }

    /// Whether anything was written.
    pub fn changed(&self) -> bool {
        !matches!(self, Outcome::Unchanged(_))
    }
}

/// `current` with the fields `desired` sets, or `None` when they already match.
pub(crate) fn merged<T: Serialize + DeserializeOwned>(
    current: &T,
    desired: &T,
) -> Result<Option<T>> {
    let mut current = serde_json::to_value(current).map_err(Error::Encode)?;
    let Value::Object(wanted) = serde_json::to_value(desired).map_err(Error::Encode)? else {
        return Ok(None);
    };
    let Value::Object(fields) = &mut current else {
        return Ok(None);
    };
    if wanted
        .iter()
        .all(|(key, value)| fields.get(key) == Some(value))
    {
        return Ok(None);
    }
    fields.extend(wanted);
    serde_json::from_value(current)
        .map(Some)
        .map_err(Error::Encode)
}

/// The reconcile loop shared by every helper.
async fn ensure<T, F, FFut, C, CFut, U, UFut>(
    desired: &T,
    find: F,
    create: C,
    update: U,
    id_of: impl Fn(&T) -> Option<String>,
) -> Result<Outcome>
where
    T: Serialize + DeserializeOwned,
    F: Fn() -> FFut,
    FFut: Future<Output = Result<Option<T>>>,
    C: FnOnce() -> CFut,
    CFut: Future<Output = Result<String>>,
    U: FnOnce(String, T) -> UFut,
    UFut: Future<Output = Result<()>>,
{
    let current = match find().await? {
        Some(current) => current,
        None => match create().await {
            Ok(id) => return Ok(Outcome::Created(id)),
            // Created meanwhile (by another replica, or by an earlier attempt of ours whose
            // answer was lost): read it and carry on as if it had been there.
            Err(Error::Conflict { message }) => match find().await? {
                Some(current) => current,
                None => return Err(Error::Conflict { message }),
            },
            Err(error) => return Err(error),
        },
    };
    let id = id_of(&current).ok_or_else(|| Error::Decode {
        source: serde::de::Error::missing_field("id"),
        excerpt: "the object Keycloak returned has no id".to_owned(),
    })?;
    match merged(&current, desired)? {
        None => Ok(Outcome::Unchanged(id)),
        Some(next) => {
            update(id.clone(), next).await?;
            Ok(Outcome::Updated(id))
        }
    }
}

fn required<'a>(value: &'a Option<String>, what: &str) -> Result<&'a str> {
    value
        .as_deref()
        .ok_or_else(|| Error::Invalid(format!("the desired object has no {what}")))
}

impl NamespacedClient {
    /// Ensures the realm `desired.realm` exists with the fields `desired` sets.
    pub async fn ensure_realm(
        &self,
        desired: &crate::types::RealmRepresentation,
    ) -> Result<Outcome> {
        let name = required(&desired.realm, "`realm` name")?;
        let api = &self.realms();
        ensure(
            desired,
            || api.get(name),
            || api.create(desired),
            |_, next| async move { api.update(name, &next).await },
            |current| current.realm.clone(),
        )
        .await
    }

    /// Ensures the client `desired.client_id` exists in `realm` as desired; the outcome
    /// carries its id (UUID).
    pub async fn ensure_client(
        &self,
        realm: &str,
        desired: &ClientRepresentation,
    ) -> Result<Outcome> {
        let client_id = required(&desired.client_id, "`clientId`")?;
        let api = self.clients(realm);
        let query = ClientsListQuery {
            client_id: Some(client_id.to_owned()),
            ..ClientsListQuery::default()
        };
        let api = &api;
        let query = &query;
        ensure(
            desired,
            || async move {
                let found = api.list(query).await?;
                Ok(found
                    .into_iter()
                    .find(|c| c.client_id.as_deref() == Some(client_id)))
            },
            || api.create(desired),
            |id, next| async move { api.update(&id, &next).await },
            |current| current.id.clone(),
        )
        .await
    }

    /// Ensures the client scope named `desired.name` exists in `realm` as desired.
    pub async fn ensure_client_scope(
        &self,
        realm: &str,
        desired: &ClientScopeRepresentation,
    ) -> Result<Outcome> {
        let name = required(&desired.name, "`name`")?;
        let api = &self.client_scopes(realm);
        ensure(
            desired,
            || async move {
                let found = api.list().await?;
                Ok(found.into_iter().find(|s| s.name.as_deref() == Some(name)))
            },
            || api.create(desired),
            |id, next| async move { api.update(&id, &next).await },
            |current| current.id.clone(),
        )
        .await
    }

    /// Ensures the top-level group named `desired.name` exists in `realm` as desired.
    pub async fn ensure_group(
        &self,
        realm: &str,
        desired: &GroupRepresentation,
    ) -> Result<Outcome> {
        let name = required(&desired.name, "`name`")?;
        let api = &self.groups(realm);
        let mut path = String::from("/");
        path.push_str(name);
        let path = &path;
        ensure(
            desired,
            || api.by_path(path),
            || api.create(desired),
            |id, next| async move { api.update(&id, &next).await },
            |current| current.id.clone(),
        )
        .await
    }

    /// Ensures the realm role named `desired.name` exists in `realm` as desired; the outcome
    /// carries its name (realm roles are addressed by name).
    pub async fn ensure_role(&self, realm: &str, desired: &RoleRepresentation) -> Result<Outcome> {
        let name = required(&desired.name, "`name`")?;
        let api = &self.roles(realm);
        ensure(
            desired,
            || api.get(name),
            || api.create(desired),
            |_, next| async move { api.update(name, &next).await },
            |current| current.name.clone(),
        )
        .await
    }

    /// Ensures the user `desired.username` exists in `realm` as desired. Keycloak stores
    /// usernames in lower case; give it that way.
    pub async fn ensure_user(&self, realm: &str, desired: &UserRepresentation) -> Result<Outcome> {
        let username = required(&desired.username, "`username`")?;
        let api = &self.users(realm);
        let query = &UsersListQuery {
            username: Some(username.to_owned()),
            exact: Some(true),
            ..UsersListQuery::default()
        };
        ensure(
            desired,
            || async move {
                let found = api.list(query).await?;
                Ok(found.into_iter().find(|u| {
                    u.username
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(username))
                }))
            },
            || api.create(desired),
            |id, next| async move { api.update(&id, &next).await },
            |current| current.id.clone(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn merge_keeps_unmanaged_and_unknown_fields() {
        let mut current = ClientRepresentation {
            id: Some("1".into()),
            client_id: Some("app".into()),
            enabled: Some(true),
            ..Default::default()
        };
        current
            .extra
            .insert("fromTheFuture".into(), Value::Bool(true));
        let desired = ClientRepresentation {
            client_id: Some("app".into()),
            enabled: Some(true),
            ..Default::default()
        };
        assert_eq!(merged(&current, &desired).unwrap(), None);
        let desired = ClientRepresentation {
            enabled: Some(false),
            ..desired
        };
        let next = merged(&current, &desired).unwrap().unwrap();
        assert_eq!(next.enabled, Some(false));
        assert_eq!(next.id.as_deref(), Some("1"));
        assert_eq!(next.extra.get("fromTheFuture"), Some(&Value::Bool(true)));
    }
}

#[cfg(test)]
mod type_tests {
    #![allow(clippy::unwrap_used)]
    use crate::types::{Logic, UserRepresentation};

    #[test]
    fn enums_keep_values_from_newer_keycloaks() {
        assert_eq!(
            serde_json::from_str::<Logic>(r#""NEGATIVE""#).unwrap(),
            Logic::Negative
        );
        let future: Logic = serde_json::from_str(r#""SOMETIMES""#).unwrap();
        assert_eq!(future, Logic::Other("SOMETIMES".into()));
        assert_eq!(serde_json::to_string(&future).unwrap(), r#""SOMETIMES""#);
    }

    #[test]
    fn representations_round_trip_unknown_fields_and_skip_absent_ones() {
        let text = r#"{"id":"1","username":"a","self":"x","newField":{"deep":[1,2]}}"#;
        let user: UserRepresentation = serde_json::from_str(text).unwrap();
        assert_eq!(user.self_.as_deref(), Some("x"));
        let back: serde_json::Value = serde_json::to_value(&user).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
        let empty = serde_json::to_string(&UserRepresentation::default()).unwrap();
        assert_eq!(empty, "{}");
    }
}
