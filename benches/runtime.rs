//! The runtime at work: the NEA example (three pipelines, one poll a second
//! each, spool → local parquet) against the fake NEA API, measured from
//! outside as a user's process would be: peak RSS, CPU and tick lateness.
//! The baseline is a bare polling loop in its own process: the same three
//! requests a second with reqwest and nea-rs, decoded and dropped.
//!
//! `MEATHOOK_BENCH_SECONDS` shortens the 60-second run.
//!
//! First, in this process: the size of the `/metrics` body (the bytes
//! `Telemetry::encode_as` gives the route) for 1,000 pipelines that have
//! each ticked, in OpenMetrics and in the Prometheus text format.
#![allow(missing_docs)] // a benchmark binary, not an API
#![allow(clippy::expect_used, clippy::cast_precision_loss, clippy::print_stdout)] // aborts on a broken set-up; ratios; the fake prints its address

mod support;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use meathook_testkit::{FakeNea, FakeNeaConfig};
use satay_reqwest::ReqwestActionExt as _;
use support::figure;

const ROLE: &str = "MEATHOOK_BENCH_ROLE";

fn seconds() -> u64 {
    std::env::var("MEATHOOK_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

/// CPU seconds (user + system) and peak RSS bytes of a live process.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<u64>().ok())
        .expect("VmHWM");
    (ticks / 100.0, hwm * 1024)
}

fn spawn_role(role: &str, args: &[&str]) -> Child {
    Command::new(std::env::current_exe().expect("own path"))
        .env(ROLE, role)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn")
}

/// Runs `child` for the bench duration, then measures it and stops it.
fn measure(mut child: Child, stop: &str) -> (f64, u64) {
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds()));
    let (cpu, rss) = usage(child.id());
    let wall = started.elapsed().as_secs_f64();
    let _ = Command::new("kill")
        .args([format!("-{stop}"), child.id().to_string()])
        .status();
    let _ = child.wait();
    (cpu / wall, rss)
}

fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("examples")
        .join("nea_weather");
    assert!(
        path.is_file(),
        "{} is missing: `cargo xtask bench runtime` builds it",
        path.display()
    );
    path
}

/// Lateness quantile from the cumulative histogram in the textfile: the
/// upper bound of the first bucket holding `q` of the samples.
fn quantile(text: &str, q: f64) -> f64 {
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter(|l| l.starts_with("meathook_tick_lateness_seconds_bucket"))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    let mut per_le: std::collections::BTreeMap<u64, f64> = std::collections::BTreeMap::new();
    for (le, count) in buckets {
        *per_le.entry(le.to_bits()).or_default() += count;
    }
    let mut sorted: Vec<(f64, f64)> = per_le
        .into_iter()
        .map(|(b, c)| (f64::from_bits(b), c))
        .collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = sorted.last().map_or(0.0, |b| b.1);
    sorted
        .into_iter()
        .find(|(_, c)| *c >= q * total)
        .map_or(f64::NAN, |(le, _)| le)
}

/// A collector that returns one record per poll.
struct Counting {
    name: String,
    next: u64,
}

impl meathook::Collector for Counting {
    type Record = u64;
    type Error = std::convert::Infallible;

    fn name(&self) -> &str {
        &self.name
    }

    async fn collect(&mut self) -> Result<Vec<u64>, Self::Error> {
        self.next += 1;
        Ok(vec![self.next])
    }
}

/// Bytes of the metrics of `PIPELINES` pipelines that have each ticked
/// twice, in both formats; and the time and size of their status page,
/// against the time of encoding their metrics.
fn metrics_size() {
    use meathook::runtime::MetricsFormat;
    const PIPELINES: usize = 1000;
    let mut runtime = meathook::Meathook::builder();
    for i in 0..PIPELINES {
        runtime = runtime.pipeline(move || {
            meathook::Pipeline::new(
                Counting {
                    name: format!("pipeline-{i:04}"),
                    next: 0,
                },
                meathook_testkit::conformance::Recorder::default(),
                Duration::from_secs(1),
            )
        });
    }
    let telemetry = runtime.telemetry();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let stop = {
        let (telemetry, seen) = (telemetry.clone(), seen.clone());
        async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let encode = |format| telemetry.encode_as(format).len();
            let sizes = (
                encode(MetricsFormat::OpenMetrics),
                encode(MetricsFormat::PrometheusText),
            );
            // The status page of the same pipelines, against the metrics'
            // encoding as the baseline: the fastest of five each.
            let fastest = |f: &dyn Fn() -> usize| {
                (0..5)
                    .map(|_| {
                        let started = std::time::Instant::now();
                        let bytes = f();
                        (started.elapsed(), bytes)
                    })
                    .min()
                    .expect("five runs")
            };
            let page = fastest(&|| telemetry.status_page().len());
            let metrics = fastest(&|| telemetry.encode().len());
            *seen.lock().expect("sizes") = Some((sizes, page, metrics.0));
        }
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(runtime.run_until(stop))
        .expect("1,000 pipelines run and drain");
    let ((openmetrics, text), (page_took, page_bytes), metrics_took) =
        seen.lock().expect("sizes").take().expect("measured");
    figure(
        "status_page_render_ms_1000_pipelines",
        page_took.as_secs_f64() * 1000.0,
        "ms",
        "",
    );
    figure(
        "status_page_bytes_1000_pipelines",
        page_bytes as f64,
        "bytes",
        "",
    );
    figure(
        "status_page_render_vs_metrics_encode",
        page_took.as_secs_f64() / metrics_took.as_secs_f64(),
        "x",
        "",
    );
    let per = |bytes: usize| bytes as f64 / PIPELINES as f64;
    figure(
        "metrics_bytes_1000_pipelines_openmetrics",
        openmetrics as f64,
        "bytes",
        "",
    );
    figure(
        "metrics_bytes_1000_pipelines_prometheus_text",
        text as f64,
        "bytes",
        "",
    );
    figure(
        "metrics_bytes_per_pipeline_prometheus_text",
        per(text),
        "bytes",
        "",
    );
}

