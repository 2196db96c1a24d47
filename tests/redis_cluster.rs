//! [`RedisStore`] over a real Redis Cluster (`support/redis_cluster.rs`: `redis-server`
//! processes joined by `redis-cli`), with what only a cluster can show:
//!
//! - **Routing and leases**: a decision is one `EVALSHA` on its namespace's shard and the
//!   global key's shard sees one `EVALSHA` per lease call, counted by Redis itself
//!   (`INFO commandstats`), not by the store.
//! - **A fleet**: six replicas (six stores, six connections, six limiters) saturating the
//!   global limit for ten seconds of real time admit no more than the documented bound
//!   `B + R·w + n·max_lease` and no less than 95 % of `B + R·w`; namespace limits stay exact.
//! - **Failover**: a master killed mid-run (a namespace's, or the global key's) fails only
//!   within the store's timeout, applies the policy (fail closed) while it is down, and the
//!   fleet is admitted again once a replica has taken over.
//! - **Clock skew across a failover**: a bucket written under one clock and read by a new
//!   master 30 s ahead refills at most to its burst.
//!
//! The tests measure real time on a two-core machine, so they run one at a time (`SERIAL`):
//! two fleets at once would measure each other's load.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use pacer::Namespace;
use pacer::rate_limit::redis::RedisStore;
use pacer::rate_limit::{Level, Quota, RateLimiter, StoreFailure};
use tokio::time::{Instant, MissedTickBehavior};

#[path = "support/redis_cluster.rs"]
mod redis_cluster;
use redis_cluster::RedisCluster;

/// One test at a time: each measures rates and latencies in real time on two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The store's call timeout in these tests, and the margin a decision may take beyond it on a
/// loaded two-core machine (scheduling, not Redis).
const TIMEOUT: Duration = Duration::from_millis(200);
const MARGIN: Duration = Duration::from_millis(150);

/// The fleet of tests 2 and 3: six replicas, leases of at most 8 tokens living 1 s.
const REPLICAS: usize = 6;
const MAX_LEASE: u32 = 8;
const LEASE_TTL: Duration = Duration::from_secs(1);

/// Global 300/s, burst 60: 50/s per replica.
const GLOBAL_RATE: f64 = 300.0;
const GLOBAL_BURST: u32 = 60;
/// Ten namespaces at 40/s (burst 10): 400/s together, more than the global 300/s, so the
/// global binds and these are starved by it (about 29/s each).
const NS_RATE: f64 = 40.0;
const NS_BURST: u32 = 10;
const BUSY_NAMESPACES: usize = 10;
/// One namespace with an override of 10/s (burst 5), below its share of the global: its own
/// limit binds, so it must get (nearly) all of it.
const SMALL: &str = "small";
const SMALL_RATE: f64 = 10.0;
const SMALL_BURST: u32 = 5;
/// Each (replica, namespace) task asks every 100 ms: 60/s per namespace (more than 40/s),
/// 110/s per replica (more than its 50/s share), 660/s for the fleet (more than 300/s).
const PERIOD: Duration = Duration::from_millis(100);

fn quota(rate: f64, burst: u32) -> Quota {
    Quota::per_second(rate).unwrap().with_burst(burst).unwrap()
}

fn ns(name: &str) -> Namespace {
    Namespace::new(name)
}

/// A store of the fleet: its own cluster connection.
async fn store(cluster: &RedisCluster, prefix: &str) -> RedisStore {
    RedisStore::builder()
        .prefix(prefix)
        .timeout(TIMEOUT)
        .max_lease(MAX_LEASE)
        .lease_ttl(LEASE_TTL)
        .connect_cluster(cluster.seed_urls())
        .await
        .unwrap()
}

/// Six replicas of the fleet shape above, failing closed.
async fn fleet(cluster: &RedisCluster, prefix: &str) -> (Vec<RedisStore>, Vec<RateLimiter>) {
    let mut stores = Vec::new();
    let mut limiters = Vec::new();
    for _ in 0..REPLICAS {
        let store = store(cluster, prefix).await;
        let limiter = RateLimiter::builder()
            .global(quota(GLOBAL_RATE, GLOBAL_BURST))
            .per_namespace(quota(NS_RATE, NS_BURST))
            .namespace_override(SMALL, quota(SMALL_RATE, SMALL_BURST))
            .store(store.clone())
            .on_store_failure(StoreFailure::FailClosed)
            .store_retry_interval(Duration::from_millis(100))
            .build()
            .unwrap();
        stores.push(store);
        limiters.push(limiter);
    }
    (stores, limiters)
}

