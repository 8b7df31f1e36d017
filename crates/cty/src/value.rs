//! cty values. They carry no type: a [`Type`] supplied alongside says how to read them.

use std::collections::BTreeMap;

use crate::number::Number;
use crate::types::Type;

#[derive(Debug, Clone)]
pub enum Value {
    Null,
    /// Not known until apply. May appear at any depth.
    Unknown,
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    /// Elements in no particular order; equality ignores order.
    Set(Vec<Value>),
    Map(BTreeMap<String, Value>),
    /// Attributes missing from the map read as null.
    Object(BTreeMap<String, Value>),
    Tuple(Vec<Value>),
    /// A value read from, or written to, a slot typed [`Type::Dynamic`], with the concrete type
    /// the wire carries for it. Accessors look through it. Plain values written to a dynamic
    /// slot get a type inferred from their shape instead.
    Dynamic {
        ty: Type,
        value: Box<Value>,
    },
}

/// Shared null for readers that hand out references to absent attributes.
pub(crate) static NULL: Value = Value::Null;

impl Value {
    pub fn string(text: impl Into<String>) -> Value {
        Value::String(text.into())
    }

    pub fn number(number: impl Into<Number>) -> Value {
        Value::Number(number.into())
    }

    pub fn object<K: Into<String>>(attributes: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Object(
            attributes
                .into_iter()
                .map(|(name, value)| (name.into(), value))
                .collect(),
        )
    }

    /// The value itself, or what a [`Value::Dynamic`] wraps.
    pub fn concrete(&self) -> &Value {
        let mut value = self;
        while let Value::Dynamic { value: inner, .. } = value {
            value = inner;
        }
        value
    }

    pub fn is_null(&self) -> bool {
        matches!(self.concrete(), Value::Null)
    }

    /// Wholly unknown. A known object with unknown attributes is not; see [`Value::is_known`].
    pub fn is_unknown(&self) -> bool {
        matches!(self.concrete(), Value::Unknown)
    }

    /// Wholly known: no unknown anywhere inside.
    pub fn is_known(&self) -> bool {
        match self.concrete() {
            Value::Unknown => false,
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
                items.iter().all(Value::is_known)
            }
            Value::Map(entries) | Value::Object(entries) => entries.values().all(Value::is_known),
            _ => true,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self.concrete() {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.concrete() {
            Value::Bool(flag) => Some(*flag),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<&Number> {
        match self.concrete() {
            Value::Number(number) => Some(number),
            _ => None,
        }
    }

    /// An exact integer within i64; `None` for anything else.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }

    /// Elements of a list, set or tuple.
    pub fn as_elements(&self) -> Option<&[Value]> {
        match self.concrete() {
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// Entries of a map, or attributes of an object.
    pub fn as_entries(&self) -> Option<&BTreeMap<String, Value>> {
        match self.concrete() {
            Value::Map(entries) | Value::Object(entries) => Some(entries),
            _ => None,
        }
    }

    /// An object attribute. `None` when this is not an object or lacks the attribute (which
    /// means null for an object of a type that has it).
    pub fn get(&self, attribute: &str) -> Option<&Value> {
        match self.concrete() {
            Value::Object(attributes) => attributes.get(attribute),
            _ => None,
        }
    }

    /// Short description for error messages; never includes the value itself.
    pub(crate) fn kind_name(&self) -> &'static str {
        match self.concrete() {
            Value::Null => "null",
            Value::Unknown => "unknown",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Map(_) => "map",
            Value::Object(_) => "object",
            Value::Tuple(_) => "tuple",
            Value::Dynamic { .. } => "dynamic",
        }
    }

    /// A type for writing this value into a dynamic slot. Collections take their element type
    /// from the first element whose type can be told; empty ones become collections of dynamic.
    pub fn inferred_type(&self) -> Type {
        match self {
            Value::Null | Value::Unknown => Type::Dynamic,
            Value::Bool(_) => Type::Bool,
            Value::Number(_) => Type::Number,
            Value::String(_) => Type::String,
            Value::List(items) => Type::list(element_type(items.iter())),
            Value::Set(items) => Type::set(element_type(items.iter())),
            Value::Map(entries) => Type::map(element_type(entries.values())),
            Value::Object(attributes) => Type::Object(
                attributes
                    .iter()
                    .map(|(name, value)| (name.clone(), value.inferred_type()))
                    .collect(),
            ),
            Value::Tuple(items) => Type::Tuple(items.iter().map(Value::inferred_type).collect()),
            Value::Dynamic { ty, .. } => ty.clone(),
        }
    }
}

fn element_type<'a>(mut elements: impl Iterator<Item = &'a Value>) -> Type {
    elements
        .find_map(|element| match element.inferred_type() {
            Type::Dynamic => None,
            ty => Some(ty),
        })
        .unwrap_or(Type::Dynamic)
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) | (Value::Unknown, Value::Unknown) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => a == b,
            (Value::Set(a), Value::Set(b)) => same_elements(a, b),
            (Value::Map(a), Value::Map(b)) | (Value::Object(a), Value::Object(b)) => a == b,
            (Value::Dynamic { ty: ty_a, value: a }, Value::Dynamic { ty: ty_b, value: b }) => {
                ty_a == ty_b && a == b
            }
            _ => false,
        }
    }
}

