//! The API benchmark: creates, updates (merge patch) and gets of pods through the HTTPS API
//! with 64 concurrent clients (each on its own keep-alive TLS connection, as client-go
//! keeps them), on a one-node durable store; and watch event delivery latency with 1,000
//! open watches.
//!
//! `cargo run --release -p gantry-bench --bin api-bench -- [--seconds S]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Parser;
use gantry_bench::{ms, Latencies};
use gantry_control::apiserver::{ApiServer, ApiServerConfig};
use gantry_store::rpc::TcpTransport;
use gantry_store::{NodeConfig, StoreNode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use mimalloc::MiMalloc;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    #[arg(long, default_value_t = 64)]
    clients: usize,
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    #[arg(long, default_value = "/var/tmp")]
    dir: std::path::PathBuf,
}

struct Target {
    addr: std::net::SocketAddr,
    token: String,
    tls: tokio_rustls::TlsConnector,
}

impl Target {
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let tls = self
            .tls
            .connect(ServerName::try_from("localhost")?.to_owned(), tcp)
            .await?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        Ok(send)
    }

    fn request(&self, method: &str, path: &str, ct: &str, body: Vec<u8>) -> Result<Request<Full<Bytes>>> {
        Ok(Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", ct)
            .body(Full::new(Bytes::from(body)))?)
    }
}

async fn call(send: &mut SendRequest<Full<Bytes>>, req: Request<Full<Bytes>>) -> Result<(u16, Bytes)> {
    let resp = send.send_request(req).await?;
    let code = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((code, body))
}

fn pod(name: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "web"}, "annotations": {"note": "x".repeat(200)}},
        "spec": {"containers": [{"name": "app", "image": "bench/app:1", "ports": [{"containerPort": 8080}],
            "env": [{"name": "MODE", "value": "bench"}], "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]},
    }))
    .expect("JSON")
}

#[derive(Clone, Copy)]
enum Phase {
    Create,
    Patch,
    Get,
}

