//! Shared by the tests that need a Redis Cluster: real `redis-server` processes in cluster mode
//! on free loopback ports, joined by `redis-cli --cluster create`, so that slot routing,
//! `MOVED`, replication and failover are Redis's own and not a mock's idea of them. Each
//! cluster owns a temporary directory (node configs and logs) and its processes; dropping it
//! kills them and removes the directory. Like `redis_server.rs`, a test that needs a missing
//! tool (`redis-server`, `redis-cli`, faketime) fails saying how to install it, never skips.
//!
//! Nodes can run under a wall-clock offset (libfaketime, see [`RedisClusterBuilder::clock_offset`])
//! because a store that trusts `TIME` must survive a failover to a replica whose clock
//! disagrees with its old master's.
//!
//! Every call here blocks, on a synchronous connection of its own: the harness observes, and
//! sharing the client under test's connections would mix its commands into what is observed.
//! An async test calls it between awaits.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Redis Cluster's fixed slot count.
const SLOTS: usize = 16384;

/// Node timeout in milliseconds: short, so that a killed master is judged failed and replaced
/// in a few seconds instead of the default 15+.
const NODE_TIMEOUT_MS: u64 = 1000;

/// How long a cluster may take to form. Forming takes about 2 s on an idle machine (redis-cli
/// sleeps between its steps); the margin is for a loaded two-core CI runner.
const FORM_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a failover may take: about 3 s with the node timeout above.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(15);

/// Ports handed out in this process, so that two clusters started by concurrent tests never
/// pick the same one between the free-port check and `redis-server` binding it.
static TAKEN_PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A node's role, as the node itself reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Master,
    Replica,
}

/// One live node, as seen from its own `CLUSTER NODES` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub port: u16,
    pub role: Role,
    pub id: String,
    /// The port of the master it replicates, for a replica.
    pub master_port: Option<u16>,
    /// The wall-clock offset it runs under, if any.
    pub clock_offset_secs: Option<i64>,
}

/// Chooses the cluster's shape and which nodes run under a clock offset before starting it:
/// the offset must be in the process's environment from its first instruction.
#[derive(Debug, Clone)]
pub struct RedisClusterBuilder {
    masters: usize,
    replicas_per_master: usize,
    clock_offsets: BTreeMap<usize, i64>,
}

impl RedisClusterBuilder {
    /// Runs node `node` (its index in start order) with its wall clock `secs` seconds off
    /// (negative: behind). Nodes `0..masters` become the masters; the others become replicas,
    /// and `redis-cli` (not the caller) picks which master each replicates: read
    /// [`RedisCluster::nodes`] afterwards.
    pub fn clock_offset(mut self, node: usize, secs: i64) -> Self {
        assert!(
            node < self.masters * (1 + self.replicas_per_master),
            "no node {node} in this cluster"
        );
        self.clock_offsets.insert(node, secs);
        self
    }

    /// Starts the processes, creates the cluster and waits until every node agrees that it is
    /// healthy; panics with redis-cli's output and the nodes' logs if it does not get there.
    pub fn start(self) -> RedisCluster {
        RedisCluster::launch(self)
    }
}

#[derive(Debug)]
struct Node {
    port: u16,
    id: String,
    clock_offset_secs: Option<i64>,
    child: Option<Child>,
}

/// What a node looked like just before the harness killed it: what `wait_for_failover` must
/// see moved, and to whom.
#[derive(Debug, Clone)]
struct Killed {
    id: String,
    slots: Vec<(u16, u16)>,
    replica_ids: Vec<String>,
}

/// A Redis Cluster of real processes on loopback, killed and its directory removed on drop.
#[derive(Debug)]
pub struct RedisCluster {
    dir: PathBuf,
    nodes: Vec<Node>,
    masters: usize,
    replicas_per_master: usize,
    killed: HashMap<u16, Killed>,
    /// `redis-cli --cluster create`'s output, for panic messages about a cluster that formed
    /// badly.
    create_output: String,
}

