//! A Terraform provider registry on 127.0.0.1, over HTTPS, serving one directory of release files as
//! the provider registry protocol lays them out: the versions list, the download metadata (zip,
//! `SHA256SUMS`, its signature and the signing key), then the files themselves.
//!
//! Only a registry makes Terraform check a release's signature and record the `zh:` hash of every zip
//! in `SHA256SUMS`; a filesystem mirror gives it the zips alone. Terraform finds it through a `host`
//! block in the CLI configuration ([`Registry::host_block`]) and trusts its self-signed certificate
//! through `SSL_CERT_FILE` ([`Registry::ca_file`]). Plain HTTP/1.1, one request per connection.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use tempfile::TempDir;

/// What the registry offers: one version of one provider, from the files in `dir`.
pub struct RegistryRelease {
    pub dir: PathBuf,
    pub namespace: String,
    pub provider_type: String,
    pub version: String,
    /// `(os, arch)` of each zip in `dir`.
    pub platforms: Vec<(String, String)>,
    /// The long key ID and the ASCII-armoured public key that signed `SHA256SUMS`.
    pub key_id: String,
    pub public_key: String,
}

pub struct Registry {
    addr: SocketAddr,
    cert_dir: TempDir,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
    accept_loop: Option<JoinHandle<()>>,
}

impl Registry {
    pub fn start(release: RegistryRelease) -> Registry {
        let (cert, key) = self_signed_cert();
        let cert_dir = tempfile::tempdir().expect("a directory for the registry's certificate");
        std::fs::write(cert_dir.path().join("ca.pem"), cert.pem())
            .expect("write the registry's certificate");
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(cert.der().to_vec())], key_der)
        .expect("the registry's TLS configuration");

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the registry's port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the registry's address");
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let site = Arc::new(Site {
            base: format!("https://{addr}"),
            release,
        });
        let config = Arc::new(config);
        let accept_loop = {
            let stop = Arc::clone(&stop);
            let requests = Arc::clone(&requests);
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((tcp, _)) => {
                            let (config, site, requests) = (
                                Arc::clone(&config),
                                Arc::clone(&site),
                                Arc::clone(&requests),
                            );
                            thread::spawn(move || serve(tcp, config, &site, &requests));
                        }
                        Err(error) if error.kind() == ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(10));
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        Registry {
            addr,
            cert_dir,
            stop,
            requests,
            accept_loop: Some(accept_loop),
        }
    }

    /// The PEM file to point `SSL_CERT_FILE` at.
    pub fn ca_file(&self) -> PathBuf {
        self.cert_dir.path().join("ca.pem")
    }

    /// A CLI configuration block that makes Terraform ask this registry about `hostname`'s providers.
    pub fn host_block(&self, hostname: &str) -> String {
        format!(
            "host \"{hostname}\" {{\n  services = {{\n    \"providers.v1\" = \"https://{}/v1/providers/\"\n  }}\n}}\n",
            self.addr
        )
    }

    /// Every request line served so far, for messages.
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .map(|list| list.clone())
            .unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(accept_loop) = self.accept_loop.take() {
            let _ = accept_loop.join();
        }
    }
}

/// Shaped as go's TLS client verifies a server against a root it was given: the certificate is its
/// own root, so a CA, and names the address Terraform dials.
fn self_signed_cert() -> (rcgen::Certificate, rcgen::KeyPair) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa};
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("certificate parameters");
    params
        .distinguished_name
        .push(DnType::CommonName, "usualstore test registry");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.self_signed(&key).expect("a self-signed certificate");
    (cert, key)
}

struct Site {
    base: String,
    release: RegistryRelease,
}

struct Response {
    status: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Response {
    fn json(value: serde_json::Value) -> Response {
        Response {
            status: "200 OK",
            content_type: "application/json",
            body: value.to_string().into_bytes(),
        }
    }

    fn not_found() -> Response {
        Response {
            status: "404 Not Found",
            content_type: "text/plain",
            body: b"not found\n".to_vec(),
        }
    }
}

impl Site {
    fn file_name(&self, suffix: &str) -> String {
        let release = &self.release;
        format!(
            "terraform-provider-{}_{}_{suffix}",
            release.provider_type, release.version
        )
    }

    fn respond(&self, path: &str) -> Response {
        let release = &self.release;
        let provider = format!(
            "/v1/providers/{}/{}/",
            release.namespace, release.provider_type
        );
        if path == "/.well-known/terraform.json" {
            return Response::json(json!({"providers.v1": "/v1/providers/"}));
        }
        if let Some(file) = path.strip_prefix("/files/") {
            // Only plain names of files in the release directory.
            if file.contains('/') || file.starts_with('.') {
                return Response::not_found();
            }
            return match std::fs::read(release.dir.join(file)) {
                Ok(body) => Response {
                    status: "200 OK",
                    content_type: "application/octet-stream",
                    body,
                },
                Err(_) => Response::not_found(),
            };
        }
        let Some(rest) = path.strip_prefix(&provider) else {
            return Response::not_found();
        };
        let protocols = ["6.0"];
        if rest == "versions" {
            let platforms: Vec<_> = release
                .platforms
                .iter()
                .map(|(os, arch)| json!({"os": os, "arch": arch}))
                .collect();
            return Response::json(json!({
                "versions": [{"version": release.version, "protocols": protocols, "platforms": platforms}]
            }));
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let [version, "download", os, arch] = parts.as_slice() else {
            return Response::not_found();
        };
        if *version != release.version
            || !release
                .platforms
                .iter()
                .any(|(o, a)| o.as_str() == *os && a.as_str() == *arch)
        {
            return Response::not_found();
        }
        let zip = self.file_name(&format!("{os}_{arch}.zip"));
        let sums = self.file_name("SHA256SUMS");
        let sums_text = std::fs::read_to_string(release.dir.join(&sums)).unwrap_or_default();
        let shasum = sums_text
            .lines()
            .find_map(|line| line.strip_suffix(&format!("  {zip}")))
            .unwrap_or_default();
        Response::json(json!({
            "protocols": protocols,
            "os": os,
            "arch": arch,
            "filename": zip,
            "download_url": format!("{}/files/{zip}", self.base),
            "shasums_url": format!("{}/files/{sums}", self.base),
            "shasums_signature_url": format!("{}/files/{sums}.sig", self.base),
            "shasum": shasum,
            "signing_keys": {"gpg_public_keys": [
                {"key_id": release.key_id, "ascii_armor": release.public_key}
            ]}
        }))
    }
}

fn serve(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    site: &Site,
    requests: &Mutex<Vec<String>>,
) {
    // A client that stalls must not keep a thread forever.
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(10)));
    let Ok(connection) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let request_line = head.lines().next().unwrap_or_default().to_owned();
    if let Ok(mut list) = requests.lock() {
        list.push(request_line.clone());
    }
    let mut words = request_line.split(' ');
    let response = match (words.next(), words.next()) {
        (Some("GET"), Some(path)) => site.respond(path.split('?').next().unwrap_or(path)),
        _ => Response::not_found(),
    };
    let header = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    let _ = stream.write_all(header.as_bytes());
    let _ = stream.write_all(&response.body);
    stream.conn.send_close_notify();
    let _ = stream.flush();
}
