//! The replicated state machine: applies committed write batches to the MVCC map, publishes
//! the resulting events to watchers, and writes and installs snapshots.
//!
//! Applying does not touch the disk: the log holds every committed entry since the last
//! snapshot, and the snapshot (written with fsync before the log is purged) holds the rest,
//! so a restart rebuilds the state from the newest snapshot plus the log. Restart time is
//! therefore bounded by the snapshot size and the snapshot interval, not by history.
//!
//! Snapshot file: `GSNP` magic, format version (u32 LE), CRC32 of the body (u32 LE), body
//! length (u64 LE), then the body (bincode of the snapshot meta and the MVCC image). The same
//! bytes are what a leader streams to a follower, so a follower checks the CRC too.

use std::io::{self, Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, StoredMembership};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::mvcc::{MvccSnapshot, MvccState};
use crate::types::{Entry, LogId, Membership, Snapshot, SnapshotMeta, StorageError, TypeConfig, WriteResult};
use crate::watch::WatchHub;

const SNAPSHOT_MAGIC: &[u8; 4] = b"GSNP";
const SNAPSHOT_VERSION: u32 = 1;
const SNAPSHOT_HEADER: usize = 4 + 4 + 4 + 8;
/// Compact MVCC history down to the watch window every this many revisions.
const COMPACT_EVERY: u64 = 4096;

/// What the apply path and readers share.
pub struct Applied {
    pub mvcc: MvccState,
    pub last_applied: Option<LogId>,
    pub membership: Membership,
}

/// The state that readers (range, get, watch) use, shared with the state machine.
#[derive(Clone)]
pub struct StoreState {
    pub inner: Arc<RwLock<Applied>>,
    pub hub: WatchHub,
}

#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    meta: SnapshotMeta,
    mvcc: MvccSnapshot,
}

/// openraft's state machine.
pub struct StateMachine {
    state: StoreState,
    dir: PathBuf,
    seq: u64,
    last_compact: u64,
}

impl StateMachine {
    /// Opens the state machine, loading the newest snapshot in `dir` if there is one. A
    /// corrupt snapshot is an error that names its file.
    pub fn open(dir: impl Into<PathBuf>, watch_window: usize) -> Result<StateMachine, StorageError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| snap_io(&dir, "create the snapshot directory", e))?;
        // A `.tmp` file is an interrupted snapshot write; the previous snapshot is whole.
        let entries = std::fs::read_dir(&dir).map_err(|e| snap_io(&dir, "list snapshots", e))?;
        for path in entries.flatten().map(|e| e.path()) {
            if path.extension().and_then(|e| e.to_str()) == Some("tmp") {
                let _ = std::fs::remove_file(&path);
            }
        }
        let newest = newest_snapshot(&dir);
        let (mvcc, last_applied, membership) = match newest {
            Some(path) => {
                let bytes = std::fs::read(&path).map_err(|e| snap_io(&path, "read snapshot", e))?;
                let body = decode_snapshot(&bytes).map_err(|reason| corrupt(&path, &reason))?;
                let last = body.meta.last_log_id;
                let membership = body.meta.last_membership.clone();
                (MvccState::from_snapshot(body.mvcc), last, membership)
            }
            None => (MvccState::new(), None, StoredMembership::default()),
        };
        let hub = WatchHub::new(watch_window, mvcc.revision());
        Ok(StateMachine {
            state: StoreState {
                inner: Arc::new(RwLock::new(Applied {
                    mvcc,
                    last_applied,
                    membership,
                })),
                hub,
            },
            dir,
            seq: 0,
            last_compact: 0,
        })
    }

    /// The handle readers use.
    pub fn state(&self) -> StoreState {
        self.state.clone()
    }
}

/// Serializes a snapshot into its file format.
fn encode_snapshot(body: &SnapshotBody) -> Vec<u8> {
    let payload = bincode::serialize(body).expect("snapshot bodies are plain data and always serialize");
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER + payload.len());
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn decode_snapshot(bytes: &[u8]) -> Result<SnapshotBody, String> {
    if bytes.len() < SNAPSHOT_HEADER {
        return Err(format!("{} bytes is shorter than the snapshot header", bytes.len()));
    }
    if &bytes[0..4] != SNAPSHOT_MAGIC {
        return Err("bad magic: not a gantry snapshot".into());
    }
    let version = u32::from_le_bytes(bytes[4..8].try_into().expect("4-byte slice"));
    if version != SNAPSHOT_VERSION {
        return Err(format!("unknown snapshot format version {version}"));
    }
    let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4-byte slice"));
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8-byte slice")) as usize;
    let payload = &bytes[SNAPSHOT_HEADER..];
    if payload.len() != len {
        return Err(format!("body is {} bytes, header says {len}", payload.len()));
    }
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".into());
    }
    bincode::deserialize(payload).map_err(|e| format!("undecodable body: {e}"))
}

fn snap_io(path: &Path, what: &str, e: io::Error) -> StorageError {
    StorageError::from_io_error(
        ErrorSubject::Snapshot(None),
        ErrorVerb::Write,
        io::Error::new(e.kind(), format!("{what} {}: {e}", path.display())),
    )
}

fn corrupt(path: &Path, reason: &str) -> StorageError {
    StorageError::from_io_error(
        ErrorSubject::Snapshot(None),
        ErrorVerb::Read,
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("corrupt snapshot {}: {reason}", path.display()),
        ),
    )
}

