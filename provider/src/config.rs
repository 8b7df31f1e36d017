//! The `provider "usualstore"` block: where the PostgreSQL server is and how to log in, with libpq's
//! environment variables as fallbacks so the same configuration runs on a laptop and in CI.

use std::sync::Arc;
use std::time::Duration;

use usualstore_cty::Value;

use crate::diagnostics::{Diagnostic, DiagnosticKind, Diagnostics};
use crate::model::{Attr, resource_model};
use crate::schema::{Schema, optional};

pub use usualstore_pgtls::SslMode;

resource_model! {
    /// The `provider "usualstore"` block. Every attribute falls back to the libpq environment
    /// variable named in its description, then to libpq's default.
    pub struct ProviderModel {
        host: String => optional("Server host name or address. Falls back to `PGHOST`, then `localhost`."),
        port: i64 => optional("Server port. Falls back to `PGPORT`, then `5432`."),
        username: String => optional(
            "Role to log in as: a superuser, or a role with `CREATEDB` and `CREATEROLE` (managed PostgreSQL). Falls \
             back to `PGUSER`, then the operating-system user.",
        ),
        password: String => optional("Password of `username`. Falls back to `PGPASSWORD`.").sensitive(),
        database: String => optional(
            "Maintenance database the provider connects to for server-wide work. Falls back to `PGDATABASE`, then \
             `postgres`.",
        ),
        sslmode: String => optional(
            "As libpq's: `disable`, `prefer` or `require` encrypt (or not) without checking who the server is; \
             `verify-ca` checks the server's certificate against `sslrootcert`, `verify-full` also checks that it \
             names `host`. Below `verify-ca` the provider refuses to send the password in clear text when the \
             server asks for it (see `allow_cleartext_password`). Falls back to `PGSSLMODE`, then `prefer`.",
        ),
        sslrootcert: String => optional(
            "PEM file of the certificate authorities `verify-ca` and `verify-full` trust. Falls back to \
             `PGSSLROOTCERT`, then `~/.postgresql/root.crt`. Written into tenant users' DSNs as well, unless \
             `dsn_sslrootcert` says otherwise.",
        ),
        allow_cleartext_password: bool => optional(
            "Send the password in clear text when a server that is not verified asks for it (`sslmode` below \
             `verify-ca`). Default `false`: a man in the middle asks for exactly that to learn the password, while \
             SCRAM and MD5 never reveal it.",
        ),
        connect_timeout: i64 => optional(
            "Seconds to wait for a connection. Falls back to `PGCONNECT_TIMEOUT`, then 30.",
        ),
        lock_timeout: i64 => optional(
            "Seconds any statement of the provider may wait for a lock (a tenant's login holding a transaction \
             open, another Terraform run on the same tenant) before the operation fails with the sessions that \
             hold it. From 1 to 86400; default 30.",
        ),
        dsn_host: String => optional(
            "Host written into the DSNs that tenant users get (for example `db` inside a compose network). \
             Defaults to the resolved `host`.",
        ),
        dsn_port: i64 => optional(
            "Port written into the DSNs that tenant users get. Defaults to the resolved `port`.",
        ),
        dsn_sslrootcert: String => optional(
            "`sslrootcert` written into the DSNs that tenant users get, where the application finds the \
             certificate authority (for example a path inside its container). Defaults to the resolved \
             `sslrootcert`.",
        ),
        max_connections: i64 => optional(
            "Most connections the provider opens to the server at once; each resource operation holds up to two, \
             and operations beyond the limit wait their turn. From 3 on, one of them is a session that reads \
             (refresh, plan) share, and from 8 on one or two are maintenance sessions kept open between operations. At \
             least 2; default 20. Keep it below the server's `max_connections` minus what applications need.",
        ),
    }
}

