//! openraft's own storage test suite, run against the WAL-backed log store and the MVCC
//! state machine, once per log I/O path.

#![allow(clippy::result_large_err)] // openraft's StorageError, as the suite returns it

use gantry_store::log_store::{LogOptions, LogStore};
use gantry_store::state_machine::StateMachine;
use gantry_store::types::{StorageError, TypeConfig};
use gantry_store::IoMode;
use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;

struct Builder {
    io: IoMode,
}

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
        let dir = TempDir::new().expect("a temporary directory");
        let mut opts = LogOptions::new(dir.path().join("log"));
        opts.io = self.io;
        let log = LogStore::open(opts)?;
        let sm = StateMachine::open(dir.path().join("snapshots"), 10_000)?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes_with_io_uring() -> Result<(), StorageError> {
    Suite::test_all(Builder { io: IoMode::IoUring })
}

#[test]
fn openraft_storage_suite_passes_with_pwrite_fallback() -> Result<(), StorageError> {
    Suite::test_all(Builder { io: IoMode::Pwrite })
}
