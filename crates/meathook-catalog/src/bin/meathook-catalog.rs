//! `meathook-catalog list|gaps|totals|backfill`: the questions users ask of
//! the delivery catalog, answered from the manifest or from PostgreSQL, as
//! tab-separated lines with a header.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)] // a command-line tool: stdout is its interface

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use meathook_catalog::query::{self, DayTotal, Gap};
use meathook_catalog::{DeliveryRecord, MANIFEST_FILE};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const USAGE: &str = "\
usage: meathook-catalog <list|gaps|totals|backfill> [options]

  list      deliveries of --pipeline whose window starts in [--from, --to)
  gaps      windows of --window length in [--from, --to) with no delivery of --pipeline
  totals    files, rows and bytes per pipeline and UTC day (--pipeline optional)
  backfill  copy --manifest into --database once (needs the postgres feature)

options:
  --manifest FILE   the JSON-lines manifest (default: ./deliveries.jsonl, unless a database is given)
  --database URL    PostgreSQL connection string (default: $DATABASE_URL when no --manifest is given)
  --schema NAME     the catalog's schema in PostgreSQL (default: meathook)
  --pipeline NAME   the pipeline
  --from TIME       RFC 3339 (2026-12-01T10:00:00Z) or a UTC date (2026-12-01); default: 24 hours before --to
  --to TIME         the same forms; default: now
  --window LEN      gaps: window length: 90s, 5m, 1h, 1d (default: 1h)
";

#[derive(Debug, Default)]
struct Args {
    command: String,
    manifest: Option<PathBuf>,
    database: Option<String>,
    schema: Option<String>,
    pipeline: Option<String>,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    window: Option<Duration>,
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match parse(argv.into_iter()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("meathook-catalog: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("meathook-catalog: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meathook-catalog: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        command: it.next().ok_or("no command given")?,
        ..Args::default()
    };
    if !matches!(
        args.command.as_str(),
        "list" | "gaps" | "totals" | "backfill"
    ) {
        return Err(format!("unknown command {:?}", args.command));
    }
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--manifest" => args.manifest = Some(PathBuf::from(value()?)),
            "--database" => args.database = Some(value()?),
            "--schema" => args.schema = Some(value()?),
            "--pipeline" => args.pipeline = Some(value()?),
            "--from" => args.from = Some(parse_time(&value()?)?),
            "--to" => args.to = Some(parse_time(&value()?)?),
            "--window" => args.window = Some(parse_len(&value()?)?),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(args)
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, date_format)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| {
            format!("{text:?} is not a time: use RFC 3339 (2026-12-01T10:00:00Z) or a UTC date (2026-12-01)")
        })
}

fn parse_len(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "{text:?} is not a window length: use a whole number with s, m, h or d (90s, 5m, 1h, 1d)"
        )
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    match n.checked_mul(scale) {
        Some(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
        _ => Err(bad()),
    }
}

