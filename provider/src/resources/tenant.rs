//! `usualstore_tenant`: one customer's database, its four group roles, the store schema and the privileges
//! that keep the tenant locked down.

use std::str::FromStr;

use usualstore_cty::{ObjectBuilder, ObjectReader, Type, Value};
use usualstore_tenancy::{Plan, RoleNames, TenantError, TenantSpec, TenantState, TenantStatus};

use super::{
    PlanRequest, Planned, Refreshed, Resource, attribute_diag, known_string, state_bool, state_i64,
    state_string,
};
use crate::config::ProviderContext;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::schema::{Attribute, Presence, Schema};

pub const TYPE_NAME: &str = "usualstore_tenant";

pub struct TenantResource {
    schema: Schema,
}

impl TenantResource {
    pub fn new() -> Self {
        use Presence::{Computed, OptionalComputed, Required};
        let schema = Schema {
            version: 0,
            description: "A tenant: a PostgreSQL database with the customer's chosen name, four group roles \
                (`<db>_owner`, `<db>_admin`, `<db>_developer`, `<db>_customer`), privileges locked down to the \
                tenant model and the embedded store schema.",
            attributes: vec![
                Attribute::new("id", Type::String, Computed, "The database name."),
                Attribute::new(
                    "database_name",
                    Type::String,
                    Required,
                    "Name of the tenant database. A lowercase letter or underscore, then lowercase letters, digits and underscores; at most 53 bytes so `<name>_developer` fits PostgreSQL's 63-byte limit. Changing it creates a new tenant.",
                ),
                Attribute::new(
                    "tenant_name",
                    Type::String,
                    Required,
                    "The customer's display name, kept in the database comment. Updated in place.",
                ),
                Attribute::new(
                    "plan",
                    Type::String,
                    OptionalComputed,
                    "`free`, `starter` (default), `professional` or `enterprise`; sets the connection limit to 5, 10, 25 or 50. Updated in place.",
                ),
                Attribute::new(
                    "deletion_protection",
                    Type::Bool,
                    OptionalComputed,
                    "While `true` (the default), destroying the tenant fails and drops nothing.",
                ),
                Attribute::new(
                    "connection_limit",
                    Type::Number,
                    Computed,
                    "Connection limit of the database, from the plan.",
                ),
                Attribute::new(
                    "schema_version",
                    Type::Number,
                    Computed,
                    "Version of the store schema applied to the database. A newer provider with more migrations plans a change here and applies them.",
                ),
                Attribute::new(
                    "owner_role",
                    Type::String,
                    Computed,
                    "Group role that owns the database and every schema object.",
                ),
                Attribute::new(
                    "admin_role",
                    Type::String,
                    Computed,
                    "Group role with SELECT, INSERT, UPDATE and DELETE.",
                ),
                Attribute::new(
                    "developer_role",
                    Type::String,
                    Computed,
                    "Group role with SELECT, INSERT and UPDATE.",
                ),
                Attribute::new(
                    "customer_role",
                    Type::String,
                    Computed,
                    "Group role with SELECT.",
                ),
                Attribute::new(
                    "privileges_in_sync",
                    Type::Bool,
                    Computed,
                    "`false` when a refresh found privileges, role flags or ownership that differ from the tenant model (for example `CONNECT` granted to PUBLIC); the next apply restores them.",
                ),
            ],
        };
        Self { schema }
    }
}

impl Default for TenantResource {
    fn default() -> Self {
        Self::new()
    }
}

/// The desired tenant as the configuration or plan states it; fields are None while unknown.
struct Desired {
    database_name: Option<String>,
    tenant_name: Option<String>,
    plan: Option<Plan>,
    deletion_protection: Option<bool>,
}

