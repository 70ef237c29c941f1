//! In-process three-node clusters on a simulated network that drops, delays and partitions
//! messages (one way and both ways): replication, failover, catch-up, membership changes,
//! and the rule that no acknowledged write is ever lost.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use gantry_store::sim::SimNetwork;
use gantry_store::{Consistency, NodeConfig, Op, RangeRequest, StoreError, StoreNode, Txn, TxnOutcome};
use tempfile::TempDir;

struct Cluster {
    net: SimNetwork,
    dir: TempDir,
    nodes: BTreeMap<u64, StoreNode>,
    snapshot_every: u64,
}

fn addr(id: u64) -> String {
    format!("node-{id}")
}

impl Cluster {
    async fn start(n: u64) -> Cluster {
        Cluster::start_with(n, 20_000).await
    }

    async fn start_with(n: u64, snapshot_every: u64) -> Cluster {
        let mut c = Cluster {
            net: SimNetwork::new(),
            dir: TempDir::new().expect("a temporary directory"),
            nodes: BTreeMap::new(),
            snapshot_every,
        };
        for id in 1..=n {
            c.open(id).await;
        }
        let members = (1..=n).map(|id| (id, addr(id))).collect();
        c.nodes[&1].bootstrap(members).await.expect("bootstrap");
        c.leader().await;
        c
    }

    fn config(&self, id: u64) -> NodeConfig {
        let mut cfg = NodeConfig::new(id, addr(id), self.dir.path().join(format!("n{id}")));
        cfg.heartbeat = Duration::from_millis(50);
        cfg.election_timeout = (Duration::from_millis(200), Duration::from_millis(400));
        cfg.request_timeout = Duration::from_secs(2);
        cfg.snapshot_every = self.snapshot_every;
        cfg.logs_to_keep = 10;
        cfg
    }

    async fn open(&mut self, id: u64) -> StoreNode {
        let node = StoreNode::open(self.config(id), self.net.transport(&addr(id)))
            .await
            .expect("open node");
        self.net.register(&addr(id), node.handler());
        self.nodes.insert(id, node.clone());
        node
    }

    /// Stops a node as a crash would: it vanishes from the network and keeps only what it
    /// had made durable.
    async fn crash(&mut self, id: u64) {
        self.net.unregister(&addr(id));
        if let Some(node) = self.nodes.remove(&id) {
            node.shutdown().await;
        }
    }

    fn node(&self, id: u64) -> &StoreNode {
        &self.nodes[&id]
    }

    /// Waits until the running nodes agree on one leader and returns it.
    async fn leader(&self) -> u64 {
        self.leader_among(&self.nodes.keys().copied().collect::<Vec<_>>()).await
    }

    async fn leader_among(&self, ids: &[u64]) -> u64 {
        wait_for(Duration::from_secs(10), "the nodes to agree on a leader", || {
            let leaders: BTreeSet<Option<u64>> = ids.iter().map(|id| self.nodes[id].leader().map(|(l, _)| l)).collect();
            match leaders.into_iter().collect::<Vec<_>>().as_slice() {
                [Some(l)] if ids.contains(l) => Some(*l),
                _ => None,
            }
        })
        .await
    }

    async fn keys(&self, id: u64, prefix: &str, consistency: Consistency) -> Result<Vec<String>, StoreError> {
        let r = self
            .node(id)
            .range(
                &RangeRequest {
                    prefix: prefix.into(),
                    ..Default::default()
                },
                consistency,
            )
            .await?;
        Ok(r.kvs.into_iter().map(|kv| kv.key).collect())
    }
}

/// Polls `f` until it returns Some, failing the test with `what` after `timeout`.
async fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn key(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:06}")
}

