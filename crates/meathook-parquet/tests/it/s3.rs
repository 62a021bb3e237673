//! The object-store sink against a real S3-compatible server (`moto_server`
//! from the venv `cargo xtask ci python` creates) on 127.0.0.1: the same
//! layout, idempotency and conflict checks as the local directory, plus
//! multipart uploads and error classes. Needs the `s3` feature; the store
//! is built through the `object_store` meathook-parquet re-exports.

#![cfg(feature = "s3")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: panics are failures

use crate::support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meathook_core::{BatchId, ErrorClass, Sink, SinkError, WindowMeta};
use meathook_parquet::layout::{self, BatchName};
use meathook_parquet::object_store::aws::AmazonS3Builder;
use meathook_parquet::object_store::path::Path as ObjectPath;
use meathook_parquet::object_store::{self, ObjectStore, ObjectStoreExt};
use meathook_parquet::{Destination, FileSink, FileSinkBuilder, FileSinkError, ParquetEncoder};
use support::*;
use time::macros::datetime;

/// A `moto_server` child, killed when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto(python: &Path) -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = python.with_file_name("moto_server");
    let child = Command::new(server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server from the venv");
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new(python)
        .args([
            "-c",
            "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', \
             aws_access_key_id='test', aws_secret_access_key='test').create_bucket(Bucket='meathook')",
            &moto.endpoint,
        ])
        .status()
        .unwrap();
    assert!(status.success(), "creating the bucket failed");
    moto
}

fn store(moto: &Moto, bucket: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(&moto.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(bucket)
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .unwrap(),
    )
}

fn sink(
    store: Arc<dyn ObjectStore>,
    scratch: &Path,
    single_put_limit: u64,
) -> FileSink<Station, ParquetEncoder<Station>> {
    FileSinkBuilder::new("unused")
        .with_destination(Destination::store(store, "archive", "s3://meathook").unwrap())
        .with_scratch_dir(scratch)
        .with_single_put_limit(single_put_limit)
        .build(
            ParquetEncoder::builder()
                .with_row_group_size(500)
                .build()
                .unwrap(),
        )
        .unwrap()
}

async fn keys(store: &Arc<dyn ObjectStore>) -> Vec<String> {
    let mut keys = Vec::new();
    let mut dirs = vec![ObjectPath::from("archive")];
    while let Some(dir) = dirs.pop() {
        let listing = store.list_with_delimiter(Some(&dir)).await.unwrap();
        dirs.extend(listing.common_prefixes);
        keys.extend(listing.objects.into_iter().map(|o| o.location.to_string()));
    }
    keys.sort();
    keys
}

