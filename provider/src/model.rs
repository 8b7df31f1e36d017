//! Typed resource models: one struct per resource whose fields are its attributes, each an
//! [`Attr`] that says whether Terraform knows the value yet. [`resource_model!`] derives from one
//! declaration the schema Terraform reads, the decoding of configurations, plans and states into
//! the struct, and the encoding back, so an attribute's name appears once.
//!
//! It reads like terraform-plugin-framework's `tfsdk` models: a resource gets its plan as
//! `TenantModel::from_value(plan)?` and answers `model.to_value()`.

use usualstore_cty::{ObjectReader, Type, Value};

use crate::diagnostics::{Diagnostic, Diagnostics};

/// A value as Terraform hands it over: null, not known until apply, or known.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Attr<T> {
    #[default]
    Null,
    Unknown,
    Known(T),
}

impl<T> Attr<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Attr::Known(value) => Some(value),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Attr::Null)
    }

    /// Whether a value is given: `None` while unknown.
    pub fn is_set(&self) -> Option<bool> {
        match self {
            Attr::Null => Some(false),
            Attr::Unknown => None,
            Attr::Known(_) => Some(true),
        }
    }

    /// `Known` for `Some`, `Null` for `None`.
    pub fn from_option(value: Option<T>) -> Attr<T> {
        value.map_or(Attr::Null, Attr::Known)
    }

    /// The value, `None` for null; `Err(())` while unknown.
    pub fn option(&self) -> Result<Option<&T>, Unknown> {
        match self {
            Attr::Null => Ok(None),
            Attr::Unknown => Err(Unknown),
            Attr::Known(value) => Ok(Some(value)),
        }
    }
}

/// The marker of [`Attr::option`] on an unknown value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unknown;

/// Rust types an attribute can hold, with their cty type.
pub trait AttrValue: Sized {
    fn cty_type() -> Type;
    /// `None` when `value` (known, not null) has another type; `expected` names the right one.
    fn from_cty(value: &Value) -> Option<Self>;
    fn to_cty(&self) -> Value;
    const EXPECTED: &'static str;
}

impl AttrValue for String {
    const EXPECTED: &'static str = "a string";

    fn cty_type() -> Type {
        Type::String
    }

    fn from_cty(value: &Value) -> Option<Self> {
        value.as_str().map(str::to_owned)
    }

    fn to_cty(&self) -> Value {
        Value::String(self.clone())
    }
}

impl AttrValue for bool {
    const EXPECTED: &'static str = "a bool";

    fn cty_type() -> Type {
        Type::Bool
    }

    fn from_cty(value: &Value) -> Option<Self> {
        value.as_bool()
    }

    fn to_cty(&self) -> Value {
        Value::Bool(*self)
    }
}

impl AttrValue for i64 {
    const EXPECTED: &'static str = "a whole number";

    fn cty_type() -> Type {
        Type::Number
    }

    fn from_cty(value: &Value) -> Option<Self> {
        value.as_i64()
    }

    fn to_cty(&self) -> Value {
        Value::from(*self)
    }
}

impl AttrValue for Vec<String> {
    const EXPECTED: &'static str = "a list of strings";

    fn cty_type() -> Type {
        Type::list(Type::String)
    }

    fn from_cty(value: &Value) -> Option<Self> {
        value
            .as_elements()?
            .iter()
            .map(|element| element.as_str().map(str::to_owned))
            .collect()
    }

    fn to_cty(&self) -> Value {
        Value::List(
            self.iter()
                .map(|text| Value::String(text.clone()))
                .collect(),
        )
    }
}

impl<T: AttrValue> Attr<T> {
    /// Reads attribute `name` of an object; a value of the wrong type is a diagnostic on it.
    pub fn read(reader: &ObjectReader<'_>, name: &str) -> Result<Attr<T>, Diagnostic> {
        let value = reader.get(name);
        if value.is_unknown() {
            return Ok(Attr::Unknown);
        }
        if value.is_null() {
            return Ok(Attr::Null);
        }
        T::from_cty(value).map(Attr::Known).ok_or_else(|| {
            Diagnostic::attribute_error(
                name,
                format!("Invalid {name}"),
                format!("{name} must be {}.", T::EXPECTED),
            )
        })
    }

