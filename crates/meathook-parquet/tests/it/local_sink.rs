//! The local-directory sink: layout, idempotent replays, conflicts,
//! rejected records, and a real process killed in the middle of a write.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // tests: panics are failures; the child reports on stdout

use crate::support;

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use meathook_core::{BatchId, ErrorClass, RecordChunks, Sink, SinkError, WindowMeta};
use meathook_parquet::layout::{self, BatchName};
use meathook_parquet::{FileSink, FileSinkError, ParquetEncoder};
use support::*;
use time::macros::datetime;

const HOUR: Duration = Duration::from_secs(3600);

fn window(batch: Option<BatchId>) -> WindowMeta {
    let w = WindowMeta::containing("air_temperature", datetime!(2026-11-23 10:56 UTC), HOUR);
    match batch {
        Some(b) => w.with_batch(b),
        None => w,
    }
}

fn sink(dir: &Path) -> FileSink<Station, ParquetEncoder<Station>> {
    FileSink::new(dir.to_str().unwrap(), ParquetEncoder::new().unwrap()).unwrap()
}

fn data_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| p.starts_with(layout::DATA_DIR))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_land_at_their_layout_path_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = sink(dir.path());
    sink.open().await.unwrap();
    let id = BatchId::legacy(10, 19);
    let records: Vec<Station> = (0..10).map(station_at).collect();

    let receipt = sink
        .ingest(&window(Some(id)), records.clone())
        .await
        .unwrap();
    assert_eq!(receipt.accepted(), 10);
    let expected = layout::object_path(&window(Some(id)), BatchName::Sequence(id), "parquet");
    assert_eq!(data_files(dir.path()), [PathBuf::from(&expected)]);
    let back: Vec<Station> = read_records(std::fs::read(dir.path().join(&expected)).unwrap());
    assert!(records.iter().zip(&back).all(|(a, b)| a.same(b)) && back.len() == 10);
    assert!(sink.last_delivery().unwrap().created);

    // A replay of the same batch: same path, nothing written.
    let before = std::fs::metadata(dir.path().join(&expected))
        .unwrap()
        .modified()
        .unwrap();
    sink.ingest(&window(Some(id)), records.clone())
        .await
        .unwrap();
    assert_eq!(data_files(dir.path()), [PathBuf::from(&expected)]);
    assert!(!sink.last_delivery().unwrap().created);
    assert_eq!(sink.file_counts(), (1, 1));
    let after = std::fs::metadata(dir.path().join(&expected))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);

    // Without a batch identity the name is the content hash: a second,
    // identical batch is the same file, a different one is another file.
    sink.ingest(&window(None), records.clone()).await.unwrap();
    sink.ingest(&window(None), records.clone()).await.unwrap();
    sink.ingest(&window(None), records[..5].to_vec())
        .await
        .unwrap();
    let files = data_files(dir.path());
    assert_eq!(files.len(), 3, "{files:?}");
    assert_eq!(sink.file_counts(), (3, 2));
    for f in &files {
        let name = f.to_str().unwrap();
        assert!(
            name.starts_with("data/air_temperature/2026-11-23/100000Z-"),
            "{name}"
        );
        assert!(!layout::contains_split_keyword(name), "{name}");
    }
    // No scratch file is left behind.
    assert!(files_under(&dir.path().join(".meathook-tmp")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_file_at_a_batch_path_is_a_conflict_not_an_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = sink(dir.path());
    let id = BatchId::legacy(1, 3);
    let first: Vec<Station> = (0..3).map(station_at).collect();
    sink.ingest(&window(Some(id)), first).await.unwrap();
    let path = dir.path().join(&data_files(dir.path())[0]);
    let original = std::fs::read(&path).unwrap();

    let other: Vec<Station> = (100..103).map(station_at).collect();
    let err = sink.ingest(&window(Some(id)), other).await.unwrap_err();
    assert!(
        matches!(err.error(), FileSinkError::Conflict { .. }),
        "{err}"
    );
    assert_eq!(err.error().class(), ErrorClass::Permanent);
    assert!(err.to_string().contains("nothing was overwritten"), "{err}");
    let (records, _) = err.into_parts();
    assert_eq!(records.len(), 3, "the records are handed back");
    assert_eq!(std::fs::read(&path).unwrap(), original);
    assert!(files_under(&dir.path().join(".meathook-tmp")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_cannot_be_encoded_is_rejected_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = sink(dir.path());
    let mut records: Vec<Station> = (0..6).map(station_at).collect();
    records[2].observed_at = datetime!(2300-01-01 0:00 UTC);
    records[4].observed_at = datetime!(1600-01-01 0:00 UTC);
    let receipt = sink.ingest(&window(None), records).await.unwrap();
    assert_eq!(receipt.accepted(), 4);
    let rejected: Vec<usize> = receipt.rejected().iter().map(|r| r.index).collect();
    assert_eq!(rejected, [2, 4]);
    assert_eq!(receipt.rejected()[0].error.class(), ErrorClass::Permanent);
    let files = data_files(dir.path());
    let back: Vec<Station> = read_records(std::fs::read(dir.path().join(&files[0])).unwrap());
    assert_eq!(
        back.iter().map(|s| s.small).collect::<Vec<_>>(),
        [0, 1, 3, 5]
    );
    let mut stats = meathook_core::StackStats::default();
    sink.observe(&mut stats);
    assert_eq!((stats.delivered_records, stats.rejected_records), (4, 2));
}

/// Yields `chunks` chunks, then (as the crash child) reports and hangs.
struct Chunks {
    next: u64,
    chunks: u64,
    per_chunk: u64,
    hang_after: Option<u64>,
}

impl RecordChunks<Station> for Chunks {
    type Error = Infallible;

    async fn next_chunk(&mut self) -> Result<Option<Vec<Station>>, Infallible> {
        if Some(self.next) == self.hang_after {
            println!("MID-WRITE");
            std::io::stdout().flush().unwrap();
            std::future::pending::<()>().await;
        }
        if self.next == self.chunks {
            return Ok(None);
        }
        let start = self.next * self.per_chunk;
        self.next += 1;
        Ok(Some(
            (start..start + self.per_chunk).map(station_at).collect(),
        ))
    }
}

const CRASH_DIR: &str = "MEATHOOK_CRASH_TEST_DIR";

/// Run by `a_killed_write_leaves_no_file_under_a_final_name` in a child
/// process, which it kills in the middle of the second batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in a child process by a_killed_write_leaves_no_file_under_a_final_name"]
async fn crash_child() {
    let dir = std::env::var(CRASH_DIR).expect("only run as the crash test's child");
    let encoder = ParquetEncoder::builder()
        .with_row_group_size(1_000)
        .build()
        .unwrap();
    let mut sink: FileSink<Station, _> = FileSink::new(dir, encoder).unwrap();
    let first = Chunks {
        next: 0,
        chunks: 2,
        per_chunk: 1_000,
        hang_after: None,
    };
    sink.ingest_chunks(&window(Some(BatchId::legacy(0, 1_999))), first)
        .await
        .unwrap();
    let second = Chunks {
        next: 0,
        chunks: 10,
        per_chunk: 5_000,
        hang_after: Some(3),
    };
    let _ = sink
        .ingest_chunks(&window(Some(BatchId::legacy(2_000, 51_999))), second)
        .await;
    unreachable!("the parent kills this process");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_write_leaves_no_file_under_a_final_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = meathook_testkit::test_in_child!("crash_child")
        .arg("--ignored")
        .env(CRASH_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.unwrap().contains("MID-WRITE")),
        "the child ended before reaching the middle of its second write"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // The first batch is complete under its name; the second is only a
    // scratch file.
    let first = BatchId::legacy(0, 1_999);
    let second = BatchId::legacy(2_000, 51_999);
    let first_path =
        layout::object_path(&window(Some(first)), BatchName::Sequence(first), "parquet");
    let second_path = layout::object_path(
        &window(Some(second)),
        BatchName::Sequence(second),
        "parquet",
    );
    assert_eq!(data_files(dir.path()), [PathBuf::from(&first_path)]);
    let back: Vec<Station> = read_records(std::fs::read(dir.path().join(&first_path)).unwrap());
    assert_eq!(back.len(), 2_000);
    let scratch = dir.path().join(".meathook-tmp");
    let parts = files_under(&scratch);
    assert_eq!(
        parts.len(),
        1,
        "the interrupted write left its scratch file: {parts:?}"
    );
    assert!(parts[0].extension().unwrap() == "part");

    // The next start removes the dead process's scratch file; replaying the
    // interrupted batch writes it once, and a second replay writes nothing.
    let mut sink = sink(dir.path());
    sink.open().await.unwrap();
    assert!(files_under(&scratch).is_empty());
    for _ in 0..2 {
        let chunks = Chunks {
            next: 0,
            chunks: 10,
            per_chunk: 5_000,
            hang_after: None,
        };
        let receipt = sink
            .ingest_chunks(&window(Some(second)), chunks)
            .await
            .unwrap();
        assert_eq!(receipt.accepted(), 50_000);
    }
    assert_eq!(sink.file_counts(), (1, 1));
    assert_eq!(
        data_files(dir.path()),
        [PathBuf::from(&first_path), PathBuf::from(&second_path)]
    );
    let back: Vec<Station> = read_records(std::fs::read(dir.path().join(&second_path)).unwrap());
    assert_eq!(back.len(), 50_000);
    assert!(
        back.iter()
            .enumerate()
            .all(|(i, s)| s.same(&station_at(i as u64)))
    );
}

/// A pipeline whose escaped name cannot be a file name (256 letters, 86
/// punctuation characters, 43 `é`) is refused at once and permanently, so a
/// spool dead-letters it instead of retrying it for ever; nothing is left
/// behind.
#[tokio::test]
async fn a_pipeline_name_too_long_for_a_file_name_is_a_permanent_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = sink(dir.path());
    for name in ["a".repeat(256), ".".repeat(86), "é".repeat(43)] {
        let window = WindowMeta::containing(name.as_str(), datetime!(2026-11-23 10:56 UTC), HOUR)
            .with_batch(BatchId::new(1, 0, 2));
        let err = sink
            .ingest(&window, (0..3).map(station_at).collect())
            .await
            .unwrap_err();
        assert_eq!(err.records().len(), 3, "the records are handed back");
        assert_eq!(
            err.error().class(),
            ErrorClass::Permanent,
            "{}",
            err.error()
        );
        assert!(
            matches!(err.error(), FileSinkError::Name { .. }),
            "{}",
            err.error()
        );
        assert!(
            err.error().to_string().contains("at most 240"),
            "{}",
            err.error()
        );
    }
    assert!(data_files(dir.path()).is_empty());
}

/// The operating system's "file name too long" is permanent too, whatever
/// produced the name.
#[test]
fn a_name_the_filesystem_refuses_is_permanent() {
    let dir = tempfile::tempdir().unwrap();
    let source = std::fs::File::create(dir.path().join("x".repeat(300))).unwrap_err();
    let err = FileSinkError::Local {
        action: "creating",
        path: dir.path().to_path_buf(),
        source,
    };
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
}

/// Something other than a file already at a batch's path (a FIFO, a symlink
/// to `/dev/zero`) is refused without hanging, following or overwriting it.
#[tokio::test]
async fn a_fifo_or_symlink_at_the_target_path_is_refused_not_followed() {
    for fifo in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(dir.path());
        let window = window(Some(BatchId::new(3, 0, 2)));
        let relative = layout::object_path(
            &window,
            BatchName::Sequence(BatchId::new(3, 0, 2)),
            "parquet",
        );
        let target = dir.path().join(&relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        if fifo {
            let made = Command::new("mkfifo").arg(&target).status().unwrap();
            assert!(made.success());
        } else {
            std::os::unix::fs::symlink("/dev/zero", &target).unwrap();
        }
        let ingest = sink.ingest(&window, (0..3).map(station_at).collect());
        let err = tokio::time::timeout(Duration::from_secs(60), ingest)
            .await
            .expect("ingest hung on what sits at the target path")
            .unwrap_err();
        assert!(
            err.error().to_string().contains("not a regular file"),
            "{}",
            err.error()
        );
        assert_eq!(err.records().len(), 3);
        let kind = std::fs::symlink_metadata(&target).unwrap().file_type();
        assert!(if fifo {
            !kind.is_file() && !kind.is_symlink()
        } else {
            kind.is_symlink()
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dataset_card_gains_each_pipeline_once_beside_the_users_text() {
    let dir = tempfile::tempdir().unwrap();
    let card = dir.path().join("README.md");
    std::fs::write(&card, "# Readings\n").unwrap();
    let mut first = sink(dir.path());
    first
        .ingest(&window(None), vec![station_at(1)])
        .await
        .unwrap();
    let after_first = std::fs::read_to_string(&card).unwrap();
    assert_eq!(
        after_first,
        "---\nconfigs:\n- config_name: air_temperature\n  data_files:\n  - split: train\n    path: \"data/air_temperature/**/*.parquet\"\n---\n# Readings\n"
    );
    // A second sink, another pipeline, same directory: one more entry.
    let mut second = sink(dir.path());
    let rain = WindowMeta::containing("rainfall", datetime!(2026-11-23 10:56 UTC), HOUR);
    second.ingest(&rain, vec![station_at(2)]).await.unwrap();
    let text = std::fs::read_to_string(&card).unwrap();
    assert_eq!(
        meathook_files::card::declared_configs(&text),
        ["air_temperature", "rainfall"]
    );
    assert!(text.ends_with("---\n# Readings\n"), "{text}");
    // A card that already lists the pipeline is not rewritten.
    let modified = std::fs::metadata(&card).unwrap().modified().unwrap();
    let mut third = sink(dir.path());
    third
        .ingest(&window(None), vec![station_at(3)])
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&card).unwrap(), text);
    assert_eq!(
        std::fs::metadata(&card).unwrap().modified().unwrap(),
        modified
    );
}

/// Sixty pipelines' first windows land at once, their configs written
/// together in shared rewrites: every one reaches the card.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_starting_together_all_reach_the_card() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README.md"), "# Readings\n").unwrap();
    let mut tasks = Vec::new();
    for p in 0..60 {
        let mut sink = sink(dir.path());
        tasks.push(tokio::spawn(async move {
            let w = WindowMeta::containing(
                format!("pipeline_{p:02}"),
                datetime!(2026-11-23 10:56 UTC),
                HOUR,
            );
            sink.ingest(&w, vec![station_at(p)]).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let text = std::fs::read_to_string(dir.path().join("README.md")).unwrap();
    let configs = meathook_files::card::declared_configs(&text);
    let expected: Vec<String> = (0..60).map(|p| format!("pipeline_{p:02}")).collect();
    let mut sorted = configs.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    assert!(text.ends_with("---\n# Readings\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_that_cannot_be_written_fails_the_window_transiently_until_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let card = dir.path().join("README.md");
    std::fs::create_dir(&card).unwrap();
    let mut sink = sink(dir.path());
    let id = BatchId::legacy(0, 2);
    let records: Vec<Station> = (0..3).map(station_at).collect();
    let err = sink
        .ingest(&window(Some(id)), records.clone())
        .await
        .unwrap_err();
    assert_eq!(err.error().class(), ErrorClass::Transient, "{err}");
    assert!(err.to_string().contains("dataset card"), "{err}");
    assert_eq!(err.records().len(), 3, "the records are handed back");
    // The file landed; the replay finds it and writes the card.
    assert_eq!(data_files(dir.path()).len(), 1);
    std::fs::remove_dir(&card).unwrap();
    sink.ingest(&window(Some(id)), records).await.unwrap();
    // The failed attempt reported nothing; the replay reports the file as
    // found, which is what the delivery catalog records.
    assert_eq!(sink.file_counts(), (0, 1));
    assert!(!sink.last_delivery().unwrap().created);
    let text = std::fs::read_to_string(&card).unwrap();
    assert_eq!(
        meathook_files::card::declared_configs(&text),
        ["air_temperature"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_dataset_card_no_readme_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = meathook_parquet::FileSinkBuilder::new(dir.path().to_str().unwrap())
        .with_dataset_card(false)
        .build::<Station, _>(ParquetEncoder::new().unwrap())
        .unwrap();
    sink.ingest(&window(None), vec![station_at(1)])
        .await
        .unwrap();
    assert_eq!(data_files(dir.path()).len(), 1);
    assert!(!dir.path().join("README.md").exists());
}

const CARD_DIR: &str = "MEATHOOK_TEST_CARD_DIR";
const CARD_PIPELINES: &str = "MEATHOOK_TEST_CARD_PIPELINES";

/// Run by `processes_sharing_a_directory_keep_every_pipeline_in_the_card`
/// in several child processes at once: one sink per pipeline named in
/// the environment, all on one directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in child processes by processes_sharing_a_directory_keep_every_pipeline_in_the_card"]
async fn card_child() {
    let dir = std::env::var(CARD_DIR).expect("only run as the card test's child");
    let pipelines = std::env::var(CARD_PIPELINES).unwrap();
    let tasks: Vec<_> = pipelines
        .split(',')
        .map(|pipeline| {
            let mut sink = sink(Path::new(&dir));
            let window = WindowMeta::containing(pipeline, datetime!(2026-11-23 10:56 UTC), HOUR);
            tokio::spawn(async move { sink.ingest(&window, vec![station_at(1)]).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_sharing_a_directory_keep_every_pipeline_in_the_card() {
    let dir = tempfile::tempdir().unwrap();
    let card = dir.path().join("README.md");
    std::fs::write(&card, "---\nlicense: cc-by-4.0\n---\n# Shared\n").unwrap();
    let children: Vec<_> = (0..4)
        .map(|c| {
            let pipelines: Vec<String> = (0..4).map(|p| format!("p{c}_{p}")).collect();
            meathook_testkit::test_in_child!("card_child")
                .arg("--ignored")
                .env(CARD_DIR, dir.path())
                .env(CARD_PIPELINES, pipelines.join(","))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let text = std::fs::read_to_string(&card).unwrap();
    let mut declared = meathook_files::card::declared_configs(&text);
    declared.sort();
    let mut want: Vec<String> = (0..4)
        .flat_map(|c| (0..4).map(move |p| format!("p{c}_{p}")))
        .collect();
    want.sort();
    assert_eq!(declared, want, "{text}");
    assert!(
        text.starts_with("---\nlicense: cc-by-4.0\nconfigs:\n"),
        "{text}"
    );
    assert!(text.ends_with("---\n# Shared\n"), "{text}");
    assert_eq!(data_files(dir.path()).len(), 16);
}

/// `Destination::probe` on a local directory: a directory that does not
/// exist yet passes if the one above it takes files, and is not created;
/// one below a regular file fails, naming the path; no probe file is left.
#[tokio::test]
async fn a_local_probe_writes_where_the_sink_would_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let later = dir.path().join("dataset").join("weather");
    meathook_parquet::Destination::parse(later.to_str().unwrap())
        .unwrap()
        .probe()
        .await
        .unwrap();
    assert!(!later.exists(), "the probe created the directory");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "the probe left {left:?}");

    std::fs::write(dir.path().join("a-file"), b"x").unwrap();
    let below_a_file = dir.path().join("a-file").join("dataset");
    let err = meathook_parquet::Destination::parse(below_a_file.to_str().unwrap())
        .unwrap()
        .probe()
        .await
        .unwrap_err();
    assert!(
        matches!(err, meathook_parquet::ProbeError::Local { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("a-file"), "{err}");
}

/// `read_parquet_json` reads a file without its record type: every column
/// a field, timestamp columns as RFC 3339 in UTC at their own precision,
/// nested columns as objects and lists.
#[tokio::test]
async fn a_file_reads_back_as_json_without_its_record_type() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = sink(dir.path());
    let window = WindowMeta::containing(
        "stations",
        datetime!(2026-11-23 10:00 UTC),
        Duration::from_secs(3600),
    );
    let records: Vec<Station> = (0..3).map(station_at).collect();
    sink.ingest(&window, records.clone()).await.unwrap();
    let files: Vec<_> = files_under(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let rows = meathook_parquet::read_parquet_json(&dir.path().join(&files[0])).unwrap();
    assert_eq!(rows.len(), 3);
    let row = &rows[1];
    assert_eq!(row["id"], "S1");
    assert_eq!(row["seq"], u64::MAX - 1);
    assert_eq!(row["value"], 0.1);
    assert_eq!(row["location"]["name"], "site 1");
    assert_eq!(row["history"], serde_json::json!([0.0]));
    // 10:00 + 250 ms, kept to the nanosecond column's precision; 10:00:01 +
    // 1,001 ns, truncated to the microsecond column's.
    assert_eq!(row["observed_at"], "2026-11-23T10:00:00.25Z");
    assert_eq!(row["received_at"], "2026-11-23T10:00:01.000001Z");
}
