//! Compaction of a dataset in an object store (S3, GCS, Azure, memory),
//! which has no way to change several objects at once.
//!
//! A day folder's files are downloaded, merged on this machine
//! ([`Merge`]), and then, in this order:
//!
//! 1. the compacted file is put under its name (a conditional create; its
//!    name is a hash of the parts it covers, so a repeat of the same
//!    compaction meets the same name and the same bytes);
//! 2. the folder's record (`_compacted.json`) is replaced by one naming it
//!    and every part it covers;
//! 3. the files it replaces are deleted, one request each.
//!
//! **What a reader sees.** A reader that lists the folder and reads every
//! parquet file sees each row twice from the moment of step 1 until the
//! last delete of step 3 — the requests of one folder, back to back
//! (tens of milliseconds to seconds; a killed process leaves the folder so
//! until the next run, which first deletes what its record says is
//! replaced). **The safe way to read** a folder in an object store is by
//! its record, as [`readable_files`](super::readable_files) does: the
//! compacted file the record names, and every other parquet file the
//! record does not cover; another compacted file (an interrupted
//! compaction's) is skipped. That holds at every moment: before step 2 the
//! old record (or none) governs, after it the new one.
//!
//! A batch delivered again after its day was compacted is recognised by
//! `FileSink` from the record (see `remote`); a genuinely new one lands as
//! a part, which the next compaction absorbs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use meathook_core::Deliveries;
use meathook_files::coverage::{self, COVERAGE_FILE, Coverage, MAX_COVERAGE_BYTES};
use meathook_files::layout::{self, DATA_DIR};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use time::{Date, OffsetDateTime};

use super::{
    CompactError, Compacted, CompactionReport, DEFAULT_HORIZON, Merge, Observer, Step, select_parts,
};
use crate::parquet::DEFAULT_ROW_GROUP_SIZE;
use crate::store::Destination;

/// Compacts a dataset in an object store; see the [module docs](self).
pub struct StoreCompactor {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    label: String,
    scratch: PathBuf,
    horizon: time::Duration,
    row_group_size: usize,
    deliveries: Option<Deliveries>,
    observer: Option<Observer>,
    layout: layout::Layout,
}

impl std::fmt::Debug for StoreCompactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCompactor")
            .field("destination", &self.label)
            .field("horizon", &self.horizon)
            .finish_non_exhaustive()
    }
}

/// One object of a folder.
#[derive(Debug, Clone)]
struct Object {
    name: String,
}

impl StoreCompactor {
    /// Compacts the object-store `destination` (a local directory has
    /// [`Compactor::local`](super::Compactor::local), which swaps folders
    /// atomically instead).
    ///
    /// # Errors
    ///
    /// [`CompactError::Unexpected`] for a local destination.
    pub fn new(destination: &Destination) -> Result<Self, CompactError> {
        match destination {
            Destination::Local { root } => Err(CompactError::Unexpected {
                path: root.clone(),
                reason: "a local directory is compacted by Compactor::local",
            }),
            Destination::Remote { store, prefix, .. } => Ok(Self {
                store: Arc::clone(store),
                prefix: prefix.clone(),
                label: destination.label(),
                scratch: std::env::temp_dir().join("meathook-compaction"),
                horizon: DEFAULT_HORIZON,
                row_group_size: DEFAULT_ROW_GROUP_SIZE,
                deliveries: None,
                observer: None,
                layout: layout::Layout::default(),
            }),
        }
    }

