//! `data "usualstore_tenant_user"`: one login user of a tenant, never with its password.

use usualstore_cty::Value;

use super::DataSource;
use crate::config::ProviderContext;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::model::{Attr, resource_model};
use crate::resources::{Refreshed, attribute_diag, check_attribute};
use crate::schema::{Schema, computed, required};

pub const TYPE_NAME: &str = "usualstore_tenant_user";

resource_model! {
    /// The attributes of `data "usualstore_tenant_user"`.
    pub struct TenantUserDataModel {
        tenant: String => required("Database name of the tenant."),
        username: String => required("Login name of the user."),
        id: String => computed("`<tenant>/<username>`."),
        role: String => computed(
            "`admin`, `developer` or `customer`: the tenant group the login is in; null when it is in none.",
        ),
        email: String => computed("Contact address kept for the login inside the tenant's database, if any."),
        connection_limit: i64 => computed("The login's own connection limit; -1 for none."),
        privileges_in_sync: bool => computed(
            "`false` when role flags, extra memberships or an unfinished create differ from a plain login of \
             one group.",
        ),
    }
}

pub struct TenantUserDataSource {
    schema: Schema,
}

impl TenantUserDataSource {
    pub fn new() -> Self {
        Self {
            schema: Schema {
                version: 0,
                description: "One login user of a tenant, with its role and tenant; never its password or \
                    connection strings, which only the state that manages the user holds.",
                attributes: TenantUserDataModel::attributes(),
            },
        }
    }
}

#[tonic::async_trait]
impl DataSource for TenantUserDataSource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        let model = match TenantUserDataModel::from_value(config) {
            Ok(model) => model,
            Err(diagnostics) => return diagnostics,
        };
        let mut diagnostics = Diagnostics::default();
        check_attribute(
            &mut diagnostics,
            "tenant",
            &model.tenant,
            usualstore_tenancy::validate_database_name,
        );
        check_attribute(&mut diagnostics, "username", &model.username, |name| {
            usualstore_tenancy::validate_identifier(name).map_err(|error| error.to_string())
        });
        diagnostics
    }

    async fn read(&self, ctx: &ProviderContext, config: &Value) -> Result<Refreshed, Diagnostics> {
        let model = TenantUserDataModel::from_value(config)?;
        let (Attr::Known(tenant), Attr::Known(username)) = (&model.tenant, &model.username) else {
            return Err(attribute_diag("username", "tenant and username must be known").into());
        };
        let status = usualstore_tenancy::read_user(&ctx.server, tenant, username, None)
            .await
            .map_err(|error| {
                Diagnostics::from(Diagnostic::error(
                    format!("Could not read user {username:?} of tenant {tenant:?}"),
                    error.to_string(),
                ))
            })?
            .ok_or_else(|| {
                Diagnostics::from(attribute_diag(
                    "username",
                    format!("no login user {username:?} of tenant {tenant:?} on this server"),
                ))
            })?;
        let found = TenantUserDataModel {
            tenant: Attr::Known(status.database.clone()),
            username: Attr::Known(status.username.clone()),
            id: Attr::Known(format!("{}/{}", status.database, status.username)),
            role: Attr::from_option(status.role.map(|role| role.as_str().to_owned())),
            email: Attr::from_option(status.email.clone()),
            connection_limit: Attr::Known(i64::from(status.connection_limit)),
            privileges_in_sync: Attr::Known(status.privileges_in_sync()),
        };
        Ok(found.to_value().into())
    }
}
