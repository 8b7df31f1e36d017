//! cty values as JSON, the form Terraform state keeps (`RawState.json` in UpgradeResourceState).
//!
//! Reading is as lenient as go-cty's: strings stand in for numbers and bools, and numbers and
//! bools for strings, because older state written by other SDKs does that.

pub(crate) mod syntax;

use std::collections::BTreeMap;

use crate::error::{CtyError, ErrorKind, PathStep};
use crate::number::Number;
use crate::types::Type;
use crate::value::{NULL, Value};
use syntax::JsonNode;

/// Decodes a JSON value of type `ty`. Missing object attributes read as null.
pub fn decode_json(bytes: &[u8], ty: &Type) -> Result<Value, CtyError> {
    let node = syntax::parse(bytes)?;
    let mut path = Vec::new();
    from_node(&node, ty, &mut path)
}

/// Encodes a value as compact JSON, object attributes and map keys sorted. Unknown values and
/// infinities have no JSON form and are errors.
pub fn encode_json(value: &Value, ty: &Type) -> Result<Vec<u8>, CtyError> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    write_value(&mut out, value, ty, &mut path)?;
    Ok(out)
}

fn mismatch(path: &[PathStep], expected: &Type, found: &'static str) -> CtyError {
    CtyError::at(
        path,
        ErrorKind::Mismatch {
            expected: expected.to_string(),
            found,
        },
    )
}

fn nested<T>(
    path: &mut Vec<PathStep>,
    step: PathStep,
    read: impl FnOnce(&mut Vec<PathStep>) -> Result<T, CtyError>,
) -> Result<T, CtyError> {
    path.push(step);
    let result = read(path)?;
    path.pop();
    Ok(result)
}

fn from_node(node: &JsonNode, ty: &Type, path: &mut Vec<PathStep>) -> Result<Value, CtyError> {
    if *node == JsonNode::Null {
        return Ok(Value::Null);
    }
    match (ty, node) {
        (Type::Dynamic, _) => dynamic_from_node(node, path),
        (Type::String, JsonNode::String(text) | JsonNode::Number(text)) => {
            Ok(Value::String(text.clone()))
        }
        (Type::String, JsonNode::Bool(flag)) => Ok(Value::String(flag.to_string())),
        (Type::Number, JsonNode::Number(text) | JsonNode::String(text)) => text
            .parse::<Number>()
            .map(Value::Number)
            .map_err(|error| CtyError::at(path, ErrorKind::InvalidNumber(error))),
        (Type::Bool, JsonNode::Bool(flag)) => Ok(Value::Bool(*flag)),
        (Type::Bool, JsonNode::String(text)) if text == "true" || text == "false" => {
            Ok(Value::Bool(text == "true"))
        }
        (Type::List(element), JsonNode::Array(items)) => {
            elements_from_nodes(items, element, path).map(Value::List)
        }
        (Type::Set(element), JsonNode::Array(items)) => {
            elements_from_nodes(items, element, path).map(Value::Set)
        }
        (Type::Tuple(elements), JsonNode::Array(items)) => {
            if items.len() != elements.len() {
                return Err(CtyError::at(
                    path,
                    ErrorKind::TupleLength {
                        expected: elements.len(),
                        found: items.len(),
                    },
                ));
            }
            let mut values = Vec::with_capacity(items.len());
            for (index, (item, element)) in items.iter().zip(elements).enumerate() {
                values.push(nested(path, PathStep::Index(index), |path| {
                    from_node(item, element, path)
                })?);
            }
            Ok(Value::Tuple(values))
        }
        (Type::Map(element), JsonNode::Object(members)) => {
            let mut entries = BTreeMap::new();
            for (key, member) in members {
                let value = nested(path, PathStep::Key(key.clone()), |path| {
                    from_node(member, element, path)
                })?;
                if entries.insert(key.clone(), value).is_some() {
                    return Err(CtyError::at(path, ErrorKind::DuplicateKey(key.clone())));
                }
            }
            Ok(Value::Map(entries))
        }
        (Type::Object(attribute_types), JsonNode::Object(members)) => {
            let mut attributes = BTreeMap::new();
            for (name, member) in members {
                let Some(attribute_type) = attribute_types.get(name) else {
                    return Err(CtyError::at(
                        path,
                        ErrorKind::UnsupportedAttribute(name.clone()),
                    ));
                };
                let value = nested(path, PathStep::Attr(name.clone()), |path| {
                    from_node(member, attribute_type, path)
                })?;
                if attributes.insert(name.clone(), value).is_some() {
                    return Err(CtyError::at(path, ErrorKind::DuplicateKey(name.clone())));
                }
            }
            for name in attribute_types.keys() {
                attributes.entry(name.clone()).or_insert(Value::Null);
            }
            Ok(Value::Object(attributes))
        }
        _ => Err(mismatch(path, ty, node.kind_name())),
    }
}

fn elements_from_nodes(
    items: &[JsonNode],
    element: &Type,
    path: &mut Vec<PathStep>,
) -> Result<Vec<Value>, CtyError> {
    let mut values = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        values.push(nested(path, PathStep::Index(index), |path| {
            from_node(item, element, path)
        })?);
    }
    Ok(values)
}