fn window(batch: Option<BatchId>) -> WindowMeta {
    let w = WindowMeta::containing(
        "test",
        datetime!(2026-11-23 10:56 UTC),
        Duration::from_secs(3600),
    );
    match batch {
        Some(b) => w.with_batch(b),
        None => w,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_layout_idempotency_and_conflicts() {
    let Some(python) = python() else { return };
    let moto = start_moto(&python);
    let scratch = tempfile::tempdir().unwrap();
    let bucket = store(&moto, "meathook");

    // Single conditional puts, and multipart uploads for larger files.
    for (limit, first) in [(u64::MAX, 0u64), (4 << 10, 1_000)] {
        let mut sink = sink(Arc::clone(&bucket), scratch.path(), limit);
        let id = BatchId::new(0x5eed, first, first + 2_999);
        let records: Vec<Station> = (first..first + 3_000).map(station_at).collect();
        sink.ingest(&window(Some(id)), records.clone())
            .await
            .unwrap();
        let delivery = sink.last_delivery().unwrap().clone();
        assert!(
            delivery.bytes > 4 << 10,
            "the multipart case needs a file above the limit"
        );
        let expected = layout::object_path(&window(Some(id)), BatchName::Sequence(id), "parquet");
        assert_eq!(delivery.path, expected);
        assert_eq!(delivery.destination, "s3://meathook/archive");
        assert!(!layout::contains_split_keyword(&expected), "{expected}");
        let object = ObjectPath::from(format!("archive/{expected}"));
        let bytes = bucket.get(&object).await.unwrap().bytes().await.unwrap();
        let back: Vec<Station> = read_records(bytes.to_vec());
        assert!(back.len() == 3_000 && back.iter().zip(&records).all(|(a, b)| a.same(b)));

        // Replay: found, compared, nothing written.
        sink.ingest(&window(Some(id)), records).await.unwrap();
        assert_eq!(sink.file_counts(), (1, 1));
        assert!(!sink.last_delivery().unwrap().created);

        // Different records under the same batch identity: refused.
        let other: Vec<Station> = (0..10).map(station_at).collect();
        let err = sink.ingest(&window(Some(id)), other).await.unwrap_err();
        assert!(
            matches!(err.error(), FileSinkError::Conflict { .. }),
            "{err}"
        );
        assert_eq!(err.error().class(), ErrorClass::Permanent);
        assert_eq!(err.records().len(), 10);
        let after = bucket.get(&object).await.unwrap().bytes().await.unwrap();
        assert_eq!(after, bytes, "the object was not overwritten");
    }

    // Content-named batches: one object per distinct content.
    let mut sink = sink(Arc::clone(&bucket), scratch.path(), u64::MAX);
    let records: Vec<Station> = (0..100).map(station_at).collect();
    sink.ingest(&window(None), records.clone()).await.unwrap();
    sink.ingest(&window(None), records.clone()).await.unwrap();
    sink.ingest(&window(None), records[..50].to_vec())
        .await
        .unwrap();
    assert_eq!(sink.file_counts(), (2, 1));

    let mut keys = keys(&bucket).await;
    // The dataset card, written with the first file.
    assert!(keys.contains(&"archive/README.md".to_owned()), "{keys:?}");
    keys.retain(|k| k != "archive/README.md");
    assert_eq!(keys.len(), 4, "{keys:?}");
    for key in &keys {
        assert!(
            key.starts_with("archive/data/tes+74/2026-11-23/100000Z-"),
            "{key}"
        );
        assert!(key.ends_with(".parquet"), "{key}");
    }
    assert!(
        files_under(scratch.path()).is_empty(),
        "scratch files left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_a_permanent_error() {
    let Some(python) = python() else { return };
    let moto = start_moto(&python);
    let scratch = tempfile::tempdir().unwrap();
    let mut sink = sink(store(&moto, "no-such-bucket"), scratch.path(), u64::MAX);
    let err = sink
        .ingest(&window(None), vec![station_at(1)])
        .await
        .unwrap_err();
    assert!(matches!(err.error(), FileSinkError::Store { .. }), "{err}");
    assert_eq!(err.error().class(), ErrorClass::Permanent, "{err}");
    assert!(
        err.to_string().contains("s3://meathook/archive/data/"),
        "{err}"
    );
    assert!(!err.to_string().contains("test:test"), "{err}");
    assert_eq!(err.records().len(), 1);
    assert!(
        files_under(scratch.path()).is_empty(),
        "scratch file left behind"
    );
}

/// A store at a port nobody listens on: connection refused, after
/// object_store's own retries (shortened here).
fn unreachable_store() -> Arc<dyn ObjectStore> {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(format!("http://127.0.0.1:{port}"))
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name("meathook")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .with_retry(object_store::RetryConfig {
                max_retries: 1,
                retry_timeout: Duration::from_secs(2),
                backoff: object_store::BackoffConfig::default(),
            })
            .build()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_a_transient_error() {
    let store = unreachable_store();
    let scratch = tempfile::tempdir().unwrap();
    let mut sink = sink(store, scratch.path(), u64::MAX);
    let err = sink
        .ingest(&window(None), vec![station_at(1)])
        .await
        .unwrap_err();
    assert!(matches!(err.error(), FileSinkError::Store { .. }), "{err}");
    assert_eq!(err.error().class(), ErrorClass::Transient, "{err}");
}

/// Six sinks, one per pipeline, land their first files at once: the card
/// gains every pipeline's config through conditional puts, and the user's
/// text survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dataset_card_keeps_every_pipeline_and_the_users_text() {
    let Some(python) = python() else { return };
    let moto = start_moto(&python);
    let scratch = tempfile::tempdir().unwrap();
    let bucket = store(&moto, "meathook");
    let card = ObjectPath::from("archive/README.md");
    bucket
        .put(&card, "---\nlicense: mit\n---\n# Mine\n".into())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let mut sink = sink(Arc::clone(&bucket), scratch.path(), u64::MAX);
            tokio::spawn(async move {
                let window = WindowMeta::containing(
                    format!("pipeline_{i}"),
                    datetime!(2026-11-23 10:56 UTC),
                    Duration::from_secs(3600),
                );
                sink.ingest(&window, vec![station_at(i)]).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let text = bucket.get(&card).await.unwrap().bytes().await.unwrap();
    let text = String::from_utf8(text.to_vec()).unwrap();
    let mut declared = meathook_files::card::declared_configs(&text);
    declared.sort();
    let want: Vec<String> = (0..6).map(|i| format!("pipeline_{i}")).collect();
    assert_eq!(declared, want, "{text}");
    assert!(text.starts_with("---\nlicense: mit\nconfigs:\n"), "{text}");
    assert!(text.ends_with("---\n# Mine\n"), "{text}");
    assert!(
        text.contains("path: \"data/pipeline_3/**/*.parquet\""),
        "{text}"
    );
}

/// `Destination::probe` against S3: the right bucket and credentials pass,
/// a missing bucket and a server that is down fail with the store's cause,
/// and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_finds_the_bucket_and_fails_without_it() {
    let Some(python) = python() else { return };
    let moto = start_moto(&python);
    let good = Destination::store(store(&moto, "meathook"), "archive", "s3://meathook").unwrap();
    good.probe().await.unwrap();
    assert!(
        keys(&store(&moto, "meathook")).await.is_empty(),
        "the probe wrote"
    );
    let missing = Destination::store(
        store(&moto, "no-such-bucket"),
        "archive",
        "s3://no-such-bucket",
    )
    .unwrap();
    let err = missing.probe().await.unwrap_err();
    assert!(
        err.to_string().starts_with("s3://no-such-bucket/archive"),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains("test:test"), "{err}");

    let down = unreachable_store();
    let err = Destination::store(down, "", "s3://meathook")
        .unwrap()
        .probe()
        .await
        .unwrap_err();
    assert!(
        matches!(err, meathook_parquet::ProbeError::Remote { .. }),
        "{err}"
    );
}
