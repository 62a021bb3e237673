//! The payload encodings: how records become the bytes of a frame.
//!
//! ```text
//! encoding 2 (default)  payload = raw_len u32 LE | lz4 block of raw   (DO NOT REORDER)
//! encoding 3            payload = raw
//! raw (2 and 3)         names strings record*     record = len varint | compact value
//! encoding 1 (read)     payload = raw_len u32 LE | lz4 block of raw
//! raw (1)               record*                   record = len u32 LE | MessagePack map
//! ```
//!
//! Format version 2 writes encoding 2, or 3 under
//! [`with_compression(false)`](crate::DiskSpool::with_compression); the
//! compact values and the per-frame name and string tables are specified in
//! `compact.rs`. Format version 1 segments (encoding 1, MessagePack maps via
//! `rmp-serde`) are still read. Every encoding is self-describing: fields are
//! matched by name, so a field added to the record type (an `Option`, or
//! anything with `#[serde(default)]`) decodes from old segments, and a field
//! removed is ignored. `f64` is stored as its eight bytes, so NaN payloads,
//! ±Inf, -0.0 and every value a decimal printer would round come back bit
//! for bit. Each record carries its own length, so one record that no longer
//! decodes costs that record only.
//!
//! Chosen by measurement (100,000 bench records in frames of 100; release
//! build on the shared two-core development machine, best of seven rounds;
//! bytes include the frame header; decoding includes decompression and the
//! three `String`s each record allocates):
//!
//! | encoding | bytes/record | encode ns/record | decode ns/record |
//! |---|---|---|---|
//! | MessagePack maps, lz4 (encoding 1, format 1) | 17.3 | 96 | 156 |
//! | **compact, lz4 (encoding 2)** | **22.7** | **148** | **111** |
//! | compact, uncompressed (encoding 3) | 47.4 | 99 | 92 |
//!
//! When format 1 was chosen, JSON (which cannot carry NaN or ±Inf at all)
//! and CBOR measured slower than MessagePack at the same size, and zstd
//! halved the bytes again at four times lz4's CPU.
//!
//! Replay is CPU-bound in decoding, where the compact values win: field
//! names and short strings come from the frame's tables, validated once per
//! frame, not once per record. Encoding costs more than MessagePack's (the
//! string table is looked up for every short string, and unique ones such
//! as timestamps gain nothing from it), but ingest is bound by the hand-off
//! to the writer thread far more than by encoding: in the end-to-end
//! benchmark encodings 2 and 3 gave the same ingest and replay figures
//! within the machine's noise, so the default keeps the smaller files. lz4
//! is the pure-Rust `lz4_flex` in its safe mode.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::compact::{self, Keys, Tables};
use crate::frame::MAX_PAYLOAD;

/// The encoding id of format version 1: MessagePack maps in lz4 frames.
/// Still read; no longer written.
pub(crate) const ENCODING_MSGPACK_LZ4: u8 = 1;
/// Format version 2, the default: the compact encoding, in lz4 frames.
pub(crate) const ENCODING_COMPACT_LZ4: u8 = 2;
/// Format version 2, uncompressed: the compact encoding, frames as they are.
pub(crate) const ENCODING_COMPACT: u8 = 3;

/// The largest raw (uncompressed) frame a reader accepts.
pub(crate) const MAX_RAW: usize = MAX_PAYLOAD as usize;

/// Builds the raw bytes of one frame, a record at a time, in the compact
/// encoding. Its buffers are kept from frame to frame.
#[derive(Debug, Default)]
pub(crate) struct FrameBuilder {
    /// Records so far (each its length and value).
    raw: Vec<u8>,
    keys: Keys,
    count: u32,
    /// The name table followed by the records, as compressed.
    whole: Vec<u8>,
}

/// Why a single record could not be added to a frame.
#[derive(Debug)]
pub(crate) enum RecordError {
    /// The record's `Serialize` implementation failed.
    Serialize(String),
    /// The encoded record is larger than the configured maximum.
    TooLarge(usize),
}

/// Room left before a record for its length: four LEB128 bytes hold any
/// length up to 256 MiB, above [`MAX_RECORD_BYTES`](crate::MAX_RECORD_BYTES).
const LEN_ROOM: usize = 4;

impl FrameBuilder {
    /// Raw bytes so far.
    pub(crate) fn raw_len(&self) -> usize {
        self.raw.len()
    }

