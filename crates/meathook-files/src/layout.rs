//! The object path layout every file destination shares.
//!
//! **Architecture invariant:** a path is a pure function of the pipeline, the
//! window's start and the batch's identity — the spool's sequence range when
//! the batch has one, otherwise a hash of the encoded bytes — and of the file
//! extension. Replaying a batch targets the same path whatever the encoder
//! version; two different batches never share a path.
//!
//! ```text
//! {prefix}/data/{pipeline}/{YYYY-MM-DD}/{HHMMSS}Z-b{spool}-{first}-{last}.{ext}   batch from a spool
//! {prefix}/data/{pipeline}/{YYYY-MM-DD}/{HHMMSS}Z-b{first}-{last}.{ext}           from a segment without incarnation
//! {prefix}/data/{pipeline}/{YYYY-MM-DD}/{HHMMSS}Z-h{sha256[..32]}.{ext}           batch without identity
//! {prefix}/data/{pipeline}/{YYYY-MM-DD}/{YYYY-MM-DD}-c{sha256[..32]}.{ext}         a compacted file (a day's parts)
//! {prefix}/data/{pipeline}/{YYYY-MM-DD}/_compacted.json                         what the compacted file covers
//! ```
//!
//! `spool` is the spool incarnation that wrote the batch (16 hex digits), so
//! a spool that starts again from sequence 0 on a fresh volume never names a
//! file like one an earlier spool delivered; `first` and `last` are
//! zero-padded to 20 digits ([`BatchId`]'s `Display`), so the names of one
//! incarnation sort by sequence. The date and time are the window's start in
//! UTC. The pipeline name is escaped by [`pipeline_segment`], injectively, so
//! that no two pipelines share a folder, and so that no part of a generated
//! path is read by the dataset viewer as a split name (`train`, `test`,
//! `validation`, `dev`, `eval`, … see [`SPLIT_KEYWORDS`]). Partition values are
//! not hive-style (`key=value`): the dataset viewer would not turn them into
//! columns anyway.

use std::fmt::Write as _;

pub use meathook_core::name::{
    SPLIT_KEYWORDS, contains_split_keyword, is_split_keyword, pipeline_from_segment,
    pipeline_segment,
};
use meathook_core::{BatchId, WindowMeta};
use sha2::{Digest, Sha256};

/// The folder under the destination's prefix that holds every data file.
pub const DATA_DIR: &str = "data";

/// How a batch is identified in its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchName<'a> {
    /// The durable layer's sequence range: stable across replays and encoder
    /// versions.
    Sequence(BatchId),
    /// The SHA-256 of the encoded bytes, for batches without a sequence range.
    Content(&'a [u8; 32]),
}

/// How a destination's folders are named: the pipeline, then the UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// `data/{pipeline}/{YYYY-MM-DD}/`: what the dataset viewer and
    /// `datasets` read best (the default).
    #[default]
    Folders,
    /// `data/pipeline={pipeline}/date={YYYY-MM-DD}/`: Hive-style
    /// partitions, which DuckDB (`hive_partitioning`), Spark and pyarrow
    /// read as `pipeline` and `date` columns and prune by. The dataset
    /// viewer shows the folders but makes no columns of them.
    Hive,
}

impl Layout {
    /// The folder of `pipeline`'s files, relative to the prefix.
    pub fn pipeline_folder(self, pipeline: &str) -> String {
        match self {
            Self::Folders => format!("{DATA_DIR}/{}", pipeline_segment(pipeline)),
            Self::Hive => format!("{DATA_DIR}/pipeline={}", pipeline_segment(pipeline)),
        }
    }

    /// The folder of one pipeline's files for one UTC day, relative to the
    /// prefix. Compaction works a folder at a time.
    pub fn day_folder(self, pipeline: &str, date: time::Date) -> String {
        let (y, m, d) = (date.year(), u8::from(date.month()), date.day());
        let day = match self {
            Self::Folders => format!("{y:04}-{m:02}-{d:02}"),
            Self::Hive => format!("date={y:04}-{m:02}-{d:02}"),
        };
        format!("{}/{day}", self.pipeline_folder(pipeline))
    }

    /// What every file of `window` starts with, relative to the prefix;
    /// the batch's name and the extension follow.
    pub fn window_prefix(self, window: &WindowMeta) -> String {
        let start = window.start.to_offset(time::UtcOffset::UTC);
        let (hh, mm, ss) = (start.hour(), start.minute(), start.second());
        format!(
            "{}/{hh:02}{mm:02}{ss:02}Z-",
            self.day_folder(&window.pipeline, start.date())
        )
    }

