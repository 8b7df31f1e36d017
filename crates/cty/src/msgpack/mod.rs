//! cty values as msgpack, the encoding of tfplugin6 `DynamicValue.msgpack`.

mod decode;
mod encode;

pub use decode::decode_msgpack;
pub use encode::encode_msgpack;

#[cfg(test)]
mod tests;
