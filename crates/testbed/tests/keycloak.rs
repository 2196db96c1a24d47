//! The fake Keycloak over real TCP: token grants, auth, admin CRUD.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use http::Method;
use pacer_testbed::Testbed;
use serde_json::{Value, json};

#[tokio::test]
async fn client_credentials_grant_answers_the_keycloak_shape() {
    let tb = Testbed::start().await.unwrap();
    let client = client();
    let c = tb.credentials().clone();
    let reply = token_form(
        &client,
        &tb,
        "master",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &c.keycloak_client_id),
            ("client_secret", &c.keycloak_client_secret),
        ],
    )
    .await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["refresh_expires_in"], 0);
    assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);
    // Keycloak issues no refresh token for client_credentials by default.
    assert!(body.get("refresh_token").is_none());

    // Wrong secret, unknown client: 401 invalid_client.
    for (id, secret) in [(c.keycloak_client_id.as_str(), "nope"), ("ghost", "x")] {
        let reply = token_form(
            &client,
            &tb,
            "master",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ],
        )
        .await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.json()["error"], "invalid_client");
        assert!(reply.json()["error_description"].is_string());
    }
}

#[tokio::test]
async fn client_secret_basic_is_accepted() {
    let tb = Testbed::start().await.unwrap();
    let client = client();
    // pacer:pacer-secret
    let url = format!(
        "{}/realms/master/protocol/openid-connect/token",
        tb.keycloak_url()
    );
    let reply = send(
        &client,
        request(
            Method::POST,
            &url,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", "Basic cGFjZXI6cGFjZXItc2VjcmV0"),
            ],
            "grant_type=client_credentials",
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

#[tokio::test(start_paused = true)]
async fn password_grant_refresh_and_expiry() {
    let tb = Testbed::builder()
        .token_lifetime(Duration::from_secs(1))
        .refresh_lifetime(Duration::from_secs(30))
        .start()
        .await
        .unwrap();
    let client = client();
    let c = tb.credentials().clone();
    let password_grant = async |password: &str| {
        let form = [
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", &c.keycloak_admin_user),
            ("password", password),
        ];
        token_form(&client, &tb, "master", &form).await
    };
    let refresh_grant = async |refresh: &str| {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", "admin-cli"),
            ("refresh_token", refresh),
        ];
        token_form(&client, &tb, "master", &form).await
    };
    let serverinfo = async |access: &str| {
        admin(&client, &tb, access, Method::GET, "/admin/serverinfo", None).await
    };

    let bad = password_grant("wrong").await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.json()["error"], "invalid_grant");

    let reply = password_grant(&c.keycloak_admin_password).await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["expires_in"], 1);
    assert_eq!(body["refresh_expires_in"], 30);
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();

    let ok = serverinfo(&access).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["systemInfo"]["version"], "26.6.0");

    // The access token expires after its lifetime (the fake reads tokio's clock).
    tokio::time::advance(Duration::from_millis(1200)).await;
    let expired = serverinfo(&access).await;
    assert_eq!(expired.status, 401);

    // The refresh token still works and gives a new pair.
    let refreshed = refresh_grant(&refresh).await;
    assert_eq!(refreshed.status, 200);
    let new_access = refreshed.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(refreshed.json()["refresh_token"].is_string());
    let ok = serverinfo(&new_access).await;
    assert_eq!(ok.status, 200);

    // A made-up refresh token, or one presented by another client, is refused.
    let invalid = refresh_grant("garbage").await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.json()["error"], "invalid_grant");

    let unsupported = token_form(
        &client,
        &tb,
        "master",
        &[("grant_type", "magic"), ("client_id", "admin-cli")],
    )
    .await;
    assert_eq!(unsupported.status, 400);
    assert_eq!(unsupported.json()["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn admin_api_needs_a_valid_bearer_token() {
    let tb = Testbed::start().await.unwrap();
    let client = client();
    let url = format!("{}/admin/realms", tb.keycloak_url());
    let reply = send(&client, request(Method::GET, &url, &[], "")).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"], "HTTP 401 Unauthorized");
    let reply = admin(&client, &tb, "made-up", Method::GET, "/admin/realms", None).await;
    assert_eq!(reply.status, 401);
}

/// The admin API of a started test bed, called with a client-credentials token.
struct Admin {
    tb: Testbed,
    client: HttpClient,
    token: String,
}

impl Admin {
    async fn start() -> Self {
        let tb = Testbed::start().await.unwrap();
        let client = client();
        let token = admin_token(&client, &tb).await;
        Self { tb, client, token }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        admin(&self.client, &self.tb, &self.token, method, path, body).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    /// POSTs `body` to `collection` and checks Keycloak's answer: 201, no body, and a
    /// `Location` of one segment under `members` (the collection itself, except for
    /// sub-groups). Answers the new member's path.
    async fn create_in(&self, collection: &str, members: &str, body: Value) -> String {
        let created = self.post(collection, body).await;
        assert_eq!(created.status, 201, "{collection}: {:?}", created.body);
        assert!(created.body.is_empty());
        let location = created.header("location").unwrap();
        let prefix = format!("{}{members}/", self.tb.keycloak_url());
        let key = location
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{location} is not under {prefix}"));
        assert!(!key.is_empty() && !key.contains('/'), "{location}");
        format!("{members}/{key}")
    }

    async fn create(&self, collection: &str, body: Value) -> String {
        self.create_in(collection, collection, body).await
    }
}

/// What the CRUD test expects of one resource family.
struct Family {
    collection: &'static str,
    new: Value,
    /// The last segment of the new member's `Location`, where it is not a generated id.
    key: Option<&'static str>,
    /// A second create that collides with `new` on the unique field, and Keycloak's 409 text.
    duplicate: Value,
    taken: &'static str,
    /// The 404 `error` text once the member is gone.
    not_found: &'static str,
}

#[tokio::test]
async fn every_family_creates_refuses_duplicates_reads_and_deletes() {
    let admin = Admin::start().await;
    let families = [
        Family {
            collection: "/admin/realms",
            new: json!({"realm": "tenant-a", "enabled": true, "x-custom": [1, 2]}),
            key: Some("tenant-a"),
            duplicate: json!({"realm": "tenant-a"}),
            taken: "Realm tenant-a already exists",
            not_found: "Realm not found.",
        },
        Family {
            collection: "/admin/realms/master/clients",
            new: json!({"clientId": "operator", "serviceAccountsEnabled": true}),
            key: None,
            duplicate: json!({"clientId": "operator"}),
            taken: "Client operator already exists",
            not_found: "Could not find client",
        },
        Family {
            collection: "/admin/realms/master/users",
            new: json!({"username": "Alice", "email": "alice@example.org", "enabled": true}),
            key: None,
            // User names are lower-cased, so `alice` is taken by `Alice`.
            duplicate: json!({"username": "alice"}),
            taken: "User exists with same username",
            not_found: "User not found",
        },
        Family {
            collection: "/admin/realms/master/groups",
            new: json!({"name": "teams"}),
            key: None,
            duplicate: json!({"name": "teams"}),
            taken: "Top level group named 'teams' already exists.",
            not_found: "Could not find group by id",
        },
        Family {
            collection: "/admin/realms/master/roles",
            new: json!({"name": "reader", "description": "reads"}),
            key: Some("reader"),
            duplicate: json!({"name": "reader"}),
            taken: "Role with name reader already exists",
            not_found: "Could not find role",
        },
        Family {
            collection: "/admin/realms/master/client-scopes",
            new: json!({"name": "tenant", "protocol": "openid-connect"}),
            key: None,
            duplicate: json!({"name": "tenant"}),
            taken: "client scope with name tenant already exists",
            not_found: "Could not find client scope",
        },
        Family {
            collection: "/admin/realms/master/identity-provider/instances",
            new: json!({"alias": "github", "providerId": "github"}),
            key: Some("github"),
            duplicate: json!({"alias": "github"}),
            taken: "identity provider with alias github already exists",
            not_found: "Could not find identity provider",
        },
    ];
    for family in families {
        let collection = family.collection;
        let path = admin.create(collection, family.new).await;
        if let Some(key) = family.key {
            assert_eq!(path, format!("{collection}/{key}"));
        }

        let dup = admin.post(collection, family.duplicate.clone()).await;
        assert_eq!(dup.status, 409, "{collection}");
        assert_eq!(dup.json()["errorMessage"], family.taken);

        // The member is there, under the value the duplicate collided with.
        let rep = admin.get(&path).await;
        assert_eq!(rep.status, 200, "{path}");
        for (field, value) in family.duplicate.as_object().unwrap() {
            assert_eq!(rep.json()[field], *value, "{path}");
        }

        assert_eq!(admin.delete(&path).await.status, 204, "{path}");
        for gone in [admin.get(&path).await, admin.delete(&path).await] {
            assert_eq!(gone.status, 404, "{path}");
            assert_eq!(gone.json()["error"], family.not_found);
        }

        if let Some(in_realm) = collection.strip_prefix("/admin/realms/master/") {
            let no_realm = admin.get(&format!("/admin/realms/nope/{in_realm}")).await;
            assert_eq!(no_realm.status, 404, "{in_realm}");
            assert_eq!(no_realm.json()["error"], "Realm not found.");
        }
    }
}

#[tokio::test]
async fn realms_list_and_keep_unknown_fields() {
    let admin = Admin::start().await;
    let path = admin
        .create(
            "/admin/realms",
            json!({"realm": "tenant-a", "enabled": true, "x-custom": [1, 2]}),
        )
        .await;
    assert_eq!(path, "/admin/realms/tenant-a");

    let list = admin.get("/admin/realms").await;
    let names: Vec<_> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["realm"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["master", "tenant-a"]);

    let mut rep = admin.get(&path).await.json();
    assert_eq!(rep["x-custom"], json!([1, 2]));
    rep["displayName"] = json!("Tenant A");
    assert_eq!(admin.put(&path, rep).await.status, 204);
    let rep = admin.get(&path).await.json();
    assert_eq!(rep["displayName"], "Tenant A");
    assert_eq!(rep["x-custom"], json!([1, 2]));
}

#[tokio::test]
async fn clients_search_and_unknown_fields_round_trip() {
    let admin = Admin::start().await;
    let base = "/admin/realms/master/clients";
    let path = admin
        .create(
            base,
            json!({"clientId": "operator", "serviceAccountsEnabled": true, "futureField": {"nested": true}}),
        )
        .await;
    let id = path.rsplit('/').next().unwrap();

    // Search by clientId.
    let found = admin.get(&format!("{base}?clientId=operator")).await.json();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"], id);

    // Read-modify-write keeps fields the fake knows nothing about.
    let mut rep = admin.get(&path).await.json();
    assert_eq!(rep["futureField"], json!({"nested": true}));
    rep["description"] = json!("reconciles tenants");
    rep["anotherUnknown"] = json!(42);
    assert_eq!(admin.put(&path, rep.clone()).await.status, 204);
    let back = admin.get(&path).await.json();
    assert_eq!(back, rep);

    // The new client can get tokens with its generated secret.
    let secret = back["secret"].as_str().unwrap().to_owned();
    let token_reply = token_form(
        &admin.client,
        &admin.tb,
        "master",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "operator"),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(token_reply.status, 200);
}

#[tokio::test]
async fn users_search_count_and_passwords() {
    let admin = Admin::start().await;
    let base = "/admin/realms/master/users";

    let mut paths = Vec::new();
    for (name, email) in [("Alice", "alice@example.org"), ("bob", "bob@example.org")] {
        let body = json!({
            "username": name,
            "email": email,
            "enabled": true,
            "credentials": [{"type": "password", "value": "pw-1", "temporary": false}],
            "attributes": {"team": ["a"]},
        });
        paths.push(admin.create(base, body).await);
    }
    let ids: Vec<_> = paths
        .iter()
        .map(|p| p.rsplit('/').next().unwrap())
        .collect();

    let count = admin.get(&format!("{base}/count")).await;
    assert_eq!(count.json(), json!(3)); // admin, alice, bob
    let found = admin.get(&format!("{base}?search=alice")).await.json();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["username"], "alice"); // lower-cased, as Keycloak does
    assert!(found[0].get("credentials").is_none());
    let exact = admin
        .get(&format!("{base}?username=bob&exact=true"))
        .await
        .json();
    assert_eq!(exact[0]["id"], ids[1]);
    let page = admin.get(&format!("{base}?first=1&max=1")).await.json();
    assert_eq!(page.as_array().unwrap().len(), 1);

    // The created user can use the password grant.
    let grant = token_form(
        &admin.client,
        &admin.tb,
        "master",
        &[
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", "alice"),
            ("password", "pw-1"),
        ],
    )
    .await;
    assert_eq!(grant.status, 200);

    let path = &paths[0];
    let mut rep = admin.get(path).await.json();
    rep["firstName"] = json!("Alice");
    assert_eq!(admin.put(path, rep).await.status, 204);
    let rep = admin.get(path).await.json();
    assert_eq!(rep["firstName"], "Alice");
    assert_eq!(rep["attributes"], json!({"team": ["a"]}));
}

#[tokio::test]
async fn groups_and_children() {
    let admin = Admin::start().await;
    let base = "/admin/realms/master/groups";

    let parent = admin.create(base, json!({"name": "teams"})).await;
    // A sub-group's `Location` is under the groups, not under its parent.
    let children = format!("{parent}/children");
    let child = admin
        .create_in(&children, base, json!({"name": "team-a"}))
        .await;

    let top = admin.get(base).await.json();
    assert_eq!(top.as_array().unwrap().len(), 1);
    assert_eq!(top[0]["subGroupCount"], 1);
    let listed = admin.get(&children).await.json();
    assert_eq!(listed[0]["name"], "team-a");
    let rep = admin.get(&child).await.json();
    assert_eq!(rep["path"], "/teams/team-a");

    // Deleting the parent deletes the child.
    assert_eq!(admin.delete(&parent).await.status, 204);
    assert_eq!(admin.get(&child).await.status, 404);
}

#[tokio::test]
async fn realm_roles() {
    let admin = Admin::start().await;
    let base = "/admin/realms/master/roles";
    let path = admin
        .create(base, json!({"name": "reader", "description": "reads"}))
        .await;
    assert_eq!(path, format!("{base}/reader"));
    let role = admin.get(&path).await;
    assert_eq!(role.json()["description"], "reads");
    let list = admin.get(base).await.json();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "reader")
    );
}