async fn phase(t: &Arc<Target>, args: &Args, which: Phase) -> Result<(f64, Latencies, u64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (t, stop, done, errors) = (t.clone(), stop.clone(), done.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            let Ok(mut send) = t.connect().await else { return lat };
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("p-{c}-{i}");
                let req = match which {
                    Phase::Create => t.request(
                        "POST",
                        "/api/v1/namespaces/default/pods",
                        "application/json",
                        pod(&name),
                    ),
                    Phase::Patch => t.request(
                        "PATCH",
                        &format!("/api/v1/namespaces/default/pods/p-{c}-{}", i % 200),
                        "application/merge-patch+json",
                        format!("{{\"metadata\":{{\"labels\":{{\"rev\":\"{i}\"}}}}}}").into_bytes(),
                    ),
                    Phase::Get => t.request(
                        "GET",
                        &format!("/api/v1/namespaces/default/pods/p-{c}-{}", i % 200),
                        "application/json",
                        Vec::new(),
                    ),
                };
                i += 1;
                let Ok(req) = req else { continue };
                let start = Instant::now();
                match call(&mut send, req).await {
                    Ok((code, _)) if code < 300 => {
                        lat.record(start.elapsed());
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Latencies::default();
    for task in tasks {
        all.extend(task.await?);
    }
    Ok((
        done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64(),
        all,
        errors.load(Ordering::Relaxed),
    ))
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

async fn watch_latency(t: &Arc<Target>, args: &Args) -> Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u64>>();
    let ready = Arc::new(AtomicU64::new(0));
    let mut rv = String::new();
    {
        let mut send = t.connect().await?;
        let (_, body) = call(
            &mut send,
            t.request(
                "GET",
                "/api/v1/namespaces/watched/configmaps",
                "application/json",
                Vec::new(),
            )?,
        )
        .await?;
        let list: serde_json::Value = serde_json::from_slice(&body)?;
        rv.push_str(list["metadata"]["resourceVersion"].as_str().unwrap_or("0"));
    }
    let total = args.seconds * 200;
    for _ in 0..args.watchers {
        let (t, tx, ready, rv) = (t.clone(), tx.clone(), ready.clone(), rv.clone());
        tokio::spawn(async move {
            let Ok(mut send) = t.connect().await else { return };
            let path = format!("/api/v1/namespaces/watched/configmaps?watch=true&resourceVersion={rv}");
            let Ok(req) = t.request("GET", &path, "application/json", Vec::new()) else {
                return;
            };
            let Ok(resp) = send.send_request(req).await else { return };
            ready.fetch_add(1, Ordering::Relaxed);
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            let mut lat = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else { continue };
                let now = now_micros();
                buf.extend_from_slice(&data);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    // A substring scan, not a JSON parse: the clients share the server's two
                    // cores, and a thousand parsers per event would measure the clients.
                    let text = String::from_utf8_lossy(&line);
                    let sent = text.split("\"sent\":\"").nth(1).and_then(|t| t.split('"').next());
                    if let Some(sent) = sent.and_then(|s| s.parse::<u64>().ok()) {
                        lat.push(now.saturating_sub(sent));
                    }
                    if text.contains("\"name\":\"stop\"") {
                        let _ = tx.send(lat);
                        return;
                    }
                }
            }
        });
    }
    drop(tx);
    while ready.load(Ordering::Relaxed) < args.watchers as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut send = t.connect().await?;
    for i in 0..total {
        let body = serde_json::to_vec(&serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i}")},
            "data": {"sent": now_micros().to_string()},
        }))?;
        let (code, _) = call(
            &mut send,
            t.request(
                "POST",
                "/api/v1/namespaces/watched/configmaps",
                "application/json",
                body,
            )?,
        )
        .await?;
        if code >= 300 {
            bail!("create failed with {code}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stop = serde_json::to_vec(
        &serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stop"}}),
    )?;
    call(
        &mut send,
        t.request(
            "POST",
            "/api/v1/namespaces/watched/configmaps",
            "application/json",
            stop,
        )?,
    )
    .await?;
    let mut all = Latencies::default();
    let mut watchers = 0;
    while let Some(l) = rx.recv().await {
        watchers += 1;
        for us in l {
            all.record(Duration::from_micros(us));
        }
    }
    println!(
        "watch delivery, {watchers} watches over HTTPS, {total} creates at 200/s: p50 {}   p99 {}   ({} deliveries)",
        ms(all.percentile(50.0)),
        ms(all.percentile(99.0)),
        all.len()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    let dir = tempfile::Builder::new()
        .prefix("gantry-api-bench")
        .tempdir_in(&args.dir)?;
    let node = StoreNode::open(
        NodeConfig::new(1, "127.0.0.1:7801", dir.path().join("store")),
        Arc::new(TcpTransport::new()),
    )
    .await?;
    node.bootstrap_single().await?;
    node.wait_for_leader(Duration::from_secs(10)).await?;
    let api = ApiServer::start(ApiServerConfig::new("127.0.0.1:0".parse()?, dir.path()), node.clone()).await?;
    let ca = api.ca_pem.clone().context("the API serves TLS")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let t = Arc::new(Target {
        addr: api.addr,
        token: api.state.auth.admin_token.clone(),
        tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
    });
    {
        let mut send = t.connect().await?;
        let ns = serde_json::to_vec(
            &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "watched"}}),
        )?;
        call(
            &mut send,
            t.request("POST", "/api/v1/namespaces", "application/json", ns)?,
        )
        .await?;
    }
    println!(
        "API over HTTPS, 1 durable store node, {} clients, {} s per phase",
        args.clients, args.seconds
    );
    for (label, p) in [("create", Phase::Create), ("patch", Phase::Patch), ("get", Phase::Get)] {
        let (rate, mut lat, errors) = phase(&t, &args, p).await?;
        println!(
            "  {label:<6} {rate:>9.0} req/s   p50 {}   p99 {}   errors {errors}",
            ms(lat.percentile(50.0)),
            ms(lat.percentile(99.0))
        );
    }
    watch_latency(&t, &args).await?;
    Ok(())
}
