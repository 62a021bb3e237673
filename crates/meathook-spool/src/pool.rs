//! Writer threads shared by every spool of a process, with group commit.
//!
//! Each append, sync and seal of a spool is a job run on a writer thread
//! (the caller's task only encodes the records, and under
//! [`Durability::Os`](crate::Durability::Os) writes an append that needs
//! nothing but a write to an open segment file itself). The threads are a [`WriterPool`]'s, and
//! by default every spool in the process shares one pool
//! ([`WriterPool::shared`]), so ten thousand spools need no more threads
//! than one. Each spool is pinned to one thread of its pool, which runs the
//! spool's jobs in the order they were sent.
//!
//! # Group commit
//!
//! A thread takes every job that is waiting (up to [`MAX_ROUND`]) and runs
//! them as one *round*. An append under
//! [`Durability::EveryIngest`](crate::Durability::EveryIngest) writes its
//! frames and leaves a pending commit: its answer waits for the sync
//! that covers it. When the round's jobs have run, the thread syncs:
//!
//! - a commit alone on its filesystem is made durable with an `fdatasync`
//!   of its own segment, exactly as a spool on its own thread did;
//! - two or more commits whose spools are on one filesystem share one
//!   [`Fs::sync_filesystem`](crate::Fs::sync_filesystem) (`syncfs`), which
//!   makes all their segments durable with a single call and reports a
//!   failed write-back of any of them; so does a commit alone whose spool
//!   just created a segment or leased numbers: on a filesystem that syncs
//!   as a whole, a shared spool leaves the syncs of the new directory entry
//!   and of the `sequence` file to the sync that commits the append, so a
//!   spool's first append costs no sync of its own (ten thousand spools
//!   starting together would otherwise need four each).
//!
//! A round costs one sync per filesystem however many spools it covers.
//! While one round syncs, the next round's jobs queue up, so the busier
//! the process, the more each sync covers. Only then is each commit's
//! answer sent; a failed sync fails every commit it covered, each of which
//! abandons its segment at its last acknowledged frame and hands its
//! records back, as a failed `fdatasync` always has.
//!
//! # The commit interval
//!
//! Queueing behind a sync alone still lets the syncs a second grow with
//! the number of spools until the disk is busy syncing all the time:
//! pipelines polling on a timer commit at moments apart, and a thread that
//! syncs whatever has arrived syncs every few appends. So a thread waits
//! for more before it syncs: once a round's waiting jobs have run, it goes
//! on taking jobs until the [commit interval](WriterPool::with_commit_interval)
//! (10 ms by default) has passed since its last sync started, and only then
//! syncs. It stops waiting early when every spool its last sync covered
//! has a commit in the round again: those spools are committing back to
//! back, and nothing more is coming that waiting could share. So:
//!
//! - a spool alone on its thread, or spools appending back to back, sync as
//!   soon as their appends are written, exactly as without the interval;
//! - spools that commit apart share a sync at most once an interval per
//!   thread: at most threads ÷ interval syncs a second for each filesystem
//!   the spools are on (200 with the defaults on two cores) however many
//!   spools there are, and each append waits at most the interval longer
//!   for its answer;
//! - a spool that stops appending (its pipeline paused, finished or
//!   closed) costs the others on its thread one wait of up to the interval:
//!   their next sync waits for it before it is known to be gone. On the
//!   spool bench, 100 spools appending 100 batches each back to back, a
//!   run of under a second, lose about a fifth of their throughput to
//!   those waits as they finish one by one (see the README); a pool made
//!   with a zero interval syncs without waiting.
//!
//! Measured with `cargo xtask bench scale` (pipelines polling once a second
//! into spool → local parquet, 60 s, two writer threads, medians of three
//! runs): at 100, 1,000 and 10,000 pipelines, 37, 231 and 1,756 syncs a
//! second before the interval (the last about all the disk could do), 4.3,
//! 26 and 197 with it, in runs of each build on a machine of the same kind.
//! Tick lateness stayed at a p99 of 4 ms; the process of 10,000 pipelines
//! used 0.46 cores where it had used 0.62.
//!
//! # What a crash can and cannot lose
//!
//! Group commit changes when a batch is acknowledged, never what an
//! acknowledgement means: the answer to an append is sent only after a sync
//! that covers its bytes returned `Ok`, whichever sync that was. So a
//! process crash or a power loss at any moment:
//!
//! - **cannot lose** an acknowledged batch of any spool, nor its segment's
//!   directory entry or the `sequence` lease its numbers came from (a
//!   commit that owes those syncs always takes the filesystem sync, which
//!   covers them);
//! - **can lose** the batches written in the round that was syncing, and
//!   in the rounds queued behind it: none of them was acknowledged, so
//!   their callers (gone with the process, or still holding the records
//!   after an error) never counted them as stored. Their frames may also
//!   survive, since the kernel writes back on its own: recovery then
//!   delivers them, exactly once, like any frame it finds whole. A frame
//!   cut short by the crash is a torn tail and is cut.
//! - **cannot double** anything: sequence numbers are never reused (a
//!   surviving frame whose lease did not survive raises the next number past
//!   it at recovery), so every batch identity names one batch.
//!
//! The model test (`spools_sharing_a_writer_deliver_every_acknowledged_record_once`)
//! runs several spools on one writer and one simulated filesystem that
//! forgets everything unsynced at a crash, and the SIGKILL soak kills a
//! process of many spools sharing a writer at random moments.
//!
//! # Why `syncfs`, and what else was measured
//!
//! Appending 60 bytes to each of 10,000 files and making them durable, on
//! this project's 2-core test machine (ext4 on a virtual disk):
//!
//! | how | per append, 1 a round | 10 a round | 100 a round | 1,000 a round |
//! |---|---|---|---|---|
//! | `fdatasync` each file (a thread per spool, before) | 206 µs | 191 µs | 198 µs | 164 µs |
//! | one `syncfs` per round (this module) | 332 µs | 45 µs | 26 µs | 14 µs |
//! | one journal file, one `fdatasync` per round | 187 µs | 32 µs | 5.4 µs | 4.4 µs |
//!
//! A process-wide journal (every spool's frames appended to one file, one
//! `fdatasync` a round, segment files written lazily and checkpointed) is
//! the cheapest per append and writes sequentially; it also needs a second
//! on-disk format, redo at start and checkpoints, and every guarantee of the
//! segment format (batch identities, quarantine, `inspect`) re-proved over
//! it. `syncfs` keeps the segment format and recovery exactly as they were
//! and, with the commit interval, still bounds the syncs a second whatever
//! the number of spools; its costs are that it also flushes other
//! programs' writes on the same filesystem, and that each round rewrites
//! the tail page and the inode of every segment it covers. Earlier runs of that bench stalled for seconds once a minute;
//! they started right after the previous run had deleted ten thousand spool
//! directories, on a filesystem mounted with `discard`, and the stall went
//! away when the bench kept every run's files until the end (and in a
//! 75-s run on its own), which points at the filesystem still freeing
//! those files rather than at the appends. A process-wide journal remains
//! the way to fewer, sequential writes if a disk ever needs it.
//!
//! # Zeros written ahead
//!
//! An `fdatasync` after an append must also make the file's new length and
//! newly allocated blocks durable; on ext4 that is a journal commit on top
//! of the data, and it costs about as much again. So a spool that syncs
//! (any [`Durability`](crate::Durability) but `Os`) writes zeros ahead of
//! an open segment's frames whenever an append reaches the end of its file:
//! as many as the segment holds already, at least 4 KiB and at most 1 MiB,
//! never past the segment's maximum size. The sync that commits that
//! append commits them too; the appends after it write over zeros that are
//! already on disk, and their syncs commit data only. The seal cuts the
//! zeros off, so a sealed segment ends with its seal frame as before.
//!
//! Measured on the spool bench (1,000 durable appends of 1,670 bytes; five
//! rounds, medians): durable ingest went from 0.71× an appending raw
//! `write` + `fdatasync` loop to 0.95×, and p50 latency from 184 to 130 µs;
//! against a raw loop that overwrites blocks written and synced beforehand,
//! it is 0.58× (that loop has no hand-off to a writer thread and no
//! framing). Reserving the space with `fallocate` would not do: it leaves
//! unwritten extents, whose first write is again a change of metadata.
//!
//! What is left is the hand-off: the writer thread wakes for each append,
//! and the ingesting task wakes for its answer. Keeping the writer thread
//! awake for 50 µs after a round, polling for the next job, was measured
//! (three interleaved pairs) and gained nothing, so a thread sleeps as soon
//! as its queue is empty.
//!
//! What the zeros change for a crash: recovery, `inspect` and delivery read
//! zeros where a frame would start, through to the end of the file, as the
//! end of the segment, and recovery keeps them for the next appends (more
//! zeros than a spool writes ahead are cut as a torn tail). Since the
//! appends now overwrite blocks that exist, a power loss can keep an
//! unacknowledged frame without the unacknowledged frame before it (the
//! disk writes pages in any order); recovery then finds zeros, then a whole
//! frame, and reports the zeros as damage: the segment is copied to
//! `quarantine/` and the gap's records counted lost, although none of them
//! was acknowledged. Nothing acknowledged is lost or doubled either way: an
//! acknowledgement still waits for a sync that covers every byte before
//! it. A process crash (SIGKILL) leaves the page cache to the kernel and
//! cannot cause this.
//!
//! # Open files
//!
//! Segment files are opened lazily and closed after an append while more
//! than the pool's open-file budget are open in the process
//! ([`WriterPool::with_max_open_files`]); the next append reopens it. A
//! round commits once it holds its thread's share of the budget in appends
//! (the budget ÷ the pool's threads), since its appends keep their files
//! open until they are committed: at most twice the budget are open at
//! once. Data
//! written through a closed file is still made durable by the next sync of
//! its segment (a sync reopens it) or of its filesystem.
//!
//! **Invariants:** a spool's jobs run on one thread, in order, one at a
//! time. No answer of a commit is sent before a sync that covers its bytes
//! returned `Ok`. A round waits for more jobs no longer than the commit
//! interval after its thread's last sync started. A job or commit that panics drops its answer (the spool
//! sees the answer channel close and poisons itself); the thread goes on
//! with the other spools' jobs.

