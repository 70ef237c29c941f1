//! kube-scheduler's InterPodAffinity: required pod affinity and anti-affinity as a filter
//! (including the anti-affinity of pods already placed against the incoming pod), preferred
//! terms as a score. Unlike the stateless plugins it needs the placed pods, so the cache builds
//! an [`InterPodState`] (kube's PreFilter/PreScore state: matching pods counted per topology
//! pair) under its lock, and re-checks the chosen node when it reserves, so two decisions made
//! in parallel cannot both break an anti-affinity rule.
//!
//! Not implemented: `namespaceSelector` (a term carrying one is treated as naming only its
//! `namespaces`, or the pod's own) and `matchLabelKeys`/`mismatchLabelKeys`.

use std::collections::HashMap;
use std::sync::Arc;

use gantry_api::selector::LabelSelector;
use serde_json::{Map, Value};

use super::{Code, Status, MAX_NODE_SCORE};
use crate::snapshot::NodeTable;

pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const ERR_EXISTING_ANTI_AFFINITY: &str = "node(s) didn't satisfy existing pods anti-affinity rules";
/// The plugin's weight in kube's default profile.
pub const WEIGHT: i64 = 2;
/// kube's `hardPodAffinityWeight` default: what an existing pod's required affinity term that
/// matches the incoming pod adds to the score.
pub const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

/// One `podAffinityTerm`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodAffinityTerm {
    pub selector: LabelSelector,
    /// The namespaces the selector looks in; the owning pod's own when the spec names none.
    pub namespaces: Vec<String>,
    pub topology_key: String,
}

impl PodAffinityTerm {
    fn parse(t: &Value, own_namespace: &str) -> PodAffinityTerm {
        let mut namespaces: Vec<String> = t["namespaces"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(String::from))
            .collect();
        if namespaces.is_empty() {
            namespaces.push(own_namespace.to_string());
        }
        PodAffinityTerm {
            // A selector Kubernetes would reject selects nothing.
            selector: LabelSelector::from_label_selector(&t["labelSelector"])
                .unwrap_or_else(|_| LabelSelector::nothing()),
            namespaces,
            topology_key: t["topologyKey"].as_str().unwrap_or_default().to_string(),
        }
    }

    /// Whether a pod in `namespace` with `labels` is one the term speaks of.
    pub fn matches(&self, namespace: &str, labels: &Map<String, Value>) -> bool {
        self.namespaces.iter().any(|n| n == namespace) && self.selector.matches(labels)
    }
}

/// What inter-pod affinity reads of a pod: who it is (namespace, labels) and its terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodAffinityInfo {
    pub namespace: String,
    pub labels: Map<String, Value>,
    pub required_affinity: Vec<PodAffinityTerm>,
    pub required_anti_affinity: Vec<PodAffinityTerm>,
    pub preferred_affinity: Vec<(i64, PodAffinityTerm)>,
    pub preferred_anti_affinity: Vec<(i64, PodAffinityTerm)>,
}

impl PodAffinityInfo {
    /// Reads `metadata.labels` and `spec.affinity.podAffinity`/`podAntiAffinity` of a pod.
    pub fn from_pod(namespace: &str, object: &Value) -> PodAffinityInfo {
        let affinity = &object["spec"]["affinity"];
        let required = |kind: &str| -> Vec<PodAffinityTerm> {
            affinity[kind]["requiredDuringSchedulingIgnoredDuringExecution"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| PodAffinityTerm::parse(t, namespace))
                .collect()
        };
        let preferred = |kind: &str| -> Vec<(i64, PodAffinityTerm)> {
            affinity[kind]["preferredDuringSchedulingIgnoredDuringExecution"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    let w = p["weight"].as_i64().unwrap_or(0);
                    (w != 0).then(|| (w, PodAffinityTerm::parse(&p["podAffinityTerm"], namespace)))
                })
                .collect()
        };
        PodAffinityInfo {
            namespace: namespace.to_string(),
            labels: object["metadata"]["labels"].as_object().cloned().unwrap_or_default(),
            required_affinity: required("podAffinity"),
            required_anti_affinity: required("podAntiAffinity"),
            preferred_affinity: preferred("podAffinity"),
            preferred_anti_affinity: preferred("podAntiAffinity"),
        }
    }

    /// Whether the pod carries any inter-pod term (and so matters to other pods' decisions
    /// beyond its labels).
    pub fn has_terms(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }

    /// Whether the pod carries a required term, so placing it must be re-checked at reservation.
    pub fn has_required_terms(&self) -> bool {
        !(self.required_affinity.is_empty() && self.required_anti_affinity.is_empty())
    }

    fn matches_all_affinity_terms(&self) -> bool {
        !self.required_affinity.is_empty()
            && self
                .required_affinity
                .iter()
                .all(|t| t.matches(&self.namespace, &self.labels))
    }
}

