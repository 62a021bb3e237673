//! Compaction of a local dataset directory: each day folder's parts (one
//! parquet file per batch) into one file per pipeline and day.
//!
//! **Architecture invariant:** a reader that lists a day folder sees either
//! every part or the compacted file that holds their rows — never both,
//! never neither. The compacted file and its record
//! ([`meathook_files::coverage`]) are written, fsynced, into a staging
//! directory beside the scratch files (`{root}/.meathook-tmp/*.stage`);
//! under the folder's exclusive lock everything else in the folder (parts
//! that arrived meanwhile, files of other formats) is hard-linked into it,
//! and the staging directory and the folder are swapped in one
//! `renameat2(RENAME_EXCHANGE)`. The old folder, now at the staging path,
//! is deleted.
//!
//! Rows are copied in order — the previous compacted file first, then the
//! parts by name, which is by window start and then by batch identity —
//! re-encoded with the settings every meathook parquet file has, and
//! counted: the swap happens only if the new file has exactly the rows of
//! what it replaces. Every part must have one schema; a folder whose parts
//! differ is left as it is and reported.
//!
//! | a crash (or SIGKILL) … | leaves readers | the next start |
//! |---|---|---|
//! | before the swap | the parts | removes the staging directory |
//! | after the swap | the compacted file | removes the old folder (at the staging path) |
//!
//! A batch delivered again after its folder was compacted is recognised by
//! the sink from the record and not written twice (see
//! [`meathook_files::coverage`]); a genuinely new batch lands as a part,
//! which the next compaction absorbs. Compaction waits
//! [`DEFAULT_HORIZON`] after a day ends (configurable) so that replays
//! after a restart usually land before it.
//!
//! A reader that listed a folder before the swap and opens a part after it
//! finds the part gone (an error it can retry), never a duplicate. The swap
//! needs a filesystem that exchanges directories (ext4, XFS, btrfs, tmpfs):
//! elsewhere compaction refuses, naming the reason, and changes nothing.
//!
//! Everything here blocks: run it on a blocking thread.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow_schema::SchemaRef;
use meathook_core::{Deliveries, Delivery, DeliveryLogError, WindowMeta};
use meathook_files::coverage::{
    COVERAGE_FILE, COVERAGE_VERSION, Coverage, CoveredPart, hex, unhex,
};
use meathook_files::layout::{self, DATA_DIR};
use meathook_files::local::{self, FolderLock, SCRATCH_DIR, ScratchFile};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use time::{Date, OffsetDateTime};

use crate::parquet::{DEFAULT_ROW_GROUP_SIZE, writer_properties};

pub mod store;
use crate::store::Destination;
pub use store::StoreCompactor;

/// How long after a day ends its folder is compacted, unless configured.
pub const DEFAULT_HORIZON: time::Duration = time::Duration::hours(2);

/// The extension of the files compacted.
pub(crate) const EXTENSION: &str = "parquet";

/// A step of one folder's compaction, as [`Compactor::observe`] reports it
/// (for progress, and for tests that stop a process at each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// The compacted file and its record are written and fsynced in the
    /// staging directory.
    Staged,
    /// The folder is locked and everything else in it is linked into the
    /// staging directory.
    Linked,
    /// The folder now holds the compacted file (not yet made durable).
    Swapped,
    /// The swap is durable.
    Synced,
    /// The old folder is deleted.
    Removed,
}

/// What compacting one folder did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compacted {
    /// The folder, relative to the root (`data/{pipeline}/{date}`).
    pub folder: String,
    /// The compacted file's name.
    pub file: String,
    /// Files it replaced (parts, and the previous compacted file if any).
    pub replaced: usize,
    /// Parts it covers in all.
    pub parts: usize,
    /// Rows in it.
    pub rows: u64,
    /// Bytes of the files it replaced.
    pub bytes_before: u64,
    /// Its bytes.
    pub bytes_after: u64,
}