use std::any::TypeId;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Most jobs a thread runs in one round before it syncs.
pub const MAX_ROUND: usize = 4096;

/// Segment files open in the process, over all pools.
static OPEN_SEGMENT_FILES: AtomicUsize = AtomicUsize::new(0);

/// A job: runs on the spool's thread and may leave a commit to sync.
pub(crate) type Job = Box<dyn FnOnce() -> Option<Box<dyn Pending>> + Send>;

/// Which filesystem a commit is on: the `Fs` type and its own id.
pub(crate) type Scope = (TypeId, u64);

/// An append written but not yet durable.
pub(crate) trait Pending: Send {
    /// Commits with the same scope share one filesystem sync.
    fn scope(&self) -> Option<Scope>;
    /// Which spool the commit is of: the same for every commit of one
    /// spool, different for spools open at once.
    fn spool(&self) -> usize;
    /// Whether only a filesystem sync covers this commit (its spool
    /// deferred the sync of a new segment's directory entry or lease).
    fn needs_filesystem(&self) -> bool;
    /// Syncs this commit's own segment.
    fn sync_own(&mut self) -> io::Result<()>;
    /// Syncs the whole filesystem (for every commit of its scope).
    fn sync_filesystem(&mut self) -> io::Result<()>;
    /// Answers the caller, with the sync that covered the commit: the
    /// filesystem's if `shared`, else its own.
    fn finish(self: Box<Self>, synced: io::Result<()>, took: Duration, shared: bool);
}

