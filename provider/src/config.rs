//! The `provider "usualstore"` block: where the PostgreSQL server is and how to log in, with libpq's
//! environment variables as fallbacks so the same configuration runs on a laptop and in CI.

use std::sync::Arc;
use std::time::Duration;

use usualstore_cty::{ObjectReader, Type, Value};

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::schema::{Attribute, Presence, Schema};

pub use usualstore_pgtls::SslMode;

pub fn schema() -> Schema {
    use Presence::Optional;
    Schema {
        version: 0,
        description: "Connects to the PostgreSQL server that holds the tenant databases. Every attribute falls \
            back to the libpq environment variable named in its description, then to libpq's default.",
        attributes: vec![
            Attribute::new(
                "host",
                Type::String,
                Optional,
                "Server host name or address. Falls back to `PGHOST`, then `localhost`.",
            ),
            Attribute::new(
                "port",
                Type::Number,
                Optional,
                "Server port. Falls back to `PGPORT`, then `5432`.",
            ),
            Attribute::new(
                "username",
                Type::String,
                Optional,
                "Role to log in as: a superuser, or a role with `CREATEDB` and `CREATEROLE` (managed PostgreSQL). Falls back to `PGUSER`, then the operating-system user.",
            ),
            Attribute::new(
                "password",
                Type::String,
                Optional,
                "Password of `username`. Falls back to `PGPASSWORD`.",
            )
            .sensitive(),
            Attribute::new(
                "database",
                Type::String,
                Optional,
                "Maintenance database the provider connects to for server-wide work. Falls back to `PGDATABASE`, then `postgres`.",
            ),
            Attribute::new(
                "sslmode",
                Type::String,
                Optional,
                "As libpq's: `disable`, `prefer` or `require` encrypt (or not) without checking who the server is; `verify-ca` checks the server's certificate against `sslrootcert`, `verify-full` also checks that it names `host`. Below `verify-ca` the provider refuses to send the password in clear text when the server asks for it (see `allow_cleartext_password`). Falls back to `PGSSLMODE`, then `prefer`.",
            ),
            Attribute::new(
                "sslrootcert",
                Type::String,
                Optional,
                "PEM file of the certificate authorities `verify-ca` and `verify-full` trust. Falls back to `PGSSLROOTCERT`, then `~/.postgresql/root.crt`. Written into tenant users' DSNs as well, unless `dsn_sslrootcert` says otherwise.",
            ),
            Attribute::new(
                "allow_cleartext_password",
                Type::Bool,
                Optional,
                "Send the password in clear text when a server that is not verified asks for it (`sslmode` below `verify-ca`). Default `false`: a man in the middle asks for exactly that to learn the password, while SCRAM and MD5 never reveal it.",
            ),
            Attribute::new(
                "lock_timeout",
                Type::Number,
                Optional,
                "Seconds any statement of the provider may wait for a lock (a tenant's login holding a transaction open, another Terraform run on the same tenant) before the operation fails with the sessions that hold it. Default 30.",
            ),
            Attribute::new(
                "connect_timeout",
                Type::Number,
                Optional,
                "Seconds to wait for a connection. Falls back to `PGCONNECT_TIMEOUT`, then 30.",
            ),
            Attribute::new(
                "dsn_host",
                Type::String,
                Optional,
                "Host written into the DSNs that tenant users get (for example `db` inside a compose network). Defaults to the resolved `host`.",
            ),
            Attribute::new(
                "dsn_port",
                Type::Number,
                Optional,
                "Port written into the DSNs that tenant users get. Defaults to the resolved `port`.",
            ),
            Attribute::new(
                "dsn_sslrootcert",
                Type::String,
                Optional,
                "`sslrootcert` written into the DSNs that tenant users get, where the application finds the certificate authority (for example a path inside its container). Defaults to the resolved `sslrootcert`.",
            ),
            Attribute::new(
                "max_connections",
                Type::Number,
                Optional,
                "Most connections the provider opens to the server at once; each resource operation holds up to two, and operations beyond the limit wait their turn. From 3 on, one of them is a session that reads (refresh, plan) share. At least 2; default 20, enough for Terraform's default `-parallelism=10` without waiting. Keep it below the server's `max_connections` minus what applications need.",
            ),
        ],
    }
}

/// Resolved connection settings. Debug is hand-written so a stray `{:?}` cannot print the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: Option<String>,
    pub database: String,
    pub sslmode: SslMode,
    pub sslrootcert: Option<String>,
    pub allow_cleartext_password: bool,
    pub connect_timeout: Duration,
    pub lock_timeout: Duration,
    pub max_connections: u32,
    pub dsn_host: String,
    pub dsn_port: u16,
    pub dsn_sslrootcert: Option<String>,
}

