//! Record types shared by the black-box tests.
#![allow(dead_code, unreachable_pub)] // each test file uses a part

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Quality {
    Good,
    Suspect,
    Missing,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
    pub name: Option<String>,
}

/// Every type the parquet encoder promises to carry (meathook-parquet's
/// test record): CSV refuses it for its nested `location`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Station {
    pub id: String,
    pub seq: u64,
    pub delta: i64,
    pub small: i32,
    pub byte: u8,
    pub ok: bool,
    pub value: f64,
    pub maybe: Option<f64>,
    pub note: Option<String>,
    pub quality: Quality,
    pub location: Location,
    pub history: Vec<f64>,
    pub tags: Vec<String>,
    #[serde(with = "meathook_files::timestamp")]
    pub observed_at: OffsetDateTime,
}
