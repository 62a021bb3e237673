//! The payload encoding: how records become the bytes of a frame.
//!
//! ```text
//! payload   = raw_len u32 LE | lz4 block of raw          (DO NOT REORDER)
//!
//! encoding 2 (written since segment format version 3):
//! raw       = names record*
//! names     = count u16 LE | (len u8 | UTF-8 name)*       the fields, once
//! record    = len u32 LE, top bit set: MessagePack array of the field values
//!                                      in `names` order (see below)
//!           | len u32 LE, top bit clear: MessagePack value as in encoding 1
//!
//! encoding 1 (still read):
//! raw       = record*
//! record    = len u32 LE | MessagePack value, structs as maps (field names kept)
//! ```
//!
//! Encoding 2 writes a struct's field names once per frame instead of once
//! per record (`positional`): the values that follow are what encoding 1
//! writes, so every property below holds for both. A record that is not a
//! struct, or whose fields differ from the frame's, is written as in
//! encoding 1 with the top bit of its length clear.
//!
//! Measured against encoding 1 on the spool bench (1 M bench readings of
//! four fields, five interleaved pairs of fill and replay): 17.3 → 16.7
//! bytes per record on disk, replay in 0.84× the time (median of the
//! pairs' ratios; the names need no UTF-8 check and no matching), ingest
//! the same within the noise. Most of what replay still costs is the
//! allocator: three strings a reading, allocated by the decoder and freed
//! by the sink.
//!
//! MessagePack with named fields is self-describing: a field added to the
//! record type (an `Option`, or anything with `#[serde(default)]`) decodes
//! from old segments, and a field removed is ignored. `f64` is stored as its
//! eight bytes, so NaN payloads, ±Inf, -0.0 and every value a decimal printer
//! would round come back bit for bit. Each record carries its own length, so
//! one record that no longer decodes costs that record only.
//!
//! Chosen by measurement (100,000 bench records in frames of 100; release
//! build on the shared two-core development machine; bytes include the
//! per-record length):
//!
//! | encoding | compression | bytes/record | encode ns/record | decode ns/record |
//! |---|---|---|---|---|
//! | JSON | none | 98.0 | 157 | 209 |
//! | JSON | lz4 | 21.8 | 162 | 211 |
//! | JSON | zstd 1 | 11.0 | 430 | 401 |
//! | MessagePack (maps) | none | 75.0 | 58 | 150 |
//! | **MessagePack (maps)** | **lz4** | **17.8** | **95** | **153** |
//! | MessagePack (maps) | zstd 1 | 10.4 | 505 | 433 |
//! | CBOR | lz4 | 17.9 | 118 | 362 |
//!
//! JSON cannot carry NaN or ±Inf at all. zstd halves the bytes again but
//! costs four times the CPU, and both ingest (≥ 5 M records/s without fsync)
//! and replay (1 M records in ≤ 0.2 s) are CPU-bound; lz4 already beats the
//! 50 bytes/record target by a factor of almost three. lz4 is the pure-Rust
//! `lz4_flex` in its fast mode with `checked-decode`, which bounds every
//! copy of the decoder by its input and output, so a damaged or hostile
//! payload is an error, never an out-of-bounds access (the fuzzed recovery
//! runs over it). Against its all-safe mode, on the spool bench: OS-durability
//! ingest about 15 % faster (3.4 → 4.0 M records/s), replay 10 %.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::frame::MAX_PAYLOAD;
use crate::positional::{self, FrameFields, NotPositional};

/// The encoding id of segments written before format version 3: every
/// record a self-describing MessagePack value.
pub(crate) const ENCODING_MSGPACK_LZ4: u8 = 1;

/// The encoding id written in segment headers: field names once per frame.
pub(crate) const ENCODING_POSITIONAL_LZ4: u8 = 2;

/// Whether this build reads payloads of `encoding`.
pub(crate) fn known(encoding: u8) -> bool {
    matches!(encoding, ENCODING_MSGPACK_LZ4 | ENCODING_POSITIONAL_LZ4)
}

