//! A real process is killed with SIGKILL after it uploaded a window's file
//! and while its commit is in flight; a restart recovers the spool and
//! commits the window once, without uploading it again.
//!
//! The child is this test binary, re-executed with `MEATHOOK_HF_CHILD`
//! set to its work directory and `MEATHOOK_HF_ENDPOINT` to the fake Hub.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use crate::support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use meathook_core::{FlushPolicy, Sink};
use meathook_spool::DiskSpool;
use meathook_testkit::hub::{FakeHub, FakeHubConfig, HubFault, HubRoute};
use support::{assert_exactly, readings, window};

const RECORDS: u64 = 300;

#[test]
fn child_process() {
    let (Ok(root), Ok(endpoint)) = (
        std::env::var("MEATHOOK_HF_CHILD"),
        std::env::var("MEATHOOK_HF_ENDPOINT"),
    ) else {
        return;
    };
    let root = Path::new(&root).to_path_buf();
    let ingest = std::env::var("MEATHOOK_HF_INGEST").is_ok();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let hub_sink = sink_at(&endpoint, &root.join("scratch"));
        let mut spool = DiskSpool::new(hub_sink, root.join("spool"), FlushPolicy::hourly());
        spool.open().await.unwrap();
        if ingest {
            spool
                .ingest(&window("air_temperature", 0), readings(0, RECORDS))
                .await
                .unwrap();
        }
        spool.flush().await.unwrap();
        spool.close().await;
    });
    std::process::exit(0);
}

fn sink_at(endpoint: &str, scratch: &Path) -> meathook_hf::HfSink<support::Reading> {
    meathook_hf::HfSink::new(reqwest::Client::new(), support::REPO, support::TOKEN)
        .with_endpoint(endpoint)
        .with_scratch_dir(scratch)
        .with_coalesce(Duration::from_millis(10))
        .with_commit_budget(100_000, Duration::from_secs(3600))
        .with_timeouts(Duration::from_secs(300), Duration::from_secs(300))
}

fn start(root: &Path, endpoint: &str, ingest: bool) -> Child {
    let mut cmd = meathook_testkit::test_in_child!("child_process");
    cmd.env("MEATHOOK_HF_CHILD", root)
        .env("MEATHOOK_HF_ENDPOINT", endpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if ingest {
        cmd.env("MEATHOOK_HF_INGEST", "1");
    }
    cmd.spawn().unwrap()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_upload_and_commit_is_committed_once_after_restart() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    // The commit hangs, so the kill lands after the upload and before the
    // commit is applied.
    hub.inject(
        HubRoute::Commit,
        [HubFault::Delay(Duration::from_secs(600))],
    );
    let root = tempfile::tempdir().unwrap();
    let endpoint = hub.endpoint();

    let mut child = start(root.path(), &endpoint, true);
    wait_for("the commit request", || hub.requests(HubRoute::Commit) >= 1).await;
    assert_eq!(
        hub.requests(HubRoute::Put),
        1,
        "the file was uploaded first"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        hub.commits().is_empty(),
        "nothing was committed before the kill"
    );

    let mut again = start(root.path(), &endpoint, false);
    let status = tokio::task::spawn_blocking(move || again.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "the restart failed: {status}");

    assert_exactly(&hub, &readings(0, RECORDS));
    assert_eq!(
        hub.requests(HubRoute::Put),
        1,
        "the object was uploaded again"
    );
    assert_eq!(hub.commits().len(), 1);
    let spool = root.path().join("spool");
    let left: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| {
            let n = n.to_string_lossy();
            n.ends_with(".seg") || n.ends_with(".open")
        })
        .collect();
    assert!(left.is_empty(), "segments left after delivery: {left:?}");
}
