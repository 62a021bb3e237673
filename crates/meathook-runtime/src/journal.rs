//! `KeyJournal`: the dedupe memory, kept on disk across restarts.
//!
//! "Latest reading" APIs keep serving the same reading for a while. A
//! pipeline restarted after a crash would store it again if its dedupe
//! memory died with the process, so accepted keys are appended to a journal
//! and read back at start.
//!
//! ```text
//! entry (24 bytes, little endian; do not reorder):
//! +----------------------+-----------------------------+
//! | key hash: u128       | accepted at: i64 unix secs  |
//! +----------------------+-----------------------------+
//! ```
//!
//! A torn last entry (a crash mid-append) is ignored. The journal is read
//! entry by entry (memory holds the live keys only), never through a
//! symlink, and only if it is a regular file; an entry dated in the future
//! counts as accepted at load time. Entries older than
//! the horizon are dropped when the journal is loaded; when fewer than half
//! of its entries are live, it is rewritten (temp file, fsync, rename,
//! directory fsync). Keys are appended and fsynced after the sink stack
//! accepted their records, once per tick: a crash between the stack's
//! acknowledgement and that fsync can let one batch be stored twice after
//! the restart — never lost.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use meathook_files::fs::{Fs as _, FsFile as _, StdFile, StdFs};
use time::OffsetDateTime;

use crate::dedupe::{KeyHash, Seen};

const ENTRY: usize = 24;

/// An open key journal.
#[derive(Debug)]
pub(crate) struct KeyJournal {
    path: PathBuf,
    file: Arc<Mutex<StdFile>>,
    pending: Vec<u8>,
}

impl KeyJournal {
    /// Opens (or creates) the journal at `path` and loads its live keys
    /// into `seen`.
    pub(crate) async fn open(
        path: PathBuf,
        seen: &mut Seen,
        now: OffsetDateTime,
    ) -> std::io::Result<Self> {
        let horizon = seen.horizon();
        let load_path = path.clone();
        let (entries, file) = meathook_core::blocking(move || load(&load_path, horizon, now))
            .await
            .map_err(std::io::Error::other)??;
        for (key, at) in entries {
            seen.remember(key, at);
        }
        Ok(Self {
            path,
            file: Arc::new(Mutex::new(file)),
            pending: Vec::new(),
        })
    }

    /// Queues `key`, accepted at `at`, for the next [`sync`](Self::sync).
    pub(crate) fn push(&mut self, key: KeyHash, at: OffsetDateTime) {
        self.pending.extend_from_slice(&key.to_le_bytes());
        self.pending
            .extend_from_slice(&at.unix_timestamp().to_le_bytes());
    }