/// Writer threads shared by spools; see the [module docs](self).
///
/// Cloning shares the threads. The threads of a pool made by
/// [`WriterPool::new`] end once the pool and every spool using it are
/// dropped; the shared pool's live as long as the process.
#[derive(Clone)]
pub struct WriterPool {
    inner: Arc<Inner>,
}

struct Inner {
    threads: Vec<mpsc::Sender<Job>>,
    next: AtomicUsize,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    max_open_files: AtomicUsize,
    /// [`WriterPool::with_commit_interval`], in nanoseconds.
    commit_interval: AtomicU64,
    rounds: AtomicU64,
    commits: AtomicU64,
    file_syncs: AtomicU64,
    filesystem_syncs: AtomicU64,
    sync_nanos: AtomicU64,
}

/// What a [`WriterPool`] has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Rounds of jobs run.
    pub rounds: u64,
    /// Appends made durable by a sync of the pool.
    pub commits: u64,
    /// `fdatasync`s of one segment for a commit alone on its filesystem.
    pub file_syncs: u64,
    /// Filesystem syncs (`syncfs`), each covering two or more commits.
    pub filesystem_syncs: u64,
    /// Time spent in those syncs.
    pub sync_time: Duration,
}

impl PoolStats {
    /// Syncs of either kind.
    pub fn syncs(&self) -> u64 {
        self.file_syncs + self.filesystem_syncs
    }
}

