//! Backend store URIs, resolved in one place. MLflow's (SQLAlchemy's) forms are accepted so that
//! a user's existing `--backend-store-uri` works unchanged.

use std::path::PathBuf;

use crate::Error;

/// Where the metadata lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUri {
    /// A SQLite file (`sqlite:///relative.db`, `sqlite:////absolute.db`).
    SqliteFile(PathBuf),
    /// A private in-memory SQLite database (`sqlite://` or `sqlite:///:memory:`), for tests.
    SqliteMemory,
    /// A PostgreSQL URL, normalised to what the driver accepts.
    Postgres(String),
}

impl DatabaseUri {
    pub fn parse(uri: &str) -> Result<DatabaseUri, Error> {
        let invalid = |why: &str| Error::InvalidUri { uri: redact(uri), why: why.to_string() };
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| invalid("expected a URI such as sqlite:///kiln.db or postgresql://user@host/db"))?;
        // SQLAlchemy names the driver after a '+' (postgresql+psycopg2); the scheme decides alone.
        let scheme = scheme.split('+').next().unwrap_or(scheme).to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => {
                let path = rest.strip_prefix('/').unwrap_or(rest);
                let path = path.split('?').next().unwrap_or(path);
                if path.is_empty() || path == ":memory:" {
                    return Ok(DatabaseUri::SqliteMemory);
                }
                Ok(DatabaseUri::SqliteFile(PathBuf::from(path)))
            }
            "postgresql" | "postgres" => {
                if rest.is_empty() {
                    return Err(invalid("a PostgreSQL URI needs a host, as in postgresql://user@127.0.0.1:5432/kiln"));
                }
                Ok(DatabaseUri::Postgres(format!("postgres://{rest}")))
            }
            other => Err(invalid(&format!("the scheme '{other}' is not supported: use sqlite:// or postgresql://"))),
        }
    }
}

/// The URI with any password hidden, for messages and logs.
pub fn redact(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else { return uri.to_string() };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => uri.to_string(),
        },
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_forms() {
        assert_eq!(DatabaseUri::parse("sqlite:///kiln.db").unwrap(), DatabaseUri::SqliteFile("kiln.db".into()));
        assert_eq!(
            DatabaseUri::parse("sqlite:////var/lib/kiln.db").unwrap(),
            DatabaseUri::SqliteFile("/var/lib/kiln.db".into())
        );
        assert_eq!(DatabaseUri::parse("sqlite://").unwrap(), DatabaseUri::SqliteMemory);
        assert_eq!(DatabaseUri::parse("sqlite:///:memory:").unwrap(), DatabaseUri::SqliteMemory);
    }

    #[test]
    fn postgres_forms() {
        assert_eq!(
            DatabaseUri::parse("postgresql+psycopg2://u:p@h:5432/db").unwrap(),
            DatabaseUri::Postgres("postgres://u:p@h:5432/db".into())
        );
    }

    #[test]
    fn refuses_other_schemes() {
        assert!(DatabaseUri::parse("mysql://x/y").is_err());
        assert!(DatabaseUri::parse("kiln.db").is_err());
    }

    #[test]
    fn hides_passwords() {
        assert_eq!(redact("postgresql://u:secret@h/db"), "postgresql://u:***@h/db");
        assert_eq!(redact("sqlite:///x.db"), "sqlite:///x.db");
    }
}
