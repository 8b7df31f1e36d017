//! `usualstore_tenant`: one customer's database, its four group roles, the store schema and the privileges
//! that keep the tenant locked down.

use std::str::FromStr;

use usualstore_cty::Value;
use usualstore_tenancy::{
    RoleNames, ServicePlan, TenantError, TenantSpec, TenantState, TenantStatus,
};

use super::{
    Applied, ApplyRequest, PlanRequest, Planned, Private, Refreshed, Resource, check_attribute,
};
use crate::config::ProviderContext;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::model::{Attr, resource_model};
use crate::schema::{Schema, computed, optional_computed, plan_attributes, required};

pub const TYPE_NAME: &str = "usualstore_tenant";

resource_model! {
    /// The attributes of `usualstore_tenant`.
    pub struct TenantModel {
        id: String => computed("The database name."),
        database_name: String => required(
            "Name of the tenant database. A lowercase letter or underscore, then lowercase letters, digits and \
             underscores; at most 53 bytes so `<name>_developer` fits PostgreSQL's 63-byte limit; not `postgres`, \
             `template0`, `template1` or anything starting with `pg_`. Changing it creates a new tenant.",
        )
        .requires_replace(),
        tenant_name: String => required(
            "The customer's display name, kept in the database comment (1 to 200 characters, no control \
             characters). Updated in place.",
        ),
        plan: String => optional_computed(
            "`free`, `starter` (default), `professional` or `enterprise`; sets the connection limit to 5, 10, 25 \
             or 50. Updated in place.",
        )
        .default_value(ServicePlan::default().as_str()),
        deletion_protection: bool => optional_computed(
            "While `true` (the default), destroying the tenant fails and drops nothing.",
        )
        .default_value(true),
        connection_limit: i64 => computed("Connection limit of the database, from the plan."),
        schema_version: i64 => computed(
            "Version of the store schema applied to the database. A newer provider with more migrations plans a \
             change here and applies them.",
        ),
        owner_role: String => computed("Group role that owns the database and every schema object."),
        admin_role: String => computed(
            "Group role of admin logins: reads and writes the store's data and the application's login secrets.",
        ),
        developer_role: String => computed(
            "Group role of developer logins: reads, inserts and updates the store's data; reads the users directory.",
        ),
        customer_role: String => computed(
            "Group role of customer logins: reads the store's data and the users directory.",
        ),
        privileges_in_sync: bool => computed(
            "`false` when a refresh found privileges, role flags or ownership that differ from the tenant model \
             (for example `CONNECT` granted to PUBLIC); the next apply restores them.",
        ),
    }
}

impl TenantModel {
    /// The user-set attributes checked with the tenancy rules, each diagnostic on its attribute.
    /// Unknown values pass; they are checked again once known.
    fn check(&self) -> Diagnostics {
        let mut diagnostics = Diagnostics::default();
        check_attribute(
            &mut diagnostics,
            "database_name",
            &self.database_name,
            usualstore_tenancy::validate_database_name,
        );
        check_attribute(
            &mut diagnostics,
            "tenant_name",
            &self.tenant_name,
            usualstore_tenancy::validate_tenant_name,
        );
        check_attribute(&mut diagnostics, "plan", &self.plan, |plan| {
            ServicePlan::from_str(plan).map(drop)
        });
        diagnostics
    }

    fn service_plan(&self) -> Option<ServicePlan> {
        self.plan.known().and_then(|plan| plan.parse().ok())
    }

    /// Fills what follows from the user's values: the ID, the roles' names, the connection limit.
    /// `schema_version` is the newest the provider knows, or a newer one the tenant already has.
    fn derive(&mut self, prior_schema_version: Option<i64>) {
        self.id = self.database_name.clone();
        let roles = self
            .database_name
            .known()
            .map(|name| RoleNames::for_database(name));
        let role = |pick: fn(&RoleNames) -> &String| match &roles {
            Some(roles) => Attr::Known(pick(roles).clone()),
            None => Attr::Unknown,
        };
        self.owner_role = role(|r| &r.owner);
        self.admin_role = role(|r| &r.admin);
        self.developer_role = role(|r| &r.developer);
        self.customer_role = role(|r| &r.customer);
        self.connection_limit = match self.service_plan() {
            Some(plan) => Attr::Known(i64::from(plan.connection_limit())),
            None => Attr::Unknown,
        };
        let latest = i64::from(usualstore_schema::latest_version());
        self.schema_version = Attr::Known(latest.max(prior_schema_version.unwrap_or(0)));
        self.privileges_in_sync = Attr::Known(true);
    }

