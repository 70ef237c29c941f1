//! A store node: one Raft member with its log, state machine, write proposer and peer
//! request handler. This is the store's client interface inside the control plane.
//!
//! Writes: on the leader, concurrent transactions are coalesced by the proposer into one
//! Raft entry (one append, one fsync, one replication round for all of them); a follower
//! forwards its writes to the leader. Linearizable reads use ReadIndex: the leader confirms
//! its leadership with a quorum (openraft's `get_read_log_id`) and the reader waits until
//! its own state machine has applied that index, so a follower serves them too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, SnapshotPolicy};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::error::StoreError;
use crate::kv::{KeyValue, RangeRequest, RangeResult, Revision, Txn, TxnOutcome};
use crate::log_store::{LogOptions, LogStore, DEFAULT_SEGMENT_BYTES};
use crate::network::Network;
use crate::rpc::{Handler, NodeStatus, Request, Response, Transport};
use crate::state_machine::{StateMachine, StoreState};
use crate::types::{Raft, WriteBatch, WriteResult};
use crate::watch::Watcher;
use crate::NodeId;
pub use gantry_wal::{Backend, IoMode};

/// At most this many transactions, or this many bytes of values, go into one Raft entry.
const MAX_BATCH_TXNS: usize = 4096;
const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;
/// Raft entries proposed but not yet committed (see `run_proposer`).
const MAX_ENTRIES_IN_FLIGHT: usize = 1;

/// How a node is set up.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    /// The address peers reach this node at.
    pub addr: String,
    /// The address to listen on, when it differs from `addr` (e.g. 0.0.0.0:PORT).
    pub listen: Option<String>,
    pub data_dir: PathBuf,
    pub io: IoMode,
    /// Take a snapshot (and purge the log behind it) after this many entries.
    pub snapshot_every: u64,
    /// Log entries kept behind a snapshot, so a briefly lagging follower catches up from the
    /// log rather than from a full snapshot.
    pub logs_to_keep: u64,
    /// Events kept for watches; older revisions get a Compacted error.
    pub watch_window: usize,
    pub segment_bytes: u64,
    pub heartbeat: Duration,
    pub election_timeout: (Duration, Duration),
    /// How long a write or linearizable read may wait for a quorum.
    pub request_timeout: Duration,
}

