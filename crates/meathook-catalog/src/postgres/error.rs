//! What can go wrong with the PostgreSQL catalog, and which failures are
//! the database refusing a record rather than being away.

use crate::query::QueryError;

/// A PostgreSQL operation failed. Never shows a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The connection string does not parse.
    #[error(
        "the PostgreSQL connection string does not parse ({reason}); \
         expected postgres://user[:password]@host[:port]/database or key=value pairs"
    )]
    Config {
        /// What the parser reported (names keys, never values).
        reason: String,
    },
    /// The schema name is not a plain lowercase identifier.
    #[error(
        "{schema:?} is not a usable schema name: use lowercase letters, digits and `_`, starting with a letter or `_`"
    )]
    Schema {
        /// The name given.
        schema: String,
    },
    /// Connecting failed (refused, unreachable, authentication).
    #[error("cannot connect to PostgreSQL at {target}: {source}; is it running and reachable?")]
    Connect {
        /// Where, without the password.
        target: String,
        /// What the client reported.
        source: tokio_postgres::Error,
    },
    /// A statement failed.
    #[error("{action} in PostgreSQL at {target} failed: {source}")]
    Statement {
        /// What was being done.
        action: &'static str,
        /// Where, without the password.
        target: String,
        /// What the server or client reported.
        source: tokio_postgres::Error,
    },
    /// A figure does not fit the column (a file over 8 EiB).
    #[error("{what} of {path} is {value}, more than PostgreSQL's bigint holds")]
    Range {
        /// Which figure.
        what: &'static str,
        /// The file.
        path: String,
        /// The figure.
        value: u64,
    },
    /// The schema is newer than this build knows.
    #[error(
        "schema {schema} at {target} is at version {found}, newer than this build's {known}; \
         upgrade meathook or use another schema"
    )]
    TooNew {
        /// The schema.
        schema: String,
        /// Where, without the password.
        target: String,
        /// The version found.
        found: i32,
        /// The newest version this build knows.
        known: i32,
    },
    /// A query's arguments were refused.
    #[error(transparent)]
    Query(#[from] QueryError),
}

impl PostgresError {
    /// Whether the database refused this record itself (a value it cannot
    /// store: a NUL byte in a name, a figure out of range, a constraint),
    /// so that retrying it can never succeed, as opposed to the database
    /// being away or the connection failing.
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::Range { .. } => true,
            Self::Statement { source, .. } => source.as_db_error().is_some_and(|db| {
                let code = db.code().code();
                code.starts_with("22") || code.starts_with("23")
            }),
            _ => false,
        }
    }
}

/// Turns a failed statement into a [`PostgresError`] naming `action` and
/// `target` (the database, never its password).
pub(super) fn statement_error<'a>(
    target: &'a str,
    action: &'static str,
) -> impl FnOnce(tokio_postgres::Error) -> PostgresError + 'a {
    move |source| PostgresError::Statement {
        action,
        target: target.to_owned(),
        source,
    }
}

pub(super) fn to_i64(what: &'static str, path: &str, value: u64) -> Result<i64, PostgresError> {
    i64::try_from(value).map_err(|_| PostgresError::Range {
        what,
        path: path.to_owned(),
        value,
    })
}