/// Multiset equality; quadratic, which is fine for the small sets schemas hold.
fn same_elements(a: &[Value], b: &[Value]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut matched = vec![false; b.len()];
    a.iter().all(|element| {
        let found = b
            .iter()
            .enumerate()
            .position(|(index, candidate)| !matched[index] && candidate == element);
        if let Some(index) = found {
            matched[index] = true;
        }
        found.is_some()
    })
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::String(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::String(text)
    }
}

impl From<bool> for Value {
    fn from(flag: bool) -> Self {
        Value::Bool(flag)
    }
}

impl From<i64> for Value {
    fn from(number: i64) -> Self {
        Value::Number(Number::from_i64(number))
    }
}

impl From<Number> for Value {
    fn from(number: Number) -> Self {
        Value::Number(number)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` becomes null.
    fn from(option: Option<T>) -> Self {
        option.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_compare_without_order_but_with_multiplicity() {
        let a = Value::Set(vec!["x".into(), "y".into(), "y".into()]);
        let b = Value::Set(vec!["y".into(), "x".into(), "y".into()]);
        let c = Value::Set(vec!["y".into(), "x".into(), "x".into()]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(
            Value::List(vec!["x".into(), "y".into()]),
            Value::List(vec!["y".into(), "x".into()])
        );
    }

    #[test]
    fn knownness_is_recursive() {
        let value = Value::object([("a", Value::List(vec![Value::Unknown])), ("b", "x".into())]);
        assert!(!value.is_unknown());
        assert!(!value.is_known());
        assert!(Value::object([("a", Value::Null)]).is_known());
        assert!(Value::Unknown.is_unknown());
    }

    #[test]
    fn accessors_look_through_dynamic() {
        let value = Value::Dynamic {
            ty: Type::String,
            value: Box::new("hello".into()),
        };
        assert_eq!(value.as_str(), Some("hello"));
        assert!(!value.is_null());
        assert_eq!(value.inferred_type(), Type::String);
        assert_eq!(Value::number(7).as_i64(), Some(7));
        assert_eq!(Value::from(None::<&str>), Value::Null);
    }

    #[test]
    fn infers_types_from_shape() {
        let value = Value::object([
            ("tags", Value::List(vec![Value::Null, "a".into()])),
            ("empty", Value::Set(vec![])),
            ("pair", Value::Tuple(vec![true.into(), Value::number(1)])),
        ]);
        assert_eq!(
            value.inferred_type(),
            Type::object([
                ("tags", Type::list(Type::String)),
                ("empty", Type::set(Type::Dynamic)),
                ("pair", Type::Tuple(vec![Type::Bool, Type::Number])),
            ])
        );
    }
}
