//! The delivery catalog in PostgreSQL (feature `postgres`).
//!
//! **Architecture invariant:** every statement is parameterised; the only
//! text put into SQL is the schema name, which must match
//! `[a-z_][a-z0-9_]*` and is quoted. Rows are keyed on (destination,
//! path) and written with an upsert, so a delivery reported twice (a
//! replay, or a back-fill that restarts from an older cursor) is one row.
//! The schema is created on first use and moved forward by numbered
//! migrations recorded in `schema_migrations`, under an advisory lock so
//! that two processes starting together do not race.

use std::fmt;
use std::time::Duration;

use time::{Date, OffsetDateTime};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

use crate::query::{self, DayTotal, Gap, QueryError};
use crate::record::{DeliveryRecord, RECORD_VERSION};

/// The schema used unless another is configured.
pub const DEFAULT_SCHEMA: &str = "meathook";

/// The environment variable read when no connection string is configured.
pub const DATABASE_URL: &str = "DATABASE_URL";

/// How long a connection attempt may take unless the connection string
/// sets `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The migrations, in order; `MIGRATIONS[i]` brings the schema to version
/// `i + 1`. `{schema}` is replaced by the quoted schema name.
const MIGRATIONS: &[&str] = &[
    // 1: the deliveries table.
    "CREATE TABLE {schema}.deliveries (
        destination  text        NOT NULL,
        path         text        NOT NULL,
        pipeline     text        NOT NULL,
        window_start timestamptz NOT NULL,
        window_end   timestamptz NOT NULL,
        row_count    bigint      NOT NULL CHECK (row_count >= 0),
        byte_count   bigint      NOT NULL CHECK (byte_count >= 0),
        sha256       text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        commit_id    text,
        delivered_at timestamptz NOT NULL,
        attempts     integer     NOT NULL CHECK (attempts >= 1),
        recorded_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (destination, path)
    );
    CREATE INDEX deliveries_pipeline_window ON {schema}.deliveries (pipeline, window_start);",
];

/// A PostgreSQL operation failed. Never shows a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The connection string does not parse.
    #[error(
        "the PostgreSQL connection string does not parse ({reason}); \
         expected postgres://user[:password]@host[:port]/database or key=value pairs"
    )]
    Config {
        /// What the parser reported (names keys, never values).
        reason: String,
    },
    /// The schema name is not a plain lowercase identifier.
    #[error(
        "{schema:?} is not a usable schema name: use lowercase letters, digits and `_`, starting with a letter or `_`"
    )]
    Schema {
        /// The name given.
        schema: String,
    },
    /// Connecting failed (refused, unreachable, authentication).
    #[error("cannot connect to PostgreSQL at {target}: {source}; is it running and reachable?")]
    Connect {
        /// Where, without the password.
        target: String,
        /// What the client reported.
        source: tokio_postgres::Error,
    },
    /// A statement failed.
    #[error("{action} in PostgreSQL at {target} failed: {source}")]
    Statement {
        /// What was being done.
        action: &'static str,
        /// Where, without the password.
        target: String,
        /// What the server or client reported.
        source: tokio_postgres::Error,
    },
    /// A figure does not fit the column (a file over 8 EiB).
    #[error("{what} of {path} is {value}, more than PostgreSQL's bigint holds")]
    Range {
        /// Which figure.
        what: &'static str,
        /// The file.
        path: String,
        /// The figure.
        value: u64,
    },
    /// The schema is newer than this build knows.
    #[error(
        "schema {schema} at {target} is at version {found}, newer than this build's {known}; \
         upgrade meathook or use another schema"
    )]
    TooNew {
        /// The schema.
        schema: String,
        /// Where, without the password.
        target: String,
        /// The version found.
        found: i32,
        /// The newest version this build knows.
        known: i32,
    },
    /// A query's arguments were refused.
    #[error(transparent)]
    Query(#[from] QueryError),
}

impl PostgresError {
    /// Whether the database refused this record itself (a value it cannot
    /// store: a NUL byte in a name, a figure out of range, a constraint),
    /// so that retrying it can never succeed, as opposed to the database
    /// being away or the connection failing.
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::Range { .. } => true,
            Self::Statement { source, .. } => source.as_db_error().is_some_and(|db| {
                let code = db.code().code();
                code.starts_with("22") || code.starts_with("23")
            }),
            _ => false,
        }
    }
}

