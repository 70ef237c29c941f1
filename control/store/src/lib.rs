//! Gantry's replicated store: an openraft node whose log is a segmented write-ahead log and
//! whose state machine is an etcd-style MVCC key-value map with watches.

pub mod error;
pub mod kv;
pub mod mvcc;
pub mod watch;

pub use error::StoreError;
pub use kv::*;

/// A Raft node's id.
pub type NodeId = u64;
