//! `cargo xtask ci browser`: a headless Chromium, which the status page's
//! test drives to render the page and take a screenshot of it.
//!
//! On `PATH` already (`chromium`, `chromium-browser`): nothing to do.
//! Missing: Debian's `chromium` package is installed with apt-get (as root;
//! otherwise the step says how to install it). The test step then sets
//! [`REQUIRE_ENV`] and [`PATH_ENV`], so a missing browser fails the test
//! instead of skipping it.

use std::path::PathBuf;
use std::process::Command;

use crate::cmd::{output, run as sh};

/// Set for the test step: tests that need the browser fail without it.
pub(crate) const REQUIRE_ENV: &str = "MEATHOOK_REQUIRE_BROWSER";

/// Set for the test step: the browser the tests run.
pub(crate) const PATH_ENV: &str = "MEATHOOK_BROWSER";

/// The names the browser goes by on `PATH`.
const NAMES: &[&str] = &["chromium", "chromium-browser"];

/// The browser on `PATH`, if there is one.
pub(crate) fn path() -> Option<PathBuf> {
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs)
        .flat_map(|d| NAMES.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}

pub(crate) fn ensure() -> Result<(), String> {
    if let Some(found) = path() {
        eprintln!("  headless browser: {}", found.display());
        return Ok(());
    }
    let mut id = Command::new("id");
    id.arg("-u");
    if !output(id).is_ok_and(|uid| uid.trim() == "0") {
        return Err("Chromium is not installed and this is not root, so it cannot be installed here\n  \
             how to fix: install it (Debian/Ubuntu: apt-get install chromium) or set MEATHOOK_BROWSER \
             to a Chromium or Chrome binary"
            .to_owned());
    }
    let mut update = Command::new("apt-get");
    update.args(["-q", "update"]);
    sh(update, "the Debian package mirrors must be reachable")?;
    let mut install = Command::new("apt-get");
    install
        .args(["-q", "-y", "--no-install-recommends", "install", "chromium"])
        .env("DEBIAN_FRONTEND", "noninteractive");
    sh(
        install,
        "install chromium by hand and read apt-get's message",
    )?;
    path()
        .map(drop)
        .ok_or_else(|| "apt-get installed chromium, but it is not on PATH".to_owned())
}
