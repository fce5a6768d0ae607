//! Redis Cluster processes owned by a test: three masters, with or without a replica
//! each, and failover on demand (kill the master serving a key, wait until its replica
//! serves the slot).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::port::free_cluster_port;
use crate::server::{RedisServer, binary, not_installed};
use crate::{Error, Result};

const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);

/// A Redis Cluster of three masters (`redis-cli --cluster create`), optionally with one
/// replica each, on loopback ports below 55535 whose bus ports (`port + 10000`) are free
/// too. Returned once every node reports `cluster_state:ok` (and every replica is in
/// sync with its master); stopped on drop.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    replicas: usize,
}

/// What [`RedisCluster::fail_over`] saw: which node died, which took over, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failover {
    /// The hash slot of the key whose master was killed.
    pub slot: u16,
    /// Index (in [`RedisCluster::nodes`]) of the master that was killed.
    pub killed: usize,
    /// Index of the replica that now serves the slot.
    pub promoted: usize,
    /// When the master was killed (SIGKILL, like a crash).
    pub killed_at: Instant,
    /// When every surviving node first agreed the promoted replica serves the slot and
    /// the cluster was `ok` again (measured by polling every 10 ms).
    pub promoted_at: Instant,
}

/// A master killed by [`RedisCluster::kill_master_of`], its replica not yet promoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Killed {
    /// The hash slot of the key whose master was killed.
    pub slot: u16,
    /// Index (in [`RedisCluster::nodes`]) of the master that was killed.
    pub node: usize,
    /// When it was killed.
    pub at: Instant,
}

impl Failover {
    /// Time from the kill to the promotion, as the cluster itself saw it.
    pub fn promotion_time(&self) -> Duration {
        self.promoted_at - self.killed_at
    }
}

impl RedisCluster {
    /// Three cluster-enabled masters and no replica (`cluster-node-timeout` 2 s), once
    /// every node sees all slots served (at most 30 s).
    pub fn start() -> Result<Self> {
        Self::start_with(0, Duration::from_millis(2_000), &[])
    }

    /// Three masters with one replica each (3 + 3), `cluster-node-timeout` 1.5 s so that
    /// a failover completes in a few seconds; returned once the cluster is `ok` and
    /// every replica is in sync with its master (at most 30 s).
    pub fn start_with_replicas() -> Result<Self> {
        Self::start_with(1, Duration::from_millis(1_500), &[])
    }

