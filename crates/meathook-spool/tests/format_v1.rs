//! Segments of format version 1 (MessagePack maps in lz4 frames), written
//! byte by byte from the documented layout, replay after an upgrade: a
//! sealed one is delivered, an open one is delivered and its window goes on
//! in a new segment of the current format, and a field added to the record
//! type since reads as `None`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

mod support;

use std::path::Path;

use meathook_core::{Sink, WindowMeta};
use meathook_spool::DiskSpool;
use serde::{Deserialize, Serialize};
use support::{HOUR, Recorder, T0, at, hourly};

/// The record as version 1 wrote it.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Old {
    station_id: String,
    value: f64,
}

/// The record type now: one optional field more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct New {
    station_id: String,
    value: f64,
    unit: Option<String>,
}

fn frame(kind: u8, first_seq: u64, index: u64, count: u32, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0xF5, 0x4D, 0x48, 0x46];
    h.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_le_bytes());
    h.extend_from_slice(&first_seq.to_le_bytes());
    h.extend_from_slice(&index.to_le_bytes());
    h.extend_from_slice(&count.to_le_bytes());
    h.extend_from_slice(&[kind, 0, 0, 0]);
    let crc = crc32c::crc32c(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    h.extend_from_slice(payload);
    h
}

/// A version-1 segment of `window` with frames of `per_frame` records,
/// sequence numbers from `first_seq`; sealed if `sealed`.
fn v1_segment(
    id: u64,
    window: &WindowMeta,
    records: &[Old],
    per_frame: usize,
    first_seq: u64,
    sealed: bool,
) -> Vec<u8> {
    let mut out = b"MHSPOOL\n".to_vec();
    out.extend_from_slice(&1u16.to_le_bytes()); // format version 1
    out.push(1); // MessagePack maps in lz4 frames
    out.push(0);
    let pipeline = window.pipeline.as_bytes();
    let total = u32::try_from(50 + pipeline.len() + 4).unwrap();
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&window.start.unix_timestamp().to_le_bytes());
    out.extend_from_slice(&window.end.unix_timestamp().to_le_bytes());
    out.extend_from_slice(&1_700_000_000_000_000_000i64.to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&u16::try_from(pipeline.len()).unwrap().to_le_bytes());
    out.extend_from_slice(pipeline);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    let mut index = 0u64;
    for chunk in records.chunks(per_frame) {
        let mut raw = Vec::new();
        for r in chunk {
            let at = raw.len();
            raw.extend_from_slice(&[0; 4]);
            let mut ser = rmp_serde::Serializer::new(&mut raw).with_struct_map();
            r.serialize(&mut ser).unwrap();
            let len = u32::try_from(raw.len() - at - 4).unwrap();
            raw[at..at + 4].copy_from_slice(&len.to_le_bytes());
        }
        let mut payload = u32::try_from(raw.len()).unwrap().to_le_bytes().to_vec();
        payload.extend(lz4_flex::block::compress(&raw));
        let count = u32::try_from(chunk.len()).unwrap();
        out.extend(frame(1, first_seq + index, index, count, &payload));
        index += u64::from(count);
    }
    if sealed {
        out.extend(frame(2, first_seq + index, index, 0, &[]));
    }
    out
}

fn old(i: u64) -> Old {
    Old {
        station_id: format!("S{i:03}"),
        value: f64::from_bits(0x4034_0000_0000_0001 + i), // not a short decimal
    }
}