impl fmt::Debug for WriterPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterPool")
            .field("threads", &self.inner.threads.len())
            .field("max_open_files", &self.max_open_files())
            .field("commit_interval", &self.commit_interval())
            .finish_non_exhaustive()
    }
}

/// The default number of threads: the available cores, at least two and at
/// most four (a thread mostly waits on its syncs; more threads only add
/// syncs).
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4))
}

/// The default open-file budget for segment files, process-wide.
pub const DEFAULT_MAX_OPEN_FILES: usize = 256;

/// The default commit interval: see [`WriterPool::with_commit_interval`].
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(10);

/// The longest commit interval a pool takes: an acknowledgement that may
/// wait longer is what [`Durability::Interval`](crate::Durability::Interval)
/// is for.
pub const MAX_COMMIT_INTERVAL: Duration = Duration::from_secs(1);

impl WriterPool {
    /// The pool every spool uses unless given another: started on first
    /// use, with one thread per core (two to four). Fails only if its
    /// threads cannot be started (the next call tries again).
    pub fn shared() -> io::Result<WriterPool> {
        static SHARED: Mutex<Option<WriterPool>> = Mutex::new(None);
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pool) = shared.as_ref() {
            return Ok(pool.clone());
        }
        let pool = WriterPool::new(default_threads())?;
        *shared = Some(pool.clone());
        Ok(pool)
    }

    /// A pool of its own with `threads` writer threads (at least one).
    pub fn new(threads: usize) -> io::Result<WriterPool> {
        let counters = Arc::new(Counters::default());
        counters
            .max_open_files
            .store(DEFAULT_MAX_OPEN_FILES, Relaxed);
        counters
            .commit_interval
            .store(nanos(DEFAULT_COMMIT_INTERVAL), Relaxed);
        let mut senders = Vec::new();
        let threads = threads.max(1);
        for i in 0..threads {
            let (tx, rx) = mpsc::channel::<Job>();
            let counters = Arc::clone(&counters);
            std::thread::Builder::new()
                .name(format!("meathook-spool-writer-{i}"))
                .spawn(move || {
                    let mut last = LastSync::default();
                    while let Ok(first) = rx.recv() {
                        round(first, &rx, &counters, threads, &mut last);
                    }
                })?;
            senders.push(tx);
        }
        Ok(WriterPool {
            inner: Arc::new(Inner {
                threads: senders,
                next: AtomicUsize::new(0),
                counters,
            }),
        })
    }

    /// Sets the budget of segment files open at once, over all spools of
    /// the process (default [`DEFAULT_MAX_OPEN_FILES`]; at least one).
    pub fn with_max_open_files(self, files: usize) -> WriterPool {
        self.inner
            .counters
            .max_open_files
            .store(files.max(1), Relaxed);
        self
    }

    /// Sets the commit interval (default [`DEFAULT_COMMIT_INTERVAL`], at
    /// most [`MAX_COMMIT_INTERVAL`]): the least time between the starts of
    /// two syncs of one thread while its commits come from spools that did
    /// not commit in its last sync (see the module docs). Zero syncs as soon
    /// as a round's jobs have run.
    pub fn with_commit_interval(self, interval: Duration) -> WriterPool {
        self.inner
            .counters
            .commit_interval
            .store(nanos(interval.min(MAX_COMMIT_INTERVAL)), Relaxed);
        self
    }

    /// The commit interval.
    pub fn commit_interval(&self) -> Duration {
        Duration::from_nanos(self.inner.counters.commit_interval.load(Relaxed))
    }

    /// The open-file budget.
    pub fn max_open_files(&self) -> usize {
        self.inner.counters.max_open_files.load(Relaxed)
    }

    /// How many writer threads the pool has.
    pub fn threads(&self) -> usize {
        self.inner.threads.len()
    }

    /// Segment files open right now, in the whole process.
    pub fn open_segment_files() -> usize {
        OPEN_SEGMENT_FILES.load(Relaxed)
    }

    /// The pool's counters.
    pub fn stats(&self) -> PoolStats {
        let c = &self.inner.counters;
        PoolStats {
            rounds: c.rounds.load(Relaxed),
            commits: c.commits.load(Relaxed),
            file_syncs: c.file_syncs.load(Relaxed),
            filesystem_syncs: c.filesystem_syncs.load(Relaxed),
            sync_time: Duration::from_nanos(c.sync_nanos.load(Relaxed)),
        }
    }

    /// A place on one of the threads, for one spool.
    pub(crate) fn slot(&self) -> Slot {
        let thread = self.inner.next.fetch_add(1, Relaxed) % self.inner.threads.len();
        Slot {
            pool: self.clone(),
            thread,
        }
    }
}

