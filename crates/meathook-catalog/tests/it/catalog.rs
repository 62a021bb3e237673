//! The delivery catalog against the machine's PostgreSQL: spool → file
//! sink → manifest → database, replays, hostile names, an outage, gaps.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: panics are failures

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use meathook_catalog::{Backfill, MANIFEST_FILE, Manifest, query};
use meathook_core::{
    Backoff, BatchId, Deliveries, Delivery, DeliveryLog, DeliveryLogError, FlushPolicy, Sink,
    WindowMeta,
};
use meathook_parquet::{FileSink, JsonLinesEncoder, ParquetEncoder};
use meathook_spool::{DiskSpool, SinkExt as _};
use support::*;

type Out = FileSink<Reading, JsonLinesEncoder<Reading>>;

fn file_sink(out: &Path, deliveries: Deliveries) -> Out {
    FileSink::new(out.to_str().unwrap(), JsonLinesEncoder::new())
        .unwrap()
        .with_deliveries(deliveries)
}

fn spool(out: Out, dir: &Path) -> DiskSpool<Out, Reading> {
    out.spooled(dir, FlushPolicy::every(HOUR).unwrap())
        .with_backoff(Backoff::new(
            Duration::from_millis(10),
            Duration::from_millis(50),
        ))
}

fn quick(backfill: Backfill) -> Backfill {
    backfill
        .with_backoff(Backoff::new(
            Duration::from_millis(20),
            Duration::from_millis(200),
        ))
        .with_poll_interval(Duration::from_millis(50))
}

