//! Driving `initdb` and `pg_ctl` for one data directory.

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::TestPgError;
use crate::os_user::RunAs;

/// Marks where this crate's settings start in `postgresql.conf`, so they can be rewritten (with a
/// new port) without touching what `initdb` wrote above.
const SETTINGS_MARKER: &str = "# ---- usualstore-testpg settings (rewritten on every start) ----";

const LOG_FILE: &str = "server.log";
/// How much of the server log a start failure quotes.
const LOG_EXCERPT_BYTES: u64 = 4000;
/// Seconds `pg_ctl` waits for start or stop; initdb + start take about a second on a quiet machine,
/// but CI machines running many test binaries at once can be far slower.
const PG_CTL_WAIT_SECONDS: &str = "120";

/// How `pg_ctl stop` ends the server.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StopMode {
    /// Disconnect clients and shut down cleanly.
    Fast,
    /// Kill everything at once, like a crash; startup then runs recovery.
    Immediate,
}

impl StopMode {
    fn as_arg(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// Why `pg_ctl start` failed.
pub(crate) struct StartFailure {
    pub(crate) port_in_use: bool,
    pub(crate) pg_ctl_output: String,
    pub(crate) log_excerpt: String,
}

/// One cluster's files and the tools that manage it.
#[derive(Debug)]
pub(crate) struct Server {
    bin_dir: PathBuf,
    /// The temporary directory owning everything; removing it removes the cluster.
    base_dir: PathBuf,
    data_dir: PathBuf,
    run_as: RunAs,
}

impl Server {
    pub(crate) fn new(bin_dir: PathBuf, base_dir: PathBuf, run_as: RunAs) -> Server {
        let data_dir = base_dir.join("data");
        Server {
            bin_dir,
            base_dir,
            data_dir,
            run_as,
        }
    }

    pub(crate) fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    pub(crate) fn run_as(&self) -> &RunAs {
        &self.run_as
    }

    pub(crate) fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    pub(crate) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        self.data_dir.join(LOG_FILE)
    }

    /// The argument vector of `pg_ctl stop -m <mode>`, also used by the watchdog's shell script.
    pub(crate) fn stop_argv(&self, mode: StopMode) -> Vec<OsString> {
        let mut argv = self.run_as.argv(&self.bin_dir.join("pg_ctl"));
        argv.extend(
            [
                "stop",
                "-w",
                "-s",
                "-t",
                PG_CTL_WAIT_SECONDS,
                "-m",
                mode.as_arg(),
                "-D",
            ]
            .map(OsString::from),
        );
        argv.push(self.data_dir.clone().into_os_string());
        argv
    }

    /// Creates the cluster with `superuser` as its bootstrap superuser, password authentication
    /// for every connection (including the unix socket: nothing in the tests may bypass it).
    pub(crate) fn initdb(&self, superuser: &str, password: &str) -> Result<(), TestPgError> {
        // The password goes through a file so it never appears in a process listing or an error.
        let password_file = self.base_dir.join("superuser-password");
        write_private_file(&password_file, password)?;
        self.run_as.hand_over(&password_file)?;

        let mut initdb = self.tool("initdb");
        initdb
            .arg("--pgdata")
            .arg(&self.data_dir)
            .arg("--username")
            .arg(superuser)
            .arg("--pwfile")
            .arg(&password_file)
            .args([
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                // The C locale makes initdb independent of the machine's locales and keeps server
                // messages in English, which the start-failure detection reads.
                "--locale=C",
                // Durability is pointless for a throwaway cluster; skipping fsync saves seconds.
                "--no-sync",
            ]);
        let result = run(initdb, "initdb");
        let _ = fs::remove_file(&password_file);
        result?;

        // initdb's own pg_hba.conf trusts nothing extra but lists IPv6 and replication lines;
        // replace it with exactly the rules the tests rely on. Writing over the existing file keeps
        // its owner (the server's user).
        let hba = "# usualstore-testpg: passwords everywhere, loopback only\n\
                   local all all scram-sha-256\n\
                   host all all 127.0.0.1/32 scram-sha-256\n";
        overwrite(&self.data_dir.join("pg_hba.conf"), hba)
    }

    /// Writes the server settings for `port` into `postgresql.conf`.
    pub(crate) fn configure(&self, port: u16) -> Result<(), TestPgError> {
        let conf_path = self.data_dir.join("postgresql.conf");
        let current = fs::read_to_string(&conf_path).map_err(|source| {
            TestPgError::io(format!("reading {}", conf_path.display()), source)
        })?;
        let initdb_part = current
            .split_once(SETTINGS_MARKER)
            .map_or(current.as_str(), |(before, _)| before);
        let socket_dir = quote_conf(&self.data_dir.to_string_lossy());
        let settings = format!(
            "{initdb_part}{SETTINGS_MARKER}\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = {socket_dir}\n\
             max_connections = 400\n\
             shared_buffers = 128MB\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             password_encryption = 'scram-sha-256'\n\
             # Containers often have a tiny /dev/shm; parallel queries would fail there.\n\
             dynamic_shared_memory_type = mmap\n\
             logging_collector = off\n\
             log_timezone = 'UTC'\n"
        );
        overwrite(&conf_path, &settings)
    }

    /// Starts the server and waits until it accepts connections.
    pub(crate) fn start(&self) -> Result<Result<(), StartFailure>, TestPgError> {
        let log_path = self.log_path();
        // Only what this attempt logs explains its failure.
        let log_offset = fs::metadata(&log_path).map_or(0, |meta| meta.len());

        let mut pg_ctl = self.tool("pg_ctl");
        pg_ctl
            .args(["start", "-w", "-s", "-t", PG_CTL_WAIT_SECONDS, "-D"])
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&log_path);
        let output = output_of(pg_ctl, "pg_ctl start")?;
        if output.status.success() {
            return Ok(Ok(()));
        }
        let log_excerpt = read_tail(&log_path, log_offset);
        Ok(Err(StartFailure {
            port_in_use: log_excerpt.contains("Address already in use")
                || log_excerpt.contains("could not bind"),
            pg_ctl_output: combined_output(&output),
            log_excerpt,
        }))
    }

