//! The file layer of meathook, without arrow, parquet, reqwest or
//! object_store: what every sink that writes window files needs, so a
//! custom file sink can be built on `meathook-core`, `meathook-spool` and
//! this crate alone.
#![forbid(unsafe_code)]

pub mod card;
pub mod window_file;

pub use crate::window_file::{
    EncodeFailure, FileCounts, FileEncoder, Landed, Publish, SealedFile, WindowFile,
    WindowFileError,
};
