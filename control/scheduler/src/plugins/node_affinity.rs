//! NodeAffinity: as a filter, `spec.nodeSelector` and the required node affinity terms must
//! hold; as a score, the weights of the preferred terms a node matches, normalized.

use super::{default_normalize, Code, FilterPlugin, ScorePlugin, Status, MAX_NODE_SCORE};
use crate::pod::PodInfo;
use crate::snapshot::NodeTable;

pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";

pub struct NodeAffinity;

impl NodeAffinity {
    /// Whether node `i` satisfies the pod's node selector and required node affinity.
    pub fn required_matches(pod: &PodInfo, nodes: &NodeTable, i: usize) -> bool {
        let labels = &nodes.labels[i];
        let selector_ok = pod
            .affinity
            .node_selector
            .iter()
            .all(|(k, v)| labels.get(k).and_then(|l| l.as_str()) == Some(v.as_str()));
        selector_ok
            && pod
                .affinity
                .required
                .as_ref()
                .is_none_or(|terms| terms.iter().any(|t| t.matches(&nodes.names[i], labels)))
    }
}

impl FilterPlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn filter(&self, pod: &PodInfo, nodes: &NodeTable, i: usize) -> Status {
        if NodeAffinity::required_matches(pod, nodes, i) {
            Status::success()
        } else {
            Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON_POD)
        }
    }
}

impl ScorePlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn weight(&self) -> i64 {
        2
    }

    fn skip(&self, pod: &PodInfo) -> bool {
        pod.affinity.preferred.is_empty()
    }

    fn score(&self, pod: &PodInfo, nodes: &NodeTable, i: usize) -> i64 {
        pod.affinity
            .preferred
            .iter()
            .filter(|(_, term)| term.matches(&nodes.names[i], &nodes.labels[i]))
            .map(|(w, _)| *w)
            .sum()
    }

    fn normalize(&self, scores: &mut [i64]) {
        default_normalize(MAX_NODE_SCORE, false, scores);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{labeled, node, pod, snapshot};
    use serde_json::{json, Value};

    fn required(exprs: Value) -> PodInfo {
        pod(
            "p",
            "0",
            "0",
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": exprs}]
            }}}}),
        )
    }

    fn fits(p: &PodInfo, labels: &[(&str, &str)]) -> bool {
        let s = snapshot(vec![labeled(node("n", 1, 1, 1), labels)]);
        let t = s.read();
        NodeAffinity.filter(p, &t, 0).is_success()
    }

    #[test]
    fn node_selector_needs_every_label() {
        let p = pod("p", "0", "0", json!({"nodeSelector": {"disktype": "ssd", "zone": "a"}}));
        assert!(fits(&p, &[("disktype", "ssd"), ("zone", "a"), ("x", "y")]));
        assert!(!fits(&p, &[("disktype", "ssd")]));
        let s = snapshot(vec![node("n", 1, 1, 1)]);
        assert_eq!(
            NodeAffinity.filter(&p, &s.read(), 0),
            Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON_POD)
        );
    }

    #[test]
    fn required_affinity_operators_follow_the_kubernetes_docs() {
        // The docs' example: a zone In [antarctica-east1, antarctica-west1].
        let zone_in = required(json!([{"key": "topology.kubernetes.io/zone", "operator": "In",
            "values": ["antarctica-east1", "antarctica-west1"]}]));
        assert!(fits(&zone_in, &[("topology.kubernetes.io/zone", "antarctica-west1")]));
        assert!(!fits(&zone_in, &[("topology.kubernetes.io/zone", "europe-west1")]));
        assert!(!fits(&zone_in, &[]));

        let not_in = required(json!([{"key": "zone", "operator": "NotIn", "values": ["a"]}]));
        assert!(fits(&not_in, &[("zone", "b")]));
        assert!(fits(&not_in, &[]), "NotIn holds when the label is absent");
        assert!(!fits(&not_in, &[("zone", "a")]));

        let exists = required(json!([{"key": "gpu", "operator": "Exists"}]));
        assert!(fits(&exists, &[("gpu", "")]));
        assert!(!fits(&exists, &[]));
        let absent = required(json!([{"key": "gpu", "operator": "DoesNotExist"}]));
        assert!(fits(&absent, &[]));
        assert!(!fits(&absent, &[("gpu", "1")]));

        let gt = required(json!([{"key": "cores", "operator": "Gt", "values": ["4"]}]));
        assert!(fits(&gt, &[("cores", "8")]));
        assert!(!fits(&gt, &[("cores", "4")]));
        assert!(
            !fits(&gt, &[("cores", "many")]),
            "a non-integer label never satisfies Gt"
        );
        let lt = required(json!([{"key": "cores", "operator": "Lt", "values": ["4"]}]));
        assert!(fits(&lt, &[("cores", "2")]));
        assert!(!fits(&lt, &[]));
    }

    #[test]
    fn terms_are_ored_and_expressions_within_a_term_are_anded() {
        let p = pod(
            "p",
            "0",
            "0",
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [
                        {"key": "a", "operator": "Exists"},
                        {"key": "b", "operator": "Exists"}
                    ]},
                    {"matchExpressions": [{"key": "c", "operator": "Exists"}]}
                ]
            }}}}),
        );
        assert!(fits(&p, &[("a", "1"), ("b", "1")]));
        assert!(!fits(&p, &[("a", "1")]));
        assert!(fits(&p, &[("c", "1")]));
        // With a nodeSelector too, both must hold.
        let mut both = p.clone();
        both.affinity.node_selector.push(("zone".into(), "x".into()));
        assert!(!fits(&both, &[("c", "1")]));
        assert!(fits(&both, &[("c", "1"), ("zone", "x")]));
    }

    #[test]
    fn preferred_terms_add_their_weights_and_normalize_to_100() {
        // The docs' example: weight 1 for label-1=key-1, weight 50 for label-2=key-2.
        let p = pod(
            "p",
            "0",
            "0",
            json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": {"matchExpressions": [{"key": "label-1", "operator": "In", "values": ["key-1"]}]}},
                {"weight": 50, "preference": {"matchExpressions": [{"key": "label-2", "operator": "In", "values": ["key-2"]}]}}
            ]}}}),
        );
        let s = snapshot(vec![
            labeled(node("one", 1, 1, 1), &[("label-1", "key-1")]),
            labeled(node("two", 1, 1, 1), &[("label-2", "key-2")]),
            labeled(node("both", 1, 1, 1), &[("label-1", "key-1"), ("label-2", "key-2")]),
            node("none", 1, 1, 1),
        ]);
        let t = s.read();
        let mut scores: Vec<i64> = (0..4).map(|i| ScorePlugin::score(&NodeAffinity, &p, &t, i)).collect();
        assert_eq!(scores, vec![1, 50, 51, 0]);
        NodeAffinity.normalize(&mut scores);
        assert_eq!(scores, vec![1, 98, 100, 0]);
    }
}
