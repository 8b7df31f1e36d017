//! Connections to the PostgreSQL server: the maintenance database and tenant databases.

use std::cell::RefCell;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config};
use usualstore_pgtls::{Connector, SslMode, TlsSettings};

use crate::error::{DbResultExt, TenantError, describe};

/// Database used when the configuration names none, as libpq tools do for administration.
const DEFAULT_MAINTENANCE_DATABASE: &str = "postgres";

/// How long a statement may wait for a lock unless the caller says otherwise.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Where our sessions look up unqualified names: the catalog first, then temporary objects
/// (which PostgreSQL never searches for functions or operators). No schema a tenant's login might
/// create objects in is on it, so nothing a login creates can run inside a provider session, which
/// is often a superuser's.
pub const SEARCH_PATH: &str = "pg_catalog, pg_temp";

/// The PostgreSQL server the operator administers: connection settings for the maintenance
/// database plus the connector, which decides TLS (libpq's sslmode, up to `verify-full`) and
/// refuses to send a password in clear text to a server it has not verified. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    config: Config,
    connector: Connector,
    /// The session read-only lookups share, when [`Server::share_reads`] asked for one.
    shared_reads: Option<Arc<tokio::sync::Mutex<Option<Arc<Session>>>>>,
    lock_timeout: Duration,
    /// Whether the operator is a superuser, asked once: it decides what may be repaired and how.
    operator_superuser: Arc<tokio::sync::OnceCell<bool>>,
    /// Maintenance sessions kept open between operations, when [`Server::keep_idle`] asked for
    /// some.
    idle: Option<Arc<IdleSessions>>,
}

/// Maintenance sessions an operation finished with, ready for the next one.
struct IdleSessions {
    capacity: usize,
    sessions: std::sync::Mutex<Vec<Session>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `Config`'s Debug redacts the password; say so explicitly by not printing it at all.
        f.debug_struct("Server")
            .field("target", &self.target(self.maintenance_database()))
            .field("user", &self.config.get_user())
            .finish()
    }
}

impl Server {
    /// `config` points at the maintenance database (default `postgres` when it names none); its
    /// own sslmode is ignored in favour of the connector's.
    pub fn new(config: Config, connector: Connector) -> Server {
        Server {
            config,
            connector,
            shared_reads: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            operator_superuser: Arc::default(),
            idle: None,
        }
    }