#[tokio::test]
async fn a_client_role_put_keeps_the_stored_id() {
    let admin = Admin::start().await;
    let client = admin
        .create(
            "/admin/realms/master/clients",
            json!({"clientId": "billing"}),
        )
        .await;
    let roles = format!("{client}/roles");
    let role = admin.create(&roles, json!({"name": "reader"})).await;
    assert_eq!(role, format!("{roles}/reader"));
    let stored = admin.get(&role).await.json();
    let id = stored["id"].as_str().unwrap().to_owned();
    assert_eq!(stored["clientRole"], true);

    // A read-modify-write that also sends another id and container, as a careless client
    // (or one that copies a role from elsewhere) does: Keycloak keeps what it stored.
    let mut rep = stored.clone();
    rep["id"] = json!("00000000-0000-4000-8000-000000000000");
    rep["containerId"] = json!("another-client");
    rep["clientRole"] = json!(false);
    rep["description"] = json!("reads invoices");
    assert_eq!(admin.put(&role, rep).await.status, 204);

    let back = admin.get(&role).await.json();
    assert_eq!(back["id"], id.as_str());
    assert_eq!(back["containerId"], stored["containerId"]);
    assert_eq!(back["clientRole"], true);
    assert_eq!(back["description"], "reads invoices");
    let listed = admin.get(&roles).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
}

