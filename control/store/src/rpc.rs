//! The store's peer protocol: the requests nodes send each other (Raft RPCs, forwarded
//! writes, ReadIndex, membership) and a compact binary transport over TCP.
//!
//! Frame: `[u32 LE length of what follows][u64 LE request id][bincode payload]`. One TCP
//! connection per peer carries many requests at once; responses come back tagged with the
//! request id, in any order. A broken connection fails every request waiting on it and the
//! next call reconnects.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::kv::{RangeRequest, RangeResult};
use crate::types::{TypeConfig, WriteBatch, WriteResult};
use crate::NodeId;

/// Frames above this size are refused: a peer sending one is broken or hostile.
pub const MAX_FRAME: usize = 256 * 1024 * 1024;

#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Transactions forwarded to the leader.
    Write(WriteBatch),
    /// A follower asks the leader for a read index (ReadIndex).
    ReadIndex,
    /// A range read served by the receiving node.
    Range {
        req: RangeRequest,
        linearizable: bool,
    },
    /// Add a node: as a learner, then (if `voter`) promote it.
    Join {
        id: NodeId,
        addr: String,
        voter: bool,
    },
    /// Remove a node from the voters and learners.
    Leave {
        id: NodeId,
    },
    Status,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    Write(Result<WriteResult, StoreError>),
    ReadIndex(Result<u64, StoreError>),
    Range(Result<RangeResult, StoreError>),
    Join(Result<(), StoreError>),
    Leave(Result<(), StoreError>),
    Status(NodeStatus),
}

/// What a node reports about itself and the cluster as it sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub id: NodeId,
    pub addr: String,
    pub leader: Option<NodeId>,
    pub leader_addr: Option<String>,
    pub term: u64,
    pub last_applied: u64,
    pub revision: u64,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
}

/// Why a request got no response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    #[error("cannot reach {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("no response from {addr} within {millis} ms")]
    Timeout { addr: String, millis: u64 },
}

impl From<TransportError> for StoreError {
    fn from(e: TransportError) -> StoreError {
        match e {
            TransportError::Unreachable { addr, reason } => StoreError::Unreachable { addr, reason },
            TransportError::Timeout { addr, millis } => StoreError::Timeout {
                what: format!("a response from {addr}"),
                millis,
            },
        }
    }
}

/// Sends requests to peers by address. Implemented over TCP and, for tests, over an
/// in-process network that can drop, delay and partition.
pub trait Transport: Send + Sync + 'static {
    fn call(&self, addr: &str, req: Request, timeout: Duration)
        -> BoxFuture<'static, Result<Response, TransportError>>;
}

/// Serves requests that arrive from peers.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Request) -> BoxFuture<'static, Response>;
}

fn encode_frame(id: u64, payload: &impl Serialize) -> Vec<u8> {
    let body = bincode::serialize(payload).expect("rpc messages are plain data and always serialize");
    let mut frame = Vec::with_capacity(12 + body.len());
    frame.extend_from_slice(&((body.len() + 8) as u32).to_le_bytes());
    frame.extend_from_slice(&id.to_le_bytes());
    frame.extend_from_slice(&body);
    frame
}

async fn read_frame<R: AsyncReadExt + Unpin>(r: &mut R) -> io::Result<(u64, Vec<u8>)> {
    let len = r.read_u32_le().await? as usize;
    if !(8..=MAX_FRAME).contains(&len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is out of bounds"),
        ));
    }
    let id = r.read_u64_le().await?;
    let mut body = vec![0; len - 8];
    r.read_exact(&mut body).await?;
    Ok((id, body))
}

/// Accepts peer connections on `listener` and serves each with `handler` until the task is
/// dropped.
pub async fn serve(listener: TcpListener, handler: Arc<dyn Handler>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a peer connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_connection(stream, handler).await {
                if e.kind() != io::ErrorKind::UnexpectedEof {
                    tracing::debug!(%peer, error = %e, "peer connection closed");
                }
            }
        });
    }
}

