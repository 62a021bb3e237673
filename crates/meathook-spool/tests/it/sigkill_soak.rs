//! Real processes: a child runs several spools at once, each ingesting with
//! an fsync per batch, writes every acknowledged batch to its oracle file,
//! delivers into a file-per-batch terminal sink, and is killed with SIGKILL
//! at random points. After the last kill, one more start drains the spools,
//! and each spool's destination must hold every id that spool acknowledged
//! exactly once, and no id of another spool.
//!
//! The spools are the subdirectories of one [`SpoolRoot`] and share one
//! [`WriterPool`], ingesting concurrently with
//! [`Durability::EveryIngest`]: appends of different spools wait on the
//! same group commit (one filesystem sync), which is what the kills
//! interrupt. Every start reopens all of them under the root. A child
//! writes its pool's counters to a file as it runs, and the test requires
//! that some syncs covered appends of two or more spools.
//!
//! The child is this same test binary, re-executed with
//! `MEATHOOK_SOAK_CHILD` set. `MEATHOOK_SOAK_SPOOLS` sets the number of
//! spools (8 by default; 1 is the single-spool soak).
//! `MEATHOOK_SOAK_KILLS` sets the number of kills (50 by default);
//! `MEATHOOK_SOAK_SECONDS` instead kills for that long. `cargo xtask soak`
//! runs longer, and the test prints its figures: spools, kills, records
//! acknowledged, delivered, lost, duplicated and delivered through the
//! wrong spool.
//!
//! An id names its spool: the spool's index sits above [`SPOOL_SHIFT`], so
//! a record delivered through another spool is seen by its id alone. The
//! sink also names each file after the pipeline in the batch's window (each
//! spool ingests as its own pipeline), and a file in one spool's
//! destination naming another pipeline fails the test too.
//!
//! The oracle is written only after `ingest` returned `Ok`, one line per
//! batch: the ids, then the CRC32C of the ids' text. Each child appends to
//! its own file, one whole line at a time under a lock shared by its
//! spools, so a line torn by the kill can only be its file's last line; it
//! is not counted as acknowledged (the kill came between the
//! acknowledgement and the oracle write, which the test never checks). A
//! bad line anywhere else fails the test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)] // tests; small fixed sizes

use std::collections::HashSet;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meathook_core::{FlushPolicy, IngestError, Receipt, Sink, SinkError, WindowMeta};
use meathook_spool::{DiskSpool, Durability, SpoolError, SpoolRoot, WriterPool};
use time::OffsetDateTime;

/// Ids of spool `k` are `k << SPOOL_SHIFT` plus a number below it.
const SPOOL_SHIFT: u32 = 44;

/// Ids one child may use per spool: it starts at its index times this.
const IDS_PER_CHILD: u64 = 10_000_000;

/// Writer threads of the child's pool: fewer than the spools, so each
/// thread's rounds hold appends of several spools.
const WRITER_THREADS: usize = 2;

