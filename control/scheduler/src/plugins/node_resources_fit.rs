//! NodeResourcesFit: as a filter, the pod's requests must fit in what the node has free
//! (cpu, memory, one pod slot); as a score, the LeastAllocated strategy: the share of cpu and
//! memory left after placing the pod, counting kube-scheduler's defaults for containers that
//! request nothing.

use super::{Code, FilterPlugin, ScorePlugin, Status, MAX_NODE_SCORE};
use crate::pod::PodInfo;
use crate::snapshot::NodeTable;
use std::sync::atomic::Ordering;

pub const ERR_TOO_MANY_PODS: &str = "Too many pods";
pub const ERR_INSUFFICIENT_CPU: &str = "Insufficient cpu";
pub const ERR_INSUFFICIENT_MEMORY: &str = "Insufficient memory";

pub struct NodeResourcesFit;

impl FilterPlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn filter(&self, pod: &PodInfo, nodes: &NodeTable, i: usize) -> Status {
        let (cpu, memory, pods) = nodes.free(i);
        let mut reasons = Vec::new();
        if pods < 1 {
            reasons.push(ERR_TOO_MANY_PODS.into());
        }
        let want = pod.requests;
        if want.milli_cpu > 0 && want.milli_cpu > cpu {
            reasons.push(ERR_INSUFFICIENT_CPU.into());
        }
        if want.memory > 0 && want.memory > memory {
            reasons.push(ERR_INSUFFICIENT_MEMORY.into());
        }
        if reasons.is_empty() {
            Status::success()
        } else {
            Status {
                code: Code::Unschedulable,
                reasons,
            }
        }
    }
}

/// `((capacity - requested) * 100) / capacity`, 0 when nothing is left or there is no capacity.
pub fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

impl ScorePlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn weight(&self) -> i64 {
        1
    }

    /// cpu and memory weigh 1 each.
    fn score(&self, pod: &PodInfo, nodes: &NodeTable, i: usize) -> i64 {
        let mut total = 0;
        let mut weights = 0;
        for (capacity, requested) in [
            (
                nodes.alloc_cpu[i],
                nodes.non_zero_cpu[i].load(Ordering::Relaxed) + pod.non_zero_requests.milli_cpu,
            ),
            (
                nodes.alloc_memory[i],
                nodes.non_zero_memory[i].load(Ordering::Relaxed) + pod.non_zero_requests.memory,
            ),
        ] {
            if capacity == 0 {
                continue;
            }
            total += least_requested_score(requested, capacity);
            weights += 1;
        }
        if weights == 0 {
            0
        } else {
            total / weights
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, snapshot};
    use serde_json::json;

    /// kube-scheduler's test pod "cpuAndMemory": 1000m/2000 and 2000m/3000.
    fn cpu_and_memory() -> PodInfo {
        pod(
            "p",
            "0",
            "0",
            json!({"containers": [
                {"name": "a", "resources": {"requests": {"cpu": "1000m", "memory": "2000"}}},
                {"name": "b", "resources": {"requests": {"cpu": "2000m", "memory": "3000"}}}
            ]}),
        )
    }

    #[test]
    fn requests_beyond_free_resources_give_each_reason() {
        let s = snapshot(vec![node("a", 2000, 4000, 1)]);
        let t = s.read();
        let p = cpu_and_memory();
        assert_eq!(
            NodeResourcesFit.filter(&p, &t, 0).reasons,
            vec![ERR_INSUFFICIENT_CPU, ERR_INSUFFICIENT_MEMORY]
        );
        let small = pod("q", "500m", "1000", json!({}));
        assert!(NodeResourcesFit.filter(&small, &t, 0).is_success());
        t.reserve(0, &small.usage()).expect("fits");
        let status = NodeResourcesFit.filter(&small, &t, 0);
        assert_eq!(
            (status.code, status.reasons),
            (Code::Unschedulable, vec![ERR_TOO_MANY_PODS.into()])
        );
    }

    #[test]
    fn a_pod_without_requests_only_needs_a_pod_slot() {
        let s = snapshot(vec![node("a", 0, 0, 1)]);
        let p = pod("p", "0", "0", json!({"containers": [{"name": "c"}]}));
        assert!(NodeResourcesFit.filter(&p, &s.read(), 0).is_success());
    }

    #[test]
    fn least_allocated_matches_kube_scheduler_worked_example() {
        // "nothing scheduled, resources requested, differently sized nodes":
        // node1 (4000m, 10000): cpu (4000-3000)*100/4000 = 25, memory 50 -> 37;
        // node2 (6000m, 10000): cpu 50, memory 50 -> 50.
        let s = snapshot(vec![node("node1", 4000, 10000, 110), node("node2", 6000, 10000, 110)]);
        let t = s.read();
        let p = cpu_and_memory();
        assert_eq!(ScorePlugin::score(&NodeResourcesFit, &p, &t, 0), 37);
        assert_eq!(ScorePlugin::score(&NodeResourcesFit, &p, &t, 1), 50);
    }

    #[test]
    fn least_allocated_counts_default_requests_for_pods_that_request_nothing() {
        let s = snapshot(vec![node("n", 1000, 1 << 30, 110)]);
        let t = s.read();
        let best_effort = pod("p", "0", "0", json!({"containers": [{"name": "c"}]}));
        // cpu: (1000 - 100) * 100 / 1000 = 90; memory: (1Gi - 200Mi) * 100 / 1Gi = 80.
        assert_eq!(ScorePlugin::score(&NodeResourcesFit, &best_effort, &t, 0), 85);
    }
}
