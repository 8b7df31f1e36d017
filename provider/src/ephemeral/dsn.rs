//! `ephemeral "usualstore_dsn"`: a login user's full connection strings, password included, as
//! ephemeral values, for write-only arguments of other providers (a secret store, a Kubernetes
//! secret) when the user's password is itself write-only.

use usualstore_cty::Value;

use super::EphemeralResource;
use crate::config::ProviderContext;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::model::{Attr, resource_model};
use crate::resources::{attribute_diag, check_attribute, password_rule, username_rule};
use crate::schema::{Schema, computed, optional, required};

pub const TYPE_NAME: &str = "usualstore_dsn";

resource_model! {
    /// The attributes of `ephemeral "usualstore_dsn"`.
    pub struct DsnModel {
        tenant: String => required("Database name of the tenant (`usualstore_tenant.x.database_name`)."),
        username: String => required("Login user of that tenant (`usualstore_tenant_user.x.username`)."),
        user_id: String => optional(
            "`usualstore_tenant_user.x.id`, when the user is created in the same run: Terraform opens an ephemeral \
             resource while planning as soon as its arguments are known, which `tenant` and `username` are before \
             the user exists; a new user's `id` is not, so with it the DSN is opened once the user is there. Must \
             be `<tenant>/<username>` of the two above.",
        ),
        password: String => required(
            "The user's password, from an ephemeral variable or another ephemeral source, put into the strings as \
             given: opening the DSN does not compare it with the server's (which would stop the very plan that \
             repairs a password changed outside Terraform).",
        )
        .sensitive(),
        dsn: String => computed(
            "libpq key/value connection string with the password, like `usualstore_tenant_user`'s `dsn`.",
        )
        .sensitive(),
        url: String => computed("The same connection as a percent-encoded `postgres://` URL.").sensitive(),
    }
}

pub struct DsnEphemeral {
    schema: Schema,
}

impl DsnEphemeral {
    pub fn new() -> Self {
        Self {
            schema: Schema {
                version: 0,
                description: "The connection strings of an existing login user with its password, as ephemeral \
                    values that never reach state or plan (Terraform 1.10 or later): for passing into write-only \
                    arguments of other resources when the user's password is write-only.",
                attributes: DsnModel::attributes(),
            },
        }
    }
}

impl DsnModel {
    fn check(&self) -> Diagnostics {
        let mut diagnostics = Diagnostics::default();
        check_attribute(&mut diagnostics, "tenant", &self.tenant, |name| {
            usualstore_tenancy::validate_database_name(name)
        });
        check_attribute(&mut diagnostics, "username", &self.username, username_rule);
        check_attribute(&mut diagnostics, "password", &self.password, password_rule);
        if let (Attr::Known(tenant), Attr::Known(username), Attr::Known(user_id)) =
            (&self.tenant, &self.username, &self.user_id)
            && *user_id != format!("{tenant}/{username}")
        {
            diagnostics.push(attribute_diag(
                "user_id",
                format!(
                    "{user_id:?} is not the id of user {username:?} of tenant {tenant:?} (that is \
                     \"{tenant}/{username}\")"
                ),
            ));
        }
        diagnostics
    }
}

#[tonic::async_trait]
impl EphemeralResource for DsnEphemeral {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        match DsnModel::from_value(config) {
            Ok(model) => model.check(),
            Err(diagnostics) => diagnostics,
        }
    }

    async fn open(&self, ctx: &ProviderContext, config: &Value) -> Result<Value, Diagnostics> {
        let mut model = DsnModel::from_value(config)?;
        model.check().into_result()?;
        let (Attr::Known(tenant), Attr::Known(username), Attr::Known(password)) =
            (&model.tenant, &model.username, &model.password)
        else {
            return Err(Diagnostic::error(
                "usualstore_dsn needs known values",
                "tenant, username and password must be known when the ephemeral DSN is opened.",
            )
            .into());
        };
        let status = usualstore_tenancy::read_user(&ctx.server, tenant, username, None)
            .await
            .map_err(|error| {
                Diagnostics::from(Diagnostic::error(
                    format!("Could not read user {username:?} of tenant {tenant:?}"),
                    error.to_string(),
                ))
            })?;
        if status.is_none() {
            return Err(attribute_diag(
                "username",
                format!(
                    "no login user {username:?} of tenant {tenant:?}: the user must exist (a \
                     usualstore_tenant_user of that tenant) before its DSN is opened"
                ),
            )
            .into());
        }
        let (dsn, url) = crate::dsn::for_user(ctx, tenant, username, Some(password));
        model.dsn = Attr::Known(dsn);
        model.url = Attr::Known(url);
        Ok(model.to_value())
    }
}
