//! Quoting for the few places where PostgreSQL takes no parameters (DDL, GRANT, COMMENT).

/// Quotes an identifier so PostgreSQL reads it verbatim: `"` around, embedded `"` doubled.
///
/// Names are validated before they get here; quoting anyway keeps reserved words (`user`,
/// `order`) and any future relaxation of the validation safe.
pub fn quote_ident(name: &str) -> String {
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('"');
    for c in name.chars() {
        if c == '"' {
            quoted.push('"');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Quotes a string literal for statements that accept no parameters (`COMMENT ON`).
///
/// Embedded quotes are doubled. A backslash is only literal under
/// `standard_conforming_strings = on`; to be correct under either setting a value containing
/// one is written as an escape string (`E'…'`) with the backslashes doubled, as PostgreSQL's own
/// `quote_literal` does. NUL cannot occur in PostgreSQL text, so it is dropped rather than
/// letting the server truncate the statement.
pub fn quote_literal(value: &str) -> String {
    let needs_escape_syntax = value.contains('\\');
    let mut quoted = String::with_capacity(value.len() + 3);
    if needs_escape_syntax {
        quoted.push('E');
    }
    quoted.push('\'');
    for c in value.chars() {
        match c {
            '\'' => quoted.push_str("''"),
            '\\' => quoted.push_str("\\\\"),
            '\0' => {}
            other => quoted.push(other),
        }
    }
    quoted.push('\'');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert_eq!(quote_ident("shop"), "\"shop\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident(""), "\"\"");
    }

    #[test]
    fn literals() {
        assert_eq!(quote_literal("plain"), "'plain'");
        assert_eq!(quote_literal("O'Brien"), "'O''Brien'");
        assert_eq!(quote_literal(r"a\b'"), r"E'a\\b'''");
        assert_eq!(quote_literal("nul\0byte"), "'nulbyte'");
    }
}
