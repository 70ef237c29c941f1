//! Segment files in the log directory: their names, listing them, creating one atomically, and
//! the directory fsyncs that make creations and removals durable.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::format;
use crate::io::Engine;
use crate::WalError;

const SUFFIX: &str = ".wal";
/// A segment being created. It becomes `{id:016x}.wal` by rename only once its header and
/// first records are durable, so a crash mid-rotation never leaves a half-made segment that
/// recovery would have to guess about; leftovers are deleted on open.
const TMP_SUFFIX: &str = ".wal.tmp";

pub(crate) fn path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}{SUFFIX}"))
}

fn tmp_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}{TMP_SUFFIX}"))
}

/// The segment ids in `dir`, ascending. Deletes leftover temporary segments (and fsyncs the
/// directory if it did). Files with other names are left alone.
pub(crate) fn list(dir: &Path) -> Result<Vec<u64>, WalError> {
    let entries = fs::read_dir(dir).map_err(|e| WalError::io("read directory", dir, e))?;
    let mut ids = Vec::new();
    let mut removed_tmp = false;
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io("read directory", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(TMP_SUFFIX) {
            if parse_id(stem).is_some() {
                tracing::info!(
                    path = %entry.path().display(),
                    "removing a segment whose creation was interrupted"
                );
                fs::remove_file(entry.path()).map_err(|e| WalError::io("remove", entry.path(), e))?;
                removed_tmp = true;
            }
        } else if let Some(id) = name.strip_suffix(SUFFIX).and_then(parse_id) {
            ids.push(id);
        }
    }
    if removed_tmp {
        sync_dir(dir)?;
    }
    ids.sort_unstable();
    Ok(ids)
}

fn parse_id(stem: &str) -> Option<u64> {
    if stem.len() != 16 || !stem.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(stem, 16).ok().filter(|id| *id > 0)
}

/// Creates segment `id` holding its header and `records`, durably: written and synced under a
/// temporary name, renamed into place, directory fsynced. Returns the open file (positioned
/// writes only) and its length.
pub(crate) fn create(dir: &Path, id: u64, records: &[Vec<u8>], engine: &mut Engine) -> Result<(File, u64), WalError> {
    let tmp = tmp_path(dir, id);
    let final_path = path(dir, id);
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| WalError::io("create", &tmp, e))?;
    let mut buf = format::encode_header(id).to_vec();
    for record in records {
        format::encode_record(&mut buf, record);
    }
    let len = buf.len() as u64;
    engine
        .write_and_sync(&file, 0, &mut buf)
        .map_err(|failure| WalError::io(failure.stage.op(), &tmp, failure.error))?;
    fs::rename(&tmp, &final_path).map_err(|e| WalError::io("rename", &final_path, e))?;
    sync_dir(dir)?;
    Ok((file, len))
}

/// Opens an existing segment for positioned writes.
pub(crate) fn open(path: &Path) -> Result<File, WalError> {
    File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| WalError::io("open", path, e))
}

/// fsyncs a directory so the names created or removed in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io("fsync directory", dir, e))
}

/// Removes a segment file; one already gone counts as removed.
pub(crate) fn remove(path: &Path) -> Result<(), WalError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(WalError::io("remove", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sixteen_hex_digits_and_parse_back() {
        let dir = Path::new("/wal");
        assert_eq!(path(dir, 0x2a), PathBuf::from("/wal/000000000000002a.wal"));
        assert_eq!(parse_id("000000000000002a"), Some(0x2a));
        assert_eq!(parse_id("2a"), None);
        assert_eq!(parse_id("0000000000000000"), None);
        assert_eq!(parse_id("000000000000002g"), None);
    }

    #[test]
    fn listing_sorts_ids_ignores_strangers_and_drops_interrupted_creations() {
        let dir = tempfile::tempdir().expect("create a temp dir");
        for name in [
            "0000000000000003.wal",
            "0000000000000002.wal",
            "0000000000000004.wal.tmp",
            "notes.txt",
            "12.wal",
        ] {
            fs::write(dir.path().join(name), b"x").expect("write test file");
        }
        assert_eq!(list(dir.path()).expect("list"), vec![2, 3]);
        assert!(!dir.path().join("0000000000000004.wal.tmp").exists());
        assert!(dir.path().join("notes.txt").exists());
    }
}
