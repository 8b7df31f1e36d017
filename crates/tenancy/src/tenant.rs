//! The tenant lifecycle the `usualstore_tenant` resource drives: create, read, update, delete.

use tokio_postgres::Client;
use tokio_postgres::types::Type;

use crate::catalog::{DatabaseRow, TenantObjects, fetch_database, inspect_tenant_objects};
use crate::converge::converge;
use crate::database::{
    CreateOutcome, Ownership, classify, create_database, drop_database, set_comment,
};
use crate::error::{DbResultExt, TenantError};
use crate::metadata::TenantState;
use crate::model::assess;
use crate::names::{RoleKind, RoleNames, validate_database_name, validate_tenant_name};
use crate::roles::{
    RoleState, describe_role_drift, drop_our_roles, ensure_operator_membership, ensure_roles,
    our_role, role_states,
};
use crate::server::{Server, Session};
use crate::service_plan::ServicePlan;
use crate::user::drop_users_of;
use crate::waits::{AdvisoryKey, LockTarget};

/// First key of the per-tenant session advisory lock (second key: `hashtext(database)`):
/// create, update and delete of one tenant never run at the same time, even from several
/// provider processes.
const TENANT_LOCK_CLASS: i32 = 0x7573_0002;

/// What the configuration asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSpec {
    pub database_name: String,
    pub tenant_name: String,
    pub plan: ServicePlan,
}

impl TenantSpec {
    pub fn validate(&self) -> Result<(), TenantError> {
        validate_database_name(&self.database_name)?;
        validate_tenant_name(&self.tenant_name)?;
        Ok(())
    }
}

/// What PostgreSQL says about a tenant (Read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantStatus {
    pub database_name: String,
    /// From the database comment; `None` if the comment lost it.
    pub tenant_name: Option<String>,
    /// From the database comment; `None` if missing or not a known plan.
    pub plan: Option<ServicePlan>,
    /// The database's `CONNECTION LIMIT` as it is now (compare with `plan`).
    pub connection_limit: i32,
    /// Highest applied store schema migration (0: none).
    pub schema_version: i32,
    /// Each group role's name, `None` when it is missing or not a usualstore role of this tenant.
    pub owner_role: Option<String>,
    pub admin_role: Option<String>,
    pub developer_role: Option<String>,
    pub customer_role: Option<String>,
    /// True when ownership, privileges, default privileges and the group roles' attributes all
    /// match the model; `drift` lists every difference otherwise.
    pub privileges_in_sync: bool,
    pub drift: Vec<String>,
    /// What differs from the model but is beyond the operator's rights to repair (a
    /// non-superuser cannot restrict built-in functions); shown as warnings, not as drift.
    pub warnings: Vec<String>,
    pub status: Option<TenantState>,
}

impl TenantStatus {
    pub fn role(&self, kind: RoleKind) -> Option<&str> {
        match kind {
            RoleKind::Owner => self.owner_role.as_deref(),
            RoleKind::Admin => self.admin_role.as_deref(),
            RoleKind::Developer => self.developer_role.as_deref(),
            RoleKind::Customer => self.customer_role.as_deref(),
        }
    }
}

/// Reads the tenant: `Ok(None)` when the database does not exist, `NotManaged` when it exists
/// but is not ours. Opens one session on the maintenance database and, briefly, one in the
/// tenant database.
pub async fn read_tenant(
    server: &Server,
    database: &str,
) -> Result<Option<TenantStatus>, TenantError> {
    validate_database_name(database)?;
    let maintenance = server.read_session().await?;
    let result = read_with(server, &maintenance, None, database).await;
    maintenance.release().await;
    result
}

/// Creates the tenant, or completes one whose earlier create stopped half-way.
pub async fn create_tenant(
    server: &Server,
    spec: &TenantSpec,
) -> Result<TenantStatus, TenantError> {
    spec.validate()?;
    server
        .on_maintenance(async |session| create_with(server, session, spec).await)
        .await
}

