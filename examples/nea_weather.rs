//! The reference consumer: Singapore NEA weather readings, polled by three
//! pipelines, spooled durably, and landed as hourly parquet files in a local
//! dataset directory — or, with `[sink.huggingface]` and `HF_TOKEN`, in a
//! HuggingFace dataset.
//!
//! ```sh
//! cargo run --example nea_weather -- examples/meathook.toml
//! cargo run --example nea_weather -- --check examples/meathook.toml   # validate only
//! cargo run --example nea_weather -- --check --probe examples/meathook.toml   # and reach the destination
//! cargo run --example nea_weather -- --once examples/meathook.toml    # poll once, print, write nothing
//! ```
//!
//! Exit codes: 0 after a clean drain, 2 for a configuration or usage error
//! (nothing is started), 130 when a second signal cut the drain short, 1
//! for any other failure (with `--once`: a poll failed; with `--probe`: a
//! place the job writes to could not be reached).

#[path = "nea_weather/catalog.rs"]
mod catalog;
#[path = "nea_weather/config.rs"]
mod config;
#[path = "nea_weather/once.rs"]
mod once;
#[path = "nea_weather/reading.rs"]
mod reading;

use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use meathook::contracts::Deliveries;
use meathook::hf::HubCompactor;
use meathook::parquet::{
    CompactionReport, Compactor, Destination, FileSinkBuilder, StoreCompactor,
};
use meathook::runtime::{MeathookBuilder, SataySender, Task, TaskError};
use meathook::{
    BoxSink, Drain, FlushPolicy, HfSink, Meathook, ParquetEncoder, Pipeline, RuntimeError,
    SatayCollector, SatayError, SinkExt as _,
};

use config::{CompactionPlace, Config, DrainMode};
use reading::Reading;

fn readings(snapshots: Vec<nea_rs::NeaReadingSnapshot>, unit: &str) -> Vec<Reading> {
    snapshots
        .into_iter()
        .flat_map(|snapshot| {
            let at = snapshot.timestamp;
            snapshot.data.into_iter().map(move |r| Reading {
                station_id: r.station_id.to_string(),
                timestamp: at,
                value: r.value,
                unit: unit.to_owned(),
            })
        })
        .collect()
}

/// One poll of an NEA station-readings API: the readings of a 2xx answer.
type Poll = Pin<Box<dyn Future<Output = Result<Vec<Reading>, SatayError>> + Send>>;

/// How a pipeline polls its API.
type Request = fn(nea_rs::Api, SataySender) -> Poll;

/// Makes the terminal sink of the pipeline it is given the name of: a
/// `FileSink` or an `HfSink`, chosen from the configuration.
type Terminal = Arc<dyn Fn(&str) -> BoxSink<Reading> + Send + Sync>;

/// The request of the NEA API `key`. The three APIs differ only in the
/// action and its response type.
fn request(key: &str) -> Option<Request> {
    let request: Request = match key {
        "air_temperature" => |api, sender| {
            Box::pin(async move {
                let answer = sender.send(api.weather_readings().air_temperature());
                Ok(match answer.await? {
                    nea_rs::AirTemperatureOperationResponse::Ok(ok) => {
                        readings(ok.data.readings, ok.data.reading_unit.as_str())
                    }
                    _ => Vec::new(),
                })
            })
        },
        "rainfall" => |api, sender| {
            Box::pin(async move {
                let answer = sender.send(api.weather_readings().rainfall());
                Ok(match answer.await? {
                    nea_rs::RainfallOperationResponse::Ok(ok) => {
                        readings(ok.data.readings, ok.data.reading_unit.as_str())
                    }
                    _ => Vec::new(),
                })
            })
        },
        "relative_humidity" => |api, sender| {
            Box::pin(async move {
                let answer = sender.send(api.weather_readings().relative_humidity());
                Ok(match answer.await? {
                    nea_rs::RelativeHumidityOperationResponse::Ok(ok) => {
                        readings(ok.data.readings, ok.data.reading_unit.as_str())
                    }
                    _ => Vec::new(),
                })
            })
        },
        _ => return None,
    };
    Some(request)
}

