//! Settings from the environment: the only way store-api is configured, so one image serves
//! every tenant.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::Host;
use tracing_subscriber::filter::Targets;

pub const DATABASE_DSN: &str = "DATABASE_DSN";
pub const DATABASE_PASSWORD_FILE: &str = "DATABASE_PASSWORD_FILE";
pub const API_PORT: &str = "API_PORT";
pub const API_HOST: &str = "API_HOST";
pub const TENANT_NAME: &str = "TENANT_NAME";
pub const DB_POOL_SIZE: &str = "DB_POOL_SIZE";
pub const LOG_FORMAT: &str = "LOG_FORMAT";
pub const LOG_LEVEL: &str = "LOG_LEVEL";
pub const REQUEST_TIMEOUT_SECS: &str = "REQUEST_TIMEOUT_SECS";
pub const TOKEN_TTL_MINUTES: &str = "TOKEN_TTL_MINUTES";
pub const DATABASE_ALLOW_CLEARTEXT_PASSWORD: &str = "DATABASE_ALLOW_CLEARTEXT_PASSWORD";
pub const OPS_ADDR: &str = "OPS_ADDR";
pub const MAX_CONNECTIONS: &str = "MAX_CONNECTIONS";
pub const HEADER_READ_TIMEOUT_SECS: &str = "HEADER_READ_TIMEOUT_SECS";
pub const KEEP_ALIVE_TIMEOUT_SECS: &str = "KEEP_ALIVE_TIMEOUT_SECS";
pub const PASSWORD_HASH_CONCURRENCY: &str = "PASSWORD_HASH_CONCURRENCY";
pub const PASSWORD_HASH_WAIT_MS: &str = "PASSWORD_HASH_WAIT_MS";
pub const SIGNIN_FAILURES_PER_EMAIL: &str = "SIGNIN_FAILURES_PER_EMAIL";
pub const SIGNIN_FAILURES_PER_ADDRESS: &str = "SIGNIN_FAILURES_PER_ADDRESS";
pub const SIGNIN_WINDOW_SECS: &str = "SIGNIN_WINDOW_SECS";
pub const TRUSTED_PROXIES: &str = "TRUSTED_PROXIES";
pub const DB_SHARED_CONNECTIONS: &str = "DB_SHARED_CONNECTIONS";
pub const TOKEN_CACHE_MS: &str = "TOKEN_CACHE_MS";
pub const WORKER_THREADS: &str = "WORKER_THREADS";
pub const TENANTS_FILE: &str = "TENANTS_FILE";
pub const DB_MAX_CONNECTIONS: &str = "DB_MAX_CONNECTIONS";
pub const DB_IDLE_TIMEOUT_SECS: &str = "DB_IDLE_TIMEOUT_SECS";
pub const DB_MAX_LIFETIME_SECS: &str = "DB_MAX_LIFETIME_SECS";

pub const DEFAULT_PORT: u16 = 4001;
const DEFAULT_POOL_SIZE: usize = 16;
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const DEFAULT_TOKEN_TTL_MINUTES: u64 = 24 * 60;
/// libpq waits forever by default; a container that cannot reach its database should say so soon.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const APPLICATION_NAME: &str = "store-api";
/// Connections served at once when `MAX_CONNECTIONS` is not set (and the file limit allows).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_HASH_WAIT: Duration = Duration::from_secs(1);
const DEFAULT_FAILURES_PER_EMAIL: u32 = 5;
const DEFAULT_FAILURES_PER_ADDRESS: u32 = 20;
const DEFAULT_SIGNIN_WINDOW: Duration = Duration::from_secs(15 * 60);
const DEFAULT_SHARED_CONNECTIONS: usize = 1;
/// A cached token is re-read after this at the latest: a logout on another instance takes
/// effect within it. Never more than a second (the API's promise).
pub const MAX_TOKEN_CACHE: Duration = Duration::from_secs(1);
/// A database connection is replaced once it is this old (`DB_MAX_LIFETIME_SECS`). PostgreSQL
/// keeps what a session planned (foreign-key checks among it) and cached for the session's life;
/// planned against the empty tables of a new tenant, those plans scan tables that have since
/// grown, until an `ANALYZE` happens to invalidate them.
const DEFAULT_DB_MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Database connections a router holds at most across tenants: PostgreSQL's own default
/// `max_connections`, less a few for its superusers and the operator.
const DEFAULT_DB_MAX_CONNECTIONS: usize = 90;
/// A tenant without requests for this long has its connections closed.
const DEFAULT_DB_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

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

