//! kube-scheduler's Filter and Score extension points and its default profile: which plugins
//! run, in which order, with which weights; the sampled filter pass
//! (`percentageOfNodesToScore`), scoring with normalization, host selection with random
//! tie-breaks, and the "0/N nodes are available: …" message when nothing fits.
//!
//! Inter-pod (anti-)affinity reads the placed pods, so it runs on state the cache builds
//! ([`inter_pod_affinity::InterPodState`]) rather than as a stateless plugin. Topology spread
//! is not implemented yet.

pub mod balanced_allocation;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod taint_toleration;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use rand::Rng;

use crate::plugins::inter_pod_affinity::InterPodState;
use crate::pod::PodInfo;
use crate::snapshot::{NodeTable, Snapshot};

/// The highest score a plugin gives a node.
pub const MAX_NODE_SCORE: i64 = 100;
/// Below this many nodes every node is examined; above it, at least this many.
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The adaptive percentage never goes below this.
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;

/// What a filter concluded about one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Success,
    /// The node does not fit now but could once pods leave it (resources, ports).
    Unschedulable,
    /// The node cannot fit the pod whatever happens to its pods (labels, taints, name).
    UnschedulableAndUnresolvable,
}

/// A filter's verdict with kube-scheduler's reason texts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<Cow<'static, str>>,
}

impl Status {
    pub const fn success() -> Status {
        Status {
            code: Code::Success,
            reasons: Vec::new(),
        }
    }

    pub fn new(code: Code, reason: impl Into<Cow<'static, str>>) -> Status {
        Status {
            code,
            reasons: vec![reason.into()],
        }
    }

    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }
}

/// A Filter extension point: may node `i` run the pod?
pub trait FilterPlugin: Send + Sync {
    fn name(&self) -> &'static str;
    fn filter(&self, pod: &PodInfo, nodes: &NodeTable, i: usize) -> Status;
}

/// A Score extension point: how good is node `i` for the pod (0..=100 after normalization)?
pub trait ScorePlugin: Send + Sync {
    fn name(&self) -> &'static str;
    /// The plugin's weight in the default profile.
    fn weight(&self) -> i64;
    /// Whether the plugin has nothing to say about this pod (kube's PreScore Skip).
    fn skip(&self, _pod: &PodInfo) -> bool {
        false
    }
    fn score(&self, pod: &PodInfo, nodes: &NodeTable, i: usize) -> i64;
    /// Brings the raw scores of the feasible nodes into 0..=100.
    fn normalize(&self, _scores: &mut [i64]) {}
}

/// kube-scheduler's `DefaultNormalizeScore`: scales to 0..=`max` by the highest score;
/// `reverse` turns "more is worse" counts into scores.
pub fn default_normalize(max: i64, reverse: bool, scores: &mut [i64]) {
    let highest = scores.iter().copied().max().unwrap_or(0);
    if highest == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = max);
        }
        return;
    }
    for s in scores.iter_mut() {
        let scaled = max * *s / highest;
        *s = if reverse { max - scaled } else { scaled };
    }
}

/// The plugins of kube-scheduler's default profile that this scheduler implements, in the
/// default order, with the default weights.
pub struct Profile {
    pub filters: Vec<Box<dyn FilterPlugin>>,
    pub scores: Vec<Box<dyn ScorePlugin>>,
    /// `percentageOfNodesToScore`; `None` is the adaptive default.
    pub percentage_of_nodes_to_score: Option<u32>,
}

impl Default for Profile {
    fn default() -> Profile {
        Profile {
            filters: vec![
                Box::new(node_unschedulable::NodeUnschedulable),
                Box::new(node_name::NodeName),
                Box::new(taint_toleration::TaintToleration),
                Box::new(node_affinity::NodeAffinity),
                Box::new(node_ports::NodePorts),
                Box::new(node_resources_fit::NodeResourcesFit),
            ],
            scores: vec![
                Box::new(taint_toleration::TaintToleration),
                Box::new(node_affinity::NodeAffinity),
                Box::new(node_resources_fit::NodeResourcesFit),
                Box::new(balanced_allocation::BalancedAllocation),
            ],
            percentage_of_nodes_to_score: None,
        }
    }
}

/// How many feasible nodes to find before scoring (kube's `numFeasibleNodesToFind`).
pub fn num_feasible_nodes_to_find(percentage: Option<u32>, all: usize) -> usize {
    if all < MIN_FEASIBLE_NODES_TO_FIND {
        return all;
    }
    let pct = match percentage {
        Some(p) if p > 0 => (p as usize).min(100),
        _ => 50usize
            .saturating_sub(all / 125)
            .max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND),
    };
    (all * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Where a pod should go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The node's slot in the table the decision was made on.
    pub slot: usize,
    /// Nodes that passed every filter, and nodes examined.
    pub feasible: usize,
    pub examined: usize,
}

/// No node fits: the reasons, counted over all nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FitError {
    pub num_all_nodes: usize,
    pub reasons: HashMap<String, usize>,
}

