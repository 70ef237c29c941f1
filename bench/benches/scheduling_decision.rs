//! One scheduling decision (filter, score, select; no reservation) at 5,000 nodes, on the
//! default profile: a pod with requests only and one with a preferred zone affinity, each
//! with kube-scheduler's adaptive percentage of nodes to score (10% at 5,000 nodes) and with
//! every node scored.
//!
//! `cargo bench -p gantry-bench --bench scheduling_decision -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use gantry_scheduler::plugins::Profile;
use gantry_scheduler::pod::{PodUsage, Resources};
use gantry_scheduler::snapshot::NodeUsage;
use gantry_scheduler::{NodeInfo, PodInfo, Snapshot};
use rand::SeedableRng;
use serde_json::{json, Map, Value};

const NODES: usize = 5000;
const ZONES: [&str; 5] = ["zone-a", "zone-b", "zone-c", "zone-d", "zone-e"];

/// 5,000 nodes of 32 cores and 128 GiB in five zones, each already running 0 to 49 pods of
/// 250m and 512 MiB, so that scores differ from node to node.
fn snapshot() -> Snapshot {
    let s = Snapshot::new();
    for i in 0..NODES {
        let name = format!("node-{i}");
        let mut labels = Map::new();
        labels.insert("kubernetes.io/hostname".into(), Value::String(name.clone()));
        labels.insert("topology.kubernetes.io/zone".into(), ZONES[i % ZONES.len()].into());
        let node = NodeInfo {
            name,
            labels,
            taints: Vec::new(),
            allocatable: Resources {
                milli_cpu: 32_000,
                memory: 128 << 30,
            },
            allocatable_pods: 110,
            ready: true,
            unschedulable: false,
        };
        let mut used = NodeUsage::default();
        let one = Resources {
            milli_cpu: 250,
            memory: 512 << 20,
        };
        for _ in 0..(i * 7919) % 50 {
            used.add(&PodUsage {
                requests: one,
                non_zero: one,
                ports: Vec::new(),
            });
        }
        s.upsert_node(node, used);
    }
    s
}

fn pod(spec_extra: Value) -> PodInfo {
    let mut spec =
        json!({"containers": [{"name": "app", "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}}]});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
        spec.extend(extra.clone());
    }
    PodInfo::from_value(
        "/registry/core/pods/default/p",
        1,
        json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec}),
    )
    .expect("a valid pod")
}

fn decision(c: &mut Criterion) {
    let s = snapshot();
    let basic = pod(json!({}));
    let preferred = pod(
        json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "preference": {"matchExpressions": [
                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zone-c"]}
            ]},
        }]}}}),
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut group = c.benchmark_group("scheduling_decision_5000_nodes");
    for (score, percentage) in [("adaptive", None), ("all", Some(100))] {
        let profile = Profile {
            percentage_of_nodes_to_score: percentage,
            ..Profile::default()
        };
        for (kind, p) in [("basic", &basic), ("preferred_zone", &preferred)] {
            group.bench_function(format!("{kind}/{score}"), |b| {
                let table = s.read();
                b.iter(|| black_box(profile.schedule(&s, &table, black_box(p), &mut rng).expect("fits")))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, decision);
criterion_main!(benches);
