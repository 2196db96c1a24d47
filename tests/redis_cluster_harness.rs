//! The Redis Cluster harness (`support/redis_cluster.rs`) against its real processes, through
//! redis-rs's async cluster client: the tests of a store over a cluster lean on the harness's
//! answers (who serves a key, when a failover is over, what a node counted, what its clock
//! says), so each answer is checked here against what Redis itself does.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;

#[path = "support/redis_cluster.rs"]
mod redis_cluster;
use redis_cluster::{RedisCluster, Role};

/// A cluster client seeded with the masters, with timeouts short enough that a dead node
/// costs a retry rather than the test's whole budget.
async fn client(cluster: &RedisCluster) -> ClusterConnection {
    ClusterClient::builder(cluster.seed_urls())
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
        .get_async_connection()
        .await
        .unwrap()
}

/// Writes `key` and waits until a replica has it, so that killing its master loses nothing.
async fn set_replicated(con: &mut ClusterConnection, key: &str, value: &str) {
    let () = con.set(key, value).await.unwrap();
    // The cluster client sends WAIT to every master and keeps the smallest answer.
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(1000)
        .query_async(con)
        .await
        .unwrap();
    assert!(acked >= 1, "no replica acknowledged {key:?} in 1 s");
}

fn calls(stats: &HashMap<String, u64>, command: &str) -> u64 {
    stats.get(command).copied().unwrap_or(0)
}

fn now_micros() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

