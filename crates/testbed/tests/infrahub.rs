//! The fake Infrahub over real TCP: auth, GraphQL CRUD, error envelope, branches, schema.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use http::Method;
use pacer_testbed::{KindSchema, Testbed};
use serde_json::{Value, json};

async fn login(client: &HttpClient, tb: &Testbed, user: &str, password: &str) -> Reply {
    let url = format!("{}/api/auth/login", tb.infrahub_url());
    let body = json!({"username": user, "password": password}).to_string();
    send(
        client,
        request(
            Method::POST,
            &url,
            &[("content-type", "application/json")],
            body,
        ),
    )
    .await
}

async fn graphql_bearer(client: &HttpClient, tb: &Testbed, token: &str, query: &str) -> Reply {
    let url = format!("{}/graphql", tb.infrahub_url());
    let auth = format!("Bearer {token}");
    let body = json!({ "query": query }).to_string();
    send(
        client,
        request(
            Method::POST,
            &url,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body,
        ),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn login_refresh_api_key_and_expiry() {
    let tb = Testbed::builder()
        .token_lifetime(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let client = client();
    let c = tb.credentials().clone();
    let query = "{ InfrahubInfo { version } }";

    let bad = login(&client, &tb, &c.infrahub_user, "wrong").await;
    assert_eq!(bad.status, 401);
    assert!(bad.json()["errors"][0]["message"].is_string());

    let reply = login(&client, &tb, &c.infrahub_user, &c.infrahub_password).await;
    assert_eq!(reply.status, 200);
    let access = reply.json()["access_token"].as_str().unwrap().to_owned();
    let refresh = reply.json()["refresh_token"].as_str().unwrap().to_owned();

    let ok = graphql_bearer(&client, &tb, &access, query).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["data"]["InfrahubInfo"]["version"], "1.10.6");

    // No credentials, or a made-up token: 401.
    let url = format!("{}/graphql", tb.infrahub_url());
    let anonymous = send(
        &client,
        request(
            Method::POST,
            &url,
            &[],
            json!({ "query": query }).to_string(),
        ),
    )
    .await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        graphql_bearer(&client, &tb, "nope", query).await.status,
        401
    );

    // Expiry says "Expired Signature", as Infrahub does (the fake reads tokio's clock).
    tokio::time::advance(Duration::from_millis(1200)).await;
    let expired = graphql_bearer(&client, &tb, &access, query).await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.json()["errors"][0]["message"], "Expired Signature");

    // Refresh with the refresh token as Bearer.
    let url = format!("{}/api/auth/refresh", tb.infrahub_url());
    let auth = format!("Bearer {refresh}");
    let refreshed = send(
        &client,
        request(Method::POST, &url, &[("authorization", &auth)], ""),
    )
    .await;
    assert_eq!(refreshed.status, 200);
    let new_access = refreshed.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        graphql_bearer(&client, &tb, &new_access, query)
            .await
            .status,
        200
    );
    let bogus = send(
        &client,
        request(Method::POST, &url, &[("authorization", "Bearer bogus")], ""),
    )
    .await;
    assert_eq!(bogus.status, 401);

    // The API key works and a wrong one does not.
    let with_key = graphql(&client, &tb, query).await;
    assert_eq!(with_key["data"]["InfrahubInfo"]["version"], "1.10.6");
    let wrong_key = send(
        &client,
        request(
            Method::POST,
            &url.replace("/api/auth/refresh", "/graphql"),
            &[("x-infrahub-key", "wrong")],
            json!({ "query": query }).to_string(),
        ),
    )
    .await;
    assert_eq!(wrong_key.status, 401);
}

