//! `TENANTS_FILE`: which tenant each host name serves, for router mode.
//!
//! The file is exactly what `terraform output -json store_api_tenants` prints for the output of
//! that name in examples/tenants and modules/tenant: a JSON object from host name to the
//! tenant's `dsn` and display `name`:
//!
//! ```json
//! {"building.example.com": {"dsn": "host='db' … dbname='building_shop'", "name": "Building Shop"}}
//! ```
//!
//! Hosts are normalised as requests' are ([`crate::hostname`]). Several hosts may serve one
//! tenant (same DSN and name): they share its pool, token cache and sign-in counters. Every
//! error names the host and the problem, never a DSN or any part of one: the file is full of
//! passwords and its errors go to the log.

use std::collections::HashMap;

use crate::config::{ConfigError, DatabaseConfig, TENANTS_FILE, database_config};
use crate::hostname;

/// Longest display name accepted (the provider allows 100 characters).
const MAX_NAME_CHARS: usize = 200;

/// One tenant: its database and every host name that serves it.
#[derive(Clone)]
pub struct TenantEntry {
    /// Normalised, sorted; the first is the tenant's key in logs and metrics.
    pub hosts: Vec<String>,
    pub name: String,
    /// The DSN as written, to tell whether a reload changed it. Never logged.
    pub dsn: String,
    pub database: DatabaseConfig,
}

/// Redacts: the DSN carries the password (the database is described without it).
impl std::fmt::Debug for TenantEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantEntry")
            .field("hosts", &self.hosts)
            .field("name", &self.name)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// Reads and checks the file at `path`.
pub fn read(path: &str, allow_cleartext_password: bool) -> Result<Vec<TenantEntry>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| invalid(format!("cannot read {path:?}: {error}")))?;
    parse(&text, allow_cleartext_password)
}

/// Parses the file's text.
pub fn parse(text: &str, allow_cleartext_password: bool) -> Result<Vec<TenantEntry>, ConfigError> {
    // serde's own messages may quote a value (a DSN) that had the wrong type: the syntax error
    // alone (line and column) is kept, and the shape is checked by hand below.
    let value: serde_json::Value = serde_json::from_str(text).map_err(|error| {
        invalid(format!(
            "not JSON (line {}, column {}); write it with `terraform output -json store_api_tenants`",
            error.line(),
            error.column()
        ))
    })?;
    let Some(object) = value.as_object() else {
        return Err(invalid(
            "expected an object from host name to {\"dsn\": …, \"name\": …}".to_owned(),
        ));
    };
    let mut by_dsn: HashMap<&str, usize> = HashMap::new();
    let mut seen_hosts: HashMap<String, &str> = HashMap::new();
    let mut entries: Vec<TenantEntry> = Vec::new();
    for (key, tenant) in object {
        let shown = printable(key);
        let host = hostname::normalise(key)
            .filter(|host| !key.contains(':') || host.starts_with('['))
            .ok_or_else(|| {
                invalid(format!(
                    "{shown:?} is not a host name (letters, digits, '-' and '.', IDN in its xn-- form, no port)"
                ))
            })?;
        let Some(fields) = tenant.as_object() else {
            if tenant.get("value").is_some() || key == "store_api_tenants" {
                return Err(invalid(
                    "this is the output of `terraform output -json` for every output; write the one \
                     output with `terraform output -json store_api_tenants`"
                        .to_owned(),
                ));
            }
            return Err(invalid(format!(
                "{shown}: expected {{\"dsn\": …, \"name\": …}}"
            )));
        };
        if fields.contains_key("sensitive") && fields.contains_key("value") {
            return Err(invalid(
                "this is the output of `terraform output -json` for every output; write the one \
                 output with `terraform output -json store_api_tenants`"
                    .to_owned(),
            ));
        }
        if let Some(unknown) = fields.keys().find(|k| *k != "dsn" && *k != "name") {
            return Err(invalid(format!(
                "{shown}: unknown field {:?} (expected dsn and name)",
                printable(unknown)
            )));
        }
        let dsn = fields
            .get("dsn")
            .and_then(|v| v.as_str())
            .filter(|dsn| !dsn.trim().is_empty())
            .ok_or_else(|| invalid(format!("{shown}: dsn is missing or not a string")))?;
        let name = fields
            .get("name")
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .ok_or_else(|| invalid(format!("{shown}: name is missing or not a string")))?;
        if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(invalid(format!(
                "{shown}: name is longer than {MAX_NAME_CHARS} characters or has control characters"
            )));
        }
        if let Some(other) = seen_hosts.insert(host.clone(), key) {
            return Err(invalid(format!(
                "{shown:?} and {:?} are the same host name",
                printable(other)
            )));
        }
        match by_dsn.get(dsn) {
            Some(&index) => {
                let entry = &mut entries[index];
                if entry.name != name {
                    return Err(invalid(format!(
                        "{shown} and {} share a database but not a name",
                        entry.hosts[0]
                    )));
                }
                entry.hosts.push(host);
                entry.hosts.sort();
            }
            None => {
                let database =
                    database_config(dsn, allow_cleartext_password).map_err(
                        |error| match error {
                            ConfigError::Invalid { reason, .. } => {
                                invalid(format!("{shown}: dsn is invalid: {reason}"))
                            }
                            other => other,
                        },
                    )?;
                by_dsn.insert(dsn, entries.len());
                entries.push(TenantEntry {
                    hosts: vec![host],
                    name: name.to_owned(),
                    dsn: dsn.to_owned(),
                    database,
                });
            }
        }
    }
    if entries.is_empty() {
        return Err(invalid("lists no tenant".to_owned()));
    }
    Ok(entries)
}

