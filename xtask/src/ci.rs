//! `cargo xtask ci`: the checks a submission must pass, in order.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::cmd::{cargo, output, run as sh};

type Step = fn() -> Result<(), String>;

const STEPS: &[(&str, Step)] = &[
    ("fmt", fmt),
    ("clippy", clippy),
    ("python", crate::python::setup),
    ("promtool", crate::promtool::ensure),
    ("browser", crate::browser::ensure),
    ("postgres", crate::postgres::ensure),
    ("test", test),
    ("doc", doc),
    ("features", features),
    ("deny", deny),
];

/// Feature sets that matter: the default, the bare core, and everything.
const FEATURE_SETS: &[&[&str]] = &[&[], &["--no-default-features"], &["--all-features"]];

/// Crates that `--no-default-features` and the file layer must not pull
/// in; each name covers its family (`arrow` covers `arrow-array`, `hyper`
/// covers `hyper-util`), see [`is_heavy`].
const HEAVY_CRATES: &[&str] = &[
    "reqwest",
    "hyper",
    "arrow",
    "parquet",
    "object_store",
    "serde_arrow",
    "tokio-postgres",
];

pub(crate) fn run_step(name: &str) -> Result<(), String> {
    let (_, step) = STEPS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| format!("unknown ci step {name:?}; steps: {}", step_names()))?;
    step()
}

fn step_names() -> String {
    STEPS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

pub(crate) fn run(step: Option<&str>) -> Result<(), String> {
    if let Some(step) = step {
        return run_step(step);
    }
    let started = Instant::now();
    for (name, step) in STEPS {
        eprintln!("== ci: {name}");
        let t = Instant::now();
        step().map_err(|e| {
            format!("ci step {name} failed: {e}\n  rerun alone: cargo xtask ci {name}")
        })?;
        eprintln!("== ci: {name} ok ({:.0} s)", t.elapsed().as_secs_f64());
    }
    eprintln!(
        "== ci: all steps passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn fmt() -> Result<(), String> {
    sh(
        cargo(["fmt", "--all", "--", "--check"]),
        "run `cargo fmt --all` and commit the result",
    )
}

fn clippy() -> Result<(), String> {
    for features in FEATURE_SETS {
        let mut cmd = cargo(["clippy", "--workspace", "--all-targets", "--locked"]);
        cmd.args(*features).args(["--", "-D", "warnings"]);
        let hint = format!(
            "fix the warnings above (`cargo clippy --workspace --all-targets {} --fix --allow-dirty` fixes some); \
             an `allow` needs a comment saying why",
            features.join(" ")
        );
        sh(cmd, &hint)?;
    }
    Ok(())
}

fn test() -> Result<(), String> {
    let mut cmd = cargo(["test", "--workspace", "--all-features", "--locked"]);
    // Interop tests read files with pyarrow from the `python` step's venv;
    // here a missing venv is a failure, not a skip.
    cmd.env(crate::python::REQUIRE_ENV, "1").env(
        "MEATHOOK_PYTHON",
        crate::python::venv().join("bin").join("python"),
    );
    // The metrics tests check the exposition with Prometheus' promtool from
    // the `promtool` step; here too a missing tool fails.
    cmd.env(crate::promtool::REQUIRE_ENV, "1")
        .env(crate::promtool::PATH_ENV, crate::promtool::path());
    // The status page's test renders it in the `browser` step's Chromium.
    cmd.env(crate::browser::REQUIRE_ENV, "1");
    if let Some(browser) = crate::browser::path() {
        cmd.env(crate::browser::PATH_ENV, browser);
    }
    sh(
        cmd,
        "run the failing test alone with `cargo test -p <crate> --test it <file>::<name>` and read its message",
    )
}

fn doc() -> Result<(), String> {
    let mut cmd = cargo([
        "doc",
        "--workspace",
        "--no-deps",
        "--all-features",
        "--locked",
    ]);
    cmd.env("RUSTDOCFLAGS", "-D warnings");
    sh(
        cmd,
        "fix the broken links or missing docs named above; `cargo doc --no-deps --open` shows the result",
    )
}

/// The crates a custom file sink is built on: they must pull in no heavy
/// crate either (ARCHITECTURE.md, dependency direction).
const FILE_LAYER: &[&str] = &["meathook-core", "meathook-spool", "meathook-files"];

/// Whether `name` is one of [`HEAVY_CRATES`] or of its family
/// (`arrow-array`, `hyper-util`, `parquet_derive`).
fn is_heavy(name: &str) -> bool {
    HEAVY_CRATES.iter().any(|heavy| {
        name.strip_prefix(heavy)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '_']))
    })
}