/// Offers `n` readings in each of `windows` (hours after T0), then closes
/// them all.
async fn offer(spool: &mut DiskSpool<Out, Reading>, windows: &[i64], n: usize) {
    for &w in windows {
        let receipt = spool
            .ingest(&WindowMeta::instant("air", hour(w)), readings(w, n))
            .await
            .unwrap();
        assert_eq!(receipt.accepted(), n);
    }
    let last = windows.iter().max().unwrap();
    spool.advance(hour(last + 1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_through_spool_and_file_sink_land_as_rows_matching_the_files() {
    let schema = TestSchema::new("files");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let manifest = Manifest::open(dir.path().join("spool").join(MANIFEST_FILE)).unwrap();
    let mut spool = spool(
        file_sink(&out, manifest.deliveries()),
        &dir.path().join("spool/air"),
    );
    spool.open().await.unwrap();
    offer(&mut spool, &[0, 1, 2], 7).await;
    wait_for(30, "three files recorded in the manifest", || async {
        manifest.stats().snapshot().manifest_writes >= 3
    })
    .await;
    spool.close().await;

    let mut backfill = quick(Backfill::new(manifest.clone(), schema.config.clone()));
    assert_eq!(backfill.run_once().await.unwrap(), 3);
    let catalog = schema.connect().await;
    let rows = catalog.list("air", hour(0), hour(3)).await.unwrap();

    let files = data_files(&out);
    assert_eq!(files.len(), 3, "{files:?}");
    assert_eq!(rows.len(), 3);
    for (file, row) in files.iter().zip(&rows) {
        let bytes = std::fs::read(out.join(file)).unwrap();
        assert_eq!(row.path, file.to_str().unwrap());
        assert_eq!(row.destination, out.display().to_string());
        assert_eq!(row.pipeline, "air");
        assert_eq!(row.bytes, bytes.len() as u64);
        assert_eq!(row.sha256, sha256_hex(&bytes));
        assert_eq!(
            row.rows,
            bytes.iter().filter(|&&b| b == b'\n').count() as u64
        );
        assert_eq!(row.rows, 7);
        assert_eq!(row.attempts, 1);
        assert!(row.commit.is_none());
    }
    let starts: Vec<_> = rows
        .iter()
        .map(|r| (r.window_start, r.window_end))
        .collect();
    assert_eq!(
        starts,
        [(hour(0), hour(1)), (hour(1), hour(2)), (hour(2), hour(3))]
    );
    assert_eq!(catalog.schema_version().await.unwrap(), 2);
    let stats = manifest.stats().snapshot();
    assert_eq!(
        (stats.manifest_writes, stats.database_writes, stats.backlog),
        (3, 3, 0)
    );
    assert!(stats.database_up);
    schema.drop(&catalog).await;
}

/// The catalog write of a process that died: the first report reaches the
/// manifest but its acknowledgement is lost; later ones fail outright.
#[derive(Debug)]
struct DiesAfterUpload {
    manifest: Manifest,
    calls: Arc<AtomicU32>,
}

impl DeliveryLog for DiesAfterUpload {
    fn record(&self, delivery: &Delivery) -> Result<(), DeliveryLogError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            self.manifest.record(delivery)?;
        }
        Err(DeliveryLogError::Stopped {
            path: delivery.path.clone(),
            reason: "the process died".to_owned(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_after_a_crash_between_upload_and_catalog_write_leaves_one_row() {
    let schema = TestSchema::new("replay");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let spool_dir = dir.path().join("spool/air");
    let manifest_path = dir.path().join("spool").join(MANIFEST_FILE);

    // First process: the file lands, the catalog write never completes.
    let manifest = Manifest::open(&manifest_path).unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let dying = Deliveries::new(DiesAfterUpload {
        manifest: manifest.clone(),
        calls: Arc::clone(&calls),
    });
    let mut first = spool(file_sink(&out, dying), &spool_dir);
    first.open().await.unwrap();
    offer(&mut first, &[0], 5).await;
    wait_for(30, "the upload and two failed catalog writes", || async {
        calls.load(Ordering::SeqCst) >= 2
    })
    .await;
    first.close().await;
    drop(manifest);
    assert_eq!(data_files(&out).len(), 1, "the file was uploaded");
    assert_eq!(manifest_lines(&manifest_path), 1);

    // Second process: the spool replays the batch, the sink finds the file
    // in place and reports it again.
    let manifest = Manifest::open(&manifest_path).unwrap();
    let mut second = spool(file_sink(&out, manifest.deliveries()), &spool_dir);
    second.open().await.unwrap();
    wait_for(30, "the replay to be recorded", || async {
        manifest.stats().snapshot().manifest_writes >= 1
    })
    .await;
    second.close().await;
    assert_eq!(data_files(&out).len(), 1, "the replay wrote nothing new");
    assert_eq!(
        manifest_lines(&manifest_path),
        2,
        "the manifest holds the delivery twice"
    );

    Backfill::new(manifest, schema.config.clone())
        .run_once()
        .await
        .unwrap();
    let catalog = schema.connect().await;
    assert_eq!(schema.count(&catalog).await, 1, "exactly one row");
    let rows = catalog.list("air", hour(0), hour(1)).await.unwrap();
    let file = &data_files(&out)[0];
    assert_eq!(rows[0].path, file.to_str().unwrap());
    assert_eq!(
        rows[0].sha256,
        sha256_hex(&std::fs::read(out.join(file)).unwrap())
    );

    // Reporting the same delivery again changes nothing either.
    let again = Manifest::open(&manifest_path).unwrap();
    let mut backfill = Backfill::new(again.clone(), schema.config.clone());
    let record = meathook_catalog::read_chunk(&manifest_path, 0, 1)
        .unwrap()
        .records;
    assert_eq!(record.len(), 1);
    let mut direct = schema.connect().await;
    direct.upsert(&record).await.unwrap();
    backfill.run_once().await.unwrap();
    assert_eq!(schema.count(&catalog).await, 1);
    schema.drop(&catalog).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_and_paths_are_stored_verbatim() {
    let schema = TestSchema::new("hostile");
    let dir = tempfile::tempdir().unwrap();
    let manifest = Manifest::open(dir.path().join(MANIFEST_FILE)).unwrap();
    let hostile = [
        "o'brien",
        "semi;colon",
        "\"double\" 'single'",
        "'; DROP TABLE deliveries; --",
        "x'); DELETE FROM deliveries; --",
        "back\\slash $1 %s",
    ];
    for (i, name) in hostile.iter().enumerate() {
        let window = WindowMeta::containing(*name, hour(0), HOUR);
        let path = format!("data/{name}/'; DROP TABLE deliveries; --{i}.parquet");
        let destination = format!("s3://bucket/'; DROP SCHEMA {} CASCADE; --", schema.name);
        manifest
            .record(
                &Delivery::new(&window, destination, path, 1, 2, [3; 32])
                    .with_commit(format!("commit'; DROP TABLE deliveries; --{i}")),
            )
            .unwrap();
    }
    // Through a real sink too: the pipeline is kept verbatim, the path is
    // the layout's escaped one.
    let out = dir.path().join("out");
    let mut sink = file_sink(&out, manifest.deliveries());
    sink.open().await.unwrap();
    let window = WindowMeta::containing(hostile[3], hour(0), HOUR);
    sink.ingest(&window, readings(0, 2)).await.unwrap();

    Backfill::new(manifest.clone(), schema.config.clone())
        .run_once()
        .await
        .unwrap();
    let catalog = schema.connect().await;
    assert_eq!(
        schema.count(&catalog).await,
        hostile.len() as i64 + 1,
        "the table is still there"
    );
    assert_eq!(
        catalog.schema_version().await.unwrap(),
        2,
        "the schema is still there"
    );
    for (i, name) in hostile.iter().enumerate() {
        let rows = catalog.list(name, hour(0), hour(1)).await.unwrap();
        let expected = if i == 3 { 2 } else { 1 };
        assert_eq!(rows.len(), expected, "{name}");
        let r = rows
            .iter()
            .find(|r| r.destination.starts_with("s3://"))
            .unwrap();
        assert_eq!(r.pipeline, *name);
        assert_eq!(
            r.path,
            format!("data/{name}/'; DROP TABLE deliveries; --{i}.parquet")
        );
        assert_eq!(
            r.destination,
            format!("s3://bucket/'; DROP SCHEMA {} CASCADE; --", schema.name)
        );
        assert_eq!(
            r.commit.as_deref(),
            Some(format!("commit'; DROP TABLE deliveries; --{i}").as_str())
        );
    }
    let from_sink = catalog.list(hostile[3], hour(0), hour(1)).await.unwrap();
    let file = data_files(&out);
    assert_eq!(file.len(), 1);
    assert!(
        from_sink
            .iter()
            .any(|r| r.path == file[0].to_str().unwrap() && r.pipeline == hostile[3])
    );
    schema.drop(&catalog).await;
}

/// A port nothing listens on (yet).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Forwards `port` to the real PostgreSQL: the database "returns".
async fn forward(port: u16) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let upstream = database_url()
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_never_blocks_delivery_and_rows_appear_when_it_returns() {
    let schema = TestSchema::new("outage");
    let port = closed_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let away = TestSchema::config_at(&url, &schema.name);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let manifest = Manifest::open(dir.path().join("spool").join(MANIFEST_FILE)).unwrap();
    let stats = manifest.stats();
    let backfill = quick(Backfill::new(manifest.clone(), away))
        .spawn()
        .unwrap();

    let mut spool = spool(
        file_sink(&out, manifest.deliveries()),
        &dir.path().join("spool/air"),
    );
    spool.open().await.unwrap();
    offer(&mut spool, &[0, 1, 2], 4).await;
    wait_for(30, "delivery to go on without the database", || async {
        data_files(&out).len() == 3 && spool.stats().snapshot().segments_on_disk == 0
    })
    .await;
    wait_for(
        30,
        "the backlog to show the three waiting records",
        || async { stats.snapshot().backlog == 3 },
    )
    .await;
    let s = stats.snapshot();
    assert!(s.database_failures >= 1, "{s:?}");
    assert!(!s.database_up);
    assert_eq!((s.manifest_writes, s.database_writes), (3, 0));

    // The database comes back at the same address.
    let proxy = forward(port).await;
    wait_for(30, "the back-fill to catch up", || async {
        let s = stats.snapshot();
        s.database_writes >= 3 && s.backlog == 0 && s.database_up
    })
    .await;
    let catalog = schema.connect().await;
    assert_eq!(schema.count(&catalog).await, 3);
    // New deliveries keep flowing straight through.
    offer(&mut spool, &[3], 4).await;
    wait_for(30, "the fourth delivery in the database", || async {
        schema.count(&catalog).await == 4
    })
    .await;
    spool.close().await;
    backfill.stop().await;
    proxy.abort();
    schema.drop(&catalog).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gap_report_finds_a_deliberately_missing_window() {
    let schema = TestSchema::new("gaps");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let manifest_path = dir.path().join(MANIFEST_FILE);
    let manifest = Manifest::open(&manifest_path).unwrap();
    let mut sink = file_sink(&out, manifest.deliveries());
    sink.open().await.unwrap();
    for w in [0, 1, 3, 4] {
        let window = WindowMeta::containing("air", hour(w), HOUR);
        sink.ingest(&window, readings(w, 3)).await.unwrap();
    }
    Backfill::new(manifest, schema.config.clone())
        .run_once()
        .await
        .unwrap();
    let catalog = schema.connect().await;

    let missing = [query::Gap {
        start: hour(2),
        end: hour(3),
    }];
    let in_db = catalog.gaps("air", hour(0), hour(5), HOUR).await.unwrap();
    assert_eq!(in_db, missing);
    let in_manifest = query::gaps(&manifest_path, "air", hour(0), hour(5), HOUR).unwrap();
    assert_eq!(in_manifest, missing);
    // The range's edges: a window after the last delivery is a gap too.
    let later = catalog.gaps("air", hour(0), hour(6), HOUR).await.unwrap();
    assert_eq!(
        later.iter().map(|g| g.start).collect::<Vec<_>>(),
        [hour(2), hour(5)]
    );

    let totals = catalog
        .daily_totals(Some("air"), hour(-10), hour(20))
        .await
        .unwrap();
    assert_eq!(totals.len(), 1);
    assert_eq!((totals[0].files, totals[0].rows), (4, 12));
    assert_eq!(totals[0].day, hour(0).date());
    assert_eq!(
        query::daily_totals(&manifest_path, None, hour(-10), hour(20)).unwrap(),
        totals
    );

    // The command prints the same report from either source.
    let command = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_meathook-catalog"))
            .args(args)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let range = [
        "--pipeline",
        "air",
        "--from",
        "2026-12-01T10:00:00Z",
        "--to",
        "2026-12-01T15:00:00Z",
        "--window",
        "1h",
    ];
    let manifest_arg = manifest_path.to_str().unwrap();
    let from_manifest = command(&[&["gaps", "--manifest", manifest_arg][..], &range].concat());
    let url = database_url();
    let from_db = command(
        &[
            &["gaps", "--database", &url, "--schema", &schema.name][..],
            &range,
        ]
        .concat(),
    );
    let expected = "window_start\twindow_end\n2026-12-01T12:00:00Z\t2026-12-01T13:00:00Z\n";
    assert_eq!(from_manifest, expected);
    assert_eq!(from_db, expected);
    let listed = command(&[&["list", "--manifest", manifest_arg][..], &range[..6]].concat());
    assert_eq!(
        listed.lines().count(),
        5,
        "a header and four deliveries:\n{listed}"
    );
    schema.drop(&catalog).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_never_shows_in_connection_errors() {
    let port = closed_port();
    let url = format!("postgres://meathook:pw-s3cr3t-77@127.0.0.1:{port}/catalog");
    let config = TestSchema::config_at(&url, "t_secret");
    let err = config.connect().await.unwrap_err();
    let shown = format!("{err} {err:?} {config:?}");
    assert!(!shown.contains("pw-s3cr3t-77"), "{shown}");
    assert!(
        shown.contains(&format!("postgres://meathook@127.0.0.1:{port}/catalog")),
        "the error names where it tried: {shown}"
    );
    let dir = tempfile::tempdir().unwrap();
    let manifest = Manifest::open(dir.path().join(MANIFEST_FILE)).unwrap();
    let err = Backfill::new(manifest, config)
        .run_once()
        .await
        .unwrap_err();
    assert!(
        !format!("{err} {err:?}").contains("pw-s3cr3t-77"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_database_refuses_is_set_aside_and_the_rest_go_in() {
    let schema = TestSchema::new("refused");
    let dir = tempfile::tempdir().unwrap();
    let manifest = Manifest::open(dir.path().join(MANIFEST_FILE)).unwrap();
    let window = WindowMeta::containing("air", hour(0), HOUR);
    for path in ["data/a.parquet", "data/nul\0byte.parquet", "data/c.parquet"] {
        manifest
            .record(&Delivery::new(&window, "/data", path, 1, 2, [3; 32]))
            .unwrap();
    }
    let mut backfill = Backfill::new(manifest.clone(), schema.config.clone());
    assert_eq!(backfill.run_once().await.unwrap(), 2);
    let catalog = schema.connect().await;
    let paths: Vec<_> = catalog
        .list("air", hour(0), hour(1))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(paths, ["data/a.parquet", "data/c.parquet"]);
    let rejected =
        std::fs::read_to_string(meathook_catalog::rejected_path(manifest.path())).unwrap();
    assert_eq!(rejected.lines().count(), 1, "{rejected}");
    assert!(rejected.contains(r"nul\u0000byte"), "{rejected}");
    let s = manifest.stats().snapshot();
    assert_eq!(
        (s.database_rejected, s.database_writes, s.backlog),
        (1, 2, 0)
    );
    assert!(s.database_up, "a refused record is not an outage");
    // The cursor moved past it: the next pass has nothing to do.
    assert_eq!(backfill.run_once().await.unwrap(), 0);
    assert_eq!(schema.count(&catalog).await, 2);
    schema.drop(&catalog).await;
}

/// `PostgresConfig::probe` connects and asks `SELECT 1`, creating nothing;
/// a server that is not there fails as `Connect`, without the password.
#[tokio::test]
async fn a_probe_reaches_the_server_and_creates_nothing() {
    let schema = TestSchema::new("probe");
    schema.config.probe().await.unwrap_or_else(|e| {
        panic!(
            "{e}: the catalog tests need PostgreSQL at {}",
            database_url()
        )
    });
    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(connection);
    let found: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
            &[&schema.name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(found, 0, "the probe created the schema");
    drop(client);
    let _ = task.await;

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = TestSchema::config_at(
        &format!("postgres://meathook:pw-never-shown@127.0.0.1:{closed}/postgres"),
        "t_probe_nowhere",
    );
    let err = nowhere.probe().await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        matches!(
            err,
            meathook_catalog::postgres::PostgresError::Connect { .. }
        ),
        "{text}"
    );
    assert!(text.contains(&format!("127.0.0.1:{closed}")), "{text}");
    assert!(!text.contains("pw-never-shown"), "{text}");
}

/// A day's files compacted into one: `list` tells each file's lifecycle
/// (the parts compacted into the new file, which replaces them), and gaps
/// and totals are what they were, in the manifest and in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_lists_each_files_lifecycle_and_keeps_gaps_and_totals() {
    let schema = TestSchema::new("compaction");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let manifest = Manifest::open(dir.path().join(MANIFEST_FILE)).unwrap();
    let mut sink: FileSink<Reading, _> =
        FileSink::new(out.to_str().unwrap(), ParquetEncoder::new().unwrap())
            .unwrap()
            .with_deliveries(manifest.deliveries());
    for w in [0u64, 1, 3] {
        let window = WindowMeta::containing("air", hour(w as i64), HOUR)
            .with_batch(BatchId::legacy(w * 10, w * 10 + 4));
        sink.ingest(&window, readings(w as i64, 5)).await.unwrap();
    }
    let day = hour(0).date();
    let (from, to) = (
        day.midnight().assume_utc(),
        day.midnight().assume_utc() + time::Duration::DAY,
    );
    let totals = query::daily_totals(manifest.path(), Some("air"), from, to).unwrap();
    let gaps = query::gaps(manifest.path(), "air", from, to, HOUR).unwrap();
    assert_eq!((totals[0].files, totals[0].rows, gaps.len()), (3, 15, 21));

    let deliveries = manifest.deliveries();
    let root = out.clone();
    let compacted = tokio::task::spawn_blocking(move || {
        meathook_parquet::Compactor::local(root)
            .with_deliveries(deliveries)
            .compact_day("air", day)
    })
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    let file = format!("{}/{}", compacted.folder, compacted.file);

    let check = |listed: Vec<meathook_catalog::DeliveryRecord>| {
        assert_eq!(listed.len(), 4, "{listed:?}");
        let (merged, parts): (Vec<_>, Vec<_>) = listed.into_iter().partition(|r| r.path == file);
        assert_eq!(merged[0].replaces.len(), 3);
        assert_eq!(merged[0].rows, 15);
        assert_eq!(merged[0].compacted_into, None);
        for part in &parts {
            assert!(merged[0].replaces.contains(&part.path), "{part:?}");
            assert_eq!(part.compacted_into.as_deref(), Some(file.as_str()));
        }
    };
    check(query::list(manifest.path(), "air", from, to).unwrap());
    assert_eq!(
        query::daily_totals(manifest.path(), Some("air"), from, to).unwrap(),
        totals
    );
    assert_eq!(
        query::gaps(manifest.path(), "air", from, to, HOUR).unwrap(),
        gaps
    );

    assert_eq!(
        Backfill::new(manifest.clone(), schema.config.clone())
            .run_once()
            .await
            .unwrap(),
        4
    );
    let catalog = schema.connect().await;
    check(catalog.list("air", from, to).await.unwrap());
    assert_eq!(
        catalog.daily_totals(Some("air"), from, to).await.unwrap(),
        totals
    );
    assert_eq!(catalog.gaps("air", from, to, HOUR).await.unwrap(), gaps);
    schema.drop(&catalog).await;
}
