//! The scheduler against the store: list nodes and pods, watch from the list's revision to
//! keep the cache and the queue current, decide pending pods with several workers, and
//! commit their bindings in batches.
//!
//! Each binding is its own transaction in a shared `write_batch` (one Raft entry):
//! `put_if(pod key, pod with spec.nodeName and PodScheduled=True, the pod's mod_revision)`.
//! A pod deleted or changed since it was read fails only its own transaction; its
//! reservation is released and, if it is still pending, it is decided again. A pod no node
//! fits gets PodScheduled=False, reason Unschedulable, with kube-scheduler's message (also a
//! compare-and-swap write) and waits in the queue for a cluster event and its backoff.
//!
//! When a watch falls behind the store's event window the whole view is rebuilt from a new
//! list. Bindings in flight at that moment may still commit; the rebuilt view sees them, and
//! a pod re-decided from the older list cannot be bound twice: its binding is guarded by the
//! older revision.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gantry_store::{Consistency, Event, EventKind, Op, RangeRequest, StoreError, StoreNode, Txn, TxnOutcome};
use rand::SeedableRng;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::cache::Cache;
use crate::plugins::Profile;
use crate::pod::PodInfo;
use crate::queue::SchedulingQueue;
use crate::snapshot::{NodeInfo, ReserveError};
use crate::time::now_rfc3339;
use crate::{SchedulerError, NODES_PREFIX, PODS_PREFIX};

/// The `spec.schedulerName` of pods this scheduler takes when none is set.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// A decision whose reservation lost this many races in a row goes back to the queue.
const MAX_RESERVE_ATTEMPTS: usize = 4;

/// How the scheduler runs.
#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// Tasks deciding pods in parallel.
    pub workers: usize,
    /// At most this many bindings (and status writes) per `write_batch`.
    pub max_bind_batch: usize,
    /// `write_batch` calls in flight at once.
    pub binds_in_flight: usize,
    /// Pods naming another scheduler are left alone.
    pub scheduler_name: String,
    /// `percentageOfNodesToScore`; `None` is kube-scheduler's adaptive default.
    pub percentage_of_nodes_to_score: Option<u32>,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Counters the caller can read while the scheduler runs.
    pub metrics: Arc<SchedulerMetrics>,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_bind_batch: 2048,
            binds_in_flight: 2,
            scheduler_name: DEFAULT_SCHEDULER_NAME.to_string(),
            percentage_of_nodes_to_score: None,
            initial_backoff: crate::queue::INITIAL_BACKOFF,
            max_backoff: crate::queue::MAX_BACKOFF,
            metrics: Arc::default(),
        }
    }
}

/// What the scheduler has done so far.
#[derive(Debug, Default)]
pub struct SchedulerMetrics {
    /// Bindings committed.
    pub scheduled: AtomicU64,
    /// Attempts that found no node.
    pub unschedulable: AtomicU64,
    /// Bindings refused because the pod changed or went away since it was read.
    pub conflicts: AtomicU64,
    /// Reservations that lost a race to another worker (the pod was decided again).
    pub reserve_retries: AtomicU64,
    /// `write_batch` calls made, and the ones that failed as a whole.
    pub batches: AtomicU64,
    pub batch_errors: AtomicU64,
    /// Pods waiting in the queue (any phase).
    pub pending: AtomicU64,
    /// Full relists after a watch fell behind.
    pub relists: AtomicU64,
}

impl SchedulerMetrics {
    pub fn scheduled(&self) -> u64 {
        self.scheduled.load(Ordering::Relaxed)
    }

    pub fn unschedulable(&self) -> u64 {
        self.unschedulable.load(Ordering::Relaxed)
    }

    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }
}

