//! Login users of a tenant: a LOGIN role that is a member of exactly one of the tenant's groups
//! (`<db>_admin`, `<db>_developer` or `<db>_customer`) and of nothing else, with no role flags.
//!
//! The role comment marks the user as ours and names its tenant; a role without it is never
//! adopted, altered or dropped. Every change to a user runs in a transaction holding the
//! advisory lock of its name, and membership changes also hold the group's lock, so users of one
//! tenant can be applied in parallel without "tuple concurrently updated".

use std::fmt;
use std::str::FromStr;

use tokio_postgres::Client;
use tokio_postgres::types::Type;

use crate::catalog::{RoleRow, fetch_database, fetch_roles};
use crate::emails::{read_email, write_email};
use crate::error::{DbResultExt, TenantError, UserSetting};
use crate::metadata::{DatabaseComment, TenantState, UserComment, role_comment_matches};
use crate::names::{RoleKind, RoleNames, validate_database_name, validate_identifier};
use crate::roles::{lock_role, operator_is_superuser};
use crate::scram;
use crate::server::Server;
use crate::sql::{quote_ident, quote_literal};
use crate::waits::explain;

/// Shortest password we accept from a configuration.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest email we keep in the role comment (RFC 5321's path limit).
const MAX_EMAIL_CHARS: usize = 254;

/// The group a login user belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserRole {
    Admin,
    Developer,
    Customer,
}

impl UserRole {
    pub const ALL: [UserRole; 3] = [UserRole::Admin, UserRole::Developer, UserRole::Customer];

    pub fn as_str(self) -> &'static str {
        self.group().as_str()
    }

    pub fn group(self) -> RoleKind {
        match self {
            UserRole::Admin => RoleKind::Admin,
            UserRole::Developer => RoleKind::Developer,
            UserRole::Customer => RoleKind::Customer,
        }
    }

    fn from_group(kind: RoleKind) -> Option<UserRole> {
        UserRole::ALL.into_iter().find(|role| role.group() == kind)
    }
}

impl fmt::Display for UserRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role must be one of \"admin\", \"developer\" or \"customer\", got {0:?}")]
pub struct UserRoleParseError(String);

impl FromStr for UserRole {
    type Err = UserRoleParseError;

    fn from_str(value: &str) -> Result<UserRole, UserRoleParseError> {
        UserRole::ALL
            .into_iter()
            .find(|role| role.as_str() == value)
            .ok_or_else(|| UserRoleParseError(value.to_owned()))
    }
}

/// A login user as the configuration wants it.
#[derive(Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub database: String,
    pub username: String,
    pub role: UserRole,
    pub password: String,
    pub email: Option<String>,
    /// -1 for no limit.
    pub connection_limit: i32,
}

impl fmt::Debug for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSpec")
            .field("database", &self.database)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("password", &"<redacted>")
            .field("email", &self.email)
            .field("connection_limit", &self.connection_limit)
            .finish()
    }
}

impl UserSpec {
    pub fn validate(&self) -> Result<(), TenantError> {
        validate_database_name(&self.database)?;
        validate_username(&self.username)?;
        validate_password(&self.password)?;
        if let Some(email) = &self.email {
            validate_email(email)?;
        }
        validate_connection_limit(self.connection_limit)
    }
}

/// Identifier rules, no `pg_` prefix (PostgreSQL reserves it for its own roles), and no suffix of
/// a tenant's group roles: a login named `<x>_owner` would take the owner role's name of tenant
/// `x`, which could then never be created.
pub fn validate_username(username: &str) -> Result<(), TenantError> {
    validate_identifier(username)?;
    let refuse = |reason: String| {
        Err(TenantError::InvalidUserSetting {
            setting: UserSetting::Username,
            reason,
        })
    };
    if username.starts_with("pg_") {
        return refuse(format!(
            "names starting with \"pg_\" are reserved by PostgreSQL, got {username:?}"
        ));
    }
    if let Some(kind) = RoleKind::ALL
        .into_iter()
        .find(|kind| username.ends_with(&format!("_{kind}")))
    {
        return refuse(format!(
            "{username:?} ends with \"_{kind}\", the suffix of every tenant's {kind} group role, so \
             it would take the name of a tenant's group; choose a username that does not end with \
             {}",
            RoleKind::ALL.map(|kind| format!("_{kind}")).join(", ")
        ));
    }
    Ok(())
}

