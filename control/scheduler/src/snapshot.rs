//! The scheduler's view of the nodes, in struct-of-arrays form: one vector per attribute,
//! indexed by a node's slot, so a filter pass reads only the columns it needs.
//!
//! Free resources are `AtomicI64`s. Workers reserve with compare-and-swap and never take a
//! lock to do so; a reservation that would drive a column below zero is refused, so
//! concurrent decisions can never overcommit a node. The set of nodes (adding, changing or
//! removing one) changes under the table's write lock, which waits for decisions in flight:
//! node churn is rare next to pod decisions, and a decision reads slots that cannot move
//! under it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use gantry_api::validation::parse_quantity;
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use serde_json::{Map, Value};

use crate::pod::{HostPort, PodUsage, Resources};

/// The taint kube's node lifecycle controller puts on a node whose Ready condition is False;
/// the scheduler treats a NotReady node as carrying it (NoSchedule).
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The same for a Ready condition that is Unknown (or missing).
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint that stands for `spec.unschedulable`; tolerating it lets a pod onto a cordoned node.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl TaintEffect {
    pub fn parse(s: &str) -> Option<TaintEffect> {
        match s {
            "NoSchedule" => Some(TaintEffect::NoSchedule),
            "PreferNoSchedule" => Some(TaintEffect::PreferNoSchedule),
            "NoExecute" => Some(TaintEffect::NoExecute),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: TaintEffect,
}

impl Taint {
    pub fn new(key: impl Into<String>, value: impl Into<String>, effect: TaintEffect) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut t = serde_json::json!({"key": self.key, "effect": self.effect.as_str()});
        if !self.value.is_empty() {
            t["value"] = Value::String(self.value.clone());
        }
        t
    }
}

/// A node as the scheduler sees it, read from its stored JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeInfo {
    pub name: String,
    pub labels: Map<String, Value>,
    /// `spec.taints`, plus the not-ready/unreachable taint when the node is not Ready.
    pub taints: Vec<Taint>,
    pub allocatable: Resources,
    pub allocatable_pods: i64,
    pub ready: bool,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
}

impl NodeInfo {
    pub fn from_json(bytes: &[u8]) -> Result<NodeInfo, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        NodeInfo::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Result<NodeInfo, String> {
        let name = v["metadata"]["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or("metadata.name is missing")?
            .to_string();
        let status = &v["status"];
        let alloc = if status["allocatable"].is_object() {
            &status["allocatable"]
        } else {
            &status["capacity"]
        };
        let millis = |field: &str| -> Result<i64, String> {
            match &alloc[field] {
                Value::Null => Ok(0),
                Value::String(s) => parse_quantity(s)
                    .map_err(|e| format!("status.allocatable.{field}: {e}"))
                    .and_then(|q| i64::try_from(q).map_err(|_| format!("status.allocatable.{field} is too large"))),
                other => Err(format!("status.allocatable.{field}: {other} is not a quantity string")),
            }
        };
        let allocatable = Resources {
            milli_cpu: millis("cpu")?,
            memory: millis("memory")? / 1000,
        };
        let allocatable_pods = millis("pods")? / 1000;
        let ready_status = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready")
            .and_then(|c| c["status"].as_str());
        let ready = ready_status == Some("True");
        let mut taints: Vec<Taint> = v["spec"]["taints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                Some(Taint::new(
                    t["key"].as_str()?,
                    t["value"].as_str().unwrap_or_default(),
                    TaintEffect::parse(t["effect"].as_str()?)?,
                ))
            })
            .collect();
        if !ready {
            let key = if ready_status == Some("False") {
                TAINT_NOT_READY
            } else {
                TAINT_UNREACHABLE
            };
            if !taints.iter().any(|t| t.key == key) {
                taints.push(Taint::new(key, "", TaintEffect::NoSchedule));
            }
        }
        Ok(NodeInfo {
            name,
            labels: v["metadata"]["labels"].as_object().cloned().unwrap_or_default(),
            taints,
            allocatable,
            allocatable_pods,
            ready,
            unschedulable: v["spec"]["unschedulable"].as_bool().unwrap_or(false),
        })
    }
}

