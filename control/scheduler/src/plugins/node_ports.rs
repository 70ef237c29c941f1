//! NodePorts: the host ports a pod asks for must be free on the node.

use super::{Code, FilterPlugin, Status};
use crate::pod::PodInfo;
use crate::snapshot::NodeTable;

pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub struct NodePorts;

impl FilterPlugin for NodePorts {
    fn name(&self) -> &'static str {
        "NodePorts"
    }

    fn filter(&self, pod: &PodInfo, nodes: &NodeTable, i: usize) -> Status {
        if pod.host_ports.is_empty() {
            return Status::success();
        }
        let used = nodes.ports[i].lock();
        if pod.host_ports.iter().any(|p| used.iter().any(|u| u.conflicts(p))) {
            return Status::new(Code::Unschedulable, ERR_REASON);
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, snapshot};
    use serde_json::json;

    fn with_port(name: &str, ip: &str, port: u16) -> PodInfo {
        pod(
            name,
            "0",
            "0",
            json!({"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": port, "hostIP": ip}]}]}),
        )
    }

    #[test]
    fn a_host_port_in_use_rejects_the_node() {
        let s = snapshot(vec![node("a", 1000, 1000, 10)]);
        let t = s.read();
        let first = with_port("p", "", 8080);
        assert!(NodePorts.filter(&first, &t, 0).is_success());
        t.reserve(0, &first.usage()).expect("fits");
        // 0.0.0.0 conflicts with every address; another port does not.
        let second = with_port("q", "10.0.0.1", 8080);
        assert_eq!(
            NodePorts.filter(&second, &t, 0),
            Status::new(Code::Unschedulable, ERR_REASON)
        );
        assert!(NodePorts.filter(&with_port("r", "", 8081), &t, 0).is_success());
    }
}
