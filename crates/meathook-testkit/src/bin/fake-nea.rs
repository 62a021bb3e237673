//! `fake-nea [--port N] [--stations N] [--every SECONDS]`: serves the fake NEA
//! API on 127.0.0.1 until ctrl-c.
#![allow(clippy::print_stdout)] // a command-line tool

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use meathook_testkit::{FakeNea, FakeNeaConfig};

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Result<Option<T>, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => {
            let value = args
                .get(i + 1)
                .ok_or_else(|| format!("{name} needs a value"))?;
            value
                .parse()
                .map(Some)
                .map_err(|_| format!("{name}: cannot parse {value:?}"))
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (|| -> Result<_, String> {
        let port: u16 = arg(&args, "--port")?.unwrap_or(0);
        let mut config = FakeNeaConfig::default();
        if let Some(stations) = arg(&args, "--stations")? {
            config.stations = stations;
        }
        if let Some(every) = arg::<f64>(&args, "--every")? {
            config.reading_every = Duration::from_secs_f64(every.max(0.001));
        }
        Ok((port, config))
    })();
    let (port, config) = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("fake-nea: {e}\nusage: fake-nea [--port N] [--stations N] [--every SECONDS]");
            return ExitCode::from(2);
        }
    };
    let fake = match FakeNea::start_on(SocketAddr::from(([127, 0, 0, 1], port)), config).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fake-nea: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", fake.base_url());
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