#[tokio::test]
async fn user_emails_stay_unique_on_update() {
    let admin = Admin::start().await;
    let base = "/admin/realms/master/users";
    admin
        .create(
            base,
            json!({"username": "alice", "email": "alice@example.org"}),
        )
        .await;
    let bob = admin
        .create(base, json!({"username": "bob", "email": "bob@example.org"}))
        .await;

    // Bob takes Alice's email (in other case): Keycloak's 409, and nothing of the PUT lands.
    let stored = admin.get(&bob).await.json();
    let mut rep = stored.clone();
    rep["email"] = json!("Alice@Example.org");
    rep["firstName"] = json!("Bob");
    let clash = admin.put(&bob, rep).await;
    assert_eq!(clash.status, 409);
    assert_eq!(clash.json()["errorMessage"], "User exists with same email");
    assert_eq!(admin.get(&bob).await.json(), stored);

    // Sending one's own email back, or a free one, is fine.
    let mut rep = stored.clone();
    rep["firstName"] = json!("Bob");
    assert_eq!(admin.put(&bob, rep.clone()).await.status, 204);
    rep["email"] = json!("robert@example.org");
    assert_eq!(admin.put(&bob, rep).await.status, 204);
    assert_eq!(admin.get(&bob).await.json()["email"], "robert@example.org");

    // The freed email can be taken; the new one cannot, on create either.
    let carol = admin
        .create(
            base,
            json!({"username": "carol", "email": "bob@example.org"}),
        )
        .await;
    let dup = admin
        .post(
            base,
            json!({"username": "dave", "email": "robert@example.org"}),
        )
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.json()["errorMessage"], "User exists with same email");
    assert_eq!(admin.get(&carol).await.json()["email"], "bob@example.org");

    // An unknown user is a 404 before any uniqueness check.
    let ghost = admin
        .put(
            &format!("{base}/00000000-0000-4000-8000-000000000000"),
            json!({"email": "alice@example.org"}),
        )
        .await;
    assert_eq!(ghost.status, 404);
    assert_eq!(ghost.json()["error"], "User not found");
}