/// What every pipeline's factory needs, cloned into each.
#[derive(Clone)]
struct Shared {
    client: reqwest::Client,
    api: nea_rs::Api,
    spool_dir: PathBuf,
    flush: FlushPolicy,
    terminal: Terminal,
    /// The catalog's hook, for the compaction task.
    deliveries: Deliveries,
    /// What the `HfSink`s are made of, with `[sink.huggingface]`.
    hub: Option<HubSetup>,
}

/// What makes a reading the same reading: NEA serves each one for a while.
fn reading_key(r: &Reading) -> (String, time::OffsetDateTime) {
    (r.station_id.clone(), r.timestamp)
}

/// The collector of pipeline `name`, polling with `request`.
fn collector(
    shared: &Shared,
    name: &str,
    request: Request,
) -> impl meathook::Collector<Record = Reading, Error = SatayError> + use<> {
    let api = shared.api.clone();
    SatayCollector::new(
        name.to_owned(),
        shared.client.clone(),
        move |sender| request(api.clone(), sender),
        std::convert::identity,
    )
}

/// Adds one pipeline that polls with `request` and spools what it collects
/// in front of the terminal sink the configuration chose.
fn add(
    builder: MeathookBuilder,
    shared: &Shared,
    name: String,
    interval: Duration,
    request: Request,
) -> MeathookBuilder {
    let shared = shared.clone();
    builder.pipeline(move || {
        // Rebuilt after a panic: a fresh client stack and spool recovery.
        let collector = collector(&shared, &name, request);
        let stack = (shared.terminal)(&name).spooled(shared.spool_dir.join(&name), shared.flush);
        // The dedupe memory survives restarts, beside the pipeline's spool.
        let dedupe = shared.spool_dir.join(format!("{name}.dedupe"));
        Pipeline::new(collector, stack, interval)
            .with_jitter(interval.min(Duration::from_secs(2)) / 4)
            .with_key_fn(reading_key)
            .with_dedupe_file(dedupe)
    })
}

/// What the example's `HfSink`s are made of: `[sink.huggingface]`, the
/// HTTP client, the token, where scratch files go and the catalog's hook.
#[derive(Clone)]
struct HubSetup {
    hf: config::HuggingFace,
    client: reqwest::Client,
    token: meathook::hf::HfToken,
    spool_dir: PathBuf,
    deliveries: Deliveries,
}

impl HubSetup {
    /// A sink for the dataset; `name` names its scratch directory (each
    /// pipeline its own: a sink clears stale scratch files when it opens).
    fn sink(&self, name: &str) -> HfSink<Reading> {
        let hf = &self.hf;
        let mut sink = HfSink::new(self.client.clone(), hf.repo.clone(), self.token.clone())
            .with_branch(hf.branch.clone())
            .with_commit_budget(hf.commits_per_hour, Duration::from_secs(3600))
            .with_scratch_dir(self.spool_dir.join(format!("{name}.scratch")))
            .with_deliveries(self.deliveries.clone());
        if let Some(endpoint) = &hf.endpoint {
            sink = sink.with_endpoint(endpoint.clone());
        }
        if hf.create {
            sink = sink.with_create_if_missing(hf.private);
        }
        if let Some(prefix) = &hf.path_prefix {
            sink = sink.with_path_prefix(prefix.clone());
        }
        sink.with_layout(hf.layout.layout())
    }
}

/// Makes each pipeline's `HfSink` from `[sink.huggingface]`.
fn hub_sinks(setup: HubSetup) -> Terminal {
    Arc::new(move |name: &str| BoxSink::new(setup.sink(name)))
}

/// Makes each pipeline's `FileSink` from `[sink.files]`.
fn file_sinks(
    url: &str,
    destination: &Destination,
    layout: meathook::files::layout::Layout,
    deliveries: &meathook::contracts::Deliveries,
) -> Terminal {
    let (url, destination, deliveries) = (url.to_owned(), destination.clone(), deliveries.clone());
    Arc::new(move |_: &str| {
        // Both were checked when the configuration was loaded.
        let encoder =
            ParquetEncoder::<Reading>::new().unwrap_or_else(|e| panic!("the Reading schema: {e}"));
        let sink = FileSinkBuilder::new(url.clone())
            .with_destination(destination.clone())
            .with_layout(layout)
            .with_deliveries(deliveries.clone())
            .build(encoder)
            .unwrap_or_else(|e| panic!("destination {url}: {e}"));
        BoxSink::new(sink)
    })
}

