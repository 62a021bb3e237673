//! The delivery catalogs' figures (`meathook_catalog_*`), summed over
//! every watched catalog and read at each scrape.

use std::sync::{Arc, Mutex, PoisonError};

use meathook_core::CatalogStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// The delivery catalogs whose figures are exported, read at each scrape.
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalogs(Arc<Mutex<Vec<CatalogStats>>>);

impl Collector for Catalogs {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let catalogs = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if catalogs.is_empty() {
            return Ok(());
        }
        let mut sum = [0u64; 6];
        let mut up = true;
        let mut database = false;
        for c in catalogs.iter() {
            let s = c.snapshot();
            database |= s.database;
            let figures = [
                s.manifest_writes,
                s.manifest_failures,
                s.database_writes,
                s.database_failures,
                s.backlog,
                s.database_rejected,
            ];
            for (total, v) in sum.iter_mut().zip(figures) {
                *total = total.saturating_add(v);
            }
            up &= s.database_up || !s.database;
        }
        drop(catalogs);
        let counters = [
            (
                "catalog_manifest_writes",
                "Delivery records appended and synced to the manifest",
                sum[0],
            ),
            (
                "catalog_manifest_failures",
                "Delivery records the manifest failed to keep (the batch is retried)",
                sum[1],
            ),
            (
                "catalog_database_writes",
                "Delivery records upserted into the catalog database",
                sum[2],
            ),
            (
                "catalog_database_failures",
                "Failed attempts to reach or write the catalog database",
                sum[3],
            ),
            (
                "catalog_database_rejected",
                "Delivery records the catalog database refused, set aside in <manifest>.rejected",
                sum[5],
            ),
        ];
        // The database figures only where a database is fed.
        let shown = if database { 5 } else { 2 };
        for (name, help, value) in counters.into_iter().take(shown) {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let gauges = [
            (
                "catalog_backfill_backlog_records",
                "Delivery records in the manifest not yet in the database",
                i64::try_from(sum[4]).unwrap_or(i64::MAX),
            ),
            (
                "catalog_database_up",
                "1 while the last back-fill pass reached the database",
                i64::from(up),
            ),
        ];
        for (name, help, value) in gauges.into_iter().filter(|_| database) {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

impl Catalogs {
    /// Adds a catalog to those exported.
    pub(crate) fn watch(&self, stats: CatalogStats) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(stats);
    }
}