impl std::fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<sensitive>"))
            .field("database", &self.database)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .field("allow_cleartext_password", &self.allow_cleartext_password)
            .field("connect_timeout", &self.connect_timeout)
            .field("lock_timeout", &self.lock_timeout)
            .field("max_connections", &self.max_connections)
            .field("dsn_host", &self.dsn_host)
            .field("dsn_port", &self.dsn_port)
            .field("dsn_sslrootcert", &self.dsn_sslrootcert)
            .finish()
    }
}

impl ConnectionSettings {
    /// Whether reads of tenants and users share one maintenance session (see
    /// `usualstore_tenancy::Server::share_reads`). That session is held beside the operations'
    /// connections, so it needs room above one operation's worth.
    pub fn shares_reads(&self) -> bool {
        self.max_connections > CONNECTIONS_PER_OPERATION
    }

    /// Where we connect, for messages: never includes the password.
    pub fn describe(&self) -> String {
        format!(
            "{}@{}:{}/{}",
            self.username, self.host, self.port, self.database
        )
    }
}

/// Resolves the provider block against the environment. `env` is `std::env::var` outside tests.
pub fn resolve(
    config: &Value,
    env: impl Fn(&str) -> Option<String>,
) -> Result<ConnectionSettings, Diagnostics> {
    let reader = ObjectReader::new(config).map_err(|e| {
        Diagnostics::from(Diagnostic::error(
            "Invalid provider configuration",
            e.to_string(),
        ))
    })?;
    let mut diagnostics = Diagnostics::default();
    for name in [
        "host",
        "port",
        "username",
        "password",
        "database",
        "sslmode",
        "sslrootcert",
        "allow_cleartext_password",
        "connect_timeout",
        "lock_timeout",
        "dsn_host",
        "dsn_port",
        "dsn_sslrootcert",
        "max_connections",
    ] {
        if reader.is_unknown(name) {
            diagnostics.push(Diagnostic::attribute_error(
                name,
                "Provider configuration is not known yet",
                format!(
                    "`{name}` depends on a value that is only known after apply; the usualstore provider needs its \
                     connection settings at plan time. Use a value known before apply (a variable or literal)."
                ),
            ));
        }
    }
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }

    let text = |name: &str, var: &str| -> Result<Option<String>, Diagnostic> {
        let configured = reader.optional_string(name).map_err(|e| {
            Diagnostic::attribute_error(name, "Invalid provider attribute", e.to_string())
        })?;
        Ok(configured
            .or_else(|| env(var))
            .filter(|v| !v.trim().is_empty()))
    };
    let number = |name: &str, var: &str| -> Result<Option<i64>, Diagnostic> {
        if let Some(n) = reader.optional_i64(name).map_err(|e| {
            Diagnostic::attribute_error(name, "Invalid provider attribute", e.to_string())
        })? {
            return Ok(Some(n));
        }
        match env(var).filter(|v| !v.trim().is_empty()) {
            None => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                Diagnostic::attribute_error(
                    name,
                    format!("Invalid {var}"),
                    format!("{var} must be a whole number, got {v:?}."),
                )
            }),
        }
    };
    let port_of = |name: &str, value: i64| -> Result<u16, Diagnostic> {
        u16::try_from(value).ok().filter(|p| *p > 0).ok_or_else(|| {
            Diagnostic::attribute_error(
                name,
                "Invalid port",
                format!("`{name}` must be between 1 and 65535, got {value}."),
            )
        })
    };

    let host = keep(&mut diagnostics, text("host", "PGHOST")).flatten();
    let port = keep(&mut diagnostics, number("port", "PGPORT")).flatten();
    let username = keep(&mut diagnostics, text("username", "PGUSER")).flatten();
    let password = keep(&mut diagnostics, text("password", "PGPASSWORD")).flatten();
    let database = keep(&mut diagnostics, text("database", "PGDATABASE")).flatten();
    let sslmode = keep(&mut diagnostics, text("sslmode", "PGSSLMODE")).flatten();
    let sslrootcert = keep(&mut diagnostics, text("sslrootcert", "PGSSLROOTCERT")).flatten();
    let allow_cleartext_password = keep(
        &mut diagnostics,
        reader
            .optional_bool("allow_cleartext_password")
            .map_err(|e| {
                Diagnostic::attribute_error(
                    "allow_cleartext_password",
                    "Invalid provider attribute",
                    e.to_string(),
                )
            }),
    )
    .flatten()
    .unwrap_or(false);
    let dsn_sslrootcert = keep(
        &mut diagnostics,
        reader.optional_string("dsn_sslrootcert").map_err(|e| {
            Diagnostic::attribute_error(
                "dsn_sslrootcert",
                "Invalid provider attribute",
                e.to_string(),
            )
        }),
    )
    .flatten();
    let lock_timeout = keep(
        &mut diagnostics,
        reader.optional_i64("lock_timeout").map_err(|e| {
            Diagnostic::attribute_error("lock_timeout", "Invalid provider attribute", e.to_string())
        }),
    )
    .flatten();
    let connect_timeout = keep(
        &mut diagnostics,
        number("connect_timeout", "PGCONNECT_TIMEOUT"),
    )
    .flatten();
    let dsn_host = keep(
        &mut diagnostics,
        reader.optional_string("dsn_host").map_err(|e| {
            Diagnostic::attribute_error("dsn_host", "Invalid provider attribute", e.to_string())
        }),
    )
    .flatten();
    let dsn_port = keep(
        &mut diagnostics,
        reader.optional_i64("dsn_port").map_err(|e| {
            Diagnostic::attribute_error("dsn_port", "Invalid provider attribute", e.to_string())
        }),
    )
    .flatten();

    let port = match port {
        Some(p) => keep(&mut diagnostics, port_of("port", p)),
        None => Some(5432),
    };
    let dsn_port = match dsn_port {
        Some(p) => keep(&mut diagnostics, port_of("dsn_port", p)),
        None => port,
    };
    let sslmode = match sslmode.as_deref().unwrap_or("prefer").parse::<SslMode>() {
        Ok(mode) => Some(mode),
        Err(error) => {
            diagnostics.push(Diagnostic::attribute_error(
                "sslmode",
                "Unsupported sslmode",
                format!("`sslmode` (or PGSSLMODE): {error}."),
            ));
            None
        }
    };
    let lock_timeout = match lock_timeout {
        None => Some(usualstore_tenancy::DEFAULT_LOCK_TIMEOUT),
        Some(s) if (1..=MAX_LOCK_TIMEOUT_SECS).contains(&s) => {
            Some(Duration::from_secs(s.unsigned_abs()))
        }
        Some(s) => {
            diagnostics.push(Diagnostic::attribute_error(
                "lock_timeout",
                "Invalid lock_timeout",
                format!(
                    "`lock_timeout` must be from 1 to {MAX_LOCK_TIMEOUT_SECS} seconds, got {s}: every \
                     wait for a lock is bounded."
                ),
            ));
            None
        }
    };
    let connect_timeout = match connect_timeout {
        None => Some(Duration::from_secs(30)),
        Some(s) if s >= 0 => Some(Duration::from_secs(s as u64)),
        Some(s) => {
            diagnostics.push(Diagnostic::attribute_error(
                "connect_timeout",
                "Invalid connect_timeout",
                format!("`connect_timeout` must be zero or more seconds, got {s}."),
            ));
            None
        }
    };
    let max_connections = match keep(
        &mut diagnostics,
        reader.optional_i64("max_connections").map_err(|e| {
            Diagnostic::attribute_error(
                "max_connections",
                "Invalid provider attribute",
                e.to_string(),
            )
        }),
    )
    .flatten()
    {
        None => Some(DEFAULT_MAX_CONNECTIONS),
        Some(n) => {
            match u32::try_from(n) {
                Ok(n) if n >= CONNECTIONS_PER_OPERATION => Some(n),
                _ => {
                    diagnostics.push(Diagnostic::attribute_error(
                    "max_connections",
                    "Invalid max_connections",
                    format!("`max_connections` must be at least {CONNECTIONS_PER_OPERATION}, got {n}."),
                ));
                    None
                }
            }
        }
    };
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    let (
        Some(port),
        Some(dsn_port),
        Some(sslmode),
        Some(connect_timeout),
        Some(lock_timeout),
        Some(max_connections),
    ) = (
        port,
        dsn_port,
        sslmode,
        connect_timeout,
        lock_timeout,
        max_connections,
    )
    else {
        return Err(diagnostics);
    };

    let host = host.unwrap_or_else(|| "localhost".to_owned());
    let username = username
        .or_else(|| env("USER"))
        .unwrap_or_else(|| "postgres".to_owned());
    Ok(ConnectionSettings {
        dsn_host: dsn_host.unwrap_or_else(|| host.clone()),
        host,
        port,
        username,
        password,
        database: database.unwrap_or_else(|| "postgres".to_owned()),
        sslmode,
        dsn_sslrootcert: dsn_sslrootcert.or_else(|| sslrootcert.clone()),
        sslrootcert,
        allow_cleartext_password,
        connect_timeout,
        lock_timeout,
        dsn_port,
        max_connections,
    })
}

