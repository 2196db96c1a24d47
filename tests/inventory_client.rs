//! pacer-inventory against the testbed's fake Infrahub: typed CRUD, relationships,
//! pagination, the dynamic API, GraphQL errors, branches, schema, pool allocation, the batch
//! helper and the per-call scope (priority).
#![allow(clippy::unwrap_used)]

#[path = "support/inventory.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use pacer_inventory::{
    BuiltinTag, BuiltinTagCreate, BuiltinTagFilter, BuiltinTagUpdate, BuiltinTagUpsert,
    CoreIPAddressPoolCreate, CoreStandardGroupCreate, Error, InventoryClient, NodeRef, Priority,
    RelatedNode, Selection,
};
use serde_json::{Map, Value, json};

fn tag(name: &str) -> BuiltinTagCreate {
    let mut tag = BuiltinTagCreate::default();
    tag.name = Some(name.into());
    tag
}

#[tokio::test]
async fn typed_crud_for_tags() {
    let testbed = support::start().await;
    let client = InventoryClient::new(support::config(&testbed)).unwrap();

    let mut data = tag("blue");
    data.description = Some("the colour".into());
    let created = client.tag_create(&data).await.unwrap();
    assert_eq!(created.name.as_deref(), Some("blue"));
    assert_eq!(created.description.as_deref(), Some("the colour"));
    assert_eq!(created.hfid, Some(vec!["blue".to_owned()]));

    // Get by id and by hfid; a missing one is None.
    let by_id = client.tag_get(&created.id).await.unwrap().unwrap();
    assert_eq!(by_id, created);
    let by_hfid = client
        .tag_get(NodeRef::hfid(["blue"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_hfid.id, created.id);
    assert!(client.tag_get("no-such-id").await.unwrap().is_none());

    // Update by id.
    let mut update = BuiltinTagUpdate::default();
    update.id = Some(created.id.clone());
    update.description = Some("changed".into());
    let updated = client.tag_update(&update).await.unwrap();
    assert_eq!(updated.description.as_deref(), Some("changed"));
    assert_eq!(updated.name.as_deref(), Some("blue"));

    // Upsert: an existing hfid updates, a new one creates.
    let mut upsert = BuiltinTagUpsert::default();
    upsert.hfid = Some(vec!["blue".into()]);
    upsert.description = Some("upserted".into());
    let same = client.tag_upsert(&upsert).await.unwrap();
    assert_eq!(same.id, created.id);
    let mut upsert = BuiltinTagUpsert::default();
    upsert.name = Some("green".into());
    let green = client.tag_upsert(&upsert).await.unwrap();
    assert_ne!(green.id, created.id);

    // Count with and without a filter.
    assert_eq!(
        client
            .tag_count(&BuiltinTagFilter::default())
            .await
            .unwrap(),
        2
    );
    let mut filter = BuiltinTagFilter::default();
    filter.name_value = Some("green".into());
    assert_eq!(client.tag_count(&filter).await.unwrap(), 1);
    let page = client.tag_list(&filter, 0, 10).await.unwrap();
    assert_eq!((page.count, page.items.len()), (1, 1));
    assert_eq!(page.items[0].id, green.id);

    // Delete by hfid and by id.
    client.tag_delete(NodeRef::hfid(["green"])).await.unwrap();
    client.tag_delete(&created.id).await.unwrap();
    assert_eq!(
        client
            .tag_count(&BuiltinTagFilter::default())
            .await
            .unwrap(),
        0
    );

    // A refused mutation is a typed GraphQL error with the server's message.
    client.tag_create(&tag("dup")).await.unwrap();
    match client.tag_create(&tag("dup")).await {
        Err(Error::GraphQL(error)) => {
            assert!(error.errors[0].message.contains("uniqueness"), "{error}");
            assert_eq!(error.errors[0].path, Some(vec![json!("BuiltinTagCreate")]));
        }
        other => panic!("expected a GraphQL error, got {other:?}"),
    }
}

#[tokio::test]
async fn relationships_are_peer_references() {
    let testbed = support::start().await;
    let client = InventoryClient::new(support::config(&testbed)).unwrap();
    let red = client.tag_create(&tag("red")).await.unwrap();
    let blue = client.tag_create(&tag("blue")).await.unwrap();

    let mut group = CoreStandardGroupCreate::default();
    group.name = Some("colours".into());
    group.members = Some(vec![
        RelatedNode::id(red.id.clone()),
        RelatedNode::hfid("BuiltinTag", ["blue"]),
    ]);
    let group = client.standard_group_create(&group).await.unwrap();
    let members: Vec<(&str, Option<&str>)> = group
        .members
        .iter()
        .map(|p| (p.id.as_str(), p.kind.as_deref()))
        .collect();
    assert_eq!(
        members,
        [
            (red.id.as_str(), Some("BuiltinTag")),
            (blue.id.as_str(), Some("BuiltinTag"))
        ]
    );
    assert_eq!(group.members[1].display_label.as_deref(), Some("blue"));
    assert!(group.parent.is_none());

    // An unknown peer is refused by the server.
    let mut bad = CoreStandardGroupCreate::default();
    bad.name = Some("broken".into());
    bad.members = Some(vec![RelatedNode::id("nope")]);
    assert!(matches!(
        client.standard_group_create(&bad).await,
        Err(Error::GraphQL(_))
    ));
}

#[tokio::test]
async fn pagination_walks_every_page() {
    let testbed = support::start().await;
    let mut config = support::config(&testbed);
    config.pagination_size = 3;
    let client = InventoryClient::new(config).unwrap();
    for i in 0..8 {
        client.tag_create(&tag(&format!("tag-{i}"))).await.unwrap();
    }
    testbed.clear_infrahub_requests();

    let all = client.tag_all(&BuiltinTagFilter::default()).await.unwrap();
    let names: Vec<String> = all.iter().map(|t| t.name.clone().unwrap()).collect();
    let expected: Vec<String> = (0..8).map(|i| format!("tag-{i}")).collect();
    assert_eq!(names, expected);
    // Three pages of 3, 3 and 2: offsets 0, 3, 6.
    let offsets: Vec<Value> = testbed
        .infrahub_requests()
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["variables"]["offset"].clone())
        .collect();
    assert_eq!(offsets, [json!(0), json!(3), json!(6)]);

    // The stream fetches lazily: taking 4 needs two pages only.
    testbed.clear_infrahub_requests();
    let first: Vec<BuiltinTag> = client
        .tag_stream(BuiltinTagFilter::default())
        .take_first(4)
        .await;
    assert_eq!(first.len(), 4);
    assert_eq!(testbed.infrahub_requests().len(), 2);

    // The dynamic API pages too.
    let nodes = client
        .node_all("BuiltinTag", &Selection::attributes(["name"]), &Map::new())
        .await
        .unwrap();
    assert_eq!(nodes.len(), 8);
    assert_eq!(nodes[7].attributes["name"], json!("tag-7"));
}

/// `take(n)` for a fallible stream, collecting the successes (test helper).
trait TakeFirst<T> {
    async fn take_first(self, n: usize) -> Vec<T>;
}

impl<T, S> TakeFirst<T> for S
where
    S: futures::Stream<Item = Result<T, Error>>,
{
    async fn take_first(self, n: usize) -> Vec<T> {
        use futures::StreamExt;
        let mut stream = std::pin::pin!(self.take(n));
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            out.push(item.unwrap());
        }
        out
    }
}

