//! The tenant database as a whole: create, comment, limit, owner, drop. Runs on the maintenance
//! database.

use std::time::Duration;

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use crate::catalog::{DatabaseRow, RoleRow};
use crate::error::{DbResultExt, TenantError, db_error};
use crate::metadata::{DatabaseComment, TenantState, role_comment_matches};
use crate::names::RoleKind;
use crate::sql::{quote_ident, quote_literal};
use crate::waits::{AdvisoryKey, LockTarget};

/// Session advisory lock serializing our CREATE DATABASE statements server-wide.
const CREATE_DATABASE_LOCK: i64 = 0x7573_7374_6f72_6501;

/// Attempts at CREATE DATABASE while the template is busy (SQLSTATE 55006), with backoff.
const CREATE_ATTEMPTS: u32 = 8;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(3);

/// What a database is to us.
#[derive(Debug, Clone)]
pub(crate) enum Ownership {
    /// Ours; the comment may lack fields if someone edited it.
    Ours(DatabaseComment),
    NotOurs,
}

/// Decides whether `row` is one of our tenant databases.
///
/// The comment marker is the normal proof. A database whose comment is missing or unmarked but
/// which is owned by the owner role we created for it is ours too: a create can crash between
/// CREATE DATABASE and COMMENT (then the comment is NULL: the create is resumable), or someone
/// overwrote the comment (then update repairs it).
pub(crate) fn classify(
    database: &str,
    row: &DatabaseRow,
    owner_role: Option<&RoleRow>,
) -> Ownership {
    if let Some(comment) = DatabaseComment::parse(row.comment.as_deref()) {
        return Ownership::Ours(comment);
    }
    let owned_by_our_owner = owner_role.is_some_and(|role| {
        role.name == row.owner
            && role_comment_matches(role.comment.as_deref(), database, RoleKind::Owner)
    });
    if !owned_by_our_owner {
        return Ownership::NotOurs;
    }
    Ownership::Ours(DatabaseComment {
        tenant_name: None,
        plan: None,
        status: row.comment.is_none().then_some(TenantState::Provisioning),
    })
}

pub(crate) enum CreateOutcome {
    Created,
    /// Somebody created a database of that name between our check and our CREATE.
    AlreadyExists,
}

/// `CREATE DATABASE … OWNER … TEMPLATE template0 CONNECTION LIMIT n`, one at a time
/// server-wide, retried while the template is in use.
pub(crate) async fn create_database(
    client: &Client,
    database: &str,
    owner_role: &str,
    connection_limit: i32,
) -> Result<CreateOutcome, TenantError> {
    client
        .execute_typed(
            "SELECT pg_catalog.pg_advisory_lock($1)",
            &[(&CREATE_DATABASE_LOCK, Type::INT8)],
        )
        .await
        .context("waiting for the CREATE DATABASE lock (one tenant is created at a time)")
        .map_err(|error| {
            error.waiting_for(LockTarget::Advisory(AdvisoryKey::Single(
                CREATE_DATABASE_LOCK,
            )))
        })?;
    let outcome = create_database_locked(client, database, owner_role, connection_limit).await;
    let unlocked = client
        .execute_typed(
            "SELECT pg_catalog.pg_advisory_unlock($1)",
            &[(&CREATE_DATABASE_LOCK, Type::INT8)],
        )
        .await
        .context("releasing the CREATE DATABASE lock");
    let outcome = outcome?;
    unlocked?;
    Ok(outcome)
}

async fn create_database_locked(
    client: &Client,
    database: &str,
    owner_role: &str,
    connection_limit: i32,
) -> Result<CreateOutcome, TenantError> {
    // template0 never has connections, unlike template1, and carries no local additions.
    let statement = format!(
        "CREATE DATABASE {} OWNER {} TEMPLATE template0 CONNECTION LIMIT {connection_limit}",
        quote_ident(database),
        quote_ident(owner_role)
    );
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        tracing::info!(database, attempt, "creating database");
        match client.batch_execute(&statement).await {
            Ok(()) => return Ok(CreateOutcome::Created),
            Err(error) if error.code() == Some(&SqlState::DUPLICATE_DATABASE) => {
                return Ok(CreateOutcome::AlreadyExists);
            }
            Err(error)
                if error.code() == Some(&SqlState::OBJECT_IN_USE) && attempt < CREATE_ATTEMPTS =>
            {
                tracing::debug!(database, ?backoff, "template database busy; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                attempt += 1;
            }
            Err(error) => {
                return Err(db_error(format!("creating database {database:?}"), error));
            }
        }
    }
}

