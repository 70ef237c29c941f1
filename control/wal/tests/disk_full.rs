//! A real ENOSPC: the log on a 64 KiB tmpfs, appended to until the disk is full.
//! Needs root (to mount); fails, never skips, without it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{done_channel, open, records, segment_path, wait};
use gantry_wal::{IoMode, WalError};

/// A 64 KiB tmpfs mounted for the life of the value.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path) -> Tmpfs {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(path)
            .status();
        match status {
            Ok(status) if status.success() => Tmpfs {
                path: path.to_path_buf(),
            },
            Ok(status) => panic!(
                "this test needs root and tmpfs to mount a 64 KiB tmpfs at {}: mount exited \
                 with {status}",
                path.display()
            ),
            Err(error) => panic!(
                "this test needs root and tmpfs (and the `mount` command) to mount a 64 KiB \
                 tmpfs at {}: {error}",
                path.display()
            ),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        match Command::new("umount").arg(&self.path).status() {
            Ok(status) if status.success() => {}
            other => eprintln!("could not unmount {}: {other:?}", self.path.display()),
        }
    }
}

fn disk_full(io: IoMode) {
    let tmp = tempfile::tempdir().expect("create a temp dir");
    // Declared first so it is unmounted last, after every file on it is closed.
    let _tmpfs = Tmpfs::mount(tmp.path());
    let dir = tmp.path().join("wal");
    let (wal, _) = open(&dir, io);
    let segment = segment_path(&dir, 1);

    let mut appended = Vec::new();
    let error = loop {
        assert!(
            appended.len() < 64,
            "64 KiB tmpfs never filled up after {} appends of 4 KiB",
            appended.len()
        );
        let record = vec![appended.len() as u8 + 1; 4000];
        match wal.append_sync(vec![record.clone()]) {
            Ok(()) => appended.push(record),
            Err(error) => break error,
        }
    };
    match &error {
        WalError::Io { op, path, source } => {
            assert_eq!(*op, "write");
            assert_eq!(path, &segment);
            assert_eq!(source.raw_os_error(), Some(libc::ENOSPC), "{source}");
        }
        other => panic!("expected an Io error from the write, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains(&segment.display().to_string()), "{message}");

    // Poisoned from now on, even for ops that might have fitted.
    match wal.append_sync(vec![b"tiny".to_vec()]) {
        Err(WalError::Poisoned { first_error }) => {
            assert!(first_error.contains("write"), "{first_error}");
            assert!(first_error.contains(&segment.display().to_string()), "{first_error}");
        }
        other => panic!("expected Poisoned, got {other:?}"),
    }
    let (done, receiver) = done_channel();
    wal.rotate(Vec::new(), done);
    assert!(matches!(wait(&receiver), Err(WalError::Poisoned { .. })));
    let (done, receiver) = done_channel();
    wal.remove_segments_before(1, done);
    assert!(matches!(wait(&receiver), Err(WalError::Poisoned { .. })));
    wal.close();

    // Reopening cuts off whatever part of the failed write landed; every acknowledged
    // record is there.
    let (wal, recovered) = open(&dir, io);
    assert_eq!(records(&recovered), appended);
    wal.close();
}

#[test]
fn disk_full_fails_the_write_and_poisons_with_pwrite() {
    disk_full(IoMode::Pwrite);
}

#[test]
fn disk_full_fails_the_write_and_poisons_with_io_uring() {
    disk_full(IoMode::IoUring);
}