/// The fleet's namespaces: `ns-0`..`ns-9` and [`SMALL`].
fn fleet_namespaces() -> Vec<Namespace> {
    let mut names: Vec<Namespace> = (0..BUSY_NAMESPACES)
        .map(|i| ns(&format!("ns-{i}")))
        .collect();
    names.push(ns(SMALL));
    names
}

/// One decision as a replica's task saw it.
#[derive(Debug, Clone, Copy)]
struct Decision {
    replica: usize,
    namespace: usize,
    asked: Instant,
    took: Duration,
    /// `Ok` admitted, else the refusal's level and `retry_after`.
    outcome: Result<(), (Level, Duration)>,
}

impl Decision {
    fn ended(&self) -> Instant {
        self.asked + self.took
    }
}

/// A fixed-seed jitter in `0..PERIOD / 2` for tick `tick` of pair `pair` (splitmix64).
fn jitter(pair: u64, tick: u64) -> Duration {
    let mut z = (pair << 32 ^ tick).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let z = z ^ (z >> 31);
    PERIOD / 2 * u32::try_from(z % 1_000).unwrap() / 1_000
}

/// Every limiter asks for every namespace about every [`PERIOD`] (a paced loop per pair, the
/// pairs' first ticks spread over one period) for `run`; returns every decision.
///
/// Each ask comes up to half a period after its tick, at a random offset: independent clients
/// do not keep a fixed order, and with exact ticks the six replicas' asks for one namespace
/// can fall, run after run, just behind the asks that take the fleet's fresh global tokens.
async fn drive(limiters: Vec<RateLimiter>, names: Vec<Namespace>, run: Duration) -> Vec<Decision> {
    let pairs = limiters.len() * names.len();
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + run;
    let mut tasks = Vec::new();
    for (replica, limiter) in limiters.iter().enumerate() {
        for (namespace, name) in names.iter().enumerate() {
            let (limiter, name) = (limiter.clone(), name.clone());
            let k = u32::try_from(replica * names.len() + namespace).unwrap();
            let first = start + PERIOD * k / u32::try_from(pairs).unwrap();
            tasks.push(tokio::spawn(async move {
                let mut ticks = tokio::time::interval_at(first, PERIOD);
                ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
                let mut decisions = Vec::new();
                let mut tick = 0;
                loop {
                    ticks.tick().await;
                    tokio::time::sleep(jitter(u64::from(k), tick)).await;
                    tick += 1;
                    let asked = Instant::now();
                    if asked >= end {
                        return decisions;
                    }
                    let outcome = limiter
                        .try_acquire_async(&name)
                        .await
                        .map_err(|refused| (refused.level, refused.retry_after));
                    decisions.push(Decision {
                        replica,
                        namespace,
                        asked,
                        took: asked.elapsed(),
                        outcome,
                    });
                }
            }));
        }
    }
    let mut decisions = Vec::new();
    for task in tasks {
        decisions.extend(task.await.unwrap());
    }
    decisions
}

/// From the first decision asked to the last one answered: every admission lies within.
fn window(decisions: &[Decision]) -> Duration {
    let first = decisions.iter().map(|d| d.asked).min().unwrap();
    let last = decisions.iter().map(Decision::ended).max().unwrap();
    last - first
}

fn admitted(decisions: &[Decision]) -> usize {
    decisions.iter().filter(|d| d.outcome.is_ok()).count()
}

/// The documented global bound: `B + R·w + n·max_lease`.
fn global_bound(w: Duration) -> f64 {
    f64::from(GLOBAL_BURST)
        + GLOBAL_RATE * w.as_secs_f64()
        + (REPLICAS as f64) * f64::from(MAX_LEASE)
}

/// A namespace's exact bound `B_ns + R_ns·w`.
fn namespace_bound(name: &Namespace, w: Duration) -> f64 {
    let (rate, burst) = if name.as_str() == SMALL {
        (SMALL_RATE, SMALL_BURST)
    } else {
        (NS_RATE, NS_BURST)
    };
    f64::from(burst) + rate * w.as_secs_f64()
}

fn levels(decisions: &[&Decision]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for decision in decisions {
        let name = match decision.outcome {
            Ok(()) => "admitted",
            Err((level, _)) => level.as_str(),
        };
        *counts.entry(name.to_owned()).or_default() += 1;
    }
    counts
}

fn calls(stats: &HashMap<String, u64>, command: &str) -> u64 {
    stats.get(command).copied().unwrap_or(0)
}