pub(crate) async fn set_comment(
    client: &Client,
    database: &str,
    tenant_name: &str,
    plan: crate::ServicePlan,
    status: TenantState,
) -> Result<(), TenantError> {
    let comment = DatabaseComment::render(tenant_name, plan, status);
    tracing::debug!(
        database,
        status = status.as_str(),
        "writing the database comment"
    );
    client
        .batch_execute(&format!(
            "COMMENT ON DATABASE {} IS {}",
            quote_ident(database),
            quote_literal(&comment)
        ))
        .await
        .context(format!("writing the comment of database {database:?}"))
}

pub(crate) async fn set_owner(
    client: &Client,
    database: &str,
    owner_role: &str,
) -> Result<(), TenantError> {
    tracing::info!(
        database,
        owner = owner_role,
        "giving the database back to its owner role"
    );
    client
        .batch_execute(&format!(
            "ALTER DATABASE {} OWNER TO {}",
            quote_ident(database),
            quote_ident(owner_role)
        ))
        .await
        .context(format!("changing the owner of database {database:?}"))
}

pub(crate) async fn set_connection_limit(
    client: &Client,
    database: &str,
    limit: i32,
) -> Result<(), TenantError> {
    tracing::info!(database, limit, "setting the connection limit");
    client
        .batch_execute(&format!(
            "ALTER DATABASE {} CONNECTION LIMIT {limit}",
            quote_ident(database)
        ))
        .await
        .context(format!(
            "changing the connection limit of database {database:?}"
        ))
}

/// Attempts at a plain DROP DATABASE while sessions linger (each waits up to 5 s server-side).
const PLAIN_DROP_ATTEMPTS: u32 = 3;

/// Drops the database, ending its sessions first.
///
/// `WITH (FORCE)` (PostgreSQL 13+) terminates the sessions, but only if the operator may signal
/// every one of them: a non-superuser without `pg_signal_backend` may not, and never may end a
/// superuser's session. Then, as on older servers, we terminate what we may and fall back to a
/// plain DROP, which waits a few seconds for sessions that are closing anyway.
pub(crate) async fn drop_database(client: &Client, database: &str) -> Result<(), TenantError> {
    let version: i32 = client
        .query_typed_one(
            "SELECT pg_catalog.current_setting('server_version_num')::int",
            &[],
        )
        .await
        .context("reading the server version")?
        .get(0);
    tracing::info!(database, "dropping database");
    if version >= 130_000 {
        match client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(database)
            ))
            .await
        {
            Ok(()) => return Ok(()),
            Err(error) if error.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
                tracing::debug!(
                    database,
                    "may not end every session; dropping without FORCE"
                );
            }
            Err(error) => return Err(db_error(format!("dropping database {database:?}"), error)),
        }
    }
    let mut attempt = 1;
    loop {
        // Sessions we may not end are skipped rather than failing the statement.
        client
            .execute_typed(
                "SELECT pg_catalog.pg_terminate_backend(a.pid) FROM pg_catalog.pg_stat_activity a \
                 WHERE a.datname = $1 AND a.pid <> pg_catalog.pg_backend_pid() \
                   AND (pg_catalog.pg_has_role(a.usesysid, 'USAGE') \
                        OR (pg_catalog.pg_has_role('pg_signal_backend', 'USAGE') \
                            AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r \
                                     WHERE r.oid = a.usesysid)))",
                &[(&database, Type::TEXT)],
            )
            .await
            .context(format!("ending the sessions of database {database:?}"))?;
        match client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {}",
                quote_ident(database)
            ))
            .await
        {
            Ok(()) => return Ok(()),
            Err(error)
                if error.code() == Some(&SqlState::OBJECT_IN_USE)
                    && attempt < PLAIN_DROP_ATTEMPTS =>
            {
                attempt += 1;
            }
            Err(error) if error.code() == Some(&SqlState::OBJECT_IN_USE) => {
                return Err(db_error(
                    format!(
                        "dropping database {database:?}: sessions the operator may not end are \
                         still open (a non-superuser operator needs the pg_signal_backend role)"
                    ),
                    error,
                ));
            }
            Err(error) => return Err(db_error(format!("dropping database {database:?}"), error)),
        }
    }
}
