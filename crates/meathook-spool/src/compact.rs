//! The compact value encoding of payload encodings 2 and 3: a tagged,
//! self-describing binary form of any serde value, with the field and
//! variant names and the short strings of a frame kept once each, in tables
//! at the start of the frame.
//!
//! ```text
//! raw     = names strings record*
//! names   = count:varint (len:varint utf8)*   field and variant names
//! strings = count:varint (len:varint utf8)*   strings of ≤ 32 bytes
//! record  = len:varint value
//! value   = 00                         unit, None
//!         | 01 | 02                    false | true
//!         | 03 n:varint                unsigned integer
//!         | 04 n:varint                negative integer, stored as !n
//!         | 05 u128 LE | 06 i128 LE    128-bit integers out of 64-bit range
//!         | 07 f32 LE  | 08 f64 LE     floats, their IEEE bits as they are
//!         | 09 len:varint utf8         string, char
//!         | 0A len:varint bytes        bytes
//!         | 0B value* 1F               sequence, tuple
//!         | 0C (value value)* 1F       map
//!         | 0D (key:varint value)* 00  struct; key = index in the table + 1
//!         | 0E key:varint              unit variant
//!         | 0F key:varint value        newtype, tuple or struct variant
//! ```
//!
//! `varint` is unsigned LEB128. `Some(x)` is stored as `x`. Containers end
//! with a marker rather than starting with a count, so a `Serialize`
//! implementation that announces a wrong length cannot corrupt the frame.
//!
//! Fields are matched by name on decode, so a field added to the record type
//! (an `Option`, or `#[serde(default)]`) reads from old frames and a removed
//! one is skipped. Each record carries its own length and the name table is
//! per frame, so a record that does not decode costs that record only.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};

const NULL: u8 = 0x00;
const FALSE: u8 = 0x01;
const TRUE: u8 = 0x02;
const UINT: u8 = 0x03;
const NINT: u8 = 0x04;
const U128: u8 = 0x05;
const I128: u8 = 0x06;
const F32: u8 = 0x07;
const F64: u8 = 0x08;
const STR: u8 = 0x09;
const BYTES: u8 = 0x0A;
const SEQ: u8 = 0x0B;
const MAP: u8 = 0x0C;
const STRUCT: u8 = 0x0D;
const UNIT_VARIANT: u8 = 0x0E;
const VARIANT: u8 = 0x0F;
const STR_REF: u8 = 0x10;
const END: u8 = 0x1F;
/// Ends a struct where a key reference would be.
const END_STRUCT: u64 = 0;

/// Deepest nesting written or followed: a deeper record is refused at
/// ingest, on its own, and corrupt input cannot overflow the stack.
const MAX_DEPTH: usize = 128;

/// Why a value could not be encoded or decoded.
#[derive(Debug)]
pub(crate) struct CodecError(pub(crate) String);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

impl ser::Error for CodecError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

impl de::Error for CodecError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

fn corrupt(what: &str) -> CodecError {
    CodecError(format!("corrupt value: {what}"))
}

/// Appends `v` as unsigned LEB128.
#[allow(clippy::cast_possible_truncation)] // the low seven bits, on purpose
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads an unsigned LEB128 number from the front of `input`.
pub(crate) fn take_varint(input: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = input.split_first()?;
        *input = rest;
        v |= u64::from(b & 0x7F) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Strings up to this long are kept once per frame, in its string table;
/// longer ones are written where they occur.
const MAX_SHARED: usize = 32;
/// Most entries of a frame's string table; later strings are written inline.
const MAX_STRINGS: usize = 1 << 16;

/// The field and variant names and the short strings of one frame, in order
/// of first use.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    names: Vec<&'static str>,
    /// Where the next name lookup looks first: fields come in declaration
    /// order.
    hint: usize,
    /// The short strings, back to back; entry `i` is `spans[i]`.
    arena: Vec<u8>,
    spans: Vec<(u32, u32)>,
    /// Open addressing over `spans`: 0 is empty, else the index plus one.
    slots: Vec<u32>,
}

