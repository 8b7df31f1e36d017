//! The embedded migrations, in order.

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
static EMBEDDED: &[Migration] = &[Migration {
    version: 1,
    name: "initial_store",
    sql: include_str!("../migrations/0001_initial_store.sql"),
}];

/// Names a directory of extra `NNNN_name.sql` migrations appended after the embedded ones.
///
/// Only this project's tests set it: it lets one provider binary stand in for "a newer provider that
/// embeds one more migration" without a second build. Never set it in production.
pub const EXTRA_MIGRATIONS_ENV: &str = "USUALSTORE_TEST_EXTRA_MIGRATIONS";

static ACTIVE: OnceLock<Vec<Migration>> = OnceLock::new();

/// The store schema migrations, oldest first: the embedded ones, plus any from [`EXTRA_MIGRATIONS_ENV`].
pub fn migrations() -> &'static [Migration] {
    ACTIVE.get_or_init(|| {
        let mut all = EMBEDDED.to_vec();
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
