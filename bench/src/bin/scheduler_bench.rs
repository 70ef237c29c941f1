//! The scheduler benchmark, in the manner of kube-scheduler's scheduler_perf: hollow nodes
//! and pending pods written to a durable one-node store first, then the scheduler started
//! and timed until the store holds a binding for every pod. Each case runs on a fresh store
//! in a fresh directory:
//!
//! - `a`: pods with CPU and memory requests only;
//! - `b`: pods with required pod anti-affinity on `kubernetes.io/hostname` against each other,
//!   so at most one per node: the pod count is capped at the node count, and the check
//!   after the case requires every pod on a node of its own;
//! - `c`: pods with a preferred node affinity for one of the five zones.
//!
//! Bindings are counted from a watch on the pods prefix (a put that carries `spec.nodeName`),
//! so the figure is what the store committed, not what the scheduler believes; the
//! scheduler's own counters are printed beside it. After each case every stored pod is read
//! back and checked: bound, and no node holds more pods than it allows.
//!
//! `cargo run --release -p gantry-bench --bin scheduler-bench -- [--nodes N] [--pods P] [--only a,b,c] [--dir D]`

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use gantry_bench::ms;
use gantry_scheduler::{register_hollow_nodes, run, HollowNode, SchedulerOptions, PODS_PREFIX};
use gantry_store::rpc::TcpTransport;
use gantry_store::{Consistency, EventKind, NodeConfig, Op, RangeRequest, StoreNode, Txn};
use mimalloc::MiMalloc;
use serde_json::{json, Value};
use tokio::sync::oneshot;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
const ZONES: [&str; 5] = ["zone-a", "zone-b", "zone-c", "zone-d", "zone-e"];
/// Pod creations per `write_batch`.
const CREATE_BATCH: usize = 500;
/// Pods each hollow node allows (kubelet's default `maxPods`).
const MAX_PODS: i64 = 110;

#[derive(Parser)]
struct Args {
    /// Hollow nodes to register.
    #[arg(long, default_value_t = 5000)]
    nodes: usize,
    /// Pending pods to create before the scheduler starts.
    #[arg(long, default_value_t = 50_000)]
    pods: usize,
    /// Cases to run: a (basic requests), b (required pod anti-affinity), c (preferred zone).
    #[arg(long, value_delimiter = ',', default_value = "a,b,c")]
    only: Vec<String>,
    /// Where each case's store keeps its data (a fresh temporary directory under it). Use a
    /// real disk: the store fsyncs every commit.
    #[arg(long, default_value = "/var/tmp")]
    dir: PathBuf,
    /// Give up on a case after this many seconds of scheduling.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
}

/// Node `i`: 32 cores, 128 GiB, 110 pods, zones round-robin (the hostname label comes with
/// every hollow node).
fn hollow(i: usize) -> HollowNode {
    HollowNode {
        name: format!("hollow-{i}"),
        milli_cpu: 32_000,
        memory_bytes: 128 << 30,
        pods: MAX_PODS,
        labels: BTreeMap::from([(ZONE_LABEL.to_string(), ZONES[i % ZONES.len()].to_string())]),
        taints: Vec::new(),
    }
}

/// Pod `j`'s spec for a case: 100m to 400m CPU and 128 to 320 MiB of memory, plus the
/// case's constraint.
fn pod_spec(case: &str, j: usize) -> Value {
    let cpu = format!("{}m", 100 + (j % 4) * 100);
    let memory = format!("{}Mi", 128 + (j % 4) * 64);
    let mut spec = json!({
        "containers": [{
            "name": "app",
            "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": cpu, "memory": memory}},
        }],
        "schedulerName": "default-scheduler",
    });
    if case == "b" {
        spec["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": {"app": "bench"}},
            "topologyKey": "kubernetes.io/hostname",
        }]}});
    }
    if case == "c" {
        spec["affinity"] = json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "preference": {"matchExpressions": [
                {"key": ZONE_LABEL, "operator": "In", "values": [preferred_zone(j)]}
            ]},
        }]}});
    }
    spec
}

fn preferred_zone(j: usize) -> &'static str {
    ZONES[j % ZONES.len()]
}

fn pod_json(case: &str, j: usize) -> Value {
    let name = format!("pod-{j}");
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": format!("uid-{case}-{j}"),
            "labels": {"app": "bench"},
        },
        "spec": pod_spec(case, j),
        "status": {"phase": "Pending"},
    })
}