/// A fast, non-cryptographic hash of a short string (the FxHash step).
fn hash(b: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = b.len() as u64;
    let mut words = b.chunks_exact(8);
    for w in words.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    let tail = words
        .remainder()
        .iter()
        .fold(0u64, |t, &byte| (t << 8) | u64::from(byte));
    (h.rotate_left(5) ^ tail).wrapping_mul(K)
}

impl Keys {
    fn reference(&mut self, name: &'static str) -> u64 {
        let same = |k: &&str| k.len() == name.len() && (k.as_ptr() == name.as_ptr() || *k == name);
        let at = match self.names.get(self.hint) {
            Some(k) if same(k) => self.hint,
            _ => match self.names.iter().position(same) {
                Some(at) => at,
                None => {
                    self.names.push(name);
                    self.names.len() - 1
                }
            },
        };
        self.hint = at + 1;
        at as u64 + 1
    }

    fn entry(&self, at: u32) -> &[u8] {
        let (start, len) = self.spans[at as usize];
        &self.arena[start as usize..(start + len) as usize]
    }

    /// The index of `s` in the string table, added if new; `None` if it is
    /// too long to share or the table is full.
    fn string(&mut self, s: &str) -> Option<u64> {
        if s.len() > MAX_SHARED {
            return None;
        }
        if self.slots.len() < 2 * (self.spans.len() + 1) {
            if self.spans.len() >= MAX_STRINGS {
                return None;
            }
            self.grow();
        }
        let mask = self.slots.len() - 1;
        #[allow(clippy::cast_possible_truncation)] // high bits: they depend on every byte
        let mut i = (hash(s.as_bytes()) >> 40) as usize & mask;
        loop {
            match self.slots[i] {
                0 => break,
                slot if self.entry(slot - 1) == s.as_bytes() => return Some(u64::from(slot - 1)),
                _ => i = (i + 1) & mask,
            }
        }
        let at = u32::try_from(self.spans.len()).ok()?;
        let start = u32::try_from(self.arena.len()).ok()?;
        let len = u32::try_from(s.len()).ok()?;
        self.arena.extend_from_slice(s.as_bytes());
        self.spans.push((start, len));
        self.slots[i] = at + 1;
        Some(u64::from(at))
    }

    // Entries number at most MAX_STRINGS, and the slot index takes high bits
    // of the hash on purpose: the casts lose nothing.
    #[allow(clippy::cast_possible_truncation)]
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(64);
        self.slots.clear();
        self.slots.resize(size, 0);
        let mask = size - 1;
        for at in 0..self.spans.len() {
            let mut i = (hash(self.entry(at as u32)) >> 40) as usize & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = at as u32 + 1;
        }
    }

    /// Writes the name table, then the string table.
    pub(crate) fn write_table(&self, out: &mut Vec<u8>) {
        put_varint(out, self.names.len() as u64);
        for name in &self.names {
            put_varint(out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
        }
        put_varint(out, self.spans.len() as u64);
        for at in 0..self.spans.len() {
            #[allow(clippy::cast_possible_truncation)] // at most MAX_STRINGS entries
            let entry = self.entry(at as u32);
            put_varint(out, entry.len() as u64);
            out.extend_from_slice(entry);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.names.clear();
        self.hint = 0;
        self.arena.clear();
        self.spans.clear();
        self.slots.fill(0);
    }
}

fn read_strings<'a>(raw: &mut &'a [u8], what: &str) -> Result<Vec<&'a str>, CodecError> {
    let count = take_varint(raw).ok_or_else(|| corrupt(what))?;
    let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(raw.len()));
    for _ in 0..count {
        let len = take_varint(raw).ok_or_else(|| corrupt(what))?;
        let len = usize::try_from(len).map_err(|_| corrupt(what))?;
        if len > raw.len() {
            return Err(corrupt(what));
        }
        let (entry, rest) = raw.split_at(len);
        out.push(std::str::from_utf8(entry).map_err(|_| corrupt(what))?);
        *raw = rest;
    }
    Ok(out)
}

