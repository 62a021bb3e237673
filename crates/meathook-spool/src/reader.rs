//! Reading a segment back: frame by frame, counting what damage cost, and
//! offering the records to the inner sink in bounded chunks.
//!
//! **Invariant:** a segment is never read whole. The scanner holds at most
//! one frame plus its read buffer; a delivery chunk holds at most
//! `chunk_records` records (one frame more at worst), first as frames, then
//! decoded. Frames are read on a blocking thread and decoded by the
//! delivery task, where the inner sink consumes (and frees) the records.

use std::io::{Read, Take};
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use meathook_core::RecordChunks;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::ReadError;
use crate::frame::{FrameHeader, Item, Kind, Scanner};
use crate::fs::Fs;
use crate::segment::{HeaderError, SegmentHeader};

/// What a full read of a segment found besides its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Damage {
    /// Records known lost (damaged frames, undecodable records).
    pub(crate) lost: u64,
    /// Why, for the quarantine reason file; empty if nothing was damaged.
    pub(crate) reasons: Vec<String>,
    /// Offset and length of bytes after the last valid frame.
    pub(crate) tail: Option<(u64, u64)>,
    /// Whether a seal frame was found.
    pub(crate) sealed: bool,
    /// The next sequence number a seal frame recorded.
    pub(crate) seal_next_seq: Option<u64>,
}

/// Frames of one segment, with loss accounting by segment index.
#[derive(Debug)]
pub(crate) struct FrameReader<Rd> {
    scanner: Scanner<Take<Rd>>,
    expected: u64,
    pub(crate) damage: Damage,
}

impl<Rd: Read> FrameReader<Rd> {
    /// Reads the header of a segment and positions at its first frame. At
    /// most `limit` bytes of the file are read.
    pub(crate) fn open(mut rd: Rd, limit: u64) -> Result<(SegmentHeader, Self), HeaderError> {
        let (header, len) = SegmentHeader::read(&mut rd)?;
        let reader = Self {
            scanner: Scanner::new(rd.take(limit.saturating_sub(len)), len),
            expected: 0,
            damage: Damage::default(),
        };
        Ok((header, reader))
    }

    /// Records counted so far (the index after the last valid frame).
    pub(crate) fn index(&self) -> u64 {
        self.expected
    }

    fn gap(&mut self, index: u64) {
        if index > self.expected {
            let lost = index - self.expected;
            self.damage.lost += lost;
            self.damage.reasons.push(format!(
                "{lost} records in damaged frames before record {index}"
            ));
        }
    }

    /// The next valid records frame, or `None` at the end.
    pub(crate) fn next_frame(&mut self) -> std::io::Result<Option<(FrameHeader, Vec<u8>)>> {
        let mut payload = Vec::new();
        Ok(self
            .next_frame_into(&mut payload)?
            .map(|header| (header, payload)))
    }

    /// The header of the next valid records frame, its payload appended to
    /// `into`; `None` at the end.
    pub(crate) fn next_frame_into(
        &mut self,
        into: &mut Vec<u8>,
    ) -> std::io::Result<Option<FrameHeader>> {
        while let Some(item) = self.scanner.next_item_into(into)? {
            match item {
                Item::Frame { header, .. } => {
                    self.gap(header.index);
                    self.expected = self.expected.max(header.end_index());
                    match header.kind {
                        Kind::Records => return Ok(Some(header)),
                        Kind::Seal => {
                            self.damage.sealed = true;
                            self.damage.seal_next_seq = Some(header.first_seq);
                        }
                    }
                }
                Item::Damaged { offset, len } => {
                    self.damage
                        .reasons
                        .push(format!("{len} damaged bytes at offset {offset}"));
                }
                Item::Tail {
                    offset,
                    len,
                    claimed,
                } => {
                    self.damage.tail = Some((offset, len));
                    if let Some(h) = claimed.filter(|h| h.kind == Kind::Records) {
                        self.damage.reasons.push(format!(
                            "{len} bytes at offset {offset} end inside a frame of {} records",
                            h.count
                        ));
                    } else {
                        self.damage.reasons.push(format!(
                            "{len} unreadable bytes at offset {offset} to the end"
                        ));
                    }
                }
            }
        }
        Ok(None)
    }
}

/// Reads records for delivery, one chunk at a time: the file on a blocking
/// thread, the decoding in the delivery task.
#[derive(Debug)]
pub(crate) struct SegmentChunks<F: Fs, R> {
    path: PathBuf,
    reader: Option<FrameReader<F::Reader>>,
    /// The payload encoding named in the segment header.
    encoding: u8,
    chunk_records: usize,
    /// Shared with the delivery worker, which reads it after the inner sink
    /// has consumed the chunks.
    pub(crate) damage: Arc<Mutex<Damage>>,
    _records: PhantomData<fn() -> R>,
}

