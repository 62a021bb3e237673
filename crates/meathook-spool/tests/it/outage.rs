//! An inner sink down for 24 windows, then back: the spool's memory stays
//! flat while the backlog grows on disk, and every record arrives once, in
//! order, in its window.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)] // tests; small fixed sizes

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meathook_core::{
    Backoff, ChunkedResult, FlushPolicy, IngestError, Receipt, RecordChunks, Sink, SinkError,
    WindowMeta,
};
use meathook_spool::DiskSpool;
use serde::{Deserialize, Serialize};
use time::macros::datetime;

#[derive(Debug, Serialize, Deserialize)]
struct Big {
    id: u64,
    pad: String,
}

#[derive(Debug, thiserror::Error)]
#[error("destination down")]
struct Down;
impl SinkError for Down {}

/// Keeps only (window start, id) of what it accepts, chunk by chunk.
#[derive(Clone, Default)]
struct Ids {
    up: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(i64, u64)>>>,
}

impl Sink<Big> for Ids {
    type Error = Down;

    async fn ingest(
        &mut self,
        w: &WindowMeta,
        records: Vec<Big>,
    ) -> Result<Receipt<Down>, IngestError<Big, Down>> {
        if !self.up.load(Ordering::SeqCst) {
            return Err(IngestError::new(records, Down));
        }
        let n = records.len();
        self.seen
            .lock()
            .unwrap()
            .extend(records.iter().map(|r| (w.start.unix_timestamp(), r.id)));
        Ok(Receipt::all(n))
    }

    async fn ingest_chunks<C: RecordChunks<Big>>(
        &mut self,
        w: &WindowMeta,
        mut chunks: C,
    ) -> ChunkedResult<Down, C::Error> {
        if !self.up.load(Ordering::SeqCst) {
            return Err(meathook_core::ChunkedError::Sink(Down));
        }
        let mut ids = Vec::new();
        while let Some(chunk) = chunks
            .next_chunk()
            .await
            .map_err(meathook_core::ChunkedError::Source)?
        {
            ids.extend(chunk.into_iter().map(|r| (w.start.unix_timestamp(), r.id)));
        }
        let n = ids.len();
        self.seen.lock().unwrap().extend(ids);
        Ok(Receipt::all(n))
    }

    async fn flush(&mut self) -> Result<(), Down> {
        Ok(())
    }
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_four_windows_behind_a_dead_sink_arrive_once_in_order_with_flat_memory() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Ids::default();
    let t0 = datetime!(2026-11-23 00:00 UTC);
    let mut spool = DiskSpool::new(sink.clone(), dir.path(), FlushPolicy::hourly())
        .with_backoff(Backoff::new(
            Duration::from_millis(2),
            Duration::from_millis(20),
        ))
        .with_flush_deadline(Duration::from_secs(60))
        .with_chunk_records(256)
        .with_min_free_bytes(0);
    let mut rng = fastrand::Rng::with_seed(24);
    let (per_window, per_batch) = (40u64, 25u64);
    let mut rss_after_4 = 0;
    let mut id = 0;
    for hour in 0..24i64 {
        for b in 0..per_window {
            let batch: Vec<Big> = (0..per_batch)
                .map(|_| {
                    id += 1;
                    Big {
                        id,
                        pad: (0..1024).map(|_| rng.alphanumeric()).collect(),
                    }
                })
                .collect();
            let at = t0 + time::Duration::hours(hour) + time::Duration::seconds(b as i64);
            spool
                .ingest(&WindowMeta::instant("outage", at), batch)
                .await
                .unwrap();
        }
        spool
            .advance(t0 + time::Duration::hours(hour + 1))
            .await
            .unwrap();
        if hour == 3 {
            rss_after_4 = rss_bytes();
        }
    }
    let rss_after_24 = rss_bytes();
    let on_disk = spool.stats().snapshot().bytes_on_disk;
    assert_eq!(spool.pending_segments(), 24);
    assert!(
        on_disk > 20 << 20,
        "the backlog is on disk: {on_disk} bytes"
    );
    // 20 more windows (over 16 MiB more on disk) add no more than 8 MiB of memory.
    let growth = rss_after_24.saturating_sub(rss_after_4);
    assert!(
        growth < 8 << 20,
        "resident memory grew by {growth} bytes while the backlog grew by {on_disk}"
    );
    assert!(
        spool.stats().snapshot().deliveries_failed >= 24,
        "the dead sink was tried"
    );

    sink.up.store(true, Ordering::SeqCst);
    spool.flush().await.unwrap();
    let seen = sink.seen.lock().unwrap().clone();
    let ids: Vec<u64> = seen.iter().map(|(_, id)| *id).collect();
    assert_eq!(
        ids,
        (1..=id).collect::<Vec<_>>(),
        "every record once, in order"
    );
    for (start, id) in seen {
        let hour = (id - 1) / (per_window * per_batch);
        assert_eq!(
            start,
            (t0 + time::Duration::hours(hour as i64)).unix_timestamp(),
            "record {id} in its window"
        );
    }
}