pub fn validate_password(password: &str) -> Result<(), TenantError> {
    let reason = if password.chars().count() < MIN_PASSWORD_CHARS {
        format!("must be at least {MIN_PASSWORD_CHARS} characters long")
    } else if password.contains('\0') {
        "must not contain NUL characters".to_owned()
    } else {
        return Ok(());
    };
    Err(TenantError::InvalidUserSetting {
        setting: UserSetting::Password,
        reason,
    })
}

pub fn validate_email(email: &str) -> Result<(), TenantError> {
    let well_formed = email.chars().count() <= MAX_EMAIL_CHARS
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if well_formed {
        Ok(())
    } else {
        Err(TenantError::InvalidUserSetting {
            setting: UserSetting::Email,
            reason: format!(
                "must look like name@example.com (one @, no spaces, at most {MAX_EMAIL_CHARS} characters), got {email:?}"
            ),
        })
    }
}

pub fn validate_connection_limit(limit: i32) -> Result<(), TenantError> {
    if limit >= -1 {
        Ok(())
    } else {
        Err(TenantError::InvalidUserSetting {
            setting: UserSetting::ConnectionLimit,
            reason: format!("must be -1 (no limit) or zero or more, got {limit}"),
        })
    }
}

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

/// Reads the user; `Ok(None)` when no role of that name is a usualstore user of `database`.
/// `password` is checked against the stored verifier where the operator may read it.
pub async fn read_user(
    server: &Server,
    database: &str,
    username: &str,
    password: Option<&str>,
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
    let mut maintenance = server.connect_maintenance().await?;
    let result = match converge(server, &mut maintenance, spec, Mode::Create).await {
        Ok(status) => Ok(status),
        Err(error) => Err(explain(error, &maintenance, Some(server.lock_timeout())).await),
    };
    maintenance.close().await;
    result
}

/// Brings an existing user to `spec`: flags, connection limit, membership, email, and the
/// password when `set_password` (a rotation, or a password found changed outside Terraform).
pub async fn update_user(
    server: &Server,
    spec: &UserSpec,
    set_password: bool,
) -> Result<UserStatus, TenantError> {
    spec.validate()?;
    let mut maintenance = server.connect_maintenance().await?;
    let mode = if set_password {
        Mode::UpdateWithPassword
    } else {
        Mode::Update
    };
    let result = match converge(server, &mut maintenance, spec, mode).await {
        Ok(status) => Ok(status),
        Err(error) => Err(explain(error, &maintenance, Some(server.lock_timeout())).await),
    };
    maintenance.close().await;
    result
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
    let mut maintenance = server.connect_maintenance().await?;
    let result = match delete_with(
        server,
        &mut maintenance,
        database,
        username,
        TenantDatabase::Kept,
    )
    .await
    {
        Ok(()) => Ok(()),
        Err(error) => Err(explain(error, &maintenance, Some(server.lock_timeout())).await),
    };
    maintenance.close().await;
    result
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
    UpdateWithPassword,
}

fn is_our_user(row: &RoleRow, database: &str) -> Option<UserComment> {
    UserComment::parse(row.comment.as_deref()).filter(|comment| comment.database == database)
}

async fn fetch_role(client: &Client, username: &str) -> Result<Option<RoleRow>, TenantError> {
    Ok(fetch_roles(client, &[username]).await?.into_iter().next())
}