impl<F: Fs, R> SegmentChunks<F, R> {
    pub(crate) fn new(
        path: PathBuf,
        reader: FrameReader<F::Reader>,
        encoding: u8,
        chunk_records: usize,
    ) -> Self {
        Self {
            path,
            reader: Some(reader),
            encoding,
            chunk_records: chunk_records.max(1),
            damage: Arc::new(Mutex::new(Damage::default())),
            _records: PhantomData,
        }
    }
}

/// The frames of one chunk: their headers, and their payloads back to back
/// in one buffer (one allocation per chunk, not per frame).
type Frames = (Vec<FrameHeader>, Vec<u8>);

/// Reads the next frames of a segment, holding at least `max` records
/// unless the segment ends first: the IO half of a chunk, run on a blocking
/// thread.
fn read_frames<Rd: Read>(reader: &mut FrameReader<Rd>, max: usize) -> std::io::Result<Frames> {
    let mut headers = Vec::new();
    let mut payloads = Vec::new();
    let mut records = 0usize;
    while records < max {
        let Some(header) = reader.next_frame_into(&mut payloads)? else {
            break;
        };
        records += header.count as usize;
        headers.push(header);
    }
    Ok((headers, payloads))
}

/// Decodes frames into records, counting what does not decode in `damage`:
/// the CPU half of a chunk, run where the records are consumed (allocator
/// caches are per thread: records freed by the thread that made them are
/// much cheaper).
fn decode_frames<R: DeserializeOwned>(
    (headers, payloads): Frames,
    encoding: u8,
    damage: &mut Damage,
) -> Vec<R> {
    let total: usize = headers.iter().map(|h| h.count as usize).sum();
    let mut out = Vec::with_capacity(total);
    let mut scratch = Vec::new();
    let mut rest = payloads.as_slice();
    for header in headers {
        let (payload, after) = rest.split_at((header.payload_len as usize).min(rest.len()));
        rest = after;
        let raw = match codec::raw_of(payload, encoding, &mut scratch) {
            Ok(raw) => raw,
            Err(codec::PayloadError::Corrupt(why)) => {
                damage.lost += u64::from(header.count);
                damage.reasons.push(format!(
                    "frame at record {} ({} records) does not decompress: {why}",
                    header.index, header.count
                ));
                continue;
            }
        };
        let mut records = match codec::Records::new(raw, encoding) {
            Ok(records) => records,
            Err(codec::PayloadError::Corrupt(why)) => {
                damage.lost += u64::from(header.count);
                damage.reasons.push(format!(
                    "frame at record {} ({} records): {why}",
                    header.index, header.count
                ));
                continue;
            }
        };
        let mut decoded = 0u64;
        loop {
            match records.next_bytes() {
                Ok(Some(bytes)) => {
                    decoded += 1;
                    match records.decode::<R>(bytes) {
                        Ok(r) => out.push(r),
                        Err(why) => {
                            damage.lost += 1;
                            damage.reasons.push(format!(
                                "record {} does not decode: {why}",
                                header.index + decoded - 1
                            ));
                        }
                    }
                }
                Ok(None) => break,
                Err(codec::PayloadError::Corrupt(why)) => {
                    let rest = u64::from(header.count).saturating_sub(decoded);
                    damage.lost += rest;
                    damage
                        .reasons
                        .push(format!("frame at record {}: {why}", header.index));
                    break;
                }
            }
        }
    }
    out
}

impl<F, R> RecordChunks<R> for SegmentChunks<F, R>
where
    F: Fs,
    R: DeserializeOwned + Send + 'static,
{
    type Error = ReadError;

    async fn next_chunk(&mut self) -> Result<Option<Vec<R>>, ReadError> {
        loop {
            let Some(mut reader) = self.reader.take() else {
                return Ok(None);
            };
            let max = self.chunk_records;
            let joined = tokio::task::spawn_blocking(move || {
                let frames = read_frames(&mut reader, max);
                (reader, frames)
            })
            .await;
            let (mut reader, frames) = joined.map_err(|e| ReadError::Interrupted {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
            let frames = frames.map_err(|source| ReadError::Io {
                path: self.path.clone(),
                source,
            })?;
            let end = frames.0.is_empty();
            let chunk = decode_frames::<R>(frames, self.encoding, &mut reader.damage);
            if let Ok(mut damage) = self.damage.lock() {
                *damage = reader.damage.clone();
            }
            if end {
                return Ok(None);
            }
            self.reader = Some(reader);
            if !chunk.is_empty() {
                return Ok(Some(chunk));
            }
            // Every record of these frames was damaged: read on.
        }
    }
}