/// Runs the scheduler until the store fails it. Drop (abort) the future to stop it.
pub async fn run(node: StoreNode, opts: SchedulerOptions) -> Result<(), SchedulerError> {
    if opts.workers == 0 || opts.max_bind_batch == 0 || opts.binds_in_flight == 0 {
        return Err(SchedulerError::InvalidOptions(format!(
            "workers ({}), max_bind_batch ({}) and binds_in_flight ({}) must be at least 1",
            opts.workers, opts.max_bind_batch, opts.binds_in_flight
        )));
    }
    loop {
        match run_session(&node, &opts).await {
            Err(SchedulerError::Store(e @ StoreError::Compacted { .. })) => {
                warn!(error = %e, "scheduler watch fell behind; relisting");
                opts.metrics.relists.fetch_add(1, Ordering::Relaxed);
            }
            other => return other,
        }
    }
}

/// Everything one list-watch session shares.
struct State {
    cache: Cache,
    queue: SchedulingQueue,
    profile: Profile,
    metrics: Arc<SchedulerMetrics>,
    scheduler_name: String,
}

impl State {
    /// Whether a pending pod is this scheduler's to place.
    fn is_ours(&self, p: &PodInfo) -> bool {
        p.node_name.is_none()
            && !p.deleting
            && !p.terminal
            && p.scheduler_name.as_deref().is_none_or(|n| n == self.scheduler_name)
    }

    /// Applies one stored pod (from the list or a watch put).
    fn pod_put(&self, key: &str, mod_revision: u64, value: &[u8], now: Instant) {
        let info = match PodInfo::from_json(key, mod_revision, value) {
            Ok(i) => i,
            Err(reason) => {
                warn!(%key, %reason, "skipping malformed pod");
                self.queue.remove(key);
                return;
            }
        };
        match &info.node_name {
            Some(node) => {
                self.queue.remove(key);
                if info.terminal {
                    self.pod_gone(key);
                } else {
                    self.cache.bound_pod(&info, node);
                }
            }
            None if self.is_ours(&info) => self.queue.add_or_update(info, now),
            None => self.queue.remove(key),
        }
    }

    fn pod_gone(&self, key: &str) {
        self.queue.remove(key);
        if self.cache.is_placed(key) {
            self.cache.gone(key);
            self.queue.cluster_event();
        }
    }

    fn node_put(&self, key: &str, value: &[u8]) {
        match NodeInfo::from_json(value) {
            Ok(n) => {
                if self.cache.upsert_node(n) {
                    self.queue.cluster_event();
                }
            }
            Err(reason) => warn!(%key, %reason, "skipping malformed node"),
        }
    }

    fn apply(&self, e: &Event, now: Instant) {
        let key = e.kv.key.as_str();
        if let Some(name) = key.strip_prefix(NODES_PREFIX) {
            match e.kind {
                EventKind::Put => self.node_put(key, &e.kv.value),
                EventKind::Delete => self.cache.remove_node(name),
            }
        } else if key.starts_with(PODS_PREFIX) {
            match e.kind {
                EventKind::Put => self.pod_put(key, e.kv.mod_revision, &e.kv.value, now),
                EventKind::Delete => self.pod_gone(key),
            }
        }
        self.metrics.pending.store(self.queue.len() as u64, Ordering::Relaxed);
    }
}

/// A write for the binder.
enum BindJob {
    /// Bind the pod to the node it was reserved on.
    Bind { info: Arc<PodInfo>, node: String },
    /// Record PodScheduled=False with this message.
    Unschedulable { info: Arc<PodInfo>, message: String },
}

async fn list(node: &StoreNode, prefix: &str) -> Result<(Vec<gantry_store::KeyValue>, u64), SchedulerError> {
    let mut req = RangeRequest {
        prefix: prefix.to_string(),
        limit: 10_000,
        ..Default::default()
    };
    let mut kvs = Vec::new();
    loop {
        let page = node.range(&req, Consistency::Serializable).await?;
        kvs.extend(page.kvs);
        match page.continue_token {
            Some(t) => req.continue_token = Some(t),
            None => return Ok((kvs, page.revision)),
        }
    }
}