/// The heavy crates among `tree`'s packages, each once.
fn heavy_in(tree: &[(String, String)]) -> Vec<&str> {
    let mut offenders: Vec<&str> = tree
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| is_heavy(name))
        .collect();
    offenders.dedup();
    offenders
}

/// The bare facade, and the crates a custom file sink is built on, must
/// pull in no HTTP, arrow or parquet crate; the default build (and every
/// feature on) one `reqwest` and one TLS crypto provider.
fn features() -> Result<(), String> {
    // Both light builds are checked before either fails, so one run names
    // every offender.
    let light = [
        bare_facade_is_light(),
        file_layer_is_light(),
        default_build_has_no_command_line(),
    ];
    let failures: Vec<String> = light.into_iter().filter_map(Result::err).collect();
    if !failures.is_empty() {
        return Err(failures.join("\n"));
    }
    for features in [&[][..], &["--all-features"][..]] {
        one_http_stack(features)?;
    }
    Ok(())
}

/// The facade's `--no-default-features` build compiles none of
/// [`HEAVY_CRATES`].
fn bare_facade_is_light() -> Result<(), String> {
    let tree = facade_tree(&["--no-default-features"])?;
    let offenders = heavy_in(&tree);
    if offenders.is_empty() {
        eprintln!(
            "  --no-default-features pulls in none of {}",
            HEAVY_CRATES.join(", ")
        );
    } else {
        return Err(format!(
            "--no-default-features pulls in {}\n  how to fix: make the dependency optional behind the `parquet` or \
             `huggingface` feature, or `postgres` for the catalog (see `cargo tree -e normal --no-default-features -p meathook -i <crate>`)",
            offenders.join(", ")
        ));
    }
    Ok(())
}

/// The facade's default build compiles no command-line parser: the
/// commands (the facade's, the spool's, the catalog's) are behind `cli`
/// features a library user does not get by default.
fn default_build_has_no_command_line() -> Result<(), String> {
    let tree = facade_tree(&[])?;
    if tree.iter().any(|(name, _)| name == "clap") {
        return Err(
            "the default build pulls in clap\n  how to fix: keep every command behind a `cli` feature that \
             is off in the facade's defaults (see `cargo tree -e normal -p meathook -i clap`)"
                .into(),
        );
    }
    eprintln!("  the default build has no command-line parser (clap)");
    Ok(())
}

/// A crate depending on `meathook-core`, `meathook-spool` and
/// `meathook-files` compiles none of [`HEAVY_CRATES`].
fn file_layer_is_light() -> Result<(), String> {
    let tree = package_tree(FILE_LAYER, &[])?;
    let offenders = heavy_in(&tree);
    let shown = FILE_LAYER.join(" + ");
    if !offenders.is_empty() {
        let packages: String = FILE_LAYER.iter().map(|p| format!(" -p {p}")).collect();
        return Err(format!(
            "{shown} pull in {}\n  how to fix: a custom file sink is built on these crates alone, so they \
             depend on no HTTP, arrow, parquet or object_store crate; move the dependency (and the code that \
             needs it) to meathook-parquet or meathook-hf (see who brings it with \
             `cargo tree -e normal{packages} -i <crate>`)",
            offenders.join(", "),
        ));
    }
    eprintln!(
        "  {shown}: {} packages, none of {}",
        tree.len(),
        HEAVY_CRATES.join(", ")
    );
    Ok(())
}

/// The TLS crypto providers rustls can be built on; a build compiles one.
const CRYPTO_PROVIDERS: &[&str] = &["ring", "aws-lc-rs"];

