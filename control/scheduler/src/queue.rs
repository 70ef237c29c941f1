//! The scheduling queue: pending pods waiting for a decision, highest `spec.priority` first
//! (first come, first served within a priority), with kube-scheduler's backoff for pods no
//! node fits.
//!
//! Each priority has its own lock-free FIFO (crossbeam `SegQueue`) of pod keys; a pod's
//! latest version and phase live in one map, so the queue is level-triggered: a key popped for
//! a pod that was deleted, or that is already being decided, is skipped.
//!
//! ```text
//!              add                 pop                  bound
//!   (absent) ───────▶ Active ──────────────▶ InFlight ─────────▶ (absent)
//!                       ▲                      │  │ conflict: requeue
//!                       │◀─────────────────────┘  │
//!                       │                         │ no node fits
//!                       │      cluster event      ▼
//!                       │  (backoff expired) Unschedulable ──┐ cluster event while
//!                       │◀───────────────────────┘           │ still backing off
//!                       │       backoff expired              ▼
//!                       └─────────────────────────────── Backoff
//! ```
//!
//! A pod that fails while a cluster event happened during its attempt goes straight to
//! Backoff (the event may have made room), as kube-scheduler's `moveRequestCycle` does. An
//! Unschedulable pod is retried after five minutes even without an event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_queue::SegQueue;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::pod::PodInfo;

/// kube-scheduler's `podInitialBackoffDuration`.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// kube-scheduler's `podMaxBackoffDuration`.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// kube-scheduler's `podMaxInUnschedulablePodsDuration`.
pub const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Active,
    /// Popped by a worker. `changed`: the pod's spec changed meanwhile, so decide again.
    InFlight {
        changed: bool,
    },
    /// No node fitted; waits for a cluster event (or five minutes).
    Unschedulable {
        since: Instant,
        backoff_until: Instant,
    },
    /// Waits out its backoff, then goes back to Active.
    Backoff {
        until: Instant,
    },
}

struct Entry {
    info: Arc<PodInfo>,
    phase: Phase,
    /// Failed attempts so far (drives the backoff).
    attempts: u32,
    /// The cluster-event count when the pod was last popped.
    popped_at_event: u64,
}

/// A pod handed to a worker.
#[derive(Clone, Debug)]
pub struct Popped {
    pub info: Arc<PodInfo>,
    /// The cluster-event count when it was popped.
    pub event_seq: u64,
}

struct Band {
    priority: i32,
    keys: SegQueue<String>,
}

pub struct SchedulingQueue {
    /// Sorted by priority, highest first. The write lock is taken only to add a band.
    bands: RwLock<Vec<Arc<Band>>>,
    pods: Mutex<HashMap<String, Entry>>,
    notify: Notify,
    cluster_events: AtomicU64,
    /// A cluster event has not been applied to the unschedulable pods yet.
    event_pending: AtomicBool,
    flush_wanted: Notify,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Default for SchedulingQueue {
    fn default() -> Self {
        SchedulingQueue::new(INITIAL_BACKOFF, MAX_BACKOFF)
    }
}

impl SchedulingQueue {
    pub fn new(initial_backoff: Duration, max_backoff: Duration) -> SchedulingQueue {
        SchedulingQueue {
            bands: RwLock::new(Vec::new()),
            pods: Mutex::new(HashMap::new()),
            notify: Notify::new(),
            cluster_events: AtomicU64::new(0),
            event_pending: AtomicBool::new(false),
            flush_wanted: Notify::new(),
            initial_backoff,
            max_backoff,
        }
    }

    /// The backoff after `attempts` failed attempts: 1 s doubling, at most 10 s.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let mut d = self.initial_backoff;
        for _ in 1..attempts {
            d = d.saturating_mul(2);
            if d >= self.max_backoff {
                return self.max_backoff;
            }
        }
        d.min(self.max_backoff)
    }

    fn push_key(&self, priority: i32, key: String) {
        let band = {
            let bands = self.bands.read();
            bands.iter().find(|b| b.priority == priority).cloned()
        };
        let band = band.unwrap_or_else(|| {
            let mut bands = self.bands.write();
            match bands.iter().position(|b| b.priority <= priority) {
                Some(at) if bands[at].priority == priority => bands[at].clone(),
                at => {
                    let b = Arc::new(Band {
                        priority,
                        keys: SegQueue::new(),
                    });
                    let at = at.unwrap_or(bands.len());
                    bands.insert(at, b.clone());
                    b
                }
            }
        });
        band.keys.push(key);
        self.notify.notify_one();
    }