    /// Records so far.
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// Appends one record, or leaves the frame unchanged and says why not.
    pub(crate) fn push<R: Serialize>(&mut self, record: &R, max: usize) -> Result<(), RecordError> {
        let start = self.raw.len();
        self.raw.extend_from_slice(&[0; LEN_ROOM]);
        if let Err(e) = compact::encode(record, &mut self.raw, &mut self.keys) {
            // Names it added stay in the table, unused: harmless.
            self.raw.truncate(start);
            return Err(RecordError::Serialize(e.0));
        }
        let len = self.raw.len() - start - LEN_ROOM;
        if len > max || len >= 1 << (7 * LEN_ROOM) {
            self.raw.truncate(start);
            return Err(RecordError::TooLarge(len));
        }
        let mut prefix = Vec::with_capacity(LEN_ROOM);
        compact::put_varint(&mut prefix, len as u64);
        let n = prefix.len();
        self.raw.copy_within(start + LEN_ROOM.., start + n);
        self.raw.truncate(start + n + len);
        self.raw[start..start + n].copy_from_slice(&prefix);
        self.count += 1;
        Ok(())
    }

    /// The frame's payload (compressed with lz4 if `compress`, for
    /// encoding 2; as it is for encoding 3); starts an empty frame.
    pub(crate) fn finish(&mut self, compress: bool) -> (Vec<u8>, u32) {
        let count = std::mem::take(&mut self.count);
        self.whole.clear();
        self.keys.write_table(&mut self.whole);
        self.keys.clear();
        if !compress {
            let mut payload = Vec::with_capacity(self.whole.len() + self.raw.len());
            payload.extend_from_slice(&self.whole);
            payload.extend_from_slice(&self.raw);
            self.raw.clear();
            return (payload, count);
        }
        self.whole.extend_from_slice(&self.raw);
        self.raw.clear();
        let raw_len = u32::try_from(self.whole.len()).unwrap_or(u32::MAX);
        let max_out = lz4_flex::block::get_maximum_output_size(self.whole.len());
        let mut payload = vec![0; 4 + max_out];
        payload[..4].copy_from_slice(&raw_len.to_le_bytes());
        let written = lz4_flex::block::compress_into(&self.whole, &mut payload[4..]).unwrap_or(0);
        payload.truncate(4 + written);
        (payload, count)
    }
}

/// Why a payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PayloadError {
    /// The payload is too short, claims too much, or does not decompress.
    Corrupt(String),
}

/// The raw record bytes of a frame's payload in `encoding`: the payload
/// itself if it is not compressed, else `scratch`, decompressed into.
pub(crate) fn raw_of<'a>(
    payload: &'a [u8],
    encoding: u8,
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8], PayloadError> {
    if encoding == ENCODING_COMPACT {
        return Ok(payload);
    }
    *scratch = decompress(payload)?;
    Ok(scratch)
}

/// Decompresses a payload into its raw record bytes.
pub(crate) fn decompress(payload: &[u8]) -> Result<Vec<u8>, PayloadError> {
    let Some((len, block)) = payload.split_first_chunk::<4>() else {
        return Err(PayloadError::Corrupt(
            "payload shorter than its length".into(),
        ));
    };
    let raw_len = u32::from_le_bytes(*len) as usize;
    if raw_len > MAX_RAW {
        return Err(PayloadError::Corrupt(format!(
            "raw length {raw_len} over the limit"
        )));
    }
    let mut raw = vec![0u8; raw_len];
    match lz4_flex::block::decompress_into(block, &mut raw) {
        Ok(n) if n == raw_len => Ok(raw),
        Ok(n) => Err(PayloadError::Corrupt(format!(
            "decompressed {n} of {raw_len} bytes"
        ))),
        Err(e) => Err(PayloadError::Corrupt(format!("lz4: {e}"))),
    }
}

/// Iterates the records of raw frame bytes: each item is one record's
/// bytes, or the reason the rest of the frame is unreadable.
#[derive(Debug)]
pub(crate) struct Records<'a> {
    raw: &'a [u8],
    encoding: u8,
    /// The frame's tables (encodings 2 and 3).
    tables: Tables<'a>,
}

impl<'a> Records<'a> {
    /// The records of a frame of `encoding`; `Err` if its name table is
    /// damaged (no record of the frame can be read) or the encoding unknown.
    pub(crate) fn new(raw: &'a [u8], encoding: u8) -> Result<Self, PayloadError> {
        match encoding {
            ENCODING_MSGPACK_LZ4 => Ok(Self {
                raw,
                encoding,
                tables: Tables::default(),
            }),
            ENCODING_COMPACT_LZ4 | ENCODING_COMPACT => {
                let (tables, raw) = compact::read_table(raw)
                    .map_err(|e| PayloadError::Corrupt(format!("frame tables: {e}")))?;
                Ok(Self {
                    raw,
                    encoding,
                    tables,
                })
            }
            other => Err(PayloadError::Corrupt(format!(
                "unknown payload encoding {other}"
            ))),
        }
    }

