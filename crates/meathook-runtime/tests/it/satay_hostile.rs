//! `SatayCollector` against servers that answer with hostile bodies: a
//! 10 GB `Content-Length`, an endless chunked body, an endless error page,
//! and a body dripped one byte every 2 s. Every poll fails with a transient,
//! clearly worded error, within the collector's deadline, and the process
//! never holds much more than the body limit (the resident set is measured
//! from `/proc/self/status`).

#![cfg(feature = "satay")]
#![allow(clippy::unwrap_used)] // test set-up: a failed step fails the test

use std::time::Duration;

use meathook_core::Collector;
use meathook_runtime::{SatayCollector, SatayError, SataySender};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// A GET of a URL; decodes to the body's length.
struct Get(String);

impl satay_runtime::Action for Get {
    type RequestBody = Vec<u8>;
    type Response<'de> = usize;

    fn request(self) -> Result<http::Request<Vec<u8>>, satay_runtime::Error> {
        Ok(http::Request::builder().uri(self.0).body(Vec::new())?)
    }

    fn decode(
        response: satay_runtime::ResponseParts<&[u8]>,
    ) -> Result<usize, satay_runtime::Error> {
        Ok(response.body.len())
    }
}

impl satay_runtime::OwnedAction for Get {
    type OwnedResponse = usize;

    fn decode_owned(
        response: satay_runtime::ResponseParts<&[u8]>,
    ) -> Result<usize, satay_runtime::Error> {
        Ok(response.body.len())
    }
}

/// How the server answers every request.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// 200 with `body` (and its true length).
    Small(&'static str),
    /// `status` announcing 10 GB, then streaming zeros until the client
    /// leaves.
    TenGigabytes(u16),
    /// 200, chunked, streaming chunks until the client leaves.
    EndlessChunks,
    /// 200 announcing 1000 bytes, sent one byte every 2 s.
    Drip,
}

/// Serves `answer` on 127.0.0.1 until the test ends; returns the base URL.
async fn server(answer: Answer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(respond(stream, answer));
        }
    });
    base
}

async fn respond(mut stream: TcpStream, answer: Answer) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 64 << 10 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let zeros = vec![b'0'; 64 << 10];
    match answer {
        Answer::Small(body) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
        }
        Answer::TenGigabytes(status) => {
            let head = format!(
                "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nContent-Length: 10737418240\r\n\r\n"
            );
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            while stream.write_all(&zeros).await.is_ok() {}
        }
        Answer::EndlessChunks => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let mut chunk = format!("{:x}\r\n", zeros.len()).into_bytes();
            chunk.extend_from_slice(&zeros);
            chunk.extend_from_slice(b"\r\n");
            while stream.write_all(&chunk).await.is_ok() {}
        }
        Answer::Drip => {
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            loop {
                if stream.write_all(b"[").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// A collector of `url` with a 1 MiB body limit and a `timeout` deadline.
fn collector(url: String, timeout: Duration) -> impl Collector<Record = usize, Error = SatayError> {
    SatayCollector::new(
        "hostile",
        reqwest::Client::builder().no_proxy().build().unwrap(),
        move |sender: SataySender| {
            let url = url.clone();
            async move { sender.send(Get(url)).await }
        },
        |len: usize| vec![len],
    )
    .with_body_limit(1 << 20)
    .with_timeout(timeout)
}

/// The kind a pipeline counts `error` under.
fn kind_of<C: Collector>(_: &C, error: &C::Error) -> &'static str {
    C::error_kind(error)
}

/// Bytes of the `VmRSS` or `VmHWM` line of `/proc/self/status`.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kib: u64 = line
        .trim_start_matches(field)
        .trim_start_matches(':')
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_fail_fast_within_the_limit_and_the_deadline() {
    // Reset the high-water mark (Linux >= 4.0) so VmHWM is this test's peak.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let baseline = status_bytes("VmRSS");
    let timeout = Duration::from_secs(5);
    let slack = Duration::from_secs(3);

    // A body within the limit decodes.
    let base = server(Answer::Small("[1,2,3]")).await;
    let mut ok = collector(format!("{base}/ok"), timeout);
    assert_eq!(ok.collect().await.unwrap(), vec![7]);

    let cases = [
        (Answer::TenGigabytes(200), "too_large"),
        (Answer::EndlessChunks, "too_large"),
        (Answer::TenGigabytes(502), "status_5xx"),
    ];
    for (answer, kind) in cases {
        let base = server(answer).await;
        let mut hostile = collector(format!("{base}/readings?api_key=SECRET"), timeout);
        // Three polls, as a pipeline would make: nothing accumulates.
        for _ in 0..3 {
            let started = Instant::now();
            let error = hostile.collect().await.unwrap_err();
            let elapsed = started.elapsed();
            assert!(elapsed < timeout + slack, "{answer:?}: took {elapsed:?}");
            assert_eq!(kind_of(&hostile, &error), kind, "{answer:?}: {error}");
            let message = error.to_string();
            assert!(
                message.contains(&format!("{base}/readings")),
                "the error does not name the URL: {message}"
            );
            assert!(
                !message.contains("SECRET") && !format!("{error:?}").contains("SECRET"),
                "the query string leaked: {message}"
            );
            if kind == "too_large" {
                assert!(message.contains("1048576 bytes"), "{message}");
            }
        }
    }

    // A byte every 2 s: the deadline ends the poll.
    let base = server(Answer::Drip).await;
    let deadline = Duration::from_secs(3);
    let mut drip = collector(format!("{base}/slow"), deadline);
    let started = Instant::now();
    let error = drip.collect().await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(error, SatayError::Timeout { .. }),
        "not a timeout: {error}"
    );
    assert!(
        elapsed >= deadline && elapsed < deadline + slack,
        "the deadline was {deadline:?}, the poll took {elapsed:?}"
    );
    assert!(error.to_string().contains("within 3s"), "{error}");

    let peak = status_bytes("VmHWM");
    let above = peak.saturating_sub(baseline);
    eprintln!(
        "hostile bodies: peak resident set {} MiB above the baseline",
        above >> 20
    );
    assert!(
        above < 100 << 20,
        "the resident set peaked {} MiB above its baseline",
        above >> 20
    );
}
