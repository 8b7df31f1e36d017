//! The [`Cluster`] handle: start, connect, stop.

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, NoTls};

use crate::server::{Server, StopMode};
use crate::{TestPgError, binaries, names, os_user::RunAs, watchdog};

/// The bootstrap superuser's name in every test cluster.
const SUPERUSER: &str = "postgres";
const HOST: &str = "127.0.0.1";
/// A fresh free port is tried this many times when another process grabs it first.
const START_ATTEMPTS: u32 = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A running throwaway PostgreSQL cluster on `127.0.0.1`.
///
/// Every TCP and socket connection needs a password (`scram-sha-256`); the superuser's is random
/// per cluster. Get the process-wide one with [`shared`](crate::shared), or a private one with
/// [`Cluster::start`].
///
/// Dropping a `Cluster` stops its server (immediately: it is thrown away) and removes its
/// directory. If the test process dies first, a watchdog process does the same within about a
/// second.
pub struct Cluster {
    server: Server,
    port: u16,
    superuser_password: String,
}

impl Cluster {
    /// Creates and starts a new cluster, owned by the caller.
    ///
    /// Blocking (about a second: `initdb` plus start-up); call it from synchronous code, from a
    /// `#[tokio::test]` body directly (tests tolerate the block), or via `spawn_blocking`. It
    /// needs no tokio runtime.
    ///
    /// Use it for tests that stop, restart or otherwise disturb the server; everything else
    /// should share [`shared`](crate::shared).
    pub fn start() -> Result<Cluster, TestPgError> {
        let bin_dir = binaries::locate()?;
        let run_as = RunAs::detect()?;
        let superuser_password = names::random_secret()?;
        let base_dir = tempfile::Builder::new()
            .prefix("usualstore-pg-")
            .tempdir()
            .map_err(|source| {
                TestPgError::io("creating the cluster's temporary directory", source)
            })?
            .keep();
        // From here on, dropping `cluster` (including on an early `?` return) removes the
        // directory and stops anything started.
        let mut cluster = Cluster {
            server: Server::new(bin_dir, base_dir, run_as.clone()),
            port: 0,
            superuser_password,
        };
        // Only the server's user may read the cluster: the directory holds the password file
        // while initdb runs.
        std::fs::set_permissions(
            cluster.server.base_dir(),
            std::fs::Permissions::from_mode(0o700),
        )
        .map_err(|source| TestPgError::io("restricting the cluster's directory", source))?;
        run_as.hand_over(cluster.server.base_dir())?;
        watchdog::spawn(
            cluster.server.base_dir(),
            &cluster.server.stop_argv(StopMode::Immediate),
        )?;
        cluster
            .server
            .initdb(SUPERUSER, &cluster.superuser_password)?;

        for attempt in 1..=START_ATTEMPTS {
            let port = free_port()?;
            cluster.server.configure(port)?;
            cluster.port = port;
            match cluster.server.start()? {
                Ok(()) => {
                    tracing::debug!(
                        port,
                        data_dir = %cluster.server.data_dir().display(),
                        "test PostgreSQL cluster started"
                    );
                    return Ok(cluster);
                }
                Err(failure) if failure.port_in_use && attempt < START_ATTEMPTS => {
                    tracing::debug!(
                        port,
                        attempt,
                        "port taken before the server bound it; retrying"
                    );
                }
                Err(failure) => {
                    return Err(TestPgError::StartFailed {
                        port,
                        attempts: attempt,
                        pg_ctl_output: failure.pg_ctl_output,
                        log_path: cluster.server.log_path(),
                        log_excerpt: failure.log_excerpt,
                    });
                }
            }
        }
        unreachable!("the last start attempt always returns")
    }

    /// Always `"127.0.0.1"`.
    pub fn host(&self) -> &str {
        HOST
    }

