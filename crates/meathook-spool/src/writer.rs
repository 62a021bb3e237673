//! The writer: frames batches, appends them to the open segment of their
//! window, syncs per [`Durability`], seals segments.
//!
//! Never runs on an executor thread: recovery builds it on a blocking
//! thread at start, then every append, sync and seal runs on the spool's
//! thread of its [`WriterPool`](crate::WriterPool) (`pool.rs`). An append is
//! [`write`](Writer::write), a sync (its own, or its filesystem's shared
//! with other spools), then [`finish`](Writer::finish).
//!
//! **Invariants:**
//! - `OpenSeg::len` is the length of the file up to the last acknowledged
//!   frame. A failed write or fsync never moves it; the segment is then
//!   *abandoned*: cut back to `len`, renamed `.abandoned` (so that no later
//!   run appends to it again), never written again, and handed to the worker
//!   to deliver no further than `len`. A failed fsync is therefore never
//!   retried on the same segment. The worker delivers an abandoned segment
//!   only once its cut and rename are durable ([`retire`]), so what it
//!   delivers is what a restart would find.
//! - Once a batch is durable it is acknowledged: `append` returns `Ok` after
//!   the batch's write (and sync, per [`Durability`]), whatever happens
//!   after it in the same call (a group sync or a seal that fails abandons
//!   the segment *with* the batch, and is logged). An `Err` from `append`
//!   means the file was cut back to before the batch.
//! - Sequence numbers and segment ids only grow, across restarts too: they
//!   are leased in blocks recorded durably in the `sequence` file before use.
//!   Each run also draws a random incarnation, written into every segment it
//!   creates, so that batch identities stay unique when a fresh directory
//!   restarts the sequence at 0.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use meathook_core::WindowMeta;
use serde::Serialize;
use time::OffsetDateTime;

use crate::codec::{self, FrameBuilder, RecordError};
use crate::frame::{FrameHeader, HEADER_LEN, Kind};
use crate::fs::{Fs, FsFile, write_file_durably, write_file_replacing};
use crate::limits::{Config, Durability, FullPolicy};
use crate::pool::Counted;
use crate::queue::{Due, Shared};
use crate::segment::{self, MAX_PIPELINE, Segment, SegmentHeader, State};

const SEQ_LEASE: u64 = 1 << 20;
const ID_LEASE: u64 = 1 << 10;
/// The file holding the leased sequence and segment id limits.
pub(crate) const SEQUENCE_FILE: &str = "sequence";

/// Zeros written ahead of an open segment's frames, at least (one page)…
const MIN_AHEAD: u64 = 4 << 10;
/// …and at most; in between, as many as the segment holds already.
pub(crate) const MAX_AHEAD: u64 = ZEROS.len() as u64;

/// What zeros are written from. Never written, so its pages are the
/// kernel's shared zero page: no allocation, and nothing added to the
/// process's memory.
static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

/// A segment being appended to.
#[derive(Debug)]
pub(crate) struct OpenSeg<W> {
    pub(crate) seg: Segment,
    pub(crate) file: Option<W>,
    pub(crate) len: u64,
    /// How far the file is known written: `len`, then unacknowledged frames
    /// or zeros written ahead (see [`Writer::append`]).
    pub(crate) written_to: u64,
    pub(crate) index: u64,
    pub(crate) dirty: bool,
    pub(crate) known_lost: u64,
}

/// A failure of the writer; the spool adds the inner sink's error type.
#[derive(Debug)]
pub(crate) enum WriteFail {
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    Full {
        on_disk: u64,
        max: Option<u64>,
        free: u64,
        min_free: u64,
        by_free: bool,
    },
    PipelineName(usize),
}

/// A batch written to its segment and waiting for the sync that
/// acknowledges it ([`Writer::finish`]).
#[derive(Debug)]
pub(crate) struct Written {
    id: u64,
    bytes: u64,
    first_seq: u64,
    next_seq: u64,
    index: u64,
    accepted: u64,
    rejected: Vec<(usize, RecordError)>,
}