/// What a run over the whole directory did.
#[derive(Debug, Default)]
pub struct CompactionReport {
    /// The folders compacted.
    pub compacted: Vec<Compacted>,
    /// Folders left as they were: nothing to do (one file already), or too
    /// recent.
    pub unchanged: usize,
    /// Folders that failed, each with its error; the others went on.
    pub failed: Vec<(String, CompactError)>,
}

/// Why a folder was not compacted. Nothing in it changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompactError {
    /// A file operation failed.
    #[error("compaction could not {action} {path}: {source}")]
    Io {
        /// What it was doing.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A part is not readable parquet, or the compacted file could not be
    /// written.
    #[error("compaction could not read or write {path} as parquet: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The parquet library's message.
        message: String,
    },
    /// Two parts of the folder have different schemas.
    #[error(
        "the parts of {folder} have different schemas ({first} and {other}): compaction copies one schema; give a changed record type its own pipeline name"
    )]
    Schema {
        /// The folder.
        folder: String,
        /// A part with the first schema.
        first: String,
        /// A part with another.
        other: String,
    },
    /// Something in the folder compaction does not handle: a directory, a
    /// compacted file its record does not name.
    #[error("{path}: {reason}; move it away")]
    Unexpected {
        /// The entry.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A part it read disappeared or changed before the swap (another
    /// compaction of the same folder ran): nothing was swapped; run again.
    #[error("{folder} changed while it was compacted ({name}); nothing was swapped, run again")]
    Changed {
        /// The folder.
        folder: String,
        /// The file that changed.
        name: String,
    },
    /// The folder was compacted, but the catalog could not record it: the
    /// next [`Compactor::run`] records it again.
    #[error("compacted {path}, but the catalog could not record it (the next run will): {source}")]
    Report {
        /// The compacted file.
        path: String,
        /// The catalog's error.
        #[source]
        source: DeliveryLogError,
    },
    /// The compacted file's rows did not add up (a defect): nothing was
    /// swapped.
    #[error(
        "the compacted file for {folder} has {written} rows, its parts {expected}: nothing was swapped"
    )]
    Rows {
        /// The folder.
        folder: String,
        /// Rows in the parts.
        expected: u64,
        /// Rows written.
        written: u64,
    },
}

/// Compacts a local dataset directory (the root a
/// [`FileSink`](crate::FileSink) writes to): see the module docs.
pub struct Compactor {
    root: PathBuf,
    horizon: time::Duration,
    row_group_size: usize,
    observer: Option<Observer>,
    deliveries: Option<Deliveries>,
    layout: layout::Layout,
}

/// What [`Compactor::observe`] calls.
type Observer = Box<dyn FnMut(&str, Step) + Send + Sync>;

impl std::fmt::Debug for Compactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compactor")
            .field("root", &self.root)
            .field("horizon", &self.horizon)
            .field("row_group_size", &self.row_group_size)
            .finish_non_exhaustive()
    }
}

/// The new parts of a day folder a compaction takes, sorted by name (which
/// is by window start, then batch identity): every `.parquet` file but the
/// compacted file `previous` names. `None` when there is nothing to do: no
/// part beside a compacted file, or a single part alone.
///
/// # Errors
///
/// [`CompactError::Unexpected`] for a compacted file the record does not
/// name (moved in by hand, or left by an interrupted compaction of another
/// destination): compacting it again would count its rows twice.
pub fn select_parts(
    folder: &str,
    names: &[String],
    previous: Option<&Coverage>,
) -> Result<Option<Vec<String>>, CompactError> {
    let mut parts = Vec::new();
    for name in names {
        if !name.ends_with(&format!(".{EXTENSION}")) || previous.is_some_and(|c| &c.file == name) {
            continue;
        }
        if layout::is_compacted_name(name) {
            return Err(CompactError::Unexpected {
                path: Path::new(folder).join(name),
                reason: "a compacted file that the folder's record does not name",
            });
        }
        parts.push(name.clone());
    }
    parts.sort();
    let enough = match previous {
        Some(_) => !parts.is_empty(),
        None => parts.len() > 1,
    };
    Ok(enough.then_some(parts))
}

