//! The delivery catalog in PostgreSQL (feature `postgres`).
//!
//! **Architecture invariant:** every statement is parameterised; the only
//! text put into SQL is the schema name, which must match
//! `[a-z_][a-z0-9_]*` and is quoted. Rows are keyed on (destination,
//! path) and written with an upsert, so a delivery reported twice (a
//! replay, or a back-fill that restarts from an older cursor) is one row.
//! The schema is created on first use and moved forward by numbered
//! migrations recorded in `schema_migrations`, under an advisory lock so
//! that two processes starting together do not race.
//!
//! One file per job: [`PostgresConfig`] and the connection (`config.rs`),
//! [`PostgresError`] (`error.rs`), the numbered migrations (`migrate.rs`),
//! [`Catalog`] and its upsert (`catalog.rs`), and the list, gap and total
//! queries in SQL (`queries.rs`).

mod catalog;
mod config;
mod error;
mod migrate;
mod queries;

pub use catalog::Catalog;
pub use config::{DATABASE_URL, DEFAULT_CONNECT_TIMEOUT, DEFAULT_SCHEMA, PostgresConfig};
pub use error::PostgresError;
