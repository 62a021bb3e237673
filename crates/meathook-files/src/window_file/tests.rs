//! The pipeline on its own, with a line encoder and a publisher that keeps
//! what it is given: read-ahead, lenient encoding, counts, and what a
//! failure leaves behind.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::collections::VecDeque;
use std::io::Write;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meathook_core::{
    ChunkedError, EncodeSession, Encoder, ErrorClass, RecordChunks, SinkError, WindowMeta,
};

use super::{EncodeFailure, Landed, Publish, SealedFile, WindowFile, WindowFileError};

/// Why the line encoder refused.
#[derive(Debug, thiserror::Error)]
enum LineError {
    #[error("negative record {0}")]
    Negative(i64),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("the source never read ahead")]
    NoReadAhead,
}

impl EncodeFailure for LineError {
    fn is_record(&self) -> bool {
        matches!(self, Self::Negative(_))
    }

    fn is_io(&self) -> bool {
        matches!(self, Self::Io(_))
    }
}

/// One record per line; negative records are refused on their own. With
/// a gate, the first `write` of records waits (up to five seconds) for the
/// source to be asked for the next chunk.
#[derive(Debug, Default)]
struct Lines {
    gate: Option<Arc<Mutex<mpsc::Receiver<()>>>>,
}

struct LineSession<W> {
    out: W,
    gate: Option<Arc<Mutex<mpsc::Receiver<()>>>>,
}

impl Encoder<i64> for Lines {
    type Error = LineError;
    type Session<W: Write + Send> = LineSession<W>;

    fn extension(&self) -> &str {
        "txt"
    }

    fn content_type(&self) -> &str {
        "text/plain"
    }

    fn begin<W: Write + Send>(&self, out: W) -> Result<LineSession<W>, LineError> {
        Ok(LineSession {
            out,
            gate: self.gate.clone(),
        })
    }
}

impl<W: Write + Send> EncodeSession<i64, W> for LineSession<W> {
    type Error = LineError;

    fn write(&mut self, records: &[i64]) -> Result<(), LineError> {
        if let Some(&bad) = records.iter().find(|r| **r < 0) {
            return Err(LineError::Negative(bad));
        }
        if let Some(gate) = self.gate.take() {
            let gate = gate.lock().unwrap();
            gate.recv_timeout(Duration::from_secs(5))
                .map_err(|_| LineError::NoReadAhead)?;
        }
        for r in records {
            writeln!(self.out, "{r}")?;
        }
        Ok(())
    }

    fn finish(self) -> Result<W, LineError> {
        Ok(self.out)
    }
}

/// Keeps every file it is given, or refuses them all.
#[derive(Debug, Default)]
struct Keep {
    files: Vec<(String, Vec<u8>, u64)>,
    refuse: bool,
}

#[derive(Debug, thiserror::Error)]
enum KeepError {
    #[error("refused")]
    Refused,
    #[error(transparent)]
    File(#[from] WindowFileError<LineError>),
}

impl SinkError for KeepError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Refused => ErrorClass::Transient,
            Self::File(e) => e.class(),
        }
    }
}

impl Publish<LineError> for Keep {
    type Error = KeepError;

    fn destination(&self) -> String {
        "memory".into()
    }

    fn error(&self, error: WindowFileError<LineError>) -> KeepError {
        KeepError::File(error)
    }

    async fn publish(&mut self, _: &WindowMeta, file: &SealedFile) -> Result<Landed, KeepError> {
        if self.refuse {
            return Err(KeepError::Refused);
        }
        let bytes = std::fs::read(&file.scratch).unwrap();
        assert_eq!(bytes.len() as u64, file.len);
        self.files.push((file.path.clone(), bytes, file.rows));
        Ok(Landed {
            path: file.path.clone(),
            location: format!("memory/{}", file.path),
            created: true,
            commit: None,
        })
    }
}

/// Chunks from a list; tells the gate when the second chunk is asked for.
struct Chunks {
    chunks: VecDeque<Vec<i64>>,
    asked: usize,
    second: Option<mpsc::Sender<()>>,
}

impl RecordChunks<i64> for Chunks {
    type Error = std::io::Error;

    async fn next_chunk(&mut self) -> Result<Option<Vec<i64>>, std::io::Error> {
        self.asked += 1;
        if self.asked == 2
            && let Some(tx) = self.second.take()
        {
            tx.send(()).unwrap();
        }
        Ok(self.chunks.pop_front())
    }
}

fn window() -> WindowMeta {
    WindowMeta::instant("readings", time::OffsetDateTime::UNIX_EPOCH)
}