impl NodeConfig {
    pub fn new(id: NodeId, addr: impl Into<String>, data_dir: impl Into<PathBuf>) -> NodeConfig {
        NodeConfig {
            id,
            addr: addr.into(),
            listen: None,
            data_dir: data_dir.into(),
            io: IoMode::Auto,
            snapshot_every: 20_000,
            logs_to_keep: 1000,
            watch_window: 200_000,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            heartbeat: Duration::from_millis(100),
            election_timeout: (Duration::from_millis(400), Duration::from_millis(800)),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// How fresh a read must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// Reflects every write acknowledged before the read began (ReadIndex).
    Linearizable,
    /// This node's current state, possibly behind the leader.
    Serializable,
}

type Done = oneshot::Sender<Result<Vec<TxnOutcome>, StoreError>>;

struct Proposal {
    txns: Vec<Txn>,
    done: Done,
}

struct Inner {
    config: NodeConfig,
    raft: Raft,
    state: StoreState,
    transport: Arc<dyn Transport>,
    proposals: mpsc::Sender<Proposal>,
    backend: Backend,
    /// Held until shutdown: two processes on one data directory would corrupt it.
    lock: parking_lot::Mutex<Option<std::fs::File>>,
}

/// A running store node. Cheap to clone.
#[derive(Clone)]
pub struct StoreNode {
    inner: Arc<Inner>,
}

impl StoreNode {
    /// Opens the node's log and state in `config.data_dir` and starts its Raft member. A new
    /// node belongs to no cluster until [`StoreNode::bootstrap`] or [`StoreNode::join`].
    pub async fn open(config: NodeConfig, transport: Arc<dyn Transport>) -> Result<StoreNode, StoreError> {
        let lock = lock_data_dir(&config.data_dir)?;
        let log = LogStore::open(LogOptions {
            dir: config.data_dir.join("log"),
            io: config.io,
            segment_bytes: config.segment_bytes,
        })
        .map_err(|e| StoreError::Storage(e.to_string()))?;
        let backend = log.backend();
        let sm = StateMachine::open(config.data_dir.join("snapshots"), config.watch_window)
            .map_err(|e| StoreError::Storage(e.to_string()))?;
        let state = sm.state();
        let raft_config = openraft::Config {
            cluster_name: "gantry".into(),
            heartbeat_interval: config.heartbeat.as_millis() as u64,
            election_timeout_min: config.election_timeout.0.as_millis() as u64,
            election_timeout_max: config.election_timeout.1.as_millis() as u64,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: config.logs_to_keep,
            max_payload_entries: 64,
            install_snapshot_timeout: 10_000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| StoreError::BadRequest(format!("raft configuration: {e}")))?;
        let raft = Raft::new(
            config.id,
            Arc::new(raft_config),
            Network {
                transport: transport.clone(),
            },
            log,
            sm,
        )
        .await
        .map_err(|e| StoreError::Stopped(format!("raft failed to start: {e}")))?;
        let (tx, rx) = mpsc::channel(MAX_BATCH_TXNS * 4);
        tokio::spawn(run_proposer(raft.clone(), rx));
        Ok(StoreNode {
            inner: Arc::new(Inner {
                config,
                raft,
                state,
                transport,
                proposals: tx,
                backend,
                lock: parking_lot::Mutex::new(Some(lock)),
            }),
        })
    }

    pub fn id(&self) -> NodeId {
        self.inner.config.id
    }

    pub fn addr(&self) -> &str {
        &self.inner.config.addr
    }

    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// The I/O path of the Raft log.
    pub fn log_backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// The state that local reads and watches use.
    pub fn state(&self) -> &StoreState {
        &self.inner.state
    }

    /// Makes this node the first member of a new cluster whose voters are `members` (id to
    /// address). Does nothing if the node already belongs to a cluster.
    pub async fn bootstrap(&self, members: BTreeMap<NodeId, String>) -> Result<(), StoreError> {
        let raft = &self.inner.raft;
        if raft.is_initialized().await.map_err(stopped)? {
            return Ok(());
        }
        let nodes: BTreeMap<NodeId, BasicNode> = members.into_iter().map(|(id, a)| (id, BasicNode::new(a))).collect();
        match raft.initialize(nodes).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(StoreError::BadRequest(format!("cannot bootstrap: {e}"))),
        }
    }

    /// Bootstraps a one-node cluster of this node alone.
    pub async fn bootstrap_single(&self) -> Result<(), StoreError> {
        let members = BTreeMap::from([(self.id(), self.addr().to_string())]);
        self.bootstrap(members).await
    }

    /// Asks the cluster that `seed` belongs to to add this node (as a voter if `voter`),
    /// following redirects to the leader, until it succeeds or `deadline` passes.
    pub async fn join(&self, seed: &str, voter: bool, deadline: Duration) -> Result<(), StoreError> {
        let start = Instant::now();
        let mut target = seed.to_string();
        loop {
            let req = Request::Join {
                id: self.id(),
                addr: self.addr().to_string(),
                voter,
            };
            let err = match self.inner.transport.call(&target, req, deadline).await {
                Ok(Response::Join(Ok(()))) => return Ok(()),
                Ok(Response::Join(Err(StoreError::NotLeader {
                    leader_addr: Some(addr),
                    ..
                }))) => {
                    target = addr;
                    continue;
                }
                Ok(Response::Join(Err(e))) => e,
                Ok(other) => StoreError::BadRequest(format!("unexpected answer to join: {other:?}")),
                Err(e) => e.into(),
            };
            if start.elapsed() > deadline {
                return Err(err);
            }
            tracing::info!(seed = %target, error = %err, "join not accepted yet; retrying");
            tokio::time::sleep(Duration::from_millis(200)).await;
            target = seed.to_string();
        }
    }

    /// Adds a node on the leader: as a learner first (so it catches up without affecting
    /// the quorum), then promoted to voter.
    async fn add_member(&self, id: NodeId, addr: String, voter: bool) -> Result<(), StoreError> {
        let raft = &self.inner.raft;
        let membership = raft.metrics().borrow().membership_config.clone();
        let is_voter = membership.voter_ids().any(|v| v == id);
        if is_voter {
            return Ok(());
        }
        raft.add_learner(id, BasicNode::new(addr), true)
            .await
            .map_err(write_error)?;
        if voter {
            raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                .await
                .map_err(write_error)?;
        }
        Ok(())
    }

    /// Removes a node from the cluster (voter or learner). Runs on the leader.
    pub async fn remove_member(&self, id: NodeId) -> Result<(), StoreError> {
        match self.leader() {
            Some((leader, _)) if leader == self.id() => {}
            Some((_, addr)) => {
                return match self
                    .inner
                    .transport
                    .call(&addr, Request::Leave { id }, self.inner.config.request_timeout)
                    .await?
                {
                    Response::Leave(r) => r,
                    other => Err(StoreError::BadRequest(format!("unexpected answer to leave: {other:?}"))),
                }
            }
            None => return Err(self.not_leader()),
        }
        let raft = &self.inner.raft;
        let m = raft.metrics().borrow().membership_config.clone();
        if m.voter_ids().any(|v| v == id) {
            raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                .await
                .map_err(write_error)?;
        }
        let m = raft.metrics().borrow().membership_config.clone();
        if m.membership().learner_ids().any(|v| v == id) {
            raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                .await
                .map_err(write_error)?;
        }
        Ok(())
    }

    /// The leader as this node knows it: id and address.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let rx = self.inner.raft.metrics();
        let m = rx.borrow();
        let id = m.current_leader?;
        let addr = m.membership_config.membership().get_node(&id)?.addr.clone();
        Some((id, addr))
    }