async fn run_session(node: &StoreNode, opts: &SchedulerOptions) -> Result<(), SchedulerError> {
    let state = Arc::new(State {
        cache: Cache::new(),
        queue: SchedulingQueue::new(opts.initial_backoff, opts.max_backoff),
        profile: Profile {
            percentage_of_nodes_to_score: opts.percentage_of_nodes_to_score,
            ..Profile::default()
        },
        metrics: opts.metrics.clone(),
        scheduler_name: opts.scheduler_name.clone(),
    });
    let (nodes, nodes_rev) = list(node, NODES_PREFIX).await?;
    for kv in &nodes {
        state.node_put(&kv.key, &kv.value);
    }
    let (pods, pods_rev) = list(node, PODS_PREFIX).await?;
    let now = Instant::now();
    for kv in &pods {
        state.pod_put(&kv.key, kv.mod_revision, &kv.value, now);
    }
    state.metrics.pending.store(state.queue.len() as u64, Ordering::Relaxed);
    info!(
        nodes = nodes.len(),
        pods = pods.len(),
        pending = state.queue.len(),
        "scheduler listed the cluster"
    );
    let mut node_watch = node.watch(NODES_PREFIX, nodes_rev + 1)?;
    let mut pod_watch = node.watch(PODS_PREFIX, pods_rev + 1)?;

    let (tx, rx) = mpsc::channel(opts.max_bind_batch * 2);
    let mut tasks: JoinSet<Result<(), SchedulerError>> = JoinSet::new();
    for w in 0..opts.workers {
        tasks.spawn(worker(state.clone(), tx.clone(), w as u64));
    }
    drop(tx);
    tasks.spawn(binder(
        state.clone(),
        node.clone(),
        rx,
        opts.max_bind_batch,
        opts.binds_in_flight,
    ));
    tasks.spawn(flusher(state.clone()));

    loop {
        tokio::select! {
            batch = node_watch.next() => {
                let now = Instant::now();
                for e in batch?.events {
                    state.apply(&e, now);
                }
            }
            batch = pod_watch.next() => {
                let now = Instant::now();
                for e in batch?.events {
                    state.apply(&e, now);
                }
            }
            Some(done) = tasks.join_next() => {
                return match done {
                    Ok(result) => result,
                    Err(e) => Err(SchedulerError::TaskFailed { task: format!("{:?}", e.id()), reason: e.to_string() }),
                };
            }
        }
    }
}

/// Decides pods one at a time: filter and score under the snapshot's read lock, reserve by
/// compare-and-swap, hand the binding to the binder.
async fn worker(state: Arc<State>, tx: mpsc::Sender<BindJob>, seed: u64) -> Result<(), SchedulerError> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(rand::random::<u64>() ^ seed);
    let mut since_yield = 0u32;
    loop {
        let popped = state.queue.next().await;
        let info = popped.info;
        let job = match decide(&state, &info, &mut rng) {
            Decided::Reserved(node) => Some(BindJob::Bind { info, node }),
            Decided::Unschedulable(message) => {
                state.metrics.unschedulable.fetch_add(1, Ordering::Relaxed);
                state.queue.unschedulable(&info.key, Instant::now());
                debug!(pod = %info.key, %message, "pod is unschedulable");
                (!has_unschedulable_condition(&info.object, &message))
                    .then_some(BindJob::Unschedulable { info, message })
            }
            Decided::Placed => {
                state.queue.remove(&info.key);
                None
            }
            Decided::Retry => {
                state.queue.requeue(&info.key);
                None
            }
        };
        if let Some(job) = job {
            if tx.send(job).await.is_err() {
                return Ok(()); // the binder has stopped: the session is ending
            }
        }
        since_yield += 1;
        if since_yield >= 16 {
            since_yield = 0;
            tokio::task::yield_now().await;
        }
    }
}

enum Decided {
    Reserved(String),
    Unschedulable(String),
    /// Already placed (bound meanwhile).
    Placed,
    /// Lost too many reservation races; try later.
    Retry,
}