/// Why a reservation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReserveError {
    /// Another decision took the room first (or the pod never fitted): re-decide the pod.
    Insufficient,
    /// A host port the pod needs was taken.
    PortTaken,
    /// The pod is already placed (it was bound meanwhile, by us or someone else).
    AlreadyPlaced,
    /// A pod placed meanwhile breaks a required inter-pod (anti-)affinity rule on the node:
    /// re-decide the pod.
    AffinityConflict,
}

/// The nodes, one column per attribute. Slots are dense (`0..len()`); removing a node moves
/// the last one into its slot, under the write lock.
#[derive(Debug, Default)]
pub struct NodeTable {
    index: HashMap<String, usize>,
    pub names: Vec<String>,
    pub labels: Vec<Map<String, Value>>,
    pub taints: Vec<Vec<Taint>>,
    pub alloc_cpu: Vec<i64>,
    pub alloc_memory: Vec<i64>,
    pub alloc_pods: Vec<i64>,
    pub ready: Vec<bool>,
    pub unschedulable: Vec<bool>,
    /// Allocatable minus the requests of every pod placed on the node (bound or reserved).
    /// Negative only when pods were bound beyond capacity by someone else.
    pub free_cpu: Vec<AtomicI64>,
    pub free_memory: Vec<AtomicI64>,
    pub free_pods: Vec<AtomicI64>,
    /// Requests with kube-scheduler's non-zero defaults, for least-allocated scoring.
    pub non_zero_cpu: Vec<AtomicI64>,
    pub non_zero_memory: Vec<AtomicI64>,
    /// Host ports in use (a short critical section, only for pods that ask for host ports).
    pub ports: Vec<Mutex<Vec<HostPort>>>,
}

