//! The back-fill: a task that copies the manifest into PostgreSQL.
//!
//! **Architecture invariant:** a database outage never blocks or loses a
//! delivery. Sinks only ever write the manifest; this task reads it from a
//! durable cursor (a byte offset in `<manifest>.cursor`, replaced
//! atomically after each committed batch) and upserts. Upserts are
//! idempotent, so a cursor that lags (a crash after the commit, before the
//! cursor was replaced) only means a few records are written twice, as one
//! row each. While the database is away, the task retries with capped,
//! jittered backoff and keeps `backlog` up to date.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use meathook_core::{Backoff, CatalogStats};
use tokio::sync::watch;

use crate::manifest::{self, Chunk, Manifest, ManifestError};
use crate::postgres::{Catalog, PostgresConfig, PostgresError};

/// Records per database transaction.
pub const DEFAULT_BATCH: usize = 256;

/// How long the last pass at [`BackfillHandle::stop`] may take.
const FINAL_PASS: Duration = Duration::from_secs(5);

/// How often the task looks at the manifest when no append woke it.
pub const DEFAULT_POLL: Duration = Duration::from_secs(5);

/// Why a back-fill pass stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackfillError {
    /// The manifest or the cursor could not be read or written.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The database could not be reached or written.
    #[error(transparent)]
    Database(#[from] PostgresError),
    /// A blocking file task stopped.
    #[error("a back-fill file task stopped: {0}")]
    Task(String),
    /// A setting cannot work (a zero batch or poll interval); found before
    /// anything is read. What to do: fix the named setting.
    #[error("the back-fill's {setting} setting cannot be used: {reason}")]
    InvalidSetting {
        /// The setting (its setter is `with_` and this name).
        setting: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Copies a manifest into PostgreSQL.
///
/// Sinks only ever write the manifest; this reads it from a durable cursor
/// (`<manifest>.cursor`, a byte offset replaced atomically after each
/// committed batch) and upserts, so a database outage never blocks or loses
/// a delivery. A lagging cursor (a crash after a commit, before the cursor
/// moved) only rewrites a few rows. While the database is away,
/// [`spawn`](Self::spawn)'s task retries with capped, jittered backoff and
/// keeps the backlog figure of [`CatalogStats`] up to date.
#[derive(Debug)]
pub struct Backfill {
    manifest: Manifest,
    config: PostgresConfig,
    cursor: PathBuf,
    batch: usize,
    poll: Duration,
    backoff: Backoff,
    catalog: Option<Catalog>,
}

impl Backfill {
    /// A back-fill of `manifest` into the catalog at `config`, with a
    /// backoff from one second to one minute.
    pub fn new(manifest: Manifest, config: PostgresConfig) -> Self {
        manifest.stats().database_configured();
        let cursor = cursor_path(manifest.path());
        Self {
            manifest,
            config,
            cursor,
            batch: DEFAULT_BATCH,
            poll: DEFAULT_POLL,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            catalog: None,
        }
    }

    /// Delays between attempts while the database is unreachable.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Records per transaction (zero is refused by `run_once` and
    /// `spawn`).
    pub fn with_records_per_transaction(mut self, records: usize) -> Self {
        self.batch = records;
        self
    }

    /// How often to look at the manifest without a wake-up.
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// The catalog's figures (shared with the manifest).
    pub fn stats(&self) -> CatalogStats {
        self.manifest.stats()
    }

    /// Copies everything in the manifest now, once: connects if needed,
    /// upserts batch by batch, moves the cursor. Returns the records
    /// written.
    ///
    /// # Errors
    ///
    /// [`BackfillError`] at the first failure; what was committed before it
    /// stays committed and the cursor says so.
    pub async fn run_once(&mut self) -> Result<u64, BackfillError> {
        self.check()?;
        let stats = self.stats();
        let mut written = 0;
        let mut cursor = self.load_cursor().await?;
        loop {
            let catalog = match self.catalog.take() {
                Some(c) if !c.is_closed() => c,
                _ => match self.config.connect().await {
                    Ok(c) => {
                        stats.database_reached();
                        c
                    }
                    Err(e) => {
                        stats.database_failed();
                        self.note_backlog(cursor).await;
                        return Err(e.into());
                    }
                },
            };
            let catalog = self.catalog.insert(catalog);
            let chunk = read(&self.manifest, cursor, self.batch).await?;
            if chunk.records.is_empty() {
                if chunk.next != cursor {
                    store_cursor(&self.cursor, chunk.next).await?;
                }
                stats.set_backlog(0);
                return Ok(written);
            }
            match catalog.upsert(&chunk.records).await {
                Ok(n) => {
                    stats.database_written(n);
                    written += n;
                }
                Err(e) if e.is_refusal() => {
                    // One record the database cannot store must not hold
                    // up the rest: write them one by one, set it aside.
                    written += self.one_by_one(&chunk, cursor).await?;
                }
                Err(e) => {
                    stats.database_failed();
                    self.catalog = None;
                    self.note_backlog(cursor).await;
                    return Err(e.into());
                }
            }
            cursor = chunk.next;
            store_cursor(&self.cursor, cursor).await?;
            if chunk.at_end {
                stats.set_backlog(0);
                return Ok(written);
            }
        }
    }

    /// The first setting that cannot work.
    fn check(&self) -> Result<(), BackfillError> {
        let invalid = |setting, reason| Err(BackfillError::InvalidSetting { setting, reason });
        if self.batch == 0 {
            return invalid(
                "records_per_transaction",
                "a transaction of zero records writes nothing",
            );
        }
        if self.poll.is_zero() {
            return invalid(
                "poll_interval",
                "a zero interval would read the manifest without pause",
            );
        }
        Ok(())
    }

    /// Runs until stopped: a pass whenever the manifest grows (or every
    /// poll interval), retrying with backoff while the database is away.
    ///
    /// # Errors
    ///
    /// [`BackfillError::InvalidSetting`], before the task starts.
    pub fn spawn(mut self) -> Result<BackfillHandle, BackfillError> {
        self.check()?;
        let (stop, mut stopped) = watch::channel(false);
        let stats = self.stats();
        let task = tokio::spawn(async move {
            let mut failures_logged = 0u32;
            loop {
                let wait = match self.run_once().await {
                    Ok(written) => {
                        if failures_logged > 0 {
                            tracing::info!(
                                target = %self.config.target(),
                                "catalog database reachable again; back-filling"
                            );
                            failures_logged = 0;
                        }
                        if written > 0 {
                            tracing::debug!(written, "deliveries back-filled into the catalog");
                        }
                        self.backoff.reset();
                        None
                    }
                    Err(e) => {
                        let delay = self.backoff.fail();
                        // Loud on the first failure, then every tenth.
                        if failures_logged.is_multiple_of(10) {
                            tracing::warn!(
                                error = %e,
                                retry_in = ?delay,
                                "catalog back-fill failed; deliveries wait in the manifest"
                            );
                        }
                        failures_logged = failures_logged.saturating_add(1);
                        Some(delay)
                    }
                };
                let manifest = self.manifest.clone();
                tokio::select! {
                    _ = stopped.changed() => {
                        // One last pass for what the drain delivered; what
                        // it cannot copy in time waits for the next start.
                        if wait.is_none() {
                            let _ = tokio::time::timeout(FINAL_PASS, self.run_once()).await;
                        }
                        break;
                    }
                    () = tokio::time::sleep(wait.unwrap_or(self.poll)) => {}
                    () = manifest.appended(), if wait.is_none() => {}
                }
            }
        });
        Ok(BackfillHandle { stop, task, stats })
    }

    /// Upserts `chunk` record by record; a record the database refuses is
    /// appended to `<manifest>.rejected` with the reason, logged and
    /// counted, and skipped.
    async fn one_by_one(&mut self, chunk: &Chunk, cursor: u64) -> Result<u64, BackfillError> {
        let stats = self.stats();
        let mut written = 0;
        for record in &chunk.records {
            let Some(catalog) = self.catalog.as_mut() else {
                break;
            };
            match catalog.upsert(std::slice::from_ref(record)).await {
                Ok(n) => {
                    stats.database_written(n);
                    written += n;
                }
                Err(e) if e.is_refusal() => {
                    tracing::error!(
                        path = %record.path,
                        pipeline = %record.pipeline,
                        error = %e,
                        "the catalog database refused a delivery record; it is kept in the rejected file"
                    );
                    stats.database_refused();
                    let line = serde_json::json!({ "record": record, "error": e.to_string() });
                    let path = rejected_path(self.manifest.path());
                    blocking(move || append_line(&path, &line.to_string())).await??;
                }
                Err(e) => {
                    stats.database_failed();
                    self.catalog = None;
                    self.note_backlog(cursor).await;
                    return Err(e.into());
                }
            }
        }
        Ok(written)
    }

    async fn load_cursor(&self) -> Result<u64, BackfillError> {
        let path = self.cursor.clone();
        let manifest = self.manifest.path().to_path_buf();
        Ok(blocking(move || load_cursor(&path, &manifest)).await??)
    }

    async fn note_backlog(&self, cursor: u64) {
        let path = self.manifest.path().to_path_buf();
        if let Ok(Ok(n)) = blocking(move || manifest::count_lines(&path, cursor)).await {
            self.stats().set_backlog(n);
        }
    }
}

/// A running back-fill.
#[derive(Debug)]
pub struct BackfillHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    stats: CatalogStats,
}

impl BackfillHandle {
    /// The catalog's figures.
    pub fn stats(&self) -> CatalogStats {
        self.stats.clone()
    }

    /// Stops after the current pass and one last pass (at most five
    /// seconds, skipped while the database is away); what is not copied
    /// yet waits in the manifest for the next start.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// `<manifest>.cursor`.
pub fn cursor_path(manifest: &Path) -> PathBuf {
    let mut name = manifest.file_name().unwrap_or_default().to_os_string();
    name.push(".cursor");
    manifest.with_file_name(name)
}

/// `<manifest>.rejected`: records the database refused, with the reason.
pub fn rejected_path(manifest: &Path) -> PathBuf {
    let mut name = manifest.file_name().unwrap_or_default().to_os_string();
    name.push(".rejected");
    manifest.with_file_name(name)
}

fn append_line(path: &Path, line: &str) -> Result<(), ManifestError> {
    let fail = |action: &'static str| {
        let path = path.to_path_buf();
        move |source| ManifestError {
            action,
            path,
            source,
        }
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(fail("opening"))?;
    writeln!(f, "{line}")
        .and_then(|()| f.sync_data())
        .map_err(fail("appending to"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, BackfillError> {
    meathook_core::blocking(f)
        .await
        .map_err(|e| BackfillError::Task(e.to_string()))
}

async fn read(manifest: &Manifest, offset: u64, max: usize) -> Result<Chunk, BackfillError> {
    let manifest = manifest.clone();
    Ok(blocking(move || manifest.read_from(offset, max)).await??)
}

/// The cursor's offset; 0 when there is none, or when it points past the
/// manifest's end (the manifest was replaced: copy it all again, which the
/// upsert makes harmless).
fn load_cursor(path: &Path, manifest: &Path) -> Result<u64, ManifestError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(ManifestError {
                action: "reading",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let len = std::fs::metadata(manifest).map(|m| m.len()).unwrap_or(0);
    match text.trim().parse::<u64>() {
        Ok(offset) if offset <= len => Ok(offset),
        _ => {
            tracing::warn!(
                cursor = %path.display(),
                "the back-fill cursor is unreadable or past the manifest's end; copying the manifest again from the start"
            );
            Ok(0)
        }
    }
}

async fn store_cursor(path: &Path, offset: u64) -> Result<(), BackfillError> {
    let path = path.to_path_buf();
    Ok(blocking(move || write_cursor(&path, offset)).await??)
}

/// Replaces the cursor atomically: temporary file, fsync, rename,
/// directory fsync.
fn write_cursor(path: &Path, offset: u64) -> Result<(), ManifestError> {
    let tmp = path.with_extension("cursor.tmp");
    let fail = |action: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| ManifestError {
            action,
            path: p,
            source,
        }
    };
    let mut f = std::fs::File::create(&tmp).map_err(fail("creating", &tmp))?;
    writeln!(f, "{offset}")
        .and_then(|()| f.sync_data())
        .map_err(fail("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(fail("renaming", &tmp))?;
    let dir = manifest::parent_of(path);
    manifest::sync_dir(&dir).map_err(fail("syncing directory", &dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_survives_and_a_stale_one_restarts_from_zero() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("deliveries.jsonl");
        std::fs::write(&manifest, b"0123456789\n").unwrap();
        let cursor = cursor_path(&manifest);
        assert_eq!(cursor, dir.path().join("deliveries.jsonl.cursor"));
        assert_eq!(load_cursor(&cursor, &manifest).unwrap(), 0);
        write_cursor(&cursor, 11).unwrap();
        assert_eq!(load_cursor(&cursor, &manifest).unwrap(), 11);
        write_cursor(&cursor, 99).unwrap();
        assert_eq!(load_cursor(&cursor, &manifest).unwrap(), 0, "past the end");
    }

    #[tokio::test]
    async fn a_zero_batch_or_poll_interval_is_refused_by_name_before_any_read() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = Manifest::open(dir.path().join("deliveries.jsonl")).unwrap();
        // No server listens there: the check must come before connecting.
        let config = PostgresConfig::parse("postgres://nobody@127.0.0.1:1/none").unwrap();
        let backfill = || Backfill::new(manifest.clone(), config.clone());
        for (mut bad, name) in [
            (
                backfill().with_records_per_transaction(0),
                "records_per_transaction",
            ),
            (
                backfill().with_poll_interval(Duration::ZERO),
                "poll_interval",
            ),
        ] {
            match bad.run_once().await {
                Err(BackfillError::InvalidSetting { setting, .. }) => assert_eq!(setting, name),
                other => panic!("{name}: {other:?}"),
            }
            match bad.spawn() {
                Err(BackfillError::InvalidSetting { setting, .. }) => assert_eq!(setting, name),
                Err(other) => panic!("{name}: {other:?}"),
                Ok(_) => panic!("{name}: the back-fill started"),
            }
        }
    }
}