    /// How long any statement of ours may wait for a lock (default [`DEFAULT_LOCK_TIMEOUT`]).
    /// A wait that runs out fails with [`TenantError::LockTimeout`], naming who held the lock.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Server {
        self.lock_timeout = timeout;
        self
    }

    pub fn lock_timeout(&self) -> Duration {
        self.lock_timeout
    }

    /// Read-only lookups on the maintenance database (reading a tenant or a user) share one
    /// long-lived session instead of opening one each: a session costs the server more than the
    /// handful of catalog queries a read runs, and a refresh reads every resource. Queries of
    /// concurrent reads are pipelined on it. The session is opened on first use, reopened when
    /// it has been closed (a server restart, an idle timeout), and is one connection more than
    /// the operations in flight hold: callers that limit connections count it.
    pub fn share_reads(mut self) -> Server {
        self.shared_reads = Some(Arc::default());
        self
    }

    /// Keeps up to `capacity` maintenance sessions open between operations, so that the next
    /// operation (each login user's create, say) skips connecting and authenticating. A session goes
    /// back only clean: `DISCARD ALL` releases its session locks and settings. They are
    /// connections beside the operations' own; callers that limit connections count them.
    pub fn keep_idle(mut self, capacity: usize) -> Server {
        self.idle = (capacity > 0).then(|| {
            Arc::new(IdleSessions {
                capacity,
                sessions: std::sync::Mutex::default(),
            })
        });
        self
    }

    /// A maintenance session for one operation: an idle one that still answers (one round trip,
    /// far cheaper than connecting; the server may have restarted meanwhile), or a new one.
    async fn take_maintenance(&self) -> Result<Session, TenantError> {
        if let Some(idle) = &self.idle {
            loop {
                let next = idle
                    .sessions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pop();
                let Some(session) = next else {
                    break;
                };
                if !session.is_closed() && session.batch_execute("").await.is_ok() {
                    return Ok(session);
                }
                session.close().await;
            }
        }
        self.connect_maintenance().await
    }

    /// Gives an operation's maintenance session back: kept when there is room and it comes back
    /// clean, closed otherwise. Like [`Session::close`], the wait is the caller's inside
    /// [`with_deferred_closes`].
    async fn give_back(&self, session: Session) {
        let Some(idle) = self.idle.clone() else {
            session.close().await;
            return;
        };
        let task = tokio::spawn(async move {
            let room = {
                let sessions = idle.sessions.lock().unwrap_or_else(|p| p.into_inner());
                sessions.len() < idle.capacity
            };
            if room && session.batch_execute("DISCARD ALL").await.is_ok() {
                let mut sessions = idle.sessions.lock().unwrap_or_else(|p| p.into_inner());
                if sessions.len() < idle.capacity {
                    sessions.push(session);
                    return;
                }
            }
            session.close().await;
        });
        defer_or_wait(task).await;
    }

    /// A session for read-only lookups on the maintenance database: the shared one when reads
    /// are shared, otherwise a new one. Give it back with [`ReadSession::release`].
    pub async fn read_session(&self) -> Result<ReadSession, TenantError> {
        let Some(shared) = &self.shared_reads else {
            return Ok(ReadSession::Own(self.connect_maintenance().await?));
        };
        let mut current = shared.lock().await;
        if let Some(session) = current.as_ref().filter(|session| !session.is_closed()) {
            return Ok(ReadSession::Shared(Arc::clone(session)));
        }
        let session = Arc::new(self.connect_maintenance().await?);
        *current = Some(Arc::clone(&session));
        Ok(ReadSession::Shared(session))
    }

    /// A server reached without TLS.
    pub fn without_tls(config: Config) -> Server {
        match Connector::new(&TlsSettings::new(SslMode::Disable)) {
            Ok(connector) => Server::new(config, connector),
            // Without TLS there is no certificate file to read, so nothing can fail.
            Err(error) => unreachable!("sslmode disable needs no files: {error}"),
        }
    }

    pub fn maintenance_database(&self) -> &str {
        self.config
            .get_dbname()
            .unwrap_or(DEFAULT_MAINTENANCE_DATABASE)
    }

    /// The user the operations run as.
    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or_default()
    }

    /// Connects to the maintenance database.
    pub async fn connect_maintenance(&self) -> Result<Session, TenantError> {
        let database = self.maintenance_database().to_owned();
        self.connect_to(&database).await
    }

    /// Whether the operator is a superuser; asked through `client` the first time only.
    pub(crate) async fn operator_is_superuser(&self, client: &Client) -> Result<bool, TenantError> {
        self.operator_superuser
            .get_or_try_init(async || {
                let row = client
                    .query_typed_one(
                        "SELECT r.rolsuper FROM pg_catalog.pg_roles r \
                         WHERE r.rolname = current_user",
                        &[],
                    )
                    .await
                    .context("checking whether the operator is a superuser")?;
                Ok(row.get(0))
            })
            .await
            .copied()
    }

    /// Runs `operation` on a maintenance session of its own, which is closed afterwards. A wait
    /// that ran into the lock timeout is explained through the same session (whose failed
    /// transaction, if any, is rolled back by then): who held the lock.
    pub(crate) async fn on_maintenance<T>(
        &self,
        operation: impl AsyncFnOnce(&mut Session) -> Result<T, TenantError>,
    ) -> Result<T, TenantError> {
        let mut session = self.take_maintenance().await?;
        let result = match operation(&mut session).await {
            Ok(done) => Ok(done),
            Err(error) => {
                Err(crate::waits::explain(error, &session, Some(self.lock_timeout)).await)
            }
        };
        self.give_back(session).await;
        result
    }

    /// Connects to `database` with the same credentials and TLS settings. Every session starts
    /// with [`SEARCH_PATH`] and the lock timeout set, as start-up options: no extra round trip,
    /// and in force before the first statement.
    pub async fn connect_to(&self, database: &str) -> Result<Session, TenantError> {
        let mut config = self.config.clone();
        config.dbname(database);
        if config.get_application_name().is_none() {
            config.application_name("usualstore");
        }
        config.options(session_options(config.get_options(), self.lock_timeout));
        tracing::debug!(target = %self.target(database), "connecting to PostgreSQL");
        match self.connector.connect(&config).await {
            Ok((client, task)) => Ok(Session { client, task }),
            Err(source) => Err(TenantError::Connect {
                target: self.target(database),
                user: self.user().to_owned(),
                reason: describe(&source),
                source,
            }),
        }
    }

    /// `host:port/database` for messages; never includes credentials.
    fn target(&self, database: &str) -> String {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(name)) => name.clone(),
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}/{database}")
    }
}