#[tokio::test]
async fn dynamic_api_for_any_kind_and_filters_as_literals() {
    let testbed = support::start().await;
    let client = InventoryClient::new(support::config(&testbed)).unwrap();
    let id = client
        .node_mutate(
            "BuiltinTag",
            "Create",
            &json!({"name": {"value": "quote\"d"}, "description": {"value": "x"}}),
        )
        .await
        .unwrap();
    let mut filters = Map::new();
    filters.insert("name__value".into(), json!("quote\"d"));
    let page = client
        .node_list(
            "BuiltinTag",
            &Selection::of(&<BuiltinTag as pacer_inventory::Kind>::INFO),
            &filters,
            0,
            10,
        )
        .await
        .unwrap();
    assert_eq!(page.count, 1);
    assert_eq!(page.items[0].id, id);
    assert_eq!(page.items[0].attributes["description"], json!("x"));
    assert_eq!(page.items[0].relationships["member_of_groups"], []);

    // Names that could inject GraphQL are refused before anything is sent.
    testbed.clear_infrahub_requests();
    let mut hostile = Map::new();
    hostile.insert("x) { y".into(), json!(1));
    assert!(matches!(
        client
            .node_list("BuiltinTag", &Selection::default(), &hostile, 0, 1)
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        client.node_delete("Builtin Tag", NodeRef::from("x")).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(testbed.infrahub_requests().is_empty());

    client
        .node_delete("BuiltinTag", NodeRef::from(&id))
        .await
        .unwrap();
    assert_eq!(
        client
            .tag_count(&BuiltinTagFilter::default())
            .await
            .unwrap(),
        0
    );

    // execute_graphql returns data; an unknown field is a typed GraphQL error.
    let data = client
        .execute_graphql("query { BuiltinTag { count } }", None, None)
        .await
        .unwrap();
    assert_eq!(data, json!({"BuiltinTag": {"count": 0}}));
    let error = client
        .execute_graphql("query { Nope { count } }", None, None)
        .await
        .unwrap_err();
    assert!(matches!(&error, Error::GraphQL(e) if e.errors[0].message.contains("Nope")));
    assert_eq!(
        client.server_version().await.unwrap(),
        pacer_testbed::INFRAHUB_VERSION
    );
}

#[tokio::test]
async fn branches_list_create_merge_rebase_delete() {
    let testbed = support::start().await;
    let client = InventoryClient::new(support::config(&testbed)).unwrap();
    let branches = client.branch_list().await.unwrap();
    assert_eq!(branches.len(), 1);
    assert_eq!(branches[0].name, "main");

    let created = client
        .branch_create("feature-1", Some("work"), false)
        .await
        .unwrap();
    assert_eq!(created.name, "feature-1");
    assert_eq!(created.description.as_deref(), Some("work"));
    assert_eq!(
        client.branch_get("feature-1").await.unwrap().unwrap().id,
        created.id
    );
    assert!(client.branch_get("nope").await.unwrap().is_none());

    // A tag created on the branch is not on main until the merge.
    let feature = client.on_branch("feature-1");
    feature.tag_create(&tag("on-branch")).await.unwrap();
    let everything = BuiltinTagFilter::default();
    assert_eq!(feature.tag_count(&everything).await.unwrap(), 1);
    assert_eq!(client.tag_count(&everything).await.unwrap(), 0);
    client.branch_merge("feature-1").await.unwrap();
    assert_eq!(client.tag_count(&everything).await.unwrap(), 1);

    // A tag created on main reaches the branch with a rebase.
    client.tag_create(&tag("on-main")).await.unwrap();
    assert_eq!(feature.tag_count(&everything).await.unwrap(), 1);
    client.branch_rebase("feature-1").await.unwrap();
    assert_eq!(feature.tag_count(&everything).await.unwrap(), 2);

    client.branch_delete("feature-1").await.unwrap();
    assert!(client.branch_get("feature-1").await.unwrap().is_none());
    // Operations on a deleted branch fail with the server's error.
    assert!(matches!(
        feature.tag_count(&everything).await,
        Err(Error::GraphQL(_))
    ));
    // The requests went to /graphql/{branch}.
    let paths: Vec<String> = testbed
        .infrahub_requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert!(paths.contains(&"/graphql/feature-1".to_owned()));
    assert!(paths.contains(&"/graphql/main".to_owned()));
}

#[tokio::test]
async fn schema_check_load_and_fetch() {
    let testbed = support::start().await;
    let client = InventoryClient::new(support::config(&testbed)).unwrap();
    let schema = json!({
        "version": "1.0",
        "nodes": [{
            "name": "Device",
            "namespace": "Infra",
            "attributes": [
                {"name": "name", "kind": "Text", "unique": true},
                {"name": "role", "kind": "Text", "optional": true}
            ],
            "relationships": [{"name": "tags", "peer": "BuiltinTag", "cardinality": "many"}]
        }]
    });
    let diff = client
        .schema_check(std::slice::from_ref(&schema))
        .await
        .unwrap();
    assert_eq!(diff["diff"]["added"], json!({"InfraDevice": {}}));

    let loaded = client
        .schema_load(std::slice::from_ref(&schema))
        .await
        .unwrap();
    assert!(loaded.schema_updated);
    assert_ne!(loaded.hash, loaded.previous_hash);
    let again = client.schema_load(&[schema]).await.unwrap();
    assert!(!again.schema_updated);

    let fetched = client.schema_fetch().await.unwrap();
    let device = fetched["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "InfraDevice")
        .unwrap()
        .clone();
    assert_eq!(device["relationships"][0]["name"], "tags");

    // The new kind is usable at once through the dynamic API.
    let red = client.tag_create(&tag("red")).await.unwrap();
    client
        .node_mutate(
            "InfraDevice",
            "Create",
            &json!({"name": {"value": "sw1"}, "tags": [{"id": red.id}]}),
        )
        .await
        .unwrap();
    let selection = Selection {
        attributes: vec!["name".into(), "role".into()],
        many: vec!["tags".into()],
        ..Selection::default()
    };
    let devices = client
        .node_all("InfraDevice", &selection, &Map::new())
        .await
        .unwrap();
    assert_eq!(devices[0].relationships["tags"][0].id, red.id);

    // A malformed schema is the server's 422.
    assert!(matches!(
        client
            .schema_load(&[json!({"nodes": [{"name": "x"}]})])
            .await,
        Err(Error::Http { status: 422, .. })
    ));
}

#[tokio::test]
async fn ip_pool_allocation_is_idempotent_per_identifier() {
    let testbed = support::start().await;
    let client = InventoryClient::new(support::config(&testbed)).unwrap();
    let prefix = client
        .node_mutate(
            "IpamIPPrefix",
            "Create",
            &json!({"prefix": {"value": "10.0.0.0/30"}}),
        )
        .await
        .unwrap();
    let mut pool = CoreIPAddressPoolCreate::default();
    pool.name = Some("loopbacks".into());
    pool.default_address_type = Some("IpamIPAddress".into());
    pool.resources = Some(vec![RelatedNode::id(prefix)]);
    let pool = client.ip_address_pool_create(&pool).await.unwrap();

    let a = client
        .allocate_ip_address(NodeRef::from(&pool.id), Some("sw1"), None)
        .await
        .unwrap();
    assert_eq!(a.display_label, "10.0.0.1/30");
    assert_eq!(a.kind, "IpamIPAddress");
    let again = client
        .allocate_ip_address(NodeRef::hfid(["loopbacks"]), Some("sw1"), None)
        .await
        .unwrap();
    assert_eq!(again, a);
    let b = client
        .allocate_ip_address(NodeRef::from(&pool.id), Some("sw2"), Some(32))
        .await
        .unwrap();
    assert_eq!(b.display_label, "10.0.0.2/32");
    // A /30 has two hosts: the pool is exhausted.
    assert!(matches!(
        client
            .allocate_ip_address(NodeRef::from(&pool.id), Some("sw3"), None)
            .await,
        Err(Error::GraphQL(_))
    ));
}

#[tokio::test]
async fn batch_runs_in_order_with_bounded_concurrency() {
    let testbed = support::start().await;
    testbed
        .faults()
        .set_latency(std::time::Duration::from_millis(20));
    let mut config = support::config(&testbed);
    config.max_concurrent_execution = 3;
    let client = InventoryClient::new(config).unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let tasks = (0..12).map(|i| {
        let running = running.clone();
        let peak = peak.clone();
        move |client: InventoryClient| async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let created = client.tag_create(&tag(&format!("t{i:02}"))).await;
            running.fetch_sub(1, Ordering::SeqCst);
            created.map(|t| t.name)
        }
    });
    let results = client.batch(tasks).await;
    let names: Vec<String> = results.into_iter().map(|r| r.unwrap().unwrap()).collect();
    let expected: Vec<String> = (0..12).map(|i| format!("t{i:02}")).collect();
    assert_eq!(names, expected);
    assert_eq!(peak.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn priority_per_client_and_per_call() {
    let testbed = support::start().await;
    let mut config = support::config(&testbed);
    config.priority = Some(Priority::Low);
    let client = InventoryClient::new(config).unwrap();
    let filter = BuiltinTagFilter::default();
    client.tag_count(&filter).await.unwrap();
    client
        .priority(Priority::High)
        .tag_count(&filter)
        .await
        .unwrap();
    let priorities: Vec<Option<String>> = testbed
        .infrahub_requests()
        .into_iter()
        .map(|r| r.priority)
        .collect();
    assert_eq!(
        priorities,
        [Some("low".to_owned()), Some("high".to_owned())]
    );
    assert!(
        testbed
            .infrahub_requests()
            .iter()
            .all(|r| r.auth == "api-key")
    );
}

#[tokio::test]
async fn namespace_per_client_and_per_call_keys_the_rate_limit() {
    let testbed = support::start().await;
    let mut config = support::config(&testbed);
    config.namespace = Some("pipeline".into());
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = config.pacer.metrics_builder().register(&mut registry);
    let client = InventoryClient::with_metrics(config, metrics).unwrap();
    let filter = BuiltinTagFilter::default();
    client.tag_count(&filter).await.unwrap();
    client.namespace("team-a").tag_count(&filter).await.unwrap();
    client.namespace("team-a").tag_count(&filter).await.unwrap();
    let (_, text) = pacer::metrics::render(&registry, None).unwrap();
    let requests = |namespace: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("pacer_requests_total")
                    && l.contains(&format!("namespace=\"{namespace}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned)
    };
    assert_eq!(requests("pipeline").as_deref(), Some("1"), "{text}");
    assert_eq!(requests("team-a").as_deref(), Some("2"), "{text}");
}