/// When a master was killed and its replica took over.
#[derive(Debug, Clone, Copy)]
struct Failover {
    killed: Instant,
    /// When the last `ROLE` query that the replica answered as a replica was sent: it was
    /// still one then, so nothing that ended before was served by a new master.
    still_replica: Instant,
    /// When the replica first answered `ROLE` as master.
    promoted: Instant,
    /// When the harness saw the cluster healthy again.
    failed_over: Instant,
    new_master: u16,
}

/// Kills the master on `port`, then waits for its failover while a thread polls its only
/// replica's `ROLE`.
fn kill_and_fail_over(cluster: &mut RedisCluster, port: u16) -> Failover {
    let replica = cluster
        .nodes()
        .into_iter()
        .find(|node| node.master_port == Some(port))
        .unwrap()
        .port;
    cluster.kill_port(port);
    let killed = Instant::now();
    let cluster = &*cluster;
    let ((still_replica, promoted), new_master) = std::thread::scope(|scope| {
        let watcher = scope.spawn(move || {
            let mut con = redis::Client::open(format!("redis://127.0.0.1:{replica}/"))
                .unwrap()
                .get_connection()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut still_replica = killed;
            loop {
                let sent = Instant::now();
                let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut con).unwrap();
                let role: String = redis::from_redis_value(&role[0]).unwrap();
                if role == "master" {
                    return (still_replica, Instant::now());
                }
                still_replica = sent;
                assert!(Instant::now() < deadline, "{replica} never became master");
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let new_master = cluster.wait_for_failover(port);
        (watcher.join().unwrap(), new_master)
    });
    assert_eq!(new_master, replica);
    Failover {
        killed,
        still_replica,
        promoted,
        failed_over: Instant::now(),
        new_master,
    }
}

/// On a 3-master cluster the namespaces' keys spread over the masters (each namespace has a
/// hash tag of its own), and with leases the global key's shard is not on the decision path:
/// over 2 000 decisions from 8 tasks on six namespaces kept off the global key's master, Redis
/// counts there exactly one `EVALSHA` per lease call the store made (and at most one lease
/// call per 4 decisions), and on the namespaces' masters between 1 and one `EVALSHA` per
/// decision of their namespaces (decisions of one namespace that meet in one round share a
/// call). That each decision reached its namespace's shard exactly once (not lost, not
/// doubled) Redis says too: with one token an hour, a namespace bucket's arrival time is
/// `now + N hours` after `N` admissions, so its stored value counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_spread_over_shards_and_the_global_key_is_touched_once_per_lease() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let cluster = RedisCluster::start(3, 0);
    let store = store(&cluster, "fleet").await;
    assert_eq!(store.global_key(), "{fleet}:global");
    assert_eq!(store.namespace_key(&ns("tenant-0")), "{fleet:ns:tenant-0}");
    let global_master = cluster.master_for_key(store.global_key());

    // Where 30 namespaces' keys live: on every master.
    let mut by_master: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for i in 0..30 {
        let name = format!("tenant-{i}");
        let master = cluster.master_for_key(&store.namespace_key(&ns(&name)));
        by_master.entry(master).or_default().push(name);
    }
    let spread: BTreeMap<u16, usize> = by_master.iter().map(|(p, n)| (*p, n.len())).collect();
    eprintln!("30 namespaces per master: {spread:?}; global key on {global_master}");
    assert_eq!(by_master.len(), 3, "30 namespaces on only {spread:?}");
    // Three namespaces on each master that does not hold the global key.
    let chosen: Vec<(String, u16)> = by_master
        .iter()
        .filter(|(port, _)| **port != global_master)
        .flat_map(|(port, names)| names.iter().take(3).map(|name| (name.clone(), *port)))
        .collect();
    assert_eq!(chosen.len(), 6);

    // Roomy: nothing refuses. One namespace token an hour makes each bucket a counter.
    const HOUR_US: f64 = 3_600_000_000.0;
    let limiter = RateLimiter::builder()
        .global(quota(100_000.0, 100_000))
        .per_namespace(Quota::per_hour(1).unwrap().with_burst(100_000).unwrap())
        .store(store.clone())
        .build()
        .unwrap();
    // Warm-up: the scripts loaded on each shard (a first EVALSHA answers NOSCRIPT).
    for (name, _) in &chosen {
        limiter.try_acquire_async(&ns(name)).await.unwrap();
    }
    cluster.reset_stats();
    let leases_before = store.lease_calls();

    const DECISIONS: usize = 2_000;
    const TASKS: usize = 8;
    let run = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let limiter = limiter.clone();
            let names: Vec<Namespace> = chosen.iter().map(|(name, _)| ns(name)).collect();
            tokio::spawn(async move {
                let mut admitted = vec![0u64; names.len()];
                for i in 0..DECISIONS / TASKS {
                    let which = (t + i) % names.len();
                    limiter.try_acquire_async(&names[which]).await.unwrap();
                    admitted[which] += 1;
                }
                admitted
            })
        })
        .collect();
    let mut per_namespace = vec![0u64; chosen.len()];
    for task in tasks {
        for (sum, n) in per_namespace.iter_mut().zip(task.await.unwrap()) {
            *sum += n;
        }
    }
    let took = run.elapsed();
    let lease_calls = store.lease_calls() - leases_before;
    assert_eq!(per_namespace.iter().sum::<u64>(), DECISIONS as u64);

    // Redis's count of each namespace's admissions, warm-up included.
    for ((name, port), n) in chosen.iter().zip(&per_namespace) {
        let value: String = cluster.query(*port, &["GET", &store.namespace_key(&ns(name))]);
        let (tat, seen) = value.split_once(' ').unwrap();
        let (tat, seen): (f64, f64) = (tat.parse().unwrap(), seen.parse().unwrap());
        let counted = ((tat - seen) / HOUR_US).round();
        assert_eq!(
            counted,
            (n + 1) as f64,
            "{name} on {port}: its bucket counts {counted} admissions of {}",
            n + 1
        );
    }

    let mut expected: BTreeMap<u16, u64> = BTreeMap::new();
    for ((_, port), n) in chosen.iter().zip(&per_namespace) {
        *expected.entry(*port).or_default() += n;
    }
    let mut figures = Vec::new();
    for port in cluster.master_ports() {
        let stats = cluster.commandstats(port);
        let (evalsha, eval, load) = (
            calls(&stats, "evalsha"),
            calls(&stats, "eval"),
            calls(&stats, "script|load"),
        );
        figures.push(if port == global_master {
            format!(
                "port {port} (global key): evalsha {evalsha} for {lease_calls} lease calls, \
                 eval {eval}, script|load {load}"
            )
        } else {
            format!(
                "port {port}: evalsha {evalsha} for {} decisions ({:.2} per call), eval {eval}, \
                 script|load {load}",
                expected[&port],
                expected[&port] as f64 / evalsha.max(1) as f64
            )
        });
        assert_eq!(eval, 0, "port {port}: {stats:?}");
        if port == global_master {
            assert_eq!(
                evalsha, lease_calls,
                "the global shard counted {evalsha} EVALSHA for {lease_calls} lease calls"
            );
        } else {
            assert!(
                (1..=expected[&port]).contains(&evalsha),
                "port {port} counted {evalsha} EVALSHA for {} decisions of its namespaces",
                expected[&port]
            );
        }
    }
    let on_namespace_shards: u64 = expected.values().sum();
    assert_eq!(on_namespace_shards, DECISIONS as u64);
    eprintln!(
        "{DECISIONS} decisions in {took:?} from {TASKS} tasks, {lease_calls} lease calls:\n  {}",
        figures.join("\n  ")
    );
    assert!(
        lease_calls >= 1 && lease_calls as usize <= DECISIONS / 4,
        "{lease_calls} lease calls for {DECISIONS} decisions"
    );
    eprintln!("test took {:?}", started.elapsed());
}