/// A durable one-node store in a fresh directory under `base`.
async fn store(base: &Path) -> Result<(StoreNode, tempfile::TempDir)> {
    let dir = tempfile::Builder::new()
        .prefix("gantry-scheduler-bench")
        .tempdir_in(base)?;
    let cfg = NodeConfig::new(1, "127.0.0.1:0", dir.path().join("store"));
    let node = StoreNode::open(cfg, Arc::new(TcpTransport::new())).await?;
    node.bootstrap_single().await?;
    node.wait_for_leader(Duration::from_secs(10)).await?;
    Ok((node, dir))
}

async fn create_pods(node: &StoreNode, case: &str, count: usize) -> Result<()> {
    for start in (0..count).step_by(CREATE_BATCH) {
        let txns = (start..(start + CREATE_BATCH).min(count))
            .map(|j| {
                let bytes = serde_json::to_vec(&pod_json(case, j)).expect("a JSON value serializes");
                Txn::single(Op::create(format!("{PODS_PREFIX}default/pod-{j}"), bytes))
            })
            .collect();
        let outcomes = node.write_batch(txns).await?;
        ensure!(
            outcomes.iter().all(|o| o.is_committed()),
            "a pod already existed in a fresh store"
        );
    }
    Ok(())
}

/// When the first and the last of `pods` bindings reached the store's watch.
struct Bound {
    first: Instant,
    last: Instant,
    /// Pods whose binding changed after they were first bound (must stay 0).
    rebound: usize,
}

/// Counts bindings from a watch on the pods prefix (from `from`, before the scheduler
/// starts), and reports once `pods` distinct pods are bound.
fn count_bindings(node: &StoreNode, from: u64, pods: usize) -> Result<oneshot::Receiver<Result<Bound>>> {
    let mut watch = node.watch(PODS_PREFIX, from)?;
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let result = async {
            let mut bound: HashSet<String> = HashSet::with_capacity(pods);
            let mut first = None;
            let mut rebound = 0;
            loop {
                let batch = watch.next().await?;
                let now = Instant::now();
                for e in batch.events {
                    // The scheduler writes a pod twice at most: a PodScheduled=False status
                    // (no node name) and its binding.
                    if e.kind == EventKind::Put && has_node_name(&e.kv.value) && !bound.insert(e.kv.key.clone()) {
                        rebound += 1;
                    }
                }
                if !bound.is_empty() {
                    first.get_or_insert(now);
                }
                if bound.len() >= pods {
                    let first = first.expect("set once a pod is bound");
                    return Ok(Bound {
                        first,
                        last: now,
                        rebound,
                    });
                }
            }
        }
        .await;
        let _ = tx.send(result);
    });
    Ok(rx)
}

/// Whether a stored pod's JSON sets `spec.nodeName`; a byte search, so that counting keeps
/// up with the scheduler on the same two cores.
fn has_node_name(value: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"\"nodeName\":\"";
    value.windows(NEEDLE.len()).any(|w| w == NEEDLE)
}

/// Reads every stored pod back: all bound, no node beyond its pod limit, and how many
/// landed in the zone they prefer.
async fn verify(node: &StoreNode, pods: usize) -> Result<(usize, usize)> {
    let all = node
        .range(
            &RangeRequest {
                prefix: PODS_PREFIX.into(),
                ..Default::default()
            },
            Consistency::Serializable,
        )
        .await?;
    ensure!(all.kvs.len() == pods, "{} pods stored, expected {pods}", all.kvs.len());
    let mut per_node: HashMap<String, i64> = HashMap::new();
    let mut in_preferred = 0;
    for kv in &all.kvs {
        let pod: Value = serde_json::from_slice(&kv.value).context("stored pod JSON")?;
        let node_name = pod["spec"]["nodeName"]
            .as_str()
            .with_context(|| format!("{} is not bound", kv.key))?;
        *per_node.entry(node_name.to_string()).or_default() += 1;
        let j: usize = kv
            .key
            .rsplit("pod-")
            .next()
            .and_then(|s| s.parse().ok())
            .context("pod index")?;
        let i: usize = node_name
            .strip_prefix("hollow-")
            .and_then(|s| s.parse().ok())
            .context("a hollow node")?;
        if ZONES[i % ZONES.len()] == preferred_zone(j) {
            in_preferred += 1;
        }
    }
    if let Some((name, n)) = per_node.iter().find(|(_, n)| **n > MAX_PODS) {
        bail!("{name} holds {n} pods, more than its {MAX_PODS}");
    }
    Ok((per_node.len(), in_preferred))
}

