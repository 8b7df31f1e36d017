use std::collections::BTreeMap;

use super::{decode_json, encode_json};
use crate::{ErrorKind, Number, ObjectReader, Type, Value};

fn number(text: &str) -> Value {
    Value::Number(text.parse().expect("valid number"))
}

fn text(value: &Value, ty: &Type) -> String {
    String::from_utf8(encode_json(value, ty).expect("encodes")).expect("UTF-8")
}

fn assert_round_trip(value: Value, ty: &Type) {
    let bytes = encode_json(&value, ty).expect("encodes");
    assert_eq!(
        decode_json(&bytes, ty),
        Ok(value),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
}

fn tenant_type() -> Type {
    Type::object([
        ("id", Type::String),
        ("database_name", Type::String),
        ("plan", Type::String),
        ("deletion_protection", Type::Bool),
        ("connection_limit", Type::Number),
    ])
}

#[test]
fn values_of_every_type_round_trip() {
    assert_round_trip(
        Value::string("a \"quoted\" <tag> & ünïcode\n"),
        &Type::String,
    );
    assert_round_trip(Value::Bool(false), &Type::Bool);
    for text in [
        "0",
        "-7",
        "0.5",
        "0.1",
        "18446744073709551615",
        "1180591620717411303425",
        "123456789.123456789123456789",
        "1e300",
    ] {
        assert_round_trip(number(text), &Type::Number);
    }
    for value in [1e300, 0.1, -2.5e-10] {
        assert_round_trip(
            Value::Number(Number::from_f64(value).expect("not NaN")),
            &Type::Number,
        );
    }
    assert_round_trip(
        Value::List(vec!["a".into(), Value::Null]),
        &Type::list(Type::String),
    );
    assert_round_trip(
        Value::Set(vec![number("1"), number("2")]),
        &Type::set(Type::Number),
    );
    assert_round_trip(
        Value::Map(BTreeMap::from([("k".to_owned(), Value::Bool(true))])),
        &Type::map(Type::Bool),
    );
    assert_round_trip(
        Value::Tuple(vec!["a".into(), number("2")]),
        &Type::Tuple(vec![Type::String, Type::Number]),
    );
    assert_round_trip(
        Value::object([
            (
                "owner",
                Value::object([("name", "ada".into()), ("email", Value::Null)]),
            ),
            ("tags", Value::Null),
        ]),
        &Type::object([
            (
                "owner",
                Type::object([("name", Type::String), ("email", Type::String)]),
            ),
            ("tags", Type::list(Type::String)),
        ]),
    );
    assert_round_trip(Value::Null, &tenant_type());
}

#[test]
fn objects_encode_compactly_with_every_attribute_sorted() {
    let value = Value::object([
        ("plan", "free".into()),
        ("id", "acme".into()),
        ("connection_limit", Value::from(5)),
        ("deletion_protection", Value::Bool(false)),
    ]);
    assert_eq!(
        text(&value, &tenant_type()),
        r#"{"connection_limit":5,"database_name":null,"deletion_protection":false,"id":"acme","plan":"free"}"#
    );
    assert_eq!(
        text(&number("1180591620717411303425"), &Type::Number),
        "1180591620717411303425"
    );
    assert_eq!(text(&number("-0.001"), &Type::Number), "-0.001");
}

#[test]
fn state_json_decodes_with_missing_attributes_as_null() {
    let state = br#"{
        "id": "acme",
        "database_name": "acme",
        "connection_limit": 25,
        "deletion_protection": true
    }"#;
    let value = decode_json(state, &tenant_type()).expect("decodes");
    let reader = ObjectReader::new(&value).expect("object");
    assert_eq!(
        reader.required_string("database_name"),
        Ok("acme".to_owned())
    );
    assert_eq!(reader.required_i64("connection_limit"), Ok(25));
    assert_eq!(reader.required_bool("deletion_protection"), Ok(true));
    assert_eq!(value.get("plan"), Some(&Value::Null));
}

