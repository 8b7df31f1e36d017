//! Turns resolved settings into a tenancy `Server` and proves at configure time that we can log in, so a wrong
//! password is one clear diagnostic instead of one per resource.

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
        SslMode::Prefer | SslMode::Require => {
            Server::new(config, usualstore_pgtls::encrypting_connector())
        }
    };
    if settings.shares_reads() {
        server.share_reads()
    } else {
        server
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
