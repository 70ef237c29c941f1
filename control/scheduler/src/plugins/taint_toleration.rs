//! TaintToleration: as a filter, a node's NoSchedule and NoExecute taints must each be
//! tolerated; as a score, fewer untolerated PreferNoSchedule taints is better.

use super::{default_normalize, Code, FilterPlugin, ScorePlugin, Status, MAX_NODE_SCORE};
use crate::pod::PodInfo;
use crate::snapshot::{NodeTable, TaintEffect};

pub struct TaintToleration;

impl FilterPlugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn filter(&self, pod: &PodInfo, nodes: &NodeTable, i: usize) -> Status {
        let untolerated = nodes.taints[i].iter().find(|taint| {
            matches!(taint.effect, TaintEffect::NoSchedule | TaintEffect::NoExecute)
                && !pod.tolerations.iter().any(|t| t.tolerates(taint))
        });
        match untolerated {
            None => Status::success(),
            Some(t) => Status::new(
                Code::UnschedulableAndUnresolvable,
                format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value),
            ),
        }
    }
}

impl ScorePlugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn weight(&self) -> i64 {
        3
    }

    /// The number of PreferNoSchedule taints that no toleration (with effect
    /// PreferNoSchedule or none) tolerates.
    fn score(&self, pod: &PodInfo, nodes: &NodeTable, i: usize) -> i64 {
        nodes.taints[i]
            .iter()
            .filter(|taint| taint.effect == TaintEffect::PreferNoSchedule)
            .filter(|taint| {
                !pod.tolerations
                    .iter()
                    .any(|t| matches!(t.effect, None | Some(TaintEffect::PreferNoSchedule)) && t.tolerates(taint))
            })
            .count() as i64
    }

    fn normalize(&self, scores: &mut [i64]) {
        default_normalize(MAX_NODE_SCORE, true, scores);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Taint;
    use crate::testing::{node, pod, snapshot, tainted};
    use serde_json::json;

    #[test]
    fn untolerated_no_schedule_taint_rejects_with_its_key_and_value() {
        // kube docs: `kubectl taint nodes node1 key1=value1:NoSchedule`.
        let s = snapshot(vec![tainted(
            node("node1", 1000, 1000, 10),
            &[Taint::new("key1", "value1", TaintEffect::NoSchedule)],
        )]);
        let t = s.read();
        let plain = pod("p", "0", "0", json!({}));
        assert_eq!(
            TaintToleration.filter(&plain, &t, 0),
            Status::new(
                Code::UnschedulableAndUnresolvable,
                "node(s) had untolerated taint {key1: value1}"
            )
        );
        for tol in [
            json!({"key": "key1", "operator": "Equal", "value": "value1", "effect": "NoSchedule"}),
            json!({"key": "key1", "operator": "Exists", "effect": "NoSchedule"}),
            json!({"operator": "Exists"}),
        ] {
            let p = pod("q", "0", "0", json!({ "tolerations": [tol] }));
            assert!(TaintToleration.filter(&p, &t, 0).is_success(), "{tol}");
        }
    }

    #[test]
    fn no_execute_is_filtered_and_prefer_no_schedule_is_not() {
        let s = snapshot(vec![
            tainted(node("a", 1, 1, 1), &[Taint::new("k", "", TaintEffect::NoExecute)]),
            tainted(
                node("b", 1, 1, 1),
                &[Taint::new("k", "", TaintEffect::PreferNoSchedule)],
            ),
        ]);
        let t = s.read();
        let p = pod("p", "0", "0", json!({}));
        assert_eq!(
            TaintToleration.filter(&p, &t, 0).reasons,
            vec!["node(s) had untolerated taint {k: }"]
        );
        assert!(TaintToleration.filter(&p, &t, 1).is_success());
    }

    #[test]
    fn fewer_untolerated_prefer_no_schedule_taints_score_higher() {
        let soft = |k: &str| Taint::new(k, "v", TaintEffect::PreferNoSchedule);
        let s = snapshot(vec![
            node("clean", 1, 1, 1),
            tainted(node("one", 1, 1, 1), &[soft("a")]),
            tainted(node("two", 1, 1, 1), &[soft("a"), soft("b")]),
        ]);
        let t = s.read();
        let p = pod(
            "p",
            "0",
            "0",
            // A NoSchedule toleration does not count for PreferNoSchedule taints.
            json!({"tolerations": [{"key": "b", "operator": "Exists", "effect": "NoSchedule"}]}),
        );
        let mut scores: Vec<i64> = (0..3)
            .map(|i| ScorePlugin::score(&TaintToleration, &p, &t, i))
            .collect();
        assert_eq!(scores, vec![0, 1, 2]);
        TaintToleration.normalize(&mut scores);
        assert_eq!(scores, vec![100, 50, 0]);
        let tolerant = pod(
            "q",
            "0",
            "0",
            json!({"tolerations": [{"key": "b", "operator": "Exists"}]}),
        );
        assert_eq!(ScorePlugin::score(&TaintToleration, &tolerant, &t, 2), 1);
    }
}
