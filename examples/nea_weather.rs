//! The reference consumer: Singapore NEA weather readings, polled by three
//! pipelines, spooled durably, and landed as hourly parquet files in a local
//! dataset directory — or, with `[sink.huggingface]` and `HF_TOKEN`, in a
//! HuggingFace dataset.
//!
//! ```sh
//! cargo run --example nea_weather -- examples/meathook.toml
//! cargo run --example nea_weather -- --check examples/meathook.toml   # validate only
//! ```
//!
//! Exit codes: 0 after a clean drain, 2 for a configuration error (nothing
//! is started), 130 when a second signal cut the drain short, 1 for any
//! other failure.

#[path = "nea_weather/catalog.rs"]
mod catalog;
#[path = "nea_weather/config.rs"]
mod config;
#[path = "nea_weather/reading.rs"]
mod reading;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use meathook::hf::HfSink;
use meathook::parquet::{Destination, FileSinkBuilder, ParquetEncoder};
use meathook::runtime::{
    Meathook, MeathookBuilder, Pipeline, RuntimeError, SatayCollector, SatayError, SataySender,
};
use meathook::spool::DiskSpool;
use meathook::{Drain, FlushPolicy, Sink, SinkExt as _};

use config::{Config, DrainMode};
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

/// What every pipeline's factory needs, cloned into each.
#[derive(Clone)]
struct Shared {
    client: reqwest::Client,
    api: nea_rs::Api,
    spool_dir: PathBuf,
    flush: FlushPolicy,
}

/// Adds one pipeline that polls with `make_request`, keeps what `flatten`
/// makes of each 2xx response, and spools it in front of what `terminal`
/// makes for the pipeline.
fn add<M, Fut, T, G, K, S>(
    builder: MeathookBuilder,
    shared: &Shared,
    name: String,
    interval: Duration,
    make_request: M,
    flatten: G,
    terminal: K,
) -> MeathookBuilder
where
    M: Fn(nea_rs::Api, SataySender) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<T, SatayError>> + Send + 'static,
    T: 'static,
    G: Fn(T) -> Vec<Reading> + Clone + Send + 'static,
    K: Fn(&str) -> S + Send + 'static,
    S: Sink<Reading>,
    DiskSpool<S, Reading>: Sink<Reading> + 'static,
{
    let shared = shared.clone();
    builder.pipeline(move || {
        // Rebuilt after a panic: a fresh client stack and spool recovery.
        let api = shared.api.clone();
        let make_request = make_request.clone();
        let collector = SatayCollector::new(
            name.clone(),
            shared.client.clone(),
            move |sender| make_request(api.clone(), sender),
            flatten.clone(),
        );
        let stack = terminal(&name).spooled(shared.spool_dir.join(&name), shared.flush);
        // The dedupe memory survives restarts, beside the pipeline's spool.
        let dedupe = shared.spool_dir.join(format!("{name}.dedupe"));
        Pipeline::new(collector, stack, interval)
            .with_jitter(interval.min(Duration::from_secs(2)) / 4)
            .with_key_fn(|r: &Reading| (r.station_id.clone(), r.timestamp))
            .with_dedupe_file(dedupe)
    })
}

/// Adds the pipeline of the NEA API `key`, delivering into what `terminal`
/// makes.
fn add_api<K, S>(
    builder: MeathookBuilder,
    shared: &Shared,
    key: &str,
    name: String,
    interval: Duration,
    terminal: K,
) -> Result<MeathookBuilder, String>
where
    K: Fn(&str) -> S + Send + 'static,
    S: Sink<Reading>,
    DiskSpool<S, Reading>: Sink<Reading> + 'static,
{
    // The three APIs differ only in the action and its response type.
    macro_rules! station_readings {
        ($action:ident, $response:ident) => {
            add(
                builder,
                shared,
                name,
                interval,
                |api, sender: SataySender| async move {
                    sender.send(api.weather_readings().$action()).await
                },
                |r: nea_rs::$response| match r {
                    nea_rs::$response::Ok(ok) => {
                        readings(ok.data.readings, ok.data.reading_unit.as_str())
                    }
                    _ => Vec::new(),
                },
                terminal,
            )
        };
    }
    Ok(match key {
        "air_temperature" => station_readings!(air_temperature, AirTemperatureOperationResponse),
        "rainfall" => station_readings!(rainfall, RainfallOperationResponse),
        "relative_humidity" => {
            station_readings!(relative_humidity, RelativeHumidityOperationResponse)
        }
        other => return Err(format!("unknown collector {other}")),
    })
}