async fn case(args: &Args, case: &str) -> Result<()> {
    let title = match case {
        "a" => "a: basic pods (cpu/memory requests)",
        "b" => "b: required pod anti-affinity (kubernetes.io/hostname, one pod per node)",
        "c" => "c: preferred node affinity (zone, weight 100)",
        other => bail!("unknown case {other}: expected a, b or c"),
    };
    // Case b's pods repel each other per node: more pods than nodes could never all bind.
    let pods = if case == "b" {
        args.pods.min(args.nodes)
    } else {
        args.pods
    };
    let (node, _dir) = store(&args.dir).await?;
    println!(
        "{title}: {} nodes, {} pods, log writes via {:?}",
        args.nodes,
        pods,
        node.log_backend()
    );

    let t = Instant::now();
    let created = register_hollow_nodes(&node, args.nodes, hollow).await?;
    ensure!(created == args.nodes, "{created} of {} nodes created", args.nodes);
    let nodes_took = t.elapsed();
    let t = Instant::now();
    create_pods(&node, case, pods).await?;
    println!(
        "  setup: {} nodes in {}, {} pending pods in {}",
        args.nodes,
        ms(nodes_took),
        pods,
        ms(t.elapsed())
    );

    let done = count_bindings(&node, node.revision() + 1, pods)?;
    let opts = SchedulerOptions::default();
    let metrics = opts.metrics.clone();
    let workers = opts.workers;
    let start = Instant::now();
    let scheduler = tokio::spawn(run(node.clone(), opts));

    let deadline = tokio::time::sleep(Duration::from_secs(args.timeout));
    tokio::pin!(deadline, done);
    let mut progress = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(10),
        Duration::from_secs(10),
    );
    let bound = loop {
        tokio::select! {
            r = &mut done => break r.context("the binding counter stopped")??,
            _ = progress.tick() => eprintln!(
                "  ... {:.0} s: {} bound, {} pending",
                start.elapsed().as_secs_f64(),
                metrics.scheduled(),
                metrics.pending.load(Ordering::Relaxed)
            ),
            _ = &mut deadline => {
                scheduler.abort();
                bail!("case {case}: {} of {} pods bound after {} s", metrics.scheduled(), pods, args.timeout);
            }
        }
    };
    if scheduler.is_finished() {
        bail!("the scheduler stopped: {:?}", scheduler.await);
    }
    scheduler.abort();

    let total = bound.last - start;
    let steady = bound.last - bound.first;
    println!(
        "  all {} bound {} after the scheduler started: {:.0} pods/s ({workers} workers)",
        pods,
        ms(total),
        pods as f64 / total.as_secs_f64()
    );
    println!(
        "  first binding after {} (list and queue the cluster); first to last: {:.0} pods/s",
        ms(bound.first - start),
        (pods - 1) as f64 / steady.as_secs_f64().max(f64::EPSILON)
    );
    let m = &metrics;
    println!(
        "  scheduler counters: scheduled {}, conflicts {}, lost reservation races {}, unschedulable {}, batches {} ({} failed), relists {}",
        m.scheduled(),
        m.conflicts(),
        m.reserve_retries.load(Ordering::Relaxed),
        m.unschedulable(),
        m.batches.load(Ordering::Relaxed),
        m.batch_errors.load(Ordering::Relaxed),
        m.relists.load(Ordering::Relaxed)
    );
    let (used_nodes, in_preferred) = verify(&node, pods).await?;
    ensure!(bound.rebound == 0, "{} pods were bound more than once", bound.rebound);
    ensure!(
        case != "b" || used_nodes == pods,
        "{pods} pods with anti-affinity on hostname share {used_nodes} nodes"
    );
    print!("  checked: every pod bound once, on {used_nodes} nodes, none over {MAX_PODS} pods");
    if case == "c" {
        print!(
            "; {in_preferred} of {} ({:.1}%) in their preferred zone",
            pods,
            100.0 * in_preferred as f64 / pods as f64
        );
    }
    println!();
    node.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    for c in &args.only {
        case(&args, c).await?;
    }
    Ok(())
}
