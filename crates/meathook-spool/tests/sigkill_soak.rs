//! Real processes: a child ingests with an fsync per batch, writes every
//! acknowledged id to an oracle file, delivers into a file-per-batch
//! terminal sink, and is killed with SIGKILL at random points. After the
//! last kill, one more start drains the spool, and the destination must hold
//! every acknowledged id exactly once.
//!
//! The child is this same test binary, re-executed with
//! `MEATHOOK_SOAK_CHILD` set. `MEATHOOK_SOAK_KILLS` sets the number of kills
//! (50 by default; `cargo xtask soak` runs more).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)] // tests; small fixed sizes

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use meathook_core::{FlushPolicy, IngestError, Receipt, Sink, SinkError, WindowMeta};
use meathook_spool::{DiskSpool, SpoolError};
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
#[error("file sink: {0}")]
struct FileError(#[from] std::io::Error);

impl SinkError for FileError {}

/// Writes each batch to `{window start}-{batch id}.ids` atomically, and
/// skips a batch whose file exists: what a terminal sink with deterministic
/// paths does.
struct FileSink(PathBuf);

impl Sink<u64> for FileSink {
    type Error = FileError;

    async fn ingest(
        &mut self,
        window: &WindowMeta,
        records: Vec<u64>,
    ) -> Result<Receipt<FileError>, IngestError<u64, FileError>> {
        let n = records.len();
        let batch = window.batch.map(|b| b.to_string()).unwrap_or_default();
        let path = self
            .0
            .join(format!("{}-{batch}.ids", window.start.unix_timestamp()));
        if path.exists() {
            return Ok(Receipt::all(n));
        }
        let text: String = records.iter().map(|id| format!("{id}\n")).collect();
        let write = || -> std::io::Result<()> {
            let tmp = path.with_extension("tmp");
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_data()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&self.0)?.sync_all()
        };
        match write() {
            Ok(()) => Ok(Receipt::all(n)),
            Err(e) => Err(IngestError::new(records, FileError(e))),
        }
    }

    async fn flush(&mut self) -> Result<(), FileError> {
        Ok(())
    }
}

fn spool(root: &Path) -> DiskSpool<FileSink, u64> {
    let policy = FlushPolicy::every(Duration::from_secs(1)).unwrap();
    DiskSpool::new(FileSink(root.join("out")), root.join("spool"), policy).with_min_free_bytes(0)
}

/// The child: ingest forever (or drain, or hold the lock), per environment.
#[test]
fn child_process() {
    let Ok(root) = std::env::var("MEATHOOK_SOAK_CHILD") else {
        return; // not a child: nothing to do in the normal test run
    };
    let root = PathBuf::from(root);
    let mode = std::env::var("MEATHOOK_SOAK_MODE").unwrap_or_default();
    let base: u64 = std::env::var("MEATHOOK_SOAK_BASE")
        .unwrap()
        .parse()
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        std::fs::create_dir_all(root.join("out")).unwrap();
        let mut s = spool(&root);
        if let Err(e) = s.open().await {
            eprintln!("child: open failed: {e}");
            std::process::exit(3);
        }
        match mode.as_str() {
            "drain" => {
                s.flush().await.unwrap();
                std::process::exit(0);
            }
            "hold" => {
                std::fs::write(root.join("held"), b"").unwrap();
                tokio::time::sleep(Duration::from_secs(60)).await;
                std::process::exit(0);
            }
            _ => {}
        }
        let mut oracle = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join("oracle"))
            .unwrap();
        let mut next = base;
        loop {
            let batch: Vec<u64> = (next..next + 7).collect();
            next += 7;
            let now = OffsetDateTime::now_utc();
            let r = s
                .ingest(&WindowMeta::instant("soak", now), batch.clone())
                .await;
            if r.is_ok() {
                let text: String = batch.iter().map(|id| format!("{id}\n")).collect();
                oracle.write_all(text.as_bytes()).unwrap();
            }
            s.advance(now).await.unwrap();
        }
    });
}

fn start(root: &Path, mode: &str, base: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MEATHOOK_SOAK_CHILD", root)
        .env("MEATHOOK_SOAK_MODE", mode)
        .env("MEATHOOK_SOAK_BASE", base.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn ids(text: &str) -> impl Iterator<Item = u64> + '_ {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.parse().unwrap())
}

#[test]
fn sigkill_soak_loses_and_duplicates_nothing_acknowledged() {
    let kills: u64 = std::env::var("MEATHOOK_SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let root = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(kills);
    for run in 0..kills {
        let mut child = start(root.path(), "ingest", run * 10_000_000);
        std::thread::sleep(Duration::from_millis(rng.u64(30..250)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let status = start(root.path(), "drain", u64::MAX / 2).wait().unwrap();
    assert!(status.success(), "the draining start failed: {status}");

    let oracle: Vec<u64> =
        ids(&std::fs::read_to_string(root.path().join("oracle")).unwrap()).collect();
    assert!(
        oracle.len() as u64 > 10 * kills,
        "too little was acknowledged to mean anything: {}",
        oracle.len()
    );
    let mut delivered = HashSet::new();
    let mut duplicates = Vec::new();
    for entry in std::fs::read_dir(root.path().join("out")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ids") {
            for id in ids(&std::fs::read_to_string(&path).unwrap()) {
                if !delivered.insert(id) {
                    duplicates.push(id);
                }
            }
        }
    }
    let missing: Vec<u64> = oracle
        .iter()
        .copied()
        .filter(|id| !delivered.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged ids missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        duplicates.is_empty(),
        "{} ids delivered twice, e.g. {:?}",
        duplicates.len(),
        &duplicates[..duplicates.len().min(10)]
    );
}

#[tokio::test]
async fn a_second_process_on_the_same_directory_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let mut holder = start(root.path(), "hold", 0);
    let marker = root.path().join("held");
    for _ in 0..3000 {
        if marker.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(marker.exists(), "the holder never took the lock");
    let mut second = spool(root.path());
    let err = second.open().await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SpoolError::Locked { .. }), "{msg}");
    assert!(msg.contains(&format!("process {}", holder.id())), "{msg}");
    assert!(
        msg.contains(&root.path().join("spool").display().to_string()),
        "{msg}"
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
    // The lock dies with its holder.
    let mut third = spool(root.path());
    third.open().await.unwrap();
}
