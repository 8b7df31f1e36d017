//! Making the server fit to host tenants (the `usualstore_server` resource): PUBLIC loses CONNECT
//! (and TEMPORARY) on the maintenance database, CONNECT on `template1`, CREATE on every schema of
//! the maintenance database and EXECUTE on the built-ins that create large objects there. Then no
//! tenant login can connect anywhere but to its own database, and nothing it could create lies on a
//! provider session's path. The provider's own role keeps CONNECT on the maintenance database.

use std::fmt;

use tokio_postgres::Client;

use crate::catalog::LARGE_OBJECT_CREATORS;
use crate::error::{DbResultExt, TenantError};
use crate::server::Server;
use crate::sql::quote_ident;

/// A grant that lets a tenant's login past its own database.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Opening {
    /// The provider's role could only connect through PUBLIC's grant: it gets one of its own
    /// before PUBLIC's goes.
    OperatorConnectsThroughPublic { database: String, role: String },
    /// PUBLIC may connect to (or create temporary objects in) a database that is no tenant's.
    PublicDatabase { database: String, privilege: String },
    /// PUBLIC may create objects in a schema of the maintenance database.
    PublicCreate { database: String, schema: String },
    /// PUBLIC may run a built-in that creates large objects in the maintenance database.
    PublicLargeObjects { database: String, function: String },
}

impl fmt::Display for Opening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Opening::OperatorConnectsThroughPublic { database, role } => write!(
                f,
                "role {role:?} connects to database {database:?} only through PUBLIC's CONNECT"
            ),
            Opening::PublicDatabase {
                database,
                privilege,
            } => write!(f, "PUBLIC has {privilege} on database {database:?}"),
            Opening::PublicCreate { database, schema } => write!(
                f,
                "PUBLIC may create objects in schema {schema:?} of database {database:?}"
            ),
            Opening::PublicLargeObjects { database, function } => write!(
                f,
                "PUBLIC may execute {function} (creates large objects) in database {database:?}"
            ),
        }
    }
}

impl Opening {
    /// The statement that closes it, run as the operator (a superuser's REVOKE acts as the
    /// object's owner).
    fn repair(&self) -> String {
        match self {
            Opening::OperatorConnectsThroughPublic { database, .. } => format!(
                "GRANT CONNECT ON DATABASE {} TO CURRENT_USER",
                quote_ident(database)
            ),
            Opening::PublicDatabase {
                database,
                privilege,
            } => format!(
                "REVOKE {privilege} ON DATABASE {} FROM PUBLIC",
                quote_ident(database)
            ),
            Opening::PublicCreate { schema, .. } => {
                format!(
                    "REVOKE CREATE ON SCHEMA {} FROM PUBLIC",
                    quote_ident(schema)
                )
            }
            Opening::PublicLargeObjects { function, .. } => {
                format!("REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC")
            }
        }
    }
}

/// What `usualstore_server` sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockdownStatus {
    pub maintenance_database: String,
    /// Sorted so that the operator's own grant comes before PUBLIC's go.
    pub openings: Vec<Opening>,
}

impl LockdownStatus {
    pub fn in_sync(&self) -> bool {
        self.openings.is_empty()
    }

    /// Whether a tenant's login may still connect to the maintenance database.
    pub fn public_can_connect(&self) -> bool {
        self.openings.iter().any(|opening| {
            matches!(opening, Opening::PublicDatabase { database, privilege }
                if *database == self.maintenance_database && privilege == "CONNECT")
        })
    }
}

/// Reads what PUBLIC may still do outside the tenants.
pub async fn read_lockdown(server: &Server) -> Result<LockdownStatus, TenantError> {
    let session = server.read_session().await?;
    let result = inspect(&session, server.maintenance_database()).await;
    session.release().await;
    result
}

/// Whether PUBLIC, and so every tenant's login, may connect to the maintenance database: the one
/// opening a plan warns about while no `usualstore_server` has closed it.
pub async fn public_may_connect(server: &Server) -> Result<bool, TenantError> {
    let session = server.read_session().await?;
    let result = session
        .query_typed_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_database d, \
                 pg_catalog.aclexplode(COALESCE(d.datacl, pg_catalog.acldefault('d', d.datdba))) a \
             WHERE d.datname = current_database() AND a.grantee = 0 \
               AND a.privilege_type = 'CONNECT')",
            &[],
        )
        .await
        .context("reading who may connect to the maintenance database");
    session.release().await;
    Ok(result?.get(0))
}

/// Closes every opening, then reads back. A role that may not close one (neither superuser nor
/// owner: PostgreSQL then revokes nothing, with only a warning) gets an error saying what to run
/// as the owner.
pub async fn apply_lockdown(server: &Server) -> Result<LockdownStatus, TenantError> {
    server
        .on_maintenance(async |session| lock_down(session, server.maintenance_database()).await)
        .await
}

