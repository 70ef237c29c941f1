//! Gantry's replicated store: an openraft node whose log is a segmented write-ahead log and
//! whose state machine is an etcd-style MVCC key-value map with watches.

// openraft's StorageError is large, and the storage traits return it by value.
#![allow(clippy::result_large_err)]

pub mod client;
pub mod error;
pub mod kv;
pub mod log_store;
pub mod mvcc;
pub mod network;
pub mod node;
pub mod rpc;
pub mod sim;
pub mod state_machine;
pub mod types;
pub mod watch;

pub use client::StoreClient;
pub use error::StoreError;
pub use kv::*;
pub use node::{Consistency, IoMode, NodeConfig, StoreNode};

/// A Raft node's id.
pub type NodeId = u64;