impl fmt::Display for FitError {
    /// kube-scheduler's `FitError.Error()`: "0/N nodes are available: " and the reasons as
    /// "count reason", sorted as strings, then ".".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.num_all_nodes == 0 {
            return f.write_str("no nodes available to schedule pods");
        }
        let mut parts: Vec<String> = self.reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
        parts.sort();
        write!(f, "0/{} nodes are available: {}.", self.num_all_nodes, parts.join(", "))
    }
}

impl Profile {
    /// Runs every filter on node `i`, stopping at the first that rejects it.
    pub fn filter(&self, pod: &PodInfo, nodes: &NodeTable, i: usize) -> Status {
        for f in &self.filters {
            let s = f.filter(pod, nodes, i);
            if !s.is_success() {
                return s;
            }
        }
        Status::success()
    }

    /// Decides where `pod` goes: filters nodes from a rotating start until enough are
    /// feasible, scores those, and picks the best (a random one among equals). The caller
    /// holds `nodes` (a read guard of `snapshot`) and reserves on the result under it.
    pub fn schedule(
        &self,
        snapshot: &Snapshot,
        nodes: &NodeTable,
        pod: &PodInfo,
        rng: &mut impl Rng,
    ) -> Result<Decision, FitError> {
        self.schedule_with(snapshot, nodes, pod, None, rng)
    }

    /// [`Profile::schedule`] with inter-pod affinity: `inter_pod` (from
    /// [`crate::cache::Cache::inter_pod_state`]) filters after the stateless filters, as
    /// InterPodAffinity follows them in kube's default order, and scores with weight 2.
    pub fn schedule_with(
        &self,
        snapshot: &Snapshot,
        nodes: &NodeTable,
        pod: &PodInfo,
        inter_pod: Option<&InterPodState>,
        rng: &mut impl Rng,
    ) -> Result<Decision, FitError> {
        let all = nodes.len();
        if all == 0 {
            return Err(FitError {
                num_all_nodes: 0,
                reasons: HashMap::new(),
            });
        }
        let want = num_feasible_nodes_to_find(self.percentage_of_nodes_to_score, all);
        let start = snapshot.start_offset(want, all);
        let mut feasible = Vec::with_capacity(want.min(all));
        let mut reasons: HashMap<String, usize> = HashMap::new();
        let mut examined = 0;
        for k in 0..all {
            let i = (start + k) % all;
            examined += 1;
            let mut s = self.filter(pod, nodes, i);
            if let (true, Some(ip)) = (s.is_success(), inter_pod) {
                s = ip.filter(nodes, i);
            }
            if s.is_success() {
                feasible.push(i);
                if feasible.len() >= want {
                    break;
                }
            } else {
                for r in s.reasons {
                    *reasons.entry(r.into_owned()).or_default() += 1;
                }
            }
        }
        if feasible.is_empty() {
            return Err(FitError {
                num_all_nodes: all,
                reasons,
            });
        }
        let decided = |slot| Decision {
            slot,
            feasible: feasible.len(),
            examined,
        };
        if feasible.len() == 1 {
            return Ok(decided(feasible[0]));
        }
        let mut totals = self.score(pod, nodes, &feasible);
        if let Some(ip) = inter_pod.filter(|ip| ip.has_scores()) {
            let mut raw: Vec<i64> = feasible.iter().map(|&i| ip.score(nodes, i)).collect();
            inter_pod_affinity::normalize(&mut raw);
            for (t, r) in totals.iter_mut().zip(&raw) {
                *t += inter_pod_affinity::WEIGHT * r;
            }
        }
        let mut best = 0;
        let mut ties = 1;
        for k in 1..feasible.len() {
            if totals[k] > totals[best] {
                best = k;
                ties = 1;
            } else if totals[k] == totals[best] {
                ties += 1;
                if rng.gen_range(0..ties) == 0 {
                    best = k;
                }
            }
        }
        Ok(decided(feasible[best]))
    }