#[tokio::test]
async fn keys_spread_over_three_masters_where_master_for_key_says() {
    let started = Instant::now();
    let cluster = RedisCluster::start(3, 0);
    eprintln!("3 masters up in {:?}", started.elapsed());
    let masters = cluster.master_ports();
    assert_eq!(masters.len(), 3);
    assert_eq!(cluster.seed_urls().len(), 3);
    assert!(cluster.nodes().iter().all(|node| node.role == Role::Master));

    let mut con = client(&cluster).await;
    let keys: Vec<String> = (0..100).map(|i| format!("spread:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        let () = con.set(key, i).await.unwrap();
    }

    let mut total = 0;
    for &port in &masters {
        let size: u64 = cluster.query(port, &["DBSIZE"]);
        assert!(size > 0, "master {port} holds none of the 100 keys");
        total += size;
    }
    assert_eq!(total, 100);
    for (i, key) in keys.iter().enumerate() {
        let port = cluster.master_for_key(key);
        // A direct connection answers MOVED for a key its node does not serve.
        let value: usize = cluster.query(port, &["GET", key]);
        assert_eq!(value, i, "{key} on port {port}");
    }

    cluster.flushall();
    for &port in &masters {
        assert_eq!(cluster.query::<u64>(port, &["DBSIZE"]), 0);
    }
}

#[tokio::test]
async fn a_replicated_key_survives_its_masters_death() {
    let started = Instant::now();
    let mut cluster = RedisCluster::start(3, 1);
    eprintln!("3 masters + 3 replicas up in {:?}", started.elapsed());
    let nodes = cluster.nodes();
    assert_eq!(nodes.len(), 6);
    let masters = cluster.master_ports();
    assert_eq!(masters.len(), 3);
    for master in &masters {
        let replicas = nodes
            .iter()
            .filter(|node| node.role == Role::Replica && node.master_port == Some(*master))
            .count();
        assert_eq!(replicas, 1, "master {master} in {nodes:?}");
    }

    let mut con = client(&cluster).await;
    let key = "failover:kept";
    let old = cluster.master_for_key(key);
    let replica = nodes
        .iter()
        .find(|node| node.master_port == Some(old))
        .unwrap()
        .port;
    cluster.reset_stats();
    set_replicated(&mut con, key, "written before the failover").await;
    let stats = cluster.commandstats(old);
    assert_eq!(calls(&stats, "set"), 1, "{stats:?}");
    assert_eq!(calls(&stats, "wait"), 1, "{stats:?}");
    for &port in masters.iter().filter(|&&port| port != old) {
        assert_eq!(calls(&cluster.commandstats(port), "set"), 0);
    }

    assert_eq!(cluster.kill_master_for_key(key), old);
    let killed = Instant::now();
    let new = cluster.wait_for_failover(old);
    eprintln!("failover from {old} to {new} in {:?}", killed.elapsed());
    assert_eq!(new, replica);
    assert!(cluster.master_ports().contains(&new));
    assert!(
        !cluster
            .seed_urls()
            .iter()
            .any(|url| url.contains(&old.to_string()))
    );
    assert_eq!(cluster.master_for_key(key), new);

    let value: String = con.get(key).await.unwrap();
    assert_eq!(value, "written before the failover");
    cluster.reset_stats();
    for _ in 0..5 {
        let value: String = con.get(key).await.unwrap();
        assert_eq!(value, "written before the failover");
    }
    assert_eq!(calls(&cluster.commandstats(new), "get"), 5);
    for &port in masters.iter().filter(|&&port| port != old) {
        assert_eq!(calls(&cluster.commandstats(port), "get"), 0, "port {port}");
    }

    // The old master comes back as its replacement's replica, with the key.
    let restarted = Instant::now();
    cluster.restart_port(old);
    eprintln!("{old} rejoined in {:?}", restarted.elapsed());
    let back = cluster
        .nodes()
        .into_iter()
        .find(|node| node.port == old)
        .unwrap();
    assert_eq!(back.role, Role::Replica);
    assert_eq!(back.master_port, Some(new));
    let value: String = con.get(key).await.unwrap();
    assert_eq!(value, "written before the failover");
}

#[tokio::test]
async fn a_replica_with_its_clock_30_s_behind_takes_over() {
    let started = Instant::now();
    let mut cluster = RedisCluster::builder(3, 1).clock_offset(3, -30).start();
    eprintln!(
        "3 masters + 3 replicas (one under faketime) up in {:?}",
        started.elapsed()
    );
    let skewed = cluster.port_of(3);
    let info = cluster
        .nodes()
        .into_iter()
        .find(|node| node.port == skewed)
        .unwrap();
    assert_eq!(info.role, Role::Replica);
    assert_eq!(info.clock_offset_secs, Some(-30));
    let master = info.master_port.unwrap();

    // Every other node keeps the host's clock; the skewed one is 30 s behind them.
    for port in cluster.nodes().iter().map(|node| node.port) {
        if port != skewed {
            let drift = i64::try_from(cluster.time_micros(port)).unwrap() - now_micros();
            assert!(drift.abs() < 1_000_000, "port {port} is {drift} us off");
        }
    }
    let before = i64::try_from(cluster.time_micros(master)).unwrap();
    let skewed_time = i64::try_from(cluster.time_micros(skewed)).unwrap();
    let after = i64::try_from(cluster.time_micros(master)).unwrap();
    let offset = skewed_time - (before + after) / 2;
    assert!(
        (offset + 30_000_000).abs() < 1_000_000,
        "the skewed node is {offset} us off its master, not -30 s"
    );

    let mut con = client(&cluster).await;
    let key = cluster.key_on(master, "skew");
    set_replicated(&mut con, &key, "written under the true clock").await;
    cluster.kill_port(master);
    let killed = Instant::now();
    let new = cluster.wait_for_failover(master);
    eprintln!(
        "failover from {master} to the skewed {new} in {:?}",
        killed.elapsed()
    );
    assert_eq!(new, skewed);
    assert_eq!(cluster.master_for_key(&key), skewed);
    let value: String = con.get(&key).await.unwrap();
    assert_eq!(value, "written under the true clock");
    let drift = i64::try_from(cluster.time_micros(skewed)).unwrap() - now_micros();
    assert!(
        (drift + 30_000_000).abs() < 1_000_000,
        "the new master is {drift} us off the host, not -30 s"
    );
}
