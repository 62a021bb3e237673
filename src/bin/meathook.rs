//! `meathook compact DATASET`: compacts a dataset by hand — each finished
//! day's files of a pipeline into one file — as the runtime's scheduled
//! task does (see `meathook::parquet::compact`): a local directory, or an
//! object store (`s3://`, `gs://`, `az://` with their features; not
//! atomic there, see `StoreCompactor`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use meathook::catalog::Manifest;
use meathook::files::layout::Layout;
use meathook::parquet::{
    CompactError, Compacted, CompactionReport, Compactor, Destination, StoreCompactor,
};

const EXIT_STATUS: &str = "\
Exit status:
  0  done (including: nothing to compact)
  1  a folder could not be compacted or recorded, or the directory could not be read
  2  usage error: an unknown flag, a bad value, --date without --pipeline

A closed pipe (| head) ends the output quietly.";

/// Tools for meathook datasets.
#[derive(Debug, Parser)]
#[command(name = "meathook", version, after_help = EXIT_STATUS)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compact each finished day of a dataset into one file per pipeline (a
    /// directory, an object store, or hf://datasets/NAMESPACE/NAME[@BRANCH]
    /// with HF_TOKEN, and HF_ENDPOINT for another endpoint than the Hub's):
    /// tab-separated lines (folder, file, files replaced, rows, bytes
    /// before, bytes after), or one JSON document with --json
    #[command(after_help = EXIT_STATUS)]
    Compact {
        /// The dataset: a directory (the one holding data/), an object store
        /// URL (s3://bucket/prefix, gs://…, az://…), or
        /// hf://datasets/NAMESPACE/NAME[@BRANCH][/PREFIX]
        dataset: String,
        /// The folders' layout, to find --date's folder: folders or hive
        #[arg(long, value_name = "LAYOUT", value_parser = parse_layout, default_value = "folders")]
        layout: Layout,
        /// Compact this pipeline's day only (with --date), whatever the horizon
        #[arg(long, value_name = "NAME", requires = "date")]
        pipeline: Option<String>,
        /// The UTC day to compact (YYYY-MM-DD; with --pipeline)
        #[arg(long, value_name = "DATE", value_parser = parse_date, requires = "pipeline")]
        date: Option<time::Date>,
        /// How long after a day ends it is compacted: 90s, 30m, 2h, 1d
        #[arg(long, value_name = "LEN", value_parser = parse_len, default_value = "2h")]
        horizon: time::Duration,
        /// With a dataset on the Hub: the repository's commit budget, shared
        /// with its other writers (the Hub allows about 128 an hour)
        #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
        commits_per_hour: u32,
        /// Record each compacted file in this JSON-lines delivery manifest
        #[arg(long, value_name = "FILE")]
        manifest: Option<PathBuf>,
        /// Print one JSON document
        #[arg(long)]
        json: bool,
    },
}

fn parse_date(text: &str) -> Result<time::Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, format).map_err(|_| format!("{text:?} is not a date: write YYYY-MM-DD"))
}

fn parse_len(text: &str) -> Result<time::Duration, String> {
    let bad =
        || format!("{text:?} is not a length: a whole number with s, m, h or d (90s, 30m, 2h, 1d)");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(scale)
        .map(time::Duration::seconds)
        .ok_or_else(bad)
}

fn parse_layout(text: &str) -> Result<Layout, String> {
    match text {
        "folders" => Ok(Layout::Folders),
        "hive" => Ok(Layout::Hive),
        _ => Err(format!("{text:?} is not a layout: folders or hive")),
    }
}

/// What a compaction by hand did, whatever the dataset.
#[derive(Default)]
struct Outcome {
    compacted: Vec<Compacted>,
    unchanged: usize,
    /// Each folder that failed, with its error and causes on one line.
    failed: Vec<(String, String)>,
}

/// What is asked of every kind of dataset.
struct Ask {
    layout: Layout,
    day: Option<(String, time::Date)>,
    horizon: time::Duration,
    /// Read only with a dataset on the Hub.
    #[cfg_attr(not(feature = "huggingface"), allow(dead_code))]
    commits_per_hour: u32,
    deliveries: Option<meathook::contracts::Deliveries>,
}

