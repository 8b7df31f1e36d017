//! Writing Terraform configurations from tests.

use super::workdir::{PROVIDER_NAMESPACE, PROVIDER_TYPE};

/// An HCL string literal holding exactly `value` (quotes, backslashes and template sequences
/// escaped), so hostile test inputs reach the provider unchanged.
pub fn string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // `${` and `%{` start template sequences; doubling the sigil makes them literal.
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `terraform { required_providers { … } }` plus `provider "usualstore" { BODY }`.
pub fn provider_config(provider_body: &str) -> String {
    format!(
        r#"terraform {{
  required_providers {{
    {PROVIDER_TYPE} = {{
      source = "{PROVIDER_NAMESPACE}/{PROVIDER_TYPE}"
    }}
  }}
}}

provider "{PROVIDER_TYPE}" {{
{provider_body}
}}
"#
    )
}