fn new_of(o: &Old) -> New {
    New {
        station_id: o.station_id.clone(),
        value: o.value,
        unit: None,
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
    std::fs::write(dir.join("sequence"), "100 10\n").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_and_open_version_1_segments_replay_and_the_window_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let earlier = WindowMeta::containing("air", T0 - time::Duration::hours(1), HOUR);
    let current = WindowMeta::containing("air", T0, HOUR);
    let sealed: Vec<Old> = (0..5).map(old).collect();
    let open: Vec<Old> = (5..12).map(old).collect();
    write(
        dir.path(),
        "00000000000000000001.seg",
        &v1_segment(1, &earlier, &sealed, 2, 0, true),
    );
    write(
        dir.path(),
        "00000000000000000002.open",
        &v1_segment(2, &current, &open, 3, 5, false),
    );

    let out = Recorder::<New>::default();
    let mut spool = DiskSpool::new(out.clone(), dir.path(), hourly()).with_min_free_bytes(0);
    spool.open().await.unwrap();
    let report = spool.recovery_report().unwrap().clone();
    assert_eq!(
        (report.segments, report.records, report.lost_records),
        (2, 12, 0),
        "{report:?}"
    );
    assert!(
        report.quarantined.is_empty() && report.skipped.is_empty(),
        "{report:?}"
    );
    // The open version-1 segment was sealed: both wait for delivery.
    assert_eq!(spool.pending_segments(), 2);

    // The current window continues in a segment of the current format.
    let later = New {
        station_id: "S999".into(),
        value: -0.0,
        unit: Some("deg C".into()),
    };
    let receipt = spool.ingest(&at(30), vec![later.clone()]).await.unwrap();
    assert_eq!(receipt.accepted(), 1);
    spool.flush().await.unwrap();
    spool.close().await;

    let batches = out.batches();
    assert_eq!(batches.len(), 3, "{batches:?}");
    assert_eq!(batches[0].0.start, earlier.start);
    assert_eq!(batches[0].1, sealed.iter().map(new_of).collect::<Vec<_>>());
    assert_eq!(batches[1].0.start, current.start);
    assert_eq!(batches[1].1, open.iter().map(new_of).collect::<Vec<_>>());
    assert_eq!(batches[2].0.start, current.start);
    assert_eq!(batches[2].1, vec![later]);
    for (window, _) in &batches {
        assert_eq!(
            &*window.pipeline, "air",
            "the pipeline comes from the header"
        );
    }
    let ids: Vec<_> = batches.iter().map(|(w, _)| w.batch.unwrap()).collect();
    assert_eq!((ids[0].first, ids[0].last), (0, 4));
    assert_eq!((ids[1].first, ids[1].last), (5, 11));
    assert!(
        ids[2].first >= 100,
        "sequence numbers keep growing: {:?}",
        ids[2]
    );
    let bits: Vec<u64> = batches[..2]
        .iter()
        .flat_map(|(_, r)| r.iter().map(|n| n.value.to_bits()))
        .collect();
    assert_eq!(
        bits,
        (0..12)
            .map(|i| 0x4034_0000_0000_0001 + i)
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_compression_between_runs_keeps_every_record_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = Recorder::<New>::default();
    let rec = |i: u64| New {
        station_id: format!("S{:03}", i % 7),
        value: i as f64 / 3.0,
        unit: i.is_multiple_of(2).then(|| "mm".to_owned()),
    };
    let mut expected = Vec::new();
    for (run, lz4) in [true, false, true].into_iter().enumerate() {
        let mut spool = DiskSpool::new(out.clone(), dir.path(), hourly())
            .with_min_free_bytes(0)
            .with_compression(lz4);
        let batch: Vec<New> = (0..50).map(|i| rec(run as u64 * 100 + i)).collect();
        expected.extend(batch.clone());
        spool.ingest(&at(run as i64), batch).await.unwrap();
        // Keep the window open on disk for the next run.
        spool
            .drain(meathook_core::Drain::KeepActiveWindow)
            .await
            .unwrap();
        spool.close().await;
    }
    let mut spool = DiskSpool::new(out.clone(), dir.path(), hourly()).with_min_free_bytes(0);
    spool.flush().await.unwrap();
    spool.close().await;
    assert_eq!(out.records(), expected);
    for (window, _) in out.batches() {
        assert_eq!(window.start, T0);
    }
}