/// One day folder's merge, whatever the destination: the folder's previous
/// compacted file (if any) and its new parts, as local files, into one
/// file and the record of what it covers.
#[derive(Debug, Clone)]
pub struct Merge {
    /// The folder, relative to the destination (`data/{pipeline}/{date}`).
    pub folder: String,
    /// Its day.
    pub date: Date,
    /// The folder's record, if it was compacted before.
    pub previous: Option<Coverage>,
    /// A local copy of the compacted file `previous` names.
    pub previous_file: Option<PathBuf>,
    /// The new parts, name and local copy, in the order of their rows.
    pub parts: Vec<(String, PathBuf)>,
    /// Rows per row group of the compacted file.
    pub row_group_size: usize,
}

/// A merge written: the compacted file, under its name, and its record.
#[derive(Debug)]
pub struct Merged {
    /// The compacted file (in the directory the merge was written to).
    pub path: PathBuf,
    /// What it covers; its `file` is the name `path` has.
    pub coverage: Coverage,
    /// The bytes of the files it replaces.
    pub bytes_before: u64,
    inputs: Vec<Input>,
}

impl Merged {
    /// What the compaction of `folder` did, once this merge is in place.
    pub fn compacted(&self, folder: &str) -> Compacted {
        Compacted {
            folder: folder.to_owned(),
            file: self.coverage.file.clone(),
            replaced: self.coverage.replaced.len(),
            parts: self.coverage.parts.len(),
            rows: self.coverage.rows,
            bytes_before: self.bytes_before,
            bytes_after: self.coverage.bytes,
        }
    }
}

impl Merge {
    /// The merge of `folder`'s `fetched` files (name, local copy), the
    /// previous compacted file first if `previous` names one.
    pub fn new(
        folder: &str,
        date: Date,
        previous: Option<Coverage>,
        mut fetched: Vec<(String, PathBuf)>,
        row_group_size: usize,
    ) -> Self {
        let previous_file = match &previous {
            Some(_) if !fetched.is_empty() => Some(fetched.remove(0).1),
            _ => None,
        };
        Self {
            folder: folder.to_owned(),
            date,
            previous,
            previous_file,
            parts: fetched,
            row_group_size,
        }
    }

    /// [`write`](Self::write) on a blocking thread.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write); a merge that panicked is an
    /// [`CompactError::Io`] naming the folder.
    pub async fn write_in(self, dir: PathBuf) -> Result<Merged, CompactError> {
        let folder = PathBuf::from(&self.folder);
        meathook_core::blocking(move || self.write(&dir))
            .await
            .map_err(|e| CompactError::Io {
                action: "merge",
                path: folder,
                source: std::io::Error::other(e.to_string()),
            })?
    }