/// Converges an existing tenant to `spec` and repairs drift; never recreates the database.
pub async fn update_tenant(
    server: &Server,
    spec: &TenantSpec,
) -> Result<TenantStatus, TenantError> {
    spec.validate()?;
    server
        .on_maintenance(async |session| update_with(server, session, spec).await)
        .await
}

/// Drops the tenant database and its group roles. A tenant that is already gone, wholly or in
/// part, is not an error; a database that is not ours is refused.
pub async fn delete_tenant(server: &Server, database: &str) -> Result<(), TenantError> {
    validate_database_name(database)?;
    server
        .on_maintenance(async |session| delete_with(server, session, database).await)
        .await
}

/// Session-level: held until the maintenance session closes at the end of the operation, or
/// released by the server if the connection is lost mid-way.
async fn lock_tenant(client: &Client, database: &str) -> Result<(), TenantError> {
    tracing::debug!(database, "waiting for the tenant lock");
    client
        .execute_typed(
            "SELECT pg_catalog.pg_advisory_lock($1, pg_catalog.hashtext($2))",
            &[(&TENANT_LOCK_CLASS, Type::INT4), (&database, Type::TEXT)],
        )
        .await
        .context(format!("waiting for the lock on tenant {database:?}"))
        .map_err(|error| {
            error.waiting_for(LockTarget::Advisory(AdvisoryKey::Named {
                class: TENANT_LOCK_CLASS,
                names: vec![database.to_owned()],
            }))
        })?;
    Ok(())
}

/// Whether `row` is ours, with the parsed comment.
async fn ownership(
    client: &Client,
    database: &str,
    row: &DatabaseRow,
) -> Result<Ownership, TenantError> {
    let names = RoleNames::for_database(database);
    let states = role_states(client, database, &names).await?;
    Ok(classify(database, row, our_role(&states, RoleKind::Owner)))
}

/// `tenant_db`: an open session in the tenant database to read through, if the caller has one;
/// otherwise one is opened for the read and closed after it.
async fn read_with(
    server: &Server,
    maintenance: &Client,
    tenant_db: Option<&Client>,
    database: &str,
) -> Result<Option<TenantStatus>, TenantError> {
    let names = RoleNames::for_database(database);
    // The maintenance database's catalog and the tenant's own are read side by side: two
    // sessions, so the round trips overlap (a refresh opens the tenant's session meanwhile).
    let server_side = async {
        tokio::try_join!(
            fetch_database(maintenance, database),
            role_states(maintenance, database, &names)
        )
    };
    let (server_side, inside) = match tenant_db {
        Some(client) => {
            let (server_side, inside) =
                tokio::join!(server_side, inspect_inside(client, &names.owner));
            (server_side?, Some(inside))
        }
        None => {
            let (server_side, session) = tokio::join!(server_side, server.connect_to(database));
            let server_side = server_side?;
            let inside = match (&server_side.0, session) {
                // Gone, or there but not ours: nothing inside to read.
                (None, Ok(session)) => {
                    session.close().await;
                    None
                }
                (None, Err(_)) => None,
                (Some(_), Ok(session)) => {
                    let inside = inspect_inside(&session, &names.owner).await;
                    session.close().await;
                    Some(inside)
                }
                (Some(_), Err(error)) => Some(Err(error)),
            };
            (server_side, inside)
        }
    };
    let (row, states) = server_side;
    let Some(row) = row else {
        return Ok(None);
    };
    let Ownership::Ours(comment) = classify(database, &row, our_role(&states, RoleKind::Owner))
    else {
        return Err(TenantError::NotManaged {
            database: database.to_owned(),
        });
    };

    let mut drift = Vec::new();
    if row.owner != names.owner {
        drift.push(format!(
            "database {database:?} is owned by {:?}, expected {:?}",
            row.owner, names.owner
        ));
    }
    for (kind, state) in &states {
        let name = names.get(*kind);
        match state {
            RoleState::Missing => drift.push(format!("role {name:?} is missing")),
            RoleState::Foreign => drift.push(format!(
                "role {name:?} exists but is not a usualstore role of this tenant"
            )),
            RoleState::Ours(role) => drift.extend(describe_role_drift(role)),
        }
    }

    let (objects, schema_version) = match inside {
        Some(inspected) => inspected?,
        None => {
            return Err(TenantError::NotFound {
                database: database.to_owned(),
            });
        }
    };
    let assessment = assess(database, &names, &objects);
    drift.extend(assessment.describe(row.operator_is_superuser));
    let warnings = assessment.unrepairable(row.operator_is_superuser);

    let role_name = |kind: RoleKind| our_role(&states, kind).map(|row| row.name.clone());
    Ok(Some(TenantStatus {
        database_name: database.to_owned(),
        tenant_name: comment.tenant_name,
        plan: comment.plan,
        connection_limit: row.connection_limit,
        schema_version,
        owner_role: role_name(RoleKind::Owner),
        admin_role: role_name(RoleKind::Admin),
        developer_role: role_name(RoleKind::Developer),
        customer_role: role_name(RoleKind::Customer),
        privileges_in_sync: drift.is_empty(),
        drift,
        warnings,
        status: comment.status,
    }))
}