#[derive(Debug, thiserror::Error)]
#[error("file sink: {0}")]
struct FileError(#[from] std::io::Error);

impl SinkError for FileError {}

/// Writes each batch to `{pipeline}-{window start}-{batch id}.ids`
/// atomically, and skips a batch whose file exists: what a terminal sink
/// with deterministic paths does.
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
        let path = self.0.join(format!(
            "{}-{}-{batch}.ids",
            window.pipeline,
            window.start.unix_timestamp()
        ));
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

/// The name of spool `k`: its directory under the root, its destination
/// under `out`, and the pipeline it ingests as.
fn spool_name(k: u64) -> String {
    format!("s{k:03}")
}

/// The root directory of the spools.
fn spools_dir(root: &Path) -> PathBuf {
    root.join("spools")
}

/// Spool `k` on its own, its directory a direct child of the spool root.
fn spool(root: &Path, k: u64) -> DiskSpool<FileSink, u64> {
    let name = spool_name(k);
    let policy = FlushPolicy::every(Duration::from_secs(1)).unwrap();
    DiskSpool::new(
        FileSink(root.join("out").join(&name)),
        spools_dir(root).join(&name),
        policy,
    )
    .with_min_free_bytes(0)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The child: open every spool under the root, then ingest into all of
/// them at once until killed (or drain them, or hold the root), per
/// environment.
#[test]
fn child_process() {
    let Ok(root) = std::env::var("MEATHOOK_SOAK_CHILD") else {
        return; // not a child: nothing to do in the normal test run
    };
    let root = PathBuf::from(root);
    let mode = std::env::var("MEATHOOK_SOAK_MODE").unwrap_or_default();
    let base = env_u64("MEATHOOK_SOAK_BASE").unwrap();
    let spools = env_u64("MEATHOOK_SOAK_SPOOLS").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pool = WriterPool::new(WRITER_THREADS).unwrap();
    let spool_root = SpoolRoot::open(spools_dir(&root)).unwrap_or_else(|e| {
        eprintln!("child: opening the spool root failed: {e}");
        std::process::exit(3);
    });
    if mode == "ingest" {
        report_pool(&root, base, &pool);
    }
    rt.block_on(async move {
        // Open every spool at once, then start them together.
        let mut opening = Vec::new();
        for k in 0..spools {
            std::fs::create_dir_all(root.join("out").join(spool_name(k))).unwrap();
            let mut s = spool(&root, k)
                .with_root(&spool_root)
                .with_writer_pool(pool.clone())
                .with_durability(Durability::EveryIngest);
            opening.push(tokio::spawn(async move {
                if let Err(e) = s.open().await {
                    eprintln!("child: opening spool {} failed: {e}", spool_name(k));
                    std::process::exit(3);
                }
                s
            }));
        }
        let mut opened = Vec::new();
        for s in opening {
            opened.push(s.await.unwrap());
        }
        if mode == "hold" {
            // Every spool is open under the held root: say so, then wait to
            // be killed.
            std::fs::write(root.join("held"), b"").unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
            std::process::exit(0);
        }
        let drain = mode == "drain";
        // One oracle file per child, its lines written whole under a lock:
        // a line torn by this child's kill stays the last line of its file.
        let oracle = (!drain).then(|| {
            let file = std::fs::OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(root.join(format!("oracle-{base:020}")))
                .unwrap();
            Arc::new(Mutex::new(file))
        });
        let mut running = Vec::new();
        for (k, mut s) in (0..spools).zip(opened) {
            let oracle = oracle.clone();
            running.push(tokio::spawn(async move {
                match oracle {
                    None => s.flush().await.unwrap(),
                    Some(oracle) => ingest_forever(&mut s, &oracle, base, k).await,
                }
            }));
        }
        for task in running {
            task.await.unwrap();
        }
        std::process::exit(0);
    });
}

/// Ingests 7 ids at a time into spool `k`, recording each acknowledged
/// batch in the oracle.
async fn ingest_forever(s: &mut DiskSpool<FileSink, u64>, oracle: &Mutex<File>, base: u64, k: u64) {
    let pipeline = spool_name(k);
    let mut next = (k << SPOOL_SHIFT) + base;
    loop {
        let batch: Vec<u64> = (next..next + 7).collect();
        next += 7;
        let now = OffsetDateTime::now_utc();
        let r = s
            .ingest(&WindowMeta::instant(pipeline.as_str(), now), batch.clone())
            .await;
        // Acknowledged first, recorded after: the oracle never holds a
        // batch the spool did not accept.
        if let Ok(receipt) = r {
            assert_eq!(receipt.accepted(), batch.len(), "{receipt:?}");
            let line = oracle_line(&batch);
            oracle.lock().unwrap().write_all(line.as_bytes()).unwrap();
        }
        s.advance(now).await.unwrap();
    }
}

/// Appends the pool's counters to `pool-{base}` every few milliseconds,
/// for the test to see how many syncs the spools shared before the kill.
fn report_pool(root: &Path, base: u64, pool: &WriterPool) {
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(root.join(format!("pool-{base:020}")))
        .unwrap();
    let pool = pool.clone();
    std::thread::spawn(move || {
        loop {
            let s = pool.stats();
            let line = format!("{} {} {}\n", s.commits, s.file_syncs, s.filesystem_syncs);
            file.write_all(line.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
    });
}

fn start(root: &Path, mode: &str, base: u64, spools: u64) -> Child {
    meathook_testkit::test_in_child!("child_process")
        .env("MEATHOOK_SOAK_CHILD", root)
        .env("MEATHOOK_SOAK_MODE", mode)
        .env("MEATHOOK_SOAK_BASE", base.to_string())
        .env("MEATHOOK_SOAK_SPOOLS", spools.to_string())
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

/// The acknowledged ids in one oracle file, and whether its last line was
/// torn. A torn or garbled last line is a batch whose oracle write the kill
/// interrupted; a bad line before it is an error.
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
        match (
            env_u64("MEATHOOK_SOAK_SECONDS"),
            env_u64("MEATHOOK_SOAK_KILLS"),
        ) {
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

/// What one spool acknowledged and delivered over the whole soak.
#[derive(Default)]
struct Tally {
    acknowledged: Vec<u64>,
    delivered: HashSet<u64>,
    duplicated: Vec<u64>,
    /// Ids of other spools found in this spool's destination, and files
    /// there that name another pipeline.
    misrouted: Vec<String>,
    lost: Vec<u64>,
}

/// Group commit figures summed over the children, as each last wrote them
/// before its kill (so a lower bound).
#[derive(Default, Debug)]
struct PoolFigures {
    commits: u64,
    file_syncs: u64,
    filesystem_syncs: u64,
}

/// Reads the oracle files and each spool's destination under `root`, and
/// checks every spool's ids against its oracle.
fn check(root: &Path, spools: u64) -> (Vec<Tally>, u64) {
    let mut tallies: Vec<Tally> = (0..spools).map(|_| Tally::default()).collect();
    let mut torn = 0;
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("oracle-") {
            continue;
        }
        let (ids, was_torn) = read_oracle(&path).unwrap();
        for id in ids {
            let tally = tallies.get_mut((id >> SPOOL_SHIFT) as usize);
            tally
                .unwrap_or_else(|| panic!("{name} holds id {id} of no spool"))
                .acknowledged
                .push(id);
        }
        torn += u64::from(was_torn);
    }
    let out = root.join("out");
    for entry in std::fs::read_dir(&out).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            (0..spools).any(|k| spool_name(k) == name),
            "out/{name}: a destination of no spool"
        );
    }
    for (k, tally) in (0..spools).zip(&mut tallies) {
        let name = spool_name(k);
        for entry in std::fs::read_dir(out.join(&name)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "ids") {
                continue;
            }
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            if !file.starts_with(&format!("{name}-")) {
                tally.misrouted.push(format!("out/{name}/{file}"));
            }
            for id in ids(&std::fs::read_to_string(&path).unwrap()) {
                if id >> SPOOL_SHIFT != k {
                    tally
                        .misrouted
                        .push(format!("id {id} in out/{name}/{file}"));
                }
                if !tally.delivered.insert(id) {
                    tally.duplicated.push(id);
                }
            }
        }
        tally.lost = (tally.acknowledged.iter())
            .copied()
            .filter(|id| !tally.delivered.contains(id))
            .collect();
    }
    (tallies, torn)
}

/// Sums the pool counters the children left in `pool-*` files: the last
/// whole line of each (a line the kill cut short has no newline).
fn pool_figures(root: &Path) -> PoolFigures {
    let mut sum = PoolFigures::default();
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("pool-")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let Some(line) = text
            .split_inclusive('\n')
            .filter_map(|l| l.strip_suffix('\n'))
            .next_back()
        else {
            continue;
        };
        let n: Vec<u64> = line.split(' ').map(|n| n.parse().unwrap()).collect();
        sum.commits += n[0];
        sum.file_syncs += n[1];
        sum.filesystem_syncs += n[2];
    }
    sum
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

/// The checker sees a lost, a duplicated and a misrouted id, each under
/// its own spool, and counts a delivered id nobody acknowledged as neither.
#[test]
fn the_checker_finds_lost_duplicated_and_misrouted_ids() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (a, b) = (0, 1 << SPOOL_SHIFT);
    let write = |path: &str, text: String| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "oracle-0",
        oracle_line(&[a + 1, a + 2]) + &oracle_line(&[b + 1, b + 2]),
    );
    write("oracle-1", oracle_line(&[a + 3]));
    write("out/s000/s000-0-1.ids", format!("{}\n{}\n", a + 1, a + 3));
    write("out/s000/s000-0-2.ids", format!("{}\n{}\n", a + 3, b + 2));
    write("out/s001/s001-0-1.ids", format!("{}\n{}\n", b + 1, b + 9));
    write("out/s001/s000-0-2.ids", format!("{}\n", b + 2));
    let (tallies, torn) = check(root, 2);
    assert_eq!(torn, 0);
    assert_eq!(tallies[0].lost, [a + 2]);
    assert_eq!(tallies[0].duplicated, [a + 3]);
    assert_eq!(tallies[0].misrouted.len(), 1, "{:?}", tallies[0].misrouted);
    assert_eq!(tallies[1].lost, [] as [u64; 0]);
    assert_eq!(tallies[1].duplicated, [] as [u64; 0]);
    assert_eq!(tallies[1].misrouted, ["out/s001/s000-0-2.ids"]);
    assert_eq!(tallies[1].delivered.len(), 3);
}

