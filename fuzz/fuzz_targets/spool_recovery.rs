//! The spool's frame scanner, segment recovery and inspector on a hostile
//! segment file; see `harness/spool.rs`.
#![no_main]

#[path = "../harness/spool.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::run(data);
});
