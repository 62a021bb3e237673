//! Compaction of a dataset on the Hub: each finished day folder of a
//! pipeline (`data/{pipeline}/{YYYY-MM-DD}/`) into one parquet file, in
//! one commit that adds the compacted file and its record
//! (`_compacted.json`) and deletes what it replaces — an atomic swap for
//! every reader of the branch.
//!
//! **Architecture invariant:** nothing on the branch changes but by that
//! one commit. The folder's files are downloaded (each checked against the
//! SHA-256 the Hub lists for it) and merged on this machine
//! ([`meathook_parquet::compact::Merge`]: rows in order, counted, one
//! schema). Then, while the repository's committer holds its rounds back,
//! the folder is listed again — a file that changed or went away sends the
//! folder back to the start, a part that arrived since is left for the next
//! compaction — the compacted file is uploaded, and the commit names the
//! head it was prepared on, so a commit made in between is refused (412)
//! rather than overwritten. The commit counts against the repository's
//! commit budget and is paced with the sinks' rounds.
//!
//! | a compaction is stopped (killed, a network failure) … | the branch | the next run |
//! |---|---|---|
//! | before its commit request | unchanged: the parts | compacts the folder |
//! | after the Hub applied the commit, before the answer | the compacted file | finds the folder compacted: nothing to do |
//!
//! A batch delivered again after its day was compacted is recognised by
//! the sink from the folder's record and not committed twice (see
//! `attempt`); a genuinely new one lands as a part, which the next
//! compaction absorbs. Compaction takes only days that have ended, and by
//! [`HubCompactor::run`] only those that ended a horizon ago.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use meathook_core::{Backoff, Deliveries, ErrorClass, SinkError as _};
use std::collections::BTreeMap;

use meathook_files::coverage::{self, COVERAGE_FILE, Coverage, MAX_COVERAGE_BYTES, unhex};
use meathook_files::layout::{self, DATA_DIR};
use meathook_parquet::compact::{Merge, Step, compaction_delivery, select_parts};
use meathook_parquet::{CompactError, Compacted, DEFAULT_ROW_GROUP_SIZE};
use time::{Date, OffsetDateTime};
use tokio::io::AsyncReadExt as _;

use crate::action::{Commit, CommitOp, TreeEntry};
use crate::committer::Committer;
use crate::error::HfError;
use crate::hub::HubClient;

/// How long after a day ends [`HubCompactor::run`] compacts its folders,
/// unless configured.
pub const DEFAULT_HORIZON: time::Duration = time::Duration::hours(2);

/// The largest file a compaction downloads, unless configured: a part, or
/// the day's previous compacted file (each is read whole into memory).
pub const DEFAULT_MAX_FILE_BYTES: usize = 512 << 20;

/// The Hub's recommended most files in one repository.
pub const RECOMMENDED_MAX_FILES: u64 = 100_000;

/// The most entries (files and folders) the Hub allows in one folder.
pub const MAX_FOLDER_ENTRIES: u64 = 10_000;

/// The share of a limit past which a warning is logged.
const WARN_AT: f64 = 0.8;

/// What a run over the repository did.
#[derive(Debug, Default)]
pub struct HubCompaction {
    /// The folders compacted, a commit each.
    pub compacted: Vec<Compacted>,
    /// Folders left as they were: nothing to do, or too recent.
    pub unchanged: usize,
    /// Folders that failed, each with its error; the others went on.
    pub failed: Vec<(String, HfError)>,
    /// The repository's files after the run.
    pub files: FileCounts,
}

/// How many files a repository holds, and where: for a metric, and for a
/// warning before the Hub's limits ([`RECOMMENDED_MAX_FILES`] a
/// repository, [`MAX_FOLDER_ENTRIES`] a folder).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileCounts {
    /// Files in the whole repository (every branch file, data or not).
    pub files: u64,
    /// Files under each pipeline's folder (`data/{pipeline}`), by folder.
    pub by_pipeline: Vec<(String, u64)>,
    /// The folder with the most entries (files and folders directly in
    /// it), and how many.
    pub fullest_folder: Option<(String, u64)>,
}