async fn run(args: Args) -> Result<(), String> {
    let to = args.to.unwrap_or_else(OffsetDateTime::now_utc);
    let from = args.from.unwrap_or(to - time::Duration::DAY);
    if from >= to {
        return Err(format!("--from {from} is not before --to {to}"));
    }
    let window = args.window.unwrap_or(Duration::from_secs(3600));
    let pipeline = args.pipeline.as_deref();
    let need_pipeline = || pipeline.ok_or_else(|| format!("{} needs --pipeline", args.command));
    let database = match (&args.manifest, &args.database) {
        (_, Some(url)) => Some(url.clone()),
        (Some(_), None) => None,
        (None, None) => std::env::var("DATABASE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty()),
    };
    if args.command == "backfill" {
        let manifest = args.manifest.clone().ok_or("backfill needs --manifest")?;
        let url = database.ok_or("backfill needs --database (or DATABASE_URL)")?;
        return backfill(manifest, &url, args.schema.as_deref()).await;
    }
    if let Some(url) = database {
        return from_database(&args, &url, pipeline, from, to, window).await;
    }
    let manifest = args
        .manifest
        .clone()
        .unwrap_or_else(|| PathBuf::from(MANIFEST_FILE));
    if !manifest.is_file() {
        return Err(format!(
            "there is no delivery manifest at {}: give --manifest FILE (it is `{MANIFEST_FILE}` in the spool directory), or --database URL",
            manifest.display()
        ));
    }
    let e = |e: query::QueryError| e.to_string();
    match args.command.as_str() {
        "list" => print_list(&query::list(&manifest, need_pipeline()?, from, to).map_err(e)?),
        "gaps" => {
            print_gaps(&query::gaps(&manifest, need_pipeline()?, from, to, window).map_err(e)?)
        }
        _ => print_totals(&query::daily_totals(&manifest, pipeline, from, to).map_err(e)?),
    }
    Ok(())
}

#[cfg(feature = "postgres")]
fn config(
    url: &str,
    schema: Option<&str>,
) -> Result<meathook_catalog::postgres::PostgresConfig, String> {
    let config =
        meathook_catalog::postgres::PostgresConfig::parse(url).map_err(|e| e.to_string())?;
    match schema {
        Some(s) => config.with_schema(s).map_err(|e| e.to_string()),
        None => Ok(config),
    }
}

#[cfg(feature = "postgres")]
async fn from_database(
    args: &Args,
    url: &str,
    pipeline: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    window: Duration,
) -> Result<(), String> {
    let catalog = config(url, args.schema.as_deref())?
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let need = || pipeline.ok_or_else(|| format!("{} needs --pipeline", args.command));
    let e = |e: meathook_catalog::postgres::PostgresError| e.to_string();
    match args.command.as_str() {
        "list" => print_list(&catalog.list(need()?, from, to).await.map_err(e)?),
        "gaps" => print_gaps(&catalog.gaps(need()?, from, to, window).await.map_err(e)?),
        _ => print_totals(&catalog.daily_totals(pipeline, from, to).await.map_err(e)?),
    }
    Ok(())
}

#[cfg(not(feature = "postgres"))]
async fn from_database(
    _: &Args,
    _: &str,
    _: Option<&str>,
    _: OffsetDateTime,
    _: OffsetDateTime,
    _: Duration,
) -> Result<(), String> {
    Err(NO_POSTGRES.to_owned())
}

#[cfg(not(feature = "postgres"))]
const NO_POSTGRES: &str = "this build has no PostgreSQL support (feature `postgres`); \
     give --manifest FILE, or rebuild with --features postgres";

#[cfg(feature = "postgres")]
async fn backfill(manifest: PathBuf, url: &str, schema: Option<&str>) -> Result<(), String> {
    let config = config(url, schema)?;
    let manifest = meathook_catalog::Manifest::open_async(manifest)
        .await
        .map_err(|e| e.to_string())?;
    let written = meathook_catalog::Backfill::new(manifest, config)
        .run_once()
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("back-filled {written} delivery records");
    Ok(())
}

#[cfg(not(feature = "postgres"))]
async fn backfill(_: PathBuf, _: &str, _: Option<&str>) -> Result<(), String> {
    Err(NO_POSTGRES.to_owned())
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn print_list(records: &[DeliveryRecord]) {
    println!(
        "window_start\twindow_end\tpipeline\tdestination\tpath\trows\tbytes\tsha256\tcommit\tdelivered_at\tattempts"
    );
    for r in records {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            rfc3339(r.window_start),
            rfc3339(r.window_end),
            r.pipeline,
            r.destination,
            r.path,
            r.rows,
            r.bytes,
            r.sha256,
            r.commit.as_deref().unwrap_or("-"),
            rfc3339(r.delivered_at),
            r.attempts
        );
    }
}

fn print_gaps(gaps: &[Gap]) {
    println!("window_start\twindow_end");
    for g in gaps {
        println!("{}\t{}", rfc3339(g.start), rfc3339(g.end));
    }
    eprintln!("{} window(s) without a delivery", gaps.len());
}

fn print_totals(totals: &[DayTotal]) {
    println!("pipeline\tday\tfiles\trows\tbytes");
    for t in totals {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            t.pipeline, t.day, t.files, t.rows, t.bytes
        );
    }
}