    /// Writes the compacted file into `dir` (fsynced, under its final
    /// name): every row of the previous compacted file, then of each part,
    /// in order, re-encoded with the settings of every meathook parquet
    /// file and counted.
    ///
    /// # Errors
    ///
    /// [`CompactError::Schema`] when the inputs' schemas differ,
    /// [`CompactError::Rows`] when the rows do not add up, and the file
    /// and parquet errors, naming the file; nothing is left in `dir` but
    /// a scratch file the next clean-up removes.
    pub fn write(&self, dir: &Path) -> Result<Merged, CompactError> {
        let mut inputs = Vec::new();
        if let (Some(previous), Some(path)) = (&self.previous, &self.previous_file) {
            inputs.push(input(path, &previous.file)?);
        }
        for (name, path) in &self.parts {
            inputs.push(input(path, name)?);
        }
        let Some(first) = inputs.first() else {
            return Err(CompactError::Unexpected {
                path: PathBuf::from(&self.folder),
                reason: "nothing to merge",
            });
        };
        let schema = first.schema.clone();
        if let Some(other) = inputs.iter().find(|i| i.schema.fields() != schema.fields()) {
            return Err(CompactError::Schema {
                folder: self.folder.clone(),
                first: first.name.clone(),
                other: other.name.clone(),
            });
        }
        let mut covered: Vec<CoveredPart> = self
            .previous
            .as_ref()
            .map(|c| c.parts.clone())
            .unwrap_or_default();
        for part in &inputs[usize::from(self.previous.is_some())..] {
            let sha = local::sha256_of(&part.path).map_err(|source| CompactError::Io {
                action: "read",
                path: part.path.clone(),
                source,
            })?;
            covered.push(CoveredPart {
                name: part.name.clone(),
                sha256: hex(&sha),
                rows: part.rows,
                bytes: part.bytes,
            });
        }
        let names: Vec<&str> = covered.iter().map(|p| p.name.as_str()).collect();
        let file = layout::compacted_name(self.date, &names, EXTENSION);
        let expected: u64 = inputs.iter().map(|i| i.rows).sum();
        let (path, sha256, bytes) = write_rows(
            &self.folder,
            dir,
            &file,
            &inputs,
            &schema,
            expected,
            self.row_group_size,
        )?;
        Ok(Merged {
            path,
            coverage: Coverage {
                version: COVERAGE_VERSION,
                file,
                sha256: hex(&sha256),
                rows: expected,
                bytes,
                parts: covered,
                replaced: inputs.iter().map(|i| i.name.clone()).collect(),
            },
            bytes_before: inputs.iter().map(|i| i.bytes).sum(),
            inputs,
        })
    }
}

/// Writes `merge` into the staging directory `stage`: the compacted file
/// and its record, fsynced.
fn stage_merge(merge: &Merge, stage: &Path) -> Result<Merged, CompactError> {
    let merged = merge.write(stage)?;
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| CompactError::Io {
            action,
            path,
            source,
        }
    };
    let record = stage.join(COVERAGE_FILE);
    write_synced(&record, &merged.coverage.to_json()).map_err(io("write", &record))?;
    local::sync_dir(stage).map_err(io("sync", stage))?;
    Ok(merged)
}

/// Writes the rows of `inputs` into `dir/file`, fsynced; its path, SHA-256
/// and length.
#[allow(clippy::too_many_arguments)] // one call site, each argument named
fn write_rows(
    folder: &str,
    dir: &Path,
    file: &str,
    inputs: &[Input],
    schema: &SchemaRef,
    expected: u64,
    row_group_size: usize,
) -> Result<(PathBuf, [u8; 32], u64), CompactError> {
    let parquet = |path: &Path| {
        let path = path.to_path_buf();
        move |e: parquet::errors::ParquetError| CompactError::Parquet {
            path,
            message: e.to_string(),
        }
    };
    let target = dir.join(file);
    let out = ScratchFile::create(dir).map_err(|source| CompactError::Io {
        action: "create",
        path: dir.to_path_buf(),
        source,
    })?;
    let compression = inputs
        .iter()
        .find_map(|i| i.compression)
        .unwrap_or(parquet::basic::Compression::ZSTD(Default::default()));
    let props = writer_properties(schema, compression, row_group_size).map_err(parquet(&target))?;
    let mut writer =
        ArrowWriter::try_new(out, schema.clone(), Some(props)).map_err(parquet(&target))?;
    for input in inputs {
        let reader = File::open(&input.path)
            .map_err(|source| CompactError::Io {
                action: "open",
                path: input.path.clone(),
                source,
            })
            .and_then(|f| {
                ParquetRecordBatchReaderBuilder::try_new(f)
                    .and_then(|b| b.build())
                    .map_err(parquet(&input.path))
            })?;
        for batch in reader {
            let batch = batch.map_err(|e| CompactError::Parquet {
                path: input.path.clone(),
                message: e.to_string(),
            })?;
            writer.write(&batch).map_err(parquet(&target))?;
        }
    }
    let out = writer.into_inner().map_err(parquet(&target))?;
    let sealed = out.seal().map_err(|source| CompactError::Io {
        action: "write",
        path: target.clone(),
        source,
    })?;
    let written = rows_of(&sealed.path).map_err(parquet(&target))?;
    if written != expected {
        return Err(CompactError::Rows {
            folder: folder.to_owned(),
            expected,
            written,
        });
    }
    fs::rename(&sealed.path, &target).map_err(|source| CompactError::Io {
        action: "name",
        path: target.clone(),
        source,
    })?;
    Ok((target, sealed.sha256, sealed.len))
}

