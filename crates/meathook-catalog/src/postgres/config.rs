//! Where the catalog lives: the connection string (its password never
//! shown), the schema name, and connecting.

use std::fmt;
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::{Config, NoTls};

use super::{Catalog, PostgresError};

/// The schema used unless another is configured.
pub const DEFAULT_SCHEMA: &str = "meathook";

/// The environment variable read when no connection string is configured.
pub const DATABASE_URL: &str = "DATABASE_URL";

/// How long a connection attempt may take unless the connection string
/// sets `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the catalog lives: a connection string and a schema.
#[derive(Clone)]
pub struct PostgresConfig {
    config: Config,
    schema: String,
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("target", &self.target())
            .field("schema", &self.schema)
            .finish()
    }
}

impl PostgresConfig {
    /// A catalog at `url` (`postgres://user:password@host:port/db` or
    /// `host=.. user=..`), in schema [`DEFAULT_SCHEMA`].
    ///
    /// # Errors
    ///
    /// [`PostgresError::Config`] when it does not parse.
    pub fn parse(url: &str) -> Result<Self, PostgresError> {
        let mut config: Config =
            url.parse()
                .map_err(|e: tokio_postgres::Error| PostgresError::Config {
                    reason: e.to_string(),
                })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        config.application_name("meathook");
        Ok(Self {
            config,
            schema: DEFAULT_SCHEMA.to_owned(),
        })
    }

    /// The catalog named by `DATABASE_URL`, if it is set and not empty.
    ///
    /// # Errors
    ///
    /// [`PostgresError::Config`] when it does not parse.
    pub fn from_env() -> Result<Option<Self>, PostgresError> {
        match std::env::var(DATABASE_URL) {
            Ok(url) if !url.trim().is_empty() => Self::parse(&url).map(Some),
            _ => Ok(None),
        }
    }

    /// The same catalog in schema `schema`.
    ///
    /// # Errors
    ///
    /// [`PostgresError::Schema`] unless it matches `[a-z_][a-z0-9_]*` (at
    /// most 63 bytes).
    pub fn with_schema(mut self, schema: &str) -> Result<Self, PostgresError> {
        let ok = !schema.is_empty()
            && schema.len() <= 63
            && schema
                .bytes()
                .enumerate()
                .all(|(i, b)| b == b'_' || b.is_ascii_lowercase() || (i > 0 && b.is_ascii_digit()));
        if !ok {
            return Err(PostgresError::Schema {
                schema: schema.to_owned(),
            });
        }
        schema.clone_into(&mut self.schema);
        Ok(self)
    }

    /// The schema.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// `postgres://user@host:port/database`, without the password: for
    /// logs and errors.
    pub fn target(&self) -> String {
        let user = self.config.get_user().unwrap_or("");
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let db = self.config.get_dbname().unwrap_or(user);
        format!("postgres://{user}@{host}:{port}/{db}")
    }

    /// Connects, creates the schema if needed and brings it to the newest
    /// version.
    ///
    /// # Errors
    ///
    /// [`PostgresError::Connect`] when the server cannot be reached or
    /// refuses us; [`PostgresError::Statement`] when a migration fails.
    pub async fn connect(&self) -> Result<Catalog, PostgresError> {
        let target = self.target();
        let (client, connection) =
            self.config
                .connect(NoTls)
                .await
                .map_err(|source| PostgresError::Connect {
                    target: target.clone(),
                    source,
                })?;
        let shown = target.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(target = %shown, error = %e, "catalog connection closed");
            }
        });
        let mut catalog = Catalog {
            client,
            schema: quote(&self.schema),
            schema_name: self.schema.clone(),
            target,
            task,
        };
        catalog.migrate().await?;
        Ok(catalog)
    }

    /// Checks that the server answers and takes the credentials (a
    /// connection and `SELECT 1`), creating nothing: for a `--check`
    /// before a deployment.
    ///
    /// # Errors
    ///
    /// [`PostgresError::Connect`] when the server cannot be reached or
    /// refuses us.
    pub async fn probe(&self) -> Result<(), PostgresError> {
        let target = self.target();
        let connect = |source| PostgresError::Connect {
            target: target.clone(),
            source,
        };
        let (client, connection) = self.config.connect(NoTls).await.map_err(connect)?;
        let task = tokio::spawn(connection);
        let answered = client.simple_query("SELECT 1").await.map_err(connect);
        drop(client);
        let _ = task.await;
        answered.map(drop)
    }
}

fn quote(schema: &str) -> String {
    // `with_schema` admits only [a-z0-9_]: nothing to escape.
    format!("\"{schema}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        let c =
            PostgresConfig::parse("postgres://meathook:s3cret-pw@db.example:6543/catalog").unwrap();
        let shown = format!("{c:?} {}", c.target());
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(
            shown.contains("postgres://meathook@db.example:6543/catalog"),
            "{shown}"
        );
        let err = PostgresConfig::parse("postgres://u:s3cret-pw@h:notaport/db").unwrap_err();
        assert!(!err.to_string().contains("s3cret-pw"), "{err}");
    }

    #[test]
    fn only_plain_schema_names_are_accepted() {
        let c = PostgresConfig::parse("host=localhost user=postgres").unwrap();
        assert_eq!(c.clone().with_schema("t_01").unwrap().schema(), "t_01");
        for bad in [
            "",
            "A",
            "1abc",
            "a-b",
            "a\"; DROP TABLE x; --",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(
                    c.clone().with_schema(bad),
                    Err(PostgresError::Schema { .. })
                ),
                "{bad:?} accepted"
            );
        }
    }
}