/// Six replicas (six stores, each with its own cluster connection) each offer more than their
/// share for 10 s of real time: 660 requests/s against a global 300/s (burst 60), over ten
/// namespaces of 40/s (400/s together: the global binds) and one of 10/s (its own limit binds).
/// Over the measured window `w` (first decision asked to last answered) the fleet admits at
/// most `B + R·w + 6·max_lease` (the documented bound) and at least 95 % of `B + R·w` (the
/// leases do not waste the global limit); every namespace at most `B_ns + R_ns·w` (exact: a
/// namespace bucket is one key on one shard), and the small namespace, not starved by the
/// global, at least 95 % of its own. No decision fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_replicas_share_global_and_namespace_quotas_for_ten_seconds() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let cluster = RedisCluster::start(3, 0);
    let (stores, limiters) = fleet(&cluster, "fleet").await;
    let names = fleet_namespaces();
    let masters: BTreeMap<u16, usize> = names.iter().fold(BTreeMap::new(), |mut acc, name| {
        *acc.entry(cluster.master_for_key(&stores[0].namespace_key(name)))
            .or_default() += 1;
        acc
    });
    eprintln!(
        "namespaces per master {masters:?}; global key on {}",
        cluster.master_for_key(stores[0].global_key())
    );

    let decisions = drive(limiters.clone(), names.clone(), Duration::from_secs(10)).await;
    let w = window(&decisions);
    let total = admitted(&decisions);
    let upper = global_bound(w);
    let lower = 0.95 * (f64::from(GLOBAL_BURST) + GLOBAL_RATE * w.as_secs_f64());
    let per_replica: Vec<usize> = (0..REPLICAS)
        .map(|r| {
            decisions
                .iter()
                .filter(|d| d.replica == r && d.outcome.is_ok())
                .count()
        })
        .collect();
    let all: Vec<&Decision> = decisions.iter().collect();
    eprintln!(
        "{} decisions in w = {w:?}: admitted {total} (per replica {per_replica:?}), bound \
         {upper:.0} = B + R*w + 6*max_lease, 95% of B + R*w = {lower:.0}; outcomes {:?}; \
         lease calls {:?}",
        decisions.len(),
        levels(&all),
        stores
            .iter()
            .map(RedisStore::lease_calls)
            .collect::<Vec<_>>()
    );
    let slowest = decisions.iter().map(|d| d.took).max().unwrap();
    eprintln!("slowest decision {slowest:?}");
    assert!(total as f64 <= upper, "{total} admitted > {upper}");
    assert!(total as f64 >= lower, "{total} admitted < {lower}");
    for (i, name) in names.iter().enumerate() {
        let mine: Vec<&Decision> = decisions.iter().filter(|d| d.namespace == i).collect();
        let count = mine.iter().filter(|d| d.outcome.is_ok()).count();
        let bound = namespace_bound(name, w);
        eprintln!(
            "  {}: admitted {count} <= {bound:.1}; {:?}",
            name.as_str(),
            levels(&mine)
        );
        assert!(
            count as f64 <= bound,
            "{} admitted {count} > {bound}",
            name.as_str()
        );
        if name.as_str() == SMALL {
            assert!(
                count as f64 >= 0.95 * bound,
                "{SMALL}, not starved by the global, admitted {count} < 95% of {bound}"
            );
        }
    }
    for limiter in &limiters {
        assert_eq!(limiter.store_fallbacks(), 0);
    }
    assert!(
        decisions.iter().all(|d| d.outcome.is_ok()
            || matches!(d.outcome, Err((Level::Global | Level::Namespace, _)))),
        "a decision was refused by the store"
    );
    eprintln!("test took {:?}", started.elapsed());
}

