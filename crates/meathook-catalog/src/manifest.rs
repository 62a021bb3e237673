//! The manifest: every delivery record, one JSON line each, appended and
//! fsynced before the sink lets its batch go.
//!
//! **Architecture invariant:** a record the manifest acknowledged is on
//! disk (`fdatasync` returned). A failed append is cut back off the file,
//! so a torn line never sits between two good ones; a torn tail left by a
//! crash is cut off when the manifest is next opened for writing (it was
//! never acknowledged, so its batch is still spooled and will be reported
//! again). Readers stop before a line without its newline and skip, count
//! and log a line that does not parse. Each append (and each repair) holds
//! an exclusive lock on the file, so processes sharing one manifest never
//! cut or interleave each other's lines.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use meathook_core::{CatalogStats, Deliveries, Delivery, DeliveryLog, DeliveryLogError};
use tokio::sync::Notify;

use crate::record::DeliveryRecord;

/// The manifest's usual file name, in the spool root.
pub const MANIFEST_FILE: &str = "deliveries.jsonl";

/// A line longer than this is not a delivery record (they are a few hundred
/// bytes); readers skip it without holding it in memory.
const MAX_LINE: u64 = 1 << 20;

/// A manifest file or cursor operation failed.
#[derive(Debug, thiserror::Error)]
#[error("{action} {path} failed: {source}; check the directory's free space and permissions")]
pub struct ManifestError {
    /// What was being done.
    pub action: &'static str,
    /// The file.
    pub path: PathBuf,
    /// The operating system's answer.
    pub source: io::Error,
}

impl ManifestError {
    fn new(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self {
            action,
            path,
            source,
        }
    }
}

/// The JSON-lines manifest; cheap to clone, all clones append to one file.
#[derive(Debug, Clone)]
pub struct Manifest {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    writer: Mutex<Writer>,
    stats: CatalogStats,
    appended: Notify,
}

#[derive(Debug)]
struct Writer {
    file: File,
}

/// Records read from a manifest, and where the next read starts.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Chunk {
    /// The records, in manifest order.
    pub records: Vec<DeliveryRecord>,
    /// Byte offset just after the last complete line read.
    pub next: u64,
    /// Lines skipped because they do not parse (or are absurdly long).
    pub skipped: u64,
    /// Whether the read stopped at the end of the complete lines.
    pub at_end: bool,
}

impl Manifest {
    /// Opens (or creates) the manifest at `path` for appending, cutting off
    /// a torn last line. Blocking: call it from a blocking thread or at
    /// start-up (or use [`open_async`](Self::open_async)).
    ///
    /// # Errors
    ///
    /// [`ManifestError`] when the directory or file cannot be created,
    /// read or repaired.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, ManifestError> {
        Self::open_with_stats(path, CatalogStats::default())
    }

    /// [`open`](Self::open), counting into `stats` (handed to the runtime's
    /// metrics before the manifest is opened, or shared by several
    /// manifests).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_with_stats(
        path: impl Into<PathBuf>,
        stats: CatalogStats,
    ) -> Result<Self, ManifestError> {
        let path = path.into();
        let dir = parent_of(&path);
        std::fs::create_dir_all(&dir).map_err(ManifestError::new("creating directory", &dir))?;
        let existed = match std::fs::symlink_metadata(&path) {
            // Appending through a symlink or blocking on a FIFO is refused.
            Ok(meta) if !meta.is_file() => {
                return Err(ManifestError::new("opening", &path)(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a regular file (a symlink, directory, FIFO or device): move it away",
                )));
            }
            Ok(_) => true,
            Err(_) => false,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(ManifestError::new("opening", &path))?;
        file.lock().map_err(ManifestError::new("locking", &path))?;
        let repaired = repair_tail(&mut file, &path);
        let _ = file.unlock();
        repaired.map_err(ManifestError::new("repairing", &path))?;
        if !existed {
            sync_dir(&dir).map_err(ManifestError::new("syncing directory", &dir))?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(Writer { file }),
                stats,
                appended: Notify::new(),
            }),
        })
    }

    /// [`open`](Self::open) on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub async fn open_async(path: impl Into<PathBuf>) -> Result<Self, ManifestError> {
        let path = path.into();
        let shown = path.clone();
        meathook_core::blocking(move || Self::open(path))
            .await
            .map_err(|e| ManifestError {
                action: "opening",
                path: shown,
                source: io::Error::other(e.to_string()),
            })?
    }

    /// The manifest's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The catalog's figures (manifest writes and failures here; the
    /// back-fill adds the database's).
    pub fn stats(&self) -> CatalogStats {
        self.inner.stats.clone()
    }

    /// A handle for terminal sinks (`FileSink::with_deliveries`).
    pub fn deliveries(&self) -> Deliveries {
        Deliveries::new(self.clone())
    }

    /// Reads up to `max` records starting at byte `offset` (a line
    /// boundary). Blocking.
    ///
    /// # Errors
    ///
    /// [`ManifestError`] when the file cannot be read.
    pub fn read_from(&self, offset: u64, max: usize) -> Result<Chunk, ManifestError> {
        read_chunk(&self.inner.path, offset, max)
    }

    /// Waits until a record is appended (or returns at once if one was
    /// appended since the last wait).
    pub async fn appended(&self) {
        self.inner.appended.notified().await;
    }

    fn append(&self, line: &[u8]) -> io::Result<()> {
        let mut w = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let file = &mut w.file;
        file.lock()?;
        let result = self.append_locked(file, line);
        let _ = file.unlock();
        result
    }

    /// Appends under the file lock: after a torn line another process left,
    /// if any; cut back off again if the write or the sync fails.
    fn append_locked(&self, file: &mut File, line: &[u8]) -> io::Result<()> {
        let before = repair_tail(file, &self.inner.path)?;
        match file.write_all(line).and_then(|()| file.sync_data()) {
            Ok(()) => Ok(()),
            Err(e) => {
                // Never leave a torn line for the next append to follow.
                if let Err(cut) = file.set_len(before).and_then(|()| file.sync_data()) {
                    tracing::error!(
                        path = %self.inner.path.display(),
                        error = %cut,
                        "cannot cut a failed append off the delivery manifest"
                    );
                }
                Err(e)
            }
        }
    }
}

