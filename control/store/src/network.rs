//! openraft's network: Raft RPCs carried by a [`Transport`] (TCP in production, a
//! fault-injecting in-process network in tests).

use std::sync::Arc;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;

use crate::rpc::{Request, Response, Transport, TransportError};
use crate::types::TypeConfig;
use crate::NodeId;

/// Creates one [`Connection`] per peer.
pub struct Network {
    pub transport: Arc<dyn Transport>,
}

/// Raft RPCs to one peer.
pub struct Connection {
    transport: Arc<dyn Transport>,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Connection {
        Connection {
            transport: self.transport.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

fn transport_err<E: std::error::Error>(e: TransportError) -> RPCError<NodeId, BasicNode, E> {
    match e {
        // Unreachable makes openraft back off before retrying this peer.
        TransportError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
        TransportError::Timeout { .. } => RPCError::Network(NetworkError::new(&e)),
    }
}

fn unexpected<E: std::error::Error>(addr: &str, what: &str) -> RPCError<NodeId, BasicNode, E> {
    let e = std::io::Error::other(format!("{addr} answered a {what} request with the wrong response type"));
    RPCError::Network(NetworkError::new(&e))
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        let resp = self
            .transport
            .call(&self.addr, Request::AppendEntries(rpc), option.hard_ttl())
            .await
            .map_err(transport_err)?;
        match resp {
            Response::AppendEntries(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(unexpected(&self.addr, "append-entries")),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        let resp = self
            .transport
            .call(&self.addr, Request::InstallSnapshot(rpc), option.hard_ttl())
            .await
            .map_err(transport_err)?;
        match resp {
            Response::InstallSnapshot(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(unexpected(&self.addr, "install-snapshot")),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> Result<VoteResponse<NodeId>, RpcErr> {
        let resp = self
            .transport
            .call(&self.addr, Request::Vote(rpc), option.hard_ttl())
            .await
            .map_err(transport_err)?;
        match resp {
            Response::Vote(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(unexpected(&self.addr, "vote")),
        }
    }
}
