//! Which operating-system user runs the server.
//!
//! `initdb` and `postgres` refuse to run as root, and CI runs tests as root, so under root every
//! server command goes through `runuser -u postgres --` and the cluster's files are handed to that
//! user.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::TestPgError;

/// Environment variable naming the unprivileged user that runs the server when tests run as root.
pub const PG_USER_ENV: &str = "USUALSTORE_PG_USER";

const DEFAULT_UNPRIVILEGED_USER: &str = "postgres";

#[derive(Debug, Clone)]
pub(crate) enum RunAs {
    /// Not root: run the tools directly.
    CurrentUser,
    /// Root: run the tools as this user.
    Unprivileged {
        name: String,
        uid: u32,
        gid: u32,
        runuser: PathBuf,
    },
}

impl RunAs {
    pub(crate) fn detect() -> Result<RunAs, TestPgError> {
        if effective_uid()? != 0 {
            return Ok(RunAs::CurrentUser);
        }
        let name = std::env::var(PG_USER_ENV)
            .ok()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| DEFAULT_UNPRIVILEGED_USER.to_owned());
        let uid = id_of(&name, "-u")?;
        let gid = id_of(&name, "-g")?;
        if uid == 0 {
            return Err(TestPgError::NoUnprivilegedUser {
                user: name,
                reason: "that user is root too".to_owned(),
            });
        }
        let runuser = find_runuser().ok_or_else(|| TestPgError::NoUnprivilegedUser {
            user: name.clone(),
            reason: "`runuser` (util-linux) was found neither on PATH nor in /usr/sbin or /sbin"
                .to_owned(),
        })?;
        Ok(RunAs::Unprivileged {
            name,
            uid,
            gid,
            runuser,
        })
    }

    /// The argument vector that runs `program` as this user (for `Command` or a shell script).
    pub(crate) fn argv(&self, program: &Path) -> Vec<OsString> {
        match self {
            RunAs::CurrentUser => vec![program.as_os_str().to_owned()],
            RunAs::Unprivileged { name, runuser, .. } => vec![
                runuser.clone().into_os_string(),
                OsString::from("-u"),
                OsString::from(name),
                OsString::from("--"),
                program.as_os_str().to_owned(),
            ],
        }
    }

    pub(crate) fn command(&self, program: &Path) -> Command {
        let argv = self.argv(program);
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]);
        command
    }

    /// Gives `path` to the user running the server, so it can write there.
    pub(crate) fn hand_over(&self, path: &Path) -> Result<(), TestPgError> {
        match self {
            RunAs::CurrentUser => Ok(()),
            RunAs::Unprivileged { uid, gid, name, .. } => {
                std::os::unix::fs::chown(path, Some(*uid), Some(*gid)).map_err(|source| {
                    TestPgError::io(format!("giving {} to user {name}", path.display()), source)
                })
            }
        }
    }
}

/// `runuser` lives in `/usr/sbin`, which is often missing from a non-login root `PATH`.
fn find_runuser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join("runuser"))
        .find(|candidate| candidate.is_file())
}

/// The effective uid, read from `/proc/self/status` (`Uid: real effective saved fs`) so that no
/// libc binding is needed; falls back to `id -u` where `/proc` is absent.
fn effective_uid() -> Result<u32, TestPgError> {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(uid) = parse_effective_uid(&status)
    {
        return Ok(uid);
    }
    let output = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|source| TestPgError::io("running `id -u`", source))?;
    parse_id_output(&output.stdout).ok_or_else(|| {
        TestPgError::io(
            "reading the effective uid",
            std::io::Error::other("neither /proc/self/status nor `id -u` gave it"),
        )
    })
}

fn parse_effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn parse_id_output(stdout: &[u8]) -> Option<u32> {
    std::str::from_utf8(stdout).ok()?.trim().parse().ok()
}

fn id_of(user: &str, flag: &str) -> Result<u32, TestPgError> {
    let output = Command::new("id")
        .args([OsStr::new(flag), OsStr::new(user)])
        .output()
        .map_err(|source| TestPgError::io("running `id` to look up the server user", source))?;
    if !output.status.success() {
        return Err(TestPgError::NoUnprivilegedUser {
            user: user.to_owned(),
            reason: "that user does not exist".to_owned(),
        });
    }
    parse_id_output(&output.stdout).ok_or_else(|| TestPgError::NoUnprivilegedUser {
        user: user.to_owned(),
        reason: "`id` printed no numeric id for it".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_uid_is_the_second_uid_field() {
        let status =
            "Name:\tcargo\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(parse_effective_uid(status), Some(0));
    }

    #[test]
    fn root_runs_tools_through_runuser() {
        let run_as = RunAs::Unprivileged {
            name: "postgres".into(),
            uid: 101,
            gid: 104,
            runuser: PathBuf::from("/usr/sbin/runuser"),
        };
        let argv = run_as.argv(Path::new("/usr/lib/postgresql/15/bin/pg_ctl"));
        assert_eq!(
            argv,
            [
                "/usr/sbin/runuser",
                "-u",
                "postgres",
                "--",
                "/usr/lib/postgresql/15/bin/pg_ctl"
            ]
        );
    }
}