impl NodeTable {
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn slot(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn free(&self, i: usize) -> (i64, i64, i64) {
        (
            self.free_cpu[i].load(Ordering::Acquire),
            self.free_memory[i].load(Ordering::Acquire),
            self.free_pods[i].load(Ordering::Acquire),
        )
    }

    /// Reserves a pod's usage on node `i` if it fits, by compare-and-swap on each free column
    /// in turn (pods, cpu, memory); a column that would go negative undoes the ones taken.
    /// The undo can make a concurrent decision see less room than there is for an instant,
    /// which errs on the safe side: it may retry, it never overcommits.
    pub fn reserve(&self, i: usize, usage: &PodUsage) -> Result<(), ReserveError> {
        let mut ports = (!usage.ports.is_empty()).then(|| self.ports[i].lock());
        if let Some(used) = &ports {
            if usage.ports.iter().any(|p| used.iter().any(|u| u.conflicts(p))) {
                return Err(ReserveError::PortTaken);
            }
        }
        let columns = [
            (&self.free_pods[i], 1),
            (&self.free_cpu[i], usage.requests.milli_cpu),
            (&self.free_memory[i], usage.requests.memory),
        ];
        for (k, (col, want)) in columns.iter().enumerate() {
            if *want > 0 && !take(col, *want) {
                for (col, want) in &columns[..k] {
                    col.fetch_add(*want, Ordering::AcqRel);
                }
                return Err(ReserveError::Insufficient);
            }
        }
        self.non_zero_cpu[i].fetch_add(usage.non_zero.milli_cpu, Ordering::AcqRel);
        self.non_zero_memory[i].fetch_add(usage.non_zero.memory, Ordering::AcqRel);
        if let Some(used) = &mut ports {
            used.extend(usage.ports.iter().cloned());
        }
        Ok(())
    }

    /// Counts a pod on node `i` unconditionally (one bound by someone else: it is there).
    pub fn charge(&self, i: usize, usage: &PodUsage) {
        self.free_pods[i].fetch_sub(1, Ordering::AcqRel);
        self.free_cpu[i].fetch_sub(usage.requests.milli_cpu, Ordering::AcqRel);
        self.free_memory[i].fetch_sub(usage.requests.memory, Ordering::AcqRel);
        self.non_zero_cpu[i].fetch_add(usage.non_zero.milli_cpu, Ordering::AcqRel);
        self.non_zero_memory[i].fetch_add(usage.non_zero.memory, Ordering::AcqRel);
        if !usage.ports.is_empty() {
            self.ports[i].lock().extend(usage.ports.iter().cloned());
        }
    }

    /// Gives a pod's usage back to node `i`.
    pub fn release(&self, i: usize, usage: &PodUsage) {
        self.free_pods[i].fetch_add(1, Ordering::AcqRel);
        self.free_cpu[i].fetch_add(usage.requests.milli_cpu, Ordering::AcqRel);
        self.free_memory[i].fetch_add(usage.requests.memory, Ordering::AcqRel);
        self.non_zero_cpu[i].fetch_sub(usage.non_zero.milli_cpu, Ordering::AcqRel);
        self.non_zero_memory[i].fetch_sub(usage.non_zero.memory, Ordering::AcqRel);
        if !usage.ports.is_empty() {
            let mut used = self.ports[i].lock();
            for p in &usage.ports {
                if let Some(at) = used.iter().position(|u| u == p) {
                    used.swap_remove(at);
                }
            }
        }
    }

    /// Adds a node whose pods already use `used` (pods bound to it before it was seen), or
    /// updates one in place: a changed allocatable moves the free columns by the difference,
    /// keeping every reservation. Says whether anything scheduling reads changed.
    fn upsert(&mut self, n: NodeInfo, used: NodeUsage) -> bool {
        if let Some(i) = self.slot(&n.name) {
            let same = self.labels[i] == n.labels
                && self.taints[i] == n.taints
                && self.alloc_cpu[i] == n.allocatable.milli_cpu
                && self.alloc_memory[i] == n.allocatable.memory
                && self.alloc_pods[i] == n.allocatable_pods
                && self.ready[i] == n.ready
                && self.unschedulable[i] == n.unschedulable;
            if same {
                return false;
            }
            self.free_cpu[i].fetch_add(n.allocatable.milli_cpu - self.alloc_cpu[i], Ordering::AcqRel);
            self.free_memory[i].fetch_add(n.allocatable.memory - self.alloc_memory[i], Ordering::AcqRel);
            self.free_pods[i].fetch_add(n.allocatable_pods - self.alloc_pods[i], Ordering::AcqRel);
            self.labels[i] = n.labels;
            self.taints[i] = n.taints;
            self.alloc_cpu[i] = n.allocatable.milli_cpu;
            self.alloc_memory[i] = n.allocatable.memory;
            self.alloc_pods[i] = n.allocatable_pods;
            self.ready[i] = n.ready;
            self.unschedulable[i] = n.unschedulable;
            return true;
        }
        self.index.insert(n.name.clone(), self.names.len());
        self.free_cpu
            .push(AtomicI64::new(n.allocatable.milli_cpu - used.requests.milli_cpu));
        self.free_memory
            .push(AtomicI64::new(n.allocatable.memory - used.requests.memory));
        self.free_pods.push(AtomicI64::new(n.allocatable_pods - used.pods));
        self.non_zero_cpu.push(AtomicI64::new(used.non_zero.milli_cpu));
        self.non_zero_memory.push(AtomicI64::new(used.non_zero.memory));
        self.ports.push(Mutex::new(used.ports));
        self.names.push(n.name);
        self.labels.push(n.labels);
        self.taints.push(n.taints);
        self.alloc_cpu.push(n.allocatable.milli_cpu);
        self.alloc_memory.push(n.allocatable.memory);
        self.alloc_pods.push(n.allocatable_pods);
        self.ready.push(n.ready);
        self.unschedulable.push(n.unschedulable);
        true
    }

    /// Removes a node, returning what its pods use (they stay counted until they go).
    fn remove(&mut self, name: &str) -> Option<NodeUsage> {
        let i = self.index.remove(name)?;
        let used = NodeUsage {
            requests: Resources {
                milli_cpu: self.alloc_cpu[i] - self.free_cpu[i].load(Ordering::Acquire),
                memory: self.alloc_memory[i] - self.free_memory[i].load(Ordering::Acquire),
            },
            non_zero: Resources {
                milli_cpu: self.non_zero_cpu[i].load(Ordering::Acquire),
                memory: self.non_zero_memory[i].load(Ordering::Acquire),
            },
            pods: self.alloc_pods[i] - self.free_pods[i].load(Ordering::Acquire),
            ports: std::mem::take(&mut *self.ports[i].lock()),
        };
        self.names.swap_remove(i);
        self.labels.swap_remove(i);
        self.taints.swap_remove(i);
        self.alloc_cpu.swap_remove(i);
        self.alloc_memory.swap_remove(i);
        self.alloc_pods.swap_remove(i);
        self.ready.swap_remove(i);
        self.unschedulable.swap_remove(i);
        self.free_cpu.swap_remove(i);
        self.free_memory.swap_remove(i);
        self.free_pods.swap_remove(i);
        self.non_zero_cpu.swap_remove(i);
        self.non_zero_memory.swap_remove(i);
        self.ports.swap_remove(i);
        if let Some(moved) = self.names.get(i) {
            self.index.insert(moved.clone(), i);
        }
        Some(used)
    }
}

/// Takes `want` from `col` if that leaves it non-negative.
fn take(col: &AtomicI64, want: i64) -> bool {
    let mut cur = col.load(Ordering::Acquire);
    loop {
        if cur < want {
            return false;
        }
        match col.compare_exchange_weak(cur, cur - want, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return true,
            Err(now) => cur = now,
        }
    }
}

/// What the pods on one node use in total.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeUsage {
    pub requests: Resources,
    pub non_zero: Resources,
    pub pods: i64,
    pub ports: Vec<HostPort>,
}

