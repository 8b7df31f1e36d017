//! Turns resolved settings into a tenancy `Server` and proves at configure time that we can log in, so a wrong
//! password is one clear diagnostic instead of one per resource.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use usualstore_tenancy::Server;

use crate::config::{ConnectionSettings, SslMode};
use crate::diagnostics::{Diagnostic, Diagnostics};

const APPLICATION_NAME: &str = "terraform-provider-usualstore";

pub fn server_for(settings: &ConnectionSettings) -> Server {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&settings.host)
        .port(settings.port)
        .user(&settings.username)
        .dbname(&settings.database)
        .application_name(APPLICATION_NAME)
        .connect_timeout(settings.connect_timeout)
        .ssl_mode(match settings.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require => tokio_postgres::config::SslMode::Require,
        });
    if let Some(password) = &settings.password {
        config.password(password);
    }
    let server = match settings.sslmode {
        SslMode::Disable => Server::without_tls(config),
        SslMode::Prefer | SslMode::Require => Server::new(config, encrypting_connector()),
    };
    if settings.shares_reads() {
        server.share_reads()
    } else {
        server
    }
}

/// libpq's `prefer` and `require` encrypt without verifying who the server is; the same here. Handshake
/// signatures are still checked so the session keys belong to the certificate presented.
fn encrypting_connector() -> tokio_postgres_rustls::MakeRustlsConnect {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(UnverifiedServer {
        algorithms: provider.signature_verification_algorithms,
    });
    let config = match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
        // The default provider always supports the default versions; fall back to its stock config anyway.
        Err(_) => rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    };
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

#[derive(Debug)]
struct UnverifiedServer {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for UnverifiedServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// One round trip to the maintenance database: fails fast on a wrong host, port, user, password or sslmode.
/// Where reads share a session, this opens it.
pub async fn check(server: &Server, settings: &ConnectionSettings) -> Result<(), Diagnostics> {
    match server.read_session().await {
        Ok(session) => {
            session.release().await;
            Ok(())
        }
        // TenantError::Connect names host, port, database and user; it never carries the password.
        Err(e) => Err(Diagnostic::error(
            format!("Cannot connect to PostgreSQL at {}", settings.describe()),
            e.to_string(),
        )
        .into()),
    }
}