/// The fleet of the test above on 3 masters with one replica each; at ~3 s the master of one
/// namespace's key (not the global key's) is SIGKILLed. No decision takes longer than the
/// store's timeout plus a scheduling margin; that namespace is never admitted between the kill
/// and its replica's promotion (it fails closed: `Level::Store`, counted in every replica's
/// `store_fallbacks`), is admitted again soon after the failover, the global bound still holds
/// over the whole run, the other namespaces' limits stay exact, and the run completes.
/// A fleet run of `run` over a 3-master cluster (one replica each) in which the master that
/// `victim` picks is killed after `kill_after` and its replica promoted.
struct FailoverRun {
    /// Kept for the run's length, as the limiters' stores.
    _stores: Vec<RedisStore>,
    limiters: Vec<RateLimiter>,
    names: Vec<Namespace>,
    decisions: Vec<Decision>,
    failover: Failover,
}

/// Starts the cluster and the fleet, drives it for `run`, and kills the master `victim`
/// returns (given the cluster, the stores and the namespaces) after `kill_after`.
async fn run_with_failover(
    run: Duration,
    kill_after: Duration,
    victim: impl FnOnce(&RedisCluster, &[RedisStore], &[Namespace]) -> u16,
) -> FailoverRun {
    let mut cluster = RedisCluster::start(3, 1);
    let (stores, limiters) = fleet(&cluster, "fleet").await;
    let names = fleet_namespaces();
    let victim_master = victim(&cluster, &stores, &names);
    let driving = tokio::spawn(drive(limiters.clone(), names.clone(), run));
    tokio::time::sleep(kill_after).await;
    let failover = kill_and_fail_over(&mut cluster, victim_master);
    eprintln!(
        "killed {victim_master}; {} was a replica still after {:?}, said master after {:?}, \
         the harness saw the failover done after {:?}",
        failover.new_master,
        failover.still_replica - failover.killed,
        failover.promoted - failover.killed,
        failover.failed_over - failover.killed
    );
    let decisions = driving.await.unwrap();
    FailoverRun {
        _stores: stores,
        limiters,
        names,
        decisions,
        failover,
    }
}