/// At most one `reqwest` (one version) and one crypto provider in the
/// facade's normal dependencies with `features`: two are two HTTP stacks to
/// compile, audit and keep patched.
fn one_http_stack(features: &[&str]) -> Result<(), String> {
    let shown = if features.is_empty() {
        "the default build".to_owned()
    } else {
        format!("the {} build", features.join(" "))
    };
    // The flags as they go into a suggested command line.
    let flags: String = features.iter().map(|f| format!(" {f}")).collect();
    let tree = facade_tree(features)?;
    let versions = |names: &[&str]| -> Vec<String> {
        tree.iter()
            .filter(|(name, _)| names.contains(&name.as_str()))
            .map(|(name, version)| format!("{name}@{version}"))
            .collect()
    };
    let reqwests = versions(&["reqwest"]);
    if reqwests.len() > 1 {
        return Err(format!(
            "{shown} has {} reqwests ({})\n  how to fix: every HTTP client (ours and object_store's) must use the \
             workspace's reqwest; see who brings the other with `cargo tree -e normal -p meathook{} -i <crate@version>`, \
             then move that dependency to a release on the same reqwest or put it behind a feature \
             (ARCHITECTURE.md, dependency table)",
            reqwests.len(),
            reqwests.join(", "),
            flags,
        ));
    }
    let providers = versions(CRYPTO_PROVIDERS);
    if providers.len() > 1 {
        return Err(format!(
            "{shown} has {} TLS crypto providers ({})\n  how to fix: rustls must be built on one provider (aws-lc-rs, \
             reqwest 0.13's and object_store's default); see which crate turns on the other with \
             `cargo tree -e normal,features -p meathook{} -i <crate>` and turn that feature off \
             (ARCHITECTURE.md, dependency table)",
            providers.len(),
            providers.join(", "),
            flags,
        ));
    }
    eprintln!(
        "  {shown}: one reqwest ({}), one crypto provider ({})",
        reqwests.first().map_or("none", String::as_str),
        providers.first().map_or("none", String::as_str),
    );
    Ok(())
}

/// The distinct `(name, version)` packages among the facade's normal
/// dependencies with `features` (this platform's).
fn facade_tree(features: &[&str]) -> Result<Vec<(String, String)>, String> {
    package_tree(&["meathook"], features)
}

/// The distinct `(name, version)` packages among the normal dependencies
/// of `packages` (and the packages themselves) with `features` (this
/// platform's).
fn package_tree(packages: &[&str], features: &[&str]) -> Result<Vec<(String, String)>, String> {
    let mut cmd = cargo(["tree", "--locked", "-e", "normal"]);
    for package in packages {
        cmd.args(["-p", package]);
    }
    cmd.args(["--prefix", "none", "--format", "{p}"]);
    cmd.args(features);
    let out = output(cmd)?;
    let mut packages: Vec<(String, String)> = out
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let version = words.next()?.trim_start_matches('v');
            Some((name.to_owned(), version.to_owned()))
        })
        .collect();
    packages.sort();
    packages.dedup();
    Ok(packages)
}

fn deny() -> Result<(), String> {
    if cargo(["deny", "--version"])
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        eprintln!("  cargo-deny is missing; installing it");
        sh(
            cargo(["install", "--locked", "cargo-deny"]),
            "install it by hand: cargo install --locked cargo-deny",
        )?;
    }
    sh(
        cargo([
            "deny",
            "--all-features",
            "check",
            "bans",
            "licenses",
            "sources",
        ]),
        "read the report above; licences are allowed in deny.toml, bans list why a crate is refused",
    )?;
    if advisory_db_reachable() {
        sh(
            cargo(["deny", "--all-features", "check", "advisories"]),
            "update or replace the crate named in the advisory",
        )
    } else {
        eprintln!(
            "  advisories: skipped, the advisory database (github.com) is not reachable from this machine"
        );
        Ok(())
    }
}

fn advisory_db_reachable() -> bool {
    let Ok(mut addrs) = ("github.com", 443).to_socket_addrs() else {
        return false;
    };
    addrs.any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok())
}
