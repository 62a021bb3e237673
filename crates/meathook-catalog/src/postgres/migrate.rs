//! The catalog's schema: created on first use and moved forward by
//! numbered migrations recorded in `schema_migrations`, under an advisory
//! lock so that two processes starting together do not race.

use super::error::statement_error;
use super::{Catalog, PostgresError};

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
    // 2: compacted files, and the files each replaced.
    "ALTER TABLE {schema}.deliveries ADD COLUMN replaces text[] NOT NULL DEFAULT '{}';
    CREATE INDEX deliveries_replaces ON {schema}.deliveries USING gin (replaces);",
];

impl Catalog {
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

    pub(super) async fn migrate(&mut self) -> Result<(), PostgresError> {
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
}
