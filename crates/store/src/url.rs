//! Which database a manager uses, as the operator names it (`--database`): a SQLite file
//! (`sqlite:PATH` or a bare path) or a PostgreSQL database (`postgres://USER@HOST:PORT/DB`),
//! and [`open`], which opens either behind the one [`Store`] trait. A malformed URL is refused
//! with a message naming what is wrong; nothing ever falls back to another database.

use crate::{Result, SqliteStore, Store};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// The port PostgreSQL listens on when a URL names none.
pub const POSTGRES_DEFAULT_PORT: u16 = 5432;

/// A database as named on the command line.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// The embedded SQLite database in this file.
    Sqlite(PathBuf),
    Postgres(PostgresUrl),
}

/// Where a PostgreSQL database is: `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    pub user: String,
    /// Never shown: [`fmt::Display`] and [`fmt::Debug`] print `***` in its place.
    pub password: Option<String>,
    /// A host name or address (an IPv6 address without its brackets).
    pub host: String,
    pub port: u16,
    pub database: String,
}

const FORMS: &str = "expected sqlite:PATH, a file path, or postgres://USER@HOST:PORT/DB";

/// A `--database` value that names no database: the message says what is wrong, without the
/// password the value may hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed database URL '{url}': {why}")]
pub struct MalformedDatabaseUrl {
    /// The value as given, its password replaced by `***`.
    pub url: String,
    pub why: String,
}

fn malformed(url: &str, why: impl fmt::Display) -> MalformedDatabaseUrl {
    MalformedDatabaseUrl { url: redacted(url), why: why.to_string() }
}

/// The URL as given with any password replaced by `***`, so a refusal never echoes a secret.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.into() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..])
        }
        _ => url.into(),
    }
}

impl FromStr for DatabaseUrl {
    type Err = MalformedDatabaseUrl;

    fn from_str(text: &str) -> std::result::Result<DatabaseUrl, MalformedDatabaseUrl> {
        if text.trim().is_empty() {
            return Err(malformed(text, format!("it is empty; {FORMS}")));
        }
        if let Some(rest) = text.strip_prefix("postgres://").or_else(|| text.strip_prefix("postgresql://")) {
            return PostgresUrl::parse(text, rest).map(DatabaseUrl::Postgres);
        }
        if let Some(path) = text.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(malformed(text, "sqlite: names no file"));
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(malformed(text, format!("unknown scheme '{scheme}'; {FORMS}")));
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(text)))
    }
}

impl PostgresUrl {
    /// `rest` is what follows the scheme's `://` in `url`.
    fn parse(url: &str, rest: &str) -> std::result::Result<PostgresUrl, MalformedDatabaseUrl> {
        let bad = |why: &str| malformed(url, format!("{why}; expected postgres://USER@HOST:PORT/DB"));
        let (authority, database) = rest.split_once('/').ok_or_else(|| bad("no database name"))?;
        if database.contains('?') || database.contains('#') {
            return Err(bad("parameters (?...) are not supported"));
        }
        let database = decode(database).ok_or_else(|| bad("bad %-escape in the database name"))?;
        if database.is_empty() || database.contains('/') {
            return Err(bad("no database name"));
        }
        let (userinfo, hostport) = authority.rsplit_once('@').ok_or_else(|| bad("no user name"))?;
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (userinfo, None),
        };
        let user = decode(user).ok_or_else(|| bad("bad %-escape in the user name"))?;
        if user.is_empty() {
            return Err(bad("no user name"));
        }
        let password = password.map(|p| decode(p).ok_or_else(|| bad("bad %-escape in the password"))).transpose()?;
        let (host, port) = split_host_port(hostport).ok_or_else(|| bad("bad host or port"))?;
        let port = match port {
            None => POSTGRES_DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return Err(bad(&format!("port '{p}' is not a number from 1 to 65535"))),
            },
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(PostgresUrl { user, password, host: host.into(), port, database })
    }
}

/// `HOST[:PORT]` or `[IPV6][:PORT]`.
fn split_host_port(text: &str) -> Option<(&str, Option<&str>)> {
    if let Some(bracketed) = text.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match text.split_once(':') {
        Some((host, port)) => Some((host, Some(port))),
        None => Some((text, None)),
    }
}

/// Undoes URL %-escapes; None when one is malformed or the result is not UTF-8.
fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = if self.password.is_some() { ":***" } else { "" };
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        write!(f, "postgres://{}{secret}@{host}:{}/{}", self.user, self.port, self.database)
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            DatabaseUrl::Postgres(url) => url.fmt(f),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Opens the database `url` names, applying its pending migrations. An unreachable database is
/// an error naming it (never a fallback to another).
pub async fn open(url: &DatabaseUrl) -> Result<Arc<dyn Store>> {
    match url {
        DatabaseUrl::Sqlite(path) => Ok(Arc::new(SqliteStore::open(path).await?)),
        DatabaseUrl::Postgres(url) => open_postgres(url).await,
    }
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &PostgresUrl) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(crate::postgres::PostgresStore::open(url).await?))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(url: &PostgresUrl) -> Result<Arc<dyn Store>> {
    Err(crate::StoreError::Database(format!("{url}: this build of smartlic has no PostgreSQL backend")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> std::result::Result<DatabaseUrl, String> {
        text.parse::<DatabaseUrl>().map_err(|e| e.to_string())
    }

    #[test]
    fn sqlite_forms_name_a_file() {
        assert_eq!(parse("sqlite:/var/lib/x.db").unwrap(), DatabaseUrl::Sqlite("/var/lib/x.db".into()));
        assert_eq!(parse("data/x.db").unwrap(), DatabaseUrl::Sqlite("data/x.db".into()));
        assert!(parse("sqlite:").unwrap_err().contains("names no file"));
    }

    #[test]
    fn postgres_urls_are_parsed_with_the_default_port() {
        let DatabaseUrl::Postgres(url) = parse("postgresql://app:s%40cret@db.example:6543/lic").unwrap() else {
            panic!("not postgres")
        };
        assert_eq!((url.user.as_str(), url.password.as_deref()), ("app", Some("s@cret")));
        assert_eq!((url.host.as_str(), url.port, url.database.as_str()), ("db.example", 6543, "lic"));
        assert_eq!(url.to_string(), "postgres://app:***@db.example:6543/lic");
        let DatabaseUrl::Postgres(url) = parse("postgres://app@[::1]/lic").unwrap() else { panic!("not postgres") };
        assert_eq!((url.host.as_str(), url.port), ("::1", 5432));
    }

    #[test]
    fn malformed_urls_say_what_is_wrong_without_the_password() {
        for (text, why) in [
            ("", "empty"),
            ("mysql://a@b/c", "unknown scheme 'mysql'"),
            ("postgres://db.example/lic", "no user name"),
            ("postgres://app@db.example", "no database name"),
            ("postgres://app@db.example/", "no database name"),
            ("postgres://app@db.example:99999/lic", "port '99999'"),
            ("postgres://app@db.example:x/lic", "port 'x'"),
            ("postgres://app@:5432/lic", "no host"),
            ("postgres://app@h/lic?sslmode=require", "parameters"),
        ] {
            let refused = parse(text).unwrap_err();
            assert!(refused.contains(why), "{text}: {refused}");
        }
        let refused = parse("postgres://app:hunter2@h:0/lic").unwrap_err();
        assert!(refused.contains("app:***@h") && !refused.contains("hunter2"), "{refused}");
    }
}