#[test]
fn large_numbers_in_state_are_exact() {
    let value = decode_json(
        b"[18446744073709551617, 0.1, 1e2]",
        &Type::list(Type::Number),
    )
    .expect("decodes");
    assert_eq!(
        value,
        Value::List(vec![
            number("18446744073709551617"),
            number("0.1"),
            number("100")
        ])
    );
    // The decimal 0.1 is not the float64 0.1, so it must travel on as text.
    assert_ne!(
        number("0.1"),
        Value::Number(Number::from_f64(0.1).expect("not NaN"))
    );
    let bytes = crate::encode_msgpack(&value, &Type::list(Type::Number)).expect("encodes");
    assert_eq!(&bytes[bytes.len() - 5..], &[0xa3, b'0', b'.', b'1', 0x64]);
}

#[test]
fn decoding_is_as_lenient_as_go_cty() {
    let ty = Type::object([("n", Type::Number), ("b", Type::Bool), ("s", Type::String)]);
    let value = decode_json(br#"{"n":"42","b":"true","s":12.50}"#, &ty).expect("decodes");
    assert_eq!(
        value,
        Value::object([
            ("n", number("42")),
            ("b", Value::Bool(true)),
            ("s", "12.50".into())
        ])
    );
    let value = decode_json(br#"{"s":false}"#, &ty).expect("decodes");
    assert_eq!(value.get("s"), Some(&Value::string("false")));
}

#[test]
fn dynamic_values_use_value_and_type_members() {
    let ty = Type::object([("extra", Type::Dynamic)]);
    let value = Value::object([(
        "extra",
        Value::Dynamic {
            ty: Type::list(Type::String),
            value: Box::new(Value::List(vec!["a".into()])),
        },
    )]);
    assert_eq!(
        text(&value, &ty),
        r#"{"extra":{"value":["a"],"type":["list","string"]}}"#
    );
    assert_round_trip(value, &ty);
    assert_eq!(
        decode_json(br#"{"extra":{"type":"number","value":3}}"#, &ty),
        Ok(Value::object([(
            "extra",
            Value::Dynamic {
                ty: Type::Number,
                value: Box::new(number("3")),
            },
        )]))
    );
    assert_eq!(
        text(&Value::string("x"), &Type::Dynamic),
        r#"{"value":"x","type":"string"}"#
    );
    assert_eq!(decode_json(b"null", &Type::Dynamic), Ok(Value::Null));
    let error = decode_json(br#"{"value":1}"#, &Type::Dynamic).expect_err("no type");
    assert!(matches!(error.kind, ErrorKind::InvalidDynamic(_)));
}

#[test]
fn errors_carry_the_path() {
    let ty = Type::object([(
        "tenants",
        Type::list(Type::object([("name", Type::String)])),
    )]);
    let error = decode_json(
        br#"{"tenants":[{"name":"a"},{"name":"b"},{"name":[]}]}"#,
        &ty,
    )
    .expect_err("array for string");
    assert_eq!(
        error.to_string(),
        ".tenants[2].name: expected string, got JSON array"
    );

    let error = decode_json(br#"{"tenants":[],"extra":1}"#, &ty).expect_err("extra attribute");
    assert_eq!(error.to_string(), r#"unsupported attribute "extra""#);

    let error = decode_json(
        br#"{"m":{"k":"abc"}}"#,
        &Type::object([("m", Type::map(Type::Number))]),
    )
    .expect_err("not a number");
    assert_eq!(
        error.to_string(),
        r#".m["k"]: invalid number: not a decimal number"#
    );

    let error =
        encode_json(&Value::object([("id", Value::Unknown)]), &tenant_type()).expect_err("unknown");
    assert_eq!(
        error.to_string(),
        ".id: unknown values cannot be written as JSON"
    );

    let error = encode_json(&number("+Inf"), &Type::Number).expect_err("infinity");
    assert_eq!(error.kind, ErrorKind::InfinityInJson);

    let error = decode_json(b"{\"id\": }", &tenant_type()).expect_err("syntax");
    assert_eq!(
        error.kind,
        ErrorKind::InvalidJson {
            offset: 7,
            reason: "unexpected character"
        }
    );
}
