//! Settings from the environment: the only way store-api is configured, so one image serves
//! every tenant.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::Host;
use tracing_subscriber::filter::Targets;

pub const DATABASE_DSN: &str = "DATABASE_DSN";
pub const API_PORT: &str = "API_PORT";
pub const API_HOST: &str = "API_HOST";
pub const TENANT_NAME: &str = "TENANT_NAME";
pub const DB_POOL_SIZE: &str = "DB_POOL_SIZE";
pub const LOG_FORMAT: &str = "LOG_FORMAT";
pub const LOG_LEVEL: &str = "LOG_LEVEL";
pub const REQUEST_TIMEOUT_SECS: &str = "REQUEST_TIMEOUT_SECS";
pub const TOKEN_TTL_MINUTES: &str = "TOKEN_TTL_MINUTES";
pub const DATABASE_ALLOW_CLEARTEXT_PASSWORD: &str = "DATABASE_ALLOW_CLEARTEXT_PASSWORD";

pub const DEFAULT_PORT: u16 = 4001;
const DEFAULT_POOL_SIZE: usize = 16;
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const DEFAULT_TOKEN_TTL_MINUTES: u64 = 24 * 60;
/// libpq waits forever by default; a container that cannot reach its database should say so soon.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const APPLICATION_NAME: &str = "store-api";

/// A setting that is missing or malformed. The message names the setting and never repeats its
/// value, so a DSN's password cannot leak into a log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{name} is not set{hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// How the pool reaches PostgreSQL: what `DATABASE_DSN` said, TLS included.
#[derive(Clone)]
pub struct DatabaseConfig {
    pub pg: tokio_postgres::Config,
    /// Made from the DSN's sslmode and sslrootcert (certificates already read).
    pub connector: usualstore_pgtls::Connector,
}

impl DatabaseConfig {
    /// Host, port, database and user, for logs: never the password.
    pub fn describe(&self) -> String {
        let host = match self.pg.get_hosts().first() {
            Some(Host::Tcp(name)) => name.clone(),
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "?".to_owned(),
        };
        let port = self.pg.get_ports().first().copied().unwrap_or(5432);
        format!(
            "{host}:{port}/{} as {}",
            self.pg.get_dbname().unwrap_or("?"),
            self.pg.get_user().unwrap_or("?")
        )
    }
}

/// Redacts: the tokio-postgres `Config` debug output is not ours to trust with a password.
impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("target", &self.describe())
            .field("sslmode", &self.connector.mode())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub host: IpAddr,
    pub port: u16,
    pub tenant_name: String,
    pub pool_size: usize,
    pub log_format: LogFormat,
    pub log_level: Targets,
    pub request_timeout: Duration,
    pub token_ttl: Duration,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment in production, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let dsn = get(DATABASE_DSN).ok_or(ConfigError::Missing {
            name: DATABASE_DSN,
            hint: " (a libpq key/value DSN or a postgres:// URL)",
        })?;
        let database = database_config(&dsn, allow_cleartext(&get)?)?;
        let tenant_name =
            get(TENANT_NAME)
                .map(|name| name.trim().to_owned())
                .ok_or(ConfigError::Missing {
                    name: TENANT_NAME,
                    hint: " (the customer's name, shown in responses and logs)",
                })?;
        if tenant_name.chars().any(char::is_control) {
            return Err(invalid(TENANT_NAME, "contains control characters"));
        }
        let port = match get(API_PORT) {
            None => DEFAULT_PORT,
            Some(value) => value
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|port| *port > 0)
                .ok_or_else(|| invalid(API_PORT, "expected a TCP port number (1-65535)"))?,
        };
        let host = match get(API_HOST) {
            None => IpAddr::from([0, 0, 0, 0]),
            Some(value) => value
                .trim()
                .parse()
                .map_err(|_| invalid(API_HOST, "expected an IP address such as 0.0.0.0"))?,
        };
        let pool_size = match get(DB_POOL_SIZE) {
            None => DEFAULT_POOL_SIZE,
            Some(value) => value
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|size| (1..=1000).contains(size))
                .ok_or_else(|| invalid(DB_POOL_SIZE, "expected a number from 1 to 1000"))?,
        };
        let log_format = match get(LOG_FORMAT).as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(_) => return Err(invalid(LOG_FORMAT, "expected `text` or `json`")),
        };
        let log_level = match get(LOG_LEVEL) {
            None => Targets::new().with_default(tracing::Level::INFO),
            Some(value) => Targets::from_str(value.trim()).map_err(|_| {
                invalid(
                    LOG_LEVEL,
                    "expected a level (error, warn, info, debug, trace) or target=level list",
                )
            })?,
        };
        let request_timeout = match get(REQUEST_TIMEOUT_SECS) {
            None => DEFAULT_REQUEST_TIMEOUT,
            Some(value) => value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|secs| secs.is_finite() && *secs >= 0.1 && *secs <= 3600.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| {
                    invalid(REQUEST_TIMEOUT_SECS, "expected seconds from 0.1 to 3600")
                })?,
        };
        let token_ttl_minutes = match get(TOKEN_TTL_MINUTES) {
            None => DEFAULT_TOKEN_TTL_MINUTES,
            Some(value) => value
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|minutes| (1..=525_600).contains(minutes))
                .ok_or_else(|| invalid(TOKEN_TTL_MINUTES, "expected minutes from 1 to 525600"))?,
        };
        Ok(Config {
            database,
            host,
            port,
            tenant_name,
            pool_size,
            log_format,
            log_level,
            request_timeout,
            token_ttl: Duration::from_secs(token_ttl_minutes * 60),
        })
    }
}

