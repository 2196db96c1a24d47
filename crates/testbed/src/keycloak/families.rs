//! The families of the admin API and how each is keyed: one table, so every resource module
//! uses the same wording.

use super::family::{Family, Wording};

/// Clients, by generated id; `clientId` is unique.
pub(super) const CLIENTS: Family = Family {
    key: "id",
    unique: "clientId",
    fixed: &["id"],
    wording: Wording::Keycloak {
        missing: "Client id is required",
        taken: |client_id| format!("Client {client_id} already exists"),
        not_found: "Could not find client",
    },
};

/// Users, by generated id; `username` is unique.
pub(super) const USERS: Family = Family {
    key: "id",
    unique: "username",
    fixed: &["id"],
    wording: Wording::Keycloak {
        missing: "User name is missing",
        taken: |_| "User exists with same username".into(),
        not_found: "User not found",
    },
};

/// Realm roles, by name.
pub(super) const ROLES: Family = Family {
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

/// Client scopes, by generated id; `name` is unique.
pub(super) const CLIENT_SCOPES: Family = Family::named("client scope", "id", "name", &["id"]);
/// Protocol mappers of a client or of a client scope.
pub(super) const PROTOCOL_MAPPERS: Family = Family::named("protocol mapper", "id", "name", &["id"]);
/// Client roles, named in URLs like realm roles; as in Keycloak, an update keeps the stored
/// `id` and the role's container whatever the body says.
pub(super) const CLIENT_ROLES: Family =
    Family::named("role", "name", "name", &["id", "clientRole", "containerId"]);
/// Identity providers, by alias.
pub(super) const IDENTITY_PROVIDERS: Family =
    Family::named("identity provider", "alias", "alias", &[]);
/// The mappers of an identity provider, by generated id.
pub(super) const IDENTITY_PROVIDER_MAPPERS: Family = Family::named("mapper", "id", "name", &["id"]);
