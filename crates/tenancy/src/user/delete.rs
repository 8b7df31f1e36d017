//! Dropping a login user, with whatever it owns or was granted in any database.

use tokio_postgres::Client;
use tokio_postgres::types::Type;

use super::{fetch_role, is_our_user};
use crate::emails::write_email;
use crate::error::{DbResultExt, TenantError};
use crate::metadata::UserComment;
use crate::roles::with_role_locks;
use crate::server::Server;
use crate::sql::quote_ident;

/// Databases where the user owns objects or holds privileges (`None` stands for shared objects,
/// such as a database's own ACL, which any database's `DROP OWNED` clears).
async fn databases_with_dependencies(
    client: &Client,
    username: &str,
) -> Result<Vec<Option<String>>, TenantError> {
    let rows = client
        .query_typed(
            "SELECT DISTINCT d.datname::text FROM pg_catalog.pg_shdepend s \
             LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid \
             WHERE s.refclassid = 'pg_catalog.pg_authid'::regclass \
               AND s.refobjid = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = $1) \
               AND s.deptype IN ('o', 'a', 'i')",
            &[(&username, Type::TEXT)],
        )
        .await
        .context(format!("looking up what {username:?} owns or was granted"))?;
    Ok(rows.into_iter().map(|row| row.get(0)).collect())
}

/// Where a deleted user's e-mail address goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum TenantDatabase {
    /// Still there: its record of the address is removed too.
    Kept,
    /// Dropped with the tenant, and the address with it.
    Dropped,
}

pub(super) async fn delete_with(
    server: &Server,
    client: &mut Client,
    database: &str,
    username: &str,
    tenant: TenantDatabase,
) -> Result<(), TenantError> {
    let Some(row) = fetch_role(client, username).await? else {
        return Ok(());
    };
    let Some(comment) = is_our_user(&row, database) else {
        tracing::warn!(
            role = username,
            "leaving role alone: it is not a usualstore user of this tenant"
        );
        return Ok(());
    };
    if comment.has_email && tenant == TenantDatabase::Kept {
        write_email(server, database, username, None).await?;
    }

    let dependencies = databases_with_dependencies(client, username).await?;
    if !dependencies.is_empty() {
        // DROP OWNED needs the user's privileges; a CREATEROLE operator may give them to itself.
        if !server.operator_is_superuser(client).await? {
            client
                .batch_execute(&format!("GRANT {} TO CURRENT_USER", quote_ident(username)))
                .await
                .context(format!("granting {username:?} to the operator"))?;
        }
        let mut shared_only = true;
        for dependency in dependencies.iter().flatten() {
            shared_only = false;
            tracing::info!(role = username, database = %dependency, "dropping what the user owns");
            let session = server.connect_to(dependency).await?;
            let result = session
                .batch_execute(&format!("DROP OWNED BY {}", quote_ident(username)))
                .await
                .context(format!("dropping what {username:?} owns in {dependency:?}"));
            session.close().await;
            result?;
        }
        if shared_only {
            client
                .batch_execute(&format!("DROP OWNED BY {}", quote_ident(username)))
                .await
                .context(format!("dropping the privileges of {username:?}"))?;
        }
    }

    // Open sessions do not block DROP ROLE, but they would keep working until they end.
    if let Err(error) = client
        .execute_typed(
            "SELECT pg_catalog.pg_terminate_backend(a.pid) FROM pg_catalog.pg_stat_activity a \
             WHERE a.usename = $1",
            &[(&username, Type::TEXT)],
        )
        .await
    {
        tracing::warn!(role = username, %error, "could not end the user's sessions");
    }

    // The user's lock and its groups': dropping the user changes their memberships.
    let mut locks: Vec<&str> = row.member_of.iter().map(String::as_str).collect();
    locks.push(username);
    with_role_locks(client, &locks, async |transaction| {
        tracing::info!(role = username, "dropping login user");
        transaction
            .batch_execute(&format!("DROP ROLE IF EXISTS {}", quote_ident(username)))
            .await
            .context(format!("dropping login user {username:?}"))
    })
    .await
}

/// Drops every usualstore login user of `database`, whichever state still tracks it.
pub(crate) async fn drop_users_of(
    server: &Server,
    client: &mut Client,
    database: &str,
) -> Result<(), TenantError> {
    let rows = client
        .query_typed(
            "SELECT r.rolname::text, pg_catalog.shobj_description(r.oid, 'pg_authid') \
             FROM pg_catalog.pg_roles r \
             WHERE pg_catalog.shobj_description(r.oid, 'pg_authid') LIKE '%\"usualstore\"%'",
            &[],
        )
        .await
        .context(format!("looking up the login users of {database:?}"))?;
    for row in rows {
        let username: String = row.get(0);
        let comment: Option<String> = row.get(1);
        let ours = UserComment::parse(comment.as_deref()).is_some_and(|c| c.database == database);
        if ours {
            tracing::info!(role = %username, database, "dropping login user of the deleted tenant");
            delete_with(server, client, database, &username, TenantDatabase::Dropped).await?;
        }
    }
    Ok(())
}