/// Reads and checks the user-set attributes of a configuration, proposed state or plan. Unknown values are
/// passed over (they are checked again once known); null optional values get their defaults.
fn desired(value: &Value) -> Result<Desired, Diagnostics> {
    let reader = ObjectReader::new(value).map_err(|e| {
        Diagnostics::from(Diagnostic::error(
            "Invalid tenant configuration",
            e.to_string(),
        ))
    })?;
    let mut diagnostics = Diagnostics::default();

    let database_name = if reader.is_unknown("database_name") {
        None
    } else {
        match reader.required_string("database_name") {
            Ok(name) => match usualstore_tenancy::validate_database_name(&name) {
                Ok(()) => Some(name),
                Err(e) => {
                    diagnostics.push(attribute_diag("database_name", e));
                    None
                }
            },
            Err(e) => {
                diagnostics.push(attribute_diag("database_name", e));
                None
            }
        }
    };

    let tenant_name = if reader.is_unknown("tenant_name") {
        None
    } else {
        match reader.required_string("tenant_name") {
            Ok(name) => match usualstore_tenancy::validate_tenant_name(&name) {
                Ok(()) => Some(name),
                Err(e) => {
                    diagnostics.push(attribute_diag("tenant_name", e));
                    None
                }
            },
            Err(e) => {
                diagnostics.push(attribute_diag("tenant_name", e));
                None
            }
        }
    };

    let plan = if reader.is_unknown("plan") {
        None
    } else {
        match reader.optional_string("plan") {
            Ok(None) => Some(Plan::default()),
            Ok(Some(text)) => match Plan::from_str(&text) {
                Ok(plan) => Some(plan),
                Err(e) => {
                    diagnostics.push(attribute_diag("plan", e));
                    None
                }
            },
            Err(e) => {
                diagnostics.push(attribute_diag("plan", e));
                None
            }
        }
    };

    let deletion_protection = if reader.is_unknown("deletion_protection") {
        None
    } else {
        match reader.optional_bool("deletion_protection") {
            Ok(v) => Some(v.unwrap_or(true)),
            Err(e) => {
                diagnostics.push(attribute_diag("deletion_protection", e));
                None
            }
        }
    };

    diagnostics.into_result()?;
    Ok(Desired {
        database_name,
        tenant_name,
        plan,
        deletion_protection,
    })
}

/// The planned state: user values with defaults filled and every computed value derived from them, so the plan
/// shows exactly what apply will produce.
fn planned_state(desired: &Desired, prior_schema_version: Option<i64>) -> Value {
    let roles = desired
        .database_name
        .as_deref()
        .map(RoleNames::for_database);
    let schema_version =
        i64::from(usualstore_schema::latest_version()).max(prior_schema_version.unwrap_or(0));
    let mut b = ObjectBuilder::new();
    b = known_string(b, "id", desired.database_name.as_deref());
    b = known_string(b, "database_name", desired.database_name.as_deref());
    b = known_string(b, "tenant_name", desired.tenant_name.as_deref());
    b = known_string(b, "plan", desired.plan.map(Plan::as_str));
    b = match desired.deletion_protection {
        Some(v) => b.bool("deletion_protection", v),
        None => b.unknown("deletion_protection"),
    };
    b = match desired.plan {
        Some(plan) => b.i64("connection_limit", i64::from(plan.connection_limit())),
        None => b.unknown("connection_limit"),
    };
    b = b.i64("schema_version", schema_version);
    b = known_string(b, "owner_role", roles.as_ref().map(|r| r.owner.as_str()));
    b = known_string(b, "admin_role", roles.as_ref().map(|r| r.admin.as_str()));
    b = known_string(
        b,
        "developer_role",
        roles.as_ref().map(|r| r.developer.as_str()),
    );
    b = known_string(
        b,
        "customer_role",
        roles.as_ref().map(|r| r.customer.as_str()),
    );
    b.bool("privileges_in_sync", true).build()
}

/// A state as the catalog shows the tenant. `deletion_protection` lives only in Terraform, so it is carried over.
fn observed_state(status: &TenantStatus, deletion_protection: bool) -> Value {
    let b = ObjectBuilder::new()
        .string("id", &status.database_name)
        .string("database_name", &status.database_name)
        .optional_string("tenant_name", status.tenant_name.as_deref())
        .optional_string("plan", status.plan.map(Plan::as_str))
        .bool("deletion_protection", deletion_protection)
        .i64("connection_limit", i64::from(status.connection_limit))
        .i64("schema_version", i64::from(status.schema_version))
        .optional_string("owner_role", status.owner_role.as_deref())
        .optional_string("admin_role", status.admin_role.as_deref())
        .optional_string("developer_role", status.developer_role.as_deref())
        .optional_string("customer_role", status.customer_role.as_deref());
    b.bool(
        "privileges_in_sync",
        status.privileges_in_sync && is_ready(status),
    )
    .build()
}

/// Turns a tenancy error into a diagnostic, on `database_name` where the name itself is the problem.
fn tenancy_diagnostic(action: &str, database: &str, error: TenantError) -> Diagnostics {
    let on_name = matches!(
        error,
        TenantError::NotManaged { .. }
            | TenantError::AlreadyExists { .. }
            | TenantError::InvalidName(_)
            | TenantError::RoleConflict { .. }
    );
    let diagnostic = Diagnostic::error(
        format!("Could not {action} tenant {database:?}"),
        error.to_string(),
    );
    if on_name {
        diagnostic.on_attribute("database_name").into()
    } else {
        diagnostic.into()
    }
}