    /// `3 × (1 + replicas)` nodes with the given `cluster-node-timeout` (a failure is
    /// suspected after it, and a failover takes about twice it) and more configuration
    /// for every node (`["--cluster-require-full-coverage", "no"]`, say).
    pub fn start_with(replicas: usize, node_timeout: Duration, config: &[&str]) -> Result<Self> {
        let timeout = node_timeout.as_millis().max(100).to_string();
        let mut extra = vec![
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            &timeout,
        ];
        extra.extend_from_slice(config);
        let nodes = (0..3 * (1 + replicas))
            .map(|_| RedisServer::start_with(free_cluster_port, &extra))
            .collect::<Result<Vec<_>>>()?;
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new(binary("REDIS_CLI", "redis-cli"))
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| not_installed("redis-cli", e))?;
        if !out.status.success() {
            return Err(Error::new(format!(
                "redis-cli --cluster create {} failed ({}):\n{}{}",
                addrs.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let cluster = Self { nodes, replicas };
        cluster.wait_ok()?;
        Ok(cluster)
    }

    fn wait_ok(&self) -> Result<()> {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        let known = format!("cluster_known_nodes:{}", self.nodes.len());
        loop {
            let infos: Vec<String> = self
                .nodes
                .iter()
                .map(|n| {
                    let cluster = n.cmd(&["CLUSTER", "INFO"]);
                    let replication = n.cmd(&["INFO", "replication"]);
                    format!(
                        "{}\n{}",
                        cluster.unwrap_or_else(|e| e.to_string()),
                        replication.unwrap_or_else(|e| e.to_string())
                    )
                })
                .collect();
            let ok = infos.iter().all(|i| {
                i.contains("cluster_state:ok")
                    && i.contains("cluster_slots_ok:16384")
                    && i.contains(&known)
            });
            let synced = infos
                .iter()
                .filter(|i| i.contains("role:slave") && i.contains("master_link_status:up"))
                .count();
            if ok && synced == 3 * self.replicas {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::new(format!(
                    "the cluster did not reach cluster_state:ok with {} replicas in sync \
                     within {CLUSTER_TIMEOUT:?}:\n{}",
                    3 * self.replicas,
                    infos.join("\n---\n")
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The nodes' URLs (`redis://127.0.0.1:<port>/`), to seed a cluster client;
    /// replicas included, so a client can still find the cluster after a failover.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes (masters and replicas, in no promised order), to kill one or read its
    /// statistics.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The hash slot of `key` (asked of a running node).
    pub fn slot(&self, key: &str) -> Result<u16> {
        let reply = self.any_running()?.cmd(&["CLUSTER", "KEYSLOT", key])?;
        reply
            .parse()
            .map_err(|_| Error::new(format!("CLUSTER KEYSLOT answered {reply:?}")))
    }

    /// Index (in [`nodes`](Self::nodes)) of the master serving `slot` now, as every
    /// running node sees it; `None` while they disagree or while the slot's master is
    /// failed or not running.
    pub fn master_of_slot(&self, slot: u16) -> Option<usize> {
        let mut owner = None;
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            let table = node.cmd(&["CLUSTER", "NODES"]).ok()?;
            let port = slot_owner(&table, slot)?;
            let index = self.nodes.iter().position(|n| n.port() == port)?;
            if !self.nodes[index].is_running() || owner.is_some_and(|o| o != index) {
                return None;
            }
            owner = Some(index);
        }
        owner
    }

    /// Kills (SIGKILL) the master serving `key` and waits, at most `timeout`, until its
    /// replica serves the slot (see [`kill_master_of`](Self::kill_master_of) and
    /// [`wait_promotion`](Self::wait_promotion)). Needs a cluster with replicas.
    pub fn fail_over(&self, key: &str, timeout: Duration) -> Result<Failover> {
        let killed = self.kill_master_of(key)?;
        self.wait_promotion(&killed, timeout)
    }

    /// Kills (SIGKILL, like a crash) the master serving `key`, and returns at once.
    pub fn kill_master_of(&self, key: &str) -> Result<Killed> {
        let slot = self.slot(key)?;
        let node = self
            .master_of_slot(slot)
            .ok_or_else(|| Error::new(format!("no agreed master for slot {slot}")))?;
        self.nodes[node].kill();
        Ok(Killed {
            slot,
            node,
            at: Instant::now(),
        })
    }

    /// Waits, at most `timeout`, until a replica serves the slot of a killed master:
    /// every running node agrees on the new master and reports `cluster_state:ok`.
    pub fn wait_promotion(&self, killed: &Killed, timeout: Duration) -> Result<Failover> {
        let deadline = killed.at + timeout;
        loop {
            if let Some(promoted) = self
                .master_of_slot(killed.slot)
                .filter(|&m| m != killed.node)
                && self.running_nodes_ok()
            {
                return Ok(Failover {
                    slot: killed.slot,
                    killed: killed.node,
                    promoted,
                    killed_at: killed.at,
                    promoted_at: Instant::now(),
                });
            }
            if Instant::now() > deadline {
                return Err(Error::new(format!(
                    "no replica took over slot {} within {timeout:?} after its master \
                     (port {}) was killed",
                    killed.slot,
                    self.nodes[killed.node].port()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn running_nodes_ok(&self) -> bool {
        self.nodes.iter().filter(|n| n.is_running()).all(|n| {
            n.cmd(&["CLUSTER", "INFO"])
                .is_ok_and(|i| i.contains("cluster_state:ok"))
        })
    }

    fn any_running(&self) -> Result<&RedisServer> {
        self.nodes
            .iter()
            .find(|n| n.is_running())
            .ok_or_else(|| Error::new("no cluster node is running"))
    }
}

/// The port of the master serving `slot` in a `CLUSTER NODES` table, if it is not
/// flagged failed. Lines read `<id> <ip:port@bus> <flags> <master> <ping> <pong>
/// <epoch> <link> <slot or range>...`.
fn slot_owner(table: &str, slot: u16) -> Option<u16> {
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let flags = *fields.get(2)?;
        if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
            return None;
        }
        let serves = fields.iter().skip(8).any(|range| {
            let (lo, hi) = range.split_once('-').unwrap_or((range, range));
            matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if (lo..=hi).contains(&slot))
        });
        let addr = fields.get(1)?.split('@').next()?;
        serves.then(|| addr.rsplit(':').next()?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::slot_owner;

    #[test]
    fn the_slot_owner_is_the_unfailed_master_whose_ranges_hold_it() {
        let table = "\
a 127.0.0.1:7000@17000 master,fail - 0 0 1 disconnected 0-5460
b 127.0.0.1:7001@17001 myself,master - 0 0 2 connected 5461-10922
c 127.0.0.1:7002@17002 master - 0 0 3 connected 10923-16383 [77->-x]
d 127.0.0.1:7003@17003 master - 0 0 7 connected 0-5460
e 127.0.0.1:7004@17004 slave b 0 0 2 connected";
        assert_eq!(slot_owner(table, 0), Some(7003));
        assert_eq!(slot_owner(table, 5461), Some(7001));
        assert_eq!(slot_owner(table, 16383), Some(7002));
        assert_eq!(slot_owner("", 1), None);
    }
}
