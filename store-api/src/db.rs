//! The connection pool and what database failures mean for a request.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{
    ClientWrapper, Hook, HookError, Manager, ManagerConfig, Object, Pool, PoolError,
    RecyclingMethod, Runtime,
};
use tokio_postgres::error::SqlState;
use usualstore_pgtls::Connector;

use crate::budget::Budget;
use crate::config::DatabaseConfig;

/// How long a request waits for a pooled connection before it is told the service is busy.
const POOL_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("building the connection pool: {0}")]
pub struct PoolBuildError(String);

/// A pool that connects lazily: the service starts (and answers `/healthz`) while the database
/// is still down, and reconnects by itself when it comes back.
///
/// Every connection starts with `statement_timeout` = the request timeout (so a statement whose
/// request was abandoned cannot keep a pooled connection busy for long), times in UTC, and a
/// `search_path` of only the catalog (every table is named with its schema): all as start-up
/// options, so a new connection costs no extra round trip.
///
/// Each connection holds a permit of `budget` while it is open (see [`crate::budget`]);
/// `tenant` is the key the budget knows the pool by.
pub fn build_pool(
    database: &DatabaseConfig,
    size: usize,
    request_timeout: Duration,
    budget: Arc<Budget>,
    tenant: Arc<str>,
    max_lifetime: Option<Duration>,
) -> Result<Pool, PoolBuildError> {
    let manager_config = ManagerConfig {
        // Fast: a closed connection (server restarted) is discarded on checkout without a round
        // trip; a connection that dies while idle fails one statement, which maps to 503.
        recycling_method: RecyclingMethod::Fast,
    };
    let pg = session_config(database, request_timeout);
    let connect = PoolConnect {
        connector: database.connector.clone(),
        budget,
        tenant,
    };
    let manager = Manager::from_connect(pg, connect, manager_config);
    let create_timeout = database
        .pg
        .get_connect_timeout()
        .copied()
        .unwrap_or(Duration::from_secs(5));
    let mut builder = Pool::builder(manager);
    if let Some(lifetime) = max_lifetime {
        // A connection that has lived its time is closed when it comes back to be reused, and
        // the pool opens a new one in its place.
        builder = builder.pre_recycle(Hook::sync_fn(move |_, metrics| {
            if metrics.age() >= lifetime {
                return Err(HookError::message(
                    "connection reached DB_MAX_LIFETIME_SECS",
                ));
            }
            Ok(())
        }));
    }
    builder
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT.min(request_timeout)))
        .create_timeout(Some(create_timeout))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|error| PoolBuildError(error.to_string()))
}

/// Pool connections shared by many requests at once, for single statements outside any
/// transaction (a widget by id, a token's user, …).
///
/// tokio-postgres pipelines the statements of concurrent callers on one connection: they go out
/// in one write and their answers come back in one read, and one server process runs them back to
/// back instead of several processes waking up once per statement. Each statement has its own
/// `Sync`, so one failing does not affect the others, and `statement_timeout` bounds each. Only
/// short statements that take no locks belong here: a slow one would hold up the others.
/// Transactions (and anything that may wait on a row lock) take a connection of their own.
///
/// The shared connections come from the pool (they count in its size and in the `in_use`
/// gauge) and are kept until they break; a broken one is replaced on the next request.
pub struct SharedClients {
    pool: Pool,
    slots: Box<[Mutex<Option<Arc<Object>>>]>,
    /// How many slots are in use: fewer than the pool's size, so a connection of its own is
    /// always possible.
    active: AtomicUsize,
    next: AtomicUsize,
    /// A shared connection this old is let go for a fresh one, like the pool's (which then
    /// closes it).
    max_lifetime: Option<Duration>,
}

impl SharedClients {
    pub fn new(pool: Pool, count: usize, max_lifetime: Option<Duration>) -> SharedClients {
        let shared = SharedClients {
            slots: (0..count).map(|_| Mutex::new(None)).collect(),
            active: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            max_lifetime,
            pool,
        };
        shared.fit();
        shared
    }

    /// Recomputes how many slots are used after the pool was resized.
    pub fn fit(&self) {
        let max = self.pool.status().max_size;
        self.active.store(
            self.slots.len().min(max.saturating_sub(1)),
            Ordering::Relaxed,
        );
    }

