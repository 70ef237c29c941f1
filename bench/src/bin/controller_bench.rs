//! The controller benchmark, on simulated (hollow) nodes with the real scheduler and
//! controllers over a one-node durable store:
//! 1. 1,000 Deployments of 10 replicas created at once: time until all 10,000 pods exist
//!    and are bound to nodes.
//! 2. Endpoint propagation at 1,000 Services: a pod turns Ready, how long until its
//!    EndpointSlice says so (p50/p99 over 1,000 flips).
//!
//! `cargo run --release -p gantry-bench --bin controller-bench -- [--deployments N] [--replicas R]`

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Parser;
use gantry_bench::{ms, Latencies};
use gantry_control::apiserver::{ApiServer, ApiServerConfig};
use gantry_control::controllers::{self, client::LocalClient, ControllerConfig};
use gantry_scheduler::{register_hollow_nodes, HollowNode};
use gantry_store::rpc::TcpTransport;
use gantry_store::{EventKind, NodeConfig, StoreNode};
use mimalloc::MiMalloc;
use serde_json::{json, Value};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    deployments: usize,
    #[arg(long, default_value_t = 10)]
    replicas: usize,
    #[arg(long, default_value_t = 500)]
    nodes: usize,
    #[arg(long, default_value_t = 1000)]
    services: usize,
    #[arg(long, default_value = "/var/tmp")]
    dir: std::path::PathBuf,
}

async fn cluster(args: &Args) -> Result<(ApiServer, StoreNode, tokio::task::JoinSet<()>, tempfile::TempDir)> {
    let dir = tempfile::Builder::new()
        .prefix("gantry-controller-bench")
        .tempdir_in(&args.dir)?;
    let node = StoreNode::open(
        NodeConfig::new(1, "127.0.0.1:0", dir.path().join("store")),
        Arc::new(TcpTransport::new()),
    )
    .await?;
    node.bootstrap_single().await?;
    node.wait_for_leader(Duration::from_secs(10)).await?;
    let mut cfg = ApiServerConfig::new("127.0.0.1:0".parse()?, dir.path());
    cfg.insecure_http = true;
    cfg.max_mutating_in_flight = 100_000;
    cfg.max_readonly_in_flight = 100_000;
    let api = ApiServer::start(cfg, node.clone()).await?;
    let created = register_hollow_nodes(&node, args.nodes, |i| HollowNode {
        name: format!("hollow-{i:05}"),
        milli_cpu: 32_000,
        memory_bytes: 128 << 30,
        pods: 110,
        labels: [("kubernetes.io/hostname".to_string(), format!("hollow-{i:05}"))]
            .into_iter()
            .collect(),
        taints: Vec::new(),
    })
    .await?;
    if created != args.nodes {
        bail!("registered {created} hollow nodes, wanted {}", args.nodes);
    }
    let mut ccfg = ControllerConfig {
        scheduler: true,
        ..Default::default()
    };
    // Hollow nodes renew no leases here; keep the lifecycle controller from evicting.
    ccfg.node_lifecycle.grace = Duration::from_secs(3600);
    let tasks = controllers::start(api.state.clone(), &ccfg);
    Ok((api, node, tasks, dir))
}

