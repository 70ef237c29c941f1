//! NodeUnschedulable: a cordoned node (`spec.unschedulable`) takes only pods that tolerate
//! the `node.kubernetes.io/unschedulable:NoSchedule` taint.

use super::{Code, FilterPlugin, Status};
use crate::pod::PodInfo;
use crate::snapshot::{NodeTable, Taint, TaintEffect, TAINT_UNSCHEDULABLE};

pub const ERR_REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";

pub struct NodeUnschedulable;

impl FilterPlugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }

    fn filter(&self, pod: &PodInfo, nodes: &NodeTable, i: usize) -> Status {
        if !nodes.unschedulable[i] {
            return Status::success();
        }
        let taint = Taint::new(TAINT_UNSCHEDULABLE, "", TaintEffect::NoSchedule);
        if pod.tolerations.iter().any(|t| t.tolerates(&taint)) {
            return Status::success();
        }
        Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON_UNSCHEDULABLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, snapshot};
    use serde_json::json;

    #[test]
    fn cordoned_node_rejects_pods_unless_they_tolerate_it() {
        let mut cordoned = node("a", 1000, 1000, 10);
        cordoned.unschedulable = true;
        let s = snapshot(vec![cordoned, node("b", 1000, 1000, 10)]);
        let t = s.read();
        let plain = pod("p", "0", "0", json!({}));
        let status = NodeUnschedulable.filter(&plain, &t, 0);
        assert_eq!(
            status,
            Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON_UNSCHEDULABLE)
        );
        assert!(NodeUnschedulable.filter(&plain, &t, 1).is_success());
        let tolerant = pod(
            "q",
            "0",
            "0",
            json!({"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}),
        );
        assert!(NodeUnschedulable.filter(&tolerant, &t, 0).is_success());
    }
}
