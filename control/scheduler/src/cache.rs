//! What is placed where: the node snapshot plus every pod that takes room on a node, whether
//! the scheduler reserved it (binding in flight) or the store says it is bound. It keeps the
//! snapshot's free columns equal to allocatable minus the pods placed, through any order of
//! reservations, binding outcomes and watch events.
//!
//! ```text
//!              assume (CAS won)                   watch: bound to N
//!   (absent) ──────────────────▶ Reserved(N) ─────────────────────────▶ Bound(N)
//!      ▲  │                         │ forget: the binding failed           │
//!      │  │                         ▼                                     │
//!      │  └─ watch: bound to N ─▶ Bound(N)     (absent)  ◀────────────────┘
//!      └──────────────────────────────────────────────── watch: deleted or finished
//! ```
//!
//! A pod bound to a node the snapshot does not have (yet, or any more) is counted against
//! that node's name and charged when the node appears.
//!
//! Lock order: the snapshot's table first, then the placed-pods mutex.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::plugins::inter_pod_affinity::{InterPodState, PodAffinityInfo};
use crate::pod::{PodInfo, PodUsage};
use crate::snapshot::{NodeInfo, NodeTable, NodeUsage, ReserveError, Snapshot};

#[derive(Clone, Debug, PartialEq, Eq)]
struct PlacedPod {
    node: String,
    usage: PodUsage,
    bound: bool,
    /// Labels and inter-pod terms, for other pods' inter-pod affinity.
    affinity: Arc<PodAffinityInfo>,
}

#[derive(Debug, Default)]
struct Placed {
    pods: HashMap<String, PlacedPod>,
    /// Usage on nodes the snapshot lacks, by node name.
    orphans: HashMap<String, NodeUsage>,
    /// Placed pods that carry inter-pod terms: while there are none, pods without terms of
    /// their own skip inter-pod affinity altogether.
    with_terms: usize,
}

impl Placed {
    fn insert(&mut self, key: &str, p: PlacedPod) {
        if p.affinity.has_terms() {
            self.with_terms += 1;
        }
        if let Some(old) = self.pods.insert(key.to_string(), p) {
            if old.affinity.has_terms() {
                self.with_terms -= 1;
            }
        }
    }

    fn remove(&mut self, key: &str) -> Option<PlacedPod> {
        let p = self.pods.remove(key)?;
        if p.affinity.has_terms() {
            self.with_terms -= 1;
        }
        Some(p)
    }

    /// Inter-pod affinity state for `pod` over the pods placed on nodes of `table`, or `None`
    /// when inter-pod affinity has nothing to say about it.
    fn inter_pod_state(&self, table: &NodeTable, pod: &Arc<PodAffinityInfo>) -> Option<InterPodState> {
        if !pod.has_terms() && self.with_terms == 0 {
            return None;
        }
        let placed = self
            .pods
            .values()
            .filter_map(|p| table.slot(&p.node).map(|i| (&*p.affinity, &table.labels[i])));
        Some(InterPodState::new(Arc::clone(pod), placed))
    }
}

