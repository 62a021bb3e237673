//! Reading a segment back: frame by frame, counting what damage cost, and
//! offering the records to the inner sink in bounded chunks.
//!
//! **Invariant:** a segment is never read whole. The scanner holds at most
//! one frame plus its 256 KiB read buffer; a delivery chunk holds at most
//! `chunk_records` records (one frame more at worst), and at most two
//! chunks are in memory: the one the inner sink is taking and the next,
//! read meanwhile.

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
                Item::Frame { header } => {
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

/// A chunk read on a blocking thread, with the reader to go on from.
type ChunkRead<Rd, R> =
    Result<(FrameReader<Rd>, std::io::Result<Option<Vec<R>>>), tokio::task::JoinError>;

/// Reads records for delivery, one chunk at a time, on a blocking thread;
/// while the inner sink takes one chunk, the next is read.
#[derive(Debug)]
pub(crate) struct SegmentChunks<F: Fs, R> {
    path: PathBuf,
    reader: Option<FrameReader<F::Reader>>,
    /// The read of the next chunk, started when the last one was handed out.
    ahead: Option<tokio::task::JoinHandle<ChunkRead<F::Reader, R>>>,
    chunk_records: usize,
    /// Shared with the delivery worker, which reads it after the inner sink
    /// has consumed the chunks.
    pub(crate) damage: Arc<Mutex<Damage>>,
    _records: PhantomData<fn() -> R>,
}

impl<F: Fs, R> SegmentChunks<F, R> {
    pub(crate) fn new(path: PathBuf, reader: FrameReader<F::Reader>, chunk_records: usize) -> Self {
        Self {
            path,
            reader: Some(reader),
            ahead: None,
            chunk_records: chunk_records.max(1),
            damage: Arc::new(Mutex::new(Damage::default())),
            _records: PhantomData,
        }
    }
}

impl<F: Fs, R> Drop for SegmentChunks<F, R> {
    /// A sink that stops taking chunks leaves no read behind it.
    fn drop(&mut self) {
        if let Some(ahead) = self.ahead.take() {
            ahead.abort();
        }
    }
}

impl<F, R> SegmentChunks<F, R>
where
    F: Fs,
    R: DeserializeOwned + Send + 'static,
{
    /// Reads the next chunk from `reader` on a blocking thread.
    fn read(
        &self,
        mut reader: FrameReader<F::Reader>,
    ) -> impl Future<Output = ChunkRead<F::Reader, R>> + use<F, R> {
        let max = self.chunk_records;
        meathook_core::blocking(move || {
            let chunk = read_chunk::<_, R>(&mut reader, max);
            (reader, chunk)
        })
    }
}

impl<F, R> RecordChunks<R> for SegmentChunks<F, R>
where
    F: Fs,
    R: DeserializeOwned + Send + 'static,
{
    type Error = ReadError;

    async fn next_chunk(&mut self) -> Result<Option<Vec<R>>, ReadError> {
        let joined = if let Some(ahead) = self.ahead.take() {
            ahead.await.unwrap_or_else(Err)
        } else if let Some(reader) = self.reader.take() {
            self.read(reader).await
        } else {
            return Ok(None);
        };
        let (reader, chunk) = joined.map_err(|e| ReadError::Interrupted {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let chunk = chunk.map_err(|source| ReadError::Io {
            path: self.path.clone(),
            source,
        })?;
        if let Ok(mut damage) = self.damage.lock() {
            *damage = reader.damage.clone();
        }
        if chunk.is_some() {
            self.ahead = Some(tokio::spawn(self.read(reader)));
        }
        Ok(chunk)
    }
}

fn read_chunk<Rd: Read, R: DeserializeOwned>(
    reader: &mut FrameReader<Rd>,
    max: usize,
) -> std::io::Result<Option<Vec<R>>> {
    let mut out = Vec::new();
    while out.len() < max {
        let Some((header, payload)) = reader.next_frame()? else {
            break;
        };
        decode_frame::<R>(&header, &payload, &mut reader.damage, |_, record| {
            if let Ok(record) = record {
                out.push(record);
            }
        });
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Decodes the records of one frame, in order, handing each to `each` with
/// its index in the segment: decoded, or why it does not decode. What the
/// frame loses (a payload that does not decompress, records that do not
/// decode, fewer records than its header counts) is counted in `damage`;
/// records beyond the count are never handed out, as they have no sequence
/// numbers.
pub(crate) fn decode_frame<R: DeserializeOwned>(
    header: &FrameHeader,
    payload: &[u8],
    damage: &mut Damage,
    mut each: impl FnMut(u64, Result<R, String>),
) {
    let raw = match codec::decompress(payload) {
        Ok(raw) => raw,
        Err(codec::PayloadError::Corrupt(why)) => {
            damage.lost += u64::from(header.count);
            damage.reasons.push(format!(
                "frame at record {} ({} records) does not decompress: {why}",
                header.index, header.count
            ));
            return;
        }
    };
    let mut records = codec::Records::new(&raw);
    let mut decoded = 0u64;
    let count = u64::from(header.count);
    loop {
        if decoded == count {
            // A frame that holds more records than its header counts
            // lies: only the counted ones have sequence numbers.
            if !matches!(records.next_bytes(), Ok(None)) {
                damage.reasons.push(format!(
                    "frame at record {} holds more than its {count} records; the rest were not delivered",
                    header.index
                ));
            }
            break;
        }
        match records.next_bytes() {
            Ok(Some(bytes)) => {
                let index = header.index + decoded;
                decoded += 1;
                let record = codec::decode::<R>(bytes);
                if let Err(why) = &record {
                    damage.lost += 1;
                    damage
                        .reasons
                        .push(format!("record {index} does not decode: {why}"));
                }
                each(index, record);
            }
            Ok(None) => {
                // Fewer records than the header counts: the missing
                // ones are lost, and counted.
                let rest = count - decoded;
                damage.lost += rest;
                damage.reasons.push(format!(
                    "frame at record {} holds {decoded} of its {count} records",
                    header.index
                ));
                break;
            }
            Err(codec::PayloadError::Corrupt(why)) => {
                let rest = count.saturating_sub(decoded);
                damage.lost += rest;
                damage
                    .reasons
                    .push(format!("frame at record {}: {why}", header.index));
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::FrameBuilder;
    use crate::segment::SegmentHeader;

    /// A segment holding one frame of the records `values` whose header
    /// claims `claimed` records.
    fn segment(values: &[u64], claimed: u32) -> Vec<u8> {
        let window = meathook_core::WindowMeta::instant("p", time::OffsetDateTime::UNIX_EPOCH);
        let mut out = SegmentHeader {
            id: 0,
            encoding: codec::ENCODING_MSGPACK_LZ4,
            window,
            created: time::OffsetDateTime::UNIX_EPOCH,
            incarnation: Some(1),
        }
        .encode();
        let mut builder = FrameBuilder::default();
        for v in values {
            builder.push(v, 1 << 20).unwrap();
        }
        let (payload, _) = builder.finish();
        out.extend_from_slice(&FrameHeader::encode(Kind::Records, 0, 0, claimed, &payload));
        out.extend_from_slice(&payload);
        out
    }

    fn read_all(bytes: &[u8]) -> (Vec<u64>, Damage) {
        let (_, mut reader) = FrameReader::open(bytes, u64::MAX).unwrap();
        let mut all = Vec::new();
        while let Some(chunk) = read_chunk::<_, u64>(&mut reader, 100).unwrap() {
            all.extend(chunk);
        }
        (all, reader.damage)
    }

    #[test]
    fn a_frame_that_miscounts_its_records_is_counted_as_damage() {
        // Claims three, holds two: the missing one is lost, and counted.
        let (got, damage) = read_all(&segment(&[7, 8], 3));
        assert_eq!(got, vec![7, 8]);
        assert_eq!(damage.lost, 1, "{damage:?}");
        // Claims one, holds two: only the counted one is delivered.
        let (got, damage) = read_all(&segment(&[7, 8], 1));
        assert_eq!(got, vec![7]);
        assert!(
            damage.reasons.iter().any(|r| r.contains("more than its 1")),
            "{damage:?}"
        );
        // An honest frame.
        let (got, damage) = read_all(&segment(&[7, 8], 2));
        assert_eq!(got, vec![7, 8]);
        assert_eq!(damage, Damage::default());
    }
}
