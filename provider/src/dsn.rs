//! Connection strings handed to applications: libpq key/value and `postgres://` URL forms of the same
//! connection, escaped so that any password survives the trip.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::config::ProviderContext;

/// What a login user's application needs to connect.
pub struct ConnectionInfo<'a> {
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    /// `None` for a write-only password, which the application gets elsewhere (libpq: `PGPASSWORD`
    /// or a password file).
    pub password: Option<&'a str>,
    pub dbname: &'a str,
    pub sslmode: &'a str,
    /// Where the application finds the certificate authority, for `verify-ca`/`verify-full`.
    pub sslrootcert: Option<&'a str>,
}

/// A login user's `(dsn, url)`, with the host, port and TLS settings the provider hands to
/// applications (`dsn_host`, `dsn_port`, `sslmode`, `dsn_sslrootcert`).
pub fn for_user(
    ctx: &ProviderContext,
    tenant: &str,
    username: &str,
    password: Option<&str>,
) -> (String, String) {
    let settings = &ctx.settings;
    let info = ConnectionInfo {
        host: &settings.dsn_host,
        port: settings.dsn_port,
        user: username,
        password,
        dbname: tenant,
        sslmode: settings.sslmode.as_str(),
        sslrootcert: settings.dsn_sslrootcert.as_deref(),
    };
    (key_value(&info), url(&info))
}

/// `host='…' port='…' user='…' password='…' dbname='…' sslmode='…'` (`password` only when known,
/// `sslrootcert='…'` when set): every value single-quoted, with backslashes and single quotes backslash-escaped, as
/// libpq's conninfo parser expects.
pub fn key_value(info: &ConnectionInfo<'_>) -> String {
    let port = info.port.to_string();
    let mut pairs = vec![
        ("host", info.host),
        ("port", port.as_str()),
        ("user", info.user),
    ];
    if let Some(password) = info.password {
        pairs.push(("password", password));
    }
    pairs.extend([("dbname", info.dbname), ("sslmode", info.sslmode)]);
    if let Some(path) = info.sslrootcert {
        pairs.push(("sslrootcert", path));
    }
    pairs
        .iter()
        .map(|(key, value)| {
            format!(
                "{key}='{}'",
                value.replace('\\', "\\\\").replace('\'', "\\'")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Everything but RFC 3986's unreserved characters is percent-encoded in user info and path.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `postgres://user:password@host:port/dbname?sslmode=…` (`user@` without a password), each component percent-encoded; an IPv6
/// host goes in brackets.
pub fn url(info: &ConnectionInfo<'_>) -> String {
    let host = if info.host.contains(':') {
        format!("[{}]", info.host)
    } else {
        utf8_percent_encode(info.host, COMPONENT).to_string()
    };
    let password = info
        .password
        .map(|password| format!(":{}", utf8_percent_encode(password, COMPONENT)))
        .unwrap_or_default();
    let mut url = format!(
        "postgres://{}{password}@{host}:{}/{}?sslmode={}",
        utf8_percent_encode(info.user, COMPONENT),
        info.port,
        utf8_percent_encode(info.dbname, COMPONENT),
        utf8_percent_encode(info.sslmode, COMPONENT),
    );
    if let Some(path) = info.sslrootcert {
        url.push_str("&sslrootcert=");
        url.push_str(&utf8_percent_encode(path, COMPONENT).to_string());
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn info(password: &str) -> ConnectionInfo<'_> {
        ConnectionInfo {
            host: "db.internal",
            port: 6432,
            user: "building_ops",
            password: Some(password),
            dbname: "building_shop",
            sslmode: "prefer",
            sslrootcert: None,
        }
    }

    #[test]
    fn key_value_quotes_everything() {
        assert_eq!(
            key_value(&info("it's a \\ test")),
            "host='db.internal' port='6432' user='building_ops' password='it\\'s a \\\\ test' \
             dbname='building_shop' sslmode='prefer'"
        );
    }

    #[test]
    fn both_forms_parse_back_to_the_same_connection() {
        for password in [
            "plain",
            "with space",
            "qu'ote\"double",
            "back\\slash\\",
            "p@ss:w/rd?#&=%",
            "ünïcødé",
            "' OR 1=1 --",
        ] {
            for text in [key_value(&info(password)), url(&info(password))] {
                let config = tokio_postgres::Config::from_str(&text)
                    .unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"));
                assert_eq!(config.get_password(), Some(password.as_bytes()), "{text:?}");
                assert_eq!(config.get_user(), Some("building_ops"));
                assert_eq!(config.get_dbname(), Some("building_shop"));
                assert_eq!(config.get_ports(), &[6432]);
                assert_eq!(
                    config.get_hosts(),
                    &[tokio_postgres::config::Host::Tcp("db.internal".into())]
                );
            }
        }
    }

    #[test]
    fn without_a_password_both_forms_leave_it_out() {
        let mut info = info("secret");
        info.password = None;
        for text in [key_value(&info), url(&info)] {
            assert!(
                !text.contains("secret") && !text.contains("password"),
                "{text}"
            );
            let config = tokio_postgres::Config::from_str(&text)
                .unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"));
            assert_eq!(config.get_password(), None, "{text:?}");
            assert_eq!(config.get_user(), Some("building_ops"));
        }
    }

    #[test]
    fn ipv6_hosts_are_bracketed_in_urls() {
        let mut info = info("x");
        info.host = "::1";
        assert_eq!(
            url(&info),
            "postgres://building_ops:x@[::1]:6432/building_shop?sslmode=prefer"
        );
    }
}