/// A frame's name and string tables, read.
#[derive(Debug, Default)]
pub(crate) struct Tables<'a> {
    names: Vec<&'a str>,
    strings: Vec<&'a str>,
}

/// Reads a frame's tables; returns them and the bytes after them.
pub(crate) fn read_table(mut raw: &[u8]) -> Result<(Tables<'_>, &[u8]), CodecError> {
    let names = read_strings(&mut raw, "name table")?;
    let strings = read_strings(&mut raw, "string table")?;
    Ok((Tables { names, strings }, raw))
}

/// Serialises one value into `out`, naming fields through `keys`.
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
    keys: &mut Keys,
) -> Result<(), CodecError> {
    value.serialize(&mut Encoder {
        out,
        keys,
        depth: 0,
    })
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
    keys: &'a mut Keys,
    /// Containers and variants open, counted as the decoder counts them:
    /// what is written can always be read back.
    depth: usize,
}

impl Encoder<'_> {
    fn enter(&mut self) -> Result<(), CodecError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CodecError(format!(
                "the value is nested more than {MAX_DEPTH} levels deep"
            )));
        }
        Ok(())
    }

    fn int(&mut self, v: i64) {
        if v >= 0 {
            self.out.push(UINT);
            put_varint(self.out, v as u64);
        } else {
            self.out.push(NINT);
            put_varint(self.out, !v as u64);
        }
    }

    fn key(&mut self, name: &'static str) {
        let r = self.keys.reference(name);
        put_varint(self.out, r);
    }

    fn bytes(&mut self, tag: u8, b: &[u8]) {
        self.out.push(tag);
        put_varint(self.out, b.len() as u64);
        self.out.extend_from_slice(b);
    }
}

impl<'a, 'b> ser::Serializer for &'a mut Encoder<'b> {
    type Ok = ();
    type Error = CodecError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bool(self, v: bool) -> Result<(), CodecError> {
        self.out.push(if v { TRUE } else { FALSE });
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), CodecError> {
        self.int(i64::from(v));
        Ok(())
    }

    fn serialize_i16(self, v: i16) -> Result<(), CodecError> {
        self.int(i64::from(v));
        Ok(())
    }

    fn serialize_i32(self, v: i32) -> Result<(), CodecError> {
        self.int(i64::from(v));
        Ok(())
    }

    fn serialize_i64(self, v: i64) -> Result<(), CodecError> {
        self.int(v);
        Ok(())
    }

    fn serialize_i128(self, v: i128) -> Result<(), CodecError> {
        match i64::try_from(v) {
            Ok(v) => self.int(v),
            Err(_) => {
                self.out.push(I128);
                self.out.extend_from_slice(&v.to_le_bytes());
            }
        }
        Ok(())
    }

    fn serialize_u8(self, v: u8) -> Result<(), CodecError> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u16(self, v: u16) -> Result<(), CodecError> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u32(self, v: u32) -> Result<(), CodecError> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u64(self, v: u64) -> Result<(), CodecError> {
        self.out.push(UINT);
        put_varint(self.out, v);
        Ok(())
    }

    fn serialize_u128(self, v: u128) -> Result<(), CodecError> {
        match u64::try_from(v) {
            Ok(v) => self.serialize_u64(v),
            Err(_) => {
                self.out.push(U128);
                self.out.extend_from_slice(&v.to_le_bytes());
                Ok(())
            }
        }
    }