    /// What the configuration asks for; every value must be known (at apply).
    fn spec(&self) -> Result<TenantSpec, Diagnostics> {
        match (
            self.database_name.known(),
            self.tenant_name.known(),
            self.service_plan(),
        ) {
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

    /// The tenant as the catalog shows it. `deletion_protection` lives only in Terraform, so it is carried
    /// over.
    fn observed(status: &TenantStatus, deletion_protection: bool) -> TenantModel {
        let text = |value: Option<&str>| Attr::from_option(value.map(str::to_owned));
        TenantModel {
            id: Attr::Known(status.database_name.clone()),
            database_name: Attr::Known(status.database_name.clone()),
            tenant_name: text(status.tenant_name.as_deref()),
            plan: text(status.plan.map(ServicePlan::as_str)),
            deletion_protection: Attr::Known(deletion_protection),
            connection_limit: Attr::Known(i64::from(status.connection_limit)),
            schema_version: Attr::Known(i64::from(status.schema_version)),
            owner_role: text(status.owner_role.as_deref()),
            admin_role: text(status.admin_role.as_deref()),
            developer_role: text(status.developer_role.as_deref()),
            customer_role: text(status.customer_role.as_deref()),
            privileges_in_sync: Attr::Known(status.privileges_in_sync && is_ready(status)),
        }
    }

    /// Whether destroying is allowed; a state without the attribute is protected.
    fn protected(&self) -> bool {
        self.deletion_protection.known().copied().unwrap_or(true)
    }
}

pub struct TenantResource {
    schema: Schema,
}

impl TenantResource {
    pub fn new() -> Self {
        Self {
            schema: Schema {
                version: 0,
                description: "A tenant: a PostgreSQL database with the customer's chosen name, four group roles \
                    (`<db>_owner`, `<db>_admin`, `<db>_developer`, `<db>_customer`), privileges locked down to the \
                    tenant model and the embedded store schema.",
                attributes: TenantModel::attributes(),
            },
        }
    }
}

impl Default for TenantResource {
    fn default() -> Self {
        Self::new()
    }
}

/// Turns a tenancy error into a diagnostic, on `database_name` where the name itself is the problem.
fn tenancy_diagnostic(action: &str, database: &str, error: TenantError) -> Diagnostics {
    let diagnostic = Diagnostic::error(
        format!("Could not {action} tenant {database:?}"),
        error.to_string(),
    );
    if error.is_about_the_name() {
        diagnostic.on_attribute("database_name").into()
    } else {
        diagnostic.into()
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
        match TenantModel::from_value(config) {
            Ok(model) => model.check(),
            Err(diagnostics) => diagnostics,
        }
    }

    async fn read(
        &self,
        ctx: &ProviderContext,
        state: &Value,
        _private: &Private,
    ) -> Result<Refreshed, Diagnostics> {
        let state = TenantModel::from_value(state)?;
        let database = state
            .database_name
            .known()
            .or(state.id.known())
            .cloned()
            .ok_or_else(|| {
                Diagnostics::from(Diagnostic::error(
                    "Tenant state has no database name",
                    "The state of this usualstore_tenant has neither database_name nor id. Remove it from the \
                     state (terraform state rm) and import it again.",
                ))
            })?;
        match usualstore_tenancy::read_tenant(&ctx.server, &database).await {
            Ok(None) => {
                tracing::info!(database = %database, "tenant database is gone; removing it from state");
                Ok(Value::Null.into())
            }
            Ok(Some(status)) => Ok(Refreshed {
                state: TenantModel::observed(&status, state.protected()).to_value(),
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
        let prior = TenantModel::from_value(request.prior)?;
        if request.proposed.is_null() {
            if prior.protected() {
                return Err(deletion_protected(&prior).into());
            }
            return Ok(Planned::destroy());
        }
        TenantModel::from_value(request.config)?
            .check()
            .into_result()?;
        let (planned, requires_replace) = plan_attributes(
            &self.schema.attributes,
            request.prior,
            request.proposed,
            request.config,
        );
        let mut planned = TenantModel::from_value(&planned)?;
        let mut warnings = Diagnostics::default();
        if let Some(ctx) = ctx.filter(|ctx| ctx.public_can_connect) {
            warnings.push(public_can_connect(ctx.server.maintenance_database()));
        }
        let prior_schema_version = if request.prior.is_null() {
            if let (Some(ctx), Some(name)) = (ctx, planned.database_name.known()) {
                check_name_is_free(ctx, name).await?;
            }
            None
        } else if requires_replace.is_empty() {
            let version = prior.schema_version.known().copied();
            let latest = i64::from(usualstore_schema::latest_version());
            if let Some(v) = version.filter(|v| *v > latest) {
                warnings.push(Diagnostic::warning(
                    "Tenant schema is newer than this provider",
                    format!(
                        "The tenant database is at schema version {v}, this provider knows up to {latest}. \
                         Upgrade the provider; migrations are never rolled back."
                    ),
                ));
            }
            version
        } else {
            None
        };
        planned.derive(prior_schema_version);
        Ok(Planned {
            state: planned.to_value(),
            requires_replace,
            warnings,
        })
    }

    async fn apply(
        &self,
        ctx: &ProviderContext,
        request: ApplyRequest<'_>,
    ) -> Result<Applied, Diagnostics> {
        let (prior, planned) = (request.prior, request.planned);
        let prior = TenantModel::from_value(prior)?;
        if planned.is_null() {
            // Terraform 1.0 never plans a destroy, so protection is enforced here as well.
            if prior.protected() {
                return Err(deletion_protected(&prior).into());
            }
            let database = prior.database_name.known().cloned().unwrap_or_default();
            usualstore_tenancy::delete_tenant(&ctx.server, &database)
                .await
                .map_err(|e| tenancy_diagnostic("delete", &database, e))?;
            return Ok(Value::Null.into());
        }

        let mut planned = TenantModel::from_value(planned)?;
        let spec = planned.spec()?;
        let result = if prior.database_name.is_null() {
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
        // The database decides the schema version (a newer tenant keeps its version): report what is there.
        planned.schema_version = Attr::Known(i64::from(result.schema_version));
        Ok(planned.to_value().into())
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
            Ok(Some(status)) => Ok(TenantModel::observed(&status, true).to_value()),
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

fn deletion_protected(prior: &TenantModel) -> Diagnostic {
    let name = prior.database_name.known().cloned().unwrap_or_default();
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
