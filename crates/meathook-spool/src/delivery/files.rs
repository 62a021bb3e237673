//! What the worker does to a segment's file around a delivery: retire an
//! abandoned one before offering it, delete a delivered one (and fsync the
//! directory), move one refused too often to `dead-letter/`, and take a
//! segment that left the disk off the queue and the figures.

use std::sync::Arc;

use crate::fs::{Fs, write_file_durably};
use crate::queue::{Due, Shared};
use crate::recovery::{DEAD_LETTER_DIR, aside_dir, free_name};
use crate::writer::retire;

/// A segment abandoned after a write failure is delivered only once it is
/// cut back to its acknowledged length and renamed `.abandoned`, durably:
/// otherwise a crash after the delivery could let a restart append to it
/// and deliver its records again under another batch identity.
pub(super) async fn retire_abandoned<F: Fs>(
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
    let retired = meathook_core::blocking(move || retire(&fs2, &dir, id, len))
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

/// Takes a segment off the queue and off the disk after the sink took it.
pub(super) async fn remove_delivered<F: Fs>(shared: &Arc<Shared>, fs: &F, due: &Due) {
    let (fs2, dir, path) = (fs.clone(), shared.dir.clone(), due.path.clone());
    let removed =
        meathook_core::blocking(move || fs2.remove_file(&path).and_then(|()| fs2.sync_dir(&dir)))
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

/// Takes a segment that left the disk off the queue and the figures.
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
pub(super) async fn dead_letter<F: Fs>(
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
    let moved = meathook_core::blocking(move || {
        // Never over an earlier dead letter of the same name.
        let target = free_name(&fs2, &aside_dir(&fs2, &dir, DEAD_LETTER_DIR)?, &path)?;
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
