//! Reading a segment back: frame by frame, counting what damage cost, and
//! offering the records to the inner sink in bounded chunks.
//!
//! **Invariant:** a segment is never read whole. The scanner holds at most
//! one frame plus its 256 KiB read buffer; a delivery chunk holds at most
//! `chunk_records` records (one frame more at worst), and at most three
//! chunks are in memory: the one the inner sink is taking and the next two,
//! decoding meanwhile.

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
    /// Offset and length of the zeros written ahead of the frames, after
    /// the last one: not damage.
    pub(crate) zeros: Option<(u64, u64)>,
    /// Whether a seal frame was found.
    pub(crate) sealed: bool,
    /// The next sequence number a seal frame recorded.
    pub(crate) seal_next_seq: Option<u64>,
}

/// Frames of one segment, with loss accounting by segment index.
#[derive(Debug)]
pub(crate) struct FrameReader<Rd> {
    scanner: Scanner<Take<Rd>>,
    /// The segment's payload encoding.
    pub(crate) encoding: u8,
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
            encoding: header.encoding,
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
                Item::Zeros { offset, len } if len <= crate::writer::MAX_AHEAD => {
                    self.damage.zeros = Some((offset, len));
                }
                Item::Zeros { offset, len } => {
                    // More than a spool writes ahead: not its own.
                    self.damage.tail = Some((offset, len));
                    self.damage.reasons.push(format!(
                        "{len} bytes of zeros at offset {offset} to the end"
                    ));
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

/// A chunk read and decoded on a blocking thread.
type Decoded<R> = Result<std::io::Result<(Option<Vec<R>>, Damage)>, tokio::task::JoinError>;

/// What a read hands back once it has the raw frames of its chunk: what the
/// scan of frames found so far, and the reader to go on with (`None` past
/// the last frame).
type Handback<Rd> = (Damage, Option<FrameReader<Rd>>);

/// One chunk in flight: its raw frames are read first, then the reader goes
/// back (so the next chunk's read can start) while this one decodes.
#[derive(Debug)]
struct InFlight<Rd, R> {
    reader: tokio::sync::oneshot::Receiver<Handback<Rd>>,
    decoded: tokio::task::JoinHandle<Decoded<R>>,
}

/// Reads records for delivery, one chunk at a time, on blocking threads.
/// Decoding takes most of a replay's time, so two chunks decode at once: a
/// read hands the reader on as soon as it has its raw frames, and the next
/// chunk's read starts then, while the inner sink may still be taking the
/// one before.
#[derive(Debug)]
pub(crate) struct SegmentChunks<F: Fs, R> {
    path: PathBuf,
    reader: Option<FrameReader<F::Reader>>,
    /// The read of the next chunk, started when the last one was handed out.
    ahead: Option<InFlight<F::Reader, R>>,
    chunk_records: usize,
    /// What the scan of frames found, as of the last chunk handed out.
    scanned: Damage,
    /// What decoding the chunks handed out so far lost.
    undecoded: Damage,
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
            scanned: Damage::default(),
            undecoded: Damage::default(),
            damage: Arc::new(Mutex::new(Damage::default())),
            _records: PhantomData,
        }
    }
}

impl<F: Fs, R> Drop for SegmentChunks<F, R> {
    /// A sink that stops taking chunks leaves no read behind it.
    fn drop(&mut self) {
        if let Some(ahead) = self.ahead.take() {
            ahead.decoded.abort();
        }
    }
}

impl<F, R> SegmentChunks<F, R>
where
    F: Fs,
    R: DeserializeOwned + Send + 'static,
{
    /// Starts reading the next chunk from `reader`, on a blocking thread.
    fn start(&self, mut reader: FrameReader<F::Reader>) -> InFlight<F::Reader, R> {
        let max = self.chunk_records;
        let (handback, back) = tokio::sync::oneshot::channel();
        let decoded = tokio::spawn(meathook_core::blocking(move || {
            let frames = read_frames(&mut reader, max)?;
            let scanned = reader.damage.clone();
            let encoding = reader.encoding;
            // Nothing waits for the reader once this chunk has gone.
            let _ = handback.send((scanned, (!frames.is_empty()).then_some(reader)));
            let mut undecoded = Damage::default();
            let mut out = Vec::with_capacity(frames.iter().map(|(h, _)| h.count as usize).sum());
            for (header, payload) in &frames {
                decode_frame::<R>(encoding, header, payload, &mut undecoded, |_, record| {
                    if let Ok(record) = record {
                        out.push(record);
                    }
                });
            }
            Ok(((!out.is_empty()).then_some(out), undecoded))
        }));
        InFlight {
            reader: back,
            decoded,
        }
    }
}

