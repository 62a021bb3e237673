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
    /// Compact each finished day of a dataset into one file per pipeline:
    /// tab-separated lines (folder, file, files replaced, rows, bytes
    /// before, bytes after), or one JSON document with --json
    #[command(after_help = EXIT_STATUS)]
    Compact {
        /// The dataset: a directory (the one holding data/), or an object
        /// store URL (s3://bucket/prefix, gs://…, az://…)
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

fn main() -> ExitCode {
    let Command::Compact {
        dataset,
        layout,
        pipeline,
        date,
        horizon,
        manifest,
        json,
    } = Cli::parse().command;
    let destination = match Destination::parse(&dataset) {
        Ok(destination) => destination,
        Err(e) => {
            eprintln!("meathook compact: {e}");
            return ExitCode::from(2);
        }
    };
    if let Destination::Local { root } = &destination
        && !root.is_dir()
    {
        eprintln!("meathook compact: {} is not a directory", root.display());
        return ExitCode::FAILURE;
    }
    let deliveries = match manifest.as_deref().map(Manifest::open).transpose() {
        Ok(manifest) => manifest.map(|m| m.deliveries()),
        Err(e) => {
            eprintln!("meathook compact: {e}");
            return ExitCode::FAILURE;
        }
    };
    let day = pipeline.zip(date);
    let outcome = match &destination {
        Destination::Local { root } => {
            let mut compactor = Compactor::local(root)
                .with_horizon(horizon)
                .with_layout(layout);
            if let Some(deliveries) = deliveries {
                compactor = compactor.with_deliveries(deliveries);
            }
            match &day {
                Some((pipeline, date)) => compactor.compact_day(pipeline, *date).map(one),
                None => compactor.run(time::OffsetDateTime::now_utc()),
            }
        }
        Destination::Remote { .. } => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("meathook compact: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(async {
                let mut compactor = StoreCompactor::new(&destination)?
                    .with_horizon(horizon)
                    .with_layout(layout);
                if let Some(deliveries) = deliveries {
                    compactor = compactor.with_deliveries(deliveries);
                }
                match &day {
                    Some((pipeline, date)) => compactor.compact_day(pipeline, *date).await.map(one),
                    None => compactor.run(time::OffsetDateTime::now_utc()).await,
                }
            })
        }
    };
    let report = match (outcome, &day) {
        (Ok(report), _) => report,
        (Err(e), Some((pipeline, date))) => CompactionReport {
            failed: vec![(format!("{pipeline} {date}"), e)],
            ..CompactionReport::default()
        },
        (Err(e), None) => {
            eprintln!("meathook compact: {}", meathook::contracts::ErrorChain(&e));
            return ExitCode::FAILURE;
        }
    };
    for (folder, error) in &report.failed {
        eprintln!(
            "meathook compact: {folder}: {}",
            meathook::contracts::ErrorChain(error)
        );
    }
    let shown = if json {
        print_json(&report)
    } else {
        print_lines(&report.compacted)
    };
    // A closed pipe is the reader's choice, not a failure.
    if let Err(e) = shown
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("meathook compact: writing the answer: {e}");
        return ExitCode::FAILURE;
    }
    if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
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

fn print_json(report: &CompactionReport) -> std::io::Result<()> {
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
        .map(|(folder, error): &(String, CompactError)| {
            serde_json::json!({
                "folder": folder,
                "error": meathook::contracts::ErrorChain(error).to_string(),
            })
        })
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
