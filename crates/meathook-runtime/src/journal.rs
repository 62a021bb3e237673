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
//! A torn last entry (a crash mid-append) is ignored. Entries older than
//! the horizon are dropped when the journal is loaded; when fewer than half
//! of its entries are live, it is rewritten (temp file, fsync, rename,
//! directory fsync). Keys are appended and fsynced after the sink stack
//! accepted their records, once per tick: a crash between the stack's
//! acknowledgement and that fsync can let one batch be stored twice after
//! the restart — never lost.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;

use crate::dedupe::{KeyHash, Seen};

const ENTRY: usize = 24;

/// An open key journal.
#[derive(Debug)]
pub(crate) struct KeyJournal {
    path: PathBuf,
    file: Arc<Mutex<std::fs::File>>,
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
        let (entries, file) = tokio::task::spawn_blocking(move || load(&load_path, horizon, now))
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
        tokio::task::spawn_blocking(move || {
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
fn load(
    path: &Path,
    horizon: std::time::Duration,
    now: OffsetDateTime,
) -> std::io::Result<(Vec<(KeyHash, OffsetDateTime)>, std::fs::File)> {
    let mut bytes = Vec::new();
    match std::fs::File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let horizon = time::Duration::try_from(horizon).unwrap_or(time::Duration::MAX);
    let total = bytes.len() / ENTRY;
    let live: Vec<(KeyHash, OffsetDateTime)> = bytes
        .chunks_exact(ENTRY)
        .filter_map(|entry| {
            let (key, at) = entry.split_at(16);
            let key = u128::from_le_bytes(key.try_into().ok()?);
            let at = OffsetDateTime::from_unix_timestamp(i64::from_le_bytes(at.try_into().ok()?))
                .ok()?;
            (now - at < horizon).then_some((key, at))
        })
        .collect();
    let torn = bytes.len() % ENTRY != 0;
    if torn || live.len() * 2 < total {
        rewrite(path, &live)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    Ok((live, file))
}

/// Replaces the journal with `live` atomically.
fn rewrite(path: &Path, live: &[(KeyHash, OffsetDateTime)]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let mut out = Vec::with_capacity(live.len() * ENTRY);
    for (key, at) in live {
        out.extend_from_slice(&key.to_le_bytes());
        out.extend_from_slice(&at.unix_timestamp().to_le_bytes());
    }
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&out)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
