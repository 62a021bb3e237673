//! Segments: one file per window (or part of a window), header then frames.
//!
//! ```text
//! 00000000000000000007.open       being appended to (the window is open);
//!                                 may end with zeros written ahead of its
//!                                 frames (`writer`), which are not frames
//! 00000000000000000007.seg        sealed: ends with a seal frame, immutable
//! 00000000000000000007.abandoned  a write or sync failed: cut back to its last
//!                                 acknowledged frame, immutable, no seal frame
//!
//! offset size  field                 (little endian; DO NOT REORDER FIELDS)
//! 0      8     magic "MHSPOOL\n"
//! 8      2     format version u16    3 (1 and 2 are still read; 1 has no
//!                                    incarnation field)
//! 10     1     payload encoding u8   2 = field names once per lz4 frame
//!                                    (version 3), 1 = MessagePack maps in lz4
//!                                    frames (versions 1 and 2); see `codec`
//! 11     1     reserved, zero
//! 12     4     header_len u32        bytes of this header, checksum included
//! 16     8     window start i64      Unix seconds, UTC
//! 24     8     window end i64        Unix seconds, UTC (exclusive)
//! 32     8     created i64           Unix nanoseconds, when the file was made
//! 40     8     segment id u64        the number in the file name
//! 48     2     pipeline_len u16      at most 1024
//! 50     n     pipeline              UTF-8
//! 50+n   8     incarnation u64       the spool run that created the file (version 2 only)
//! 58+n   4     header_crc u32        CRC32C of every byte before it
//! ```
//!
//! The pipeline, window and incarnation are read from here on replay, never
//! from the directory or file name, so a spool directory can be moved or
//! renamed. The incarnation is drawn at random each time a spool opens; with
//! the sequence range of the frames it names the batch a segment delivers
//! ([`BatchId`]), unique even across spools that restart their sequence
//! numbers on a fresh volume.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use meathook_core::{BatchId, WindowMeta};

use crate::codec;
use time::OffsetDateTime;

/// First bytes of every segment.
pub(crate) const MAGIC: [u8; 8] = *b"MHSPOOL\n";
/// The format version this code writes: version 2's header, with payload
/// encoding 2, which builds that read only version 2 would misread (so they
/// refuse version 3 instead).
pub(crate) const VERSION: u16 = 3;
/// The format version before payload encoding 2, still read.
const VERSION_2: u16 = 2;
/// The first format version, still read: its headers have no incarnation.
const VERSION_1: u16 = 1;
/// The longest pipeline name a header holds.
pub(crate) const MAX_PIPELINE: usize = 1024;
const FIXED: usize = 50;

/// A decoded segment header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub(crate) id: u64,
    pub(crate) encoding: u8,
    pub(crate) window: WindowMeta,
    pub(crate) created: OffsetDateTime,
    /// The spool run that created the segment; `None` in version 1 files.
    pub(crate) incarnation: Option<u64>,
}

