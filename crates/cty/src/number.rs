//! cty numbers, held exactly.
//!
//! Terraform keeps numbers as arbitrary-precision decimals and sends them as a msgpack int when
//! they are integers that fit i64, as a float64 when that is exact, and as decimal text otherwise.
//! Handing back anything but the exact number it sent makes Terraform report an inconsistent
//! result, so nothing here rounds.

use std::fmt;
use std::str::FromStr;

/// Longest decimal text (in digits) accepted. Far beyond anything Terraform produces, and it
/// keeps hostile input such as `1e999999999` from turning into a gigabyte of zeros.
const MAX_TEXT_DIGITS: i64 = 4096;

/// Most significant digits the exact decimal expansion of an f64 can have.
const MAX_F64_SIGNIFICANT_DIGITS: usize = 767;

/// A cty number: any decimal, any value an f64 holds, or ±infinity; never NaN.
///
/// Every number has exactly one internal form, so equality is numeric: `2`, `2.0` and the text
/// `"2.000"` are equal. Note that the f64 `0.1` is the binary fraction
/// 0.1000000000000000055…, not the decimal 0.1 that parsing `"0.1"` gives; the two differ, as
/// they do in Terraform.
#[derive(Debug, Clone, PartialEq)]
pub struct Number(Repr);

// No NaN can be constructed, so equality is reflexive.
impl Eq for Number {}

#[derive(Debug, Clone, PartialEq)]
enum Repr {
    /// Integers within the i64 range.
    Int(i64),
    /// Values an f64 holds exactly that are not i64 integers, and the infinities.
    Float(f64),
    /// Everything else: beyond the precision or range of an f64.
    Decimal(Decimal),
}

/// `±digits × 10^exponent`; `digits` has no leading or trailing zeros and is never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

/// Why text is not a cty number. Carries no part of the text, which may be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseNumberError {
    #[error("not a decimal number")]
    Syntax,
    #[error("more than {MAX_TEXT_DIGITS} digits")]
    OutOfRange,
    #[error("NaN is not a number")]
    NaN,
}

impl Number {
    pub fn from_i64(value: i64) -> Number {
        Number(Repr::Int(value))
    }

    pub fn from_u64(value: u64) -> Number {
        match i64::try_from(value) {
            Ok(small) => Number(Repr::Int(small)),
            Err(_) => Number::from_decimal(normalize(false, value.to_string(), 0)),
        }
    }

    /// `None` for NaN, which cty has no place for.
    pub fn from_f64(value: f64) -> Option<Number> {
        if value.is_nan() {
            return None;
        }
        // 2^63 is exact as f64; the range check must exclude it.
        let in_i64_range =
            (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&value);
        if value.fract() == 0.0 && in_i64_range {
            // Exact: integral and in range. Also folds -0.0 into 0.
            Some(Number(Repr::Int(value as i64)))
        } else {
            Some(Number(Repr::Float(value)))
        }
    }

    /// The number as an i64 when it is an integer in range; `None` for fractions and big numbers.
    pub fn as_i64(&self) -> Option<i64> {
        match self.0 {
            Repr::Int(value) => Some(value),
            // By construction Float and Decimal never hold an integer within the i64 range.
            Repr::Float(_) | Repr::Decimal(_) => None,
        }
    }

    /// The nearest f64 (infinity beyond its range).
    pub fn as_f64(&self) -> f64 {
        match &self.0 {
            Repr::Int(value) => *value as f64,
            Repr::Float(value) => *value,
            Repr::Decimal(decimal) => decimal.scientific_text().parse().unwrap_or(f64::NAN),
        }
    }

    /// How the number travels in msgpack, following Terraform's choice of encoding.
    pub(crate) fn wire_form(&self) -> WireForm {
        match &self.0 {
            Repr::Int(value) => WireForm::Int(*value),
            Repr::Float(value) => WireForm::Float(*value),
            Repr::Decimal(_) => WireForm::Text,
        }
    }

    pub(crate) fn is_infinite(&self) -> bool {
        matches!(self.0, Repr::Float(value) if value.is_infinite())
    }

