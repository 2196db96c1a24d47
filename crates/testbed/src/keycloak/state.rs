//! What the fake Keycloak holds: realms and their resources, issued tokens.

use std::collections::{BTreeMap, HashMap};

use super::rep::Obj;
use crate::util::tokens::Tokens;

#[derive(Debug, Default)]
pub(super) struct Store {
    pub(super) realms: BTreeMap<String, Realm>,
    /// Access tokens, each with the realm that issued it.
    pub(super) access: Tokens<String>,
    pub(super) refresh: Tokens<RefreshGrant>,
}

/// What a refresh token was issued for.
#[derive(Debug, Clone)]
pub(super) struct RefreshGrant {
    pub(super) realm: String,
    pub(super) client_id: String,
    pub(super) subject: String,
}

/// One realm: its representation and everything in it.
#[derive(Debug, Default)]
pub(super) struct Realm {
    pub(super) rep: Obj,
    pub(super) clients: Vec<Obj>,
    pub(super) users: Vec<Obj>,
    /// user id -> password
    pub(super) passwords: HashMap<String, String>,
    pub(super) groups: Vec<Group>,
    pub(super) roles: Vec<Obj>,
    /// The other families (client scopes, identity providers, mappers, client roles,
    /// memberships ...), each a list of objects under a collection key such as
    /// `client-scopes` or `clients/{id}/roles`; see the `nested` module.
    pub(super) collections: BTreeMap<String, Vec<Obj>>,
}

/// A group, and the id of its parent (none for a top-level group).
#[derive(Debug)]
pub(super) struct Group {
    pub(super) rep: Obj,
    pub(super) parent: Option<String>,
}

impl Realm {
    /// The objects under `key` in `collections`: a raw-path family or a set of links.
    pub(super) fn items(&self, key: &str) -> &[Obj] {
        self.collections.get(key).map_or(&[], Vec::as_slice)
    }

    /// The objects under `key`, created empty if need be.
    pub(super) fn items_mut(&mut self, key: String) -> &mut Vec<Obj> {
        self.collections.entry(key).or_default()
    }
}