impl FailoverRun {
    /// No decision took longer than the store's timeout (and a margin): nothing hung.
    fn assert_none_hung(&self) -> Duration {
        let slowest = self.decisions.iter().map(|d| d.took).max().unwrap();
        assert!(
            slowest <= TIMEOUT + MARGIN,
            "a decision took {slowest:?} > {TIMEOUT:?} + {MARGIN:?}"
        );
        slowest
    }

    /// Of `decisions` (some of this run's), one asked after the promotion was admitted within
    /// 2 s of the failover; returns when the first was.
    fn assert_back_after_failover(&self, decisions: &[&Decision]) -> Instant {
        let back = decisions
            .iter()
            .filter(|d| d.asked >= self.failover.promoted && d.outcome.is_ok())
            .map(|d| d.ended())
            .min()
            .expect("nothing admitted after the failover");
        eprintln!(
            "admitted again {:?} after the promotion ({:?} after the harness saw it)",
            back - self.failover.promoted,
            back.saturating_duration_since(self.failover.failed_over),
        );
        assert!(
            back <= self.failover.failed_over + Duration::from_secs(2),
            "admitted again only {:?} after the failover",
            back - self.failover.failed_over
        );
        back
    }

    /// The fleet as a whole stayed within the documented global bound.
    fn assert_global_bound(&self) -> Duration {
        let w = window(&self.decisions);
        let total = admitted(&self.decisions);
        let upper = global_bound(w);
        eprintln!(
            "{} decisions in w = {w:?}: admitted {total}, bound {upper:.0}; outcomes {:?}",
            self.decisions.len(),
            levels(&self.decisions.iter().collect::<Vec<_>>())
        );
        assert!(total as f64 <= upper, "{total} admitted > {upper}");
        w
    }

    /// The decisions asked once the master was dead and answered while its replica was
    /// known to be a replica still.
    fn while_down(&self) -> impl Iterator<Item = &Decision> {
        let Failover {
            killed,
            still_replica,
            ..
        } = self.failover;
        self.decisions
            .iter()
            .filter(move |d| d.asked >= killed && d.ended() < still_replica)
    }
}

/// The fleet, killing the master of one busy namespace (not the global key's) at ~3 s: that
/// namespace fails closed until the failover, every decision ends within the timeout, and it is
/// admitted again after the failover; the other shards' namespaces stay exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_mid_run_applies_the_policy_and_the_run_completes() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let mut victim = 0;
    let mut others_on_victim: Vec<String> = Vec::new();
    let run = run_with_failover(
        Duration::from_secs(10),
        Duration::from_secs(3),
        |cluster, stores, names| {
            let global_master = cluster.master_for_key(stores[0].global_key());
            victim = (0..BUSY_NAMESPACES)
                .find(|&i| {
                    cluster.master_for_key(&stores[0].namespace_key(&names[i])) != global_master
                })
                .unwrap();
            let victim_master = cluster.master_for_key(&stores[0].namespace_key(&names[victim]));
            others_on_victim = names
                .iter()
                .filter(|name| {
                    cluster.master_for_key(&stores[0].namespace_key(name)) == victim_master
                })
                .map(|name| name.as_str().to_owned())
                .collect();
            eprintln!(
                "global key on {global_master}; killing {victim_master}, master of \
                 {others_on_victim:?}"
            );
            victim_master
        },
    )
    .await;
    let names = &run.names;
    let fallbacks: Vec<u64> = run
        .limiters
        .iter()
        .map(RateLimiter::store_fallbacks)
        .collect();
    let slowest = run.assert_none_hung();

    let victim_decisions: Vec<&Decision> = run
        .decisions
        .iter()
        .filter(|d| d.namespace == victim)
        .collect();
    let down: Vec<&Decision> = run.while_down().filter(|d| d.namespace == victim).collect();
    let others_down: Vec<&Decision> = run.while_down().filter(|d| d.namespace != victim).collect();
    eprintln!(
        "while down: {} {:?}; other namespaces {:?}; store_fallbacks {fallbacks:?}; slowest \
         decision {slowest:?}",
        names[victim].as_str(),
        levels(&down),
        levels(&others_down)
    );
    assert!(!down.is_empty());
    assert!(
        down.iter()
            .all(|d| matches!(d.outcome, Err((Level::Store, _)))),
        "{} decided by a dead shard: {:?}",
        names[victim].as_str(),
        levels(&down)
    );
    assert!(
        fallbacks.iter().all(|&n| n > 0),
        "a replica never fell back: {fallbacks:?}"
    );

    run.assert_back_after_failover(&victim_decisions);
    let after: Vec<&&Decision> = victim_decisions
        .iter()
        .filter(|d| d.asked >= run.failover.failed_over)
        .collect();
    eprintln!(
        "{}: {} of its decisions after the failover, {} admitted",
        names[victim].as_str(),
        after.len(),
        after.iter().filter(|d| d.outcome.is_ok()).count()
    );

    let w = run.assert_global_bound();
    // Namespaces on the surviving shards are exact; the victim's bucket may have lost its last
    // unreplicated writes in the failover (Redis replicates asynchronously).
    for (i, name) in names.iter().enumerate() {
        if others_on_victim.iter().any(|other| other == name.as_str()) {
            continue;
        }
        let count = run
            .decisions
            .iter()
            .filter(|d| d.namespace == i && d.outcome.is_ok())
            .count();
        let bound = namespace_bound(name, w);
        assert!(
            count as f64 <= bound,
            "{} admitted {count} > {bound}",
            name.as_str()
        );
    }
    let last = run.decisions.iter().map(Decision::ended).max().unwrap();
    assert!(
        last >= run.failover.failed_over + Duration::from_secs(1),
        "the run stopped early"
    );
    eprintln!("test took {:?}", started.elapsed());
}