    fn from_decimal(decimal: Option<Decimal>) -> Number {
        let Some(decimal) = decimal else {
            return Number(Repr::Int(0));
        };
        if let Some(value) = decimal.as_i64() {
            Number(Repr::Int(value))
        } else if let Some(value) = decimal.as_exact_f64() {
            Number(Repr::Float(value))
        } else {
            Number(Repr::Decimal(decimal))
        }
    }
}

pub(crate) enum WireForm {
    Int(i64),
    Float(f64),
    /// Decimal text, as `Display` renders it.
    Text,
}

impl From<i64> for Number {
    fn from(value: i64) -> Self {
        Number::from_i64(value)
    }
}

impl From<i32> for Number {
    fn from(value: i32) -> Self {
        Number::from_i64(i64::from(value))
    }
}

impl From<u64> for Number {
    fn from(value: u64) -> Self {
        Number::from_u64(value)
    }
}

impl Decimal {
    fn as_i64(&self) -> Option<i64> {
        let digit_count = i64::try_from(self.digits.len()).ok()?;
        if self.exponent < 0 || digit_count + self.exponent > 19 {
            return None;
        }
        let mut magnitude: i128 = self.digits.parse().ok()?;
        for _ in 0..self.exponent {
            magnitude *= 10;
        }
        let signed = if self.negative { -magnitude } else { magnitude };
        i64::try_from(signed).ok()
    }

    fn as_exact_f64(&self) -> Option<f64> {
        if self.digits.len() > MAX_F64_SIGNIFICANT_DIGITS {
            return None;
        }
        let nearest: f64 = self.scientific_text().parse().ok()?;
        if !nearest.is_finite() || nearest == 0.0 {
            return None;
        }
        let expansion = exact_decimal_text(nearest);
        let round_trip = parse_decimal(&expansion).ok()?;
        (round_trip.as_ref() == Some(self)).then_some(nearest)
    }

    fn scientific_text(&self) -> String {
        let sign = if self.negative { "-" } else { "" };
        format!("{sign}{}e{}", self.digits, self.exponent)
    }
}

/// The exact decimal expansion of a finite f64, without exponent notation.
fn exact_decimal_text(value: f64) -> String {
    let bits = value.to_bits();
    let biased_exponent = ((bits >> 52) & 0x7ff) as i64;
    let fraction = bits & ((1_u64 << 52) - 1);
    let (mantissa, exponent) = if biased_exponent == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1_u64 << 52), biased_exponent - 1075)
    };
    // Factors of two in the mantissa cancel against the exponent.
    let exponent = exponent + i64::from(mantissa.trailing_zeros().min(64));
    // m × 2^-k has exactly k decimal places; fixed-precision formatting is exact, not shortest.
    let places = usize::try_from(-exponent).unwrap_or(0);
    format!("{value:.places$}")
}

/// Parses `[+-]digits[.digits][(e|E)[+-]digits]` (a leading or trailing `.` is fine) into a
/// normalized decimal; `None` means zero.
fn parse_decimal(text: &str) -> Result<Option<Decimal>, ParseNumberError> {
    let bytes = text.as_bytes();
    let mut pos = 0;
    let negative = match bytes.first() {
        Some(b'-') => {
            pos = 1;
            true
        }
        Some(b'+') => {
            pos = 1;
            false
        }
        _ => false,
    };

    let mut digits = String::new();
    let mut fraction_len: i64 = 0;
    let mut saw_digit = false;
    while let Some(byte) = bytes.get(pos).filter(|byte| byte.is_ascii_digit()) {
        digits.push(char::from(*byte));
        saw_digit = true;
        pos += 1;
    }
    if bytes.get(pos) == Some(&b'.') {
        pos += 1;
        while let Some(byte) = bytes.get(pos).filter(|byte| byte.is_ascii_digit()) {
            digits.push(char::from(*byte));
            fraction_len += 1;
            saw_digit = true;
            pos += 1;
        }
    }
    if !saw_digit {
        return Err(ParseNumberError::Syntax);
    }

    let mut exponent: i64 = 0;
    if matches!(bytes.get(pos), Some(b'e' | b'E')) {
        pos += 1;
        let exponent_negative = match bytes.get(pos) {
            Some(b'-') => {
                pos += 1;
                true
            }
            Some(b'+') => {
                pos += 1;
                false
            }
            _ => false,
        };
        let mut saw_exponent_digit = false;
        while let Some(byte) = bytes.get(pos).filter(|byte| byte.is_ascii_digit()) {
            exponent = exponent * 10 + i64::from(byte - b'0');
            if exponent > 1_000_000_000 {
                return Err(ParseNumberError::OutOfRange);
            }
            saw_exponent_digit = true;
            pos += 1;
        }
        if !saw_exponent_digit {
            return Err(ParseNumberError::Syntax);
        }
        if exponent_negative {
            exponent = -exponent;
        }
    }
    if pos != bytes.len() {
        return Err(ParseNumberError::Syntax);
    }

    let decimal = normalize(negative, digits, exponent - fraction_len);
    if let Some(decimal) = &decimal
        && decimal.text_digits() > MAX_TEXT_DIGITS
    {
        return Err(ParseNumberError::OutOfRange);
    }
    Ok(decimal)
}