    /// Stops the server if it runs; a stopped server is not an error.
    pub(crate) fn stop(&self, mode: StopMode) -> Result<(), TestPgError> {
        if !self.is_running() {
            return Ok(());
        }
        let argv = self.stop_argv(mode);
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]);
        self.prepare(&mut command);
        run(command, "pg_ctl stop")
    }

    /// Whether a postmaster owns the data directory (its pid file exists; the server removes it
    /// on every kind of shutdown, and `pg_ctl stop -w` waits for that).
    pub(crate) fn is_running(&self) -> bool {
        self.data_dir.join("postmaster.pid").exists()
    }

    fn tool(&self, name: &str) -> Command {
        let mut command = self.run_as.command(&self.bin_dir.join(name));
        self.prepare(&mut command);
        command
    }

    fn prepare(&self, command: &mut Command) {
        command
            // The test's working directory may be unreadable for the server's user.
            .current_dir(&self.base_dir)
            .env("LC_ALL", "C")
            // A caller's PGDATA or PGPORT must not redirect the tools.
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST")
            .stdin(Stdio::null());
    }
}

fn run(command: Command, what: &str) -> Result<(), TestPgError> {
    let output = output_of(command, what)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(TestPgError::CommandFailed {
            command: what.to_owned(),
            status: output.status,
            output: combined_output(&output),
        })
    }
}

fn output_of(mut command: Command, what: &str) -> Result<Output, TestPgError> {
    command.output().map_err(|source| {
        let program = command.get_program().to_string_lossy().into_owned();
        TestPgError::io(format!("running {what} ({program})"), source)
    })
}

fn combined_output(output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text.trim().to_owned()
}

fn write_private_file(path: &Path, content: &str) -> Result<(), TestPgError> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(content.as_bytes()))
        .map_err(|source| TestPgError::io(format!("writing {}", path.display()), source))
}

fn overwrite(path: &Path, content: &str) -> Result<(), TestPgError> {
    fs::write(path, content)
        .map_err(|source| TestPgError::io(format!("writing {}", path.display()), source))
}

/// A single-quoted postgresql.conf string.
fn quote_conf(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The last [`LOG_EXCERPT_BYTES`] of `path` written after `offset`; a missing log yields a note.
fn read_tail(path: &Path, offset: u64) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = fs::File::open(path)?;
        let len = file.metadata()?.len();
        let start = offset.max(len.saturating_sub(LOG_EXCERPT_BYTES));
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).trim().to_owned())
    };
    match read() {
        Ok(text) if text.is_empty() => "(the server wrote nothing to its log)".to_owned(),
        Ok(text) => text,
        Err(error) => format!("(could not read the server log: {error})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_strings_escape_quotes() {
        assert_eq!(quote_conf("/tmp/it's"), "'/tmp/it''s'");
    }

    #[test]
    fn stop_argv_names_the_data_dir_last() {
        let server = Server::new(
            PathBuf::from("/pg/bin"),
            PathBuf::from("/tmp/x"),
            RunAs::CurrentUser,
        );
        let argv = server.stop_argv(StopMode::Immediate);
        assert_eq!(argv[0], "/pg/bin/pg_ctl");
        assert!(argv.iter().any(|arg| arg == "immediate"));
        assert_eq!(
            argv.last().map(|a| a.as_os_str()),
            Some("/tmp/x/data".as_ref())
        );
    }
}