impl NodeUsage {
    pub fn add(&mut self, u: &PodUsage) {
        self.requests.milli_cpu += u.requests.milli_cpu;
        self.requests.memory += u.requests.memory;
        self.non_zero.milli_cpu += u.non_zero.milli_cpu;
        self.non_zero.memory += u.non_zero.memory;
        self.pods += 1;
        self.ports.extend(u.ports.iter().cloned());
    }

    pub fn sub(&mut self, u: &PodUsage) {
        self.requests.milli_cpu -= u.requests.milli_cpu;
        self.requests.memory -= u.requests.memory;
        self.non_zero.milli_cpu -= u.non_zero.milli_cpu;
        self.non_zero.memory -= u.non_zero.memory;
        self.pods -= 1;
        for p in &u.ports {
            if let Some(at) = self.ports.iter().position(|x| x == p) {
                self.ports.swap_remove(at);
            }
        }
    }
}

/// The node table behind its lock, and the rotating start of the next filter pass.
#[derive(Debug, Default)]
pub struct Snapshot {
    table: RwLock<NodeTable>,
    next_start: AtomicUsize,
}

impl Snapshot {
    pub fn new() -> Snapshot {
        Snapshot::default()
    }

    /// The table for a decision. Hold it only while deciding and reserving (never across
    /// an `.await`): node changes wait for it.
    pub fn read(&self) -> RwLockReadGuard<'_, NodeTable> {
        self.table.read()
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, NodeTable> {
        self.table.write()
    }

    /// Adds or updates a node; `used` is what pods already bound to it take (for a new node).
    /// Says whether anything scheduling reads changed.
    pub fn upsert_node(&self, node: NodeInfo, used: NodeUsage) -> bool {
        self.table.write().upsert(node, used)
    }

    pub(crate) fn upsert_locked(table: &mut NodeTable, node: NodeInfo, used: NodeUsage) -> bool {
        table.upsert(node, used)
    }

