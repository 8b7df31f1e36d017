//! `data "usualstore_tenant"`: one tenant of the provider's server, by database name.

use usualstore_cty::Value;

use super::DataSource;
use crate::config::ProviderContext;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::model::{Attr, resource_model};
use crate::resources::{Refreshed, attribute_diag, check_attribute};
use crate::schema::{Schema, computed, required};

pub const TYPE_NAME: &str = "usualstore_tenant";

resource_model! {
    /// The attributes of `data "usualstore_tenant"`.
    pub struct TenantDataModel {
        database_name: String => required("Name of the tenant database."),
        tenant_name: String => computed("The customer's display name, from the database comment."),
        plan: String => computed("`free`, `starter`, `professional` or `enterprise`, from the database comment."),
        connection_limit: i64 => computed("The database's connection limit, as it is now."),
        schema_version: i64 => computed("Version of the store schema applied to the database."),
        owner_role: String => computed("Group role that owns the database; null when missing."),
        admin_role: String => computed("Group role of admin logins; null when missing."),
        developer_role: String => computed("Group role of developer logins; null when missing."),
        customer_role: String => computed("Group role of customer logins; null when missing."),
        status: String => computed(
            "`ready`, or `provisioning` while a create has not finished (or stopped half-way).",
        ),
        privileges_in_sync: bool => computed(
            "`false` when privileges, role flags or ownership differ from the tenant model (applying the \
             tenant's `usualstore_tenant` repairs them).",
        ),
    }
}

pub struct TenantDataSource {
    schema: Schema,
}

impl TenantDataSource {
    pub fn new() -> Self {
        Self {
            schema: Schema {
                version: 0,
                description: "One tenant of the provider's server, by database name, as a refresh of its \
                    `usualstore_tenant` would see it: for configurations that use a tenant another state manages.",
                attributes: TenantDataModel::attributes(),
            },
        }
    }
}

#[tonic::async_trait]
impl DataSource for TenantDataSource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        let model = match TenantDataModel::from_value(config) {
            Ok(model) => model,
            Err(diagnostics) => return diagnostics,
        };
        let mut diagnostics = Diagnostics::default();
        check_attribute(
            &mut diagnostics,
            "database_name",
            &model.database_name,
            usualstore_tenancy::validate_database_name,
        );
        diagnostics
    }

    async fn read(&self, ctx: &ProviderContext, config: &Value) -> Result<Refreshed, Diagnostics> {
        let model = TenantDataModel::from_value(config)?;
        let Attr::Known(database) = &model.database_name else {
            return Err(attribute_diag("database_name", "must be known").into());
        };
        let status = usualstore_tenancy::read_tenant(&ctx.server, database)
            .await
            .map_err(|error| {
                Diagnostics::from(
                    Diagnostic::error(
                        format!("Could not read tenant {database:?}"),
                        error.to_string(),
                    )
                    .on_attribute("database_name"),
                )
            })?
            .ok_or_else(|| {
                Diagnostics::from(attribute_diag(
                    "database_name",
                    format!("no database {database:?} on this server"),
                ))
            })?;
        let text = |value: Option<&str>| Attr::from_option(value.map(str::to_owned));
        let found = TenantDataModel {
            database_name: Attr::Known(status.database_name.clone()),
            tenant_name: text(status.tenant_name.as_deref()),
            plan: text(status.plan.map(|plan| plan.as_str())),
            connection_limit: Attr::Known(i64::from(status.connection_limit)),
            schema_version: Attr::Known(i64::from(status.schema_version)),
            owner_role: text(status.owner_role.as_deref()),
            admin_role: text(status.admin_role.as_deref()),
            developer_role: text(status.developer_role.as_deref()),
            customer_role: text(status.customer_role.as_deref()),
            status: text(status.status.map(|state| state.as_str())),
            privileges_in_sync: Attr::Known(status.privileges_in_sync),
        };
        let warnings = status
            .warnings
            .iter()
            .map(|warning| Diagnostic::warning(format!("Tenant {database:?}"), warning.clone()))
            .collect::<Vec<_>>();
        Ok(Refreshed {
            state: found.to_value(),
            warnings: Diagnostics(warnings),
        })
    }
}
