//! Real processes: a child ingests with an fsync per batch, writes every
//! acknowledged batch to its oracle file, delivers into a file-per-batch
//! terminal sink, and is killed with SIGKILL at random points. After the
//! last kill, one more start drains the spool, and the destination must hold
//! every acknowledged id exactly once.
//!
//! The child is this same test binary, re-executed with
//! `MEATHOOK_SOAK_CHILD` set. `MEATHOOK_SOAK_KILLS` sets the number of kills
//! (50 by default); `MEATHOOK_SOAK_SECONDS` instead kills for that long.
//! `cargo xtask soak` runs longer, and the test prints its figures: kills,
//! records acknowledged, delivered, lost and duplicated.
//!
//! The oracle is written only after `ingest` returned `Ok`, one line per
//! batch: the ids, then the CRC32C of the ids' text. Each child appends to
//! its own file, so a line torn by the kill can only be its file's last
//! line; it is not counted as acknowledged (the kill came between the
//! acknowledgement and the oracle write, which the test never checks). A
//! bad line anywhere else fails the test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)] // tests; small fixed sizes

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

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
        // One oracle file per child: a line torn by this child's kill stays
        // the last line of its own file.
        let mut oracle = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(root.join(format!("oracle-{base:020}")))
            .unwrap();
        let mut next = base;
        loop {
            let batch: Vec<u64> = (next..next + 7).collect();
            next += 7;
            let now = OffsetDateTime::now_utc();
            let r = s
                .ingest(&WindowMeta::instant("soak", now), batch.clone())
                .await;
            // Acknowledged first, recorded after: the oracle never holds a
            // batch the spool did not accept.
            if let Ok(receipt) = r {
                assert_eq!(receipt.accepted(), batch.len(), "{receipt:?}");
                oracle.write_all(oracle_line(&batch).as_bytes()).unwrap();
            }
            s.advance(now).await.unwrap();
        }
    });
}

fn start(root: &Path, mode: &str, base: u64) -> Child {
    meathook_testkit::test_in_child!("child_process")
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

/// One oracle line: the batch's ids, space-separated, then the CRC32C of
/// that text in hex.
fn oracle_line(batch: &[u64]) -> String {
    let ids: Vec<String> = batch.iter().map(u64::to_string).collect();
    let ids = ids.join(" ");
    format!("{ids} {:08x}\n", crc32c::crc32c(ids.as_bytes()))
}

/// The ids of an oracle line, or `None` if the line is torn or garbled.
fn parse_oracle_line(line: &str) -> Option<Vec<u64>> {
    let (ids, crc) = line.rsplit_once(' ')?;
    if crc.len() != 8 || u32::from_str_radix(crc, 16).ok()? != crc32c::crc32c(ids.as_bytes()) {
        return None;
    }
    ids.split(' ').map(|id| id.parse().ok()).collect()
}

/// The acknowledged ids in one child's oracle file, and whether its last
/// line was torn. A torn or garbled last line is a batch whose oracle write
/// the kill interrupted; a bad line before it is an error.
fn read_oracle(path: &Path) -> Result<(Vec<u64>, bool), String> {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let mut ids = Vec::new();
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        match line.strip_suffix('\n').and_then(parse_oracle_line) {
            Some(batch) => ids.extend(batch),
            None if last => return Ok((ids, true)),
            None => {
                return Err(format!(
                    "{}: a bad oracle line before the end: {line:?}",
                    path.display()
                ));
            }
        }
    }
    Ok((ids, false))
}

/// How long the soak runs: a number of kills, or a time.
enum Length {
    Kills(u64),
    Time(Duration),
}

impl Length {
    fn from_env() -> Self {
        let var = |name| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        match (var("MEATHOOK_SOAK_SECONDS"), var("MEATHOOK_SOAK_KILLS")) {
            (Some(secs), _) => Self::Time(Duration::from_secs(secs)),
            (None, kills) => Self::Kills(kills.unwrap_or(50)),
        }
    }

    fn more(&self, kills: u64, started: Instant) -> bool {
        match *self {
            Self::Kills(n) => kills < n,
            Self::Time(d) => started.elapsed() < d,
        }
    }
}

#[test]
fn oracle_lines_check_themselves() {
    let line = oracle_line(&[7, 8, 9]);
    assert_eq!(parse_oracle_line(line.trim_end()), Some(vec![7, 8, 9]));
    // Every cut short of the whole line is refused: a torn write never
    // reads as a shorter batch.
    for cut in 0..line.len() - 1 {
        assert_eq!(parse_oracle_line(&line[..cut]), None, "{:?}", &line[..cut]);
    }
    assert_eq!(parse_oracle_line(&line.trim_end().replace('8', "6")), None);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oracle");
    let whole = format!("{}{}", oracle_line(&[1, 2]), oracle_line(&[3]));
    let torn = &oracle_line(&[4, 5])[..6];
    std::fs::write(&path, format!("{whole}{torn}")).unwrap();
    assert_eq!(read_oracle(&path), Ok((vec![1, 2, 3], true)));
    std::fs::write(&path, &whole).unwrap();
    assert_eq!(read_oracle(&path), Ok((vec![1, 2, 3], false)));
    std::fs::write(&path, format!("{torn}\n{whole}")).unwrap();
    assert!(
        read_oracle(&path).is_err(),
        "a bad line before the end must fail"
    );
}

#[test]
fn sigkill_soak_loses_and_duplicates_nothing_acknowledged() {
    let length = Length::from_env();
    let seed = match length {
        Length::Kills(n) => n,
        Length::Time(d) => d.as_secs(),
    };
    let root = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(seed);
    let started = Instant::now();
    let mut kills = 0;
    while length.more(kills, started) {
        let mut child = start(root.path(), "ingest", kills * 10_000_000);
        std::thread::sleep(Duration::from_millis(rng.u64(30..250)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    let status = start(root.path(), "drain", u64::MAX / 2).wait().unwrap();
    assert!(status.success(), "the draining start failed: {status}");

    let mut oracle = Vec::new();
    let mut torn = 0;
    for entry in std::fs::read_dir(root.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("oracle-")
        {
            let (ids, was_torn) = read_oracle(&path).unwrap();
            oracle.extend(ids);
            torn += u64::from(was_torn);
        }
    }
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
    eprintln!(
        "sigkill soak: {kills} kills in {:.0?}; records acknowledged {}, delivered {}, lost {}, duplicated {} ({torn} oracle lines torn by a kill, not counted as acknowledged)",
        started.elapsed(),
        oracle.len(),
        delivered.len(),
        missing.len(),
        duplicates.len(),
    );
    assert!(
        oracle.len() as u64 > 10 * kills,
        "too little was acknowledged to mean anything: {}",
        oracle.len()
    );
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