/// Where the catalog lives: a connection string and a schema.
#[derive(Clone)]
pub struct PostgresConfig {
    config: Config,
    schema: String,
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("target", &self.target())
            .field("schema", &self.schema)
            .finish()
    }
}

impl PostgresConfig {
    /// A catalog at `url` (`postgres://user:password@host:port/db` or
    /// `host=.. user=..`), in schema [`DEFAULT_SCHEMA`].
    ///
    /// # Errors
    ///
    /// [`PostgresError::Config`] when it does not parse.
    pub fn parse(url: &str) -> Result<Self, PostgresError> {
        let mut config: Config =
            url.parse()
                .map_err(|e: tokio_postgres::Error| PostgresError::Config {
                    reason: e.to_string(),
                })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        config.application_name("meathook");
        Ok(Self {
            config,
            schema: DEFAULT_SCHEMA.to_owned(),
        })
    }

    /// The catalog named by `DATABASE_URL`, if it is set and not empty.
    ///
    /// # Errors
    ///
    /// [`PostgresError::Config`] when it does not parse.
    pub fn from_env() -> Result<Option<Self>, PostgresError> {
        match std::env::var(DATABASE_URL) {
            Ok(url) if !url.trim().is_empty() => Self::parse(&url).map(Some),
            _ => Ok(None),
        }
    }

    /// The same catalog in schema `schema`.
    ///
    /// # Errors
    ///
    /// [`PostgresError::Schema`] unless it matches `[a-z_][a-z0-9_]*` (at
    /// most 63 bytes).
    pub fn with_schema(mut self, schema: &str) -> Result<Self, PostgresError> {
        let ok = !schema.is_empty()
            && schema.len() <= 63
            && schema
                .bytes()
                .enumerate()
                .all(|(i, b)| b == b'_' || b.is_ascii_lowercase() || (i > 0 && b.is_ascii_digit()));
        if !ok {
            return Err(PostgresError::Schema {
                schema: schema.to_owned(),
            });
        }
        schema.clone_into(&mut self.schema);
        Ok(self)
    }

    /// The schema.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// `postgres://user@host:port/database`, without the password: for
    /// logs and errors.
    pub fn target(&self) -> String {
        let user = self.config.get_user().unwrap_or("");
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let db = self.config.get_dbname().unwrap_or(user);
        format!("postgres://{user}@{host}:{port}/{db}")
    }

    /// Connects, creates the schema if needed and brings it to the newest
    /// version.
    ///
    /// # Errors
    ///
    /// [`PostgresError::Connect`] when the server cannot be reached or
    /// refuses us; [`PostgresError::Statement`] when a migration fails.
    pub async fn connect(&self) -> Result<Catalog, PostgresError> {
        let target = self.target();
        let (client, connection) =
            self.config
                .connect(NoTls)
                .await
                .map_err(|source| PostgresError::Connect {
                    target: target.clone(),
                    source,
                })?;
        let shown = target.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(target = %shown, error = %e, "catalog connection closed");
            }
        });
        let mut catalog = Catalog {
            client,
            schema: quote(&self.schema),
            schema_name: self.schema.clone(),
            target,
            task,
        };
        catalog.migrate().await?;
        Ok(catalog)
    }
}

fn quote(schema: &str) -> String {
    // `with_schema` admits only [a-z0-9_]: nothing to escape.
    format!("\"{schema}\"")
}

/// A connected catalog.
#[derive(Debug)]
pub struct Catalog {
    client: Client,
    schema: String,
    schema_name: String,
    target: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Catalog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Catalog {
    fn statement(
        &self,
        action: &'static str,
    ) -> impl FnOnce(tokio_postgres::Error) -> PostgresError + '_ {
        statement_error(&self.target, action)
    }

    /// Whether the connection has closed (the catalog must reconnect).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The client, for queries of your own (use parameters).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The schema's version.
    ///
    /// # Errors
    ///
    /// [`PostgresError::Statement`] when the query fails.
    pub async fn schema_version(&self) -> Result<i32, PostgresError> {
        let sql = format!(
            "SELECT coalesce(max(version), 0) FROM {}.schema_migrations",
            self.schema
        );
        let row = self
            .client
            .query_one(&sql, &[])
            .await
            .map_err(self.statement("reading the schema version"))?;
        Ok(row.get(0))
    }