/// A day: a wait longer than that is a hang, not a wait.
const MAX_LOCK_TIMEOUT_SECS: i64 = 86_400;

/// Connections one resource operation may hold at once (maintenance database and tenant database).
pub const CONNECTIONS_PER_OPERATION: u32 = 2;
const DEFAULT_MAX_CONNECTIONS: u32 = 20;

/// What a configured provider hands every resource operation.
pub struct ProviderContext {
    /// Also the source of the host, port and sslmode written into DSN outputs.
    pub settings: ConnectionSettings,
    pub server: usualstore_tenancy::Server,
    /// Whether PUBLIC may connect to the maintenance database (no `usualstore_server` applied):
    /// plans that touch a tenant warn about it.
    pub public_can_connect: bool,
    /// One permit per connection: `-parallelism=50` against a server with 100 connections must queue here
    /// instead of failing with "too many clients".
    connections: Arc<tokio::sync::Semaphore>,
}

impl ProviderContext {
    pub fn new(settings: ConnectionSettings, server: usualstore_tenancy::Server) -> Self {
        // The session reads share stays open beside the operations' own connections.
        let shared = u32::from(settings.shares_reads());
        let permits = usize::try_from(settings.max_connections - shared).unwrap_or(usize::MAX);
        Self {
            settings,
            server,
            public_can_connect: false,
            connections: Arc::new(tokio::sync::Semaphore::new(permits)),
        }
    }

