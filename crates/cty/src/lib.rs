//! cty types and values as Terraform's plugin protocol carries them.
//!
//! Terraform exchanges resource data as go-cty values: msgpack in `DynamicValue.msgpack`, JSON
//! in stored state (`RawState.json`) and JSON type descriptions in schemas. Values here carry no
//! type; every codec takes the [`Type`] the schema declares. Resource code reads and builds
//! objects through [`ObjectReader`] and [`ObjectBuilder`].

mod error;
mod json;
mod msgpack;
mod number;
mod object;
mod types;
mod value;

pub use error::{CtyError, ErrorKind, Path, PathStep};
pub use json::{decode_json, encode_json};
pub use msgpack::{decode_msgpack, encode_msgpack};
pub use number::{Number, ParseNumberError};
pub use object::{AttrError, AttrProblem, ObjectBuilder, ObjectReader};
pub use types::Type;
pub use value::Value;