/// Strips leading and trailing zeros; `None` for zero.
fn normalize(negative: bool, mut digits: String, mut exponent: i64) -> Option<Decimal> {
    let leading = digits.bytes().take_while(|byte| *byte == b'0').count();
    digits.drain(..leading);
    if digits.is_empty() {
        return None;
    }
    let trailing = digits
        .bytes()
        .rev()
        .take_while(|byte| *byte == b'0')
        .count();
    digits.truncate(digits.len() - trailing);
    exponent += i64::try_from(trailing).unwrap_or(i64::MAX);
    Some(Decimal {
        negative,
        digits,
        exponent,
    })
}

impl Decimal {
    /// Digits in the plain (non-exponent) rendering.
    fn text_digits(&self) -> i64 {
        let len = i64::try_from(self.digits.len()).unwrap_or(i64::MAX);
        if self.exponent >= 0 {
            len.saturating_add(self.exponent)
        } else {
            len.max(-self.exponent) + 1
        }
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negative {
            f.write_str("-")?;
        }
        let len = self.digits.len();
        if self.exponent >= 0 {
            f.write_str(&self.digits)?;
            for _ in 0..self.exponent {
                f.write_str("0")?;
            }
            return Ok(());
        }
        let places = usize::try_from(-self.exponent).unwrap_or(usize::MAX);
        if places >= len {
            f.write_str("0.")?;
            for _ in 0..places - len {
                f.write_str("0")?;
            }
            f.write_str(&self.digits)
        } else {
            let (whole, fraction) = self.digits.split_at(len - places);
            write!(f, "{whole}.{fraction}")
        }
    }
}

/// Plain decimal text without exponent, exact (`1180591620717411303424`, `0.5`, `-3`);
/// infinities render as `+Inf` and `-Inf` like Terraform's. Parsing it gives the same number.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Int(value) => write!(f, "{value}"),
            Repr::Float(value) if value.is_infinite() => {
                f.write_str(if *value > 0.0 { "+Inf" } else { "-Inf" })
            }
            Repr::Float(value) => f.write_str(&exact_decimal_text(*value)),
            Repr::Decimal(decimal) => write!(f, "{decimal}"),
        }
    }
}

impl FromStr for Number {
    type Err = ParseNumberError;

