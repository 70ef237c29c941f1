//! Choosing the I/O backend (io_uring or pwrite + fdatasync) and the one durable-write call
//! the writer makes through it.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::uring::Uring;
use crate::WalError;

/// Which I/O backend to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoMode {
    /// io_uring if a ring can be created and completes a NOP; pwrite + fdatasync otherwise.
    #[default]
    Auto,
    /// io_uring or nothing: `Wal::open` fails with `WalError::UringUnavailable`.
    IoUring,
    /// pwrite + fdatasync, without probing io_uring.
    Pwrite,
}

/// The backend a log is using, and why it fell back when it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    IoUring,
    Pwrite { reason: String },
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::IoUring => f.write_str("io_uring"),
            Backend::Pwrite { reason } => write!(f, "pwrite + fdatasync ({reason})"),
        }
    }
}

/// Which half of a durable write failed; it decides the `op` in `WalError::Io`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Write,
    Sync,
}

impl Stage {
    pub(crate) fn op(self) -> &'static str {
        match self {
            Stage::Write => "write",
            Stage::Sync => "fdatasync",
        }
    }
}

#[derive(Debug)]
pub(crate) struct IoFailure {
    pub(crate) stage: Stage,
    pub(crate) error: io::Error,
}

/// The backend's state; owned by the writer thread.
pub(crate) enum Engine {
    Uring(Box<Uring>),
    Pwrite,
}

impl Engine {
    /// Picks the backend for `mode`. Only a forced `IoMode::IoUring` turns a failed probe into
    /// an error; `Auto` logs why and falls back.
    pub(crate) fn select(mode: IoMode) -> Result<(Engine, Backend), WalError> {
        match mode {
            IoMode::Pwrite => Ok((
                Engine::Pwrite,
                Backend::Pwrite {
                    reason: "forced by IoMode::Pwrite".to_owned(),
                },
            )),
            IoMode::IoUring => match Uring::probe() {
                Ok(uring) => Ok((Engine::Uring(Box::new(uring)), Backend::IoUring)),
                Err(error) => Err(WalError::UringUnavailable {
                    reason: error.to_string(),
                }),
            },
            IoMode::Auto => match Uring::probe() {
                Ok(uring) => Ok((Engine::Uring(Box::new(uring)), Backend::IoUring)),
                Err(error) => {
                    let reason = format!("io_uring unavailable: {error}");
                    tracing::warn!("WAL falls back to pwrite + fdatasync: {reason}");
                    Ok((Engine::Pwrite, Backend::Pwrite { reason }))
                }
            },
        }
    }

    /// Writes `buf` at `offset` and fdatasyncs `file`; once this returns Ok the bytes are
    /// durable. `buf` may come back empty (never freed while the kernel might use it).
    pub(crate) fn write_and_sync(&mut self, file: &File, offset: u64, buf: &mut Vec<u8>) -> Result<(), IoFailure> {
        injected_failure("wal::before_write", Stage::Write)?;
        if buf.is_empty() {
            injected_failure("wal::before_sync", Stage::Sync)?;
            return file.sync_data().map_err(|error| IoFailure {
                stage: Stage::Sync,
                error,
            });
        }
        match self {
            Engine::Pwrite => {
                file.write_all_at(buf, offset).map_err(|error| IoFailure {
                    stage: Stage::Write,
                    error,
                })?;
                injected_failure("wal::before_sync", Stage::Sync)?;
                file.sync_data().map_err(|error| IoFailure {
                    stage: Stage::Sync,
                    error,
                })
            }
            Engine::Uring(uring) => {
                // The write and the sync go to the kernel together, so an injected sync
                // failure is decided first; the write still happens, as with a real failure.
                if let Err(failure) = injected_failure("wal::before_sync", Stage::Sync) {
                    uring.write_at(file, offset, buf, false)?;
                    return Err(failure);
                }
                uring.write_at(file, offset, buf, true)
            }
        }
    }
}

/// Failpoint hook: with the `failpoints` feature, `fail::cfg(name, "return")` makes this
/// fail with EIO, and `"return(ENOSPC)"` (or any errno name below) with that error.
#[cfg(feature = "failpoints")]
fn injected_failure(name: &str, stage: Stage) -> Result<(), IoFailure> {
    match fail::eval(name, |arg| arg) {
        None => Ok(()),
        Some(arg) => {
            let code = match arg.as_deref() {
                Some("ENOSPC") => libc::ENOSPC,
                Some("EDQUOT") => libc::EDQUOT,
                _ => libc::EIO,
            };
            Err(IoFailure {
                stage,
                error: io::Error::from_raw_os_error(code),
            })
        }
    }
}

#[cfg(not(feature = "failpoints"))]
fn injected_failure(_name: &str, _stage: Stage) -> Result<(), IoFailure> {
    Ok(())
}
