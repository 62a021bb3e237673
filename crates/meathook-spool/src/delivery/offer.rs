//! Offering one segment to the inner sink: read it back frame by frame, hand
//! the records over chunk by chunk under the segment's window and
//! `BatchId`, count what was taken, and copy a segment whose records could
//! not all be read back to `quarantine/`.

use std::sync::Arc;

use meathook_core::{ChunkedError, Sink};
use serde::de::DeserializeOwned;

use crate::fs::Fs;
use crate::queue::{Due, Shared};
use crate::reader::{Damage, FrameReader, SegmentChunks};
use crate::recovery::copy_aside;

/// Segments offered at once in the whole process. When ten thousand
/// pipelines close their windows together (or drain), each delivery holds a
/// segment reader, the inner sink's scratch file and its encoder; the rest
/// wait their turn here instead of all holding those at once. A permit is
/// held for one offer only, never across a backoff.
pub const MAX_CONCURRENT_DELIVERIES: usize = 256;

static OFFERS: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(MAX_CONCURRENT_DELIVERIES);

/// How an offer went.
pub(super) enum Outcome<E> {
    /// The inner sink took the segment (or it held nothing to offer).
    Delivered,
    /// The inner sink refused it.
    Failed(E),
    /// The segment could not be read.
    ReadFailed(String),
}

/// Offers the records of `due` to `inner`, `chunk_records` at a time,
/// once one of the process's [`MAX_CONCURRENT_DELIVERIES`] turns is free.
pub(super) async fn offer<S, R, F>(
    inner: &mut S,
    shared: &Shared,
    fs: &F,
    chunk_records: usize,
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
    // Never closed, so acquiring cannot fail; unbounded is the fallback.
    let _turn = OFFERS.acquire().await.ok();
    let (fs2, path, limit) = (fs.clone(), due.path.clone(), due.valid_len);
    let opened = meathook_core::blocking(move || {
        let rd = fs2.open_read(&path).map_err(|e| e.to_string())?;
        FrameReader::open(rd, limit).map_err(|e| format!("{e:?}"))
    })
    .await;
    let reader = match opened {
        Ok(Ok((_, reader))) => reader,
        Ok(Err(why)) => return Outcome::ReadFailed(why),
        Err(join) => return Outcome::ReadFailed(join.to_string()),
    };
    let chunks: SegmentChunks<F, R> = SegmentChunks::new(due.path.clone(), reader, chunk_records);
    let damage = Arc::clone(&chunks.damage);
    let window = due.segment.delivery_window();
    match inner.ingest_chunks(&window, chunks).await {
        Ok(receipt) => {
            let stats = &shared.stats;
            stats.add(|c| &c.deliveries_ok, 1);
            stats.add(|c| &c.delivered_records, receipt.accepted() as u64);
            for r in receipt.rejected() {
                stats.add(|c| &c.rejected_by_inner, 1);
                tracing::warn!(%window, index = r.index, error = %meathook_core::ErrorChain(&r.error), "the inner sink rejected a spooled record; it cannot be retried");
            }
            let damage = damage.lock().map(|d| d.clone()).unwrap_or_default();
            if damage.lost > due.known_lost {
                quarantine(shared, fs, due, &damage).await;
            }
            Outcome::Delivered
        }
        Err(ChunkedError::Sink(e)) => Outcome::Failed(e),
        Err(ChunkedError::Source(e)) => Outcome::ReadFailed(e.to_string()),
    }
}

/// Counts the records of `due` found unreadable during delivery (beyond
/// what recovery already counted) and copies the segment to `quarantine/`.
async fn quarantine<F: Fs>(shared: &Shared, fs: &F, due: &Due, damage: &Damage) {
    let stats = &shared.stats;
    let extra = damage.lost - due.known_lost;
    let (fs2, dir, path) = (fs.clone(), shared.dir.clone(), due.path.clone());
    let reasons = damage.reasons.join("\n");
    let copied =
        meathook_core::blocking(move || copy_aside(&fs2, &dir, &path, extra, &reasons)).await;
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
