//! The records every benchmark uses, shared with the predecessor crate's
//! baseline program (`benches/baseline`) so both encode exactly the same
//! readings.

use serde::{Deserialize, Serialize};
use time::macros::datetime;

/// Records in a spool benchmark batch.
pub(crate) const PER_BATCH: usize = 100;

/// One reading of a station, as weather and air-quality APIs report it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Reading {
    pub(crate) station_id: String,
    pub(crate) timestamp: String,
    pub(crate) value: f64,
    pub(crate) unit: String,
}

/// Readings `range` of 64 stations with nearly all-distinct values.
pub(crate) fn readings(range: std::ops::Range<usize>) -> Vec<Reading> {
    let stations: Vec<String> = (0..64).map(|i| format!("S{:03}", 100 + i)).collect();
    let start = datetime!(2026-11-23 10:00 UTC);
    range
        .map(|i| Reading {
            station_id: stations[i % 64].clone(),
            timestamp: (start + time::Duration::milliseconds((i / 64) as i64 * 3_600))
                .format(&time::format_description::well_known::Rfc3339)
                .expect("format"),
            // Distinct values, as real sensors give (a multiplicative hash
            // of the index), so dictionary encoding gets no free ride.
            value: 20.0 + ((i as u64).wrapping_mul(2_654_435_761) % 1_000_003) as f64 * 1e-5,
            unit: "deg C".to_owned(),
        })
        .collect()
}

/// Readings as a weather API reports them: 64 stations, one reading a
/// minute each, one decimal, each station drifting slowly (the NEA samples'
/// shape: values repeat across stations and minutes).
pub(crate) fn sensor_readings(n: usize) -> Vec<Reading> {
    let stations: Vec<String> = (0..64).map(|i| format!("S{:03}", 100 + i)).collect();
    let start = datetime!(2026-11-23 10:00 UTC);
    let mut rng = fastrand::Rng::with_seed(7);
    let mut level: Vec<f64> = (0..64).map(|_| 24.0 + rng.f64() * 8.0).collect();
    (0..n)
        .map(|i| {
            let s = i % 64;
            level[s] = (level[s] + (rng.f64() - 0.5) * 0.2).clamp(20.0, 36.0);
            Reading {
                station_id: stations[s].clone(),
                timestamp: (start + time::Duration::minutes((i / 64) as i64))
                    .format(&time::format_description::well_known::Rfc3339)
                    .expect("format"),
                value: (level[s] * 10.0).round() / 10.0,
                unit: "deg C".to_owned(),
            }
        })
        .collect()
}

/// Batch `b` of the spool benchmarks: [`PER_BATCH`] readings.
pub(crate) fn batch(b: usize) -> Vec<Reading> {
    (0..PER_BATCH)
        .map(|i| {
            let n = b * PER_BATCH + i;
            Reading {
                station_id: format!("S{:03}", 100 + n % 64),
                timestamp: format!(
                    "2026-11-23T{:02}:{:02}:{:02}Z",
                    (n / 3600) % 24,
                    (n / 60) % 60,
                    n % 60
                ),
                value: 20.0 + (n as f64 * 0.37) % 15.0,
                unit: "deg C".into(),
            }
        })
        .collect()
}