impl SegmentHeader {
    /// Encodes the header. The caller checked the pipeline length.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let pipeline = self.window.pipeline.as_bytes();
        let plen = pipeline.len().min(MAX_PIPELINE);
        let total = FIXED + plen + 8 + 4;
        let mut h = Vec::with_capacity(total);
        h.extend_from_slice(&MAGIC);
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.push(self.encoding);
        h.push(0);
        h.extend_from_slice(&u32::try_from(total).unwrap_or(0).to_le_bytes());
        h.extend_from_slice(&self.window.start.unix_timestamp().to_le_bytes());
        h.extend_from_slice(&self.window.end.unix_timestamp().to_le_bytes());
        let created = i64::try_from(self.created.unix_timestamp_nanos()).unwrap_or(i64::MAX);
        h.extend_from_slice(&created.to_le_bytes());
        h.extend_from_slice(&self.id.to_le_bytes());
        h.extend_from_slice(&u16::try_from(plen).unwrap_or(0).to_le_bytes());
        h.extend_from_slice(&pipeline[..plen]);
        h.extend_from_slice(&self.incarnation.unwrap_or(0).to_le_bytes());
        let crc = crc32c::crc32c(&h);
        h.extend_from_slice(&crc.to_le_bytes());
        h
    }

    /// Reads and checks a header from the start of a segment file.
    pub(crate) fn read(r: &mut impl Read) -> Result<(Self, u64), HeaderError> {
        let mut fixed = [0u8; FIXED];
        read_exact(r, &mut fixed)?;
        if fixed[0..8] != MAGIC {
            return Err(HeaderError::Invalid(
                "not a spool segment (bad magic)".into(),
            ));
        }
        let version = u16::from_le_bytes([fixed[8], fixed[9]]);
        let extra = match version {
            VERSION | VERSION_2 => 8,
            VERSION_1 => 0,
            _ => {
                return Err(HeaderError::Invalid(format!(
                    "format version {version}, this build reads versions {VERSION_1} and {VERSION}: use a matching meathook release"
                )));
            }
        };
        let i64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&fixed[i..i + 8]);
            i64::from_le_bytes(b)
        };
        let plen = usize::from(u16::from_le_bytes([fixed[48], fixed[49]]));
        if plen > MAX_PIPELINE {
            return Err(HeaderError::Invalid(format!(
                "pipeline name of {plen} bytes"
            )));
        }
        let body = plen + extra;
        let mut rest = vec![0u8; body + 4];
        read_exact(r, &mut rest)?;
        let mut all = fixed.to_vec();
        all.extend_from_slice(&rest[..body]);
        let crc = u32::from_le_bytes([rest[body], rest[body + 1], rest[body + 2], rest[body + 3]]);
        if crc != crc32c::crc32c(&all) {
            return Err(HeaderError::Invalid("header checksum mismatch".into()));
        }
        let incarnation = (extra == 8).then(|| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&rest[plen..body]);
            u64::from_le_bytes(b)
        });
        let pipeline = std::str::from_utf8(&rest[..plen])
            .map_err(|_| HeaderError::Invalid("pipeline name is not UTF-8".into()))?;
        let time_at = |secs: i64| {
            OffsetDateTime::from_unix_timestamp(secs)
                .map_err(|_| HeaderError::Invalid(format!("window time {secs} out of range")))
        };
        let window = WindowMeta {
            pipeline: Arc::from(pipeline),
            start: time_at(i64_at(16))?,
            end: time_at(i64_at(24))?,
            batch: None,
        };
        let created = OffsetDateTime::from_unix_timestamp_nanos(i128::from(i64_at(32)))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let encoding = fixed[10];
        if !codec::known(encoding) {
            return Err(HeaderError::Invalid(format!(
                "payload encoding {encoding}, which this build does not read: use a matching meathook release"
            )));
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&fixed[40..48]);
        let header = Self {
            id: u64::from_le_bytes(id),
            encoding,
            window,
            created,
            incarnation,
        };
        Ok((header, (FIXED + body + 4) as u64))
    }
}

/// Why a segment header could not be read.
#[derive(Debug)]
pub(crate) enum HeaderError {
    /// The file ends before the header does.
    Short,
    /// The header is damaged or from another format.
    Invalid(String),
    /// Reading failed.
    Io(io::Error),
}

fn read_exact(r: &mut impl Read, buf: &mut [u8]) -> Result<(), HeaderError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => HeaderError::Short,
        _ => HeaderError::Io(e),
    })
}

/// Whether a segment may still be appended to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum State {
    Open,
    Sealed,
    /// Given up on after a failed write or sync: never appended to again,
    /// delivered as it is (it has no seal frame).
    Abandoned,
}

impl State {
    fn extension(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Sealed => "seg",
            Self::Abandoned => "abandoned",
        }
    }
}

/// The file name of segment `id` in state `state`.
pub(crate) fn file_name(id: u64, state: State) -> String {
    format!("{id:020}.{}", state.extension())
}

/// The path of segment `id` in `dir`.
pub(crate) fn path(dir: &Path, id: u64, state: State) -> PathBuf {
    dir.join(file_name(id, state))
}

/// Parses a segment file name.
pub(crate) fn parse_name(name: &str) -> Option<(u64, State)> {
    let (stem, ext) = name.split_once('.')?;
    let state = match ext {
        "open" => State::Open,
        "seg" => State::Sealed,
        "abandoned" => State::Abandoned,
        _ => return None,
    };
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, state))
}

/// What the spool knows about a segment without reading it.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub(crate) id: u64,
    pub(crate) window: WindowMeta,
    pub(crate) created: OffsetDateTime,
    /// The spool run that created the segment, from its header.
    pub(crate) incarnation: Option<u64>,
    /// Sequence numbers of the first and last record, if any.
    pub(crate) seqs: Option<(u64, u64)>,
    /// Records in valid frames.
    pub(crate) records: u64,
    /// Bytes of the file.
    pub(crate) bytes: u64,
}