impl RedisCluster {
    /// `masters` masters with `replicas_per_master` replicas each, no clock offsets.
    pub fn start(masters: usize, replicas_per_master: usize) -> Self {
        Self::builder(masters, replicas_per_master).start()
    }

    /// For a cluster with some nodes under a clock offset.
    pub fn builder(masters: usize, replicas_per_master: usize) -> RedisClusterBuilder {
        // redis-cli refuses to create a cluster with fewer than three masters.
        assert!(masters >= 3, "Redis Cluster needs at least three masters");
        RedisClusterBuilder {
            masters,
            replicas_per_master,
            clock_offsets: BTreeMap::new(),
        }
    }

    fn launch(builder: RedisClusterBuilder) -> Self {
        require_tool(
            "redis-server",
            "this test needs redis-server: apt-get install redis-server (.ci/run does)",
        );
        require_tool(
            "redis-cli",
            "this test needs redis-cli: apt-get install redis-server (it brings redis-tools; \
             .ci/run does)",
        );
        if !builder.clock_offsets.is_empty() {
            // Before any process starts: fail on a missing faketime with nothing to clean up.
            faketime_library();
        }
        let total = builder.masters * (1 + builder.replicas_per_master);
        let dir = std::env::temp_dir().join(format!(
            "pacer-redis-cluster-{}-{:016x}",
            std::process::id(),
            random_u64()
        ));
        fs::create_dir_all(&dir).unwrap();
        let ports = free_port_pairs(total);
        let mut cluster = Self {
            dir,
            nodes: ports
                .iter()
                .enumerate()
                .map(|(index, &port)| Node {
                    port,
                    id: String::new(),
                    clock_offset_secs: builder.clock_offsets.get(&index).copied(),
                    child: None,
                })
                .collect(),
            masters: builder.masters,
            replicas_per_master: builder.replicas_per_master,
            killed: HashMap::new(),
            create_output: String::new(),
        };
        for index in 0..total {
            cluster.spawn(index);
        }
        for index in 0..total {
            cluster.wait_for_ping(index);
            let id: String = cluster.query(cluster.nodes[index].port, &["CLUSTER", "MYID"]);
            cluster.nodes[index].id = id;
        }
        cluster.create();
        cluster.wait_until_formed();
        cluster
    }