/// What [`Writer::write`] did.
#[derive(Debug)]
pub(crate) enum Wrote {
    /// Nothing to sync: the batch is settled.
    Done(Appended),
    /// Written; [`Writer::finish`] settles it.
    Written(Written),
}

/// How a batch went.
#[derive(Debug)]
pub(crate) enum Appended {
    /// Every record but the rejected ones was appended.
    Accepted(Vec<(usize, RecordError)>),
    /// The spool was full and drops the newest records: nothing appended.
    DroppedNewest,
}

/// A batch framed before it reaches the writer (on the caller's thread):
/// compressed frame payloads with their record counts, and the records
/// that could not be encoded.
#[derive(Debug)]
pub(crate) struct Framed {
    frames: Vec<(Vec<u8>, u32)>,
    pub(crate) rejected: Vec<(usize, RecordError)>,
}

impl Framed {
    /// Frames `records`, cutting a frame every `cfg.frame_bytes` of
    /// encoded records; `builder` keeps its buffers between batches.
    pub(crate) fn encode<R: Serialize>(
        builder: &mut FrameBuilder,
        cfg: &Config,
        records: &[R],
    ) -> Self {
        let max = cfg.max_record();
        let mut frames = Vec::new();
        let mut rejected = Vec::new();
        for (i, record) in records.iter().enumerate() {
            match builder.push(record, max) {
                Ok(()) if builder.raw_len() >= cfg.frame_bytes => frames.push(builder.finish()),
                Ok(()) => {}
                Err(e) => rejected.push((i, e)),
            }
        }
        if builder.count() > 0 {
            frames.push(builder.finish());
        }
        Self { frames, rejected }
    }

    /// The frames' bytes with their headers.
    fn body(&self) -> u64 {
        self.frames
            .iter()
            .map(|(p, _)| (HEADER_LEN + p.len()) as u64)
            .sum()
    }

    /// Records in the frames.
    fn accepted(&self) -> u64 {
        self.frames.iter().map(|(_, n)| u64::from(*n)).sum()
    }

    /// Room to ask for: the frames, and a new segment's header.
    fn needed(&self, window: &WindowMeta) -> u64 {
        self.body() + (HEADER_LEN + 64 + window.pipeline.len()) as u64
    }
}

/// Appends and seals segments; see the module docs.
#[derive(Debug)]
pub(crate) struct Writer<F: Fs> {
    pub(crate) fs: F,
    pub(crate) shared: Arc<Shared>,
    pub(crate) cfg: Config,
    pub(crate) open: Vec<OpenSeg<Counted<F::File>>>,
    pub(crate) next_seq: u64,
    pub(crate) seq_limit: u64,
    pub(crate) next_id: u64,
    pub(crate) id_limit: u64,
    pub(crate) last_sync: Instant,
    /// This run's incarnation, written into every segment it creates.
    pub(crate) incarnation: u64,
    /// Whether the syncs of a new segment's directory entry and of a new
    /// lease are left to the filesystem sync that commits the append which
    /// needed them (shared writers, `EveryIngest`, a filesystem that can
    /// sync as a whole): a spool's first append then costs no sync of its
    /// own.
    pub(crate) defer_syncs: bool,
    /// A deferred sync is owed: the next commit must sync the filesystem.
    pub(crate) unsynced_metadata: bool,
}

/// A random incarnation for a spool run. Not cryptographic: it only has to
/// differ between runs, so the generator's OS-seeded state is mixed with
/// the time and the process id.
pub(crate) fn new_incarnation() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| {
            u64::try_from(d.as_nanos() % u128::from(u64::MAX)).unwrap_or(0)
        });
    fastrand::u64(..) ^ nanos.rotate_left(17) ^ (u64::from(std::process::id()) << 40)
}

