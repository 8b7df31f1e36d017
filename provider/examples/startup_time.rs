//! Start-up cost of the provider as Terraform pays it: process start → handshake line on stdout → mutual-TLS
//! connection → GetProviderSchema answered. Terraform starts the provider several times per command (validate,
//! plan, apply each get a fresh process), so this is paid over and over.
//!
//! ```sh
//! cargo build --release -p terraform-provider-usualstore --example startup_time
//! target/release/examples/startup_time --provider target/release/terraform-provider-usualstore --runs 20
//! ```
//!
//! Prints one line per run, then a summary line `startup runs=N handshake_ms_median=… schema_ms_median=…` that
//! `bench/run.sh` reads. The client side mirrors Terraform's: a self-signed ECDSA P-521 CA certificate passed in
//! `PLUGIN_CLIENT_CERT`, the server certificate from the handshake line pinned.

#[path = "../src/proto.rs"]
#[allow(dead_code)]
mod proto;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use proto::plugin::Empty;
use proto::plugin::grpc_controller_client::GrpcControllerClient;
use proto::tfplugin6::provider_client::ProviderClient;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tonic::transport::{Channel, Endpoint, Uri};

const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
const PROVIDER_BINARY: &str = "terraform-provider-usualstore";
const USAGE: &str = "usage: startup_time [--provider PATH] [--runs N]";

struct Args {
    provider: PathBuf,
    runs: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut provider = None;
    let mut runs = 20;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--provider" => provider = Some(PathBuf::from(args.next().context(USAGE)?)),
            "--runs" => {
                runs = args
                    .next()
                    .context(USAGE)?
                    .parse()
                    .context("--runs takes a positive number")?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if runs == 0 {
        bail!("--runs takes a positive number");
    }
    // Examples live in target/<profile>/examples/, the provider binary one level up.
    let provider = match provider {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .map(|dir| dir.join(PROVIDER_BINARY))
            .context("cannot locate the provider binary; pass --provider")?,
    };
    Ok(Args { provider, runs })
}

/// Terraform's side of the mTLS: a self-signed ECDSA P-521 CA certificate.
struct ClientIdentity {
    pem: String,
    der: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn terraform_like_identity() -> anyhow::Result<ClientIdentity> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512)?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into()])?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let cert = params.self_signed(&key)?;
    Ok(ClientIdentity {
        pem: cert.pem(),
        der: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    })
}

/// Kills the provider if a run fails half-way, so no process outlives the benchmark.
struct Plugin {
    child: Child,
    socket: PathBuf,
    server_cert: CertificateDer<'static>,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts the provider and reads its handshake line (blocking: this is what go-plugin waits for too).
fn start(provider: &Path, identity: &ClientIdentity) -> anyhow::Result<Plugin> {
    let mut child = Command::new(provider)
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env("PLUGIN_CLIENT_CERT", &identity.pem)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", provider.display()))?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("reading the handshake line")?;
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    if fields.len() != 6 || fields[..3] != ["1", "6", "unix"] || fields[4] != "grpc" {
        bail!("unexpected handshake line {line:?}");
    }
    let der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(fields[5])
        .context("server certificate in the handshake line")?;
    Ok(Plugin {
        socket: PathBuf::from(fields[3]),
        server_cert: CertificateDer::from(der),
        child,
    })
}

fn tls_client(
    server_cert: &CertificateDer<'static>,
    identity: &ClientIdentity,
) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(PinnedServerCert {
        cert: server_cert.clone(),
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![identity.der.clone()], identity.key.clone_key())?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Trusts exactly the certificate from the handshake line, as go-plugin does.
#[derive(Debug)]
struct PinnedServerCert {
    cert: CertificateDer<'static>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for PinnedServerCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the pinned server certificate".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

async fn channel(socket: &Path, tls: rustls::ClientConfig) -> anyhow::Result<Channel> {
    let socket = socket.to_owned();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let channel = Endpoint::try_from("http://localhost")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            let connector = connector.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                let name = ServerName::try_from("localhost")
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                let tls = connector.connect(name, stream).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        }))
        .await
        .context("connecting to the provider")?;
    Ok(channel)
}

struct Timing {
    handshake: Duration,
    schema: Duration,
}

async fn one_run(provider: &Path, identity: &ClientIdentity) -> anyhow::Result<Timing> {
    let started = Instant::now();
    let mut plugin = start(provider, identity)?;
    let handshake = started.elapsed();
    let channel = channel(&plugin.socket, tls_client(&plugin.server_cert, identity)?).await?;
    let schema = ProviderClient::new(channel.clone())
        .get_provider_schema(proto::tfplugin6::get_provider_schema::Request {})
        .await
        .context("GetProviderSchema")?
        .into_inner();
    let schema_time = started.elapsed();
    if !schema.resource_schemas.contains_key("usualstore_tenant") {
        bail!("GetProviderSchema answered without usualstore_tenant");
    }
    // Leave the way Terraform does, so no process lingers into the next run.
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .context("Shutdown")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while plugin.child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            bail!("provider still running 10 s after Shutdown");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(Timing {
        handshake,
        schema: schema_time,
    })
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted milliseconds.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if !args.provider.is_file() {
        bail!("no provider binary at {}", args.provider.display());
    }
    // Key generation is Terraform's cost, not the provider's: done once, outside the clock.
    let identity = terraform_like_identity()?;
    let mut handshakes = Vec::with_capacity(args.runs);
    let mut schemas = Vec::with_capacity(args.runs);
    for run in 1..=args.runs {
        let timing = one_run(&args.provider, &identity)
            .await
            .with_context(|| format!("run {run}"))?;
        println!(
            "run {run:>3}: handshake {:7.2} ms, GetProviderSchema answered {:7.2} ms",
            ms(timing.handshake),
            ms(timing.schema)
        );
        handshakes.push(ms(timing.handshake));
        schemas.push(ms(timing.schema));
    }
    handshakes.sort_by(f64::total_cmp);
    schemas.sort_by(f64::total_cmp);
    println!(
        "startup runs={} handshake_ms_median={:.1} handshake_ms_p90={:.1} schema_ms_min={:.1} \
         schema_ms_median={:.1} schema_ms_p90={:.1} schema_ms_max={:.1}",
        args.runs,
        percentile(&handshakes, 50.0),
        percentile(&handshakes, 90.0),
        percentile(&schemas, 0.0),
        percentile(&schemas, 50.0),
        percentile(&schemas, 90.0),
        percentile(&schemas, 100.0),
    );
    Ok(())
}