    async fn migrate(&mut self) -> Result<(), PostgresError> {
        let known = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
        let schema = self.schema.clone();
        let target = self.target.clone();
        let fail = |action: &'static str| statement_error(&target, action);
        let tx = self
            .client
            .transaction()
            .await
            .map_err(fail("starting the migration"))?;
        // One migrating process per schema at a time; the lock ends with
        // the transaction.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('meathook catalog ' || $1))",
            &[&self.schema_name],
        )
        .await
        .map_err(fail("locking the schema"))?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                 version    integer     PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );"
        ))
        .await
        .map_err(fail("creating the schema"))?;
        let found: i32 = tx
            .query_one(
                &format!("SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations"),
                &[],
            )
            .await
            .map_err(fail("reading the schema version"))?
            .get(0);
        if found > known {
            return Err(PostgresError::TooNew {
                schema: self.schema_name.clone(),
                target: target.clone(),
                found,
                known,
            });
        }
        for (version, sql) in (1..)
            .zip(MIGRATIONS)
            .skip(usize::try_from(found).unwrap_or(0))
        {
            tx.batch_execute(&sql.replace("{schema}", &schema))
                .await
                .map_err(fail("migrating the schema"))?;
            tx.execute(
                &format!("INSERT INTO {schema}.schema_migrations (version) VALUES ($1)"),
                &[&version],
            )
            .await
            .map_err(fail("recording a migration"))?;
            tracing::info!(schema = %self.schema_name, version, "catalog schema migrated");
        }
        tx.commit()
            .await
            .map_err(fail("committing the migration"))?;
        Ok(())
    }

    /// Upserts `records` in one transaction, keyed on (destination, path):
    /// a record already there keeps its row (its commit id is filled in if
    /// it had none). Returns the records written.
    ///
    /// # Errors
    ///
    /// [`PostgresError`] when a statement fails or a figure does not fit;
    /// nothing is written then.
    pub async fn upsert(&mut self, records: &[DeliveryRecord]) -> Result<u64, PostgresError> {
        let sql = format!(
            "INSERT INTO {s}.deliveries AS d
                 (destination, path, pipeline, window_start, window_end, row_count, byte_count,
                  sha256, commit_id, delivered_at, attempts)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (destination, path) DO UPDATE
                 SET commit_id = coalesce(d.commit_id, EXCLUDED.commit_id)",
            s = self.schema
        );
        let target = self.target.clone();
        let fail = |action: &'static str| statement_error(&target, action);
        let tx = self
            .client
            .transaction()
            .await
            .map_err(fail("starting a write"))?;
        let statement = tx
            .prepare(&sql)
            .await
            .map_err(fail("preparing the upsert"))?;
        for r in records {
            let rows = to_i64("row count", &r.path, r.rows)?;
            let bytes = to_i64("byte count", &r.path, r.bytes)?;
            let attempts = i32::try_from(r.attempts).unwrap_or(i32::MAX).max(1);
            tx.execute(
                &statement,
                &[
                    &r.destination,
                    &r.path,
                    &r.pipeline,
                    &r.window_start,
                    &r.window_end,
                    &rows,
                    &bytes,
                    &r.sha256,
                    &r.commit,
                    &r.delivered_at,
                    &attempts,
                ],
            )
            .await
            .map_err(fail("upserting a delivery"))?;
        }
        tx.commit().await.map_err(fail("committing deliveries"))?;
        Ok(records.len() as u64)
    }

    /// The deliveries of `pipeline` whose window starts in `[from, to)`,
    /// ordered by window start and path.
    ///
    /// # Errors
    ///
    /// [`PostgresError::Statement`] when the query fails.
    pub async fn list(
        &self,
        pipeline: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<DeliveryRecord>, PostgresError> {
        let sql = format!(
            "SELECT pipeline, window_start, window_end, destination, path, row_count, byte_count,
                    sha256, commit_id, delivered_at, attempts
             FROM {}.deliveries
             WHERE pipeline = $1 AND window_start >= $2 AND window_start < $3
             ORDER BY window_start, path",
            self.schema
        );
        let rows = self
            .client
            .query(&sql, &[&pipeline, &from, &to])
            .await
            .map_err(self.statement("listing deliveries"))?;
        Ok(rows
            .iter()
            .map(|row| DeliveryRecord {
                v: RECORD_VERSION,
                pipeline: row.get(0),
                window_start: row.get(1),
                window_end: row.get(2),
                destination: row.get(3),
                path: row.get(4),
                rows: u64::try_from(row.get::<_, i64>(5)).unwrap_or(0),
                bytes: u64::try_from(row.get::<_, i64>(6)).unwrap_or(0),
                sha256: row.get(7),
                commit: row.get(8),
                delivered_at: row.get(9),
                attempts: u32::try_from(row.get::<_, i32>(10)).unwrap_or(1),
            })
            .collect())
    }

    /// The windows of length `window` starting in `[from, to)` (aligned as
    /// meathook aligns them) that no delivery of `pipeline` covers.
    ///
    /// # Errors
    ///
    /// [`PostgresError::Query`] for a bad window or too long a range;
    /// [`PostgresError::Statement`] when the query fails.
    pub async fn gaps(
        &self,
        pipeline: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
        window: Duration,
    ) -> Result<Vec<Gap>, PostgresError> {
        let first = query::check_range(pipeline, from, to, window)?;
        let secs = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT w.start, w.start + $4::float8 * interval '1 second'
             FROM generate_series($2::timestamptz, $3::timestamptz - interval '1 microsecond',
                                  $4::float8 * interval '1 second') AS w(start)
             WHERE NOT EXISTS (
                 SELECT 1 FROM {}.deliveries d
                 WHERE d.pipeline = $1 AND d.window_start <= w.start AND w.start < d.window_end)
             ORDER BY w.start",
            self.schema
        );
        let rows = self
            .client
            .query(&sql, &[&pipeline, &first, &to, &(secs as f64)])
            .await
            .map_err(self.statement("finding gaps"))?;
        Ok(rows
            .iter()
            .map(|row| Gap {
                start: row.get(0),
                end: row.get(1),
            })
            .collect())
    }

    /// Totals per pipeline (or for `pipeline` only) and UTC day of window
    /// start, for windows starting in `[from, to)`.
    ///
    /// # Errors
    ///
    /// [`PostgresError::Statement`] when the query fails.
    pub async fn daily_totals(
        &self,
        pipeline: Option<&str>,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<DayTotal>, PostgresError> {
        let sql = format!(
            "SELECT pipeline, (window_start AT TIME ZONE 'UTC')::date AS day, count(*),
                    sum(row_count)::bigint, sum(byte_count)::bigint
             FROM {}.deliveries
             WHERE ($1::text IS NULL OR pipeline = $1) AND window_start >= $2 AND window_start < $3
             GROUP BY 1, 2 ORDER BY 1, 2",
            self.schema
        );
        let rows = self
            .client
            .query(&sql, &[&pipeline, &from, &to])
            .await
            .map_err(self.statement("totalling deliveries"))?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(rows
            .iter()
            .map(|row| DayTotal {
                pipeline: row.get(0),
                day: row.get::<_, Date>(1),
                files: n(row.get(2)),
                rows: n(row.get(3)),
                bytes: n(row.get(4)),
            })
            .collect())
    }
}

