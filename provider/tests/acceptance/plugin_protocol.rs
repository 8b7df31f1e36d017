//! The provider binary as go-plugin sees it: the handshake, mutual TLS with Terraform's certificate pinned, the
//! side services, and shutdown. Terraform itself is exercised by the acceptance tests; these pin down the parts
//! Terraform cannot show us, such as a stranger being refused.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::plugin_client::{channel, terraform_like_identity, tls_client};
use crate::proto::health::HealthCheckRequest;
use crate::proto::health::health_check_response::ServingStatus;
use crate::proto::health::health_client::HealthClient;
use crate::proto::plugin::Empty;
use crate::proto::plugin::grpc_controller_client::GrpcControllerClient;
use crate::proto::tfplugin6::provider_client::ProviderClient;
use base64::Engine as _;
use rustls::pki_types::CertificateDer;
use tonic::transport::Channel;

const PROVIDER: &str = env!("CARGO_BIN_EXE_terraform-provider-usualstore");
const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

struct RunningPlugin {
    child: Child,
    socket: PathBuf,
    server_cert: CertificateDer<'static>,
}

impl Drop for RunningPlugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_plugin(client_cert_pem: &str) -> RunningPlugin {
    let mut child = Command::new(PROVIDER)
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env("PLUGIN_CLIENT_CERT", client_cert_pem)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start provider");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("handshake line");
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    assert_eq!(fields.len(), 6, "handshake line {line:?}");
    assert_eq!(&fields[..3], &["1", "6", "unix"], "handshake line {line:?}");
    assert_eq!(fields[4], "grpc");
    assert!(
        !fields[5].ends_with('='),
        "certificate must be unpadded base64"
    );
    let der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(fields[5])
        .expect("certificate is standard base64 without padding");
    RunningPlugin {
        child,
        socket: PathBuf::from(fields[3]),
        server_cert: CertificateDer::from(der),
    }
}

async fn health(channel: Channel) -> Result<i32, tonic::Status> {
    let mut client = HealthClient::new(channel);
    let response = client
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await?;
    Ok(response.into_inner().status)
}

#[test]
fn without_the_magic_cookie_it_explains_and_exits_1() {
    let output = Command::new(PROVIDER)
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .stdin(Stdio::null())
        .output()
        .expect("run provider");
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "nothing may go to stdout");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("plugin for Terraform"), "{stderr}");
}

#[test]
fn refuses_when_protocol_6_is_not_offered() {
    let output = Command::new(PROVIDER)
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5")
        .stdin(Stdio::null())
        .output()
        .expect("run provider");
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("version 6"));
}

#[tokio::test]
async fn terraform_certificate_is_accepted_and_others_are_refused() {
    let terraform = terraform_like_identity().expect("client identity");
    let stranger = terraform_like_identity().expect("client identity");
    let plugin = start_plugin(&terraform.pem);

    let trusted = channel(
        &plugin.socket,
        tls_client(&plugin.server_cert, Some(&terraform)).expect("tls client"),
    )
    .await
    .expect("Terraform's certificate connects");
    assert_eq!(
        health(trusted.clone()).await.expect("health"),
        ServingStatus::Serving as i32
    );
    let schema = ProviderClient::new(trusted)
        .get_provider_schema(crate::proto::tfplugin6::get_provider_schema::Request {})
        .await
        .expect("schema")
        .into_inner();
    assert!(schema.resource_schemas.contains_key("usualstore_tenant"));
    assert!(schema.diagnostics.is_empty());

    // A process with another certificate, or none, gets no answer: the TLS handshake or the first call fails.
    for identity in [Some(&stranger), None] {
        let refused = match channel(
            &plugin.socket,
            tls_client(&plugin.server_cert, identity).expect("tls client"),
        )
        .await
        {
            Err(_) => true,
            Ok(ch) => health(ch).await.is_err(),
        };
        assert!(
            refused,
            "a client without Terraform's certificate was served"
        );
    }
}

#[tokio::test]
async fn controller_shutdown_ends_the_process() {
    let terraform = terraform_like_identity().expect("client identity");
    let mut plugin = start_plugin(&terraform.pem);
    let ch = channel(
        &plugin.socket,
        tls_client(&plugin.server_cert, Some(&terraform)).expect("tls client"),
    )
    .await
    .expect("connect");
    GrpcControllerClient::new(ch)
        .shutdown(Empty {})
        .await
        .expect("shutdown answered");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = plugin.child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "plugin still running after Shutdown"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!plugin.socket.exists(), "socket directory left behind");
}