impl Segment {
    /// The window, identified by this segment's sequence range, as it is
    /// delivered. The same segment always gets the same identity.
    pub(crate) fn delivery_window(&self) -> WindowMeta {
        match self.seqs {
            Some((first, last)) => self.window.clone().with_batch(BatchId {
                incarnation: self.incarnation,
                first,
                last,
            }),
            None => self.window.clone(),
        }
    }

    /// Notes a frame of `count` records starting at `first_seq`.
    pub(crate) fn note_frame(&mut self, first_seq: u64, count: u32) {
        if count == 0 {
            return;
        }
        let last = first_seq.saturating_add(u64::from(count) - 1);
        self.seqs = Some(match self.seqs {
            Some((first, _)) => (first, last),
            None => (first_seq, last),
        });
        self.records += u64::from(count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn header(pipeline: &str) -> SegmentHeader {
        SegmentHeader {
            id: 7,
            encoding: codec::ENCODING_POSITIONAL_LZ4,
            window: WindowMeta::containing(
                pipeline,
                datetime!(2026-11-23 10:30 UTC),
                std::time::Duration::from_secs(3600),
            ),
            created: datetime!(2026-11-23 10:31:02.5 UTC),
            incarnation: Some(0x0123_4567_89ab_cdef),
        }
    }

    #[test]
    fn header_round_trips_and_names_parse() {
        let h = header("air_temperature");
        let bytes = h.encode();
        let (back, len) = SegmentHeader::read(&mut &bytes[..]).unwrap();
        assert_eq!(back, h);
        assert_eq!(len, bytes.len() as u64);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(SegmentHeader::read(&mut &bad[..]).is_err(), "byte {i}");
        }
        assert!(matches!(
            SegmentHeader::read(&mut &bytes[..20]),
            Err(HeaderError::Short)
        ));
        assert_eq!(
            parse_name(&file_name(7, State::Open)),
            Some((7, State::Open))
        );
        assert_eq!(
            parse_name("00000000000000000007.seg"),
            Some((7, State::Sealed))
        );
        assert_eq!(
            parse_name("00000000000000000007.abandoned"),
            Some((7, State::Abandoned))
        );
        assert_eq!(parse_name("7.seg"), None);
        assert_eq!(parse_name("notes.txt"), None);
    }

    /// `header` with its version and encoding bytes set and its checksum
    /// made to match.
    fn with(header: &[u8], version: u16, encoding: u8) -> Vec<u8> {
        let mut h = header.to_vec();
        h[8..10].copy_from_slice(&version.to_le_bytes());
        h[10] = encoding;
        let body = h.len() - 4;
        let crc = crc32c::crc32c(&h[..body]);
        h[body..].copy_from_slice(&crc.to_le_bytes());
        h
    }

    #[test]
    fn older_headers_are_read_and_newer_ones_refused() {
        let h = header("rainfall");
        let current = h.encode();
        // Version 1: the same fields without the incarnation.
        let plen = h.window.pipeline.len();
        let mut v1 = current[..FIXED + plen].to_vec();
        v1[8..10].copy_from_slice(&1u16.to_le_bytes());
        let total = u32::try_from(v1.len() + 4).unwrap();
        v1[12..16].copy_from_slice(&total.to_le_bytes());
        let crc = crc32c::crc32c(&v1);
        v1.extend_from_slice(&crc.to_le_bytes());
        let (back, len) = SegmentHeader::read(&mut &v1[..]).unwrap();
        assert_eq!(back.incarnation, None);
        assert_eq!(back.window, h.window);
        assert_eq!(len, v1.len() as u64);
        // Version 2, with the self-describing payload encoding.
        let v2 = with(&current, 2, codec::ENCODING_MSGPACK_LZ4);
        let (back, _) = SegmentHeader::read(&mut &v2[..]).unwrap();
        assert_eq!(back.incarnation, h.incarnation);
        assert_eq!(back.encoding, codec::ENCODING_MSGPACK_LZ4);
        let v4 = with(&current, 4, codec::ENCODING_POSITIONAL_LZ4);
        assert!(matches!(
            SegmentHeader::read(&mut &v4[..]),
            Err(HeaderError::Invalid(why)) if why.contains("version 4")
        ));
        let unknown = with(&current, VERSION, 9);
        assert!(matches!(
            SegmentHeader::read(&mut &unknown[..]),
            Err(HeaderError::Invalid(why)) if why.contains("encoding 9")
        ));
    }
}