    /// Lets go of the shared connections: they go back to the pool (and can be closed there)
    /// once the statements running on them are done.
    pub fn release(&self) {
        for slot in self.slots.iter() {
            lock(slot).take();
        }
    }

    /// Whether a shared connection is held.
    pub fn holds_any(&self) -> bool {
        self.slots.iter().any(|slot| lock(slot).is_some())
    }

    /// Whether a shared connection is held that no request is using: released, it goes back
    /// to the pool at once and can be closed there.
    pub fn holds_unused(&self) -> bool {
        self.slots.iter().any(|slot| {
            lock(slot)
                .as_ref()
                .is_some_and(|client| Arc::strong_count(client) == 1)
        })
    }

    /// A connection for one statement outside a transaction: a shared one, or one of its own
    /// when none is configured.
    pub async fn get(&self) -> Result<Conn, PoolError> {
        let active = self.active.load(Ordering::Relaxed);
        if active == 0 {
            return Ok(Conn::Own(Box::new(self.pool.get().await?)));
        }
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % active];
        if let Some(client) = lock(slot).as_ref().filter(|client| self.usable(client)) {
            return Ok(Conn::Shared(client.clone()));
        }
        // Empty, broken (the server restarted) or old: a fresh one from the pool. Should two
        // requests race here, one keeps its connection for this statement only and the pool gets
        // it back.
        let fresh = Arc::new(self.pool.get().await?);
        let mut slot = lock(slot);
        match slot.as_ref().filter(|client| self.usable(client)) {
            Some(client) => Ok(Conn::Shared(client.clone())),
            None => {
                *slot = Some(fresh.clone());
                Ok(Conn::Shared(fresh))
            }
        }
    }
}

impl SharedClients {
    fn usable(&self, client: &Object) -> bool {
        !client.is_closed()
            && self
                .max_lifetime
                .is_none_or(|lifetime| Object::metrics(client).age() < lifetime)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// A connection for one statement: shared with other requests or held alone.
pub enum Conn {
    Shared(Arc<Object>),
    Own(Box<Object>),
}

impl Deref for Conn {
    type Target = ClientWrapper;

    fn deref(&self) -> &ClientWrapper {
        match self {
            Conn::Shared(client) => client,
            Conn::Own(client) => client,
        }
    }
}

/// The DSN's configuration with the start-up options of every session store-api opens (the
/// pool's and the token listener's).
pub fn session_config(
    database: &DatabaseConfig,
    request_timeout: Duration,
) -> tokio_postgres::Config {
    let mut pg = database.pg.clone();
    pg.options(session_options(pg.get_options(), request_timeout));
    pg
}

/// Start-up options of every pooled connection: the DSN's own first, ours after (they win).
fn session_options(existing: Option<&str>, request_timeout: Duration) -> String {
    let ours = format!(
        "-c search_path=pg_catalog,pg_temp -c statement_timeout={}ms -c TimeZone=UTC",
        request_timeout.as_millis().max(1)
    );
    match existing
        .map(str::trim)
        .filter(|options| !options.is_empty())
    {
        Some(existing) => format!("{existing} {ours}"),
        None => ours,
    }
}

/// Opens pool connections the way the DSN's sslmode says, refusing cleartext passwords to a server
/// that is not verified, each with a permit of the connection budget.
struct PoolConnect {
    connector: Connector,
    budget: Arc<Budget>,
    tenant: Arc<str>,
}

type Connected =
    Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>;

impl deadpool_postgres::Connect for PoolConnect {
    fn connect(
        &self,
        pg_config: &tokio_postgres::Config,
    ) -> Pin<Box<dyn Future<Output = Connected> + Send + '_>> {
        let pg_config = pg_config.clone();
        Box::pin(async move {
            let permit = self.budget.acquire(&self.tenant).await;
            let (client, driver) = self.connector.connect(&pg_config).await?;
            // The permit lives as long as the connection: this task ends when the connection
            // ends by itself, and deadpool aborts it when it drops the connection.
            let task = tokio::spawn(async move {
                let _permit = permit;
                let _ = driver.await;
            });
            Ok((client, task))
        })
    }
}

/// What a database failure means for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The database cannot be reached or is restarting: try again later (503).
    Unavailable,
    /// No pooled connection became free in time (503).
    Busy,
    /// A statement ran into `statement_timeout` (503).
    TimedOut,
    /// The database user may not do this, e.g. a read-only DSN asked to write (403).
    PermissionDenied,
    /// A unique constraint (409).
    Duplicate,
    /// A row is still referenced, or a referenced row is gone (409).
    Referenced,
    /// A check constraint or a value out of range (400).
    InvalidValue,
    /// Serialization failure or deadlock: safe to retry (503).
    Contention,
    /// Anything else: a bug or a schema mismatch (500).
    Internal,
}

