//! The scheduler against a real one-node store: hollow nodes with mixed labels and taints,
//! pods of mixed kinds written straight to the store, every pod bound exactly once to a node
//! that satisfies its constraints, no node overcommitted, and unschedulable pods told why and
//! retried when the cluster changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use gantry_scheduler::hollow::LEASES_PREFIX;
use gantry_scheduler::{
    register_hollow_nodes, renew_hollow_leases, run, HollowNode, NodeInfo, PodInfo, SchedulerOptions, Taint,
    TaintEffect, NODES_PREFIX, PODS_PREFIX,
};
use gantry_store::rpc::TcpTransport;
use gantry_store::{Consistency, EventKind, NodeConfig, Op, RangeRequest, StoreNode, Txn};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(120);

struct Cluster {
    node: StoreNode,
    _dir: tempfile::TempDir,
}

async fn cluster() -> Cluster {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = StoreNode::open(
        NodeConfig::new(1, "127.0.0.1:0", dir.path().join("store")),
        Arc::new(TcpTransport::new()),
    )
    .await
    .expect("store");
    node.bootstrap_single().await.expect("bootstrap");
    node.wait_for_leader(Duration::from_secs(10)).await.expect("leader");
    Cluster { node, _dir: dir }
}

fn pod_json(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": spec,
        "status": {"phase": "Pending"},
    })
}

fn container(cpu: &str, memory: &str) -> Value {
    json!({"name": "app", "image": "app:1", "resources": {"requests": {"cpu": cpu, "memory": memory}}})
}

async fn create_pods(node: &StoreNode, pods: &[(String, Value)]) {
    for chunk in pods.chunks(500) {
        let txns = chunk
            .iter()
            .map(|(name, v)| {
                Txn::single(Op::create(
                    format!("{PODS_PREFIX}default/{name}"),
                    serde_json::to_vec(v).expect("json"),
                ))
            })
            .collect();
        let outcomes = node.write_batch(txns).await.expect("create pods");
        assert!(outcomes.iter().all(|o| o.is_committed()), "every pod is new");
    }
}

async fn list(node: &StoreNode, prefix: &str) -> HashMap<String, Value> {
    let r = node
        .range(
            &RangeRequest {
                prefix: prefix.into(),
                ..Default::default()
            },
            Consistency::Serializable,
        )
        .await
        .expect("range");
    r.kvs
        .into_iter()
        .map(|kv| (kv.key, serde_json::from_slice(&kv.value).expect("stored JSON")))
        .collect()
}

/// Waits until `check` holds for the stored pods, re-checking whenever a pod changes.
async fn wait_for(node: &StoreNode, what: &str, mut check: impl FnMut(&HashMap<String, Value>) -> bool) {
    let deadline = Instant::now() + WAIT;
    let mut watch = node.watch(PODS_PREFIX, 0).expect("watch");
    loop {
        if check(&list(node, PODS_PREFIX).await) {
            return;
        }
        match tokio::time::timeout_at(deadline, watch.next()).await {
            Ok(batch) => {
                batch.expect("watch");
            }
            Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
        }
    }
}

fn scheduled_condition(pod: &Value) -> Option<&Value> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "PodScheduled")
}

/// Records, per pod key, every node a watch saw it bound to (a put that sets or changes
/// `spec.nodeName`).
fn record_bindings(node: &StoreNode, from: u64) -> Arc<Mutex<HashMap<String, Vec<String>>>> {
    let bindings: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
    let mut watch = node.watch(PODS_PREFIX, from).expect("watch");
    let out = bindings.clone();
    tokio::spawn(async move {
        while let Ok(batch) = watch.next().await {
            for e in batch.events {
                if e.kind != EventKind::Put {
                    continue;
                }
                let now: Value = serde_json::from_slice(&e.kv.value).expect("json");
                let before = e
                    .prev
                    .as_ref()
                    .map(|p| serde_json::from_slice::<Value>(&p.value).expect("json"));
                let node_now = now["spec"]["nodeName"].as_str();
                let node_before = before.as_ref().and_then(|b| b["spec"]["nodeName"].as_str());
                if let Some(n) = node_now.filter(|n| Some(*n) != node_before) {
                    out.lock().entry(e.kv.key.clone()).or_default().push(n.to_string());
                }
            }
        }
    });
    bindings
}

fn zone(i: usize) -> &'static str {
    ["zone-a", "zone-b", "zone-c", "zone-d"][i % 4]
}

