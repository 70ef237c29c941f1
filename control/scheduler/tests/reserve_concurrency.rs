//! Reservation under contention: eight threads decide and reserve pods on fifty nodes at
//! once, releasing some as they go, while the node table changes under them and a checker
//! watches every node's free columns. No node may ever be overcommitted, and at the end each
//! node's free resources must equal its allocatable minus exactly the pods held on it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use gantry_scheduler::cache::Cache;
use gantry_scheduler::plugins::Profile;
use gantry_scheduler::pod::PodUsage;
use gantry_scheduler::snapshot::ReserveError;
use gantry_scheduler::{NodeInfo, PodInfo};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const THREADS: usize = 8;
const NODES: usize = 50;
const PODS_PER_THREAD: usize = 3000;

fn node_json(i: usize, zone: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": format!("n{i}"), "labels": {"zone": zone}},
        "status": {
            "allocatable": {
                "cpu": format!("{}m", 1000 + (i % 7) * 500),
                "memory": format!("{}Mi", 1024 + (i % 5) * 512),
                "pods": format!("{}", 8 + i % 13),
            },
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    })
}

fn pod(thread: usize, k: usize, rng: &mut StdRng) -> PodInfo {
    let mut container = json!({
        "name": "c",
        "resources": {"requests": {
            "cpu": format!("{}m", rng.gen_range(50..600)),
            "memory": format!("{}Mi", rng.gen_range(16..400)),
        }}
    });
    if rng.gen_ratio(1, 10) {
        container["ports"] = json!([{"containerPort": 80, "hostPort": 9000 + rng.gen_range(0..3)}]);
    }
    let name = format!("p-{thread}-{k}");
    PodInfo::from_value(
        &format!("/registry/core/pods/default/{name}"),
        1,
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"containers": [container]}}),
    )
    .expect("pod")
}

fn check_free_never_negative(cache: &Cache) {
    let t = cache.snapshot().read();
    for i in 0..t.len() {
        let (cpu, mem, pods) = t.free(i);
        assert!(
            cpu >= 0 && mem >= 0 && pods >= 0,
            "node {} overcommitted: free cpu {cpu}, memory {mem}, pods {pods}",
            t.names[i]
        );
    }
}

#[test]
fn eight_threads_reserving_on_fifty_nodes_never_overcommit_a_node() {
    let cache = Arc::new(Cache::new());
    for i in 0..NODES {
        cache.upsert_node(NodeInfo::from_value(&node_json(i, "a")).expect("node"));
    }
    let profile = Arc::new(Profile::default());
    let stop = Arc::new(AtomicBool::new(false));
    // The workers, the checker, the churn thread and this one.
    let start = Arc::new(Barrier::new(THREADS + 3));

    let checker = thread::spawn({
        let (cache, stop, start) = (cache.clone(), stop.clone(), start.clone());
        move || {
            start.wait();
            let mut samples = 0u64;
            while !stop.load(Ordering::Acquire) {
                check_free_never_negative(&cache);
                samples += 1;
            }
            samples
        }
    });

    // Node churn: relabels take the table's write lock while decisions hold the read side.
    let churn = thread::spawn({
        let (cache, stop, start) = (cache.clone(), stop.clone(), start.clone());
        move || {
            start.wait();
            let mut k = 0usize;
            while !stop.load(Ordering::Acquire) {
                let i = k % NODES;
                let zone = if k.is_multiple_of(2) { "b" } else { "a" };
                cache.upsert_node(NodeInfo::from_value(&node_json(i, zone)).expect("node"));
                k += 1;
                thread::yield_now();
            }
        }
    });

    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (cache, profile, start) = (cache.clone(), profile.clone(), start.clone());
            thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(t as u64);
                let mut held: Vec<(String, String, PodUsage)> = Vec::new();
                let (mut placed, mut lost_races, mut no_fit) = (0u64, 0u64, 0u64);
                start.wait();
                for k in 0..PODS_PER_THREAD {
                    let p = pod(t, k, &mut rng);
                    let usage = p.usage();
                    let snapshot = cache.snapshot();
                    loop {
                        let table = snapshot.read();
                        match profile.schedule(snapshot, &table, &p, &mut rng) {
                            Err(_) => {
                                no_fit += 1;
                                break;
                            }
                            Ok(d) => match cache.assume(&table, d.slot, &p.key, &usage) {
                                Ok(()) => {
                                    held.push((p.key.clone(), table.names[d.slot].clone(), usage.clone()));
                                    placed += 1;
                                    break;
                                }
                                Err(
                                    ReserveError::Insufficient
                                    | ReserveError::PortTaken
                                    | ReserveError::AffinityConflict,
                                ) => lost_races += 1,
                                Err(ReserveError::AlreadyPlaced) => unreachable!("keys are unique"),
                            },
                        }
                    }
                    // Churn: pods leave so that nodes keep filling up and draining.
                    if !held.is_empty() && rng.gen_ratio(2, 5) {
                        let (key, _, _) = held.swap_remove(rng.gen_range(0..held.len()));
                        cache.gone(&key);
                    }
                }
                (held, placed, lost_races, no_fit)
            })
        })
        .collect();

    start.wait();
    let mut held_by_node: HashMap<String, Vec<PodUsage>> = HashMap::new();
    let (mut placed, mut lost_races, mut no_fit) = (0, 0, 0);
    for w in workers {
        let (held, p, l, n) = w.join().expect("worker");
        placed += p;
        lost_races += l;
        no_fit += n;
        for (_, node, usage) in held {
            held_by_node.entry(node).or_default().push(usage);
        }
    }
    stop.store(true, Ordering::Release);
    let samples = checker.join().expect("checker");
    churn.join().expect("churn");
    check_free_never_negative(&cache);

    // Exact accounting: free = allocatable - what is held, and what is held fits.
    let t = cache.snapshot().read();
    for i in 0..t.len() {
        let pods = held_by_node.get(&t.names[i]).map(Vec::as_slice).unwrap_or_default();
        let cpu: i64 = pods.iter().map(|u| u.requests.milli_cpu).sum();
        let mem: i64 = pods.iter().map(|u| u.requests.memory).sum();
        assert!(cpu <= t.alloc_cpu[i] && mem <= t.alloc_memory[i] && pods.len() as i64 <= t.alloc_pods[i]);
        assert_eq!(
            t.free(i),
            (
                t.alloc_cpu[i] - cpu,
                t.alloc_memory[i] - mem,
                t.alloc_pods[i] - pods.len() as i64
            ),
            "node {}",
            t.names[i]
        );
        let ports: Vec<_> = pods.iter().flat_map(|u| u.ports.iter()).collect();
        for (a, p) in ports.iter().enumerate() {
            assert!(
                !ports[a + 1..].iter().any(|q| q.conflicts(p)),
                "host port {} used twice on {}",
                p.port,
                t.names[i]
            );
        }
    }
    assert_eq!(cache.placed_count(), held_by_node.values().map(Vec::len).sum::<usize>());
    assert!(
        placed > PODS_PER_THREAD as u64,
        "many pods should find room: placed {placed}, no fit {no_fit}"
    );
    assert!(samples > 0);
    eprintln!("placed {placed}, lost races {lost_races}, no fit {no_fit}, checker samples {samples}");
}
