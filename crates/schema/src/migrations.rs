//! The embedded migrations, in order.

#[cfg(feature = "extra-migrations")]
use std::path::Path;
use std::sync::OnceLock;

/// One schema change: SQL applied in a single transaction, recorded under `version`.
///
/// Released migrations are never edited (the runner detects it by checksum); a change is a new
/// migration with the next version. The SQL must be transaction-safe (no `CREATE INDEX
/// CONCURRENTLY`, no `COMMIT`), create objects in `public`, name no roles and grant nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Position in the history, strictly increasing, starting at 1.
    pub version: i32,
    /// Short snake_case description, the file name without number and extension.
    pub name: &'static str,
    /// The SQL, from `migrations/NNNN_name.sql`.
    pub sql: &'static str,
}

impl Migration {
    /// The checksum recorded when this migration is applied (see [`checksum`](crate::checksum)).
    pub fn checksum(&self) -> String {
        crate::checksum(self.sql)
    }
}

/// Every embedded migration, oldest first. Add new ones at the end, each with a new file.
static EMBEDDED: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial_store",
        sql: include_str!("../migrations/0001_initial_store.sql"),
    },
    Migration {
        version: 2,
        name: "user_credentials",
        sql: include_str!("../migrations/0002_user_credentials.sql"),
    },
    Migration {
        version: 3,
        name: "login_user_emails",
        sql: include_str!("../migrations/0003_login_user_emails.sql"),
    },
];

/// Names a directory of extra `NNNN_name.sql` migrations appended after the embedded ones.
///
/// Honoured only by builds with the `extra-migrations` feature, which this project's tests and
/// `make bench` turn on: it lets one provider binary stand in for "a newer provider that embeds
/// one more migration" without a second build. A normal build ignores the variable, so nobody who
/// can set a provider's environment can make it run SQL as every tenant's owner.
pub const EXTRA_MIGRATIONS_ENV: &str = "USUALSTORE_TEST_EXTRA_MIGRATIONS";

static ACTIVE: OnceLock<Vec<Migration>> = OnceLock::new();

/// The store schema migrations, oldest first: the embedded ones (plus, in test builds, any from
/// [`EXTRA_MIGRATIONS_ENV`]).
pub fn migrations() -> &'static [Migration] {
    ACTIVE.get_or_init(|| {
        #[allow(unused_mut)] // only test builds append
        let mut all = EMBEDDED.to_vec();
        #[cfg(feature = "extra-migrations")]
        if let Some(dir) = std::env::var_os(EXTRA_MIGRATIONS_ENV) {
            match load_extra(Path::new(&dir), all.last().map_or(0, |m| m.version)) {
                Ok(extra) => all.extend(extra),
                Err(reason) => tracing::error!(
                    variable = EXTRA_MIGRATIONS_ENV,
                    %reason,
                    "ignoring extra migrations"
                ),
            }
        }
        all
    })
}

/// The schema version a database has once every migration is applied.
pub fn latest_version() -> i32 {
    migrations().last().map_or(0, |migration| migration.version)
}

/// Reads `NNNN_name.sql` files; versions must continue the embedded sequence without gaps.
#[cfg(feature = "extra-migrations")]
fn load_extra(dir: &Path, after: i32) -> Result<Vec<Migration>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();
    let mut extra = Vec::with_capacity(files.len());
    for (expected, path) in (after + 1..).zip(files) {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| format!("{}: file name is not UTF-8", path.display()))?;
        let (number, name) = stem
            .split_once('_')
            .ok_or_else(|| format!("{stem}: expected NNNN_name.sql"))?;
        let version: i32 = number
            .parse()
            .map_err(|_| format!("{stem}: expected NNNN_name.sql"))?;
        if version != expected {
            return Err(format!("{stem}: expected version {expected}"));
        }
        let sql = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        // Loaded once per process and kept for its lifetime, like the embedded SQL.
        extra.push(Migration {
            version,
            name: Box::leak(name.to_owned().into_boxed_str()),
            sql: Box::leak(sql.into_boxed_str()),
        });
    }
    Ok(extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_file_names() {
        for (expected, migration) in (1..).zip(EMBEDDED) {
            assert_eq!(migration.version, expected, "{}", migration.name);
        }
    }

    /// A normal build has no way to add SQL through the environment.
    #[cfg(not(feature = "extra-migrations"))]
    #[test]
    fn the_environment_cannot_add_migrations() {
        let dir = std::env::temp_dir().join(format!("usualstore-extra-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let next = EMBEDDED.len() + 1;
        std::fs::write(
            dir.join(format!("{next:04}_injected.sql")),
            "alter role current_user superuser;",
        )
        .expect("write migration");
        // SAFETY: this test binary's only test that reads the environment.
        unsafe { std::env::set_var(EXTRA_MIGRATIONS_ENV, &dir) };
        assert_eq!(migrations(), EMBEDDED);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
