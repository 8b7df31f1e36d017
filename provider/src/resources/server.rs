//! `usualstore_server`: makes the PostgreSQL server fit to host tenants. PUBLIC may no longer
//! connect to the maintenance database or `template1`, create objects in the maintenance
//! database's schemas, or create large objects there; the provider's own role keeps its CONNECT.
//! With it applied, a tenant's login can connect to its own database and nowhere else.

use usualstore_cty::Value;
use usualstore_tenancy::{LockdownStatus, TenantError};

use super::{Applied, ApplyRequest, PlanRequest, Planned, Private, Refreshed, Resource};
use crate::config::ProviderContext;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::model::{Attr, resource_model};
use crate::schema::{Schema, computed, plan_attributes};

pub const TYPE_NAME: &str = "usualstore_server";

resource_model! {
    /// The attributes of `usualstore_server`.
    pub struct ServerModel {
        id: String => computed("The maintenance database's name; also the import ID."),
        database: String => computed("The maintenance database the provider connects to.").requires_replace(),
        openings: Vec<String> => computed(
            "What PUBLIC may still do outside the tenants, one line each (for example `PUBLIC has CONNECT on \
             database \"postgres\"`). Empty once applied; a refresh that finds something planned shows it here \
             and the next apply closes it.",
        ),
        privileges_in_sync: bool => computed("`false` when a refresh found something in `openings`."),
    }
}

impl ServerModel {
    fn observed(status: &LockdownStatus) -> ServerModel {
        ServerModel {
            id: Attr::Known(status.maintenance_database.clone()),
            database: Attr::Known(status.maintenance_database.clone()),
            openings: Attr::Known(status.openings.iter().map(ToString::to_string).collect()),
            privileges_in_sync: Attr::Known(status.in_sync()),
        }
    }
}

pub struct ServerResource {
    schema: Schema,
}

impl ServerResource {
    pub fn new() -> Self {
        Self {
            schema: Schema {
                version: 0,
                description: "The PostgreSQL server the provider is configured for, made fit to host tenants: \
                    PUBLIC loses `CONNECT` and `TEMPORARY` on the maintenance database, `CONNECT` on `template1`, \
                    `CREATE` on every schema of the maintenance database and `EXECUTE` on the built-in functions \
                    that create large objects there. The provider's own role keeps `CONNECT` on the maintenance \
                    database. With it applied, a tenant's login can connect to its own tenant database and nowhere \
                    else. Declare one per provider configuration (per server). Destroying it gives PUBLIC back \
                    `CONNECT` (and `TEMPORARY`), PostgreSQL's defaults; schema `CREATE` and the large-object \
                    functions stay restricted.",
                attributes: ServerModel::attributes(),
            },
        }
    }
}

impl Default for ServerResource {
    fn default() -> Self {
        Self::new()
    }
}

fn server_diagnostic(action: &str, error: TenantError) -> Diagnostics {
    Diagnostic::error(
        format!("Could not {action} the server's lockdown"),
        error.to_string(),
    )
    .into()
}

#[tonic::async_trait]
impl Resource for ServerResource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::default()
    }

    async fn read(
        &self,
        ctx: &ProviderContext,
        _state: &Value,
        _private: &Private,
    ) -> Result<Refreshed, Diagnostics> {
        let status = usualstore_tenancy::read_lockdown(&ctx.server)
            .await
            .map_err(|e| server_diagnostic("read", e))?;
        Ok(ServerModel::observed(&status).to_value().into())
    }

    async fn plan(
        &self,
        ctx: Option<&ProviderContext>,
        request: PlanRequest<'_>,
    ) -> Result<Planned, Diagnostics> {
        if request.proposed.is_null() {
            return Ok(Planned::destroy());
        }
        let mut proposed = ServerModel::from_value(request.proposed)?;
        // Another maintenance database is another server's lockdown: the declaration makes it a new
        // resource.
        proposed.database = match ctx {
            Some(ctx) => Attr::Known(ctx.server.maintenance_database().to_owned()),
            None => Attr::Unknown,
        };
        let (planned, requires_replace) = plan_attributes(
            &self.schema.attributes,
            request.prior,
            &proposed.to_value(),
            request.config,
        );
        let mut planned = ServerModel::from_value(&planned)?;
        planned.id = planned.database.clone();
        planned.openings = Attr::Known(Vec::new());
        planned.privileges_in_sync = Attr::Known(true);
        Ok(Planned {
            state: planned.to_value(),
            requires_replace,
            warnings: Diagnostics::default(),
        })
    }

    async fn apply(
        &self,
        ctx: &ProviderContext,
        request: ApplyRequest<'_>,
    ) -> Result<Applied, Diagnostics> {
        let planned = request.planned;
        if planned.is_null() {
            usualstore_tenancy::remove_lockdown(&ctx.server)
                .await
                .map_err(|e| server_diagnostic("remove", e))?;
            return Ok(Value::Null.into());
        }
        let status = usualstore_tenancy::apply_lockdown(&ctx.server)
            .await
            .map_err(|e| server_diagnostic("apply", e))?;
        Ok(ServerModel::observed(&status).to_value().into())
    }

    async fn import(&self, ctx: &ProviderContext, id: &str) -> Result<Value, Diagnostics> {
        let database = ctx.server.maintenance_database();
        if id != database {
            return Err(Diagnostic::error(
                "Invalid import ID",
                format!(
                    "The import ID of usualstore_server is the maintenance database the provider connects to, \
                     {database:?}; got {id:?}."
                ),
            )
            .into());
        }
        Ok(self
            .read(ctx, &Value::Null, &Private::default())
            .await?
            .state)
    }
}