    /// Appends and fsyncs the queued keys.
    pub(crate) async fn sync(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.pending);
        let file = Arc::clone(&self.file);
        meathook_core::blocking(move || {
            let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
            file.write_all(&bytes)?;
            file.sync_data()
        })
        .await
        .map_err(std::io::Error::other)?
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads the live entries and returns them with the file opened for
/// appending, rewriting the file first when most entries have expired.
///
/// The journal is read one entry at a time, so memory holds only the live
/// keys, whatever the file's size. It is opened without following a
/// symlink and refused unless it is a regular file (a FIFO would block the
/// open for ever, a link to `/dev/zero` would never end). An entry dated
/// after `now` (a clock that ran ahead, a damaged file) counts as accepted
/// `now`, so it expires one horizon from now instead of holding back the
/// expiry of every later key.
fn load(
    path: &Path,
    horizon: std::time::Duration,
    now: OffsetDateTime,
) -> std::io::Result<(Vec<(KeyHash, OffsetDateTime)>, StdFile)> {
    let horizon = time::Duration::try_from(horizon).unwrap_or(time::Duration::MAX);
    let mut live = Vec::new();
    let mut total = 0usize;
    let mut torn = false;
    let exists = match StdFs.open_read(path) {
        Ok(file) => {
            let mut reader = std::io::BufReader::with_capacity(64 << 10, file);
            let mut entry = [0u8; ENTRY];
            loop {
                let mut filled = 0;
                while filled < ENTRY {
                    match reader.read(&mut entry[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                if filled < ENTRY {
                    torn = filled > 0;
                    break;
                }
                total += 1;
                if let Some((key, at)) = decode(&entry) {
                    let at = at.min(now);
                    if now - at < horizon {
                        live.push((key, at));
                    }
                }
            }
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    if exists && (torn || live.len() * 2 < total) {
        rewrite(path, &live)?;
    }
    let file = match StdFs.open_append(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => StdFs.create_new(path)?,
        opened => opened?,
    };
    Ok((live, file))
}

/// One entry's key and time; `None` for a time out of range.
fn decode(entry: &[u8; ENTRY]) -> Option<(KeyHash, OffsetDateTime)> {
    let (key, at) = entry.split_at(16);
    let key = u128::from_le_bytes(key.try_into().ok()?);
    let at = OffsetDateTime::from_unix_timestamp(i64::from_le_bytes(at.try_into().ok()?)).ok()?;
    Some((key, at))
}

/// Replaces the journal with `live` atomically. The temporary file is
/// created anew (whatever was at its name, a symlink included, is removed
/// first, never written through).
fn rewrite(path: &Path, live: &[(KeyHash, OffsetDateTime)]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut out = Vec::with_capacity(live.len() * ENTRY);
    for (key, at) in live {
        out.extend_from_slice(&key.to_le_bytes());
        out.extend_from_slice(&at.unix_timestamp().to_le_bytes());
    }
    match StdFs.remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = StdFs.create_new(&tmp)?;
    file.write_all(&out)?;
    file.sync_data()?;
    drop(file);
    StdFs.rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        StdFs.sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::time::Duration;
    use time::macros::datetime;

    #[tokio::test]
    async fn keys_survive_a_restart_and_expired_or_torn_ones_are_dropped() {
        let dir = std::env::temp_dir().join(format!("meathook-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.keys");
        let _ = std::fs::remove_file(&path);
        let t0 = datetime!(2026-11-23 10:00 UTC);

        let mut seen = Seen::new(Duration::from_secs(3600));
        let mut journal = KeyJournal::open(path.clone(), &mut seen, t0).await.unwrap();
        journal.push(1, t0);
        journal.push(2, t0 + time::Duration::minutes(50));
        journal.sync().await.unwrap();
        drop(journal);
        // A crash mid-append leaves a torn entry.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&[7; 10])
            .unwrap();

        let mut seen = Seen::new(Duration::from_secs(3600));
        let later = t0 + time::Duration::minutes(70);
        let journal = KeyJournal::open(path.clone(), &mut seen, later)
            .await
            .unwrap();
        assert!(!seen.contains(1), "an expired key came back");
        assert!(seen.contains(2), "a live key was lost");
        assert_eq!(
            std::fs::metadata(journal.path()).unwrap().len(),
            ENTRY as u64,
            "not compacted"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("meathook-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entry(key: KeyHash, at: i64) -> Vec<u8> {
        let mut bytes = key.to_le_bytes().to_vec();
        bytes.extend_from_slice(&at.to_le_bytes());
        bytes
    }

    #[tokio::test]
    async fn an_entry_from_the_future_expires_one_horizon_from_now() {
        let dir = scratch("future");
        let path = dir.join("p.keys");
        let t0 = datetime!(2026-11-23 10:00 UTC);
        // A key dated in 2100 (the clock ran ahead), then one of now.
        let mut bytes = entry(1, datetime!(2100-01-01 0:00 UTC).unix_timestamp());
        bytes.extend(entry(2, t0.unix_timestamp()));
        std::fs::write(&path, bytes).unwrap();

        let mut seen = Seen::new(Duration::from_secs(3600));
        let _journal = KeyJournal::open(path, &mut seen, t0).await.unwrap();
        assert!(seen.contains(1) && seen.contains(2));
        seen.expire(t0 + time::Duration::minutes(61));
        assert!(
            !seen.contains(1),
            "a key from the future never expires and holds back every later key"
        );
        assert!(!seen.contains(2), "expiry stopped behind the future key");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_journal_that_is_a_symlink_or_a_fifo_is_refused_at_once() {
        let dir = scratch("hostile");
        let t0 = datetime!(2026-11-23 10:00 UTC);
        // A symlink to a file elsewhere: refused, the file untouched.
        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = dir.join("link.keys");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let mut seen = Seen::new(Duration::from_secs(3600));
        let opened = KeyJournal::open(link, &mut seen, t0).await;
        assert!(opened.is_err(), "a symlinked journal was opened");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        // A FIFO: refused without blocking.
        let fifo = dir.join("fifo.keys");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let opened = tokio::time::timeout(
            Duration::from_secs(10),
            KeyJournal::open(fifo, &mut seen, t0),
        )
        .await
        .expect("opening a FIFO journal blocked");
        let error = opened.unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
        // A temporary file that is a symlink is replaced, not written through.
        let path = dir.join("p.keys");
        let mut bytes = entry(1, 0);
        bytes.extend([7; 5]); // torn and expired: rewritten
        std::fs::write(&path, bytes).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("p.keys.tmp")).unwrap();
        let _journal = KeyJournal::open(path.clone(), &mut seen, t0).await.unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        let _ = std::fs::remove_dir_all(dir);
    }
}
