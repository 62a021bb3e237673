//! The window-file pipeline every file-producing terminal sink shares:
//! encode a window chunk by chunk into a hashed scratch file, with the
//! records that cannot be encoded alone left out and reported, seal it,
//! publish it through the sink's [`Publish`], and report the delivery.
//!
//! A sink is then "window file + publish": [`WindowFile`] does everything
//! up to a sealed, hashed file and everything after it landed; the sink's
//! [`Publish`] lands the file (a link into a directory, a conditional put,
//! a commit) and names its errors, keeping the pipeline's
//! [`WindowFileError`] as their source.

mod encode;
mod error;
mod lenient;
mod pipeline;
mod publish;
#[cfg(test)]
mod tests;

pub use self::error::{WindowFileError, io_class};
pub use self::lenient::{EncodeFailure, FileEncoder};
pub use self::pipeline::{FileCounts, WindowFile};
pub use self::publish::{Landed, Publish, SealedFile};
