//! The status page in a real browser: a headless Chromium renders `/status`
//! of a running job, its DOM is read back, and the screenshot is decoded
//! to find the delivery grid's row and the hour left out on purpose.
//!
//! Needs Chromium (`cargo xtask ci browser` installs it); skipped with a
//! message without it, except under `cargo xtask ci`, which sets
//! `MEATHOOK_REQUIRE_BROWSER`.
#![cfg(feature = "metrics-http")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use meathook_core::{Deliveries, Delivery, DeliveryLog, DeliveryLogError, FlushPolicy, WindowMeta};
use meathook_runtime::{Meathook, Pipeline};
use meathook_spool::SinkExt as _;
use support::{Gate, Script, Scripted};

/// The hour, counted back from the current one, that no window covers.
const GAP: i64 = 5;
/// The hours the grid shows.
const HOURS: i64 = 24;
/// The grid's colours: a delivered hour, and the page's white.
const HIT: [u8; 3] = [0x17, 0x80, 0x3d];

/// Chromium, or `None` with a message (a failure under `cargo xtask ci`).
fn browser() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MEATHOOK_BROWSER") {
        return Some(PathBuf::from(p));
    }
    let found = std::env::var_os("PATH").and_then(|dirs| {
        std::env::split_paths(&dirs)
            .flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n)))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let hint = "no Chromium on PATH: `cargo xtask ci browser` installs it";
        assert!(
            std::env::var_os("MEATHOOK_REQUIRE_BROWSER").is_none(),
            "{hint}"
        );
        eprintln!("SKIPPED: {hint}");
    }
    found
}

/// Runs headless Chromium on `url` with `args`; returns its stdout.
fn chromium(browser: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[derive(Debug)]
struct Nowhere;

impl DeliveryLog for Nowhere {
    fn record(&self, _: &Delivery) -> Result<(), DeliveryLogError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_renders_in_a_browser_and_its_grid_shows_the_gap() {
    let Some(browser) = browser() else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let names = ["air_temperature", "rainfall", "relative_humidity"];
    let spools = tempfile::tempdir().unwrap();
    let mut runtime = Meathook::builder().with_metrics_addr(([127, 0, 0, 1], port).into());
    for name in names {
        let dir = spools.path().join(name);
        runtime = runtime.pipeline(move || {
            Pipeline::new(
                Scripted {
                    name,
                    script: Script::new([]),
                },
                Gate::default().spooled(dir.clone(), FlushPolicy::hourly()),
                Duration::from_millis(200),
            )
        });
    }
    // Every hour of the last day delivered, but one of rainfall's.
    let hook = runtime.telemetry().deliveries(Deliveries::new(Nowhere));
    let now = time::OffsetDateTime::now_utc().unix_timestamp() / 3600;
    for name in names {
        for back in 0..HOURS {
            if name == "rainfall" && back == GAP {
                continue;
            }
            let start = time::OffsetDateTime::from_unix_timestamp((now - back) * 3600).unwrap();
            let window = WindowMeta::containing(name, start, Duration::from_secs(3600));
            hook.record(&Delivery::new(&window, "d", "p", 1, 1, [0; 32]))
                .unwrap();
        }
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(runtime.run_until(async move {
        let _ = rx.await;
    }));
    let url = format!("http://127.0.0.1:{port}/status");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the listener never answered");
    // Let each pipeline poll a few times, so the table has figures.
    tokio::time::sleep(Duration::from_millis(700)).await;

    let profile = tempfile::tempdir().unwrap();
    let shot = profile.path().join("status.png");
    let (dom, took) = {
        let (browser, profile_dir, url, shot) = (
            browser.clone(),
            profile.path().join("profile"),
            url.clone(),
            shot.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let dom = chromium(&browser, &profile_dir, &["--dump-dom"], &url);
            let started = Instant::now();
            chromium(
                &browser,
                &profile_dir,
                &[
                    &format!("--screenshot={}", shot.display()),
                    "--window-size=1200,460",
                ],
                &url,
            );
            (dom, started.elapsed())
        })
        .await
        .unwrap()
    };
    tx.send(()).unwrap();
    run.await.unwrap().unwrap();

    // The DOM the browser built: every pipeline, its spool's next close, a
    // row of cells each, the gap where it was left.
    assert_eq!(dom.matches("<td class=\"n\">in ").count(), 3, "{dom}");
    for name in names {
        assert!(
            dom.contains(&format!("<td class=\"name\">{name}</td>")),
            "{dom}"
        );
    }
    assert_eq!(dom.matches("class=\"gap\"").count(), 1, "{dom}");
    assert_eq!(
        dom.matches("class=\"hit\"").count(),
        usize::try_from(3 * HOURS - 1).unwrap()
    );

    // The screenshot: the rows of green cells, and in rainfall's the one
    // cell that is not green, GAP hours before the last.
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let (w, h) = (info.width as usize, info.height as usize);
    let is_hit = |x: usize, y: usize| {
        let p = &pixels[(y * w + x) * channels..][..3];
        p.iter().zip(HIT).all(|(a, b)| a.abs_diff(b) <= 4)
    };
    // Runs of green in each pixel row; a grid row has one run per
    // delivered hour.
    let runs = |y: usize| -> Vec<usize> {
        (0..w)
            .filter(|&x| is_hit(x, y) && (x == 0 || !is_hit(x - 1, y)))
            .collect()
    };
    // One entry per band of pixel rows: a row whose runs are those of the
    // row above it belongs to the same band.
    let mut rows: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut above: Option<Vec<usize>> = None;
    for y in 0..h {
        let here = runs(y);
        let counts = here.len() >= usize::try_from(HOURS - 1).unwrap();
        if counts && above.as_ref() != Some(&here) {
            rows.push((y, here.clone()));
        }
        above = counts.then_some(here);
    }
    assert_eq!(
        rows.len(),
        3,
        "the screenshot shows {} rows of cells, not one per pipeline",
        rows.len()
    );
    let full = usize::try_from(HOURS).unwrap();
    let with_gap: Vec<_> = rows.iter().filter(|(_, r)| r.len() == full - 1).collect();
    assert_eq!(with_gap.len(), 1, "one row has a gap: {rows:?}");
    assert_eq!(rows[1].1.len(), full - 1, "rainfall is the second row");
    let starts = &with_gap[0].1;
    let step = starts[1] - starts[0];
    let wide: Vec<usize> = starts
        .windows(2)
        .enumerate()
        .filter(|(_, s)| s[1] - s[0] != step)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        wide,
        [usize::try_from(HOURS - 1 - GAP - 1).unwrap()],
        "the gap is not {GAP} hours before the last: {starts:?}"
    );
    let gap_at = starts[wide[0]] + step;
    assert_eq!(starts[wide[0] + 1] - starts[wide[0]], 2 * step);
    assert!(
        !is_hit(gap_at + step / 2, with_gap[0].0),
        "the gap's cell is drawn green"
    );
    eprintln!("status page: screenshot taken in {took:?}, {w}x{h} pixels");
    if let Some(keep) = std::env::var_os("MEATHOOK_STATUS_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}