/// An address or a network in CIDR notation (`10.0.0.0/8`, `fd00::/8`, `192.0.2.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = ();

    fn from_str(text: &str) -> Result<IpNet, ()> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr = canonical(addr.trim().parse::<IpAddr>().map_err(|_| ())?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or(())?,
        };
        Ok(IpNet { addr, prefix })
    }
}

/// An IPv4 address written as IPv6 (`::ffff:192.0.2.7`, what a dual-stack socket reports) is
/// the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// What a connection may cost: how many are open at once and how long one may sit idle or take
/// to send a request's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once; further ones wait in the kernel's listen queue.
    pub max_connections: usize,
    /// From a connection's first byte of a request (or its opening) to the end of the headers.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub keep_alive_timeout: Duration,
}

/// Failed sign-ins allowed in a sliding window, per e-mail and per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimits {
    pub failures_per_email: u32,
    pub failures_per_address: u32,
    pub window: Duration,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_DSN`: the one tenant of a single-tenant process (`None` in router mode).
    pub database: Option<DatabaseConfig>,
    /// `TENANTS_FILE`'s path and tenants as read at start (router mode).
    pub tenants_file: Option<String>,
    pub tenants: Option<Vec<crate::tenants_file::TenantEntry>>,
    /// `DATABASE_ALLOW_CLEARTEXT_PASSWORD`, kept for reloads of the tenants file.
    pub allow_cleartext_password: bool,
    /// `DB_MAX_CONNECTIONS` (router mode; a single tenant's pool is its own budget).
    pub db_max_connections: usize,
    /// `DB_IDLE_TIMEOUT_SECS`.
    pub db_idle_timeout: Duration,
    /// `DB_MAX_LIFETIME_SECS`; `None` (0): connections are kept until they break or idle out.
    pub db_max_lifetime: Option<Duration>,
    pub host: IpAddr,
    pub port: u16,
    /// `TENANT_NAME`; without it, the name the provider recorded for the tenant is read from the
    /// database.
    pub tenant_name: Option<String>,
    pub pool_size: usize,
    pub log_format: LogFormat,
    pub log_level: Targets,
    pub request_timeout: Duration,
    pub token_ttl: Duration,
    /// Where `/metrics` and `/readyz` are served instead of the API's port, if set.
    pub ops_addr: Option<SocketAddr>,
    /// `None`: derived from the open-file limit at start (see [`ConnectionLimits`]).
    pub max_connections: Option<usize>,
    pub header_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    /// Argon2 computations at once; each takes 19 MiB while it runs.
    pub hash_concurrency: usize,
    /// How long a sign-in waits for a free hashing slot before it gets a 503.
    pub hash_wait: Duration,
    pub sign_in: SignInLimits,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Pool connections that many requests' single-statement reads share, pipelined.
    pub shared_connections: usize,
    /// How long a verified bearer token is remembered (0: every request asks the database).
    pub token_cache: Duration,
    /// Threads serving requests (Argon2 runs on others).
    pub worker_threads: usize,
}

impl Config {
    /// Database connections the process may hold at once: `DB_MAX_CONNECTIONS` in router mode,
    /// the pool's size for a single tenant, plus its token listener when tokens are remembered.
    pub fn db_max_connections(&self) -> usize {
        match &self.tenants {
            Some(_) => self.db_max_connections,
            None => self.pool_size + usize::from(!self.token_cache.is_zero()),
        }
    }

    /// The connection limits of the API's listener: `MAX_CONNECTIONS` or, by default, as many as
    /// the open-file limit leaves room for next to the database connections (the pool, or a
    /// router's whole budget), capped at
    /// [`DEFAULT_MAX_CONNECTIONS`].
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self
                .max_connections
                .unwrap_or_else(|| default_max_connections(self.db_max_connections())),
            header_read_timeout: self.header_read_timeout,
            keep_alive_timeout: self.keep_alive_timeout,
        }
    }
}

/// One per CPU. With the cores to itself (two of them, shared with the database and the load
/// generator in `make bench`), one thread serves reads with about a quarter less CPU per request,
/// because two spend it waking each other; but a single thread stalls every request whenever the
/// scheduler runs something else, and under outside load two threads served more and with far
/// shorter tails. The robust choice is the default; `WORKER_THREADS=1` suits a small dedicated box.
fn default_worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// File descriptors kept for everything but client connections: the pool, the listeners, the
/// log, DNS look-ups and the runtime's own.
const RESERVED_FILES: usize = 64;

fn default_max_connections(pool_size: usize) -> usize {
    match open_file_limit() {
        Some(limit) => usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .saturating_sub(RESERVED_FILES + pool_size)
            .clamp(1, DEFAULT_MAX_CONNECTIONS),
        None => DEFAULT_MAX_CONNECTIONS,
    }
}

/// The soft `RLIMIT_NOFILE` of this process (Linux: `/proc/self/limits`).
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    soft.parse().ok()
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment in production, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let allow_cleartext_password = allow_cleartext(&get)?;
        let tenants_file = get(TENANTS_FILE).map(|path| path.trim().to_owned());
        let (database, tenants) = match &tenants_file {
            None => (Some(database_settings(&get)?), None),
            Some(path) => {
                for (name, why) in [
                    (
                        DATABASE_DSN,
                        "TENANTS_FILE names every tenant's DSN; set one or the other",
                    ),
                    (
                        DATABASE_PASSWORD_FILE,
                        "router mode takes passwords from the DSNs of TENANTS_FILE",
                    ),
                    (TENANT_NAME, "TENANTS_FILE names every tenant"),
                ] {
                    if get(name).is_some() {
                        return Err(invalid(name, why));
                    }
                }
                (
                    None,
                    Some(crate::tenants_file::read(path, allow_cleartext_password)?),
                )
            }
        };
        let tenant_name = get(TENANT_NAME).map(|name| name.trim().to_owned());
        if tenant_name
            .as_deref()
            .is_some_and(|name| name.chars().any(char::is_control))
        {
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
        let ops_addr = match get(OPS_ADDR) {
            None => None,
            Some(value) => Some(value.trim().parse::<SocketAddr>().map_err(|_| {
                invalid(
                    OPS_ADDR,
                    "expected an address and port such as 0.0.0.0:4002",
                )
            })?),
        };
        if ops_addr.is_some_and(|ops| ops.port() == port && ops.ip() == host) {
            return Err(invalid(
                OPS_ADDR,
                "is the API's own address (API_HOST:API_PORT)",
            ));
        }
        let max_connections = get(MAX_CONNECTIONS)
            .map(|value| number(MAX_CONNECTIONS, &value, 1, 1_000_000))
            .transpose()?
            .map(|n| n as usize);
        let header_read_timeout = seconds(
            &get,
            HEADER_READ_TIMEOUT_SECS,
            DEFAULT_HEADER_READ_TIMEOUT,
            0.1,
            3600.0,
        )?;
        let keep_alive_timeout = seconds(
            &get,
            KEEP_ALIVE_TIMEOUT_SECS,
            DEFAULT_KEEP_ALIVE_TIMEOUT,
            0.1,
            3600.0,
        )?;
        let hash_concurrency = match get(PASSWORD_HASH_CONCURRENCY) {
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Some(value) => number(PASSWORD_HASH_CONCURRENCY, &value, 1, 256)? as usize,
        };
        let hash_wait = match get(PASSWORD_HASH_WAIT_MS) {
            None => DEFAULT_HASH_WAIT,
            Some(value) => Duration::from_millis(number(PASSWORD_HASH_WAIT_MS, &value, 0, 60_000)?),
        };
        let count = |name: &'static str, default: u32| -> Result<u32, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(value) => Ok(number(name, &value, 1, 1_000_000)? as u32),
            }
        };
        let sign_in = SignInLimits {
            failures_per_email: count(SIGNIN_FAILURES_PER_EMAIL, DEFAULT_FAILURES_PER_EMAIL)?,
            failures_per_address: count(SIGNIN_FAILURES_PER_ADDRESS, DEFAULT_FAILURES_PER_ADDRESS)?,
            window: seconds(
                &get,
                SIGNIN_WINDOW_SECS,
                DEFAULT_SIGNIN_WINDOW,
                1.0,
                86_400.0,
            )?,
        };
        let trusted_proxies = match get(TRUSTED_PROXIES) {
            None => Vec::new(),
            Some(value) => value
                .split([',', ' '])
                .filter(|item| !item.trim().is_empty())
                .map(|item| {
                    item.parse::<IpNet>().map_err(|()| {
                        invalid(
                            TRUSTED_PROXIES,
                            "expected addresses or networks (10.0.0.0/8), separated by commas",
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let shared_connections = match get(DB_SHARED_CONNECTIONS) {
            None => DEFAULT_SHARED_CONNECTIONS,
            Some(value) => number(DB_SHARED_CONNECTIONS, &value, 0, 64)? as usize,
        };
        let token_cache = match get(TOKEN_CACHE_MS) {
            None => MAX_TOKEN_CACHE,
            Some(value) => Duration::from_millis(number(
                TOKEN_CACHE_MS,
                &value,
                0,
                MAX_TOKEN_CACHE.as_millis() as u64,
            )?),
        };
        let db_max_connections = match get(DB_MAX_CONNECTIONS) {
            None => DEFAULT_DB_MAX_CONNECTIONS,
            Some(value) => number(DB_MAX_CONNECTIONS, &value, 1, 100_000)? as usize,
        };
        if tenants.is_some() {
            if ops_addr.is_none() {
                return Err(ConfigError::Missing {
                    name: OPS_ADDR,
                    hint: " (router mode serves /readyz and /metrics, which cover every tenant, \
                           only there, never on a tenant's host name)",
                });
            }
            if db_max_connections < 2 * pool_size {
                return Err(invalid(
                    DB_MAX_CONNECTIONS,
                    "must be at least twice DB_POOL_SIZE, or one busy tenant could take every \
                     connection (lower DB_POOL_SIZE or raise DB_MAX_CONNECTIONS)",
                ));
            }
        }
        let db_idle_timeout = seconds(
            &get,
            DB_IDLE_TIMEOUT_SECS,
            DEFAULT_DB_IDLE_TIMEOUT,
            1.0,
            86_400.0,
        )?;
        let db_max_lifetime = Some(seconds(
            &get,
            DB_MAX_LIFETIME_SECS,
            DEFAULT_DB_MAX_LIFETIME,
            0.0,
            604_800.0,
        )?)
        .filter(|lifetime| !lifetime.is_zero());
        let worker_threads = match get(WORKER_THREADS) {
            None => default_worker_threads(),
            Some(value) => number(WORKER_THREADS, &value, 1, 256)? as usize,
        };
        Ok(Config {
            worker_threads,
            database,
            tenants_file,
            tenants,
            allow_cleartext_password,
            db_max_connections,
            db_idle_timeout,
            db_max_lifetime,
            host,
            port,
            tenant_name,
            pool_size,
            log_format,
            log_level,
            request_timeout,
            token_ttl: Duration::from_secs(token_ttl_minutes * 60),
            ops_addr,
            max_connections,
            header_read_timeout,
            keep_alive_timeout,
            hash_concurrency,
            hash_wait,
            sign_in,
            trusted_proxies,
            shared_connections,
            token_cache,
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
    database_settings(&get)
}

/// `DATABASE_DSN`, with the password from `DATABASE_PASSWORD_FILE` when the DSN carries none (a
/// login whose password Terraform keeps write-only: its DSN has no password, and the operator
/// mounts the password as a secret file).
fn database_settings(get: &impl Fn(&str) -> Option<String>) -> Result<DatabaseConfig, ConfigError> {
    let dsn = get(DATABASE_DSN).ok_or(ConfigError::Missing {
        name: DATABASE_DSN,
        hint: " (a libpq key/value DSN or a postgres:// URL)",
    })?;
    let mut database = database_config(&dsn, allow_cleartext(get)?)?;
    if let Some(path) = get(DATABASE_PASSWORD_FILE) {
        if database.pg.get_password().is_some() {
            return Err(invalid(
                DATABASE_PASSWORD_FILE,
                "is set, but DATABASE_DSN carries a password too; give the password one way",
            ));
        }
        database.pg.password(read_password_file(path.trim())?);
    }
    Ok(database)
}

/// The first line of the file, without its line ending. Errors name the file, never its content.
fn read_password_file(path: &str) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        invalid(
            DATABASE_PASSWORD_FILE,
            &format!("cannot read {path:?}: {error}"),
        )
    })?;
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        return Err(invalid(
            DATABASE_PASSWORD_FILE,
            &format!("{path:?} holds no password (its first line is empty)"),
        ));
    }
    Ok(password.to_owned())
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

/// A whole number from `min` to `max`.
fn number(name: &'static str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| invalid(name, &format!("expected a number from {min} to {max}")))
}

/// Seconds (fractions allowed) from `min` to `max`, or `default` when unset.
fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Duration,
    min: f64,
    max: f64,
) -> Result<Duration, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|secs| secs.is_finite() && *secs >= min && *secs <= max)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| invalid(name, &format!("expected seconds from {min} to {max}"))),
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
            kv.database.as_ref().unwrap().connector.mode(),
            usualstore_pgtls::SslMode::Prefer
        );
        assert_eq!(
            kv.database.as_ref().unwrap().pg.get_password(),
            Some(&b"p a'ss"[..])
        );
        assert_eq!(
            kv.database.as_ref().unwrap().pg.get_dbname(),
            Some("building_shop")
        );
        assert_eq!(
            kv.database.as_ref().unwrap().describe(),
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
            url.database.as_ref().unwrap().connector.mode(),
            usualstore_pgtls::SslMode::Disable
        );
        assert_eq!(
            url.database.as_ref().unwrap().pg.get_password(),
            Some(&b"pct enc"[..])
        );
        assert_eq!(url.port, 8080);
        assert_eq!(url.pool_size, 4);
        assert_eq!(url.log_format, LogFormat::Json);
    }

    #[test]
    fn a_dsn_without_a_password_takes_it_from_a_file() {
        let dir = std::env::temp_dir().join(format!("store-api-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("password");
        std::fs::write(&file, "kept in a secret store\n").unwrap();
        let path = file.to_string_lossy().into_owned();
        let without = "host=h user=u dbname=d sslmode=disable";
        let read = config(&[(DATABASE_DSN, without), (DATABASE_PASSWORD_FILE, &path)]).unwrap();
        assert_eq!(
            read.database.as_ref().unwrap().pg.get_password(),
            Some(&b"kept in a secret store"[..])
        );

        let both = config(&[(DATABASE_DSN, KV), (DATABASE_PASSWORD_FILE, &path)]).unwrap_err();
        assert!(
            both.to_string()
                .starts_with("DATABASE_PASSWORD_FILE is invalid"),
            "{both}"
        );
        std::fs::write(&file, "\nsecond line\n").unwrap();
        let empty =
            config(&[(DATABASE_DSN, without), (DATABASE_PASSWORD_FILE, &path)]).unwrap_err();
        assert!(empty.to_string().contains("holds no password"), "{empty}");
        assert!(!empty.to_string().contains("second line"));
        std::fs::remove_dir_all(&dir).unwrap();
        let gone = config(&[(DATABASE_DSN, without), (DATABASE_PASSWORD_FILE, &path)]).unwrap_err();
        assert!(gone.to_string().contains("cannot read"), "{gone}");
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
        // TENANT_NAME is optional: the database says what the provider recorded.
        assert_eq!(config(&[(DATABASE_DSN, KV)]).unwrap().tenant_name, None);
        for (name, value) in [
            (OPS_ADDR, "4002"),
            (MAX_CONNECTIONS, "0"),
            (HEADER_READ_TIMEOUT_SECS, "0"),
            (KEEP_ALIVE_TIMEOUT_SECS, "soon"),
            (PASSWORD_HASH_CONCURRENCY, "0"),
            (PASSWORD_HASH_WAIT_MS, "-5"),
            (SIGNIN_FAILURES_PER_EMAIL, "0"),
            (SIGNIN_WINDOW_SECS, "0"),
            (TRUSTED_PROXIES, "10.0.0.0/33"),
            (TRUSTED_PROXIES, "proxy.internal"),
            (TOKEN_CACHE_MS, "5000"),
            (WORKER_THREADS, "0"),
        ] {
            let error = config(&[(DATABASE_DSN, KV), (name, value)])
                .unwrap_err()
                .to_string();
            assert!(error.starts_with(&format!("{name} is invalid")), "{error}");
        }
    }

    #[test]
    fn router_mode_takes_a_tenants_file_and_an_operations_address() {
        let dir = std::env::temp_dir().join(format!("store-api-tenants-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tenants.json");
        std::fs::write(
            &file,
            format!(
                r#"{{"Shop.Example.com": {{"dsn": "{}", "name": "Shop"}}}}"#,
                KV.replace('\\', "\\\\")
            ),
        )
        .unwrap();
        let path = file.to_string_lossy().into_owned();
        let ops = (OPS_ADDR, "127.0.0.1:4002");
        let router = config(&[(TENANTS_FILE, &path), ops]).unwrap();
        assert!(router.database.is_none());
        let tenants = router.tenants.as_ref().unwrap();
        assert_eq!(tenants[0].hosts, ["shop.example.com"]);
        assert!(!format!("{router:?}").contains("p a'ss"));
        assert_eq!(router.db_max_connections(), 90);
        assert_eq!(router.db_idle_timeout, Duration::from_secs(60));

        let error = |pairs: &[(&str, &str)]| config(pairs).unwrap_err().to_string();
        assert!(error(&[(TENANTS_FILE, &path)]).starts_with("OPS_ADDR is not set"));
        assert!(
            error(&[(TENANTS_FILE, &path), ops, (DATABASE_DSN, KV)])
                .starts_with("DATABASE_DSN is invalid")
        );
        assert!(
            error(&[(TENANTS_FILE, &path), ops, (TENANT_NAME, "x")])
                .starts_with("TENANT_NAME is invalid")
        );
        assert!(
            error(&[(TENANTS_FILE, &path), ops, (DB_MAX_CONNECTIONS, "20")])
                .starts_with("DB_MAX_CONNECTIONS is invalid")
        );
        let missing = error(&[(TENANTS_FILE, "/nonexistent/tenants.json"), ops]);
        assert!(missing.contains("cannot read"), "{missing}");
        // A single tenant's pool is its own budget, with its token listener.
        assert_eq!(
            config(&[(DATABASE_DSN, KV)]).unwrap().db_max_connections(),
            17
        );
        assert_eq!(
            config(&[(DATABASE_DSN, KV), (TOKEN_CACHE_MS, "0")])
                .unwrap()
                .db_max_connections(),
            16
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hardening_settings_have_defaults() {
        let config = config(&[(DATABASE_DSN, KV)]).unwrap();
        assert_eq!(config.ops_addr, None);
        assert_eq!(config.header_read_timeout, Duration::from_secs(10));
        assert_eq!(config.keep_alive_timeout, Duration::from_secs(30));
        assert!(config.hash_concurrency >= 1);
        assert_eq!(config.sign_in.failures_per_email, 5);
        assert_eq!(config.sign_in.failures_per_address, 20);
        assert_eq!(config.sign_in.window, Duration::from_secs(900));
        assert!(config.trusted_proxies.is_empty());
        assert_eq!(config.token_cache, MAX_TOKEN_CACHE);
        assert!(config.worker_threads >= 1);
        let limits = config.connection_limits();
        assert!((1..=DEFAULT_MAX_CONNECTIONS).contains(&limits.max_connections));
        assert!(open_file_limit().is_some());
        assert_eq!(config.db_max_lifetime, Some(Duration::from_secs(1800)));
    }

    #[test]
    fn connection_lifetime_is_seconds_or_zero_for_none() {
        let with = |value: &str| config(&[(DATABASE_DSN, KV), (DB_MAX_LIFETIME_SECS, value)]);
        assert_eq!(with("0").unwrap().db_max_lifetime, None);
        assert_eq!(
            with("90").unwrap().db_max_lifetime,
            Some(Duration::from_secs(90))
        );
        for bad in ["-1", "forever", "604801"] {
            let error = with(bad).unwrap_err().to_string();
            assert!(
                error.starts_with("DB_MAX_LIFETIME_SECS is invalid") && error.contains("seconds"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        let one: IpNet = "192.0.2.7".parse().unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.1".parse().unwrap()));
        let config = config(&[
            (DATABASE_DSN, KV),
            (TRUSTED_PROXIES, "127.0.0.1, 10.0.0.0/8 fd00::/8"),
        ])
        .unwrap();
        assert_eq!(config.trusted_proxies.len(), 3);
    }
}
