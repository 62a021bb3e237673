//! The status page of the NEA example, as an operator's browser shows it:
//! the example runs as a real process against the fake NEA API, with a
//! catalog whose last day lacks one hour of rainfall on purpose; a headless
//! Chromium renders `/status`, and the test reads its DOM and finds the gap
//! in the decoded screenshot.
#![cfg(all(feature = "parquet", feature = "satay", feature = "metrics-http"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::time::Duration;

use meathook::WindowMeta;
use meathook::catalog::{MANIFEST_FILE, Manifest};
use meathook::contracts::Delivery;
use meathook::contracts::DeliveryLog as _;
use meathook_testkit::browser;

use crate::nea_example::{config, fake_nea, scratch, signal, start_with, wait};

/// The hour, counted back from the current one, rainfall has no window in.
const GAP: usize = 5;
/// The grid's colour of a delivered hour.
const HIT: [u8; 3] = [0x17, 0x80, 0x3d];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_of_the_example_renders_and_shows_the_gap() {
    let Some(chromium) = browser::chromium() else {
        return;
    };
    let fake = fake_nea().await;
    let dir = scratch("status");
    let path = config(&dir, &fake.base_url());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!("[metrics]\naddr = \"127.0.0.1:{port}\"\n"));
    std::fs::write(&path, text).unwrap();

    // The catalog of earlier runs: every hour of the last day but the
    // current one, except one of rainfall's.
    std::fs::create_dir_all(dir.join("spool")).unwrap();
    let manifest = Manifest::open(dir.join("spool").join(MANIFEST_FILE)).unwrap();
    // The grid is of the hours before the current one: a run that crosses
    // an hour's end between the seeding and the screenshot would see every
    // cell move by one. Within a minute of the end, wait for the next hour.
    let into_hour = time::OffsetDateTime::now_utc()
        .unix_timestamp()
        .rem_euclid(3600);
    if into_hour > 3600 - 60 {
        tokio::time::sleep(Duration::from_secs((3600 - into_hour + 1) as u64)).await;
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp() / 3600;
    for pipeline in ["air_temperature", "rainfall"] {
        for back in 1..24 {
            if pipeline == "rainfall" && back == GAP as i64 {
                continue;
            }
            let start = time::OffsetDateTime::from_unix_timestamp((now - back) * 3600).unwrap();
            let window = WindowMeta::containing(pipeline, start, Duration::from_secs(3600));
            let file = format!("data/{pipeline}/{back}.parquet");
            manifest
                .record(&Delivery::new(&window, "dataset", file, 10, 100, [7; 32]))
                .unwrap();
        }
    }
    drop(manifest);

    let log = dir.join("run.log");
    let mut child = start_with(&path, &log, None);
    let url = format!("http://127.0.0.1:{port}/status");
    let client = reqwest::Client::new();
    let mut polled = false;
    for _ in 0..200 {
        if let Ok(r) = client.get(&url).send().await
            && let Ok(body) = r.text().await
            && body.matches(" ago: ").count() >= 2
        {
            polled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        polled,
        "the page never showed both polls: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let shot = dir.join("status.png");
    let rendered = {
        let (url, shot) = (url.clone(), shot.clone());
        tokio::task::spawn_blocking(move || browser::render(&chromium, &url, (1200, 400), &shot))
            .await
            .unwrap()
    };
    signal(&child, "TERM");
    let code = tokio::task::block_in_place(|| wait(&mut child, Duration::from_secs(30), &log));
    assert_eq!(
        code,
        0,
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // The DOM the browser built: both pipelines; every hour of the last
    // day delivered but the gap, and the hour in progress still open.
    let dom = &rendered.dom;
    for pipeline in ["air_temperature", "rainfall"] {
        assert!(
            dom.contains(&format!("<td class=\"name\">{pipeline}</td>")),
            "{dom}"
        );
    }
    assert_eq!(dom.matches("class=\"hit\"").count(), 23 + 22, "{dom}");
    assert_eq!(dom.matches("class=\"open\"").count(), 2, "{dom}");
    let gap_hour = (now - GAP as i64) * 3600;
    let gap = dom.find("class=\"gap\"").expect("one gap");
    assert_eq!(dom.matches("class=\"gap\"").count(), 1, "{dom}");
    let cell_end = gap
        + dom[gap..]
            .find("/>")
            .or_else(|| dom[gap..].find('>'))
            .unwrap();
    assert!(
        dom[gap..cell_end].contains("data-pipeline=\"rainfall\"")
            && dom[gap..cell_end].contains(&format!("data-hour=\"{gap_hour}\"")),
        "the gap is not rainfall's {GAP} hours ago: {}",
        &dom[gap..cell_end]
    );

    // The screenshot: two rows of green cells; air temperature's with 23,
    // rainfall's with 22, whose missing cell is the GAP-th before the
    // hour in progress.
    let shot = &rendered.shot;
    let bands = shot.bands(HIT, 20);
    assert_eq!(bands.len(), 2, "rows of cells in the screenshot: {bands:?}");
    assert_eq!(bands[0].1.len(), 23, "air temperature's row");
    let (y, starts) = &bands[1];
    assert_eq!(starts.len(), 22, "rainfall's row");
    let step = starts[1] - starts[0];
    let wide: Vec<usize> = starts
        .windows(2)
        .enumerate()
        .filter(|(_, s)| s[1] - s[0] != step)
        .map(|(i, _)| i)
        .collect();
    // Cells 0..=22 are the 23 hours before the current one; the gap is
    // cell 23 - GAP, so the wide step follows run 22 - GAP.
    assert_eq!(wide, [22 - GAP], "where the gap is: {starts:?}");
    let gap_x = starts[wide[0]] + step;
    assert!(
        !shot.is(gap_x + step / 2, *y, HIT, 4),
        "the gap's cell is drawn as delivered"
    );
    eprintln!(
        "status page: {}x{} screenshot, gap at x={gap_x}",
        shot.width, shot.height
    );
    if let Some(keep) = std::env::var_os("MEATHOOK_STATUS_SCREENSHOT") {
        std::fs::copy(dir.join("status.png"), keep).unwrap();
    }
    let _ = std::fs::remove_dir_all(dir);
}
