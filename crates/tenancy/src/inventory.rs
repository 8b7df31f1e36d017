//! What is on a server, with no registry: every database that carries usualstore's marker (or,
//! half-created, is owned by the owner role usualstore made for it) is a tenant.

use futures_util::{StreamExt, stream};
use tokio_postgres::types::Type;

use crate::error::{DbResultExt, TenantError};
use crate::metadata::{DatabaseComment, TenantState, role_comment_matches};
use crate::names::{RoleKind, RoleNames};
use crate::server::Server;
use crate::service_plan::ServicePlan;

/// Which tenants a listing keeps; `None` keeps all.
#[derive(Debug, Clone, Copy, Default)]
pub struct TenantFilter<'a> {
    pub plan: Option<ServicePlan>,
    pub name_prefix: Option<&'a str>,
}

/// One tenant as a listing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSummary {
    pub database_name: String,
    /// From the database comment; `None` if the comment lost it (or a create stopped before it).
    pub tenant_name: Option<String>,
    pub plan: Option<ServicePlan>,
    pub connection_limit: i32,
    /// Highest applied store schema migration; `None` when the tenant's database could not be
    /// read (a create stopped half-way, its connection limit reached, ...).
    pub schema_version: Option<i32>,
    /// `Provisioning` for a create that has not finished (or crashed half-way).
    pub status: Option<TenantState>,
}

/// Every tenant on the server that `filter` keeps, by database name. The schema version lives
/// inside each tenant's database: up to `parallel` of them are opened at a time.
pub async fn list_tenants(
    server: &Server,
    filter: TenantFilter<'_>,
    parallel: usize,
) -> Result<Vec<TenantSummary>, TenantError> {
    let maintenance = server.read_session().await?;
    let rows = maintenance
        .query_typed(
            "SELECT d.datname, pg_catalog.shobj_description(d.oid, 'pg_database'), d.datconnlimit, \
                    r.rolname, pg_catalog.shobj_description(r.oid, 'pg_authid') \
             FROM pg_catalog.pg_database d JOIN pg_catalog.pg_roles r ON r.oid = d.datdba \
             WHERE NOT d.datistemplate AND d.datname LIKE $1 \
             ORDER BY d.datname",
            &[(&like_prefix(filter.name_prefix), Type::TEXT)],
        )
        .await
        .context("listing the server's databases");
    maintenance.release().await;
    let mut tenants = Vec::new();
    for row in rows? {
        let database: String = row.try_get(0).context("reading a database name")?;
        let comment: Option<String> = row.try_get(1).context("reading a database comment")?;
        let connection_limit: i32 = row.try_get(2).context("reading a connection limit")?;
        let owner: String = row.try_get(3).context("reading a database owner")?;
        let owner_comment: Option<String> = row.try_get(4).context("reading a role comment")?;
        let marker = match DatabaseComment::parse(comment.as_deref()) {
            Some(marker) => marker,
            // Created, but stopped before its comment: ours if our owner role owns it.
            None if owner == RoleNames::for_database(&database).owner
                && role_comment_matches(owner_comment.as_deref(), &database, RoleKind::Owner) =>
            {
                DatabaseComment {
                    tenant_name: None,
                    plan: None,
                    status: Some(TenantState::Provisioning),
                }
            }
            None => continue,
        };
        if filter.plan.is_some() && marker.plan != filter.plan {
            continue;
        }
        tenants.push(TenantSummary {
            database_name: database,
            tenant_name: marker.tenant_name,
            plan: marker.plan,
            connection_limit,
            schema_version: None,
            status: marker.status,
        });
    }
    let databases: Vec<String> = tenants.iter().map(|t| t.database_name.clone()).collect();
    let versions: Vec<Option<i32>> = stream::iter(databases)
        .map(|database| async move { schema_version(server, &database).await })
        .buffered(parallel.max(1))
        .collect()
        .await;
    for (tenant, version) in tenants.iter_mut().zip(versions) {
        tenant.schema_version = version;
    }
    Ok(tenants)
}

/// `prefix%` with LIKE's own wildcards in the prefix escaped (`_` is common in tenant names).
fn like_prefix(prefix: Option<&str>) -> String {
    let escaped: String = prefix
        .unwrap_or_default()
        .chars()
        .flat_map(|c| match c {
            '\\' | '%' | '_' => vec!['\\', c],
            other => vec![other],
        })
        .collect();
    format!("{escaped}%")
}

/// The tenant's applied schema version, or `None` (logged) when its database cannot be read.
async fn schema_version(server: &Server, database: &str) -> Option<i32> {
    let session = match server.connect_to(database).await {
        Ok(session) => session,
        Err(error) => {
            tracing::warn!(database, %error, "cannot read the schema version of a tenant");
            return None;
        }
    };
    let version = usualstore_schema::applied_version(&session).await;
    session.close().await;
    match version {
        Ok(version) => Some(version),
        Err(error) => {
            tracing::warn!(database, %error, "cannot read the schema version of a tenant");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::like_prefix;

    #[test]
    fn like_wildcards_in_a_prefix_are_literal() {
        assert_eq!(like_prefix(None), "%");
        assert_eq!(like_prefix(Some("shop_")), "shop\\_%");
        assert_eq!(like_prefix(Some("a%b\\")), "a\\%b\\\\%");
    }
}