/// A key as it may appear in a message: at most 80 characters, control characters escaped by
/// `{:?}` where it is quoted.
fn printable(key: &str) -> String {
    key.chars().take(80).collect()
}

fn invalid(reason: String) -> ConfigError {
    ConfigError::Invalid {
        name: TENANTS_FILE,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "host='127.0.0.1' port='5432' user='a_api' password='s3cret-a' dbname='a_shop' sslmode='disable'";
    const B: &str = "postgres://b_api:s3cret-b@127.0.0.1:5432/b_shop?sslmode=disable";

    fn parse_ok(text: &str) -> Vec<TenantEntry> {
        parse(text, false).unwrap()
    }

    fn error(text: &str) -> String {
        let text = parse(text, false).unwrap_err().to_string();
        assert!(text.starts_with("TENANTS_FILE is invalid"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
        text
    }

    #[test]
    fn reads_what_terraform_output_json_prints() {
        let text = format!(
            r#"{{"Building.Example.com":{{"dsn":"{}","name":"Building Shop"}},
                "hardware.example.com":{{"dsn":"{B}","name":"Hardware Store"}},
                "www.building.example.com.":{{"dsn":"{}","name":"Building Shop"}}}}"#,
            A, A
        );
        let entries = parse_ok(&text);
        assert_eq!(entries.len(), 2);
        let building = entries.iter().find(|e| e.name == "Building Shop").unwrap();
        assert_eq!(
            building.hosts,
            ["building.example.com", "www.building.example.com"]
        );
        assert_eq!(building.database.pg.get_dbname(), Some("a_shop"));
        let hardware = entries.iter().find(|e| e.name == "Hardware Store").unwrap();
        assert_eq!(hardware.hosts, ["hardware.example.com"]);
        let shown = format!("{entries:?}");
        assert!(
            shown.contains("building.example.com") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn refuses_what_it_cannot_serve_without_quoting_secrets() {
        assert!(error("{").contains("not JSON (line 1"));
        assert!(error("[]").contains("expected an object"));
        assert!(error("{}").contains("lists no tenant"));
        assert!(error(&format!(r#"{{"a.example":{{"dsn":"{A}"}}}}"#)).contains("name is missing"));
        assert!(error(r#"{"a.example":{"dsn":7,"name":"x"}}"#).contains("dsn is missing"));
        assert!(
            error(&format!(
                r#"{{"a.example":{{"dsn":"{A}","name":"x","plan":"free"}}}}"#
            ))
            .contains("unknown field \"plan\"")
        );
        assert!(
            error(&format!(r#"{{"a.example:80":{{"dsn":"{A}","name":"x"}}}}"#))
                .contains("not a host name")
        );
        assert!(
            error(&format!(
                r#"{{"bücher.example":{{"dsn":"{A}","name":"x"}}}}"#
            ))
            .contains("not a host name")
        );
        assert!(
            error(&format!(
                r#"{{"a.example":{{"dsn":"{A}","name":"x"}},"A.example.":{{"dsn":"{B}","name":"y"}}}}"#
            ))
            .contains("same host name")
        );
        assert!(
            error(&format!(
                r#"{{"a.example":{{"dsn":"{A}","name":"x"}},"b.example":{{"dsn":"{A}","name":"y"}}}}"#
            ))
            .contains("share a database but not a name")
        );
        let broken = error(
            r#"{"a.example":{"dsn":"host=h user=u password=s3cret dbname=d sslmode=bogus","name":"x"}}"#,
        );
        assert!(broken.contains("a.example: dsn is invalid"), "{broken}");
        // `terraform output -json` without a name wraps every output.
        let wrapped = format!(
            r#"{{"store_api_tenants":{{"sensitive":true,"type":["map",["object",{{"dsn":"string","name":"string"}}]],"value":{{"a.example":{{"dsn":"{A}","name":"x"}}}}}}}}"#
        );
        assert!(error(&wrapped).contains("terraform output -json store_api_tenants"));
    }
}
