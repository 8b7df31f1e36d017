//! The go-plugin handshake: what Terraform tells us through the environment, and the one line we answer on
//! stdout.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;

/// Terraform's magic cookie; its only job is to stop people from running the plugin by hand by mistake.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// go-plugin's own core protocol version, the first field of the handshake line.
const CORE_PROTOCOL_VERSION: u32 = 1;
/// The only Terraform plugin protocol we speak.
pub const PLUGIN_PROTOCOL_VERSION: u32 = 6;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandshakeError {
    #[error(
        "This binary is a plugin for Terraform. It is not meant to be run directly:\n\
         declare it in a configuration's required_providers as source = \"usualstore/usualstore\"\n\
         and run terraform init / terraform apply, which start it as needed."
    )]
    NotLaunchedByTerraform,
    #[error(
        "Terraform offered plugin protocol versions {offered:?}, but this provider speaks only version 6.\n\
         Use Terraform 1.0 or newer."
    )]
    UnsupportedProtocol { offered: String },
}

/// What Terraform's environment asks of this process.
#[derive(Debug, PartialEq, Eq)]
pub struct HandshakeRequest {
    /// Terraform's client certificate (PEM) when it wants mutual TLS.
    pub client_cert_pem: Option<String>,
}

/// Reads and checks the handshake environment. `get` is `std::env::var` in production.
pub fn read_request(
    get: impl Fn(&str) -> Option<String>,
) -> Result<HandshakeRequest, HandshakeError> {
    if get(MAGIC_COOKIE_KEY).as_deref() != Some(MAGIC_COOKIE_VALUE) {
        return Err(HandshakeError::NotLaunchedByTerraform);
    }
    // An absent list means a go-plugin too old to negotiate; it then expects the version we announce.
    if let Some(offered) = get("PLUGIN_PROTOCOL_VERSIONS") {
        let speaks_six = offered
            .split(',')
            .any(|v| v.trim() == PLUGIN_PROTOCOL_VERSION.to_string());
        if !speaks_six {
            return Err(HandshakeError::UnsupportedProtocol { offered });
        }
    }
    let client_cert_pem = get("PLUGIN_CLIENT_CERT").filter(|pem| !pem.trim().is_empty());
    Ok(HandshakeRequest { client_cert_pem })
}

/// The handshake line: `CORE|APP|unix|SOCKET|grpc|SERVER_CERT`, the certificate as unpadded standard base64
/// of its DER, empty when serving without TLS. We always listen on a unix socket: it lives in a directory only
/// our user can enter, which is a second fence next to the pinned client certificate.
pub fn handshake_line(socket: &std::path::Path, server_cert_der: Option<&[u8]>) -> String {
    let (network, address) = ("unix", socket.display().to_string());
    let cert = server_cert_der
        .map(|der| STANDARD_NO_PAD.encode(der))
        .unwrap_or_default();
    format!("{CORE_PROTOCOL_VERSION}|{PLUGIN_PROTOCOL_VERSION}|{network}|{address}|grpc|{cert}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn refuses_without_or_with_wrong_cookie() {
        assert_eq!(
            read_request(env(&[])),
            Err(HandshakeError::NotLaunchedByTerraform)
        );
        assert_eq!(
            read_request(env(&[(MAGIC_COOKIE_KEY, "nope")])),
            Err(HandshakeError::NotLaunchedByTerraform)
        );
    }

    #[test]
    fn requires_protocol_six_in_the_offered_set() {
        let ok = read_request(env(&[
            (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE),
            ("PLUGIN_PROTOCOL_VERSIONS", "5,6"),
        ]));
        assert_eq!(
            ok,
            Ok(HandshakeRequest {
                client_cert_pem: None
            })
        );
        let refused = read_request(env(&[
            (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE),
            ("PLUGIN_PROTOCOL_VERSIONS", "4,5"),
        ]));
        assert!(matches!(
            refused,
            Err(HandshakeError::UnsupportedProtocol { .. })
        ));
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("4,5") && message.contains("version 6"));
    }

    #[test]
    fn client_cert_is_passed_on() {
        let req = read_request(env(&[
            (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE),
            ("PLUGIN_PROTOCOL_VERSIONS", "6"),
            ("PLUGIN_CLIENT_CERT", "-----BEGIN CERTIFICATE-----\n"),
        ]));
        assert!(matches!(
            req,
            Ok(HandshakeRequest {
                client_cert_pem: Some(_)
            })
        ));
    }

    #[test]
    fn line_has_unpadded_base64_cert() {
        let path = std::path::Path::new("/tmp/x/plugin.sock");
        let line = handshake_line(path, Some(&[1, 2, 3, 4]));
        assert_eq!(line, "1|6|unix|/tmp/x/plugin.sock|grpc|AQIDBA");
        assert_eq!(
            handshake_line(path, None),
            "1|6|unix|/tmp/x/plugin.sock|grpc|"
        );
    }
}
