//! The on-disk byte format of a segment: its 16-byte header and the framed records after it.
//!
//! ```text
//! segment := header record* [zero fill]
//! header  := b"GWAL" | version: u32 LE (= 1) | segment id: u64 LE
//! record  := payload_len: u32 LE (> 0) | crc32(payload): u32 LE | payload
//! ```
//! A zero length or the end of the file ends the segment.

/// Bytes in a segment header.
pub(crate) const HEADER_LEN: usize = 16;
/// Bytes of framing in front of every record payload.
pub(crate) const RECORD_HEADER_LEN: usize = 8;
/// The largest payload the u32 length field can describe.
pub const MAX_RECORD_LEN: usize = u32::MAX as usize;

const MAGIC: &[u8; 4] = b"GWAL";
const VERSION: u32 = 1;

pub(crate) fn encode_header(id: u64) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[0..4].copy_from_slice(MAGIC);
    header[4..8].copy_from_slice(&VERSION.to_le_bytes());
    header[8..16].copy_from_slice(&id.to_le_bytes());
    header
}

/// Checks a segment's header against the id its file name promises; the error is the reason.
pub(crate) fn check_header(data: &[u8], expected_id: u64) -> Result<(), String> {
    let Some(header) = data.get(..HEADER_LEN) else {
        return Err(format!(
            "file is {} bytes, shorter than the {HEADER_LEN}-byte segment header",
            data.len()
        ));
    };
    if &header[0..4] != MAGIC {
        return Err(format!(
            "bad magic {:02x?} (expected {:02x?} \"GWAL\")",
            &header[0..4],
            MAGIC
        ));
    }
    let version = u32::from_le_bytes(header[4..8].try_into().expect("slice of 4 bytes"));
    if version != VERSION {
        return Err(format!(
            "format version {version}, but this build reads only version {VERSION}"
        ));
    }
    let id = u64::from_le_bytes(header[8..16].try_into().expect("slice of 8 bytes"));
    if id != expected_id {
        return Err(format!(
            "header says segment id {id}, but the file name says {expected_id}"
        ));
    }
    Ok(())
}

/// Why a record is unfit to be framed, if it is.
pub(crate) fn invalid_record_reason(payload: &[u8]) -> Option<String> {
    if payload.is_empty() {
        Some("payload is empty (a zero length marks the end of a segment)".to_owned())
    } else if payload.len() > MAX_RECORD_LEN {
        Some(format!(
            "payload is {} bytes, over the {MAX_RECORD_LEN}-byte limit of the format",
            payload.len()
        ))
    } else {
        None
    }
}

/// Bytes a record takes in a segment, framing included.
pub(crate) fn framed_len(payload: &[u8]) -> u64 {
    (RECORD_HEADER_LEN + payload.len()) as u64
}

/// Appends one framed record to `out`. The payload must have passed `invalid_record_reason`.
pub(crate) fn encode_record(out: &mut Vec<u8>, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("record length checked at queue time");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// What reading a segment's records found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Scan {
    pub(crate) records: Vec<Vec<u8>>,
    /// Offset just past the last whole, valid record.
    pub(crate) valid_len: u64,
    /// Set when bytes follow `valid_len`.
    pub(crate) stop: Option<Stop>,
}

/// Why reading stopped before the end of the file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// A zero length followed by nothing but zeros: the segment's end, as the format allows.
    ZeroFill,
    /// A record that is partial or fails its checksum (a torn write, or damage).
    BadRecord { reason: String },
}