impl FileCounts {
    /// Counts a recursive listing of the repository; `data` is the data
    /// folder's path.
    fn of(entries: &[TreeEntry], data: &str) -> Self {
        let mut files = 0;
        let mut by_pipeline: std::collections::BTreeMap<String, u64> = Default::default();
        let mut entries_in: std::collections::HashMap<&str, u64> = Default::default();
        let data_prefix = format!("{data}/");
        for e in entries {
            let parent = e.path.rsplit_once('/').map_or("", |(p, _)| p);
            *entries_in.entry(parent).or_default() += 1;
            if e.kind != "file" {
                continue;
            }
            files += 1;
            if let Some(rest) = e.path.strip_prefix(&data_prefix)
                && let Some((pipeline, _)) = rest.split_once('/')
            {
                *by_pipeline
                    .entry(format!("{data_prefix}{pipeline}"))
                    .or_default() += 1;
            }
        }
        let fullest_folder = entries_in
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
            .map(|(folder, n)| (folder.to_owned(), n));
        Self {
            files,
            by_pipeline: by_pipeline.into_iter().collect(),
            fullest_folder,
        }
    }

    /// Logs a warning for each limit the repository is past 80 % of.
    fn warn(&self, repo: &str) {
        let near = |n: u64, limit: u64| n as f64 >= WARN_AT * limit as f64;
        if near(self.files, RECOMMENDED_MAX_FILES) {
            tracing::warn!(%repo, files = self.files, limit = RECOMMENDED_MAX_FILES, "the repository nears the Hub's recommended most files: compact more (longer windows, or compaction of every finished day), or start another repository");
        }
        if let Some((folder, n)) = &self.fullest_folder
            && near(*n, MAX_FOLDER_ENTRIES)
        {
            tracing::warn!(%repo, %folder, entries = n, limit = MAX_FOLDER_ENTRIES, "a folder nears the Hub's most entries a folder: compact it, or use a layout with more folders");
        }
    }
}

/// Compacts the day folders of a dataset on the Hub; made by
/// [`HfSink::compactor`](crate::HfSink::compactor), with the sink's
/// repository, branch, token, path prefix and shared committer.
pub struct HubCompactor {
    pub(crate) hub: HubClient,
    pub(crate) committer: Arc<Committer>,
    pub(crate) prefix: String,
    pub(crate) scratch: PathBuf,
    pub(crate) destination: String,
    horizon: time::Duration,
    row_group_size: usize,
    max_file_bytes: usize,
    deliveries: Option<Deliveries>,
    observer: Option<Observer>,
    layout: layout::Layout,
}

/// What [`HubCompactor::observe`] calls.
type Observer = Box<dyn Fn(&str, Step) + Send + Sync>;

impl std::fmt::Debug for HubCompactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubCompactor")
            .field("destination", &self.destination)
            .field("prefix", &self.prefix)
            .field("horizon", &self.horizon)
            .finish_non_exhaustive()
    }
}

impl HubCompactor {
    pub(crate) fn new(
        hub: HubClient,
        committer: Arc<Committer>,
        prefix: String,
        scratch: PathBuf,
        destination: String,
        deliveries: Option<Deliveries>,
    ) -> Self {
        Self {
            hub,
            committer,
            prefix,
            scratch,
            destination,
            horizon: DEFAULT_HORIZON,
            row_group_size: DEFAULT_ROW_GROUP_SIZE,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            deliveries,
            observer: None,
            layout: layout::Layout::default(),
        }
    }

