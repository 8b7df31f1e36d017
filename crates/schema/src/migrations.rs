//! The embedded migrations, in order.

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

/// Every migration, oldest first. Add new ones at the end, each with a new file.
static MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "initial_store",
    sql: include_str!("../migrations/0001_initial_store.sql"),
}];

/// The embedded store schema migrations, oldest first.
pub fn migrations() -> &'static [Migration] {
    MIGRATIONS
}

/// The schema version a database has once every embedded migration is applied.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |migration| migration.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_start_at_one_and_increase_by_one() {
        for (index, migration) in migrations().iter().enumerate() {
            assert_eq!(migration.version, index as i32 + 1, "{}", migration.name);
        }
        assert_eq!(latest_version(), migrations().len() as i32);
    }

    /// Every file in `migrations/` is embedded under its own number and name, so a new file
    /// cannot be forgotten in the list.
    #[test]
    fn every_migration_file_is_embedded_under_its_name() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        let expected: Vec<String> = migrations()
            .iter()
            .map(|m| format!("{:04}_{}.sql", m.version, m.name))
            .collect();
        assert_eq!(files, expected);
        for migration in migrations() {
            let on_disk = std::fs::read_to_string(
                dir.join(format!("{:04}_{}.sql", migration.version, migration.name)),
            )
            .unwrap();
            assert_eq!(on_disk, migration.sql);
        }
    }

    #[test]
    fn migrations_name_no_roles_and_grant_nothing() {
        for migration in migrations() {
            // Comments may explain the role set-up; only statements matter.
            let sql: String = migration
                .sql
                .lines()
                .map(|line| line.split("--").next().unwrap_or_default().to_lowercase() + "\n")
                .collect();
            for forbidden in ["grant ", "revoke ", "owner to", "set role", "reset role"] {
                assert!(
                    !sql.contains(forbidden),
                    "migration {} contains `{forbidden}`",
                    migration.version
                );
            }
        }
    }
}