/// The same fleet, killing the global key's master at ~2.5 s: once the leases in hand are
/// spent or expired (at most `6 × max_lease` tokens, within `lease_ttl`) nothing is admitted
/// until a replica is promoted, every decision of that time fails closed within the timeout,
/// and after the failover the fleet is admitted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_global_master_fails_closed_until_its_failover() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let run = run_with_failover(
        Duration::from_secs(9),
        Duration::from_millis(2500),
        |cluster, stores, _| {
            let global_master = cluster.master_for_key(stores[0].global_key());
            eprintln!("killing the global key's master {global_master}");
            global_master
        },
    )
    .await;
    let slowest = run.assert_none_hung();
    let down: Vec<&Decision> = run.while_down().collect();
    let leased = down.iter().filter(|d| d.outcome.is_ok()).count();
    let after_leases: Vec<&Decision> = down
        .iter()
        .copied()
        .filter(|d| d.asked >= run.failover.killed + LEASE_TTL)
        .collect();
    eprintln!(
        "while down: {:?} ({leased} admitted from leases in hand); after lease_ttl: {:?}; \
         store_fallbacks {:?}; slowest decision {slowest:?}",
        levels(&down),
        levels(&after_leases),
        run.limiters
            .iter()
            .map(RateLimiter::store_fallbacks)
            .collect::<Vec<_>>()
    );
    assert!(
        leased <= REPLICAS * MAX_LEASE as usize,
        "{leased} admitted with the global shard down"
    );
    assert!(
        !after_leases.is_empty(),
        "the failover came within the lease time to live: nothing to check"
    );
    assert!(
        after_leases
            .iter()
            .all(|d| matches!(d.outcome, Err((Level::Store, _)))),
        "decided without the global shard: {:?}",
        levels(&after_leases)
    );

    let all: Vec<&Decision> = run.decisions.iter().collect();
    let back = run.assert_back_after_failover(&all);
    let after: Vec<&Decision> = run.decisions.iter().filter(|d| d.asked >= back).collect();
    eprintln!("after: {:?}", levels(&after));
    run.assert_global_bound();
    eprintln!("test took {:?}", started.elapsed());
}

