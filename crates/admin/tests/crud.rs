//! One create-read-update-delete flow per resource family against the testbed's fake
//! Keycloak: ids from `Location`, 404 as `None` or `Error::NotFound`, 409 as `Error::Conflict`,
//! and path parameters that cannot escape their segment.
#![allow(clippy::unwrap_used)]

mod common;

use pacer_admin::types::*;
use pacer_admin::{Error, NamespacedClient};
use pacer_testbed::Testbed;
use serde_json::Value;

async fn setup() -> (Testbed, NamespacedClient) {
    let testbed = Testbed::start().await.unwrap();
    let client = common::client(&testbed).namespace("team-a");
    client
        .realms()
        .create(&RealmRepresentation {
            realm: Some("team-a".into()),
            enabled: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    (testbed, client)
}

#[tokio::test]
async fn server_info_reports_the_version() {
    let testbed = Testbed::start().await.unwrap();
    let info = common::client(&testbed)
        .default_namespace()
        .server_info()
        .await
        .unwrap();
    assert_eq!(info.version(), Some(pacer_testbed::KEYCLOAK_VERSION));
    assert!(info.extra.contains_key("builtinProtocolMappers"));
}

#[tokio::test]
async fn realms() {
    let (_testbed, kc) = setup().await;
    let realms = kc.realms();
    let id = realms
        .create(&RealmRepresentation {
            realm: Some("second".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(id, "second", "the id is the last segment of Location");
    let names: Vec<_> = realms
        .list(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r.realm)
        .collect();
    assert!(names.contains(&"second".to_owned()) && names.contains(&"team-a".to_owned()));

    // Read-modify-write keeps fields this client does not know.
    let mut realm = realms.get("second").await.unwrap().unwrap();
    realm.extra.insert("fromTheFuture".into(), Value::from(42));
    realm.display_name = Some("Second".into());
    realms.update("second", &realm).await.unwrap();
    let read = realms.get("second").await.unwrap().unwrap();
    assert_eq!(read.display_name.as_deref(), Some("Second"));
    assert_eq!(read.extra.get("fromTheFuture"), Some(&Value::from(42)));

    let conflict = realms.create(&realm).await.unwrap_err();
    assert!(
        matches!(&conflict, Error::Conflict { message } if message.contains("already exists")),
        "{conflict:?}"
    );

    let import = realms
        .partial_import(
            "second",
            &RealmRepresentation {
                roles: Some(RolesRepresentation {
                    realm: Some(vec![RoleRepresentation {
                        name: Some("imported".into()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(import.get("added"), Some(&Value::from(1)));
    assert!(kc.roles("second").get("imported").await.unwrap().is_some());

    realms.delete("second").await.unwrap();
    assert!(realms.get("second").await.unwrap().is_none(), "404 is None");
    assert!(realms.delete("second").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn clients_and_their_sub_resources() {
    let (_testbed, kc) = setup().await;
    let clients = kc.clients("team-a");
    let id = clients
        .create(&ClientRepresentation {
            client_id: Some("billing".into()),
            service_accounts_enabled: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    let client = clients.get(&id).await.unwrap().unwrap();
    assert_eq!(client.id.as_deref(), Some(id.as_str()));
    assert!(
        !format!("{client:?}").contains(client.secret.as_deref().unwrap()),
        "Debug redacts the secret"
    );
    let found = clients
        .list(&ClientsListQuery {
            client_id: Some("billing".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let err = clients
        .create(&ClientRepresentation {
            client_id: Some("billing".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");

    let secret = clients.secret(&id).await.unwrap();
    let rotated = clients.regenerate_secret(&id).await.unwrap();
    assert_ne!(secret.value, rotated.value);
    assert_eq!(clients.secret(&id).await.unwrap().value, rotated.value);
    let account = clients.service_account_user(&id).await.unwrap();
    assert_eq!(account.username.as_deref(), Some("service-account-billing"));

    // Client roles, addressed by name; Location carries the name.
    let role = clients
        .create_role(
            &id,
            &RoleRepresentation {
                name: Some("read all".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(role, "read all", "percent-decoded from Location");
    assert_eq!(
        clients.roles(&id, &Default::default()).await.unwrap().len(),
        1
    );
    clients
        .update_role(
            &id,
            "read all",
            &RoleRepresentation {
                description: Some("reads".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let read = clients.role(&id, "read all").await.unwrap().unwrap();
    assert_eq!(read.description.as_deref(), Some("reads"));
    assert_eq!(read.client_role, Some(true));
    clients.delete_role(&id, "read all").await.unwrap();
    assert!(clients.role(&id, "read all").await.unwrap().is_none());

    // Protocol mappers.
    let mapper = clients
        .create_protocol_mapper(
            &id,
            &ProtocolMapperRepresentation {
                name: Some("tenant".into()),
                protocol: Some("openid-connect".into()),
                protocol_mapper: Some("oidc-hardcoded-claim-mapper".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(clients.protocol_mappers(&id).await.unwrap().len(), 1);
    clients
        .update_protocol_mapper(
            &id,
            &mapper,
            &ProtocolMapperRepresentation {
                config: Some([("claim.value".to_owned(), "team-a".to_owned())].into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let read = clients
        .protocol_mapper(&id, &mapper)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.config.unwrap()["claim.value"], "team-a");
    clients.delete_protocol_mapper(&id, &mapper).await.unwrap();
    assert!(
        clients
            .protocol_mapper(&id, &mapper)
            .await
            .unwrap()
            .is_none()
    );

    // Default and optional client scopes.
    let scope = kc
        .client_scopes("team-a")
        .create(&ClientScopeRepresentation {
            name: Some("tenant".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    clients.add_default_scope(&id, &scope).await.unwrap();
    clients.add_optional_scope(&id, &scope).await.unwrap();
    assert_eq!(
        clients.default_scopes(&id).await.unwrap()[0]
            .name
            .as_deref(),
        Some("tenant")
    );
    clients.remove_default_scope(&id, &scope).await.unwrap();
    assert!(clients.default_scopes(&id).await.unwrap().is_empty());
    assert_eq!(clients.optional_scopes(&id).await.unwrap().len(), 1);
    clients.remove_optional_scope(&id, &scope).await.unwrap();

    clients.delete(&id).await.unwrap();
    assert!(clients.get(&id).await.unwrap().is_none());
    // A secret operation quotes nothing of its answer, not even Keycloak's message.
    let err = clients.secret(&id).await.unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { message } if message == pacer_admin::REDACTED_EXCERPT),
        "{err:?}"
    );
    let err = clients
        .update(&id, &ClientRepresentation::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { message } if message.contains("client")),
        "an ordinary operation keeps Keycloak's message: {err:?}"
    );
}

#[tokio::test]
async fn client_scopes() {
    let (_testbed, kc) = setup().await;
    let scopes = kc.client_scopes("team-a");
    let id = scopes
        .create(&ClientScopeRepresentation {
            name: Some("profile-x".into()),
            protocol: Some("openid-connect".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        scopes
            .create(&ClientScopeRepresentation {
                name: Some("profile-x".into()),
                ..Default::default()
            })
            .await
            .unwrap_err()
            .is_conflict()
    );
    scopes
        .update(
            &id,
            &ClientScopeRepresentation {
                description: Some("x".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        scopes
            .get(&id)
            .await
            .unwrap()
            .unwrap()
            .description
            .as_deref(),
        Some("x")
    );
    assert_eq!(scopes.list().await.unwrap().len(), 1);

    let mapper = scopes
        .create_protocol_mapper(
            &id,
            &ProtocolMapperRepresentation {
                name: Some("m".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(scopes.protocol_mappers(&id).await.unwrap().len(), 1);
    scopes
        .update_protocol_mapper(
            &id,
            &mapper,
            &ProtocolMapperRepresentation {
                protocol: Some("saml".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        scopes
            .protocol_mapper(&id, &mapper)
            .await
            .unwrap()
            .unwrap()
            .protocol
            .as_deref(),
        Some("saml")
    );
    scopes.delete_protocol_mapper(&id, &mapper).await.unwrap();

    scopes.add_realm_default_scope(&id).await.unwrap();
    scopes.add_realm_optional_scope(&id).await.unwrap();
    assert_eq!(scopes.realm_default_scopes().await.unwrap().len(), 1);
    assert_eq!(scopes.realm_optional_scopes().await.unwrap().len(), 1);
    scopes.remove_realm_default_scope(&id).await.unwrap();
    scopes.remove_realm_optional_scope(&id).await.unwrap();
    assert!(scopes.realm_default_scopes().await.unwrap().is_empty());

    scopes.delete(&id).await.unwrap();
    assert!(scopes.get(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn users_groups_and_roles() {
    let (_testbed, kc) = setup().await;
    let users = kc.users("team-a");
    let groups = kc.groups("team-a");
    let roles = kc.roles("team-a");

    let user = users
        .create(&UserRepresentation {
            username: Some("alice".into()),
            email: Some("alice@example.com".into()),
            enabled: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        users
            .create(&UserRepresentation {
                username: Some("alice".into()),
                ..Default::default()
            })
            .await
            .unwrap_err()
            .is_conflict()
    );
    let found = users
        .list(&UsersListQuery {
            username: Some("alice".into()),
            exact: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found[0].id.as_deref(), Some(user.as_str()));
    assert_eq!(users.count(&Default::default()).await.unwrap(), 1);
    users
        .update(
            &user,
            &UserRepresentation {
                first_name: Some("Alice".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        users
            .get(&user, &Default::default())
            .await
            .unwrap()
            .unwrap()
            .first_name
            .as_deref(),
        Some("Alice")
    );
    users
        .reset_password(
            &user,
            &CredentialRepresentation {
                r#type: Some("password".into()),
                value: Some("correct horse".into()),
                temporary: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    // Groups: top level, child, by path, members.
    let parent = groups
        .create(&GroupRepresentation {
            name: Some("eng".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let child = groups
        .create_child(
            &parent,
            &GroupRepresentation {
                name: Some("platform".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        groups
            .children(&parent, &Default::default())
            .await
            .unwrap()
            .len(),
        1
    );
    let by_path = groups.by_path("/eng/platform").await.unwrap().unwrap();
    assert_eq!(by_path.id.as_deref(), Some(child.as_str()));
    assert!(groups.by_path("/eng/nope").await.unwrap().is_none());
    assert_eq!(groups.list(&Default::default()).await.unwrap().len(), 1);
    groups
        .update(
            &parent,
            &GroupRepresentation {
                attributes: Some([("cost-center".to_owned(), vec!["42".to_owned()])].into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        groups
            .get(&parent)
            .await
            .unwrap()
            .unwrap()
            .attributes
            .is_some()
    );
    users.join_group(&user, &child).await.unwrap();
    assert_eq!(
        users
            .groups(&user, &Default::default())
            .await
            .unwrap()
            .len(),
        1
    );
    let members = groups.members(&child, &Default::default()).await.unwrap();
    assert_eq!(members[0].username.as_deref(), Some("alice"));
    users.leave_group(&user, &child).await.unwrap();
    assert!(
        groups
            .members(&child, &Default::default())
            .await
            .unwrap()
            .is_empty()
    );

    // Realm roles: by name, by id, composites, mappings.
    let name = roles
        .create(&RoleRepresentation {
            name: Some("auditor".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(name, "auditor");
    roles
        .create(&RoleRepresentation {
            name: Some("reader".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        roles
            .create(&RoleRepresentation {
                name: Some("reader".into()),
                ..Default::default()
            })
            .await
            .unwrap_err()
            .is_conflict()
    );
    let auditor = roles.get("auditor").await.unwrap().unwrap();
    let reader = roles.get("reader").await.unwrap().unwrap();
    roles
        .add_composites("auditor", std::slice::from_ref(&reader))
        .await
        .unwrap();
    assert_eq!(
        roles.composites("auditor").await.unwrap()[0]
            .name
            .as_deref(),
        Some("reader")
    );
    assert_eq!(
        roles.get("auditor").await.unwrap().unwrap().composite,
        Some(true)
    );
    roles
        .remove_composites("auditor", std::slice::from_ref(&reader))
        .await
        .unwrap();
    assert!(roles.composites("auditor").await.unwrap().is_empty());
    let auditor_id = auditor.id.clone().unwrap();
    roles
        .update_by_id(
            &auditor_id,
            &RoleRepresentation {
                description: Some("audits".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        roles
            .get_by_id(&auditor_id)
            .await
            .unwrap()
            .unwrap()
            .description
            .as_deref(),
        Some("audits")
    );
    roles
        .update(
            "reader",
            &RoleRepresentation {
                description: Some("reads".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(roles.list(&Default::default()).await.unwrap().len() >= 2);

    users
        .add_realm_roles(&user, std::slice::from_ref(&auditor))
        .await
        .unwrap();
    assert_eq!(
        users.realm_roles(&user).await.unwrap()[0].name.as_deref(),
        Some("auditor")
    );
    users
        .remove_realm_roles(&user, std::slice::from_ref(&auditor))
        .await
        .unwrap();
    assert!(users.realm_roles(&user).await.unwrap().is_empty());
    groups
        .add_realm_roles(&parent, std::slice::from_ref(&reader))
        .await
        .unwrap();
    assert_eq!(groups.realm_roles(&parent).await.unwrap().len(), 1);
    groups
        .remove_realm_roles(&parent, std::slice::from_ref(&reader))
        .await
        .unwrap();

    roles.delete_by_id(&auditor_id).await.unwrap();
    assert!(roles.get("auditor").await.unwrap().is_none());
    roles.delete("reader").await.unwrap();
    groups.delete(&parent).await.unwrap();
    assert!(
        groups.get(&child).await.unwrap().is_none(),
        "children go with their parent"
    );
    users.delete(&user).await.unwrap();
    assert!(
        users
            .get(&user, &Default::default())
            .await
            .unwrap()
            .is_none()
    );
    assert!(users.delete(&user).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn identity_providers_and_mappers() {
    let (_testbed, kc) = setup().await;
    let idps = kc.identity_providers("team-a");
    let alias = idps
        .create(&IdentityProviderRepresentation {
            alias: Some("corp sso".into()),
            provider_id: Some("oidc".into()),
            config: Some([("clientSecret".to_owned(), "idp-secret-value".to_owned())].into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(alias, "corp sso");
    let read = idps.get("corp sso").await.unwrap().unwrap();
    assert!(
        !format!("{read:?}").contains("idp-secret-value"),
        "Debug redacts the config"
    );
    assert!(
        idps.create(&IdentityProviderRepresentation {
            alias: Some("corp sso".into()),
            ..Default::default()
        })
        .await
        .unwrap_err()
        .is_conflict()
    );
    idps.update(
        "corp sso",
        &IdentityProviderRepresentation {
            display_name: Some("Corp".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        idps.list(&Default::default()).await.unwrap()[0]
            .display_name
            .as_deref(),
        Some("Corp")
    );

    let mapper = idps
        .create_mapper(
            "corp sso",
            &IdentityProviderMapperRepresentation {
                name: Some("email".into()),
                identity_provider_alias: Some("corp sso".into()),
                identity_provider_mapper: Some("oidc-user-attribute-idp-mapper".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(idps.mappers("corp sso").await.unwrap().len(), 1);
    idps.update_mapper(
        "corp sso",
        &mapper,
        &IdentityProviderMapperRepresentation {
            config: Some([("claim".to_owned(), "email".to_owned())].into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        idps.mapper("corp sso", &mapper)
            .await
            .unwrap()
            .unwrap()
            .config
            .is_some()
    );
    idps.delete_mapper("corp sso", &mapper).await.unwrap();
    assert!(idps.mapper("corp sso", &mapper).await.unwrap().is_none());
    idps.delete("corp sso").await.unwrap();
    assert!(idps.get("corp sso").await.unwrap().is_none());
}

#[tokio::test]
async fn path_parameters_stay_in_their_segment() {
    let (testbed, kc) = setup().await;
    // A realm whose name holds a slash and a question mark.
    let odd = "a/b?c";
    let id = kc
        .realms()
        .create(&RealmRepresentation {
            realm: Some(odd.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(id, odd);
    assert_eq!(
        kc.realms()
            .get(odd)
            .await
            .unwrap()
            .unwrap()
            .realm
            .as_deref(),
        Some(odd)
    );
    let user = kc
        .users(odd)
        .create(&UserRepresentation {
            username: Some("bob".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        kc.users(odd)
            .get(&user, &Default::default())
            .await
            .unwrap()
            .is_some()
    );

    // An id that tries to climb to another endpoint is just an unknown id.
    let clients = kc.clients("team-a");
    assert!(
        kc.users("team-a")
            .get("../clients", &Default::default())
            .await
            .unwrap()
            .is_none()
    );
    assert!(clients.get("..").await.unwrap().is_none());
    assert!(clients.get("x?first=0").await.unwrap().is_none());
    let targets: Vec<String> = testbed
        .keycloak_requests()
        .into_iter()
        .map(|r| r.target)
        .collect();
    assert!(
        targets.contains(&"/admin/realms/a%2Fb%3Fc".to_owned()),
        "{targets:?}"
    );
    assert!(
        targets.contains(&"/admin/realms/team-a/users/..%2Fclients".to_owned()),
        "{targets:?}"
    );
    assert!(
        targets.contains(&"/admin/realms/team-a/clients/%2E%2E".to_owned()),
        "{targets:?}"
    );
}