/// What every pipeline shares: the API client, the spool's windows and the
/// terminal sink chosen by the configuration.
fn shared(
    config: &Config,
    api_key: Option<String>,
    hf_token: Option<meathook::hf::HfToken>,
    deliveries: &meathook::contracts::Deliveries,
) -> Result<Shared, String> {
    let mut api = nea_rs::Api::new();
    if let Some(base) = &config.api.base_url {
        api = api.base_url(base.clone());
    }
    if let Some(key) = api_key {
        api = api.x_api_key(key);
    }
    let flush = match config.flush.max_records {
        Some(max) => FlushPolicy::new(config.flush.every, max),
        None => FlushPolicy::every(config.flush.every),
    }
    .map_err(|e| e.to_string())?;
    let url = config.destination();
    let destination = Destination::parse(&url).map_err(|e| e.to_string())?;
    ParquetEncoder::<Reading>::new().map_err(|e| format!("the Reading schema: {e}"))?;
    // The terminal sink every pipeline delivers to, chosen here once.
    let (terminal, hub) = match (&config.sink.huggingface, &hf_token) {
        (Some(hf), Some(token)) => {
            // Uploads of large windows take longer than one API call.
            let client = reqwest::Client::builder()
                .build()
                .map_err(|e| format!("http client: {e}"))?;
            let setup = HubSetup {
                hf: hf.clone(),
                client,
                token: token.clone(),
                spool_dir: config.spool_dir.clone(),
                deliveries: deliveries.clone(),
            };
            (hub_sinks(setup.clone()), Some(setup))
        }
        (Some(_), None) => return Err("[sink.huggingface] needs HF_TOKEN".into()),
        (None, _) => (
            file_sinks(&url, &destination, config.layout(), deliveries),
            None,
        ),
    };
    Ok(Shared {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("http client: {e}"))?,
        api,
        spool_dir: config.spool_dir.clone(),
        flush,
        terminal,
        deliveries: deliveries.clone(),
        hub,
    })
}

/// The runtime with one pipeline per configured collector.
fn build(
    builder: MeathookBuilder,
    config: &Config,
    shared: &Shared,
    catalog: &catalog::Catalog,
) -> Result<MeathookBuilder, String> {
    let drain = match config.shutdown.drain {
        DrainMode::Everything => Drain::Everything,
        DrainMode::KeepActiveWindow => Drain::KeepActiveWindow,
    };
    let mut builder = builder
        .with_drain(drain)
        .with_drain_deadline(config.shutdown.deadline);
    if let Some(addr) = config.metrics.addr {
        builder = builder.with_metrics_addr(addr);
    }
    if let Some(path) = &config.metrics.textfile {
        builder = builder.with_metrics_textfile(path, Duration::from_secs(15));
    }
    builder.telemetry().watch_catalog(catalog.stats());
    if let Some(place) = config.compaction_place() {
        let telemetry = builder.telemetry();
        builder = builder.task(compaction(place, &config.compaction, shared, telemetry)?);
    }
    for (key, collector) in &config.collectors {
        let name = collector.name.clone().unwrap_or_else(|| key.clone());
        let request = request(key).ok_or_else(|| format!("unknown collector {key}"))?;
        builder = add(builder, shared, name, collector.interval, request);
    }
    Ok(builder)
}