#[test]
fn sigkill_soak_loses_and_duplicates_nothing_acknowledged() {
    let length = Length::from_env();
    let spools = env_u64("MEATHOOK_SOAK_SPOOLS").unwrap_or(8).max(1);
    let seed = match length {
        Length::Kills(n) => n,
        Length::Time(d) => d.as_secs(),
    };
    let root = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(seed ^ (spools << 32));
    let started = Instant::now();
    let mut kills = 0;
    while length.more(kills, started) {
        let mut child = start(root.path(), "ingest", kills * IDS_PER_CHILD, spools);
        std::thread::sleep(Duration::from_millis(rng.u64(30..250)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    let status = start(root.path(), "drain", 0, spools).wait().unwrap();
    assert!(status.success(), "the draining start failed: {status}");

    let (tallies, torn) = check(root.path(), spools);
    let pool = pool_figures(root.path());
    let sum = |f: fn(&Tally) -> usize| tallies.iter().map(f).sum::<usize>();
    let acknowledged = sum(|t| t.acknowledged.len());
    let lost = sum(|t| t.lost.len());
    let duplicated = sum(|t| t.duplicated.len());
    let misrouted = sum(|t| t.misrouted.len());
    eprintln!(
        "sigkill soak: {spools} spools, {kills} kills in {:.0?}; records acknowledged {acknowledged}, delivered {}, lost {lost}, duplicated {duplicated}, delivered through another spool {misrouted} ({torn} oracle lines torn by a kill, not counted as acknowledged); at least {} commits in {} shared filesystem syncs and {} file syncs",
        started.elapsed(),
        sum(|t| t.delivered.len()),
        pool.commits,
        pool.filesystem_syncs,
        pool.file_syncs,
    );
    if lost + duplicated + misrouted > 0 {
        for (k, t) in (0..spools).zip(&tallies) {
            eprintln!(
                "  {}: acknowledged {}, delivered {}, lost {} (e.g. {:?}), duplicated {} (e.g. {:?}), misrouted {} (e.g. {:?})",
                spool_name(k),
                t.acknowledged.len(),
                t.delivered.len(),
                t.lost.len(),
                &t.lost[..t.lost.len().min(5)],
                t.duplicated.len(),
                &t.duplicated[..t.duplicated.len().min(5)],
                t.misrouted.len(),
                &t.misrouted[..t.misrouted.len().min(3)],
            );
        }
    }
    assert!(
        acknowledged as u64 > 10 * kills,
        "too little was acknowledged to mean anything: {acknowledged}"
    );
    let idle: Vec<String> = (0..spools)
        .filter(|&k| tallies[k as usize].acknowledged.is_empty())
        .map(spool_name)
        .collect();
    assert!(
        idle.is_empty(),
        "spools that acknowledged nothing: {idle:?}"
    );
    if spools > 1 {
        assert!(
            pool.filesystem_syncs > 0,
            "no sync covered appends of two spools: {pool:?}"
        );
    }
    assert_eq!(lost, 0, "acknowledged ids missing (per spool above)");
    assert_eq!(duplicated, 0, "ids delivered twice (per spool above)");
    assert_eq!(
        misrouted, 0,
        "ids delivered through another spool (per spool above)"
    );
}

/// A second process is refused the root, and each spool under it opened on
/// its own, while a child holds the root with its spools open; the root and
/// its spools open once the child is killed.
#[tokio::test]
async fn a_second_process_on_the_same_root_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let mut holder = start(root.path(), "hold", 0, 2);
    let marker = root.path().join("held");
    for _ in 0..3000 {
        if marker.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(marker.exists(), "the holder never took the lock");
    let holder_named = format!("process {}", holder.id());
    let spools = spools_dir(root.path());
    let err = SpoolRoot::open(&spools).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SpoolError::Locked { .. }), "{msg}");
    assert!(msg.contains(&holder_named), "{msg}");
    assert!(msg.contains(&spools.display().to_string()), "{msg}");
    for k in 0..2 {
        let err = spool(root.path(), k).open().await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SpoolError::Locked { .. }), "{msg}");
        assert!(msg.contains(&holder_named), "{msg}");
        assert!(msg.contains(&spools.display().to_string()), "{msg}");
    }
    holder.kill().unwrap();
    holder.wait().unwrap();
    // The lock dies with its holder.
    let spool_root = SpoolRoot::open(&spools).unwrap();
    for k in 0..2 {
        spool(root.path(), k)
            .with_root(&spool_root)
            .open()
            .await
            .unwrap();
    }
}
