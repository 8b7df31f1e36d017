//! Bringing an existing tenant database to the model: roles, owner, limit, ownership of every
//! object, pending migrations, privileges, default privileges. Idempotent; never drops data.

use tokio_postgres::{Client, Transaction};

use crate::catalog::{DatabaseRow, inspect_tenant_objects};
use crate::database::{set_connection_limit, set_owner};
use crate::error::{DbResultExt, TenantError};
use crate::model::assess;
use crate::names::RoleNames;
use crate::roles::{RoleState, ensure_operator_membership, ensure_roles, reset_role};
use crate::server::{Server, Session};
use crate::sql::quote_ident;
use crate::tenant::TenantSpec;
use crate::waits::{LockTarget, explain};

/// Converges the tenant `spec` describes; its database must exist. `maintenance` is the
/// operator's session on the maintenance database. Returns the session in the tenant database,
/// back to the operator's role, so the caller's read-back does not pay for another connection.
pub(crate) async fn converge(
    server: &Server,
    maintenance: &mut Session,
    spec: &TenantSpec,
    row: &DatabaseRow,
) -> Result<Session, TenantError> {
    let database = spec.database_name.as_str();
    let names = RoleNames::for_database(database);
    // The session in the tenant database opens while the roles and the database are put right.
    // One session there at a time: a non-superuser operator's sessions count against the
    // tenant's connection limit.
    let (outside, tenant_db) = tokio::join!(
        converge_outside(server, maintenance, spec, &names, row),
        server.connect_to(database)
    );
    let mut tenant_db = tenant_db?;
    let superuser = match outside {
        Ok(()) => server.operator_is_superuser(maintenance).await,
        Err(error) => Err(error),
    };
    let outcome = match superuser {
        Ok(superuser) => converge_inside(&mut tenant_db, database, &names, superuser)
            .await
            .map_err(|error| error.waiting_for(LockTarget::TenantObjects)),
        Err(error) => Err(error),
    };
    match outcome {
        Ok(()) => Ok(tenant_db),
        Err(error) => {
            // Any failed transaction is gone by now (rolled back on drop), so the session can
            // still say who held what we waited for.
            let error = explain(error, &tenant_db, Some(server.lock_timeout())).await;
            tenant_db.close().await;
            Err(error)
        }
    }
}

/// Roles, the operator's membership, the database's owner and connection limit: what lives in
/// the maintenance database. `row` is the database as last read (or as just created).
async fn converge_outside(
    server: &Server,
    maintenance: &mut Session,
    spec: &TenantSpec,
    names: &RoleNames,
    row: &DatabaseRow,
) -> Result<(), TenantError> {
    let database = spec.database_name.as_str();
    let mut recreated = Vec::new();
    let states = ensure_roles(maintenance, database, names, &mut recreated).await?;
    if !recreated.is_empty() {
        tracing::info!(database, roles = ?recreated, "recreated missing group roles");
    }
    // Roles just created are plain groups already; the others may have drifted.
    for (_, state) in states {
        if let RoleState::Ours(row) = state {
            reset_role(maintenance, &row).await?;
        }
    }
    ensure_operator_membership(server, maintenance, &names.owner).await?;
    if row.owner != names.owner {
        set_owner(maintenance, database, &names.owner).await?;
    }
    let limit = spec.plan.connection_limit();
    if row.connection_limit != limit {
        set_connection_limit(maintenance, database, limit).await?;
    }
    Ok(())
}

async fn converge_inside(
    client: &mut Client,
    database: &str,
    names: &RoleNames,
    superuser: bool,
) -> Result<(), TenantError> {
    // Ownership first, as the operator: REVOKE and GRANT below only work on objects the owner
    // role owns, and re-owning needs rights the owner role itself lacks.
    let objects = inspect_tenant_objects(client, &names.owner).await?;
    let before = assess(database, names, &objects);
    for drift in &before.ownership {
        if let Some(statement) = &drift.statement {
            tracing::info!(database, %statement, "re-owning object");
            client
                .batch_execute(statement)
                .await
                .context(format!("giving an object back to {:?}", names.owner))?;
        }
    }
    // Built-in functions belong to the bootstrap superuser: only a superuser operator can take
    // PUBLIC's EXECUTE away (the tenant's read reports it as a warning otherwise).
    let builtin = before.builtin_repairs();
    if superuser && !builtin.is_empty() {
        tracing::info!(
            database,
            count = builtin.len(),
            "restricting built-in functions"
        );
        client
            .batch_execute(&builtin.join(";\n"))
            .await
            .context("taking large-object functions away from PUBLIC")?;
    }

    // From here on act as the owner: REVOKE only removes grants made by the role running it,
    // and migrations must create objects the owner role owns.
    client
        .batch_execute(&format!("SET ROLE {}", quote_ident(&names.owner)))
        .await
        .context(format!("switching to role {:?}", names.owner))?;
    if before.schema_missing {
        tracing::info!(database, "recreating schema public");
        client
            .batch_execute("CREATE SCHEMA IF NOT EXISTS public")
            .await
            .context("recreating schema public")?;
    }

    // Pending migrations and the privilege repair share one transaction: a table a migration
    // adds is never visible with the default privileges (a secrets table readable by every
    // group), and members never see a moment with privileges revoked but not re-granted.
    let mut repair = RepairPrivileges { database, names };
    let applied =
        usualstore_schema::apply_pending_with(client, usualstore_schema::migrations(), &mut repair)
            .await?;
    if !applied.is_empty() {
        tracing::info!(database, versions = ?applied, "applied store schema migrations");
    }
    client
        .batch_execute("RESET ROLE")
        .await
        .context("switching back from the owner role")?;
    Ok(())
}

struct RepairPrivileges<'a> {
    database: &'a str,
    names: &'a RoleNames,
}

impl usualstore_schema::BeforeCommit for RepairPrivileges<'_> {
    type Error = TenantError;

    async fn before_commit(&mut self, transaction: &Transaction<'_>) -> Result<(), TenantError> {
        repair_privileges(transaction, self.database, self.names).await
    }
}

/// Inspects (migrations may have added tables, re-owning rewrote ACLs) and makes every ACL of the
/// tenant's own objects match the model, as the owner role. PostgreSQL's error names the object
/// when one statement fails.
async fn repair_privileges(
    client: &Transaction<'_>,
    database: &str,
    names: &RoleNames,
) -> Result<(), TenantError> {
    let objects = inspect_tenant_objects(client.client(), &names.owner).await?;
    let statements: Vec<String> = assess(database, names, &objects)
        .acl
        .iter()
        .flat_map(|drift| drift.repair_statements(&names.owner))
        .collect();
    if statements.is_empty() {
        return Ok(());
    }
    for statement in &statements {
        tracing::debug!(database, %statement, "repairing privileges");
    }
    client
        .batch_execute(&statements.join(";\n"))
        .await
        .context("repairing privileges")?;
    tracing::info!(database, count = statements.len(), "privileges converged");
    Ok(())
}