/// Gives PUBLIC back CONNECT and TEMPORARY on the maintenance database and CONNECT on
/// `template1`, PostgreSQL's defaults. Schema CREATE and the large-object functions stay
/// restricted: PostgreSQL 15 and later do not grant the former either, and nothing needs the latter.
pub async fn remove_lockdown(server: &Server) -> Result<(), TenantError> {
    let database = quote_ident(server.maintenance_database());
    tracing::info!("giving PUBLIC back CONNECT on the maintenance database and template1");
    server
        .on_maintenance(async |session| {
            session
                .batch_execute(&format!(
                    "GRANT CONNECT, TEMPORARY ON DATABASE {database} TO PUBLIC; \
                     GRANT CONNECT ON DATABASE template1 TO PUBLIC"
                ))
                .await
                .context("giving PUBLIC back CONNECT")
        })
        .await
}

async fn lock_down(client: &Client, database: &str) -> Result<LockdownStatus, TenantError> {
    let before = inspect(client, database).await?;
    if before.in_sync() {
        return Ok(before);
    }
    let statements: Vec<String> = before.openings.iter().map(Opening::repair).collect();
    for statement in &statements {
        tracing::info!(%statement, "locking the server down");
    }
    client
        .batch_execute(&statements.join(";\n"))
        .await
        .context("taking PUBLIC's privileges away outside the tenants")?;
    let after = inspect(client, database).await?;
    if after.in_sync() {
        return Ok(after);
    }
    let remaining: Vec<String> = after.openings.iter().map(ToString::to_string).collect();
    let fixes: Vec<String> = after.openings.iter().map(Opening::repair).collect();
    Err(TenantError::NotPermitted {
        what: format!(
            "closing what PUBLIC may do outside the tenants ({})",
            remaining.join("; ")
        ),
        fix: format!(
            "only a superuser or the objects' owner can; have one run: {}",
            fixes.join("; ")
        ),
    })
}

/// `database` is the one `client` is connected to: the maintenance database.
async fn inspect(client: &Client, database: &str) -> Result<LockdownStatus, TenantError> {
    let database = database.to_owned();
    let creators = LARGE_OBJECT_CREATORS
        .iter()
        .map(|name| format!("'{name}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT 'operator', current_database()::text, current_user::text \
         WHERE NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) \
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_database d, \
                   pg_catalog.aclexplode(COALESCE(d.datacl, pg_catalog.acldefault('d', d.datdba))) a \
                   WHERE d.datname = current_database() AND a.privilege_type = 'CONNECT' \
                     AND a.grantee <> 0 AND pg_catalog.pg_has_role(current_user, a.grantee, 'USAGE')) \
         UNION ALL \
         SELECT 'database', d.datname::text, a.privilege_type \
         FROM pg_catalog.pg_database d, \
              pg_catalog.aclexplode(COALESCE(d.datacl, pg_catalog.acldefault('d', d.datdba))) a \
         WHERE a.grantee = 0 AND ((d.datname = current_database() \
                                   AND a.privilege_type IN ('CONNECT', 'TEMPORARY')) \
                                  OR (d.datname = 'template1' AND a.privilege_type = 'CONNECT')) \
         UNION ALL \
         SELECT 'schema', n.nspname::text, a.privilege_type \
         FROM pg_catalog.pg_namespace n, \
              pg_catalog.aclexplode(COALESCE(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a \
         WHERE a.grantee = 0 AND a.privilege_type = 'CREATE' \
         UNION ALL \
         SELECT 'function', pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, \
                    pg_catalog.pg_get_function_identity_arguments(p.oid)), a.privilege_type \
         FROM pg_catalog.pg_proc p \
         JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace AND n.nspname = 'pg_catalog', \
              pg_catalog.aclexplode(COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner))) a \
         WHERE a.grantee = 0 AND p.proname IN ({creators})"
    );
    let rows = client
        .query_typed(&sql, &[])
        .await
        .context("reading what PUBLIC may do outside the tenants")?;
    let mut openings: Vec<Opening> = rows
        .iter()
        .filter_map(|row| {
            let kind: String = row.get(0);
            let object: String = row.get(1);
            let detail: String = row.get(2);
            Some(match kind.as_str() {
                "operator" => Opening::OperatorConnectsThroughPublic {
                    database: object,
                    role: detail,
                },
                "database" => Opening::PublicDatabase {
                    database: object,
                    privilege: detail,
                },
                "schema" => Opening::PublicCreate {
                    database: database.clone(),
                    schema: object,
                },
                "function" => Opening::PublicLargeObjects {
                    database: database.clone(),
                    function: object,
                },
                _ => return None,
            })
        })
        .collect();
    openings.sort();
    // The operator's own grant only matters while PUBLIC's is about to go.
    let public_connect = openings.iter().any(|opening| {
        matches!(opening, Opening::PublicDatabase { database: d, privilege } if *d == database && privilege == "CONNECT")
    });
    if !public_connect {
        openings
            .retain(|opening| !matches!(opening, Opening::OperatorConnectsThroughPublic { .. }));
    }
    Ok(LockdownStatus {
        maintenance_database: database,
        openings,
    })
}