    /// The TCP port the server listens on (stable across [`restart`](Cluster::restart)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bootstrap superuser's name (`postgres`).
    pub fn superuser(&self) -> &str {
        SUPERUSER
    }

    /// The superuser's password (random per cluster).
    pub fn superuser_password(&self) -> &str {
        &self.superuser_password
    }

    /// The directory holding `initdb`, `pg_ctl`, `postgres` (and usually `psql`).
    pub fn bin_dir(&self) -> &Path {
        self.server.bin_dir()
    }

    /// The cluster's data directory; the server log is `server.log` inside it.
    pub fn data_dir(&self) -> &Path {
        self.server.data_dir()
    }

    /// Connection settings for the superuser on database `dbname`, TLS disabled.
    pub fn config(&self, dbname: &str) -> Config {
        let mut config = Config::new();
        config
            .host(HOST)
            .port(self.port)
            .user(SUPERUSER)
            .password(&self.superuser_password)
            .dbname(dbname)
            .ssl_mode(SslMode::Disable)
            .connect_timeout(CONNECT_TIMEOUT);
        config
    }

    /// Connects as the superuser to `dbname`. The connection task is spawned on the current tokio
    /// runtime, so call this inside one (e.g. a `#[tokio::test]`).
    pub async fn connect(&self, dbname: &str) -> Result<Client, tokio_postgres::Error> {
        connect_with(&self.config(dbname)).await
    }

    /// Connects to `dbname` as `user` with `password`, like an application would.
    pub async fn connect_as(
        &self,
        dbname: &str,
        user: &str,
        password: &str,
    ) -> Result<Client, tokio_postgres::Error> {
        let mut config = self.config(dbname);
        config.user(user).password(password);
        connect_with(&config).await
    }