/// Creates a key, retrying across leader changes. A retried create that finds the key
/// already there means an earlier attempt committed: that counts as done.
async fn create_acked(node: &StoreNode, key: &str) -> bool {
    for _ in 0..20 {
        match node.write(Txn::single(Op::create(key, "v"))).await {
            Ok(TxnOutcome::Committed { .. }) | Ok(TxnOutcome::Failed { .. }) => return true,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_writes_from_any_member() {
    let c = Cluster::start(3).await;
    for i in 0..60 {
        let via = (i % 3) as u64 + 1;
        let outcome = c
            .node(via)
            .write(Txn::single(Op::put(key("/a/", i), "v")))
            .await
            .expect("write");
        assert!(outcome.is_committed());
    }
    for id in 1..=3 {
        let keys = c
            .keys(id, "/a/", Consistency::Linearizable)
            .await
            .expect("linearizable read");
        assert_eq!(keys.len(), 60, "node {id} sees every acknowledged write");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_swap_through_a_follower_is_guarded() {
    let c = Cluster::start(3).await;
    let leader = c.leader().await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let first = c
        .node(follower)
        .write(Txn::single(Op::create("/k", "1")))
        .await
        .expect("create");
    let rev = first.revision();
    let again = c
        .node(follower)
        .write(Txn::single(Op::create("/k", "2")))
        .await
        .expect("create again");
    assert!(matches!(
        again,
        TxnOutcome::Failed {
            op: 0,
            current: Some(_),
            ..
        }
    ));
    let ok = c
        .node(follower)
        .write(Txn::single(Op::put_if("/k", "3", rev)))
        .await
        .expect("cas");
    assert!(ok.is_committed());
    let stale = c
        .node(leader)
        .write(Txn::single(Op::put_if("/k", "4", rev)))
        .await
        .expect("stale cas");
    assert!(!stale.is_committed(), "a stale mod revision must not win");
    let kv = c
        .node(follower)
        .get("/k", Consistency::Linearizable)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(&kv.value[..], b"3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_follower_catches_up_after_restart() {
    let mut c = Cluster::start(3).await;
    let leader = c.leader().await;
    let victim = (1..=3).find(|id| *id != leader).expect("a follower");
    c.crash(victim).await;
    for i in 0..100 {
        c.node(leader)
            .write(Txn::single(Op::put(key("/b/", i), "v")))
            .await
            .expect("write with one member down");
    }
    c.open(victim).await;
    let node = c.node(victim).clone();
    wait_for(Duration::from_secs(10), "the restarted follower to catch up", || {
        (node.state().inner.read().mvcc.count("/b/") == 100).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_accepts_no_writes_and_serves_no_stale_reads() {
    let c = Cluster::start(3).await;
    let old = c.leader().await;
    c.node(old)
        .write(Txn::single(Op::put("/before", "1")))
        .await
        .expect("write before the partition");
    let others: Vec<u64> = (1..=3).filter(|id| *id != old).collect();
    let other_addrs: Vec<String> = others.iter().map(|id| addr(*id)).collect();
    c.net
        .isolate(&addr(old), &other_addrs.iter().map(String::as_str).collect::<Vec<_>>());

    // The majority elects a new leader and goes on.
    let new = c.leader_among(&others).await;
    assert_ne!(new, old);
    let acked = c
        .node(new)
        .write(Txn::single(Op::put("/after", "2")))
        .await
        .expect("majority write");
    assert!(acked.is_committed());

    // The minority side refuses: no write is acknowledged, no stale linearizable read served.
    let w = c.node(old).write(Txn::single(Op::put("/minority", "x"))).await;
    assert!(w.is_err(), "an isolated leader acknowledged a write: {w:?}");
    let r = c.node(old).get("/after", Consistency::Linearizable).await;
    assert!(r.is_err(), "an isolated leader served a linearizable read: {r:?}");

    c.net.heal();
    let node = c.node(old).clone();
    wait_for(
        Duration::from_secs(10),
        "the old leader to see the majority's write",
        || {
            node.state()
                .inner
                .read()
                .mvcc
                .get("/after", None)
                .ok()
                .flatten()
                .map(|_| ())
        },
    )
    .await;
    let r = c
        .node(old)
        .get("/after", Consistency::Linearizable)
        .await
        .expect("read after heal");
    assert!(r.is_some());
    // The write refused on the minority side must not surface later either.
    let gone = c
        .node(new)
        .get("/minority", Consistency::Linearizable)
        .await
        .expect("read");
    assert!(gone.is_none(), "a write refused during the partition was applied later");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_partitions_lose_no_acknowledged_write() {
    let c = Cluster::start(3).await;
    let mut acked = Vec::new();
    let mut n = 0;
    // The leader cannot hear its followers: it cannot commit, so nothing is acknowledged.
    let leader = c.leader().await;
    for id in (1..=3).filter(|id| *id != leader) {
        c.net.block(&addr(id), &addr(leader));
    }
    for _ in 0..3 {
        let k = key("/c/", n);
        n += 1;
        if c.node(leader).write(Txn::single(Op::create(&k, "v"))).await.is_ok() {
            acked.push(k);
        }
    }
    c.net.heal();
    // One follower stops hearing the leader: it campaigns, but the others still hear the
    // leader and the cluster keeps committing through them.
    let leader = c.leader().await;
    let deaf = (1..=3).find(|id| *id != leader).expect("a follower");
    c.net.block(&addr(leader), &addr(deaf));
    let healthy: Vec<u64> = (1..=3).filter(|id| *id != deaf).collect();
    for i in 0..20 {
        let k = key("/c/", n);
        n += 1;
        if create_acked(c.node(healthy[i % 2]), &k).await {
            acked.push(k);
        }
    }
    c.net.heal();
    let leader = c.leader().await;
    let keys: BTreeSet<String> = c
        .keys(leader, "/c/", Consistency::Linearizable)
        .await
        .expect("read")
        .into_iter()
        .collect();
    for k in &acked {
        assert!(keys.contains(k), "acknowledged write {k} was lost");
    }
    assert!(
        acked.len() >= 20,
        "writes should succeed once a quorum can talk: {} acked",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_commit_despite_dropped_and_delayed_messages() {
    let c = Cluster::start(3).await;
    c.net.set_delay(Duration::from_millis(3));
    c.net.set_drop_rate(0.15);
    let mut acked = Vec::new();
    for i in 0..40 {
        let k = key("/d/", i);
        if create_acked(c.node((i % 3) as u64 + 1), &k).await {
            acked.push(k);
        }
    }
    c.net.set_drop_rate(0.0);
    c.net.set_delay(Duration::ZERO);
    assert_eq!(acked.len(), 40, "every write eventually commits on a lossy network");
    let leader = c.leader().await;
    let keys = c.keys(leader, "/d/", Consistency::Linearizable).await.expect("read");
    assert_eq!(keys, acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_the_leader_under_load_loses_no_acknowledged_write() {
    let mut c = Cluster::start(3).await;
    let leader = c.leader().await;
    let writers: Vec<_> = (1..=3u64)
        .map(|w| {
            let node = c.node(w).clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..150 {
                    let k = format!("/e/{w}/{i:04}");
                    // One attempt only: an error means "not acknowledged".
                    if let Ok(TxnOutcome::Committed { .. }) = node.write(Txn::single(Op::create(&k, "v"))).await {
                        acked.push(k);
                    }
                }
                acked
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    c.crash(leader).await;
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.expect("writer task"));
    }
    c.open(leader).await;
    let leader = c.leader().await;
    let keys: BTreeSet<String> = c
        .keys(leader, "/e/", Consistency::Linearizable)
        .await
        .expect("read")
        .into_iter()
        .collect();
    assert!(!acked.is_empty());
    for k in &acked {
        assert!(keys.contains(k), "acknowledged write {k} was lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_node_catches_up_from_a_snapshot() {
    let mut c = Cluster::start_with(3, 50).await;
    let leader = c.leader().await;
    let victim = (1..=3).find(|id| *id != leader).expect("a follower");
    c.crash(victim).await;
    for i in 0..400 {
        c.node(leader)
            .write(Txn::single(Op::put(key("/f/", i), "v")))
            .await
            .expect("write");
    }
    // The leader has snapshotted and purged the log the victim would need.
    let leader_node = c.node(leader).clone();
    wait_for(Duration::from_secs(10), "the leader to purge its log", || {
        leader_node
            .raft()
            .metrics()
            .borrow()
            .purged
            .map(|p| p.index > 100)
            .filter(|b| *b)
    })
    .await;
    c.open(victim).await;
    let node = c.node(victim).clone();
    wait_for(
        Duration::from_secs(10),
        "the lagging node to install a snapshot and catch up",
        || (node.state().inner.read().mvcc.count("/f/") == 400).then_some(()),
    )
    .await;
    assert!(
        node.raft().metrics().borrow().snapshot.is_some(),
        "catch-up went through a snapshot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_added_as_learners_promoted_and_removed() {
    let mut c = Cluster::start(3).await;
    c.node(1).write(Txn::single(Op::put("/g", "1"))).await.expect("write");
    let four = c.open(4).await;
    four.join(&addr(1), false, Duration::from_secs(10))
        .await
        .expect("join as learner");
    let status = c.node(1).status();
    assert!(status.learners.contains(&4), "node 4 is a learner: {status:?}");
    four.join(&addr(2), true, Duration::from_secs(10))
        .await
        .expect("promote to voter");
    let leader = c.leader().await;
    let status = c.node(leader).status();
    assert_eq!(status.voters, vec![1, 2, 3, 4]);
    assert!(four
        .get("/g", Consistency::Linearizable)
        .await
        .expect("read on the new member")
        .is_some());

    // Remove the leader itself; the rest go on.
    c.node(4).remove_member(leader).await.expect("remove");
    c.crash(leader).await;
    let rest: Vec<u64> = c.nodes.keys().copied().collect();
    let new = c.leader_among(&rest).await;
    assert_eq!(c.node(new).status().voters.len(), 3);
    c.node(new)
        .write(Txn::single(Op::put("/h", "1")))
        .await
        .expect("write after removal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_on_a_follower_sees_every_write_in_order() {
    let c = Cluster::start(3).await;
    let leader = c.leader().await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let start = c.node(follower).revision() + 1;
    let mut watcher = c.node(follower).watch("/w/", start).expect("watch");
    for i in 0..50 {
        c.node(leader)
            .write(Txn::single(Op::put(key("/w/", i), "v")))
            .await
            .expect("write");
        c.node(leader)
            .write(Txn::single(Op::put(key("/other/", i), "v")))
            .await
            .expect("write");
    }
    let mut seen = Vec::new();
    while seen.len() < 50 {
        let batch = tokio::time::timeout(Duration::from_secs(5), watcher.next())
            .await
            .expect("events")
            .expect("no error");
        seen.extend(batch.events.iter().map(|e| (e.kv.key.clone(), e.kv.mod_revision)));
    }
    let keys: Vec<String> = seen.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, (0..50).map(|i| key("/w/", i)).collect::<Vec<_>>());
    assert!(seen.windows(2).all(|w| w[0].1 < w[1].1), "revisions strictly increase");
}
