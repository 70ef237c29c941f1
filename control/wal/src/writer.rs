//! The writer thread: the only code that touches segment files after open. It group-commits
//! queued appends (one write, one fdatasync per batch) and runs rotations and removals in
//! queue order.
//!
//! Invariant: between batches the current segment has no unsynced bytes, because every write
//! is followed by its fdatasync before any `done` fires or any other op runs. That is what
//! seals a segment when a rotation comes, with no extra fdatasync.

use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use crate::format;
use crate::io::Engine;
use crate::recovery::Tail;
use crate::segment;
use crate::{Done, WalError};

/// A batch stops growing at this many ops ...
const MAX_BATCH_OPS: usize = 4096;
/// ... or once its appends carry this many payload bytes, bounding the buffer and the time
/// the first op in a batch waits.
const MAX_BATCH_BYTES: u64 = 8 << 20;

/// A request to the writer thread, in queue order.
pub(crate) enum Op {
    Append {
        records: Vec<Vec<u8>>,
        done: Done,
    },
    /// `id` was assigned at queue time and is always the current id + 1 when processed.
    Rotate {
        id: u64,
        header_records: Vec<Vec<u8>>,
        done: Done,
    },
    RemoveBefore {
        id: u64,
        done: Done,
    },
    /// An op refused at queue time (invalid record); its `done` still fires in queue order.
    Reject {
        error: WalError,
        done: Done,
    },
}

impl Op {
    pub(crate) fn into_done(self) -> Done {
        match self {
            Op::Append { done, .. }
            | Op::Rotate { done, .. }
            | Op::RemoveBefore { done, .. }
            | Op::Reject { done, .. } => done,
        }
    }

    fn payload_bytes(&self) -> u64 {
        match self {
            Op::Append { records, .. } => records.iter().map(|r| r.len() as u64).sum(),
            _ => 0,
        }
    }
}

/// Counts of completed I/O, for `Wal::stats`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    writes: AtomicU64,
    syncs: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
}

/// What the writer has done since open returned (creating segment 1 for a new log is not
/// counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Durable writes completed: one per group-committed batch or new segment.
    pub writes: u64,
    /// fdatasyncs of segment data completed (directory fsyncs are not counted).
    pub syncs: u64,
    /// Records made durable, segment header records included.
    pub records: u64,
    /// Bytes made durable, framing and segment headers included.
    pub bytes: u64,
}

