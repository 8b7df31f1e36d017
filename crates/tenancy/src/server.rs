//! Connections to the PostgreSQL server: the maintenance database and tenant databases.

use std::cell::RefCell;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_postgres::config::Host;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Config, NoTls, Socket};

use crate::error::{TenantError, describe};

/// Database used when the configuration names none, as libpq tools do for administration.
const DEFAULT_MAINTENANCE_DATABASE: &str = "postgres";

type ConnectFuture<'a> = Pin<
    Box<dyn Future<Output = Result<(Client, JoinHandle<()>), tokio_postgres::Error>> + Send + 'a>,
>;

/// Object-safe face of a TLS connector, so `Server` needs no type parameter.
trait Connect: Send + Sync {
    fn connect<'a>(&'a self, config: &'a Config) -> ConnectFuture<'a>;
}

struct TlsConnector<T>(T);

impl<T> Connect for TlsConnector<T>
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    fn connect<'a>(&'a self, config: &'a Config) -> ConnectFuture<'a> {
        Box::pin(async move {
            let (client, connection) = config.connect(self.0.clone()).await?;
            let task = tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(error = %describe(&error), "PostgreSQL connection ended with an error");
                }
            });
            Ok((client, task))
        })
    }
}

/// The PostgreSQL server the operator administers: connection settings for the maintenance
/// database plus the TLS connector. Cheap to clone.
///
/// TLS follows the `Config`'s `sslmode` the way libpq does (`disable`, `prefer`, `require`);
/// whether `require` verifies the certificate is up to the connector the caller supplies.
#[derive(Clone)]
pub struct Server {
    config: Config,
    connector: Arc<dyn Connect>,
    /// The session read-only lookups share, when [`Server::share_reads`] asked for one.
    shared_reads: Option<Arc<tokio::sync::Mutex<Option<Arc<Session>>>>>,
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
    /// `config` points at the maintenance database (default `postgres` when it names none);
    /// `tls` is any tokio-postgres TLS connector, e.g. `tokio_postgres_rustls::MakeRustlsConnect`.
    pub fn new<T>(config: Config, tls: T) -> Server
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: Send + 'static,
        T::TlsConnect: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        Server {
            config,
            connector: Arc::new(TlsConnector(tls)),
            shared_reads: None,
        }
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

    /// A server reached without TLS (`sslmode=require` then fails to connect, as it should).
    pub fn without_tls(config: Config) -> Server {
        Server::new(config, NoTls)
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

    /// Connects to `database` with the same credentials and TLS settings.
    pub async fn connect_to(&self, database: &str) -> Result<Session, TenantError> {
        let mut config = self.config.clone();
        config.dbname(database);
        if config.get_application_name().is_none() {
            config.application_name("usualstore");
        }
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
        let mut task = Some(task);
        // Inside `with_deferred_closes` the wait is the caller's; elsewhere it happens here.
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
