//! The supervised runtime of meathook.
//!
//! # Not yet here
//!
//! This crate will own `Meathook` (one task per pipeline, respawn with
//! backoff, graceful shutdown), `Pipeline` (ticking, collect timeout, dedupe,
//! backpressure), `SatayCollector` and the metrics endpoint. None of it is
//! implemented yet: the crate is empty today.
#![forbid(unsafe_code)]