/// The top bit of a record's length: its value is an array of the frame's
/// fields.
const POSITIONAL: u32 = 1 << 31;

/// Longest field name written in a frame's names.
const MAX_NAME: usize = u8::MAX as usize;

/// The largest raw (uncompressed) frame a reader accepts.
pub(crate) const MAX_RAW: usize = MAX_PAYLOAD as usize;

/// Builds the raw bytes of one frame, a record at a time.
#[derive(Debug, Default)]
pub(crate) struct FrameBuilder {
    raw: Vec<u8>,
    count: u32,
    /// The frame's field names, learnt from its first struct record.
    fields: Vec<&'static str>,
    /// Where the frame is put together: names, then `raw`.
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
        self.raw.extend_from_slice(&[0; 4]);
        let learning = self.fields.is_empty();
        let written = record.serialize(positional::Writer {
            out: &mut self.raw,
            fields: &mut self.fields,
        });
        let flag = match written {
            Ok(()) if self.fields.iter().all(|f| f.len() <= MAX_NAME) => POSITIONAL,
            Ok(()) | Err(NotPositional::Shape) => {
                if learning {
                    self.fields.clear();
                }
                self.raw.truncate(start + 4);
                let mut ser = rmp_serde::Serializer::new(&mut self.raw).with_struct_map();
                if let Err(e) = record.serialize(&mut ser) {
                    self.raw.truncate(start);
                    return Err(RecordError::Serialize(e.to_string()));
                }
                0
            }
            Err(NotPositional::Failed(why)) => {
                if learning {
                    self.fields.clear();
                }
                self.raw.truncate(start);
                return Err(RecordError::Serialize(why));
            }
        };
        let len = self.raw.len() - start - 4;
        let len32 = u32::try_from(len).ok().filter(|l| l & POSITIONAL == 0);
        let Some(len32) = len32.filter(|_| len <= max) else {
            self.raw.truncate(start);
            if learning {
                self.fields.clear();
            }
            return Err(RecordError::TooLarge(len));
        };
        self.raw[start..start + 4].copy_from_slice(&(len32 | flag).to_le_bytes());
        self.count += 1;
        Ok(())
    }

    /// Compresses the frame into a payload and starts an empty one.
    pub(crate) fn finish(&mut self) -> (Vec<u8>, u32) {
        self.whole.clear();
        let names = u16::try_from(self.fields.len()).unwrap_or(0);
        self.whole.extend_from_slice(&names.to_le_bytes());
        for name in self.fields.iter().take(usize::from(names)) {
            self.whole.push(u8::try_from(name.len()).unwrap_or(0));
            self.whole.extend_from_slice(name.as_bytes());
        }
        self.whole.extend_from_slice(&self.raw);
        let raw = &self.whole;
        let raw_len = u32::try_from(raw.len()).unwrap_or(u32::MAX);
        let bound = lz4_flex::block::get_maximum_output_size(raw.len());
        let mut payload = Vec::with_capacity(4 + bound);
        payload.extend_from_slice(&raw_len.to_le_bytes());
        payload.resize(4 + bound, 0);
        let written = lz4_flex::block::compress_into(raw, &mut payload[4..]).unwrap_or(0);
        payload.truncate(4 + written);
        self.raw.clear();
        self.fields.clear();
        let count = std::mem::take(&mut self.count);
        (payload, count)
    }
}

/// Why a payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PayloadError {
    /// The payload is too short, claims too much, or does not decompress.
    Corrupt(String),
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
/// bytes. Stops at the first framing error, which is reported once.
#[derive(Debug)]
pub(crate) struct Records<'a> {
    raw: &'a [u8],
}

/// One record's bytes, and whether they are the frame's field values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordBytes<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) positional: bool,
}

