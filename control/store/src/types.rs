//! The Raft type configuration: what a log entry carries and what applying it returns.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::kv::{Txn, TxnOutcome};

/// The payload of one Raft log entry: transactions from many clients, coalesced by the
/// proposer so that one entry (and one fsync) serves many writes. Each transaction commits
/// or fails on its own, under its own revision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteBatch {
    pub txns: Vec<Txn>,
}

/// What applying a [`WriteBatch`] produced: one outcome per transaction, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteResult {
    pub outcomes: Vec<TxnOutcome>,
}

openraft::declare_raft_types!(
    /// Gantry's store as openraft sees it.
    pub TypeConfig:
        D = WriteBatch,
        R = WriteResult,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<u64>;
pub type Vote = openraft::Vote<u64>;
pub type Membership = openraft::StoredMembership<u64, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<u64, openraft::BasicNode>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<u64>;
pub type Raft = openraft::Raft<TypeConfig>;