fn main() -> ExitCode {
    let Command::Compact {
        dataset,
        layout,
        pipeline,
        date,
        horizon,
        commits_per_hour,
        manifest,
        json,
    } = Cli::parse().command;
    let deliveries = match manifest.as_deref().map(Manifest::open).transpose() {
        Ok(manifest) => manifest.map(|m| m.deliveries()),
        Err(e) => {
            eprintln!("meathook compact: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ask = Ask {
        layout,
        day: pipeline.zip(date),
        horizon,
        commits_per_hour,
        deliveries,
    };
    let outcome = if let Some(repo) = dataset.strip_prefix("hf://datasets/") {
        hub(repo, ask)
    } else {
        match Destination::parse(&dataset) {
            Ok(destination) => files(&destination, ask),
            Err(e) => Err((2, e.to_string())),
        }
    };
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err((status, message)) => {
            eprintln!("meathook compact: {message}");
            return ExitCode::from(status);
        }
    };
    for (folder, error) in &outcome.failed {
        eprintln!("meathook compact: {folder}: {error}");
    }
    let shown = if json {
        print_json(&outcome)
    } else {
        print_lines(&outcome.compacted)
    };
    // A closed pipe is the reader's choice, not a failure.
    if let Err(e) = shown
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("meathook compact: writing the answer: {e}");
        return ExitCode::FAILURE;
    }
    if outcome.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// An error and its causes, on one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    meathook::contracts::ErrorChain(error).to_string()
}

/// The outcome of a run, or of one day (whose failure is the day's).
fn outcome(
    result: Result<CompactionReport, CompactError>,
    day: &Option<(String, time::Date)>,
) -> Result<Outcome, (u8, String)> {
    match (result, day) {
        (Ok(report), _) => Ok(Outcome {
            compacted: report.compacted,
            unchanged: report.unchanged,
            failed: report
                .failed
                .iter()
                .map(|(folder, e)| (folder.clone(), chain(e)))
                .collect(),
        }),
        (Err(e), Some((pipeline, date))) => Ok(Outcome {
            failed: vec![(format!("{pipeline} {date}"), chain(&e))],
            ..Outcome::default()
        }),
        (Err(e), None) => Err((1, chain(&e))),
    }
}

