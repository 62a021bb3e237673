//! Shared by the catalog's tests: a schema of its own per test in the
//! machine's PostgreSQL, a flat record type, files on disk, waiting.
#![allow(dead_code, unreachable_pub)] // each test file uses a part
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use meathook_catalog::postgres::{Catalog, PostgresConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::datetime;

/// PostgreSQL as CI provides it (`cargo xtask ci postgres` starts it), or
/// `MEATHOOK_TEST_DATABASE_URL`.
pub fn database_url() -> String {
    std::env::var("MEATHOOK_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub const T0: OffsetDateTime = datetime!(2026-12-01 10:00 UTC);
pub const HOUR: Duration = Duration::from_secs(3600);

pub fn hour(n: i64) -> OffsetDateTime {
    T0 + time::Duration::hours(n)
}

/// A schema of this test's own, so runs and tests never collide.
pub struct TestSchema {
    pub name: String,
    pub config: PostgresConfig,
}

impl TestSchema {
    pub fn new(test: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "t_{test}_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let config = Self::config_at(&database_url(), &name);
        Self { name, config }
    }

    pub fn config_at(url: &str, schema: &str) -> PostgresConfig {
        PostgresConfig::parse(url)
            .unwrap()
            .with_schema(schema)
            .unwrap()
    }

    /// Connects (creating the schema); fails loudly when PostgreSQL is not
    /// running, since these tests are the point of the catalog.
    pub async fn connect(&self) -> Catalog {
        self.config.connect().await.unwrap_or_else(|e| {
            panic!(
                "{e}\nthe catalog tests need PostgreSQL at {}: `cargo xtask ci postgres` starts it",
                database_url()
            )
        })
    }

    pub async fn count(&self, catalog: &Catalog) -> i64 {
        catalog
            .client()
            .query_one(
                &format!("SELECT count(*) FROM \"{}\".deliveries", self.name),
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    pub async fn drop(self, catalog: &Catalog) {
        catalog
            .client()
            .batch_execute(&format!("DROP SCHEMA \"{}\" CASCADE", self.name))
            .await
            .unwrap();
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub station: String,
    pub at: i64,
    pub value: f64,
}

pub fn readings(window: i64, n: usize) -> Vec<Reading> {
    (0..n)
        .map(|i| Reading {
            station: format!("S{i}"),
            at: hour(window).unix_timestamp() + i as i64,
            value: i as f64 / 2.0,
        })
        .collect()
}

/// Data files under `root`, relative, sorted.
pub fn data_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(&root.join("data"), root, &mut out);
    out.sort();
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Polls `f` until it is true, or fails after `secs` seconds saying `what`.
pub async fn wait_for<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn manifest_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
}
