//! The HF sink's decoders on a hostile Hub answer; see `harness/hub.rs`.
#![no_main]

#[path = "../harness/hub.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::run(data);
});
