//! Writing values as msgpack `DynamicValue` bytes, the way go-cty does.

use std::collections::BTreeMap;
use std::convert::Infallible;

use rmp::encode::{self as wire, ByteBuf, ValueWriteError};

use crate::error::{CtyError, ErrorKind, PathStep};
use crate::number::{Number, WireForm};
use crate::types::Type;
use crate::value::Value;

/// cty's wholly-unknown value: fixext1, extension type 0, payload 0.
const UNKNOWN: [u8; 3] = [0xd4, 0x00, 0x00];

/// Encodes `value` as type `ty`. Objects get every attribute of the type, sorted by name,
/// absent ones as nil; an attribute the type lacks is an error.
pub fn encode_msgpack(value: &Value, ty: &Type) -> Result<Vec<u8>, CtyError> {
    let mut writer = Writer {
        out: ByteBuf::new(),
        path: Vec::new(),
    };
    writer.value(value, ty)?;
    Ok(writer.out.into_vec())
}

struct Writer {
    out: ByteBuf,
    path: Vec<PathStep>,
}

/// Writing into a `ByteBuf` cannot fail; this turns rmp's `Result` into its value without a panic path.
fn written<T>(result: Result<T, ValueWriteError<Infallible>>) -> T {
    match result {
        Ok(value) => value,
        Err(
            ValueWriteError::InvalidMarkerWrite(never) | ValueWriteError::InvalidDataWrite(never),
        ) => match never {},
    }
}

impl Writer {
    fn raw(&mut self, bytes: &[u8]) {
        self.out.as_mut_vec().extend_from_slice(bytes);
    }

    fn fail(&self, kind: ErrorKind) -> CtyError {
        CtyError::at(&self.path, kind)
    }

    fn mismatch(&self, expected: &Type, value: &Value) -> CtyError {
        self.fail(ErrorKind::Mismatch {
            expected: expected.to_string(),
            found: value.kind_name(),
        })
    }

    fn length(&self, len: usize) -> Result<u32, CtyError> {
        u32::try_from(len).map_err(|_| self.fail(ErrorKind::TooLarge(len)))
    }

    fn with_step(
        &mut self,
        step: PathStep,
        write: impl FnOnce(&mut Self) -> Result<(), CtyError>,
    ) -> Result<(), CtyError> {
        self.path.push(step);
        write(self)?;
        self.path.pop();
        Ok(())
    }

    fn value(&mut self, value: &Value, ty: &Type) -> Result<(), CtyError> {
        if *ty == Type::Dynamic {
            return self.dynamic(value);
        }
        match (value, ty) {
            (Value::Dynamic { value, .. }, _) => self.value(value, ty),
            (Value::Unknown, _) => {
                self.raw(&UNKNOWN);
                Ok(())
            }
            (Value::Null, _) => {
                self.raw(&[0xc0]);
                Ok(())
            }
            (Value::String(text), Type::String) => {
                self.string(text)?;
                Ok(())
            }
            (Value::Number(number), Type::Number) => self.number(number),
            (Value::Bool(flag), Type::Bool) => {
                self.raw(&[if *flag { 0xc3 } else { 0xc2 }]);
                Ok(())
            }
            (Value::List(items), Type::List(element)) | (Value::Set(items), Type::Set(element)) => {
                let len = self.length(items.len())?;
                written(wire::write_array_len(&mut self.out, len));
                for (index, item) in items.iter().enumerate() {
                    self.with_step(PathStep::Index(index), |writer| writer.value(item, element))?;
                }
                Ok(())
            }
            (Value::Tuple(items), Type::Tuple(elements)) => {
                if items.len() != elements.len() {
                    return Err(self.fail(ErrorKind::TupleLength {
                        expected: elements.len(),
                        found: items.len(),
                    }));
                }
                let len = self.length(items.len())?;
                written(wire::write_array_len(&mut self.out, len));
                for (index, (item, element)) in items.iter().zip(elements).enumerate() {
                    self.with_step(PathStep::Index(index), |writer| writer.value(item, element))?;
                }
                Ok(())
            }
            (Value::Map(entries), Type::Map(element)) => {
                let len = self.length(entries.len())?;
                written(wire::write_map_len(&mut self.out, len));
                for (key, item) in entries {
                    self.string(key)?;
                    self.with_step(PathStep::Key(key.clone()), |writer| {
                        writer.value(item, element)
                    })?;
                }
                Ok(())
            }
            (Value::Object(attributes), Type::Object(attribute_types)) => {
                self.object(attributes, attribute_types)
            }
            _ => Err(self.mismatch(ty, value)),
        }
    }

    fn object(
        &mut self,
        attributes: &BTreeMap<String, Value>,
        attribute_types: &BTreeMap<String, Type>,
    ) -> Result<(), CtyError> {
        if let Some(extra) = attributes
            .keys()
            .find(|name| !attribute_types.contains_key(*name))
        {
            return Err(self.fail(ErrorKind::UnsupportedAttribute(extra.clone())));
        }
        let len = self.length(attribute_types.len())?;
        written(wire::write_map_len(&mut self.out, len));
        for (name, attribute_type) in attribute_types {
            self.string(name)?;
            let attribute = attributes.get(name).unwrap_or(&crate::value::NULL);
            self.with_step(PathStep::Attr(name.clone()), |writer| {
                writer.value(attribute, attribute_type)
            })?;
        }
        Ok(())
    }

    /// Nil and unknown go as they are; anything else as `[type JSON as bin, value]`.
    fn dynamic(&mut self, value: &Value) -> Result<(), CtyError> {
        let (ty, inner) = match value {
            Value::Null => {
                self.raw(&[0xc0]);
                return Ok(());
            }
            Value::Unknown => {
                self.raw(&UNKNOWN);
                return Ok(());
            }
            Value::Dynamic { ty, value } if *ty == Type::Dynamic => return self.dynamic(value),
            Value::Dynamic { ty, value } => (ty.clone(), value.as_ref()),
            other => (other.inferred_type(), other),
        };
        written(wire::write_array_len(&mut self.out, 2));
        let type_json = ty.to_json();
        written(wire::write_bin(&mut self.out, &type_json));
        self.value(inner, &ty)
    }

    fn string(&mut self, text: &str) -> Result<(), CtyError> {
        let len = self.length(text.len())?;
        written(wire::write_str_len(&mut self.out, len));
        self.raw(text.as_bytes());
        Ok(())
    }

    fn number(&mut self, number: &Number) -> Result<(), CtyError> {
        match number.wire_form() {
            WireForm::Int(value) => {
                written(wire::write_sint(&mut self.out, value));
            }
            WireForm::Float(value) => written(wire::write_f64(&mut self.out, value)),
            WireForm::Text => self.string(&number.to_string())?,
        }
        Ok(())
    }
}
