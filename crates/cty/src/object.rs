//! Typed access to object values, so resource code never walks values by hand.

use std::collections::BTreeMap;
use std::fmt;

use crate::number::Number;
use crate::value::{NULL, Value};

/// An attribute that cannot be read the way the caller asked. Names the attribute (dotted for
/// nested objects), never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrError {
    /// Attribute path such as `database_name` or `owner.email`; empty for the object itself.
    pub attribute: String,
    pub problem: AttrProblem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrProblem {
    Null,
    Unknown,
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    /// A number that is not a whole number within the i64 range.
    NotAnI64,
}

impl fmt::Display for AttrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.attribute.is_empty() {
            f.write_str("object ")?;
        } else {
            write!(f, "attribute {:?} ", self.attribute)?;
        }
        match &self.problem {
            AttrProblem::Null => f.write_str("is null"),
            AttrProblem::Unknown => f.write_str("is unknown"),
            AttrProblem::WrongType { expected, found } => {
                write!(f, "must be {expected}, got {found}")
            }
            AttrProblem::NotAnI64 => f.write_str("must be a whole number within the 64-bit range"),
        }
    }
}

impl std::error::Error for AttrError {}

/// Reads attributes of a known object value.
///
/// `required_*` fail when the attribute is null or unknown; `optional_*` give `None` for null
/// and fail when unknown, so plan code checks [`ObjectReader::is_unknown`] first where
/// configuration may hold values not yet known.
#[derive(Debug, Clone)]
pub struct ObjectReader<'a> {
    attributes: &'a BTreeMap<String, Value>,
    /// Prefix for attribute names in errors: empty, or `parent.` for nested objects.
    prefix: String,
}

impl<'a> ObjectReader<'a> {
    /// Fails unless `value` is a known, non-null object.
    pub fn new(value: &'a Value) -> Result<Self, AttrError> {
        Self::nested(value, String::new())
    }

    fn nested(value: &'a Value, name: String) -> Result<Self, AttrError> {
        let problem = match value.concrete() {
            Value::Object(attributes) => {
                let prefix = if name.is_empty() { name } else { name + "." };
                return Ok(ObjectReader { attributes, prefix });
            }
            Value::Null => AttrProblem::Null,
            Value::Unknown => AttrProblem::Unknown,
            other => AttrProblem::WrongType {
                expected: "an object",
                found: other.kind_name(),
            },
        };
        Err(AttrError {
            attribute: name,
            problem,
        })
    }

    fn error(&self, name: &str, problem: AttrProblem) -> AttrError {
        AttrError {
            attribute: format!("{}{name}", self.prefix),
            problem,
        }
    }