    fn serialize_f32(self, v: f32) -> Result<(), CodecError> {
        self.out.push(F32);
        self.out.extend_from_slice(&v.to_bits().to_le_bytes());
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), CodecError> {
        self.out.push(F64);
        self.out.extend_from_slice(&v.to_bits().to_le_bytes());
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), CodecError> {
        self.bytes(STR, v.encode_utf8(&mut [0; 4]).as_bytes());
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), CodecError> {
        match self.keys.string(v) {
            Some(at) => {
                self.out.push(STR_REF);
                put_varint(self.out, at);
            }
            None => self.bytes(STR, v.as_bytes()),
        }
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), CodecError> {
        self.bytes(BYTES, v);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), CodecError> {
        self.out.push(NULL);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), CodecError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), CodecError> {
        self.out.push(NULL);
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), CodecError> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), CodecError> {
        self.out.push(UNIT_VARIANT);
        self.key(variant);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), CodecError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), CodecError> {
        self.out.push(VARIANT);
        self.key(variant);
        self.enter()?;
        value.serialize(&mut *self)?;
        self.depth -= 1;
        Ok(())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self, CodecError> {
        self.enter()?;
        self.out.push(SEQ);
        Ok(self)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self, CodecError> {
        self.serialize_seq(None)
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, CodecError> {
        self.serialize_seq(None)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self, CodecError> {
        self.out.push(VARIANT);
        self.key(variant);
        self.enter()?;
        self.serialize_seq(None)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self, CodecError> {
        self.enter()?;
        self.out.push(MAP);
        Ok(self)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, CodecError> {
        self.enter()?;
        self.out.push(STRUCT);
        Ok(self)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self, CodecError> {
        self.out.push(VARIANT);
        self.key(variant);
        self.enter()?;
        self.enter()?;
        self.out.push(STRUCT);
        Ok(self)
    }
}

macro_rules! seq_like {
    ($($trait:ident :: $method:ident, $levels:literal);*) => {$(
        impl ser::$trait for &mut Encoder<'_> {
            type Ok = ();
            type Error = CodecError;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
                value.serialize(&mut **self)
            }

            fn end(self) -> Result<(), CodecError> {
                self.out.push(END);
                self.depth -= $levels;
                Ok(())
            }
        }
    )*};
}

seq_like!(
    SerializeSeq::serialize_element, 1;
    SerializeTuple::serialize_element, 1;
    SerializeTupleStruct::serialize_field, 1;
    SerializeTupleVariant::serialize_field, 2
);

impl ser::SerializeMap for &mut Encoder<'_> {
    type Ok = ();
    type Error = CodecError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), CodecError> {
        key.serialize(&mut **self)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
        value.serialize(&mut **self)
    }

    fn end(self) -> Result<(), CodecError> {
        self.out.push(END);
        self.depth -= 1;
        Ok(())
    }
}

macro_rules! struct_like {
    ($($trait:ident, $levels:literal);*) => {$(
        impl ser::$trait for &mut Encoder<'_> {
            type Ok = ();
            type Error = CodecError;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), CodecError> {
                self.key(key);
                value.serialize(&mut **self)
            }

            fn end(self) -> Result<(), CodecError> {
                put_varint(self.out, END_STRUCT);
                self.depth -= $levels;
                Ok(())
            }
        }
    )*};
}

struct_like!(SerializeStruct, 1; SerializeStructVariant, 2);

/// Decodes values of one frame.
pub(crate) struct Decoder<'de, 'k> {
    input: &'de [u8],
    tables: &'k Tables<'de>,
    depth: usize,
}

impl<'de, 'k> Decoder<'de, 'k> {
    /// A decoder of one record's bytes, with its frame's tables.
    pub(crate) fn new(input: &'de [u8], tables: &'k Tables<'de>) -> Self {
        Self {
            input,
            tables,
            depth: 0,
        }
    }

