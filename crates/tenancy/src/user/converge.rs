//! Creating a login user and bringing one back to its configuration.

use tokio_postgres::Client;

use super::spec::UserSpec;
use super::status::{Email, UserStatus, read_with};
use super::{fetch_role, is_our_user};
use crate::catalog::{RoleRow, RoleShape, fetch_database, fetch_roles};
use crate::emails::write_email;
use crate::error::{DbResultExt, TenantError};
use crate::metadata::{DatabaseComment, TenantState, UserComment, role_comment_matches};
use crate::names::RoleNames;
use crate::roles::{ROLE_LOCK_CLASS, lock_roles, lock_statement, with_role_locks};
use crate::scram;
use crate::server::Server;
use crate::sql::{quote_ident, quote_literal};
use crate::waits::{AdvisoryKey, LockTarget};

/// What an apply of a user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Create,
    Update,
    UpdateWithPassword,
}

/// The tenant must exist, be ours, and have the group the user joins. Returns that group's name
/// and what the user's role comment says now (the role itself is read again under its lock).
async fn check_tenant(
    client: &Client,
    spec: &UserSpec,
) -> Result<(String, Option<UserComment>), TenantError> {
    let database = &spec.database;
    let kind = spec.role.group();
    let group = RoleNames::for_database(database).get(kind).to_owned();
    // One round trip for both.
    let names = [group.as_str(), spec.username.as_str()];
    let (row, roles) = tokio::try_join!(
        fetch_database(client, database),
        fetch_roles(client, &names)
    )?;
    let Some(row) = row else {
        return Err(TenantError::NotFound {
            database: database.clone(),
        });
    };
    if DatabaseComment::parse(row.comment.as_deref()).is_none() {
        return Err(TenantError::NotManaged {
            database: database.clone(),
        });
    }
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

    // Computed before any lock is taken; a plain update keeps the password it has.
    let verifier = (mode != Mode::Update).then(|| scram::verifier(&spec.password));
    with_role_locks(client, &[], async |transaction| {
        // The user's lock and the user as it is under it, in one round trip.
        let user_lock = [username];
        // In a transaction: polled in the order sent, so the error reported is the first
        // request's, not a later one's "transaction is aborted".
        let ((), existing) = tokio::try_join!(
            biased;
            lock_roles(transaction, &user_lock),
            fetch_role(transaction.client(), username)
        )?;
        let (statements, group_locks) = match (existing, verifier.as_deref()) {
            (None, Some(verifier)) if mode == Mode::Create => {
                tracing::info!(role = username, database, "creating login user");
                (create_statements(spec, &group, verifier), Vec::new())
            }
            (None, _) => {
                return Err(TenantError::NotFound {
                    database: format!("{database} (user {username:?})"),
                });
            }
            (Some(row), verifier) => {
                let comment =
                    is_our_user(&row, database).ok_or_else(|| TenantError::UserConflict {
                        username: username.to_owned(),
                        database: database.to_owned(),
                    })?;
                if mode == Mode::Create && comment.status == Some(TenantState::Ready) {
                    // Ours, for this tenant, and finished: an earlier apply created it but died
                    // before Terraform recorded it (its commit is the create's last step, so
                    // only a crash in that instant leaves this). Taking it over, with the
                    // password planned now, is what lets the next apply converge; nothing else
                    // we manage is touched.
                    tracing::warn!(
                        role = username,
                        database,
                        "adopting a finished user that no state recorded; its password is reset"
                    );
                }
                update_statements(&row, spec, &group, verifier)
            }
        };
        // The changes, then the read-back, sent together: the commit is the last step, so a
        // create that fails or is killed before it leaves nothing, and after it only the
        // response to Terraform is left.
        // In a transaction: polled in the order sent, so the error reported is the first
        // request's, not a later one's "transaction is aborted".
        let (_, status) = tokio::try_join!(
            biased;
            async {
                transaction
                    .batch_execute(&statements.join(";\n"))
                    .await
                    .context(format!("applying login user {username:?}"))
                    .map_err(|error| {
                        error.waiting_for(LockTarget::Advisory(AdvisoryKey::Named {
                            class: ROLE_LOCK_CLASS,
                            names: group_locks.clone(),
                        }))
                    })
            },
            read_with(
                transaction.client(),
                database,
                username,
                None,
                Email::Known(spec.email.as_deref()),
            )
        )?;
        let mut status = status.ok_or_else(|| TenantError::UserConflict {
            username: username.to_owned(),
            database: database.to_owned(),
        })?;
        status.verifier_set = verifier.clone();
        Ok(status)
    })
    .await
}

/// A new login user: created ready, in its group, in one batch (it is committed with the rest of
/// the transaction or not at all).
fn create_statements(spec: &UserSpec, group: &str, verifier: &str) -> Vec<String> {
    let user = quote_ident(&spec.username);
    vec![
        format!(
            "CREATE ROLE {user} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT \
             NOREPLICATION NOBYPASSRLS CONNECTION LIMIT {limit} PASSWORD {password}",
            limit = spec.connection_limit,
            password = quote_literal(verifier),
        ),
        format!("GRANT {} TO {user}", quote_ident(group)),
        ready_comment(spec),
    ]
}

fn ready_comment(spec: &UserSpec) -> String {
    format!(
        "COMMENT ON ROLE {} IS {}",
        quote_ident(&spec.username),
        quote_literal(&UserComment::render(
            &spec.database,
            spec.email.is_some(),
            TenantState::Ready
        ))
    )
}

/// What brings an existing user back to `spec`: flags to a plain login, the connection limit,
/// the password's `verifier` when given, exactly the one group, the ready comment. Membership changes
/// first take the locks of every group involved, in name order, so concurrent role switches
/// (admin to developer here, developer to admin there) queue instead of deadlocking; those names
/// are returned too.
fn update_statements(
    row: &RoleRow,
    spec: &UserSpec,
    group: &str,
    verifier: Option<&str>,
) -> (Vec<String>, Vec<String>) {
    let user = quote_ident(&spec.username);
    let mut statements = Vec::new();
    let mut options: Vec<String> = row
        .fixes(RoleShape::Login)
        .into_iter()
        .map(str::to_owned)
        .collect();
    if row.connection_limit != spec.connection_limit {
        options.push(format!("CONNECTION LIMIT {}", spec.connection_limit));
    }
    if let Some(verifier) = verifier {
        options.push(format!("PASSWORD {}", quote_literal(verifier)));
    }
    if !options.is_empty() {
        tracing::info!(role = %row.name, "updating login user");
        statements.push(format!("ALTER ROLE {user} WITH {}", options.join(" ")));
    }

    let mut involved: Vec<String> = row.member_of.clone();
    if !involved.iter().any(|name| name == group) {
        involved.push(group.to_owned());
    }
    // Joining the one group from no group touches no other group's memberships: no lock needed.
    let group_locks = if involved == [group] {
        Vec::new()
    } else {
        involved.sort_unstable();
        involved
    };
    if !group_locks.is_empty() {
        statements.push(lock_statement(&group_locks));
    }
    for membership in row.member_of.iter().filter(|m| *m != group) {
        tracing::info!(role = %row.name, group = %membership, "revoking membership");
        statements.push(format!("REVOKE {} FROM {user}", quote_ident(membership)));
    }
    if !row.member_of.iter().any(|m| m == group) {
        tracing::info!(role = %row.name, group, "granting membership");
        statements.push(format!("GRANT {} TO {user}", quote_ident(group)));
    }
    statements.push(ready_comment(spec));
    (statements, group_locks)
}
