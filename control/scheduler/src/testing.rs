//! Builders shared by the unit tests.

use serde_json::{json, Map, Value};

use crate::pod::{PodInfo, Resources};
use crate::snapshot::{NodeInfo, Taint};

pub(crate) fn node(name: &str, milli_cpu: i64, memory: i64, pods: i64) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        labels: Map::new(),
        taints: vec![],
        allocatable: Resources { milli_cpu, memory },
        allocatable_pods: pods,
        ready: true,
        unschedulable: false,
    }
}

pub(crate) fn labeled(mut n: NodeInfo, labels: &[(&str, &str)]) -> NodeInfo {
    for (k, v) in labels {
        n.labels.insert((*k).into(), Value::String((*v).into()));
    }
    n
}

pub(crate) fn tainted(mut n: NodeInfo, taints: &[Taint]) -> NodeInfo {
    n.taints.extend(taints.iter().cloned());
    n
}

/// A pod with one container requesting `cpu` and `memory` (quantities) and `spec` merged in.
pub(crate) fn pod(name: &str, cpu: &str, memory: &str, spec: Value) -> PodInfo {
    let mut s = json!({
        "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]
    });
    if let (Some(s), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    PodInfo::from_value(
        &format!("/registry/core/pods/default/{name}"),
        1,
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": s}),
    )
    .expect("test pod")
}

/// A snapshot holding `nodes`, empty of pods.
pub(crate) fn snapshot(nodes: Vec<NodeInfo>) -> crate::snapshot::Snapshot {
    let s = crate::snapshot::Snapshot::new();
    for n in nodes {
        s.upsert_node(n, Default::default());
    }
    s
}