fn spec_from(desired: &Desired) -> Result<TenantSpec, Diagnostics> {
    match (&desired.database_name, &desired.tenant_name, desired.plan) {
        (Some(database_name), Some(tenant_name), Some(plan)) => Ok(TenantSpec {
            database_name: database_name.clone(),
            tenant_name: tenant_name.clone(),
            plan,
        }),
        _ => Err(Diagnostic::error(
            "Planned tenant has unknown values",
            "database_name, tenant_name and plan must be known when the tenant is applied. This is a bug in \
             the provider or Terraform; please report it.",
        )
        .into()),
    }
}

#[tonic::async_trait]
impl Resource for TenantResource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        match desired(config) {
            Ok(_) => Diagnostics::default(),
            Err(diagnostics) => diagnostics,
        }
    }

    async fn read(&self, ctx: &ProviderContext, state: &Value) -> Result<Refreshed, Diagnostics> {
        let database = state_string(state, "database_name")
            .or_else(|| state_string(state, "id"))
            .ok_or_else(|| {
                Diagnostics::from(Diagnostic::error(
                    "Tenant state has no database name",
                    "The state of this usualstore_tenant has neither database_name nor id. Remove it from the \
                     state (terraform state rm) and import it again.",
                ))
            })?;
        let deletion_protection = state_bool(state, "deletion_protection").unwrap_or(true);
        match usualstore_tenancy::read_tenant(&ctx.server, &database).await {
            Ok(None) => {
                tracing::info!(database = %database, "tenant database is gone; removing it from state");
                Ok(Value::Null.into())
            }
            Ok(Some(status)) => Ok(Refreshed {
                state: observed_state(&status, deletion_protection),
                warnings: unrepairable_warnings(&status),
            }),
            Err(e) => Err(tenancy_diagnostic("read", &database, e)),
        }
    }

    async fn plan(
        &self,
        ctx: Option<&ProviderContext>,
        request: PlanRequest<'_>,
    ) -> Result<Planned, Diagnostics> {
        if request.proposed.is_null() {
            let protected = state_bool(request.prior, "deletion_protection").unwrap_or(true);
            if protected {
                return Err(deletion_protected(request.prior).into());
            }
            return Ok(Planned {
                state: Value::Null,
                requires_replace: Vec::new(),
                warnings: Diagnostics::default(),
            });
        }

        let desired = desired(request.config)?;
        let mut warnings = Diagnostics::default();
        if let Some(ctx) = ctx.filter(|ctx| ctx.public_can_connect) {
            warnings.push(public_can_connect(ctx.server.maintenance_database()));
        }
        let mut requires_replace = Vec::new();
        let mut prior_schema_version = None;
        if request.prior.is_null() {
            if let (Some(ctx), Some(name)) = (ctx, desired.database_name.as_deref()) {
                check_name_is_free(ctx, name).await?;
            }
        } else {
            let prior_name = state_string(request.prior, "database_name");
            if desired.database_name.is_none() || desired.database_name != prior_name {
                requires_replace.push("database_name");
            } else {
                prior_schema_version = state_i64(request.prior, "schema_version");
                let latest = i64::from(usualstore_schema::latest_version());
                if let Some(v) = prior_schema_version.filter(|v| *v > latest) {
                    warnings.push(Diagnostic::warning(
                        "Tenant schema is newer than this provider",
                        format!(
                            "The tenant database is at schema version {v}, this provider knows up to {latest}. \
                             Upgrade the provider; migrations are never rolled back."
                        ),
                    ));
                }
            }
        }
        Ok(Planned {
            state: planned_state(&desired, prior_schema_version),
            requires_replace,
            warnings,
        })
    }

    async fn apply(
        &self,
        ctx: &ProviderContext,
        prior: &Value,
        planned: &Value,
    ) -> Result<Value, Diagnostics> {
        if planned.is_null() {
            // Terraform 1.0 never plans a destroy, so protection is enforced here as well.
            if state_bool(prior, "deletion_protection").unwrap_or(true) {
                return Err(deletion_protected(prior).into());
            }
            let database = state_string(prior, "database_name").unwrap_or_default();
            usualstore_tenancy::delete_tenant(&ctx.server, &database)
                .await
                .map_err(|e| tenancy_diagnostic("delete", &database, e))?;
            return Ok(Value::Null);
        }

        let desired = desired(planned)?;
        let spec = spec_from(&desired)?;
        let result = if prior.is_null() {
            usualstore_tenancy::create_tenant(&ctx.server, &spec)
                .await
                .map_err(|e| tenancy_diagnostic("create", &spec.database_name, e))?
        } else {
            usualstore_tenancy::update_tenant(&ctx.server, &spec)
                .await
                .map_err(|e| tenancy_diagnostic("update", &spec.database_name, e))?
        };
        if !result.privileges_in_sync || !is_ready(&result) {
            return Err(Diagnostic::error(
                format!("Tenant {:?} did not converge", spec.database_name),
                "The tenant was applied but a read-back still finds privileges, roles or ownership that differ \
                 from the tenant model. Run terraform apply again; if this persists, report it with the \
                 provider's TF_LOG=DEBUG output.",
            )
            .into());
        }
        let prior_schema_version = state_i64(prior, "schema_version");
        let mut state = planned_state(&desired, prior_schema_version);
        // The database decides the schema version (a newer tenant keeps its version): report what is there.
        if let Value::Object(attrs) = &mut state {
            attrs.insert(
                "schema_version".into(),
                Value::from(i64::from(result.schema_version)),
            );
        }
        Ok(state)
    }

    async fn import(&self, ctx: &ProviderContext, id: &str) -> Result<Value, Diagnostics> {
        if let Err(e) = usualstore_tenancy::validate_database_name(id) {
            return Err(Diagnostic::error(
                "Invalid import ID",
                format!("The import ID is the tenant's database name: {e}"),
            )
            .into());
        }
        match usualstore_tenancy::read_tenant(&ctx.server, id).await {
            Ok(Some(status)) => Ok(observed_state(&status, true)),
            Ok(None) => Err(Diagnostic::error(
                "Cannot import a tenant that does not exist",
                format!("There is no database named {id:?} on the server."),
            )
            .into()),
            Err(e) => Err(tenancy_diagnostic("import", id, e)),
        }
    }
}