/// Makes each pipeline's `HfSink` from `[sink.huggingface]`.
fn hub_sinks(
    hf: &config::HuggingFace,
    client: &reqwest::Client,
    token: &meathook::hf::HfToken,
    spool_dir: &std::path::Path,
    deliveries: &meathook::Deliveries,
) -> impl Fn(&str) -> HfSink<Reading> + Send + 'static {
    let (hf_repo, branch) = (hf.repo.clone(), hf.branch.clone());
    let (endpoint, prefix) = (hf.endpoint.clone(), hf.path_prefix.clone());
    let create = hf.create.then_some(hf.private);
    let budget = hf.commits_per_hour;
    let (client, token, spool_dir) = (client.clone(), token.clone(), spool_dir.to_path_buf());
    let deliveries = deliveries.clone();
    move |name: &str| {
        let mut sink = HfSink::new(client.clone(), hf_repo.clone(), token.clone())
            .branch(branch.clone())
            .commit_budget(budget, Duration::from_secs(3600))
            // Each pipeline its own scratch directory: a sink clears stale
            // scratch files when it opens.
            .scratch_dir(spool_dir.join(format!("{name}.scratch")))
            .with_deliveries(deliveries.clone());
        if let Some(endpoint) = &endpoint {
            sink = sink.endpoint(endpoint.clone());
        }
        if let Some(private) = create {
            sink = sink.create_if_missing(private);
        }
        if let Some(prefix) = &prefix {
            sink = sink.path_prefix(prefix.clone());
        }
        sink
    }
}

fn build(
    config: &Config,
    api_key: Option<String>,
    hf_token: Option<meathook::hf::HfToken>,
    catalog: &catalog::Catalog,
) -> Result<MeathookBuilder, String> {
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
    let shared = Shared {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("http client: {e}"))?,
        api,
        spool_dir: config.spool_dir.clone(),
        flush,
    };
    ParquetEncoder::<Reading>::new().map_err(|e| format!("the Reading schema: {e}"))?;
    // Uploads of large windows take longer than one API call.
    let hub_client = reqwest::Client::builder()
        .build()
        .map_err(|e| format!("http client: {e}"))?;

    let drain = match config.shutdown.drain {
        DrainMode::Everything => Drain::Everything,
        DrainMode::KeepActiveWindow => Drain::KeepActiveWindow,
    };
    let mut builder = Meathook::builder()
        .drain(drain)
        .drain_deadline(config.shutdown.deadline);
    if let Some(addr) = config.metrics.addr {
        builder = builder.metrics_addr(addr);
    }
    if let Some(path) = &config.metrics.textfile {
        builder = builder.metrics_textfile(path, Duration::from_secs(15));
    }
    builder.telemetry().watch_catalog(catalog.stats());
    for (key, collector) in &config.collectors {
        let name = collector.name.clone().unwrap_or_else(|| key.clone());
        let interval = collector.interval;
        builder = match (&config.sink.huggingface, &hf_token) {
            (Some(hf), Some(token)) => {
                let deliveries = catalog.deliveries();
                let sinks = hub_sinks(hf, &hub_client, token, &config.spool_dir, &deliveries);
                add_api(builder, &shared, key, name, interval, sinks)?
            }
            (Some(_), None) => return Err("[sink.huggingface] needs HF_TOKEN".into()),
            (None, _) => {
                let (url, destination) = (url.clone(), destination.clone());
                let deliveries = catalog.deliveries();
                let files = move |_: &str| {
                    // Both were checked when the configuration was loaded.
                    let encoder = ParquetEncoder::<Reading>::new()
                        .unwrap_or_else(|e| panic!("the Reading schema: {e}"));
                    FileSinkBuilder::new(url.clone())
                        .with_destination(destination.clone())
                        .with_deliveries(deliveries.clone())
                        .build(encoder)
                        .unwrap_or_else(|e| panic!("destination {url}: {e}"))
                };
                add_api(builder, &shared, key, name, interval, files)?
            }
        };
    }
    Ok(builder)
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();

    // `nea_weather [--check] [CONFIG]`: `--check` validates and exits.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let check_only = args.first().is_some_and(|a| a == "--check");
    if check_only {
        args.remove(0);
    }
    let path = args
        .first()
        .map_or_else(|| PathBuf::from("examples/meathook.toml"), PathBuf::from);
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
    let builder = match build(
        &config,
        std::env::var("X_API_KEY").ok().filter(|k| !k.is_empty()),
        hf_token.map(meathook::hf::HfToken::new),
        &catalog,
    ) {
        Ok(builder) => builder,
        Err(e) => {
            eprintln!("nea_weather: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    if check_only {
        eprintln!("nea_weather: {} is valid", path.display());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nea_weather: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
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