    fn shared(&mut self) -> Result<&'de str, CodecError> {
        let at = self.varint()?;
        usize::try_from(at)
            .ok()
            .and_then(|at| self.tables.strings.get(at).copied())
            .ok_or_else(|| corrupt("string reference out of the table"))
    }

    fn peek(&self) -> Result<u8, CodecError> {
        self.input
            .first()
            .copied()
            .ok_or_else(|| corrupt("value cut short"))
    }

    fn tag(&mut self) -> Result<u8, CodecError> {
        let (&t, rest) = self
            .input
            .split_first()
            .ok_or_else(|| corrupt("value cut short"))?;
        self.input = rest;
        Ok(t)
    }

    fn varint(&mut self) -> Result<u64, CodecError> {
        take_varint(&mut self.input).ok_or_else(|| corrupt("number cut short"))
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let (head, rest) = self
            .input
            .split_first_chunk::<N>()
            .ok_or_else(|| corrupt("value cut short"))?;
        self.input = rest;
        Ok(*head)
    }

    fn slice(&mut self) -> Result<&'de [u8], CodecError> {
        let len = usize::try_from(self.varint()?).map_err(|_| corrupt("length"))?;
        if len > self.input.len() {
            return Err(corrupt("length past the record end"));
        }
        let (head, rest) = self.input.split_at(len);
        self.input = rest;
        Ok(head)
    }

    fn str(&mut self) -> Result<&'de str, CodecError> {
        std::str::from_utf8(self.slice()?).map_err(|_| corrupt("string not UTF-8"))
    }

    fn key(&mut self, reference: u64) -> Result<&'de str, CodecError> {
        reference
            .checked_sub(1)
            .and_then(|at| usize::try_from(at).ok())
            .and_then(|at| self.tables.names.get(at).copied())
            .ok_or_else(|| corrupt("name reference out of the table"))
    }

    fn enter(&mut self) -> Result<(), CodecError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(corrupt("nested too deep"));
        }
        Ok(())
    }

    /// Skips the rest of a sequence or map up to and including its end.
    fn skip_to_end(&mut self) -> Result<(), CodecError> {
        while self.peek()? != END {
            self.skip()?;
        }
        self.input = &self.input[1..];
        Ok(())
    }

    /// Skips one value.
    fn skip(&mut self) -> Result<(), CodecError> {
        de::Deserializer::deserialize_ignored_any(&mut *self, de::IgnoredAny).map(|_| ())
    }
}

