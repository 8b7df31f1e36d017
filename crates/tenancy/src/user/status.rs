//! Reading a login user back from the catalog: its group, flags, e-mail and whether its password
//! is still Terraform's.

use tokio_postgres::Client;
use tokio_postgres::types::Type;

use super::spec::UserRole;
use super::{fetch_role, is_our_user};
use crate::catalog::RoleShape;
use crate::emails::read_email;
use crate::error::{DbResultExt, TenantError};
use crate::metadata::TenantState;
use crate::names::RoleNames;
use crate::scram;
use crate::server::Server;

/// A login user as the catalog shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserStatus {
    pub database: String,
    pub username: String,
    /// The tenant group the user is in, when it is in exactly one.
    pub role: Option<UserRole>,
    pub email: Option<String>,
    pub connection_limit: i32,
    /// Whether the given password is the user's; `None` when none was given or the operator may
    /// not read password verifiers (only superusers can read `pg_authid`).
    pub password_matches: Option<bool>,
    /// What differs from a plain login user of one group: flags, other memberships, an
    /// unfinished create. Empty when in sync.
    pub drift: Vec<String>,
}

impl UserStatus {
    pub fn privileges_in_sync(&self) -> bool {
        self.drift.is_empty()
    }
}

/// Where a read finds the user's e-mail address.
#[derive(Clone, Copy)]
pub(super) enum Email<'a> {
    /// In the tenant's database, asked through this server when the role says one is kept.
    Stored(&'a Server),
    /// Known to the caller, which has just written it.
    Known(Option<&'a str>),
}

pub(super) async fn read_with(
    client: &Client,
    database: &str,
    username: &str,
    password: Option<&str>,
    email: Email<'_>,
) -> Result<Option<UserStatus>, TenantError> {
    let Some(row) = fetch_role(client, username).await? else {
        return Ok(None);
    };
    let Some(comment) = is_our_user(&row, database) else {
        tracing::info!(
            role = username,
            "role is not a usualstore user of this tenant"
        );
        return Ok(None);
    };
    let groups = RoleNames::for_database(database);
    let mut role = None;
    let mut drift = Vec::new();
    let mut tenant_groups = 0;
    for membership in &row.member_of {
        let tenant_group = groups
            .iter()
            .find(|(_, name)| name == membership)
            .and_then(|(kind, _)| UserRole::from_group(kind));
        match tenant_group {
            Some(found) => {
                role = Some(found);
                tenant_groups += 1;
            }
            None => drift.push(format!("{username:?} is also a member of {membership:?}")),
        }
    }
    if tenant_groups > 1 {
        role = None;
        drift.push(format!(
            "{username:?} is a member of several of the tenant's groups"
        ));
    }
    drift.extend(
        row.fixes(RoleShape::Login)
            .into_iter()
            .map(|fix| format!("{username:?} needs {fix}")),
    );
    if comment.status != Some(TenantState::Ready) {
        drift.push(format!("the create of {username:?} did not finish"));
    }
    let email = match (&comment.legacy_email, email) {
        (Some(legacy), _) => {
            drift.push(format!(
                "the e-mail of {username:?} is in its role comment, which every login on the \
                 server can read; the next apply moves it into the tenant's database"
            ));
            Some(legacy.clone())
        }
        (None, Email::Known(known)) => known.map(str::to_owned),
        (None, Email::Stored(_)) if !comment.has_email => None,
        (None, Email::Stored(server)) => read_email(server, database, username).await?,
    };
    let password_matches = match password {
        Some(password) => password_matches(client, username, password).await?,
        None => None,
    };
    Ok(Some(UserStatus {
        database: database.to_owned(),
        username: username.to_owned(),
        role,
        email,
        connection_limit: row.connection_limit,
        password_matches,
        drift,
    }))
}

/// Checks the password against `pg_authid`, which only superusers may read.
async fn password_matches(
    client: &Client,
    username: &str,
    password: &str,
) -> Result<Option<bool>, TenantError> {
    let stored = client
        .query_typed_opt(
            "SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1",
            &[(&username, Type::TEXT)],
        )
        .await;
    match stored {
        Ok(Some(row)) => {
            let Some(stored) = row.get::<_, Option<String>>(0) else {
                return Ok(Some(false));
            };
            // Key stretching is CPU work by design: off the async workers.
            let (password, username) = (password.to_owned(), username.to_owned());
            let checked =
                tokio::task::spawn_blocking(move || scram::matches(&stored, &password, &username))
                    .await;
            Ok(checked.unwrap_or_else(|error| {
                tracing::warn!(%error, "the password check did not finish");
                None
            }))
        }
        Ok(None) => Ok(Some(false)),
        Err(error)
            if error.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) =>
        {
            tracing::debug!("operator may not read pg_authid; password drift is not checked");
            Ok(None)
        }
        Err(error) => Err(error).context(format!("reading the password verifier of {username:?}")),
    }
}
