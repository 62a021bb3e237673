//! The delivery worker: a task that owns the inner sink and hands it sealed
//! segments, oldest first, never inline in `ingest`.
//!
//! For each due segment it offers the records chunk by chunk
//! ([`Sink::ingest_chunks`]) under the segment's window and `BatchId`. On
//! `Ok` the file is deleted and the directory fsynced. On a transient error
//! it waits a capped, jittered [`Backoff`](meathook_core::Backoff) (or the
//! sink's `retry_after`, if longer) and tries the same segment again, for as
//! long as it takes. A segment refused permanently `dead_letter_after` times
//! is moved to `dead-letter/` with a `.reason` file. Deliveries are
//! at-least-once: a crash after the sink accepted and before the delete
//! replays the segment with the same `BatchId`, which terminal sinks treat
//! as already written.

use std::sync::Arc;

use std::sync::Mutex;

use meathook_core::{ChunkedError, Drain, ErrorClass, Sink, SinkError, StackStats};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::fs::{Fs, write_file_durably};
use crate::limits::Config;
use crate::queue::{Due, Shared};
use crate::reader::{FrameReader, SegmentChunks};
use crate::recovery::{DEAD_LETTER_DIR, copy_aside, free_name};
use crate::writer::retire;

/// Messages from the spool to its worker.
#[derive(Debug)]
pub(crate) enum Command<E> {
    /// Pass the time on to the inner sink.
    Advance(OffsetDateTime),
    /// Deliver everything due now (ignoring the backoff), then drain the
    /// inner sink in this mode and answer.
    Flush(Drain, oneshot::Sender<Result<(), E>>),
}

enum Outcome<E> {
    Delivered,
    Failed(E),
    ReadFailed(String),
}

