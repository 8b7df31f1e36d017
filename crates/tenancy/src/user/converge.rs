//! Creating a login user and bringing one back to its configuration.

use tokio_postgres::{Client, Transaction};

use super::spec::UserSpec;
use super::status::{Email, UserStatus, read_with};
use super::{fetch_role, is_our_user};
use crate::catalog::{RoleRow, RoleShape, fetch_database, fetch_roles};
use crate::emails::write_email;
use crate::error::{DbResultExt, TenantError};
use crate::metadata::{DatabaseComment, TenantState, UserComment, role_comment_matches};
use crate::names::RoleNames;
use crate::roles::{lock_role, with_role_locks};
use crate::scram;
use crate::server::Server;
use crate::sql::{quote_ident, quote_literal};

/// What an apply of a user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Create,
    Update,
    UpdateWithPassword,
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

pub(super) async fn converge(
    server: &Server,
    client: &mut Client,
    spec: &UserSpec,
    mode: Mode,
) -> Result<UserStatus, TenantError> {
    let (group, current) = check_tenant(client, spec).await?;
    let (database, username) = (spec.database.as_str(), spec.username.as_str());

    // The address goes into the tenant before the role says it is there; a crash in between
    // leaves a row the next apply overwrites. Without one, a row only needs removing when the
    // role said there was one.
    let had_email = current
        .as_ref()
        .is_some_and(|comment| comment.has_email || comment.legacy_email.is_some());
    if spec.email.is_some() || had_email {
        write_email(server, database, username, spec.email.as_deref()).await?;
    }

    with_role_locks(client, &[username], async |transaction| {
        let (row, created) = obtain(transaction, spec, mode).await?;
        let set_password = !created && mode != Mode::Update;
        align_flags(transaction, &row, spec, set_password).await?;
        align_membership(transaction, &row, username, &group).await?;
        transaction
            .batch_execute(&format!(
                "COMMENT ON ROLE {} IS {}",
                quote_ident(username),
                quote_literal(&UserComment::render(
                    database,
                    spec.email.is_some(),
                    TenantState::Ready
                ))
            ))
            .await
            .context(format!("commenting on login user {username:?}"))?;
        // Read back inside the transaction, so the commit is the last step: a create that fails
        // or is killed before it leaves nothing (or a provisioning user the next apply
        // completes), and after it only the response to Terraform is left.
        read_with(
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
        })
    })
    .await
}

/// The user's role, created (with status "provisioning") when a create finds none; `true` when it
/// was created here. Any role that is not our user of this tenant is refused.
async fn obtain(
    transaction: &Transaction<'_>,
    spec: &UserSpec,
    mode: Mode,
) -> Result<(RoleRow, bool), TenantError> {
    let (database, username) = (spec.database.as_str(), spec.username.as_str());
    let conflict = || TenantError::UserConflict {
        username: username.to_owned(),
        database: database.to_owned(),
    };
    match fetch_role(transaction.client(), username).await? {
        None if mode == Mode::Create => {
            tracing::info!(role = username, database, "creating login user");
            // A crash before the end leaves a provisioning user the next create completes.
            let user = quote_ident(username);
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
            let row = fetch_role(transaction.client(), username)
                .await?
                .ok_or_else(conflict)?;
            Ok((row, true))
        }
        None => Err(TenantError::NotFound {
            database: format!("{database} (user {username:?})"),
        }),
        Some(row) => {
            let comment = is_our_user(&row, database).ok_or_else(conflict)?;
            if mode == Mode::Create && comment.status == Some(TenantState::Ready) {
                // Ours, for this tenant, and finished: an earlier apply created it but died before
                // Terraform recorded it (its commit is the create's last step, so only a crash in
                // that instant leaves this). Taking it over, with the password planned now, is
                // what lets the next apply converge; nothing else we manage is touched.
                tracing::warn!(
                    role = username,
                    database,
                    "adopting a finished user that no state recorded; its password is reset"
                );
            }
            Ok((row, false))
        }
    }
}

/// Flags back to a plain login, the configured connection limit, and the password when asked.
async fn align_flags(
    transaction: &Transaction<'_>,
    row: &RoleRow,
    spec: &UserSpec,
    set_password: bool,
) -> Result<(), TenantError> {
    let mut options: Vec<String> = row
        .fixes(RoleShape::Login)
        .into_iter()
        .map(str::to_owned)
        .collect();
    if row.connection_limit != spec.connection_limit {
        options.push(format!("CONNECTION LIMIT {}", spec.connection_limit));
    }
    if set_password {
        options.push(format!(
            "PASSWORD {}",
            quote_literal(&scram::verifier(&spec.password))
        ));
    }
    if options.is_empty() {
        return Ok(());
    }
    tracing::info!(role = %row.name, "updating login user");
    transaction
        .batch_execute(&format!(
            "ALTER ROLE {} WITH {}",
            quote_ident(&row.name),
            options.join(" ")
        ))
        .await
        .context(format!("updating login user {:?}", row.name))
}

/// Exactly the one group. Changes also hold the locks of every group involved, taken after the
/// user's and in name order, so concurrent role switches (admin to developer here, developer to
/// admin there) queue instead of deadlocking.
async fn align_membership(
    transaction: &Transaction<'_>,
    row: &RoleRow,
    username: &str,
    group: &str,
) -> Result<(), TenantError> {
    let mut involved: Vec<&str> = row.member_of.iter().map(String::as_str).collect();
    if !involved.contains(&group) {
        involved.push(group);
    }
    // Joining the one group from no group touches no other group's memberships: no lock needed.
    if involved != [group] {
        involved.sort_unstable();
        for name in &involved {
            lock_role(transaction, name).await?;
        }
    }
    let user = quote_ident(username);
    for membership in row.member_of.iter().filter(|m| *m != group) {
        tracing::info!(role = username, group = %membership, "revoking membership");
        transaction
            .batch_execute(&format!("REVOKE {} FROM {user}", quote_ident(membership)))
            .await
            .context(format!("revoking {membership:?} from {username:?}"))?;
    }
    if !row.member_of.iter().any(|m| m == group) {
        tracing::info!(role = username, group, "granting membership");
        transaction
            .batch_execute(&format!("GRANT {} TO {user}", quote_ident(group)))
            .await
            .context(format!("granting {group:?} to {username:?}"))?;
    }
    Ok(())
}