fn orchestrate() {
    metrics_size();
    let mut fake = spawn_role("fake", &[]);
    let mut line = String::new();
    BufReader::new(fake.stdout.take().expect("fake stdout"))
        .read_line(&mut line)
        .expect("fake address");
    let base_url = line.trim().to_owned();

    let dir = std::env::temp_dir().join(format!("meathook-bench-runtime-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let textfile = dir.join("metrics.prom");
    let config = dir.join("meathook.toml");
    std::fs::write(
        &config,
        format!(
            "spool_dir = \"{}\"\n[flush]\nevery = \"1h\"\n[sink.files]\ndestination = \"{}\"\n[api]\nbase_url = \"{base_url}\"\n[metrics]\ntextfile = \"{}\"\n\
             [collectors.air_temperature]\ninterval = \"1s\"\n[collectors.rainfall]\ninterval = \"1s\"\n[collectors.relative_humidity]\ninterval = \"1s\"\n",
            dir.join("spool").display(),
            dir.join("dataset").display(),
            textfile.display()
        ),
    )
    .expect("config");

    let baseline = spawn_role("baseline", &[&base_url]);
    let (base_cpu, base_rss) = measure(baseline, "KILL");
    let meathook = Command::new(example())
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("example");
    let (cpu, rss) = measure(meathook, "TERM");
    let metrics = std::fs::read_to_string(&textfile).unwrap_or_default();
    let _ = fake.kill();
    let _ = fake.wait();
    let _ = std::fs::remove_dir_all(&dir);

    figure("seconds", seconds() as f64, "s", "60");
    figure(
        "peak_rss_mib",
        rss as f64 / (1 << 20) as f64,
        "MiB",
        "<= 20",
    );
    figure("cpu_percent_of_one_core", cpu * 100.0, "%", "<= 2");
    figure(
        "baseline_peak_rss_mib",
        base_rss as f64 / (1 << 20) as f64,
        "MiB",
        "bare reqwest + nea-rs polling loop",
    );
    figure(
        "baseline_cpu_percent",
        base_cpu * 100.0,
        "%",
        "bare polling loop",
    );
    figure("rss_vs_baseline", rss as f64 / base_rss as f64, "x", "");
    figure("cpu_vs_baseline", cpu / base_cpu.max(1e-9), "x", "");
    figure(
        "tick_lateness_p50_ms",
        quantile(&metrics, 0.5) * 1000.0,
        "ms (bucket bound)",
        "",
    );
    figure(
        "tick_lateness_p99_ms",
        quantile(&metrics, 0.99) * 1000.0,
        "ms (bucket bound)",
        "<= 50",
    );
}

async fn baseline(base_url: String) {
    let api = nea_rs::Api::new().base_url(base_url);
    let client = reqwest::Client::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        let a = api
            .weather_readings()
            .air_temperature()
            .send_with(&client)
            .await;
        let r = api.weather_readings().rainfall().send_with(&client).await;
        let h = api
            .weather_readings()
            .relative_humidity()
            .send_with(&client)
            .await;
        std::hint::black_box((a.is_ok(), r.is_ok(), h.is_ok()));
    }
}

fn main() {
    let role = std::env::var(ROLE).unwrap_or_default();
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    };
    match role.as_str() {
        "fake" => runtime().block_on(async {
            let fake = FakeNea::start(FakeNeaConfig {
                stations: 60,
                ..FakeNeaConfig::default()
            })
            .await
            .expect("fake");
            println!("{}", fake.base_url());
            std::future::pending::<()>().await;
        }),
        "baseline" => {
            let base_url = std::env::args().nth(1).expect("base url");
            runtime().block_on(baseline(base_url));
        }
        _ => orchestrate(),
    }
}
