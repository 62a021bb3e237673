//! Core contracts of meathook.
//!
//! # Overview
//!
//! A pipeline polls a [`Collector`] on a schedule and offers each batch to a
//! stack of [`Sink`] layers, filed under a [`WindowMeta`]. This crate defines
//! those contracts and the layers that need no IO:
//!
//! - [`Buffered`], the bounded in-memory tier, flushing per [`FlushPolicy`];
//! - [`Tee`], fan-out to two stacks, each batch to each branch exactly once;
//! - [`BoxSink`], any stack behind one type, to pick a stack at run time;
//! - [`SinkFailure`], a ready error for a custom sink: any error with an
//!   [`ErrorClass`], and `std::io::Error` classified by its kind;
//! - [`StackStats`], the figures a stack reports, with the rules by which
//!   the figures of several layers combine;
//! - [`Encoder`], the shape of file encoders (parquet, JSON lines, CSV);
//! - [`Backoff`] and [`Clock`], shared by every layer that retries or tells time;
//! - [`Delivery`] and [`Deliveries`], the record of every file a terminal sink
//!   lands and the hook it reports through (the catalog implements it).
//!
//! It does no file or network IO and depends on no HTTP, arrow or parquet
//! crate, so a custom sink needs only this crate and `meathook-spool`. The
//! combinators (`.buffered(..)`, `.tee(..)`, `.spooled(..)`) are on
//! `meathook_spool::SinkExt`, re-exported as `meathook::SinkExt`.
//!
//! # Examples
//!
//! A terminal sink is a type that implements [`Sink`]:
//!
//! ```
//! use std::convert::Infallible;
//! use meathook_core::{IngestError, Receipt, Sink, WindowMeta};
//!
//! /// Counts what reaches it.
//! struct Count(usize);
//!
//! impl<R: Send> Sink<R> for Count {
//!     type Error = Infallible;
//!
//!     async fn ingest(&mut self, _window: &WindowMeta, records: Vec<R>) -> Result<Receipt<Infallible>, IngestError<R, Infallible>> {
//!         self.0 += records.len();
//!         Ok(Receipt::all(records.len()))
//!     }
//!
//!     async fn flush(&mut self) -> Result<(), Infallible> {
//!         Ok(())
//!     }
//! }
//! ```
#![forbid(unsafe_code)]

mod attempts;
mod backlog;
mod backoff;
mod blocking;
mod boxed;
mod buffered;
mod catalog_stats;
mod chain;
mod clock;
mod collector;
mod deliveries;
mod delivery;
mod encoder;
mod failure;
pub mod name;
mod policy;
mod sink;
mod stack_stats;
mod tee;
mod window;

pub use attempts::Attempts;
pub use backlog::LayerStats;
pub use backoff::Backoff;
pub use blocking::{MAX_BLOCKING, blocking};
pub use boxed::{BoxSink, BoxSinkError};
pub use buffered::{Buffered, BufferedError, Capacity, Weigher, inline_size};
pub use catalog_stats::{CatalogSnapshot, CatalogStats};
pub use chain::ErrorChain;
pub use clock::{Clock, SystemClock, TokioClock};
pub use collector::Collector;
pub use deliveries::{Deliveries, DeliveryLog, DeliveryLogError};
pub use delivery::Delivery;
pub use encoder::{EncodeSession, Encoder};
pub use failure::SinkFailure;
pub use policy::{FlushPolicy, MIN_WINDOW, PolicyError};
pub use sink::{
    ChunkedError, ChunkedResult, Drain, ErrorClass, IngestError, Receipt, RecordChunks,
    RecordRejected, Sink, SinkError,
};
pub use stack_stats::StackStats;
pub use tee::{Branch, Tee, TeeError, TeeRecord};
pub use time::OffsetDateTime;
pub use window::{BatchId, WindowMeta};
