//! The HuggingFace dataset sink for meathook.
//!
//! # Not yet here
//!
//! This crate will own `HfSink`: sans-IO Hub actions (preupload, LFS batch,
//! multipart upload, commit) sent through `satay-reqwest`, commit coalescing
//! under a per-repo budget, and the dataset card. None of it is implemented
//! yet: the crate is empty and pulls in no HTTP dependency today.
#![forbid(unsafe_code)]
