//! cty types and their JSON encoding (`Schema.Attribute.type` in tfplugin6).

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{CtyError, ErrorKind};
use crate::json::syntax::{self, JsonNode};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    String,
    Number,
    Bool,
    /// Any type; values in such a slot carry their concrete type on the wire.
    Dynamic,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Object(BTreeMap<String, Type>),
    Tuple(Vec<Type>),
}

impl Type {
    pub fn list(element: Type) -> Type {
        Type::List(Box::new(element))
    }

    pub fn set(element: Type) -> Type {
        Type::Set(Box::new(element))
    }

    pub fn map(element: Type) -> Type {
        Type::Map(Box::new(element))
    }

    pub fn object<K: Into<String>>(attributes: impl IntoIterator<Item = (K, Type)>) -> Type {
        Type::Object(
            attributes
                .into_iter()
                .map(|(name, ty)| (name.into(), ty))
                .collect(),
        )
    }

    /// The type of an object attribute; `None` for other types or unknown names.
    pub fn attribute(&self, name: &str) -> Option<&Type> {
        match self {
            Type::Object(attributes) => attributes.get(name),
            _ => None,
        }
    }

    /// cty's JSON type encoding, compact, object attributes sorted by name:
    /// `"string"`, `["list","string"]`, `["object",{"a":"number"}]`, `["tuple",["bool"]]`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Type::String => out.extend_from_slice(br#""string""#),
            Type::Number => out.extend_from_slice(br#""number""#),
            Type::Bool => out.extend_from_slice(br#""bool""#),
            Type::Dynamic => out.extend_from_slice(br#""dynamic""#),
            Type::List(element) => write_collection(out, "list", element),
            Type::Set(element) => write_collection(out, "set", element),
            Type::Map(element) => write_collection(out, "map", element),
            Type::Object(attributes) => {
                out.extend_from_slice(br#"["object",{"#);
                for (index, (name, ty)) in attributes.iter().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    syntax::write_string(out, name);
                    out.push(b':');
                    ty.write_json(out);
                }
                out.extend_from_slice(b"}]");
            }
            Type::Tuple(elements) => {
                out.extend_from_slice(br#"["tuple",["#);
                for (index, ty) in elements.iter().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    ty.write_json(out);
                }
                out.extend_from_slice(b"]]");
            }
        }
    }

    /// Parses cty's JSON type encoding. An object type's third element (its optional
    /// attributes, used only in type constraints) is accepted and ignored.
    pub fn from_json(bytes: &[u8]) -> Result<Type, CtyError> {
        let node = syntax::parse(bytes)?;
        Type::from_node(&node).map_err(|reason| CtyError::root(ErrorKind::InvalidType(reason)))
    }

    pub(crate) fn from_node(node: &JsonNode) -> Result<Type, String> {
        match node {
            JsonNode::String(name) => match name.as_str() {
                "string" => Ok(Type::String),
                "number" => Ok(Type::Number),
                "bool" => Ok(Type::Bool),
                "dynamic" => Ok(Type::Dynamic),
                other => Err(format!("unknown type name {other:?}")),
            },
            JsonNode::Array(items) => {
                let Some(JsonNode::String(kind)) = items.first() else {
                    return Err("a type array must start with the type kind".into());
                };
                match (kind.as_str(), &items[1..]) {
                    ("list", [element]) => Ok(Type::list(Type::from_node(element)?)),
                    ("set", [element]) => Ok(Type::set(Type::from_node(element)?)),
                    ("map", [element]) => Ok(Type::map(Type::from_node(element)?)),
                    ("object", [JsonNode::Object(members)] | [JsonNode::Object(members), _]) => {
                        let mut attributes = BTreeMap::new();
                        for (name, member) in members {
                            let ty = Type::from_node(member)?;
                            if attributes.insert(name.clone(), ty).is_some() {
                                return Err(format!("duplicate object attribute {name:?}"));
                            }
                        }
                        Ok(Type::Object(attributes))
                    }
                    ("tuple", [JsonNode::Array(elements)]) => Ok(Type::Tuple(
                        elements
                            .iter()
                            .map(Type::from_node)
                            .collect::<Result<_, _>>()?,
                    )),
                    ("list" | "set" | "map" | "object" | "tuple", _) => {
                        Err(format!("malformed {kind} type"))
                    }
                    (other, _) => Err(format!("unknown type kind {other:?}")),
                }
            }
            other => Err(format!(
                "a type must be a string or an array, got {}",
                other.kind_name()
            )),
        }
    }
}

fn write_collection(out: &mut Vec<u8>, kind: &str, element: &Type) {
    out.extend_from_slice(format!(r#"["{kind}","#).as_bytes());
    element.write_json(out);
    out.push(b']');
}

/// Terraform's friendly names: `string`, `list of number`, `object`.
impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::String => f.write_str("string"),
            Type::Number => f.write_str("number"),
            Type::Bool => f.write_str("bool"),
            Type::Dynamic => f.write_str("dynamic"),
            Type::List(element) => write!(f, "list of {element}"),
            Type::Set(element) => write!(f, "set of {element}"),
            Type::Map(element) => write!(f, "map of {element}"),
            Type::Object(_) => f.write_str("object"),
            Type::Tuple(_) => f.write_str("tuple"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(ty: &Type) -> String {
        String::from_utf8(ty.to_json()).expect("UTF-8")
    }

    #[test]
    fn primitive_and_collection_types_encode_exactly() {
        assert_eq!(json(&Type::String), r#""string""#);
        assert_eq!(json(&Type::Number), r#""number""#);
        assert_eq!(json(&Type::Bool), r#""bool""#);
        assert_eq!(json(&Type::Dynamic), r#""dynamic""#);
        assert_eq!(json(&Type::list(Type::String)), r#"["list","string"]"#);
        assert_eq!(json(&Type::set(Type::Number)), r#"["set","number"]"#);
        assert_eq!(json(&Type::map(Type::Bool)), r#"["map","bool"]"#);
        assert_eq!(json(&Type::Tuple(vec![])), r#"["tuple",[]]"#);
        assert_eq!(json(&Type::Object(BTreeMap::new())), r#"["object",{}]"#);
    }

    #[test]
    fn nested_types_encode_exactly_with_sorted_attributes() {
        let ty = Type::object([
            (
                "users",
                Type::list(Type::object([
                    ("name", Type::String),
                    ("admin", Type::Bool),
                ])),
            ),
            ("labels", Type::map(Type::set(Type::String))),
            ("pair", Type::Tuple(vec![Type::Number, Type::Dynamic])),
        ]);
        assert_eq!(
            json(&ty),
            r#"["object",{"labels":["map",["set","string"]],"pair":["tuple",["number","dynamic"]],"users":["list",["object",{"admin":"bool","name":"string"}]]}]"#
        );
        assert_eq!(Type::from_json(&ty.to_json()), Ok(ty));
    }

    #[test]
    fn parses_with_whitespace_and_optional_attribute_lists() {
        let parsed = Type::from_json(
            br#" [ "object" , { "b" : "number", "a": ["list", "string"] }, ["a"] ] "#,
        );
        assert_eq!(
            parsed,
            Ok(Type::object([
                ("a", Type::list(Type::String)),
                ("b", Type::Number)
            ]))
        );
    }

    #[test]
    fn rejects_malformed_types() {
        for text in [
            r#""strng""#,
            r#"["list"]"#,
            r#"["list","string","extra"]"#,
            r#"["object",["a"]]"#,
            r#"["tuple","string"]"#,
            r#"["thing","string"]"#,
            r#"[]"#,
            r#"42"#,
            r#"["object",{"a":"string","a":"bool"}]"#,
        ] {
            let error = Type::from_json(text.as_bytes()).expect_err(text);
            assert!(
                matches!(error.kind, ErrorKind::InvalidType(_)),
                "{text}: {error}"
            );
        }
        assert!(matches!(
            Type::from_json(b"[\"list\"").map_err(|error| error.kind),
            Err(ErrorKind::InvalidJson { .. })
        ));
    }

    #[test]
    fn friendly_names() {
        assert_eq!(
            Type::list(Type::map(Type::String)).to_string(),
            "list of map of string"
        );
    }
}