/// Where a read finds the user's e-mail address.
#[derive(Clone, Copy)]
enum Email<'a> {
    /// In the tenant's database, asked through this server when the role says one is kept.
    Stored(&'a Server),
    /// Known to the caller, which has just written it.
    Known(Option<&'a str>),
}

async fn read_with(
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
        flag_drift(&row)
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

/// `ALTER ROLE` options that turn the role back into a plain login user (connection limit aside).
/// Only differing options are listed: PostgreSQL 15 refuses even a no-op `NOSUPERUSER` from a
/// non-superuser operator.
fn flag_drift(row: &RoleRow) -> Vec<&'static str> {
    let mut fixes = Vec::new();
    if row.superuser {
        fixes.push("NOSUPERUSER");
    }
    if !row.inherit {
        fixes.push("INHERIT");
    }
    if row.create_role {
        fixes.push("NOCREATEROLE");
    }
    if row.create_db {
        fixes.push("NOCREATEDB");
    }
    if !row.login {
        fixes.push("LOGIN");
    }
    if row.replication {
        fixes.push("NOREPLICATION");
    }
    if row.bypass_rls {
        fixes.push("NOBYPASSRLS");
    }
    fixes
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

/// The tenant must exist, be ours, and have the group the user joins.
/// The tenant must exist, be ours, and have the group the user joins. Returns that group's name
/// and what the user's role comment says now (the role itself is read again under its lock).
async fn check_tenant(
    client: &Client,
    spec: &UserSpec,
) -> Result<(String, Option<UserComment>), TenantError> {
    let database = &spec.database;
    let Some(row) = fetch_database(client, database).await? else {
        return Err(TenantError::NotFound {
            database: database.clone(),
        });
    };
    if DatabaseComment::parse(row.comment.as_deref()).is_none() {
        return Err(TenantError::NotManaged {
            database: database.clone(),
        });
    }
    let kind = spec.role.group();
    let group = RoleNames::for_database(database).get(kind).to_owned();
    let roles = fetch_roles(client, &[group.as_str(), spec.username.as_str()]).await?;
    let ours = roles.iter().any(|row| {
        row.name == group && role_comment_matches(row.comment.as_deref(), database, kind)
    });
    if !ours {
        return Err(TenantError::TenantIncomplete {
            database: database.clone(),
            role: kind.to_string(),
        });
    }
    let user = roles
        .iter()
        .find(|row| row.name == spec.username)
        .and_then(|row| is_our_user(row, database));
    Ok((group, user))
}

async fn converge(
    server: &Server,
    client: &mut Client,
    spec: &UserSpec,
    mode: Mode,
) -> Result<UserStatus, TenantError> {
    let (group, current) = check_tenant(client, spec).await?;
    let username = spec.username.as_str();
    let database = spec.database.as_str();
    let user = quote_ident(username);

    // The address goes into the tenant before the role says it is there; a crash in between
    // leaves a row the next apply overwrites. Without one, a row only needs removing when the
    // role said there was one.
    let had_email = current
        .as_ref()
        .is_some_and(|comment| comment.has_email || comment.legacy_email.is_some());
    if spec.email.is_some() || had_email {
        write_email(server, database, username, spec.email.as_deref()).await?;
    }

    let transaction = client
        .transaction()
        .await
        .context("starting the user transaction")?;
    lock_role(&transaction, username).await?;
    let existing = fetch_role(transaction.client(), username).await?;
    let mut set_password = mode != Mode::Update;
    let row = match existing {
        None if mode == Mode::Create => {
            tracing::info!(role = username, database, "creating login user");
            // Created with status "provisioning": a crash before the end leaves a user the next
            // create recognises as its own and completes.
            transaction
                .batch_execute(&format!(
                    "CREATE ROLE {user} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT \
                     NOREPLICATION NOBYPASSRLS CONNECTION LIMIT {limit} PASSWORD {password}; \
                     COMMENT ON ROLE {user} IS {comment}",
                    limit = spec.connection_limit,
                    password = quote_literal(&scram::verifier(&spec.password)),
                    comment = quote_literal(&UserComment::render(
                        database,
                        spec.email.is_some(),
                        TenantState::Provisioning
                    )),
                ))
                .await
                .context(format!("creating login user {username:?}"))?;
            set_password = false;
            fetch_role(transaction.client(), username).await?
        }
        None => {
            return Err(TenantError::NotFound {
                database: format!("{database} (user {username:?})"),
            });
        }
        Some(row) => {
            let Some(comment) = is_our_user(&row, database) else {
                return Err(TenantError::UserConflict {
                    username: username.to_owned(),
                    database: database.to_owned(),
                });
            };
            if mode == Mode::Create && comment.status == Some(TenantState::Ready) {
                // Ours, for this tenant, and finished: an earlier apply created it but died before
                // Terraform recorded it (its commit is the create's last step, so only a crash in
                // that instant leaves this). Taking it over, with the password planned now, is what
                // lets the next apply converge; nothing else we manage is touched.
                tracing::warn!(
                    role = username,
                    database,
                    "adopting a finished user that no state recorded; its password is reset"
                );
            }
            Some(row)
        }
    };
    let Some(row) = row else {
        return Err(TenantError::UserConflict {
            username: username.to_owned(),
            database: database.to_owned(),
        });
    };

    let mut options: Vec<String> = flag_drift(&row).into_iter().map(str::to_owned).collect();
    if row.connection_limit != spec.connection_limit {
        options.push(format!("CONNECTION LIMIT {}", spec.connection_limit));
    }
    if set_password {
        options.push(format!(
            "PASSWORD {}",
            quote_literal(&scram::verifier(&spec.password))
        ));
    }
    if !options.is_empty() {
        tracing::info!(role = username, "updating login user");
        transaction
            .batch_execute(&format!("ALTER ROLE {user} WITH {}", options.join(" ")))
            .await
            .context(format!("updating login user {username:?}"))?;
    }

    // Memberships: exactly the one group. Changes also hold the locks of every group involved,
    // taken after the user's and in name order, so concurrent role switches (admin to developer
    // here, developer to admin there) queue instead of deadlocking.
    let mut involved: Vec<&str> = row.member_of.iter().map(String::as_str).collect();
    if !involved.contains(&group.as_str()) {
        involved.push(&group);
    }
    if involved != [group.as_str()] {
        involved.sort_unstable();
        for name in &involved {
            lock_role(&transaction, name).await?;
        }
    }
    for membership in row.member_of.iter().filter(|m| **m != group) {
        tracing::info!(role = username, group = %membership, "revoking membership");
        transaction
            .batch_execute(&format!("REVOKE {} FROM {user}", quote_ident(membership)))
            .await
            .context(format!("revoking {membership:?} from {username:?}"))?;
    }
    if !row.member_of.contains(&group) {
        tracing::info!(role = username, group = %group, "granting membership");
        transaction
            .batch_execute(&format!("GRANT {} TO {user}", quote_ident(&group)))
            .await
            .context(format!("granting {group:?} to {username:?}"))?;
    }
    transaction
        .batch_execute(&format!(
            "COMMENT ON ROLE {user} IS {}",
            quote_literal(&UserComment::render(
                database,
                spec.email.is_some(),
                TenantState::Ready
            ))
        ))
        .await
        .context(format!("commenting on login user {username:?}"))?;
    // Read back inside the transaction, so the commit is the last step: a create that fails or
    // is killed before it leaves nothing (or a provisioning user the next apply completes), and
    // after it only the response to Terraform is left.
    let status = read_with(
        transaction.client(),
        database,
        username,
        None,
        Email::Known(spec.email.as_deref()),
    )
    .await?
    .ok_or_else(|| TenantError::UserConflict {
        username: username.to_owned(),
        database: database.to_owned(),
    })?;
    transaction
        .commit()
        .await
        .context(format!("committing login user {username:?}"))?;
    Ok(status)
}

/// Databases where the user owns objects or holds privileges (`None` stands for shared objects,
/// such as a database's own ACL, which any database's `DROP OWNED` clears).
async fn databases_with_dependencies(
    client: &Client,
    username: &str,
) -> Result<Vec<Option<String>>, TenantError> {
    let rows = client
        .query_typed(
            "SELECT DISTINCT d.datname::text FROM pg_catalog.pg_shdepend s \
             LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid \
             WHERE s.refclassid = 'pg_catalog.pg_authid'::regclass \
               AND s.refobjid = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = $1) \
               AND s.deptype IN ('o', 'a', 'i')",
            &[(&username, Type::TEXT)],
        )
        .await
        .context(format!("looking up what {username:?} owns or was granted"))?;
    Ok(rows.into_iter().map(|row| row.get(0)).collect())
}

/// Where a deleted user's e-mail address goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TenantDatabase {
    /// Still there: its record of the address is removed too.
    Kept,
    /// Dropped with the tenant, and the address with it.
    Dropped,
}

async fn delete_with(
    server: &Server,
    client: &mut Client,
    database: &str,
    username: &str,
    tenant: TenantDatabase,
) -> Result<(), TenantError> {
    let Some(row) = fetch_role(client, username).await? else {
        return Ok(());
    };
    let Some(comment) = is_our_user(&row, database) else {
        tracing::warn!(
            role = username,
            "leaving role alone: it is not a usualstore user of this tenant"
        );
        return Ok(());
    };
    if comment.has_email && tenant == TenantDatabase::Kept {
        write_email(server, database, username, None).await?;
    }

    let dependencies = databases_with_dependencies(client, username).await?;
    if !dependencies.is_empty() {
        // DROP OWNED needs the user's privileges; a CREATEROLE operator may give them to itself.
        if !operator_is_superuser(client).await? {
            client
                .batch_execute(&format!("GRANT {} TO CURRENT_USER", quote_ident(username)))
                .await
                .context(format!("granting {username:?} to the operator"))?;
        }
        let mut shared_only = true;
        for dependency in dependencies.iter().flatten() {
            shared_only = false;
            tracing::info!(role = username, database = %dependency, "dropping what the user owns");
            let session = server.connect_to(dependency).await?;
            let result = session
                .batch_execute(&format!("DROP OWNED BY {}", quote_ident(username)))
                .await
                .context(format!("dropping what {username:?} owns in {dependency:?}"));
            session.close().await;
            result?;
        }
        if shared_only {
            client
                .batch_execute(&format!("DROP OWNED BY {}", quote_ident(username)))
                .await
                .context(format!("dropping the privileges of {username:?}"))?;
        }
    }

    // Open sessions do not block DROP ROLE, but they would keep working until they end.
    if let Err(error) = client
        .execute_typed(
            "SELECT pg_catalog.pg_terminate_backend(a.pid) FROM pg_catalog.pg_stat_activity a \
             WHERE a.usename = $1",
            &[(&username, Type::TEXT)],
        )
        .await
    {
        tracing::warn!(role = username, %error, "could not end the user's sessions");
    }

    let transaction = client
        .transaction()
        .await
        .context("starting the user transaction")?;
    lock_role(&transaction, username).await?;
    let mut memberships = row.member_of.clone();
    memberships.sort_unstable();
    for membership in &memberships {
        lock_role(&transaction, membership).await?;
    }
    tracing::info!(role = username, "dropping login user");
    transaction
        .batch_execute(&format!("DROP ROLE IF EXISTS {}", quote_ident(username)))
        .await
        .context(format!("dropping login user {username:?}"))?;
    transaction
        .commit()
        .await
        .context(format!("committing the drop of {username:?}"))?;
    Ok(())
}

/// Drops every usualstore login user of `database`, whichever state still tracks it.
pub(crate) async fn drop_users_of(
    server: &Server,
    client: &mut Client,
    database: &str,
) -> Result<(), TenantError> {
    let rows = client
        .query_typed(
            "SELECT r.rolname::text, pg_catalog.shobj_description(r.oid, 'pg_authid') \
             FROM pg_catalog.pg_roles r \
             WHERE pg_catalog.shobj_description(r.oid, 'pg_authid') LIKE '%\"usualstore\"%'",
            &[],
        )
        .await
        .context(format!("looking up the login users of {database:?}"))?;
    for row in rows {
        let username: String = row.get(0);
        let comment: Option<String> = row.get(1);
        let ours = UserComment::parse(comment.as_deref()).is_some_and(|c| c.database == database);
        if ours {
            tracing::info!(role = %username, database, "dropping login user of the deleted tenant");
            delete_with(server, client, database, &username, TenantDatabase::Dropped).await?;
        }
    }
    Ok(())
}
