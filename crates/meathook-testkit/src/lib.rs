//! Servers the tests, the demo and the benchmarks talk to, on 127.0.0.1.
//!
//! - [`FakeNea`]: NEA's real-time weather API (air temperature, rainfall,
//!   relative humidity) in the shape nea-rs decodes, with a new reading per
//!   station on a fixed cadence, fault injection per route, and a log of
//!   every reading it served.
//! - [`hub::FakeHub`]: the HuggingFace Hub routes a dataset sink and the
//!   official `huggingface_hub` client use, with fault injection per route,
//!   request counters and a commit log.
//! - [`python::interpreter`]: the venv the interop tests run Python
//!   readers and clients from.
//! - [`fuzz::replay`]: the fuzz targets' saved inputs, run as ordinary
//!   tests.
//! - [`test_in_child!`]: one test run again alone in a child process.
//! - [`conformance`]: the `Sink` conformance suite every sink's tests run
//!   (and users' sinks can), with [`conformance::Recorder`], an inner sink
//!   that keeps what reaches it.
#![forbid(unsafe_code)]

pub mod browser;
pub mod child;
pub mod conformance;
pub mod fuzz;
pub mod hub;
pub mod logs;
mod nea;
pub mod python;

pub use nea::{FakeNea, FakeNeaConfig, Fault, Route, ServedReading};
