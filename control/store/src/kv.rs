//! The store's data model: keys, versioned values, the write operations and their outcomes.
//!
//! A key is a UTF-8 path such as `/registry/pods/default/web-1`. Every committed
//! transaction that changes something gets the next revision; a key remembers the
//! revision that created it and the one that last modified it, as etcd does.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A store revision: the number of the write that produced a state.
pub type Revision = u64;

/// One key at one revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision of the write that created this incarnation of the key.
    pub create_revision: Revision,
    /// Revision of the write that last changed the key.
    pub mod_revision: Revision,
    /// Number of writes to this incarnation of the key, starting at 1.
    pub version: u64,
}

/// A condition on a key's current state that an operation requires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precondition {
    /// The key must not exist (create-if-absent).
    Absent,
    /// The key must exist.
    Exists,
    /// The key must exist with exactly this mod revision (compare-and-swap).
    ModRevision(Revision),
}

/// One write inside a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Put {
        key: String,
        value: Bytes,
        guard: Option<Precondition>,
    },
    Delete {
        key: String,
        guard: Option<Precondition>,
    },
}

impl Op {
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key, .. } => key,
        }
    }

    pub fn guard(&self) -> Option<&Precondition> {
        match self {
            Op::Put { guard, .. } | Op::Delete { guard, .. } => guard.as_ref(),
        }
    }

    /// An unconditional put.
    pub fn put(key: impl Into<String>, value: impl Into<Bytes>) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
            guard: None,
        }
    }

    /// A put that only succeeds if the key does not exist.
    pub fn create(key: impl Into<String>, value: impl Into<Bytes>) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
            guard: Some(Precondition::Absent),
        }
    }

    /// A put that only succeeds if the key's mod revision is `rev`.
    pub fn put_if(key: impl Into<String>, value: impl Into<Bytes>, rev: Revision) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
            guard: Some(Precondition::ModRevision(rev)),
        }
    }

    /// An unconditional delete (a no-op if the key is absent).
    pub fn delete(key: impl Into<String>) -> Op {
        Op::Delete {
            key: key.into(),
            guard: None,
        }
    }

    /// A delete that only succeeds if the key's mod revision is `rev`.
    pub fn delete_if(key: impl Into<String>, rev: Revision) -> Op {
        Op::Delete {
            key: key.into(),
            guard: Some(Precondition::ModRevision(rev)),
        }
    }
}

/// Operations that commit atomically: either every guard holds and all are applied under
/// one new revision, or nothing is written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    pub ops: Vec<Op>,
}

impl Txn {
    pub fn new(ops: Vec<Op>) -> Txn {
        Txn { ops }
    }

    pub fn single(op: Op) -> Txn {
        Txn { ops: vec![op] }
    }
}

/// What became of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOutcome {
    /// Every op was applied. `revision` is the new revision, or the unchanged current one
    /// when the ops changed nothing (deletes of absent keys). `prev[i]` is the state of
    /// op i's key before the transaction.
    Committed {
        revision: Revision,
        prev: Vec<Option<KeyValue>>,
    },
    /// Op `op`'s guard did not hold; nothing was written. `current` is that key's state.
    Failed {
        op: usize,
        current: Option<KeyValue>,
        revision: Revision,
    },
}

impl TxnOutcome {
    pub fn revision(&self) -> Revision {
        match self {
            TxnOutcome::Committed { revision, .. } | TxnOutcome::Failed { revision, .. } => *revision,
        }
    }

    pub fn is_committed(&self) -> bool {
        matches!(self, TxnOutcome::Committed { .. })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change to one key, as a watcher sees it.
///
/// For a put, `kv` is the new state. For a delete, `kv.key` is the key, `kv.value` is
/// empty, `kv.mod_revision` is the revision of the delete and `create_revision` and
/// `version` are 0. `prev` is the key's state before the change (always set for deletes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev: Option<KeyValue>,
}

impl Event {
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A read of keys under a prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRequest {
    /// Keys starting with this prefix (an exact key is a prefix of itself; the empty
    /// prefix means every key).
    pub prefix: String,
    /// At most this many keys; 0 means no limit.
    pub limit: usize,
    /// Read at this revision; `None` reads the latest. Ignored when `continue_token` is
    /// set (the token carries the revision of the first page).
    pub revision: Option<Revision>,
    /// Resume a paged read where an earlier page ended.
    pub continue_token: Option<String>,
}

/// One page of a range read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeResult {
    pub kvs: Vec<KeyValue>,
    /// The revision the read was served at (the same for every page of one read).
    pub revision: Revision,
    /// Set when more keys remain; pass it back to get the next page.
    pub continue_token: Option<String>,
    /// Keys matching the prefix that this page did not return.
    pub remaining: u64,
}
