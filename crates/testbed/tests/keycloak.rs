//! The fake Keycloak over real TCP: token grants, auth, admin CRUD.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use http::Method;
use pacer_testbed::Testbed;
use serde_json::json;

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

#[tokio::test]
async fn password_grant_refresh_and_expiry() {
    let tb = Testbed::builder()
        .token_lifetime(Duration::from_secs(1))
        .refresh_lifetime(Duration::from_secs(30))
        .start()
        .await
        .unwrap();
    let client = client();
    let c = tb.credentials().clone();

    let bad = token_form(
        &client,
        &tb,
        "master",
        &[
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", &c.keycloak_admin_user),
            ("password", "wrong"),
        ],
    )
    .await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.json()["error"], "invalid_grant");

    let reply = token_form(
        &client,
        &tb,
        "master",
        &[
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", &c.keycloak_admin_user),
            ("password", &c.keycloak_admin_password),
        ],
    )
    .await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["expires_in"], 1);
    assert_eq!(body["refresh_expires_in"], 30);
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();

    let ok = admin(
        &client,
        &tb,
        &access,
        Method::GET,
        "/admin/serverinfo",
        None,
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["systemInfo"]["version"], "26.6.0");

    // The access token expires after its lifetime.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let expired = admin(
        &client,
        &tb,
        &access,
        Method::GET,
        "/admin/serverinfo",
        None,
    )
    .await;
    assert_eq!(expired.status, 401);

    // The refresh token still works and gives a new pair.
    let refreshed = token_form(
        &client,
        &tb,
        "master",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "admin-cli"),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    assert_eq!(refreshed.status, 200);
    let new_access = refreshed.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(refreshed.json()["refresh_token"].is_string());
    let ok = admin(
        &client,
        &tb,
        &new_access,
        Method::GET,
        "/admin/serverinfo",
        None,
    )
    .await;
    assert_eq!(ok.status, 200);

    // A made-up refresh token, or one presented by another client, is refused.
    let invalid = token_form(
        &client,
        &tb,
        "master",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "admin-cli"),
            ("refresh_token", "garbage"),
        ],
    )
    .await;
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

#[tokio::test]
async fn realms_crud() {
    let tb = Testbed::start().await.unwrap();
    let client = client();
    let token = admin_token(&client, &tb).await;

    let created = admin(
        &client,
        &tb,
        &token,
        Method::POST,
        "/admin/realms",
        Some(json!({"realm": "tenant-a", "enabled": true, "x-custom": [1, 2]})),
    )
    .await;
    assert_eq!(created.status, 201);
    assert!(created.body.is_empty());
    assert_eq!(
        created.header("location").unwrap(),
        format!("{}/admin/realms/tenant-a", tb.keycloak_url())
    );
    let dup = admin(
        &client,
        &tb,
        &token,
        Method::POST,
        "/admin/realms",
        Some(json!({"realm": "tenant-a"})),
    )
    .await;
    assert_eq!(dup.status, 409);
    assert!(dup.json()["errorMessage"].is_string());

    let list = admin(&client, &tb, &token, Method::GET, "/admin/realms", None).await;
    let names: Vec<_> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["realm"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["master", "tenant-a"]);

    let mut rep = admin(
        &client,
        &tb,
        &token,
        Method::GET,
        "/admin/realms/tenant-a",
        None,
    )
    .await
    .json();
    assert_eq!(rep["x-custom"], json!([1, 2]));
    rep["displayName"] = json!("Tenant A");
    let put = admin(
        &client,
        &tb,
        &token,
        Method::PUT,
        "/admin/realms/tenant-a",
        Some(rep),
    )
    .await;
    assert_eq!(put.status, 204);
    let rep = admin(
        &client,
        &tb,
        &token,
        Method::GET,
        "/admin/realms/tenant-a",
        None,
    )
    .await
    .json();
    assert_eq!(rep["displayName"], "Tenant A");
    assert_eq!(rep["x-custom"], json!([1, 2]));

    let del = admin(
        &client,
        &tb,
        &token,
        Method::DELETE,
        "/admin/realms/tenant-a",
        None,
    )
    .await;
    assert_eq!(del.status, 204);
    let gone = admin(
        &client,
        &tb,
        &token,
        Method::GET,
        "/admin/realms/tenant-a",
        None,
    )
    .await;
    assert_eq!(gone.status, 404);
    assert!(gone.json()["error"].is_string());
}

