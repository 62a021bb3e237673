//! `meathook-catalog list|gaps|totals|backfill`: the questions users ask of
//! the delivery catalog, answered from the manifest or from PostgreSQL, as
//! tab-separated lines with a header or, with `--json`, one JSON document
//! (the shapes are in `output.rs`).
//!
//! What the manifest knows need not be typed: without `--pipeline`, `list`
//! and `gaps` ask about the manifest's pipeline if it records only one;
//! without `--window`, `gaps` uses the length of that pipeline's latest
//! window in the manifest (1 hour when it has none, or with `--database`).
//!
//! Exit status: 0 answered; 1 the question could not be answered (no
//! manifest, an unreadable manifest, the database unreachable or refusing,
//! a failed back-fill); 2 a usage error (an unknown flag, a bad value,
//! `--from` not before `--to`, no `--pipeline` where the manifest does not
//! name one pipeline). A closed pipe (`| head`) ends the output quietly with
//! status 0.
#![forbid(unsafe_code)]

mod args;
mod output;

use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory as _, Parser as _};
use meathook_catalog::MANIFEST_FILE;
use meathook_catalog::query::{self, PipelineSummary};
use time::OffsetDateTime;

use crate::args::{Cli, Command, Query};
use crate::output::Answer;

/// The window length `gaps` uses when neither `--window` nor the manifest
/// says.
const DEFAULT_WINDOW: Duration = Duration::from_secs(3600);

/// Why a question was not answered.
#[derive(Debug)]
enum Failure {
    /// The command line does not ask a question that can be answered:
    /// exit status 2, with the subcommand's usage.
    Usage {
        subcommand: &'static str,
        message: String,
    },
    /// The question could not be answered: exit status 1.
    Failed(String),
}

fn failed(e: impl std::fmt::Display) -> Failure {
    Failure::Failed(e.to_string())
}

