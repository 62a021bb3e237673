//! `DiskSpool`: the durable tier. See the [crate docs](crate) for the design.

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meathook_core::{
    Backoff, Drain, FlushPolicy, IngestError, Receipt, RecordRejected, Sink, StackStats, WindowMeta,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

use crate::codec::{FrameBuilder, RecordError};
use crate::delivery::{self, Command};
use crate::error::SpoolError;
use crate::fs::{Fs, StdFs, read_small};
use crate::limits::{Config, Durability, FullPolicy, Limits};
use crate::pool::{Job, Pending, Scope, Slot, WriterPool};
use crate::queue::Shared;
use crate::recovery::{LOCK_FILE, RecoveryReport, recover};
use crate::root::SpoolRoot;
use crate::segment;
use crate::stats::SpoolStats;
use crate::writer::{Appended, Framed, WriteFail, Writer, Written, Wrote};

/// A crash-safe write-ahead spool in front of `inner`; see the [crate
/// docs](crate).
pub struct DiskSpool<S: Sink<R>, R, F: Fs = StdFs> {
    dir: PathBuf,
    policy: FlushPolicy,
    cfg: Config,
    fs: F,
    stats: SpoolStats,
    inner: Option<S>,
    running: Option<Running<S::Error, F>>,
    report: Option<RecoveryReport>,
    inner_stats: Arc<Mutex<StackStats>>,
    now: Option<OffsetDateTime>,
    poisoned: Option<String>,
    pool: Option<WriterPool>,
    root: Option<SpoolRoot<F>>,
    /// Frames batches on the caller's thread; its buffers are kept.
    builder: FrameBuilder,
    _records: PhantomData<fn(R)>,
}

struct Running<E, F: Fs> {
    writer: Arc<Mutex<Writer<F>>>,
    slot: Slot,
    /// Held from before the first write: syncs of the whole filesystem go
    /// through it (see [`Fs::sync_filesystem`]).
    lock: Arc<Locks<F>>,
    scope: Option<Scope>,
    tx: mpsc::UnboundedSender<Command<E>>,
    shared: Arc<Shared>,
    worker: tokio::task::JoinHandle<()>,
}

/// What an append job answers: the batch's size, how it went, and the
/// records if they are handed back.
type AppendOutcome<R> = (usize, Result<Appended, WriteFail>, Option<Vec<R>>);

impl<S: Sink<R>, R, F: Fs> fmt::Debug for DiskSpool<S, R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskSpool")
            .field("dir", &self.dir)
            .field("policy", &self.policy)
            .field("config", &self.cfg)
            .field("open", &self.running.is_some())
            .field("stats", &self.stats.snapshot())
            .finish_non_exhaustive()
    }
}

impl<S: Sink<R>, R> DiskSpool<S, R, StdFs> {
    /// A spool in `dir` in front of `inner`, filing batches under windows of
    /// `policy`'s length. Infallible: the directory is locked and recovered
    /// by [`Sink::open`] (or the first `ingest` / `advance`).
    pub fn new(inner: S, dir: impl Into<PathBuf>, policy: FlushPolicy) -> Self {
        Self {
            dir: dir.into(),
            policy,
            cfg: Config::default(),
            fs: StdFs,
            stats: SpoolStats::default(),
            inner: Some(inner),
            running: None,
            report: None,
            inner_stats: Arc::default(),
            now: None,
            poisoned: None,
            pool: None,
            root: None,
            builder: FrameBuilder::default(),
            _records: PhantomData,
        }
    }
}

impl<S: Sink<R>, R, F: Fs> DiskSpool<S, R, F> {
    /// The same spool doing its file IO through `fs` (fault injection).
    pub fn with_fs<G: Fs>(self, fs: G) -> DiskSpool<S, R, G> {
        DiskSpool {
            dir: self.dir,
            policy: self.policy,
            cfg: self.cfg,
            fs,
            stats: self.stats,
            inner: self.inner,
            running: None,
            report: None,
            inner_stats: self.inner_stats,
            now: None,
            poisoned: None,
            pool: self.pool,
            root: None,
            builder: self.builder,
            _records: PhantomData,
        }
    }