/// One spool's place in a pool: every job it sends runs on one thread.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pool: WriterPool,
    thread: usize,
}

impl Slot {
    /// Sends `job`; `false` if the thread is gone.
    pub(crate) fn send(&self, job: Job) -> bool {
        self.pool.inner.threads[self.thread].send(job).is_ok()
    }

    /// Whether the process holds more segment files open than the budget.
    pub(crate) fn over_file_budget(&self) -> bool {
        OPEN_SEGMENT_FILES.load(Relaxed) > self.pool.max_open_files()
    }
}

/// A file counted against the open-file budget while it is open.
#[derive(Debug)]
pub(crate) struct Counted<W>(W);

impl<W> Counted<W> {
    pub(crate) fn new(file: W) -> Self {
        OPEN_SEGMENT_FILES.fetch_add(1, Relaxed);
        Self(file)
    }
}

impl<W> Drop for Counted<W> {
    fn drop(&mut self) {
        OPEN_SEGMENT_FILES.fetch_sub(1, Relaxed);
    }
}

impl<W: crate::FsFile> crate::FsFile for Counted<W> {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }

    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

/// A thread's last sync: when it started and whose commits it covered.
#[derive(Default)]
struct LastSync {
    started: Option<Instant>,
    spools: HashSet<usize>,
}

/// A round's commits so far, and which of them are of spools the thread's
/// last sync covered.
struct Gathered<'a> {
    last: &'a LastSync,
    pending: Vec<Box<dyn Pending>>,
    back: HashSet<usize>,
}

