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

/// What an apply works from: the prior state (null when creating), the plan (null when
/// destroying), the configuration (the only place write-only values arrive) and the private state
/// the plan carried.
pub struct ApplyRequest<'a> {
    pub prior: &'a Value,
    pub planned: &'a Value,
    pub config: &'a Value,
    pub private: &'a Private,
}

/// What a resource keeps in Terraform's private state beside its attributes: never shown in a plan,
/// handed back on every read and apply. A small JSON object; bytes that are not one read as empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Private(serde_json::Map<String, serde_json::Value>);

impl Private {
    pub fn from_bytes(bytes: &[u8]) -> Private {
        match serde_json::from_slice(bytes) {
            Ok(serde_json::Value::Object(map)) => Private(map),
            _ => Private::default(),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        if self.0.is_empty() {
            return Vec::new();
        }
        serde_json::to_vec(&self.0).unwrap_or_default()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(serde_json::Value::as_str)
    }

    pub fn set(&mut self, key: &str, value: Option<String>) {
        match value {
            Some(value) => {
                self.0
                    .insert(key.to_owned(), serde_json::Value::String(value));
            }
            None => {
                self.0.remove(key);
            }
        }
    }
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

/// What an apply made, and what to keep privately about it.
pub struct Applied {
    pub state: Value,
    pub private: Private,
}

impl From<Value> for Applied {
    fn from(state: Value) -> Self {
        Applied {
            state,
            private: Private::default(),
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
    async fn read(
        &self,
        ctx: &ProviderContext,
        state: &Value,
        private: &Private,
    ) -> Result<Refreshed, Diagnostics>;

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
        request: ApplyRequest<'_>,
    ) -> Result<Applied, Diagnostics>;

    /// Builds a state from an import ID; Terraform reads it right after.
    async fn import(&self, ctx: &ProviderContext, id: &str) -> Result<Value, Diagnostics>;
}

pub(crate) use tenant_user::{password_rule, username_rule};

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