#[tokio::test]
async fn clients_crud_and_unknown_fields_round_trip() {
    let tb = Testbed::start().await.unwrap();
    let client = client();
    let token = admin_token(&client, &tb).await;
    let base = "/admin/realms/master/clients";

    let created = admin(
        &client,
        &tb,
        &token,
        Method::POST,
        base,
        Some(json!({"clientId": "operator", "serviceAccountsEnabled": true, "futureField": {"nested": true}})),
    )
    .await;
    assert_eq!(created.status, 201);
    let location = created.header("location").unwrap().to_owned();
    let prefix = format!("{}{base}/", tb.keycloak_url());
    assert!(location.starts_with(&prefix), "{location}");
    let id = location.rsplit('/').next().unwrap().to_owned();

    let dup = admin(
        &client,
        &tb,
        &token,
        Method::POST,
        base,
        Some(json!({"clientId": "operator"})),
    )
    .await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.json()["errorMessage"], "Client operator already exists");

    // Search by clientId.
    let found = admin(
        &client,
        &tb,
        &token,
        Method::GET,
        &format!("{base}?clientId=operator"),
        None,
    )
    .await
    .json();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"], id.as_str());

    // Read-modify-write keeps fields the fake knows nothing about.
    let path = format!("{base}/{id}");
    let mut rep = admin(&client, &tb, &token, Method::GET, &path, None)
        .await
        .json();
    assert_eq!(rep["futureField"], json!({"nested": true}));
    rep["description"] = json!("reconciles tenants");
    rep["anotherUnknown"] = json!(42);
    let put = admin(&client, &tb, &token, Method::PUT, &path, Some(rep.clone())).await;
    assert_eq!(put.status, 204);
    let back = admin(&client, &tb, &token, Method::GET, &path, None)
        .await
        .json();
    assert_eq!(back, rep);

    // The new client can get tokens with its generated secret.
    let secret = back["secret"].as_str().unwrap().to_owned();
    let token_reply = token_form(
        &client,
        &tb,
        "master",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "operator"),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(token_reply.status, 200);

    let del = admin(&client, &tb, &token, Method::DELETE, &path, None).await;
    assert_eq!(del.status, 204);
    let gone = admin(&client, &tb, &token, Method::GET, &path, None).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.json()["error"], "Could not find client");
    let gone = admin(&client, &tb, &token, Method::DELETE, &path, None).await;
    assert_eq!(gone.status, 404);

    let no_realm = admin(
        &client,
        &tb,
        &token,
        Method::GET,
        "/admin/realms/nope/clients",
        None,
    )
    .await;
    assert_eq!(no_realm.status, 404);
}

#[tokio::test]
async fn users_crud_search_and_count() {
    let tb = Testbed::start().await.unwrap();
    let client = client();
    let token = admin_token(&client, &tb).await;
    let base = "/admin/realms/master/users";

    let mut ids = Vec::new();
    for (name, email) in [("Alice", "alice@example.org"), ("bob", "bob@example.org")] {
        let created = admin(
            &client,
            &tb,
            &token,
            Method::POST,
            base,
            Some(json!({
                "username": name,
                "email": email,
                "enabled": true,
                "credentials": [{"type": "password", "value": "pw-1", "temporary": false}],
                "attributes": {"team": ["a"]},
            })),
        )
        .await;
        assert_eq!(created.status, 201);
        ids.push(
            created
                .header("location")
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned(),
        );
    }
    let dup = admin(
        &client,
        &tb,
        &token,
        Method::POST,
        base,
        Some(json!({"username": "alice"})),
    )
    .await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.json()["errorMessage"], "User exists with same username");

    let count = admin(
        &client,
        &tb,
        &token,
        Method::GET,
        &format!("{base}/count"),
        None,
    )
    .await;
    assert_eq!(count.json(), json!(3)); // admin, alice, bob
    let found = admin(
        &client,
        &tb,
        &token,
        Method::GET,
        &format!("{base}?search=alice"),
        None,
    )
    .await
    .json();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["username"], "alice"); // lower-cased, as Keycloak does
    assert!(found[0].get("credentials").is_none());
    let exact = admin(
        &client,
        &tb,
        &token,
        Method::GET,
        &format!("{base}?username=bob&exact=true"),
        None,
    )
    .await
    .json();
    assert_eq!(exact[0]["id"], ids[1].as_str());
    let page = admin(
        &client,
        &tb,
        &token,
        Method::GET,
        &format!("{base}?first=1&max=1"),
        None,
    )
    .await
    .json();
    assert_eq!(page.as_array().unwrap().len(), 1);

    // The created user can use the password grant.
    let grant = token_form(
        &client,
        &tb,
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

    let path = format!("{base}/{}", ids[0]);
    let mut rep = admin(&client, &tb, &token, Method::GET, &path, None)
        .await
        .json();
    rep["firstName"] = json!("Alice");
    assert_eq!(
        admin(&client, &tb, &token, Method::PUT, &path, Some(rep))
            .await
            .status,
        204
    );
    let rep = admin(&client, &tb, &token, Method::GET, &path, None)
        .await
        .json();
    assert_eq!(rep["firstName"], "Alice");
    assert_eq!(rep["attributes"], json!({"team": ["a"]}));
    assert_eq!(
        admin(&client, &tb, &token, Method::DELETE, &path, None)
            .await
            .status,
        204
    );
    let gone = admin(&client, &tb, &token, Method::GET, &path, None).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.json()["error"], "User not found");
}