    /// The layout [`compact_day`](Self::compact_day) finds a pipeline's
    /// day folder by (the sink's); [`run`](Self::run) reads either.
    pub fn with_layout(mut self, layout: layout::Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Calls `observer` with the folder at each [`Step`] of its
    /// compaction: `Staged` once the compacted file is merged and uploaded
    /// (the commit not yet requested), `Swapped` once the commit is on the
    /// branch (the catalog not yet told). For progress, and for tests that
    /// stop a process at each.
    pub fn observe(mut self, observer: impl Fn(&str, Step) + Send + Sync + 'static) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    fn step(&self, folder: &str, step: Step) {
        if let Some(observer) = &self.observer {
            observer(folder, step);
        }
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

    /// The largest file downloaded (default [`DEFAULT_MAX_FILE_BYTES`]);
    /// a folder holding a larger one fails, naming it.
    pub fn with_max_file_bytes(mut self, bytes: usize) -> Self {
        self.max_file_bytes = bytes.max(1);
        self
    }

    /// Reports each compacted file to `deliveries` (the catalog) once its
    /// commit is on the branch, naming the files it replaced (the sink's
    /// own hook, if it has one, by default).
    pub fn with_deliveries(mut self, deliveries: Deliveries) -> Self {
        self.deliveries = Some(deliveries);
        self
    }

    /// How delivery records name the dataset: `hf://datasets/{repo}`, with
    /// `@{branch}` for a branch other than `main`.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    fn prefixed(&self, path: &str) -> String {
        if self.prefix.is_empty() {
            path.to_owned()
        } else {
            format!("{}/{path}", self.prefix)
        }
    }

    /// Compacts every day folder of the repository whose day ended at least
    /// the horizon before `now`.
    ///
    /// # Errors
    ///
    /// The [`HfError`] of listing the repository's `data/` folder; a
    /// folder's own failure is in the report and the run goes on.
    pub async fn run(&mut self, now: OffsetDateTime) -> Result<HubCompaction, HfError> {
        // What a crashed compaction left in the scratch folder.
        let _ = meathook_files::local::remove_stale(&self.scratch);
        let mut report = HubCompaction::default();
        // One recursive listing finds every day folder and what it holds.
        // A folder that holds only its compacted file and record needs no
        // request of its own, so a run costs a few pages of listing however
        // many days the repository keeps, plus the folders with work.
        let data = self.prefixed(DATA_DIR);
        let entries = self.hub.list_folder(&data, true).await?;
        for (day, names) in day_folders(&entries, &data) {
            let name = day.rsplit('/').next().unwrap_or(&day);
            let Some(date) = layout::day_of_folder(name) else {
                continue;
            };
            if !coverage::due(date, self.horizon, now) || coverage::settled(&names) {
                report.unchanged += 1;
                continue;
            }
            match self.compact_folder(&day, date).await {
                Ok(Some(done)) => report.compacted.push(done),
                Ok(None) => report.unchanged += 1,
                Err(e) => report.failed.push((day, e)),
            }
        }
        report.files = self.file_counts().await?;
        Ok(report)
    }

    /// The repository's files, counted from one recursive listing (a page
    /// a thousand entries), with a warning logged for each limit of the
    /// Hub's the repository is past 80 % of.
    ///
    /// # Errors
    ///
    /// The [`HfError`] of the listing.
    pub async fn file_counts(&self) -> Result<FileCounts, HfError> {
        let entries = self.hub.list_folder("", true).await?;
        let counts = FileCounts::of(&entries, &self.prefixed(DATA_DIR));
        counts.warn(&self.hub.repo());
        Ok(counts)
    }

    /// Compacts the folder of `pipeline` for `date` now, whatever the
    /// horizon; `None` when there is nothing to do.
    ///
    /// # Errors
    ///
    /// [`HfError::InvalidSetting`] for a day that has not ended (its
    /// parts are still arriving); the errors of listing, downloading,
    /// merging and committing. Nothing on the branch changed.
    pub async fn compact_day(
        &mut self,
        pipeline: &str,
        date: Date,
    ) -> Result<Option<Compacted>, HfError> {
        if !meathook_files::coverage::day_has_ended(date) {
            return Err(HfError::InvalidSetting {
                repo: self.hub.repo(),
                parameter: "date",
                reason: format!("{date} has not ended: a day is compacted once it is over"),
            });
        }
        let folder = self.prefixed(&self.layout.day_folder(pipeline, date));
        self.compact_folder(&folder, date).await
    }

    /// Compacts `folder`, trying again from the listing while a commit
    /// made meanwhile sends it back or the Hub fails transiently.
    async fn compact_folder(&self, folder: &str, date: Date) -> Result<Option<Compacted>, HfError> {
        let settings = &self.committer.settings;
        let mut backoff: Backoff = settings.backoff.clone();
        let mut attempt = 1;
        loop {
            let error = match self.attempt(folder, date).await {
                Ok(done) => return Ok(done),
                Err(error) => error,
            };
            if error.class() == ErrorClass::Permanent || attempt >= settings.attempts.max(1) {
                return Err(error);
            }
            let wait = match &error {
                HfError::StaleParent { .. } => std::time::Duration::ZERO,
                HfError::RateLimited { wait, .. } => *wait,
                _ => backoff.fail(),
            };
            tracing::info!(repo = %self.hub.repo(), %folder, attempt, %error, retry_in = ?wait, "retrying the compaction from the listing");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One attempt: list, download, merge, then the commit.
    async fn attempt(&self, folder: &str, date: Date) -> Result<Option<Compacted>, HfError> {
        let listed = self.listing(folder).await?;
        let previous = self.record(folder, &listed).await?;
        let names: Vec<String> = listed.iter().map(|f| f.name.clone()).collect();
        let parts = select_parts(folder, &names, previous.as_ref())
            .map_err(|e| self.merge_error(folder, e))?;
        let Some(parts) = parts else {
            return Ok(None);
        };
        let work = meathook_files::local::StageDir::new(&self.scratch)
            .map_err(|e| self.local_error(folder, e))?;
        let mut local = Vec::new();
        for name in previous.iter().map(|c| &c.file).chain(&parts) {
            let file = listed
                .iter()
                .find(|f| &f.name == name)
                .ok_or_else(|| self.changed(folder, name))?;
            local.push((name.clone(), self.fetch(folder, file, work.path()).await?));
        }
        let merged = Merge::new(folder, date, previous, local, self.row_group_size)
            .write_in(work.path().to_path_buf())
            .await
            .map_err(|e| self.merge_error(folder, e))?;

        // The commit, while no round changes the branch.
        let _rounds = self.committer.hold_rounds().await;
        let now_listed = self.listing(folder).await?;
        for name in &merged.coverage.replaced {
            let was = listed.iter().find(|f| &f.name == name);
            let is = now_listed.iter().find(|f| &f.name == name);
            if was.is_none() || was.map(|f| &f.oid) != is.map(|f| &f.oid) {
                return Err(self.changed(folder, name));
            }
        }
        let path = format!("{folder}/{}", merged.coverage.file);
        let record = merged.coverage.to_json();
        let (oid, size) = (merged.coverage.sha256.clone(), merged.coverage.bytes);
        let head = self.upload(&path, &merged.path, &oid, size).await?;
        let mut ops = vec![
            CommitOp::LfsFile {
                path: path.clone(),
                oid,
                size,
            },
            CommitOp::File {
                path: format!("{folder}/{COVERAGE_FILE}"),
                content: record,
            },
        ];
        ops.extend(
            merged
                .coverage
                .replaced
                .iter()
                .map(|name| CommitOp::Delete {
                    path: format!("{folder}/{name}"),
                }),
        );
        self.step(folder, Step::Staged);
        let commit = Commit {
            target: self.hub.target.clone(),
            token: self.hub.token.clone(),
            summary: format!(
                "meathook: compact {folder} ({} files into one)",
                merged.coverage.replaced.len()
            ),
            parent: head,
            ops,
        };
        let id = self.committer.send_alone(&self.hub, commit).await?;
        self.step(folder, Step::Swapped);
        tracing::info!(repo = %self.hub.repo(), %folder, commit = %id, files = merged.coverage.replaced.len(), rows = merged.coverage.rows, "compacted");
        self.report(folder, date, &merged.coverage, &id).await?;
        Ok(Some(merged.compacted(folder)))
    }

    /// The files of `folder`, by name.
    async fn listing(&self, folder: &str) -> Result<Vec<Listed>, HfError> {
        let entries = self.hub.list_folder(folder, false).await?;
        Ok(entries
            .into_iter()
            .filter(|e| e.kind == "file")
            .filter_map(|e| {
                let name = e.path.rsplit('/').next()?.to_owned();
                Some(Listed {
                    name,
                    oid: e.lfs.as_ref().map(|l| l.oid.clone()),
                })
            })
            .collect())
    }

    /// The folder's compaction record, if it has one.
    async fn record(&self, folder: &str, listed: &[Listed]) -> Result<Option<Coverage>, HfError> {
        if !listed.iter().any(|f| f.name == COVERAGE_FILE) {
            return Ok(None);
        }
        let path = format!("{folder}/{COVERAGE_FILE}");
        let limit = usize::try_from(MAX_COVERAGE_BYTES).unwrap_or(usize::MAX);
        let Some(bytes) = self
            .hub
            .download("reading a day's compaction record", &path, limit)
            .await?
        else {
            return Err(self.changed(folder, COVERAGE_FILE));
        };
        Coverage::from_json(&bytes)
            .map(Some)
            .map_err(|e| HfError::Decode {
                repo: self.hub.repo(),
                call: "reading a day's compaction record",
                reason: format!("{path}: {e}"),
            })
    }

    /// Downloads `file` of `folder` into `dir`, checking its bytes against
    /// the SHA-256 the Hub listed.
    async fn fetch(&self, folder: &str, file: &Listed, dir: &Path) -> Result<PathBuf, HfError> {
        let path = format!("{folder}/{}", file.name);
        let Some(bytes) = self
            .hub
            .download("downloading a file to compact", &path, self.max_file_bytes)
            .await?
        else {
            return Err(self.changed(folder, &file.name));
        };
        let sha = meathook_files::layout::content_hash(&bytes);
        if let Some(oid) = &file.oid
            && unhex(oid) != Some(sha)
        {
            return Err(HfError::Decode {
                repo: self.hub.repo(),
                call: "downloading a file to compact",
                reason: format!(
                    "{path}: the bytes downloaded are not the ones the Hub lists ({oid})"
                ),
            });
        }
        let local = dir.join(&file.name);
        tokio::fs::write(&local, &bytes)
            .await
            .map_err(|e| self.local_error(folder, e))?;
        Ok(local)
    }

    /// Uploads the compacted file at `local` (SHA-256 `oid`, `size` bytes)
    /// to `path`, unless the branch has it already; the head preupload saw.
    async fn upload(
        &self,
        path: &str,
        local: &Path,
        oid: &str,
        size: u64,
    ) -> Result<Option<String>, HfError> {
        // Preupload sniffs the first bytes; the hash and size are the merge's.
        let mut sample = Vec::with_capacity(512);
        tokio::fs::File::open(local)
            .await
            .map_err(|e| self.local_error(path, e))?
            .take(512)
            .read_to_end(&mut sample)
            .await
            .map_err(|e| self.local_error(path, e))?;
        let answer = self
            .hub
            .call(
                "preupload",
                crate::action::Preupload {
                    target: self.hub.target.clone(),
                    token: self.hub.token.clone(),
                    files: vec![crate::action::PreuploadFile {
                        path: path.to_owned(),
                        size,
                        sample,
                    }],
                },
            )
            .await?;
        let there = answer
            .files
            .iter()
            .find(|f| f.path == path)
            .and_then(|f| f.oid.clone());
        if there
            .as_deref()
            .is_some_and(|o| o.eq_ignore_ascii_case(oid))
        {
            return Ok(answer.commit_oid);
        }
        let objects = self.hub.batch(vec![(oid.to_owned(), size)]).await?;
        let object = objects.first().ok_or_else(|| HfError::Decode {
            repo: self.hub.repo(),
            call: "LFS batch",
            reason: format!("no answer for {path} ({oid})"),
        })?;
        self.hub.upload(object, local, size, path).await?;
        Ok(answer.commit_oid)
    }

    /// Reports the compacted file to the catalog, if one is configured.
    async fn report(
        &self,
        folder: &str,
        date: Date,
        coverage: &Coverage,
        commit: &str,
    ) -> Result<(), HfError> {
        let Some(deliveries) = &self.deliveries else {
            return Ok(());
        };
        let delivery =
            compaction_delivery(&self.destination, folder, date, coverage).with_commit(commit);
        deliveries
            .report(delivery)
            .await
            .map_err(|e| HfError::Catalog {
                repo: self.hub.repo(),
                reason: e.to_string(),
            })
    }

    fn changed(&self, folder: &str, name: &str) -> HfError {
        HfError::Compaction {
            repo: self.hub.repo(),
            folder: folder.to_owned(),
            reason: format!("{name} changed while the folder was compacted; it is compacted again"),
            transient: true,
        }
    }

    fn merge_error(&self, folder: &str, error: CompactError) -> HfError {
        HfError::Compaction {
            repo: self.hub.repo(),
            folder: folder.to_owned(),
            reason: meathook_core::ErrorChain(&error).to_string(),
            transient: false,
        }
    }

    fn local_error(&self, folder: &str, error: std::io::Error) -> HfError {
        HfError::Compaction {
            repo: self.hub.repo(),
            folder: folder.to_owned(),
            reason: format!("the scratch directory {}: {error}", self.scratch.display()),
            transient: true,
        }
    }
}

/// A file of a folder, as the listing shows it.
#[derive(Debug)]
struct Listed {
    name: String,
    /// The SHA-256 of an LFS file's bytes.
    oid: Option<String>,
}

/// The folders of a listing.
/// The day folders of a recursive listing of `data` (the folders two
/// levels under it: a pipeline's, then a day's), each with the names of
/// the files directly in it, in path order.
fn day_folders<'a>(entries: &'a [TreeEntry], data: &str) -> BTreeMap<String, Vec<&'a str>> {
    let prefix = format!("{data}/");
    let mut days: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for e in entries {
        let Some(rest) = e.path.strip_prefix(&prefix) else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        match (e.kind.as_str(), parts.as_slice()) {
            ("directory", [_, _]) => {
                days.entry(e.path.clone()).or_default();
            }
            ("file", [pipeline, day, name]) => days
                .entry(format!("{prefix}{pipeline}/{day}"))
                .or_default()
                .push(name),
            _ => {}
        }
    }
    days
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, path: &str) -> TreeEntry {
        TreeEntry {
            kind: kind.into(),
            path: path.into(),
            size: 0,
            lfs: None,
        }
    }

