//! The HuggingFace dataset sink for meathook.
//!
//! # Overview
//!
//! [`HfSink`] commits each window it is given as one parquet file to a
//! dataset repository on the Hub, over the Hub's own protocol: preupload
//! (which paths already hold which sha256), the LFS batch API, presigned
//! uploads (basic or multipart, without the token), then one NDJSON commit
//! that references the uploaded objects. Parquet is never inlined as
//! base64. It sits behind a `DiskSpool`, which keeps windows on disk until
//! the commit is confirmed and retries them.
//!
//! - **Idempotent**: paths come from the spool's `BatchId`
//!   ([`meathook_files::layout`]); every attempt starts with preupload,
//!   so a replay or a retry after a lost answer skips files already there.
//! - **Paced**: every sink on one repository branch shares one committer,
//!   which coalesces files ready within a short delay into one commit and
//!   keeps under a commit budget (default 100 per hour), honouring 429,
//!   `RateLimit` and `Retry-After`.
//! - **Never replaces**: a path the branch holds with other bytes is a
//!   permanent [`HfError::Conflict`] for that window alone; the rest of its
//!   commit round lands.
//! - **Compacts**: [`HfSink::compactor`] gives a [`HubCompactor`] that
//!   turns each finished day of a pipeline into one file, in one commit
//!   that adds it and deletes its parts ([`compact`]); a replay of a
//!   compacted batch is recognised from the day's record and not committed
//!   again.
//! - **Bounded**: every call has one deadline covering its answer, and
//!   every answer is read with a size cap (`max_answer_bytes`, 8 MiB by
//!   default): a hostile server costs a transient error, not the process.
//! - **Classified errors**: 400/401/403/404/422 are permanent with a
//!   message naming the repository and the token variable; 5xx, 408, 429,
//!   timeouts, resets and answers too large to read are transient. See
//!   [`HfError`].
//! - **Dataset card**: `README.md` gets one `configs:` entry per pipeline;
//!   the rest of the card is kept ([`meathook_files::card`]).
//! - **Secret**: the token ([`HfToken`]) is trimmed of surrounding
//!   whitespace, checked as a header value, never formatted, and sent only
//!   to the endpoint's origin.
//!
//! # Example
//!
//! ```no_run
//! use meathook_core::FlushPolicy;
//! use meathook_hf::HfSink;
//! use meathook_spool::SinkExt as _;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Reading { station: String, value: f64 }
//!
//! let token = std::env::var("HF_TOKEN").unwrap_or_default();
//! let sink = HfSink::<Reading>::new(reqwest::Client::new(), "you/your-dataset", token)
//!     .with_branch("main")
//!     .spooled("/var/lib/meathook/spool/readings", FlushPolicy::hourly());
//! # drop(sink);
//! ```
#![forbid(unsafe_code)]

// The Hub's protocol (the sans-IO actions, the URLs and the back-off
// parsers) is internal. The `fuzzing` feature, for the fuzz targets and the test that
// replays their inputs, makes it public (hidden from the docs); its items
// are `pub` for that, so without the feature `unreachable_pub` would flag
// each one.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod action;
#[cfg(not(feature = "fuzzing"))]
#[allow(unreachable_pub)] // public only with the `fuzzing` feature, see above
mod action;
mod answer;
mod attempt;
mod committer;
pub mod compact;
mod error;
mod hub;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod rate_limit;
#[cfg(not(feature = "fuzzing"))]
#[allow(unreachable_pub)] // public only with the `fuzzing` feature, see above
mod rate_limit;
mod ready;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod repo;
#[cfg(not(feature = "fuzzing"))]
#[allow(unreachable_pub)] // public only with the `fuzzing` feature, see above
mod repo;
mod sink;
mod squash;
mod startup;
mod token;

pub use crate::committer::CommitSettings;
pub use crate::compact::{FileCounts, HubCompaction, HubCompactor};
pub use crate::error::HfError;
pub use crate::repo::{DEFAULT_ENDPOINT, RepoId};
pub use crate::sink::{DEFAULT_ANSWER_LIMIT, HfSink};
pub use crate::token::{HfToken, InvalidToken};
/// The dataset card, for the fuzz targets (it lives in meathook-files).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use meathook_files::card;
