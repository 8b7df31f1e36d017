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
    /// The verifier an apply just set (create, rotation, repair), for the caller to remember: a
    /// later read that finds the same verifier knows the password is unchanged without
    /// recomputing it.
    pub verifier_set: Option<String>,
    /// What differs from a plain login user of one group: flags, other memberships, an
    /// unfinished create. Empty when in sync.
    pub drift: Vec<String>,
}

impl UserStatus {
    pub fn privileges_in_sync(&self) -> bool {
        self.drift.is_empty()
    }
}

/// What a read checks the stored password verifier against: the password, and the verifier the
/// caller last set, if it remembers one (a fingerprint from [`verifier_fingerprint`]).
#[derive(Clone, Copy)]
pub struct PasswordCheck<'a> {
    pub password: Option<&'a str>,
    pub fingerprint: Option<&'a str>,
}

/// What a caller keeps of a verifier it set: SHA-256 of it, hex. Equal verifiers mean an
/// unchanged password; the fingerprint itself gives nothing to guess passwords with (the
/// verifier's random salt is inside it).
pub fn verifier_fingerprint(verifier: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(verifier.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
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
    password: Option<PasswordCheck<'_>>,
    email: Email<'_>,
) -> Result<Option<UserStatus>, TenantError> {
    // The role and its verifier, asked together.
    let (row, stored) = tokio::try_join!(fetch_role(client, username), async {
        match password {
            Some(_) => stored_verifier(client, username).await,
            None => Ok(None),
        }
    })?;
    let Some(row) = row else {
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
    let password_matches = match (password, stored) {
        (Some(check), Some(stored)) => password_matches(stored, username, check).await,
        _ => None,
    };
    Ok(Some(UserStatus {
        database: database.to_owned(),
        username: username.to_owned(),
        role,
        email,
        connection_limit: row.connection_limit,
        password_matches,
        verifier_set: None,
        drift,
    }))
}

/// What `pg_authid` stores for the user (`Some(None)`: no password), or `None` when the
/// operator may not read it (only superusers may).
async fn stored_verifier(
    client: &Client,
    username: &str,
) -> Result<Option<Option<String>>, TenantError> {
    let stored = client
        .query_typed_opt(
            "SELECT a.rolpassword FROM pg_catalog.pg_authid a WHERE a.rolname = $1",
            &[(&username, Type::TEXT)],
        )
        .await;
    match stored {
        Ok(row) => Ok(Some(row.and_then(|row| row.get(0)))),
        Err(error)
            if error.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) =>
        {
            tracing::debug!("operator may not read pg_authid; password drift is not checked");
            Ok(None)
        }
        Err(error) => Err(error).context(format!("reading the password verifier of {username:?}")),
    }
}

/// Whether the stored verifier is still the password's: at once when it is the one the caller
/// set, otherwise by recomputing it from the password (when the caller has it); `None` when
/// neither is known.
async fn password_matches(
    stored: Option<String>,
    username: &str,
    check: PasswordCheck<'_>,
) -> Option<bool> {
    let Some(stored) = stored else {
        return Some(false);
    };
    let same_verifier = check
        .fingerprint
        .map(|fingerprint| verifier_fingerprint(&stored) == fingerprint);
    if same_verifier == Some(true) {
        return Some(true);
    }
    // Another verifier than the one set: the same password set again (a new salt) or another one;
    // only the password can tell which. Without it, the password was changed outside Terraform.
    let Some(password) = check.password.map(str::to_owned) else {
        return same_verifier;
    };
    // Key stretching is CPU work by design: off the async workers.
    let username = username.to_owned();
    tokio::task::spawn_blocking(move || scram::matches(&stored, &password, &username))
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "the password check did not finish");
            None
        })
}