    /// The weighted total score of each node in `slots`.
    pub fn score(&self, pod: &PodInfo, nodes: &NodeTable, slots: &[usize]) -> Vec<i64> {
        let mut totals = vec![0i64; slots.len()];
        let mut raw = vec![0i64; slots.len()];
        for plugin in &self.scores {
            if plugin.skip(pod) {
                continue;
            }
            for (r, &i) in raw.iter_mut().zip(slots) {
                *r = plugin.score(pod, nodes, i);
            }
            plugin.normalize(&mut raw);
            let w = plugin.weight();
            for (t, r) in totals.iter_mut().zip(&raw) {
                *t += w * r;
            }
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Taint, TaintEffect};
    use crate::testing::{labeled, node, pod, snapshot, tainted};
    use rand::SeedableRng;
    use serde_json::json;

    #[test]
    fn percentage_of_nodes_to_score_follows_the_adaptive_default() {
        assert_eq!(num_feasible_nodes_to_find(None, 50), 50);
        assert_eq!(num_feasible_nodes_to_find(None, 99), 99);
        // 50 - 100/125 = 50%, but never fewer than 100 nodes.
        assert_eq!(num_feasible_nodes_to_find(None, 100), 100);
        assert_eq!(num_feasible_nodes_to_find(None, 1000), 420); // 50 - 8 = 42%
        assert_eq!(num_feasible_nodes_to_find(None, 5000), 500); // 50 - 40 = 10%
        assert_eq!(num_feasible_nodes_to_find(None, 10_000), 500); // floor 5%
        assert_eq!(num_feasible_nodes_to_find(Some(100), 5000), 5000);
        assert_eq!(num_feasible_nodes_to_find(Some(1), 5000), 100);
    }

    #[test]
    fn default_normalize_scales_by_the_highest_and_reverses() {
        let mut s = vec![0, 5, 10];
        default_normalize(100, false, &mut s);
        assert_eq!(s, vec![0, 50, 100]);
        let mut s = vec![0, 1, 2];
        default_normalize(100, true, &mut s);
        assert_eq!(s, vec![100, 50, 0]);
        let mut s = vec![0, 0];
        default_normalize(100, true, &mut s);
        assert_eq!(s, vec![100, 100]);
    }

    #[test]
    fn unschedulable_message_counts_reasons_sorted_as_strings() {
        let s = snapshot(vec![
            node("a", 1000, 1 << 30, 110),
            node("b", 1000, 1 << 30, 110),
            node("c", 1000, 1 << 30, 110),
            tainted(
                node("d", 8000, 1 << 30, 110),
                &[Taint::new("dedicated", "gpu", TaintEffect::NoSchedule)],
            ),
            tainted(
                node("e", 8000, 1 << 30, 110),
                &[Taint::new("dedicated", "gpu", TaintEffect::NoSchedule)],
            ),
        ]);
        let p = pod("big", "2", "100Mi", json!({}));
        let err = Profile::default()
            .schedule(&s, &s.read(), &p, &mut rand::rngs::StdRng::seed_from_u64(1))
            .expect_err("nothing fits");
        assert_eq!(
            err.to_string(),
            "0/5 nodes are available: 2 node(s) had untolerated taint {dedicated: gpu}, 3 Insufficient cpu."
        );
    }

    #[test]
    fn a_node_short_of_two_resources_counts_both_reasons() {
        let s = snapshot(vec![node("a", 1000, 1 << 20, 110)]);
        let p = pod("big", "2", "1Gi", json!({}));
        let err = Profile::default()
            .schedule(&s, &s.read(), &p, &mut rand::rngs::StdRng::seed_from_u64(1))
            .expect_err("nothing fits");
        assert_eq!(
            err.to_string(),
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."
        );
    }

    #[test]
    fn no_nodes_at_all_says_so() {
        let s = snapshot(vec![]);
        let err = Profile::default()
            .schedule(&s, &s.read(), &pod("p", "1", "1", json!({})), &mut rand::thread_rng())
            .expect_err("no nodes");
        assert_eq!(err.to_string(), "no nodes available to schedule pods");
    }

    #[test]
    fn the_least_allocated_node_wins_and_ties_are_broken_at_random() {
        let s = snapshot(vec![
            node("small", 2000, 4 << 30, 110),
            node("big-1", 8000, 16 << 30, 110),
            node("big-2", 8000, 16 << 30, 110),
        ]);
        let p = pod("p", "1", "1Gi", json!({}));
        let profile = Profile::default();
        let mut seen = std::collections::HashSet::new();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..64 {
            let t = s.read();
            let d = profile.schedule(&s, &t, &p, &mut rng).expect("fits");
            seen.insert(t.names[d.slot].clone());
        }
        let mut seen: Vec<_> = seen.into_iter().collect();
        seen.sort();
        assert_eq!(seen, vec!["big-1".to_string(), "big-2".to_string()]);
    }

    #[test]
    fn preferred_affinity_outweighs_a_small_resource_difference() {
        let s = snapshot(vec![
            node("plain", 8000, 16 << 30, 110),
            labeled(node("ssd", 4000, 8 << 30, 110), &[("disktype", "ssd")]),
        ]);
        let p = pod(
            "p",
            "100m",
            "100Mi",
            json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": {"matchExpressions": [{"key": "disktype", "operator": "In", "values": ["ssd"]}]}}
            ]}}}),
        );
        let t = s.read();
        let d = Profile::default()
            .schedule(&s, &t, &p, &mut rand::thread_rng())
            .expect("fits");
        assert_eq!(t.names[d.slot], "ssd");
    }

    #[test]
    fn the_filter_pass_stops_once_enough_nodes_are_feasible() {
        let nodes = (0..1000).map(|i| node(&format!("n{i}"), 4000, 8 << 30, 110)).collect();
        let s = snapshot(nodes);
        let t = s.read();
        let p = pod("p", "1", "1Gi", json!({}));
        let profile = Profile::default();
        let d = profile.schedule(&s, &t, &p, &mut rand::thread_rng()).expect("fits");
        assert_eq!((d.feasible, d.examined), (420, 420));
        // The next pass starts where this one's window ended.
        assert_eq!(s.start_offset(0, 1000), 420);
    }
}