fn main() -> ExitCode {
    // Usage errors exit with status 2, --help and --version with 0.
    let cli = Cli::parse();
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
    let answer = match runtime.block_on(answer(cli.command)) {
        Ok(answer) => answer,
        Err(Failure::Usage {
            subcommand,
            message,
        }) => usage_error(subcommand, &message),
        Err(Failure::Failed(message)) => {
            eprintln!("meathook-catalog: {message}");
            return ExitCode::FAILURE;
        }
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match answer.print(&mut out, cli.json).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meathook-catalog: cannot write the output: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `message` with the usage of `subcommand`, as clap prints its
/// own errors, and exits with status 2.
fn usage_error(subcommand: &str, message: &str) -> ! {
    let mut command = Cli::command();
    command.build();
    let mut command = command
        .find_subcommand_mut(subcommand)
        .map_or_else(Cli::command, std::mem::take);
    command
        .error(clap::error::ErrorKind::MissingRequiredArgument, message)
        .exit()
}

async fn answer(command: Command) -> Result<Answer, Failure> {
    match command {
        Command::List(q) => ask(Question::List, q, None).await,
        Command::Gaps { query, window } => ask(Question::Gaps, query, window).await,
        Command::Totals(q) => ask(Question::Totals, q, None).await,
        Command::Backfill {
            manifest,
            database,
            schema,
        } => {
            let url = database
                .or_else(database_from_env)
                .ok_or_else(|| Failure::Usage {
                    subcommand: "backfill",
                    message: "backfill needs --database URL (or DATABASE_URL)".into(),
                })?;
            let written = backfill(&manifest, &url, schema.as_deref()).await?;
            Ok(Answer::Backfill { manifest, written })
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Question {
    List,
    Gaps,
    Totals,
}

impl Question {
    fn name(self) -> &'static str {
        match self {
            Self::List => "list",
            Self::Gaps => "gaps",
            Self::Totals => "totals",
        }
    }
}

fn database_from_env() -> Option<String> {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

async fn ask(question: Question, q: Query, window: Option<Duration>) -> Result<Answer, Failure> {
    let usage = |message: String| Failure::Usage {
        subcommand: question.name(),
        message,
    };
    let to = q.to.unwrap_or_else(OffsetDateTime::now_utc);
    let from = q.from.unwrap_or(to - time::Duration::DAY);
    if from >= to {
        return Err(usage(format!("--from {from} is not before --to {to}")));
    }
    let database = match (&q.manifest, &q.database) {
        (_, Some(url)) => Some(url.clone()),
        (Some(_), None) => None,
        (None, None) => database_from_env(),
    };
    if let Some(url) = database {
        let pipeline = match (question, q.pipeline) {
            (Question::Totals, p) => p,
            (_, Some(p)) => Some(p),
            (_, None) => {
                return Err(usage(format!(
                    "{} needs --pipeline when it asks the database",
                    question.name()
                )));
            }
        };
        let window = window.unwrap_or(DEFAULT_WINDOW);
        return from_database(
            &url,
            q.schema.as_deref(),
            question,
            pipeline,
            from,
            to,
            window,
        )
        .await;
    }
    let manifest = q.manifest.unwrap_or_else(|| PathBuf::from(MANIFEST_FILE));
    if !manifest.is_file() {
        return Err(Failure::Failed(format!(
            "there is no delivery manifest at {}: give --manifest FILE (it is `{MANIFEST_FILE}` in the spool directory), or --database URL",
            manifest.display()
        )));
    }
    if question == Question::Totals {
        let totals =
            query::daily_totals(&manifest, q.pipeline.as_deref(), from, to).map_err(failed)?;
        return Ok(Answer::Totals {
            pipeline: q.pipeline,
            from,
            to,
            totals,
        });
    }
    // What --pipeline and --window default to: read from the manifest
    // only when one of them is missing.
    let known = if q.pipeline.is_none() || (question == Question::Gaps && window.is_none()) {
        query::pipelines(&manifest).map_err(failed)?
    } else {
        Vec::new()
    };
    let pipeline = match q.pipeline {
        Some(p) => p,
        None => only_pipeline(&manifest, &known)
            .map_err(|m| usage(format!("{} needs --pipeline: {m}", question.name())))?,
    };
    if question == Question::List {
        let deliveries = query::list(&manifest, &pipeline, from, to).map_err(failed)?;
        return Ok(Answer::List {
            pipeline,
            from,
            to,
            deliveries,
        });
    }
    let window = window.unwrap_or_else(|| {
        known
            .iter()
            .find(|p| p.pipeline == pipeline)
            .map(|p| p.window)
            .filter(|w| !w.is_zero())
            .unwrap_or(DEFAULT_WINDOW)
    });
    let gaps = query::gaps(&manifest, &pipeline, from, to, window).map_err(failed)?;
    Ok(Answer::Gaps {
        pipeline,
        from,
        to,
        window,
        gaps,
    })
}

/// The manifest's pipeline when it records exactly one, else why not.
fn only_pipeline(manifest: &Path, known: &[PipelineSummary]) -> Result<String, String> {
    match known {
        [one] => Ok(one.pipeline.clone()),
        [] => Err(format!(
            "the manifest {} records no delivery yet",
            manifest.display()
        )),
        many => Err(format!(
            "the manifest {} records {} pipelines: {}",
            manifest.display(),
            many.len(),
            many.iter()
                .map(|p| p.pipeline.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(feature = "postgres")]
fn config(
    url: &str,
    schema: Option<&str>,
) -> Result<meathook_catalog::postgres::PostgresConfig, Failure> {
    let config = meathook_catalog::postgres::PostgresConfig::parse(url).map_err(failed)?;
    match schema {
        Some(s) => config.with_schema(s).map_err(failed),
        None => Ok(config),
    }
}

#[cfg(feature = "postgres")]
async fn from_database(
    url: &str,
    schema: Option<&str>,
    question: Question,
    pipeline: Option<String>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    window: Duration,
) -> Result<Answer, Failure> {
    let catalog = config(url, schema)?.connect().await.map_err(failed)?;
    Ok(match (question, pipeline) {
        (Question::List, Some(pipeline)) => Answer::List {
            deliveries: catalog.list(&pipeline, from, to).await.map_err(failed)?,
            pipeline,
            from,
            to,
        },
        (Question::Gaps, Some(pipeline)) => Answer::Gaps {
            gaps: catalog
                .gaps(&pipeline, from, to, window)
                .await
                .map_err(failed)?,
            pipeline,
            from,
            to,
            window,
        },
        (_, pipeline) => Answer::Totals {
            totals: catalog
                .daily_totals(pipeline.as_deref(), from, to)
                .await
                .map_err(failed)?,
            pipeline,
            from,
            to,
        },
    })
}

#[cfg(not(feature = "postgres"))]
async fn from_database(
    _: &str,
    _: Option<&str>,
    _: Question,
    _: Option<String>,
    _: OffsetDateTime,
    _: OffsetDateTime,
    _: Duration,
) -> Result<Answer, Failure> {
    Err(Failure::Failed(NO_POSTGRES.to_owned()))
}

#[cfg(not(feature = "postgres"))]
const NO_POSTGRES: &str = "this build has no PostgreSQL support (feature `postgres`); \
     give --manifest FILE, or rebuild with --features postgres";

#[cfg(feature = "postgres")]
async fn backfill(manifest: &Path, url: &str, schema: Option<&str>) -> Result<u64, Failure> {
    let config = config(url, schema)?;
    let manifest = meathook_catalog::Manifest::open_async(manifest.to_path_buf())
        .await
        .map_err(failed)?;
    meathook_catalog::Backfill::new(manifest, config)
        .run_once()
        .await
        .map_err(failed)
}

#[cfg(not(feature = "postgres"))]
async fn backfill(_: &Path, _: &str, _: Option<&str>) -> Result<u64, Failure> {
    Err(Failure::Failed(NO_POSTGRES.to_owned()))
}