fn decide(state: &State, info: &PodInfo, rng: &mut impl rand::Rng) -> Decided {
    let snapshot = state.cache.snapshot();
    for _ in 0..MAX_RESERVE_ATTEMPTS {
        let table = snapshot.read();
        let inter_pod = state.cache.inter_pod_state(&table, info);
        match state
            .profile
            .schedule_with(snapshot, &table, info, inter_pod.as_ref(), rng)
        {
            Err(fit) => return Decided::Unschedulable(fit.to_string()),
            Ok(d) => match state.cache.assume_pod(&table, d.slot, info) {
                Ok(()) => return Decided::Reserved(table.names[d.slot].clone()),
                Err(ReserveError::AlreadyPlaced) => return Decided::Placed,
                Err(ReserveError::Insufficient | ReserveError::PortTaken | ReserveError::AffinityConflict) => {
                    state.metrics.reserve_retries.fetch_add(1, Ordering::Relaxed);
                }
            },
        }
    }
    Decided::Retry
}

/// Collects jobs into batches and commits each with one `write_batch`.
async fn binder(
    state: Arc<State>,
    node: StoreNode,
    mut rx: mpsc::Receiver<BindJob>,
    max_batch: usize,
    in_flight: usize,
) -> Result<(), SchedulerError> {
    let mut writes = JoinSet::new();
    let mut pause = Duration::ZERO;
    loop {
        tokio::select! {
            first = rx.recv(), if writes.len() < in_flight => {
                let Some(first) = first else { break };
                let mut jobs = vec![first];
                while jobs.len() < max_batch {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                writes.spawn(commit(state.clone(), node.clone(), jobs));
            }
            Some(done) = writes.join_next() => {
                // A failed batch (no leader, timeout) is retried by the pods' requeue; pause so
                // that a store without a leader does not turn this into a busy loop.
                if done.unwrap_or(false) {
                    pause = Duration::ZERO;
                } else {
                    pause = (pause * 2).clamp(Duration::from_millis(50), Duration::from_secs(2));
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
    while writes.join_next().await.is_some() {}
    Ok(())
}

/// Writes one batch and applies the outcomes. Returns whether the store answered.
async fn commit(state: Arc<State>, node: StoreNode, jobs: Vec<BindJob>) -> bool {
    let txns = jobs
        .iter()
        .map(|j| match j {
            BindJob::Bind { info, node } => Txn::single(Op::put_if(
                info.key.clone(),
                bound_object(info, node),
                info.mod_revision,
            )),
            BindJob::Unschedulable { info, message } => Txn::single(Op::put_if(
                info.key.clone(),
                unschedulable_object(info, message),
                info.mod_revision,
            )),
        })
        .collect();
    state.metrics.batches.fetch_add(1, Ordering::Relaxed);
    let outcomes = match node.write_batch(txns).await {
        Ok(o) => o,
        Err(e) => {
            warn!(error = %e, jobs = jobs.len(), "binding batch failed; pods will be decided again");
            state.metrics.batch_errors.fetch_add(1, Ordering::Relaxed);
            for j in &jobs {
                if let BindJob::Bind { info, node } = j {
                    // If the write commits after all, the watch charges the node again.
                    state.cache.forget(&info.key, node);
                    state.queue.requeue(&info.key);
                }
            }
            return false;
        }
    };
    for (job, outcome) in jobs.into_iter().zip(outcomes) {
        match (job, outcome) {
            (BindJob::Bind { info, .. }, TxnOutcome::Committed { .. }) => {
                state.metrics.scheduled.fetch_add(1, Ordering::Relaxed);
                state.queue.remove(&info.key);
            }
            (BindJob::Bind { info, node }, TxnOutcome::Failed { current, .. }) => {
                state.metrics.conflicts.fetch_add(1, Ordering::Relaxed);
                state.cache.forget(&info.key, &node);
                match current {
                    None => state.queue.remove(&info.key),
                    Some(kv) => {
                        // Catch up with the newer version now rather than wait for the watch.
                        state.pod_put(&kv.key, kv.mod_revision, &kv.value, Instant::now());
                        state.queue.requeue(&info.key);
                    }
                }
            }
            // A status write that lost to a newer version is moot: the newer one is decided.
            (BindJob::Unschedulable { .. }, _) => {}
        }
    }
    state.metrics.pending.store(state.queue.len() as u64, Ordering::Relaxed);
    true
}

/// Retries pods whose backoff has expired, and applies cluster events to unschedulable pods.
async fn flusher(state: Arc<State>) -> Result<(), SchedulerError> {
    loop {
        let now = Instant::now();
        let next = state.queue.flush(now);
        let tick = now + Duration::from_secs(1);
        let wake = next.map_or(tick, |n| n.min(tick));
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = state.queue.flush_wanted() => {}
        }
    }
}

/// Sets (or replaces) the condition of `condition["type"]` in `status.conditions`, keeping
/// its lastTransitionTime when the status does not change.
fn set_condition(obj: &mut Value, mut condition: Value) {
    if !obj["status"].is_object() {
        obj["status"] = json!({});
    }
    if !obj["status"]["conditions"].is_array() {
        obj["status"]["conditions"] = json!([]);
    }
    let conditions = obj["status"]["conditions"].as_array_mut().expect("just made an array");
    match conditions.iter_mut().find(|c| c["type"] == condition["type"]) {
        Some(existing) => {
            if existing["status"] == condition["status"] {
                condition["lastTransitionTime"] = existing["lastTransitionTime"].clone();
            }
            *existing = condition;
        }
        None => conditions.push(condition),
    }
}

/// The pod with `spec.nodeName` set and PodScheduled=True, as the binding subresource writes it.
pub fn bound_object(info: &PodInfo, node: &str) -> Vec<u8> {
    let mut obj = info.object.clone();
    obj["spec"]["nodeName"] = Value::String(node.to_string());
    if let Some(meta) = obj["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    set_condition(
        &mut obj,
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now_rfc3339()}),
    );
    serde_json::to_vec(&obj).expect("a JSON value serializes")
}

/// The pod with PodScheduled=False, reason Unschedulable, and the message.
pub fn unschedulable_object(info: &PodInfo, message: &str) -> Vec<u8> {
    let mut obj = info.object.clone();
    if let Some(meta) = obj["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    set_condition(
        &mut obj,
        json!({
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": now_rfc3339(),
        }),
    );
    serde_json::to_vec(&obj).expect("a JSON value serializes")
}

/// Whether the pod already says it is unschedulable for this very reason (no write needed).
fn has_unschedulable_condition(obj: &Value, message: &str) -> bool {
    obj["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| {
            c["type"] == "PodScheduled"
                && c["status"] == "False"
                && c["reason"] == "Unschedulable"
                && c["message"] == message
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pod;

    #[test]
    fn binding_sets_node_name_and_a_true_pod_scheduled_condition() {
        let mut p = pod("p", "1", "1Gi", json!({}));
        p.object["status"] = json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "x"}
        ]});
        let v: Value = serde_json::from_slice(&bound_object(&p, "n1")).expect("json");
        assert_eq!(v["spec"]["nodeName"], "n1");
        let conds = v["status"]["conditions"].as_array().expect("conditions");
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0]["status"], "True");
        assert_eq!(v["status"]["phase"], "Pending");
    }

    #[test]
    fn unschedulable_condition_carries_reason_and_message_once() {
        let p = pod("p", "1", "1Gi", json!({}));
        let bytes = unschedulable_object(&p, "0/1 nodes are available: 1 Insufficient cpu.");
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        let c = &v["status"]["conditions"][0];
        assert_eq!(
            (c["type"].as_str(), c["status"].as_str()),
            (Some("PodScheduled"), Some("False"))
        );
        assert_eq!(c["reason"], "Unschedulable");
        assert!(has_unschedulable_condition(
            &v,
            "0/1 nodes are available: 1 Insufficient cpu."
        ));
        assert!(!has_unschedulable_condition(
            &v,
            "0/2 nodes are available: 2 Insufficient cpu."
        ));
    }
}