pub fn classify(error: &tokio_postgres::Error) -> Failure {
    if let Some(code) = error.code() {
        return classify_state(code);
    }
    // No SQLSTATE: the connection failed or closed (I/O error, server gone, TLS refused).
    Failure::Unavailable
}

fn classify_state(code: &SqlState) -> Failure {
    let class = &code.code()[..2];
    match class {
        // connection exceptions, insufficient resources, operator intervention (shutdown,
        // restart), invalid authorization (the DSN's password no longer works), no database
        "08" | "53" | "57" if *code != SqlState::QUERY_CANCELED => Failure::Unavailable,
        "28" | "3D" => Failure::Unavailable,
        "40" => Failure::Contention,
        _ if *code == SqlState::QUERY_CANCELED => Failure::TimedOut,
        _ if *code == SqlState::INSUFFICIENT_PRIVILEGE => Failure::PermissionDenied,
        _ if *code == SqlState::UNIQUE_VIOLATION => Failure::Duplicate,
        _ if *code == SqlState::FOREIGN_KEY_VIOLATION => Failure::Referenced,
        "22" | "23" => Failure::InvalidValue,
        _ => Failure::Internal,
    }
}

pub fn classify_pool(error: &PoolError) -> Failure {
    match error {
        PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => Failure::Busy,
        PoolError::Timeout(_) | PoolError::Closed => Failure::Unavailable,
        PoolError::Backend(error) => classify(error),
        PoolError::PostCreateHook(deadpool_postgres::HookError::Backend(error)) => classify(error),
        PoolError::PostCreateHook(_) => Failure::Unavailable,
        PoolError::NoRuntimeSpecified => Failure::Internal,
    }
}

/// The database's own words, without the connection details tokio-postgres may add.
pub fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => error.to_string(),
    }
}

/// The constraint a database error names, if any.
pub fn constraint(error: &tokio_postgres::Error) -> Option<&str> {
    error.as_db_error().and_then(|db| db.constraint())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_start_configured() {
        assert_eq!(
            session_options(None, Duration::from_secs(15)),
            "-c search_path=pg_catalog,pg_temp -c statement_timeout=15000ms -c TimeZone=UTC"
        );
    }

    #[test]
    fn sqlstates_map_to_failures() {
        assert_eq!(
            classify_state(&SqlState::INSUFFICIENT_PRIVILEGE),
            Failure::PermissionDenied
        );
        assert_eq!(
            classify_state(&SqlState::ADMIN_SHUTDOWN),
            Failure::Unavailable
        );
        assert_eq!(
            classify_state(&SqlState::CANNOT_CONNECT_NOW),
            Failure::Unavailable
        );
        assert_eq!(
            classify_state(&SqlState::TOO_MANY_CONNECTIONS),
            Failure::Unavailable
        );
        assert_eq!(classify_state(&SqlState::QUERY_CANCELED), Failure::TimedOut);
        assert_eq!(
            classify_state(&SqlState::UNIQUE_VIOLATION),
            Failure::Duplicate
        );
        assert_eq!(
            classify_state(&SqlState::FOREIGN_KEY_VIOLATION),
            Failure::Referenced
        );
        assert_eq!(
            classify_state(&SqlState::CHECK_VIOLATION),
            Failure::InvalidValue
        );
        assert_eq!(
            classify_state(&SqlState::T_R_SERIALIZATION_FAILURE),
            Failure::Contention
        );
        assert_eq!(
            classify_state(&SqlState::UNDEFINED_TABLE),
            Failure::Internal
        );
    }
}
