//! NodeName: a pod that names its node (`spec.nodeName`) fits only there.

use super::{Code, FilterPlugin, Status};
use crate::pod::PodInfo;
use crate::snapshot::NodeTable;

pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

impl FilterPlugin for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }

    fn filter(&self, pod: &PodInfo, nodes: &NodeTable, i: usize) -> Status {
        match &pod.node_name {
            Some(n) if *n != nodes.names[i] => Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON),
            _ => Status::success(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, snapshot};
    use serde_json::json;

    #[test]
    fn only_the_named_node_fits() {
        let s = snapshot(vec![node("a", 1, 1, 1), node("b", 1, 1, 1)]);
        let t = s.read();
        let p = pod("p", "0", "0", json!({"nodeName": "b"}));
        assert_eq!(NodeName.filter(&p, &t, 0).reasons, vec![ERR_REASON]);
        assert!(NodeName.filter(&p, &t, 1).is_success());
        assert!(NodeName.filter(&pod("q", "0", "0", json!({})), &t, 0).is_success());
    }
}
