//! The questions the `meathook-catalog` command asks, answered in SQL: the
//! deliveries of a pipeline, the windows none covers, totals per day.

use std::time::Duration;

use time::{Date, OffsetDateTime};

use super::{Catalog, PostgresError};
use crate::query::{self, DayTotal, Gap};
use crate::record::{DeliveryRecord, RECORD_VERSION};

impl Catalog {
    /// The deliveries of `pipeline` whose window starts in `[from, to)`,
    /// ordered by window start and path, each replaced file with the
    /// compacted file that holds its rows now (as [`query::list`]).
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
            "SELECT d.pipeline, d.window_start, d.window_end, d.destination, d.path, d.row_count,
                    d.byte_count, d.sha256, d.commit_id, d.delivered_at, d.attempts, d.replaces,
                    (SELECT c.path FROM {s}.deliveries c
                     WHERE c.destination = d.destination AND c.replaces @> ARRAY[d.path]
                     ORDER BY c.delivered_at DESC LIMIT 1)
             FROM {s}.deliveries d
             WHERE d.pipeline = $1 AND d.window_start >= $2 AND d.window_start < $3
             ORDER BY d.window_start, d.path",
            s = self.schema
        );
        let rows = self
            .client
            .query(&sql, &[&pipeline, &from, &to])
            .await
            .map_err(self.statement("listing deliveries"))?;
        Ok(rows
            .iter()
            .map(|row| DeliveryRecord {
                v: if row.get::<_, Vec<String>>(11).is_empty() {
                    1
                } else {
                    RECORD_VERSION
                },
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
                replaces: row.get(11),
                compacted_into: row.get(12),
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
                 WHERE d.pipeline = $1 AND cardinality(d.replaces) = 0
                   AND d.window_start <= w.start AND w.start < d.window_end)
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
             WHERE ($1::text IS NULL OR pipeline = $1) AND cardinality(replaces) = 0
               AND window_start >= $2 AND window_start < $3
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
