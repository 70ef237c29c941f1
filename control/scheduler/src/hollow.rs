//! Hollow nodes: Node objects with capacity, labels, taints and a Ready condition but no
//! agent behind them (kubemark's hollow nodes, KWOK), for testing and benchmarking the
//! scheduler at scale. Pods bound to them never run.

use std::collections::BTreeMap;
use std::time::Duration;

use gantry_store::{Op, StoreNode, Txn, TxnOutcome};
use rand::Rng;
use serde_json::{json, Map, Value};

use crate::snapshot::Taint;
use crate::time::now_rfc3339;
use crate::{SchedulerError, NODES_PREFIX};

/// Marks a node as hollow, so tools can tell (and clean) them apart.
pub const HOLLOW_ANNOTATION: &str = "gantry.dev/hollow-node";

/// How many node creations (or lease renewals) go into one `write_batch`.
const CREATE_BATCH: usize = 500;

/// Where a node's heartbeat Lease lives: `kube-node-lease/{node name}`.
pub const LEASES_PREFIX: &str = "/registry/coordination.k8s.io/leases/kube-node-lease/";
/// How often a kubelet renews its Lease (Kubernetes' default).
pub const LEASE_RENEW_INTERVAL: Duration = Duration::from_secs(10);

/// The shape of one hollow node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HollowNode {
    pub name: String,
    pub milli_cpu: i64,
    pub memory_bytes: i64,
    pub pods: i64,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
}

impl HollowNode {
    pub fn to_json(&self) -> Value {
        hollow_node(
            &self.name,
            self.milli_cpu,
            self.memory_bytes,
            self.pods,
            &self.labels,
            &self.taints,
        )
    }
}

/// A Node object as an agent would register it: capacity and allocatable as given, the
/// well-known hostname/os/arch labels plus `labels`, `taints`, and a Ready=True condition.
pub fn hollow_node(
    name: &str,
    cpu_millis: i64,
    memory_bytes: i64,
    pods: i64,
    labels: &BTreeMap<String, String>,
    taints: &[Taint],
) -> Value {
    let mut all_labels = Map::new();
    for (k, v) in [
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
    ] {
        all_labels.insert(k.into(), v.into());
    }
    for (k, v) in labels {
        all_labels.insert(k.clone(), Value::String(v.clone()));
    }
    let now = now_rfc3339();
    let resources = json!({
        "cpu": format!("{cpu_millis}m"),
        "memory": memory_bytes.to_string(),
        "pods": pods.to_string(),
    });
    let mut node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": uuid_v4(),
            "creationTimestamp": now,
            "labels": all_labels,
            "annotations": { HOLLOW_ANNOTATION: "true" },
        },
        "spec": {},
        "status": {
            "capacity": resources.clone(),
            "allocatable": resources,
            "conditions": [{
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "hollow node is posting ready status",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }],
            "nodeInfo": {
                "kubeletVersion": "gantry-hollow",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    });
    if !taints.is_empty() {
        node["spec"]["taints"] = taints.iter().map(Taint::to_json).collect();
    }
    node
}

/// Creates `count` hollow nodes, `template(i)` giving node `i`, in batches of creations
/// (`Op::create`: a node that already exists is left alone). Returns how many were created.
pub async fn register_hollow_nodes(
    node: &StoreNode,
    count: usize,
    template: impl Fn(usize) -> HollowNode,
) -> Result<usize, SchedulerError> {
    let mut created = 0;
    let mut i = 0;
    while i < count {
        let end = (i + CREATE_BATCH).min(count);
        let txns = (i..end)
            .map(|k| {
                let n = template(k);
                let bytes = serde_json::to_vec(&n.to_json()).expect("a JSON value serializes");
                Txn::single(Op::create(format!("{NODES_PREFIX}{}", n.name), bytes))
            })
            .collect();
        let outcomes = node.write_batch(txns).await?;
        created += outcomes
            .iter()
            .filter(|o| matches!(o, TxnOutcome::Committed { .. }))
            .count();
        i = end;
    }
    Ok(created)
}

/// Heartbeats for hollow nodes: writes each node's Lease in `kube-node-lease` with
/// `renewTime` now, as a kubelet does, so the node lifecycle controller keeps them Ready.
pub async fn renew_hollow_leases(node: &StoreNode, names: &[String]) -> Result<(), SchedulerError> {
    let now = now_rfc3339();
    for chunk in names.chunks(CREATE_BATCH) {
        let txns = chunk
            .iter()
            .map(|name| {
                let lease = json!({
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": name, "namespace": "kube-node-lease"},
                    "spec": {
                        "holderIdentity": name,
                        "leaseDurationSeconds": 40,
                        "renewTime": now,
                    },
                });
                let bytes = serde_json::to_vec(&lease).expect("a JSON value serializes");
                Txn::single(Op::put(format!("{LEASES_PREFIX}{name}"), bytes))
            })
            .collect();
        node.write_batch(txns).await?;
    }
    Ok(())
}

/// Renews the hollow nodes' Leases every [`LEASE_RENEW_INTERVAL`] until the store fails it.
/// Drop (abort) the future to stop the heartbeats.
pub async fn run_hollow_heartbeats(node: StoreNode, names: Vec<String>) -> Result<(), SchedulerError> {
    let mut tick = tokio::time::interval(LEASE_RENEW_INTERVAL);
    loop {
        tick.tick().await;
        renew_hollow_leases(&node, &names).await?;
    }
}

/// A random (version 4) UUID.
fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::thread_rng().gen();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{NodeInfo, TaintEffect};

    #[test]
    fn hollow_node_reads_back_as_a_ready_node_with_its_shape() {
        let labels = BTreeMap::from([("zone".to_string(), "a".to_string())]);
        let taints = [Taint::new("dedicated", "db", TaintEffect::NoSchedule)];
        let v = hollow_node("h-1", 4000, 8 << 30, 110, &labels, &taints);
        let n = NodeInfo::from_value(&v).expect("node");
        assert_eq!(n.name, "h-1");
        assert!(n.ready && !n.unschedulable);
        assert_eq!(
            (n.allocatable.milli_cpu, n.allocatable.memory, n.allocatable_pods),
            (4000, 8 << 30, 110)
        );
        assert_eq!(n.labels["zone"], "a");
        assert_eq!(n.labels["kubernetes.io/hostname"], "h-1");
        assert_eq!(n.taints, taints.to_vec());
        assert_eq!(v["metadata"]["uid"].as_str().map(str::len), Some(36));
    }
}
