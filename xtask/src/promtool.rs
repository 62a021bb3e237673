//! `cargo xtask ci promtool`: Prometheus' own `promtool`, which the
//! runtime's metrics tests feed the textfile and `/metrics` to (its
//! `check metrics` is the parser node_exporter's textfile collector uses).
//!
//! Already in `target/promtool/` or on `PATH`: nothing to do. Missing: the
//! binary is taken from Debian's `prometheus` package, fetched with
//! `apt-get download` and unpacked with `dpkg-deb` into `target/promtool/`,
//! so nothing is installed system-wide, no Prometheus server is started and
//! no root is needed (unless the package lists must be fetched first). The
//! test step then sets [`REQUIRE_ENV`] and [`PATH_ENV`], so a missing
//! `promtool` fails the metrics tests instead of skipping them.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::cmd::{output, root, run as sh};

/// Set for the test step: tests that need `promtool` fail without it.
pub(crate) const REQUIRE_ENV: &str = "MEATHOOK_REQUIRE_PROMTOOL";

/// Set for the test step: the `promtool` the tests run.
pub(crate) const PATH_ENV: &str = "MEATHOOK_PROMTOOL";

/// The Debian package that ships `/usr/bin/promtool`.
const PACKAGE: &str = "prometheus";

fn dir() -> PathBuf {
    root().join("target").join("promtool")
}

/// Where the tests find `promtool`: the unpacked one, else the one on
/// `PATH`, else where it is about to be unpacked.
pub(crate) fn path() -> PathBuf {
    let unpacked = dir().join("promtool");
    if unpacked.is_file() {
        return unpacked;
    }
    on_path().unwrap_or(unpacked)
}

fn on_path() -> Option<PathBuf> {
    let out = Command::new("sh")
        .args(["-c", "command -v promtool"])
        .output()
        .ok()?;
    let found = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !found.is_empty()).then(|| PathBuf::from(found))
}

pub(crate) fn ensure() -> Result<(), String> {
    let promtool = path();
    if !promtool.is_file() {
        eprintln!("  promtool is missing; unpacking it from Debian's {PACKAGE} package");
        unpack()?;
    }
    let mut version = Command::new(&promtool);
    version.arg("--version");
    let shown = output(version)?;
    eprintln!(
        "  {}: {}",
        promtool.display(),
        shown.lines().next().unwrap_or_default()
    );
    Ok(())
}

/// `apt-get download` + `dpkg-deb`: only `usr/bin/promtool` is unpacked.
fn unpack() -> Result<(), String> {
    let dir = dir();
    let scratch = dir.join("download");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    if download(&scratch).is_err() {
        // A fresh machine has no package lists yet: fetch them (root only).
        let mut id = Command::new("id");
        id.arg("-u");
        if !output(id).is_ok_and(|uid| uid.trim() == "0") {
            return Err(format!(
                "apt-get download {PACKAGE} failed and this is not root, so the package lists cannot be updated\n  \
                 how to fix: run `apt-get update` as root, or install promtool (Debian/Ubuntu: apt-get install \
                 {PACKAGE}; elsewhere Prometheus' release tarball) and put it on PATH"
            ));
        }
        let mut update = Command::new("apt-get");
        update.args(["-q", "update"]);
        sh(update, "the Debian package mirrors must be reachable")?;
        download(&scratch)?;
    }
    let deb = std::fs::read_dir(&scratch)
        .map_err(|e| format!("cannot list {}: {e}", scratch.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .ok_or_else(|| format!("apt-get download left no .deb in {}", scratch.display()))?;
    // dpkg-deb --fsys-tarfile DEB | tar -x ./usr/bin/promtool
    let mut fsys = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start dpkg-deb: {e}"))?;
    let tar_in = fsys
        .stdout
        .take()
        .ok_or_else(|| "dpkg-deb gave no output pipe".to_owned())?;
    let tar = Command::new("tar")
        .args(["-x", "-C"])
        .arg(&scratch)
        .arg("./usr/bin/promtool")
        .stdin(tar_in)
        .status()
        .map_err(|e| format!("cannot start tar: {e}"))?;
    let unpacked = fsys
        .wait()
        .map_err(|e| format!("dpkg-deb did not finish: {e}"))?;
    if !unpacked.success() || !tar.success() {
        return Err(format!(
            "unpacking promtool from {} failed (dpkg-deb: {unpacked}, tar: {tar})\n  how to fix: install \
             promtool by hand (Debian/Ubuntu: apt-get install {PACKAGE}) and put it on PATH",
            deb.display()
        ));
    }
    let target = dir.join("promtool");
    std::fs::rename(scratch.join("usr/bin/promtool"), &target)
        .map_err(|e| format!("cannot move promtool to {}: {e}", target.display()))?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

fn download(into: &std::path::Path) -> Result<(), String> {
    let mut download = Command::new("apt-get");
    download.args(["-q", "download", PACKAGE]).current_dir(into);
    sh(
        download,
        "apt-get must know the package: Debian or Ubuntu, with its package lists fetched",
    )
}
