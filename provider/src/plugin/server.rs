//! The gRPC server Terraform talks to: the provider service plus go-plugin's side services (controller, stdio,
//! broker) and gRPC health, on a unix socket inside a private temporary directory.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, warn};

use super::handshake::{self, HandshakeRequest};
use super::tls;
use crate::proto::health::health_check_response::ServingStatus;
use crate::proto::health::health_server::{Health, HealthServer};
use crate::proto::health::{HealthCheckRequest, HealthCheckResponse};
use crate::proto::plugin::grpc_broker_server::{GrpcBroker, GrpcBrokerServer};
use crate::proto::plugin::grpc_controller_server::{GrpcController, GrpcControllerServer};
use crate::proto::plugin::grpc_stdio_server::{GrpcStdio, GrpcStdioServer};
use crate::proto::plugin::{ConnInfo, Empty, StdioData};
use crate::proto::tfplugin6::provider_server::{Provider, ProviderServer};

/// Terraform sends whole states and plans in one message; tonic's 4 MiB default is too small for big ones.
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
/// After Shutdown, in-flight streams get this long to finish before the process leaves anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("creating the plugin socket failed: {0}")]
    Socket(#[source] io::Error),
    #[error(transparent)]
    Tls(#[from] tls::TlsSetupError),
    #[error("writing the handshake line to stdout failed: {0}")]
    Handshake(#[source] io::Error),
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A one-shot signal shared by everything that must end when Terraform shuts the plugin down.
#[derive(Clone)]
pub struct ShutdownSignal {
    sender: std::sync::Arc<watch::Sender<bool>>,
}

impl ShutdownSignal {
    pub fn new() -> Self {
        let (sender, _) = watch::channel(false);
        Self {
            sender: std::sync::Arc::new(sender),
        }
    }

    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    pub async fn triggered(&self) {
        let mut receiver = self.sender.subscribe();
        // An error means the sender is gone, which only happens when everything is shutting down anyway.
        let _ = receiver.wait_for(|stopped| *stopped).await;
    }
}

/// Serves `provider` until Terraform asks for shutdown (or closes the connection and kills us).
pub async fn serve<P: Provider>(
    request: HandshakeRequest,
    provider: P,
    shutdown: ShutdownSignal,
) -> Result<(), ServeError> {
    ignore_sigint();

    // 0700 by construction: only our user can even reach the socket, a second wall besides mTLS.
    let socket_dir = tempfile::Builder::new()
        .prefix("usualstore-plugin-")
        .tempdir()
        .map_err(ServeError::Socket)?;
    let socket_path = socket_dir.path().join("plugin.sock");
    let listener = UnixListener::bind(&socket_path).map_err(ServeError::Socket)?;

    let server_tls = match &request.client_cert_pem {
        Some(pem) => Some(tls::server_tls(pem)?),
        None => {
            warn!("PLUGIN_CLIENT_CERT is not set: serving without TLS on a private unix socket");
            None
        }
    };
    let line = handshake::handshake_line(
        &socket_path,
        server_tls.as_ref().map(|t| t.server_cert_der.as_slice()),
    );
    announce(&line).map_err(ServeError::Handshake)?;
    info!(socket = %socket_path.display(), tls = server_tls.is_some(), "plugin server listening");

    let acceptor = server_tls.map(|t| tokio_rustls::TlsAcceptor::from(t.config));
    let incoming = accept_connections(listener, acceptor, shutdown.clone());

    let router = tonic::transport::Server::builder()
        .add_service(
            ProviderServer::new(provider)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(GrpcControllerServer::new(Controller {
            shutdown: shutdown.clone(),
        }))
        .add_service(GrpcStdioServer::new(Stdio {
            shutdown: shutdown.clone(),
        }))
        .add_service(GrpcBrokerServer::new(Broker {
            shutdown: shutdown.clone(),
        }))
        .add_service(HealthServer::new(HealthService {
            shutdown: shutdown.clone(),
        }));

    let graceful =
        router.serve_with_incoming_shutdown(incoming, shutdown.clone().triggered_owned());
    tokio::select! {
        result = graceful => result?,
        _ = async { shutdown.triggered().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            debug!("connections still open after shutdown grace period; leaving anyway");
        }
    }
    drop(socket_dir);
    Ok(())
}

impl ShutdownSignal {
    async fn triggered_owned(self) {
        self.triggered().await
    }
}

fn announce(line: &str) -> io::Result<()> {
    use std::io::Write as _;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()
}

/// Terraform forwards Ctrl-C to the whole process group but then asks us to stop through StopProvider; dying on
/// SIGINT would tear down an apply half-way instead of letting it finish or cancel cleanly.
fn ignore_sigint() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
        Ok(mut interrupts) => {
            tokio::spawn(async move {
                while interrupts.recv().await.is_some() {
                    debug!(
                        "SIGINT received and ignored: Terraform stops the provider through gRPC"
                    );
                }
            });
        }
        Err(e) => warn!(error = %e, "could not install the SIGINT handler"),
    }
}

/// Accepts unix connections and completes their TLS handshakes off the accept loop, so one slow or hostile
/// client cannot hold up Terraform's own connection.
fn accept_connections(
    listener: UnixListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shutdown: ShutdownSignal,
) -> ReceiverStream<Result<PluginConnection, io::Error>> {
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        warn!(error = %e, "accepting a plugin connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.triggered() => break,
            };
            let sender = sender.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let connection = match acceptor {
                    None => PluginConnection(Box::new(stream)),
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(tls) => PluginConnection(Box::new(tls)),
                        Err(e) => {
                            warn!(error = %e, "refused a plugin connection: TLS handshake failed");
                            return;
                        }
                    },
                };
                let _ = sender.send(Ok(connection)).await;
            });
        }
    });
    ReceiverStream::new(receiver)
}

trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> ByteStream for T {}

/// One accepted connection, TLS or plain, as tonic's server consumes it.
pub struct PluginConnection(Box<dyn ByteStream>);

impl Connected for PluginConnection {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for PluginConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for PluginConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

/// A response stream that yields `first` and then stays open until shutdown, as go-plugin expects of its
/// long-lived streams; ending it at shutdown lets the graceful stop complete.
fn stream_until_shutdown<T: Send + 'static>(
    first: Vec<T>,
    shutdown: ShutdownSignal,
) -> ReceiverStream<Result<T, Status>> {
    let (sender, receiver) = mpsc::channel(first.len().max(1));
    tokio::spawn(async move {
        for item in first {
            if sender.send(Ok(item)).await.is_err() {
                return;
            }
        }
        tokio::select! {
            _ = shutdown.triggered() => {}
            _ = sender.closed() => {}
        }
    });
    ReceiverStream::new(receiver)
}

struct Controller {
    shutdown: ShutdownSignal,
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
        info!("Terraform asked the plugin to shut down");
        // Reply first: the graceful stop below waits for this very call to finish.
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            shutdown.trigger();
        });
        Ok(Response::new(Empty {}))
    }
}

/// We never redirect our stdout/stderr through gRPC (logs go to stderr directly), so the stream carries nothing.
struct Stdio {
    shutdown: ShutdownSignal,
}

#[tonic::async_trait]
impl GrpcStdio for Stdio {
    type StreamStdioStream = ReceiverStream<Result<StdioData, Status>>;

    async fn stream_stdio(
        &self,
        _request: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        Ok(Response::new(stream_until_shutdown(
            Vec::new(),
            self.shutdown.clone(),
        )))
    }
}

/// Terraform providers do not broker extra connections; the stream is accepted and drained.
struct Broker {
    shutdown: ShutdownSignal,
}

#[tonic::async_trait]
impl GrpcBroker for Broker {
    type StartStreamStream = ReceiverStream<Result<ConnInfo, Status>>;

    async fn start_stream(
        &self,
        request: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut inbound = request.into_inner();
        tokio::spawn(async move {
            while let Ok(Some(info)) = inbound.message().await {
                debug!(
                    service_id = info.service_id,
                    "ignoring broker connection info"
                );
            }
        });
        Ok(Response::new(stream_until_shutdown(
            Vec::new(),
            self.shutdown.clone(),
        )))
    }
}

struct HealthService {
    shutdown: ShutdownSignal,
}

impl HealthService {
    fn status(service: &str) -> Result<HealthCheckResponse, Status> {
        // go-plugin checks the service named "plugin"; "" is the whole server.
        if service.is_empty() || service == "plugin" {
            Ok(HealthCheckResponse {
                status: ServingStatus::Serving as i32,
            })
        } else {
            Err(Status::not_found(format!("unknown service {service:?}")))
        }
    }
}

#[tonic::async_trait]
impl Health for HealthService {
    type WatchStream = ReceiverStream<Result<HealthCheckResponse, Status>>;

    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Self::status(&request.get_ref().service).map(Response::new)
    }

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let status = Self::status(&request.get_ref().service)?;
        Ok(Response::new(stream_until_shutdown(
            vec![status],
            self.shutdown.clone(),
        )))
    }
}
