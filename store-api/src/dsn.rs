//! The TLS part of a DSN. tokio-postgres knows `sslmode` up to `require` and no `sslrootcert`;
//! libpq (and the provider's DSNs) use all of them. They are taken out here, in both DSN forms,
//! and the rest goes to tokio-postgres.

use std::borrow::Cow;

/// A DSN with `sslmode` and `sslrootcert` taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitDsn {
    /// The DSN without them, in its original form.
    pub rest: String,
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
}

/// Why a DSN could not be read. Never quotes the DSN: it holds a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsnError {
    #[error("a quoted value is not closed")]
    UnclosedQuote,
    #[error("expected key=value pairs")]
    NotKeyValue,
    #[error("a percent-encoded query value is malformed")]
    BadPercentEncoding,
}

pub fn split_tls(dsn: &str) -> Result<SplitDsn, DsnError> {
    let dsn = dsn.trim();
    if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") {
        split_url(dsn)
    } else {
        split_key_value(dsn)
    }
}

fn split_url(dsn: &str) -> Result<SplitDsn, DsnError> {
    let (base, query) = match dsn.split_once('?') {
        Some((base, query)) => (base, query),
        None => (dsn, ""),
    };
    let mut split = SplitDsn {
        rest: String::new(),
        sslmode: None,
        sslrootcert: None,
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => split.sslmode = Some(percent_decode(value)?.into_owned()),
            "sslrootcert" => split.sslrootcert = Some(percent_decode(value)?.into_owned()),
            _ => kept.push(pair),
        }
    }
    split.rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(split)
}

fn percent_decode(value: &str) -> Result<Cow<'_, str>, DsnError> {
    if !value.contains('%') && !value.contains('+') {
        return Ok(Cow::Borrowed(value));
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let hex = value
                    .get(index + 1..index + 3)
                    .ok_or(DsnError::BadPercentEncoding)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| DsnError::BadPercentEncoding)?);
                index += 3;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| DsnError::BadPercentEncoding)
}

/// libpq's key/value syntax: `key = value` pairs separated by spaces; a value is bare or in single
/// quotes with `\\` escapes. Pairs other than the TLS ones are copied through verbatim.
fn split_key_value(dsn: &str) -> Result<SplitDsn, DsnError> {
    let mut split = SplitDsn {
        rest: String::new(),
        sslmode: None,
        sslrootcert: None,
    };
    let mut kept: Vec<&str> = Vec::new();
    let mut rest = dsn.trim_start();
    while !rest.is_empty() {
        let start = rest;
        let equals = rest.find('=').ok_or(DsnError::NotKeyValue)?;
        let key = rest[..equals].trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(DsnError::NotKeyValue);
        }
        rest = rest[equals + 1..].trim_start();
        let (value, after) = read_value(rest)?;
        let consumed = start.len() - after.len();
        match key {
            "sslmode" => split.sslmode = Some(value),
            "sslrootcert" => split.sslrootcert = Some(value),
            _ => kept.push(start[..consumed].trim()),
        }
        rest = after.trim_start();
    }
    split.rest = kept.join(" ");
    Ok(split)
}

/// One value and what follows it.
fn read_value(input: &str) -> Result<(String, &str), DsnError> {
    let mut value = String::new();
    let mut chars = input.char_indices();
    if input.starts_with('\'') {
        chars.next();
        while let Some((index, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, escaped)) => value.push(escaped),
                    None => return Err(DsnError::UnclosedQuote),
                },
                '\'' => return Ok((value, &input[index + 1..])),
                other => value.push(other),
            }
        }
        return Err(DsnError::UnclosedQuote);
    }
    for (index, c) in chars {
        if c.is_whitespace() {
            return Ok((value, &input[index..]));
        }
        value.push(c);
    }
    Ok((value, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_dsns_lose_only_their_tls_keys() {
        let split = split_tls(
            r"host='db' port='5432' user='u' password='p a\'ss' dbname='shop' sslmode='verify-full' sslrootcert='/etc/ca dir/ca.pem'",
        )
        .unwrap();
        assert_eq!(split.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(split.sslrootcert.as_deref(), Some("/etc/ca dir/ca.pem"));
        assert_eq!(
            split.rest,
            r"host='db' port='5432' user='u' password='p a\'ss' dbname='shop'"
        );
        let bare = split_tls("host=db sslmode = require dbname=shop").unwrap();
        assert_eq!(bare.sslmode.as_deref(), Some("require"));
        assert_eq!(bare.rest, "host=db dbname=shop");
        assert_eq!(split_tls("host='db"), Err(DsnError::UnclosedQuote));
        assert_eq!(split_tls("just words"), Err(DsnError::NotKeyValue));
    }

    #[test]
    fn urls_lose_only_their_tls_parameters() {
        let split = split_tls(
            "postgres://u:p%40ss@db:5432/shop?sslmode=verify-ca&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(split.sslmode.as_deref(), Some("verify-ca"));
        assert_eq!(split.sslrootcert.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(
            split.rest,
            "postgres://u:p%40ss@db:5432/shop?application_name=x"
        );
        let plain = split_tls("postgresql://u@db/shop").unwrap();
        assert_eq!(plain.rest, "postgresql://u@db/shop");
        assert_eq!(plain.sslmode, None);
    }
}
