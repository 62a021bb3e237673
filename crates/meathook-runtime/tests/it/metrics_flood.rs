//! The metrics listener under a connection flood: hundreds of connections
//! that never finish their request head. The listener holds at most its
//! connection cap (the rest wait in the kernel's backlog), closes slow and
//! idle connections after its header timeout, leaves the process the file
//! descriptors it needs (files open during the flood), and answers
//! `/metrics` again once the flood ends.
//!
//! The test runs itself again in a child process whose soft limit is 1,024
//! descriptors, so that a listener holding every flood connection would run
//! the process out of them.

#![cfg(feature = "metrics-http")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

use crate::support;

use std::time::Duration;

use meathook_runtime::{Meathook, Pipeline};
use support::{Gate, Script, Scripted};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Set in the child process that runs the flood.
const CHILD: &str = "MEATHOOK_METRICS_FLOOD_CHILD";
const NOFILE: u64 = 1024;
const CAP: usize = 16;
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// Files the process opens while the flood is held.
const FILES: usize = 64;

#[test]
fn a_connection_flood_cannot_take_the_descriptors_of_the_process() {
    if std::env::var_os(CHILD).is_none() {
        let child = meathook_testkit::test_in_child!(
            "a_connection_flood_cannot_take_the_descriptors_of_the_process"
        );
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -Sn {NOFILE} && exec \"$0\" \"$@\""))
            .arg(child.get_program())
            .args(child.get_args())
            .env(CHILD, "1")
            .status()
            .unwrap();
        assert!(status.success(), "the flood failed in the child: {status}");
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(flood());
}

/// Open descriptors of this process.
fn descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn soft_nofile() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

/// True when the server closed `stream` (EOF, an answer or a reset).
fn closed_by_server(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 256];
    !matches!(stream.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

async fn flood() {
    assert_eq!(soft_nofile(), NOFILE, "the child did not get its limit");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let runtime = Meathook::builder()
        .with_metrics_addr(addr)
        .with_metrics_max_connections(CAP)
        .with_metrics_timeouts(HEADER_TIMEOUT, Duration::from_secs(60))
        .pipeline(|| {
            Pipeline::new(
                Scripted {
                    name: "flooded",
                    script: Script::new([]),
                },
                Gate::default(),
                Duration::from_millis(100),
            )
        });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(runtime.run_until(async move {
        let _ = stopped.await;
    }));
    // Up and answering.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let metrics = format!("http://{addr}/metrics");
    let mut up = false;
    for _ in 0..100 {
        if client.get(&metrics).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the metrics listener never answered");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline = descriptors();

    // As many connections as fit beside the files, the cap and some slack:
    // a listener that held them all would need twice that.
    let flood = usize::try_from(NOFILE).unwrap() - baseline - FILES - CAP - 40;
    let attempts: Vec<_> = (0..flood)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream =
                    tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr))
                        .await
                        .ok()?
                        .ok()?;
                // A request head that never ends.
                stream
                    .write_all(b"GET /metrics HTTP/1.1\r\nHost: flood\r\n")
                    .await
                    .ok()?;
                Some(stream)
            })
        })
        .collect();
    let mut clients = Vec::new();
    for attempt in attempts {
        if let Some(stream) = attempt.await.unwrap() {
            clients.push(stream);
        }
    }
    // Beyond the cap and the kernel's backlog, connecting waits: those are
    // given up on. What connected is far more than the cap.
    assert!(
        clients.len() > 4 * CAP,
        "only {} of {flood} flood connections connected",
        clients.len()
    );

    // Held by the listener: at most the cap, at every look over three
    // header timeouts, while slow connections are closed and replaced.
    let mut most_held = 0;
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let held = descriptors().saturating_sub(baseline + clients.len());
        most_held = most_held.max(held);
    }
    assert!(
        most_held <= CAP + 4,
        "the listener held {most_held} descriptors for {} flood connections (cap {CAP})",
        clients.len()
    );
    let closed = clients.iter().filter(|s| closed_by_server(s)).count();
    assert!(
        closed >= CAP,
        "only {closed} slow connections were closed after {:?}",
        HEADER_TIMEOUT * 3
    );

    // The process can still open files during the flood.
    let dir = std::env::temp_dir().join(format!("meathook-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<_> = (0..FILES)
        .map(|i| {
            std::fs::File::create(dir.join(format!("{i}")))
                .unwrap_or_else(|e| panic!("file {i} of {FILES} during the flood: {e}"))
        })
        .collect();
    drop(files);
    let _ = std::fs::remove_dir_all(&dir);

    // The flood ends: /metrics answers again.
    drop(clients);
    let answered = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match client.get(&metrics).send().await {
                Ok(response) => return response,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await
    .expect("/metrics did not answer within 15 s of the flood's end");
    assert_eq!(answered.status().as_u16(), 200);
    let text = answered.text().await.unwrap();
    assert!(text.contains("pipeline=\"flooded\""), "{text}");

    // An idle keep-alive connection is closed after the header timeout.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: idle\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        HEADER_TIMEOUT + Duration::from_secs(5),
        idle.read_to_end(&mut answer),
    )
    .await;
    assert!(
        matches!(read, Ok(Ok(_))),
        "an idle connection stayed open: {read:?}"
    );
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");

    stop.send(()).unwrap();
    run.await.unwrap().unwrap();
}