    /// Creates database `name` (from `template0`, owned by the superuser). Convenience for tests
    /// that want a fresh database; `name` is quoted, so [`unique_name`](crate::unique_name) output
    /// or any other string works.
    pub async fn create_database(&self, name: &str) -> Result<(), tokio_postgres::Error> {
        let client = self.connect("postgres").await?;
        client
            .batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE template0",
                quote_ident(name)
            ))
            .await
    }

    /// Environment for child processes (Terraform, `psql`, the provider) that connect with libpq
    /// conventions: `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD` (the superuser),
    /// `PGDATABASE=postgres`, `PGSSLMODE=disable`.
    pub fn pg_env(&self) -> Vec<(String, String)> {
        [
            ("PGHOST", HOST.to_owned()),
            ("PGPORT", self.port.to_string()),
            ("PGUSER", SUPERUSER.to_owned()),
            ("PGPASSWORD", self.superuser_password.clone()),
            ("PGDATABASE", "postgres".to_owned()),
            ("PGSSLMODE", "disable".to_owned()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
    }

    /// Creates a login role like the administrator a managed PostgreSQL service hands out: NOT a
    /// superuser, but `CREATEDB CREATEROLE`, with a random password. Returns `(user, password)`.
    ///
    /// Blocking and runtime-agnostic (it runs its statement on a private thread), so it can be
    /// called from sync tests and from inside `#[tokio::test]`. Fails if the role exists: pass a
    /// [`unique_name`](crate::unique_name).
    pub fn create_managed_admin(&self, name: &str) -> Result<(String, String), TestPgError> {
        let password = names::random_secret()?;
        // Keep the password out of the server log if the statement fails.
        let sql = format!(
            "SET log_min_error_statement = panic; \
             CREATE ROLE {} LOGIN NOSUPERUSER CREATEDB CREATEROLE PASSWORD {}",
            quote_ident(name),
            quote_literal(&password)
        );
        self.execute_blocking("postgres", sql)?;
        Ok((name.to_owned(), password))
    }

    /// Turns TLS on with the given PEM certificate (chain) and private key, in addition to plain
    /// connections (`hostssl` is not required, so `sslmode=disable` still connects). The files
    /// are written into the data directory, readable only by the server's user, and the server
    /// reloads its configuration. Blocking, like [`Cluster::create_managed_admin`].
    pub fn enable_tls(&self, certificate_pem: &str, key_pem: &str) -> Result<(), TestPgError> {
        use std::os::unix::fs::PermissionsExt;
        for (name, content) in [("server.crt", certificate_pem), ("server.key", key_pem)] {
            let path = self.data_dir().join(name);
            std::fs::write(&path, content)
                .map_err(|source| TestPgError::io(format!("writing {}", path.display()), source))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(
                |source| TestPgError::io(format!("restricting {}", path.display()), source),
            )?;
            self.server.run_as().hand_over(&path)?;
        }
        // ALTER SYSTEM refuses to run in a transaction block, which several statements sent as
        // one would be.
        for sql in [
            "ALTER SYSTEM SET ssl_cert_file = 'server.crt'",
            "ALTER SYSTEM SET ssl_key_file = 'server.key'",
            "ALTER SYSTEM SET ssl = on",
            "SELECT pg_reload_conf()",
        ] {
            self.execute_blocking("postgres", sql.to_owned())?;
        }
        Ok(())
    }

    /// Stops the server (fast shutdown: clients are disconnected). Stopping a stopped cluster is
    /// fine. Meant for owned clusters in fault tests: stopping [`shared`](crate::shared) breaks
    /// every other test in the process.
    pub fn stop(&self) -> Result<(), TestPgError> {
        self.server.stop(StopMode::Fast)
    }

    /// Stops the server if it runs and starts it again on the same port with the same data.
    pub fn restart(&self) -> Result<(), TestPgError> {
        self.server.stop(StopMode::Fast)?;
        self.server
            .start()?
            .map_err(|failure| TestPgError::StartFailed {
                port: self.port,
                attempts: 1,
                pg_ctl_output: failure.pg_ctl_output,
                log_path: self.server.log_path(),
                log_excerpt: failure.log_excerpt,
            })
    }

    /// Runs `sql` as the superuser without needing the caller's runtime: a private thread drives
    /// a private current-thread runtime (building one on a runtime thread would panic).
    fn execute_blocking(&self, dbname: &str, sql: String) -> Result<(), TestPgError> {
        let config = self.config(dbname);
        let worker = std::thread::spawn(move || -> Result<(), TestPgError> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| TestPgError::io("building a tokio runtime", source))?;
            runtime.block_on(async {
                let client = connect_with(&config).await?;
                client.batch_execute(&sql).await?;
                Ok(())
            })
        });
        match worker.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Leaves the password out: a `{:?}` in a test failure must not print it.
impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("host", &HOST)
            .field("port", &self.port)
            .field("superuser", &SUPERUSER)
            .field("data_dir", &self.server.data_dir())
            .finish_non_exhaustive()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(error) = self.server.stop(StopMode::Immediate) {
            tracing::warn!(%error, "stopping a test PostgreSQL cluster failed");
        }
        let base_dir = self.server.base_dir();
        if let Err(error) = std::fs::remove_dir_all(base_dir) {
            tracing::warn!(%error, dir = %base_dir.display(), "removing a test PostgreSQL cluster failed");
        }
    }
}

async fn connect_with(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "test PostgreSQL connection ended with an error");
        }
    });
    Ok(client)
}

/// A port that was free a moment ago; the caller retries if the server loses the race for it.
fn free_port() -> Result<u16, TestPgError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|source| TestPgError::io("finding a free port on 127.0.0.1", source))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_recognised_as_such() {
        let cluster = Cluster::start().unwrap();
        cluster.stop().unwrap();
        let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let taken = squatter.local_addr().unwrap().port();
        cluster.server.configure(taken).unwrap();
        let Err(failure) = cluster.server.start().unwrap() else {
            panic!("the server started on a port that is in use");
        };
        assert!(failure.port_in_use, "{}", failure.log_excerpt);
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
