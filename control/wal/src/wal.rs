//! `Wal`, the handle callers share: it assigns segment ids and byte counts at queue time and
//! hands every operation to the writer thread over a channel, so its methods never block.

use std::path::PathBuf;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

use crate::format;
use crate::io::{Backend, Engine, IoMode};
use crate::recovery::{self, Recovered};
use crate::writer::{Counters, Op, WalStats, Writer};
use crate::WalError;

/// Called once on the writer thread when an operation is durable, or with why it failed.
/// It should be quick (it delays every later operation) and must not block on the same `Wal`.
/// Only if the writer thread is gone does it run at once, on the caller's thread, with
/// `WalError::Closed`.
pub type Done = Box<dyn FnOnce(Result<(), WalError>) + Send + 'static>;

/// Where the log lives and how it does I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    pub dir: PathBuf,
    pub io: IoMode,
}

impl WalOptions {
    /// Options for a log in `dir` with `IoMode::Auto`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WalOptions {
            dir: dir.into(),
            io: IoMode::Auto,
        }
    }
}

/// A segmented write-ahead log. `Send + Sync`: share it through an `Arc`.
///
/// Every method but `append_sync` only enqueues, so it is safe to call from an async task.
/// Operations take effect, and their `done`s fire, in the order they were queued.
pub struct Wal {
    queue: Mutex<Queue>,
    backend: Backend,
    stats: Arc<Counters>,
    writer: Option<JoinHandle<()>>,
}

/// Queue-side state. Ids and byte counts are assigned under the same lock that orders sends,
/// so they match the order the writer processes ops in.
struct Queue {
    /// `None` only while dropping.
    sender: Option<Sender<Op>>,
    segment: u64,
    segment_bytes: u64,
}

impl Wal {
    /// Opens or creates the log in `opts.dir` (fsyncing the directory when it creates a
    /// segment), replays all segments, and starts the writer thread. A torn tail in the last
    /// segment is cut off and reported; damage anywhere else is `WalError::Corrupt`.
    pub fn open(opts: WalOptions) -> Result<(Wal, Recovered), WalError> {
        let (mut engine, backend) = Engine::select(opts.io)?;
        let (recovered, tail) = recovery::recover(&opts.dir, &mut engine)?;
        let (sender, receiver) = mpsc::channel();
        let queue = Queue {
            sender: Some(sender),
            segment: tail.id,
            segment_bytes: tail.len,
        };
        tracing::info!(
            dir = %opts.dir.display(),
            %backend,
            segment = tail.id,
            "WAL opened"
        );
        let stats = Arc::new(Counters::default());
        let writer = Writer::new(opts.dir.clone(), engine, tail, Arc::clone(&stats));
        let handle = thread::Builder::new()
            .name("gantry-wal".to_owned())
            .spawn(move || writer.run(receiver))
            .map_err(|e| WalError::io("spawn the writer thread for", &opts.dir, e))?;
        let wal = Wal {
            queue: Mutex::new(queue),
            backend,
            stats,
            writer: Some(handle),
        };
        Ok((wal, recovered))
    }

    /// The I/O backend in use, with the reason when it is the pwrite fallback.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Id of the segment appends go to now, counting rotations queued but not yet done.
    pub fn current_segment(&self) -> u64 {
        self.lock().segment
    }

    /// Size the current segment will have once everything queued is written, its header
    /// included (for deciding when to rotate).
    pub fn current_segment_bytes(&self) -> u64 {
        self.lock().segment_bytes
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> WalStats {
        self.stats.snapshot()
    }

    /// Queues `records` for the current segment. `done` runs on the writer thread once they
    /// are durable (written and fdatasynced), or with the error. An empty or oversized record
    /// fails this append alone with `WalError::InvalidRecord`; nothing of it is written.
    pub fn append(&self, records: Vec<Vec<u8>>, done: Done) {
        let refused = {
            let mut queue = self.lock();
            let op = match invalid_record(&records) {
                Some(error) => Op::Reject { error, done },
                None => {
                    queue.segment_bytes += framed_bytes(&records);
                    Op::Append { records, done }
                }
            };
            queue.send(op)
        };
        refuse(refused);
    }

    /// Queues a rotation: the current segment is sealed, segment id + 1 is created holding
    /// `header_records` first (atomically: all or none of it survives a crash), and later
    /// appends go there. Returns the new id at once. If a header record is invalid nothing
    /// rotates, `done` gets `WalError::InvalidRecord`, and the current id is returned.
    pub fn rotate(&self, header_records: Vec<Vec<u8>>, done: Done) -> u64 {
        let (id, refused) = {
            let mut queue = self.lock();
            let op = match invalid_record(&header_records) {
                Some(error) => Op::Reject { error, done },
                None => {
                    queue.segment += 1;
                    queue.segment_bytes = format::HEADER_LEN as u64 + framed_bytes(&header_records);
                    Op::Rotate {
                        id: queue.segment,
                        header_records,
                        done,
                    }
                }
            };
            (queue.segment, queue.send(op))
        };
        refuse(refused);
        id
    }

    /// Queues removal of every segment with an id below `id` (never the current one, even if
    /// `id` is past it), oldest first, then a directory fsync.
    pub fn remove_segments_before(&self, id: u64, done: Done) {
        let refused = self.lock().send(Op::RemoveBefore { id, done });
        refuse(refused);
    }

    /// Queues an append and blocks until it is durable. Not for async tasks, nor for `done`
    /// callbacks (they run on the writer thread, which would wait for itself).
    pub fn append_sync(&self, records: Vec<Vec<u8>>) -> Result<(), WalError> {
        let (sender, receiver) = mpsc::sync_channel(1);
        self.append(
            records,
            Box::new(move |result| {
                // The receiver outlives this call unless the caller is gone; nobody to tell then.
                let _ = sender.send(result);
            }),
        );
        // Disconnected without a result: the writer died with this append queued.
        receiver.recv().unwrap_or(Err(WalError::Closed))
    }

    /// Stops the writer once everything queued so far is done. Dropping the `Wal` does the same.
    pub fn close(self) {
        drop(self);
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The critical sections only do arithmetic and a non-blocking send, so a panic while
        // holding the lock cannot leave the counters half-updated.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Queue {
    /// Sends `op` to the writer; hands it back if the writer is gone.
    #[must_use]
    fn send(&self, op: Op) -> Option<Op> {
        match &self.sender {
            Some(sender) => sender.send(op).err().map(|refused| refused.0),
            None => Some(op),
        }
    }
}

/// Fails an op the writer never received. Runs on the caller's thread, after the queue lock
/// is released, since there is no writer thread to run it on.
fn refuse(refused: Option<Op>) {
    if let Some(op) = refused {
        (op.into_done())(Err(WalError::Closed));
    }
}

fn invalid_record(records: &[Vec<u8>]) -> Option<WalError> {
    records.iter().enumerate().find_map(|(index, record)| {
        format::invalid_record_reason(record).map(|reason| WalError::InvalidRecord { index, reason })
    })
}

fn framed_bytes(records: &[Vec<u8>]) -> u64 {
    records.iter().map(|r| format::framed_len(r)).sum()
}

impl Drop for Wal {
    fn drop(&mut self) {
        // Dropping the sender lets the writer drain the queue and stop.
        self.lock().sender = None;
        let Some(handle) = self.writer.take() else {
            return;
        };
        if handle.thread().id() == thread::current().id() {
            // Dropped from a `done` callback: the writer cannot wait for itself. It stops by
            // itself once this callback returns and the queue is drained.
            return;
        }
        if handle.join().is_err() {
            tracing::error!("WAL writer thread panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Wal>();
    }
}
