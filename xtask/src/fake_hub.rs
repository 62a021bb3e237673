//! `cargo xtask fake-hub [--port N] [--data DIR] [...]`: the fake
//! HuggingFace Hub as a standalone server on 127.0.0.1, for pointing
//! independent clients at it (`huggingface_hub`'s `HfApi(endpoint=...)`,
//! `curl`, the example's `[sink.huggingface] endpoint`). Every argument is
//! passed on to the `fake-hub` binary of `meathook-testkit`; it runs until
//! ctrl-c.

use crate::cmd::{cargo, run as sh};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut cmd = cargo([
        "run",
        "--quiet",
        "-p",
        "meathook-testkit",
        "--bin",
        "fake-hub",
        "--",
    ]);
    cmd.args(args);
    sh(
        cmd,
        "usage: cargo xtask fake-hub [--port N] [--data DIR] [--token T]... [--read-token T]... \
         [--multipart-mib N] [--chunk-mib N] [--no-verify]",
    )
}
