//! Where metrics go, as configured: starting the exporters (the textfile,
//! and with the `metrics-http` feature the `/metrics` + `/healthz`
//! listener) with the health bounds they report against, stopping them,
//! and the last textfile write at shutdown.

use std::path::PathBuf;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::error::RuntimeError;
use crate::health::HealthBounds;
use crate::metrics::Telemetry;
use crate::textfile;

/// Which exporters to start; set by the builder.
#[derive(Debug, Default)]
pub(crate) struct ExportSettings {
    /// The textfile and how often to rewrite it.
    pub(crate) textfile: Option<(PathBuf, Duration)>,
    /// The address the listener binds.
    #[cfg(feature = "metrics-http")]
    pub(crate) listen: Option<std::net::SocketAddr>,
    /// How the listener bounds its connections.
    #[cfg(feature = "metrics-http")]
    pub(crate) limits: crate::listener::Limits,
    /// The bounds past which `/healthz` (and [`Telemetry::health`]) report
    /// a pipeline as failing.
    pub(crate) health: HealthBounds,
}

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
pub(crate) fn start(
    telemetry: &Telemetry,
    settings: &ExportSettings,
) -> Result<Exporters, RuntimeError> {
    telemetry.set_health_bounds(settings.health);
    let mut exporters = Exporters::default();
    if let Some((path, every)) = &settings.textfile {
        textfile::write_now(telemetry, path)?;
        exporters
            .tasks
            .push(textfile::spawn(path.clone(), *every, telemetry.clone()));
    }
    #[cfg(feature = "metrics-http")]
    if let Some(addr) = settings.listen {
        exporters.tasks.push(crate::listener::serve(
            addr,
            telemetry.clone(),
            settings.limits,
        )?);
    }
    Ok(exporters)
}

/// Writes the textfile a last time, so it shows the final counts.
pub(crate) fn final_write(
    telemetry: &Telemetry,
    settings: &ExportSettings,
) -> Result<(), RuntimeError> {
    match &settings.textfile {
        Some((path, _)) => textfile::write_now(telemetry, path),
        None => Ok(()),
    }
}
