//! The async client and its generated blocking twin send identical request sequences for the
//! same script, as recorded by the fake Infrahub.
#![allow(clippy::unwrap_used)]

#[path = "support/inventory.rs"]
mod support;

use std::time::Duration;

use pacer_inventory::{
    BuiltinTagCreate, BuiltinTagFilter, BuiltinTagUpdate, BuiltinTagUpsert, Config, Error,
    InventoryClient, NodeRef, Priority, Selection, blocking,
};
use pacer_testbed::{InfrahubRequest, Testbed};
use serde_json::{Map, json};

fn tag(name: &str) -> BuiltinTagCreate {
    let mut tag = BuiltinTagCreate::default();
    tag.name = Some(name.into());
    tag.description = Some(format!("{name} tag"));
    tag
}

fn update(name: &str) -> BuiltinTagUpdate {
    let mut update = BuiltinTagUpdate::default();
    update.hfid = Some(vec![name.into()]);
    update.description = Some("updated".into());
    update
}

fn upsert(name: &str) -> BuiltinTagUpsert {
    let mut upsert = BuiltinTagUpsert::default();
    upsert.name = Some(name.into());
    upsert
}

/// What each script returns, compared too.
type Outcome = Vec<String>;

async fn script_async(client: &InventoryClient) -> Result<Outcome, Error> {
    let mut out = Vec::new();
    for name in ["a", "b", "c"] {
        out.push(
            client
                .tag_create(&tag(name))
                .await?
                .name
                .unwrap_or_default(),
        );
    }
    let all = client.tag_all(&BuiltinTagFilter::default()).await?;
    out.push(format!("all {}", all.len()));
    out.push(format!(
        "count {}",
        client.tag_count(&BuiltinTagFilter::default()).await?
    ));
    client.tag_update(&update("a")).await?;
    client.tag_upsert(&upsert("d")).await?;
    let got = client.tag_get(NodeRef::hfid(["a"])).await?;
    out.push(format!("{:?}", got.and_then(|t| t.description)));
    client.branch_create("twin", None, false).await?;
    client.on_branch("twin").tag_create(&tag("e")).await?;
    client.branch_merge("twin").await?;
    client.tag_delete(NodeRef::hfid(["b"])).await?;
    let high = client.priority(Priority::High);
    out.push(format!(
        "high {}",
        high.tag_count(&BuiltinTagFilter::default()).await?
    ));
    let data = client
        .execute_graphql("query { BuiltinTag { count } }", Some(json!({})), None)
        .await?;
    out.push(data.to_string());
    let page = client
        .node_list(
            "BuiltinTag",
            &Selection::attributes(["name"]),
            &Map::new(),
            0,
            2,
        )
        .await?;
    out.push(format!("page {} {}", page.count, page.items.len()));
    let batch =
        client
            .batch(["f", "g"].map(|name| {
                move |c: InventoryClient| async move { c.tag_create(&tag(name)).await }
            }))
            .await;
    out.push(format!(
        "batch {}",
        batch.iter().filter(|r| r.is_ok()).count()
    ));
    client.branch_delete("twin").await?;
    out.push(format!("branches {}", client.branch_list().await?.len()));
    Ok(out)
}

fn script_blocking(client: &blocking::InventoryClient) -> Result<Outcome, Error> {
    let mut out = Vec::new();
    for name in ["a", "b", "c"] {
        out.push(client.tag_create(&tag(name))?.name.unwrap_or_default());
    }
    let all = client.tag_all(&BuiltinTagFilter::default())?;
    out.push(format!("all {}", all.len()));
    out.push(format!(
        "count {}",
        client.tag_count(&BuiltinTagFilter::default())?
    ));
    client.tag_update(&update("a"))?;
    client.tag_upsert(&upsert("d"))?;
    let got = client.tag_get(NodeRef::hfid(["a"]))?;
    out.push(format!("{:?}", got.and_then(|t| t.description)));
    client.branch_create("twin", None, false)?;
    client.on_branch("twin").tag_create(&tag("e"))?;
    client.branch_merge("twin")?;
    client.tag_delete(NodeRef::hfid(["b"]))?;
    let high = client.priority(Priority::High);
    out.push(format!(
        "high {}",
        high.tag_count(&BuiltinTagFilter::default())?
    ));
    let data = client.execute_graphql("query { BuiltinTag { count } }", Some(json!({})), None)?;
    out.push(data.to_string());
    let page = client.node_list(
        "BuiltinTag",
        &Selection::attributes(["name"]),
        &Map::new(),
        0,
        2,
    )?;
    out.push(format!("page {} {}", page.count, page.items.len()));
    let batch = client.batch(
        ["f", "g"]
            .map(|name| move |c: InventoryClient| async move { c.tag_create(&tag(name)).await }),
    )?;
    out.push(format!(
        "batch {}",
        batch.iter().filter(|r| r.is_ok()).count()
    ));
    client.branch_delete("twin")?;
    out.push(format!("branches {}", client.branch_list()?.len()));
    Ok(out)
}

fn config(testbed: &Testbed) -> Config {
    let mut config = support::login_config(testbed);
    config.pagination_size = 2;
    // One batch task at a time, so the request order is the script's.
    config.max_concurrent_execution = 1;
    config
}

fn run(blocking_client: bool) -> (Outcome, Vec<InfrahubRequest>) {
    // The server runs on its own runtime; the blocking client on the one it owns.
    let server = tokio::runtime::Runtime::new().unwrap();
    let testbed = server
        .block_on(
            support::builder()
                .token_lifetime(Duration::from_secs(600))
                .start(),
        )
        .unwrap();
    let outcome = if blocking_client {
        let client = blocking::InventoryClient::new(config(&testbed)).unwrap();
        script_blocking(&client).unwrap()
    } else {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let client = InventoryClient::new(config(&testbed)).unwrap();
            script_async(&client).await.unwrap()
        })
    };
    let requests = testbed.infrahub_requests();
    drop(testbed);
    (outcome, requests)
}

#[test]
fn async_and_blocking_clients_send_identical_request_sequences() {
    let (async_outcome, async_requests) = run(false);
    let (blocking_outcome, blocking_requests) = run(true);
    assert_eq!(async_outcome, blocking_outcome);
    // login, 3 creates, 2 pages, count, update, upsert, get, branch create, create on the
    // branch, merge, delete, count, graphql, node_list, 2 batch creates, branch delete, list.
    assert_eq!(async_requests.len(), 21, "{async_requests:#?}");
    assert_eq!(async_requests, blocking_requests);
    assert_eq!(async_requests[0].path, "/api/auth/login");
    assert!(async_requests.iter().any(|r| r.path == "/graphql/twin"));
    assert!(
        async_requests
            .iter()
            .any(|r| r.priority.as_deref() == Some("high"))
    );
}
