//! The Raft log on disk: openraft's `RaftLogStorage` over the segmented WAL.
//!
//! Every change to the log — entries, votes, truncations, purges — is a record appended to
//! the WAL, so one writer thread orders all of them and one fdatasync covers a whole group.
//! openraft is told an append is durable only from the WAL's completion callback, and
//! `save_vote`/`truncate`/`purge` return only after their record is on disk.
//!
//! Entries since the last purge are also kept in memory (the purge that follows each
//! snapshot bounds them), so reads never touch the disk.
//!
//! Recovery replays the records in order. Each new segment starts with a `Header` record
//! carrying the vote, commit and purge point as of its creation, so older segments can be
//! deleted once every entry in them is purged.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gantry_wal::{Backend, IoMode, Wal, WalError, WalOptions};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, RaftLogId, RaftLogReader};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// Start a new segment once the current one holds this many bytes.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// One WAL record of the Raft log.
#[derive(Serialize, Deserialize)]
enum Record {
    /// First record of every segment: the log's metadata when the segment was opened.
    Header {
        vote: Option<Vote>,
        committed: Option<LogId>,
        purged: Option<LogId>,
    },
    /// A log entry; it replaces any entry at its index or after (a new leader's suffix).
    Entry(Entry),
    Vote(Vote),
    Committed(Option<LogId>),
    /// Entries at `since` and after are gone.
    Truncate {
        since: u64,
    },
    /// Entries up to and including this id are gone.
    Purge(LogId),
}

/// The in-memory part of the log shared with readers.
#[derive(Default)]
struct LogCache {
    entries: BTreeMap<u64, Entry>,
    purged: Option<LogId>,
}

/// Options for opening the log.
#[derive(Clone, Debug)]
pub struct LogOptions {
    pub dir: PathBuf,
    pub io: IoMode,
    pub segment_bytes: u64,
}

