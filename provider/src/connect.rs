//! Turns resolved settings into a tenancy `Server` and proves at configure time that we can log in, so a wrong
//! password is one clear diagnostic instead of one per resource.

use usualstore_pgtls::{Connector, TlsSettings};
use usualstore_tenancy::Server;

use crate::config::ConnectionSettings;
use crate::diagnostics::{Diagnostic, Diagnostics};

const APPLICATION_NAME: &str = "terraform-provider-usualstore";

/// The server the settings describe; fails only when the TLS settings name a certificate file
/// that cannot be used.
pub fn server_for(settings: &ConnectionSettings) -> Result<Server, Diagnostics> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&settings.host)
        .port(settings.port)
        .user(&settings.username)
        .dbname(&settings.database)
        .application_name(APPLICATION_NAME)
        .connect_timeout(settings.connect_timeout);
    if let Some(password) = &settings.password {
        config.password(password);
    }
    let mut tls = TlsSettings::new(settings.sslmode)
        .allowing_cleartext_password(settings.allow_cleartext_password);
    if let Some(path) = &settings.sslrootcert {
        tls = tls.with_root_cert(path);
    }
    let connector = Connector::new(&tls).map_err(|error| {
        Diagnostics::from(Diagnostic::attribute_error(
            "sslrootcert",
            "Cannot set up TLS",
            error.to_string(),
        ))
    })?;
    let server = Server::new(config, connector)
        .with_lock_timeout(settings.lock_timeout)
        .keep_idle(settings.idle_sessions() as usize);
    Ok(if settings.shares_reads() {
        server.share_reads()
    } else {
        server
    })
}

/// One round trip to the maintenance database: fails fast on a wrong host, port, user, password or
/// sslmode, and says whether PUBLIC (every tenant's login) may still connect to it. Where reads
/// share a session, this opens it.
pub async fn check(server: &Server, settings: &ConnectionSettings) -> Result<bool, Diagnostics> {
    // TenantError::Connect names host, port, database and user; it never carries the password.
    usualstore_tenancy::public_may_connect(server)
        .await
        .map_err(|e| {
            Diagnostic::error(
                format!("Cannot connect to PostgreSQL at {}", settings.describe()),
                e.to_string(),
            )
            .into()
        })
}