#[tokio::test]
async fn raw_paths_refuse_segments_beyond_what_they_serve() {
    let admin = Admin::start().await;
    let realm = "/admin/realms/master";
    let client = admin
        .create(&format!("{realm}/clients"), json!({"clientId": "billing"}))
        .await;
    let role = admin
        .create(&format!("{client}/roles"), json!({"name": "reader"}))
        .await;
    let mapper = admin
        .create(
            &format!("{client}/protocol-mappers/models"),
            json!({"name": "tenant", "protocol": "openid-connect"}),
        )
        .await;
    let scope = admin
        .create(&format!("{realm}/client-scopes"), json!({"name": "tenant"}))
        .await;
    let scope_id = scope.rsplit('/').next().unwrap().to_owned();
    let scope_mapper = admin
        .create(
            &format!("{scope}/protocol-mappers/models"),
            json!({"name": "claim"}),
        )
        .await;
    let idp = admin
        .create(
            &format!("{realm}/identity-provider/instances"),
            json!({"alias": "github", "providerId": "github"}),
        )
        .await;
    let idp_mapper = admin
        .create(&format!("{idp}/mappers"), json!({"name": "email"}))
        .await;
    let user = admin
        .create(&format!("{realm}/users"), json!({"username": "alice"}))
        .await;
    let group = admin
        .create(&format!("{realm}/groups"), json!({"name": "team"}))
        .await;
    let group_id = group.rsplit('/').next().unwrap().to_owned();

    let members = [&role, &mapper, &scope_mapper, &idp, &idp_mapper];
    for member in members {
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            for extra in ["/extra", "/extra/more"] {
                let path = format!("{member}{extra}");
                let body = (method == Method::PUT).then(|| json!({"name": "renamed"}));
                let reply = admin.call(method.clone(), &path, body).await;
                assert_eq!(reply.status, 404, "{method} {path}");
                assert_eq!(reply.json()["error"], "HTTP 404 Not Found", "{path}");
            }
        }
        // None of those reached the member: it is there, unchanged.
        let kept = admin.get(member).await;
        assert_eq!(kept.status, 200, "{member}");
        assert_ne!(kept.json()["name"], "renamed", "{member}");
    }
    for (method, path) in [
        (Method::PUT, format!("{user}/groups/{group_id}/extra")),
        (
            Method::PUT,
            format!("{realm}/default-default-client-scopes/{scope_id}/extra"),
        ),
        (
            Method::PUT,
            format!("{client}/default-client-scopes/{scope_id}/extra"),
        ),
        (Method::GET, format!("{client}/client-secret/extra")),
        (Method::PUT, format!("{user}/reset-password/extra")),
        (Method::GET, format!("{group}/members/extra")),
    ] {
        let reply = admin.call(method.clone(), &path, Some(json!({}))).await;
        assert_eq!(reply.status, 404, "{method} {path}");
        assert_eq!(reply.json()["error"], "HTTP 404 Not Found", "{path}");
    }
    // No link was made by the refused PUTs.
    assert_eq!(admin.get(&format!("{user}/groups")).await.json(), json!([]));
    let defaults = admin
        .get(&format!("{realm}/default-default-client-scopes"))
        .await
        .json();
    assert_eq!(defaults, json!([]));

    // A method a path does not take is a 405, not a 404.
    for (method, path) in [
        (Method::POST, role.clone()),
        (Method::PUT, format!("{client}/client-secret")),
        (Method::DELETE, format!("{group}/members")),
    ] {
        let reply = admin.call(method.clone(), &path, Some(json!({}))).await;
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(reply.json()["error"], "HTTP 405 Method Not Allowed");
    }
}
