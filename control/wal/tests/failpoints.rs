//! Injected write and fsync failures (feature `failpoints`). A separate test binary, so the
//! process-wide failpoints cannot hit the other tests' logs.
#![cfg(feature = "failpoints")]

mod common;

use std::sync::mpsc::Receiver;

use common::{done_channel, open, records, segment_path, wait, WriterGate};
use gantry_wal::{IoMode, WalError};

const BATCH: usize = 5;

/// Queues a batch behind a parked writer, arms `failpoint`, releases the batch; every append
/// in it must fail with `op` on segment 1, and the log must be poisoned after.
fn failing_batch_poisons(io: IoMode, failpoint: &str, op: &str) {
    let scenario = fail::FailScenario::setup();
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let dir = tmp.path();
    let (wal, _) = open(dir, io);
    wal.append_sync(vec![b"durable".to_vec()])
        .expect("append before the failure");

    let gate = WriterGate::close(&wal);
    let receivers: Vec<Receiver<_>> = (0..BATCH)
        .map(|i| {
            let (done, receiver) = done_channel();
            wal.append(vec![format!("doomed {i}").into_bytes()], done);
            receiver
        })
        .collect();
    fail::cfg(failpoint, "return(EIO)").expect("arm the failpoint");
    drop(gate);
    let segment = segment_path(dir, 1);
    for receiver in &receivers {
        match wait(receiver) {
            Err(WalError::Io {
                op: failed_op,
                path,
                source,
            }) => {
                assert_eq!(failed_op, op);
                assert_eq!(path, segment);
                assert_eq!(source.raw_os_error(), Some(libc::EIO));
            }
            other => panic!("expected the batch to fail with {op}, got {other:?}"),
        }
    }
    fail::remove(failpoint);

    // The disk may be fine now, but a failed sync is never retried.
    match wal.append_sync(vec![b"after".to_vec()]) {
        Err(WalError::Poisoned { first_error }) => {
            assert!(first_error.contains(op), "{first_error}");
        }
        other => panic!("expected Poisoned, got {other:?}"),
    }
    let (done, receiver) = done_channel();
    wal.rotate(vec![b"header".to_vec()], done);
    assert!(matches!(wait(&receiver), Err(WalError::Poisoned { .. })));
    wal.close();

    // A reopen replays what reached the disk: the acknowledged records for certain; the
    // failed batch's records may or may not have been written, and "after" never was.
    let (_wal, recovered) = open(dir, io);
    let replayed = records(&recovered);
    assert_eq!(replayed[..2], [b"durable".to_vec(), b"gate".to_vec()]);
    assert!(replayed.len() == 2 || replayed.len() == 2 + BATCH, "{replayed:?}");
    scenario.teardown();
}

#[test]
fn fsync_error_fails_the_batch_and_poisons() {
    for io in [IoMode::Pwrite, IoMode::IoUring] {
        failing_batch_poisons(io, "wal::before_sync", "fdatasync");
    }
}

#[test]
fn write_error_fails_the_batch_and_poisons() {
    for io in [IoMode::Pwrite, IoMode::IoUring] {
        failing_batch_poisons(io, "wal::before_write", "write");
    }
}
