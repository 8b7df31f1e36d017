//! Finding the PostgreSQL server binaries.
//!
//! Debian's packages put them in `/usr/lib/postgresql/<major>/bin`, which is not on `PATH`, and
//! `/usr/bin/pg_config` may come from a newer libpq package than the installed server, so every
//! candidate is checked for the binaries before it is accepted.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::TestPgError;

/// Environment variable naming the directory that holds `initdb`, `pg_ctl` and `postgres`.
pub const PG_BIN_ENV: &str = "USUALSTORE_PG_BIN";

const REQUIRED: [&str; 3] = ["initdb", "pg_ctl", "postgres"];
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// The directory holding the server binaries, searched in this order: `$USUALSTORE_PG_BIN`,
/// `pg_config --bindir`, the highest `/usr/lib/postgresql/*/bin`, then `PATH`.
pub fn locate() -> Result<PathBuf, TestPgError> {
    if let Some(dir) = env::var_os(PG_BIN_ENV).filter(|value| !value.is_empty()) {
        let dir = PathBuf::from(dir);
        // An explicit choice that is wrong must fail loudly rather than silently use another version.
        return match first_missing(&dir) {
            None => Ok(dir),
            Some(missing) => Err(TestPgError::BadBinDir { dir, missing }),
        };
    }

    let mut searched = Vec::new();

    if let Some(dir) = pg_config_bindir() {
        if first_missing(&dir).is_none() {
            return Ok(dir);
        }
        searched.push(format!("{} (pg_config --bindir)", dir.display()));
    } else {
        searched.push("pg_config --bindir (no pg_config)".to_owned());
    }

    if let Some(dir) = highest_debian_bindir() {
        return Ok(dir);
    }
    searched.push(format!("{DEBIAN_ROOT}/*/bin"));

    if let Some(dir) = bindir_on_path() {
        return Ok(dir);
    }
    searched.push("PATH".to_owned());

    Err(TestPgError::BinariesNotFound {
        searched: searched.join(", "),
    })
}

fn first_missing(dir: &Path) -> Option<&'static str> {
    REQUIRED.into_iter().find(|name| !dir.join(name).is_file())
}

fn pg_config_bindir() -> Option<PathBuf> {
    let output = Command::new("pg_config").arg("--bindir").output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let dir = text.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

fn highest_debian_bindir() -> Option<PathBuf> {
    let entries = std::fs::read_dir(DEBIAN_ROOT).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = parse_version(&entry.file_name())?;
            let bin = entry.path().join("bin");
            first_missing(&bin).is_none().then_some((version, bin))
        })
        .max_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, bin)| bin)
}

/// "15" → [15], "9.6" → [9, 6]; anything else is not a server version directory.
fn parse_version(name: &OsString) -> Option<Vec<u32>> {
    name.to_str()?
        .split('.')
        .map(|part| part.parse().ok())
        .collect()
}

fn bindir_on_path() -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path).find_map(|dir| {
        let initdb = dir.join("initdb");
        if !initdb.is_file() {
            return None;
        }
        // `/usr/local/bin/initdb` may be a lone symlink; its real directory holds the rest.
        let real_dir = initdb.canonicalize().ok()?.parent()?.to_path_buf();
        [real_dir, dir]
            .into_iter()
            .find(|candidate| first_missing(candidate).is_none())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_numerically() {
        let v = |s: &str| parse_version(&OsString::from(s));
        assert!(v("15") > v("9.6"));
        assert!(v("10") > v("9"));
        assert_eq!(v("common"), None);
    }
}
