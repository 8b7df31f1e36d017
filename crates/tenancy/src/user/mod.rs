//! Login users of a tenant: a LOGIN role that is a member of exactly one of the tenant's groups
//! (`<db>_admin`, `<db>_developer` or `<db>_customer`) and of nothing else, with no role flags.
//!
//! The role comment marks the user as ours and names its tenant; a role without it is never
//! adopted, altered or dropped. Every change to a user runs in a transaction holding the
//! advisory lock of its name, and membership changes also hold the group's lock, so users of one
//! tenant can be applied in parallel without "tuple concurrently updated".
//!
//! - [`spec`]: what a configuration may ask for (roles, validation);
//! - [`status`]: reading a user back from the catalog, drift included;
//! - [`converge`]: create and update;
//! - [`delete`]: drop, with what the user owns.

mod converge;
mod delete;
mod spec;
mod status;

use tokio_postgres::Client;

use crate::catalog::{RoleRow, fetch_roles};
use crate::error::TenantError;
use crate::metadata::UserComment;
use crate::names::{validate_database_name, validate_identifier};
use crate::server::Server;

pub(crate) use delete::drop_users_of;
pub use spec::{
    MIN_PASSWORD_CHARS, UserRole, UserRoleParseError, UserSpec, validate_connection_limit,
    validate_email, validate_password, validate_username,
};
pub use status::{PasswordCheck, UserStatus, verifier_fingerprint};

use converge::{Mode, converge};
use delete::{TenantDatabase, delete_with};
use status::{Email, read_with};

/// Reads the user; `Ok(None)` when no role of that name is a usualstore user of `database`.
/// `password` is checked against the stored verifier where the operator may read it.
pub async fn read_user(
    server: &Server,
    database: &str,
    username: &str,
    password: Option<PasswordCheck<'_>>,
) -> Result<Option<UserStatus>, TenantError> {
    validate_database_name(database)?;
    validate_identifier(username)?;
    let maintenance = server.read_session().await?;
    let result = read_with(
        &maintenance,
        database,
        username,
        password,
        Email::Stored(server),
    )
    .await;
    maintenance.release().await;
    result
}

/// Creates the user, or completes one an earlier create left behind: half-way, or finished but
/// never recorded by Terraform (a crash right after its commit); that one gets the new password.
/// Any role that is not a usualstore user of this tenant is refused.
pub async fn create_user(server: &Server, spec: &UserSpec) -> Result<UserStatus, TenantError> {
    spec.validate()?;
    server
        .on_maintenance(async |session| converge(server, session, spec, Mode::Create).await)
        .await
}

/// Brings an existing user to `spec`: flags, connection limit, membership, email, and the
/// password when `set_password` (a rotation, or a password found changed outside Terraform).
pub async fn update_user(
    server: &Server,
    spec: &UserSpec,
    set_password: bool,
) -> Result<UserStatus, TenantError> {
    spec.validate()?;
    let mode = if set_password {
        Mode::UpdateWithPassword
    } else {
        Mode::Update
    };
    server
        .on_maintenance(async |session| converge(server, session, spec, mode).await)
        .await
}

/// Drops the user after removing what it owns or was granted in any database. A user that is
/// already gone is not an error; a role that is not our user of `database` is left alone.
pub async fn delete_user(
    server: &Server,
    database: &str,
    username: &str,
) -> Result<(), TenantError> {
    validate_database_name(database)?;
    validate_identifier(username)?;
    server
        .on_maintenance(async |session| {
            delete_with(server, session, database, username, TenantDatabase::Kept).await
        })
        .await
}

fn is_our_user(row: &RoleRow, database: &str) -> Option<UserComment> {
    UserComment::parse(row.comment.as_deref()).filter(|comment| comment.database == database)
}

async fn fetch_role(client: &Client, username: &str) -> Result<Option<RoleRow>, TenantError> {
    Ok(fetch_roles(client, &[username]).await?.into_iter().next())
}
