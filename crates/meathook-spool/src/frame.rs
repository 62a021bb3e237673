//! Frames: the unit of append, checksum and sequence numbering.
//!
//! ```text
//! offset size  field              (little endian; DO NOT REORDER FIELDS —
//! 0      4     magic  F5 4D 48 46  changing this layout needs a new format
//! 4      4     payload_len u32      version in the segment header)
//! 8      8     first_seq   u64     sequence number of the frame's first record
//! 16     8     index       u64     records before this frame in its segment
//! 24     4     count       u32     records in the frame
//! 28     1     kind        u8      1 = records, 2 = seal (count 0, no payload)
//! 29     3     reserved, zero
//! 32     4     header_crc  u32     CRC32C of bytes 0..32
//! 36     4     payload_crc u32     CRC32C of the payload
//! 40     n     payload             see `codec`
//! ```
//!
//! Sequence numbers are global to the spool and increase by one per record;
//! `index` counts records within the segment, so the records lost to damage
//! are exactly the gap between the index the scanner expected and the index
//! of the next valid frame (or of the seal frame, which sealed segments end
//! with).
//!
//! The header has its own checksum so a damaged payload still tells how many
//! records it held, and a damaged header is never trusted for a length. A
//! length is bounded by [`MAX_PAYLOAD`] before anything is read, and payloads
//! are read incrementally, so a length of `u32::MAX` in a short file
//! allocates no more than the file holds. After damage the scanner resyncs by
//! searching for the next magic whose header checksum holds.

use std::io::{self, Read};

/// Marks the start of every frame.
pub(crate) const MAGIC: [u8; 4] = [0xF5, 0x4D, 0x48, 0x46];
/// Bytes of a frame header.
pub(crate) const HEADER_LEN: usize = 40;
/// The largest payload a frame may carry; anything longer is damage.
pub(crate) const MAX_PAYLOAD: u32 = 16 << 20;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Encoded records.
    Records = 1,
    /// Written when a segment is sealed: `first_seq` is the next sequence
    /// number, so a damaged last frame can still be counted.
    Seal = 2,
}

/// A frame header, decoded and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub(crate) payload_len: u32,
    pub(crate) first_seq: u64,
    pub(crate) index: u64,
    pub(crate) count: u32,
    pub(crate) kind: Kind,
    pub(crate) payload_crc: u32,
}

impl FrameHeader {
    /// Encodes the header of a frame carrying `payload`.
    pub(crate) fn encode(
        kind: Kind,
        first_seq: u64,
        index: u64,
        count: u32,
        payload: &[u8],
    ) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC);
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        h[4..8].copy_from_slice(&len.to_le_bytes());
        h[8..16].copy_from_slice(&first_seq.to_le_bytes());
        h[16..24].copy_from_slice(&index.to_le_bytes());
        h[24..28].copy_from_slice(&count.to_le_bytes());
        h[28] = kind as u8;
        let crc = crc32c::crc32c(&h[0..32]);
        h[32..36].copy_from_slice(&crc.to_le_bytes());
        h[36..40].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
        h
    }

    /// Decodes a header, or `None` if its magic, checksum, kind or length is
    /// wrong.
    pub(crate) fn decode(h: &[u8]) -> Option<Self> {
        let h: &[u8; HEADER_LEN] = h.get(..HEADER_LEN)?.try_into().ok()?;
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[i..i + 8]);
            u64::from_le_bytes(b)
        };
        if h[0..4] != MAGIC || u32_at(32) != crc32c::crc32c(&h[0..32]) {
            return None;
        }
        let kind = match h[28] {
            1 => Kind::Records,
            2 => Kind::Seal,
            _ => return None,
        };
        let payload_len = u32_at(4);
        if payload_len > MAX_PAYLOAD || h[29..32] != [0, 0, 0] {
            return None;
        }
        Some(Self {
            payload_len,
            first_seq: u64_at(8),
            index: u64_at(16),
            count: u32_at(24),
            kind,
            payload_crc: u32_at(36),
        })
    }

    /// The sequence number after this frame's records.
    pub(crate) fn end_seq(&self) -> u64 {
        self.first_seq.saturating_add(u64::from(self.count))
    }

    /// The segment index after this frame's records.
    pub(crate) fn end_index(&self) -> u64 {
        self.index.saturating_add(u64::from(self.count))
    }
}

/// One step of a scan.
#[derive(Debug)]
pub(crate) enum Item {
    /// A frame whose header and payload checksums hold (its payload went
    /// to the caller's buffer).
    Frame { header: FrameHeader },
    /// Damaged bytes `[offset, offset + len)`, followed by a valid frame.
    Damaged { offset: u64, len: u64 },
    /// Bytes from `offset` to the end of the file hold no complete frame: a
    /// torn tail after a crash, or damage at the end.
    Tail {
        offset: u64,
        len: u64,
        claimed: Option<FrameHeader>,
    },
    /// Bytes from `offset` to the end of the file are all zeros, starting
    /// where a frame would: space written ahead of the frames (see
    /// `writer`), the clean end of what the segment holds.
    Zeros { offset: u64, len: u64 },
}

