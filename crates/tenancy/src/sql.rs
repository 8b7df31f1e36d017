//! Quoting for the few places where PostgreSQL takes no parameters (DDL, GRANT, COMMENT), from
//! postgres-protocol, the driver's own crate.
//!
//! Names are validated before they get here; quoting anyway keeps reserved words (`user`,
//! `order`) and any future relaxation of the validation safe. A literal holding a backslash is
//! written as an escape string (` E'…'`), correct whatever `standard_conforming_strings` says.

pub use postgres_protocol::escape::{
    escape_identifier as quote_ident, escape_literal as quote_literal,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert_eq!(quote_ident("shop"), r#""shop""#);
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(quote_ident(""), r#""""#);
    }

    #[test]
    fn literals() {
        assert_eq!(quote_literal("plain"), "'plain'");
        assert_eq!(quote_literal("O'Brien"), "'O''Brien'");
        assert_eq!(quote_literal(r"a\b'"), r" E'a\\b'''");
    }
}
