//! Schemas as we declare them: one description gives both the protocol schema Terraform reads and the cty object
//! type our codec needs, so the two can never disagree. Plan modifiers (requires-replace, a default, keeping the
//! prior value of a computed attribute) are declared here too and applied by [`plan_attributes`], so resources
//! do not re-implement them in code.

use std::collections::BTreeMap;

use usualstore_cty::{Type, Value};

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::proto::tfplugin6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
    /// Optional in configuration; the provider fills it when the configuration leaves it null.
    OptionalComputed,
    Computed,
}

/// How planning treats an attribute beyond its presence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanModifiers {
    /// A change replaces the resource.
    pub requires_replace: bool,
    /// The planned value when the configuration leaves an optional attribute null.
    pub default: Option<Value>,
    /// A computed attribute keeps its prior value instead of becoming unknown.
    pub use_state_for_unknown: bool,
}

#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: &'static str,
    pub ty: Type,
    pub presence: Presence,
    pub sensitive: bool,
    /// Used during apply and never stored (protocol 6.8, Terraform 1.11+): always null in plans
    /// and states; the apply reads it from the configuration.
    pub write_only: bool,
    pub description: &'static str,
    pub plan: PlanModifiers,
}

impl Attribute {
    pub fn is_computed(&self) -> bool {
        matches!(
            self.presence,
            Presence::Computed | Presence::OptionalComputed
        )
    }
}

/// An attribute declared before it has its name and type, which a model's field supplies (see
/// `resource_model!`).
#[derive(Debug, Clone)]
#[must_use]
pub struct Declared {
    presence: Presence,
    description: &'static str,
    sensitive: bool,
    write_only: bool,
    plan: PlanModifiers,
}

fn declared(presence: Presence, description: &'static str) -> Declared {
    Declared {
        presence,
        description,
        sensitive: false,
        write_only: false,
        plan: PlanModifiers::default(),
    }
}

pub fn required(description: &'static str) -> Declared {
    declared(Presence::Required, description)
}

pub fn optional(description: &'static str) -> Declared {
    declared(Presence::Optional, description)
}

/// Optional in configuration; the provider fills it when the configuration leaves it null.
pub fn optional_computed(description: &'static str) -> Declared {
    declared(Presence::OptionalComputed, description)
}

pub fn computed(description: &'static str) -> Declared {
    declared(Presence::Computed, description)
}

impl Declared {
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Only for optional or required attributes of managed resources: Terraform refuses write-only
    /// computed ones.
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }

    pub fn requires_replace(mut self) -> Self {
        self.plan.requires_replace = true;
        self
    }

    pub fn default_value(mut self, value: impl Into<Value>) -> Self {
        self.plan.default = Some(value.into());
        self
    }

    pub fn use_state_for_unknown(mut self) -> Self {
        self.plan.use_state_for_unknown = true;
        self
    }

    pub fn named(self, name: &'static str, ty: Type) -> Attribute {
        Attribute {
            name,
            ty,
            presence: self.presence,
            sensitive: self.sensitive,
            write_only: self.write_only,
            description: self.description,
            plan: self.plan,
        }
    }
}

/// The declared part of planning: from Terraform's proposed new state, computed attributes the
/// configuration leaves null get their default, their prior value (`use_state_for_unknown`), or,
/// when the resource is created and the resource put no value in `proposed`, unknown; attributes
/// that require replacement and change are listed; write-only attributes are null. What a
/// resource derives itself (computed values that follow from others) it sets afterwards on its
/// model.
pub fn plan_attributes(
    attributes: &[Attribute],
    prior: &Value,
    proposed: &Value,
    config: &Value,
) -> (Value, Vec<&'static str>) {
    let creating = prior.is_null();
    let mut planned = BTreeMap::new();
    let mut requires_replace = Vec::new();
    for attribute in attributes {
        let from = |value: &Value| value.get(attribute.name).cloned().unwrap_or(Value::Null);
        let (configured, before) = (from(config), from(prior));
        if attribute.write_only {
            planned.insert(attribute.name.to_owned(), Value::Null);
            continue;
        }
        let mut value = from(proposed);
        if attribute.is_computed() && configured.is_null() {
            value = if let Some(default) = &attribute.plan.default {
                default.clone()
            } else if attribute.plan.use_state_for_unknown && !creating && !before.is_null() {
                before.clone()
            } else if creating && value.is_null() {
                Value::Unknown
            } else {
                value
            };
        }
        if attribute.plan.requires_replace && !creating && !same(&value, &before) {
            requires_replace.push(attribute.name);
        }
        planned.insert(attribute.name.to_owned(), value);
    }
    (Value::Object(planned), requires_replace)
}

/// Equal for planning: unknown differs from everything.
fn same(a: &Value, b: &Value) -> bool {
    a.is_known() && b.is_known() && a == b
}

#[derive(Debug, Clone)]
pub struct Schema {
    pub version: i64,
    pub description: &'static str,
    pub attributes: Vec<Attribute>,
}

impl Schema {
    /// The cty object type of a whole state, plan or configuration value under this schema.
    pub fn object_type(&self) -> Type {
        Type::Object(
            self.attributes
                .iter()
                .map(|a| (a.name.to_owned(), a.ty.clone()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    /// Errors for write-only attributes set in `config` when `terraform` (how to name the
    /// Terraform at hand) would store them.
    pub fn refuse_write_only(&self, config: &Value, terraform: &str) -> Diagnostics {
        let mut diagnostics = Diagnostics::default();
        for attribute in self.attributes.iter().filter(|a| a.write_only) {
            // Unknown values are refused at plan time, once known.
            if config
                .get(attribute.name)
                .is_some_and(|v| v.is_known() && !v.is_null())
            {
                diagnostics.push(Diagnostic::attribute_error(
                    attribute.name,
                    "Write-only attribute needs Terraform 1.11",
                    format!(
                        "{name} is write-only: Terraform 1.11 or later keeps it out of state and plan, {terraform} \
                         would store it. Upgrade Terraform, or use the attribute that is kept in state instead.",
                        name = attribute.name
                    ),
                ));
            }
        }
        diagnostics
    }

    pub fn to_proto(&self) -> tfplugin6::Schema {
        let markdown = tfplugin6::StringKind::Markdown as i32;
        tfplugin6::Schema {
            version: self.version,
            block: Some(tfplugin6::schema::Block {
                version: self.version,
                description: self.description.to_owned(),
                description_kind: markdown,
                attributes: self
                    .attributes
                    .iter()
                    .map(|a| tfplugin6::schema::Attribute {
                        name: a.name.to_owned(),
                        r#type: a.ty.to_json(),
                        description: a.description.to_owned(),
                        description_kind: markdown,
                        required: a.presence == Presence::Required,
                        optional: matches!(
                            a.presence,
                            Presence::Optional | Presence::OptionalComputed
                        ),
                        computed: matches!(
                            a.presence,
                            Presence::Computed | Presence::OptionalComputed
                        ),
                        sensitive: a.sensitive,
                        write_only: a.write_only,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
        }
    }
}