pub fn schema() -> Schema {
    Schema {
        version: 0,
        description: "Connects to the PostgreSQL server that holds the tenant databases. Every attribute falls \
            back to the libpq environment variable named in its description, then to libpq's default.",
        attributes: ProviderModel::attributes(),
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

    /// Maintenance sessions kept open between operations (see
    /// `usualstore_tenancy::Server::keep_idle`): a few, where the connection budget has room.
    pub fn idle_sessions(&self) -> u32 {
        match self.max_connections {
            0..8 => 0,
            8..16 => 1,
            _ => 2,
        }
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
/// Every problem is reported at once, each on its attribute; a value not known yet is a
/// diagnostic of kind [`DiagnosticKind::NotKnownYet`], which validation (unlike configuration)
/// lets pass.
pub fn resolve(
    config: &Value,
    env: impl Fn(&str) -> Option<String>,
) -> Result<ConnectionSettings, Diagnostics> {
    let model = ProviderModel::from_value(config)?;
    let mut diagnostics = Diagnostics::default();
    let fallback = Fallback {
        env: &env,
        diagnostics: &mut diagnostics,
    };
    let resolved = fallback.resolve(&model);
    let settings = resolved.filter(|_| !diagnostics.has_errors());
    settings.ok_or(diagnostics)
}

/// Reads attributes with their environment fallbacks, collecting diagnostics.
struct Fallback<'a, E: Fn(&str) -> Option<String>> {
    env: &'a E,
    diagnostics: &'a mut Diagnostics,
}

impl<E: Fn(&str) -> Option<String>> Fallback<'_, E> {
    /// The configured value, else the environment variable's, else `None`; an unknown value is
    /// recorded.
    fn known<T: Clone>(&mut self, name: &str, value: &Attr<T>) -> Option<Option<T>> {
        match value {
            Attr::Unknown => {
                self.diagnostics.push(
                    Diagnostic::attribute_error(
                        name,
                        "Provider configuration is not known yet",
                        format!(
                            "`{name}` depends on a value that is only known after apply; the usualstore provider \
                             needs its connection settings at plan time. Use a value known before apply (a \
                             variable or literal)."
                        ),
                    )
                    .of_kind(DiagnosticKind::NotKnownYet),
                );
                None
            }
            Attr::Null => Some(None),
            Attr::Known(value) => Some(Some(value.clone())),
        }
    }

    fn text(&mut self, name: &str, value: &Attr<String>, var: &str) -> Option<String> {
        self.known(name, value)
            .flatten()
            .or_else(|| (self.env)(var))
            .filter(|text| !text.trim().is_empty())
    }

    fn number(&mut self, name: &str, value: &Attr<i64>, var: Option<&str>) -> Option<i64> {
        if let Some(configured) = self.known(name, value).flatten() {
            return Some(configured);
        }
        let text = (self.env)(var?).filter(|text| !text.trim().is_empty())?;
        match text.trim().parse::<i64>() {
            Ok(number) => Some(number),
            Err(_) => {
                self.invalid(
                    name,
                    format!("{} must be a whole number, got {text:?}.", var?),
                );
                None
            }
        }
    }

    fn invalid(&mut self, name: &str, detail: String) {
        self.diagnostics.push(Diagnostic::attribute_error(
            name,
            format!("Invalid {name}"),
            detail,
        ));
    }

    /// A value within `range`, or a diagnostic saying so.
    fn within<T: TryFrom<i64>>(
        &mut self,
        name: &str,
        value: i64,
        range: std::ops::RangeInclusive<i64>,
        meaning: &str,
    ) -> Option<T> {
        match T::try_from(value) {
            Ok(converted) if range.contains(&value) => Some(converted),
            _ => {
                self.invalid(
                    name,
                    format!(
                        "`{name}` must be {meaning} from {} to {}, got {value}.",
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
        }
    }

    fn resolve(mut self, model: &ProviderModel) -> Option<ConnectionSettings> {
        let host = self
            .text("host", &model.host, "PGHOST")
            .unwrap_or_else(|| "localhost".to_owned());
        let port = match self.number("port", &model.port, Some("PGPORT")) {
            Some(port) => self.within::<u16>("port", port, 1..=65_535, "a port"),
            None => Some(5432),
        };
        let username = self
            .text("username", &model.username, "PGUSER")
            .or_else(|| (self.env)("USER"))
            .unwrap_or_else(|| "postgres".to_owned());
        let password = self.text("password", &model.password, "PGPASSWORD");
        let database = self
            .text("database", &model.database, "PGDATABASE")
            .unwrap_or_else(|| "postgres".to_owned());
        let sslmode = match self
            .text("sslmode", &model.sslmode, "PGSSLMODE")
            .as_deref()
            .unwrap_or("prefer")
            .parse::<SslMode>()
        {
            Ok(mode) => Some(mode),
            Err(error) => {
                self.invalid("sslmode", format!("`sslmode` (or PGSSLMODE): {error}."));
                None
            }
        };
        let sslrootcert = self.text("sslrootcert", &model.sslrootcert, "PGSSLROOTCERT");
        let allow_cleartext_password = self
            .known("allow_cleartext_password", &model.allow_cleartext_password)
            .flatten()
            .unwrap_or(false);
        let connect_timeout = match self.number(
            "connect_timeout",
            &model.connect_timeout,
            Some("PGCONNECT_TIMEOUT"),
        ) {
            Some(secs) => self
                .within::<u64>("connect_timeout", secs, 0..=86_400, "seconds")
                .map(Duration::from_secs),
            None => Some(Duration::from_secs(30)),
        };
        let lock_timeout = match self.number("lock_timeout", &model.lock_timeout, None) {
            Some(secs) => self
                .within::<u64>("lock_timeout", secs, 1..=MAX_LOCK_TIMEOUT_SECS, "seconds")
                .map(Duration::from_secs),
            None => Some(usualstore_tenancy::DEFAULT_LOCK_TIMEOUT),
        };
        let dsn_host = self
            .known("dsn_host", &model.dsn_host)
            .flatten()
            .unwrap_or_else(|| host.clone());
        let dsn_port = match self.number("dsn_port", &model.dsn_port, None) {
            Some(value) => self.within::<u16>("dsn_port", value, 1..=65_535, "a port"),
            None => port,
        };
        let dsn_sslrootcert = self
            .known("dsn_sslrootcert", &model.dsn_sslrootcert)
            .flatten()
            .or_else(|| sslrootcert.clone());
        let max_connections = match self.number("max_connections", &model.max_connections, None) {
            Some(value) => self.within::<u32>(
                "max_connections",
                value,
                i64::from(CONNECTIONS_PER_OPERATION)..=10_000,
                "a number of connections",
            ),
            None => Some(DEFAULT_MAX_CONNECTIONS),
        };
        Some(ConnectionSettings {
            host,
            port: port?,
            username,
            password,
            database,
            sslmode: sslmode?,
            sslrootcert,
            allow_cleartext_password,
            connect_timeout: connect_timeout?,
            lock_timeout: lock_timeout?,
            max_connections: max_connections?,
            dsn_host,
            dsn_port: dsn_port?,
            dsn_sslrootcert,
        })
    }
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
    /// The version of the Terraform that configured the provider, as it said it (`1.11.4`).
    pub terraform_version: String,
    /// One permit per connection: `-parallelism=50` against a server with 100 connections must queue here
    /// instead of failing with "too many clients".
    connections: Arc<tokio::sync::Semaphore>,
}

impl ProviderContext {
    pub fn new(settings: ConnectionSettings, server: usualstore_tenancy::Server) -> Self {
        // The session reads share and the idle maintenance sessions stay open beside the
        // operations' own connections.
        let shared = u32::from(settings.shares_reads()) + settings.idle_sessions();
        let permits = usize::try_from(settings.max_connections - shared).unwrap_or(usize::MAX);
        Self {
            settings,
            server,
            public_can_connect: false,
            terraform_version: String::new(),
            connections: Arc::new(tokio::sync::Semaphore::new(permits)),
        }
    }

    /// Whether this Terraform keeps write-only attributes out of state (1.11 and later). An
    /// unreadable version passes: validation already refused write-only values to a Terraform
    /// that did not say it can take them.
    pub fn terraform_keeps_write_only(&self) -> bool {
        let mut parts = self
            .terraform_version
            .split(['.', '-'])
            .map(|part| part.parse::<u32>());
        match (parts.next(), parts.next()) {
            (Some(Ok(major)), Some(Ok(minor))) => (major, minor) >= (1, 11),
            _ => true,
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