async fn create_with(
    server: &Server,
    maintenance: &mut Session,
    spec: &TenantSpec,
) -> Result<TenantStatus, TenantError> {
    let database = spec.database_name.as_str();
    lock_tenant(maintenance, database).await?;

    let row = match fetch_database(maintenance, database).await? {
        Some(row) => {
            check_resumable(&ownership(maintenance, database, &row).await?, database)?;
            tracing::info!(database, "resuming a tenant whose create did not finish");
            row
        }
        None => {
            let mut created = Vec::new();
            let failure = match create_roles_and_database(server, maintenance, spec, &mut created)
                .await
            {
                Ok(CreateOutcome::Created) => None,
                // Created outside usualstore meanwhile: our own creates hold the tenant lock.
                Ok(CreateOutcome::AlreadyExists) => match fetch_database(maintenance, database)
                    .await?
                {
                    Some(row) => {
                        check_resumable(&ownership(maintenance, database, &row).await?, database)
                            .err()
                    }
                    None => None,
                },
                Err(error) => Some(error),
            };
            if let Some(error) = failure {
                undo_roles(maintenance, database, &created).await;
                return Err(error);
            }
            // Made just now, as the spec says.
            DatabaseRow {
                owner: RoleNames::for_database(database).owner,
                connection_limit: spec.plan.connection_limit(),
                comment: None,
                operator_is_superuser: server.operator_is_superuser(maintenance).await?,
            }
        }
    };

    set_comment(
        maintenance,
        database,
        &spec.tenant_name,
        spec.plan,
        TenantState::Provisioning,
    )
    .await?;
    let tenant_db = converge(server, maintenance, spec, &row).await?;
    let result = finish(server, maintenance, &tenant_db, spec).await;
    tenant_db.close().await;
    if result.is_ok() {
        tracing::info!(database, "tenant ready");
    }
    result
}

/// After a converge: reads the tenant back through the converge's session, then marks it ready.
///
/// The mark comes last so that nothing can fail between it and Terraform recording the result:
/// a create that fails or is killed before the mark leaves a tenant still provisioning, which
/// the next apply completes; after the mark, only the response itself is left.
async fn finish(
    server: &Server,
    maintenance: &Client,
    tenant_db: &Client,
    spec: &TenantSpec,
) -> Result<TenantStatus, TenantError> {
    let database = spec.database_name.as_str();
    let mut status = read_with(server, maintenance, Some(tenant_db), database)
        .await?
        .ok_or_else(|| TenantError::NotFound {
            database: database.to_owned(),
        })?;
    set_comment(
        maintenance,
        database,
        &spec.tenant_name,
        spec.plan,
        TenantState::Ready,
    )
    .await?;
    // What the comment now says.
    status.tenant_name = Some(spec.tenant_name.clone());
    status.plan = Some(spec.plan);
    status.status = Some(TenantState::Ready);
    Ok(status)
}

