//! The `gantry` binary: `gantry up` runs a whole single-node cluster in one process;
//! `gantry server` runs a control-plane member; `gantry store …` talks to the store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use gantry_control::apiserver::{ApiServer, ApiServerConfig};
use gantry_store::rpc::{serve, TcpTransport};
use gantry_store::{IoMode, NodeConfig, Op, RangeRequest, StoreClient, StoreNode, Txn, TxnOutcome};
use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[derive(Parser)]
#[command(
    name = "gantry",
    version,
    about = "A container orchestrator with the Kubernetes model and lean hot paths"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a complete single-node cluster in this process (the embedded default).
    Up(UpArgs),
    /// Run a control-plane member (store node) that bootstraps or joins a cluster.
    Server(ServerArgs),
    /// Talk to the store directly (debugging and scripting).
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Clone, Copy, ValueEnum)]
enum LogIo {
    Auto,
    IoUring,
    Pwrite,
}

impl From<LogIo> for IoMode {
    fn from(v: LogIo) -> IoMode {
        match v {
            LogIo::Auto => IoMode::Auto,
            LogIo::IoUring => IoMode::IoUring,
            LogIo::Pwrite => IoMode::Pwrite,
        }
    }
}

#[derive(Args)]
struct UpArgs {
    /// Where the cluster keeps its state; run again with the same directory to resume.
    #[arg(long, default_value = "/var/lib/gantry")]
    data_dir: PathBuf,
    /// Address of the store's peer port (loopback: a one-node cluster needs no peers).
    #[arg(long, default_value = "127.0.0.1:7420")]
    store_listen: String,
    /// Address of the Kubernetes API (HTTPS).
    #[arg(long, default_value = "127.0.0.1:6443")]
    api_listen: std::net::SocketAddr,
    #[command(flatten)]
    services: ServiceArgs,
}

/// Where Services get their addresses.
#[derive(Args, Clone)]
struct ServiceArgs {
    /// The range ClusterIPs are allocated from.
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cidr: String,
    /// The range NodePorts are allocated from.
    #[arg(long, default_value = "30000-32767")]
    service_node_port_range: String,
}

impl ServiceArgs {
    fn ranges(&self) -> Result<gantry_control::apiserver::services::ServiceRanges> {
        let mut r = gantry_control::apiserver::services::ServiceRanges::default();
        r.parse_cidr(&self.service_cidr)
            .map_err(|e| anyhow::anyhow!("--service-cidr {}: {e}", self.service_cidr))?;
        let (lo, hi) = self
            .service_node_port_range
            .split_once('-')
            .and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)))
            .filter(|(a, b)| a < b)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--service-node-port-range {}: expected LOW-HIGH, e.g. 30000-32767",
                    self.service_node_port_range
                )
            })?;
        r.node_ports = (lo, hi);
        Ok(r)
    }
}

#[derive(Args)]
struct ServerArgs {
    /// This member's id, unique in the cluster and stable across restarts.
    #[arg(long)]
    id: u64,
    /// Address to listen on for peers and store clients.
    #[arg(long)]
    listen: String,
    /// Address peers use to reach this member (defaults to --listen).
    #[arg(long)]
    advertise: Option<String>,
    #[arg(long)]
    data_dir: PathBuf,
    /// Start a new cluster with this member as its first voter.
    #[arg(long, conflicts_with = "join")]
    bootstrap: bool,
    /// Join the cluster that this member address belongs to.
    #[arg(long)]
    join: Option<String>,
    /// Join as a learner (a non-voting replica) instead of a voter.
    #[arg(long, requires = "join")]
    learner: bool,
    /// How the Raft log writes: io_uring, pwrite+fdatasync, or auto (io_uring if the kernel allows).
    #[arg(long, value_enum, default_value = "auto")]
    log_io: LogIo,
    /// Take a snapshot after this many log entries.
    #[arg(long, default_value_t = 20_000)]
    snapshot_every: u64,
    /// Address of the Kubernetes API; none serves no API from this member.
    #[arg(long)]
    api_listen: Option<std::net::SocketAddr>,
    /// Serve the API over plain HTTP (loopback addresses only).
    #[arg(long)]
    insecure_http: bool,
    /// Extra names or addresses clients reach the API at (for the serving certificate).
    #[arg(long, value_delimiter = ',')]
    api_advertise: Vec<String>,
    #[command(flatten)]
    services: ServiceArgs,
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Show a member's view of the cluster.
    Status {
        #[arg(long)]
        server: String,
    },
    /// Write a key.
    Put {
        #[arg(long, value_delimiter = ',')]
        server: Vec<String>,
        key: String,
        value: String,
    },
    /// Read keys under a prefix (linearizable).
    Get {
        #[arg(long, value_delimiter = ',')]
        server: Vec<String>,
        prefix: String,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up(args).await,
            Command::Server(args) => server(args).await,
            Command::Store(cmd) => store(cmd).await,
        }
    })
}