/// Only the database settings are needed by `store-api user create`.
pub fn database_from_env() -> Result<DatabaseConfig, ConfigError> {
    let get = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    };
    let dsn = get(DATABASE_DSN).ok_or(ConfigError::Missing {
        name: DATABASE_DSN,
        hint: " (a libpq key/value DSN or a postgres:// URL)",
    })?;
    database_config(&dsn, allow_cleartext(&get)?)
}

/// `DATABASE_ALLOW_CLEARTEXT_PASSWORD`: off unless said.
fn allow_cleartext(get: &impl Fn(&str) -> Option<String>) -> Result<bool, ConfigError> {
    match get(DATABASE_ALLOW_CLEARTEXT_PASSWORD)
        .as_deref()
        .map(str::trim)
    {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(_) => Err(invalid(
            DATABASE_ALLOW_CLEARTEXT_PASSWORD,
            "expected true or false",
        )),
    }
}

fn invalid(name: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.to_owned(),
    }
}

/// Parses a DSN as the provider writes it (libpq key/value or URL) and checks what this service
/// needs from it: a host, a database, a user and an sslmode (`disable` to `verify-full`, with
/// `sslrootcert` for the verifying ones). A cleartext password request from a server that is not
/// verified is refused unless `allow_cleartext_password`.
pub fn database_config(
    dsn: &str,
    allow_cleartext_password: bool,
) -> Result<DatabaseConfig, ConfigError> {
    let split = crate::dsn::split_tls(dsn).map_err(|error| ConfigError::Invalid {
        name: DATABASE_DSN,
        reason: error.to_string(),
    })?;
    let mode = match split.sslmode.as_deref() {
        None => usualstore_pgtls::SslMode::Prefer,
        Some(mode) => mode
            .parse()
            .map_err(
                |error: usualstore_pgtls::SslModeParseError| ConfigError::Invalid {
                    name: DATABASE_DSN,
                    reason: error.to_string(),
                },
            )?,
    };
    let mut tls = usualstore_pgtls::TlsSettings::new(mode)
        .allowing_cleartext_password(allow_cleartext_password);
    if let Some(path) = &split.sslrootcert {
        tls = tls.with_root_cert(path);
    }
    let connector =
        usualstore_pgtls::Connector::new(&tls).map_err(|error| ConfigError::Invalid {
            name: DATABASE_DSN,
            reason: error.to_string(),
        })?;
    let mut pg =
        tokio_postgres::Config::from_str(&split.rest).map_err(|error| ConfigError::Invalid {
            name: DATABASE_DSN,
            reason: scrub_parse_error(&error.to_string()),
        })?;
    if pg.get_hosts().is_empty() {
        return Err(invalid(DATABASE_DSN, "names no host"));
    }
    if pg.get_dbname().is_none() {
        return Err(invalid(DATABASE_DSN, "names no database (dbname)"));
    }
    if pg.get_user().is_none() {
        return Err(invalid(DATABASE_DSN, "names no user"));
    }
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    if pg.get_application_name().is_none() {
        pg.application_name(APPLICATION_NAME);
    }
    Ok(DatabaseConfig { pg, connector })
}