#[tokio::test]
async fn groups_and_children() {
    let tb = Testbed::start().await.unwrap();
    let client = client();
    let token = admin_token(&client, &tb).await;
    let base = "/admin/realms/master/groups";

    let created = admin(
        &client,
        &tb,
        &token,
        Method::POST,
        base,
        Some(json!({"name": "teams"})),
    )
    .await;
    assert_eq!(created.status, 201);
    let parent = created
        .header("location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let dup = admin(
        &client,
        &tb,
        &token,
        Method::POST,
        base,
        Some(json!({"name": "teams"})),
    )
    .await;
    assert_eq!(dup.status, 409);

    let child = admin(
        &client,
        &tb,
        &token,
        Method::POST,
        &format!("{base}/{parent}/children"),
        Some(json!({"name": "team-a"})),
    )
    .await;
    assert_eq!(child.status, 201);
    let child_id = child
        .header("location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert!(child.header("location").unwrap().contains("/groups/"));

    let top = admin(&client, &tb, &token, Method::GET, base, None)
        .await
        .json();
    assert_eq!(top.as_array().unwrap().len(), 1);
    assert_eq!(top[0]["subGroupCount"], 1);
    let children = admin(
        &client,
        &tb,
        &token,
        Method::GET,
        &format!("{base}/{parent}/children"),
        None,
    )
    .await
    .json();
    assert_eq!(children[0]["name"], "team-a");
    let rep = admin(
        &client,
        &tb,
        &token,
        Method::GET,
        &format!("{base}/{child_id}"),
        None,
    )
    .await
    .json();
    assert_eq!(rep["path"], "/teams/team-a");

    // Deleting the parent deletes the child.
    let del = admin(
        &client,
        &tb,
        &token,
        Method::DELETE,
        &format!("{base}/{parent}"),
        None,
    )
    .await;
    assert_eq!(del.status, 204);
    let gone = admin(
        &client,
        &tb,
        &token,
        Method::GET,
        &format!("{base}/{child_id}"),
        None,
    )
    .await;
    assert_eq!(gone.status, 404);
}

#[tokio::test]
async fn realm_roles() {
    let tb = Testbed::start().await.unwrap();
    let client = client();
    let token = admin_token(&client, &tb).await;
    let base = "/admin/realms/master/roles";

    let created = admin(
        &client,
        &tb,
        &token,
        Method::POST,
        base,
        Some(json!({"name": "reader", "description": "reads"})),
    )
    .await;
    assert_eq!(created.status, 201);
    assert_eq!(
        created.header("location").unwrap(),
        format!("{}{base}/reader", tb.keycloak_url())
    );
    let dup = admin(
        &client,
        &tb,
        &token,
        Method::POST,
        base,
        Some(json!({"name": "reader"})),
    )
    .await;
    assert_eq!(dup.status, 409);
    let role = admin(
        &client,
        &tb,
        &token,
        Method::GET,
        &format!("{base}/reader"),
        None,
    )
    .await;
    assert_eq!(role.json()["description"], "reads");
    let list = admin(&client, &tb, &token, Method::GET, base, None)
        .await
        .json();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "reader")
    );
    let del = admin(
        &client,
        &tb,
        &token,
        Method::DELETE,
        &format!("{base}/reader"),
        None,
    )
    .await;
    assert_eq!(del.status, 204);
    let gone = admin(
        &client,
        &tb,
        &token,
        Method::GET,
        &format!("{base}/reader"),
        None,
    )
    .await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.json()["error"], "Could not find role");
}