impl Counters {
    // Relaxed is enough: counters are bumped before the `done`s of the same write fire, and
    // whatever a caller uses to learn of a `done` orders the two.
    fn add(&self, records: u64, bytes: u64) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> WalStats {
        WalStats {
            writes: self.writes.load(Ordering::Relaxed),
            syncs: self.syncs.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

pub(crate) struct Writer {
    dir: PathBuf,
    engine: Engine,
    current: Tail,
    /// The first failure's message, once a write or sync failed. Never cleared: after a
    /// failed fsync the page cache may claim data the disk lost, so retrying could report
    /// success for bytes that are gone. Only a reopen (replaying the disk) recovers.
    poisoned: Option<String>,
    stats: Arc<Counters>,
    /// Framed records of the appends not yet written; reused across batches.
    buf: Vec<u8>,
}

/// Appends framed into `Writer::buf` and waiting for its write.
#[derive(Default)]
struct Pending {
    /// Each `done` with the error it gets regardless of the write (set for rejected ops).
    waiters: Vec<(Done, Option<WalError>)>,
    records: u64,
}

impl Writer {
    pub(crate) fn new(dir: PathBuf, engine: Engine, current: Tail, stats: Arc<Counters>) -> Self {
        Writer {
            dir,
            engine,
            current,
            poisoned: None,
            stats,
            buf: Vec::new(),
        }
    }

    /// Runs until every `Wal` handle's sender is gone and the queue is drained.
    pub(crate) fn run(mut self, queue: Receiver<Op>) {
        let mut batch = Vec::new();
        while let Ok(first) = queue.recv() {
            let mut bytes = first.payload_bytes();
            batch.push(first);
            while batch.len() < MAX_BATCH_OPS && bytes < MAX_BATCH_BYTES {
                match queue.try_recv() {
                    Ok(op) => {
                        bytes += op.payload_bytes();
                        batch.push(op);
                    }
                    Err(_) => break,
                }
            }
            self.process(batch.drain(..));
        }
        tracing::debug!(dir = %self.dir.display(), "WAL writer stopped");
    }

    fn process(&mut self, ops: impl Iterator<Item = Op>) {
        let mut pending = Pending::default();
        for op in ops {
            match op {
                Op::Append { records, done } => {
                    if self.poisoned.is_none() {
                        for record in &records {
                            format::encode_record(&mut self.buf, record);
                        }
                        pending.records += records.len() as u64;
                    }
                    pending.waiters.push((done, None));
                }
                Op::Reject { error, done } => pending.waiters.push((done, Some(error))),
                Op::Rotate {
                    id,
                    header_records,
                    done,
                } => {
                    self.flush(&mut pending);
                    let result = self.rotate(id, &header_records);
                    finish(done, result);
                }
                Op::RemoveBefore { id, done } => {
                    self.flush(&mut pending);
                    let result = self.remove_before(id);
                    finish(done, result);
                }
            }
        }
        self.flush(&mut pending);
    }

    /// Writes and syncs the pending appends with one write and one fdatasync, then fires
    /// their `done`s in queue order.
    fn flush(&mut self, pending: &mut Pending) {
        if pending.waiters.is_empty() {
            return;
        }
        let result = if let Some(first_error) = &self.poisoned {
            Err(WalError::Poisoned {
                first_error: first_error.clone(),
            })
        } else if self.buf.is_empty() {
            // Only empty appends: everything before them is durable already.
            Ok(())
        } else {
            self.write_buffered(pending.records)
        };
        for (done, rejection) in pending.waiters.drain(..) {
            let outcome = match rejection {
                Some(error) => Err(error),
                None => result.as_ref().map(|_| ()).map_err(WalError::duplicate),
            };
            finish(done, outcome);
        }
        pending.records = 0;
        self.buf.clear();
        if self.buf.capacity() as u64 > 2 * MAX_BATCH_BYTES {
            // One huge append should not pin its buffer for the life of the log.
            self.buf.shrink_to(MAX_BATCH_BYTES as usize);
        }
    }

    fn write_buffered(&mut self, records: u64) -> Result<(), WalError> {
        let len = self.buf.len() as u64;
        match self
            .engine
            .write_and_sync(&self.current.file, self.current.len, &mut self.buf)
        {
            Ok(()) => {
                self.current.len += len;
                self.stats.add(records, len);
                Ok(())
            }
            Err(failure) => Err(self.poison(WalError::io(failure.stage.op(), &self.current.path, failure.error))),
        }
    }

    /// Creates segment `id` (current + 1) with `header_records` first and makes it current.
    /// The old segment needs no sync here: see the module invariant.
    fn rotate(&mut self, id: u64, header_records: &[Vec<u8>]) -> Result<(), WalError> {
        self.check_poisoned()?;
        assert_eq!(
            id,
            self.current.id + 1,
            "rotation ids are assigned under the queue lock in channel order"
        );
        // Any failure poisons: later appends were accounted to the new segment at queue time,
        // so carrying on in the old one would put them somewhere callers do not expect.
        match segment::create(&self.dir, id, header_records, &mut self.engine) {
            Ok((file, len)) => {
                self.stats.add(header_records.len() as u64, len);
                self.current.id = id;
                self.current.path = segment::path(&self.dir, id);
                self.current.file = file;
                self.current.len = len;
                Ok(())
            }
            Err(error) => Err(self.poison(error)),
        }
    }

    /// Deletes segments older than `id` (never the current one), oldest first so the files
    /// left always form a contiguous run, then fsyncs the directory.
    fn remove_before(&mut self, id: u64) -> Result<(), WalError> {
        self.check_poisoned()?;
        let end = id.min(self.current.id);
        let mut removed_any = false;
        let mut result = Ok(());
        while self.current.oldest < end {
            if let Err(error) = segment::remove(&segment::path(&self.dir, self.current.oldest)) {
                // A failed unlink leaves the log intact (the segment is merely kept), so it
                // fails this op without poisoning; a later removal retries it.
                result = Err(error);
                break;
            }
            removed_any = true;
            self.current.oldest += 1;
        }
        if removed_any {
            if let Err(error) = segment::sync_dir(&self.dir) {
                return Err(self.poison(error));
            }
        }
        result
    }

    fn check_poisoned(&self) -> Result<(), WalError> {
        match &self.poisoned {
            Some(first_error) => Err(WalError::Poisoned {
                first_error: first_error.clone(),
            }),
            None => Ok(()),
        }
    }

    fn poison(&mut self, error: WalError) -> WalError {
        tracing::error!(
            dir = %self.dir.display(),
            "WAL poisoned, refusing all further operations: {error}"
        );
        self.poisoned.get_or_insert_with(|| error.to_string());
        error
    }
}

/// Runs a `done`. A panicking callback is logged and contained: it must not stop the writer
/// that every other caller depends on.
fn finish(done: Done, result: Result<(), WalError>) {
    if panic::catch_unwind(AssertUnwindSafe(move || done(result))).is_err() {
        tracing::error!("a WAL completion callback panicked; the writer carries on");
    }
}