/// The parser's messages name options, except "unexpected character … but got `c`", which could
/// quote a character of a password: cut that part.
fn scrub_parse_error(message: &str) -> String {
    match message.find(" but got") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    const KV: &str = r"host='127.0.0.1' port='5432' user='building_ops' password='p a\'ss' dbname='building_shop' sslmode='prefer'";

    #[test]
    fn reads_provider_dsns_in_both_forms() {
        let kv = config(&[(DATABASE_DSN, KV), (TENANT_NAME, "Building")]).unwrap();
        assert_eq!(kv.port, DEFAULT_PORT);
        assert_eq!(
            kv.database.connector.mode(),
            usualstore_pgtls::SslMode::Prefer
        );
        assert_eq!(kv.database.pg.get_password(), Some(&b"p a'ss"[..]));
        assert_eq!(kv.database.pg.get_dbname(), Some("building_shop"));
        assert_eq!(
            kv.database.describe(),
            "127.0.0.1:5432/building_shop as building_ops"
        );
        assert!(!format!("{kv:?}").contains("p a'ss"));

        let url = config(&[
            (
                DATABASE_DSN,
                "postgres://u:pct%20enc@db.example:5433/shop?sslmode=disable",
            ),
            (TENANT_NAME, "Shop"),
            (API_PORT, "8080"),
            (DB_POOL_SIZE, "4"),
            (LOG_FORMAT, "json"),
        ])
        .unwrap();
        assert_eq!(
            url.database.connector.mode(),
            usualstore_pgtls::SslMode::Disable
        );
        assert_eq!(url.database.pg.get_password(), Some(&b"pct enc"[..]));
        assert_eq!(url.port, 8080);
        assert_eq!(url.pool_size, 4);
        assert_eq!(url.log_format, LogFormat::Json);
    }

    #[test]
    fn names_the_setting_and_never_the_password() {
        let missing = config(&[(TENANT_NAME, "x")]).unwrap_err();
        assert!(missing.to_string().starts_with("DATABASE_DSN is not set"));

        let cases = [
            "postgres://u:hunter2secret@host:notaport/db",
            "host=h user=u password=hunter2secret dbname=d sslmode=verify-everything",
            "host=h user=u password=hunter2secret dbname=d sslmode=bogus",
            "host=h user=u password='hunter2secret dbname=d",
            "host=h user=u password=hunter2 secret dbname=d",
            "host=h user=u password=hunter2secret",
        ];
        for dsn in cases {
            let error = config(&[(DATABASE_DSN, dsn), (TENANT_NAME, "x")]).unwrap_err();
            let text = error.to_string();
            assert!(text.starts_with("DATABASE_DSN is invalid"), "{dsn}: {text}");
            assert!(
                !text.contains("hunter2") && !text.contains("secret"),
                "{text}"
            );
        }

        for (name, value) in [
            (API_PORT, "port"),
            (API_PORT, "0"),
            (API_HOST, "localhost:1"),
            (DB_POOL_SIZE, "0"),
            (LOG_FORMAT, "xml"),
            (REQUEST_TIMEOUT_SECS, "never"),
            (TOKEN_TTL_MINUTES, "-1"),
        ] {
            let error = config(&[(DATABASE_DSN, KV), (TENANT_NAME, "x"), (name, value)])
                .unwrap_err()
                .to_string();
            assert!(error.starts_with(&format!("{name} is invalid")), "{error}");
        }
        let error = config(&[(DATABASE_DSN, KV)]).unwrap_err().to_string();
        assert!(error.starts_with("TENANT_NAME is not set"), "{error}");
    }
}
