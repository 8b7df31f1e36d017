//! `usualstore_server`: makes the PostgreSQL server fit to host tenants. PUBLIC may no longer
//! connect to the maintenance database or `template1`, create objects in the maintenance
//! database's schemas, or create large objects there; the provider's own role keeps its CONNECT.
//! With it applied, a tenant's login can connect to its own database and nowhere else.

use usualstore_cty::{ObjectBuilder, Type, Value};
use usualstore_tenancy::{LockdownStatus, TenantError};

use super::{PlanRequest, Planned, Refreshed, Resource, state_string};
use crate::config::ProviderContext;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::schema::{Attribute, Presence, Schema};

pub const TYPE_NAME: &str = "usualstore_server";

pub struct ServerResource {
    schema: Schema,
}

impl ServerResource {
    pub fn new() -> Self {
        use Presence::Computed;
        let schema = Schema {
            version: 0,
            description: "The PostgreSQL server the provider is configured for, made fit to host tenants: PUBLIC \
                loses `CONNECT` and `TEMPORARY` on the maintenance database, `CONNECT` on `template1`, `CREATE` on \
                every schema of the maintenance database and `EXECUTE` on the built-in functions that create large \
                objects there. The provider's own role keeps `CONNECT` on the maintenance database. With it \
                applied, a tenant's login can connect to its own tenant database and nowhere else. Declare one per \
                provider configuration (per server). Destroying it gives PUBLIC back `CONNECT` (and `TEMPORARY`), \
                PostgreSQL's defaults; schema `CREATE` and the large-object functions stay restricted.",
            attributes: vec![
                Attribute::new(
                    "id",
                    Type::String,
                    Computed,
                    "The maintenance database's name; also the import ID.",
                ),
                Attribute::new(
                    "database",
                    Type::String,
                    Computed,
                    "The maintenance database the provider connects to.",
                ),
                Attribute::new(
                    "openings",
                    Type::list(Type::String),
                    Computed,
                    "What PUBLIC may still do outside the tenants, one line each (for example `PUBLIC has CONNECT on database \"postgres\"`). Empty once applied; a refresh that finds something planned shows it here and the next apply closes it.",
                ),
                Attribute::new(
                    "privileges_in_sync",
                    Type::Bool,
                    Computed,
                    "`false` when a refresh found something in `openings`.",
                ),
            ],
        };
        Self { schema }
    }
}

impl Default for ServerResource {
    fn default() -> Self {
        Self::new()
    }
}

fn state_of(status: &LockdownStatus) -> Value {
    let openings: Vec<String> = status.openings.iter().map(ToString::to_string).collect();
    ObjectBuilder::new()
        .string("id", &status.maintenance_database)
        .string("database", &status.maintenance_database)
        .strings("openings", openings)
        .bool("privileges_in_sync", status.in_sync())
        .build()
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

    async fn read(&self, ctx: &ProviderContext, _state: &Value) -> Result<Refreshed, Diagnostics> {
        let status = usualstore_tenancy::read_lockdown(&ctx.server)
            .await
            .map_err(|e| server_diagnostic("read", e))?;
        Ok(state_of(&status).into())
    }

    async fn plan(
        &self,
        ctx: Option<&ProviderContext>,
        request: PlanRequest<'_>,
    ) -> Result<Planned, Diagnostics> {
        if request.proposed.is_null() {
            return Ok(Planned {
                state: Value::Null,
                requires_replace: Vec::new(),
                warnings: Diagnostics::default(),
            });
        }
        let database = ctx.map(|ctx| ctx.server.maintenance_database().to_owned());
        let mut requires_replace = Vec::new();
        // Another maintenance database is another server's lockdown: a new resource.
        if let (Some(prior), Some(now)) = (state_string(request.prior, "database"), &database)
            && prior != *now
        {
            requires_replace.push("database");
        }
        let mut builder = ObjectBuilder::new();
        builder = match &database {
            Some(name) => builder.string("id", name).string("database", name),
            None => builder.unknown("id").unknown("database"),
        };
        Ok(Planned {
            state: builder
                .strings("openings", Vec::<String>::new())
                .bool("privileges_in_sync", true)
                .build(),
            requires_replace,
            warnings: Diagnostics::default(),
        })
    }

    async fn apply(
        &self,
        ctx: &ProviderContext,
        _prior: &Value,
        planned: &Value,
    ) -> Result<Value, Diagnostics> {
        if planned.is_null() {
            usualstore_tenancy::remove_lockdown(&ctx.server)
                .await
                .map_err(|e| server_diagnostic("remove", e))?;
            return Ok(Value::Null);
        }
        let status = usualstore_tenancy::apply_lockdown(&ctx.server)
            .await
            .map_err(|e| server_diagnostic("apply", e))?;
        Ok(state_of(&status))
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
        Ok(self.read(ctx, &Value::Null).await?.state)
    }
}
