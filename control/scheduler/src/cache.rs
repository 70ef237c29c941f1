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

use parking_lot::Mutex;

use crate::pod::PodUsage;
use crate::snapshot::{NodeInfo, NodeTable, NodeUsage, ReserveError, Snapshot};

#[derive(Clone, Debug, PartialEq, Eq)]
struct PlacedPod {
    node: String,
    usage: PodUsage,
    bound: bool,
}

#[derive(Debug, Default)]
struct Placed {
    pods: HashMap<String, PlacedPod>,
    /// Usage on nodes the snapshot lacks, by node name.
    orphans: HashMap<String, NodeUsage>,
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
        let mut placed = self.placed.lock();
        if placed.pods.contains_key(key) {
            return Err(ReserveError::AlreadyPlaced);
        }
        table.reserve(slot, usage)?;
        placed.pods.insert(
            key.to_string(),
            PlacedPod {
                node: table.names[slot].clone(),
                usage: usage.clone(),
                bound: false,
            },
        );
        Ok(())
    }

    /// Drops a reservation whose binding failed, if it is still this one (Reserved on `node`).
    pub fn forget(&self, key: &str, node: &str) -> bool {
        let table = self.snapshot.read();
        let mut placed = self.placed.lock();
        match placed.pods.get(key) {
            Some(p) if !p.bound && p.node == node => {
                let p = placed.pods.remove(key).expect("just seen");
                unplace(&table, &mut placed, &p);
                true
            }
            _ => false,
        }
    }

    /// The store says pod `key` is bound to `node` (and not finished).
    pub fn bound(&self, key: &str, node: &str, usage: &PodUsage) {
        let table = self.snapshot.read();
        let mut placed = self.placed.lock();
        if let Some(p) = placed.pods.get_mut(key) {
            if p.node == node {
                p.bound = true;
                return;
            }
            // Bound elsewhere than we reserved: our binding will fail; move the charge now.
            let p = placed.pods.remove(key).expect("just seen");
            unplace(&table, &mut placed, &p);
        }
        let p = PlacedPod {
            node: node.to_string(),
            usage: usage.clone(),
            bound: true,
        };
        match table.slot(node) {
            Some(i) => table.charge(i, usage),
            None => placed.orphans.entry(node.to_string()).or_default().add(usage),
        }
        placed.pods.insert(key.to_string(), p);
    }

    /// Pod `key` was deleted or has finished: its room is free.
    pub fn gone(&self, key: &str) {
        let table = self.snapshot.read();
        let mut placed = self.placed.lock();
        if let Some(p) = placed.pods.remove(key) {
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