    /// Runs this spool's file IO on `pool`'s threads instead of the
    /// process-wide [`WriterPool::shared`].
    pub fn with_writer_pool(mut self, pool: WriterPool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Opens the spool under `root`, whose lock covers it instead of a
    /// `LOCK` of its own (one descriptor for all the root's spools). The
    /// spool's directory must be a subdirectory of the root's.
    pub fn with_root(mut self, root: &SpoolRoot<F>) -> Self {
        self.root = Some(root.clone());
        self
    }

    /// When appends are made durable; default [`Durability::EveryIngest`].
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.cfg.durability = durability;
        self
    }

    /// All size limits at once.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.cfg.limits = limits;
        self
    }

    /// Most bytes of segments on disk (default: no limit).
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.cfg.limits.max_bytes = Some(max_bytes);
        self
    }

    /// Free bytes to leave on the disk (default 256 MiB).
    pub fn with_min_free_bytes(mut self, min_free_bytes: u64) -> Self {
        self.cfg.limits.min_free_bytes = min_free_bytes;
        self
    }

    /// Largest encoded record (default 1 MiB, at most
    /// [`MAX_RECORD_BYTES`](crate::MAX_RECORD_BYTES)).
    pub fn with_max_record_bytes(mut self, max_record_bytes: usize) -> Self {
        self.cfg.limits.max_record_bytes = max_record_bytes;
        self
    }

    /// Size at which a segment is sealed and its window continues in a new
    /// one (default 128 MiB).
    pub fn with_max_segment_bytes(mut self, max_segment_bytes: u64) -> Self {
        self.cfg.limits.max_segment_bytes = max_segment_bytes;
        self
    }

    /// What `ingest` does at a limit; default [`FullPolicy::Block`].
    pub fn with_full_policy(mut self, full: FullPolicy) -> Self {
        self.cfg.full = full;
        self
    }

    /// Permanent refusals of one segment before it goes to `dead-letter/`
    /// (default 5; zero is refused on open).
    pub fn with_dead_letter_after(mut self, attempts: u32) -> Self {
        self.cfg.dead_letter_after = attempts;
        self
    }

    /// Whether `flush` leaves the window that is still open on disk for the
    /// next start (as `drain(Drain::KeepActiveWindow)` does) instead of
    /// delivering it now. Default `false`.
    pub fn with_keep_active_window(mut self, keep: bool) -> Self {
        self.cfg.keep_active_window = keep;
        self
    }

    /// How long `flush` waits for delivery (default 30 s).
    pub fn with_flush_deadline(mut self, deadline: Duration) -> Self {
        self.cfg.flush_deadline = deadline;
        self
    }

    /// The retry schedule after the inner sink refuses a segment (default
    /// one second doubling to five minutes, jittered).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.cfg.backoff = backoff;
        self
    }

    /// Records per chunk offered to the inner sink (default 8192).
    pub fn with_chunk_records(mut self, records: usize) -> Self {
        self.cfg.chunk_records = records;
        self
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The flush policy (its window length files batches).
    pub fn policy(&self) -> &FlushPolicy {
        &self.policy
    }

    /// A handle on the counters, readable from any task without `&mut`.
    pub fn stats(&self) -> SpoolStats {
        self.stats.clone()
    }

    /// What recovery found, once the spool is open.
    pub fn recovery_report(&self) -> Option<&RecoveryReport> {
        self.report.as_ref()
    }

    /// Sealed segments waiting for delivery.
    pub fn pending_segments(&self) -> usize {
        self.running.as_ref().map_or(0, |r| r.shared.pending())
    }

    fn poison<E>(&mut self, reason: String) -> SpoolError<E> {
        self.poisoned = Some(reason.clone());
        self.running = None;
        SpoolError::Poisoned {
            dir: self.dir.clone(),
            reason,
        }
    }
}