    /// The attribute's value; null when the object lacks it.
    pub fn get(&self, name: &str) -> &'a Value {
        self.attributes.get(name).unwrap_or(&NULL)
    }

    pub fn is_null(&self, name: &str) -> bool {
        self.get(name).is_null()
    }

    /// Wholly unknown.
    pub fn is_unknown(&self, name: &str) -> bool {
        self.get(name).is_unknown()
    }

    /// Known all the way down.
    pub fn is_known(&self, name: &str) -> bool {
        self.get(name).is_known()
    }

    /// `None` for null; an error for unknown.
    fn present(&self, name: &str) -> Result<Option<&'a Value>, AttrError> {
        let value = self.get(name);
        match value.concrete() {
            Value::Null => Ok(None),
            Value::Unknown => Err(self.error(name, AttrProblem::Unknown)),
            _ => Ok(Some(value)),
        }
    }

    fn wrong_type(&self, name: &str, expected: &'static str, value: &Value) -> AttrError {
        self.error(
            name,
            AttrProblem::WrongType {
                expected,
                found: value.kind_name(),
            },
        )
    }

    pub fn optional_string(&self, name: &str) -> Result<Option<String>, AttrError> {
        self.optional_str(name).map(|text| text.map(str::to_owned))
    }

    /// Borrowing form of [`ObjectReader::optional_string`].
    pub fn optional_str(&self, name: &str) -> Result<Option<&'a str>, AttrError> {
        self.present(name)?
            .map(|value| {
                value
                    .as_str()
                    .ok_or_else(|| self.wrong_type(name, "a string", value))
            })
            .transpose()
    }

    pub fn optional_bool(&self, name: &str) -> Result<Option<bool>, AttrError> {
        self.present(name)?
            .map(|value| {
                value
                    .as_bool()
                    .ok_or_else(|| self.wrong_type(name, "a bool", value))
            })
            .transpose()
    }

    pub fn optional_number(&self, name: &str) -> Result<Option<&'a Number>, AttrError> {
        self.present(name)?
            .map(|value| {
                value
                    .as_number()
                    .ok_or_else(|| self.wrong_type(name, "a number", value))
            })
            .transpose()
    }

    pub fn optional_i64(&self, name: &str) -> Result<Option<i64>, AttrError> {
        self.optional_number(name)?
            .map(|number| {
                number
                    .as_i64()
                    .ok_or_else(|| self.error(name, AttrProblem::NotAnI64))
            })
            .transpose()
    }

    /// A list or set of strings. Null or unknown elements are errors naming `name[index]`.
    pub fn optional_strings(&self, name: &str) -> Result<Option<Vec<String>>, AttrError> {
        let Some(value) = self.present(name)? else {
            return Ok(None);
        };
        let elements = match value.concrete() {
            Value::List(items) | Value::Set(items) => items,
            _ => return Err(self.wrong_type(name, "a list or set of strings", value)),
        };
        elements
            .iter()
            .enumerate()
            .map(|(index, element)| {
                let element_name = format!("{name}[{index}]");
                match element.concrete() {
                    Value::String(text) => Ok(text.clone()),
                    Value::Null => Err(self.error(&element_name, AttrProblem::Null)),
                    Value::Unknown => Err(self.error(&element_name, AttrProblem::Unknown)),
                    other => Err(self.wrong_type(&element_name, "a string", other)),
                }
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// A nested object attribute (a single nested block); `None` when null.
    pub fn optional_object(&self, name: &str) -> Result<Option<ObjectReader<'a>>, AttrError> {
        self.present(name)?
            .map(|value| ObjectReader::nested(value, format!("{}{name}", self.prefix)))
            .transpose()
    }

    pub fn required_string(&self, name: &str) -> Result<String, AttrError> {
        self.optional_string(name)?
            .ok_or_else(|| self.error(name, AttrProblem::Null))
    }

    pub fn required_str(&self, name: &str) -> Result<&'a str, AttrError> {
        self.optional_str(name)?
            .ok_or_else(|| self.error(name, AttrProblem::Null))
    }

    pub fn required_bool(&self, name: &str) -> Result<bool, AttrError> {
        self.optional_bool(name)?
            .ok_or_else(|| self.error(name, AttrProblem::Null))
    }

    pub fn required_i64(&self, name: &str) -> Result<i64, AttrError> {
        self.optional_i64(name)?
            .ok_or_else(|| self.error(name, AttrProblem::Null))
    }

    pub fn required_object(&self, name: &str) -> Result<ObjectReader<'a>, AttrError> {
        self.optional_object(name)?
            .ok_or_else(|| self.error(name, AttrProblem::Null))
    }
}

/// Builds an object value attribute by attribute. Attributes left out encode as null; names
/// the object type lacks are rejected when the value is encoded.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ObjectBuilder {
    attributes: BTreeMap<String, Value>,
}

impl ObjectBuilder {
    pub fn new() -> Self {
        ObjectBuilder::default()
    }

    /// Starts from the attributes of an existing object value (for example the planned state,
    /// to fill in what apply computed); anything else starts empty.
    pub fn from_object(value: &Value) -> Self {
        match value.concrete() {
            Value::Object(attributes) => ObjectBuilder {
                attributes: attributes.clone(),
            },
            _ => ObjectBuilder::default(),
        }
    }