/// Start-up options: the caller's, then ours, which therefore win (later `-c` settings override
/// earlier ones, and start-up options override per-role and per-database defaults).
fn session_options(existing: Option<&str>, lock_timeout: Duration) -> String {
    let search_path = SEARCH_PATH.replace(' ', "");
    let ours = format!(
        "-c search_path={search_path} -c lock_timeout={}ms",
        lock_timeout.as_millis().max(1)
    );
    match existing
        .map(str::trim)
        .filter(|options| !options.is_empty())
    {
        Some(existing) => format!("{existing} {ours}"),
        None => ours,
    }
}

/// A session for lookups only: no transactions, locks or session settings, since it may be
/// shared with concurrent readers.
pub enum ReadSession {
    Shared(Arc<Session>),
    Own(Session),
}

impl ReadSession {
    /// Closes a session of its own; leaves a shared one open for the next reader.
    pub async fn release(self) {
        if let ReadSession::Own(session) = self {
            session.close().await;
        }
    }
}

impl Deref for ReadSession {
    type Target = Client;

    fn deref(&self) -> &Client {
        match self {
            ReadSession::Shared(session) => session,
            ReadSession::Own(session) => session,
        }
    }
}

tokio::task_local! {
    /// Connection tasks of sessions closed inside [`with_deferred_closes`], still ending.
    static DEFERRED_CLOSES: RefCell<Vec<JoinHandle<()>>>;
}

/// Sessions closed by an operation that have not yet ended on the server's side.
#[must_use = "wait for them before giving back what limits the connections"]
pub struct PendingCloses(Vec<JoinHandle<()>>);

impl PendingCloses {
    /// How many sessions are still ending.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Returns once the server has seen every one of them disconnect.
    pub async fn wait(self) {
        for task in self.0 {
            if let Err(error) = task.await {
                tracing::debug!(%error, "PostgreSQL connection task failed");
            }
        }
    }
}

/// Runs `operation` with its [`Session::close`] calls returning at once: waiting for the server to
/// see each disconnect is left to the caller, through the returned [`PendingCloses`]. The caller
/// can then answer first and wait after, so the answer follows the operation's last statement
/// directly (the less time between a commit and Terraform recording it, the smaller the window in
/// which a crash leaves a finished object outside the state), while connection accounting still
/// waits for the disconnects.
pub async fn with_deferred_closes<F: Future>(operation: F) -> (F::Output, PendingCloses) {
    DEFERRED_CLOSES
        .scope(RefCell::new(Vec::new()), async {
            let output = operation.await;
            let pending = DEFERRED_CLOSES.with(RefCell::take);
            (output, PendingCloses(pending))
        })
        .await
}

/// One open connection. Dereferences to the `Client`; call [`Session::close`] to wait until the
/// server has seen the disconnect, which matters where connection limits count our sessions.
pub struct Session {
    client: Client,
    task: JoinHandle<()>,
}

impl Session {
    pub async fn close(self) {
        let Session { client, task } = self;
        drop(client);
        defer_or_wait(task).await;
    }
}

/// Inside [`with_deferred_closes`] the wait for `task` is the caller's; elsewhere it happens here.
async fn defer_or_wait(task: JoinHandle<()>) {
    let mut task = Some(task);
    let _ = DEFERRED_CLOSES.try_with(|pending| {
        if let Some(task) = task.take() {
            pending.borrow_mut().push(task);
        }
    });
    if let Some(task) = task
        && let Err(error) = task.await
    {
        tracing::debug!(%error, "PostgreSQL connection task failed");
    }
}

impl Deref for Session {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for Session {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_pin_the_search_path_and_bound_lock_waits() {
        assert_eq!(
            session_options(None, Duration::from_secs(30)),
            "-c search_path=pg_catalog,pg_temp -c lock_timeout=30000ms"
        );
        assert_eq!(
            session_options(Some(" -c work_mem=64MB "), Duration::from_millis(250)),
            "-c work_mem=64MB -c search_path=pg_catalog,pg_temp -c lock_timeout=250ms"
        );
    }
}
