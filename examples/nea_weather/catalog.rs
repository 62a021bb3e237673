//! The example's delivery catalog, `[catalog]` in the configuration: the
//! manifest every delivered file is recorded in, and optionally PostgreSQL,
//! back-filled from it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use meathook::catalog::{MANIFEST_FILE, Manifest};
use meathook::contracts::{CatalogStats, Deliveries, Delivery, DeliveryLog, DeliveryLogError};
use serde::Deserialize;

/// `[catalog]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CatalogSection {
    /// The manifest; default `deliveries.jsonl` in `spool_dir`.
    pub(crate) manifest: Option<PathBuf>,
    /// A PostgreSQL connection string; default `DATABASE_URL`, if set.
    pub(crate) postgres: Option<ConnectionString>,
    /// The schema in PostgreSQL; default `meathook`.
    pub(crate) schema: Option<String>,
}

/// A connection string, which may hold a password: never shown.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub(crate) struct ConnectionString(String);

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConnectionString(..)")
    }
}

impl CatalogSection {
    /// The manifest's path.
    pub(crate) fn manifest_path(&self, spool_dir: &Path) -> PathBuf {
        self.manifest
            .clone()
            .unwrap_or_else(|| spool_dir.join(MANIFEST_FILE))
    }

    /// The connection string: `postgres`, or `DATABASE_URL`.
    fn connection(&self) -> Option<(String, &'static str)> {
        match &self.postgres {
            Some(ConnectionString(url)) => Some((url.clone(), "postgres")),
            None => std::env::var("DATABASE_URL")
                .ok()
                .filter(|u| !u.trim().is_empty())
                .map(|u| (u, "DATABASE_URL")),
        }
    }

    /// Checks the section; `at` gives ", line N" for a key.
    pub(crate) fn check(&self, file: &str, at: impl Fn(&str) -> String) -> Result<(), String> {
        if let Some(path) = &self.manifest
            && (path.as_os_str().is_empty() || path.is_dir())
        {
            return Err(format!(
                "{file}: `catalog.manifest` = {:?}{}: give a file path (the directory holds other files)",
                path.display(),
                at("manifest")
            ));
        }
        let Some((url, source)) = self.connection() else {
            if self.schema.is_some() {
                return Err(format!(
                    "{file}: `catalog.schema`{} is set but there is no database: set `catalog.postgres` or DATABASE_URL",
                    at("schema")
                ));
            }
            return Ok(());
        };
        self.postgres_config(&url, source)
            .map(|_| ())
            .map_err(|(key, e)| {
                let line = match key {
                    "DATABASE_URL" => String::new(),
                    key => at(key),
                };
                let key = match key {
                    "DATABASE_URL" => "DATABASE_URL".to_owned(),
                    key => format!("`catalog.{key}`"),
                };
                format!("{file}: {key}{line}: {e}")
            })
    }

    #[cfg(feature = "postgres")]
    fn postgres_config(
        &self,
        url: &str,
        source: &'static str,
    ) -> Result<meathook::catalog::postgres::PostgresConfig, (&'static str, String)> {
        let config = meathook::catalog::postgres::PostgresConfig::parse(url)
            .map_err(|e| (source, e.to_string()))?;
        match &self.schema {
            Some(schema) => config
                .with_schema(schema)
                .map_err(|e| ("schema", e.to_string())),
            None => Ok(config),
        }
    }

    #[cfg(not(feature = "postgres"))]
    fn postgres_config(&self, _: &str, source: &'static str) -> Result<(), (&'static str, String)> {
        Err((
            source,
            "names a PostgreSQL catalog but this build has no PostgreSQL support: \
             run with `--features postgres`, or remove it (the manifest alone is kept)"
                .to_owned(),
        ))
    }
}

/// The catalog of a run: the manifest, and the database to back-fill. The
/// manifest is opened only when the run starts, so `--check` writes nothing.
#[derive(Debug)]
pub(crate) struct Catalog {
    path: PathBuf,
    stats: CatalogStats,
    manifest: Arc<OnceLock<Manifest>>,
    #[cfg(feature = "postgres")]
    postgres: Option<meathook::catalog::postgres::PostgresConfig>,
}

/// The terminal sinks' hook: the manifest once it is open.
#[derive(Debug)]
struct OpenedManifest(Arc<OnceLock<Manifest>>);