/// A cluster with every replica's clock `offset_secs` off, a store and a limiter (namespace
/// 1/s burst 2, roomy global), and a namespace whose key lives on the global key's master, so
/// that both its bucket and the global hash cross the failover. Uses up the namespace's burst,
/// makes sure the replica has it, kills the master and waits for the failover to the skewed
/// replica. Returns the cluster, the limiter, the namespace and when the failover was done.
async fn burst_then_fail_over_to_skewed_clock(
    offset_secs: i64,
) -> (RedisCluster, RateLimiter, Namespace, Instant) {
    let mut builder = RedisCluster::builder(3, 1);
    for node in 3..6 {
        builder = builder.clock_offset(node, offset_secs);
    }
    let mut cluster = builder.start();
    let store = RedisStore::builder()
        .prefix("skew")
        .timeout(TIMEOUT)
        .connect_cluster(cluster.seed_urls())
        .await
        .unwrap();
    let limiter = RateLimiter::builder()
        .global(quota(1000.0, 1000))
        .per_namespace(quota(1.0, 2))
        .store(store.clone())
        .store_retry_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let master = cluster.master_for_key(store.global_key());
    let name = (0..)
        .map(|i| ns(&format!("tenant-{i}")))
        .find(|name| cluster.master_for_key(&store.namespace_key(name)) == master)
        .unwrap();
    let replica = cluster
        .nodes()
        .into_iter()
        .find(|node| node.master_port == Some(master))
        .unwrap();
    assert_eq!(replica.clock_offset_secs, Some(offset_secs));

    limiter.try_acquire_async(&name).await.unwrap();
    limiter.try_acquire_async(&name).await.unwrap();
    let refused = limiter.try_acquire_async(&name).await.unwrap_err();
    assert_eq!(refused.level, Level::Namespace);
    assert!(refused.retry_after > Duration::from_millis(500));

    // `WAIT` waits for the replicas to have this connection's last write: on a connection of
    // its own that wrote nothing it returns at once. A write to the same master first, then
    // `WAIT`: the store's earlier writes precede it in the replication stream.
    let mut fence = cluster.connection(master);
    let fence_key = cluster.key_on(master, "fence");
    let () = redis::cmd("SET")
        .arg(&fence_key)
        .arg(1)
        .query(&mut fence)
        .unwrap();
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(1000)
        .query(&mut fence)
        .unwrap();
    assert_eq!(
        acked, 1,
        "the replica did not acknowledge the bucket in 1 s"
    );
    drop(fence);

    cluster.kill_port(master);
    let killed = Instant::now();
    let new_master = cluster.wait_for_failover(master);
    let failed_over = Instant::now();
    assert_eq!(new_master, replica.port);
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap();
    let drift = i64::try_from(cluster.time_micros(new_master)).unwrap() - now;
    eprintln!(
        "failover from {master} to {new_master} in {:?}; the new master's clock is {:.3} s off",
        failed_over - killed,
        drift as f64 / 1e6
    );
    assert!(
        (drift - offset_secs * 1_000_000).abs() < 1_000_000,
        "the new master is {drift} us off the host, not {offset_secs} s"
    );
    (cluster, limiter, name, failed_over)
}

/// Every replica runs 30 s ahead: to the new master, 30 s seem to have passed since the
/// namespace (1/s, burst 2) spent its burst. It refills, but only to its burst: right after
/// the failover exactly 2 back-to-back decisions are admitted, then namespace refusals with a
/// wait of at most one interval (a bucket reset past its burst would admit more; one moved the
/// wrong way would refuse, or say a far wait).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_to_a_node_whose_clock_is_ahead_refills_at_most_the_burst() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let (_cluster, limiter, name, failed_over) = burst_then_fail_over_to_skewed_clock(30).await;

    // Past the store failures of the client finding the new master.
    let mut outcomes = Vec::new();
    let first = loop {
        let asked = Instant::now();
        let outcome = limiter.try_acquire_async(&name).await;
        if !matches!(&outcome, Err(refused) if refused.level == Level::Store) {
            outcomes.push(outcome);
            break asked;
        }
        assert!(
            asked < failed_over + Duration::from_secs(2),
            "the store still fails 2 s after the failover"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for _ in 0..5 {
        outcomes.push(limiter.try_acquire_async(&name).await);
    }
    let took = first.elapsed();
    eprintln!(
        "{:?} after the failover, 6 decisions in {took:?}: {:?}",
        first.saturating_duration_since(failed_over),
        outcomes
            .iter()
            .map(|o| o.as_ref().map_err(|r| (r.level, r.retry_after)))
            .collect::<Vec<_>>()
    );
    assert!(
        took < Duration::from_millis(900),
        "too slow to tell: {took:?}"
    );
    let admitted = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(admitted, 2, "{outcomes:?}");
    assert!(outcomes[..2].iter().all(Result::is_ok), "{outcomes:?}");
    for outcome in &outcomes[2..] {
        let refused = outcome.as_ref().unwrap_err();
        assert_eq!(refused.level, Level::Namespace, "{outcomes:?}");
        assert!(
            refused.retry_after <= Duration::from_secs(1),
            "{outcomes:?}"
        );
    }
    eprintln!("test took {:?}", started.elapsed());
}
