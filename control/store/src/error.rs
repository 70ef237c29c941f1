//! Errors of the store, named for what went wrong and carrying the ids a caller needs.

use crate::kv::Revision;
use crate::NodeId;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StoreError {
    /// The revision asked for has been compacted away; relist and watch from the result.
    #[error("revision {requested} has been compacted; the oldest available is {oldest}")]
    Compacted { requested: Revision, oldest: Revision },
    /// The revision asked for is newer than anything committed.
    #[error("revision {requested} is in the future; the latest is {latest}")]
    FutureRevision { requested: Revision, latest: Revision },
    /// The continue token could not be decoded.
    #[error("invalid continue token: {reason}")]
    InvalidContinue { reason: String },
    /// This node is not the leader; `leader` is the one it knows of, if any.
    #[error("this node is not the leader (leader: {})", leader_display(.leader, .leader_addr))]
    NotLeader {
        leader: Option<NodeId>,
        leader_addr: Option<String>,
    },
    /// No quorum could be reached in time; the write may or may not commit later.
    #[error("timed out after {millis} ms waiting for {what}")]
    Timeout { what: String, millis: u64 },
    /// A peer could not be reached.
    #[error("cannot reach {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    /// The local disk refused a write or a sync; the write is not acknowledged.
    #[error("storage failure: {0}")]
    Storage(String),
    /// The node is shutting down or has stopped after a fatal error.
    #[error("store stopped: {0}")]
    Stopped(String),
    /// A request was malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
}

fn leader_display(leader: &Option<NodeId>, addr: &Option<String>) -> String {
    match (leader, addr) {
        (Some(id), Some(addr)) => format!("node {id} at {addr}"),
        (Some(id), None) => format!("node {id}"),
        _ => "unknown".to_string(),
    }
}