    /// The path of one batch's file, relative to the destination's prefix.
    pub fn object_path(self, window: &WindowMeta, batch: BatchName<'_>, extension: &str) -> String {
        let mut path = self.window_prefix(window);
        match batch {
            BatchName::Sequence(id) => {
                let _ = write!(path, "b{id}");
            }
            BatchName::Content(hash) => {
                path.push('h');
                for byte in &hash[..16] {
                    let _ = write!(path, "{byte:02x}");
                }
            }
        }
        path.push('.');
        path.push_str(&pipeline_segment(extension));
        path
    }

    /// The glob matching every file of `pipeline` with `extension`,
    /// relative to the prefix: what a dataset card's `configs:` entry
    /// lists.
    pub fn pipeline_glob(self, pipeline: &str, extension: &str) -> String {
        format!(
            "{}/**/*.{}",
            self.pipeline_folder(pipeline),
            pipeline_segment(extension)
        )
    }
}

/// The date of a day folder's name, in either layout (`YYYY-MM-DD` or
/// `date=YYYY-MM-DD`).
pub fn day_of_folder(name: &str) -> Option<time::Date> {
    let name = name.strip_prefix("date=").unwrap_or(name);
    let mut parts = name.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if (y.len(), m.len(), d.len()) != (4, 2, 2) {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    time::Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

/// The pipeline a pipeline folder's name stands for, in either layout
/// (`{segment}` or `pipeline={segment}`).
pub fn pipeline_of_folder(name: &str) -> Option<String> {
    pipeline_from_segment(name.strip_prefix("pipeline=").unwrap_or(name))
}

/// The path of one batch's file, relative to the destination's prefix:
/// `data/{pipeline}/{date}/{HHMMSS}Z-{batch}.{extension}` (the default
/// [`Layout`]).
pub fn object_path(window: &WindowMeta, batch: BatchName<'_>, extension: &str) -> String {
    Layout::Folders.object_path(window, batch, extension)
}

/// What every file of `window` starts with, relative to the prefix:
/// `data/{pipeline}/{date}/{HHMMSS}Z-` (the default [`Layout`]); the
/// batch's name and the extension follow. For showing where a batch will
/// land before its identity is known (a spool numbers it when it is
/// written).
pub fn window_prefix(window: &WindowMeta) -> String {
    Layout::Folders.window_prefix(window)
}

/// The glob matching every file of `pipeline` with `extension`, relative to
/// the prefix, in the default [`Layout`]: what a dataset card's `configs:`
/// entry lists.
pub fn pipeline_glob(pipeline: &str, extension: &str) -> String {
    Layout::Folders.pipeline_glob(pipeline, extension)
}

/// The folder of one pipeline's files for one UTC day, relative to the
/// prefix, in the default [`Layout`]: `data/{pipeline}/{YYYY-MM-DD}`.
pub fn day_folder(pipeline: &str, date: time::Date) -> String {
    Layout::Folders.day_folder(pipeline, date)
}

/// The name of a compacted file in its day folder:
/// `{YYYY-MM-DD}-c{digest}.{extension}`, where the digest is
/// [`content_hash`] of the names of the parts it covers, one per line, in
/// order (its first 16 bytes in hex). A pure function of what it covers: a
/// compaction run again over the same parts names the same file, and one
/// that absorbs a late part names a new one.
pub fn compacted_name(date: time::Date, parts: &[&str], extension: &str) -> String {
    let (y, m, d) = (date.year(), u8::from(date.month()), date.day());
    let hash = content_hash(parts.join("\n").as_bytes());
    let mut name = format!("{y:04}-{m:02}-{d:02}-c");
    for byte in &hash[..16] {
        let _ = write!(name, "{byte:02x}");
    }
    name.push('.');
    name.push_str(&pipeline_segment(extension));
    name
}

/// Whether `name` (a file name in a day folder) is a compacted file's, as
/// [`compacted_name`] gives them.
pub fn is_compacted_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() > 12
        && bytes[..10].iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
        && &bytes[10..12] == b"-c"
}

/// The SHA-256 of `bytes`, as the layout names content-identified batches.
pub fn content_hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    fn unescape(segment: &str) -> Vec<u8> {
        let bytes = segment.as_bytes();
        if segment == "+" {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'+' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }

    #[test]
    fn the_hive_layout_names_its_partitions_and_both_layouts_read_back() {
        let window = WindowMeta::containing(
            "air temperature",
            datetime!(2026-11-23 10:56 UTC),
            std::time::Duration::from_secs(3600),
        );
        let id = BatchId::legacy(7, 42);
        assert_eq!(
            Layout::Hive.object_path(&window, BatchName::Sequence(id), "parquet"),
            "data/pipeline=air+20temperature/date=2026-11-23/100000Z-b00000000000000000007-00000000000000000042.parquet"
        );
        assert_eq!(
            Layout::Folders.object_path(&window, BatchName::Sequence(id), "parquet"),
            object_path(&window, BatchName::Sequence(id), "parquet")
        );
        let date = time::macros::date!(2026 - 11 - 23);
        assert_eq!(
            Layout::Hive.day_folder("air", date),
            "data/pipeline=air/date=2026-11-23"
        );
        assert_eq!(day_folder("air", date), "data/air/2026-11-23");
        assert_eq!(
            Layout::Hive.pipeline_glob("air", "parquet"),
            "data/pipeline=air/**/*.parquet"
        );
        for layout in [Layout::Folders, Layout::Hive] {
            let folder = layout.day_folder("air temperature", date);
            let mut parts = folder.rsplit('/');
            assert_eq!(day_of_folder(parts.next().unwrap()), Some(date));
            assert_eq!(
                pipeline_of_folder(parts.next().unwrap()).as_deref(),
                Some("air temperature")
            );
        }
        assert_eq!(day_of_folder("2026-13-01"), None);
        assert_eq!(day_of_folder("day=2026-11-23"), None);
    }

    #[test]
    fn paths_are_partitioned_by_pipeline_and_date() {
        let window = WindowMeta::containing(
            "air_temperature",
            datetime!(2026-11-23 10:56 UTC),
            std::time::Duration::from_secs(3600),
        );
        let id = BatchId::new(0x00c0_ffee_0000_0001, 7, 42);
        assert_eq!(
            object_path(&window, BatchName::Sequence(id), "parquet"),
            "data/air_temperature/2026-11-23/100000Z-b00c0ffee00000001-00000000000000000007-00000000000000000042.parquet"
        );
        // Two spools that both start at sequence 0 never share a path.
        assert_ne!(
            object_path(
                &window,
                BatchName::Sequence(BatchId::new(1, 0, 9)),
                "parquet"
            ),
            object_path(
                &window,
                BatchName::Sequence(BatchId::new(2, 0, 9)),
                "parquet"
            ),
        );
        // Batches of spools that recorded no incarnation keep their names.
        assert_eq!(
            object_path(
                &window,
                BatchName::Sequence(BatchId::legacy(7, 42)),
                "parquet"
            ),
            "data/air_temperature/2026-11-23/100000Z-b00000000000000000007-00000000000000000042.parquet"
        );
        let hash = content_hash(b"abc");
        assert_eq!(
            object_path(&window, BatchName::Content(&hash), "jsonl"),
            "data/air_temperature/2026-11-23/100000Z-hba7816bf8f01cfea414140de5dae2223.jsonl"
        );
        assert_eq!(
            pipeline_glob("air_temperature", "parquet"),
            "data/air_temperature/**/*.parquet"
        );
        assert_eq!(
            window_prefix(&WindowMeta::containing(
                "test",
                datetime!(2026-11-23 23:59:58.5 UTC),
                std::time::Duration::from_secs(1),
            )),
            "data/tes+74/2026-11-23/235958Z-"
        );
    }

    #[test]
    fn split_keywords_are_escaped() {
        assert_eq!(pipeline_segment("test"), "tes+74");
        assert_eq!(pipeline_segment("Train-1"), "Trai+6E-1");
        assert_eq!(pipeline_segment("my_dev.eval"), "my_de+76+2Eeva+6C");
        assert_eq!(pipeline_segment("contest"), "contest");
        assert_eq!(pipeline_segment("a/b c"), "a+2Fb+20c");
        assert_eq!(pipeline_segment(""), "+");
        assert_eq!(pipeline_segment(".."), "+2E+2E");
        assert!(!contains_split_keyword(&pipeline_segment("test_train")));
        assert!(contains_split_keyword("data/test/x.parquet"));
        // An escape's hex letters join the letters after it: "=" is "+3D",
        // and "D" with "Ev" would read "dev".
        let joined = pipeline_segment("=Ev\u{102e0}");
        assert!(!contains_split_keyword(&joined), "{joined}");
        assert!(
            !contains_split_keyword(&pipeline_segment("\u{de}va")),
            "+C3+9E then va"
        );
    }

    proptest! {
        // The escape is injective (it can be undone), and no generated path
        // has a split keyword. (That object stores take every generated
        // path is checked in meathook-parquet, which has `object_store`.)
        #[test]
        fn segments_are_reversible_and_keyword_free(
            name in prop_oneof![
                "[a-zA-Z0-9_./ +-]{0,24}",
                "(test|train|dev|eval|val|x|_|-|1|/){0,6}",
                any::<String>(),
            ],
            incarnation in any::<Option<u64>>(),
            first in any::<u64>(),
            last in any::<u64>(),
        ) {
            let segment = pipeline_segment(&name);
            prop_assert_eq!(unescape(&segment), name.as_bytes().to_vec());
            let window = WindowMeta::instant(name.as_str(), datetime!(2026-11-23 10:56:13 UTC));
            let path = object_path(&window, BatchName::Sequence(BatchId { incarnation, first, last }), "parquet");
            prop_assert!(!contains_split_keyword(&path), "{}", path);
        }
    }
}
