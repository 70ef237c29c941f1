//! NodeResourcesBalancedAllocation: prefers nodes whose cpu and memory would be used in
//! similar proportions after placing the pod: `(1 - std) * 100` of the two fractions.
//! It counts actual requests (no defaults) and skips pods that request nothing.

use super::{ScorePlugin, MAX_NODE_SCORE};
use crate::pod::PodInfo;
use crate::snapshot::NodeTable;
use std::sync::atomic::Ordering;

pub struct BalancedAllocation;

/// kube's `balancedResourceScorer` for the resources with a non-zero allocatable.
pub fn balanced_score(requested: &[i64], allocatable: &[i64]) -> i64 {
    let fractions: Vec<f64> = requested
        .iter()
        .zip(allocatable)
        .filter(|(_, &a)| a != 0)
        .map(|(&r, &a)| (r as f64 / a as f64).min(1.0))
        .collect();
    let std = match fractions.len() {
        0 | 1 => 0.0,
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            (fractions.iter().map(|f| (f - mean) * (f - mean)).sum::<f64>() / n as f64).sqrt()
        }
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

impl ScorePlugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }

    fn weight(&self) -> i64 {
        1
    }

    fn skip(&self, pod: &PodInfo) -> bool {
        pod.requests.milli_cpu == 0 && pod.requests.memory == 0
    }

    fn score(&self, pod: &PodInfo, nodes: &NodeTable, i: usize) -> i64 {
        let used_cpu = nodes.alloc_cpu[i] - nodes.free_cpu[i].load(Ordering::Relaxed);
        let used_memory = nodes.alloc_memory[i] - nodes.free_memory[i].load(Ordering::Relaxed);
        balanced_score(
            &[used_cpu + pod.requests.milli_cpu, used_memory + pod.requests.memory],
            &[nodes.alloc_cpu[i], nodes.alloc_memory[i]],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, snapshot};
    use serde_json::json;

    #[test]
    fn balanced_allocation_matches_kube_scheduler_worked_examples() {
        // "nothing scheduled, resources requested, differently sized nodes": the pod asks
        // 3000m and 5000 bytes. node1 (4000m, 10000): fractions 0.75 and 0.5, std 0.125 ->
        // 87; node2 (6000m, 10000): 0.5 and 0.5 -> 100.
        let s = snapshot(vec![node("node1", 4000, 10000, 110), node("node2", 6000, 10000, 110)]);
        let t = s.read();
        let p = pod("p", "3", "5000", json!({}));
        assert_eq!(BalancedAllocation.score(&p, &t, 0), 87);
        assert_eq!(BalancedAllocation.score(&p, &t, 1), 100);
        // Pods already there count with their requests.
        t.reserve(1, &pod("q", "3", "0", json!({})).usage()).expect("fits");
        // node2 now: cpu 6000/6000 = 1, memory 0.5 -> std 0.25 -> 75.
        assert_eq!(BalancedAllocation.score(&p, &t, 1), 75);
    }

    #[test]
    fn fractions_cap_at_one_and_best_effort_pods_are_skipped() {
        assert_eq!(balanced_score(&[8000, 5000], &[4000, 10000]), 75);
        assert_eq!(balanced_score(&[1, 1], &[0, 10]), 100);
        assert!(BalancedAllocation.skip(&pod("p", "0", "0", json!({}))));
        assert!(!BalancedAllocation.skip(&pod("p", "1m", "0", json!({}))));
    }
}
