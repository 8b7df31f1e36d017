use std::collections::BTreeMap;

use super::{decode_msgpack, encode_msgpack};
use crate::{CtyError, ErrorKind, Number, ObjectBuilder, ObjectReader, PathStep, Type, Value};

fn number(text: &str) -> Value {
    Value::Number(text.parse().expect("valid number"))
}

fn round_trip(value: &Value, ty: &Type) -> Value {
    let bytes = encode_msgpack(value, ty).expect("encodes");
    decode_msgpack(&bytes, ty).expect("decodes")
}

fn assert_round_trip(value: Value, ty: &Type) {
    assert_eq!(round_trip(&value, ty), value, "type {ty}");
}

fn decode_error(bytes: &[u8], ty: &Type) -> CtyError {
    decode_msgpack(bytes, ty).expect_err("should not decode")
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
fn primitives_round_trip() {
    for value in [
        Value::string(""),
        Value::string("héllo wörld"),
        Value::string("x".repeat(70_000)),
        Value::Null,
        Value::Unknown,
    ] {
        assert_round_trip(value, &Type::String);
    }
    for value in [
        Value::Bool(true),
        Value::Bool(false),
        Value::Null,
        Value::Unknown,
    ] {
        assert_round_trip(value, &Type::Bool);
    }
    for text in [
        "0",
        "1",
        "127",
        "128",
        "255",
        "256",
        "65536",
        "4294967296",
        "9223372036854775807",
        "-1",
        "-32",
        "-33",
        "-129",
        "-32769",
        "-2147483649",
        "-9223372036854775808",
        "18446744073709551615",
        "1180591620717411303424",
        "1180591620717411303425",
        "0.5",
        "-0.25",
        "0.1",
        "123456789.123456789123456789",
        "1e300",
        "-1e-300",
        "+Inf",
        "-Inf",
    ] {
        assert_round_trip(number(text), &Type::Number);
    }
    assert_round_trip(
        Value::Number(Number::from_f64(1e300).expect("not NaN")),
        &Type::Number,
    );
}

#[test]
fn collections_round_trip() {
    let strings = Type::list(Type::String);
    assert_round_trip(Value::List(vec![]), &strings);
    assert_round_trip(
        Value::List(vec!["a".into(), Value::Null, Value::Unknown, "d".into()]),
        &strings,
    );
    assert_round_trip(
        Value::List((0..20).map(|i| Value::from(i64::from(i))).collect()),
        &Type::list(Type::Number),
    );
    assert_round_trip(
        Value::Set(vec![Value::Bool(true), Value::Bool(false)]),
        &Type::set(Type::Bool),
    );
    assert_round_trip(
        Value::Map(BTreeMap::from([
            ("team".to_owned(), Value::string("billing")),
            ("tier".to_owned(), Value::Unknown),
            ("empty".to_owned(), Value::Null),
        ])),
        &Type::map(Type::String),
    );
    assert_round_trip(
        Value::Tuple(vec!["a".into(), number("1.5"), Value::Bool(true)]),
        &Type::Tuple(vec![Type::String, Type::Number, Type::Bool]),
    );
    assert_round_trip(Value::Tuple(vec![]), &Type::Tuple(vec![]));
    assert_round_trip(Value::object::<&str>([]), &Type::Object(BTreeMap::new()));
}

#[test]
fn nested_objects_with_null_and_unknown_attributes_round_trip() {
    let user = Type::object([("name", Type::String), ("email", Type::String)]);
    let ty = Type::object([
        ("id", Type::String),
        ("owner", user.clone()),
        ("users", Type::list(user.clone())),
        ("labels", Type::map(Type::list(Type::String))),
        ("settings", Type::object([("retention", Type::Number)])),
    ]);
    let value = Value::object([
        ("id", Value::Unknown),
        (
            "owner",
            Value::object([("name", "ada".into()), ("email", Value::Unknown)]),
        ),
        (
            "users",
            Value::List(vec![
                Value::object([("name", "bob".into()), ("email", Value::Null)]),
                Value::Unknown,
                Value::Null,
            ]),
        ),
        (
            "labels",
            Value::Map(BTreeMap::from([(
                "a".to_owned(),
                Value::List(vec![Value::Unknown]),
            )])),
        ),
        ("settings", Value::Null),
    ]);
    assert_round_trip(value.clone(), &ty);
    assert!(!value.is_known());
}

#[test]
fn dynamic_values_round_trip_with_their_type() {
    let ty = Type::object([("extra", Type::Dynamic)]);
    let wrapped = |ty: Type, value: Value| {
        Value::object([(
            "extra",
            Value::Dynamic {
                ty,
                value: Box::new(value),
            },
        )])
    };
    assert_round_trip(wrapped(Type::String, "x".into()), &ty);
    assert_round_trip(wrapped(Type::String, Value::Null), &ty);
    assert_round_trip(wrapped(Type::Number, Value::Unknown), &ty);
    assert_round_trip(
        wrapped(
            Type::object([("n", Type::list(Type::Number))]),
            Value::object([("n", Value::List(vec![number("1"), number("0.5")]))]),
        ),
        &ty,
    );
    assert_round_trip(Value::object([("extra", Value::Null)]), &ty);
    assert_round_trip(Value::object([("extra", Value::Unknown)]), &ty);
}

#[test]
fn dynamic_value_has_go_cty_layout() {
    // [bin "\"string\"", "x"]
    let mut expected = vec![0x92, 0xc4, 8];
    expected.extend_from_slice(br#""string""#);
    expected.extend_from_slice(&[0xa1, b'x']);
    assert_eq!(
        encode_msgpack(&Value::string("x"), &Type::Dynamic).expect("encodes"),
        expected
    );

    // Terraform may send the type as str rather than bin.
    let mut as_str = vec![0x92, 0xb1];
    as_str.extend_from_slice(br#"["list","number"]"#);
    as_str.extend_from_slice(&[0x92, 0x01, 0x02]);
    assert_eq!(
        decode_msgpack(&as_str, &Type::Dynamic),
        Ok(Value::Dynamic {
            ty: Type::list(Type::Number),
            value: Box::new(Value::List(vec![number("1"), number("2")])),
        })
    );
    assert_eq!(decode_msgpack(&[0xc0], &Type::Dynamic), Ok(Value::Null));
    assert_eq!(
        decode_msgpack(&[0xd4, 0, 0], &Type::Dynamic),
        Ok(Value::Unknown)
    );
}

#[test]
fn plain_values_in_dynamic_slots_get_an_inferred_type() {
    let value = Value::object([("tags", Value::List(vec!["a".into()]))]);
    let decoded = round_trip(&value, &Type::Dynamic);
    assert_eq!(
        decoded,
        Value::Dynamic {
            ty: Type::object([("tags", Type::list(Type::String))]),
            value: Box::new(value),
        }
    );
}

#[test]
fn unknowns_of_any_extension_type_decode_as_unknown() {
    let ty = Type::object([
        ("a", Type::String),
        ("b", Type::String),
        ("c", Type::Number),
        ("d", Type::list(Type::String)),
    ]);
    let mut bytes = vec![0x84];
    // a: cty's wholly unknown, fixext1 type 0.
    bytes.extend_from_slice(&[0xa1, b'a', 0xd4, 0x00, 0x00]);
    // b: Terraform >= 1.6 refined unknown, ext8 type 12, payload {1: false, 2: "acme-"}
    // (not null, known string prefix).
    bytes.extend_from_slice(&[0xa1, b'b', 0xc7, 0x0a, 0x0c, 0x82, 0x01, 0xc2, 0x02, 0xa5]);
    bytes.extend_from_slice(b"acme-");
    // c: refined unknown number with bounds, payload {1: false, 3: [0, true]}, ext8 type 12.
    bytes.extend_from_slice(&[
        0xa1, b'c', 0xc7, 0x07, 0x0c, 0x82, 0x01, 0xc2, 0x03, 0x92, 0x00, 0xc3,
    ]);
    // d: refined unknown collection as fixext4 type 12 payload {1: false} padded by a nil.
    bytes.extend_from_slice(&[0xa1, b'd', 0xd6, 0x0c, 0x81, 0x01, 0xc2, 0xc0]);

    let value = decode_msgpack(&bytes, &ty).expect("decodes");
    for name in ["a", "b", "c", "d"] {
        assert_eq!(value.get(name), Some(&Value::Unknown), "attribute {name}");
    }

    // The whole value unknown, via ext16 and ext32 forms too.
    assert_eq!(decode_msgpack(&[0xd4, 0x00, 0x00], &ty), Ok(Value::Unknown));
    assert_eq!(
        decode_msgpack(&[0xc8, 0x00, 0x01, 0x0c, 0xc0], &ty),
        Ok(Value::Unknown)
    );
    assert_eq!(
        decode_msgpack(&[0xc9, 0x00, 0x00, 0x00, 0x00, 0x0c], &ty),
        Ok(Value::Unknown)
    );
    // Payload shorter than its declared length is truncated input, not an unknown.
    assert_eq!(
        decode_error(&[0xc7, 0x05, 0x0c, 0x80], &ty).kind,
        ErrorKind::UnexpectedEnd
    );
}

#[test]
fn unknown_encodes_as_cty_fixext1() {
    assert_eq!(
        encode_msgpack(&Value::Unknown, &Type::String),
        Ok(vec![0xd4, 0x00, 0x00])
    );
    assert_eq!(
        encode_msgpack(
            &Value::object([("a", Value::Unknown)]),
            &Type::object([("a", Type::Number)])
        ),
        Ok(vec![0x81, 0xa1, b'a', 0xd4, 0x00, 0x00])
    );
}

#[test]
fn exact_bytes_for_small_values() {
    assert_eq!(
        encode_msgpack(
            &Value::object([("a", "x".into())]),
            &Type::object([("a", Type::String)])
        ),
        Ok(vec![0x81, 0xa1, b'a', 0xa1, b'x'])
    );
    // Attributes sorted; absent ones written as nil.
    assert_eq!(
        encode_msgpack(
            &Value::object([("b", Value::Bool(true))]),
            &Type::object([("b", Type::Bool), ("a", Type::Number)])
        ),
        Ok(vec![0x82, 0xa1, b'a', 0xc0, 0xa1, b'b', 0xc3])
    );
    assert_eq!(
        encode_msgpack(&Value::from(5), &Type::Number),
        Ok(vec![0x05])
    );
    assert_eq!(
        encode_msgpack(&Value::from(200), &Type::Number),
        Ok(vec![0xcc, 200])
    );
    assert_eq!(
        encode_msgpack(&Value::from(300), &Type::Number),
        Ok(vec![0xcd, 0x01, 0x2c])
    );
    assert_eq!(
        encode_msgpack(&Value::from(-1), &Type::Number),
        Ok(vec![0xff])
    );
    assert_eq!(
        encode_msgpack(&Value::from(-33), &Type::Number),
        Ok(vec![0xd0, 0xdf])
    );
    assert_eq!(
        encode_msgpack(&Value::from(i64::MIN), &Type::Number),
        Ok([vec![0xd3, 0x80], vec![0; 7]].concat())
    );
    // An integral number written as float text still goes out as an int.
    assert_eq!(
        encode_msgpack(&number("7.000"), &Type::Number),
        Ok(vec![0x07])
    );
    assert_eq!(
        encode_msgpack(&number("0.5"), &Type::Number),
        Ok(vec![0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0])
    );
    assert_eq!(
        encode_msgpack(&number("1e300"), &Type::Number).map(|bytes| bytes[..3].to_vec()),
        Ok(vec![0xda, 0x01, 0x2d]),
        "10^300 is not an exact float64, so it goes as 301 digits of text"
    );
    assert_eq!(encode_msgpack(&Value::Null, &Type::Number), Ok(vec![0xc0]));
    assert_eq!(
        encode_msgpack(&Value::Bool(false), &Type::Bool),
        Ok(vec![0xc2])
    );
}

#[test]
fn large_and_fractional_numbers_follow_go_cty() {
    // u64::MAX arrives as msgpack uint64 and cannot be an int64 or an exact float64,
    // so it goes back as decimal text.
    let max = decode_msgpack(
        &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &Type::Number,
    )
    .expect("decodes");
    assert_eq!(max, Value::Number(Number::from_u64(u64::MAX)));
    assert_eq!(max.as_i64(), None);
    let mut text = vec![0xb4];
    text.extend_from_slice(b"18446744073709551615");
    assert_eq!(encode_msgpack(&max, &Type::Number), Ok(text.clone()));
    assert_eq!(decode_msgpack(&text, &Type::Number), Ok(max));

    // 2^70 as decimal text equals the float64 2^70 and is re-encoded as that float, like go-cty.
    let mut two_pow_70 = vec![0xb6];
    two_pow_70.extend_from_slice(b"1180591620717411303424");
    let decoded = decode_msgpack(&two_pow_70, &Type::Number).expect("decodes");
    assert_eq!(
        decoded,
        Value::Number(Number::from_f64(2f64.powi(70)).expect("not NaN"))
    );
    assert_eq!(
        decoded.as_number().map(ToString::to_string).as_deref(),
        Some("1180591620717411303424")
    );
    let mut float = vec![0xcb];
    float.extend_from_slice(&2f64.powi(70).to_be_bytes());
    assert_eq!(encode_msgpack(&decoded, &Type::Number), Ok(float));

    // 2^70 + 1 is exact only as text.
    let mut odd = vec![0xb6];
    odd.extend_from_slice(b"1180591620717411303425");
    let decoded = decode_msgpack(&odd, &Type::Number).expect("decodes");
    assert_eq!(encode_msgpack(&decoded, &Type::Number), Ok(odd));

    // Decimal text that a float64 cannot hold stays text.
    let mut tenth = vec![0xa3];
    tenth.extend_from_slice(b"0.1");
    let decoded = decode_msgpack(&tenth, &Type::Number).expect("decodes");
    assert_eq!(decoded, number("0.1"));
    assert_eq!(encode_msgpack(&decoded, &Type::Number), Ok(tenth));

    // Floats of both widths, and 1e300.
    assert_eq!(
        decode_msgpack(&[0xca, 0x3f, 0x00, 0x00, 0x00], &Type::Number),
        Ok(number("0.5"))
    );
    let mut big = vec![0xcb];
    big.extend_from_slice(&1e300f64.to_be_bytes());
    let decoded = decode_msgpack(&big, &Type::Number).expect("decodes");
    assert_eq!(decoded.as_number().map(Number::as_f64), Some(1e300));
    assert_eq!(encode_msgpack(&decoded, &Type::Number), Ok(big));
    // An integral float in int64 range is the same number as the int.
    assert_eq!(
        decode_msgpack(&[0xcb, 0x40, 0x24, 0, 0, 0, 0, 0, 0], &Type::Number),
        Ok(Value::from(10))
    );
}

#[test]
fn every_integer_width_decodes() {
    let cases: [(&[u8], i64); 10] = [
        (&[0x7f], 127),
        (&[0xe0], -32),
        (&[0xcc, 0xff], 255),
        (&[0xcd, 0xff, 0xff], 65535),
        (&[0xce, 0xff, 0xff, 0xff, 0xff], 4_294_967_295),
        (&[0xcf, 0, 0, 0, 0, 0, 0, 0, 9], 9),
        (&[0xd0, 0x80], -128),
        (&[0xd1, 0x80, 0x00], -32768),
        (&[0xd2, 0x80, 0, 0, 0], -2_147_483_648),
        (&[0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe], -2),
    ];
    for (bytes, expected) in cases {
        assert_eq!(
            decode_msgpack(bytes, &Type::Number),
            Ok(Value::from(expected)),
            "{bytes:x?}"
        );
    }
}

#[test]
fn decode_errors_carry_the_path() {
    let ty = Type::object([(
        "tenants",
        Type::list(Type::object([("name", Type::String)])),
    )]);
    let tenant = |name: Value| Value::object([("name", name)]);
    let good = encode_msgpack(
        &Value::object([(
            "tenants",
            Value::List(vec![
                tenant("a".into()),
                tenant("b".into()),
                tenant("c".into()),
            ]),
        )]),
        &ty,
    )
    .expect("encodes");
    // Turn the last name's "c" (fixstr 0xa1 'c') into `true`.
    let mut bad = good[..good.len() - 2].to_vec();
    bad.push(0xc3);
    let error = decode_error(&bad, &ty);
    assert_eq!(
        error.to_string(),
        ".tenants[2].name: expected string, got bool"
    );
    assert_eq!(
        error.path.steps(),
        [
            PathStep::Attr("tenants".into()),
            PathStep::Index(2),
            PathStep::Attr("name".into())
        ]
    );

    let map_ty = Type::map(Type::Number);
    let error = decode_error(&[0x81, 0xa4, b't', b'e', b'a', b'm', 0xa1, b'x'], &map_ty);
    assert_eq!(
        error.to_string(),
        r#"["team"]: invalid number: not a decimal number"#
    );

    let error = decode_error(
        &[0x81, 0xa1, b'z', 0xc0],
        &Type::object([("a", Type::String)]),
    );
    assert_eq!(error.to_string(), r#"unsupported attribute "z""#);

    let error = decode_error(&[0x93, 0x01], &Type::list(Type::Number));
    assert_eq!(error.to_string(), "[1]: unexpected end of input");

    let error = decode_error(&[0x92, 0x01, 0x02], &Type::Tuple(vec![Type::Number]));
    assert_eq!(
        error.kind,
        ErrorKind::TupleLength {
            expected: 1,
            found: 2
        }
    );

    let error = decode_error(&[0x01, 0x02], &Type::Number);
    assert_eq!(error.kind, ErrorKind::TrailingBytes(1));

    let error = decode_error(&[0xa2, 0xff, 0xfe], &Type::String);
    assert_eq!(error.kind, ErrorKind::InvalidUtf8);

    let error = decode_error(&[0x82, 0xa1, b'a', 0x01, 0xa1, b'a', 0x02], &map_ty);
    assert_eq!(error.kind, ErrorKind::DuplicateKey("a".into()));

    let error = decode_error(&[0x81, 0x01, 0x02], &map_ty);
    assert_eq!(error.to_string(), "expected string key, got integer");

    let error = decode_error(&[0x93, 0xc4, 0x09], &Type::Dynamic);
    assert!(matches!(error.kind, ErrorKind::InvalidDynamic(_)));

    let mut dynamic_of_dynamic = vec![0x92, 0xc4, 9];
    dynamic_of_dynamic.extend_from_slice(br#""dynamic""#);
    dynamic_of_dynamic.push(0xc0);
    let error = decode_error(&dynamic_of_dynamic, &Type::Dynamic);
    assert!(matches!(error.kind, ErrorKind::InvalidDynamic(_)));
}

#[test]
fn hostile_nesting_is_bounded() {
    // Each level: [bin `["list","dynamic"]`, [ ...next level ]].
    let type_json = br#"["list","dynamic"]"#;
    let mut bytes = Vec::new();
    for _ in 0..200 {
        bytes.extend_from_slice(&[0x92, 0xc4, u8::try_from(type_json.len()).expect("small")]);
        bytes.extend_from_slice(type_json);
        bytes.push(0x91);
    }
    bytes.push(0xc0);
    let error = decode_error(&bytes, &Type::Dynamic);
    assert!(matches!(error.kind, ErrorKind::TooDeep(_)), "{error}");
}

#[test]
fn encode_rejects_values_that_do_not_fit_the_type() {
    let ty = Type::object([("a", Type::list(Type::String))]);
    let error = encode_msgpack(
        &Value::object([("a", Value::List(vec![Value::Bool(true)]))]),
        &ty,
    )
    .expect_err("bool in list of string");
    assert_eq!(error.to_string(), ".a[0]: expected string, got bool");

    let error =
        encode_msgpack(&Value::object([("b", Value::Null)]), &ty).expect_err("extra attribute");
    assert_eq!(error.kind, ErrorKind::UnsupportedAttribute("b".into()));

    let error =
        encode_msgpack(&Value::Set(vec![]), &Type::list(Type::String)).expect_err("set as list");
    assert_eq!(error.to_string(), "expected list of string, got set");

    let error = encode_msgpack(&Value::Tuple(vec![]), &Type::Tuple(vec![Type::Bool]))
        .expect_err("short tuple");
    assert_eq!(
        error.kind,
        ErrorKind::TupleLength {
            expected: 1,
            found: 0
        }
    );
}

#[test]
fn realistic_tenant_blob_round_trips() {
    let ty = tenant_type();
    let planned = ObjectBuilder::new()
        .unknown("id")
        .string("database_name", "acme_prod")
        .string("plan", "professional")
        .bool("deletion_protection", true)
        .i64("connection_limit", 25)
        .build();
    let bytes = encode_msgpack(&planned, &ty).expect("encodes");

    let mut expected = vec![0x85];
    expected.extend_from_slice(&[0xb0]);
    expected.extend_from_slice(b"connection_limit");
    expected.push(25);
    expected.push(0xad);
    expected.extend_from_slice(b"database_name");
    expected.push(0xa9);
    expected.extend_from_slice(b"acme_prod");
    expected.push(0xb3);
    expected.extend_from_slice(b"deletion_protection");
    expected.push(0xc3);
    expected.push(0xa2);
    expected.extend_from_slice(b"id");
    expected.extend_from_slice(&[0xd4, 0x00, 0x00]);
    expected.push(0xa4);
    expected.extend_from_slice(b"plan");
    expected.push(0xac);
    expected.extend_from_slice(b"professional");
    assert_eq!(bytes, expected);

    let decoded = decode_msgpack(&bytes, &ty).expect("decodes");
    assert_eq!(decoded, planned);
    let reader = ObjectReader::new(&decoded).expect("object");
    assert!(reader.is_unknown("id"));
    assert_eq!(
        reader.required_string("database_name"),
        Ok("acme_prod".to_owned())
    );
    assert_eq!(
        reader.required_string("plan"),
        Ok("professional".to_owned())
    );
    assert_eq!(reader.required_bool("deletion_protection"), Ok(true));
    assert_eq!(reader.required_i64("connection_limit"), Ok(25));

    let applied = ObjectBuilder::from_object(&decoded)
        .string("id", "acme_prod")
        .build();
    let applied_bytes = encode_msgpack(&applied, &ty).expect("encodes");
    assert_eq!(decode_msgpack(&applied_bytes, &ty), Ok(applied));
}

#[test]
fn missing_attributes_decode_as_null() {
    let ty = tenant_type();
    let decoded = decode_msgpack(&[0x81, 0xa2, b'i', b'd', 0xa1, b'x'], &ty).expect("decodes");
    let reader = ObjectReader::new(&decoded).expect("object");
    assert_eq!(reader.required_string("id"), Ok("x".to_owned()));
    for name in [
        "database_name",
        "plan",
        "deletion_protection",
        "connection_limit",
    ] {
        assert_eq!(decoded.get(name), Some(&Value::Null), "{name}");
    }
}