/// The objects inside the tenant database and its applied schema version, asked together.
async fn inspect_inside(
    tenant_db: &Client,
    owner: &str,
) -> Result<(TenantObjects, i32), TenantError> {
    let (objects, version) = tokio::try_join!(inspect_tenant_objects(tenant_db, owner), async {
        usualstore_schema::applied_version(tenant_db)
            .await
            .map_err(TenantError::from)
    })?;
    Ok((objects, version))
}

/// A create may only continue a tenant that is ours and still provisioning.
fn check_resumable(ownership: &Ownership, database: &str) -> Result<(), TenantError> {
    match ownership {
        Ownership::NotOurs => Err(TenantError::NotManaged {
            database: database.to_owned(),
        }),
        Ownership::Ours(comment) if comment.status == Some(TenantState::Provisioning) => Ok(()),
        Ownership::Ours(_) => Err(TenantError::AlreadyExists {
            database: database.to_owned(),
        }),
    }
}

async fn create_roles_and_database(
    server: &Server,
    maintenance: &mut Session,
    spec: &TenantSpec,
    created: &mut Vec<String>,
) -> Result<CreateOutcome, TenantError> {
    let database = spec.database_name.as_str();
    let names = RoleNames::for_database(database);
    ensure_roles(maintenance, database, &names, created).await?;
    ensure_operator_membership(server, maintenance, &names.owner).await?;
    create_database(
        maintenance,
        database,
        &names.owner,
        spec.plan.connection_limit(),
    )
    .await
}

/// Best effort: the error that made us undo is what the caller needs to see.
async fn undo_roles(maintenance: &mut Session, database: &str, created: &[String]) {
    if created.is_empty() {
        return;
    }
    let names = RoleNames::for_database(database);
    let to_drop: Vec<(RoleKind, &str)> = names
        .iter()
        .rev()
        .filter(|(_, name)| created.iter().any(|c| c == name))
        .collect();
    match drop_our_roles(maintenance, database, &to_drop).await {
        Ok(dropped) => {
            tracing::info!(database, roles = ?dropped, "dropped the roles this create made")
        }
        Err(error) => tracing::warn!(database, %error, "could not drop the roles this create made"),
    }
}

async fn update_with(
    server: &Server,
    maintenance: &mut Session,
    spec: &TenantSpec,
) -> Result<TenantStatus, TenantError> {
    let database = spec.database_name.as_str();
    lock_tenant(maintenance, database).await?;
    let Some(row) = fetch_database(maintenance, database).await? else {
        return Err(TenantError::NotFound {
            database: database.to_owned(),
        });
    };
    if let Ownership::NotOurs = ownership(maintenance, database, &row).await? {
        return Err(TenantError::NotManaged {
            database: database.to_owned(),
        });
    }
    let tenant_db = converge(server, maintenance, spec, &row).await?;
    let result = finish(server, maintenance, &tenant_db, spec).await;
    tenant_db.close().await;
    if result.is_ok() {
        tracing::info!(database, "tenant converged");
    }
    result
}

async fn delete_with(
    server: &Server,
    maintenance: &mut Session,
    database: &str,
) -> Result<(), TenantError> {
    lock_tenant(maintenance, database).await?;
    let names = RoleNames::for_database(database);
    if let Some(row) = fetch_database(maintenance, database).await? {
        if let Ownership::NotOurs = ownership(maintenance, database, &row).await? {
            return Err(TenantError::NotManaged {
                database: database.to_owned(),
            });
        }
        // A non-superuser operator drops the database as a member of its owner. Privileges
        // the group roles hold inside the database vanish with it, so no DROP OWNED is needed
        // (and a non-superuser could not run it for roles it is not a member of).
        if row.owner == names.owner {
            ensure_operator_membership(server, maintenance, &names.owner).await?;
        }
        drop_database(maintenance, database).await?;
    } else {
        tracing::info!(database, "database already gone; dropping leftover roles");
    }
    // Login users of the tenant would be orphans (with passwords) once their tenant is gone.
    drop_users_of(server, maintenance, database).await?;
    let roles: Vec<(RoleKind, &str)> = names.iter().rev().collect();
    let dropped = drop_our_roles(maintenance, database, &roles).await?;
    tracing::info!(database, roles = ?dropped, "tenant deleted");
    Ok(())
}
