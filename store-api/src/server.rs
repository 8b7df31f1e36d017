//! Serving HTTP/1.1 connections with bounds on what each one may cost.
//!
//! axum's own `serve` runs hyper without timers and accepts every connection it is offered: a
//! client that sends its headers a byte at a time holds a connection (and a file descriptor) for
//! as long as it likes, and a flood of connections runs the process out of descriptors, after
//! which it cannot even reach its database. Here every listener has
//!
//! - a **maximum number of open connections**: at the limit, nothing more is accepted until a
//!   connection ends; further clients wait in the kernel's listen queue (and beyond it are
//!   refused by the kernel), so descriptors for the pool and the log are always left;
//! - a **header-read timeout**: a connection that has not delivered a request's complete headers
//!   this long after it opened (or after the request's first byte) is closed;
//! - an **idle keep-alive timeout**: a connection waiting for its next request, or not taking its
//!   last response, is closed after this long.
//!
//! Shutdown stops accepting at once, lets requests in flight finish and closes idle connections;
//! whatever still runs after the drain period is cut.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower_service::Service;

use crate::config::ConnectionLimits;

/// Largest request head (request line and headers) accepted; hyper answers 431 above it. It is
/// also the most a connection buffers while reading.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

/// What the connections of one listener did, for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    pub open: AtomicI64,
    pub accepted: AtomicU64,
    pub header_timeouts: AtomicU64,
    pub idle_timeouts: AtomicU64,
}

/// A socket to serve, what to serve on it, and the limits of its connections.
pub struct Listener {
    pub tcp: TcpListener,
    pub router: Router,
    pub limits: ConnectionLimits,
    pub stats: Arc<ConnectionStats>,
    /// For logs: `api` or `ops`.
    pub name: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Running,
    /// Finish the request in flight, then close.
    Graceful,
    /// Close now.
    Force,
}

/// Serves every listener until `shutdown` completes, then stops accepting and lets requests in
/// flight finish, for at most `drain` longer.
pub async fn serve(
    listeners: Vec<Listener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(Stop::Running);
    let mut slots = Vec::new();
    let mut accepting = tokio::task::JoinSet::new();
    for listener in listeners {
        let permits = Arc::new(Semaphore::new(listener.limits.max_connections));
        slots.push((permits.clone(), listener.limits.max_connections));
        accepting.spawn(accept_loop(listener, permits, stop_rx.clone()));
    }
    drop(stop_rx);
    tokio::select! {
        Some(ended) = accepting.join_next() => {
            // An accept loop only ends by itself on a fatal error.
            let _ = stop_tx.send(Stop::Force);
            return match ended {
                Ok(result) => result,
                Err(error) => Err(io::Error::other(error)),
            };
        }
        () = shutdown => {}
    }
    tracing::info!(
        drain_ms = drain.as_millis() as u64,
        "shutting down: no new connections, finishing requests in flight"
    );
    let _ = stop_tx.send(Stop::Graceful);
    // The listeners close as their loops see the signal.
    while accepting.join_next().await.is_some() {}
    let all_closed = async {
        for (permits, max) in &slots {
            let max = u32::try_from(*max).unwrap_or(u32::MAX);
            let _ = permits.acquire_many(max).await;
        }
    };
    if tokio::time::timeout(drain, all_closed).await.is_err() {
        tracing::warn!("requests still running after the drain period; closing their connections");
        let _ = stop_tx.send(Stop::Force);
    }
    Ok(())
}

async fn accept_loop(
    listener: Listener,
    permits: Arc<Semaphore>,
    mut stop: watch::Receiver<Stop>,
) -> io::Result<()> {
    let Listener {
        tcp,
        router,
        limits,
        stats,
        name,
    } = listener;
    // At most one warning a minute, however often the limit is reached.
    let mut last_warning: Option<Instant> = None;
    loop {
        // A free slot first: at the limit nothing is accepted, so no descriptor is taken.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                    tracing::warn!(
                        listener = name,
                        max_connections = limits.max_connections,
                        "connection limit reached; new connections wait until one closes"
                    );
                    last_warning = Some(Instant::now());
                }
                tokio::select! {
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => return Ok(()),
                    },
                    _ = stop.changed() => return Ok(()),
                }
            }
        };
        let accepted = tokio::select! {
            accepted = tcp.accept() => accepted,
            _ = stop.changed() => return Ok(()),
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                drop(permit);
                if !matches!(
                    error.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::Interrupted
                ) {
                    // Out of descriptors or memory: give the process a moment instead of
                    // spinning on the same error.
                    if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                        tracing::warn!(listener = name, %error, "cannot accept a connection");
                        last_warning = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        // Responses are written whole; without Nagle's delay they leave at once.
        let _ = stream.set_nodelay(true);
        stats.open.fetch_add(1, Ordering::Relaxed);
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let connection = Connection {
            stream,
            peer,
            router: router.clone(),
            limits,
            stats: stats.clone(),
        };
        let stop = stop.clone();
        tokio::spawn(async move {
            connection.run(stop).await;
            drop(permit);
        });
    }
}

fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Milliseconds since the process first asked: a clock cheap enough to read on every request.
fn now_ms() -> u64 {
    start().elapsed().as_millis() as u64
}

fn instant_at(ms: u64) -> tokio::time::Instant {
    tokio::time::Instant::from_std(start() + Duration::from_millis(ms))
}

/// Where a connection is: waiting for a request, reading one's head, or serving one.
const IDLE: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;

/// Shared by a connection's socket wrapper, its service and its driver (all in one task).
#[derive(Debug)]
struct Activity {
    phase: AtomicU8,
    since_ms: AtomicU64,
}

impl Activity {
    fn set(&self, phase: u8) {
        self.since_ms.store(now_ms(), Ordering::Relaxed);
        self.phase.store(phase, Ordering::Relaxed);
    }
}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    stats: Arc<ConnectionStats>,
}

impl Connection {
    async fn run(self, mut stop: watch::Receiver<Stop>) {
        let Connection {
            stream,
            peer,
            router,
            limits,
            stats,
        } = self;
        // A new connection has the header-read timeout to deliver its first request's headers.
        let activity = Arc::new(Activity {
            phase: AtomicU8::new(HEAD),
            since_ms: AtomicU64::new(now_ms()),
        });
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        let service = ConnectionService {
            router,
            peer,
            activity: activity.clone(),
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.keep_alive(true).max_buf_size(MAX_HEAD_BYTES);
        let mut connection = pin!(builder.serve_connection(io, service));
        let deadline = |activity: &Activity| -> Option<u64> {
            let since = activity.since_ms.load(Ordering::Relaxed);
            match activity.phase.load(Ordering::Relaxed) {
                HEAD => Some(since + limits.header_read_timeout.as_millis() as u64),
                IDLE => Some(since + limits.keep_alive_timeout.as_millis() as u64),
                // The request timeout bounds a request; look again later.
                _ => None,
            }
        };
        let recheck = limits
            .header_read_timeout
            .min(limits.keep_alive_timeout)
            .as_millis() as u64;
        let mut timer = pin!(tokio::time::sleep_until(instant_at(
            deadline(&activity).unwrap_or(now_ms() + recheck)
        )));
        loop {
            tokio::select! {
                biased;
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                    break;
                }
                () = timer.as_mut() => {
                    let now = now_ms();
                    match deadline(&activity) {
                        Some(at) if at <= now => {
                            let (counter, what) = if activity.phase.load(Ordering::Relaxed) == HEAD {
                                (&stats.header_timeouts, "request headers not received in time")
                            } else {
                                (&stats.idle_timeouts, "idle keep-alive connection")
                            };
                            counter.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%peer, "closing connection: {what}");
                            break;
                        }
                        Some(at) => timer.as_mut().reset(instant_at(at)),
                        None => timer.as_mut().reset(instant_at(now + recheck)),
                    }
                }
                changed = stop.changed() => {
                    let signal = match changed {
                        Ok(()) => *stop.borrow_and_update(),
                        Err(_) => Stop::Force,
                    };
                    match signal {
                        Stop::Running => {}
                        // Finishes the request in flight (if any), then closes.
                        Stop::Graceful => connection.as_mut().graceful_shutdown(),
                        Stop::Force => break,
                    }
                }
            }
        }
        stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The socket, noting when a request's first bytes arrive on an idle connection.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(())))
            && buf.filled().len() > before
            && this.activity.phase.load(Ordering::Relaxed) == IDLE
        {
            this.activity.set(HEAD);
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router as hyper calls it: each request carries the peer's address, and the connection
/// is `BUSY` from the request's head until its response is ready.
struct ConnectionService {
    router: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnectionService {
    type Response = Response;
    type Error = Infallible;
    type Future = Tracked;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Tracked {
        self.activity
            .phase
            .store(BUSY, std::sync::atomic::Ordering::Relaxed);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let mut router = self.router.clone();
        Tracked {
            inner: router.call(request),
            activity: self.activity.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// A response on its way; when it is ready the connection counts as idle again.
    struct Tracked {
        #[pin]
        inner: axum::routing::future::RouteFuture<Infallible>,
        activity: Arc<Activity>,
    }
}

impl Future for Tracked {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = this.inner.poll(cx);
        if result.is_ready() {
            this.activity.set(IDLE);
        }
        result
    }
}