/// go-cty writes a dynamically typed value as `{"value": …, "type": …}`.
fn dynamic_from_node(node: &JsonNode, path: &mut Vec<PathStep>) -> Result<Value, CtyError> {
    let JsonNode::Object(members) = node else {
        return Err(mismatch(path, &Type::Dynamic, node.kind_name()));
    };
    let mut ty = None;
    let mut value = None;
    for (key, member) in members {
        let slot = match key.as_str() {
            "type" => &mut ty,
            "value" => &mut value,
            _ => {
                return Err(CtyError::at(
                    path,
                    ErrorKind::InvalidDynamic("only \"type\" and \"value\" keys are allowed"),
                ));
            }
        };
        if slot.replace(member).is_some() {
            return Err(CtyError::at(path, ErrorKind::DuplicateKey(key.clone())));
        }
    }
    let (Some(ty), Some(value)) = (ty, value) else {
        return Err(CtyError::at(
            path,
            ErrorKind::InvalidDynamic("both \"type\" and \"value\" are required"),
        ));
    };
    let ty =
        Type::from_node(ty).map_err(|reason| CtyError::at(path, ErrorKind::InvalidType(reason)))?;
    if ty == Type::Dynamic {
        return Err(CtyError::at(
            path,
            ErrorKind::InvalidDynamic("type must not be dynamic"),
        ));
    }
    let value = from_node(value, &ty, path)?;
    Ok(Value::Dynamic {
        ty,
        value: Box::new(value),
    })
}

fn write_value(
    out: &mut Vec<u8>,
    value: &Value,
    ty: &Type,
    path: &mut Vec<PathStep>,
) -> Result<(), CtyError> {
    if *ty == Type::Dynamic {
        return write_dynamic(out, value, path);
    }
    match (value, ty) {
        (Value::Dynamic { value, .. }, _) => write_value(out, value, ty, path),
        (Value::Unknown, _) => Err(CtyError::at(path, ErrorKind::UnknownInJson)),
        (Value::Null, _) => {
            out.extend_from_slice(b"null");
            Ok(())
        }
        (Value::String(text), Type::String) => {
            syntax::write_string(out, text);
            Ok(())
        }
        (Value::Number(number), Type::Number) => {
            if number.is_infinite() {
                return Err(CtyError::at(path, ErrorKind::InfinityInJson));
            }
            out.extend_from_slice(number.to_string().as_bytes());
            Ok(())
        }
        (Value::Bool(flag), Type::Bool) => {
            out.extend_from_slice(if *flag { b"true" } else { b"false" });
            Ok(())
        }
        (Value::List(items), Type::List(element)) | (Value::Set(items), Type::Set(element)) => {
            write_array(out, items.iter().map(|item| (item, element.as_ref())), path)
        }
        (Value::Tuple(items), Type::Tuple(elements)) => {
            if items.len() != elements.len() {
                return Err(CtyError::at(
                    path,
                    ErrorKind::TupleLength {
                        expected: elements.len(),
                        found: items.len(),
                    },
                ));
            }
            write_array(out, items.iter().zip(elements), path)
        }
        (Value::Map(entries), Type::Map(element)) => write_members(
            out,
            entries
                .iter()
                .map(|(key, item)| (key, PathStep::Key(key.clone()), item, element.as_ref())),
            path,
        ),
        (Value::Object(attributes), Type::Object(attribute_types)) => {
            if let Some(extra) = attributes
                .keys()
                .find(|name| !attribute_types.contains_key(*name))
            {
                return Err(CtyError::at(
                    path,
                    ErrorKind::UnsupportedAttribute(extra.clone()),
                ));
            }
            write_members(
                out,
                attribute_types.iter().map(|(name, attribute_type)| {
                    let attribute = attributes.get(name).unwrap_or(&NULL);
                    (
                        name,
                        PathStep::Attr(name.clone()),
                        attribute,
                        attribute_type,
                    )
                }),
                path,
            )
        }
        _ => Err(mismatch(path, ty, value.kind_name())),
    }
}

fn write_array<'a>(
    out: &mut Vec<u8>,
    items: impl Iterator<Item = (&'a Value, &'a Type)>,
    path: &mut Vec<PathStep>,
) -> Result<(), CtyError> {
    out.push(b'[');
    for (index, (item, ty)) in items.enumerate() {
        if index > 0 {
            out.push(b',');
        }
        nested(path, PathStep::Index(index), |path| {
            write_value(out, item, ty, path)
        })?;
    }
    out.push(b']');
    Ok(())
}

fn write_members<'a>(
    out: &mut Vec<u8>,
    members: impl Iterator<Item = (&'a String, PathStep, &'a Value, &'a Type)>,
    path: &mut Vec<PathStep>,
) -> Result<(), CtyError> {
    out.push(b'{');
    for (index, (key, step, item, ty)) in members.enumerate() {
        if index > 0 {
            out.push(b',');
        }
        syntax::write_string(out, key);
        out.push(b':');
        nested(path, step, |path| write_value(out, item, ty, path))?;
    }
    out.push(b'}');
    Ok(())
}

fn write_dynamic(
    out: &mut Vec<u8>,
    value: &Value,
    path: &mut Vec<PathStep>,
) -> Result<(), CtyError> {
    let (ty, inner) = match value {
        Value::Null => {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        Value::Unknown => return Err(CtyError::at(path, ErrorKind::UnknownInJson)),
        Value::Dynamic { ty, value } if *ty == Type::Dynamic => {
            return write_dynamic(out, value, path);
        }
        Value::Dynamic { ty, value } => (ty.clone(), value.as_ref()),
        other => (other.inferred_type(), other),
    };
    out.extend_from_slice(br#"{"value":"#);
    write_value(out, inner, &ty, path)?;
    out.extend_from_slice(br#","type":"#);
    out.extend_from_slice(&ty.to_json());
    out.push(b'}');
    Ok(())
}

#[cfg(test)]
mod tests;