/// Reads the records of a whole segment file (`data` includes the header, already checked).
pub(crate) fn scan_records(data: &[u8]) -> Scan {
    let mut records = Vec::new();
    let mut pos = HEADER_LEN.min(data.len());
    let stop = loop {
        let rest = &data[pos..];
        if rest.is_empty() {
            break None;
        }
        let Some(frame) = rest.get(..RECORD_HEADER_LEN) else {
            break Some(Stop::BadRecord {
                reason: format!("partial record header: {} of {RECORD_HEADER_LEN} bytes", rest.len()),
            });
        };
        let len = u32::from_le_bytes(frame[0..4].try_into().expect("slice of 4 bytes")) as usize;
        let stored_crc = u32::from_le_bytes(frame[4..8].try_into().expect("slice of 4 bytes"));
        if len == 0 {
            break Some(match rest.iter().filter(|b| **b != 0).count() {
                0 => Stop::ZeroFill,
                nonzero => Stop::BadRecord {
                    reason: format!(
                        "zero record length followed by {nonzero} non-zero bytes \
                         (records after it would be lost)"
                    ),
                },
            });
        }
        let available = rest.len() - RECORD_HEADER_LEN;
        let Some(payload) = rest.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len) else {
            break Some(Stop::BadRecord {
                reason: format!("record length {len} runs past the end of the file ({available} bytes left)"),
            });
        };
        let crc = crc32fast::hash(payload);
        if crc != stored_crc {
            break Some(Stop::BadRecord {
                reason: format!(
                    "checksum mismatch in a {len}-byte record (stored {stored_crc:08x}, \
                     computed {crc:08x})"
                ),
            });
        }
        records.push(payload.to_vec());
        pos += RECORD_HEADER_LEN + len;
    };
    Scan {
        records,
        valid_len: pos as u64,
        stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(id: u64, payloads: &[&[u8]]) -> Vec<u8> {
        let mut data = encode_header(id).to_vec();
        for payload in payloads {
            encode_record(&mut data, payload);
        }
        data
    }

    #[test]
    fn records_read_back_as_written() {
        let data = segment(7, &[b"one", b"two two", &[0xff; 300]]);
        assert_eq!(check_header(&data, 7), Ok(()));
        let scan = scan_records(&data);
        assert_eq!(
            scan.records,
            vec![b"one".to_vec(), b"two two".to_vec(), vec![0xff; 300]]
        );
        assert_eq!(scan.valid_len, data.len() as u64);
        assert_eq!(scan.stop, None);
    }

    #[test]
    fn header_with_wrong_magic_version_or_id_is_rejected() {
        let good = segment(3, &[]);
        assert!(check_header(&good, 4).unwrap_err().contains("segment id 3"));
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        assert!(check_header(&bad_magic, 3).unwrap_err().contains("magic"));
        let mut bad_version = good.clone();
        bad_version[4] = 9;
        assert!(check_header(&bad_version, 3).unwrap_err().contains("version 9"));
        assert!(check_header(&good[..10], 3).unwrap_err().contains("shorter"));
    }

    #[test]
    fn partial_record_stops_at_the_last_whole_record() {
        let data = segment(1, &[b"whole", b"partial"]);
        let whole_end = (HEADER_LEN + RECORD_HEADER_LEN + 5) as u64;
        for cut in [data.len() - 1, whole_end as usize + 3] {
            let scan = scan_records(&data[..cut]);
            assert_eq!(scan.records, vec![b"whole".to_vec()]);
            assert_eq!(scan.valid_len, whole_end);
            assert!(matches!(scan.stop, Some(Stop::BadRecord { .. })), "{scan:?}");
        }
    }

    #[test]
    fn flipped_payload_bit_fails_the_checksum() {
        let mut data = segment(1, &[b"first", b"second"]);
        let last = data.len() - 1;
        data[last] ^= 0x01;
        let scan = scan_records(&data);
        assert_eq!(scan.records, vec![b"first".to_vec()]);
        match scan.stop {
            Some(Stop::BadRecord { reason }) => assert!(reason.contains("checksum"), "{reason}"),
            other => panic!("expected a checksum failure, got {other:?}"),
        }
    }

    #[test]
    fn zero_fill_ends_the_segment_but_zero_length_before_data_does_not() {
        let mut data = segment(1, &[b"kept"]);
        data.extend_from_slice(&[0u8; 64]);
        let scan = scan_records(&data);
        assert_eq!(scan.records, vec![b"kept".to_vec()]);
        assert_eq!(scan.stop, Some(Stop::ZeroFill));

        data.extend_from_slice(b"junk");
        assert!(matches!(scan_records(&data).stop, Some(Stop::BadRecord { .. })));
    }

    #[test]
    fn empty_records_are_unfit_to_frame() {
        assert!(invalid_record_reason(b"").is_some());
        assert!(invalid_record_reason(b"x").is_none());
        assert_eq!(framed_len(b"abc"), 11);
    }
}
