//! PostgreSQL connections the way libpq makes them, for the provider and store-api alike.
//!
//! - `sslmode` `disable`, `prefer` and `require` encrypt (or not) without checking who the server
//!   is; `verify-ca` checks its certificate against `sslrootcert`, `verify-full` also checks that
//!   the certificate names the host.
//! - Against a server that is not verified (every mode below `verify-ca`), a request for the
//!   password in clear text is refused before the password is sent: a man in the middle asks for
//!   exactly that to learn it. SCRAM never reveals the password, so it is unaffected.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use usualstore_pgtls::{Connector, SslMode, TlsSettings};
//!
//! let settings = TlsSettings::new(SslMode::VerifyFull).with_root_cert("/etc/ssl/pg-ca.pem");
//! let connector = Connector::new(&settings)?;
//! let config: tokio_postgres::Config = "host=db.internal user=app dbname=shop".parse()?;
//! let (client, connection) = connector.connect(&config).await?;
//! # drop((client, connection));
//! # Ok(())
//! # }
//! ```

mod connect;
mod guard;
mod verify;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use connect::{Connection, Connector, Notifications};

/// libpq's `sslmode`, less `allow` (which is `prefer` here: never worse than `prefer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub const ALL: [SslMode; 5] = [
        SslMode::Disable,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the server's certificate is checked, so the server is known to be the right one.
    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }

    /// What tokio-postgres is told: it negotiates TLS; the connector decides what to trust.
    fn negotiation(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown sslmode {0:?}; allowed values are disable, allow, prefer, require, verify-ca and verify-full"
)]
pub struct SslModeParseError(pub String);

impl FromStr for SslMode {
    type Err = SslModeParseError;

    fn from_str(value: &str) -> Result<SslMode, SslModeParseError> {
        match value {
            "allow" => Ok(SslMode::Prefer),
            other => SslMode::ALL
                .into_iter()
                .find(|mode| mode.as_str() == other)
                .ok_or_else(|| SslModeParseError(other.to_owned())),
        }
    }
}

/// How to secure connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    /// PEM file of the certificate authorities trusted for `verify-ca` and `verify-full`
    /// (libpq's `sslrootcert`).
    pub root_cert: Option<PathBuf>,
    /// Send the password in clear text when an unverified server asks for it. Off by default.
    pub allow_cleartext_password: bool,
}

impl TlsSettings {
    pub fn new(mode: SslMode) -> TlsSettings {
        TlsSettings {
            mode,
            root_cert: None,
            allow_cleartext_password: false,
        }
    }

    pub fn with_root_cert(mut self, path: impl AsRef<Path>) -> TlsSettings {
        self.root_cert = Some(path.as_ref().to_owned());
        self
    }

    pub fn allowing_cleartext_password(mut self, allow: bool) -> TlsSettings {
        self.allow_cleartext_password = allow;
        self
    }

    /// Whether a cleartext password request is answered: always from a verified server (it is
    /// the one the password is for), otherwise only when allowed.
    pub fn cleartext_password_allowed(&self) -> bool {
        self.mode.verifies() || self.allow_cleartext_password
    }
}

/// Why a [`Connector`] could not be built. Names the setting and the file, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "sslmode {mode} checks the server's certificate and needs sslrootcert (or PGSSLROOTCERT): \
         the PEM file of the certificate authority that signed it"
    )]
    MissingRootCert { mode: SslMode },
    #[error("sslrootcert {path}: {reason}")]
    RootCert { path: PathBuf, reason: String },
}