impl<E> From<(WriteFail, &Path)> for SpoolError<E> {
    fn from((fail, dir): (WriteFail, &Path)) -> Self {
        match fail {
            WriteFail::Io { op, path, source } => SpoolError::Io { op, path, source },
            WriteFail::Full {
                on_disk,
                max,
                free,
                min_free,
                by_free,
            } => SpoolError::Full {
                dir: dir.to_path_buf(),
                bytes_on_disk: on_disk,
                max_bytes: max,
                free_bytes: free,
                min_free_bytes: min_free,
                by_free_space: by_free,
            },
            WriteFail::PipelineName(len) => SpoolError::PipelineName {
                dir: dir.to_path_buf(),
                len,
            },
        }
    }
}

impl<S, R, F> DiskSpool<S, R, F>
where
    S: Sink<R> + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
    F: Fs,
{
    /// Locks and recovers the directory and starts the delivery worker, once.
    async fn ensure_open(&mut self) -> Result<(), SpoolError<S::Error>> {
        if self.running.is_some() {
            return Ok(());
        }
        if let Some((setting, reason)) = self.cfg.problem() {
            return Err(SpoolError::InvalidSetting {
                dir: self.dir.clone(),
                setting,
                reason,
            });
        }
        if let Some(reason) = &self.poisoned {
            return Err(SpoolError::Poisoned {
                dir: self.dir.clone(),
                reason: reason.clone(),
            });
        }
        let (fs, dir, cfg) = (self.fs.clone(), self.dir.clone(), self.cfg.clone());
        let stats = self.stats.clone();
        stats.set(|c| &c.max_bytes, cfg.limits.max_bytes.unwrap_or(0));
        stats.set(|c| &c.min_free_bytes, cfg.limits.min_free_bytes);
        let shared = Arc::new(Shared::new(dir.clone(), stats));
        let shared2 = Arc::clone(&shared);
        let root = match &self.root {
            Some(root) => {
                if dir.parent() != Some(root.dir()) {
                    return Err(SpoolError::InvalidSetting {
                        dir: self.dir.clone(),
                        setting: "root",
                        reason: "the spool's directory must be a subdirectory of the root's",
                    });
                }
                Some(root.lock())
            }
            None => None,
        };
        let own_lock_skipped = root.is_some();
        let opened = meathook_core::blocking(move || {
            fs.create_dir_all(&dir)
                .map_err(|source| SpoolError::io("create directory", dir.clone(), source))?;
            // Under a root, the root's lock covers the directory; a spool
            // opened on its own in a root's directory takes the root's lock
            // too, so it never runs beside the root's holder.
            let root = match root {
                Some(lock) => Some(lock),
                None => match dir.parent().map(|p| p.join(LOCK_FILE)) {
                    Some(parent) if fs.len(&parent).is_ok() => {
                        Some(Arc::new(take_lock(&fs, &parent)?))
                    }
                    _ => None,
                },
            };
            let own = if own_lock_skipped {
                None
            } else {
                Some(take_lock(&fs, &dir.join(LOCK_FILE))?)
            };
            let locks = Locks { own, root };
            // Utilisation needs the free space from the start: a recovered
            // backlog measured against no free space would read as full and
            // pause polling until the next append, which may never come.
            let free = fs.available_space(&dir).unwrap_or(u64::MAX);
            shared2.stats.set(|c| &c.free_bytes, free);
            let scoped = fs.filesystem_id(locks.any()).is_some();
            let (mut writer, report) =
                recover(fs, shared2, cfg).map_err(|f| SpoolError::from((f, dir.as_path())))?;
            // Shared writers commit with a filesystem sync, which can carry
            // the lease too: written here, on a blocking thread, so a spool's
            // first append (ten thousand at once, on a few writer threads)
            // has only its segment to create.
            writer.defer_syncs = scoped && writer.commits();
            if writer.defer_syncs {
                writer
                    .lease_ahead()
                    .map_err(|f| SpoolError::from((f, dir.as_path())))?;
            }
            Ok((locks, writer, report))
        })
        .await;
        let (locks, writer, report) = match opened {
            Ok(Ok(ok)) => ok,
            // Nothing was offered yet: say so, not "nothing of this batch".
            Ok(Err(SpoolError::Io { op, path, source })) => {
                return Err(SpoolError::Start { op, path, source });
            }
            Ok(Err(e)) => return Err(e),
            Err(join) => return Err(self.poison(format!("recovery panicked: {join}"))),
        };
        if !report.skipped.is_empty() || !report.quarantined.is_empty() {
            tracing::warn!(dir = %self.dir.display(), ?report, "spool recovery found damaged or stray files");
        }
        if report.segments > 0 {
            tracing::info!(
                dir = %self.dir.display(),
                segments = report.segments,
                records = report.records,
                truncated_bytes = report.truncated_bytes,
                lost_records = report.lost_records,
                "recovered spooled records; delivering them first"
            );
        }
        self.report = Some(report);
        let Some(inner) = self.inner.take() else {
            return Err(self.poison("the inner sink was lost".into()));
        };
        let lock = Arc::new(locks);
        let scope = self
            .fs
            .filesystem_id(lock.any())
            .map(|id| (std::any::TypeId::of::<F>(), id));
        let pool = match self.pool.clone() {
            Some(pool) => pool,
            None => WriterPool::shared().map_err(|source| {
                SpoolError::io("start the writer threads", self.dir.clone(), source)
            })?,
        };
        let slot = pool.slot();
        self.pool = Some(pool);
        let (tx, rx) = mpsc::unbounded_channel();
        // The worker logs in the span the spool was opened in (a
        // pipeline's, under the runtime).
        let worker = tokio::spawn(
            delivery::run::<S, R, F, Arc<Locks<F>>>(
                inner,
                Arc::clone(&shared),
                self.fs.clone(),
                self.cfg.clone(),
                rx,
                Arc::clone(&lock),
                Arc::clone(&self.inner_stats),
            )
            .in_current_span(),
        );
        self.running = Some(Running {
            writer: Arc::new(Mutex::new(writer)),
            slot,
            lock,
            scope,
            tx,
            shared,
            worker,
        });
        Ok(())
    }

    /// Runs `job` on the spool's writer thread and awaits its answer.
    async fn run_job<T: Send + 'static>(
        &mut self,
        job: impl FnOnce(&Arc<Mutex<Writer<F>>>, oneshot::Sender<T>) -> Option<Box<dyn Pending>>
        + Send
        + 'static,
    ) -> Result<T, SpoolError<S::Error>> {
        let Some(running) = self.running.as_ref() else {
            return Err(self.poison("the writer was lost".into()));
        };
        let (reply, answer) = oneshot::channel();
        let writer = Arc::clone(&running.writer);
        let job: Job = Box::new(move || job(&writer, reply));
        if !running.slot.send(job) {
            return Err(self.poison("the writer thread stopped".into()));
        }
        match answer.await {
            Ok(out) => Ok(out),
            Err(_) => Err(self.poison("the writer panicked or stopped".into())),
        }
    }

    /// Runs `f` on the writer thread.
    async fn with_writer<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Writer<F>) -> T + Send + 'static,
    ) -> Result<T, SpoolError<S::Error>> {
        self.run_job(move |writer, reply| {
            // A poisoned writer (a job panicked half-way) answers nothing.
            if let Ok(mut w) = writer.lock() {
                let _ = reply.send(f(&mut w));
            }
            None
        })
        .await
    }

    /// Appends `framed` here, on the caller's thread, when that only means
    /// writing to a segment file already open with nothing to sync
    /// (`Durability::Os`; see [`Writer::appends_in_place`]) and no writer
    /// job holds the spool; otherwise hands the batch back for its writer
    /// thread.
    #[allow(clippy::type_complexity)] // the batch, handed back whole
    fn append_in_place(
        &self,
        window: &WindowMeta,
        framed: Framed,
        records: Vec<R>,
    ) -> Result<AppendOutcome<R>, (Framed, Vec<R>)> {
        let Some(running) = self.running.as_ref() else {
            return Err((framed, records));
        };
        let Ok(mut w) = running.writer.try_lock() else {
            return Err((framed, records));
        };
        if !w.appends_in_place(window, &framed) {
            return Err((framed, records));
        }
        let appended = match w.append(window, framed) {
            Ok(Wrote::Written(written)) => w.finish(written, None),
            Ok(Wrote::Done(appended)) => Ok(appended),
            Err(fail) => Err(fail),
        };
        Ok(settle(&mut w, &running.slot, appended, records).0)
    }

    /// Stops the delivery worker (after the delivery it is making, if any)
    /// and waits until it has let go of the directory lock, so that another
    /// spool can open the directory at once. Nothing is flushed: call
    /// [`Sink::flush`] or [`Sink::drain`] first. Dropping the spool instead
    /// stops the worker just the same, without waiting.
    pub async fn close(mut self) {
        if let Some(running) = self.running.take() {
            // After every job already sent, on the writer's thread.
            let (reply, closed) = oneshot::channel();
            let writer = Arc::clone(&running.writer);
            let job: Job = Box::new(move || {
                if let Ok(mut w) = writer.lock() {
                    w.close_files();
                }
                let _ = reply.send(());
                None
            });
            if running.slot.send(job) {
                let _ = closed.await;
            }
            drop(running.tx);
            let _ = running.worker.await;
        }
    }

    fn send(&self, cmd: Command<S::Error>) -> bool {
        self.running
            .as_ref()
            .is_some_and(|r| r.tx.send(cmd).is_ok())
    }

    async fn finish(&mut self, mode: Drain) -> Result<(), SpoolError<S::Error>> {
        self.ensure_open().await?;
        let now = self.now;
        let dir = self.dir.clone();
        self.with_writer(move |w| match mode {
            Drain::KeepActiveWindow => w.sync_all().and_then(|()| match now {
                Some(now) => w.seal_closed(Some(now)),
                None => Ok(()),
            }),
            _ => w.seal_closed(None),
        })
        .await?
        .map_err(|f| SpoolError::from((f, dir.as_path())))?;
        let (reply, answer) = oneshot::channel();
        if !self.send(Command::Flush(mode, reply)) {
            return Err(self.poison("the delivery worker stopped".into()));
        }
        let deadline = self.cfg.flush_deadline;
        let started = Instant::now();
        match tokio::time::timeout(deadline, answer).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(SpoolError::Inner(e)),
            Ok(Err(_)) => Err(self.poison("the delivery worker stopped".into())),
            Err(_) => Err(SpoolError::FlushTimeout {
                dir: self.dir.clone(),
                segments: self.pending_segments(),
                deadline: started.elapsed().max(deadline),
                last_error: self.running.as_ref().and_then(|r| r.shared.last_error()),
            }),
        }?;
        let unread = self.unread_candidates();
        unread_left(self.fs.clone(), self.dir.clone(), unread).await
    }

    /// Files recovery skipped under a segment's name.
    fn unread_candidates(&self) -> Vec<(PathBuf, String)> {
        let Some(report) = &self.report else {
            return Vec::new();
        };
        report
            .skipped
            .iter()
            .filter(|(p, _)| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(segment::parse_name)
                    .is_some()
            })
            .cloned()
            .collect()
    }
}

