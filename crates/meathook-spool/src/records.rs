//! One segment's records read back for inspection, frame by frame, for
//! `meathook-spool inspect --records`. Read-only like [`inspect`](crate::inspect):
//! the file is opened through the [`Fs`] (so [`StdFs`](crate::StdFs) never
//! follows a symlink or opens anything but a regular file), one frame is in
//! memory at a time, and damage is counted exactly as delivery counts it
//! (the frames are decoded by the same code).
//!
//! Records are decoded as any `R: Deserialize`. The payload encoding is
//! self-describing (MessagePack, with field names once per frame, see
//! `codec.rs`), so a caller that does not know the record type can decode
//! each record into a self-describing value, a struct as a map of its
//! fields; the command-line tool decodes into JSON.

use std::io::{self, Read};
use std::path::Path;

use meathook_core::WindowMeta;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::fs::Fs;
use crate::reader::{FrameReader, decode_frame};
use crate::segment::{HeaderError, SegmentHeader};

/// The records of one frame, as read back.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FrameRecords<R> {
    /// The sequence number of the frame's first record; the record at
    /// position `i` of [`records`](Self::records) has `first_seq + i`.
    pub first_seq: u64,
    /// Records before this frame in its segment.
    pub index: u64,
    /// Records the frame's header counts.
    pub count: u32,
    /// The frame's records in order, each decoded or the reason it does not
    /// decode. Fewer than `count` (none at all when the payload does not
    /// decompress) when the frame is damaged; the missing ones are counted
    /// in [`SegmentRecords::lost`].
    pub records: Vec<Result<R, String>>,
}

/// A segment file opened for reading its records back: its header, then its
/// frames one at a time ([`next_frame`](Self::next_frame)).
#[derive(Debug)]
pub struct SegmentRecords<Rd> {
    header: SegmentHeader,
    reader: FrameReader<Rd>,
}

impl<Rd: Read> SegmentRecords<Rd> {
    /// Opens the segment file at `path` through `fs` and reads its header.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened or read, or its header is not a
    /// segment header this build reads (`InvalidData`, saying why).
    pub fn open<F: Fs<Reader = Rd>>(fs: &F, path: &Path) -> io::Result<Self> {
        let file = fs.open_read(path)?;
        let (header, reader) = FrameReader::open(file, u64::MAX).map_err(|e| match e {
            HeaderError::Io(e) => e,
            HeaderError::Short => io::Error::new(
                io::ErrorKind::InvalidData,
                "not a spool segment: the file ends inside the segment header",
            ),
            HeaderError::Invalid(why) => io::Error::new(io::ErrorKind::InvalidData, why),
        })?;
        Ok(Self { header, reader })
    }

    /// The pipeline and window from the segment's header.
    pub fn window(&self) -> &WindowMeta {
        &self.header.window
    }

    /// When the segment was created.
    pub fn created(&self) -> OffsetDateTime {
        self.header.created
    }

    /// The spool run that created the segment; `None` in segments of
    /// format version 1, which recorded none.
    pub fn incarnation(&self) -> Option<u64> {
        self.header.incarnation
    }

    /// The segment's number (the one in its file name).
    pub fn id(&self) -> u64 {
        self.header.id
    }

    /// The next frame of records, each decoded as `R`; `None` after the
    /// last. Damaged bytes between frames are skipped and counted.
    ///
    /// # Errors
    ///
    /// When reading the file fails.
    pub fn next_frame<R: DeserializeOwned>(&mut self) -> io::Result<Option<FrameRecords<R>>> {
        let Some((header, payload)) = self.reader.next_frame()? else {
            return Ok(None);
        };
        let mut records = Vec::new();
        decode_frame::<R>(
            self.reader.encoding,
            &header,
            &payload,
            &mut self.reader.damage,
            |_, r| {
                records.push(r);
            },
        );
        Ok(Some(FrameRecords {
            first_seq: header.first_seq,
            index: header.index,
            count: header.count,
            records,
        }))
    }

    /// Records known lost to damage so far: in damaged frames, or not
    /// decoding as the type asked for. Complete once
    /// [`next_frame`](Self::next_frame) returned `None`.
    pub fn lost(&self) -> u64 {
        self.reader.damage.lost
    }

    /// What was found wrong so far, one line each; empty if nothing. A torn
    /// tail (bytes after the last complete frame) is listed too: normal at
    /// the end of a segment that was open when its process stopped.
    pub fn problems(&self) -> &[String] {
        &self.reader.damage.reasons
    }

    /// Whether a seal frame was read: the segment was sealed whole.
    pub fn sealed(&self) -> bool {
        self.reader.damage.sealed
    }
}