#[tokio::test]
async fn graphql_crud_for_builtin_tag() {
    let tb = Testbed::start().await.unwrap();
    let client = client();

    let mut ids = Vec::new();
    for name in ["red", "green", "blue"] {
        let reply = graphql(
            &client,
            &tb,
            &format!(
                r#"mutation {{ BuiltinTagCreate(data: {{name: {{value: "{name}"}}, description: {{value: "a colour"}}}}) {{ ok object {{ id name {{ value }} }} }} }}"#
            ),
        )
        .await;
        assert!(reply.get("errors").is_none(), "{reply}");
        assert_eq!(reply["data"]["BuiltinTagCreate"]["ok"], true);
        assert_eq!(
            reply["data"]["BuiltinTagCreate"]["object"]["name"]["value"],
            name
        );
        ids.push(
            reply["data"]["BuiltinTagCreate"]["object"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }

    // List with pagination and count.
    let list = graphql(
        &client,
        &tb,
        "query { BuiltinTag(offset: 1, limit: 1) { count edges { node { id display_label name { value } description { value } } } } }",
    )
    .await;
    // Fields come back in selection order, as GraphQL servers send them.
    let raw = graphql_at(
        &client,
        &tb,
        "/graphql",
        "{ BuiltinTag(limit: 1) { edges { node { name { value } id } } count } }",
        Value::Null,
    )
    .await;
    let text = String::from_utf8(raw.body.to_vec()).unwrap();
    assert!(
        text.starts_with(
            r#"{"data":{"BuiltinTag":{"edges":[{"node":{"name":{"value":"red"},"id":"#
        ),
        "{text}"
    );
    assert!(text.ends_with(r#""count":3}}}"#), "{text}");
    let page = &list["data"]["BuiltinTag"];
    assert_eq!(page["count"], 3);
    assert_eq!(page["edges"].as_array().unwrap().len(), 1);
    assert_eq!(page["edges"][0]["node"]["name"]["value"], "green");
    assert_eq!(page["edges"][0]["node"]["description"]["value"], "a colour");

    // Get by attribute value, by ids, with variables and an alias.
    let by_name = graphql_at(
        &client,
        &tb,
        "/graphql",
        "query Get($name: String!) { tag: BuiltinTag(name__value: $name) { count edges { node { id hfid } } } }",
        json!({"name": "blue"}),
    )
    .await
    .json();
    assert_eq!(by_name["data"]["tag"]["count"], 1);
    assert_eq!(
        by_name["data"]["tag"]["edges"][0]["node"]["id"],
        ids[2].as_str()
    );
    assert_eq!(
        by_name["data"]["tag"]["edges"][0]["node"]["hfid"],
        json!(["blue"])
    );
    let by_id = graphql(
        &client,
        &tb,
        &format!(r#"{{ BuiltinTag(ids: ["{}"]) {{ count }} }}"#, ids[0]),
    )
    .await;
    assert_eq!(by_id["data"]["BuiltinTag"]["count"], 1);

    // Update, then read back.
    let updated = graphql(
        &client,
        &tb,
        &format!(
            r#"mutation {{ BuiltinTagUpdate(data: {{id: "{}", description: {{value: "warm"}}}}) {{ ok object {{ description {{ value }} name {{ value }} }} }} }}"#,
            ids[0]
        ),
    )
    .await;
    assert_eq!(
        updated["data"]["BuiltinTagUpdate"]["object"]["description"]["value"],
        "warm"
    );
    assert_eq!(
        updated["data"]["BuiltinTagUpdate"]["object"]["name"]["value"],
        "red"
    );

    // Upsert: an existing hfid updates, a new one creates.
    let upsert = graphql(
        &client,
        &tb,
        r#"mutation { a: BuiltinTagUpsert(data: {name: {value: "red"}, description: {value: "upserted"}}) { ok object { id } }
                      b: BuiltinTagUpsert(data: {name: {value: "black"}}) { ok object { id } } }"#,
    )
    .await;
    assert_eq!(upsert["data"]["a"]["object"]["id"], ids[0].as_str());
    assert_ne!(upsert["data"]["b"]["object"]["id"], Value::Null);
    let count = graphql(&client, &tb, "{ BuiltinTag { count } }").await;
    assert_eq!(count["data"]["BuiltinTag"]["count"], 4);

    // Duplicate name: a resolver error with a path, HTTP 200.
    let dup = graphql_at(
        &client,
        &tb,
        "/graphql",
        r#"mutation { BuiltinTagCreate(data: {name: {value: "red"}}) { ok } }"#,
        Value::Null,
    )
    .await;
    assert_eq!(dup.status, 200);
    let dup = dup.json();
    assert_eq!(dup["data"]["BuiltinTagCreate"], Value::Null);
    assert_eq!(dup["errors"][0]["path"], json!(["BuiltinTagCreate"]));

    // Delete, then it is gone.
    let deleted = graphql(
        &client,
        &tb,
        &format!(
            r#"mutation {{ BuiltinTagDelete(data: {{id: "{}"}}) {{ ok }} }}"#,
            ids[1]
        ),
    )
    .await;
    assert_eq!(deleted["data"]["BuiltinTagDelete"]["ok"], true);
    let again = graphql(
        &client,
        &tb,
        &format!(
            r#"mutation {{ BuiltinTagDelete(data: {{id: "{}"}}) {{ ok }} }}"#,
            ids[1]
        ),
    )
    .await;
    assert!(
        again["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Unable to find")
    );
    let count = graphql(&client, &tb, "{ BuiltinTag { count } }").await;
    assert_eq!(count["data"]["BuiltinTag"]["count"], 3);
}

#[tokio::test]
async fn graphql_errors_use_the_envelope_with_http_200() {
    let tb = Testbed::start().await.unwrap();
    let client = client();
    for query in [
        "{ NoSuchKind { count } }",
        "{ BuiltinTag { count edges { node { nope { value } } } } }",
        "{ BuiltinTag(colour__value: \"x\") { count } }",
        "{ BuiltinTag { count edges { node { name } } } }",
        "mutation { BuiltinTagCreate(data: {colour: {value: \"x\"}}) { ok } }",
        "{ BuiltinTag { count ",
        "mutation { NoSuchKindCreate(data: {}) { ok } }",
    ] {
        let reply = graphql_at(&client, &tb, "/graphql", query, Value::Null).await;
        assert_eq!(reply.status, 200, "{query}");
        let body = reply.json();
        assert_eq!(body["data"], Value::Null, "{query}: {body}");
        assert!(body["errors"][0]["message"].is_string(), "{query}: {body}");
    }
    // A rejected document changed nothing.
    let count = graphql(&client, &tb, "{ BuiltinTag { count } }").await;
    assert_eq!(count["data"]["BuiltinTag"]["count"], 0);
    // A mandatory attribute missing.
    let missing = graphql(
        &client,
        &tb,
        "mutation { CoreRepositoryCreate(data: {name: {value: \"r\"}}) { ok } }",
    )
    .await;
    assert!(
        missing["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("location")
    );
}

#[tokio::test]
async fn custom_kinds_branches_and_schema() {
    let tb = Testbed::builder()
        .kind(
            KindSchema::new("InfraDevice")
                .unique("name")
                .attribute("role"),
        )
        .start()
        .await
        .unwrap();
    let client = client();

    let created = graphql(
        &client,
        &tb,
        r#"mutation { InfraDeviceCreate(data: {name: {value: "sw1"}, role: {value: "spine"}}) { ok object { id role { value } } } }"#,
    )
    .await;
    assert_eq!(
        created["data"]["InfraDeviceCreate"]["object"]["role"]["value"],
        "spine"
    );

    // A branch starts as a copy of main and then diverges.
    let branch = graphql(
        &client,
        &tb,
        r#"mutation { BranchCreate(data: {name: "feature-1", description: "test"}) { ok object { name is_default } } }"#,
    )
    .await;
    assert_eq!(
        branch["data"]["BranchCreate"]["object"]["name"],
        "feature-1"
    );
    assert_eq!(
        branch["data"]["BranchCreate"]["object"]["is_default"],
        false
    );
    let on_branch = graphql_at(
        &client,
        &tb,
        "/graphql/feature-1",
        r#"mutation { InfraDeviceCreate(data: {name: {value: "sw2"}}) { ok } }"#,
        Value::Null,
    )
    .await
    .json();
    assert_eq!(on_branch["data"]["InfraDeviceCreate"]["ok"], true);
    let branch_count = graphql_at(
        &client,
        &tb,
        "/graphql/feature-1",
        "{ InfraDevice { count } }",
        Value::Null,
    )
    .await
    .json();
    assert_eq!(branch_count["data"]["InfraDevice"]["count"], 2);
    let main_count = graphql(&client, &tb, "{ InfraDevice { count } }").await;
    assert_eq!(main_count["data"]["InfraDevice"]["count"], 1);
    let branches = graphql(&client, &tb, "{ Branch { name is_default } }").await;
    assert_eq!(branches["data"]["Branch"].as_array().unwrap().len(), 2);
    let unknown = graphql_at(
        &client,
        &tb,
        "/graphql/nope",
        "{ InfraDevice { count } }",
        Value::Null,
    )
    .await;
    assert_eq!(unknown.status, 200);
    assert!(
        unknown.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nope")
    );

    // The schema lists the kinds served.
    let schema = infrahub_api(&client, &tb, Method::GET, "/api/schema", None).await;
    assert_eq!(schema.status, 200);
    let kinds: Vec<String> = schema.json()["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(kinds.contains(&"InfraDevice".to_owned()));
    assert!(kinds.contains(&"BuiltinTag".to_owned()));
    let branches = infrahub_api(&client, &tb, Method::GET, "/api/branch", None).await;
    assert_eq!(branches.json().as_array().unwrap().len(), 2);
}

/// Checks `text` is a timestamp as Infrahub writes them (RFC 3339, UTC, microseconds:
/// `2024-01-01T00:00:00.000000Z`) of a moment within a minute of now.
fn assert_infrahub_timestamp(text: &str) {
    let shape: Vec<bool> = text.bytes().map(|b| b.is_ascii_digit()).collect();
    let separators: Vec<(usize, u8)> = vec![
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (26, b'Z'),
    ];
    assert_eq!(text.len(), 27, "{text}");
    for (i, digit) in shape.iter().enumerate() {
        match separators.iter().find(|(at, _)| *at == i) {
            Some((_, separator)) => assert_eq!(text.as_bytes()[i], *separator, "{text}"),
            None => assert!(digit, "{text}"),
        }
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().unwrap();
    let month = time::Month::try_from(u8::try_from(number(5..7)).unwrap()).unwrap();
    let date = time::Date::from_calendar_date(
        i32::try_from(number(0..4)).unwrap(),
        month,
        u8::try_from(number(8..10)).unwrap(),
    )
    .unwrap();
    let at = time::Time::from_hms_micro(
        u8::try_from(number(11..13)).unwrap(),
        u8::try_from(number(14..16)).unwrap(),
        u8::try_from(number(17..19)).unwrap(),
        number(20..26),
    )
    .unwrap();
    let moment = time::PrimitiveDateTime::new(date, at).assume_utc();
    let off = (time::OffsetDateTime::now_utc() - moment).abs();
    assert!(off < time::Duration::minutes(1), "{text} is {off} from now");
}

#[tokio::test]
async fn branch_timestamps_are_rfc3339_as_infrahub_serves_them() {
    let tb = Testbed::start().await.unwrap();
    let client = client();
    let created = graphql(
        &client,
        &tb,
        r#"mutation { BranchCreate(data: {name: "feature-1"}) { ok object { name branched_from created_at } } }"#,
    )
    .await;
    let object = &created["data"]["BranchCreate"]["object"];
    assert_eq!(object["name"], "feature-1");
    let branched_from = object["branched_from"].as_str().unwrap().to_owned();
    assert_infrahub_timestamp(&branched_from);
    assert_infrahub_timestamp(object["created_at"].as_str().unwrap());

    // main's too, through GraphQL and through the REST list.
    let listed = graphql(&client, &tb, "{ Branch { name branched_from created_at } }").await;
    let branches = listed["data"]["Branch"].as_array().unwrap();
    assert_eq!(branches.len(), 2);
    let rest = infrahub_api(&client, &tb, Method::GET, "/api/branch", None).await;
    for branch in branches.iter().chain(rest.json().as_array().unwrap()) {
        assert_infrahub_timestamp(branch["branched_from"].as_str().unwrap());
        assert_infrahub_timestamp(branch["created_at"].as_str().unwrap());
    }

    // A rebase moves branched_from on, still a timestamp (same width: text order is time
    // order).
    let rebased = graphql(
        &client,
        &tb,
        r#"mutation { BranchRebase(data: {name: "feature-1"}) { ok object { branched_from } } }"#,
    )
    .await;
    let moved = rebased["data"]["BranchRebase"]["object"]["branched_from"]
        .as_str()
        .unwrap();
    assert_infrahub_timestamp(moved);
    assert!(moved >= branched_from.as_str(), "{moved} < {branched_from}");
}

/// The node `kind` of the schema the fake serves at `GET /api/schema`.
async fn served_kind(client: &HttpClient, tb: &Testbed, kind: &str) -> Value {
    let schema = infrahub_api(client, tb, Method::GET, "/api/schema", None).await;
    assert_eq!(schema.status, 200);
    schema.json()["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == kind)
        .unwrap_or_else(|| panic!("{kind} is served"))
        .clone()
}

/// The arguments the Infrahub 1.10.6 SDL gives the query field `kind`.
fn sdl_query_arguments(kind: &str) -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/specs/infrahub-1.10.6.graphql"
    );
    let sdl = std::fs::read_to_string(path).unwrap();
    let document = graphql_parser::schema::parse_schema::<&str>(&sdl).unwrap();
    document
        .definitions
        .iter()
        .find_map(|definition| match definition {
            graphql_parser::schema::Definition::TypeDefinition(
                graphql_parser::schema::TypeDefinition::Object(object),
            ) if object.name == "Query" => object.fields.iter().find(|f| f.name == kind),
            _ => None,
        })
        .unwrap_or_else(|| panic!("Query.{kind} in the SDL"))
        .arguments
        .iter()
        .map(|argument| argument.name.to_owned())
        .collect()
}

#[tokio::test]
async fn builtin_tag_has_the_default_filter_infrahub_ships() {
    let tb = Testbed::start().await.unwrap();
    let client = client();
    let tag = served_kind(&client, &tb, "BuiltinTag").await;
    assert_eq!(tag["default_filter"], "name__value");
    // It is a real filter of the BuiltinTag query, in the SDL and in the fake.
    assert!(sdl_query_arguments("BuiltinTag").contains(&"name__value".to_owned()));
    graphql(
        &client,
        &tb,
        r#"mutation { BuiltinTagCreate(data: {name: {value: "red"}}) { ok } }"#,
    )
    .await;
    let filter = tag["default_filter"].as_str().unwrap();
    let found = graphql(
        &client,
        &tb,
        &format!(r#"{{ BuiltinTag({filter}: "red") {{ count }} }}"#),
    )
    .await;
    assert_eq!(found["data"]["BuiltinTag"]["count"], 1);
    // A kind without one says so with null, as Infrahub's schema API does.
    let repository = served_kind(&client, &tb, "CoreRepository").await;
    assert_eq!(repository["default_filter"], Value::Null);
}

#[tokio::test]
async fn a_loaded_schema_keeps_its_default_filter() {
    let tb = Testbed::start().await.unwrap();
    let client = client();
    let body = json!({"schemas": [{"version": "1.0", "nodes": [{
        "namespace": "Infra", "name": "Device", "default_filter": "name__value",
        "attributes": [{"name": "name", "kind": "Text", "unique": true}],
    }]}]});
    let loaded = infrahub_api(&client, &tb, Method::POST, "/api/schema/load", Some(body)).await;
    assert_eq!(loaded.status, 200, "{:?}", loaded.body);
    let device = served_kind(&client, &tb, "InfraDevice").await;
    assert_eq!(device["default_filter"], "name__value");
}

#[cfg(feature = "inventory")]
#[tokio::test]
async fn the_generated_client_kinds_keep_builtin_tags_default_filter() {
    let tb = Testbed::builder()
        .kinds(pacer_testbed::generated_inventory_kinds())
        .start()
        .await
        .unwrap();
    let client = client();
    let tag = served_kind(&client, &tb, "BuiltinTag").await;
    assert_eq!(tag["default_filter"], "name__value");
}
