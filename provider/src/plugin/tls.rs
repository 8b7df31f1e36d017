//! AutoMTLS as go-plugin does it: we present a fresh self-signed certificate (its DER goes into the handshake
//! line) and accept exactly one client certificate, the one Terraform put in `PLUGIN_CLIENT_CERT`.
//!
//! Terraform's client certificate is an ECDSA P-521 CA certificate. A chain verifier (webpki) rejects a CA
//! certificate used as an end entity, so the certificate is pinned by its DER bytes instead; the TLS handshake
//! signature is still verified, with aws-lc-rs because it supports ECDSA P-521/SHA-512.

use std::sync::Arc;

use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("PLUGIN_CLIENT_CERT does not hold a PEM certificate: {0}")]
    ClientCertPem(String),
    #[error("generating the plugin's server certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("building the TLS configuration failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The certificate we present and the rustls configuration that pins Terraform's certificate.
pub struct ServerTls {
    pub server_cert_der: Vec<u8>,
    pub config: Arc<rustls::ServerConfig>,
}

/// Builds the server side of AutoMTLS for the client certificate Terraform handed us.
pub fn server_tls(client_cert_pem: &str) -> Result<ServerTls, TlsSetupError> {
    let pinned = CertificateDer::pem_slice_iter(client_cert_pem.as_bytes())
        .next()
        .ok_or_else(|| TlsSetupError::ClientCertPem("no CERTIFICATE block found".into()))?
        .map_err(|e| TlsSetupError::ClientCertPem(e.to_string()))?
        .into_owned();

    let (cert_der, key_der) = self_signed_server_cert()?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = PinnedClientCert {
        pinned,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(vec![cert_der.clone()], key_der)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(ServerTls {
        server_cert_der: cert_der.as_ref().to_vec(),
        config: Arc::new(config),
    })
}

/// A certificate shaped as go-plugin's client expects: it is used as the root that verifies the server, so it
/// is a CA; SAN `localhost` because that is the name go-plugin verifies.
fn self_signed_server_cert()
-> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), TlsSetupError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
    params
        .distinguished_name
        .push(DnType::OrganizationName, "usualstore");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.self_signed(&key)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((cert.der().clone(), key_der))
}

/// Accepts only the client certificate whose DER equals the pinned one.
#[derive(Debug)]
struct PinnedClientCert {
    pinned: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "client certificate is not the one Terraform announced in PLUGIN_CLIENT_CERT"
                    .into(),
            ))
        }
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

/// Go's TLS client only sends its P-521 certificate when this scheme is offered; keep it visible in tests.
#[cfg(test)]
fn offers_p521(provider: &rustls::crypto::CryptoProvider) -> bool {
    provider
        .signature_verification_algorithms
        .supported_schemes()
        .contains(&SignatureScheme::ECDSA_NISTP521_SHA512)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p521_client_cert() -> (String, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("cert");
        (cert.pem(), key)
    }

    #[test]
    fn verifier_offers_p521_signatures() {
        assert!(offers_p521(&rustls::crypto::aws_lc_rs::default_provider()));
    }

    #[test]
    fn pins_exactly_the_announced_certificate() {
        let (pem, _key) = p521_client_cert();
        let (other_pem, _other_key) = p521_client_cert();
        let tls = server_tls(&pem).expect("server tls");
        assert!(!tls.server_cert_der.is_empty());

        let pinned = CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem");
        let other = CertificateDer::from_pem_slice(other_pem.as_bytes()).expect("pem");
        let verifier = PinnedClientCert {
            pinned: pinned.clone(),
            algorithms: rustls::crypto::aws_lc_rs::default_provider()
                .signature_verification_algorithms,
        };
        assert!(
            verifier
                .verify_client_cert(&pinned, &[], UnixTime::now())
                .is_ok()
        );
        assert!(
            verifier
                .verify_client_cert(&other, &[], UnixTime::now())
                .is_err()
        );
    }

    #[test]
    fn rejects_garbage_client_cert() {
        assert!(matches!(
            server_tls("not a pem"),
            Err(TlsSetupError::ClientCertPem(_))
        ));
    }
}