    /// A new or changed pending pod. A change to what scheduling reads sends an unschedulable
    /// pod back (Active, or Backoff if its backoff has not expired).
    pub fn add_or_update(&self, info: PodInfo, now: Instant) {
        let key = info.key.clone();
        let priority = info.priority;
        let info = Arc::new(info);
        let mut pods = self.pods.lock();
        match pods.get_mut(&key) {
            None => {
                pods.insert(
                    key.clone(),
                    Entry {
                        info,
                        phase: Phase::Active,
                        attempts: 0,
                        popped_at_event: 0,
                    },
                );
                drop(pods);
                self.push_key(priority, key);
            }
            Some(e) if e.info.mod_revision > info.mod_revision => {}
            Some(e) => {
                let changed = e.info.scheduling_changed(&info);
                e.info = info;
                match e.phase {
                    Phase::Active | Phase::InFlight { changed: true } => {}
                    Phase::InFlight { changed: false } => e.phase = Phase::InFlight { changed },
                    Phase::Unschedulable { backoff_until, .. } if changed => {
                        if backoff_until > now {
                            e.phase = Phase::Backoff { until: backoff_until };
                        } else {
                            e.phase = Phase::Active;
                            drop(pods);
                            self.push_key(priority, key);
                        }
                    }
                    Phase::Unschedulable { .. } | Phase::Backoff { .. } => {}
                }
            }
        }
    }

    /// The pod was deleted, or bound (by us or someone else): it is no longer pending.
    pub fn remove(&self, key: &str) {
        self.pods.lock().remove(key);
    }

    /// The latest version of a pending pod.
    pub fn get(&self, key: &str) -> Option<Arc<PodInfo>> {
        self.pods.lock().get(key).map(|e| e.info.clone())
    }

    /// Takes the highest-priority Active pod, if any.
    pub fn pop(&self) -> Option<Popped> {
        // Lock order: bands, then pods (`push_key` is never called with `pods` held).
        let bands = self.bands.read();
        for band in bands.iter() {
            while let Some(key) = band.keys.pop() {
                let mut pods = self.pods.lock();
                if let Some(e) = pods.get_mut(&key) {
                    if e.phase == Phase::Active {
                        e.phase = Phase::InFlight { changed: false };
                        let seq = self.cluster_events.load(Ordering::Acquire);
                        e.popped_at_event = seq;
                        return Some(Popped {
                            info: e.info.clone(),
                            event_seq: seq,
                        });
                    }
                }
                // Stale: deleted, bound, or already taken through another key.
            }
        }
        None
    }

    /// Waits for an Active pod.
    pub async fn next(&self) -> Popped {
        loop {
            if let Some(p) = self.pop() {
                return p;
            }
            self.notify.notified().await;
        }
    }

    /// Sends an in-flight pod back to Active at once (its reservation lost a race, or its
    /// binding conflicted with a newer version of the pod).
    pub fn requeue(&self, key: &str) {
        let mut pods = self.pods.lock();
        if let Some(e) = pods.get_mut(key) {
            if matches!(e.phase, Phase::InFlight { .. }) {
                e.phase = Phase::Active;
                let priority = e.info.priority;
                drop(pods);
                self.push_key(priority, key.to_string());
            }
        }
    }

    /// No node fitted the in-flight pod.
    pub fn unschedulable(&self, key: &str, now: Instant) {
        let mut pods = self.pods.lock();
        let Some(e) = pods.get_mut(key) else { return };
        let Phase::InFlight { changed } = e.phase else { return };
        e.attempts += 1;
        let until = now + self.backoff(e.attempts);
        let moved = self.cluster_events.load(Ordering::Acquire) != e.popped_at_event;
        e.phase = if changed || moved {
            Phase::Backoff { until }
        } else {
            Phase::Unschedulable {
                since: now,
                backoff_until: until,
            }
        };
    }

    /// Something changed that may make room (a node added or changed, a pod deleted).
    /// Unschedulable pods move on the next [`SchedulingQueue::flush`] (back to Active, or to
    /// Backoff until their backoff expires): a burst of events costs one pass.
    pub fn cluster_event(&self) {
        self.cluster_events.fetch_add(1, Ordering::AcqRel);
        self.event_pending.store(true, Ordering::Release);
        self.flush_wanted.notify_one();
    }

    /// Waits until a cluster event asks for a flush.
    pub async fn flush_wanted(&self) {
        self.flush_wanted.notified().await;
    }

    /// Applies a pending cluster event to unschedulable pods, and moves pods whose backoff
    /// has expired (and pods unschedulable for five minutes) to Active. Returns when to flush
    /// next, if anything is waiting on time.
    pub fn flush(&self, now: Instant) -> Option<Instant> {
        let mut ready = Vec::new();
        let mut next: Option<Instant> = None;
        let event = self.event_pending.swap(false, Ordering::AcqRel);
        {
            let mut pods = self.pods.lock();
            for (key, e) in pods.iter_mut() {
                if let (true, Phase::Unschedulable { backoff_until, .. }) = (event, e.phase) {
                    e.phase = Phase::Backoff { until: backoff_until };
                }
                let due = match e.phase {
                    Phase::Backoff { until } => until,
                    Phase::Unschedulable { since, .. } => since + MAX_UNSCHEDULABLE,
                    _ => continue,
                };
                if due <= now {
                    e.phase = Phase::Active;
                    ready.push((e.info.priority, key.clone()));
                } else {
                    next = Some(next.map_or(due, |n| n.min(due)));
                }
            }
        }
        for (priority, key) in ready {
            self.push_key(priority, key);
        }
        next
    }

    /// The phase of a pending pod.
    pub fn phase(&self, key: &str) -> Option<Phase> {
        self.pods.lock().get(key).map(|e| e.phase)
    }