/// The scheduled task that compacts each finished day of the dataset into
/// one file per pipeline, and records it in the catalog: in a local
/// directory, an object store, or the HuggingFace dataset (whose file
/// counts it also exports as metrics).
fn compaction(
    place: CompactionPlace,
    settings: &config::Compaction,
    shared: &Shared,
    telemetry: meathook::runtime::Telemetry,
) -> Result<Task, String> {
    let horizon = time::Duration::try_from(settings.horizon).unwrap_or(time::Duration::DAY);
    let deliveries = shared.deliveries.clone();
    let hub = shared.hub.clone();
    // The Hub's compactor is made once (its start-up checks run once); the
    // history is squashed, if asked, one interval after the process
    // started and then every interval.
    let hub_compactor: Arc<tokio::sync::Mutex<Option<HubCompactor>>> = Arc::default();
    let squash = settings.squash_history;
    let squashed = Arc::new(std::sync::Mutex::new(tokio::time::Instant::now()));
    if matches!(place, CompactionPlace::Hub) && hub.is_none() {
        return Err("compaction on the Hub needs [sink.huggingface]".into());
    }
    let place = Arc::new(place);
    Ok(Task::every("compaction", settings.every, move || {
        let (place, deliveries, hub) = (Arc::clone(&place), deliveries.clone(), hub.clone());
        let (hub_compactor, telemetry) = (Arc::clone(&hub_compactor), telemetry.clone());
        let squashed = Arc::clone(&squashed);
        async move {
            let now = time::OffsetDateTime::now_utc();
            match &*place {
                CompactionPlace::Local(root) => {
                    let root = root.clone();
                    let report: CompactionReport = tokio::task::spawn_blocking(move || {
                        Compactor::local(root)
                            .with_horizon(horizon)
                            .with_deliveries(deliveries)
                            .run(now)
                    })
                    .await
                    .map_err(|e| TaskError::from(e.to_string()))??;
                    logged(
                        &report.compacted,
                        report
                            .failed
                            .iter()
                            .map(|(f, e)| (f, e as &(dyn std::error::Error + 'static))),
                    )
                }
                CompactionPlace::Store(destination) => {
                    let report = StoreCompactor::new(destination)?
                        .with_horizon(horizon)
                        .with_deliveries(deliveries)
                        .run(now)
                        .await?;
                    logged(
                        &report.compacted,
                        report
                            .failed
                            .iter()
                            .map(|(f, e)| (f, e as &(dyn std::error::Error + 'static))),
                    )
                }
                CompactionPlace::Hub => {
                    let mut slot = hub_compactor.lock().await;
                    if slot.is_none() {
                        let setup = hub.as_ref().ok_or("no [sink.huggingface]")?;
                        let compactor = setup.sink("compaction").compactor().await?;
                        *slot = Some(compactor.with_horizon(horizon));
                    }
                    let Some(compactor) = slot.as_mut() else {
                        return Err(TaskError::from("no compactor"));
                    };
                    let report = compactor.run(now).await?;
                    let due = squash
                        .is_some_and(|every| squashed.lock().is_ok_and(|at| at.elapsed() >= every));
                    if due {
                        compactor.squash_history("").await?;
                        if let Ok(mut at) = squashed.lock() {
                            *at = tokio::time::Instant::now();
                        }
                    }
                    let files = &report.files;
                    telemetry.note_dataset_files(
                        compactor.destination(),
                        files.files,
                        &files.by_pipeline,
                        files.fullest_folder.as_ref().map_or(0, |(_, n)| *n),
                    );
                    logged(
                        &report.compacted,
                        report
                            .failed
                            .iter()
                            .map(|(f, e)| (f, e as &(dyn std::error::Error + 'static))),
                    )
                }
            }
        }
    }))
}

/// Logs what a compaction run did; an error naming how many folders failed.
fn logged<'a>(
    compacted: &[meathook::parquet::Compacted],
    failed: impl Iterator<Item = (&'a String, &'a (dyn std::error::Error + 'static))>,
) -> Result<(), TaskError> {
    for done in compacted {
        tracing::info!(
            folder = %done.folder,
            file = %done.file,
            replaced = done.replaced,
            rows = done.rows,
            bytes_before = done.bytes_before,
            bytes_after = done.bytes_after,
            "compacted"
        );
    }
    let mut failures = 0;
    for (folder, error) in failed {
        failures += 1;
        tracing::warn!(%folder, error = %meathook::contracts::ErrorChain(error), "not compacted");
    }
    match failures {
        0 => Ok(()),
        n => Err(TaskError::from(format!(
            "{n} day folders could not be compacted (see the warnings)"
        ))),
    }
}

/// Probes the directory or object-store URL `url`.
async fn reach(url: &str) -> Result<(), String> {
    match Destination::parse(url) {
        Ok(d) => d
            .probe()
            .await
            .map_err(|e| meathook::contracts::ErrorChain(&e).to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// `--check --probe`: reaches each place the job writes to, changing
/// nothing, and says how each went; exit status 1 if any cannot be reached.
async fn probe(
    config: &Config,
    hf_token: Option<meathook::hf::HfToken>,
    catalog: &catalog::Catalog,
) -> ExitCode {
    use meathook::contracts::ErrorChain;
    let mut checks = Vec::new();
    let spool = config.spool_dir.to_string_lossy().into_owned();
    checks.push((format!("spool directory {spool}"), reach(&spool).await));
    match (&config.sink.huggingface, hf_token) {
        (Some(hf), Some(token)) => {
            let mut sink = HfSink::<Reading>::new(reqwest::Client::new(), hf.repo.clone(), token)
                .with_branch(hf.branch.clone());
            if let Some(endpoint) = &hf.endpoint {
                sink = sink.with_endpoint(endpoint.clone());
            }
            if hf.create {
                sink = sink.with_create_if_missing(hf.private);
            }
            let reached = sink.probe().await.map_err(|e| ErrorChain(&e).to_string());
            checks.push((
                format!("huggingface dataset {} (branch {})", hf.repo, hf.branch),
                reached,
            ));
        }
        // Loading the configuration refused this already.
        (Some(_), None) => checks.push((
            "huggingface dataset".into(),
            Err("HF_TOKEN is not set".into()),
        )),
        (None, _) => {
            let url = config.destination();
            let reached = reach(&url).await;
            checks.push((format!("destination {url}"), reached));
        }
    }
    checks.extend(catalog.probe().await);
    let mut failed = false;
    for (what, reached) in checks {
        match reached {
            Ok(()) => eprintln!("nea_weather: probe: {what}: ok"),
            Err(why) => {
                failed = true;
                eprintln!("nea_weather: probe: {what}: FAILED: {why}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `--once`: every configured collector in a pipeline whose sink stack is
/// never opened, and where their files land.
fn trial(
    config: &Config,
    shared: &Shared,
) -> Result<
    (
        Vec<once::Target<impl meathook::Collector<Record = Reading> + use<>>>,
        once::Landing,
    ),
    String,
> {
    let mut targets = Vec::new();
    for (key, c) in &config.collectors {
        let name = c.name.clone().unwrap_or_else(|| key.clone());
        let request = request(key).ok_or_else(|| format!("unknown collector {key}"))?;
        let pipeline = Pipeline::new(
            collector(shared, &name, request),
            (shared.terminal)(&name),
            c.interval,
        )
        .with_key_fn(reading_key);
        targets.push(once::Target {
            pipeline,
            interval: c.interval,
        });
    }
    let destination = match &config.sink.huggingface {
        Some(hf) => {
            let prefix = hf.path_prefix.as_deref().unwrap_or("").trim_matches('/');
            let at = format!("hf://datasets/{}@{}", hf.repo, hf.branch);
            if prefix.is_empty() {
                at
            } else {
                format!("{at}/{prefix}")
            }
        }
        None => config.destination(),
    };
    Ok((
        targets,
        once::Landing {
            destination,
            window: config.flush.every,
        },
    ))
}

/// Polls Singapore's NEA weather APIs into hourly parquet files, spooled
/// durably on the way.
#[derive(Debug, clap::Parser)]
#[command(
    name = "nea_weather",
    version,
    after_help = "Exit codes: 0 after a clean drain, 2 for a configuration or usage error \
                  (nothing is started), 130 when a second signal cut the drain short, \
                  1 for any other failure (with --once: a poll failed; with --probe: a place \
                  the job writes to could not be reached).\n\
                  Environment: HF_TOKEN for [sink.huggingface], X_API_KEY for the NEA API, \
                  MEATHOOK_SHARD for the shard of collectors to run (with `shard = N` in \
                  [collectors.*]), RUST_LOG for the log filter (default info)."
)]
struct Args {
    /// The configuration file.
    #[arg(default_value = "examples/meathook.toml")]
    config: PathBuf,
    /// Check the configuration and exit.
    #[arg(long, conflicts_with = "once")]
    check: bool,
    /// With --check: also reach what the job writes to — the destination
    /// (or the HuggingFace dataset, with the token's write access), the
    /// spool directory, the catalog's database — changing nothing.
    #[arg(long, requires = "check")]
    probe: bool,
    /// Poll each collector once (or N times, one interval apart, with
    /// --once=N), print the records, the window and the path each batch
    /// would land at, and exit; nothing is written.
    #[arg(long, value_name = "N", num_args = 0..=1, require_equals = true,
          default_missing_value = "1", value_parser = clap::value_parser!(u32).range(1..))]
    once: Option<u32>,
    /// How --once prints: a table per batch, or one JSON object per record.
    #[arg(long, value_enum, default_value_t = once::Format::Table, requires = "once")]
    format: once::Format,
}

fn main() -> ExitCode {
    let args = <Args as clap::Parser>::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();

    let path = args.config;
    let hf_token = std::env::var("HF_TOKEN").ok();
    let config = match Config::load(&path, hf_token.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("nea_weather: {e}");
            return ExitCode::from(2);
        }
    };
    let catalog = match catalog::Catalog::new(&config.catalog, &config.spool_dir) {
        Ok(catalog) => catalog,
        Err(e) => {
            eprintln!("nea_weather: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    // The terminal sinks report each delivered file to the catalog, and
    // through the runtime's hook to the status page's grid.
    let runtime_builder = Meathook::builder();
    let deliveries = runtime_builder.telemetry().deliveries(catalog.deliveries());
    let shared = match shared(
        &config,
        std::env::var("X_API_KEY").ok().filter(|k| !k.is_empty()),
        hf_token.map(meathook::hf::HfToken::new),
        &deliveries,
    ) {
        Ok(shared) => shared,
        Err(e) => {
            eprintln!("nea_weather: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // File IO takes at most MAX_BLOCKING blocking threads at once; the
        // rest is for DNS lookups. Many pipelines then never grow the pool.
        .max_blocking_threads(meathook::contracts::MAX_BLOCKING + 16)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nea_weather: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(polls) = args.once {
        return match trial(&config, &shared) {
            Ok((targets, landing)) => {
                runtime.block_on(once::run(targets, &landing, polls, args.format))
            }
            Err(e) => {
                eprintln!("nea_weather: {}: {e}", path.display());
                ExitCode::from(2)
            }
        };
    }
    let builder = match build(runtime_builder, &config, &shared, &catalog) {
        Ok(builder) => builder,
        Err(e) => {
            eprintln!("nea_weather: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    if args.check {
        eprintln!("nea_weather: {} is valid", path.display());
        if args.probe {
            let hf_token = std::env::var("HF_TOKEN")
                .ok()
                .map(meathook::hf::HfToken::new);
            return runtime.block_on(probe(&config, hf_token, &catalog));
        }
        return ExitCode::SUCCESS;
    }
    let destination = match &config.sink.huggingface {
        Some(hf) => format!("huggingface dataset {} (branch {})", hf.repo, hf.branch),
        None => config.destination(),
    };
    tracing::info!(
        config = %path.display(),
        %destination,
        spool = %config.spool_dir.display(),
        catalog = %catalog.describe(),
        "starting"
    );
    if let Err(e) = catalog.open() {
        eprintln!("nea_weather: {e}");
        return ExitCode::FAILURE;
    }
    // The status page's grid starts with the last day the catalog holds.
    let telemetry = builder.telemetry();
    let since = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    for (pipeline, start, end) in catalog.windows_since(since) {
        telemetry.note_delivered_window(&pipeline, start, end);
    }
    let run = async {
        let backfill = catalog.start();
        let result = builder.run().await;
        backfill.stop().await;
        result
    };
    match runtime.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(RuntimeError::Interrupted) => ExitCode::from(130),
        Err(e) => {
            eprintln!("nea_weather: {e}");
            ExitCode::FAILURE
        }
    }
}