    pub fn is_leader(&self) -> bool {
        self.leader().is_some_and(|(id, _)| id == self.id())
    }

    fn not_leader(&self) -> StoreError {
        match self.leader() {
            Some((id, addr)) => StoreError::NotLeader {
                leader: Some(id),
                leader_addr: Some(addr),
            },
            None => StoreError::NotLeader {
                leader: None,
                leader_addr: None,
            },
        }
    }

    /// Waits until some leader is known, up to `timeout`.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<(NodeId, String), StoreError> {
        let deadline = Instant::now() + timeout;
        let mut metrics = self.inner.raft.metrics();
        loop {
            if let Some(l) = self.leader() {
                return Ok(l);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Timeout {
                    what: "a leader to be elected".into(),
                    millis: timeout.as_millis() as u64,
                });
            }
            let _ = tokio::time::timeout(left, metrics.changed()).await;
        }
    }

    pub fn status(&self) -> NodeStatus {
        let m = self.inner.raft.metrics().borrow().clone();
        let leader_addr = m
            .current_leader
            .and_then(|l| m.membership_config.membership().get_node(&l).map(|n| n.addr.clone()));
        NodeStatus {
            id: self.id(),
            addr: self.addr().to_string(),
            leader: m.current_leader,
            leader_addr,
            term: m.current_term,
            last_applied: m.last_applied.map_or(0, |l| l.index),
            revision: self.inner.state.inner.read().mvcc.revision(),
            voters: m.membership_config.voter_ids().collect(),
            learners: m.membership_config.membership().learner_ids().collect(),
        }
    }

    /// Commits one transaction.
    pub async fn write(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        let mut outcomes = self.write_batch(vec![txn]).await?;
        Ok(outcomes.pop().expect("one outcome per transaction"))
    }

    /// Commits transactions in one Raft entry; each commits or fails on its own. On the
    /// leader they are proposed (and may be coalesced with others); elsewhere they are
    /// forwarded to the leader. A `Timeout` means the outcome is unknown: the write may still
    /// commit.
    pub async fn write_batch(&self, txns: Vec<Txn>) -> Result<Vec<TxnOutcome>, StoreError> {
        let timeout = self.inner.config.request_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            let (leader, addr) = self
                .wait_for_leader(deadline.saturating_duration_since(Instant::now()))
                .await?;
            let result = if leader == self.id() {
                self.propose(txns.clone(), deadline).await
            } else {
                let left = deadline.saturating_duration_since(Instant::now());
                match self
                    .inner
                    .transport
                    .call(&addr, Request::Write(WriteBatch { txns: txns.clone() }), left)
                    .await?
                {
                    Response::Write(r) => r.map(|w| w.outcomes),
                    other => Err(StoreError::BadRequest(format!("unexpected answer to write: {other:?}"))),
                }
            };
            match result {
                // Refused before it was proposed: safe to send again to the new leader.
                Err(StoreError::NotLeader { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
    }

    /// Proposes on this node (which believes it leads).
    async fn propose(&self, txns: Vec<Txn>, deadline: Instant) -> Result<Vec<TxnOutcome>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .proposals
            .send(Proposal { txns, done: tx })
            .await
            .map_err(|_| StoreError::Stopped("the proposer has stopped".into()))?;
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(StoreError::Stopped("raft stopped before the write completed".into())),
            Err(_) => Err(StoreError::Timeout {
                what: "the write to commit".into(),
                millis: self.inner.config.request_timeout.as_millis() as u64,
            }),
        }
    }

    /// Waits until this node's state reflects every write committed before the call.
    pub async fn read_barrier(&self) -> Result<(), StoreError> {
        let timeout = self.inner.config.request_timeout;
        let (leader, addr) = self.wait_for_leader(timeout).await?;
        let index = if leader == self.id() {
            self.read_index().await?
        } else {
            match self.inner.transport.call(&addr, Request::ReadIndex, timeout).await? {
                Response::ReadIndex(r) => r?,
                other => {
                    return Err(StoreError::BadRequest(format!(
                        "unexpected answer to read-index: {other:?}"
                    )))
                }
            }
        };
        self.inner
            .raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "read index")
            .await
            .map_err(|e| StoreError::Timeout {
                what: format!("the state to catch up to the read index {index} ({e})"),
                millis: timeout.as_millis() as u64,
            })?;
        Ok(())
    }

    /// On the leader: confirms leadership with a quorum and returns the index a linearizable
    /// read must wait for.
    async fn read_index(&self) -> Result<u64, StoreError> {
        let timeout = self.inner.config.request_timeout;
        match tokio::time::timeout(timeout, self.inner.raft.get_read_log_id()).await {
            Ok(Ok((read, _applied))) => Ok(read.map_or(0, |l| l.index)),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => Err(StoreError::NotLeader {
                leader: f.leader_id,
                leader_addr: f.leader_node.map(|n| n.addr),
            }),
            Ok(Err(e)) => Err(StoreError::Timeout {
                what: format!("a quorum to confirm the leader ({e})"),
                millis: timeout.as_millis() as u64,
            }),
            Err(_) => Err(StoreError::Timeout {
                what: "a quorum to confirm the leader".into(),
                millis: timeout.as_millis() as u64,
            }),
        }
    }

    /// Reads a range of keys.
    pub async fn range(&self, req: &RangeRequest, consistency: Consistency) -> Result<RangeResult, StoreError> {
        if consistency == Consistency::Linearizable {
            self.read_barrier().await?;
        }
        self.inner.state.inner.read().mvcc.range(req)
    }

    /// Reads one key.
    pub async fn get(&self, key: &str, consistency: Consistency) -> Result<Option<KeyValue>, StoreError> {
        if consistency == Consistency::Linearizable {
            self.read_barrier().await?;
        }
        self.inner.state.inner.read().mvcc.get(key, None)
    }

    /// The latest revision this node has applied.
    pub fn revision(&self) -> Revision {
        self.inner.state.inner.read().mvcc.revision()
    }

    /// Watches keys under `prefix` from revision `start` (inclusive; 0 = from now on).
    pub fn watch(&self, prefix: &str, start: Revision) -> Result<Watcher, StoreError> {
        self.inner.state.hub.watch(prefix, start)
    }

    /// A handler that serves this node's peer requests.
    pub fn handler(&self) -> Arc<dyn Handler> {
        Arc::new(NodeHandler { node: self.clone() })
    }

    /// Stops the Raft member.
    pub async fn shutdown(&self) {
        let _ = self.inner.raft.shutdown().await;
        // The Raft core, which owns the log, has stopped: the directory may be reopened.
        self.inner.lock.lock().take();
    }
}