    #[test]
    fn a_listing_gives_each_day_folder_its_files_and_tells_the_settled_ones() {
        let done = "2026-01-01-c00112233445566778899aabbccddeeff.parquet";
        let entries = vec![
            entry("file", "w/data/README.md"),
            entry("directory", "w/data/air"),
            entry("directory", "w/data/air/2026-01-01"),
            entry("file", "w/data/air/2026-01-01/_compacted.json"),
            entry("file", &format!("w/data/air/2026-01-01/{done}")),
            entry("directory", "w/data/air/2026-01-02"),
            entry("file", "w/data/air/2026-01-02/_compacted.json"),
            entry("file", &format!("w/data/air/2026-01-02/{done}")),
            entry("file", "w/data/air/2026-01-02/100000Z-late.parquet"),
            entry("directory", "w/data/air/2026-01-03"),
            entry("file", "w/data/air/2026-01-03/100000Z-a.parquet"),
            entry("directory", "w/data/air/2026-01-03/deeper"),
            entry("file", "w/data/air/2026-01-03/deeper/x.parquet"),
            entry("directory", "w/data/rain/2026-01-04"),
            entry("file", "w/other/air/2026-01-05/y.parquet"),
        ];
        let days = day_folders(&entries, "w/data");
        let names: Vec<&str> = days.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "w/data/air/2026-01-01",
                "w/data/air/2026-01-02",
                "w/data/air/2026-01-03",
                "w/data/rain/2026-01-04"
            ]
        );
        assert_eq!(days["w/data/air/2026-01-03"], ["100000Z-a.parquet"]);
        let settled_days: Vec<&str> = days
            .iter()
            .filter(|(_, files)| coverage::settled(files))
            .map(|(day, _)| day.as_str())
            .collect();
        assert_eq!(settled_days, ["w/data/air/2026-01-01"]);
        // A record beside a part only, or a compacted file without its
        // record, is work to look at.
        assert!(!coverage::settled(&[
            "_compacted.json",
            "100000Z-a.parquet"
        ]));
        assert!(!coverage::settled(&[done, "100000Z-a.parquet"]));
        assert!(!coverage::settled(&[]));
    }

    #[test]
    fn files_are_counted_by_repository_pipeline_and_fullest_folder() {
        let mut entries = vec![
            entry("file", "README.md"),
            entry("file", ".gitattributes"),
            entry("directory", "w/data"),
            entry("directory", "w/data/air"),
            entry("directory", "w/data/rain"),
        ];
        for day in 1..=3 {
            entries.push(entry("directory", &format!("w/data/air/2026-01-0{day}")));
            for n in 0..day {
                entries.push(entry(
                    "file",
                    &format!("w/data/air/2026-01-0{day}/{n}.parquet"),
                ));
            }
        }
        entries.push(entry("file", "w/data/rain/2026-01-01/0.parquet"));
        let counts = FileCounts::of(&entries, "w/data");
        assert_eq!(counts.files, 2 + 6 + 1);
        assert_eq!(
            counts.by_pipeline,
            [("w/data/air".to_owned(), 6), ("w/data/rain".to_owned(), 1)]
        );
        // w/data/air holds three day folders; 2026-01-03 holds three files:
        // a tie, named by the first folder in order.
        assert_eq!(counts.fullest_folder, Some(("w/data/air".to_owned(), 3)));
    }
}
