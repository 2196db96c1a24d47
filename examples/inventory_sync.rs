//! Syncs a small inventory into Infrahub in bulk with pacer-inventory's batch helper: tags,
//! groups of tags, and IP addresses allocated from a pool, against the in-process fake
//! Infrahub (which sheds load with a 429 storm half-way through). The sync runs twice to show
//! it is idempotent (upserts, allocations keyed by identifier), then prints the pacer metrics.
//!
//! `cargo run -p examples --example inventory_sync`

use std::time::{Duration, Instant};

use pacer_inventory::{
    BuiltinTagFilter, BuiltinTagUpsert, Config, CoreIPAddressPoolFilter, CoreIPAddressPoolUpsert,
    CoreStandardGroupUpsert, InventoryClient, NodeRef, RelatedNode, SecretString,
};
use pacer_testbed::Testbed;
use prometheus_client::registry::Registry;
use serde_json::json;

const TAGS: usize = 24;
const DEVICES: usize = 8;

async fn sync(
    client: &InventoryClient,
) -> Result<(usize, usize, Vec<String>), Box<dyn std::error::Error>> {
    // Tags, in bulk: at most `max_concurrent_execution` in flight, each paced by the limiter.
    let tags = client
        .batch((0..TAGS).map(|i| {
            move |client: InventoryClient| async move {
                let mut tag = BuiltinTagUpsert::default();
                tag.name = Some(format!("rack-{i:02}"));
                tag.description = Some(format!("rack {i} of row {}", i / 8));
                client.tag_upsert(&tag).await
            }
        }))
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;

    // One group per row, with its racks' tags as members.
    let groups = client
        .batch((0..TAGS / 8).map(|row| {
            let members: Vec<RelatedNode> = tags[row * 8..row * 8 + 8]
                .iter()
                .map(|tag| RelatedNode::id(tag.id.clone()))
                .collect();
            move |client: InventoryClient| async move {
                let mut group = CoreStandardGroupUpsert::default();
                group.name = Some(format!("row-{row}"));
                group.members = Some(members);
                client.standard_group_upsert(&group).await
            }
        }))
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;

    // An address pool over 10.10.0.0/24 (the prefix through the dynamic API, as the
    // generated kinds do not include IpamIPPrefix), then one loopback per device.
    let mut filter = CoreIPAddressPoolFilter::default();
    filter.name_value = Some("loopbacks".into());
    let pool = match client
        .ip_address_pool_all(&filter)
        .await?
        .into_iter()
        .next()
    {
        Some(pool) => pool,
        None => {
            let prefix = client
                .node_mutate(
                    "IpamIPPrefix",
                    "Upsert",
                    &json!({"prefix": {"value": "10.10.0.0/24"}}),
                )
                .await?;
            let mut pool = CoreIPAddressPoolUpsert::default();
            pool.name = Some("loopbacks".into());
            pool.default_address_type = Some("IpamIPAddress".into());
            pool.resources = Some(vec![RelatedNode::id(prefix)]);
            client.ip_address_pool_upsert(&pool).await?
        }
    };
    let addresses = client
        .batch((0..DEVICES).map(|device| {
            let pool = NodeRef::from(&pool.id);
            move |client: InventoryClient| async move {
                let identifier = format!("switch-{device}");
                client
                    .allocate_ip_address(pool, Some(&identifier), Some(32))
                    .await
                    .map(|a| format!("{identifier} {}", a.display_label))
            }
        }))
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok((tags.len(), groups.len(), addresses))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let testbed = Testbed::builder()
        .kinds(pacer_testbed::generated_inventory_kinds())
        .start()
        .await?;

    let mut config = Config::default();
    config.address = testbed.infrahub_url().to_owned();
    config.username = Some(testbed.credentials().infrahub_user.clone());
    config.password = Some(SecretString::from(
        testbed.credentials().infrahub_password.clone(),
    ));
    config.rate_limit_backoff_base = Duration::from_millis(50);
    config.max_concurrent_execution = 5;
    // The tenant this sync runs for: its own bucket (default 5 req/s, burst 10).
    config.namespace = Some("inventory-sync".into());
    config.pacer.rate_limit.namespace_rate = 50.0;
    config.pacer.rate_limit.namespace_burst = 20;

    let mut registry = Registry::default();
    let metrics = config.pacer.metrics_builder().register(&mut registry);
    let client = InventoryClient::with_metrics(config, metrics)?;

    // The server sheds load for a while during the first run.
    testbed.faults().scope_to(Some("/graphql"));
    testbed.faults().storm(6, Some(Duration::from_secs(1)));

    for run in 1..=2 {
        let started = Instant::now();
        let (tags, groups, addresses) = sync(&client).await?;
        println!(
            "run {run}: {tags} tags, {groups} groups, {} addresses in {:.2?}",
            addresses.len(),
            started.elapsed()
        );
        if run == 1 {
            for address in &addresses {
                println!("  {address}");
            }
        }
    }
    let total = client.tag_count(&BuiltinTagFilter::default()).await?;
    println!(
        "tags in Infrahub after two runs: {total} (idempotent); the server answered {} x 429",
        testbed.stats().too_many_requests()
    );

    let (_, text) = pacer::metrics::render(&registry, None)?;
    println!("\n# pacer metrics\n{text}");
    Ok(())
}
