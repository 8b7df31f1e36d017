use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

/// Why a test cluster could not be found, started, stopped or used.
///
/// Messages never contain passwords: the superuser password reaches `initdb` through a file and
/// role passwords are generated here, never echoed.
#[derive(Debug, thiserror::Error)]
pub enum TestPgError {
    /// No directory holding `initdb`, `pg_ctl` and `postgres` was found.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; looked in: {searched}. \
         Install PostgreSQL: apt-get install postgresql (or set USUALSTORE_PG_BIN to the directory holding them)"
    )]
    BinariesNotFound {
        /// Every place that was tried, in order.
        searched: String,
    },

    /// `USUALSTORE_PG_BIN` is set but does not hold the server binaries.
    #[error("USUALSTORE_PG_BIN={} does not contain `{missing}` (it must name the directory holding initdb, pg_ctl and postgres)", dir.display())]
    BadBinDir {
        /// The directory named by the variable.
        dir: PathBuf,
        /// The first binary that is missing.
        missing: &'static str,
    },

    /// Running as root, and the unprivileged user that must run the server is unusable.
    #[error(
        "running as root, and initdb refuses to run as root, so the server must run as the system user \
         `{user}`, but {reason}; apt-get install postgresql creates that user (or set USUALSTORE_PG_USER)"
    )]
    NoUnprivilegedUser {
        /// The user that was looked for.
        user: String,
        /// What went wrong with it.
        reason: String,
    },

    /// A file-system or process-spawning operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done, e.g. `creating the cluster directory`.
        action: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A PostgreSQL tool (`initdb`, `pg_ctl stop`, …) exited unsuccessfully.
    #[error("`{command}` failed ({status}): {output}")]
    CommandFailed {
        /// The command, without arguments that could hold secrets.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// Its combined stdout and stderr, trimmed.
        output: String,
    },

    /// The server did not come up; the tail of its log says why.
    #[error(
        "PostgreSQL did not start on 127.0.0.1:{port} (attempt {attempts}); `pg_ctl start` said: {pg_ctl_output}\n\
         server log {}:\n{log_excerpt}", log_path.display()
    )]
    StartFailed {
        /// The port of the last attempt.
        port: u16,
        /// How many attempts (each on a fresh port) were made.
        attempts: u32,
        /// What `pg_ctl start` printed.
        pg_ctl_output: String,
        /// The server log file, inside the data directory.
        log_path: PathBuf,
        /// The end of the log written during the last attempt.
        log_excerpt: String,
    },

    /// A statement the helper runs itself (e.g. `CREATE ROLE`) failed.
    #[error("statement on the test cluster failed: {0}")]
    Sql(#[from] tokio_postgres::Error),
}

impl TestPgError {
    pub(crate) fn io(action: impl Into<String>, source: io::Error) -> Self {
        TestPgError::Io {
            action: action.into(),
            source,
        }
    }
}