impl<'de> de::Deserializer<'de> for &mut Decoder<'de, '_> {
    type Error = CodecError;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        match self.tag()? {
            NULL => visitor.visit_unit(),
            FALSE => visitor.visit_bool(false),
            TRUE => visitor.visit_bool(true),
            UINT => visitor.visit_u64(self.varint()?),
            NINT => {
                let n = self.varint()?;
                let n = i64::try_from(n).map_err(|_| corrupt("negative integer"))?;
                visitor.visit_i64(!n)
            }
            U128 => visitor.visit_u128(u128::from_le_bytes(self.take()?)),
            I128 => visitor.visit_i128(i128::from_le_bytes(self.take()?)),
            F32 => visitor.visit_f32(f32::from_bits(u32::from_le_bytes(self.take()?))),
            F64 => visitor.visit_f64(f64::from_bits(u64::from_le_bytes(self.take()?))),
            STR => visitor.visit_borrowed_str(self.str()?),
            STR_REF => visitor.visit_borrowed_str(self.shared()?),
            BYTES => visitor.visit_borrowed_bytes(self.slice()?),
            SEQ => {
                self.enter()?;
                let value = visitor.visit_seq(Seq { de: &mut *self })?;
                self.skip_to_end()?;
                self.depth -= 1;
                Ok(value)
            }
            MAP => {
                self.enter()?;
                let value = visitor.visit_map(Map { de: &mut *self })?;
                self.skip_to_end()?;
                self.depth -= 1;
                Ok(value)
            }
            STRUCT => {
                self.enter()?;
                let value = visitor.visit_map(Struct {
                    de: &mut *self,
                    done: false,
                })?;
                self.depth -= 1;
                Ok(value)
            }
            // Seen as their usual self-describing forms (a name, or a map
            // of one entry), as buffered (untagged, flattened) types expect.
            UNIT_VARIANT => {
                let r = self.varint()?;
                visitor.visit_borrowed_str(self.key(r)?)
            }
            VARIANT => {
                let r = self.varint()?;
                let name = self.key(r)?;
                self.enter()?;
                let value = visitor.visit_map(OneEntry {
                    de: &mut *self,
                    name: Some(name),
                })?;
                self.depth -= 1;
                Ok(value)
            }
            other => Err(CodecError(format!(
                "corrupt value: unknown tag {other:#04x}"
            ))),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        if self.peek()? == NULL {
            self.input = &self.input[1..];
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        match self.tag()? {
            UNIT_VARIANT => {
                let r = self.varint()?;
                let name = self.key(r)?;
                visitor.visit_enum(name.into_deserializer())
            }
            VARIANT => {
                let r = self.varint()?;
                let name = self.key(r)?;
                self.enter()?;
                let value = visitor.visit_enum(Variant {
                    de: &mut *self,
                    name,
                })?;
                self.depth -= 1;
                Ok(value)
            }
            STR => {
                let name = self.str()?;
                visitor.visit_enum(name.into_deserializer())
            }
            STR_REF => {
                let name = self.shared()?;
                visitor.visit_enum(name.into_deserializer())
            }
            other => Err(CodecError(format!(
                "corrupt value: tag {other:#04x} where an enum was expected"
            ))),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        match self.peek()? {
            UNIT_VARIANT => {
                self.input = &self.input[1..];
                self.varint()?;
                visitor.visit_unit()
            }
            VARIANT => {
                self.input = &self.input[1..];
                self.varint()?;
                self.enter()?;
                self.skip()?;
                self.depth -= 1;
                visitor.visit_unit()
            }
            STR | BYTES => {
                self.input = &self.input[1..];
                self.slice()?;
                visitor.visit_unit()
            }
            STR_REF => {
                self.input = &self.input[1..];
                self.varint()?;
                visitor.visit_unit()
            }
            _ => self.deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct Seq<'a, 'de, 'k> {
    de: &'a mut Decoder<'de, 'k>,
}

impl<'de> de::SeqAccess<'de> for Seq<'_, 'de, '_> {
    type Error = CodecError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, CodecError> {
        if self.de.peek()? == END {
            return Ok(None);
        }
        seed.deserialize(&mut *self.de).map(Some)
    }
}

struct Map<'a, 'de, 'k> {
    de: &'a mut Decoder<'de, 'k>,
}

impl<'de> de::MapAccess<'de> for Map<'_, 'de, '_> {
    type Error = CodecError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, CodecError> {
        if self.de.peek()? == END {
            return Ok(None);
        }
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, CodecError> {
        seed.deserialize(&mut *self.de)
    }
}

struct Struct<'a, 'de, 'k> {
    de: &'a mut Decoder<'de, 'k>,
    done: bool,
}

impl<'de> de::MapAccess<'de> for Struct<'_, 'de, '_> {
    type Error = CodecError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, CodecError> {
        if self.done {
            return Ok(None);
        }
        let r = self.de.varint()?;
        if r == END_STRUCT {
            self.done = true;
            return Ok(None);
        }
        let name = self.de.key(r)?;
        seed.deserialize(de::value::BorrowedStrDeserializer::<CodecError>::new(name))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, CodecError> {
        seed.deserialize(&mut *self.de)
    }
}

/// An enum variant with content, seen as a map of one entry.
struct OneEntry<'a, 'de, 'k> {
    de: &'a mut Decoder<'de, 'k>,
    name: Option<&'de str>,
}

impl<'de> de::MapAccess<'de> for OneEntry<'_, 'de, '_> {
    type Error = CodecError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, CodecError> {
        match self.name.take() {
            Some(name) => seed
                .deserialize(de::value::BorrowedStrDeserializer::<CodecError>::new(name))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, CodecError> {
        seed.deserialize(&mut *self.de)
    }
}

struct Variant<'a, 'de, 'k> {
    de: &'a mut Decoder<'de, 'k>,
    name: &'de str,
}

impl<'de, 'a, 'k> de::EnumAccess<'de> for Variant<'a, 'de, 'k> {
    type Error = CodecError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), CodecError> {
        let v = seed.deserialize(de::value::BorrowedStrDeserializer::<CodecError>::new(
            self.name,
        ))?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de, '_> {
    type Error = CodecError;

    fn unit_variant(self) -> Result<(), CodecError> {
        de::Deserialize::deserialize(&mut *self.de)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, CodecError> {
        seed.deserialize(&mut *self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, CodecError> {
        de::Deserializer::deserialize_any(&mut *self.de, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        de::Deserializer::deserialize_any(&mut *self.de, visitor)
    }
}
