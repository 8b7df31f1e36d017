//! Bringing one database's schema up to date.

use std::collections::BTreeMap;

use std::future::Future;
use tokio_postgres::types::Type;

use tokio_postgres::{Client, GenericClient, IsolationLevel, Transaction};

use crate::{Migration, SchemaError};

/// The table recording applied migrations, in the tenant database itself.
pub const MIGRATIONS_TABLE: &str = "public.usualstore_schema_migrations";

/// Key of the transaction-scoped advisory lock that serializes migration runners on one database
/// (advisory locks are per database, so runners on different tenants never wait for each other).
/// Other code taking advisory locks in tenant databases must avoid this value.
pub const MIGRATION_LOCK_KEY: i64 = 0x7573_7363_686d_0001; // "uschm" + 1

const CREATE_MIGRATIONS_TABLE: &str = "create table public.usualstore_schema_migrations (
    version integer primary key,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now()
)";

/// Versions recorded in the database, with their checksums.
type History = BTreeMap<i32, String>;

/// The highest migration version recorded in the database; 0 when no migration table exists
/// (a database never migrated).
pub async fn applied_version(client: &Client) -> Result<i32, SchemaError> {
    if !migrations_table_exists(client).await? {
        return Ok(0);
    }
    let row = client
        .query_typed_one(
            "select coalesce(pg_catalog.max(version), 0) from public.usualstore_schema_migrations",
            &[],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// Work a caller does inside each migration's transaction, after the migration's SQL and before
/// its commit: what it does is committed atomically with the migration.
///
/// The provider fixes privileges here. A table a migration creates gets the groups' default
/// privileges at once; fixing them before the commit means no session ever sees, say, a secrets
/// table readable by every group, not even for a moment.
pub trait BeforeCommit: Send {
    /// What the hook can fail with; schema errors convert into it.
    type Error: From<SchemaError> + Send;

    fn before_commit(
        &mut self,
        transaction: &Transaction<'_>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// No work before commit.
struct Nothing;

impl BeforeCommit for Nothing {
    type Error = SchemaError;

    async fn before_commit(&mut self, _transaction: &Transaction<'_>) -> Result<(), SchemaError> {
        Ok(())
    }
}

/// Applies every migration of `migrations` (ordered by version, e.g. [`migrations()`]) that the
/// database lacks, each in its own transaction, oldest first. Returns the versions it applied
/// (empty when the schema was current).
///
/// Safe to run concurrently on one database: each step holds a transaction-scoped advisory lock
/// ([`MIGRATION_LOCK_KEY`]) and re-reads the applied set under it, so every migration is applied
/// exactly once. The migrations table is created if missing. Objects are created by the
/// session's current role: a caller that did `SET ROLE <owner>` gets them owned by that role
/// (the role is left as it is).
///
/// Refuses, before changing anything, when the database's history does not fit the list:
/// a newer version than the list knows ([`SchemaError::DatabaseNewer`]), an applied migration
/// whose SQL changed ([`SchemaError::ChecksumMismatch`]), an unknown applied version, or a pending
/// migration older than an applied one. A failing migration is rolled back entirely and
/// reported as [`SchemaError::MigrationFailed`]; the migrations before it stay applied.
///
/// [`migrations()`]: crate::migrations
pub async fn apply_pending(
    client: &mut Client,
    migrations: &[Migration],
) -> Result<Vec<i32>, SchemaError> {
    apply_pending_with(client, migrations, &mut Nothing).await
}

/// [`apply_pending`], running `hook` inside each migration's transaction before it commits. A
/// failing hook rolls that migration back like a failing migration.
pub async fn apply_pending_with<H: BeforeCommit>(
    client: &mut Client,
    migrations: &[Migration],
    hook: &mut H,
) -> Result<Vec<i32>, H::Error> {
    check_order(migrations)?;
    let mut applied_now = Vec::new();
    loop {
        // Read committed, whatever the session default: every statement after the lock must see
        // what the previous holder committed.
        let transaction = client
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start()
            .await
            .map_err(SchemaError::from)?;
        transaction
            .execute_typed(
                "select pg_catalog.pg_advisory_xact_lock($1)",
                &[(&MIGRATION_LOCK_KEY, Type::INT8)],
            )
            .await
            .map_err(SchemaError::from)?;
        if !migrations_table_exists(&transaction).await? {
            transaction
                .batch_execute(CREATE_MIGRATIONS_TABLE)
                .await
                .map_err(SchemaError::from)?;
        }
        let history = read_history(&transaction).await?;

        let Some(migration) = next_pending(&history, migrations)? else {
            transaction.commit().await.map_err(SchemaError::from)?;
            tracing::debug!(applied = ?applied_now, "schema is up to date");
            return Ok(applied_now);
        };

        if let Err(source) = transaction.batch_execute(migration.sql).await {
            // The transaction is aborted; roll back now rather than when the handle drops, so
            // the session is clean when the error reaches the caller.
            if let Err(rollback_error) = transaction.rollback().await {
                tracing::warn!(error = %rollback_error, "rollback after a failed migration failed");
            }
            return Err(SchemaError::MigrationFailed {
                version: migration.version,
                name: migration.name,
                source,
            }
            .into());
        }
        transaction
            .execute_typed(
                "insert into public.usualstore_schema_migrations (version, name, checksum) \
                 values ($1, $2, $3)",
                &[
                    (&migration.version, Type::INT4),
                    (&migration.name, Type::TEXT),
                    (&migration.checksum(), Type::TEXT),
                ],
            )
            .await
            .map_err(SchemaError::from)?;
        if let Err(error) = hook.before_commit(&transaction).await {
            if let Err(rollback_error) = transaction.rollback().await {
                tracing::warn!(error = %rollback_error, "rollback after a failed hook failed");
            }
            return Err(error);
        }
        transaction.commit().await.map_err(SchemaError::from)?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied schema migration"
        );
        applied_now.push(migration.version);
    }
}

async fn migrations_table_exists(client: &impl GenericClient) -> Result<bool, SchemaError> {
    let row = client
        .query_typed_one(
            "select pg_catalog.to_regclass('public.usualstore_schema_migrations') is not null",
            &[],
        )
        .await?;
    Ok(row.try_get(0)?)
}

async fn read_history(client: &impl GenericClient) -> Result<History, SchemaError> {
    let rows = client
        .query_typed(
            "select version, checksum from public.usualstore_schema_migrations",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

fn check_order(migrations: &[Migration]) -> Result<(), SchemaError> {
    let mut previous = 0;
    for migration in migrations {
        if migration.version <= previous {
            return Err(SchemaError::InvalidMigrationList {
                version: migration.version,
            });
        }
        previous = migration.version;
    }
    Ok(())
}

/// Checks the recorded history against the list and picks the oldest migration still to apply.
fn next_pending<'a>(
    history: &History,
    migrations: &'a [Migration],
) -> Result<Option<&'a Migration>, SchemaError> {
    let latest_known = migrations.last().map_or(0, |migration| migration.version);
    let latest_applied = history.keys().next_back().copied().unwrap_or(0);
    if latest_applied > latest_known {
        return Err(SchemaError::DatabaseNewer {
            database_version: latest_applied,
            latest_known,
        });
    }
    for (&version, recorded) in history {
        let Ok(index) = migrations.binary_search_by_key(&version, |m| m.version) else {
            return Err(SchemaError::UnknownApplied { version });
        };
        let embedded = migrations[index].checksum();
        if *recorded != embedded {
            return Err(SchemaError::ChecksumMismatch {
                version,
                recorded: recorded.clone(),
                embedded,
            });
        }
    }
    let pending = migrations
        .iter()
        .find(|migration| !history.contains_key(&migration.version));
    match pending {
        Some(migration) if migration.version < latest_applied => Err(SchemaError::OutOfOrder {
            version: migration.version,
            latest_applied,
        }),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Migration = Migration {
        version: 1,
        name: "a",
        sql: "select 1",
    };
    const B: Migration = Migration {
        version: 2,
        name: "b",
        sql: "select 2",
    };
    const D: Migration = Migration {
        version: 4,
        name: "d",
        sql: "select 4",
    };

    fn history(migrations: &[Migration]) -> History {
        migrations
            .iter()
            .map(|m| (m.version, m.checksum()))
            .collect()
    }

    #[test]
    fn picks_the_oldest_pending_migration() {
        let list = [A, B, D];
        assert_eq!(next_pending(&History::new(), &list).unwrap(), Some(&A));
        assert_eq!(next_pending(&history(&[A]), &list).unwrap(), Some(&B));
        assert_eq!(next_pending(&history(&[A, B, D]), &list).unwrap(), None);
    }

    #[test]
    fn refuses_histories_that_do_not_fit() {
        assert!(matches!(
            next_pending(&history(&[A, B, D]), &[A, B]),
            Err(SchemaError::DatabaseNewer {
                database_version: 4,
                latest_known: 2
            })
        ));
        assert!(matches!(
            next_pending(&history(&[A, B]), &[A, D]),
            Err(SchemaError::UnknownApplied { version: 2 })
        ));
        assert!(matches!(
            next_pending(&history(&[A, D]), &[A, B, D]),
            Err(SchemaError::OutOfOrder {
                version: 2,
                latest_applied: 4
            })
        ));
        let edited_b = Migration {
            sql: "select 2 -- edited",
            ..B
        };
        assert!(matches!(
            next_pending(&history(&[A, B]), &[A, edited_b]),
            Err(SchemaError::ChecksumMismatch { version: 2, .. })
        ));
    }

    #[test]
    fn rejects_unordered_lists() {
        assert!(check_order(&[A, B, D]).is_ok());
        assert!(check_order(&[]).is_ok());
        assert!(matches!(
            check_order(&[B, A]),
            Err(SchemaError::InvalidMigrationList { version: 1 })
        ));
        assert!(matches!(
            check_order(&[A, A]),
            Err(SchemaError::InvalidMigrationList { version: 1 })
        ));
    }
}