    /// Pending pods in any phase.
    pub fn len(&self) -> usize {
        self.pods.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pod;
    use serde_json::json;

    fn prio(name: &str, priority: i64) -> PodInfo {
        pod(name, "0", "0", json!({ "priority": priority }))
    }

    fn key(name: &str) -> String {
        format!("/registry/core/pods/default/{name}")
    }

    #[test]
    fn higher_priority_pops_first_and_equal_priority_is_fifo() {
        let q = SchedulingQueue::default();
        let now = Instant::now();
        for (n, p) in [
            ("low-1", 0),
            ("high-1", 100),
            ("low-2", 0),
            ("mid", 50),
            ("high-2", 100),
            ("neg", -5),
        ] {
            q.add_or_update(prio(n, p), now);
        }
        let order: Vec<String> = std::iter::from_fn(|| q.pop().map(|p| p.info.name.clone())).collect();
        assert_eq!(order, vec!["high-1", "high-2", "mid", "low-1", "low-2", "neg"]);
    }

    #[test]
    fn deleted_and_in_flight_pods_are_not_popped_again() {
        let q = SchedulingQueue::default();
        let now = Instant::now();
        q.add_or_update(prio("a", 0), now);
        q.add_or_update(prio("b", 0), now);
        q.remove(&key("a"));
        let b = q.pop().expect("b");
        assert_eq!(b.info.name, "b");
        q.add_or_update(prio("b", 0), now); // a status-only update while in flight
        assert!(q.pop().is_none());
        assert_eq!(q.phase(&key("b")), Some(Phase::InFlight { changed: false }));
    }

    #[test]
    fn backoff_doubles_from_one_second_to_at_most_ten() {
        let q = SchedulingQueue::default();
        let secs: Vec<u64> = (1..=6).map(|a| q.backoff(a).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn unschedulable_pod_waits_for_a_cluster_event_and_its_backoff() {
        let q = SchedulingQueue::default();
        let t0 = Instant::now();
        q.add_or_update(prio("a", 0), t0);
        q.pop().expect("a");
        q.unschedulable(&key("a"), t0);
        assert!(matches!(q.phase(&key("a")), Some(Phase::Unschedulable { .. })));
        // Time alone does not retry it (until five minutes) ...
        assert_eq!(q.flush(t0 + Duration::from_secs(5)), Some(t0 + MAX_UNSCHEDULABLE));
        assert!(q.pop().is_none());
        // ... a cluster event inside the backoff moves it to Backoff ...
        q.cluster_event();
        q.flush(t0 + Duration::from_millis(500));
        assert_eq!(
            q.phase(&key("a")),
            Some(Phase::Backoff {
                until: t0 + Duration::from_secs(1)
            })
        );
        assert!(q.pop().is_none());
        // ... and it is retried when the backoff expires.
        assert_eq!(
            q.flush(t0 + Duration::from_millis(999)),
            Some(t0 + Duration::from_secs(1))
        );
        assert_eq!(q.flush(t0 + Duration::from_secs(1)), None);
        assert_eq!(q.pop().expect("retried").info.name, "a");
        // The second failure backs off 2 s; an event after that sends it straight to Active.
        q.unschedulable(&key("a"), t0 + Duration::from_secs(1));
        q.cluster_event();
        q.flush(t0 + Duration::from_secs(4));
        assert_eq!(q.pop().expect("retried").info.name, "a");
    }

    #[test]
    fn a_cluster_event_during_the_attempt_sends_the_pod_to_backoff() {
        let q = SchedulingQueue::default();
        let t0 = Instant::now();
        q.add_or_update(prio("a", 0), t0);
        q.pop().expect("a");
        q.cluster_event();
        q.unschedulable(&key("a"), t0);
        assert_eq!(
            q.phase(&key("a")),
            Some(Phase::Backoff {
                until: t0 + INITIAL_BACKOFF
            })
        );
    }

    #[test]
    fn a_spec_change_retries_an_unschedulable_pod_but_a_status_change_does_not() {
        let q = SchedulingQueue::default();
        let t0 = Instant::now();
        q.add_or_update(prio("a", 0), t0);
        q.pop().expect("a");
        q.unschedulable(&key("a"), t0);
        let later = t0 + Duration::from_secs(2);
        let mut status_only = prio("a", 0);
        status_only.object["status"] = json!({"conditions": [{"type": "PodScheduled", "status": "False"}]});
        q.add_or_update(status_only, later);
        assert!(q.pop().is_none());
        q.add_or_update(
            pod("a", "0", "0", json!({"priority": 0, "nodeSelector": {"zone": "b"}})),
            later,
        );
        assert_eq!(q.pop().expect("retried").info.name, "a");
    }

    #[tokio::test]
    async fn next_waits_for_a_pod_to_arrive() {
        let q = Arc::new(SchedulingQueue::default());
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.next().await.info.name.clone() }
        });
        tokio::task::yield_now().await;
        q.add_or_update(prio("late", 0), Instant::now());
        assert_eq!(waiter.await.expect("join"), "late");
    }
}