/// Counts per topology pair, as topology key → value → count, so that looking up a node's
/// pair borrows its labels instead of building a key.
#[derive(Debug, Default)]
struct PairCounts(HashMap<String, HashMap<String, i64>>);

impl PairCounts {
    /// Adds `n` to the pair of `key` on a node with `labels`, if the node has the key.
    fn add(&mut self, labels: &Map<String, Value>, key: &str, n: i64) {
        let Some(value) = labels.get(key).and_then(Value::as_str) else {
            return;
        };
        let values = match self.0.get_mut(key) {
            Some(v) => v,
            None => self.0.entry(key.to_string()).or_default(),
        };
        match values.get_mut(value) {
            Some(c) => *c += n,
            None => {
                values.insert(value.to_string(), n);
            }
        }
    }

    /// The count of the pair of `key` on a node with `labels` (0 without the key).
    fn get(&self, labels: &Map<String, Value>, key: &str) -> i64 {
        labels
            .get(key)
            .and_then(Value::as_str)
            .and_then(|v| self.0.get(key)?.get(v))
            .copied()
            .unwrap_or(0)
    }

    fn is_empty(&self) -> bool {
        self.0.values().all(HashMap::is_empty)
    }
}

/// kube's PreFilter and PreScore state for one incoming pod: placed pods counted per topology
/// pair (`(topologyKey, value)` of the node they sit on).
#[derive(Debug, Default)]
pub struct InterPodState {
    pod: Arc<PodAffinityInfo>,
    /// Placed pods matching all the incoming pod's required affinity terms.
    affinity_counts: PairCounts,
    /// Placed pods matching one of its required anti-affinity terms (once per term).
    anti_affinity_counts: PairCounts,
    /// Placed pods whose required anti-affinity terms match the incoming pod.
    existing_anti_affinity_counts: PairCounts,
    /// Preferred terms both ways, summed per topology pair (kube's `scoreMap`).
    scores: PairCounts,
}

