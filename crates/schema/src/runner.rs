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

const CREATE_MIGRATIONS_TABLE: &str =
    "create table if not exists public.usualstore_schema_migrations (
    version integer primary key,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now()
)";

/// Versions recorded in the database, with their checksums.
type History = BTreeMap<i32, String>;

/// The highest migration version recorded in the database; 0 when no migration table exists
/// (a database never migrated). One round trip; call it outside a transaction (a missing table
/// is an error PostgreSQL would otherwise keep the transaction aborted for).
pub async fn applied_version(client: &Client) -> Result<i32, SchemaError> {
    let row = client
        .query_typed_opt(
            "select coalesce(pg_catalog.max(version), 0) from public.usualstore_schema_migrations",
            &[],
        )
        .await;
    match row {
        Ok(Some(row)) => Ok(row.try_get(0)?),
        Ok(None) => Ok(0),
        Err(error) if error.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
            Ok(0)
        }
        Err(error) => Err(error.into()),
    }
}

/// Work a caller does inside the migrations' transaction, after their SQL and before the commit:
/// what it does is committed atomically with them.
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
/// database lacks, oldest first, all in one transaction: the database goes from one released
/// version to the next as a whole. Returns the versions it applied (empty when the schema was
/// current).
///
/// Safe to run concurrently on one database: the transaction holds an advisory lock
/// ([`MIGRATION_LOCK_KEY`]) and reads the applied set under it, so every migration is applied
/// exactly once. The migrations table is created if missing. Objects are created by the
/// session's current role: a caller that did `SET ROLE <owner>` gets them owned by that role
/// (the role is left as it is).
///
/// Refuses, before changing anything, when the database's history does not fit the list:
/// a newer version than the list knows ([`SchemaError::DatabaseNewer`]), an applied migration
/// whose SQL changed ([`SchemaError::ChecksumMismatch`]), an unknown applied version, or a pending
/// migration older than an applied one. A failing migration is reported as
/// [`SchemaError::MigrationFailed`] and rolls the whole run back; what earlier runs applied
/// stays.
///
/// [`migrations()`]: crate::migrations
pub async fn apply_pending(
    client: &mut Client,
    migrations: &[Migration],
) -> Result<Vec<i32>, SchemaError> {
    apply_pending_with(client, migrations, &mut Nothing).await
}

/// [`apply_pending`], running `hook` in the same transaction before it commits, whether or not a
/// migration was pending. A failing hook rolls the run back like a failing migration.
///
/// Round trips are few: the lock, the table and the history go out together, and so do all the
/// pending migrations with their records.
pub async fn apply_pending_with<H: BeforeCommit>(
    client: &mut Client,
    migrations: &[Migration],
    hook: &mut H,
) -> Result<Vec<i32>, H::Error> {
    check_order(migrations)?;
    // Read committed, whatever the session default: every statement after the lock must see
    // what the previous holder committed.
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await
        .map_err(SchemaError::from)?;
    // join!, not try_join!: after a lock timeout the other two only report the aborted
    // transaction, and try_join! returns whichever error it polls first, so the lock's own error
    // (55P03, which callers explain) would lose at random. Checked in the order they were sent.
    let (lock, table, history) = tokio::join!(
        async {
            transaction
                .execute_typed(
                    "select pg_catalog.pg_advisory_xact_lock($1)",
                    &[(&MIGRATION_LOCK_KEY, Type::INT8)],
                )
                .await
                .map_err(SchemaError::from)
        },
        async {
            transaction
                .batch_execute(CREATE_MIGRATIONS_TABLE)
                .await
                .map_err(SchemaError::from)
        },
        read_history(&transaction),
    );
    lock?;
    table?;
    let history = history?;
    let pending = pending(&history, migrations)?;

    // Each migration is one request (its SQL, then its record), so the requests run in the
    // order they are sent.
    let applying = pending.iter().map(|migration| {
        let transaction = &transaction;
        async move {
            let record = format!(
                "\n;\ninsert into public.usualstore_schema_migrations (version, name, checksum) \
                 values ({}, {}, {})",
                migration.version,
                literal(migration.name),
                literal(&migration.checksum())
            );
            transaction
                .batch_execute(&format!("{}{record}", migration.sql))
                .await
                .map_err(|source| SchemaError::MigrationFailed {
                    version: migration.version,
                    name: migration.name,
                    source,
                })
        }
    });
    // Sent together and run in order: the first failure is the migration at fault; those after
    // it only report the aborted transaction.
    let outcomes = futures_util::future::join_all(applying).await;
    let failure = outcomes.into_iter().find_map(Result::err);
    let failure = match failure {
        Some(failure) => Some(H::Error::from(failure)),
        None => hook.before_commit(&transaction).await.err(),
    };
    if let Some(error) = failure {
        // Rolled back now rather than when the handle drops, so the session is clean when the
        // error reaches the caller.
        if let Err(rollback_error) = transaction.rollback().await {
            tracing::warn!(error = %rollback_error, "rollback after a failed migration run failed");
        }
        return Err(error);
    }
    transaction.commit().await.map_err(SchemaError::from)?;
    let versions: Vec<i32> = pending.iter().map(|migration| migration.version).collect();
    if versions.is_empty() {
        tracing::debug!("schema is up to date");
    } else {
        tracing::info!(versions = ?versions, "applied schema migrations");
    }
    Ok(versions)
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

/// A string literal for the migrations' names and checksums (lowercase letters, digits, `_`).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Checks the recorded history against the list and returns the migrations still to apply, oldest
/// first.
fn pending<'a>(
    history: &History,
    migrations: &'a [Migration],
) -> Result<Vec<&'a Migration>, SchemaError> {
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
    let pending: Vec<&Migration> = migrations
        .iter()
        .filter(|migration| !history.contains_key(&migration.version))
        .collect();
    match pending.first() {
        Some(migration) if migration.version < latest_applied => Err(SchemaError::OutOfOrder {
            version: migration.version,
            latest_applied,
        }),
        _ => Ok(pending),
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
    fn lists_what_is_pending_oldest_first() {
        let list = [A, B, D];
        assert_eq!(pending(&History::new(), &list).unwrap(), [&A, &B, &D]);
        assert_eq!(pending(&history(&[A]), &list).unwrap(), [&B, &D]);
        assert!(pending(&history(&[A, B, D]), &list).unwrap().is_empty());
    }

    #[test]
    fn refuses_histories_that_do_not_fit() {
        assert!(matches!(
            pending(&history(&[A, B, D]), &[A, B]),
            Err(SchemaError::DatabaseNewer {
                database_version: 4,
                latest_known: 2
            })
        ));
        assert!(matches!(
            pending(&history(&[A, B]), &[A, D]),
            Err(SchemaError::UnknownApplied { version: 2 })
        ));
        assert!(matches!(
            pending(&history(&[A, D]), &[A, B, D]),
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
            pending(&history(&[A, B]), &[A, edited_b]),
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