/// A local directory or an object store.
fn files(destination: &Destination, ask: Ask) -> Result<Outcome, (u8, String)> {
    let now = time::OffsetDateTime::now_utc();
    match destination {
        Destination::Local { root } => {
            if !root.is_dir() {
                return Err((1, format!("{} is not a directory", root.display())));
            }
            let mut compactor = Compactor::local(root)
                .with_horizon(ask.horizon)
                .with_layout(ask.layout);
            if let Some(deliveries) = ask.deliveries {
                compactor = compactor.with_deliveries(deliveries);
            }
            let result = match &ask.day {
                Some((pipeline, date)) => compactor.compact_day(pipeline, *date).map(one),
                None => compactor.run(now),
            };
            outcome(result, &ask.day)
        }
        Destination::Remote { .. } => {
            let result = runtime()?.block_on(async {
                let mut compactor = StoreCompactor::new(destination)?
                    .with_horizon(ask.horizon)
                    .with_layout(ask.layout);
                if let Some(deliveries) = ask.deliveries.clone() {
                    compactor = compactor.with_deliveries(deliveries);
                }
                match &ask.day {
                    Some((pipeline, date)) => compactor.compact_day(pipeline, *date).await.map(one),
                    None => compactor.run(now).await,
                }
            });
            outcome(result, &ask.day)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, (u8, String)> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| (1, format!("cannot start the async runtime: {e}")))
}

/// A dataset on the Hub: `NS/NAME[@BRANCH][/PREFIX]`, with the token in
/// `HF_TOKEN` and the endpoint in `HF_ENDPOINT` (default the Hub's).
#[cfg(feature = "huggingface")]
fn hub(repo: &str, ask: Ask) -> Result<Outcome, (u8, String)> {
    use meathook::hf::HfSink;

    let mut segments = repo.splitn(3, '/');
    let (namespace, name) = match (segments.next(), segments.next()) {
        (Some(ns), Some(name)) => (ns, name),
        _ => {
            return Err((
                2,
                format!(
                    "hf://datasets/{repo}: write hf://datasets/NAMESPACE/NAME[@BRANCH][/PREFIX]"
                ),
            ));
        }
    };
    let prefix = segments.next().unwrap_or_default();
    let (name, branch) = name.split_once('@').unwrap_or((name, "main"));
    let Some(token) = std::env::var("HF_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    else {
        return Err((
            2,
            format!(
                "hf://datasets/{repo}: HF_TOKEN is not set: export a token with write access to the dataset"
            ),
        ));
    };
    let client = reqwest::Client::new();
    // The compactor needs no encoder of records; JSON lines of any value
    // stand in for the sink's.
    let mut sink = HfSink::<serde_json::Value>::new(client, format!("{namespace}/{name}"), token)
        .with_encoder(meathook::JsonLinesEncoder::<serde_json::Value>::new())
        .with_branch(branch)
        .with_commit_budget(
            ask.commits_per_hour as usize,
            std::time::Duration::from_secs(3600),
        )
        .with_layout(ask.layout)
        .with_scratch_dir(std::env::temp_dir().join("meathook-compact"));
    if let Ok(endpoint) = std::env::var("HF_ENDPOINT") {
        sink = sink.with_endpoint(endpoint);
    }
    if !prefix.is_empty() {
        sink = sink.with_path_prefix(prefix);
    }
    if let Some(deliveries) = ask.deliveries.clone() {
        sink = sink.with_deliveries(deliveries);
    }
    let now = time::OffsetDateTime::now_utc();
    runtime()?.block_on(async {
        let mut compactor = sink
            .compactor()
            .await
            .map_err(|e| (1, chain(&e)))?
            .with_horizon(ask.horizon);
        match &ask.day {
            Some((pipeline, date)) => Ok(match compactor.compact_day(pipeline, *date).await {
                Ok(done) => Outcome {
                    unchanged: usize::from(done.is_none()),
                    compacted: done.into_iter().collect(),
                    ..Outcome::default()
                },
                Err(e) => Outcome {
                    failed: vec![(format!("{pipeline} {date}"), chain(&e))],
                    ..Outcome::default()
                },
            }),
            None => {
                let report = compactor.run(now).await.map_err(|e| (1, chain(&e)))?;
                Ok(Outcome {
                    compacted: report.compacted,
                    unchanged: report.unchanged,
                    failed: report
                        .failed
                        .iter()
                        .map(|(folder, e)| (folder.clone(), chain(e)))
                        .collect(),
                })
            }
        }
    })
}

#[cfg(not(feature = "huggingface"))]
fn hub(repo: &str, _: Ask) -> Result<Outcome, (u8, String)> {
    Err((
        2,
        format!(
            "hf://datasets/{repo}: this build has no HuggingFace support: build with --features huggingface"
        ),
    ))
}

/// The report of a one-day compaction.
fn one(done: Option<Compacted>) -> CompactionReport {
    CompactionReport {
        unchanged: usize::from(done.is_none()),
        compacted: done.into_iter().collect(),
        ..CompactionReport::default()
    }
}

fn print_lines(compacted: &[Compacted]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "folder\tfile\treplaced\trows\tbytes_before\tbytes_after"
    )?;
    for c in compacted {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}",
            c.folder, c.file, c.replaced, c.rows, c.bytes_before, c.bytes_after
        )?;
    }
    out.flush()
}

fn print_json(report: &Outcome) -> std::io::Result<()> {
    let compacted: Vec<serde_json::Value> = report
        .compacted
        .iter()
        .map(|c| {
            serde_json::json!({
                "folder": c.folder,
                "file": c.file,
                "replaced": c.replaced,
                "parts": c.parts,
                "rows": c.rows,
                "bytes_before": c.bytes_before,
                "bytes_after": c.bytes_after,
            })
        })
        .collect();
    let failed: Vec<serde_json::Value> = report
        .failed
        .iter()
        .map(|(folder, error)| serde_json::json!({"folder": folder, "error": error}))
        .collect();
    let document = serde_json::json!({
        "compacted": compacted,
        "unchanged": report.unchanged,
        "failed": failed,
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{document}")?;
    out.flush()
}