impl InterPodState {
    /// Counts `placed` (each pod's affinity info and node labels) for the incoming `pod`.
    pub fn new<'a>(
        pod: Arc<PodAffinityInfo>,
        placed: impl IntoIterator<Item = (&'a PodAffinityInfo, &'a Map<String, Value>)>,
    ) -> InterPodState {
        let mut s = InterPodState {
            pod,
            ..InterPodState::default()
        };
        let p = Arc::clone(&s.pod);
        for (other, node_labels) in placed {
            // Filter: the incoming pod's terms against the placed pod.
            if !p.required_affinity.is_empty()
                && p.required_affinity
                    .iter()
                    .all(|t| t.matches(&other.namespace, &other.labels))
            {
                for t in &p.required_affinity {
                    s.affinity_counts.add(node_labels, &t.topology_key, 1);
                }
            }
            for t in &p.required_anti_affinity {
                if t.matches(&other.namespace, &other.labels) {
                    s.anti_affinity_counts.add(node_labels, &t.topology_key, 1);
                }
            }
            // Filter: the placed pod's anti-affinity against the incoming pod.
            for t in &other.required_anti_affinity {
                if t.matches(&p.namespace, &p.labels) {
                    s.existing_anti_affinity_counts.add(node_labels, &t.topology_key, 1);
                }
            }
            // Score: preferred terms of both, and the placed pod's required affinity.
            let mut add = |t: &PodAffinityTerm, ns: &str, labels: &Map<String, Value>, w: i64| {
                if t.matches(ns, labels) {
                    s.scores.add(node_labels, &t.topology_key, w);
                }
            };
            for (w, t) in &p.preferred_affinity {
                add(t, &other.namespace, &other.labels, *w);
            }
            for (w, t) in &p.preferred_anti_affinity {
                add(t, &other.namespace, &other.labels, -*w);
            }
            for t in &other.required_affinity {
                add(t, &p.namespace, &p.labels, HARD_POD_AFFINITY_WEIGHT);
            }
            for (w, t) in &other.preferred_affinity {
                add(t, &p.namespace, &p.labels, *w);
            }
            for (w, t) in &other.preferred_anti_affinity {
                add(t, &p.namespace, &p.labels, -*w);
            }
        }
        for values in s.scores.0.values_mut() {
            values.retain(|_, v| *v != 0);
        }
        s
    }

    /// kube's `InterPodAffinity.Filter` on a node with `labels`.
    pub fn filter_labels(&self, labels: &Map<String, Value>) -> Status {
        let counted = |counts: &PairCounts, key: &str| counts.get(labels, key) > 0;
        // Any of the node's pairs counted; the counts have few keys, the node many labels.
        if self
            .existing_anti_affinity_counts
            .0
            .keys()
            .any(|k| counted(&self.existing_anti_affinity_counts, k))
        {
            return Status::new(Code::Unschedulable, ERR_EXISTING_ANTI_AFFINITY);
        }
        if self
            .pod
            .required_anti_affinity
            .iter()
            .any(|t| counted(&self.anti_affinity_counts, &t.topology_key))
        {
            return Status::new(Code::Unschedulable, ERR_ANTI_AFFINITY);
        }
        let terms = &self.pod.required_affinity;
        if terms.is_empty() {
            return Status::success();
        }
        // Every topology key must be on the node.
        if terms.iter().any(|t| !labels.contains_key(&t.topology_key)) {
            return Status::new(Code::UnschedulableAndUnresolvable, ERR_AFFINITY);
        }
        let pods_exist = terms.iter().all(|t| counted(&self.affinity_counts, &t.topology_key));
        // The first of a group of pods with affinity to each other: nothing matches anywhere
        // yet and the pod matches its own terms, so it may go to any node with the topologies.
        if pods_exist || (self.affinity_counts.is_empty() && self.pod.matches_all_affinity_terms()) {
            Status::success()
        } else {
            Status::new(Code::UnschedulableAndUnresolvable, ERR_AFFINITY)
        }
    }

    pub fn filter(&self, nodes: &NodeTable, i: usize) -> Status {
        self.filter_labels(&nodes.labels[i])
    }

    /// Whether scoring has anything to say (kube's PreScore Skip otherwise).
    pub fn has_scores(&self) -> bool {
        !self.scores.is_empty()
    }

    /// The raw score of a node: the score of each topology pair it is in.
    pub fn score_labels(&self, labels: &Map<String, Value>) -> i64 {
        self.scores.0.keys().map(|k| self.scores.get(labels, k)).sum()
    }

    pub fn score(&self, nodes: &NodeTable, i: usize) -> i64 {
        self.score_labels(&nodes.labels[i])
    }
}

