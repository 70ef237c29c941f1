//! The io_uring backend: a positioned write linked to an fdatasync, in one submission.
//!
//! This is the only module with `unsafe`: pushing an SQE hands the kernel a raw pointer to our
//! buffer, so the buffer must outlive the operation. Every call here waits for all the CQEs it
//! asked for before returning, and if it cannot (the ring itself failed) it leaks the buffer
//! rather than let the kernel write from freed memory.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types, IoUring, Probe};

use crate::io::{IoFailure, Stage};

/// Submission queue size. One write plus one fsync is the most we ever have in flight.
const ENTRIES: u32 = 8;
/// Most bytes one write SQE carries (its length field is a u32); longer buffers go in chunks.
const MAX_CHUNK: usize = 1 << 30;
/// Retries of io_uring_enter on EAGAIN/EBUSY (kernel short of memory, or CQ full) before the
/// ring is given up on.
const MAX_BUSY_RETRIES: u32 = 10_000;

const USER_DATA_WRITE: u64 = 1;
const USER_DATA_SYNC: u64 = 2;
const USER_DATA_PROBE: u64 = 3;

pub(crate) struct Uring {
    ring: IoUring,
    /// Set once `io_uring_enter` itself failed: operations may still be in flight, so the
    /// ring is never used again.
    broken: Option<String>,
}

