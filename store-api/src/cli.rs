//! Subcommands besides serving: `user create` (the first admin: nothing else can create
//! one) and `healthcheck` (for the container's HEALTHCHECK, which has no curl).

use std::io::{BufRead, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::config::{self, ConfigError};
use crate::routes::users::{NewUser, insert_user};

/// The password for `user create` when stdin is not used.
pub const PASSWORD_ENV: &str = "STORE_API_USER_PASSWORD";

pub const USAGE: &str = "\
usage:
  store-api                 serve the API (settings from the environment, see README)
  store-api user create --email EMAIL --first-name NAME --last-name NAME [--role admin|developer|customer]
                            add an application user to DATABASE_DSN's database; the password is read
                            from $STORE_API_USER_PASSWORD, else from the first line of stdin
  store-api healthcheck     exit 0 when the server answers /healthz on OPS_ADDR, else on API_PORT
                            (for containers)
  store-api --version";

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}\n{USAGE}")]
    Usage(String),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Failed(String),
}

#[derive(Debug, Default, PartialEq, Eq)]
struct UserArgs {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    role: Option<String>,
}

fn parse_user_args(args: &[String]) -> Result<UserArgs, CliError> {
    let mut parsed = UserArgs::default();
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (flag.as_str(), None),
        };
        let slot = match name {
            "--email" => &mut parsed.email,
            "--first-name" => &mut parsed.first_name,
            "--last-name" => &mut parsed.last_name,
            "--role" => &mut parsed.role,
            "--password" => {
                return Err(CliError::Usage(
                    "--password is not accepted: command lines are visible to other users; \
                     use STORE_API_USER_PASSWORD or stdin"
                        .to_owned(),
                ));
            }
            other => return Err(CliError::Usage(format!("unknown argument {other:?}"))),
        };
        let value = match inline {
            Some(value) => value,
            None => iter
                .next()
                .cloned()
                .ok_or_else(|| CliError::Usage(format!("{name} needs a value")))?,
        };
        *slot = Some(value);
    }
    Ok(parsed)
}

/// `store-api user create …`: prints the new user's id and email.
pub fn user(args: &[String]) -> Result<String, CliError> {
    match args.first().map(String::as_str) {
        Some("create") => {}
        Some(other) => return Err(CliError::Usage(format!("unknown user command {other:?}"))),
        None => return Err(CliError::Usage("user: expected `create`".to_owned())),
    }
    let parsed = parse_user_args(&args[1..])?;
    let required = |value: Option<String>, flag: &str| {
        value.ok_or_else(|| CliError::Usage(format!("user create needs {flag}")))
    };
    let email = required(parsed.email, "--email")?;
    let first_name = required(parsed.first_name, "--first-name")?;
    let last_name = required(parsed.last_name, "--last-name")?;
    let role = parsed.role.unwrap_or_else(|| "admin".to_owned());
    let database = config::database_from_env()?;
    let password = read_password()?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::Failed(format!("starting a runtime: {error}")))?;
    runtime.block_on(async {
        let budget = std::sync::Arc::new(crate::budget::Budget::new(1));
        let pool = crate::db::build_pool(
            &database,
            1,
            Duration::from_secs(30),
            budget,
            "-".into(),
            None,
        )
        .map_err(|error| CliError::Failed(error.to_string()))?;
        // Connect before asking Argon2 for work, so a wrong DSN fails at once.
        drop(pool.get().await.map_err(|error| {
            CliError::Failed(format!(
                "cannot connect to {}: {}",
                database.describe(),
                crate::error::ApiError::from(error).message
            ))
        })?);
        let hasher = crate::auth::Hasher::new(1, Duration::from_secs(60));
        let user = insert_user(
            &pool,
            &hasher,
            NewUser {
                first_name,
                last_name,
                email,
                password,
                role,
            },
        )
        .await
        .map_err(|error| match error.field {
            Some(field) => CliError::Failed(format!("{field}: {}", error.message)),
            None => CliError::Failed(error.message),
        })?;
        Ok(format!(
            "created {} user {} <{}>",
            user.role, user.id, user.email
        ))
    })
}

fn read_password() -> Result<String, CliError> {
    if let Ok(password) = std::env::var(PASSWORD_ENV)
        && !password.is_empty()
    {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| CliError::Failed(format!("reading the password from stdin: {error}")))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(CliError::Failed(format!(
            "no password: set {PASSWORD_ENV} or pipe it on stdin"
        )));
    }
    Ok(password)
}

/// GET /healthz on this container's operations address (`OPS_ADDR`) or, without one, its API
/// port; true on a 200.
pub fn healthcheck() -> bool {
    let ops = std::env::var(config::OPS_ADDR)
        .ok()
        .and_then(|value| value.trim().parse::<SocketAddr>().ok());
    let address = match ops {
        Some(ops) if ops.ip().is_unspecified() => {
            let loopback = match ops {
                SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            };
            SocketAddr::new(loopback, ops.port())
        }
        Some(ops) => ops,
        None => {
            let port = std::env::var(config::API_PORT)
                .ok()
                .and_then(|value| value.trim().parse::<u16>().ok())
                .unwrap_or(config::DEFAULT_PORT);
            let host = std::env::var(config::API_HOST)
                .ok()
                .and_then(|value| value.trim().parse::<IpAddr>().ok())
                .filter(|ip| !ip.is_unspecified())
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            SocketAddr::new(host, port)
        }
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(2)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(3)));
    if stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 16];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    head[..read].starts_with(b"HTTP/1.1 200") || head[..read].starts_with(b"HTTP/1.0 200")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn user_arguments() {
        let parsed = parse_user_args(&args(&[
            "--email",
            "a@b.c",
            "--first-name=Ann",
            "--last-name",
            "Lee",
        ]))
        .unwrap();
        assert_eq!(parsed.email.as_deref(), Some("a@b.c"));
        assert_eq!(parsed.first_name.as_deref(), Some("Ann"));
        assert_eq!(parsed.role, None);
        assert!(matches!(
            parse_user_args(&args(&["--password", "x"])),
            Err(CliError::Usage(_))
        ));
        assert!(matches!(
            parse_user_args(&args(&["--email"])),
            Err(CliError::Usage(_))
        ));
    }
}