async fn deployments(args: &Args) -> Result<()> {
    let (api, node, _tasks, _dir) = cluster(args).await?;
    let client = LocalClient::new(api.state.clone());
    let want = args.deployments * args.replicas;
    let mut watcher = node.watch("/registry/core/pods/", node.revision() + 1)?;
    let start = Instant::now();
    let dr = LocalClient::resource("apps", "deployments");
    let mut creates = Vec::new();
    for i in 0..args.deployments {
        let client = client.clone();
        let replicas = args.replicas;
        creates.push(tokio::spawn(async move {
            let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": format!("d{i:04}")},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": format!("d{i:04}")}},
                    "template": {"metadata": {"labels": {"app": format!("d{i:04}")}},
                        "spec": {"containers": [{"name": "c", "image": "bench:1", "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}});
            client.create(dr, "default", d).await
        }));
    }
    for c in creates {
        c.await??;
    }
    let created_in = start.elapsed();
    let mut exist: HashSet<String> = HashSet::new();
    let mut bound: HashSet<String> = HashSet::new();
    let mut all_exist_at = None;
    while bound.len() < want {
        let batch = tokio::time::timeout(Duration::from_secs(120), watcher.next()).await??;
        for e in &batch.events {
            if e.kind != EventKind::Put {
                continue;
            }
            exist.insert(e.kv.key.clone());
            let pod: Value = serde_json::from_slice(&e.kv.value)?;
            if pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty())
            {
                bound.insert(e.kv.key.clone());
            }
        }
        if all_exist_at.is_none() && exist.len() >= want {
            all_exist_at = Some(start.elapsed());
        }
    }
    let total = start.elapsed();
    println!(
        "{} Deployments x {} replicas on {} hollow nodes: Deployments created in {:.2?}, all {want} pods existed after {:.2?}, all bound after {:.2?} ({:.0} pods/s end to end)",
        args.deployments,
        args.replicas,
        args.nodes,
        created_in,
        all_exist_at.unwrap_or(total),
        total,
        want as f64 / total.as_secs_f64()
    );
    Ok(())
}

async fn propagation(args: &Args) -> Result<()> {
    let (api, node, _tasks, _dir) = cluster(args).await?;
    let client = LocalClient::new(api.state.clone());
    let pods = LocalClient::resource("", "pods");
    let svcs = LocalClient::resource("", "services");
    for i in 0..args.services {
        let app = format!("s{i:04}");
        client
            .create(
                svcs,
                "default",
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": app},
                "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}}),
            )
            .await?;
        client
            .create(
                pods,
                "default",
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": app, "labels": {"app": app}},
                "spec": {"containers": [{"name": "c", "image": "bench:1"}]}}),
            )
            .await?;
    }
    // Give every pod an IP, not ready; wait until every slice lists it.
    let ip = |i: usize| format!("10.{}.{}.{}", 100 + i / 62_500, (i / 250) % 250, i % 250 + 1);
    let mut watcher = node.watch("/registry/discovery.k8s.io/endpointslices/", 0)?;
    for i in 0..args.services {
        set_status(&client, &format!("s{i:04}"), &ip(i), false).await?;
    }
    let mut ready_seen: HashMap<String, bool> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while ready_seen.len() < args.services {
        let batch = tokio::time::timeout_at(deadline.into(), watcher.next()).await??;
        note_slices(&batch.events, &mut ready_seen)?;
    }
    // Flip each pod Ready, one at a time, and time until its slice says so.
    let mut lat = Latencies::default();
    for i in 0..args.services {
        let name = format!("s{i:04}");
        let start = Instant::now();
        set_status(&client, &name, &ip(i), true).await?;
        loop {
            let batch = tokio::time::timeout(Duration::from_secs(30), watcher.next()).await??;
            note_slices(&batch.events, &mut ready_seen)?;
            if ready_seen.get(&ip(i)) == Some(&true) {
                break;
            }
        }
        lat.record(start.elapsed());
    }
    println!(
        "endpoint propagation at {} Services (pod status write -> EndpointSlice updated): p50 {}   p99 {}",
        args.services,
        ms(lat.percentile(50.0)),
        ms(lat.percentile(99.0))
    );
    Ok(())
}

fn note_slices(events: &[Arc<gantry_store::Event>], seen: &mut HashMap<String, bool>) -> Result<()> {
    for e in events {
        if e.kind != EventKind::Put {
            continue;
        }
        let slice: Value = serde_json::from_slice(&e.kv.value)?;
        for ep in slice["endpoints"].as_array().into_iter().flatten() {
            if let Some(ip) = ep.pointer("/addresses/0").and_then(Value::as_str) {
                seen.insert(ip.to_string(), ep.pointer("/conditions/ready") == Some(&json!(true)));
            }
        }
    }
    Ok(())
}

async fn set_status(client: &LocalClient, name: &str, ip: &str, ready: bool) -> Result<()> {
    let pods = LocalClient::resource("", "pods");
    let mut pod = client
        .get(pods, "default", name)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    pod["status"] = json!({"phase": "Running", "podIP": ip,
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]});
    client
        .update_status(pods, pod)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    deployments(&args).await?;
    propagation(&args).await?;
    Ok(())
}