impl<F, R> RecordChunks<R> for SegmentChunks<F, R>
where
    F: Fs,
    R: DeserializeOwned + Send + 'static,
{
    type Error = ReadError;

    async fn next_chunk(&mut self) -> Result<Option<Vec<R>>, ReadError> {
        loop {
            let read = match (self.ahead.take(), self.reader.take()) {
                (Some(read), _) => read,
                (None, Some(reader)) => self.start(reader),
                (None, None) => return Ok(None),
            };
            // The next chunk's read starts as soon as this one has its raw
            // frames, and decodes beside it. A read that failed or found no
            // frames hands nothing back: the segment ends there.
            if let Ok((scanned, reader)) = read.reader.await {
                self.scanned = scanned;
                self.ahead = reader.map(|reader| self.start(reader));
            }
            let decoded = read.decoded.await.unwrap_or_else(Err);
            let (chunk, undecoded) = decoded
                .map_err(|e| ReadError::Interrupted {
                    path: self.path.clone(),
                    reason: e.to_string(),
                })?
                .map_err(|source| ReadError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            self.undecoded.lost += undecoded.lost;
            self.undecoded.reasons.extend(undecoded.reasons);
            if let Ok(mut damage) = self.damage.lock() {
                let mut all = self.scanned.clone();
                all.lost += self.undecoded.lost;
                all.reasons.extend(self.undecoded.reasons.iter().cloned());
                *damage = all;
            }
            match chunk {
                Some(chunk) => return Ok(Some(chunk)),
                // Frames whose records all failed to decode: go on to the
                // next chunk, if there is one.
                None if self.ahead.is_some() => {}
                None => return Ok(None),
            }
        }
    }
}

/// The raw frames of the next chunk: whole frames until they hold at least
/// `max` records, or the segment ends.
fn read_frames<Rd: Read>(
    reader: &mut FrameReader<Rd>,
    max: usize,
) -> std::io::Result<Vec<(FrameHeader, Vec<u8>)>> {
    let mut frames = Vec::new();
    let mut records = 0;
    while records < max {
        let Some((header, payload)) = reader.next_frame()? else {
            break;
        };
        records += header.count as usize;
        frames.push((header, payload));
    }
    Ok(frames)
}

#[cfg(test)]
fn read_chunk<Rd: Read, R: DeserializeOwned>(
    reader: &mut FrameReader<Rd>,
    max: usize,
) -> std::io::Result<Option<Vec<R>>> {
    let mut out = Vec::new();
    for (header, payload) in read_frames(reader, max)? {
        decode_frame::<R>(
            reader.encoding,
            &header,
            &payload,
            &mut reader.damage,
            |_, record| {
                if let Ok(record) = record {
                    out.push(record);
                }
            },
        );
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
    encoding: u8,
    header: &FrameHeader,
    payload: &[u8],
    damage: &mut Damage,
    mut each: impl FnMut(u64, Result<R, String>),
) {
    let raw = codec::decompress(payload);
    let parsed = match &raw {
        Ok(raw) => codec::Records::new(encoding, raw),
        Err(codec::PayloadError::Corrupt(why)) => Err(codec::PayloadError::Corrupt(format!(
            "does not decompress: {why}"
        ))),
    };
    let (mut records, decoder) = match parsed {
        Ok((names, records)) => (records, codec::Decoder::new::<R>(names)),
        Err(codec::PayloadError::Corrupt(why)) => {
            damage.lost += u64::from(header.count);
            damage.reasons.push(format!(
                "frame at record {} ({} records) {why}",
                header.index, header.count
            ));
            return;
        }
    };
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
                let record = decoder.decode::<R>(bytes);
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
            encoding: codec::ENCODING_POSITIONAL_LZ4,
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

    /// Appends a frame of `records` starting at segment index `index`.
    fn frame<T: serde::Serialize>(out: &mut Vec<u8>, index: u64, records: &[T]) {
        let mut builder = FrameBuilder::default();
        for r in records {
            builder.push(r, 1 << 20).unwrap();
        }
        let (payload, count) = builder.finish();
        out.extend_from_slice(&FrameHeader::encode(
            Kind::Records,
            index,
            index,
            count,
            &payload,
        ));
        out.extend_from_slice(&payload);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chunks_decode_ahead_in_order_past_a_chunk_that_does_not_decode() {
        // Frames of 3 records, chunks of 3: the second chunk's records are
        // strings, which do not decode as numbers.
        let mut bytes = segment(&[0, 1, 2], 3);
        frame(&mut bytes, 3, &["x", "y", "z"]);
        for first in (6..30).step_by(3) {
            frame(&mut bytes, first, &[first, first + 1, first + 2]);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        std::fs::write(&path, &bytes).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let (_, reader) = FrameReader::open(file, u64::MAX).unwrap();
        let mut chunks = SegmentChunks::<crate::fs::StdFs, u64>::new(path, reader, 3);
        let mut got = Vec::new();
        while let Some(chunk) = chunks.next_chunk().await.unwrap() {
            assert!(chunk.len() <= 3, "{chunk:?}");
            got.extend(chunk);
        }
        let want: Vec<u64> = (0..3).chain(6..30).collect();
        assert_eq!(got, want);
        let damage = chunks.damage.lock().unwrap().clone();
        assert_eq!(damage.lost, 3, "{damage:?}");
        assert_eq!(damage.reasons.len(), 3, "{damage:?}");
    }

    #[test]
    fn a_frame_whose_field_names_are_damaged_loses_its_records_and_says_why() {
        // Claims five field names and holds none.
        let raw = [5_u8, 0];
        let mut payload = u32::try_from(raw.len()).unwrap().to_le_bytes().to_vec();
        payload.extend_from_slice(&lz4_flex::block::compress(&raw));
        let header =
            FrameHeader::decode(&FrameHeader::encode(Kind::Records, 0, 0, 4, &payload)).unwrap();
        let mut damage = Damage::default();
        let mut got = Vec::new();
        decode_frame::<u64>(
            codec::ENCODING_POSITIONAL_LZ4,
            &header,
            &payload,
            &mut damage,
            |i, r| got.push((i, r)),
        );
        assert!(got.is_empty(), "{got:?}");
        assert_eq!(damage.lost, 4);
        assert!(
            damage.reasons[0].contains("field names cut short"),
            "{damage:?}"
        );
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