    /// The next record's bytes, `Ok(None)` at the end, `Err` if the lengths
    /// do not add up (the rest of the frame is unreadable).
    pub(crate) fn next_bytes(&mut self) -> Result<Option<&'a [u8]>, PayloadError> {
        if self.raw.is_empty() {
            return Ok(None);
        }
        let len = if self.encoding == ENCODING_MSGPACK_LZ4 {
            let Some((len, rest)) = self.raw.split_first_chunk::<4>() else {
                self.raw = &[];
                return Err(PayloadError::Corrupt("record length cut short".into()));
            };
            self.raw = rest;
            u32::from_le_bytes(*len) as usize
        } else {
            match compact::take_varint(&mut self.raw).and_then(|l| usize::try_from(l).ok()) {
                Some(len) => len,
                None => {
                    self.raw = &[];
                    return Err(PayloadError::Corrupt("record length cut short".into()));
                }
            }
        };
        if len > self.raw.len() {
            self.raw = &[];
            return Err(PayloadError::Corrupt(format!(
                "record length {len} past the frame end"
            )));
        }
        let (record, rest) = self.raw.split_at(len);
        self.raw = rest;
        Ok(Some(record))
    }

    /// Decodes one record's bytes from this frame.
    pub(crate) fn decode<R: DeserializeOwned>(&self, bytes: &[u8]) -> Result<R, String> {
        if self.encoding == ENCODING_MSGPACK_LZ4 {
            return rmp_serde::from_slice(bytes).map_err(|e| e.to_string());
        }
        R::deserialize(&mut compact::Decoder::new(bytes, &self.tables)).map_err(|e| e.0)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct V1 {
        a: String,
        b: f64,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct V2 {
        a: String,
        b: f64,
        added: Option<u32>,
    }

    /// Frames `records` and decodes every record of the frame as `U`.
    fn round_trip<T: Serialize, U: DeserializeOwned>(records: &[T]) -> Vec<Result<U, String>> {
        let mut out = Vec::new();
        for compress in [false, true] {
            let mut f = FrameBuilder::default();
            for r in records {
                f.push(r, usize::MAX).unwrap();
            }
            let (payload, count) = f.finish(compress);
            assert_eq!(count as usize, records.len());
            let encoding = if compress {
                ENCODING_COMPACT_LZ4
            } else {
                ENCODING_COMPACT
            };
            let decoded = decode_frame::<U>(&payload, encoding);
            if compress {
                assert_eq!(decoded.len(), out.len(), "lz4 frames decode the same");
                continue;
            }
            out = decoded;
        }
        out
    }

    fn decode_frame<U: DeserializeOwned>(payload: &[u8], encoding: u8) -> Vec<Result<U, String>> {
        let mut scratch = Vec::new();
        let raw = raw_of(payload, encoding, &mut scratch).unwrap();
        let mut it = Records::new(raw, encoding).unwrap();
        let mut out = Vec::new();
        while let Some(b) = it.next_bytes().unwrap() {
            out.push(it.decode(b));
        }
        out
    }

    #[test]
    fn an_added_optional_field_reads_old_records_and_a_removed_one_is_skipped() {
        let old = V1 {
            a: "x".into(),
            b: 1.5,
        };
        let new: Vec<Result<V2, String>> = round_trip(&[&old, &old]);
        let want = V2 {
            a: "x".into(),
            b: 1.5,
            added: None,
        };
        assert_eq!(
            new,
            vec![
                Ok(want),
                Ok(V2 {
                    a: "x".into(),
                    b: 1.5,
                    added: None
                })
            ]
        );
        let back: Vec<Result<V1, String>> = round_trip(&[V2 {
            a: "y".into(),
            b: -2.0,
            added: Some(7),
        }]);
        assert_eq!(
            back,
            vec![Ok(V1 {
                a: "y".into(),
                b: -2.0
            })]
        );
    }

    #[test]
    fn floats_survive_bit_for_bit() {
        let values = [
            f64::from_bits(0x7FF8_0000_DEAD_BEEF), // NaN with a payload
            f64::from_bits(0xFFF0_0000_0000_0001), // signalling NaN, negative
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.1 + 0.2,
            f64::MIN_POSITIVE / 3.0, // subnormal
            5e-324,
            f64::MAX,
        ];
        let back: Vec<Result<f64, String>> = round_trip(&values);
        for (v, b) in values.iter().zip(back) {
            assert_eq!(b.unwrap().to_bits(), v.to_bits(), "{v:e}");
        }
        let nan32 = [
            f32::from_bits(0x7FC0_1234),
            -0.0f32,
            f32::MIN_POSITIVE / 2.0,
        ];
        let back: Vec<Result<f32, String>> = round_trip(&nan32);
        for (v, b) in nan32.iter().zip(back) {
            assert_eq!(b.unwrap().to_bits(), v.to_bits(), "{v:e}");
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Dot,
        Circle(f64),
        Pair(i8, u128),
        Rect { w: u32, h: i64 },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Unit;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Meters(f32);

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Everything {
        text: String,
        emoji: char,
        bytes: Vec<u8>,
        #[serde(with = "serde_bytes_like")]
        blob: Vec<u8>,
        ints: (i8, i16, i32, i64, i128, u8, u16, u32, u64, u128),
        extremes: [i128; 4],
        nested: Vec<Option<Vec<Shape>>>,
        map: BTreeMap<String, Option<Meters>>,
        int_keys: BTreeMap<i32, bool>,
        unit: (),
        unit_struct: Unit,
        opt_none: Option<String>,
        opt_unit: Option<Option<u8>>,
    }

    /// `Vec<u8>` as serde bytes, without the serde_bytes crate.
    mod serde_bytes_like {
        pub(super) fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
        pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<u8>, D::Error> {
            struct B;
            impl serde::de::Visitor<'_> for B {
                type Value = Vec<u8>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                    Ok(v.to_vec())
                }
            }
            d.deserialize_bytes(B)
        }
    }

    #[test]
    fn unicode_nested_types_enums_and_options_round_trip() {
        let e = Everything {
            text: "naïve café — 東京 \u{0} \u{10FFFF} 🦀".into(),
            emoji: '🦀',
            bytes: vec![0, 1, 255],
            blob: vec![9; 300],
            ints: (
                i8::MIN,
                i16::MIN,
                i32::MIN,
                i64::MIN,
                -1,
                u8::MAX,
                u16::MAX,
                u32::MAX,
                u64::MAX,
                u128::MAX,
            ),
            extremes: [i128::MIN, i128::MAX, i128::from(i64::MIN) - 1, 0],
            nested: vec![
                None,
                Some(vec![]),
                Some(vec![
                    Shape::Dot,
                    Shape::Circle(f64::NAN),
                    Shape::Pair(-3, u128::MAX),
                    Shape::Rect { w: 3, h: -4 },
                ]),
            ],
            map: [("a".to_string(), Some(Meters(1.5))), ("".to_string(), None)]
                .into_iter()
                .collect(),
            int_keys: [(-5, true), (7, false)].into_iter().collect(),
            unit: (),
            unit_struct: Unit,
            opt_none: None,
            opt_unit: Some(Some(0)),
        };
        let back: Vec<Result<Everything, String>> = round_trip(&[e.clone(), e.clone()]);
        for b in back {
            let b = b.unwrap();
            // NaN != NaN: compare its bits, then the rest with a number.
            let nan = |x: &Everything| match &x.nested[2].as_ref().unwrap()[1] {
                Shape::Circle(v) => v.to_bits(),
                _ => 0,
            };
            assert_eq!(nan(&b), nan(&e));
            let mut b2 = b.clone();
            let mut e2 = e.clone();
            b2.nested[2].as_mut().unwrap()[1] = Shape::Circle(0.0);
            e2.nested[2].as_mut().unwrap()[1] = Shape::Circle(0.0);
            assert_eq!(b2, e2);
        }
    }

    #[test]
    fn a_value_that_no_longer_fits_its_type_costs_that_record_only() {
        #[derive(Serialize)]
        struct Old {
            n: &'static str,
        }
        #[derive(Debug, Deserialize, PartialEq)]
        struct New {
            n: u32,
        }
        #[derive(Serialize)]
        struct Good {
            n: u32,
        }
        let mut f = FrameBuilder::default();
        f.push(&Good { n: 1 }, usize::MAX).unwrap();
        f.push(&Old { n: "two" }, usize::MAX).unwrap();
        f.push(&Good { n: 3 }, usize::MAX).unwrap();
        let (payload, _) = f.finish(false);
        let back: Vec<Result<New, String>> = decode_frame(&payload, ENCODING_COMPACT);
        assert_eq!(back[0], Ok(New { n: 1 }));
        assert!(back[1].is_err());
        assert_eq!(back[2], Ok(New { n: 3 }));
    }

    #[test]
    fn frames_of_format_version_1_still_decode() {
        // Version 1 wrote MessagePack maps, each behind a u32 length.
        let mut raw = Vec::new();
        for (a, b) in [("x", 1.5), ("y", f64::from_bits(0x7FF8_0000_0000_0001))] {
            let at = raw.len();
            raw.extend_from_slice(&[0; 4]);
            let mut ser = rmp_serde::Serializer::new(&mut raw).with_struct_map();
            V1 { a: a.into(), b }.serialize(&mut ser).unwrap();
            let len = u32::try_from(raw.len() - at - 4).unwrap();
            raw[at..at + 4].copy_from_slice(&len.to_le_bytes());
        }
        let mut payload = u32::try_from(raw.len()).unwrap().to_le_bytes().to_vec();
        payload.extend(lz4_flex::block::compress(&raw));
        let back: Vec<Result<V2, String>> = decode_frame(&payload, ENCODING_MSGPACK_LZ4);
        assert_eq!(back.len(), 2);
        let first = back[0].as_ref().unwrap();
        assert_eq!((first.a.as_str(), first.b, first.added), ("x", 1.5, None));
        let second = back[1].as_ref().unwrap();
        assert_eq!(second.b.to_bits(), 0x7FF8_0000_0000_0001);
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        let (payload, _) = {
            let mut f = FrameBuilder::default();
            f.push(
                &V2 {
                    a: "abc".into(),
                    b: 2.0,
                    added: Some(3),
                },
                usize::MAX,
            )
            .unwrap();
            let long = V2 {
                a: "x".repeat(40),
                b: 2.0,
                added: None,
            };
            f.push(&long, usize::MAX).unwrap();
            f.finish(false)
        };
        let raw = payload;
        for cut in 0..raw.len() {
            for flip in [0x01u8, 0x80, 0xFF] {
                let mut bad = raw.clone();
                bad[cut] ^= flip;
                if let Ok(mut it) = Records::new(&bad, ENCODING_COMPACT_LZ4) {
                    while let Ok(Some(b)) = it.next_bytes() {
                        let _ = it.decode::<V2>(b);
                        let _ = it.decode::<Everything>(b);
                    }
                }
            }
            if let Ok(mut it) = Records::new(&raw[..cut], ENCODING_COMPACT_LZ4) {
                while let Ok(Some(b)) = it.next_bytes() {
                    let _ = it.decode::<V2>(b);
                }
            }
        }
        // Nesting deeper than the decoder follows is refused when written.
        #[derive(Serialize)]
        struct Deep {
            inner: Option<Box<Deep>>,
        }
        let mut deep = Deep { inner: None };
        for _ in 0..200 {
            deep = Deep {
                inner: Some(Box::new(deep)),
            };
        }
        let mut f = FrameBuilder::default();
        assert!(matches!(
            f.push(&deep, usize::MAX),
            Err(RecordError::Serialize(_))
        ));
        assert!(matches!(
            f.push(&vec![vec![vec![1u8]]; 3], usize::MAX),
            Ok(())
        ));
        // Deep nesting is refused, not followed.
        let mut deep = vec![0u8];
        deep.extend(std::iter::repeat_n(0x0B, 100_000));
        let it = Records::new(&deep, ENCODING_COMPACT_LZ4).unwrap();
        assert!(it.decode::<Everything>(&deep[1..]).is_err());
        assert!(it.decode::<serde::de::IgnoredAny>(&deep[1..]).is_err());
    }

    #[test]
    fn a_record_over_the_maximum_leaves_the_frame_unchanged() {
        let mut f = FrameBuilder::default();
        f.push(&"small", 100).unwrap();
        let before = f.raw_len();
        assert!(matches!(
            f.push(&"x".repeat(200), 100),
            Err(RecordError::TooLarge(_))
        ));
        assert_eq!((f.raw_len(), f.count()), (before, 1));
    }

    #[test]
    fn a_huge_claimed_raw_length_is_refused_without_allocating() {
        let mut payload = u32::MAX.to_le_bytes().to_vec();
        payload.extend_from_slice(&[0; 8]);
        assert!(decompress(&payload).is_err());
    }
}
