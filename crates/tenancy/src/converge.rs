//! Bringing an existing tenant database to the model: roles, owner, limit, ownership of every
//! object, pending migrations, privileges, default privileges. Idempotent; never drops data.

use tokio_postgres::Client;

use crate::catalog::{fetch_database, inspect_tenant_objects};
use crate::database::{set_connection_limit, set_owner};
use crate::error::{DbResultExt, TenantError};
use crate::model::assess;
use crate::names::RoleNames;
use crate::roles::{RoleState, ensure_operator_membership, ensure_roles, reset_role, role_states};
use crate::server::{Server, Session};
use crate::sql::quote_ident;
use crate::tenant::TenantSpec;

/// Converges the tenant `spec` describes; its database must exist. `maintenance` is the
/// operator's session on the maintenance database. Returns the session in the tenant database,
/// back to the operator's role, so the caller's read-back does not pay for another connection.
pub(crate) async fn converge(
    server: &Server,
    maintenance: &mut Session,
    spec: &TenantSpec,
) -> Result<Session, TenantError> {
    let database = spec.database_name.as_str();
    let names = RoleNames::for_database(database);

    let mut recreated = Vec::new();
    ensure_roles(maintenance, database, &names, &mut recreated).await?;
    if !recreated.is_empty() {
        tracing::info!(database, roles = ?recreated, "recreated missing group roles");
    }
    for (_, state) in role_states(maintenance, database, &names).await? {
        if let RoleState::Ours(row) = state {
            reset_role(maintenance, &row).await?;
        }
    }
    ensure_operator_membership(maintenance, &names.owner).await?;

    let Some(row) = fetch_database(maintenance, database).await? else {
        return Err(TenantError::NotFound {
            database: database.to_owned(),
        });
    };
    if row.owner != names.owner {
        set_owner(maintenance, database, &names.owner).await?;
    }
    let limit = spec.plan.connection_limit();
    if row.connection_limit != limit {
        set_connection_limit(maintenance, database, limit).await?;
    }

    // One session in the tenant database at a time: a non-superuser operator's sessions count
    // against the tenant's connection limit.
    let mut tenant_db = server.connect_to(database).await?;
    match converge_inside(&mut tenant_db, database, &names).await {
        Ok(()) => Ok(tenant_db),
        Err(error) => {
            tenant_db.close().await;
            Err(error)
        }
    }
}

async fn converge_inside(
    client: &mut Client,
    database: &str,
    names: &RoleNames,
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

    let applied = usualstore_schema::apply_pending(client, usualstore_schema::migrations()).await?;
    if !applied.is_empty() {
        tracing::info!(database, versions = ?applied, "applied store schema migrations");
    }

    // Inspect again: migrations may have added tables, re-owning rewrote ACLs.
    let objects = inspect_tenant_objects(client, &names.owner).await?;
    let after = assess(database, names, &objects);
    let statements: Vec<String> = after
        .acl
        .iter()
        .flat_map(|drift| drift.repair_statements(&names.owner))
        .collect();
    if !statements.is_empty() {
        for statement in &statements {
            tracing::debug!(database, %statement, "repairing privileges");
        }
        // One transaction, so members never see a moment with privileges revoked but not
        // re-granted; one round trip for all of it (a new tenant needs about seventy).
        // PostgreSQL's error names the object when one statement fails.
        let transaction = client
            .transaction()
            .await
            .context("starting the privileges transaction")?;
        transaction
            .batch_execute(&statements.join(";\n"))
            .await
            .context("repairing privileges")?;
        transaction
            .commit()
            .await
            .context("committing the privileges")?;
        tracing::info!(database, count = statements.len(), "privileges converged");
    }
    client
        .batch_execute("RESET ROLE")
        .await
        .context("switching back from the owner role")?;
    Ok(())
}