impl<'a> Records<'a> {
    /// The frame's field names (none in encoding 1) and its records.
    pub(crate) fn new(encoding: u8, raw: &'a [u8]) -> Result<(Vec<String>, Self), PayloadError> {
        if encoding == ENCODING_MSGPACK_LZ4 {
            return Ok((Vec::new(), Self { raw }));
        }
        let corrupt = |why: &str| PayloadError::Corrupt(format!("has field names {why}"));
        let Some((count, mut rest)) = raw.split_first_chunk::<2>() else {
            return Err(corrupt("cut short"));
        };
        let count = u16::from_le_bytes(*count);
        let mut names = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let Some((&len, after)) = rest.split_first() else {
                return Err(corrupt("cut short"));
            };
            let Some((name, after)) = after.split_at_checked(usize::from(len)) else {
                return Err(corrupt("cut short"));
            };
            let name = std::str::from_utf8(name).map_err(|_| corrupt("not UTF-8"))?;
            names.push(name.to_owned());
            rest = after;
        }
        Ok((names, Self { raw: rest }))
    }

    /// The next record's bytes, `Ok(None)` at the end, `Err` if the lengths
    /// do not add up (the rest of the frame is unreadable).
    pub(crate) fn next_bytes(&mut self) -> Result<Option<RecordBytes<'a>>, PayloadError> {
        if self.raw.is_empty() {
            return Ok(None);
        }
        let Some((len, rest)) = self.raw.split_first_chunk::<4>() else {
            self.raw = &[];
            return Err(PayloadError::Corrupt("record length cut short".into()));
        };
        let len = u32::from_le_bytes(*len);
        let positional = len & POSITIONAL != 0;
        let len = (len & !POSITIONAL) as usize;
        if len > rest.len() {
            self.raw = &[];
            return Err(PayloadError::Corrupt(format!(
                "record length {len} past the frame end"
            )));
        }
        let (bytes, rest) = rest.split_at(len);
        self.raw = rest;
        Ok(Some(RecordBytes { bytes, positional }))
    }
}

/// Decodes the records of one frame: knows the frame's field names and
/// whether they are the record type's own.
#[derive(Debug)]
pub(crate) struct Decoder {
    fields: FrameFields,
}

impl Decoder {
    pub(crate) fn new<R: DeserializeOwned>(names: Vec<String>) -> Self {
        Self {
            fields: if names.is_empty() {
                FrameFields::default()
            } else {
                FrameFields::new::<R>(names)
            },
        }
    }