/// Cuts an abandoned segment back to `valid_len`, makes the cut durable,
/// renames it `.abandoned` and syncs the directory: from then on no run
/// appends to it again, and a restart delivers exactly what the worker
/// does. Returns the new path.
///
/// Idempotent: after a rename whose directory sync failed, a second call
/// finds the `.abandoned` file, checks its length and syncs the directory
/// again.
pub(crate) fn retire<F: Fs>(fs: &F, dir: &Path, id: u64, valid_len: u64) -> io::Result<PathBuf> {
    let open_path = segment::path(dir, id, State::Open);
    let abandoned = segment::path(dir, id, State::Abandoned);
    match fs.len(&open_path) {
        Ok(_) => {
            cut(fs, &open_path, valid_len)?;
            fs.rename(&open_path, &abandoned)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs.len(&abandoned)? > valid_len {
                cut(fs, &abandoned, valid_len)?;
            }
        }
        Err(e) => return Err(e),
    }
    fs.sync_dir(dir)?;
    Ok(abandoned)
}

/// Cuts `path` to `len` bytes, durably.
fn cut<F: Fs>(fs: &F, path: &Path, len: u64) -> io::Result<()> {
    let mut file = fs.open_append(path)?;
    file.set_len(len)?;
    file.sync_data()
}

fn io_fail(op: &'static str, path: PathBuf) -> impl FnOnce(io::Error) -> WriteFail {
    move |source| WriteFail::Io { op, path, source }
}

impl<F: Fs> Writer<F> {
    fn dir(&self) -> PathBuf {
        self.shared.dir.clone()
    }

    fn persist_leases(&mut self, seq_limit: u64, id_limit: u64) -> Result<(), WriteFail> {
        let path = self.shared.dir.join(SEQUENCE_FILE);
        let text = format!("{seq_limit} {id_limit}\n");
        if self.defer_syncs {
            write_file_replacing(&self.fs, &path, text.as_bytes())
                .map_err(io_fail("sequence write", path))?;
            self.unsynced_metadata = true;
        } else {
            write_file_durably(&self.fs, &path, text.as_bytes())
                .map_err(io_fail("sequence write", path))?;
        }
        self.seq_limit = seq_limit;
        self.id_limit = id_limit;
        Ok(())
    }

