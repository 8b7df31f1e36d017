//! The watchdog that cleans up after a test process that is gone.
//!
//! Rust test binaries never run destructors of statics and may be killed outright, while the
//! server (started by `pg_ctl` in its own session) outlives them. A tiny shell loop, detached into
//! its own process group so that Ctrl-C or a test harness killing the test's group does not reach
//! it, polls the test's pid; once that process is gone it stops the server and removes the
//! cluster's directory. It also exits by itself as soon as the directory disappears (an owned
//! cluster dropped normally), so it never lingers longer than the cluster.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::TestPgError;

/// `$1` = pid to watch, `$2` = directory to remove, `$3…` = the stop command.
/// The inner subshell is backgrounded and the outer shell exits at once: the loop is re-parented
/// to init (which reaps it) and the test process never collects a zombie.
const SCRIPT: &str = r#"
pid=$1; dir=$2; shift 2
(
    trap '' HUP INT
    while kill -0 "$pid" 2>/dev/null && [ -d "$dir" ]; do sleep 1; done
    if [ -d "$dir" ]; then
        "$@"
        rm -rf "$dir"
    fi
) </dev/null >/dev/null 2>&1 &
"#;

/// Starts a watchdog for the current process that runs `stop_argv` and removes `dir`.
pub(crate) fn spawn(dir: &Path, stop_argv: &[OsString]) -> Result<(), TestPgError> {
    let status = Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("usualstore-testpg-watchdog")
        .arg(std::process::id().to_string())
        .arg(dir)
        .args(stop_argv)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .status()
        .map_err(|source| TestPgError::io("starting the cleanup watchdog (sh)", source))?;
    if status.success() {
        Ok(())
    } else {
        Err(TestPgError::io(
            "starting the cleanup watchdog (sh)",
            std::io::Error::other(format!("sh exited with {status}")),
        ))
    }
}
