//! What a compacted file covers: the record, kept beside it in its day
//! folder, of the parts it replaced.
//!
//! Compaction turns a day folder's parts (one file per batch) into one
//! file, and deletes the parts. A batch delivered again after that (a
//! spool replaying after a crash, a restart) must not land as a new part
//! beside the compacted file, which already holds its rows: before it
//! publishes a part whose name is free, a sink reads the folder's
//! [`COVERAGE_FILE`] and, if the name is covered, compares the bytes it
//! would have written with the part's recorded SHA-256 (a replay encodes
//! the same records into the same bytes). Same bytes: the batch is already
//! there. Other bytes: a conflict, as for a part that is still in place.
//!
//! The record is written into the folder together with the compacted file
//! (in the same swap or commit), so a reader or a sink never sees one
//! without the other. A part whose name is not covered is new: it lands as
//! a part, and the next compaction of the folder absorbs it.

use serde::{Deserialize, Serialize};

/// The file, in a day folder, that says what its compacted file covers.
pub const COVERAGE_FILE: &str = "_compacted.json";

/// The format version written.
pub const COVERAGE_VERSION: u32 = 1;

/// The largest coverage file read (a day of one-minute windows, each
/// delivered by several restarts, is far below it).
pub const MAX_COVERAGE_BYTES: u64 = 16 << 20;

/// A day folder's compacted file and the parts it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// The format version ([`COVERAGE_VERSION`]).
    pub version: u32,
    /// The compacted file's name, in the same folder.
    pub file: String,
    /// Its SHA-256, in hex.
    pub sha256: String,
    /// Its rows: the sum of the parts'.
    pub rows: u64,
    /// Its length in bytes.
    pub bytes: u64,
    /// Every part it holds, in the order of its rows.
    pub parts: Vec<CoveredPart>,
    /// The files the compaction that wrote it replaced (and deleted): the
    /// parts it absorbed and the folder's previous compacted file, if any.
    #[serde(default)]
    pub replaced: Vec<String>,
}

/// One part a compacted file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoveredPart {
    /// Its file name, in the same folder.
    pub name: String,
    /// The SHA-256 of its bytes, in hex.
    pub sha256: String,
    /// Its rows.
    pub rows: u64,
    /// Its length in bytes.
    pub bytes: u64,
}

/// Why a coverage file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoverageError {
    /// Not the JSON this module writes.
    #[error("not a compaction record: {0}")]
    Malformed(#[from] serde_json::Error),
    /// Written by a newer meathook.
    #[error("compaction record version {found}, newer than this build reads ({COVERAGE_VERSION})")]
    Version {
        /// The version in the file.
        found: u32,
    },
}

impl Coverage {
    /// The covered part called `name`.
    pub fn part(&self, name: &str) -> Option<&CoveredPart> {
        self.parts.iter().find(|p| p.name == name)
    }

    /// The record as the file holds it.
    pub fn to_json(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec_pretty(self).unwrap_or_default();
        json.push(b'\n');
        json
    }

    /// Reads a record.
    ///
    /// # Errors
    ///
    /// [`CoverageError`] when `bytes` are not a record this build reads.
    pub fn from_json(bytes: &[u8]) -> Result<Self, CoverageError> {
        let coverage: Coverage = serde_json::from_slice(bytes)?;
        if coverage.version > COVERAGE_VERSION {
            return Err(CoverageError::Version {
                found: coverage.version,
            });
        }
        Ok(coverage)
    }
}

/// Whether the day folder called `name` may hold a compaction record:
/// compaction takes no day before it ends, so only folders of days before
/// today (UTC) may, and folders whose name is not a day, which are not
/// known. Sinks that pay a request to look for a record ask this first.
pub fn may_be_compacted(name: &str) -> bool {
    crate::layout::day_of_folder(name).is_none_or(day_has_ended)
}

/// Whether a day folder whose files are `names` is compacted with nothing
/// since: it holds its record and one compacted file, nothing else. A run
/// of compaction passes such a folder by without reading it.
pub fn settled(names: &[&str]) -> bool {
    names.len() == 2
        && names.contains(&COVERAGE_FILE)
        && names
            .iter()
            .any(|n| *n != COVERAGE_FILE && crate::layout::is_compacted_name(n))
}

/// Whether the day `date` ended at least `horizon` before `now`: a run of
/// compaction takes it.
pub fn due(date: time::Date, horizon: time::Duration, now: time::OffsetDateTime) -> bool {
    date.next_day()
        .is_some_and(|d| d.midnight().assume_utc() + horizon <= now)
}

/// Whether the UTC day `date` is over by this machine's clock: only then
/// is it compacted, since its parts may still be arriving until it ends.
pub fn day_has_ended(date: time::Date) -> bool {
    date < time::OffsetDateTime::now_utc().date()
}

/// Lower-case hex of `bytes`, as coverage records spell hashes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The 32 bytes `text` spells in hex, as [`hex`] writes them.
pub fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_a_newer_version_is_refused() {
        let coverage = Coverage {
            version: COVERAGE_VERSION,
            file: "2026-01-01-c00.parquet".into(),
            sha256: hex(&[0xab; 32]),
            rows: 3,
            bytes: 100,
            parts: vec![CoveredPart {
                name: "000000Z-b1-2.parquet".into(),
                sha256: hex(&[1; 32]),
                rows: 3,
                bytes: 50,
            }],
            replaced: vec!["000000Z-b1-2.parquet".into()],
        };
        let back = Coverage::from_json(&coverage.to_json()).unwrap();
        assert_eq!(back, coverage);
        assert!(back.part("000000Z-b1-2.parquet").is_some());
        assert!(back.part("000000Z-b3-4.parquet").is_none());
        let newer = Coverage {
            version: COVERAGE_VERSION + 1,
            ..coverage
        };
        assert!(matches!(
            Coverage::from_json(&newer.to_json()),
            Err(CoverageError::Version { .. })
        ));
        assert!(Coverage::from_json(b"{").is_err());
        assert_eq!(unhex(&hex(&[7; 32])), Some([7; 32]));
        assert_eq!(unhex("0"), None);
    }
}
