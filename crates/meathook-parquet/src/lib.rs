//! File encoders and file destinations for meathook.
//!
//! # Not yet here
//!
//! This crate will own `ParquetEncoder` (arrow schema derived with
//! `serde_arrow`, streaming row groups), the JSON-lines and CSV encoders, and
//! the file-destination terminal sink over `object_store` (local directory,
//! `s3://`, `gs://`, `az://`, `memory://`). None of it is implemented yet:
//! the crate is empty and pulls in no arrow or parquet dependency today.
#![forbid(unsafe_code)]