fn to_i64(what: &'static str, path: &str, value: u64) -> Result<i64, PostgresError> {
    i64::try_from(value).map_err(|_| PostgresError::Range {
        what,
        path: path.to_owned(),
        value,
    })
}

/// Turns a failed statement into a [`PostgresError`] naming `action` and
/// `target` (the database, never its password).
fn statement_error<'a>(
    target: &'a str,
    action: &'static str,
) -> impl FnOnce(tokio_postgres::Error) -> PostgresError + 'a {
    move |source| PostgresError::Statement {
        action,
        target: target.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        let c =
            PostgresConfig::parse("postgres://meathook:s3cret-pw@db.example:6543/catalog").unwrap();
        let shown = format!("{c:?} {}", c.target());
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(
            shown.contains("postgres://meathook@db.example:6543/catalog"),
            "{shown}"
        );
        let err = PostgresConfig::parse("postgres://u:s3cret-pw@h:notaport/db").unwrap_err();
        assert!(!err.to_string().contains("s3cret-pw"), "{err}");
    }

    #[test]
    fn only_plain_schema_names_are_accepted() {
        let c = PostgresConfig::parse("host=localhost user=postgres").unwrap();
        assert_eq!(c.clone().with_schema("t_01").unwrap().schema(), "t_01");
        for bad in [
            "",
            "A",
            "1abc",
            "a-b",
            "a\"; DROP TABLE x; --",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(
                    c.clone().with_schema(bad),
                    Err(PostgresError::Schema { .. })
                ),
                "{bad:?} accepted"
            );
        }
    }
}