impl DeliveryLog for OpenedManifest {
    fn record(&self, delivery: &Delivery) -> Result<(), DeliveryLogError> {
        match self.0.get() {
            Some(manifest) => manifest.record(delivery),
            None => Err(DeliveryLogError::Stopped {
                path: delivery.path.clone(),
                reason: "the delivery manifest is not open yet".to_owned(),
            }),
        }
    }
}

impl Catalog {
    /// The catalog `section` describes (checked when the configuration was
    /// loaded); touches no file.
    pub(crate) fn new(section: &CatalogSection, spool_dir: &Path) -> Result<Self, String> {
        #[cfg(feature = "postgres")]
        let postgres = match section.connection() {
            Some((url, source)) => Some(
                section
                    .postgres_config(&url, source)
                    .map_err(|(key, e)| format!("{key}: {e}"))?,
            ),
            None => None,
        };
        Ok(Self {
            path: section.manifest_path(spool_dir),
            stats: CatalogStats::default(),
            manifest: Arc::new(OnceLock::new()),
            #[cfg(feature = "postgres")]
            postgres,
        })
    }

    /// Opens (or creates) the manifest; call before the pipelines run.
    pub(crate) fn open(&self) -> Result<(), String> {
        let manifest = Manifest::open_with_stats(&self.path, self.stats.clone())
            .map_err(|e| format!("delivery manifest: {e}"))?;
        let _ = self.manifest.set(manifest);
        Ok(())
    }

    /// The windows of the manifest that ended after `since`: (pipeline,
    /// start, end), for the status page's grid of the last day.
    pub(crate) fn windows_since(
        &self,
        since: time::OffsetDateTime,
    ) -> Vec<(String, time::OffsetDateTime, time::OffsetDateTime)> {
        let mut windows = Vec::new();
        // A manifest that cannot be read shows as gaps; the run reports
        // its own errors.
        let _ = meathook::catalog::for_each_record(&self.path, |r| {
            if r.window_end > since {
                windows.push((r.pipeline, r.window_start, r.window_end));
            }
        });
        windows
    }

    /// The hook terminal sinks report to.
    pub(crate) fn deliveries(&self) -> Deliveries {
        Deliveries::new(OpenedManifest(Arc::clone(&self.manifest)))
    }

    /// The figures the runtime exports.
    pub(crate) fn stats(&self) -> CatalogStats {
        self.stats.clone()
    }

    /// `--check --probe`: whether the database answers, if there is one
    /// (nothing is created).
    pub(crate) async fn probe(&self) -> Option<(String, Result<(), String>)> {
        #[cfg(feature = "postgres")]
        if let Some(pg) = &self.postgres {
            let what = format!("catalog database {}", pg.target());
            let reached = pg
                .probe()
                .await
                .map_err(|e| meathook::contracts::ErrorChain(&e).to_string());
            return Some((what, reached));
        }
        None
    }

    /// What to log at start-up.
    pub(crate) fn describe(&self) -> String {
        let manifest = self.path.display();
        #[cfg(feature = "postgres")]
        if let Some(pg) = &self.postgres {
            return format!(
                "{manifest}, back-filled into {} schema {}",
                pg.target(),
                pg.schema()
            );
        }
        manifest.to_string()
    }

    /// Starts the back-fill, if there is a database and the manifest is
    /// open (inside the runtime).
    pub(crate) fn start(&self) -> Running {
        #[cfg(feature = "postgres")]
        if let (Some(pg), Some(manifest)) = (&self.postgres, self.manifest.get()) {
            let backfill = meathook::catalog::Backfill::new(manifest.clone(), pg.clone());
            match backfill.spawn() {
                Ok(handle) => {
                    return Running {
                        backfill: Some(handle),
                    };
                }
                Err(e) => tracing::error!(error = %e, "the catalog back-fill cannot start"),
            }
        }
        Running {
            #[cfg(feature = "postgres")]
            backfill: None,
        }
    }
}

/// A running back-fill, or none.
#[derive(Debug)]
pub(crate) struct Running {
    #[cfg(feature = "postgres")]
    backfill: Option<meathook::catalog::BackfillHandle>,
}

impl Running {
    /// Stops the back-fill; what is not copied waits in the manifest.
    pub(crate) async fn stop(self) {
        #[cfg(feature = "postgres")]
        if let Some(handle) = self.backfill {
            handle.stop().await;
        }
    }
}