    /// Waits for room for one more operation; the room is given back when the permit drops, which
    /// may be after the request has been answered (an apply keeps it until its sessions have ended).
    pub async fn operation_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        // The semaphore is never closed, so this only fails if that changes; then run unthrottled.
        Arc::clone(&self.connections)
            .acquire_many_owned(CONNECTIONS_PER_OPERATION)
            .await
            .ok()
    }
}

/// Keeps a value, or records its diagnostic so every configuration error is reported at once.
fn keep<T>(diagnostics: &mut Diagnostics, result: Result<T, Diagnostic>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(diagnostic) => {
            diagnostics.push(diagnostic);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};
    use usualstore_cty::ObjectBuilder;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn empty_config() -> Value {
        let mut b = ObjectBuilder::new();
        for a in schema().attributes {
            b = b.null(a.name);
        }
        b.build()
    }

    #[test]
    fn defaults_follow_libpq() {
        let s = resolve(&empty_config(), env(&[("USER", "alice")])).expect("resolves");
        assert_eq!(s.host, "localhost");
        assert_eq!(s.port, 5432);
        assert_eq!(s.username, "alice");
        assert_eq!(s.database, "postgres");
        assert_eq!(s.sslmode, SslMode::Prefer);
        assert_eq!((s.dsn_host.as_str(), s.dsn_port), ("localhost", 5432));
    }

    #[test]
    fn environment_fills_what_configuration_leaves_out() {
        let mut attrs = BTreeMap::new();
        attrs.insert("host".to_owned(), Value::String("db.internal".into()));
        let mut config = empty_config();
        if let Value::Object(map) = &mut config {
            map.extend(attrs);
        }
        let s = resolve(
            &config,
            env(&[
                ("PGHOST", "ignored"),
                ("PGPORT", "6543"),
                ("PGPASSWORD", "s3cret"),
                ("PGSSLMODE", "disable"),
            ]),
        )
        .expect("resolves");
        assert_eq!(s.host, "db.internal");
        assert_eq!(s.port, 6543);
        assert_eq!(s.password.as_deref(), Some("s3cret"));
        assert_eq!(s.sslmode, SslMode::Disable);
        assert!(!format!("{s:?}").contains("s3cret"));
        assert!(!s.describe().contains("s3cret"));
    }

    #[test]
    fn bad_values_name_the_attribute() {
        let errors = resolve(
            &empty_config(),
            env(&[("PGPORT", "70000"), ("PGSSLMODE", "verify-everything")]),
        )
        .expect_err("invalid");
        let attrs: Vec<_> = errors
            .0
            .iter()
            .filter_map(|d| d.attribute.clone())
            .collect();
        assert!(attrs.contains(&"port".to_owned()), "{errors:?}");
        assert!(attrs.contains(&"sslmode".to_owned()), "{errors:?}");
    }
}
