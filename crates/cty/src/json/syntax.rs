//! JSON text: a reader that keeps numbers as their literal text, and string escaping.
//!
//! serde_json (without its workspace-wide `arbitrary_precision` feature) turns big or precise
//! numbers into f64, which would silently change numbers in Terraform state. This reader hands
//! number literals over untouched; serde_json still does the fiddly part, string unescaping.

use crate::error::{CtyError, ErrorKind};

/// Deeper nesting than any schema needs; bounds recursion on hostile input.
pub(crate) const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JsonNode {
    Null,
    Bool(bool),
    /// The literal text of a number, already checked against JSON's number grammar.
    Number(String),
    String(String),
    Array(Vec<JsonNode>),
    /// Members in document order; duplicates are left for the caller to judge.
    Object(Vec<(String, JsonNode)>),
}

impl JsonNode {
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            JsonNode::Null => "JSON null",
            JsonNode::Bool(_) => "JSON boolean",
            JsonNode::Number(_) => "JSON number",
            JsonNode::String(_) => "JSON string",
            JsonNode::Array(_) => "JSON array",
            JsonNode::Object(_) => "JSON object",
        }
    }
}

pub(crate) fn parse(bytes: &[u8]) -> Result<JsonNode, CtyError> {
    let mut parser = Parser {
        bytes,
        pos: 0,
        depth: 0,
    };
    let node = parser.value()?;
    parser.skip_whitespace();
    if parser.pos != bytes.len() {
        return Err(parser.fail("unexpected characters after the value"));
    }
    Ok(node)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn fail(&self, reason: &'static str) -> CtyError {
        self.fail_at(self.pos, reason)
    }

    fn fail_at(&self, offset: usize, reason: &'static str) -> CtyError {
        CtyError::root(ErrorKind::InvalidJson { offset, reason })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<JsonNode, CtyError> {
        self.skip_whitespace();
        match self.peek() {
            None => Err(self.fail("unexpected end of input")),
            Some(b'{') => self.nested(Parser::object),
            Some(b'[') => self.nested(Parser::array),
            Some(b'"') => self.string().map(JsonNode::String),
            Some(b't') => self.literal("true", JsonNode::Bool(true)),
            Some(b'f') => self.literal("false", JsonNode::Bool(false)),
            Some(b'n') => self.literal("null", JsonNode::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.fail("unexpected character")),
        }
    }

    fn nested(
        &mut self,
        parse: fn(&mut Self) -> Result<JsonNode, CtyError>,
    ) -> Result<JsonNode, CtyError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CtyError::root(ErrorKind::TooDeep(MAX_DEPTH)));
        }
        let node = parse(self)?;
        self.depth -= 1;
        Ok(node)
    }

    fn object(&mut self) -> Result<JsonNode, CtyError> {
        self.pos += 1; // '{'
        let mut members = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(JsonNode::Object(members));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.fail("expected a string key"));
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.fail("expected ':'"));
            }
            self.pos += 1;
            let value = self.value()?;
            members.push((key, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(JsonNode::Object(members));
                }
                _ => return Err(self.fail("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self) -> Result<JsonNode, CtyError> {
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(JsonNode::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(JsonNode::Array(items));
                }
                _ => return Err(self.fail("expected ',' or ']'")),
            }
        }
    }

    fn string(&mut self) -> Result<String, CtyError> {
        let start = self.pos;
        self.pos += 1; // opening quote
        let mut escaped = false;
        loop {
            match self.peek() {
                None => return Err(self.fail_at(start, "unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    self.pos += 2;
                }
                Some(0x00..=0x1f) => return Err(self.fail("control character in string")),
                Some(_) => self.pos += 1,
            }
        }
        let end = self.pos;
        self.pos += 1; // closing quote
        if escaped {
            serde_json::from_slice::<String>(&self.bytes[start..=end])
                .map_err(|_| self.fail_at(start, "invalid string escape or UTF-8"))
        } else {
            std::str::from_utf8(&self.bytes[start + 1..end])
                .map(str::to_owned)
                .map_err(|_| self.fail_at(start, "string is not valid UTF-8"))
        }
    }

    fn literal(&mut self, word: &'static str, node: JsonNode) -> Result<JsonNode, CtyError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(node)
        } else {
            Err(self.fail("unexpected character"))
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Result<JsonNode, CtyError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return Err(self.fail("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
                return Err(self.fail("invalid number"));
            }
            self.skip_digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
                return Err(self.fail("invalid number"));
            }
            self.skip_digits();
        }
        // The grammar above admits only ASCII.
        let text = String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned();
        Ok(JsonNode::Number(text))
    }

    fn skip_digits(&mut self) {
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.pos += 1;
        }
    }
}

/// Writes a JSON string the way Go's encoding/json does (HTML-safe escapes included), so text
/// we write matches what Terraform writes byte for byte.
pub(crate) fn write_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    for ch in text.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\u{0}'..='\u{1f}' => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(ch)).as_bytes());
            }
            _ => {
                let mut buffer = [0; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset_of(result: Result<JsonNode, CtyError>) -> usize {
        match result.map_err(|error| error.kind) {
            Err(ErrorKind::InvalidJson { offset, .. }) => offset,
            other => panic!("expected a JSON syntax error, got {other:?}"),
        }
    }

    #[test]
    fn parses_documents_keeping_number_text() {
        let node = parse(br#" {"a": [1, -0.5e+3, 123456789012345678901234567890], "b": "x\u00e9\n", "c": null, "d": true} "#)
            .expect("valid JSON");
        assert_eq!(
            node,
            JsonNode::Object(vec![
                (
                    "a".into(),
                    JsonNode::Array(vec![
                        JsonNode::Number("1".into()),
                        JsonNode::Number("-0.5e+3".into()),
                        JsonNode::Number("123456789012345678901234567890".into()),
                    ])
                ),
                ("b".into(), JsonNode::String("x\u{e9}\n".into())),
                ("c".into(), JsonNode::Null),
                ("d".into(), JsonNode::Bool(true)),
            ])
        );
        assert_eq!(parse(b"[]"), Ok(JsonNode::Array(vec![])));
        assert_eq!(
            parse(br#""\ud83d\ude00""#),
            Ok(JsonNode::String("\u{1f600}".into()))
        );
    }

    #[test]
    fn rejects_malformed_documents_with_offsets() {
        assert_eq!(offset_of(parse(b"[1,]")), 3);
        assert_eq!(offset_of(parse(b"{\"a\" 1}")), 5);
        assert_eq!(offset_of(parse(b"01")), 1);
        assert_eq!(offset_of(parse(b"1.")), 2);
        assert_eq!(offset_of(parse(b"\"abc")), 0);
        assert_eq!(offset_of(parse(b"\"a\\q\"")), 0);
        assert_eq!(offset_of(parse(b"tru")), 0);
        assert_eq!(offset_of(parse(b"")), 0);
        assert_eq!(offset_of(parse(b"1 2")), 2);
        assert_eq!(offset_of(parse(b"\"\xff\"")), 0);
    }

    #[test]
    fn limits_nesting() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(
            parse(deep.as_bytes()).map_err(|error| error.kind),
            Err(ErrorKind::TooDeep(MAX_DEPTH))
        );
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn escapes_strings_like_go() {
        let mut out = Vec::new();
        write_string(&mut out, "a\"b\\c\n<x>&\u{1}é\u{2028}");
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            r#""a\"b\\c\n\u003cx\u003e\u0026\u0001é\u2028""#
        );
    }
}