/// kube's `InterPodAffinity.NormalizeScore`: min-max scaling to 0..=100 (all 0 when equal).
pub fn normalize(scores: &mut [i64]) {
    let (Some(&min), Some(&max)) = (scores.iter().min(), scores.iter().max()) else {
        return;
    };
    let diff = max - min;
    for s in scores.iter_mut() {
        *s = if diff > 0 {
            MAX_NODE_SCORE * (*s - min) / diff
        } else {
            0
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use crate::plugins::Profile;
    use crate::pod::PodInfo;
    use crate::snapshot::ReserveError;
    use crate::testing::{labeled, node};
    use rand::SeedableRng;
    use serde_json::json;

    const ZONE: &str = "topology.kubernetes.io/zone";
    const HOST: &str = "kubernetes.io/hostname";

    fn pod_in(namespace: &str, name: &str, labels: Value, affinity: Value) -> PodInfo {
        PodInfo::from_value(
            &format!("/registry/core/pods/{namespace}/{name}"),
            1,
            json!({
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "spec": {"containers": [{"name": "c"}], "affinity": affinity},
            }),
        )
        .expect("test pod")
    }

    fn pod(name: &str, labels: Value, affinity: Value) -> PodInfo {
        pod_in("default", name, labels, affinity)
    }

    fn term(key: &str, values: &[&str], topology: &str) -> Value {
        json!({
            "labelSelector": {"matchExpressions": [{"key": key, "operator": "In", "values": values}]},
            "topologyKey": topology,
        })
    }

    /// Nodes `name` in `zone`, with the hostname label hollow nodes carry.
    fn cache(nodes: &[(&str, &str)]) -> Cache {
        let c = Cache::new();
        for (name, zone) in nodes {
            c.upsert_node(labeled(node(name, 8000, 16 << 30, 110), &[(HOST, name), (ZONE, zone)]));
        }
        c
    }

    fn place(c: &Cache, p: &PodInfo, node: &str) {
        c.bound_pod(p, node);
    }

    /// Schedules and reserves `p` as a worker does; the node's name or the unschedulable text.
    fn schedule(c: &Cache, p: &PodInfo) -> Result<String, String> {
        let table = c.snapshot().read();
        let state = c.inter_pod_state(&table, p);
        let d = Profile::default()
            .schedule_with(
                c.snapshot(),
                &table,
                p,
                state.as_ref(),
                &mut rand::rngs::StdRng::seed_from_u64(3),
            )
            .map_err(|e| e.to_string())?;
        c.assume_pod(&table, d.slot, p).expect("reserves");
        Ok(table.names[d.slot].clone())
    }

    fn filter_on(c: &Cache, p: &PodInfo, node: &str) -> Status {
        let table = c.snapshot().read();
        let state = c.inter_pod_state(&table, p).expect("inter-pod affinity applies");
        state.filter(&table, table.slot(node).expect("node"))
    }

    /// kube docs, "pod-with-pod-affinity": required affinity to `security=S1` by zone.
    fn s1_s2_pod() -> PodInfo {
        pod(
            "with-pod-affinity",
            json!({}),
            json!({
                "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("security", &["S1"], ZONE)]},
                "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "podAffinityTerm": term("security", &["S2"], ZONE)}
                ]},
            }),
        )
    }

    #[test]
    fn required_affinity_admits_only_nodes_in_a_zone_with_a_matching_pod() {
        let c = cache(&[("a", "z1"), ("b", "z1"), ("c", "z2"), ("d", "z2")]);
        place(&c, &pod("s1", json!({"security": "S1"}), json!({})), "c");
        let p = s1_s2_pod();
        assert_eq!(
            filter_on(&c, &p, "a"),
            Status::new(Code::UnschedulableAndUnresolvable, ERR_AFFINITY)
        );
        assert!(
            filter_on(&c, &p, "d").is_success(),
            "same zone as the S1 pod, other node"
        );
        let placed = schedule(&c, &p).expect("fits");
        assert!(placed == "c" || placed == "d", "{placed}");
    }

    #[test]
    fn preferred_anti_affinity_steers_away_from_a_zone_with_a_matching_pod() {
        let c = cache(&[("a", "z1"), ("b", "z2")]);
        place(&c, &pod("s1-a", json!({"security": "S1"}), json!({})), "a");
        place(&c, &pod("s1-b", json!({"security": "S1"}), json!({})), "b");
        place(&c, &pod("s2", json!({"security": "S2"}), json!({})), "b");
        let p = s1_s2_pod();
        let table = c.snapshot().read();
        let state = c.inter_pod_state(&table, &p).expect("applies");
        let mut raw = vec![state.score(&table, 0), state.score(&table, 1)];
        let zone_b = table.slot("b").expect("b");
        assert_eq!(raw[zone_b], -100);
        assert_eq!(raw[1 - zone_b], 0);
        normalize(&mut raw);
        assert_eq!(raw[zone_b], 0);
        assert_eq!(raw[1 - zone_b], MAX_NODE_SCORE);
        drop(table);
        for _ in 0..8 {
            let table = c.snapshot().read();
            let d = Profile::default()
                .schedule_with(c.snapshot(), &table, &p, Some(&state), &mut rand::thread_rng())
                .expect("fits");
            assert_eq!(table.names[d.slot], "a");
        }
    }

    /// kube docs' redis-cache and web-server example: three cache replicas spread over three
    /// nodes by anti-affinity; each web server goes next to a cache and away from other web
    /// servers; a fourth replica of either has nowhere to go, and (as in kube, which checks
    /// placed pods' rules first) is told so by the placed replicas' anti-affinity.
    #[test]
    fn the_redis_and_web_server_example_colocates_and_spreads() {
        let c = cache(&[("node-1", "z"), ("node-2", "z"), ("node-3", "z")]);
        let cache_pod = |i: usize| {
            pod(
                &format!("redis-cache-{i}"),
                json!({"app": "store"}),
                json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("app", &["store"], HOST)]}}),
            )
        };
        let web_pod = |i: usize| {
            pod(
                &format!("web-server-{i}"),
                json!({"app": "web-store"}),
                json!({
                    "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("app", &["web-store"], HOST)]},
                    "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("app", &["store"], HOST)]},
                }),
            )
        };
        let mut caches: Vec<String> = (0..3)
            .map(|i| schedule(&c, &cache_pod(i)).expect("cache fits"))
            .collect();
        caches.sort();
        assert_eq!(caches, ["node-1", "node-2", "node-3"]);
        assert_eq!(
            schedule(&c, &cache_pod(3)).expect_err("a fourth cache has no node"),
            "0/3 nodes are available: 3 node(s) didn't satisfy existing pods anti-affinity rules."
        );
        let mut webs: Vec<String> = (0..3).map(|i| schedule(&c, &web_pod(i)).expect("web fits")).collect();
        webs.sort();
        assert_eq!(webs, ["node-1", "node-2", "node-3"]);
        assert_eq!(
            schedule(&c, &web_pod(3)).expect_err("a fourth web server has no node"),
            "0/3 nodes are available: 3 node(s) didn't satisfy existing pods anti-affinity rules."
        );
    }

    #[test]
    fn existing_pods_anti_affinity_keeps_the_incoming_pod_out_of_their_zone() {
        let c = cache(&[("a", "z1"), ("b", "z1"), ("c", "z2")]);
        let loner = pod(
            "loner",
            json!({}),
            json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("app", &["web"], ZONE)]}}),
        );
        place(&c, &loner, "a");
        let web = pod("web", json!({"app": "web"}), json!({}));
        assert_eq!(
            filter_on(&c, &web, "b"),
            Status::new(Code::Unschedulable, ERR_EXISTING_ANTI_AFFINITY)
        );
        assert_eq!(schedule(&c, &web).expect("zone z2 is free"), "c");
        let other = pod("other", json!({"app": "db"}), json!({}));
        assert!(filter_on(&c, &other, "a").is_success(), "the rule names only app=web");
    }

    #[test]
    fn the_first_pod_of_a_self_affine_group_may_go_anywhere_but_a_stranger_may_not() {
        let c = cache(&[("a", "z1"), ("b", "z2")]);
        let affinity =
            json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("app", &["web"], ZONE)]}});
        let first = pod("web-0", json!({"app": "web"}), affinity.clone());
        let zone = schedule(&c, &first).expect("the first of the group is placed");
        let second = pod("web-1", json!({"app": "web"}), affinity.clone());
        assert_eq!(schedule(&c, &second).expect("joins the first"), zone);
        let c = cache(&[("a", "z1"), ("b", "z2")]);
        let stranger = pod("stranger", json!({"app": "db"}), affinity);
        assert_eq!(
            schedule(&c, &stranger).expect_err("nothing to be near"),
            "0/2 nodes are available: 2 node(s) didn't match pod affinity rules."
        );
    }

    #[test]
    fn terms_look_in_the_pods_own_namespace_unless_they_name_others() {
        let c = cache(&[("a", "z1")]);
        place(&c, &pod_in("other", "web", json!({"app": "web"}), json!({})), "a");
        let anti = |namespaces: Value| {
            let mut t = term("app", &["web"], HOST);
            t["namespaces"] = namespaces;
            pod(
                "p",
                json!({}),
                json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [t]}}),
            )
        };
        assert!(filter_on(&c, &anti(json!(null)), "a").is_success());
        assert_eq!(
            filter_on(&c, &anti(json!(["other"])), "a"),
            Status::new(Code::Unschedulable, ERR_ANTI_AFFINITY)
        );
    }

    #[test]
    fn a_node_without_the_topology_label_fails_required_affinity_and_passes_anti_affinity() {
        let c = Cache::new();
        c.upsert_node(node("bare", 8000, 16 << 30, 110));
        place(&c, &pod("web", json!({"app": "web"}), json!({})), "bare");
        let near = pod(
            "near",
            json!({}),
            json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("app", &["web"], ZONE)]}}),
        );
        assert_eq!(filter_on(&c, &near, "bare").code, Code::UnschedulableAndUnresolvable);
        let away = pod(
            "away",
            json!({}),
            json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("app", &["web"], ZONE)]}}),
        );
        assert!(filter_on(&c, &away, "bare").is_success());
    }

    #[test]
    fn two_pods_decided_in_parallel_cannot_break_mutual_anti_affinity() {
        let c = cache(&[("a", "z1"), ("b", "z2")]);
        let spread = |name: &str| {
            pod(
                name,
                json!({"app": "spread"}),
                json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("app", &["spread"], ZONE)]}}),
            )
        };
        let (p, q) = (spread("p"), spread("q"));
        let table = c.snapshot().read();
        // Both decided on the same view, both chose node a.
        assert!(c
            .inter_pod_state(&table, &p)
            .expect("applies")
            .filter(&table, 0)
            .is_success());
        assert!(c
            .inter_pod_state(&table, &q)
            .expect("applies")
            .filter(&table, 0)
            .is_success());
        c.assume_pod(&table, 0, &p).expect("first reservation wins");
        assert_eq!(c.assume_pod(&table, 0, &q), Err(ReserveError::AffinityConflict));
        c.assume_pod(&table, 1, &q).expect("the other zone is free");
    }

    #[test]
    fn pods_without_terms_skip_inter_pod_affinity_while_no_placed_pod_has_any() {
        let c = cache(&[("a", "z1")]);
        let plain = pod("plain", json!({"app": "web"}), json!({}));
        place(&c, &plain, "a");
        let table = c.snapshot().read();
        assert!(c.inter_pod_state(&table, &pod("next", json!({}), json!({}))).is_none());
        drop(table);
        c.gone(&plain.key);
        place(&c, &s1_s2_pod(), "a");
        let table = c.snapshot().read();
        assert!(c.inter_pod_state(&table, &pod("next", json!({}), json!({}))).is_some());
    }

    #[test]
    fn normalize_scales_between_the_lowest_and_highest() {
        let mut s = vec![-10, 0, 10];
        normalize(&mut s);
        assert_eq!(s, vec![0, 50, 100]);
        let mut s = vec![5, 5];
        normalize(&mut s);
        assert_eq!(s, vec![0, 0]);
    }
}