    pub fn to_cty(&self) -> Value {
        match self {
            Attr::Null => Value::Null,
            Attr::Unknown => Value::Unknown,
            Attr::Known(value) => value.to_cty(),
        }
    }
}

/// Reads an object value for `from_value`: a null object (a resource being created or destroyed)
/// has every attribute null.
pub fn object_reader(value: &Value) -> Result<Option<ObjectReader<'_>>, Diagnostics> {
    if value.is_null() {
        return Ok(None);
    }
    ObjectReader::new(value).map(Some).map_err(|error| {
        Diagnostic::error(
            "Terraform sent a value this provider cannot read",
            error.to_string(),
        )
        .into()
    })
}

/// Declares a resource's model: a struct of [`Attr`] fields with, for each, its Rust type and
/// schema declaration (see [`crate::schema`]: `required`, `optional`, `optional_computed`,
/// `computed`, and their modifiers). Generates `attributes()`, `from_value()` and `to_value()`.
macro_rules! resource_model {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $field:ident : $ty:ty => $decl:expr ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        $vis struct $name {
            $( pub $field: $crate::model::Attr<$ty>, )*
        }

        impl $name {
            /// The schema's attributes, in declaration order.
            pub fn attributes() -> Vec<$crate::schema::Attribute> {
                vec![
                    $( $decl.named(
                        stringify!($field),
                        <$ty as $crate::model::AttrValue>::cty_type(),
                    ), )*
                ]
            }

            /// Decodes a configuration, plan or state; every attribute of the wrong type is
            /// reported, each on its attribute.
            pub fn from_value(
                value: &usualstore_cty::Value,
            ) -> Result<Self, $crate::diagnostics::Diagnostics> {
                let Some(reader) = $crate::model::object_reader(value)? else {
                    return Ok(Self::default());
                };
                let mut diagnostics = $crate::diagnostics::Diagnostics::default();
                let model = Self {
                    $( $field: match $crate::model::Attr::<$ty>::read(&reader, stringify!($field)) {
                        Ok(attr) => attr,
                        Err(diagnostic) => {
                            diagnostics.push(diagnostic);
                            $crate::model::Attr::Null
                        }
                    }, )*
                };
                diagnostics.into_result()?;
                Ok(model)
            }

            /// The object value Terraform stores, every attribute present. (The provider's own
            /// block is only ever read.)
            #[allow(dead_code)]
            pub fn to_value(&self) -> usualstore_cty::Value {
                usualstore_cty::Value::object([
                    $( (stringify!($field), self.$field.to_cty()), )*
                ])
            }
        }
    };
}

pub(crate) use resource_model;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{computed, optional, required};

    resource_model! {
        /// A model for the tests.
        struct Sample {
            name: String => required("The name.").requires_replace(),
            count: i64 => optional("How many."),
            tags: Vec<String> => computed("Derived."),
        }
    }

    #[test]
    fn one_declaration_gives_schema_decoding_and_encoding() {
        let attributes = Sample::attributes();
        let names: Vec<&str> = attributes.iter().map(|a| a.name).collect();
        assert_eq!(names, ["name", "count", "tags"]);
        assert!(attributes[0].plan.requires_replace);
        assert_eq!(attributes[2].ty, Type::list(Type::String));

        let value = Value::object([
            ("name", Value::string("a")),
            ("count", Value::Unknown),
            ("tags", Value::Null),
        ]);
        let model = Sample::from_value(&value).expect("decodes");
        assert_eq!(model.name, Attr::Known("a".to_owned()));
        assert_eq!(model.count, Attr::Unknown);
        assert!(model.tags.is_null());
        let round = Sample::from_value(&model.to_value()).expect("round trip");
        assert_eq!(round, model);
        assert_eq!(Sample::from_value(&Value::Null), Ok(Sample::default()));
    }

    #[test]
    fn wrong_types_name_their_attributes() {
        let value = Value::object([("name", Value::Bool(true)), ("count", Value::string("x"))]);
        let errors = Sample::from_value(&value).expect_err("refused");
        let attributes: Vec<_> = errors
            .0
            .iter()
            .filter_map(|d| d.attribute.clone())
            .collect();
        assert_eq!(attributes, ["name", "count"]);
    }
}