async fn serve_connection(stream: TcpStream, handler: Arc<dyn Handler>) -> io::Result<()> {
    let (read, write) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(1024);
    let writer = tokio::spawn(async move {
        let mut w = BufWriter::new(write);
        while let Some(frame) = rx.recv().await {
            w.write_all(&frame).await?;
            // Coalesce whatever else is ready into the same flush.
            while let Ok(frame) = rx.try_recv() {
                w.write_all(&frame).await?;
            }
            w.flush().await?;
        }
        io::Result::Ok(())
    });
    let mut r = BufReader::new(read);
    let result = loop {
        let (id, body) = match read_frame(&mut r).await {
            Ok(f) => f,
            Err(e) => break Err(e),
        };
        let req: Request = match bincode::deserialize(&body) {
            Ok(req) => req,
            Err(e) => {
                break Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("undecodable request: {e}"),
                ))
            }
        };
        let handler = handler.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let resp = handler.handle(req).await;
            let _ = tx.send(encode_frame(id, &resp)).await;
        });
    };
    drop(tx);
    let _ = writer.await;
    result
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Vec<u8>>>>>;

/// One multiplexed connection to a peer.
struct Conn {
    tx: mpsc::Sender<Vec<u8>>,
    pending: Pending,
    alive: Arc<std::sync::atomic::AtomicBool>,
}

/// The TCP transport: one lazily (re)established connection per peer address.
#[derive(Clone, Default)]
pub struct TcpTransport {
    inner: Arc<TcpInner>,
}

#[derive(Default)]
struct TcpInner {
    conns: Mutex<HashMap<String, Arc<Conn>>>,
    next_id: AtomicU64,
}

impl TcpTransport {
    pub fn new() -> TcpTransport {
        TcpTransport::default()
    }

    async fn connect(addr: &str) -> io::Result<Arc<Conn>> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        let pending: Pending = Arc::default();
        let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(1024);
        let alive_w = alive.clone();
        tokio::spawn(async move {
            let mut w = BufWriter::new(write);
            while let Some(frame) = rx.recv().await {
                let mut ok = w.write_all(&frame).await.is_ok();
                while ok {
                    match rx.try_recv() {
                        Ok(frame) => ok = w.write_all(&frame).await.is_ok(),
                        Err(_) => break,
                    }
                }
                if !ok || w.flush().await.is_err() {
                    break;
                }
            }
            alive_w.store(false, Ordering::Release);
        });
        let pending_r = pending.clone();
        let alive_r = alive.clone();
        tokio::spawn(async move {
            let mut r = BufReader::new(read);
            while let Ok((id, body)) = read_frame(&mut r).await {
                if let Some(waiter) = pending_r.lock().remove(&id) {
                    let _ = waiter.send(body);
                }
            }
            alive_r.store(false, Ordering::Release);
            // Fail everyone still waiting: their responses will never come.
            pending_r.lock().clear();
        });
        Ok(Arc::new(Conn { tx, pending, alive }))
    }

    async fn conn(&self, addr: &str) -> Result<Arc<Conn>, TransportError> {
        if let Some(c) = self.inner.conns.lock().get(addr) {
            if c.alive.load(Ordering::Acquire) {
                return Ok(c.clone());
            }
        }
        let conn = Self::connect(addr).await.map_err(|e| TransportError::Unreachable {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        self.inner.conns.lock().insert(addr.to_string(), conn.clone());
        Ok(conn)
    }

    async fn call_inner(self, addr: String, req: Request) -> Result<Response, TransportError> {
        let conn = self.conn(&addr).await?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        conn.pending.lock().insert(id, tx);
        let unreachable = |reason: &str| TransportError::Unreachable {
            addr: addr.clone(),
            reason: reason.to_string(),
        };
        if conn.tx.send(encode_frame(id, &req)).await.is_err() {
            conn.pending.lock().remove(&id);
            return Err(unreachable("connection closed"));
        }
        let body = rx
            .await
            .map_err(|_| unreachable("connection closed before the response"))?;
        bincode::deserialize(&body).map_err(|e| unreachable(&format!("undecodable response: {e}")))
    }
}

impl Transport for TcpTransport {
    fn call(
        &self,
        addr: &str,
        req: Request,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Response, TransportError>> {
        let fut = self.clone().call_inner(addr.to_string(), req);
        let addr = addr.to_string();
        Box::pin(async move {
            match tokio::time::timeout(timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(TransportError::Timeout {
                    addr,
                    millis: timeout.as_millis() as u64,
                }),
            }
        })
    }
}