impl Gathered<'_> {
    fn run(&mut self, job: Job) {
        if let Ok(Some(p)) = catch_unwind(AssertUnwindSafe(job)) {
            let spool = p.spool();
            if self.last.spools.contains(&spool) {
                self.back.insert(spool);
            }
            self.pending.push(p);
        }
    }

    /// Whether every spool of the last sync has a commit here: it is
    /// pointless to wait for more when those are all back.
    fn all_back(&self) -> bool {
        self.back.len() == self.last.spools.len()
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Runs `first` and every job already waiting, waits for more as the
/// commit interval says, then syncs their commits; `threads` is the number
/// of threads of the pool.
fn round(
    first: Job,
    rx: &mpsc::Receiver<Job>,
    counters: &Counters,
    threads: usize,
    last: &mut LastSync,
) {
    // Group commit across time: no sync sooner than the interval after the
    // last, unless every spool that sync covered is back.
    let interval = Duration::from_nanos(counters.commit_interval.load(Relaxed));
    let until = last.started.map(|started| started + interval);
    let mut gathered = Gathered {
        last,
        pending: Vec::new(),
        back: HashSet::new(),
    };
    gathered.run(first);
    // A written append keeps its segment file open until it is committed:
    // the rounds of all the pool's threads hold at most the open-file
    // budget of them between them.
    let budget = (counters.max_open_files.load(Relaxed) / threads).max(1);
    for _ in 1..MAX_ROUND {
        if gathered.pending.len() >= budget {
            break;
        }
        let job = match rx.try_recv() {
            Ok(job) => job,
            // Nothing waiting: wait for more only with commits to share.
            Err(_) => {
                let left = until
                    .filter(|_| !gathered.pending.is_empty() && !gathered.all_back())
                    .and_then(|until| until.checked_duration_since(Instant::now()));
                match left.map(|left| rx.recv_timeout(left)) {
                    Some(Ok(job)) => job,
                    _ => break,
                }
            }
        };
        gathered.run(job);
    }
    let Gathered { pending, .. } = gathered;
    counters.rounds.fetch_add(1, Relaxed);
    if pending.is_empty() {
        return;
    }
    last.started = Some(Instant::now());
    last.spools = pending.iter().map(|p| p.spool()).collect();
    counters.commits.fetch_add(pending.len() as u64, Relaxed);
    // Commits by filesystem; a commit without one is synced on its own.
    let mut groups: HashMap<Scope, Vec<Box<dyn Pending>>> = HashMap::new();
    let mut alone = Vec::new();
    for p in pending {
        match p.scope() {
            Some(scope) => groups.entry(scope).or_default().push(p),
            None => alone.push(p),
        }
    }
    for (_, mut group) in groups {
        if group.len() == 1 && !group[0].needs_filesystem() {
            alone.append(&mut group);
            continue;
        }
        let started = Instant::now();
        let synced = catch_unwind(AssertUnwindSafe(|| group[0].sync_filesystem()))
            .unwrap_or_else(|_| Err(io::Error::other("the filesystem sync panicked")));
        match synced {
            Err(e) if e.kind() == io::ErrorKind::Unsupported => alone.append(&mut group),
            synced => {
                let took = started.elapsed();
                note_sync(counters, &counters.filesystem_syncs, took);
                for p in group {
                    let result = match &synced {
                        Ok(()) => Ok(()),
                        Err(e) => Err(io::Error::new(
                            e.kind(),
                            format!("syncing the spool's filesystem: {e}"),
                        )),
                    };
                    let _ = catch_unwind(AssertUnwindSafe(|| p.finish(result, took, true)));
                }
            }
        }
    }
    for mut p in alone {
        let started = Instant::now();
        let synced = catch_unwind(AssertUnwindSafe(|| p.sync_own()));
        let took = started.elapsed();
        note_sync(counters, &counters.file_syncs, took);
        if let Ok(synced) = synced {
            let _ = catch_unwind(AssertUnwindSafe(|| p.finish(synced, took, false)));
        }
    }
}

fn note_sync(counters: &Counters, kind: &AtomicU64, took: Duration) {
    kind.fetch_add(1, Relaxed);
    counters.sync_nanos.fetch_add(nanos(took), Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_interval_is_kept_within_its_bounds() {
        let pool = WriterPool::new(1).unwrap();
        assert_eq!(pool.commit_interval(), DEFAULT_COMMIT_INTERVAL);
        // A deadline this far off would overflow an `Instant`.
        let pool = pool.with_commit_interval(Duration::MAX);
        assert_eq!(pool.commit_interval(), MAX_COMMIT_INTERVAL);
        let pool = pool.with_commit_interval(Duration::ZERO);
        assert_eq!(pool.commit_interval(), Duration::ZERO);
    }
}
