//! The store benchmark: durable 1 KiB writes through the Raft store with 1, 16 and 256
//! concurrent clients on one node and on three nodes (real TCP on loopback, fsync on),
//! reporting writes/s and p50/p99 commit latency; watch delivery latency with 1,000
//! watchers; and write throughput with 10,000 idle watchers against none, side by side.
//!
//! `cargo run --release -p gantry-bench --bin store-bench -- [--seconds S] [--dir D]`

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use gantry_bench::{ms, Latencies};
use gantry_store::rpc::{serve, TcpTransport};
use gantry_store::{NodeConfig, Op, StoreNode, Txn};
use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[derive(Parser)]
struct Args {
    /// How long each measured phase writes.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Where the nodes keep their data (a temporary directory under it). Use a real disk:
    /// the point is durable writes.
    #[arg(long, default_value = "/var/tmp")]
    dir: std::path::PathBuf,
    /// Client counts to run.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    clients: Vec<usize>,
    /// Only these parts: writes-1, writes-3, watch, watchers-overhead.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "writes-1,writes-3,watch,watchers-overhead"
    )]
    only: Vec<String>,
}

struct Cluster {
    nodes: Vec<StoreNode>,
    _dir: tempfile::TempDir,
}

async fn cluster(base: &std::path::Path, n: u64, first_port: u16) -> Result<Cluster> {
    let dir = tempfile::Builder::new().prefix("gantry-bench").tempdir_in(base)?;
    let mut nodes = Vec::new();
    for id in 1..=n {
        let addr = format!("127.0.0.1:{}", first_port + id as u16);
        let cfg = NodeConfig::new(id, addr.clone(), dir.path().join(format!("n{id}")));
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("bind {addr}"))?;
        let node = StoreNode::open(cfg, Arc::new(TcpTransport::new())).await?;
        tokio::spawn(serve(listener, node.handler()));
        nodes.push(node);
    }
    let members: BTreeMap<u64, String> = nodes.iter().map(|n| (n.id(), n.addr().to_string())).collect();
    nodes[0].bootstrap(members).await?;
    nodes[0].wait_for_leader(Duration::from_secs(10)).await?;
    Ok(Cluster { nodes, _dir: dir })
}

impl Cluster {
    fn leader(&self) -> StoreNode {
        self.nodes
            .iter()
            .find(|n| n.is_leader())
            .cloned()
            .unwrap_or_else(|| self.nodes[0].clone())
    }

    async fn shutdown(self) {
        for n in &self.nodes {
            n.shutdown().await;
        }
    }
}

/// Runs `clients` writers for `secs` against `node`; returns (writes/s, latencies).
async fn write_load(node: &StoreNode, clients: usize, secs: u64, tag: &str) -> (f64, Latencies) {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let value = Bytes::from(vec![b'x'; 1024]);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let node = node.clone();
        let stop = stop.clone();
        let count = count.clone();
        let value = value.clone();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("/bench/{tag}/{c}/{i}");
                i += 1;
                let t = Instant::now();
                if node.write(Txn::single(Op::put(key, value.clone()))).await.is_ok() {
                    lat.record(t.elapsed());
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
            lat
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Latencies::default();
    for t in tasks {
        if let Ok(l) = t.await {
            all.extend(l);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    (count.load(Ordering::Relaxed) as f64 / elapsed, all)
}

async fn writes(args: &Args, n: u64, port: u16) -> Result<()> {
    let c = cluster(&args.dir, n, port).await?;
    let leader = c.leader();
    println!("{n} node(s), log writes via {:?}", leader.log_backend());
    for &clients in &args.clients {
        let (rate, mut lat) = write_load(&leader, clients, args.seconds, &format!("w{clients}")).await;
        println!(
            "  {clients:>4} clients: {rate:>9.0} writes/s   p50 {}   p99 {}",
            ms(lat.percentile(50.0)),
            ms(lat.percentile(99.0))
        );
    }
    c.shutdown().await;
    Ok(())
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

async fn watch_latency(args: &Args) -> Result<()> {
    let c = cluster(&args.dir, 1, 7600).await?;
    let node = c.leader();
    let watchers = 1000;
    let start = node.revision() + 1;
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let mut w = node.watch("/watched/", start)?;
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            while let Ok(batch) = w.next().await {
                let now = now_micros();
                for e in &batch.events {
                    if &e.kv.value[..] == b"stop" {
                        return lat;
                    }
                    let sent: u64 = std::str::from_utf8(&e.kv.value)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(now);
                    lat.record(Duration::from_micros(now.saturating_sub(sent)));
                }
            }
            lat
        }));
    }
    // A steady stream: 1,000 writes/s for the phase.
    let total = args.seconds * 1000;
    for i in 0..total {
        node.write(Txn::single(Op::put(
            format!("/watched/{}", i % 100),
            now_micros().to_string(),
        )))
        .await?;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    node.write(Txn::single(Op::put("/watched/stop", "stop"))).await?;
    let mut all = Latencies::default();
    for t in tasks {
        all.extend(t.await?);
    }
    println!(
        "watch delivery, {watchers} watchers, {total} writes: p50 {}   p99 {}   ({} deliveries)",
        ms(all.percentile(50.0)),
        ms(all.percentile(99.0)),
        all.len()
    );
    c.shutdown().await;
    Ok(())
}

async fn watchers_overhead(args: &Args) -> Result<()> {
    // Each phase on a fresh node, so that neither pays for the other's data.
    let mut rates = Vec::new();
    for (round, watchers) in [0usize, 10_000, 0, 10_000].into_iter().enumerate() {
        let c = cluster(&args.dir, 1, 7700 + 10 * round as u16).await?;
        let node = c.leader();
        // Watchers spread over 100 prefixes, as kubelets and controllers would hold them.
        let mut held = Vec::new();
        for i in 0..watchers {
            let mut w = node.watch(&format!("/idle/{}/", i % 100), 0)?;
            held.push(tokio::spawn(async move { while w.next().await.is_ok() {} }));
        }
        let (rate, _) = write_load(&node, 256, args.seconds, "w").await;
        rates.push((watchers, rate));
        for h in held {
            h.abort();
        }
        c.shutdown().await;
    }
    let avg = |n: usize| {
        let v: Vec<f64> = rates.iter().filter(|(w, _)| *w == n).map(|(_, r)| *r).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let (base, with) = (avg(0), avg(10_000));
    println!(
        "256 clients, 1 node (alternating fresh runs): {base:.0} writes/s with no watchers, {with:.0} with 10,000 watchers (ratio {:.3})",
        with / base
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    for part in &args.only {
        match part.as_str() {
            "writes-1" => writes(&args, 1, 7400).await?,
            "writes-3" => writes(&args, 3, 7500).await?,
            "watch" => watch_latency(&args).await?,
            "watchers-overhead" => watchers_overhead(&args).await?,
            other => anyhow::bail!("unknown part {other}"),
        }
    }
    Ok(())
}