async fn up(args: UpArgs) -> Result<()> {
    let started = Instant::now();
    let service_ranges = args.services.ranges()?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data directory {}", args.data_dir.display()))?;
    eprintln!("gantry up: data in {}", args.data_dir.display());
    let mut config = NodeConfig::new(1, args.store_listen.clone(), args.data_dir.join("store"));
    // Alone, there is no one to wait for: elect quickly.
    config.election_timeout = (Duration::from_millis(150), Duration::from_millis(300));
    config.heartbeat = Duration::from_millis(50);
    let node = start_member(config).await?;
    node.bootstrap_single().await?;
    node.wait_for_leader(Duration::from_secs(10)).await?;
    eprintln!(
        "  ✓ store: one Raft member, revision {}, log writes via {:?} ({:.0?})",
        node.revision(),
        node.log_backend(),
        started.elapsed()
    );
    let mut api_config = ApiServerConfig::new(args.api_listen, &args.data_dir);
    api_config.service_ranges = service_ranges;
    let api = ApiServer::start(api_config, node.clone())
        .await
        .context("starting the API server")?;
    eprintln!("  ✓ API server: {} ({:.0?})", api.url, started.elapsed());
    tokio::spawn(gantry_control::controllers::run_while_leader(
        api.state.clone(),
        leader_tasks(),
    ));
    eprintln!(
        "  ✓ scheduler and controllers: ReplicaSet, ReplicationController, Deployment, Job, Endpoints, EndpointSlice, node lifecycle, garbage collector, namespace"
    );
    eprintln!("  · agent, dataplane, DNS: not built yet (see README, 'What works')");
    eprintln!(
        "gantry up: ready in {:.0?}. Ctrl-C stops it; run again to resume with the same state.",
        started.elapsed()
    );
    eprintln!("  kubeconfig: {}", api.kubeconfig.display());
    eprintln!(
        "  next: export KUBECONFIG={} && kubectl get namespaces",
        api.kubeconfig.display()
    );
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    eprintln!("gantry up: stopping");
    node.shutdown().await;
    Ok(())
}

/// What runs on the store's leader: the controllers and the scheduler.
fn leader_tasks() -> gantry_control::controllers::ControllerConfig {
    gantry_control::controllers::ControllerConfig {
        scheduler: true,
        ..Default::default()
    }
}

/// Opens a store member and serves its peer port.
async fn start_member(mut config: NodeConfig) -> Result<StoreNode> {
    let listen = config.listen.take().unwrap_or_else(|| config.addr.clone());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("listening on {listen} (is another gantry running?)"))?;
    let node = StoreNode::open(config, Arc::new(TcpTransport::new()))
        .await
        .context("opening the store")?;
    tokio::spawn(serve(listener, node.handler()));
    Ok(node)
}

async fn server(args: ServerArgs) -> Result<()> {
    let addr = args.advertise.clone().unwrap_or_else(|| args.listen.clone());
    let mut config = NodeConfig::new(args.id, addr.clone(), args.data_dir.clone());
    config.io = args.log_io.into();
    config.snapshot_every = args.snapshot_every;
    config.listen = Some(args.listen.clone());
    let node = start_member(config).await?;
    tracing::info!(id = args.id, %addr, backend = ?node.log_backend(), "store member started");
    if args.bootstrap {
        node.bootstrap(BTreeMap::from([(args.id, addr.clone())])).await?;
    } else if let Some(seed) = &args.join {
        node.join(seed, !args.learner, Duration::from_secs(120))
            .await
            .with_context(|| format!("joining the cluster through {seed}"))?;
        tracing::info!(%seed, "joined the cluster");
    } else if !node.raft().is_initialized().await? {
        bail!("this member belongs to no cluster yet: pass --bootstrap to start one or --join ADDR to join one");
    }
    if let Some(listen) = args.api_listen {
        let mut cfg = ApiServerConfig::new(listen, &args.data_dir);
        cfg.insecure_http = args.insecure_http;
        cfg.advertise = args.api_advertise.clone();
        cfg.service_ranges = args.services.ranges()?;
        let api = ApiServer::start(cfg, node.clone())
            .await
            .context("starting the API server")?;
        tracing::info!(url = %api.url, kubeconfig = %api.kubeconfig.display(), "API server ready");
        // The scheduler and controllers act only while this member leads the store.
        tokio::spawn(gantry_control::controllers::run_while_leader(
            api.state.clone(),
            leader_tasks(),
        ));
    }
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    node.shutdown().await;
    Ok(())
}

async fn store(cmd: StoreCommand) -> Result<()> {
    match cmd {
        StoreCommand::Status { server } => {
            let status = StoreClient::new(vec![server.clone()]).status(&server).await?;
            println!("{status:#?}");
        }
        StoreCommand::Put { server, key, value } => {
            let outcome = StoreClient::new(server).write(Txn::single(Op::put(key, value))).await?;
            match outcome {
                TxnOutcome::Committed { revision, .. } => println!("revision {revision}"),
                TxnOutcome::Failed { .. } => bail!("the write was refused: {outcome:?}"),
            }
        }
        StoreCommand::Get { server, prefix } => {
            let result = StoreClient::new(server)
                .range(
                    RangeRequest {
                        prefix,
                        ..Default::default()
                    },
                    true,
                )
                .await?;
            for kv in result.kvs {
                println!(
                    "{}\t{}\t(rev {})",
                    kv.key,
                    String::from_utf8_lossy(&kv.value),
                    kv.mod_revision
                );
            }
        }
    }
    Ok(())
}
