//! `fake-hub [--port N] [--data DIR] [--token T ...] [--read-token T ...]`:
//! serves the fake HuggingFace Hub on 127.0.0.1 until ctrl-c, so that
//! independent clients (`huggingface_hub`, `curl`) can be pointed at it.
//!
//! Prints the endpoint on the first line of stdout. With `--data DIR`, the
//! repositories (every commit, every branch) and their objects are kept
//! in `DIR`, written durably before each answer, and a server started
//! again on the same `DIR` serves them as they were. Without `--token`,
//! any non-empty token may write.
#![allow(clippy::print_stdout)] // a command-line tool

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use meathook_testkit::hub::{FakeHub, FakeHubConfig, TokenRole};

const USAGE: &str = "usage: fake-hub [--port N] [--data DIR] [--token T]... [--read-token T]... \
                     [--multipart-mib N] [--chunk-mib N] [--no-verify]";

fn parse(args: &[String]) -> Result<(u16, FakeHubConfig), String> {
    let mut port = 0;
    let mut config = FakeHubConfig::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: {v:?} is not a whole number"))
        };
        match flag.as_str() {
            "--port" => {
                let v = value()?;
                port = v
                    .parse()
                    .map_err(|_| format!("--port: {v:?} is not a port"))?;
            }
            "--data" => config.data_dir = Some(PathBuf::from(value()?)),
            "--token" => {
                config.tokens.insert(value()?, TokenRole::Write);
            }
            "--read-token" => {
                config.tokens.insert(value()?, TokenRole::Read);
            }
            "--multipart-mib" => config.multipart_threshold = number(value()?)? << 20,
            "--chunk-mib" => config.chunk_size = number(value()?)?.max(1) << 20,
            "--no-verify" => config.verify = false,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok((port, config))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (port, config) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("fake-hub: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let hub = match FakeHub::start_on(SocketAddr::from(([127, 0, 0, 1], port)), config).await {
        Ok(hub) => hub,
        Err(e) => {
            eprintln!("fake-hub: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", hub.endpoint());
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