impl LogOptions {
    pub fn new(dir: impl Into<PathBuf>) -> LogOptions {
        LogOptions {
            dir: dir.into(),
            io: IoMode::Auto,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// openraft's log storage.
pub struct LogStore {
    wal: Arc<Wal>,
    dir: PathBuf,
    cache: Arc<RwLock<LogCache>>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    /// The last commit point written to the WAL; a newer one rides along with the next write.
    committed_written: Option<LogId>,
    segment_bytes: u64,
    /// Highest entry index each segment holds (segments with no entries are absent).
    segment_max_index: BTreeMap<u64, u64>,
}

/// A cheap handle that reads entries for replication.
#[derive(Clone)]
pub struct LogReader {
    cache: Arc<RwLock<LogCache>>,
}

impl LogStore {
    /// Opens the log in `opts.dir`, replaying it. A corrupt sealed segment is an error naming
    /// the file; a torn tail of the last one is cut off and logged.
    pub fn open(opts: LogOptions) -> Result<LogStore, StorageError> {
        let (wal, recovered) = Wal::open(WalOptions {
            dir: opts.dir.clone(),
            io: opts.io,
        })
        .map_err(|e| io_error(&opts.dir, "open the raft log", e))?;
        if let Some(torn) = &recovered.truncated_tail {
            tracing::warn!(
                path = %torn.path.display(),
                offset = torn.offset,
                discarded_bytes = torn.discarded_bytes,
                "raft log had a torn tail (a write interrupted by a crash); truncated it"
            );
        }
        let mut cache = LogCache::default();
        let mut vote = None;
        let mut committed = None;
        let mut segment_max_index = BTreeMap::new();
        for segment in &recovered.segments {
            for raw in &segment.records {
                let record: Record = bincode::deserialize(raw).map_err(|e| {
                    StorageError::from_io_error(
                        ErrorSubject::Logs,
                        ErrorVerb::Read,
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("undecodable record in raft log segment {}: {e}", segment.path.display()),
                        ),
                    )
                })?;
                match record {
                    Record::Header {
                        vote: v,
                        committed: c,
                        purged,
                    } => {
                        // Records replay in order, so the newest value wins.
                        vote = v.or(vote);
                        committed = c.or(committed);
                        if let Some(p) = purged {
                            apply_purge(&mut cache, p);
                        }
                    }
                    Record::Entry(entry) => {
                        let index = entry.log_id.index;
                        cache.entries.split_off(&index);
                        cache.entries.insert(index, entry);
                        segment_max_index.insert(segment.id, index);
                    }
                    Record::Vote(v) => vote = Some(v),
                    Record::Committed(c) => committed = c.or(committed),
                    Record::Truncate { since } => {
                        cache.entries.split_off(&since);
                    }
                    Record::Purge(p) => apply_purge(&mut cache, p),
                }
            }
        }
        match wal.backend() {
            Backend::IoUring => tracing::info!(dir = %opts.dir.display(), "raft log appends use io_uring"),
            Backend::Pwrite { reason } => tracing::info!(
                dir = %opts.dir.display(),
                %reason,
                "raft log appends use pwrite+fdatasync"
            ),
        }
        Ok(LogStore {
            wal: Arc::new(wal),
            dir: opts.dir,
            cache: Arc::new(RwLock::new(cache)),
            vote,
            committed,
            committed_written: committed,
            segment_bytes: opts.segment_bytes,
            segment_max_index,
        })
    }

    /// Which I/O path appends take.
    pub fn backend(&self) -> Backend {
        self.wal.backend().clone()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `records` and waits until they are durable.
    async fn write_durable(&mut self, mut records: Vec<Vec<u8>>, what: &'static str) -> Result<(), StorageError> {
        self.piggyback_committed(&mut records);
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.wal.append(
            records,
            Box::new(move |res| {
                let _ = tx.send(res);
            }),
        );
        let res = rx
            .await
            .map_err(|_| WalError::Closed)
            .and_then(|r| r)
            .map_err(|e| io_error(&self.dir, what, e));
        self.maybe_rotate();
        res
    }

    /// Adds the latest commit point to a write if it has not been written yet.
    fn piggyback_committed(&mut self, records: &mut Vec<Vec<u8>>) {
        if self.committed != self.committed_written {
            records.insert(0, encode(&Record::Committed(self.committed)));
            self.committed_written = self.committed;
        }
    }

    /// Starts a new segment when the current one is full, and drops segments whose entries
    /// are all purged.
    fn maybe_rotate(&mut self) {
        if self.wal.current_segment_bytes() < self.segment_bytes {
            return;
        }
        let header = encode(&Record::Header {
            vote: self.vote,
            committed: self.committed,
            purged: self.cache.read().purged,
        });
        self.committed_written = self.committed;
        let dir = self.dir.clone();
        self.wal.rotate(
            vec![header],
            Box::new(move |res| {
                if let Err(e) = res {
                    tracing::error!(dir = %dir.display(), error = %e, "could not start a new raft log segment");
                }
            }),
        );
        self.remove_purged_segments();
    }

    fn remove_purged_segments(&mut self) {
        let purged = match self.cache.read().purged {
            Some(p) => p.index,
            None => return,
        };
        let current = self.wal.current_segment();
        // The oldest segment still holding an unpurged entry, or the current one.
        let keep_from = self
            .segment_max_index
            .iter()
            .find(|(_, max)| **max > purged)
            .map(|(id, _)| *id)
            .unwrap_or(current)
            .min(current);
        let oldest = match self.segment_max_index.keys().next() {
            Some(id) => *id,
            None => return,
        };
        if oldest >= keep_from {
            return;
        }
        self.segment_max_index = self.segment_max_index.split_off(&keep_from);
        let dir = self.dir.clone();
        self.wal.remove_segments_before(
            keep_from,
            Box::new(move |res| {
                if let Err(e) = res {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not remove purged raft log segments");
                }
            }),
        );
    }
}

fn apply_purge(cache: &mut LogCache, purged: LogId) {
    if cache.purged.is_none_or(|p| p.index < purged.index) {
        cache.purged = Some(purged);
    }
    let keep = cache.entries.split_off(&(purged.index + 1));
    cache.entries = keep;
}

fn encode(record: &Record) -> Vec<u8> {
    bincode::serialize(record).expect("log records are plain data and always serialize")
}

fn io_error(dir: &Path, what: &str, e: WalError) -> StorageError {
    StorageError::from_io_error(
        ErrorSubject::Logs,
        ErrorVerb::Write,
        io::Error::other(format!("could not {what} in {}: {e}", dir.display())),
    )
}

impl LogReader {
    fn read<RB: RangeBounds<u64>>(&self, range: RB) -> Vec<Entry> {
        self.cache.read().entries.range(range).map(|(_, e)| e.clone()).collect()
    }
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(self.read(range))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(LogReader {
            cache: self.cache.clone(),
        }
        .read(range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let cache = self.cache.read();
        let last = cache.entries.values().next_back().map(|e| *e.get_log_id());
        Ok(LogState {
            last_purged_log_id: cache.purged,
            last_log_id: last.or(cache.purged),
        })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        LogReader {
            cache: self.cache.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.write_durable(vec![encode(&Record::Vote(*vote))], "save the vote")
            .await?;
        self.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not synced on its own: it rides along with the next write. Losing it in a crash
        // only means re-learning the commit point from the leader (or, alone, at election).
        self.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut records = Vec::new();
        let segment = self.wal.current_segment();
        {
            let mut cache = self.cache.write();
            for entry in entries {
                records.push(encode(&Record::Entry(entry.clone())));
                let index = entry.log_id.index;
                // An entry replaces anything at its index or after: that suffix belonged to a
                // deposed leader.
                cache.entries.split_off(&index);
                cache.entries.insert(index, entry);
                self.segment_max_index.insert(segment, index);
            }
        }
        if records.is_empty() {
            callback.log_io_completed(Ok(()));
            return Ok(());
        }
        self.piggyback_committed(&mut records);
        let dir = self.dir.clone();
        self.wal.append(
            records,
            Box::new(move |res| {
                callback.log_io_completed(
                    res.map_err(|e| io::Error::other(format!("raft log append in {} failed: {e}", dir.display()))),
                )
            }),
        );
        self.maybe_rotate();
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.write_durable(
            vec![encode(&Record::Truncate { since: log_id.index })],
            "truncate the log",
        )
        .await?;
        self.cache.write().entries.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.write_durable(vec![encode(&Record::Purge(log_id))], "purge the log")
            .await?;
        apply_purge(&mut self.cache.write(), log_id);
        self.remove_purged_segments();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;

    use openraft::storage::RaftLogStorageExt;
    use openraft::testing::log_id;
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::kv::{Op, Txn};
    use crate::types::WriteBatch;

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            log_id: log_id(term, 1, index),
            payload: EntryPayload::Normal(WriteBatch {
                txns: vec![Txn::single(Op::put(format!("/k/{index}"), vec![b'x'; 100]))],
            }),
        }
    }

    fn open(dir: &Path, segment_bytes: u64) -> LogStore {
        LogStore::open(LogOptions {
            dir: dir.to_path_buf(),
            io: IoMode::Pwrite,
            segment_bytes,
        })
        .expect("open log")
    }

    async fn indexes(log: &mut LogStore) -> Vec<u64> {
        log.try_get_log_entries(..)
            .await
            .expect("read")
            .iter()
            .map(|e| e.log_id.index)
            .collect()
    }

    #[tokio::test]
    async fn vote_entries_truncation_and_purge_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut log = open(dir.path(), DEFAULT_SEGMENT_BYTES);
            let vote = Vote::new_committed(3, 2);
            log.save_vote(&vote).await.expect("vote");
            log.blocking_append((1..=10).map(|i| entry(1, i)))
                .await
                .expect("append");
            log.truncate(log_id(1, 1, 8)).await.expect("truncate");
            log.blocking_append((8..=9).map(|i| entry(2, i)))
                .await
                .expect("append new term");
            log.purge(log_id(1, 1, 3)).await.expect("purge");
            log.save_committed(Some(log_id(2, 1, 9))).await.expect("committed");
            // The commit point rides along with the next write.
            log.blocking_append([entry(2, 10)]).await.expect("append");
        }
        let mut log = open(dir.path(), DEFAULT_SEGMENT_BYTES);
        assert_eq!(log.read_vote().await.expect("vote"), Some(Vote::new_committed(3, 2)));
        assert_eq!(indexes(&mut log).await, (4..=10).collect::<Vec<_>>());
        let entries = log.try_get_log_entries(8..10).await.expect("read");
        assert!(entries
            .iter()
            .all(|e| e.log_id.leader_id == CommittedLeaderId::new(2, 1)));
        let state = log.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 3)));
        assert_eq!(state.last_log_id, Some(log_id(2, 1, 10)));
        assert_eq!(log.read_committed().await.expect("committed"), Some(log_id(2, 1, 9)));
    }

    #[tokio::test]
    async fn torn_tail_loses_only_the_unfinished_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut log = open(dir.path(), DEFAULT_SEGMENT_BYTES);
            log.blocking_append((1..=5).map(|i| entry(1, i))).await.expect("append");
        }
        // A crash in the middle of writing the last record: cut the file inside it.
        let segment = std::fs::read_dir(dir.path())
            .expect("list")
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "wal"))
            .expect("a segment");
        let len = std::fs::metadata(&segment).expect("stat").len();
        OpenOptions::new()
            .write(true)
            .open(&segment)
            .expect("open")
            .set_len(len - 20)
            .expect("truncate");
        let mut log = open(dir.path(), DEFAULT_SEGMENT_BYTES);
        assert_eq!(indexes(&mut log).await, vec![1, 2, 3, 4]);
        // The log goes on from there, and a second reopen is clean.
        log.blocking_append([entry(1, 5)]).await.expect("append after recovery");
        drop(log);
        let mut log = open(dir.path(), DEFAULT_SEGMENT_BYTES);
        assert_eq!(indexes(&mut log).await, vec![1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn purged_segments_are_deleted_and_the_rest_replays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segments = |d: &Path| {
            std::fs::read_dir(d)
                .expect("list")
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "wal"))
                .count()
        };
        {
            let mut log = open(dir.path(), 4096);
            log.save_vote(&Vote::new_committed(1, 1)).await.expect("vote");
            for i in 1..=200 {
                log.blocking_append([entry(1, i)]).await.expect("append");
            }
            assert!(segments(dir.path()) > 3, "small segments rotate");
            log.purge(log_id(1, 1, 150)).await.expect("purge");
            // Removal is queued behind the purge; a sync append flushes the queue.
            log.blocking_append([entry(1, 201)]).await.expect("append");
        }
        let before = segments(dir.path());
        assert!(
            before <= 3,
            "segments holding only purged entries are deleted ({before} left)"
        );
        let mut log = open(dir.path(), 4096);
        assert_eq!(indexes(&mut log).await, (151..=201).collect::<Vec<_>>());
        assert_eq!(log.read_vote().await.expect("vote"), Some(Vote::new_committed(1, 1)));
    }
}