/// The locks a spool holds: its directory's own, its root's, or both (a
/// spool opened on its own in a root's directory).
struct Locks<F: Fs> {
    own: Option<F::Lock>,
    root: Option<Arc<F::Lock>>,
}

impl<F: Fs> Locks<F> {
    /// A lock taken before the spool's first write (see
    /// [`Fs::sync_filesystem`]).
    fn any(&self) -> &F::Lock {
        match (&self.own, &self.root) {
            (Some(own), _) => own,
            (None, Some(root)) => root,
            (None, None) => unreachable!("a spool holds its own lock or its root's"),
        }
    }
}

/// How long a lock that is held is tried again before the spool says who
/// holds it. A process started by any thread holds a copy of every open
/// file of its parent until it runs its program, a lock file among them:
/// a spool closed and reopened meanwhile finds its own lock held for that
/// moment (milliseconds, longer on a loaded machine).
const LOCK_GRACE: Duration = Duration::from_secs(1);

/// Takes the lock at `path`, or says who holds it. Blocking: waits up to
/// [`LOCK_GRACE`] for a held lock.
pub(crate) fn take_lock<F: Fs, E>(fs: &F, path: &Path) -> Result<F::Lock, SpoolError<E>> {
    let holder = format!(
        "process {} (locked at {})",
        std::process::id(),
        OffsetDateTime::now_utc()
    );
    let started = Instant::now();
    let lock = loop {
        let lock = fs
            .try_lock(path, &holder)
            .map_err(|source| SpoolError::io("lock", path.to_path_buf(), source))?;
        if lock.is_some() || started.elapsed() >= LOCK_GRACE {
            break lock;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    lock.ok_or_else(|| {
        let holder = read_small(fs, path, 512)
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        let holder = if holder.is_empty() {
            "another spool".to_owned()
        } else {
            holder
        };
        let dir = path.parent().unwrap_or(path).to_path_buf();
        SpoolError::Locked { dir, holder }
    })
}

/// What an append comes to, and, while the process holds more segment
/// files open than its budget, closes this spool's. The records of an
/// accepted batch come back apart from the outcome: a job frees them after
/// it answered, so the caller does not wait for that.
fn settle<F: Fs, R>(
    w: &mut Writer<F>,
    slot: &Slot,
    appended: Result<Appended, WriteFail>,
    records: Vec<R>,
) -> (AppendOutcome<R>, Option<Vec<R>>) {
    if slot.over_file_budget() {
        w.close_files();
    }
    let count = records.len();
    match appended {
        Ok(appended) => ((count, Ok(appended), None), Some(records)),
        Err(fail) => ((count, Err(fail), Some(records)), None),
    }
}

/// Answers an append job with its outcome, then frees the records.
fn answer<F: Fs, R>(
    w: &mut Writer<F>,
    slot: &Slot,
    appended: Result<Appended, WriteFail>,
    records: Vec<R>,
    reply: oneshot::Sender<AppendOutcome<R>>,
) {
    let (outcome, leftover) = settle(w, slot, appended, records);
    let _ = reply.send(outcome);
    drop(leftover);
}

/// An append written under [`Durability::EveryIngest`], waiting for the
/// sync of its round (see [`crate::pool`]).
struct PendingAppend<F: Fs, R> {
    writer: Arc<Mutex<Writer<F>>>,
    fs: F,
    lock: Arc<Locks<F>>,
    scope: Option<Scope>,
    slot: Slot,
    written: Option<Written>,
    needs_filesystem: bool,
    records: Vec<R>,
    reply: oneshot::Sender<AppendOutcome<R>>,
}

impl<F: Fs, R: Send> Pending for PendingAppend<F, R> {
    fn scope(&self) -> Option<Scope> {
        self.scope
    }

    fn spool(&self) -> usize {
        Arc::as_ptr(&self.writer).addr()
    }

    fn needs_filesystem(&self) -> bool {
        self.needs_filesystem
    }

    fn sync_own(&mut self) -> std::io::Result<()> {
        let (Ok(mut w), Some(written)) = (self.writer.lock(), self.written.as_ref()) else {
            return Err(std::io::Error::other("the spool's writer panicked"));
        };
        w.sync_written(written)
    }

    fn sync_filesystem(&mut self) -> std::io::Result<()> {
        self.fs.sync_filesystem(self.lock.any())
    }

    fn finish(mut self: Box<Self>, synced: std::io::Result<()>, took: Duration, shared: bool) {
        // A poisoned writer answers nothing: the spool poisons itself.
        let (Ok(mut w), Some(written)) = (self.writer.lock(), self.written.take()) else {
            return;
        };
        if shared {
            w.shared.stats.note_fsync(took);
            if synced.is_err() {
                w.shared.stats.add(|c| &c.fsync_failures, 1);
            }
        }
        let appended = w.finish(written, Some((synced, took)));
        let records = std::mem::take(&mut self.records);
        let PendingAppend { slot, reply, .. } = *self;
        answer(&mut w, &slot, appended, records, reply);
    }
}

/// Of the files recovery could not read, those still in the directory: a
/// flush that leaves them is not a full flush.
async fn unread_left<F: Fs, E>(
    fs: F,
    dir: PathBuf,
    candidates: Vec<(PathBuf, String)>,
) -> Result<(), SpoolError<E>> {
    {
        if candidates.is_empty() {
            return Ok(());
        }
        let dir2 = dir.clone();
        let left = meathook_core::blocking(move || {
            // A directory that cannot be listed fails closed: every file
            // recovery could not read is assumed still there.
            let Ok(entries) = fs.list(&dir2) else {
                return candidates;
            };
            let names: std::collections::HashSet<_> = entries.into_iter().map(|e| e.name).collect();
            candidates
                .into_iter()
                .filter(|(p, _)| p.file_name().is_some_and(|n| names.contains(n)))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        if left.is_empty() {
            Ok(())
        } else {
            Err(SpoolError::Unread { dir, files: left })
        }
    }
}

fn rejection<E>(window: &WindowMeta, e: RecordError, max: usize) -> SpoolError<E> {
    match e {
        RecordError::Serialize(reason) => SpoolError::Serialize {
            window: window.clone(),
            reason,
        },
        RecordError::TooLarge(size) => SpoolError::RecordTooLarge {
            window: window.clone(),
            size,
            max,
        },
    }
}

impl<S, R, F> Sink<R> for DiskSpool<S, R, F>
where
    S: Sink<R> + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
    F: Fs,
{
    type Error = SpoolError<S::Error>;

    async fn open(&mut self) -> Result<(), Self::Error> {
        self.ensure_open().await
    }

    async fn ingest(
        &mut self,
        window: &WindowMeta,
        records: Vec<R>,
    ) -> Result<Receipt<Self::Error>, IngestError<R, Self::Error>> {
        if records.is_empty() {
            return Ok(Receipt::all(0));
        }
        if let Err(e) = self.ensure_open().await {
            return Err(IngestError::new(records, e));
        }
        let mut filed = window.widen(self.policy.window());
        filed.batch = None;
        let filed2 = filed.clone();
        let (fs, lock, scope, slot) = match self.running.as_ref() {
            Some(r) => (
                self.fs.clone(),
                Arc::clone(&r.lock),
                r.scope,
                r.slot.clone(),
            ),
            None => {
                return Err(IngestError::new(
                    records,
                    self.poison("the writer was lost".into()),
                ));
            }
        };
        let framed = Framed::encode(&mut self.builder, &self.cfg, &records);
        let outcome = match self.append_in_place(&filed, framed, records) {
            Ok(outcome) => Ok(outcome),
            Err((framed, records)) => {
                self.run_job(move |writer, reply: oneshot::Sender<AppendOutcome<R>>| {
                    let Ok(mut w) = writer.lock() else {
                        return None;
                    };
                    let count = records.len();
                    let appended = match w.write(&filed2, framed) {
                        // Handed back: the caller keeps what was not accepted.
                        Err(fail) => {
                            let _ = reply.send((count, Err(fail), Some(records)));
                            return None;
                        }
                        Ok(Wrote::Written(written)) if w.commits() => {
                            return Some(Box::new(PendingAppend {
                                needs_filesystem: w.unsynced_metadata,
                                writer: Arc::clone(writer),
                                fs,
                                lock,
                                scope,
                                slot,
                                written: Some(written),
                                records,
                                reply,
                            }));
                        }
                        Ok(Wrote::Written(written)) => w.finish(written, None),
                        Ok(Wrote::Done(appended)) => Ok(appended),
                    };
                    answer(&mut w, &slot, appended, records, reply);
                    None
                })
                .await
            }
        };
        let (count, result, records) = match outcome {
            Ok(triple) => triple,
            // The records moved into a job that panicked: they are gone.
            Err(e) => return Err(IngestError::new(Vec::new(), e)),
        };
        let max = self.cfg.max_record();
        match result {
            Ok(Appended::Accepted(rejected)) => {
                self.stats
                    .add(|c| &c.rejected_records, rejected.len() as u64);
                let accepted = count - rejected.len();
                let rejected = rejected
                    .into_iter()
                    .map(|(index, e)| RecordRejected {
                        index,
                        error: rejection(&filed, e, max),
                    })
                    .collect();
                Ok(Receipt::partial(accepted, rejected))
            }
            Ok(Appended::DroppedNewest) => {
                self.stats.add(|c| &c.dropped_newest, count as u64);
                tracing::warn!(window = %filed, records = count, "spool full: dropped the newest records");
                let rejected = (0..count)
                    .map(|index| RecordRejected {
                        index,
                        error: SpoolError::Dropped {
                            dir: self.dir.clone(),
                            window: filed.clone(),
                        },
                    })
                    .collect();
                Ok(Receipt::partial(0, rejected))
            }
            Err(fail) => Err(IngestError::new(
                records.unwrap_or_default(),
                SpoolError::from((fail, self.dir.as_path())),
            )),
        }
    }

    async fn advance(&mut self, now: OffsetDateTime) -> Result<(), Self::Error> {
        self.ensure_open().await?;
        self.now = Some(now);
        let dir = self.dir.clone();
        let sealed = self
            .with_writer(move |w| w.seal_closed(Some(now)))
            .await?
            .map_err(|f| SpoolError::from((f, dir.as_path())));
        self.send(Command::Advance(now));
        sealed
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        let mode = if self.cfg.keep_active_window {
            Drain::KeepActiveWindow
        } else {
            Drain::Everything
        };
        self.finish(mode).await
    }

    async fn drain(&mut self, mode: Drain) -> Result<(), Self::Error> {
        self.finish(mode).await
    }

    fn observe(&self, stats: &mut StackStats) {
        let s = self.stats.snapshot();
        stats.spooled_bytes += s.bytes_on_disk;
        stats.note_utilisation(self.stats.utilisation());
        if let Some(at) = s.oldest_undelivered {
            stats.note_undelivered(at);
        }
        // The window now filling closes at its end (windows are aligned).
        let window = WindowMeta::containing("", OffsetDateTime::now_utc(), self.policy.window());
        stats.note_close(window.end);
        stats.delivered_records = s.delivered_records;
        stats.failed_attempts = s.deliveries_failed;
        stats.retries = s.deliveries_retried;
        stats.rejected_records += s.rejected_records + s.rejected_by_inner;
        stats.dropped_records += s.dropped_oldest + s.dropped_newest;
        stats.quarantined_records += s.quarantined_records;
        stats.dead_lettered_records += s.dead_lettered_records;
        // What the inner sink last reported: the worker owns it, so it
        // reports after each delivery.
        if let Ok(inner) = self.inner_stats.lock() {
            stats.merge_below(&inner);
        }
    }
}
