//! `WalError`: every way opening, replaying or writing the log can fail, each naming the file.

use std::io;
use std::path::PathBuf;

/// An error from the write-ahead log.
///
/// I/O failures carry the operation and the file; corruption carries the file and byte offset,
/// so an operator can find the damage without reading code.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A system call failed on a file or the log directory.
    #[error("WAL {op} failed on {path}: {source}")]
    Io {
        /// What was being done: "write", "fdatasync", "create", "fsync directory", ...
        op: &'static str,
        /// The segment file or directory it was done to.
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A segment cannot be replayed. Sealed segments were synced whole before the next one was
    /// created, so damage in them is not a torn write and is never repaired silently.
    #[error(
        "WAL segment {path} is corrupt at byte offset {offset}: {reason}; the log cannot be \
         replayed past it, so restore this member's data directory (or remove the member and \
         let it catch up from a snapshot)"
    )]
    Corrupt { path: PathBuf, offset: u64, reason: String },

    /// An earlier write or sync failed, so what is on disk is unknown; the log accepts nothing
    /// more until it is reopened (which replays what actually reached the disk).
    #[error(
        "WAL is poisoned by an earlier failure ({first_error}); it accepts no more operations: \
         fix the cause, then reopen the log"
    )]
    Poisoned { first_error: String },

    /// The writer thread is gone (it stopped after a panic), so nothing can be queued.
    #[error("WAL writer thread has stopped; no further operations are possible")]
    Closed,

    /// `IoMode::IoUring` was forced but io_uring cannot be used here.
    #[error(
        "io_uring was requested for the WAL but cannot be used: {reason}; use IoMode::Auto or \
         IoMode::Pwrite, or allow io_uring (kernel 5.6+, sysctl kernel.io_uring_disabled=0, no \
         seccomp filter blocking io_uring_setup)"
    )]
    UringUnavailable { reason: String },

    /// A record cannot be framed (the format needs 0 < length <= u32::MAX). Rejected before
    /// anything is written, so the log is not poisoned.
    #[error("WAL record {index} of the batch is invalid: {reason}")]
    InvalidRecord { index: usize, reason: String },
}

impl WalError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        WalError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// A copy of this error for the next `done` of a failed batch; each caller gets its own
    /// value. OS error codes survive the copy so callers can still match on ENOSPC or EIO.
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            WalError::Io { op, path, source } => WalError::Io {
                op,
                path: path.clone(),
                source: duplicate_io_error(source),
            },
            WalError::Corrupt { path, offset, reason } => WalError::Corrupt {
                path: path.clone(),
                offset: *offset,
                reason: reason.clone(),
            },
            WalError::Poisoned { first_error } => WalError::Poisoned {
                first_error: first_error.clone(),
            },
            WalError::Closed => WalError::Closed,
            WalError::UringUnavailable { reason } => WalError::UringUnavailable { reason: reason.clone() },
            WalError::InvalidRecord { index, reason } => WalError::InvalidRecord {
                index: *index,
                reason: reason.clone(),
            },
        }
    }
}

fn duplicate_io_error(error: &io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(error.kind(), error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicated_io_error_keeps_the_os_error_code_and_the_file() {
        let error = WalError::io(
            "write",
            "/data/wal/0000000000000001.wal",
            io::Error::from_raw_os_error(libc::ENOSPC),
        );
        let copy = error.duplicate();
        assert_eq!(copy.to_string(), error.to_string());
        match copy {
            WalError::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(libc::ENOSPC)),
            other => panic!("expected an Io error, got {other:?}"),
        }
    }

    #[test]
    fn io_error_message_names_the_operation_and_the_file() {
        let error = WalError::io(
            "fdatasync",
            "/data/wal/0000000000000003.wal",
            io::Error::from_raw_os_error(libc::EIO),
        );
        let message = error.to_string();
        assert!(message.contains("fdatasync"), "{message}");
        assert!(message.contains("/data/wal/0000000000000003.wal"), "{message}");
    }
}
