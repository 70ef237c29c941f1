//! Replaying the log on open: read every segment, refuse damage in sealed ones, cut a torn
//! tail off the last one, and hand back where appends continue.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::format::{self, Stop};
use crate::io::Engine;
use crate::segment;
use crate::WalError;

/// Everything the log held when it was opened.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The segments found on disk, ascending by id, none missing in between. Empty when the
    /// log was just created.
    pub segments: Vec<RecoveredSegment>,
    /// Set when the last segment ended in a partial or damaged record and was cut back.
    pub truncated_tail: Option<TornTail>,
}

impl Recovered {
    /// All records in log order, across segments.
    pub fn records(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.segments
            .iter()
            .flat_map(|segment| segment.records.iter().map(Vec::as_slice))
    }
}

/// One segment's records, in the order they were appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredSegment {
    pub id: u64,
    pub path: PathBuf,
    pub records: Vec<Vec<u8>>,
}

/// Where the last segment was cut back, and how much was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub path: PathBuf,
    /// The segment's new length: the end of its last whole record.
    pub offset: u64,
    pub discarded_bytes: u64,
}

/// The segment appends go to after recovery.
pub(crate) struct Tail {
    pub(crate) id: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    /// File length: where the next record goes.
    pub(crate) len: u64,
    /// Smallest segment id on disk.
    pub(crate) oldest: u64,
}

/// Opens or creates the log in `dir` and replays it.
pub(crate) fn recover(dir: &Path, engine: &mut Engine) -> Result<(Recovered, Tail), WalError> {
    ensure_dir(dir)?;
    let ids = segment::list(dir)?;
    let (Some(&oldest), Some(&newest)) = (ids.first(), ids.last()) else {
        let (file, len) = segment::create(dir, 1, &[], engine)?;
        let tail = Tail {
            id: 1,
            path: segment::path(dir, 1),
            file,
            len,
            oldest: 1,
        };
        return Ok((Recovered::default(), tail));
    };
    for pair in ids.windows(2) {
        if pair[1] != pair[0] + 1 {
            return Err(WalError::Corrupt {
                path: segment::path(dir, pair[1]),
                offset: 0,
                reason: format!(
                    "segment {} is missing: the log jumps from segment {} to {}",
                    segment::path(dir, pair[0] + 1).display(),
                    pair[0],
                    pair[1]
                ),
            });
        }
    }

    let mut recovered = Recovered::default();
    let mut tail_len = 0;
    for &id in &ids {
        let path = segment::path(dir, id);
        let data = fs::read(&path).map_err(|e| WalError::io("read", &path, e))?;
        format::check_header(&data, id).map_err(|reason| WalError::Corrupt {
            path: path.clone(),
            offset: 0,
            reason,
        })?;
        let scan = format::scan_records(&data);
        let is_last = id == newest;
        match scan.stop {
            None => {}
            // Sealed segments may end in zeros; the last one is cut back below regardless,
            // because appends go at the end of the file and must not land after the zeros.
            Some(Stop::ZeroFill) if !is_last => {}
            Some(Stop::BadRecord { reason }) if !is_last => {
                return Err(WalError::Corrupt {
                    path,
                    offset: scan.valid_len,
                    reason: format!("{reason} (in a sealed segment, so not a torn write)"),
                });
            }
            Some(stop) => {
                let discarded_bytes = data.len() as u64 - scan.valid_len;
                truncate(&path, scan.valid_len)?;
                let why = match stop {
                    Stop::ZeroFill => "zero fill".to_owned(),
                    Stop::BadRecord { reason } => reason,
                };
                tracing::warn!(
                    path = %path.display(),
                    offset = scan.valid_len,
                    discarded_bytes,
                    "WAL tail was torn ({why}); truncated the last segment at the last whole record"
                );
                recovered.truncated_tail = Some(TornTail {
                    path: path.clone(),
                    offset: scan.valid_len,
                    discarded_bytes,
                });
            }
        }
        if is_last {
            tail_len = scan.valid_len;
        }
        recovered.segments.push(RecoveredSegment {
            id,
            path,
            records: scan.records,
        });
    }

    let path = segment::path(dir, newest);
    let file = segment::open(&path)?;
    let tail = Tail {
        id: newest,
        path,
        file,
        len: tail_len,
        oldest,
    };
    Ok((recovered, tail))
}

/// Creates `dir` if needed, fsyncing its parent so the new directory itself survives a crash.
fn ensure_dir(dir: &Path) -> Result<(), WalError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(WalError::io(
            "open directory",
            dir,
            io::Error::new(io::ErrorKind::NotADirectory, "WAL path is not a directory"),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| WalError::io("create directory", dir, e))?;
            match dir.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => segment::sync_dir(parent),
                _ => Ok(()),
            }
        }
        Err(e) => Err(WalError::io("open directory", dir, e)),
    }
}

/// Cuts a segment back to `len` and fsyncs it, so the cut is durable before anything is
/// appended after it.
fn truncate(path: &Path, len: u64) -> Result<(), WalError> {
    let file = segment::open(path)?;
    file.set_len(len).map_err(|e| WalError::io("truncate", path, e))?;
    file.sync_all().map_err(|e| WalError::io("fsync", path, e))
}
