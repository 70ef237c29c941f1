//! gantry-wal: a segmented write-ahead log of checksummed records, group-committed by one
//! writer thread over io_uring (or pwrite + fdatasync), with torn-tail recovery.
//!
//! It knows nothing of what the records mean; the Raft log store encodes entries and votes
//! into them. See [`Wal`] for the operations and `format.rs` for the bytes on disk.
//!
//! ```no_run
//! use gantry_wal::{Wal, WalOptions};
//!
//! let (wal, recovered) = Wal::open(WalOptions::new("/var/lib/gantry/wal"))?;
//! for record in recovered.records() {
//!     // rebuild state from `record`
//! #   let _ = record;
//! }
//! wal.append_sync(vec![b"entry".to_vec()])?;
//! # Ok::<(), gantry_wal::WalError>(())
//! ```

mod error;
mod format;
mod io;
mod recovery;
mod segment;
mod uring;
mod wal;
mod writer;

pub use error::WalError;
pub use format::MAX_RECORD_LEN;
pub use io::{Backend, IoMode};
pub use recovery::{Recovered, RecoveredSegment, TornTail};
pub use wal::{Done, Wal, WalOptions};
pub use writer::WalStats;
