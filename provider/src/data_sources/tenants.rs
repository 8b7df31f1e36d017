//! `data "usualstore_tenants"`: every tenant on the provider's server, optionally filtered.

use std::collections::BTreeMap;
use std::str::FromStr;

use usualstore_cty::{Type, Value};
use usualstore_tenancy::{ServicePlan, TenantFilter, TenantSummary};

use super::DataSource;
use crate::config::{CONNECTIONS_PER_OPERATION, ProviderContext};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::model::{Attr, AttrValue, resource_model};
use crate::resources::{Refreshed, check_attribute};
use crate::schema::{Schema, computed, optional};

pub const TYPE_NAME: &str = "usualstore_tenants";

/// One element of `tenants`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantEntry {
    database_name: String,
    tenant_name: Option<String>,
    plan: Option<String>,
    connection_limit: i64,
    schema_version: Option<i64>,
    status: Option<String>,
}

impl From<TenantSummary> for TenantEntry {
    fn from(summary: TenantSummary) -> TenantEntry {
        TenantEntry {
            database_name: summary.database_name,
            tenant_name: summary.tenant_name,
            plan: summary.plan.map(|plan| plan.as_str().to_owned()),
            connection_limit: i64::from(summary.connection_limit),
            schema_version: summary.schema_version.map(i64::from),
            status: summary.status.map(|status| status.as_str().to_owned()),
        }
    }
}

impl TenantEntry {
    fn object_type() -> Type {
        Type::object([
            ("database_name", Type::String),
            ("tenant_name", Type::String),
            ("plan", Type::String),
            ("connection_limit", Type::Number),
            ("schema_version", Type::Number),
            ("status", Type::String),
        ])
    }
}

impl AttrValue for Vec<TenantEntry> {
    const EXPECTED: &'static str = "a list of tenant objects";

    fn cty_type() -> Type {
        Type::list(TenantEntry::object_type())
    }

    fn from_cty(value: &Value) -> Option<Self> {
        value
            .as_elements()?
            .iter()
            .map(|element| {
                let entries: &BTreeMap<String, Value> = element.as_entries()?;
                let text =
                    |name: &str| entries.get(name).and_then(Value::as_str).map(str::to_owned);
                let number = |name: &str| entries.get(name).and_then(Value::as_i64);
                Some(TenantEntry {
                    database_name: text("database_name")?,
                    tenant_name: text("tenant_name"),
                    plan: text("plan"),
                    connection_limit: number("connection_limit")?,
                    schema_version: number("schema_version"),
                    status: text("status"),
                })
            })
            .collect()
    }

    fn to_cty(&self) -> Value {
        Value::List(
            self.iter()
                .map(|entry| {
                    Value::object([
                        ("database_name", Value::from(entry.database_name.clone())),
                        ("tenant_name", Value::from(entry.tenant_name.clone())),
                        ("plan", Value::from(entry.plan.clone())),
                        ("connection_limit", Value::from(entry.connection_limit)),
                        ("schema_version", Value::from(entry.schema_version)),
                        ("status", Value::from(entry.status.clone())),
                    ])
                })
                .collect(),
        )
    }
}

resource_model! {
    /// The attributes of `data "usualstore_tenants"`.
    pub struct TenantsModel {
        plan: String => optional("Only tenants on this plan: `free`, `starter`, `professional` or `enterprise`."),
        name_prefix: String => optional("Only tenants whose database name starts with this."),
        tenants: Vec<TenantEntry> => computed(
            "The tenants, by database name: `database_name`, `tenant_name`, `plan`, `connection_limit` (the \
             database's, as it is now), `schema_version` (null when the tenant's database could not be opened: a \
             create stopped half-way, its connection limit reached), and `status`: `ready`, or `provisioning` for \
             a tenant whose create has not finished (or stopped half-way; applying its `usualstore_tenant` \
             completes it). A tenant is a database carrying usualstore's marker in its comment, or owned by the \
             owner role usualstore made for it; no other database is listed.",
        ),
    }
}

impl TenantsModel {
    fn check(&self) -> Diagnostics {
        let mut diagnostics = Diagnostics::default();
        check_attribute(&mut diagnostics, "plan", &self.plan, |plan| {
            ServicePlan::from_str(plan).map(drop)
        });
        diagnostics
    }
}

pub struct TenantsDataSource {
    schema: Schema,
}

impl TenantsDataSource {
    pub fn new() -> Self {
        Self {
            schema: Schema {
                version: 0,
                description: "Every tenant on the provider's server, found by usualstore's own marker on each \
                    database (there is no registry of tenants): for monitoring or backup configuration generated \
                    for every tenant, rollout dashboards, and finding tenants that no state manages.",
                attributes: TenantsModel::attributes(),
            },
        }
    }
}

#[tonic::async_trait]
impl DataSource for TenantsDataSource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        match TenantsModel::from_value(config) {
            Ok(model) => model.check(),
            Err(diagnostics) => diagnostics,
        }
    }

    async fn read(&self, ctx: &ProviderContext, config: &Value) -> Result<Refreshed, Diagnostics> {
        let mut model = TenantsModel::from_value(config)?;
        model.check().into_result()?;
        let filter = TenantFilter {
            plan: model.plan.known().and_then(|plan| plan.parse().ok()),
            name_prefix: model.name_prefix.known().map(String::as_str),
        };
        // Each tenant's schema version is read inside it: as many at a time as one operation's
        // share of the provider's connections.
        let parallel = CONNECTIONS_PER_OPERATION as usize;
        let tenants = usualstore_tenancy::list_tenants(&ctx.server, filter, parallel)
            .await
            .map_err(|error| {
                Diagnostics::from(Diagnostic::error(
                    "Could not list the server's tenants",
                    error.to_string(),
                ))
            })?;
        let unreadable: Vec<&str> = tenants
            .iter()
            .filter(|tenant| tenant.schema_version.is_none())
            .map(|tenant| tenant.database_name.as_str())
            .collect();
        let warnings = if unreadable.is_empty() {
            Diagnostics::default()
        } else {
            Diagnostic::warning(
                "Some tenants' schema versions are unknown",
                format!(
                    "These tenant databases could not be opened, so their schema_version is null: {}. The \
                     provider's log (TF_LOG=WARN) says why.",
                    unreadable.join(", ")
                ),
            )
            .into()
        };
        model.tenants = Attr::Known(tenants.into_iter().map(TenantEntry::from).collect());
        Ok(Refreshed {
            state: model.to_value(),
            warnings,
        })
    }
}