    fn exhausted(&self, what: &str) -> WriteFail {
        let path = self.shared.dir.join(SEQUENCE_FILE);
        WriteFail::Io {
            op: "lease",
            source: io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{what} exhausted (a segment name or the sequence file claims numbers near 2^64); move the spool's files aside and start a fresh directory"
                ),
            ),
            path,
        }
    }

    /// Leases sequence numbers and segment ids now if none are left, so the
    /// next append need not.
    pub(crate) fn lease_ahead(&mut self) -> Result<(), WriteFail> {
        if self.next_seq < self.seq_limit && self.next_id < self.id_limit {
            return Ok(());
        }
        let seq_limit = self
            .next_seq
            .checked_add(SEQ_LEASE)
            .ok_or_else(|| self.exhausted("sequence numbers"))?;
        let id_limit = self
            .next_id
            .checked_add(ID_LEASE)
            .ok_or_else(|| self.exhausted("segment ids"))?;
        self.persist_leases(seq_limit.max(self.seq_limit), id_limit.max(self.id_limit))
    }

    fn take_seqs(&mut self, n: u64) -> Result<u64, WriteFail> {
        let Some(end) = self.next_seq.checked_add(n) else {
            return Err(self.exhausted("sequence numbers"));
        };
        if end > self.seq_limit {
            let limit = end
                .checked_add(SEQ_LEASE)
                .ok_or_else(|| self.exhausted("sequence numbers"))?;
            // A segment id is usually needed next (a spool's first append):
            // lease both in one write.
            let id_limit = if self.next_id >= self.id_limit {
                self.next_id.saturating_add(1 + ID_LEASE)
            } else {
                self.id_limit
            };
            self.persist_leases(limit, id_limit)?;
        }
        let first = self.next_seq;
        self.next_seq = end;
        Ok(first)
    }

    fn take_id(&mut self) -> Result<u64, WriteFail> {
        let Some(end) = self.next_id.checked_add(1) else {
            return Err(self.exhausted("segment ids"));
        };
        if end > self.id_limit {
            let limit = end
                .checked_add(ID_LEASE)
                .ok_or_else(|| self.exhausted("segment ids"))?;
            self.persist_leases(self.seq_limit, limit)?;
        }
        self.next_id = end;
        Ok(end - 1)
    }

    /// Whether an append waits for a sync before it is acknowledged.
    pub(crate) fn commits(&self) -> bool {
        self.cfg.durability == Durability::EveryIngest
    }

    /// Whether appending `framed` to `window` only writes to a segment
    /// file already open: no segment to create, seal or drop, no lease to
    /// write, nothing to sync (`Durability::Os`). Such an append is quick
    /// enough to run on the caller's thread.
    pub(crate) fn appends_in_place(&self, window: &WindowMeta, framed: &Framed) -> bool {
        let Some(o) = self.open.iter().find(|o| o.seg.window == *window) else {
            return false;
        };
        self.cfg.durability == Durability::Os
            && !framed.frames.is_empty()
            && o.file.is_some()
            && o.len + framed.body() < self.cfg.limits.max_segment_bytes
            && self.next_seq + framed.accepted() <= self.seq_limit
            && self.full(framed.needed(window)).is_none()
    }

    /// Makes room and writes `framed` to the open segment of `window`,
    /// without syncing. The batch is not acknowledged until
    /// [`finish`](Self::finish); nothing else may be written to this spool
    /// in between.
    pub(crate) fn write(
        &mut self,
        window: &WindowMeta,
        framed: Framed,
    ) -> Result<Wrote, WriteFail> {
        if framed.frames.is_empty() {
            return Ok(Wrote::Done(Appended::Accepted(framed.rejected)));
        }
        if !self.make_room(framed.needed(window))? {
            return Ok(Wrote::Done(Appended::DroppedNewest));
        }
        self.append(window, framed)
    }

    /// [`write`](Self::write) once room was made (or
    /// [`appends_in_place`](Self::appends_in_place) found it).
    pub(crate) fn append(
        &mut self,
        window: &WindowMeta,
        framed: Framed,
    ) -> Result<Wrote, WriteFail> {
        let (body, accepted) = (framed.body(), framed.accepted());
        let Framed { frames, rejected } = framed;
        let first_seq = self.take_seqs(accepted)?;
        let at = self.open_index(window)?;
        let o = &mut self.open[at];
        let mut buf = Vec::with_capacity(usize::try_from(body).unwrap_or(0));
        let (mut seq, mut index) = (first_seq, o.index);
        for (payload, count) in &frames {
            buf.extend_from_slice(&FrameHeader::encode(
                Kind::Records,
                seq,
                index,
                *count,
                payload,
            ));
            buf.extend_from_slice(payload);
            seq += u64::from(*count);
            index += u64::from(*count);
        }
        let path = segment::path(&self.shared.dir, o.seg.id, State::Open);
        let written = match o.file.as_mut() {
            Some(file) => file.write_all_at(&buf, o.len),
            None => Err(io::Error::other("segment file not open")),
        };
        if let Err(source) = written {
            self.abandon(at);
            return Err(WriteFail::Io {
                op: "append",
                path,
                source,
            });
        }
        let o = &mut self.open[at];
        o.dirty = true;
        let end = o.len + buf.len() as u64;
        o.written_to = o.written_to.max(end);
        if o.written_to == end && self.cfg.durability != Durability::Os {
            write_ahead(o, end, self.cfg.limits.max_segment_bytes);
        }
        Ok(Wrote::Written(Written {
            id: o.seg.id,
            bytes: buf.len() as u64,
            first_seq,
            next_seq: seq,
            index,
            accepted,
            rejected,
        }))
    }

    /// `fdatasync`s the segment `written` went to, reopening it if the
    /// open-file budget closed it.
    pub(crate) fn sync_written(&mut self, written: &Written) -> io::Result<()> {
        let Some(at) = self.open.iter().position(|o| o.seg.id == written.id) else {
            return Err(io::Error::other("the segment is no longer open"));
        };
        self.reopen(at)?;
        sync(&mut self.open[at], &self.shared)
    }

    /// Acknowledges a written batch once `synced` (`None`: not synced, by
    /// [`Durability`]) made it durable, or abandons its segment at the last
    /// acknowledged frame if the sync failed.
    pub(crate) fn finish(
        &mut self,
        written: Written,
        synced: Option<(io::Result<()>, std::time::Duration)>,
    ) -> Result<Appended, WriteFail> {
        let Some(at) = self.open.iter().position(|o| o.seg.id == written.id) else {
            return Err(WriteFail::Io {
                op: "fsync",
                path: segment::path(&self.shared.dir, written.id, State::Open),
                source: io::Error::other("the segment is no longer open"),
            });
        };
        if let Some((result, _)) = synced {
            if let Err(source) = result {
                let path = segment::path(&self.shared.dir, written.id, State::Open);
                if self.unsynced_metadata {
                    // The lease may not be on disk: lease again before the
                    // next number is used.
                    self.seq_limit = self.next_seq;
                    self.id_limit = self.next_id;
                }
                self.abandon(at);
                return Err(WriteFail::Io {
                    op: "fsync",
                    path,
                    source,
                });
            }
            self.open[at].dirty = false;
            self.unsynced_metadata = false;
        }
        let o = &mut self.open[at];
        let Written {
            bytes,
            first_seq,
            next_seq,
            index,
            accepted,
            rejected,
            ..
        } = written;
        o.len += bytes;
        o.index = index;
        o.seg.bytes = o.len;
        o.seg.seqs = Some(match o.seg.seqs {
            Some((first, _)) => (first, next_seq - 1),
            None => (first_seq, next_seq - 1),
        });
        o.seg.records += accepted;
        let stats = &self.shared.stats;
        stats.add(|c| &c.records_appended, accepted);
        stats.add(|c| &c.records_on_disk, accepted);
        stats.add(|c| &c.bytes_appended, bytes);
        stats.add(|c| &c.bytes_on_disk, bytes);
        let full = o.len >= self.cfg.limits.max_segment_bytes;
        // The batch is durable: it is acknowledged whatever happens next. A
        // failed group sync or seal abandons its segment, batch included,
        // and the next append starts a new one.
        let id = o.seg.id;
        if let Err(fail) = self.group_sync() {
            after_ack(&fail, "group sync");
        }
        // The group sync may have abandoned segments (this one included):
        // find this one again by id, not by its old index.
        if full
            && let Some(at) = self.open.iter().position(|o| o.seg.id == id)
            && let Err(fail) = self.seal(at)
        {
            after_ack(&fail, "seal");
        }
        Ok(Appended::Accepted(rejected))
    }

    /// Closes the segment files this spool holds open, keeping their
    /// segments open for appends (the next one reopens its file).
    pub(crate) fn close_files(&mut self) {
        for o in &mut self.open {
            o.file = None;
        }
    }

    /// Reopens segment `at`'s file if it was closed.
    fn reopen(&mut self, at: usize) -> io::Result<()> {
        if self.open[at].file.is_none() {
            let path = segment::path(&self.shared.dir, self.open[at].seg.id, State::Open);
            self.open[at].file = Some(Counted::new(self.fs.open_append(&path)?));
        }
        Ok(())
    }

    /// Why `needed` more bytes do not fit, or `None` if they do.
    fn full(&self, needed: u64) -> Option<WriteFail> {
        let stats = &self.shared.stats;
        let limits = self.cfg.limits;
        let free = match self.fs.available_space(&self.shared.dir) {
            Ok(free) => free,
            Err(e) => {
                tracing::warn!(dir = %self.shared.dir.display(), error = %e, "cannot read free space; not enforcing min_free_bytes");
                u64::MAX
            }
        };
        stats.set(|c| &c.free_bytes, free);
        let on_disk = stats.snapshot().bytes_on_disk;
        let over_max = limits.max_bytes.is_some_and(|m| on_disk + needed > m);
        let over_free = free < limits.min_free_bytes.saturating_add(needed);
        (over_max || over_free).then_some(WriteFail::Full {
            on_disk,
            max: limits.max_bytes,
            free,
            min_free: limits.min_free_bytes,
            by_free: over_free,
        })
    }

    /// Whether `needed` more bytes fit, after dropping the oldest segments
    /// if the policy says so; `Ok(false)` means drop the batch.
    fn make_room(&mut self, needed: u64) -> Result<bool, WriteFail> {
        let stats = self.shared.stats.clone();
        loop {
            let Some(full) = self.full(needed) else {
                return Ok(true);
            };
            match self.cfg.full {
                FullPolicy::Block => return Err(full),
                FullPolicy::DropNewest => return Ok(false),
                FullPolicy::DropOldest => {
                    let victim = {
                        let mut q = self.shared.queue();
                        let in_flight = q.in_flight;
                        let pos = q.due.iter().position(|d| Some(d.segment.id) != in_flight);
                        pos.and_then(|p| q.due.remove(p))
                    };
                    let Some(victim) = victim else {
                        return Err(full);
                    };
                    // An abandoned segment may have been renamed since it
                    // was queued.
                    let abandoned =
                        segment::path(&self.shared.dir, victim.segment.id, State::Abandoned);
                    self.fs
                        .remove_file(&victim.path)
                        .or_else(|e| match e.kind() {
                            io::ErrorKind::NotFound => self.fs.remove_file(&abandoned),
                            _ => Err(e),
                        })
                        .and_then(|()| self.fs.sync_dir(&self.shared.dir))
                        .map_err(io_fail("drop oldest", victim.path.clone()))?;
                    let lost = victim.segment.records.saturating_sub(victim.known_lost);
                    tracing::warn!(segment = %victim.path.display(), window = %victim.segment.window, records = lost, "spool full: dropped the oldest segment");
                    stats.add(|c| &c.dropped_oldest, lost);
                    stats.sub(|c| &c.records_on_disk, victim.segment.records);
                    stats.sub(|c| &c.bytes_on_disk, victim.segment.bytes);
                    stats.sub(|c| &c.segments_on_disk, 1);
                    self.shared.note_removed(victim.segment.id);
                }
            }
        }
    }

    /// The open segment of `window`, created if there is none.
    fn open_index(&mut self, window: &WindowMeta) -> Result<usize, WriteFail> {
        if let Some(at) = self.open.iter().position(|o| o.seg.window == *window) {
            let path = segment::path(&self.shared.dir, self.open[at].seg.id, State::Open);
            self.reopen(at).map_err(io_fail("reopen", path))?;
            return Ok(at);
        }
        if window.pipeline.len() > MAX_PIPELINE {
            return Err(WriteFail::PipelineName(window.pipeline.len()));
        }
        let id = self.take_id()?;
        let created = OffsetDateTime::now_utc();
        let header = SegmentHeader {
            id,
            encoding: codec::ENCODING_POSITIONAL_LZ4,
            window: window.clone(),
            created,
            incarnation: Some(self.incarnation),
        }
        .encode();
        let path = segment::path(&self.shared.dir, id, State::Open);
        let mut file = self
            .fs
            .create_new(&path)
            .map_err(io_fail("create", path.clone()))?;
        let defer = self.defer_syncs;
        if let Err(source) = file.write_all(&header).and_then(|()| {
            if defer {
                Ok(())
            } else {
                self.fs.sync_dir(&self.shared.dir)
            }
        }) {
            drop(file);
            let _ = self.fs.remove_file(&path);
            return Err(WriteFail::Io {
                op: "create",
                path,
                source,
            });
        }
        self.unsynced_metadata |= defer;
        let len = header.len() as u64;
        let stats = &self.shared.stats;
        stats.add(|c| &c.segments_created, 1);
        stats.add(|c| &c.segments_on_disk, 1);
        stats.add(|c| &c.bytes_on_disk, len);
        stats.add(|c| &c.bytes_appended, len);
        self.shared.note_created(id, created);
        self.open.push(OpenSeg {
            seg: Segment {
                id,
                window: window.clone(),
                created,
                incarnation: Some(self.incarnation),
                seqs: None,
                records: 0,
                bytes: len,
            },
            file: Some(Counted::new(file)),
            len,
            written_to: len,
            index: 0,
            dirty: true,
            known_lost: 0,
        });
        Ok(self.open.len() - 1)
    }

    /// Stops writing to segment `at` after a failure and hands it to the
    /// worker, to be delivered no further than its acknowledged length.
    ///
    /// The cut and the rename are tried here; if either fails the worker
    /// tries again before it delivers the segment ([`retire`]).
    fn abandon(&mut self, at: usize) {
        let o = self.open.remove(at);
        drop(o.file);
        let dir = self.dir();
        let path = match retire(&self.fs, &dir, o.seg.id, o.len) {
            Ok(path) => {
                tracing::error!(segment = %path.display(), window = %o.seg.window, "write failed; segment abandoned at its last acknowledged frame");
                path
            }
            Err(e) => {
                let path = segment::path(&dir, o.seg.id, State::Open);
                tracing::error!(segment = %path.display(), window = %o.seg.window, error = %e, "write failed; segment abandoned at its last acknowledged frame, but cutting or renaming it failed too: it is delivered once that succeeds");
                path
            }
        };
        self.shared.push_due(Due {
            valid_len: o.len,
            known_lost: o.known_lost,
            segment: o.seg,
            path,
        });
    }

    /// Seals segment `at`: seal frame, fsync, rename, directory fsync.
    pub(crate) fn seal(&mut self, at: usize) -> Result<(), WriteFail> {
        let dir = self.dir();
        let open_path = segment::path(&dir, self.open[at].seg.id, State::Open);
        if self.open[at].seg.records == 0 && self.open[at].known_lost == 0 {
            let o = self.open.remove(at);
            drop(o.file);
            self.fs
                .remove_file(&open_path)
                .and_then(|()| self.fs.sync_dir(&dir))
                .map_err(io_fail("remove empty segment", open_path))?;
            let stats = &self.shared.stats;
            stats.sub(|c| &c.bytes_on_disk, o.len);
            stats.sub(|c| &c.segments_on_disk, 1);
            self.shared.note_removed(o.seg.id);
            return Ok(());
        }
        if let Err(source) = self.reopen(at) {
            self.abandon(at);
            return Err(WriteFail::Io {
                op: "seal",
                path: open_path,
                source,
            });
        }
        let seal = FrameHeader::encode(Kind::Seal, self.next_seq, self.open[at].index, 0, &[]);
        let o = &mut self.open[at];
        let end = o.len + HEADER_LEN as u64;
        // The zeros written ahead are cut: a sealed segment ends with its
        // seal frame.
        let result = match o.file.as_mut() {
            Some(file) => file.write_all_at(&seal, o.len).and_then(|()| {
                if o.written_to > end {
                    file.set_len(end)
                } else {
                    Ok(())
                }
            }),
            None => Err(io::Error::other("segment file not open")),
        };
        if let Err(source) = result.and_then(|()| sync(o, &self.shared)) {
            self.abandon(at);
            return Err(WriteFail::Io {
                op: "seal",
                path: open_path,
                source,
            });
        }
        let sealed_path = segment::path(&dir, o.seg.id, State::Sealed);
        if let Err(source) = self.fs.rename(&open_path, &sealed_path) {
            self.abandon(at);
            return Err(WriteFail::Io {
                op: "seal rename",
                path: open_path,
                source,
            });
        }
        let mut o = self.open.remove(at);
        drop(o.file.take());
        o.len += HEADER_LEN as u64;
        o.seg.bytes = o.len;
        let stats = &self.shared.stats;
        stats.add(|c| &c.bytes_on_disk, HEADER_LEN as u64);
        stats.add(|c| &c.bytes_appended, HEADER_LEN as u64);
        let synced = self.fs.sync_dir(&dir);
        self.shared.push_due(Due {
            valid_len: o.len,
            known_lost: o.known_lost,
            segment: o.seg,
            path: sealed_path.clone(),
        });
        synced.map_err(io_fail("seal directory fsync", sealed_path))
    }

    /// Seals every open segment whose window closed by `now` (every one if
    /// `now` is `None`), then runs a due group commit.
    pub(crate) fn seal_closed(&mut self, now: Option<OffsetDateTime>) -> Result<(), WriteFail> {
        let mut first_err = None;
        let mut at = 0;
        while at < self.open.len() {
            let closed = now.is_none_or(|now| self.open[at].seg.window.is_closed_at(now));
            if closed {
                if let Err(e) = self.seal(at) {
                    first_err.get_or_insert(e);
                }
            } else {
                at += 1;
            }
        }
        if let Err(e) = self.group_sync() {
            first_err.get_or_insert(e);
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Syncs every open segment with unsynced appends.
    pub(crate) fn sync_all(&mut self) -> Result<(), WriteFail> {
        let mut first_err = None;
        let mut at = 0;
        while at < self.open.len() {
            let dirty = self.open[at].dirty;
            if dirty
                && let Err(source) = self
                    .reopen(at)
                    .and_then(|()| sync(&mut self.open[at], &self.shared))
            {
                let o = &self.open[at];
                let path = segment::path(&self.shared.dir, o.seg.id, State::Open);
                self.abandon(at);
                first_err.get_or_insert(WriteFail::Io {
                    op: "fsync",
                    path,
                    source,
                });
                continue;
            }
            at += 1;
        }
        self.last_sync = Instant::now();
        first_err.map_or(Ok(()), Err)
    }

    /// Group commit: syncs if the interval has passed since the last sync.
    fn group_sync(&mut self) -> Result<(), WriteFail> {
        match self.cfg.durability {
            Durability::Interval(every) if self.last_sync.elapsed() >= every => self.sync_all(),
            _ => Ok(()),
        }
    }
}

/// Logs a failure that came after a batch was acknowledged, in the same
/// call: the batch is safe in its (now abandoned) segment.
fn after_ack(fail: &WriteFail, step: &str) {
    match fail {
        WriteFail::Io { op, path, source } => {
            tracing::error!(step, op, path = %path.display(), error = %source, "the batch was written and acknowledged, but the {step} after it failed; the segment is delivered up to the batch and a new one is started");
        }
        other => {
            tracing::error!(step, failure = ?other, "the batch was written and acknowledged, but the {step} after it failed");
        }
    }
}

/// Writes zeros ahead of an open segment's frames, which end at `end`,
/// the end of its file: as many as it holds already, within
/// [`MIN_AHEAD`]..=[`MAX_AHEAD`], and not past `max_segment` (where it is
/// sealed). The sync that commits the append commits them with it, so the
/// syncs of the appends they make room for write only data: no new length
/// or blocks for the filesystem to record, which costs about as much again
/// as the data on ext4. Recovery, `inspect` and delivery read zeros where a
/// frame would start, through to the end, as the segment's end. A write
/// that fails (a full disk) only means the next append extends the file.
fn write_ahead<W: FsFile>(o: &mut OpenSeg<W>, end: u64, max_segment: u64) {
    let to = (end + end.clamp(MIN_AHEAD, MAX_AHEAD)).min(max_segment);
    let Some(file) = o.file.as_mut() else {
        return;
    };
    if to > end {
        // `to - end` is at most `MAX_AHEAD`, the length of `ZEROS`.
        let n = usize::try_from(to - end).map_or(ZEROS.len(), |n| n.min(ZEROS.len()));
        let zeros = &ZEROS[..n];
        match file.write_all_at(zeros, end) {
            Ok(()) => o.written_to = end + zeros.len() as u64,
            Err(e) => tracing::debug!(error = %e, "writing ahead of a segment's frames failed"),
        }
    }
}

/// `fdatasync`s one segment, timing it.
fn sync<W: FsFile>(o: &mut OpenSeg<W>, shared: &Shared) -> io::Result<()> {
    let Some(file) = o.file.as_mut() else {
        return Ok(());
    };
    let started = Instant::now();
    let result = file.sync_data();
    shared.stats.note_fsync(started.elapsed());
    if result.is_err() {
        shared.stats.add(|c| &c.fsync_failures, 1);
    } else {
        o.dirty = false;
    }
    result
}