    /// Where files are downloaded and merged (default
    /// `{temp dir}/meathook-compaction`).
    pub fn with_scratch_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.scratch = dir.into();
        self
    }

    /// How long after a day ends [`run`](Self::run) compacts its folders
    /// (default [`DEFAULT_HORIZON`]); negative durations count as zero.
    pub fn with_horizon(mut self, horizon: time::Duration) -> Self {
        self.horizon = horizon.max(time::Duration::ZERO);
        self
    }

    /// Rows per row group of a compacted file (at least one).
    pub fn with_row_group_size(mut self, rows: usize) -> Self {
        self.row_group_size = rows.max(1);
        self
    }

    /// The layout [`compact_day`](Self::compact_day) finds a pipeline's day
    /// folder by (default [`layout::Layout::Folders`]); [`run`](Self::run)
    /// reads either.
    pub fn with_layout(mut self, layout: layout::Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Reports each compacted file to `deliveries` once its parts are
    /// deleted, naming the files it replaced.
    pub fn with_deliveries(mut self, deliveries: Deliveries) -> Self {
        self.deliveries = Some(deliveries);
        self
    }

    /// Calls `observer` with the folder at each [`Step`] (`Staged`: the
    /// compacted file is put; `Swapped`: the record names it; `Removed`:
    /// the parts are deleted).
    pub fn observe(mut self, observer: impl FnMut(&str, Step) + Send + Sync + 'static) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    fn step(&mut self, folder: &str, step: Step) {
        if let Some(observer) = &mut self.observer {
            observer(folder, step);
        }
    }

    fn object(&self, relative: &str) -> ObjectPath {
        ObjectPath::from_iter(
            self.prefix
                .parts()
                .chain(ObjectPath::from(relative).parts()),
        )
    }

    fn store_error(
        &self,
        action: &'static str,
        relative: &str,
        e: object_store::Error,
    ) -> CompactError {
        CompactError::Io {
            action,
            path: PathBuf::from(format!("{}/{relative}", self.label)),
            source: std::io::Error::other(e.to_string()),
        }
    }

    /// Compacts every day folder whose day ended at least the horizon
    /// before `now`.
    ///
    /// # Errors
    ///
    /// [`CompactError::Io`] when the store cannot be listed; a folder's own
    /// failure is in the report and the run goes on.
    pub async fn run(&mut self, now: OffsetDateTime) -> Result<CompactionReport, CompactError> {
        let _ = crate::local::remove_stale(&self.scratch);
        let mut report = CompactionReport::default();
        // One listing of everything under `data/` (a request a thousand
        // objects) finds every day folder and what it holds; a folder that
        // holds only its compacted file and record is passed by without a
        // request of its own.
        for (relative, names) in self.day_folders().await? {
            let day = relative.rsplit('/').next().unwrap_or(&relative);
            let Some(date) = layout::day_of_folder(day) else {
                continue;
            };
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            if !coverage::due(date, self.horizon, now) || coverage::settled(&names) {
                report.unchanged += 1;
                continue;
            }
            match self.compact_folder(&relative, date).await {
                Ok(Some(done)) => report.compacted.push(done),
                Ok(None) => report.unchanged += 1,
                Err(e) => report.failed.push((relative, e)),
            }
        }
        Ok(report)
    }

    /// Compacts the folder of `pipeline` for `date` now, whatever the
    /// horizon; `None` when there is nothing to do.
    ///
    /// # Errors
    ///
    /// [`CompactError::Unexpected`] for a day that has not ended; the
    /// store's, the merge's and the files' errors.
    pub async fn compact_day(
        &mut self,
        pipeline: &str,
        date: Date,
    ) -> Result<Option<Compacted>, CompactError> {
        let relative = self.layout.day_folder(pipeline, date);
        super::refuse_unfinished(&relative, date)?;
        self.compact_folder(&relative, date).await
    }

    /// The day folders under `data/` (two levels down: a pipeline's, then
    /// a day's), relative to the prefix, each with the names of the
    /// objects directly in it, in path order.
    async fn day_folders(&self) -> Result<BTreeMap<String, Vec<String>>, CompactError> {
        use futures_util::StreamExt as _;
        let data = self.object(DATA_DIR);
        let mut listed = self.store.list(Some(&data));
        let mut days: BTreeMap<String, Vec<String>> = BTreeMap::new();
        while let Some(meta) = listed.next().await {
            let meta = meta.map_err(|e| self.store_error("list", DATA_DIR, e))?;
            let Some(rest) = meta.location.prefix_match(&data) else {
                continue;
            };
            let parts: Vec<String> = rest.map(|p| p.as_ref().to_owned()).collect();
            if let [pipeline, day, name] = parts.as_slice() {
                days.entry(format!("{DATA_DIR}/{pipeline}/{day}"))
                    .or_default()
                    .push(name.clone());
            }
        }
        Ok(days)
    }

    /// The objects of the folder `relative`, by name.
    async fn objects(&self, relative: &str) -> Result<Vec<Object>, CompactError> {
        let listed = self
            .store
            .list_with_delimiter(Some(&self.object(relative)))
            .await
            .map_err(|e| self.store_error("list", relative, e))?;
        let mut objects: Vec<Object> = listed
            .objects
            .iter()
            .filter_map(|o| {
                Some(Object {
                    name: o.location.filename()?.to_owned(),
                })
            })
            .collect();
        objects.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(objects)
    }

    async fn compact_folder(
        &mut self,
        relative: &str,
        date: Date,
    ) -> Result<Option<Compacted>, CompactError> {
        let objects = self.objects(relative).await?;
        let record = match objects.iter().find(|o| o.name == COVERAGE_FILE) {
            Some(_) => Some(self.record(relative).await?),
            None => None,
        };
        // What an interrupted compaction left (see the order of its steps):
        // with a record whose compacted file is there, every file it covers
        // or replaced is to go (deletes not finished), and any other
        // compacted file is an orphan (put before a record that would have
        // named it); without a record, a compacted file is such an orphan.
        let named = record
            .as_ref()
            .is_some_and(|c| objects.iter().any(|o| o.name == c.file));
        if let (Some(c), false) = (&record, named) {
            return Err(CompactError::Unexpected {
                path: PathBuf::from(format!("{relative}/{}", c.file)),
                reason: "the folder's record names a compacted file that is not there",
            });
        }
        let mut names: Vec<String> = Vec::new();
        for object in &objects {
            let leftover = match &record {
                Some(c) if c.file == object.name => false,
                Some(c) => {
                    layout::is_compacted_name(&object.name)
                        || c.part(&object.name).is_some()
                        || c.replaced.contains(&object.name)
                }
                None => layout::is_compacted_name(&object.name),
            };
            if leftover {
                self.delete(relative, &object.name).await?;
            } else {
                names.push(object.name.clone());
            }
        }
        let previous = record;
        let Some(parts) = select_parts(relative, &names, previous.as_ref())? else {
            return Ok(None);
        };
        let work =
            crate::local::StageDir::new(&self.scratch).map_err(|source| CompactError::Io {
                action: "create a scratch directory in",
                path: self.scratch.clone(),
                source,
            })?;
        let mut local = Vec::new();
        for name in previous.iter().map(|c| &c.file).chain(&parts) {
            local.push((name.clone(), self.fetch(relative, name, work.path()).await?));
        }
        let merge = Merge::new(relative, date, previous, local, self.row_group_size);
        let merged = merge.write_in(work.path().to_path_buf()).await?;
        let file = format!("{relative}/{}", merged.coverage.file);
        self.put_new(&file, &merged.path).await?;
        self.step(relative, Step::Staged);
        let record_path = format!("{relative}/{COVERAGE_FILE}");
        self.store
            .put(
                &self.object(&record_path),
                PutPayload::from(merged.coverage.to_json()),
            )
            .await
            .map_err(|e| self.store_error("write", &record_path, e))?;
        self.step(relative, Step::Swapped);
        for name in &merged.coverage.replaced {
            self.delete(relative, name).await?;
        }
        self.step(relative, Step::Removed);
        self.report(relative, date, &merged.coverage)?;
        Ok(Some(merged.compacted(relative)))
    }

    /// The folder's record.
    async fn record(&self, relative: &str) -> Result<Coverage, CompactError> {
        let path = format!("{relative}/{COVERAGE_FILE}");
        let got = self
            .store
            .get(&self.object(&path))
            .await
            .map_err(|e| self.store_error("read", &path, e))?;
        if got.meta.size > MAX_COVERAGE_BYTES {
            return Err(CompactError::Unexpected {
                path: PathBuf::from(path),
                reason: "a compaction record larger than 16 MiB",
            });
        }
        let bytes = got
            .bytes()
            .await
            .map_err(|e| self.store_error("read", &path, e))?;
        Coverage::from_json(&bytes).map_err(|_| CompactError::Unexpected {
            path: PathBuf::from(path),
            reason: "a compaction record that does not read",
        })
    }

    /// Downloads `name` of `relative` into `dir`.
    async fn fetch(
        &self,
        relative: &str,
        name: &str,
        dir: &std::path::Path,
    ) -> Result<PathBuf, CompactError> {
        let path = format!("{relative}/{name}");
        let bytes = self
            .store
            .get(&self.object(&path))
            .await
            .map_err(|e| self.store_error("download", &path, e))?
            .bytes()
            .await
            .map_err(|e| self.store_error("download", &path, e))?;
        let local = dir.join(name);
        tokio::fs::write(&local, &bytes)
            .await
            .map_err(|source| CompactError::Io {
                action: "write",
                path: local.clone(),
                source,
            })?;
        Ok(local)
    }

    /// Puts the file at `local` under `relative` unless the same bytes are
    /// there already (a repeat of an interrupted compaction).
    async fn put_new(&self, relative: &str, local: &std::path::Path) -> Result<(), CompactError> {
        let bytes = tokio::fs::read(local)
            .await
            .map_err(|source| CompactError::Io {
                action: "read",
                path: local.to_path_buf(),
                source,
            })?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let object = self.object(relative);
        match self
            .store
            .put_opts(&object, PutPayload::from(bytes.clone()), opts)
            .await
        {
            Ok(_) => Ok(()),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => {
                let there = self
                    .store
                    .get(&object)
                    .await
                    .map_err(|e| self.store_error("read back", relative, e))?
                    .bytes()
                    .await
                    .map_err(|e| self.store_error("read back", relative, e))?;
                if there.as_ref() == bytes.as_slice() {
                    Ok(())
                } else {
                    Err(CompactError::Unexpected {
                        path: PathBuf::from(format!("{}/{relative}", self.label)),
                        reason: "a compacted file with other bytes is at the compacted file's name",
                    })
                }
            }
            Err(object_store::Error::NotImplemented { .. }) => self
                .store
                .put(&object, PutPayload::from(bytes))
                .await
                .map(drop)
                .map_err(|e| self.store_error("upload", relative, e)),
            Err(e) => Err(self.store_error("upload", relative, e)),
        }
    }

    async fn delete(&self, relative: &str, name: &str) -> Result<(), CompactError> {
        let path = format!("{relative}/{name}");
        match self.store.delete(&self.object(&path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.store_error("delete", &path, e)),
        }
    }

    fn report(&self, relative: &str, date: Date, coverage: &Coverage) -> Result<(), CompactError> {
        let Some(deliveries) = &self.deliveries else {
            return Ok(());
        };
        let delivery = super::compaction_delivery(&self.label, relative, date, coverage);
        let path = delivery.path.clone();
        deliveries
            .record(&delivery)
            .map_err(|source| CompactError::Report { path, source })
    }
}
