//! Where metrics go: an atomically replaced textfile, and (with the
//! `metrics-http` feature) an HTTP listener with `/metrics` and `/healthz`.

use std::path::Path;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::error::RuntimeError;
use crate::metrics::Telemetry;
use crate::supervisor::Settings;

/// Background exporters; stopped when dropped.
#[derive(Debug, Default)]
pub(crate) struct Exporters {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Exporters {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts the configured exporters, failing if one cannot start.
pub(crate) fn start(telemetry: &Telemetry, builder: &Settings) -> Result<Exporters, RuntimeError> {
    let mut exporters = Exporters::default();
    if let Some((path, every)) = builder.textfile_config() {
        write_textfile(path, &telemetry.encode()).map_err(|source| {
            RuntimeError::MetricsTextfile {
                path: path.to_owned(),
                source,
            }
        })?;
        let (path, every, telemetry) = (
            path.to_owned(),
            every.max(Duration::from_millis(100)),
            telemetry.clone(),
        );
        exporters.tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            loop {
                ticker.tick().await;
                let text = telemetry.encode();
                let path = path.clone();
                let written =
                    tokio::task::spawn_blocking(move || write_textfile(&path, &text)).await;
                if let Ok(Err(error)) = written {
                    tracing::warn!(%error, "cannot write the metrics textfile");
                }
            }
        }));
    }
    #[cfg(feature = "metrics-http")]
    if let Some(addr) = builder.metrics_addr_config() {
        exporters.tasks.push(http::serve(addr, telemetry.clone())?);
    }
    Ok(exporters)
}

/// Writes the textfile a last time, so it shows the final counts.
pub(crate) fn final_write(telemetry: &Telemetry, path: Option<&Path>) -> Result<(), RuntimeError> {
    match path {
        Some(path) => write_textfile(path, &telemetry.encode()).map_err(|source| {
            RuntimeError::MetricsTextfile {
                path: path.to_owned(),
                source,
            }
        }),
        None => Ok(()),
    }
}

/// Replaces `path` atomically: a reader sees the old file or the new one.
fn write_textfile(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(feature = "metrics-http")]
mod http {
    use std::net::SocketAddr;

    use axum::Router;
    use axum::extract::State;
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::get;
    use tokio::task::JoinHandle;

    use crate::error::RuntimeError;
    use crate::metrics::Telemetry;

    /// Binds `addr` now (so a taken port fails the start), serves in the
    /// background.
    pub(super) fn serve(
        addr: SocketAddr,
        telemetry: Telemetry,
    ) -> Result<JoinHandle<()>, RuntimeError> {
        let bind = |addr| -> std::io::Result<tokio::net::TcpListener> {
            let listener = std::net::TcpListener::bind(addr)?;
            listener.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(listener)
        };
        let listener = bind(addr).map_err(|source| RuntimeError::MetricsListen { addr, source })?;
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
            .with_state(telemetry);
        Ok(tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "metrics listener stopped");
            }
        }))
    }

    async fn metrics(State(telemetry): State<Telemetry>) -> impl IntoResponse {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            telemetry.encode(),
        )
    }

    async fn healthz(State(telemetry): State<Telemetry>) -> impl IntoResponse {
        match telemetry.health() {
            Ok(()) => (StatusCode::OK, "ok\n".to_owned()),
            Err(problems) => (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n") + "\n"),
        }
    }
}