    fn spawn(&mut self, index: usize) {
        let port = self.nodes[index].port;
        let dir = self.dir.to_str().unwrap().to_owned();
        let mut command = Command::new("redis-server");
        command.args(["--port", &port.to_string(), "--bind", "127.0.0.1"]);
        command.args(["--save", "", "--appendonly", "no", "--dir", &dir]);
        command.args(["--logfile", &format!("{dir}/redis-{port}.log")]);
        command.args(["--cluster-enabled", "yes"]);
        command.args(["--cluster-config-file", &format!("{dir}/nodes-{port}.conf")]);
        command.args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()]);
        // A replica refuses to stand for election when its link to the master has been down
        // longer than node-timeout * factor + repl-ping-replica-period (20 s here): a test that
        // stalls or restarts nodes could leave a shard with no candidate. 0: always stand.
        command.args(["--cluster-replica-validity-factor", "0"]);
        // By default one failed master takes the whole cluster down (CLUSTERDOWN on every
        // slot) until its replica takes over; a store over a cluster should see only that
        // shard's keys fail, as with a production cluster configured for availability.
        command.args(["--cluster-require-full-coverage", "no"]);
        // A master waits 5 s by default for more replicas to share a diskless full sync;
        // every replica here (and every restarted node) would spend those 5 s unsynced.
        command.args(["--repl-diskless-sync-delay", "0"]);
        if let Some(secs) = self.nodes[index].clock_offset_secs {
            // Redis is linked against jemalloc, whose first allocation reads the clock while
            // holding its init lock; libfaketime, initialising inside that call, allocates
            // (dlsym's error text for a symbol it probes) and the process deadlocks before
            // `main`. Preloading libc after libfaketime puts glibc's malloc ahead of jemalloc's
            // for the whole process, so no allocation goes through jemalloc (INFO's allocator
            // fields then describe an idle jemalloc arena).
            let preload = format!("{} libc.so.6", faketime_library().display());
            command.env("LD_PRELOAD", preload);
            command.env("FAKETIME", format!("{secs:+}"));
            // Only the wall clock moves: Redis's timers and the cluster's failure detector run
            // on the monotonic clock, as on a real host whose NTP is off.
            command.env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.nodes[index].child = Some(child);
    }

    fn wait_for_ping(&mut self, index: usize) {
        let port = self.nodes[index].port;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.try_connection(port).is_some_and(|mut con| {
                redis::cmd("PING")
                    .query::<String>(&mut con)
                    .is_ok_and(|pong| pong == "PONG")
            }) {
                return;
            }
            let exited = self.nodes[index]
                .child
                .as_mut()
                .and_then(|child| child.try_wait().unwrap());
            let offset = match self.nodes[index].clock_offset_secs {
                Some(secs) => format!(" (under faketime {secs:+})"),
                None => String::new(),
            };
            assert!(
                exited.is_none(),
                "redis-server on port {port}{offset} exited ({}) before answering PING; \
                 its log:\n{}",
                exited.unwrap(),
                self.log_tail(port)
            );
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port}{offset} did not answer PING in 10 s; its log:\n{}",
                self.log_tail(port)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn create(&mut self) {
        let out_path = self.dir.join("cluster-create.out");
        let out = fs::File::create(&out_path).unwrap();
        let mut command = Command::new("redis-cli");
        command.arg("--cluster").arg("create");
        for node in &self.nodes {
            command.arg(format!("127.0.0.1:{}", node.port));
        }
        command.args([
            "--cluster-replicas",
            &self.replicas_per_master.to_string(),
            "--cluster-yes",
        ]);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        // redis-cli waits forever for the nodes to meet when their bus ports are unreachable.
        let deadline = Instant::now() + FORM_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        self.create_output = fs::read_to_string(&out_path).unwrap_or_default();
        assert!(
            status.is_some_and(|status| status.success()),
            "redis-cli --cluster create {}; its output:\n{}",
            match status {
                Some(status) => format!("failed ({status})"),
                None => format!("did not finish in {FORM_TIMEOUT:?}"),
            },
            self.create_output
        );
    }

    /// Waits until every node knows every other, agrees on which are masters and replicas,
    /// sees all slots served, and every replica's replication link is up (so `WAIT` works
    /// from the first write).
    fn wait_until_formed(&self) {
        let deadline = Instant::now() + FORM_TIMEOUT;
        loop {
            let problem = self.cluster_problem().or_else(|| {
                self.nodes
                    .iter()
                    .find_map(|node| self.formation_problem(node.port))
            });
            let Some(problem) = problem else { return };
            assert!(
                Instant::now() < deadline,
                "the cluster did not form in {FORM_TIMEOUT:?}: {problem}\n\
                 redis-cli --cluster create said:\n{}\n{}",
                self.create_output,
                self.all_logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the node on `port` does not yet know of the cluster just created: every node,
    /// and which of them are masters and replicas.
    fn formation_problem(&self, port: u16) -> Option<String> {
        let total = self.nodes.len();
        let replicas = self.masters * self.replicas_per_master;
        let known = self.info_field(port, &["CLUSTER", "INFO"], "cluster_known_nodes");
        if known.as_deref() != Some(total.to_string().as_str()) {
            return Some(format!("port {port} knows {known:?} nodes of {total}"));
        }
        let Some(lines) = self.cluster_nodes(port) else {
            return Some(format!("CLUSTER NODES on port {port} failed"));
        };
        let masters = lines
            .iter()
            .filter(|line| line.is_master() && !line.slots.is_empty())
            .count();
        let slaves = lines.iter().filter(|line| line.is_replica()).count();
        (masters != self.masters || slaves != replicas).then(|| {
            format!(
                "port {port} sees {masters} masters with slots and {slaves} replicas, \
                 not {} and {replicas}",
                self.masters
            )
        })
    }

    /// Why the live nodes are not (yet) a healthy cluster, or `None`: each says
    /// `cluster_state:ok` with all slots served, none sees a live node as failing, every slot
    /// has a live master in every node's view, and every live replica's link is up.
    fn cluster_problem(&self) -> Option<String> {
        let live: HashSet<u16> = self.live_ports().into_iter().collect();
        for &port in &live {
            let info = match self.try_query::<String>(port, &["CLUSTER", "INFO"]) {
                Ok(info) => info,
                Err(err) => return Some(format!("CLUSTER INFO on port {port}: {err}")),
            };
            for (field, want) in [
                ("cluster_state", "ok".to_owned()),
                ("cluster_slots_assigned", SLOTS.to_string()),
                ("cluster_slots_ok", SLOTS.to_string()),
            ] {
                let got = field_of(&info, field);
                if got != Some(want.as_str()) {
                    return Some(format!("port {port} says {field}:{}", got.unwrap_or("?")));
                }
            }
            let Some(lines) = self.cluster_nodes(port) else {
                return Some(format!("CLUSTER NODES on port {port} failed"));
            };
            for line in &lines {
                if live.contains(&line.port)
                    && line
                        .flags
                        .iter()
                        .any(|flag| flag != "myself" && flag != "master" && flag != "slave")
                {
                    return Some(format!(
                        "port {port} flags port {} {:?}",
                        line.port, line.flags
                    ));
                }
            }
            let mut covered = 0;
            for line in lines.iter().filter(|line| line.is_master()) {
                let slots: usize = line
                    .slots
                    .iter()
                    .map(|(lo, hi)| usize::from(hi - lo) + 1)
                    .sum();
                if slots > 0 && !live.contains(&line.port) {
                    return Some(format!(
                        "port {port} still sees dead port {} serving {slots} slots",
                        line.port
                    ));
                }
                covered += slots;
            }
            if covered != SLOTS {
                return Some(format!("port {port} sees {covered} slots served"));
            }
            let Some(me) = lines
                .iter()
                .find(|line| line.flags.iter().any(|flag| flag == "myself"))
            else {
                return Some(format!("CLUSTER NODES on port {port} has no myself line"));
            };
            if me.is_replica() {
                let link = self.info_field(port, &["INFO", "replication"], "master_link_status");
                if link.as_deref() != Some("up") {
                    return Some(format!(
                        "replica on port {port} has master_link_status:{link:?}"
                    ));
                }
            }
        }
        None
    }

    /// The node in start order `index`'s port: nodes `0..masters` were created as masters.
    pub fn port_of(&self, index: usize) -> u16 {
        self.nodes[index].port
    }

    /// `redis://127.0.0.1:P/` of every live master: what a cluster client is seeded with.
    pub fn seed_urls(&self) -> Vec<String> {
        self.master_ports()
            .into_iter()
            .map(|port| format!("redis://127.0.0.1:{port}/"))
            .collect()
    }

    /// Every live node, in start order, each as it describes itself.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        let ports_by_id: HashMap<&str, u16> = self
            .nodes
            .iter()
            .map(|node| (node.id.as_str(), node.port))
            .collect();
        self.nodes
            .iter()
            .filter(|node| node.child.is_some())
            .map(|node| {
                let lines = self
                    .cluster_nodes(node.port)
                    .unwrap_or_else(|| panic!("CLUSTER NODES on port {} failed", node.port));
                let me = lines
                    .iter()
                    .find(|line| line.flags.iter().any(|flag| flag == "myself"))
                    .unwrap();
                NodeInfo {
                    port: node.port,
                    role: if me.is_replica() {
                        Role::Replica
                    } else {
                        Role::Master
                    },
                    id: me.id.clone(),
                    master_port: me
                        .master_id
                        .as_deref()
                        .and_then(|id| ports_by_id.get(id).copied()),
                    clock_offset_secs: node.clock_offset_secs,
                }
            })
            .collect()
    }

    /// Ports of the live nodes that say they are masters.
    pub fn master_ports(&self) -> Vec<u16> {
        self.nodes()
            .into_iter()
            .filter(|node| node.role == Role::Master)
            .map(|node| node.port)
            .collect()
    }

    /// The port of the master serving `key`'s slot, by `CLUSTER KEYSLOT` and `CLUSTER SLOTS`
    /// as the live nodes see it; they must agree (waited for briefly, as gossip converges).
    pub fn master_for_key(&self, key: &str) -> u16 {
        let live = self.live_ports();
        let slot: u16 = self.query(live[0], &["CLUSTER", "KEYSLOT", key]);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let views: Vec<Option<u16>> = live
                .iter()
                .map(|&port| {
                    self.slot_ranges(port)
                        .into_iter()
                        .find(|&(lo, hi, _)| (lo..=hi).contains(&slot))
                        .map(|(_, _, master)| master)
                })
                .collect();
            let agreed = views
                .first()
                .filter(|first| views.iter().all(|view| view == *first));
            if let Some(&Some(master)) = agreed {
                return master;
            }
            assert!(
                Instant::now() < deadline,
                "the nodes {live:?} disagree on who serves slot {slot} of {key:?}: {views:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A key (`{prefix}:N`) whose slot the master on `port` serves: for a test that needs data
    /// on a chosen shard.
    pub fn key_on(&self, port: u16, prefix: &str) -> String {
        let ranges = self.slot_ranges(port);
        (0..100_000)
            .map(|n| format!("{prefix}:{n}"))
            .find(|key| {
                let slot: u16 = self.query(port, &["CLUSTER", "KEYSLOT", key]);
                ranges
                    .iter()
                    .any(|&(lo, hi, master)| master == port && (lo..=hi).contains(&slot))
            })
            .unwrap_or_else(|| panic!("port {port} serves no slot"))
    }

    /// Kills (SIGKILL: no goodbye to the cluster) the master serving `key`; returns its port.
    pub fn kill_master_for_key(&mut self, key: &str) -> u16 {
        let port = self.master_for_key(key);
        self.kill_port(port);
        port
    }

    /// Kills the node on `port` with SIGKILL, first noting which slots it served and which
    /// replicas it had, for `wait_for_failover`.
    pub fn kill_port(&mut self, port: u16) {
        let index = self.index_of(port);
        if let Some(lines) = self.cluster_nodes(port) {
            let me = lines
                .iter()
                .find(|line| line.flags.iter().any(|flag| flag == "myself"))
                .unwrap();
            let killed = Killed {
                id: me.id.clone(),
                slots: me.slots.clone(),
                replica_ids: lines
                    .iter()
                    .filter(|line| line.master_id.as_deref() == Some(me.id.as_str()))
                    .map(|line| line.id.clone())
                    .collect(),
            };
            self.killed.insert(port, killed);
        }
        if let Some(mut child) = self.nodes[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until one of the replicas of the master killed on `old_port` serves all the slots
    /// that master served, in every surviving node's view, and the survivors are a healthy
    /// cluster again; returns the new master's port. Panics after 15 s with the survivors'
    /// `CLUSTER NODES` and logs.
    pub fn wait_for_failover(&self, old_port: u16) -> u16 {
        let killed = self
            .killed
            .get(&old_port)
            .unwrap_or_else(|| panic!("port {old_port} was not killed through the harness"));
        assert!(
            !killed.slots.is_empty(),
            "port {old_port} served no slots when it was killed: there is nothing to fail over"
        );
        let ports_by_id: HashMap<&str, u16> = self
            .nodes
            .iter()
            .map(|node| (node.id.as_str(), node.port))
            .collect();
        let candidates: Vec<u16> = killed
            .replica_ids
            .iter()
            .filter_map(|id| ports_by_id.get(id.as_str()).copied())
            .filter(|&port| self.is_live(port))
            .collect();
        assert!(
            !candidates.is_empty(),
            "port {old_port} had no live replica when it was killed: nothing can take over"
        );
        let deadline = Instant::now() + FAILOVER_TIMEOUT;
        loop {
            let problem = self.failover_problem(old_port, killed, &candidates);
            match problem {
                Ok(new_master) => return new_master,
                Err(problem) => assert!(
                    Instant::now() < deadline,
                    "no failover from port {old_port} to one of {candidates:?} in \
                     {FAILOVER_TIMEOUT:?}: {problem}\n{}\n{}",
                    self.survivors_views(),
                    self.all_logs()
                ),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn failover_problem(
        &self,
        old_port: u16,
        killed: &Killed,
        candidates: &[u16],
    ) -> Result<u16, String> {
        let mut new_master = None;
        for port in self.live_ports() {
            let ranges = self.slot_ranges(port);
            for &(lo, hi) in &killed.slots {
                let owners: HashSet<u16> = ranges
                    .iter()
                    .filter(|&&(a, b, _)| a <= hi && lo <= b)
                    .map(|&(_, _, master)| master)
                    .collect();
                let covered: usize = ranges
                    .iter()
                    .filter(|&&(a, b, _)| a <= hi && lo <= b)
                    .map(|&(a, b, _)| usize::from(b.min(hi) - a.max(lo)) + 1)
                    .sum();
                if covered != usize::from(hi - lo) + 1 || owners.len() != 1 {
                    return Err(format!(
                        "port {port} sees slots {lo}-{hi} served by {owners:?} ({covered} covered)"
                    ));
                }
                let owner = *owners.iter().next().unwrap();
                if owner == old_port || !candidates.contains(&owner) {
                    return Err(format!(
                        "port {port} sees slots {lo}-{hi} served by {owner}"
                    ));
                }
                if new_master.is_some_and(|master| master != owner) {
                    return Err(format!(
                        "the survivors disagree on who took over slots {lo}-{hi}"
                    ));
                }
                new_master = Some(owner);
            }
        }
        let new_master = new_master.ok_or("no survivor answered")?;
        let role: Vec<redis::Value> = self
            .try_query(new_master, &["ROLE"])
            .map_err(|err| err.to_string())?;
        let role: String = redis::from_redis_value(&role[0]).map_err(|err| err.to_string())?;
        if role != "master" {
            return Err(format!("port {new_master} still says ROLE {role}"));
        }
        match self.cluster_problem() {
            Some(problem) => Err(problem),
            None => Ok(new_master),
        }
    }

    /// Starts the node on `port` again with its old config file (same id, same clock offset)
    /// and waits until the cluster is healthy with it; a master failed over meanwhile rejoins
    /// as a replica of its replacement.
    pub fn restart_port(&mut self, port: u16) {
        let index = self.index_of(port);
        assert!(
            self.nodes[index].child.is_none(),
            "port {port} is still running"
        );
        self.spawn(index);
        self.wait_for_ping(index);
        self.killed.remove(&port);
        let deadline = Instant::now() + FAILOVER_TIMEOUT;
        while let Some(problem) = self.cluster_problem() {
            assert!(
                Instant::now() < deadline,
                "port {port} did not rejoin in {FAILOVER_TIMEOUT:?}: {problem}\n{}\n{}",
                self.survivors_views(),
                self.all_logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `INFO commandstats` of the node on `port`: command name (`get`, `evalsha`,
    /// `cluster|info`) to calls since start or the last `reset_stats`. Note the harness's own
    /// calls (`info`, `cluster|*`, `client|setinfo`, `ping`) count too.
    pub fn commandstats(&self, port: u16) -> HashMap<String, u64> {
        let info: String = self.query(port, &["INFO", "commandstats"]);
        info.lines()
            .filter_map(|line| {
                let (name, stats) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = stats
                    .split(',')
                    .find_map(|stat| stat.strip_prefix("calls="))?
                    .parse()
                    .ok()?;
                Some((name.to_owned(), calls))
            })
            .collect()
    }

    /// `CONFIG RESETSTAT` on every live node, so that a test counts only its own commands.
    pub fn reset_stats(&self) {
        for port in self.live_ports() {
            let _: () = self.query(port, &["CONFIG", "RESETSTAT"]);
        }
    }

    /// `TIME` of the node on `port`, in microseconds: its (possibly offset) wall clock.
    pub fn time_micros(&self, port: u16) -> u64 {
        let (secs, micros): (u64, u64) = self.query(port, &["TIME"]);
        secs * 1_000_000 + micros
    }

    /// `FLUSHALL` on every live master (replicas follow), for tests sharing a cluster.
    pub fn flushall(&self) {
        for port in self.master_ports() {
            let _: () = self.query(port, &["FLUSHALL"]);
        }
    }

    /// A plain synchronous connection to one node, for looking at what it holds (it answers
    /// `MOVED` for keys it does not serve).
    pub fn connection(&self, port: u16) -> redis::Connection {
        self.try_connection(port)
            .unwrap_or_else(|| panic!("cannot connect to the node on port {port}"))
    }

    /// One command on one node; panics on an error reply.
    pub fn query<T: redis::FromRedisValue>(&self, port: u16, args: &[&str]) -> T {
        self.try_query(port, args)
            .unwrap_or_else(|err| panic!("{args:?} on port {port}: {err}"))
    }

    fn try_query<T: redis::FromRedisValue>(
        &self,
        port: u16,
        args: &[&str],
    ) -> redis::RedisResult<T> {
        let mut con = self.try_connection(port).ok_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::IoError, "cannot connect"))
        })?;
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        command.query(&mut con)
    }

    fn try_connection(&self, port: u16) -> Option<redis::Connection> {
        let con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .ok()?
            .get_connection_with_timeout(Duration::from_secs(1))
            .ok()?;
        // A node stopped mid-test must not hang the harness.
        con.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        con.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
        Some(con)
    }

    fn info_field(&self, port: u16, command: &[&str], field: &str) -> Option<String> {
        let info: String = self.try_query(port, command).ok()?;
        field_of(&info, field).map(str::to_owned)
    }

    fn cluster_nodes(&self, port: u16) -> Option<Vec<NodeLine>> {
        let text: String = self.try_query(port, &["CLUSTER", "NODES"]).ok()?;
        Some(text.lines().filter_map(NodeLine::parse).collect())
    }

    /// `CLUSTER SLOTS` on `port`: (first slot, last slot, master port) per range.
    fn slot_ranges(&self, port: u16) -> Vec<(u16, u16, u16)> {
        let Ok(ranges) = self.try_query::<Vec<Vec<redis::Value>>>(port, &["CLUSTER", "SLOTS"])
        else {
            return Vec::new();
        };
        ranges
            .iter()
            .filter_map(|range| {
                let lo: u16 = redis::from_redis_value(range.first()?).ok()?;
                let hi: u16 = redis::from_redis_value(range.get(1)?).ok()?;
                let master: Vec<redis::Value> = redis::from_redis_value(range.get(2)?).ok()?;
                let master_port: u16 = redis::from_redis_value(master.get(1)?).ok()?;
                Some((lo, hi, master_port))
            })
            .collect()
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|node| node.child.is_some())
            .map(|node| node.port)
            .collect()
    }

    fn is_live(&self, port: u16) -> bool {
        self.nodes[self.index_of(port)].child.is_some()
    }

    fn index_of(&self, port: u16) -> usize {
        self.nodes
            .iter()
            .position(|node| node.port == port)
            .unwrap_or_else(|| panic!("no node of this cluster on port {port}"))
    }

    fn survivors_views(&self) -> String {
        self.live_ports()
            .into_iter()
            .map(|port| {
                let view: String = self
                    .try_query(port, &["CLUSTER", "NODES"])
                    .unwrap_or_else(|err| err.to_string());
                format!("CLUSTER NODES on port {port}:\n{view}")
            })
            .collect()
    }

    fn log_tail(&self, port: u16) -> String {
        let log = fs::read_to_string(self.dir.join(format!("redis-{port}.log")))
            .unwrap_or_else(|err| format!("(no log: {err})"));
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn all_logs(&self) -> String {
        self.nodes
            .iter()
            .map(|node| {
                format!(
                    "--- log of port {}:\n{}\n",
                    node.port,
                    self.log_tail(node.port)
                )
            })
            .collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
        let mut taken = TAKEN_PORTS
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(taken) = taken.as_mut() {
            for node in &self.nodes {
                taken.remove(&node.port);
            }
        }
    }
}

/// One line of `CLUSTER NODES`:
/// `<id> <ip:port@cport> <flags> <master-id|-> <ping> <pong> <epoch> <link> <slot>...`.
#[derive(Debug)]
struct NodeLine {
    id: String,
    port: u16,
    flags: Vec<String>,
    master_id: Option<String>,
    slots: Vec<(u16, u16)>,
}

impl NodeLine {
    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let address = fields.get(1)?.split('@').next()?;
        let port = address.rsplit_once(':')?.1.parse().ok()?;
        let slots = fields
            .iter()
            .skip(8)
            // `[slot->-id]` entries are migrations in progress, not served slots.
            .filter(|slot| !slot.starts_with('['))
            .filter_map(|slot| match slot.split_once('-') {
                Some((lo, hi)) => Some((lo.parse().ok()?, hi.parse().ok()?)),
                None => {
                    let slot = slot.parse().ok()?;
                    Some((slot, slot))
                }
            })
            .collect();
        Some(Self {
            id: (*fields.first()?).to_owned(),
            port,
            flags: fields.get(2)?.split(',').map(str::to_owned).collect(),
            master_id: fields
                .get(3)
                .filter(|id| **id != "-")
                .map(|id| (*id).to_owned()),
            slots,
        })
    }

    fn is_master(&self) -> bool {
        self.flags.iter().any(|flag| flag == "master")
    }

    fn is_replica(&self) -> bool {
        self.flags.iter().any(|flag| flag == "slave")
    }
}

fn field_of<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.trim()
            .strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
    })
}

fn require_tool(tool: &str, install: &str) {
    let version = Command::new(tool).arg("--version").output();
    assert!(version.is_ok_and(|out| out.status.success()), "{install}");
}

/// libfaketime's library, as Debian's package lists it (`dpkg -L libfaketime`), or where a
/// source install puts it.
fn faketime_library() -> PathBuf {
    const INSTALL: &str = "this test needs faketime: apt-get install faketime (it brings \
                           libfaketime; .ci/run installs the pinned version)";
    let listed = Command::new("dpkg")
        .args(["-L", "libfaketime"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find(|line| line.ends_with("/libfaketime.so.1"))
                .map(PathBuf::from)
        });
    listed
        .into_iter()
        .chain(
            [
                "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                "/usr/lib/faketime/libfaketime.so.1",
                "/usr/local/lib/faketime/libfaketime.so.1",
            ]
            .map(PathBuf::from),
        )
        .find(|path| Path::new(path).is_file())
        .expect(INSTALL)
}

/// `count` ports `P` such that `P` and its cluster bus port `P + 10000` are free, below the
/// kernel's ephemeral range (32768 and up) so that no outgoing connection of another test
/// takes one between this check and `redis-server` binding it.
fn free_port_pairs(count: usize) -> Vec<u16> {
    let mut taken = TAKEN_PORTS
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let taken = taken.get_or_insert_with(HashSet::new);
    let mut ports = Vec::with_capacity(count);
    for _ in 0..10_000 {
        if ports.len() == count {
            break;
        }
        let port = 10_000 + u16::try_from(random_u64() % 12_000).unwrap();
        if taken.contains(&port) {
            continue;
        }
        let free = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free(port) && free(port + 10_000) {
            taken.insert(port);
            ports.push(port);
        }
    }
    assert_eq!(
        ports.len(),
        count,
        "no {count} free port pairs in 10000-32000"
    );
    ports
}

fn random_u64() -> u64 {
    RandomState::new().build_hasher().finish()
}
