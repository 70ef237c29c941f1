//! Behaviour of the log through its public API: round trips, group commit, recovery,
//! rotation and removal, backend choice.

mod common;

use std::fs;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use common::{done_channel, open, records, segment_path, wait, WriterGate};
use gantry_wal::{Backend, IoMode, TornTail, Wal, WalError, WalOptions};

const THREADS: usize = 4;
const APPENDS_PER_THREAD: usize = 250;

fn record(thread: usize, seq: usize) -> Vec<u8> {
    // Sizes vary so batches mix small records with a few multi-KiB ones.
    let mut record = format!("t{thread}-{seq:05}").into_bytes();
    record.resize(record.len() + (seq % 7) * (seq % 5) * 97, b'.');
    record
}

fn parse_tag(record: &[u8]) -> (usize, usize) {
    let text = std::str::from_utf8(&record[..8]).expect("record tag is ASCII");
    let (thread, seq) = text[1..].split_once('-').expect("tag is t{thread}-{seq}");
    (
        thread.parse().expect("thread number"),
        seq.parse().expect("sequence number"),
    )
}

fn round_trip(io: IoMode) {
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let dir = tmp.path().join("wal");
    let (wal, recovered) = open(&dir, io);
    match (io, wal.backend()) {
        (IoMode::IoUring, Backend::IoUring) | (IoMode::Pwrite, Backend::Pwrite { .. }) => {}
        (io, backend) => panic!("{io:?} gave backend {backend}"),
    }
    assert!(recovered.segments.is_empty(), "a new log has no segments");
    assert_eq!(recovered.truncated_tail, None);
    assert!(segment_path(&dir, 1).exists(), "open creates segment 1");

    // Several threads append concurrently; each `done` records its record, so `completed` is
    // the order the writer made them durable, which must be the order they were queued.
    let wal = Arc::new(wal);
    let completed = Arc::new(Mutex::new(Vec::new()));
    let (results_tx, results_rx) = mpsc::channel();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = Arc::clone(&wal);
            let completed = Arc::clone(&completed);
            let results_tx = results_tx.clone();
            thread::spawn(move || {
                let mut seq = 0;
                while seq < APPENDS_PER_THREAD {
                    // Every third append carries two records.
                    let batch: Vec<Vec<u8>> = (seq..(seq + 1 + usize::from(seq % 3 == 0)))
                        .take_while(|s| *s < APPENDS_PER_THREAD)
                        .map(|s| record(t, s))
                        .collect();
                    seq += batch.len();
                    let completed = Arc::clone(&completed);
                    let results_tx = results_tx.clone();
                    let appended = batch.clone();
                    wal.append(
                        batch,
                        Box::new(move |result| {
                            completed.lock().expect("completion list lock").extend(appended);
                            let _ = results_tx.send(result);
                        }),
                    );
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("appending thread panicked");
    }
    drop(results_tx);
    for result in results_rx {
        result.expect("append failed");
    }
    let completed = completed.lock().expect("completion list lock").clone();
    assert_eq!(completed.len(), THREADS * APPENDS_PER_THREAD);
    assert_eq!(wal.stats().records, completed.len() as u64);
    Arc::try_unwrap(wal)
        .unwrap_or_else(|_| panic!("no other handle to the WAL is left"))
        .close();

    let (wal, recovered) = open(&dir, io);
    assert_eq!(recovered.truncated_tail, None);
    let replayed = records(&recovered);
    assert_eq!(replayed, completed, "replay order is the durable order");
    let mut next_seq = [0usize; THREADS];
    for record in &replayed {
        let (thread, seq) = parse_tag(record);
        assert_eq!(seq, next_seq[thread], "thread {thread}'s appends are in queue order");
        next_seq[thread] += 1;
    }

    // Appends after a reopen continue the same segment.
    wal.append_sync(vec![b"after reopen".to_vec()])
        .expect("append after reopen");
    wal.close();
    let (_wal, recovered) = open(&dir, io);
    let mut expected = completed;
    expected.push(b"after reopen".to_vec());
    assert_eq!(records(&recovered), expected);
    assert_eq!(recovered.segments.len(), 1);
}

#[test]
fn records_round_trip_across_reopen_with_io_uring() {
    round_trip(IoMode::IoUring);
}

#[test]
fn records_round_trip_across_reopen_with_pwrite() {
    round_trip(IoMode::Pwrite);
}

#[test]
fn group_commit_uses_fewer_syncs_than_appends() {
    const APPENDS: u64 = 1000;
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let (wal, _) = open(tmp.path(), IoMode::Auto);

    // With the writer parked, every append below is queued before it can take any, so it
    // drains them all as one batch: one write and one fdatasync.
    let gate = WriterGate::close(&wal);
    let before = wal.stats();
    let receivers: Vec<_> = (0..APPENDS)
        .map(|i| {
            let (done, receiver) = done_channel();
            wal.append(vec![format!("record {i}").into_bytes()], done);
            receiver
        })
        .collect();
    drop(gate);
    for receiver in &receivers {
        wait(receiver).expect("append failed");
    }
    let after = wal.stats();
    assert_eq!(after.records - before.records, APPENDS);
    assert_eq!(after.writes - before.writes, 1, "{before:?} -> {after:?}");
    assert_eq!(after.syncs - before.syncs, 1, "{before:?} -> {after:?}");
    assert!(after.syncs < APPENDS);
}

#[test]
fn torn_tail_is_truncated_on_open() {
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let dir = tmp.path();
    let (wal, _) = open(dir, IoMode::Auto);
    wal.append_sync(vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()])
        .expect("append");
    wal.close();

    // Chop the last record in half, as a crash mid-write would.
    let path = segment_path(dir, 1);
    let full_len = fs::metadata(&path).expect("stat segment").len();
    let two_records_end = 16 + (8 + 3) * 2;
    assert_eq!(full_len, two_records_end + 8 + 5);
    let file = fs::OpenOptions::new().write(true).open(&path).expect("open segment");
    file.set_len(full_len - 3).expect("chop segment");
    drop(file);

    let (wal, recovered) = open(dir, IoMode::Auto);
    assert_eq!(records(&recovered), vec![b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(
        recovered.truncated_tail,
        Some(TornTail {
            path: path.clone(),
            offset: two_records_end,
            discarded_bytes: 8 + 5 - 3,
        })
    );
    assert_eq!(fs::metadata(&path).expect("stat").len(), two_records_end);
    assert_eq!(wal.current_segment_bytes(), two_records_end);
    wal.append_sync(vec![b"four".to_vec()])
        .expect("append after truncation");
    wal.close();

    // Now garbage after the last whole record.
    let garbage = [0xa5u8; 37];
    let mut data = fs::read(&path).expect("read segment");
    let clean_len = data.len() as u64;
    data.extend_from_slice(&garbage);
    fs::write(&path, &data).expect("append garbage");

    let (wal, recovered) = open(dir, IoMode::Auto);
    let expected = vec![b"one".to_vec(), b"two".to_vec(), b"four".to_vec()];
    assert_eq!(records(&recovered), expected);
    assert_eq!(
        recovered.truncated_tail,
        Some(TornTail {
            path: path.clone(),
            offset: clean_len,
            discarded_bytes: garbage.len() as u64,
        })
    );
    wal.close();

    let (_wal, recovered) = open(dir, IoMode::Auto);
    assert_eq!(recovered.truncated_tail, None, "the second reopen is clean");
    assert_eq!(records(&recovered), expected);
}

#[test]
fn zero_filled_tail_is_cut_so_new_appends_stay_visible() {
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let dir = tmp.path();
    let (wal, _) = open(dir, IoMode::Auto);
    wal.append_sync(vec![b"kept".to_vec()]).expect("append");
    wal.close();
    let path = segment_path(dir, 1);
    let mut data = fs::read(&path).expect("read segment");
    data.extend_from_slice(&[0u8; 4096]);
    fs::write(&path, &data).expect("zero-fill the tail");

    let (wal, recovered) = open(dir, IoMode::Auto);
    let tail = recovered.truncated_tail.expect("the zero fill is reported");
    assert_eq!(tail.discarded_bytes, 4096);
    wal.append_sync(vec![b"next".to_vec()]).expect("append");
    wal.close();
    let (_wal, recovered) = open(dir, IoMode::Auto);
    assert_eq!(records(&recovered), vec![b"kept".to_vec(), b"next".to_vec()]);
}

/// A log with two sealed segments and a current one: 1 = [alpha, beta], 2 = [h2, gamma],
/// 3 = [h3].
fn three_segments(dir: &std::path::Path) {
    let (wal, _) = open(dir, IoMode::Auto);
    wal.append_sync(vec![b"alpha".to_vec(), b"beta".to_vec()])
        .expect("append");
    let (done, receiver) = done_channel();
    assert_eq!(wal.rotate(vec![b"h2".to_vec()], done), 2);
    wal.append_sync(vec![b"gamma".to_vec()]).expect("append");
    wait(&receiver).expect("rotate to 2");
    let (done, receiver) = done_channel();
    assert_eq!(wal.rotate(vec![b"h3".to_vec()], done), 3);
    wait(&receiver).expect("rotate to 3");
    wal.close();
}

#[test]
fn corrupt_record_in_sealed_segment_is_reported_with_its_path() {
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let dir = tmp.path();
    three_segments(dir);

    // Flip a bit inside "beta", the second record of sealed segment 1.
    let path = segment_path(dir, 1);
    let beta_offset = 16 + 8 + 5;
    let mut data = fs::read(&path).expect("read segment");
    data[beta_offset + 8 + 1] ^= 0x10;
    fs::write(&path, &data).expect("corrupt segment");

    let error = match Wal::open(WalOptions::new(dir)) {
        Ok(_) => panic!("a corrupt sealed segment must not open"),
        Err(error) => error,
    };
    match &error {
        WalError::Corrupt {
            path: bad_path,
            offset,
            reason,
        } => {
            assert_eq!(bad_path, &path);
            assert_eq!(*offset, beta_offset as u64);
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("offset 29"), "{message}");
    // Nothing was cut off the damaged segment.
    assert_eq!(fs::read(&path).expect("read segment"), data);
}

#[test]
fn bad_header_or_missing_segment_is_corrupt_too() {
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let dir = tmp.path();
    three_segments(dir);

    let path = segment_path(dir, 2);
    let original = fs::read(&path).expect("read segment");
    let mut bad_magic = original.clone();
    bad_magic[0] = b'X';
    fs::write(&path, &bad_magic).expect("corrupt header");
    match Wal::open(WalOptions::new(dir)) {
        Err(WalError::Corrupt {
            path: p,
            offset: 0,
            reason,
        }) => {
            assert_eq!(p, path);
            assert!(reason.contains("magic"), "{reason}");
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("a segment with a bad header must not open"),
    }

    fs::remove_file(&path).expect("remove segment 2");
    match Wal::open(WalOptions::new(dir)) {
        Err(WalError::Corrupt { reason, .. }) => {
            assert!(reason.contains("missing"), "{reason}");
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("a log with a gap must not open"),
    }
}

#[test]
fn rotate_and_remove_segments() {
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let dir = tmp.path();
    let (wal, _) = open(dir, IoMode::Auto);
    assert_eq!(wal.current_segment(), 1);
    assert_eq!(wal.current_segment_bytes(), 16);
    wal.append(vec![b"a".to_vec()], Box::new(|r| r.expect("append a")));
    assert_eq!(wal.current_segment_bytes(), 16 + 9);

    // Ids and sizes are assigned at queue time, before the writer gets to them.
    let (done2, rotated2) = done_channel();
    assert_eq!(wal.rotate(vec![b"header-2".to_vec()], done2), 2);
    assert_eq!(wal.current_segment(), 2);
    assert_eq!(wal.current_segment_bytes(), 16 + 8 + 8);
    wal.append(vec![b"b".to_vec()], Box::new(|r| r.expect("append b")));
    let (done3, rotated3) = done_channel();
    assert_eq!(wal.rotate(vec![b"header-3a".to_vec(), b"header-3b".to_vec()], done3), 3);
    wal.append_sync(vec![b"c".to_vec()]).expect("append c");
    wait(&rotated2).expect("rotate to 2");
    wait(&rotated3).expect("rotate to 3");
    wal.close();

    let (wal, recovered) = open(dir, IoMode::Auto);
    let by_segment: Vec<(u64, Vec<Vec<u8>>)> = recovered.segments.iter().map(|s| (s.id, s.records.clone())).collect();
    assert_eq!(
        by_segment,
        vec![
            (1, vec![b"a".to_vec()]),
            (2, vec![b"header-2".to_vec(), b"b".to_vec()]),
            (3, vec![b"header-3a".to_vec(), b"header-3b".to_vec(), b"c".to_vec()]),
        ]
    );
    assert_eq!(wal.current_segment(), 3);

    let (done, removed) = done_channel();
    wal.remove_segments_before(3, done);
    wait(&removed).expect("remove segments before 3");
    assert!(!segment_path(dir, 1).exists());
    assert!(!segment_path(dir, 2).exists());
    assert!(segment_path(dir, 3).exists());

    // Asking past the current segment still keeps it.
    let (done, removed) = done_channel();
    wal.remove_segments_before(100, done);
    wait(&removed).expect("remove segments before 100");
    assert!(segment_path(dir, 3).exists());
    wal.append_sync(vec![b"d".to_vec()]).expect("append d");
    wal.close();

    let (_wal, recovered) = open(dir, IoMode::Auto);
    assert_eq!(recovered.segments.len(), 1);
    assert_eq!(recovered.segments[0].id, 3);
    assert_eq!(
        records(&recovered),
        vec![
            b"header-3a".to_vec(),
            b"header-3b".to_vec(),
            b"c".to_vec(),
            b"d".to_vec()
        ]
    );
}

#[test]
fn interrupted_rotation_leaves_no_segment_behind() {
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let dir = tmp.path();
    let (wal, _) = open(dir, IoMode::Auto);
    wal.append_sync(vec![b"kept".to_vec()]).expect("append");
    wal.close();
    // What a crash between creating and renaming segment 2 leaves.
    let leftover = dir.join(format!("{:016x}.wal.tmp", 2));
    fs::write(&leftover, b"GWAL half").expect("write leftover");

    let (wal, recovered) = open(dir, IoMode::Auto);
    assert!(!leftover.exists());
    assert_eq!(records(&recovered), vec![b"kept".to_vec()]);
    assert_eq!(wal.current_segment(), 1);
}

#[test]
fn pwrite_fallback_is_used_when_forced() {
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let (wal, _) = open(tmp.path(), IoMode::Pwrite);
    match wal.backend() {
        Backend::Pwrite { reason } => assert!(reason.contains("IoMode::Pwrite"), "{reason}"),
        other => panic!("forced pwrite, got {other}"),
    }
    assert!(wal.backend().to_string().starts_with("pwrite"));
    wal.append_sync(vec![b"x".to_vec()]).expect("append");
    let stats = wal.stats();
    assert_eq!((stats.writes, stats.syncs, stats.records), (1, 1, 1), "{stats:?}");
}

#[test]
fn auto_mode_picks_a_backend_and_says_which() {
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let (wal, _) = open(tmp.path(), IoMode::Auto);
    let described = wal.backend().to_string();
    match wal.backend() {
        Backend::IoUring => assert_eq!(described, "io_uring"),
        Backend::Pwrite { reason } => {
            assert!(reason.contains("io_uring unavailable"), "{reason}");
            assert!(described.contains(reason.as_str()), "{described}");
        }
    }
    wal.append_sync(vec![b"x".to_vec()]).expect("append");
}

#[test]
fn close_completes_everything_queued_first() {
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let dir = tmp.path();
    let (wal, _) = open(dir, IoMode::Auto);
    let receivers: Vec<_> = (0..100u32)
        .map(|i| {
            let (done, receiver) = done_channel();
            wal.append(vec![i.to_le_bytes().to_vec()], done);
            receiver
        })
        .collect();
    wal.close();
    for receiver in &receivers {
        assert!(
            matches!(receiver.try_recv(), Ok(Ok(()))),
            "every done fired, successfully, before close returned"
        );
    }
    let (_wal, recovered) = open(dir, IoMode::Auto);
    assert_eq!(recovered.records().count(), 100);
}

#[test]
fn invalid_records_are_refused_without_poisoning() {
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let (wal, _) = open(tmp.path(), IoMode::Auto);
    let (done, receiver) = done_channel();
    wal.append(vec![b"fine".to_vec(), Vec::new()], done);
    match wait(&receiver) {
        Err(WalError::InvalidRecord { index: 1, .. }) => {}
        other => panic!("expected InvalidRecord for index 1, got {other:?}"),
    }
    let (done, receiver) = done_channel();
    assert_eq!(
        wal.rotate(vec![Vec::new()], done),
        1,
        "a refused rotation assigns no id"
    );
    assert!(matches!(wait(&receiver), Err(WalError::InvalidRecord { index: 0, .. })));
    assert_eq!(wal.current_segment_bytes(), 16);
    wal.append_sync(vec![b"still works".to_vec()])
        .expect("the log is not poisoned");
    assert_eq!(wal.stats().records, 1);
}

#[test]
fn a_panicking_done_does_not_stop_the_writer() {
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let (wal, _) = open(tmp.path(), IoMode::Auto);
    wal.append(
        vec![b"x".to_vec()],
        Box::new(|_| panic!("callback bug (expected in this test)")),
    );
    wal.append_sync(vec![b"y".to_vec()])
        .expect("the writer survives a panicking callback");
}