/// Builds a snapshot from a consistent image of the state.
pub struct SnapshotBuilder {
    state: StoreState,
    dir: PathBuf,
    seq: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        // The image and the log id it reflects are read under one lock, so they agree.
        let (mvcc, last_applied, membership) = {
            let inner = self.state.inner.read();
            (inner.mvcc.snapshot(), inner.last_applied, inner.membership.clone())
        };
        let index = last_applied.map_or(0, |l| l.index);
        let term = last_applied.map_or(0, |l| l.leader_id.term);
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id: format!("{term}-{index}-{}", self.seq),
        };
        let body = SnapshotBody {
            meta: meta.clone(),
            mvcc,
        };
        let bytes = encode_snapshot(&body);
        write_snapshot_file(&self.dir, &meta, &bytes)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

/// Writes a snapshot file durably (tmp + fsync + rename + dir fsync) and removes older ones.
fn write_snapshot_file(dir: &Path, meta: &SnapshotMeta, bytes: &[u8]) -> Result<PathBuf, StorageError> {
    let index = meta.last_log_id.map_or(0, |l| l.index);
    let term = meta.last_log_id.map_or(0, |l| l.leader_id.term);
    let name = format!("{index:020}-{term:010}.snap");
    let path = dir.join(&name);
    let tmp = dir.join(format!("{name}.tmp"));
    let write = || -> io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| snap_io(&path, "write snapshot", e))?;
    remove_older_snapshots(dir, &path);
    Ok(path)
}

/// Removes every snapshot file in `dir` whose name sorts before `keep`'s.
fn remove_older_snapshots(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) == Some("snap") && path.file_name() < keep.file_name() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Finds the newest snapshot file in `dir`.
fn newest_snapshot(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("snap"))
        .max_by(|a, b| a.file_name().cmp(&b.file_name()))
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), StorageError> {
        let inner = self.state.inner.read();
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<WriteResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut results = Vec::new();
        let mut events = Vec::new();
        let revision = {
            let mut inner = self.state.inner.write();
            for entry in entries {
                inner.last_applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => results.push(WriteResult::default()),
                    EntryPayload::Normal(batch) => {
                        let outcomes = batch
                            .txns
                            .iter()
                            .map(|txn| inner.mvcc.apply(txn, &mut events))
                            .collect();
                        results.push(WriteResult { outcomes });
                    }
                    EntryPayload::Membership(m) => {
                        inner.membership = StoredMembership::new(Some(entry.log_id), m);
                        results.push(WriteResult::default());
                    }
                }
            }
            let revision = inner.mvcc.revision();
            if revision >= self.last_compact + COMPACT_EVERY {
                // History older than the watch window can serve neither watches nor reads.
                inner.mvcc.compact(self.state.hub.floor());
                self.last_compact = revision;
            }
            revision
        };
        self.state.hub.publish(revision, events);
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        self.seq += 1;
        SnapshotBuilder {
            state: self.state.clone(),
            dir: self.dir.clone(),
            seq: self.seq,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let body = decode_snapshot(&bytes).map_err(|reason| {
            StorageError::from_io_error(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Read,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("received a corrupt snapshot {}: {reason}", meta.snapshot_id),
                ),
            )
        })?;
        let path = write_snapshot_file(&self.dir, meta, &bytes)?;
        let mvcc = MvccState::from_snapshot(body.mvcc);
        let revision = mvcc.revision();
        {
            let mut inner = self.state.inner.write();
            inner.mvcc = mvcc;
            inner.last_applied = meta.last_log_id;
            inner.membership = meta.last_membership.clone();
        }
        // Watchers behind the snapshot cannot be served from history any more: they relist.
        self.state.hub.reset(revision);
        self.last_compact = revision;
        tracing::info!(path = %path.display(), revision, "installed snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        // Snapshot builders write files on their own, so look at the directory.
        let Some(path) = newest_snapshot(&self.dir) else {
            return Ok(None);
        };
        let bytes = std::fs::read(&path).map_err(|e| snap_io(&path, "read snapshot", e))?;
        let body = decode_snapshot(&bytes).map_err(|reason| corrupt(&path, &reason))?;
        Ok(Some(Snapshot {
            meta: body.meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use openraft::storage::RaftStateMachine;
    use openraft::testing::log_id;
    use openraft::{Entry as RaftEntry, EntryPayload, RaftSnapshotBuilder};

    use super::*;
    use crate::kv::{Op, Txn};
    use crate::types::WriteBatch;

    #[tokio::test]
    async fn snapshot_round_trips_through_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sm = StateMachine::open(dir.path(), 100).expect("open");
        let entry = RaftEntry {
            log_id: log_id(1, 1, 1),
            payload: EntryPayload::Normal(WriteBatch {
                txns: vec![Txn::single(Op::put("/a", "1")), Txn::single(Op::put("/b", "2"))],
            }),
        };
        sm.apply([entry]).await.expect("apply");
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("snapshot");
        drop(sm);
        let mut sm = StateMachine::open(dir.path(), 100).expect("reopen");
        let (applied, _) = sm.applied_state().await.expect("applied");
        assert_eq!(applied, Some(log_id(1, 1, 1)));
        let state = sm.state();
        let inner = state.inner.read();
        assert_eq!(inner.mvcc.revision(), 3);
        assert_eq!(
            &inner.mvcc.get("/b", None).expect("get").expect("present").value[..],
            b"2"
        );
    }

    #[tokio::test]
    async fn corrupt_snapshot_is_reported_with_its_file_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sm = StateMachine::open(dir.path(), 100).expect("open");
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("snapshot");
        drop(sm);
        let path = newest_snapshot(dir.path()).expect("a snapshot file");
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes).expect("write");
        let err = StateMachine::open(dir.path(), 100)
            .err()
            .expect("corruption is detected");
        let msg = err.to_string();
        assert!(
            msg.contains(&path.display().to_string()),
            "the error names the file: {msg}"
        );
        assert!(msg.contains("checksum"), "the error says what is wrong: {msg}");
    }
}