    pub fn value(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    pub fn string(self, name: impl Into<String>, text: impl Into<String>) -> Self {
        self.value(name, Value::String(text.into()))
    }

    /// `None` becomes null.
    pub fn optional_string(self, name: impl Into<String>, text: Option<impl Into<String>>) -> Self {
        self.value(
            name,
            text.map_or(Value::Null, |text| Value::String(text.into())),
        )
    }

    pub fn bool(self, name: impl Into<String>, flag: bool) -> Self {
        self.value(name, Value::Bool(flag))
    }

    pub fn i64(self, name: impl Into<String>, number: i64) -> Self {
        self.value(name, Value::from(number))
    }

    pub fn number(self, name: impl Into<String>, number: Number) -> Self {
        self.value(name, Value::Number(number))
    }

    pub fn strings<S: Into<String>>(
        self,
        name: impl Into<String>,
        texts: impl IntoIterator<Item = S>,
    ) -> Self {
        let items = texts
            .into_iter()
            .map(|text| Value::String(text.into()))
            .collect();
        self.value(name, Value::List(items))
    }

    pub fn unknown(self, name: impl Into<String>) -> Self {
        self.value(name, Value::Unknown)
    }

    pub fn null(self, name: impl Into<String>) -> Self {
        self.value(name, Value::Null)
    }

    pub fn build(self) -> Value {
        Value::Object(self.attributes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Value {
        ObjectBuilder::new()
            .string("id", "acme")
            .string("database_name", "acme")
            .bool("deletion_protection", true)
            .i64("connection_limit", 10)
            .unknown("schema_version")
            .null("email")
            .value("plan", true)
            .value(
                "owner",
                ObjectBuilder::new()
                    .string("name", "Ada")
                    .null("email")
                    .build(),
            )
            .strings("roles", ["admin", "developer"])
            .value("big", Value::Number("1e30".parse().expect("number")))
            .build()
    }

    #[test]
    fn reads_typed_attributes() {
        let value = tenant();
        let reader = ObjectReader::new(&value).expect("object");
        assert_eq!(
            reader.required_string("database_name"),
            Ok("acme".to_owned())
        );
        assert_eq!(reader.required_str("id"), Ok("acme"));
        assert_eq!(reader.optional_string("email"), Ok(None));
        assert_eq!(reader.optional_string("missing"), Ok(None));
        assert_eq!(reader.optional_bool("deletion_protection"), Ok(Some(true)));
        assert_eq!(reader.required_i64("connection_limit"), Ok(10));
        assert_eq!(
            reader.optional_strings("roles"),
            Ok(Some(vec!["admin".to_owned(), "developer".to_owned()]))
        );
        assert!(reader.is_unknown("schema_version"));
        assert!(!reader.is_known("schema_version"));
        assert!(reader.is_null("email"));
        assert!(reader.is_null("missing"));
        let owner = reader.required_object("owner").expect("nested object");
        assert_eq!(owner.required_string("name"), Ok("Ada".to_owned()));
    }

    #[test]
    fn errors_name_the_attribute() {
        let value = tenant();
        let reader = ObjectReader::new(&value).expect("object");

        let error = reader.required_string("email").expect_err("null");
        assert_eq!(error.attribute, "email");
        assert_eq!(error.to_string(), r#"attribute "email" is null"#);

        let error = reader
            .optional_string("schema_version")
            .expect_err("unknown");
        assert_eq!(
            error.to_string(),
            r#"attribute "schema_version" is unknown"#
        );

        let error = reader.required_string("plan").expect_err("bool");
        assert_eq!(
            error.to_string(),
            r#"attribute "plan" must be a string, got bool"#
        );

        let error = reader.optional_i64("big").expect_err("too big");
        assert_eq!(error.problem, AttrProblem::NotAnI64);

        let owner = reader.required_object("owner").expect("nested object");
        let error = owner.required_string("email").expect_err("null");
        assert_eq!(error.to_string(), r#"attribute "owner.email" is null"#);

        let error = reader.optional_strings("id").expect_err("not a list");
        assert_eq!(error.attribute, "id");
    }

    #[test]
    fn reader_needs_a_known_object() {
        let null = ObjectReader::new(&Value::Null).expect_err("null");
        assert_eq!(null.to_string(), "object is null");
        let unknown = ObjectReader::new(&Value::Unknown).expect_err("unknown");
        assert_eq!(unknown.problem, AttrProblem::Unknown);
        let list_with_null = Value::object([("tags", Value::List(vec![Value::Null]))]);
        let error = ObjectReader::new(&list_with_null)
            .expect("object")
            .optional_strings("tags")
            .expect_err("null element");
        assert_eq!(error.attribute, "tags[0]");
    }

    #[test]
    fn builder_starts_from_an_existing_object() {
        let planned = tenant();
        let applied = ObjectBuilder::from_object(&planned)
            .string("schema_version", "3")
            .build();
        assert_eq!(
            applied.get("schema_version").and_then(Value::as_str),
            Some("3")
        );
        assert_eq!(applied.get("id"), planned.get("id"));
    }
}
