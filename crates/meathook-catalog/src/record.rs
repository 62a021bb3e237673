//! One manifest line: a delivery record in JSON.

use meathook_core::Delivery;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The manifest's newest format version, written into every line as
/// `"v"`: 1 for a batch's file (the format unchanged since version 1), 2
/// for a compacted file's, which adds `replaces`.
pub const RECORD_VERSION: u32 = 2;

/// A [`Delivery`] as one JSON line of the manifest (and one row of the
/// database). Times are RFC 3339 in UTC; `sha256` is lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeliveryRecord {
    /// Format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The pipeline.
    pub pipeline: String,
    /// First instant of the window (inclusive).
    #[serde(with = "time::serde::rfc3339")]
    pub window_start: OffsetDateTime,
    /// First instant after the window (exclusive).
    #[serde(with = "time::serde::rfc3339")]
    pub window_end: OffsetDateTime,
    /// The destination: directory, store URL or repository.
    pub destination: String,
    /// The file's path relative to the destination.
    pub path: String,
    /// Records in the file.
    pub rows: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// The destination's commit id, if it has commits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// When the sink saw the file in place.
    #[serde(with = "time::serde::rfc3339")]
    pub delivered_at: OffsetDateTime,
    /// Attempts the delivering process made.
    pub attempts: u32,
    /// For a compacted file (version 2): the files it replaced, which the
    /// compaction deleted. Empty for a batch's file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<String>,
    /// Not in the manifest: filled by the catalog's `list` when a later
    /// compaction replaced this file with the file at this path (which then
    /// holds its rows; the file itself is deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compacted_into: Option<String>,
}

impl From<&Delivery> for DeliveryRecord {
    fn from(d: &Delivery) -> Self {
        Self {
            v: if d.replaces.is_empty() { 1 } else { 2 },
            pipeline: d.pipeline.clone(),
            window_start: d.window_start,
            window_end: d.window_end,
            destination: d.destination.clone(),
            path: d.path.clone(),
            rows: d.rows,
            bytes: d.bytes,
            sha256: d.sha256_hex(),
            commit: d.commit.clone(),
            delivered_at: d.delivered_at,
            attempts: d.attempts,
            replaces: d.replaces.clone(),
            compacted_into: None,
        }
    }
}

impl DeliveryRecord {
    /// The key the catalog deduplicates on: (destination, path).
    pub fn key(&self) -> (&str, &str) {
        (&self.destination, &self.path)
    }

    /// Whether this is a compacted file's record: a file that holds the
    /// rows of others, which `gaps` and `totals` do not count again.
    pub fn is_compaction(&self) -> bool {
        !self.replaces.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use meathook_core::WindowMeta;

    use super::*;

    #[test]
    fn a_line_round_trips_and_names_its_version() {
        let window = WindowMeta::containing(
            "air",
            OffsetDateTime::UNIX_EPOCH + Duration::from_secs(7200),
            Duration::from_secs(3600),
        );
        let d = Delivery::new(&window, "s3://b/p", "data/air/x.parquet", 5, 99, [1; 32])
            .with_commit("abc")
            .with_attempts(2);
        let record = DeliveryRecord::from(&d);
        let line = serde_json::to_string(&record).unwrap();
        assert!(
            line.starts_with(r#"{"v":1,"pipeline":"air","window_start":"1970-01-01T02:00:00Z""#),
            "{line}"
        );
        let back: DeliveryRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, record);
        assert_eq!(back.sha256, "01".repeat(32));
        assert_eq!(back.commit.as_deref(), Some("abc"));
    }
}