    /// Decodes one record.
    pub(crate) fn decode<R: DeserializeOwned>(&self, record: RecordBytes<'_>) -> Result<R, String> {
        if record.positional {
            if self.fields.names.is_empty() {
                return Err("a positional record in a frame without field names".into());
            }
            self.fields.decode(record.bytes)
        } else {
            rmp_serde::from_slice(record.bytes).map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
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

    /// The same fields as `V1`, in the other order.
    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Swapped {
        b: f64,
        a: String,
    }

    /// Encodes `records` as one frame of `encoding` and decodes them as
    /// `T`, with whether each was written positionally.
    fn round_trip<W: Serialize, T: DeserializeOwned>(
        encoding: u8,
        records: &[W],
    ) -> Vec<(Result<T, String>, bool)> {
        let raw = if encoding == ENCODING_MSGPACK_LZ4 {
            let mut raw = Vec::new();
            for r in records {
                let bytes = rmp_serde::to_vec_named(r).unwrap();
                raw.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_le_bytes());
                raw.extend_from_slice(&bytes);
            }
            raw
        } else {
            let mut f = FrameBuilder::default();
            for r in records {
                f.push(r, usize::MAX).unwrap();
            }
            let (payload, count) = f.finish();
            assert_eq!(count as usize, records.len());
            decompress(&payload).unwrap()
        };
        let (names, mut it) = Records::new(encoding, &raw).unwrap();
        let decoder = Decoder::new::<T>(names);
        let mut out = Vec::new();
        while let Some(b) = it.next_bytes().unwrap() {
            out.push((decoder.decode(b), b.positional));
        }
        out
    }

    fn values<T>(decoded: Vec<(Result<T, String>, bool)>) -> Vec<T> {
        decoded.into_iter().map(|(r, _)| r.unwrap()).collect()
    }

    #[test]
    fn structs_are_written_positionally_and_read_back_in_the_types_order() {
        let records = [
            V1 {
                a: "x".into(),
                b: 1.5,
            },
            V1 {
                a: "y".into(),
                b: -2.0,
            },
        ];
        let decoded = round_trip::<_, V1>(ENCODING_POSITIONAL_LZ4, &records);
        assert!(decoded.iter().all(|(_, positional)| *positional));
        assert_eq!(values(decoded), records);
        let (names, _) = Records::new(ENCODING_POSITIONAL_LZ4, &{
            let mut f = FrameBuilder::default();
            f.push(&records[0], usize::MAX).unwrap();
            decompress(&f.finish().0).unwrap()
        })
        .unwrap();
        assert_eq!(names, ["a", "b"]);
        assert!(FrameFields::new::<V1>(names.clone()).in_type_order);
        assert!(!FrameFields::new::<Swapped>(names).in_type_order);
    }

    #[test]
    fn fields_go_by_name_when_the_type_changed() {
        let old = [V1 {
            a: "x".into(),
            b: 1.5,
        }];
        for encoding in [ENCODING_MSGPACK_LZ4, ENCODING_POSITIONAL_LZ4] {
            // Added (optional), moved, and removed fields.
            let added = values(round_trip::<_, V2>(encoding, &old));
            assert_eq!(
                added,
                [V2 {
                    a: "x".into(),
                    b: 1.5,
                    added: None
                }]
            );
            let moved = values(round_trip::<_, Swapped>(encoding, &old));
            assert_eq!(
                moved,
                [Swapped {
                    b: 1.5,
                    a: "x".into()
                }]
            );
            let new = [V2 {
                a: "z".into(),
                b: 3.0,
                added: Some(4),
            }];
            let removed = values(round_trip::<_, V1>(encoding, &new));
            assert_eq!(
                removed,
                [V1 {
                    a: "z".into(),
                    b: 3.0
                }]
            );
        }
    }

    #[test]
    fn records_without_the_frames_fields_are_written_self_describing() {
        #[derive(Debug, Serialize, Deserialize, PartialEq)]
        struct Sparse {
            a: u32,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            b: Option<u32>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            c: Option<u32>,
        }
        let records = [
            Sparse {
                a: 1,
                b: Some(2),
                c: None,
            },
            // Same length as the first, other fields.
            Sparse {
                a: 3,
                b: None,
                c: Some(4),
            },
            Sparse {
                a: 5,
                b: None,
                c: None,
            },
            Sparse {
                a: 6,
                b: Some(7),
                c: None,
            },
        ];
        let decoded = round_trip::<_, Sparse>(ENCODING_POSITIONAL_LZ4, &records);
        let positional: Vec<bool> = decoded.iter().map(|(_, p)| *p).collect();
        assert_eq!(positional, [true, false, false, true]);
        assert_eq!(values(decoded), records);
    }

    #[test]
    fn values_that_are_not_structs_are_written_self_describing() {
        #[derive(Debug, Serialize, Deserialize, PartialEq)]
        enum E {
            Unit,
            Tuple(u8, u8),
            Named { x: u8 },
        }
        let records = [E::Named { x: 1 }, E::Unit, E::Tuple(2, 3)];
        let decoded = round_trip::<_, E>(ENCODING_POSITIONAL_LZ4, &records);
        assert!(decoded.iter().all(|(_, positional)| !*positional));
        assert_eq!(values(decoded), records);
        let numbers = values(round_trip::<_, u64>(ENCODING_POSITIONAL_LZ4, &[7_u64, 8]));
        assert_eq!(numbers, [7, 8]);
    }

    #[test]
    fn a_type_that_takes_only_maps_still_reads_positional_records() {
        /// Names its fields, but its visitor takes maps only.
        #[derive(Debug, PartialEq)]
        struct MapsOnly {
            a: String,
            b: f64,
        }
        impl<'de> Deserialize<'de> for MapsOnly {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = MapsOnly;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a map")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<MapsOnly, A::Error> {
                        let (mut a, mut b) = (None, None);
                        while let Some(key) = map.next_key::<String>()? {
                            match key.as_str() {
                                "a" => a = Some(map.next_value()?),
                                _ => b = Some(map.next_value()?),
                            }
                        }
                        Ok(MapsOnly {
                            a: a.unwrap_or_default(),
                            b: b.unwrap_or_default(),
                        })
                    }
                }
                d.deserialize_struct("MapsOnly", &["a", "b"], V)
            }
        }
        let decoded = round_trip::<_, MapsOnly>(
            ENCODING_POSITIONAL_LZ4,
            &[V1 {
                a: "x".into(),
                b: 1.5,
            }],
        );
        assert_eq!(
            values(decoded),
            [MapsOnly {
                a: "x".into(),
                b: 1.5
            }]
        );
    }

    #[test]
    fn a_self_describing_reader_sees_positional_records_as_maps() {
        let decoded = round_trip::<_, serde_json::Value>(
            ENCODING_POSITIONAL_LZ4,
            &[V1 {
                a: "x".into(),
                b: 1.5,
            }],
        );
        assert_eq!(values(decoded), [serde_json::json!({"a": "x", "b": 1.5})]);
    }

    #[test]
    fn floats_survive_bit_for_bit() {
        #[derive(Serialize, Deserialize)]
        struct F {
            v: f64,
        }
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
        for encoding in [ENCODING_MSGPACK_LZ4, ENCODING_POSITIONAL_LZ4] {
            let bare = round_trip::<_, f64>(encoding, &values);
            let wrapped: Vec<F> = values.iter().map(|&v| F { v }).collect();
            let wrapped = round_trip::<_, F>(encoding, &wrapped);
            for ((v, (b, _)), (w, _)) in values.iter().zip(bare).zip(wrapped) {
                assert_eq!(b.unwrap().to_bits(), v.to_bits(), "{v:e}");
                assert_eq!(w.unwrap().v.to_bits(), v.to_bits(), "{v:e}");
            }
        }
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
    fn a_record_that_fails_to_serialize_leaves_the_frame_and_its_fields_unchanged() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct as _;
                let mut st = s.serialize_struct("Fails", 2)?;
                st.serialize_field("first", &1)?;
                Err(serde::ser::Error::custom("no second field"))
            }
        }
        let mut f = FrameBuilder::default();
        assert!(matches!(
            f.push(&Fails, usize::MAX),
            Err(RecordError::Serialize(why)) if why.contains("no second field")
        ));
        assert_eq!((f.raw_len(), f.count()), (0, 0));
        // The next record's fields are its own, not the failed one's.
        f.push(
            &V1 {
                a: "x".into(),
                b: 1.0,
            },
            usize::MAX,
        )
        .unwrap();
        let raw = decompress(&f.finish().0).unwrap();
        let (names, _) = Records::new(ENCODING_POSITIONAL_LZ4, &raw).unwrap();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn a_huge_claimed_raw_length_is_refused_without_allocating() {
        let mut payload = u32::MAX.to_le_bytes().to_vec();
        payload.extend_from_slice(&[0; 8]);
        assert!(decompress(&payload).is_err());
    }

    #[test]
    fn damaged_field_names_are_an_error_not_a_panic() {
        for raw in [
            &[][..],
            &[1][..],
            &[1, 0, 5, b'a'][..],
            &[1, 0, 1, 0xff][..],
        ] {
            assert!(
                Records::new(ENCODING_POSITIONAL_LZ4, raw).is_err(),
                "{raw:?}"
            );
        }
        // A positional record longer than the frame's names.
        let mut raw = vec![1, 0, 1, b'a'];
        let record = rmp_serde::to_vec(&(1, 2)).unwrap();
        raw.extend_from_slice(&(u32::try_from(record.len()).unwrap() | POSITIONAL).to_le_bytes());
        raw.extend_from_slice(&record);
        let (names, mut it) = Records::new(ENCODING_POSITIONAL_LZ4, &raw).unwrap();
        let bytes = it.next_bytes().unwrap().unwrap();
        assert!(Decoder::new::<V1>(names).decode::<V1>(bytes).is_err());
    }
}
