//! Opening connections: the socket, the watcher that refuses cleartext passwords, TLS by sslmode,
//! and tokio-postgres' start-up over all of it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::config::Host;
use tokio_postgres::tls::{MakeTlsConnect, NoTls, TlsConnect};
use tokio_postgres::{AsyncMessage, Client, Config, Notification};
use tokio_postgres_rustls::MakeRustlsConnect;
use tracing::Instrument;

use crate::guard::Guard;
use crate::{SslMode, TlsError, TlsSettings, verify};

/// The task driving a connection; it ends when the connection closes.
pub type Connection = JoinHandle<()>;

/// Makes connections as `settings` say. Cheap to clone; build it once (it reads the root
/// certificates) and connect as often as needed.
#[derive(Clone)]
pub struct Connector {
    mode: SslMode,
    tls: Option<MakeRustlsConnect>,
    allow_cleartext: bool,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("mode", &self.mode)
            .field("allow_cleartext", &self.allow_cleartext)
            .finish_non_exhaustive()
    }
}

impl Connector {
    pub fn new(settings: &TlsSettings) -> Result<Connector, TlsError> {
        Ok(Connector {
            mode: settings.mode,
            tls: verify::client_config(settings)?.map(MakeRustlsConnect::new),
            allow_cleartext: settings.cleartext_password_allowed(),
        })
    }

    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// Connects with `config` (its own sslmode is overridden by this connector's) and spawns
    /// the connection's task on the current runtime.
    ///
    /// Hosts are tried in order, like libpq; each attempt is bounded by the config's
    /// `connect_timeout`.
    pub async fn connect(
        &self,
        config: &Config,
    ) -> Result<(Client, Connection), tokio_postgres::Error> {
        self.connect_driven(config, None).await
    }

    /// Like [`Connector::connect`], and the notifications the session receives (after a
    /// `LISTEN`) are handed out rather than dropped: at most `capacity` wait to be read, and any
    /// that come while that many wait are counted as missed (see [`Notifications`]), so a flood
    /// never grows the process's memory nor stops the connection from being read.
    pub async fn connect_listening(
        &self,
        config: &Config,
        capacity: usize,
    ) -> Result<(Client, Connection, Notifications), tokio_postgres::Error> {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let missed = Arc::new(AtomicBool::new(false));
        let forward = Forward {
            sender,
            missed: missed.clone(),
        };
        let (client, connection) = self.connect_driven(config, Some(forward)).await?;
        Ok((client, connection, Notifications { receiver, missed }))
    }

    async fn connect_driven(
        &self,
        config: &Config,
        forward: Option<Forward>,
    ) -> Result<(Client, Connection), tokio_postgres::Error> {
        let mut config = config.clone();
        config.ssl_mode(self.mode.negotiation());
        let hosts = config.get_hosts().to_vec();
        let ports = config.get_ports().to_vec();
        let timeout = config.get_connect_timeout().copied();
        let mut last_error = None;
        for (index, host) in hosts.iter().enumerate() {
            let port = ports
                .get(index)
                .or_else(|| ports.first())
                .copied()
                .unwrap_or(5432);
            match self
                .connect_one(&config, host, port, timeout, forward.clone())
                .await
            {
                Ok(connected) => return Ok(connected),
                Err(error) => last_error = Some(error),
            }
        }
        match last_error {
            Some(error) => Err(error),
            None => Err(io_error(io::Error::other("the configuration names no host")).await),
        }
    }

    async fn connect_one(
        &self,
        config: &Config,
        host: &Host,
        port: u16,
        timeout: Option<Duration>,
        forward: Option<Forward>,
    ) -> Result<(Client, Connection), tokio_postgres::Error> {
        let opening = open_socket(host, port);
        let socket = match timeout {
            Some(limit) => tokio::time::timeout(limit, opening)
                .await
                .unwrap_or_else(|_| {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no connection within {} s", limit.as_secs_f64()),
                    ))
                }),
            None => opening.await,
        };
        let socket = match socket {
            Ok(socket) => socket,
            Err(error) => return Err(io_error(error).await),
        };
        let stream = Guard::at_start(socket, self.allow_cleartext);
        let (client, task) = match &self.tls {
            None => {
                let (client, connection) = config.connect_raw(stream, NoTls).await?;
                (client, drive(connection, forward))
            }
            Some(make) => {
                let hostname = match host {
                    Host::Tcp(name) => name.as_str(),
                    Host::Unix(_) => "localhost",
                };
                let Ok(inner) =
                    MakeTlsConnect::<Guard<Socket>>::make_tls_connect(&mut make.clone(), hostname);
                let tls = GuardedTls {
                    inner,
                    allow_cleartext: self.allow_cleartext,
                };
                let (client, connection) = config.connect_raw(stream, tls).await?;
                (client, drive(connection, forward))
            }
        };
        Ok((client, task))
    }
}