impl Uring {
    /// Creates a ring and proves it works: a NOP round trip, and the kernel supports the
    /// write and fsync opcodes (IORING_OP_WRITE needs Linux 5.6).
    pub(crate) fn probe() -> io::Result<Uring> {
        let mut ring = IoUring::new(ENTRIES).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "io_uring_setup failed: {e} (ENOSYS: kernel without io_uring; EPERM: \
                     disabled by sysctl kernel.io_uring_disabled or a seccomp filter)"
                ),
            )
        })?;
        let nop = opcode::Nop::new().build().user_data(USER_DATA_PROBE);
        // SAFETY: a NOP references no memory; the SQ is empty, freshly created with ENTRIES slots.
        unsafe { ring.submission().push(&nop) }
            .map_err(|_| io::Error::other("new io_uring submission queue is full"))?;
        let mut uring = Uring { ring, broken: None };
        let results = uring.wait_for(1)?;
        match results.probe {
            Some(res) if res < 0 => return Err(io::Error::from_raw_os_error(-res)),
            Some(_) => {}
            None => return Err(io::Error::other("io_uring NOP completed with unknown user data")),
        }
        let mut probe = Probe::new();
        uring.ring.submitter().register_probe(&mut probe).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "IORING_REGISTER_PROBE failed: {e} (the kernel predates Linux 5.6, \
                         which the write opcode needs)"
                ),
            )
        })?;
        for (code, name) in [
            (opcode::Write::CODE, "IORING_OP_WRITE"),
            (opcode::Fsync::CODE, "IORING_OP_FSYNC"),
        ] {
            if !probe.is_supported(code) {
                return Err(io::Error::other(format!(
                    "kernel io_uring lacks {name} (needs Linux 5.6 or later)"
                )));
            }
        }
        Ok(uring)
    }

    /// Writes all of `buf` to `file` at `offset` and, when `sync` is set, fdatasyncs the file
    /// in the same submission (the fsync SQE is linked to the write, so it runs only after the
    /// write completed in full).
    ///
    /// A short write cancels the linked fsync (-ECANCELED); the rest is resubmitted, again
    /// linked. On a ring failure `buf` is leaked and left empty (see the module docs).
    pub(crate) fn write_at(
        &mut self,
        file: &File,
        offset: u64,
        buf: &mut Vec<u8>,
        sync: bool,
    ) -> Result<(), IoFailure> {
        if let Some(reason) = &self.broken {
            return Err(IoFailure {
                stage: Stage::Write,
                error: io::Error::other(format!("io_uring is unusable after an earlier failure: {reason}")),
            });
        }
        let fd = types::Fd(file.as_raw_fd());
        let mut written = 0usize;
        loop {
            let rest = &buf[written..];
            let len = rest.len().min(MAX_CHUNK);
            let last = written + len == buf.len();
            let with_sync = last && sync;
            let write = opcode::Write::new(
                fd,
                rest.as_ptr(),
                u32::try_from(len).expect("chunk is at most MAX_CHUNK"),
            )
            .offset(offset + written as u64)
            .build()
            .user_data(USER_DATA_WRITE);
            let fsync = opcode::Fsync::new(fd)
                .flags(types::FsyncFlags::DATASYNC)
                .build()
                .user_data(USER_DATA_SYNC);
            let pushed = if with_sync {
                let entries = [write.flags(squeue::Flags::IO_LINK), fsync];
                // SAFETY: the write SQE points into `buf`, which is neither moved nor freed
                // until `wait_for` below has reaped both CQEs (or leaked it on ring failure);
                // `file` is borrowed for the whole call so the fd stays open. The SQ is empty
                // between calls and has ENTRIES (8) slots, so two entries fit.
                unsafe { self.ring.submission().push_multiple(&entries) }
            } else {
                // SAFETY: as above, for the single write SQE.
                unsafe { self.ring.submission().push(&write) }
            };
            if pushed.is_err() {
                return Err(IoFailure {
                    stage: Stage::Write,
                    error: io::Error::other("io_uring submission queue unexpectedly full"),
                });
            }
            let results = match self.wait_for(if with_sync { 2 } else { 1 }) {
                Ok(results) => results,
                Err(error) => {
                    // The kernel may still be reading `buf`: never free it.
                    std::mem::forget(std::mem::take(buf));
                    return Err(IoFailure {
                        stage: Stage::Write,
                        error,
                    });
                }
            };
            let wrote = match results.write {
                Some(res) if res < 0 => {
                    return Err(IoFailure {
                        stage: Stage::Write,
                        error: io::Error::from_raw_os_error(-res),
                    })
                }
                Some(0) => {
                    return Err(IoFailure {
                        stage: Stage::Write,
                        error: io::Error::new(io::ErrorKind::WriteZero, "write returned 0 bytes"),
                    })
                }
                Some(res) => res as usize,
                None => {
                    return Err(IoFailure {
                        stage: Stage::Write,
                        error: io::Error::other("io_uring write completion went missing"),
                    })
                }
            };
            written += wrote;
            if wrote < len {
                // Short write: the linked fsync was cancelled; go again with the rest.
                continue;
            }
            if with_sync {
                match results.sync {
                    Some(res) if res < 0 => {
                        return Err(IoFailure {
                            stage: Stage::Sync,
                            error: io::Error::from_raw_os_error(-res),
                        })
                    }
                    Some(_) => {}
                    None => {
                        return Err(IoFailure {
                            stage: Stage::Sync,
                            error: io::Error::other("io_uring fsync completion went missing"),
                        })
                    }
                }
            }
            if last {
                return Ok(());
            }
        }
    }

    /// Submits what is queued and reaps exactly `want` completions, retrying interrupted or
    /// busy `io_uring_enter` calls (the SQEs were already handed over, so giving up early
    /// would free memory the kernel still uses). An error here marks the ring broken.
    fn wait_for(&mut self, want: usize) -> io::Result<Completions> {
        let mut completions = Completions::default();
        let mut reaped = 0;
        let mut busy_retries = 0;
        while reaped < want {
            match self.ring.submit_and_wait(want - reaped) {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error)
                    if matches!(error.raw_os_error(), Some(libc::EAGAIN | libc::EBUSY))
                        && busy_retries < MAX_BUSY_RETRIES =>
                {
                    busy_retries += 1;
                }
                Err(error) => {
                    self.broken = Some(error.to_string());
                    return Err(error);
                }
            }
            for cqe in self.ring.completion() {
                reaped += 1;
                let slot = match cqe.user_data() {
                    USER_DATA_WRITE => &mut completions.write,
                    USER_DATA_SYNC => &mut completions.sync,
                    _ => &mut completions.probe,
                };
                *slot = Some(cqe.result());
            }
        }
        Ok(completions)
    }
}

/// Results of the CQEs of one submission, by operation.
#[derive(Debug, Default)]
struct Completions {
    write: Option<i32>,
    sync: Option<i32>,
    probe: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn linked_write_and_fdatasync_land_the_bytes_at_the_offset() {
        let mut uring = match Uring::probe() {
            Ok(uring) => uring,
            Err(error) => panic!("this test needs io_uring (Linux 5.6+, not disabled): {error}"),
        };
        let dir = tempfile::tempdir().expect("create a temp dir");
        let path = dir.path().join("f");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("create test file");
        file.write_all_at(b"0123456789", 0).expect("seed file");
        let mut buf = b"abc".to_vec();
        uring.write_at(&file, 4, &mut buf, true).expect("write and sync");
        let mut more = b"XY".to_vec();
        uring.write_at(&file, 10, &mut more, false).expect("write without sync");
        assert_eq!(std::fs::read(&path).expect("read back"), b"0123abc789XY".to_vec());
    }
}