impl DeliveryLog for Manifest {
    fn record(&self, delivery: &Delivery) -> Result<(), DeliveryLogError> {
        let record = DeliveryRecord::from(delivery);
        let mut line = serde_json::to_vec(&record).map_err(|e| DeliveryLogError::Encode {
            path: delivery.path.clone(),
            reason: e.to_string(),
        })?;
        line.push(b'\n');
        match self.append(&line) {
            Ok(()) => {
                self.inner.stats.manifest_written();
                self.inner.appended.notify_one();
                Ok(())
            }
            Err(source) => {
                self.inner.stats.manifest_failed();
                Err(DeliveryLogError::Write {
                    log: self.inner.path.display().to_string(),
                    path: delivery.path.clone(),
                    action: "appending and syncing",
                    source,
                })
            }
        }
    }
}

/// Reads up to `max` records of the manifest at `path` from byte `offset`,
/// without opening it for writing (a running process may be appending).
/// A missing file reads as empty.
///
/// # Errors
///
/// [`ManifestError`] when the file cannot be read.
pub fn read_chunk(path: &Path, offset: u64, max: usize) -> Result<Chunk, ManifestError> {
    let mut chunk = Chunk {
        next: offset,
        ..Chunk::default()
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            chunk.at_end = true;
            return Ok(chunk);
        }
        Err(e) => return Err(ManifestError::new("opening", path)(e)),
    };
    let mut reader = BufReader::new(file);
    reader
        .seek(SeekFrom::Start(offset))
        .map_err(ManifestError::new("reading", path))?;
    let mut line = Vec::new();
    while chunk.records.len() < max {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .map_err(ManifestError::new("reading", path))?;
        if n == 0 {
            chunk.at_end = true;
            break;
        }
        if line.last() != Some(&b'\n') {
            if (n as u64) < MAX_LINE {
                // A line still being written (or torn): not ours yet.
                chunk.at_end = true;
                break;
            }
            // Absurdly long: skip to its end.
            let Some(rest) = skip_line(&mut reader).map_err(ManifestError::new("reading", path))?
            else {
                chunk.at_end = true;
                break;
            };
            chunk.next += n as u64 + rest;
            chunk.skipped += 1;
            continue;
        }
        chunk.next += n as u64;
        match serde_json::from_slice::<DeliveryRecord>(&line) {
            Ok(record) => chunk.records.push(record),
            Err(e) => {
                chunk.skipped += 1;
                tracing::warn!(
                    path = %path.display(),
                    offset = chunk.next - n as u64,
                    error = %e,
                    "skipping a manifest line that is not a delivery record"
                );
            }
        }
    }
    Ok(chunk)
}

/// Calls `f` with every record of the manifest at `path`, in order,
/// reading a bounded chunk at a time. Returns the lines skipped.
///
/// # Errors
///
/// [`ManifestError`] when the file cannot be read.
pub fn for_each_record(
    path: &Path,
    mut f: impl FnMut(DeliveryRecord),
) -> Result<u64, ManifestError> {
    let mut offset = 0;
    let mut skipped = 0;
    loop {
        let chunk = read_chunk(path, offset, 1024)?;
        skipped += chunk.skipped;
        offset = chunk.next;
        let done = chunk.at_end;
        chunk.records.into_iter().for_each(&mut f);
        if done {
            return Ok(skipped);
        }
    }
}