    pub(crate) fn remove_locked(table: &mut NodeTable, name: &str) -> Option<NodeUsage> {
        table.remove(name)
    }

    /// Where the next filter pass starts, and moves it on by the nodes that pass will
    /// examine, as kube-scheduler's `nextStartNodeIndex` does.
    pub fn start_offset(&self, examined: usize, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        self.next_start.fetch_add(examined, Ordering::Relaxed) % len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::node;
    use serde_json::json;

    fn usage(cpu: i64, mem: i64) -> PodUsage {
        PodUsage {
            requests: Resources {
                milli_cpu: cpu,
                memory: mem,
            },
            non_zero: Resources {
                milli_cpu: cpu,
                memory: mem,
            },
            ports: vec![],
        }
    }

    #[test]
    fn node_json_reads_allocatable_taints_and_readiness() {
        let n = NodeInfo::from_value(&json!({
            "metadata": {"name": "n1", "labels": {"zone": "a"}},
            "spec": {"taints": [{"key": "gpu", "value": "true", "effect": "NoSchedule"}]},
            "status": {
                "allocatable": {"cpu": "3500m", "memory": "8Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "False"}]
            }
        }))
        .expect("node");
        assert_eq!(n.allocatable.milli_cpu, 3500);
        assert_eq!(n.allocatable.memory, 8 << 30);
        assert_eq!(n.allocatable_pods, 110);
        assert!(!n.ready);
        assert_eq!(
            n.taints,
            vec![
                Taint::new("gpu", "true", TaintEffect::NoSchedule),
                Taint::new(TAINT_NOT_READY, "", TaintEffect::NoSchedule)
            ]
        );
    }

    #[test]
    fn reserve_refuses_what_does_not_fit_and_undoes_partial_takes() {
        let mut t = NodeTable::default();
        t.upsert(node("a", 1000, 1000, 2), NodeUsage::default());
        assert_eq!(t.reserve(0, &usage(600, 100)), Ok(()));
        // cpu does not fit: the pod slot taken first is given back.
        assert_eq!(t.reserve(0, &usage(600, 100)), Err(ReserveError::Insufficient));
        assert_eq!(t.free(0), (400, 900, 1));
        assert_eq!(t.reserve(0, &usage(400, 900)), Ok(()));
        assert_eq!(
            t.reserve(0, &usage(0, 0)),
            Err(ReserveError::Insufficient),
            "no pod slot left"
        );
        t.release(0, &usage(400, 900));
        assert_eq!(t.free(0), (400, 900, 1));
    }

    #[test]
    fn host_ports_are_reserved_with_the_pod() {
        let mut t = NodeTable::default();
        t.upsert(node("a", 1000, 1000, 10), NodeUsage::default());
        let mut u = usage(1, 1);
        u.ports.push(HostPort {
            ip: "0.0.0.0".into(),
            protocol: "TCP".into(),
            port: 80,
        });
        assert_eq!(t.reserve(0, &u), Ok(()));
        assert_eq!(t.reserve(0, &u), Err(ReserveError::PortTaken));
        t.release(0, &u);
        assert_eq!(t.reserve(0, &u), Ok(()));
    }

    #[test]
    fn updating_allocatable_keeps_reservations_and_removal_moves_the_last_slot() {
        let mut t = NodeTable::default();
        t.upsert(node("a", 1000, 1000, 10), NodeUsage::default());
        t.upsert(node("b", 1000, 1000, 10), NodeUsage::default());
        t.reserve(0, &usage(300, 300)).expect("fits");
        t.upsert(node("a", 2000, 1000, 10), NodeUsage::default());
        assert_eq!(t.free(0), (1700, 700, 9));
        let used = t.remove("a").expect("present");
        assert_eq!(used.requests.milli_cpu, 300);
        assert_eq!(used.pods, 1);
        assert_eq!(t.slot("b"), Some(0));
        assert_eq!(t.names, vec!["b".to_string()]);
    }
}
