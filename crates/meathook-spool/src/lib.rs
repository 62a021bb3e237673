//! The durable tier of meathook, and the combinators that build sink stacks.
//!
//! # What lives here
//!
//! - [`SinkExt`]: `.buffered(policy)` and `.tee(other)` on every sink. It is
//!   defined here, not in `meathook-core`, because this is the lowest crate
//!   that knows every layer, so one trait can carry every combinator and
//!   `use meathook::SinkExt as _;` brings all of them into scope.
//!
//! # Not yet here
//!
//! `DiskSpool` — the write-ahead spool (segment format, writer, recovery,
//! quarantine, limits, background delivery) and its `.spooled(dir, policy)`
//! combinator — is not implemented yet. Nothing in this crate writes to disk
//! today.
#![forbid(unsafe_code)]

mod ext;

pub use ext::SinkExt;