/// A tenant whose create was interrupted reads as provisioning until an apply completes it.
fn is_ready(status: &TenantStatus) -> bool {
    status.status == Some(TenantState::Ready)
}

/// Differences a non-superuser operator has no right to repair, shown instead of endless drift.
fn unrepairable_warnings(status: &TenantStatus) -> Diagnostics {
    if status.warnings.is_empty() {
        return Diagnostics::default();
    }
    Diagnostic::warning(
        format!(
            "Tenant {:?}: built-in functions only a superuser can restrict",
            status.database_name
        ),
        format!(
            "{}. The provider's role is not a superuser, so these stay as they are; have a superuser run \
             REVOKE EXECUTE ON FUNCTION <function> FROM PUBLIC in the tenant's database for each.",
            status.warnings.join("; ")
        ),
    )
    .into()
}

fn public_can_connect(maintenance_database: &str) -> Diagnostic {
    Diagnostic::warning(
        "Tenant logins can connect outside their tenant",
        format!(
            "PUBLIC may connect to the maintenance database {maintenance_database:?}, so every tenant's login \
             can too: it sees other tenants' connections and catalogs there, and on servers where PUBLIC may \
             create objects it can lay traps for the provider. Declare a usualstore_server resource for this \
             provider (one per server) and apply it; this warning goes once it is applied."
        ),
    )
}

fn deletion_protected(prior: &Value) -> Diagnostic {
    let name = state_string(prior, "database_name").unwrap_or_default();
    Diagnostic::attribute_error(
        "deletion_protection",
        format!("Tenant {name:?} is protected from deletion"),
        "deletion_protection is true, so this tenant's database and roles were left untouched. To delete it, set \
         deletion_protection = false, run terraform apply, then destroy.",
    )
}

/// Refuses, at plan time, a name that belongs to a database we do not manage or to a complete tenant that some
/// other state manages; a tenant whose creation was interrupted is fine: the apply resumes it.
async fn check_name_is_free(ctx: &ProviderContext, name: &str) -> Result<(), Diagnostics> {
    match usualstore_tenancy::read_tenant(&ctx.server, name).await {
        Ok(None) => Ok(()),
        Ok(Some(status)) if !is_ready(&status) => Ok(()),
        Ok(Some(_)) => Err(Diagnostic::attribute_error(
            "database_name",
            format!("Tenant database {name:?} already exists"),
            format!(
                "A usualstore tenant named {name:?} already exists on this server. To manage it here, import it: \
                 terraform import <address> {name}"
            ),
        )
        .into()),
        Err(e) => Err(tenancy_diagnostic("plan", name, e)),
    }
}
