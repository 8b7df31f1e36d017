//! Managed resources. Each resource is one file; the gRPC layer decodes values, finds the resource by type name
//! and calls it, so a resource deals in cty values and diagnostics only.

pub mod server;
pub mod tenant;
pub mod tenant_user;

use usualstore_cty::Value;

use crate::config::ProviderContext;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::model::Attr;
use crate::schema::Schema;

/// What PlanResourceChange hands a resource. `prior` is null when creating, `proposed` is null when destroying.
pub struct PlanRequest<'a> {
    pub prior: &'a Value,
    pub proposed: &'a Value,
    pub config: &'a Value,
}

/// What a refresh found, with warnings to show beside it.
pub struct Refreshed {
    pub state: Value,
    pub warnings: Diagnostics,
}

impl From<Value> for Refreshed {
    fn from(state: Value) -> Self {
        Refreshed {
            state,
            warnings: Diagnostics::default(),
        }
    }
}

pub struct Planned {
    pub state: Value,
    /// Top-level attributes whose change forces a new resource.
    pub requires_replace: Vec<&'static str>,
    /// Warnings to show with an otherwise successful plan.
    pub warnings: Diagnostics,
}

impl Planned {
    /// The plan of a destroy: nothing left.
    pub fn destroy() -> Planned {
        Planned {
            state: Value::Null,
            requires_replace: Vec::new(),
            warnings: Diagnostics::default(),
        }
    }
}

#[tonic::async_trait]
pub trait Resource: Send + Sync {
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> &Schema;

    /// Static checks of a configuration; unknown values are skipped, they are checked again at plan time.
    fn validate(&self, config: &Value) -> Diagnostics;

    /// Refreshes `state` from the database. Null means the object is gone and leaves the state.
    async fn read(&self, ctx: &ProviderContext, state: &Value) -> Result<Refreshed, Diagnostics>;

    /// Must be deterministic: Terraform plans again during apply and compares. `ctx` is None when the provider
    /// configuration is not yet known.
    async fn plan(
        &self,
        ctx: Option<&ProviderContext>,
        request: PlanRequest<'_>,
    ) -> Result<Planned, Diagnostics>;

    /// Creates, updates or (with a null `planned`) deletes. Must return exactly the known planned values.
    async fn apply(
        &self,
        ctx: &ProviderContext,
        prior: &Value,
        planned: &Value,
    ) -> Result<Value, Diagnostics>;

    /// Builds a state from an import ID; Terraform reads it right after.
    async fn import(&self, ctx: &ProviderContext, id: &str) -> Result<Value, Diagnostics>;
}

pub fn all() -> Vec<Box<dyn Resource>> {
    vec![
        Box::new(server::ServerResource::new()),
        Box::new(tenant::TenantResource::new()),
        Box::new(tenant_user::TenantUserResource::new()),
    ]
}

pub(crate) fn attribute_diag(attribute: &str, detail: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::attribute_error(
        attribute,
        format!("Invalid {attribute}"),
        detail.to_string(),
    )
}

/// Checks a known string attribute with one of the tenancy rules, recording a diagnostic on the
/// attribute when it fails. Null and unknown values pass: required attributes are Terraform's to
/// enforce, and unknown ones are checked again once known.
pub(crate) fn check_attribute<E: std::fmt::Display>(
    diagnostics: &mut Diagnostics,
    name: &str,
    value: &Attr<String>,
    check: impl FnOnce(&str) -> Result<(), E>,
) {
    if let Attr::Known(text) = value
        && let Err(error) = check(text)
    {
        diagnostics.push(attribute_diag(name, error));
    }
}