/// Takes the exclusive lock on `dir/LOCK`, creating the directory if needed.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, StoreError> {
    let io = |what: &str, e: std::io::Error| StoreError::Storage(format!("{what} {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(|e| io("cannot create the data directory", e))?;
    let file = std::fs::File::create(dir.join("LOCK")).map_err(|e| io("cannot create the lock file in", e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Storage(format!(
            "the data directory {} is in use by another gantry process; stop it or choose another --data-dir",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(io("cannot lock the data directory", e)),
    }
}

fn stopped(e: impl std::fmt::Display) -> StoreError {
    StoreError::Stopped(e.to_string())
}

fn write_error(e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> StoreError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => StoreError::NotLeader {
            leader: f.leader_id,
            leader_addr: f.leader_node.map(|n| n.addr),
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => StoreError::BadRequest(e.to_string()),
        RaftError::Fatal(f) => fatal(f),
    }
}

fn fatal(f: openraft::error::Fatal<NodeId>) -> StoreError {
    match f {
        openraft::error::Fatal::StorageError(e) => StoreError::Storage(e.to_string()),
        other => StoreError::Stopped(other.to_string()),
    }
}

/// Coalesces queued proposals into Raft entries.
///
/// openraft 0.9's core waits for each append to be flushed before it takes the next one, so
/// one entry per client write would mean one fsync per write. Instead at most
/// `MAX_ENTRIES_IN_FLIGHT` entries (one) are outstanding; while they commit, new proposals queue
/// here and the next entry takes all of them. The busier the store, the bigger the batch:
/// group commit at the entry level.
async fn run_proposer(raft: Raft, mut rx: mpsc::Receiver<Proposal>) {
    let in_flight = Arc::new(Semaphore::new(MAX_ENTRIES_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let mut txns = Vec::new();
        let mut waiters = Vec::new();
        let mut bytes = 0usize;
        let mut next = Some(first);
        while let Some(p) = next.take() {
            bytes += p.txns.iter().map(txn_bytes).sum::<usize>();
            waiters.push((p.txns.len(), p.done));
            txns.extend(p.txns);
            if txns.len() >= MAX_BATCH_TXNS || bytes >= MAX_BATCH_BYTES {
                break;
            }
            next = rx.try_recv().ok();
        }
        match raft.client_write_ff(WriteBatch { txns }).await {
            Ok(responder) => {
                let raft = raft.clone();
                tokio::spawn(async move {
                    let result = match responder.await {
                        Ok(Ok(resp)) => Ok(resp.data),
                        Ok(Err(ClientWriteError::ForwardToLeader(f))) => Err(StoreError::NotLeader {
                            leader: f.leader_id,
                            leader_addr: f.leader_node.map(|n| n.addr),
                        }),
                        Ok(Err(e)) => Err(StoreError::BadRequest(e.to_string())),
                        Err(_) => Err(stop_reason(&raft)),
                    };
                    drop(permit);
                    distribute(result, waiters);
                });
            }
            Err(f) => distribute(Err(fatal(f)), waiters),
        }
    }
}

/// Why Raft stopped: the storage error that stopped it, if that is what happened.
fn stop_reason(raft: &Raft) -> StoreError {
    match &raft.metrics().borrow().running_state {
        Err(f) => fatal(f.clone()),
        Ok(()) => StoreError::Stopped("raft stopped before the write completed".into()),
    }
}

fn txn_bytes(txn: &Txn) -> usize {
    txn.ops
        .iter()
        .map(|op| match op {
            crate::kv::Op::Put { key, value, .. } => key.len() + value.len(),
            crate::kv::Op::Delete { key, .. } => key.len(),
        })
        .sum()
}

/// Hands each waiter its share of a batch's outcomes, in order.
fn distribute(result: Result<WriteResult, StoreError>, waiters: Vec<(usize, Done)>) {
    match result {
        Ok(w) => {
            let mut outcomes = w.outcomes.into_iter();
            for (n, done) in waiters {
                let _ = done.send(Ok(outcomes.by_ref().take(n).collect()));
            }
        }
        Err(e) => {
            for (_, done) in waiters {
                let _ = done.send(Err(e.clone()));
            }
        }
    }
}

/// Serves peer requests for one node.
struct NodeHandler {
    node: StoreNode,
}

impl Handler for NodeHandler {
    fn handle(&self, req: Request) -> BoxFuture<'static, Response> {
        let node = self.node.clone();
        Box::pin(async move {
            let raft = &node.inner.raft;
            match req {
                Request::AppendEntries(r) => Response::AppendEntries(raft.append_entries(r).await),
                Request::Vote(r) => Response::Vote(raft.vote(r).await),
                Request::InstallSnapshot(r) => Response::InstallSnapshot(raft.install_snapshot(r).await),
                Request::Write(batch) => {
                    // Only the leader proposes; a forwarded write is never forwarded again.
                    let r = if node.is_leader() {
                        let deadline = Instant::now() + node.inner.config.request_timeout;
                        node.propose(batch.txns, deadline)
                            .await
                            .map(|outcomes| WriteResult { outcomes })
                    } else {
                        Err(node.not_leader())
                    };
                    Response::Write(r)
                }
                Request::ReadIndex => Response::ReadIndex(node.read_index().await),
                Request::Range { req, linearizable } => {
                    let c = if linearizable {
                        Consistency::Linearizable
                    } else {
                        Consistency::Serializable
                    };
                    Response::Range(node.range(&req, c).await)
                }
                Request::Join { id, addr, voter } => {
                    let r = if node.is_leader() {
                        node.add_member(id, addr, voter).await
                    } else {
                        Err(node.not_leader())
                    };
                    Response::Join(r)
                }
                Request::Leave { id } => Response::Leave(if node.is_leader() {
                    node.remove_member(id).await
                } else {
                    Err(node.not_leader())
                }),
                Request::Status => Response::Status(node.status()),
            }
        })
    }
}