fn scratch_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, Iterator::count)
}

/// Without read-ahead the first `write` would wait for a read that only
/// comes after it, and fail after five seconds.
#[tokio::test]
async fn the_next_chunk_is_read_while_the_current_one_is_encoded() {
    let dir = tempfile::tempdir().unwrap();
    let (asked, gate) = mpsc::channel();
    let encoder = Lines {
        gate: Some(Arc::new(Mutex::new(gate))),
    };
    let mut files = WindowFile::new(Arc::new(encoder), dir.path());
    let mut keep = Keep::default();
    let chunks = Chunks {
        chunks: VecDeque::from([vec![1, 2], vec![3]]),
        asked: 0,
        second: Some(asked),
    };
    let receipt = files
        .ingest_chunks(&mut keep, &window(), chunks)
        .await
        .unwrap();
    assert_eq!(receipt.accepted(), 3);
    assert_eq!(keep.files.len(), 1);
    assert_eq!(keep.files[0].1, b"1\n2\n3\n");
    assert_eq!(
        scratch_files(dir.path()),
        0,
        "the scratch file is left behind"
    );
}

/// A record that cannot be encoded alone is left out and reported by its
/// index across chunks; the file holds its neighbours, and the counts and
/// the last delivery say so.
#[tokio::test]
async fn a_bad_record_is_left_out_and_counted_by_its_index_in_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = WindowFile::new(Arc::new(Lines::default()), dir.path());
    let mut keep = Keep::default();
    let chunks = Chunks {
        chunks: VecDeque::from([vec![1, 2], vec![3, -4, 5]]),
        asked: 0,
        second: None,
    };
    let receipt = files
        .ingest_chunks(&mut keep, &window(), chunks)
        .await
        .unwrap();
    assert_eq!(receipt.accepted(), 4);
    let rejected: Vec<usize> = receipt.rejected().iter().map(|r| r.index).collect();
    assert_eq!(rejected, [3]);
    assert!(
        matches!(
            &receipt.rejected()[0].error,
            KeepError::File(WindowFileError::Record {
                index: 3,
                source: LineError::Negative(-4),
                ..
            })
        ),
        "{:?}",
        receipt.rejected()[0].error
    );
    assert_eq!(keep.files[0].1, b"1\n2\n3\n5\n");
    assert_eq!(keep.files[0].2, 4);
    assert!(keep.files[0].0.ends_with(".txt"), "{}", keep.files[0].0);
    let counts = files.counts();
    assert_eq!(
        (
            counts.files_created,
            counts.records_delivered,
            counts.records_rejected
        ),
        (1, 4, 1)
    );
    let last = files.last_delivery().unwrap();
    assert_eq!((last.rows, last.bytes, last.created), (4, 8, true));
}

/// A refused publish hands every record back, removes the scratch file and
/// counts a failure; nothing is counted as delivered.
#[tokio::test]
async fn a_refused_publish_hands_the_records_back_and_leaves_no_scratch_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = WindowFile::new(Arc::new(Lines::default()), dir.path());
    let mut keep = Keep {
        refuse: true,
        ..Keep::default()
    };
    let error = files
        .ingest(&mut keep, &window(), vec![1, 2, 3])
        .await
        .unwrap_err();
    let (records, error) = error.into_parts();
    assert_eq!(records, [1, 2, 3]);
    assert!(matches!(error, KeepError::Refused), "{error:?}");
    assert_eq!(
        scratch_files(dir.path()),
        0,
        "the scratch file is left behind"
    );
    let counts = files.counts();
    assert_eq!((counts.failures, counts.records_delivered), (1, 0));
}

/// A source that fails accepts nothing and leaves no scratch file.
#[tokio::test]
async fn a_failed_source_leaves_nothing() {
    struct Failing(bool);
    impl RecordChunks<i64> for Failing {
        type Error = std::io::Error;
        async fn next_chunk(&mut self) -> Result<Option<Vec<i64>>, std::io::Error> {
            if std::mem::replace(&mut self.0, true) {
                Err(std::io::Error::other("torn"))
            } else {
                Ok(Some(vec![1]))
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = WindowFile::new(Arc::new(Lines::default()), dir.path());
    let mut keep = Keep::default();
    let error = files
        .ingest_chunks(&mut keep, &window(), Failing(false))
        .await
        .unwrap_err();
    assert!(matches!(error, ChunkedError::Source(_)), "{error:?}");
    assert!(keep.files.is_empty());
    assert_eq!(
        scratch_files(dir.path()),
        0,
        "the scratch file is left behind"
    );
}