/// One file compaction reads.
#[derive(Debug)]
struct Input {
    name: String,
    path: PathBuf,
    rows: u64,
    bytes: u64,
    schema: SchemaRef,
    /// The codec of its first column chunk.
    compression: Option<parquet::basic::Compression>,
}

impl Compactor {
    /// Compacts the dataset directory `root`.
    pub fn local(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            horizon: DEFAULT_HORIZON,
            row_group_size: DEFAULT_ROW_GROUP_SIZE,
            observer: None,
            deliveries: None,
            layout: layout::Layout::default(),
        }
    }

    /// The layout [`compact_day`](Self::compact_day) finds a pipeline's day
    /// folder by (default [`layout::Layout::Folders`]); [`run`](Self::run)
    /// reads either.
    pub fn with_layout(mut self, layout: layout::Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Reports each compacted file to `deliveries` (the catalog) as a
    /// [`Delivery`] whose `replaces` names the files it replaced, once the
    /// swap is durable. A report that fails fails the folder's compaction
    /// (the swap stays: readers are served) and is made again by the next
    /// [`Compactor::run`]: a note in the scratch folder
    /// (`compaction-reports/`), made before the swap and removed after the
    /// report, says which are owed, so a crash between swap and report
    /// loses no record either.
    pub fn with_deliveries(mut self, deliveries: Deliveries) -> Self {
        self.deliveries = Some(deliveries);
        self
    }

    /// How long after a day ends [`Compactor::run`] compacts its folders
    /// (default [`DEFAULT_HORIZON`]); negative durations count as zero.
    pub fn with_horizon(mut self, horizon: time::Duration) -> Self {
        self.horizon = horizon.max(time::Duration::ZERO);
        self
    }

    /// Rows per row group of a compacted file (default
    /// [`DEFAULT_ROW_GROUP_SIZE`]; at least one).
    pub fn with_row_group_size(mut self, rows: usize) -> Self {
        self.row_group_size = rows.max(1);
        self
    }

    /// Calls `observer` with the folder (relative to the root) at each
    /// [`Step`] of each folder's compaction.
    pub fn observe(mut self, observer: impl FnMut(&str, Step) + Send + Sync + 'static) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// Compacts every day folder that ended at least the horizon before
    /// `now`, and first removes what crashed compactions left.
    ///
    /// # Errors
    ///
    /// [`CompactError::Io`] when the directory cannot be listed; a folder's
    /// own failure is in the report and the run goes on.
    pub fn run(&mut self, now: OffsetDateTime) -> Result<CompactionReport, CompactError> {
        let scratch = self.root.join(SCRATCH_DIR);
        local::remove_stale(&scratch).map_err(|source| CompactError::Io {
            action: "clean up",
            path: scratch.clone(),
            source,
        })?;
        let mut report = CompactionReport::default();
        let data = self.root.join(DATA_DIR);
        if !data.is_dir() {
            return Ok(report);
        }
        // Reports a crash (or a catalog that was down) left owed.
        if self.deliveries.is_some() {
            for (relative, date, owed) in owed_reports(&scratch)? {
                match self.report(&relative, date) {
                    Ok(()) => settle(&owed).map_err(|source| CompactError::Io {
                        action: "remove",
                        path: owed.clone(),
                        source,
                    })?,
                    Err(e) => report.failed.push((relative, e)),
                }
            }
        }
        for pipeline in sorted_entries(&data)? {
            let folder = data.join(&pipeline);
            if !folder.is_dir() {
                continue;
            }
            for day in sorted_entries(&folder)? {
                let Some(date) = layout::day_of_folder(&day) else {
                    continue;
                };
                let Some(next) = date.next_day() else {
                    continue;
                };
                let relative = format!("{DATA_DIR}/{pipeline}/{day}");
                if next.midnight().assume_utc() + self.horizon > now {
                    report.unchanged += 1;
                    continue;
                }
                match self.compact_folder(&relative, date) {
                    Ok(Some(done)) => report.compacted.push(done),
                    Ok(None) => report.unchanged += 1,
                    Err(e) => report.failed.push((relative, e)),
                }
            }
        }
        Ok(report)
    }

    /// Compacts the folder of `pipeline` for `date` now, whatever the
    /// horizon. `None` when there is nothing to do: no folder, one part, or
    /// a compacted file alone.
    ///
    /// # Errors
    ///
    /// [`CompactError`]; nothing in the folder changed.
    pub fn compact_day(
        &mut self,
        pipeline: &str,
        date: Date,
    ) -> Result<Option<Compacted>, CompactError> {
        let folder = self.layout.day_folder(pipeline, date);
        refuse_unfinished(&folder, date)?;
        let scratch = self.root.join(SCRATCH_DIR);
        local::remove_stale(&scratch).map_err(|source| CompactError::Io {
            action: "clean up",
            path: scratch,
            source,
        })?;
        self.compact_folder(&folder, date)
    }

    /// Reports the compacted file of the folder `relative` (as its record
    /// describes it) to the catalog, if one is configured.
    fn report(&self, relative: &str, date: Date) -> Result<(), CompactError> {
        let Some(deliveries) = &self.deliveries else {
            return Ok(());
        };
        let folder = self.root.join(relative);
        let Some(coverage) = local::read_coverage(&folder).map_err(|source| CompactError::Io {
            action: "read",
            path: folder.clone(),
            source,
        })?
        else {
            return Ok(());
        };
        let destination = Destination::parse(&self.root.to_string_lossy())
            .map_or_else(|_| self.root.display().to_string(), |d| d.label());
        let delivery = compaction_delivery(&destination, relative, date, &coverage);
        let path = delivery.path.clone();
        deliveries
            .record(&delivery)
            .map_err(|source| CompactError::Report { path, source })
    }

    fn step(&mut self, folder: &str, step: Step) {
        if let Some(observer) = &mut self.observer {
            observer(folder, step);
        }
    }

    fn compact_folder(
        &mut self,
        relative: &str,
        date: Date,
    ) -> Result<Option<Compacted>, CompactError> {
        let folder = self.root.join(relative);
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| CompactError::Io {
                action,
                path,
                source,
            }
        };
        let names = match sorted_entries(&folder) {
            Ok(names) => names,
            Err(CompactError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let previous = local::read_coverage(&folder).map_err(io("read", &folder))?;
        for name in &names {
            let path = folder.join(name);
            let kind = fs::symlink_metadata(&path)
                .map_err(io("inspect", &path))?
                .file_type();
            if kind.is_dir() {
                return Err(CompactError::Unexpected {
                    path,
                    reason: "a directory in a day folder",
                });
            }
        }
        let Some(parts) = select_parts(relative, &names, previous.as_ref())? else {
            return Ok(None);
        };
        let merge = Merge {
            folder: relative.to_owned(),
            date,
            previous_file: previous.as_ref().map(|c| folder.join(&c.file)),
            previous,
            parts: parts.iter().map(|n| (n.clone(), folder.join(n))).collect(),
            row_group_size: self.row_group_size,
        };
        let scratch = self.root.join(SCRATCH_DIR);
        let stage =
            local::stage_dir(&scratch).map_err(io("create a staging directory in", &scratch))?;
        let merged = match stage_merge(&merge, &stage) {
            Ok(merged) => merged,
            Err(e) => {
                let _ = local::remove_stage(&stage);
                return Err(e);
            }
        };
        self.step(relative, Step::Staged);

        // The swap, under the folder's exclusive lock.
        let lock = FolderLock::exclusive(&folder).map_err(io("lock", &folder))?;
        if let Err(e) = link_the_rest(relative, &folder, &stage, &merged.inputs) {
            drop(lock);
            let _ = local::remove_stage(&stage);
            return Err(e);
        }
        self.step(relative, Step::Linked);
        let owed = match self.deliveries.is_some().then(|| owe(&scratch, relative)) {
            Some(Err(source)) => {
                drop(lock);
                let _ = local::remove_stage(&stage);
                return Err(CompactError::Io {
                    action: "note a catalog report in",
                    path: scratch,
                    source,
                });
            }
            Some(Ok(note)) => Some(note),
            None => None,
        };
        if let Err(source) = local::exchange_dirs(&folder, &stage) {
            drop(lock);
            let _ = local::remove_stage(&stage);
            return Err(CompactError::Io {
                action: "swap in",
                path: folder,
                source,
            });
        }
        self.step(relative, Step::Swapped);
        for dir in [folder.parent(), stage.parent()].into_iter().flatten() {
            local::sync_dir(dir).map_err(io("sync", dir))?;
        }
        self.step(relative, Step::Synced);
        local::remove_stage(&stage).map_err(io("remove", &stage))?;
        drop(lock);
        self.step(relative, Step::Removed);
        self.report(relative, date)?;
        if let Some(note) = owed {
            settle(&note).map_err(io("remove", &note))?;
        }
        Ok(Some(merged.compacted(relative)))
    }
}

/// The folder, under the scratch folder, of reports owed to the catalog:
/// one empty file per day folder (`{pipeline segment}~{date}`), made
/// before the swap and removed once the report went through.
const OWED_DIR: &str = "compaction-reports";

/// Notes that the compaction of `relative` owes a report; the note.
fn owe(scratch: &Path, relative: &str) -> std::io::Result<PathBuf> {
    let dir = scratch.join(OWED_DIR);
    fs::create_dir_all(&dir)?;
    let name = relative
        .strip_prefix(&format!("{DATA_DIR}/"))
        .unwrap_or(relative)
        .replace('/', "~");
    let note = dir.join(name);
    File::create(&note)?.sync_all()?;
    local::sync_dir(&dir)?;
    Ok(note)
}

/// Removes a note of a report owed, durably.
fn settle(note: &Path) -> std::io::Result<()> {
    match fs::remove_file(note) {
        Ok(()) => local::sync_dir(note.parent().unwrap_or(Path::new("."))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The reports owed: each folder (relative to the root), its date, and
/// the note.
fn owed_reports(scratch: &Path) -> Result<Vec<(String, Date, PathBuf)>, CompactError> {
    let dir = scratch.join(OWED_DIR);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut owed = Vec::new();
    for name in sorted_entries(&dir)? {
        let Some((segment, day)) = name.split_once('~') else {
            continue;
        };
        if let Some(date) = layout::day_of_folder(day) {
            owed.push((format!("{DATA_DIR}/{segment}/{day}"), date, dir.join(&name)));
        }
    }
    Ok(owed)
}

/// Under the folder's exclusive lock: checks that every input is still
/// there, unchanged, and links everything else (parts that arrived since,
/// other files) into `stage`, then syncs it.
fn link_the_rest(
    relative: &str,
    folder: &Path,
    stage: &Path,
    inputs: &[Input],
) -> Result<(), CompactError> {
    let names = sorted_entries(folder)?;
    for input in inputs {
        let unchanged = fs::symlink_metadata(&input.path).is_ok_and(|m| m.len() == input.bytes);
        if !unchanged {
            return Err(CompactError::Changed {
                folder: relative.to_owned(),
                name: input.name.clone(),
            });
        }
    }
    for name in names {
        if name == COVERAGE_FILE || inputs.iter().any(|i| i.name == name) {
            continue;
        }
        let from = folder.join(&name);
        fs::hard_link(&from, stage.join(&name)).map_err(|source| CompactError::Io {
            action: "keep",
            path: from,
            source,
        })?;
    }
    local::sync_dir(stage).map_err(|source| CompactError::Io {
        action: "sync",
        path: stage.to_path_buf(),
        source,
    })
}

fn input(path: &Path, name: &str) -> Result<Input, CompactError> {
    let path = path.to_path_buf();
    let file = File::open(&path).map_err(|source| CompactError::Io {
        action: "open",
        path: path.clone(),
        source,
    })?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| CompactError::Parquet {
            path: path.clone(),
            message: e.to_string(),
        })?;
    let metadata = builder.metadata();
    let rows = u64::try_from(metadata.file_metadata().num_rows()).unwrap_or(0);
    let compression = metadata
        .row_groups()
        .first()
        .and_then(|g| g.columns().first())
        .map(|c| c.compression());
    Ok(Input {
        compression,
        name: name.to_owned(),
        schema: builder.schema().clone(),
        path,
        rows,
        bytes,
    })
}

fn rows_of(path: &Path) -> Result<u64, parquet::errors::ParquetError> {
    let file =
        File::open(path).map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    Ok(u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0))
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The names in `dir`, sorted.
fn sorted_entries(dir: &Path) -> Result<Vec<String>, CompactError> {
    let mut names = Vec::new();
    let entries = fs::read_dir(dir).map_err(|source| CompactError::Io {
        action: "list",
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| CompactError::Io {
            action: "list",
            path: dir.to_path_buf(),
            source,
        })?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The catalog's record of the compacted file of `folder` (relative to
/// `destination`; `…/{pipeline}/{day}`), as its `coverage` describes it:
/// the day is its window, `replaces` the files the compaction replaced.
pub fn compaction_delivery(
    destination: &str,
    folder: &str,
    date: Date,
    coverage: &Coverage,
) -> Delivery {
    let start = date.midnight().assume_utc();
    // The pipeline's folder is the day folder's parent, in either layout.
    let segment = folder.rsplit('/').nth(1).unwrap_or_default();
    let pipeline = layout::pipeline_of_folder(segment).unwrap_or_else(|| segment.to_owned());
    let window = WindowMeta {
        pipeline: pipeline.into(),
        start,
        end: start + time::Duration::DAY,
        batch: None,
    };
    Delivery::new(
        &window,
        destination,
        format!("{folder}/{}", coverage.file),
        coverage.rows,
        coverage.bytes,
        unhex(&coverage.sha256).unwrap_or_default(),
    )
    .with_replaces(
        coverage
            .replaced
            .iter()
            .map(|name| format!("{folder}/{name}"))
            .collect(),
    )
}

/// Refuses a day that has not ended (by this machine's clock): its parts
/// are still arriving, and sinks look for a compaction record only in the
/// folders of days that ended.
fn refuse_unfinished(folder: &str, date: Date) -> Result<(), CompactError> {
    if !meathook_files::coverage::day_has_ended(date) {
        return Err(CompactError::Unexpected {
            path: PathBuf::from(folder),
            reason: "its day has not ended: a day is compacted once it is over",
        });
    }
    Ok(())
}

/// The files a reader of a day folder should read, given its entries'
/// `names` and its record: the compacted file the record names and every
/// parquet file it does not cover; any other compacted file (left by an
/// interrupted compaction) is skipped. Reading by this rule never counts a
/// row twice, at any moment of a compaction, on every destination — the
/// safe way to read an object store, where a compaction is not atomic
/// (see [`StoreCompactor`]).
pub fn readable_files(names: &[String], record: Option<&Coverage>) -> Vec<String> {
    let named_present = record.is_some_and(|c| names.contains(&c.file));
    names
        .iter()
        .filter(|name| name.ends_with(&format!(".{EXTENSION}")))
        .filter(|name| match record {
            Some(c) if named_present => {
                c.file == **name || (!layout::is_compacted_name(name) && c.part(name).is_none())
            }
            _ => !layout::is_compacted_name(name),
        })
        .cloned()
        .collect()
}
