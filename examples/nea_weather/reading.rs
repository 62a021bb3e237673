//! The record the NEA example stores, shared with `show_dataset`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One station's reading, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Reading {
    /// NEA station id, such as `S109`.
    pub(crate) station_id: String,
    /// When NEA took the reading.
    #[serde(with = "meathook::parquet::timestamp")]
    pub(crate) timestamp: OffsetDateTime,
    /// The reading.
    pub(crate) value: f64,
    /// Its unit, as NEA names it (`deg C`, `mm`, `percentage`).
    pub(crate) unit: String,
}
