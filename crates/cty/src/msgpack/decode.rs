//! Reading msgpack `DynamicValue` bytes against a type.

use std::collections::BTreeMap;

use rmp::Marker;

use crate::error::{CtyError, ErrorKind, PathStep};
use crate::number::Number;
use crate::types::Type;
use crate::value::Value;

/// Bounds recursion: types nest only so deep, but dynamic values bring their own types.
const MAX_DEPTH: usize = 128;

/// Decodes one msgpack value of type `ty`. Any extension value reads as unknown, whatever its
/// type code: cty sends 0, Terraform >= 1.6 sends 12 for unknowns with refinements.
pub fn decode_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, CtyError> {
    let mut reader = Reader {
        bytes,
        pos: 0,
        path: Vec::new(),
        depth: 0,
    };
    let value = reader.value(ty)?;
    let trailing = bytes.len() - reader.pos;
    if trailing > 0 {
        return Err(CtyError::root(ErrorKind::TrailingBytes(trailing)));
    }
    Ok(value)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: Vec<PathStep>,
    depth: usize,
}

impl<'a> Reader<'a> {
    fn fail(&self, kind: ErrorKind) -> CtyError {
        CtyError::at(&self.path, kind)
    }

    fn mismatch(&self, expected: &Type, marker: Marker) -> CtyError {
        self.fail(ErrorKind::Mismatch {
            expected: expected.to_string(),
            found: marker_name(marker),
        })
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], CtyError> {
        let bytes: &'a [u8] = self.bytes;
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| self.fail(ErrorKind::UnexpectedEnd))?;
        let taken = &bytes[self.pos..end];
        self.pos = end;
        Ok(taken)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], CtyError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn peek_marker(&self) -> Result<Marker, CtyError> {
        self.bytes
            .get(self.pos)
            .map(|byte| Marker::from_u8(*byte))
            .ok_or_else(|| self.fail(ErrorKind::UnexpectedEnd))
    }

    fn next_marker(&mut self) -> Result<Marker, CtyError> {
        let marker = self.peek_marker()?;
        self.pos += 1;
        Ok(marker)
    }

    fn read_u8(&mut self) -> Result<usize, CtyError> {
        Ok(usize::from(self.take_array::<1>()?[0]))
    }

    fn read_u16(&mut self) -> Result<usize, CtyError> {
        Ok(usize::from(u16::from_be_bytes(self.take_array()?)))
    }

    fn read_u32(&mut self) -> Result<usize, CtyError> {
        let value = u32::from_be_bytes(self.take_array()?);
        usize::try_from(value).map_err(|_| self.fail(ErrorKind::UnexpectedEnd))
    }

    fn with_step<T>(
        &mut self,
        step: PathStep,
        read: impl FnOnce(&mut Self) -> Result<T, CtyError>,
    ) -> Result<T, CtyError> {
        self.path.push(step);
        let result = read(self)?;
        self.path.pop();
        Ok(result)
    }

    fn value(&mut self, ty: &Type) -> Result<Value, CtyError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.fail(ErrorKind::TooDeep(MAX_DEPTH)));
        }
        let value = self.value_at_depth(ty)?;
        self.depth -= 1;
        Ok(value)
    }

    fn value_at_depth(&mut self, ty: &Type) -> Result<Value, CtyError> {
        let marker = self.peek_marker()?;
        if let Some(payload_len) = self.extension_payload_len(marker)? {
            self.take(1 + payload_len)?; // the extension type code, then its payload
            return Ok(Value::Unknown);
        }
        if *ty == Type::Dynamic {
            return self.dynamic();
        }
        if marker == Marker::Null {
            self.pos += 1;
            return Ok(Value::Null);
        }
        match ty {
            Type::String => self.string(ty).map(Value::String),
            Type::Number => self.number().map(Value::Number),
            Type::Bool => match self.next_marker()? {
                Marker::True => Ok(Value::Bool(true)),
                Marker::False => Ok(Value::Bool(false)),
                other => Err(self.mismatch(ty, other)),
            },
            Type::List(element) => self.elements(ty, element).map(Value::List),
            Type::Set(element) => self.elements(ty, element).map(Value::Set),
            Type::Map(element) => self.map(ty, element).map(Value::Map),
            Type::Object(attributes) => self.object(ty, attributes).map(Value::Object),
            Type::Tuple(elements) => self.tuple(ty, elements).map(Value::Tuple),
            Type::Dynamic => self.dynamic(),
        }
    }

    /// Consumes the marker and length of an extension value and returns its payload length;
    /// `None` (consuming nothing) when the next value is not an extension.
    fn extension_payload_len(&mut self, marker: Marker) -> Result<Option<usize>, CtyError> {
        let fixed = match marker {
            Marker::FixExt1 => 1,
            Marker::FixExt2 => 2,
            Marker::FixExt4 => 4,
            Marker::FixExt8 => 8,
            Marker::FixExt16 => 16,
            Marker::Ext8 | Marker::Ext16 | Marker::Ext32 => 0,
            _ => return Ok(None),
        };
        self.pos += 1;
        let len = match marker {
            Marker::Ext8 => self.read_u8()?,
            Marker::Ext16 => self.read_u16()?,
            Marker::Ext32 => self.read_u32()?,
            _ => fixed,
        };
        Ok(Some(len))
    }

    /// A dynamic slot holds nil, an unknown (handled by the caller) or `[type JSON, value]`.
    fn dynamic(&mut self) -> Result<Value, CtyError> {
        let marker = self.next_marker()?;
        if marker == Marker::Null {
            return Ok(Value::Null);
        }
        match self.array_len(marker) {
            Some(len) => {
                if len? != 2 {
                    return Err(self.fail(ErrorKind::InvalidDynamic(
                        "expected a [type, value] array of two elements",
                    )));
                }
            }
            None => return Err(self.mismatch(&Type::Dynamic, marker)),
        }
        let type_marker = self.next_marker()?;
        let type_json = self
            .bytes_or_string(type_marker)
            .unwrap_or_else(|| Err(self.fail(ErrorKind::InvalidDynamic("type must be bytes"))))?;
        let ty = Type::from_json(type_json).map_err(|error| self.fail(error.kind))?;
        if ty == Type::Dynamic {
            // A known value always has a concrete type; allowing this would let input nest
            // wrappers without consuming structure.
            return Err(self.fail(ErrorKind::InvalidDynamic("type must not be dynamic")));
        }
        let value = self.value(&ty)?;
        Ok(Value::Dynamic {
            ty,
            value: Box::new(value),
        })
    }

    /// Payload of a str or bin value; `None` if the marker is neither.
    fn bytes_or_string(&mut self, marker: Marker) -> Option<Result<&'a [u8], CtyError>> {
        let len = match marker {
            Marker::FixStr(len) => Ok(usize::from(len)),
            Marker::Str8 | Marker::Bin8 => self.read_u8(),
            Marker::Str16 | Marker::Bin16 => self.read_u16(),
            Marker::Str32 | Marker::Bin32 => self.read_u32(),
            _ => return None,
        };
        Some(len.and_then(|len| self.take(len)))
    }

    fn string(&mut self, ty: &Type) -> Result<String, CtyError> {
        let marker = self.next_marker()?;
        let bytes = self
            .bytes_or_string(marker)
            .unwrap_or_else(|| Err(self.mismatch(ty, marker)))?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| self.fail(ErrorKind::InvalidUtf8))
    }

    fn number(&mut self) -> Result<Number, CtyError> {
        let marker = self.next_marker()?;
        let number = match marker {
            Marker::FixPos(value) => Number::from_i64(i64::from(value)),
            Marker::FixNeg(value) => Number::from_i64(i64::from(value)),
            Marker::U8 => Number::from_i64(i64::from(u8::from_be_bytes(self.take_array()?))),
            Marker::U16 => Number::from_i64(i64::from(u16::from_be_bytes(self.take_array()?))),
            Marker::U32 => Number::from_i64(i64::from(u32::from_be_bytes(self.take_array()?))),
            Marker::U64 => Number::from_u64(u64::from_be_bytes(self.take_array()?)),
            Marker::I8 => Number::from_i64(i64::from(i8::from_be_bytes(self.take_array()?))),
            Marker::I16 => Number::from_i64(i64::from(i16::from_be_bytes(self.take_array()?))),
            Marker::I32 => Number::from_i64(i64::from(i32::from_be_bytes(self.take_array()?))),
            Marker::I64 => Number::from_i64(i64::from_be_bytes(self.take_array()?)),
            Marker::F32 => {
                let value = f32::from_be_bytes(self.take_array()?);
                self.float(f64::from(value))?
            }
            Marker::F64 => {
                let value = f64::from_be_bytes(self.take_array()?);
                self.float(value)?
            }
            _ => {
                let text = self
                    .bytes_or_string(marker)
                    .unwrap_or_else(|| Err(self.mismatch(&Type::Number, marker)))?;
                let text =
                    std::str::from_utf8(text).map_err(|_| self.fail(ErrorKind::InvalidUtf8))?;
                text.parse()
                    .map_err(|error| self.fail(ErrorKind::InvalidNumber(error)))?
            }
        };
        Ok(number)
    }

    fn float(&self, value: f64) -> Result<Number, CtyError> {
        Number::from_f64(value)
            .ok_or_else(|| self.fail(ErrorKind::InvalidNumber(crate::ParseNumberError::NaN)))
    }

    /// Length of an array header; `None` (consuming nothing more) if the marker is another kind.
    fn array_len(&mut self, marker: Marker) -> Option<Result<usize, CtyError>> {
        match marker {
            Marker::FixArray(len) => Some(Ok(usize::from(len))),
            Marker::Array16 => Some(self.read_u16()),
            Marker::Array32 => Some(self.read_u32()),
            _ => None,
        }
    }

    fn map_len(&mut self, marker: Marker) -> Option<Result<usize, CtyError>> {
        match marker {
            Marker::FixMap(len) => Some(Ok(usize::from(len))),
            Marker::Map16 => Some(self.read_u16()),
            Marker::Map32 => Some(self.read_u32()),
            _ => None,
        }
    }

    fn expect_array(&mut self, ty: &Type) -> Result<usize, CtyError> {
        let marker = self.next_marker()?;
        self.array_len(marker)
            .unwrap_or_else(|| Err(self.mismatch(ty, marker)))
    }

    fn expect_map(&mut self, ty: &Type) -> Result<usize, CtyError> {
        let marker = self.next_marker()?;
        self.map_len(marker)
            .unwrap_or_else(|| Err(self.mismatch(ty, marker)))
    }

    /// Never trusts a length for preallocation beyond what the remaining bytes could hold.
    fn capacity_for(&self, len: usize) -> usize {
        len.min(self.bytes.len() - self.pos)
    }

    fn elements(&mut self, ty: &Type, element: &Type) -> Result<Vec<Value>, CtyError> {
        let len = self.expect_array(ty)?;
        let mut items = Vec::with_capacity(self.capacity_for(len));
        for index in 0..len {
            items.push(self.with_step(PathStep::Index(index), |reader| reader.value(element))?);
        }
        Ok(items)
    }

    fn tuple(&mut self, ty: &Type, elements: &[Type]) -> Result<Vec<Value>, CtyError> {
        let len = self.expect_array(ty)?;
        if len != elements.len() {
            return Err(self.fail(ErrorKind::TupleLength {
                expected: elements.len(),
                found: len,
            }));
        }
        let mut items = Vec::with_capacity(len);
        for (index, element) in elements.iter().enumerate() {
            items.push(self.with_step(PathStep::Index(index), |reader| reader.value(element))?);
        }
        Ok(items)
    }

    fn key(&mut self) -> Result<String, CtyError> {
        self.string(&Type::String)
            .map_err(|error| match error.kind {
                ErrorKind::Mismatch { found, .. } => self.fail(ErrorKind::Mismatch {
                    expected: "string key".into(),
                    found,
                }),
                _ => error,
            })
    }

    fn map(&mut self, ty: &Type, element: &Type) -> Result<BTreeMap<String, Value>, CtyError> {
        let len = self.expect_map(ty)?;
        let mut entries = BTreeMap::new();
        for _ in 0..len {
            let key = self.key()?;
            let value =
                self.with_step(PathStep::Key(key.clone()), |reader| reader.value(element))?;
            if entries.contains_key(&key) {
                return Err(self.fail(ErrorKind::DuplicateKey(key)));
            }
            entries.insert(key, value);
        }
        Ok(entries)
    }

    /// Terraform sends every attribute; a missing one is taken as null all the same.
    fn object(
        &mut self,
        ty: &Type,
        attribute_types: &BTreeMap<String, Type>,
    ) -> Result<BTreeMap<String, Value>, CtyError> {
        let len = self.expect_map(ty)?;
        let mut attributes = BTreeMap::new();
        for _ in 0..len {
            let name = self.key()?;
            let Some(attribute_type) = attribute_types.get(&name) else {
                return Err(self.fail(ErrorKind::UnsupportedAttribute(name)));
            };
            let value = self.with_step(PathStep::Attr(name.clone()), |reader| {
                reader.value(attribute_type)
            })?;
            if attributes.contains_key(&name) {
                return Err(self.fail(ErrorKind::DuplicateKey(name)));
            }
            attributes.insert(name, value);
        }
        for name in attribute_types.keys() {
            if !attributes.contains_key(name) {
                attributes.insert(name.clone(), Value::Null);
            }
        }
        Ok(attributes)
    }
}

fn marker_name(marker: Marker) -> &'static str {
    match marker {
        Marker::Null => "nil",
        Marker::True | Marker::False => "bool",
        Marker::FixPos(_)
        | Marker::FixNeg(_)
        | Marker::U8
        | Marker::U16
        | Marker::U32
        | Marker::U64
        | Marker::I8
        | Marker::I16
        | Marker::I32
        | Marker::I64 => "integer",
        Marker::F32 | Marker::F64 => "float",
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => "string",
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => "binary",
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => "array",
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => "map",
        Marker::FixExt1
        | Marker::FixExt2
        | Marker::FixExt4
        | Marker::FixExt8
        | Marker::FixExt16
        | Marker::Ext8
        | Marker::Ext16
        | Marker::Ext32 => "extension",
        Marker::Reserved => "reserved byte 0xc1",
    }
}