/// Counts the complete lines from byte `offset` to the end (the back-fill
/// backlog when `offset` is its cursor).
///
/// # Errors
///
/// [`ManifestError`] when the file cannot be read.
pub fn count_lines(path: &Path, offset: u64) -> Result<u64, ManifestError> {
    let mut count = 0;
    let mut offset = offset;
    loop {
        let chunk = read_chunk(path, offset, 4096)?;
        count += chunk.records.len() as u64 + chunk.skipped;
        offset = chunk.next;
        if chunk.at_end {
            return Ok(count);
        }
    }
}

/// Reads to the end of the current line; the bytes consumed, or `None` at
/// the end of the file before a newline.
fn skip_line(reader: &mut impl BufRead) -> io::Result<Option<u64>> {
    let mut consumed = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            reader.consume(i + 1);
            return Ok(Some(consumed + i as u64 + 1));
        }
        let len = buf.len();
        reader.consume(len);
        consumed += len as u64;
    }
}

/// Cuts a torn last line (one without its newline) off `file`; returns the
/// length of the complete lines. Call under the file lock.
fn repair_tail(file: &mut File, path: &Path) -> io::Result<u64> {
    let on_disk = file.metadata()?.len();
    if on_disk == 0 {
        return Ok(0);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(on_disk - 1))?;
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(on_disk);
    }
    let len = complete_len(file)?;
    tracing::warn!(
        path = %path.display(),
        cut = on_disk - len,
        "cutting a torn last line off the delivery manifest (it was never acknowledged)"
    );
    file.set_len(len)?;
    file.sync_data()?;
    Ok(len)
}

/// The length of `file` up to and including its last newline.
fn complete_len(file: &mut File) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let n = usize::try_from(end - start).unwrap_or(buf.len());
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

pub(crate) fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use meathook_core::WindowMeta;
    use time::OffsetDateTime;

    use super::*;

    fn delivery(i: u64) -> Delivery {
        let window = WindowMeta::containing(
            "air",
            OffsetDateTime::UNIX_EPOCH + Duration::from_secs(3600 * i),
            Duration::from_secs(3600),
        );
        Delivery::new(
            &window,
            "/data",
            format!("data/air/{i}.parquet"),
            i,
            10 * i,
            [7; 32],
        )
    }

    #[test]
    fn records_are_appended_read_back_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest::open(dir.path().join("sub").join(MANIFEST_FILE)).unwrap();
        for i in 0..5 {
            m.record(&delivery(i)).unwrap();
        }
        assert_eq!(m.stats().snapshot().manifest_writes, 5);
        let first = m.read_from(0, 3).unwrap();
        assert_eq!(first.records.len(), 3);
        assert!(!first.at_end);
        let rest = m.read_from(first.next, 10).unwrap();
        assert_eq!(rest.records.len(), 2);
        assert!(rest.at_end);
        assert_eq!(rest.records[1].path, "data/air/4.parquet");
        assert_eq!(count_lines(m.path(), first.next).unwrap(), 2);
    }

    #[test]
    fn a_torn_tail_is_invisible_to_readers_and_cut_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let m = Manifest::open(&path).unwrap();
        m.record(&delivery(1)).unwrap();
        let good = std::fs::metadata(&path).unwrap().len();
        drop(m);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"v":1,"pipeline":"ai"#).unwrap();
        drop(f);
        let chunk = read_chunk(&path, 0, 10).unwrap();
        assert_eq!(
            (chunk.records.len(), chunk.next, chunk.skipped),
            (1, good, 0)
        );

        let m = Manifest::open(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good);
        m.record(&delivery(2)).unwrap();
        let chunk = read_chunk(&path, 0, 10).unwrap();
        assert_eq!(
            chunk.records.len(),
            2,
            "the new line does not follow a torn one"
        );
    }

    #[test]
    fn a_torn_line_left_by_another_writer_is_cut_before_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let m = Manifest::open(&path).unwrap();
        m.record(&delivery(1)).unwrap();
        // Another process sharing the manifest died mid-line.
        let mut other = OpenOptions::new().append(true).open(&path).unwrap();
        other.write_all(br#"{"v":1,"pipel"#).unwrap();
        drop(other);
        m.record(&delivery(2)).unwrap();
        let chunk = read_chunk(&path, 0, 10).unwrap();
        let paths: Vec<_> = chunk.records.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["data/air/1.parquet", "data/air/2.parquet"]);
        assert_eq!(chunk.skipped, 0);
    }

    #[test]
    fn a_garbage_line_is_skipped_and_counted_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        std::fs::write(&path, b"not json\n").unwrap();
        let m = Manifest::open(&path).unwrap();
        m.record(&delivery(3)).unwrap();
        let mut seen = Vec::new();
        let skipped = for_each_record(&path, |r| seen.push(r.path)).unwrap();
        assert_eq!((skipped, seen), (1, vec!["data/air/3.parquet".to_owned()]));
    }

    #[test]
    fn a_missing_manifest_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let chunk = read_chunk(&dir.path().join("none.jsonl"), 0, 10).unwrap();
        assert!(chunk.at_end && chunk.records.is_empty());
    }
}