/// Node `i`: zones round-robin, `disktype=ssd` on every third, a `dedicated=gpu:NoSchedule`
/// taint (and `gpu=true`) on every fifth, a `spot=true:PreferNoSchedule` taint on every
/// seventh; 4 to 10 cores, 8 to 24 GiB.
fn hollow(i: usize) -> HollowNode {
    let mut labels = BTreeMap::from([("topology.kubernetes.io/zone".to_string(), zone(i).to_string())]);
    let mut taints = Vec::new();
    if i.is_multiple_of(3) {
        labels.insert("disktype".into(), "ssd".into());
    }
    if i.is_multiple_of(5) {
        labels.insert("gpu".into(), "true".into());
        taints.push(Taint::new("dedicated", "gpu", TaintEffect::NoSchedule));
    }
    if i.is_multiple_of(7) {
        taints.push(Taint::new("spot", "true", TaintEffect::PreferNoSchedule));
    }
    HollowNode {
        name: format!("hollow-{i}"),
        milli_cpu: 4000 + (i % 4) as i64 * 2000,
        memory_bytes: (8 + (i % 3) as i64 * 8) << 30,
        pods: 110,
        labels,
        taints,
    }
}

/// Pod `j` of kind `j % 5`, and which node indexes may take it.
fn mixed_pod(j: usize) -> (Value, fn(usize) -> bool) {
    let cpu = format!("{}m", 100 + (j % 4) * 100);
    let memory = format!("{}Mi", 128 + (j % 4) * 64);
    let mut spec = json!({"containers": [container(&cpu, &memory)], "schedulerName": "default-scheduler"});
    if j.is_multiple_of(10) {
        spec["priority"] = json!(1000);
    }
    let allowed: fn(usize) -> bool = match j % 5 {
        0 => {
            if j.is_multiple_of(50) {
                spec["containers"][0]["ports"] = json!([{"containerPort": 80, "hostPort": 8080}]);
            }
            |i| i % 5 != 0
        }
        1 => {
            spec["nodeSelector"] = json!({"disktype": "ssd"});
            |i| i.is_multiple_of(3) && i % 5 != 0
        }
        2 => {
            spec["nodeSelector"] = json!({"gpu": "true"});
            spec["tolerations"] =
                json!([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]);
            |i| i.is_multiple_of(5)
        }
        3 => {
            spec["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zone-a", "zone-b"]}
                ]}]
            }}});
            |i| i % 4 <= 1 && i % 5 != 0
        }
        _ => {
            spec["affinity"] = json!({"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "topology.kubernetes.io/zone", "operator": "NotIn", "values": ["zone-a"]},
                    {"key": "gpu", "operator": "DoesNotExist"}
                ]}]},
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 50, "preference": {"matchExpressions": [{"key": "disktype", "operator": "Exists"}]}}
                ]
            }});
            spec["tolerations"] = json!([{"key": "spot", "operator": "Exists", "effect": "PreferNoSchedule"}]);
            |i| i % 4 != 0 && i % 5 != 0
        }
    };
    (spec, allowed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_mixed_pods_are_each_bound_once_to_a_node_that_fits() {
    const NODES: usize = 200;
    const PODS: usize = 2000;
    let c = cluster().await;
    let created = register_hollow_nodes(&c.node, NODES, hollow)
        .await
        .expect("hollow nodes");
    assert_eq!(created, NODES);
    assert_eq!(
        register_hollow_nodes(&c.node, NODES, hollow).await.expect("again"),
        0,
        "registering again creates nothing"
    );
    let names: Vec<String> = (0..NODES).map(|i| hollow(i).name).collect();
    renew_hollow_leases(&c.node, &names).await.expect("heartbeats");
    let leases = list(&c.node, LEASES_PREFIX).await;
    assert_eq!(leases.len(), NODES);
    assert!(leases.values().all(|l| l["spec"]["renewTime"].is_string()));

    let mut pods = Vec::new();
    let mut allowed = HashMap::new();
    for j in 0..PODS {
        let (spec, ok) = mixed_pod(j);
        let name = format!("pod-{j}");
        allowed.insert(format!("{PODS_PREFIX}default/{name}"), ok);
        pods.push((name.clone(), pod_json(&name, spec)));
    }
    // One pod no node can take, and one that belongs to another scheduler.
    pods.push((
        "huge".into(),
        pod_json("huge", json!({"containers": [container("1000", "1Gi")]})),
    ));
    pods.push((
        "not-mine".into(),
        pod_json(
            "not-mine",
            json!({"containers": [container("100m", "1Mi")], "schedulerName": "other-scheduler"}),
        ),
    ));
    create_pods(&c.node, &pods).await;

    let bindings = record_bindings(&c.node, c.node.revision() + 1);
    let opts = SchedulerOptions {
        workers: 4,
        ..SchedulerOptions::default()
    };
    let metrics = opts.metrics.clone();
    let scheduler = tokio::spawn(run(c.node.clone(), opts));

    let huge_key = format!("{PODS_PREFIX}default/huge");
    wait_for(
        &c.node,
        "every pod bound and the huge one marked unschedulable",
        |stored| {
            let bound = stored.values().filter(|p| p["spec"]["nodeName"].is_string()).count();
            let told = scheduled_condition(&stored[&huge_key]).is_some_and(|c| c["status"] == "False");
            bound == PODS && told
        },
    )
    .await;

    let stored = list(&c.node, PODS_PREFIX).await;
    let nodes: HashMap<String, NodeInfo> = list(&c.node, NODES_PREFIX)
        .await
        .into_values()
        .map(|v| {
            let n = NodeInfo::from_value(&v).expect("node");
            (n.name.clone(), n)
        })
        .collect();

    // Each pod on an allowed node, with PodScheduled=True.
    let mut per_node: HashMap<String, Vec<PodInfo>> = HashMap::new();
    for (key, ok) in &allowed {
        let pod = &stored[key];
        let node = pod["spec"]["nodeName"].as_str().expect("bound");
        let index: usize = node
            .strip_prefix("hollow-")
            .and_then(|i| i.parse().ok())
            .expect("a hollow node");
        assert!(ok(index), "{key} was bound to {node}, which its constraints rule out");
        assert_eq!(scheduled_condition(pod).expect("condition")["status"], "True", "{key}");
        let info = PodInfo::from_value(key, 0, pod.clone()).expect("pod");
        per_node.entry(node.to_string()).or_default().push(info);
    }

    // No node overcommitted, no host port used twice.
    for (name, pods) in &per_node {
        let n = &nodes[name];
        let cpu: i64 = pods.iter().map(|p| p.requests.milli_cpu).sum();
        let mem: i64 = pods.iter().map(|p| p.requests.memory).sum();
        assert!(
            cpu <= n.allocatable.milli_cpu,
            "{name}: {cpu}m of {}m",
            n.allocatable.milli_cpu
        );
        assert!(
            mem <= n.allocatable.memory,
            "{name}: memory {mem} of {}",
            n.allocatable.memory
        );
        assert!(pods.len() as i64 <= n.allocatable_pods, "{name}: {} pods", pods.len());
        let host_ports = pods.iter().filter(|p| !p.host_ports.is_empty()).count();
        assert!(host_ports <= 1, "{name} has {host_ports} pods on host port 8080");
    }

    // Bound exactly once: one binding event per pod, never moved.
    let bindings = bindings.lock().clone();
    assert_eq!(bindings.len(), PODS);
    for (key, nodes) in &bindings {
        assert_eq!(nodes.len(), 1, "{key} was bound {} times: {nodes:?}", nodes.len());
    }

    let huge = scheduled_condition(&stored[&huge_key]).expect("condition");
    assert_eq!(huge["reason"], "Unschedulable");
    assert_eq!(
        huge["message"],
        "0/200 nodes are available: 160 Insufficient cpu, 40 node(s) had untolerated taint {dedicated: gpu}."
    );
    let not_mine = &stored[&format!("{PODS_PREFIX}default/not-mine")];
    assert!(not_mine["spec"]["nodeName"].is_null() && scheduled_condition(not_mine).is_none());

    assert_eq!(metrics.scheduled(), PODS as u64);
    assert!(metrics.unschedulable() >= 1);
    assert!(!scheduler.is_finished(), "the scheduler keeps running");
    scheduler.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pod_is_told_why_and_bound_when_a_node_joins() {
    let c = cluster().await;
    let small = |_| HollowNode {
        name: "small".into(),
        milli_cpu: 1000,
        memory_bytes: 4 << 30,
        pods: 110,
        ..HollowNode::default()
    };
    register_hollow_nodes(&c.node, 1, small).await.expect("small node");
    create_pods(
        &c.node,
        &[(
            "big".into(),
            pod_json("big", json!({"containers": [container("2", "1Gi")]})),
        )],
    )
    .await;
    let opts = SchedulerOptions {
        workers: 2,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        ..SchedulerOptions::default()
    };
    let scheduler = tokio::spawn(run(c.node.clone(), opts));
    let key = format!("{PODS_PREFIX}default/big");

    wait_for(&c.node, "the Unschedulable condition", |stored| {
        scheduled_condition(&stored[&key]).is_some_and(|c| {
            c["status"] == "False"
                && c["reason"] == "Unschedulable"
                && c["message"] == "0/1 nodes are available: 1 Insufficient cpu."
        })
    })
    .await;

    let big = |_| HollowNode {
        name: "big".into(),
        milli_cpu: 8000,
        memory_bytes: 16 << 30,
        pods: 110,
        ..HollowNode::default()
    };
    register_hollow_nodes(&c.node, 1, big).await.expect("big node");
    wait_for(&c.node, "the pod bound to the new node", |stored| {
        stored[&key]["spec"]["nodeName"] == "big"
            && scheduled_condition(&stored[&key]).is_some_and(|c| c["status"] == "True")
    })
    .await;
    scheduler.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_bound_pod_frees_room_for_a_waiting_one() {
    let c = cluster().await;
    let one = |_| HollowNode {
        name: "only".into(),
        milli_cpu: 1000,
        memory_bytes: 4 << 30,
        pods: 110,
        ..HollowNode::default()
    };
    register_hollow_nodes(&c.node, 1, one).await.expect("node");
    create_pods(
        &c.node,
        &[(
            "first".into(),
            pod_json("first", json!({"containers": [container("800m", "1Gi")]})),
        )],
    )
    .await;
    let opts = SchedulerOptions {
        workers: 2,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        ..SchedulerOptions::default()
    };
    let scheduler = tokio::spawn(run(c.node.clone(), opts));
    let first = format!("{PODS_PREFIX}default/first");
    let second = format!("{PODS_PREFIX}default/second");
    wait_for(&c.node, "the first pod bound", |s| {
        s[&first]["spec"]["nodeName"] == "only"
    })
    .await;

    create_pods(
        &c.node,
        &[(
            "second".into(),
            pod_json("second", json!({"containers": [container("800m", "1Gi")]})),
        )],
    )
    .await;
    wait_for(&c.node, "the second pod unschedulable", |s| {
        s.get(&second)
            .and_then(scheduled_condition)
            .is_some_and(|c| c["status"] == "False")
    })
    .await;

    c.node
        .write(Txn::single(Op::delete(first.clone())))
        .await
        .expect("delete");
    wait_for(&c.node, "the second pod bound", |s| {
        s[&second]["spec"]["nodeName"] == "only"
    })
    .await;
    scheduler.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_with_required_anti_affinity_on_hostname_each_get_their_own_node() {
    const NODES: usize = 100;
    let c = cluster().await;
    let hollow = |i: usize| HollowNode {
        name: format!("hollow-{i}"),
        milli_cpu: 8000,
        memory_bytes: 16 << 30,
        pods: 110,
        ..HollowNode::default()
    };
    register_hollow_nodes(&c.node, NODES, hollow)
        .await
        .expect("hollow nodes");
    let spread = |name: &str| {
        let mut p = pod_json(
            name,
            json!({
                "containers": [container("100m", "64Mi")],
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"app": "spread"}},
                    "topologyKey": "kubernetes.io/hostname",
                }]}},
            }),
        );
        p["metadata"]["labels"] = json!({"app": "spread"});
        (name.to_string(), p)
    };
    let pods: Vec<_> = (0..NODES).map(|j| spread(&format!("spread-{j}"))).collect();
    create_pods(&c.node, &pods).await;
    // Several workers decide in parallel, so reservations race for the same nodes.
    let opts = SchedulerOptions {
        workers: 4,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        ..SchedulerOptions::default()
    };
    let scheduler = tokio::spawn(run(c.node.clone(), opts));

    wait_for(&c.node, "every spread pod bound", |stored| {
        stored.values().filter(|p| p["spec"]["nodeName"].is_string()).count() == NODES
    })
    .await;
    let stored = list(&c.node, PODS_PREFIX).await;
    let nodes: std::collections::HashSet<&str> =
        stored.values().filter_map(|p| p["spec"]["nodeName"].as_str()).collect();
    assert_eq!(nodes.len(), NODES, "no two spread pods share a node");

    create_pods(&c.node, &[spread("spread-extra")]).await;
    let key = format!("{PODS_PREFIX}default/spread-extra");
    wait_for(&c.node, "the extra pod told why it does not fit", |stored| {
        scheduled_condition(&stored[&key]).is_some_and(|c| {
            c["status"] == "False"
                && c["reason"] == "Unschedulable"
                && c["message"]
                    == "0/100 nodes are available: 100 node(s) didn't satisfy existing pods anti-affinity rules."
        })
    })
    .await;
    scheduler.abort();
}