/// Notifications (`NOTIFY`) received by a session opened with [`Connector::connect_listening`].
pub struct Notifications {
    receiver: mpsc::Receiver<Notification>,
    missed: Arc<AtomicBool>,
}

impl Notifications {
    /// The next notification; `None` once the connection has ended (whatever ended it).
    pub async fn recv(&mut self) -> Option<Notification> {
        self.receiver.recv().await
    }

    /// A notification already received, if any, without waiting.
    pub fn try_recv(&mut self) -> Option<Notification> {
        self.receiver.try_recv().ok()
    }

    /// Whether notifications were dropped since the last call because they came faster than
    /// they were read: the reader then knows it cannot tell which ones it missed.
    pub fn take_missed(&self) -> bool {
        self.missed.swap(false, Ordering::AcqRel)
    }
}

/// Where a listening connection's task hands its notifications.
#[derive(Clone)]
struct Forward {
    sender: mpsc::Sender<Notification>,
    missed: Arc<AtomicBool>,
}

impl Forward {
    /// Drives `connection` to its end, handing out notifications and logging notices as
    /// tokio-postgres' own driver does. A full queue drops the notification and says so; it
    /// never stops the socket from being read (the server would otherwise hold the session's
    /// output, and its notification queue would grow for the whole cluster).
    async fn run<S, T>(self, mut connection: tokio_postgres::Connection<S, T>)
    where
        S: AsyncRead + AsyncWrite + Unpin,
        T: AsyncRead + AsyncWrite + Unpin,
    {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(notification))) => {
                    match self.sender.try_send(notification) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            self.missed.store(true, Ordering::Release);
                        }
                        // Nobody reads any more: the session is of no use.
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                    }
                }
                Some(Ok(AsyncMessage::Notice(notice))) => {
                    tracing::debug!(
                        severity = notice.severity(),
                        message = notice.message(),
                        "PostgreSQL notice"
                    );
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    tracing::debug!(%error, "PostgreSQL connection ended with an error");
                    return;
                }
                None => return,
            }
        }
    }
}

/// Spawns the task that drives a connection: tokio-postgres' own driver, or one that hands out
/// notifications.
fn drive<S, T>(connection: tokio_postgres::Connection<S, T>, forward: Option<Forward>) -> Connection
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match forward {
        None => spawn(connection),
        Some(forward) => tokio::spawn(forward.run(connection).in_current_span()),
    }
}

fn spawn<F>(connection: F) -> Connection
where
    F: Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    // In the opener's span: a service's log line then says whose connection it was (store-api's
    // tenant), though the connection outlives the request that opened it.
    tokio::spawn(
        async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "PostgreSQL connection ended with an error");
            }
        }
        .in_current_span(),
    )
}

/// tokio-postgres makes its I/O errors privately, and deadpool's connect hook must return one:
/// a start-up over a stream that fails with `error` yields exactly that, cause kept.
async fn io_error(error: io::Error) -> tokio_postgres::Error {
    let mut config = Config::new();
    config.ssl_mode(tokio_postgres::config::SslMode::Disable);
    match config.connect_raw(FailingStream(Some(error)), NoTls).await {
        Err(error) => error,
        Ok(_) => unreachable!("a stream that fails every write cannot start a session"),
    }
}

/// A stream whose first use fails with the error it holds.
struct FailingStream(Option<io::Error>);

impl FailingStream {
    fn fail(&mut self) -> io::Error {
        self.0
            .take()
            .unwrap_or_else(|| io::Error::other("the connection failed"))
    }
}

impl AsyncRead for FailingStream {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Err(self.get_mut().fail()))
    }
}

impl AsyncWrite for FailingStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(self.get_mut().fail()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Err(self.get_mut().fail()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A TCP or Unix-domain socket.
enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

async fn open_socket(host: &Host, port: u16) -> io::Result<Socket> {
    match host {
        Host::Tcp(name) => {
            let stream = TcpStream::connect((name.as_str(), port)).await?;
            // Queries are small; waiting to fill a segment only adds latency.
            stream.set_nodelay(true)?;
            Ok(Socket::Tcp(stream))
        }
        Host::Unix(dir) => {
            let path = dir.join(format!(".s.PGSQL.{port}"));
            Ok(Socket::Unix(UnixStream::connect(path).await?))
        }
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Socket::Unix(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
            Socket::Unix(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            Socket::Unix(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            Socket::Unix(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}

/// TLS whose session is watched from its first byte, like a plain connection is.
struct GuardedTls<T> {
    inner: T,
    allow_cleartext: bool,
}

impl<S, T> TlsConnect<S> for GuardedTls<T>
where
    T: TlsConnect<S>,
    T::Future: Send + 'static,
    T::Stream: Unpin,
{
    type Stream = Guard<T::Stream>;
    type Error = T::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Guard<T::Stream>, T::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let allow = self.allow_cleartext;
        let connecting = self.inner.connect(stream);
        Box::pin(async move {
            let stream = connecting.await?;
            Ok(Guard::inside_tls(stream, allow))
        })
    }
}