/// Runs until the spool is dropped (its command sender closes).
pub(crate) async fn run<S, R, F, L>(
    mut inner: S,
    shared: Arc<Shared>,
    fs: F,
    cfg: Config,
    mut rx: mpsc::UnboundedReceiver<Command<S::Error>>,
    lock: L,
    inner_stats: Arc<Mutex<StackStats>>,
) where
    S: Sink<R>,
    R: DeserializeOwned + Send + 'static,
    F: Fs,
    L: Send + 'static,
{
    let _lock = lock; // released when the worker ends, after its last delete
    let mut backoff = cfg.backoff.clone();
    let mut retry_at: Option<Instant> = None;
    let mut waiters: Vec<Waiter<S::Error>> = Vec::new();
    let mut permanent: Option<(u64, u32)> = None;
    let mut opened = false;
    loop {
        while let Ok(cmd) = rx.try_recv() {
            handle(&mut inner, cmd, &mut waiters, &mut retry_at).await;
        }
        report(&inner, &inner_stats);
        if !opened && retry_at.is_none_or(|at| Instant::now() >= at) {
            // The inner sink may be down when the spool opens; the spool
            // accepts records anyway and opens the inner sink here, retrying.
            match inner.open().await {
                Ok(()) => opened = true,
                Err(error) => {
                    let wait = error.retry_after().unwrap_or_default().max(backoff.fail());
                    tracing::warn!(%error, retry_in = ?wait, "the spool's inner sink failed to open");
                    retry_at = Some(Instant::now() + wait);
                }
            }
        }
        if opened && retry_at.is_none_or(|at| Instant::now() >= at) {
            retry_at = None;
            let next = {
                let mut q = shared.queue();
                let next = q.due.front().cloned();
                q.in_flight = next.as_ref().map(|d| d.segment.id);
                next
            };
            if let Some(mut due) = next {
                if backoff.failures() > 0 {
                    shared.stats.add(|c| &c.deliveries_retried, 1);
                }
                let outcome = match retire_abandoned(&shared, &fs, &mut due).await {
                    Ok(()) => deliver::<S, R, F>(&mut inner, &shared, &fs, &cfg, &due).await,
                    Err(why) => Outcome::ReadFailed(why),
                };
                match outcome {
                    Outcome::Delivered => {
                        shared.note_attempt(None);
                        backoff.reset();
                        permanent = None;
                        remove_delivered(&shared, &fs, &due).await;
                        continue;
                    }
                    Outcome::Failed(error) => {
                        shared.note_attempt(Some(error.to_string()));
                        shared.stats.add(|c| &c.deliveries_failed, 1);
                        let class = error.class();
                        let wait = error.retry_after().unwrap_or_default().max(backoff.fail());
                        tracing::warn!(window = %due.segment.window, %error, permanent = class == ErrorClass::Permanent, retry_in = ?wait, "the inner sink refused a spool segment");
                        if class == ErrorClass::Permanent {
                            let count = match permanent {
                                Some((id, n)) if id == due.segment.id => n + 1,
                                _ => 1,
                            };
                            permanent = Some((due.segment.id, count));
                            if count >= cfg.dead_letter_after.max(1)
                                && dead_letter(&shared, &fs, &due, &error.to_string(), count).await
                            {
                                permanent = None;
                                backoff.reset();
                                continue;
                            }
                        }
                        shared.queue().in_flight = None;
                        retry_at = Some(Instant::now() + wait);
                    }
                    Outcome::ReadFailed(why) => {
                        shared.note_attempt(Some(format!("reading {}: {why}", due.path.display())));
                        shared.stats.add(|c| &c.deliveries_failed, 1);
                        let wait = backoff.fail();
                        tracing::error!(segment = %due.path.display(), error = %why, retry_in = ?wait, "cannot read a spool segment for delivery");
                        shared.queue().in_flight = None;
                        retry_at = Some(Instant::now() + wait);
                    }
                }
            } else if let Some(mode) = waiters.first().map(|w| w.0) {
                let result = inner.drain(mode).await;
                answer(&mut waiters, result);
                report(&inner, &inner_stats);
            }
        }
        let sleep_until = retry_at;
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(cmd) => handle(&mut inner, cmd, &mut waiters, &mut retry_at).await,
                None => break,
            },
            () = shared.wake.notified() => {}
            () = async {
                match sleep_until {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
    }
    shared.queue().in_flight = None;
}

type Waiter<E> = (Drain, oneshot::Sender<Result<(), E>>);

/// Lets `observe` on the spool see the inner sink's figures.
fn report<S: Sink<R>, R>(inner: &S, into: &Mutex<StackStats>) {
    let mut below = StackStats::default();
    inner.observe(&mut below);
    if let Ok(mut slot) = into.lock() {
        *slot = below;
    }
}

fn answer<E>(waiters: &mut Vec<Waiter<E>>, result: Result<(), E>) {
    let mut result = Some(result);
    for (i, (_, w)) in waiters.drain(..).enumerate() {
        // Errors are not `Clone`: the first waiter gets the error, the rest
        // only learn that the flush ended (a second flush at once is rare).
        let r = if i == 0 {
            result.take().unwrap_or(Ok(()))
        } else {
            Ok(())
        };
        let _ = w.send(r);
    }
}

async fn handle<S: Sink<R>, R>(
    inner: &mut S,
    cmd: Command<S::Error>,
    waiters: &mut Vec<Waiter<S::Error>>,
    retry_at: &mut Option<Instant>,
) {
    match cmd {
        Command::Advance(now) => {
            if let Err(error) = inner.advance(now).await {
                tracing::warn!(%error, "the spool's inner sink failed to advance");
            }
        }
        Command::Flush(mode, reply) => {
            waiters.push((mode, reply));
            *retry_at = None;
        }
    }
}

/// A segment abandoned after a write failure is delivered only once it is
/// cut back to its acknowledged length and renamed `.abandoned`, durably:
/// otherwise a crash after the delivery could let a restart append to it
/// and deliver its records again under another batch identity.
async fn retire_abandoned<F: Fs>(
    shared: &Arc<Shared>,
    fs: &F,
    due: &mut Due,
) -> Result<(), String> {
    if due.path.extension().is_none_or(|e| e != "open") {
        return Ok(());
    }
    let (fs2, dir, id, len) = (
        fs.clone(),
        shared.dir.clone(),
        due.segment.id,
        due.valid_len,
    );
    let retired = tokio::task::spawn_blocking(move || retire(&fs2, &dir, id, len))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot cut the abandoned segment back to its acknowledged {len} bytes and rename it: {e}"))?;
    let mut q = shared.queue();
    if let Some(d) = q.due.iter_mut().find(|d| d.segment.id == id) {
        d.path.clone_from(&retired);
    }
    due.path = retired;
    Ok(())
}

async fn deliver<S, R, F>(
    inner: &mut S,
    shared: &Arc<Shared>,
    fs: &F,
    cfg: &Config,
    due: &Due,
) -> Outcome<S::Error>
where
    S: Sink<R>,
    R: DeserializeOwned + Send + 'static,
    F: Fs,
{
    if due.segment.records == 0 {
        // Every frame was damaged (and counted by recovery): nothing to offer.
        return Outcome::Delivered;
    }
    let (fs2, path, limit) = (fs.clone(), due.path.clone(), due.valid_len);
    let opened = tokio::task::spawn_blocking(move || {
        let rd = fs2.open_read(&path).map_err(|e| e.to_string())?;
        FrameReader::open(rd, limit).map_err(|e| format!("{e:?}"))
    })
    .await;
    let reader = match opened {
        Ok(Ok((_, reader))) => reader,
        Ok(Err(why)) => return Outcome::ReadFailed(why),
        Err(join) => return Outcome::ReadFailed(join.to_string()),
    };
    let chunks: SegmentChunks<F, R> =
        SegmentChunks::new(due.path.clone(), reader, cfg.chunk_records);
    let damage = Arc::clone(&chunks.damage);
    let window = due.segment.delivery_window();
    match inner.ingest_chunks(&window, chunks).await {
        Ok(receipt) => {
            let stats = &shared.stats;
            stats.add(|c| &c.deliveries_ok, 1);
            stats.add(|c| &c.delivered_records, receipt.accepted() as u64);
            for r in receipt.rejected() {
                stats.add(|c| &c.rejected_by_inner, 1);
                tracing::warn!(%window, index = r.index, error = %r.error, "the inner sink rejected a spooled record; it cannot be retried");
            }
            let damage = damage.lock().map(|d| d.clone()).unwrap_or_default();
            if damage.lost > due.known_lost {
                let extra = damage.lost - due.known_lost;
                let (fs2, dir, path) = (fs.clone(), shared.dir.clone(), due.path.clone());
                let reasons = damage.reasons.join("\n");
                let copied = tokio::task::spawn_blocking(move || {
                    copy_aside(&fs2, &dir, &path, extra, &reasons)
                })
                .await;
                stats.add(|c| &c.quarantined_records, extra);
                match copied {
                    Ok(Ok(Some(copy))) => {
                        tracing::error!(segment = %due.path.display(), lost = extra, copy = %copy.display(), "records of a spool segment could not be read back; segment quarantined");
                        stats.add(|c| &c.quarantined_segments, 1);
                    }
                    Ok(Ok(None)) => {
                        tracing::error!(segment = %due.path.display(), lost = extra, "records of a spool segment could not be read back; a copy was already in quarantine/");
                    }
                    Ok(Err(e)) => {
                        tracing::error!(segment = %due.path.display(), lost = extra, error = %e, "records of a spool segment could not be read back, and copying it to quarantine/ failed");
                    }
                    Err(e) => {
                        tracing::error!(segment = %due.path.display(), lost = extra, error = %e, "records of a spool segment could not be read back, and copying it to quarantine/ stopped");
                    }
                }
            }
            Outcome::Delivered
        }
        Err(ChunkedError::Sink(e)) => Outcome::Failed(e),
        Err(ChunkedError::Source(e)) => Outcome::ReadFailed(e.to_string()),
    }
}

/// Takes a segment off the queue and off the disk after the sink took it.
async fn remove_delivered<F: Fs>(shared: &Arc<Shared>, fs: &F, due: &Due) {
    let (fs2, dir, path) = (fs.clone(), shared.dir.clone(), due.path.clone());
    let removed = tokio::task::spawn_blocking(move || {
        fs2.remove_file(&path).and_then(|()| fs2.sync_dir(&dir))
    })
    .await;
    if let Err(e) = removed
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
    {
        // The segment stays on disk and is delivered again after a restart,
        // under the same BatchId: a duplicate terminal sinks ignore.
        tracing::error!(segment = %due.path.display(), error = %e, "cannot delete a delivered spool segment");
    }
    forget(shared, due);
}

fn forget(shared: &Shared, due: &Due) {
    {
        let mut q = shared.queue();
        if let Some(at) = q.due.iter().position(|d| d.segment.id == due.segment.id) {
            q.due.remove(at);
        }
        q.in_flight = None;
    }
    let stats = &shared.stats;
    stats.sub(|c| &c.records_on_disk, due.segment.records);
    stats.sub(|c| &c.bytes_on_disk, due.segment.bytes);
    stats.sub(|c| &c.segments_on_disk, 1);
    shared.note_removed(due.segment.id);
}

/// Moves a segment to `dead-letter/`; `false` if that failed (it stays queued).
async fn dead_letter<F: Fs>(
    shared: &Arc<Shared>,
    fs: &F,
    due: &Due,
    error: &str,
    attempts: u32,
) -> bool {
    let (fs2, dir) = (fs.clone(), shared.dir.clone());
    let path = due.path.clone();
    let reason = format!(
        "window: {}\nrecords: {}\nattempts: {attempts}\nerror: {error}\n",
        due.segment.delivery_window(),
        due.segment.records
    );
    let moved = tokio::task::spawn_blocking(move || {
        // Never over an earlier dead letter of the same name.
        let target = free_name(&fs2, &dir.join(DEAD_LETTER_DIR), &path)?;
        let mut reason_path = target.clone().into_os_string();
        reason_path.push(".reason");
        write_file_durably(&fs2, std::path::Path::new(&reason_path), reason.as_bytes())?;
        fs2.rename(&path, &target)?;
        fs2.sync_dir(&dir.join(DEAD_LETTER_DIR))?;
        fs2.sync_dir(&dir)
    })
    .await;
    match moved
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
    {
        Ok(()) => {
            tracing::error!(segment = %due.path.display(), window = %due.segment.window, records = due.segment.records, error, "the inner sink refused a spool segment permanently; moved to dead-letter/");
            shared
                .stats
                .add(|c| &c.dead_lettered_records, due.segment.records);
            forget(shared, due);
            true
        }
        Err(e) => {
            tracing::error!(segment = %due.path.display(), error = %e, "cannot move a refused segment to dead-letter/; it stays queued");
            false
        }
    }
}