    /// Decimal text with optional sign, fraction and exponent; also `inf`/`+Inf`/`-Inf`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unsigned = text.trim_start_matches(['+', '-']);
        if text.len() - unsigned.len() <= 1
            && (unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity"))
        {
            let negative = text.starts_with('-');
            return Ok(Number(Repr::Float(if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })));
        }
        if unsigned.eq_ignore_ascii_case("nan") {
            return Err(ParseNumberError::NaN);
        }
        parse_decimal(text).map(Number::from_decimal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Number {
        text.parse().expect("valid number")
    }

    #[test]
    fn equality_is_numeric_across_forms() {
        assert_eq!(parse("2"), Number::from_i64(2));
        assert_eq!(parse("2.000"), Number::from_i64(2));
        assert_eq!(parse("20e-1"), Number::from_i64(2));
        assert_eq!(Number::from_f64(2.0), Some(Number::from_i64(2)));
        assert_eq!(Number::from_f64(-0.0), Some(Number::from_i64(0)));
        assert_eq!(parse("0.5"), Number::from_f64(0.5).expect("not NaN"));
        assert_eq!(parse("-0"), Number::from_i64(0));
        assert_ne!(parse("0.1"), Number::from_f64(0.1).expect("not NaN"));
        assert_ne!(parse("3"), parse("3.0000000000000000000000001"));
    }

    #[test]
    fn integers_beyond_i64_are_kept_exactly() {
        let max = Number::from_u64(u64::MAX);
        assert_eq!(max.to_string(), "18446744073709551615");
        assert_eq!(max.as_i64(), None);
        assert_eq!(parse("18446744073709551615"), max);

        let two_pow_70 = parse("1180591620717411303424");
        assert_eq!(two_pow_70.to_string(), "1180591620717411303424");
        assert_eq!(two_pow_70.as_f64(), 2f64.powi(70));
        assert_eq!(Number::from_f64(2f64.powi(70)), Some(two_pow_70));

        let odd_big = parse("1180591620717411303425");
        assert_eq!(odd_big.to_string(), "1180591620717411303425");
        assert_eq!(odd_big.as_i64(), None);

        assert_eq!(parse("9223372036854775807").as_i64(), Some(i64::MAX));
        assert_eq!(parse("-9223372036854775808").as_i64(), Some(i64::MIN));
        assert_eq!(parse("9223372036854775808").as_i64(), None);
        assert_eq!(
            Number::from_f64(9_223_372_036_854_775_808.0).map(|n| n.as_i64()),
            Some(None)
        );
    }

    #[test]
    fn display_is_exact_and_parses_back() {
        for text in [
            "0",
            "-17",
            "0.5",
            "-0.25",
            "123.456",
            "0.000001",
            "1180591620717411303424",
            "1000000000000000000000000000000000000001",
            "+Inf",
            "-Inf",
        ] {
            let number = parse(text);
            assert_eq!(number.to_string(), text);
            assert_eq!(parse(&number.to_string()), number);
        }
        for value in [
            0.5,
            1e300,
            -1e-300,
            0.1,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
        ] {
            let number = Number::from_f64(value).expect("not NaN");
            assert_eq!(parse(&number.to_string()), number, "{value}");
            assert_eq!(number.as_f64(), value);
        }
        assert_eq!(parse("1.50e3").to_string(), "1500");
        assert_eq!(parse("00012.3400").to_string(), "12.34");
        assert_eq!(parse(".5").to_string(), "0.5");
    }

    #[test]
    fn rejects_non_numbers() {
        for text in [
            "", "-", ".", "1e", "1e+", "abc", "1.2.3", "0x10", "1 ", " 1", "--1",
        ] {
            assert_eq!(
                text.parse::<Number>(),
                Err(ParseNumberError::Syntax),
                "{text:?}"
            );
        }
        assert_eq!("NaN".parse::<Number>(), Err(ParseNumberError::NaN));
        assert_eq!(
            "1e999999999".parse::<Number>(),
            Err(ParseNumberError::OutOfRange)
        );
        assert_eq!(
            "1e99999999999".parse::<Number>(),
            Err(ParseNumberError::OutOfRange)
        );
        assert_eq!(Number::from_f64(f64::NAN), None);
    }

    #[test]
    fn wire_form_follows_terraform() {
        assert!(matches!(parse("42").wire_form(), WireForm::Int(42)));
        assert!(matches!(parse("0.5").wire_form(), WireForm::Float(v) if v == 0.5));
        assert!(matches!(parse("1e300").wire_form(), WireForm::Text));
        assert!(matches!(
            Number::from_f64(1e300).expect("not NaN").wire_form(),
            WireForm::Float(v) if v == 1e300
        ));
        assert!(matches!(parse("0.1").wire_form(), WireForm::Text));
        assert!(matches!(
            Number::from_u64(u64::MAX).wire_form(),
            WireForm::Text
        ));
    }
}
