//! `cargo xtask ci postgres`: makes sure the PostgreSQL the catalog tests
//! use (127.0.0.1:5432, user `postgres`, trust authentication) is running.
//!
//! Already listening: nothing to do. Installed but stopped: start every
//! cluster (`pg_ctlcluster`, or `service postgresql start`). Not installed
//! (a fresh machine): install Debian's `postgresql` with apt-get, allow the
//! `postgres` user in without a password on 127.0.0.1 only, and start it.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cmd::{output, run as sh};

const ADDR: ([u8; 4], u16) = ([127, 0, 0, 1], 5432);

/// The line a fresh install gets at the top of `pg_hba.conf`.
const TRUST_LINE: &str = "host all postgres 127.0.0.1/32 trust";

pub(crate) fn ensure() -> Result<(), String> {
    if listening() {
        return check();
    }
    let installed = has("pg_lsclusters") || Path::new("/etc/init.d/postgresql").exists();
    if !installed {
        eprintln!("  PostgreSQL is not installed; installing Debian's postgresql");
        install()?;
    }
    start()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !listening() {
        if Instant::now() > deadline {
            return Err(
                "PostgreSQL did not start listening on 127.0.0.1:5432 within 60 s\n  how to fix: \
                 read /var/log/postgresql/*.log; `pg_lsclusters` shows each cluster's state"
                    .to_owned(),
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    check()
}

fn listening() -> bool {
    TcpStream::connect_timeout(&SocketAddr::from(ADDR), Duration::from_secs(1)).is_ok()
}

fn has(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Starts every cluster `pg_lsclusters` lists (or the init script).
fn start() -> Result<(), String> {
    if has("pg_lsclusters") && has("pg_ctlcluster") {
        let clusters = output(Command::new("pg_lsclusters"))?;
        // Ver Cluster Port Status Owner Data-directory Log-file
        for line in clusters.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if let [version, name, _port, status, ..] = fields[..]
                && status != "online"
            {
                let mut cmd = Command::new("pg_ctlcluster");
                cmd.args([version, name, "start"]);
                sh(
                    cmd,
                    &format!(
                        "read /var/log/postgresql/postgresql-{version}-{name}.log for why it did not start"
                    ),
                )?;
            }
        }
        return Ok(());
    }
    let mut cmd = Command::new("service");
    cmd.args(["postgresql", "start"]);
    sh(
        cmd,
        "start PostgreSQL by hand and rerun `cargo xtask ci postgres`",
    )
}

fn install() -> Result<(), String> {
    let mut id = Command::new("id");
    id.arg("-u");
    let root = output(id).is_ok_and(|uid| uid.trim() == "0");
    if !root {
        return Err(
            "PostgreSQL is not installed and this is not root, so it cannot be installed here\n  \
             how to fix: install it (Debian/Ubuntu: apt-get install postgresql) or point \
             MEATHOOK_TEST_DATABASE_URL at a server"
                .to_owned(),
        );
    }
    let mut update = Command::new("apt-get");
    update.args(["-q", "update"]);
    sh(update, "the Debian package mirrors must be reachable")?;
    let mut install = Command::new("apt-get");
    install
        .args(["-q", "-y", "install", "postgresql"])
        .env("DEBIAN_FRONTEND", "noninteractive");
    sh(
        install,
        "install postgresql by hand and read apt-get's message",
    )?;
    // Trust the postgres user on loopback only, as the test machines do.
    let clusters = output(Command::new("pg_lsclusters"))?;
    for line in clusters.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [version, name, ..] = fields[..] {
            let hba = format!("/etc/postgresql/{version}/{name}/pg_hba.conf");
            let text =
                std::fs::read_to_string(&hba).map_err(|e| format!("cannot read {hba}: {e}"))?;
            if !text.lines().any(|l| l.trim() == TRUST_LINE) {
                std::fs::write(&hba, format!("{TRUST_LINE}\n{text}"))
                    .map_err(|e| format!("cannot write {hba}: {e}"))?;
            }
        }
    }
    Ok(())
}

/// `select 1` as the tests connect, when `psql` is there to ask.
fn check() -> Result<(), String> {
    if !has("psql") {
        eprintln!("  PostgreSQL is listening on 127.0.0.1:5432");
        return Ok(());
    }
    let mut psql = Command::new("psql");
    psql.args([
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-tAc",
        "select 1",
    ]);
    let answer = output(psql).map_err(|e| {
        format!(
            "{e}\n  how to fix: the tests connect as postgres@127.0.0.1 without a password; \
             allow it in pg_hba.conf (`{TRUST_LINE}`) and reload"
        )
    })?;
    if answer.trim() == "1" {
        eprintln!("  PostgreSQL is up on 127.0.0.1:5432 (user postgres)");
        Ok(())
    } else {
        Err(format!("psql answered {answer:?} to `select 1`"))
    }
}