/// Reads frames from a byte stream with bounded memory, resyncing after
/// damage.
#[derive(Debug)]
pub(crate) struct Scanner<Rd> {
    inner: Rd,
    /// Zeroed once when it grows, then reused: reads land in `buf[end..]`.
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`; `buf[0]` is at file offset
    /// `base`.
    start: usize,
    end: usize,
    base: u64,
    eof: bool,
    done: bool,
}

const READ_CHUNK: usize = 256 * 1024;

impl<Rd: Read> Scanner<Rd> {
    /// Scans `inner`, whose first byte is at file offset `offset`.
    pub(crate) fn new(inner: Rd, offset: u64) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            start: 0,
            end: 0,
            base: offset,
            eof: false,
            done: false,
        }
    }

    fn pos(&self) -> u64 {
        self.base + self.start as u64
    }

    fn available(&self) -> usize {
        self.end - self.start
    }

    /// Makes at least `n` unconsumed bytes available, unless the file ends.
    fn fill(&mut self, n: usize) -> io::Result<()> {
        if self.start > 0 && self.start >= self.end / 2 {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        while self.available() < n && !self.eof {
            // One large read at a time into the reused buffer: no zeroing
            // per read, no small reads.
            let want = (n - self.available()).max(READ_CHUNK);
            if self.buf.len() < self.end + want {
                self.buf.resize(self.end + want, 0);
            }
            let got = loop {
                match self.inner.read(&mut self.buf[self.end..self.end + want]) {
                    Ok(got) => break got,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            self.end += got;
            if got == 0 {
                self.eof = true;
            }
        }
        Ok(())
    }

    /// Skips `n` bytes; `false` if any of them is not zero.
    fn skip(&mut self, n: usize) -> bool {
        let zeros = self.buf[self.start..self.start + n].iter().all(|&b| b == 0);
        self.start += n;
        zeros
    }

    /// Skips to the next valid header, or to the end; `false` if any byte
    /// skipped is not zero.
    fn resync(&mut self) -> io::Result<bool> {
        let mut zeros = true;
        loop {
            self.fill(HEADER_LEN)?;
            let avail = &self.buf[self.start..self.end];
            if avail.len() < HEADER_LEN {
                return Ok(self.skip(avail.len()) && zeros);
            }
            // Candidates are found with a vectorised search for the magic;
            // only those are checked as headers, so resyncing over a long
            // run of garbage costs about as much as reading it.
            let scan_len = avail.len() - HEADER_LEN + 1;
            let finder = memchr::memmem::Finder::new(&MAGIC);
            let mut at = 0;
            let found = loop {
                match finder.find(&avail[at..scan_len + 3]) {
                    Some(i) if at + i < scan_len => {
                        if FrameHeader::decode(&avail[at + i..]).is_some() {
                            break Some(at + i);
                        }
                        at += i + 1;
                    }
                    _ => break None,
                }
            };
            match found {
                Some(i) => return Ok(self.skip(i) && zeros),
                None => zeros &= self.skip(scan_len),
            }
        }
    }

    pub(crate) fn next_item_into(&mut self, into: &mut Vec<u8>) -> io::Result<Option<Item>> {
        if self.done {
            return Ok(None);
        }
        let mut damage: Option<(u64, Option<FrameHeader>)> = None;
        // Whether every damaged byte so far is zero.
        let mut zeros = true;
        loop {
            let offset = self.pos();
            self.fill(HEADER_LEN)?;
            if self.available() == 0 {
                self.done = true;
                return Ok(damage.map(|(at, claimed)| {
                    let len = offset - at;
                    if zeros && claimed.is_none() {
                        Item::Zeros { offset: at, len }
                    } else {
                        Item::Tail {
                            offset: at,
                            len,
                            claimed,
                        }
                    }
                }));
            }
            let header = if self.available() >= HEADER_LEN {
                FrameHeader::decode(&self.buf[self.start..self.end])
            } else {
                None
            };
            let Some(header) = header else {
                damage.get_or_insert((offset, None));
                zeros &= self.skip(1);
                zeros &= self.resync()?;
                continue;
            };
            let total = HEADER_LEN + header.payload_len as usize;
            self.fill(total)?;
            if self.available() < total {
                // The file ends inside this frame.
                let len = self.available() as u64;
                self.start = self.end;
                self.done = true;
                let (at, claimed) = damage.unwrap_or((offset, Some(header)));
                return Ok(Some(Item::Tail {
                    offset: at,
                    len: offset + len - at,
                    claimed,
                }));
            }
            let payload = &self.buf[self.start + HEADER_LEN..self.start + total];
            if crc32c::crc32c(payload) != header.payload_crc {
                damage.get_or_insert((offset, Some(header)));
                zeros = false;
                self.start += total;
                continue;
            }
            if let Some((at, _)) = damage {
                // Report the damage first; the frame is read again next call.
                return Ok(Some(Item::Damaged {
                    offset: at,
                    len: offset - at,
                }));
            }
            into.extend_from_slice(payload);
            self.start += total;
            return Ok(Some(Item::Frame { header }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_published_check_value() {
        // RFC 3720 (iSCSI) B.4 and the CRC catalogue: CRC-32C("123456789").
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        // 32 bytes of zeros, RFC 3720 B.4.
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8A91_36AA);
    }

    fn frame(seq: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = FrameHeader::encode(Kind::Records, seq, seq, 1, payload).to_vec();
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn header_round_trips_and_rejects_a_flipped_bit() {
        let h = FrameHeader::encode(Kind::Records, 42, 5, 7, b"abc");
        let d = FrameHeader::decode(&h).unwrap();
        assert_eq!(
            (d.first_seq, d.count, d.payload_len, d.end_seq()),
            (42, 7, 3, 49)
        );
        assert_eq!((d.index, d.end_index()), (5, 12));
        for bit in 0..(32 * 8) {
            let mut bad = h;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                FrameHeader::decode(&bad).is_none(),
                "bit {bit} went unnoticed"
            );
        }
    }

    #[test]
    fn a_damaged_middle_frame_is_skipped_and_the_next_found() {
        let mut file = frame(0, b"first");
        let second_at = file.len();
        file.extend(frame(1, b"second"));
        let third_at = file.len();
        file.extend(frame(2, b"third"));
        file[second_at + 6] ^= 0x10; // the length field of frame 1
        let mut s = Scanner::new(&file[..], 0);
        let mut seqs = Vec::new();
        let mut damaged = Vec::new();
        while let Some(item) = s.next_item_into(&mut Vec::new()).unwrap() {
            match item {
                Item::Frame { header, .. } => seqs.push(header.first_seq),
                Item::Damaged { offset, len, .. } => damaged.push((offset, len)),
                Item::Tail { .. } | Item::Zeros { .. } => panic!("no tail expected"),
            }
        }
        assert_eq!(seqs, vec![0, 2]);
        assert_eq!(
            damaged,
            vec![(second_at as u64, (third_at - second_at) as u64)]
        );
    }

    /// Every item of a scan of `file`, frames as their first sequence numbers.
    fn scan(file: &[u8]) -> Vec<String> {
        let mut s = Scanner::new(file, 0);
        let mut items = Vec::new();
        while let Some(item) = s.next_item_into(&mut Vec::new()).unwrap() {
            items.push(match item {
                Item::Frame { header } => format!("frame {}", header.first_seq),
                Item::Damaged { offset, len } => format!("damaged {offset}+{len}"),
                Item::Tail { offset, len, .. } => format!("tail {offset}+{len}"),
                Item::Zeros { offset, len } => format!("zeros {offset}+{len}"),
            });
        }
        items
    }

    #[test]
    fn zeros_where_a_frame_would_start_through_to_the_end_are_the_end() {
        let mut file = frame(0, b"first");
        file.extend(frame(1, b"second"));
        let end = file.len();
        // Written ahead: any length, a page or a part of a header.
        for zeros in [1, 39, 40, 4096, 300_000] {
            let mut f = file.clone();
            f.resize(end + zeros, 0);
            assert_eq!(
                scan(&f),
                ["frame 0", "frame 1", &format!("zeros {end}+{zeros}")],
                "{zeros} zeros"
            );
        }
        // One byte that is not zero makes it a torn tail, wherever it is.
        for at in [0, 3, 39, 40, 4095] {
            let mut f = file.clone();
            f.resize(end + 4096, 0);
            f[end + at] = 7;
            assert_eq!(
                scan(&f),
                ["frame 0", "frame 1", &format!("tail {end}+4096")],
                "a byte at {at}"
            );
        }
        // A frame cut short, then zeros: torn, as without them.
        let mut f = file.clone();
        f.extend(&frame(2, b"third")[..43]);
        f.resize(end + 4096, 0);
        assert_eq!(
            scan(&f),
            ["frame 0", "frame 1", &format!("tail {end}+4096")]
        );
        // Zeros with a frame after them are damage, not the end.
        let mut f = file.clone();
        f.resize(end + 100, 0);
        f.extend(frame(2, b"third"));
        assert_eq!(
            scan(&f),
            [
                "frame 0",
                "frame 1",
                &format!("damaged {end}+100"),
                "frame 2"
            ]
        );
    }

    #[test]
    fn a_max_length_header_in_a_short_file_is_a_tail() {
        let mut h = FrameHeader::encode(Kind::Records, 0, 0, 1, &[0u8; 0]);
        // Forge a header claiming the largest payload, with a valid checksum.
        h[4..8].copy_from_slice(&MAX_PAYLOAD.to_le_bytes());
        let crc = crc32c::crc32c(&h[0..32]);
        h[32..36].copy_from_slice(&crc.to_le_bytes());
        let mut s = Scanner::new(&h[..], 100);
        match s.next_item_into(&mut Vec::new()).unwrap() {
            Some(Item::Tail { offset, len, .. }) => assert_eq!((offset, len), (100, 40)),
            other => panic!("{other:?}"),
        }
        assert!(s.next_item_into(&mut Vec::new()).unwrap().is_none());
    }
}