#[derive(Debug, Default)]
pub struct Cache {
    snapshot: Snapshot,
    placed: Mutex<Placed>,
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Adds or updates a node. Says whether anything scheduling reads changed (a reason to
    /// retry unschedulable pods).
    pub fn upsert_node(&self, node: NodeInfo) -> bool {
        let mut table = self.snapshot.write();
        let used = if table.slot(&node.name).is_none() {
            self.placed.lock().orphans.remove(&node.name).unwrap_or_default()
        } else {
            NodeUsage::default()
        };
        Snapshot::upsert_locked(&mut table, node, used)
    }

    /// Removes a node; the pods on it stay counted against its name until they go.
    pub fn remove_node(&self, name: &str) {
        let mut table = self.snapshot.write();
        if let Some(used) = Snapshot::remove_locked(&mut table, name) {
            if used != NodeUsage::default() {
                self.placed.lock().orphans.insert(name.to_string(), used);
            }
        }
    }

    /// Reserves room for pod `key` on slot `slot` of `table` (the read guard the decision was
    /// made under) and records it as Reserved.
    pub fn assume(&self, table: &NodeTable, slot: usize, key: &str, usage: &PodUsage) -> Result<(), ReserveError> {
        self.assume_with(table, slot, key, usage, &Arc::default())
    }

    /// [`Cache::assume`] for a pod with its labels and inter-pod terms. Under the placed-pods
    /// lock it re-checks the node against the pods placed now, so two decisions made in
    /// parallel cannot both break a required (anti-)affinity rule.
    pub fn assume_pod(&self, table: &NodeTable, slot: usize, pod: &PodInfo) -> Result<(), ReserveError> {
        self.assume_with(table, slot, &pod.key, &pod.usage(), &pod.inter_pod)
    }

    fn assume_with(
        &self,
        table: &NodeTable,
        slot: usize,
        key: &str,
        usage: &PodUsage,
        affinity: &Arc<PodAffinityInfo>,
    ) -> Result<(), ReserveError> {
        let mut placed = self.placed.lock();
        if placed.pods.contains_key(key) {
            return Err(ReserveError::AlreadyPlaced);
        }
        if affinity.has_required_terms() || placed.with_terms > 0 {
            if let Some(state) = placed.inter_pod_state(table, affinity) {
                if !state.filter(table, slot).is_success() {
                    return Err(ReserveError::AffinityConflict);
                }
            }
        }
        table.reserve(slot, usage)?;
        placed.insert(
            key,
            PlacedPod {
                node: table.names[slot].clone(),
                usage: usage.clone(),
                bound: false,
                affinity: Arc::clone(affinity),
            },
        );
        Ok(())
    }

    /// Inter-pod affinity state for `pod` over the pods placed now on nodes of `table` (the
    /// read guard the decision is made under), or `None` when it has nothing to say.
    pub fn inter_pod_state(&self, table: &NodeTable, pod: &PodInfo) -> Option<InterPodState> {
        self.placed.lock().inter_pod_state(table, &pod.inter_pod)
    }

    /// Drops a reservation whose binding failed, if it is still this one (Reserved on `node`).
    pub fn forget(&self, key: &str, node: &str) -> bool {
        let table = self.snapshot.read();
        let mut placed = self.placed.lock();
        match placed.pods.get(key) {
            Some(p) if !p.bound && p.node == node => {
                let p = placed.remove(key).expect("just seen");
                unplace(&table, &mut placed, &p);
                true
            }
            _ => false,
        }
    }

    /// The store says pod `key` is bound to `node` (and not finished).
    pub fn bound(&self, key: &str, node: &str, usage: &PodUsage) {
        self.bound_with(key, node, usage, &Arc::default());
    }

    /// [`Cache::bound`] for a pod with its labels and inter-pod terms.
    pub fn bound_pod(&self, pod: &PodInfo, node: &str) {
        self.bound_with(&pod.key, node, &pod.usage(), &pod.inter_pod);
    }

    fn bound_with(&self, key: &str, node: &str, usage: &PodUsage, affinity: &Arc<PodAffinityInfo>) {
        let table = self.snapshot.read();
        let mut placed = self.placed.lock();
        if let Some(p) = placed.pods.get_mut(key) {
            if p.node == node {
                p.bound = true;
                // Labels may have changed since it was placed; keep what others match on fresh.
                if *p.affinity != **affinity {
                    let mut p = p.clone();
                    p.affinity = Arc::clone(affinity);
                    placed.insert(key, p);
                }
                return;
            }
            // Bound elsewhere than we reserved: our binding will fail; move the charge now.
            let p = placed.remove(key).expect("just seen");
            unplace(&table, &mut placed, &p);
        }
        let p = PlacedPod {
            node: node.to_string(),
            usage: usage.clone(),
            bound: true,
            affinity: Arc::clone(affinity),
        };
        match table.slot(node) {
            Some(i) => table.charge(i, usage),
            None => placed.orphans.entry(node.to_string()).or_default().add(usage),
        }
        placed.insert(key, p);
    }

    /// Pod `key` was deleted or has finished: its room is free.
    pub fn gone(&self, key: &str) {
        let table = self.snapshot.read();
        let mut placed = self.placed.lock();
        if let Some(p) = placed.remove(key) {
            unplace(&table, &mut placed, &p);
        }
    }

    /// Whether pod `key` takes room on a node (reserved or bound).
    pub fn is_placed(&self, key: &str) -> bool {
        self.placed.lock().pods.contains_key(key)
    }

    /// The node pod `key` is placed on, and whether the store has confirmed it.
    pub fn placement(&self, key: &str) -> Option<(String, bool)> {
        self.placed.lock().pods.get(key).map(|p| (p.node.clone(), p.bound))
    }

    /// Pods placed (reserved or bound).
    pub fn placed_count(&self) -> usize {
        self.placed.lock().pods.len()
    }
}

fn unplace(table: &NodeTable, placed: &mut Placed, p: &PlacedPod) {
    match table.slot(&p.node) {
        Some(i) => table.release(i, &p.usage),
        None => {
            if let Some(o) = placed.orphans.get_mut(&p.node) {
                o.sub(&p.usage);
                if o.pods <= 0 {
                    placed.orphans.remove(&p.node);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::Resources;
    use crate::testing::node;

    fn usage(cpu: i64) -> PodUsage {
        PodUsage {
            requests: Resources {
                milli_cpu: cpu,
                memory: 0,
            },
            non_zero: Resources {
                milli_cpu: cpu,
                memory: 0,
            },
            ports: vec![],
        }
    }

    fn free_cpu(c: &Cache, name: &str) -> i64 {
        let t = c.snapshot().read();
        t.free(t.slot(name).expect("node")).0
    }

    #[test]
    fn reserved_pod_confirmed_by_watch_is_counted_once() {
        let c = Cache::new();
        c.upsert_node(node("a", 1000, 1000, 10));
        {
            let t = c.snapshot().read();
            c.assume(&t, 0, "p", &usage(300)).expect("fits");
            assert_eq!(c.assume(&t, 0, "p", &usage(300)), Err(ReserveError::AlreadyPlaced));
        }
        c.bound("p", "a", &usage(300));
        assert_eq!(free_cpu(&c, "a"), 700);
        assert!(!c.forget("p", "a"), "a bound pod is not forgotten");
        c.gone("p");
        assert_eq!(free_cpu(&c, "a"), 1000);
    }

    #[test]
    fn pod_bound_elsewhere_than_reserved_moves_its_charge() {
        let c = Cache::new();
        c.upsert_node(node("a", 1000, 1000, 10));
        c.upsert_node(node("b", 1000, 1000, 10));
        {
            let t = c.snapshot().read();
            c.assume(&t, 0, "p", &usage(300)).expect("fits");
        }
        c.bound("p", "b", &usage(300));
        assert_eq!(free_cpu(&c, "a"), 1000);
        assert_eq!(free_cpu(&c, "b"), 700);
        assert!(!c.forget("p", "a"));
        assert_eq!(free_cpu(&c, "b"), 700);
    }

    #[test]
    fn pods_bound_to_an_unknown_node_are_charged_when_it_appears() {
        let c = Cache::new();
        c.bound("p", "late", &usage(400));
        c.bound("q", "late", &usage(100));
        c.gone("q");
        c.upsert_node(node("late", 1000, 1000, 10));
        assert_eq!(free_cpu(&c, "late"), 600);
        c.remove_node("late");
        c.upsert_node(node("late", 2000, 1000, 10));
        assert_eq!(
            free_cpu(&c, "late"),
            1600,
            "usage survives the node leaving and coming back"
        );
    }
}
