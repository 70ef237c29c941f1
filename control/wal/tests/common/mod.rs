//! Helpers shared by the integration tests: opening logs, waiting for `done`s, blocking the
//! writer so a batch can be built up deterministically.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};

use gantry_wal::{Done, IoMode, Recovered, Wal, WalError, WalOptions};

pub fn options(dir: &Path, io: IoMode) -> WalOptions {
    WalOptions {
        dir: dir.to_path_buf(),
        io,
    }
}

pub fn open(dir: &Path, io: IoMode) -> (Wal, Recovered) {
    match Wal::open(options(dir, io)) {
        Ok(opened) => opened,
        Err(error) => panic!("opening the WAL in {} with {io:?} failed: {error}", dir.display()),
    }
}

pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}.wal"))
}

/// All records of a recovered log, in order.
pub fn records(recovered: &Recovered) -> Vec<Vec<u8>> {
    recovered.records().map(<[u8]>::to_vec).collect()
}

/// A `done` that reports into the returned channel.
pub fn done_channel() -> (Done, Receiver<Result<(), WalError>>) {
    let (sender, receiver) = mpsc::channel();
    (reporting_done(sender), receiver)
}

pub fn reporting_done(sender: Sender<Result<(), WalError>>) -> Done {
    Box::new(move |result| {
        let _ = sender.send(result);
    })
}

pub fn wait(receiver: &Receiver<Result<(), WalError>>) -> Result<(), WalError> {
    receiver.recv().expect("the writer dropped a done without calling it")
}

/// Holds the writer thread inside a `done` callback until dropped, so that everything queued
/// meanwhile is drained as one batch when it is let go.
pub struct WriterGate {
    release: Sender<()>,
}

impl WriterGate {
    /// Queues a one-record append whose `done` parks the writer; returns once it is parked
    /// (so that append is durable and counted in the stats).
    pub fn close(wal: &Wal) -> WriterGate {
        let (parked_tx, parked_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        wal.append(
            vec![b"gate".to_vec()],
            Box::new(move |result| {
                let _ = parked_tx.send(result);
                let _ = release_rx.recv();
            }),
        );
        parked_rx
            .recv()
            .expect("writer dropped the gate append")
            .expect("the gate append failed");
        WriterGate { release: release_tx }
    }
}

impl Drop for WriterGate {
    fn drop(&mut self) {
        let _ = self.release.send(());
    }
}
