//! A connected catalog: the client, the quoted schema, and the idempotent
//! upsert keyed on (destination, path).

use tokio_postgres::Client;

use super::PostgresError;
use super::error::{statement_error, to_i64};
use crate::record::DeliveryRecord;

/// A connected catalog.
#[derive(Debug)]
pub struct Catalog {
    pub(super) client: Client,
    /// The schema name, quoted for SQL.
    pub(super) schema: String,
    /// The schema name as configured.
    pub(super) schema_name: String,
    /// Where, without the password.
    pub(super) target: String,
    /// The task driving the connection; aborted on drop.
    pub(super) task: tokio::task::JoinHandle<()>,
}

impl Drop for Catalog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Catalog {
    pub(super) fn statement(
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
                  sha256, commit_id, delivered_at, attempts, replaces)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
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
                    &r.replaces,
                ],
            )
            .await
            .map_err(fail("upserting a delivery"))?;
        }
        tx.commit().await.map_err(fail("committing deliveries"))?;
        Ok(records.len() as u64)
    }
}
