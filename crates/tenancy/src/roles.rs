//! The tenant's group roles: create, adopt, reset, drop. Runs on the maintenance database.
//!
//! Role DDL on one role from two sessions at once can fail with "tuple concurrently updated",
//! so every change to a role happens in a transaction holding an advisory lock keyed by the
//! role's name.

use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient, Transaction};

use crate::catalog::{RoleRow, RoleShape, fetch_roles};
use crate::error::{DbResultExt, TenantError};
use crate::metadata::{render_role_comment, role_comment_matches};
use crate::names::{RoleKind, RoleNames};
use crate::server::Server;
use crate::sql::{quote_ident, quote_literal};
use crate::waits::{AdvisoryKey, LockTarget};

/// First key of the two-key advisory locks on roles; the second is `hashtext(role name)`.
/// Two-key locks live in a different key space from single-bigint locks.
pub(crate) const ROLE_LOCK_CLASS: i32 = 0x7573_0001;

/// What we found under a role name.
#[derive(Debug, Clone)]
pub(crate) enum RoleState {
    Missing,
    Ours(RoleRow),
    Foreign,
}

impl RoleState {
    pub fn ours(&self) -> Option<&RoleRow> {
        match self {
            RoleState::Ours(row) => Some(row),
            _ => None,
        }
    }
}

/// The state of each of the tenant's four role names, in `RoleKind::ALL` order.
pub(crate) async fn role_states(
    client: &Client,
    database: &str,
    names: &RoleNames,
) -> Result<Vec<(RoleKind, RoleState)>, TenantError> {
    let wanted: Vec<&str> = names.iter().map(|(_, name)| name).collect();
    let rows = fetch_roles(client, &wanted).await?;
    Ok(names
        .iter()
        .map(|(kind, name)| {
            let state = match rows.iter().find(|row| row.name == name) {
                None => RoleState::Missing,
                Some(row) if role_comment_matches(row.comment.as_deref(), database, kind) => {
                    RoleState::Ours(row.clone())
                }
                Some(_) => RoleState::Foreign,
            };
            (kind, state)
        })
        .collect())
}

/// The row of the role of `kind` when it exists and is ours.
pub(crate) fn our_role(states: &[(RoleKind, RoleState)], kind: RoleKind) -> Option<&RoleRow> {
    states
        .iter()
        .find(|(k, _)| *k == kind)
        .and_then(|(_, state)| state.ours())
}

/// Runs `work` in a transaction that holds the advisory locks of `roles` (taken in name order, so
/// operations crossing the same roles queue instead of deadlocking), then commits. `work` may take
/// further role locks with [`lock_roles`].
pub(crate) async fn with_role_locks<T>(
    client: &mut Client,
    roles: &[&str],
    work: impl AsyncFnOnce(&Transaction<'_>) -> Result<T, TenantError>,
) -> Result<T, TenantError> {
    let transaction = client
        .transaction()
        .await
        .context("starting a role transaction")?;
    lock_roles(&transaction, roles).await?;
    let done = work(&transaction).await?;
    transaction
        .commit()
        .await
        .context("committing a role transaction")?;
    Ok(done)
}

/// The statement [`lock_roles`] runs, with the names as literals, for a batch of statements.
/// `roles` must be in name order.
pub(crate) fn lock_statement(roles: &[String]) -> String {
    let names: Vec<String> = roles.iter().map(|name| quote_literal(name)).collect();
    format!(
        "SELECT pg_catalog.pg_advisory_xact_lock({ROLE_LOCK_CLASS}, pg_catalog.hashtext(r.name)) \
         FROM pg_catalog.unnest(ARRAY[{}]::text[]) WITH ORDINALITY AS r(name, n) ORDER BY r.n",
        names.join(", ")
    )
}

/// Takes the transaction-scoped advisory locks of `roles`, in name order, in one statement.
pub(crate) async fn lock_roles(
    client: &impl GenericClient,
    roles: &[&str],
) -> Result<(), TenantError> {
    let mut ordered: Vec<&str> = roles.to_vec();
    ordered.sort_unstable();
    ordered.dedup();
    if ordered.is_empty() {
        return Ok(());
    }
    client
        .execute_typed(
            "SELECT pg_catalog.pg_advisory_xact_lock($1, pg_catalog.hashtext(r.name)) \
             FROM pg_catalog.unnest($2::text[]) WITH ORDINALITY AS r(name, n) ORDER BY r.n",
            &[(&ROLE_LOCK_CLASS, Type::INT4), (&ordered, Type::TEXT_ARRAY)],
        )
        .await
        .context(format!("waiting for the locks on roles {ordered:?}"))
        .map_err(|error| {
            error.waiting_for(LockTarget::Advisory(AdvisoryKey::Named {
                class: ROLE_LOCK_CLASS,
                names: ordered.iter().map(|name| (*name).to_owned()).collect(),
            }))
        })?;
    Ok(())
}

/// Creates the missing group roles and checks that existing ones are ours; returns each role's
/// state as found before (created ones read as missing).
///
/// Conflicts are checked for all four names before anything is created, so a conflict leaves
/// nothing behind. The missing roles are created together, in one transaction holding their
/// locks; their names are pushed to `created` once committed, so a caller can undo exactly those
/// when a later step fails.
pub(crate) async fn ensure_roles(
    client: &mut Client,
    database: &str,
    names: &RoleNames,
    created: &mut Vec<String>,
) -> Result<Vec<(RoleKind, RoleState)>, TenantError> {
    let states = role_states(client, database, names).await?;
    let mut missing = Vec::new();
    for (kind, state) in &states {
        match state {
            RoleState::Foreign => {
                return Err(TenantError::RoleConflict {
                    role: names.get(*kind).to_owned(),
                });
            }
            RoleState::Missing => missing.push((*kind, names.get(*kind))),
            RoleState::Ours(_) => {}
        }
    }
    if missing.is_empty() {
        return Ok(states);
    }
    let missing_names: Vec<&str> = missing.iter().map(|(_, name)| *name).collect();
    let fresh = with_role_locks(client, &missing_names, async |transaction| {
        // Re-check under the locks: a concurrent create of the same tenant may have won.
        let existing = fetch_roles(transaction.client(), &missing_names).await?;
        let mut statements = Vec::new();
        let mut fresh = Vec::new();
        for (kind, name) in &missing {
            match existing.iter().find(|row| row.name == *name) {
                Some(row) if role_comment_matches(row.comment.as_deref(), database, *kind) => {
                    tracing::debug!(role = name, "adopting existing usualstore role");
                }
                Some(_) => {
                    return Err(TenantError::RoleConflict {
                        role: (*name).to_owned(),
                    });
                }
                None => {
                    tracing::info!(role = name, kind = %kind, "creating group role");
                    statements.push(format!(
                        "CREATE ROLE {role} NOLOGIN INHERIT; COMMENT ON ROLE {role} IS {comment}",
                        role = quote_ident(name),
                        comment = quote_literal(&render_role_comment(database, *kind)),
                    ));
                    fresh.push((*name).to_owned());
                }
            }
        }
        if !statements.is_empty() {
            transaction
                .batch_execute(&statements.join("; "))
                .await
                .context(format!("creating roles {:?}", fresh))?;
        }
        Ok(fresh)
    })
    .await?;
    created.extend(fresh);
    Ok(states)
}

/// Drift of the roles themselves (attributes, memberships), for Read.
pub(crate) fn describe_role_drift(row: &RoleRow) -> Vec<String> {
    let mut lines = Vec::new();
    let fixes = row.fixes(RoleShape::Group);
    if !fixes.is_empty() {
        lines.push(format!(
            "role {:?} has attributes a group role must not have (needs {})",
            row.name,
            fixes.join(", ")
        ));
    }
    for group in &row.member_of {
        lines.push(format!(
            "role {:?} is a member of {group:?}; group roles belong to no other role",
            row.name
        ));
    }
    lines
}

/// Resets a group role to a plain NOLOGIN role that belongs to no other role.
pub(crate) async fn reset_role(client: &mut Client, row: &RoleRow) -> Result<(), TenantError> {
    let fixes = row.fixes(RoleShape::Group);
    if fixes.is_empty() && row.member_of.is_empty() {
        return Ok(());
    }
    with_role_locks(client, &[&row.name], async |transaction| {
        if !fixes.is_empty() {
            tracing::info!(role = %row.name, fixes = %fixes.join(" "), "resetting group role attributes");
            transaction
                .batch_execute(&format!(
                    "ALTER ROLE {} {}",
                    quote_ident(&row.name),
                    fixes.join(" ")
                ))
                .await
                .context(format!("resetting the attributes of role {:?}", row.name))?;
        }
        for group in &row.member_of {
            tracing::info!(role = %row.name, %group, "removing group role from another role");
            transaction
                .batch_execute(&format!(
                    "REVOKE {} FROM {}",
                    quote_ident(group),
                    quote_ident(&row.name)
                ))
                .await
                .context(format!("removing role {:?} from {group:?}", row.name))?;
        }
        Ok(())
    })
    .await
}

/// A non-superuser operator must be a member of the owner role to create the database owned by
/// it, to `SET ROLE` to it and to drop the database. PostgreSQL 15 does not make the creator of
/// a role a member; 16+ makes it one with ADMIN only. Either way an explicit grant settles it.
pub(crate) async fn ensure_operator_membership(
    server: &Server,
    client: &mut Client,
    owner_role: &str,
) -> Result<(), TenantError> {
    if server.operator_is_superuser(client).await? {
        return Ok(());
    }
    with_role_locks(client, &[owner_role], async |transaction| {
        let is_member: bool = transaction
            .query_typed_one(
                "SELECT pg_catalog.pg_has_role(current_user, $1::text::name, 'USAGE')",
                &[(&owner_role, Type::TEXT)],
            )
            .await
            .context(format!(
                "checking the operator's membership in {owner_role:?}"
            ))?
            .get(0);
        if !is_member {
            tracing::info!(role = owner_role, "granting the owner role to the operator");
            transaction
                .batch_execute(&format!(
                    "GRANT {} TO CURRENT_USER",
                    quote_ident(owner_role)
                ))
                .await
                .context(format!("granting role {owner_role:?} to the operator"))?;
        }
        Ok(())
    })
    .await
}

/// Drops those of the given roles that still exist and are ours for `database`; others are left
/// alone. Members lose their membership with the role. Returns the names dropped.
pub(crate) async fn drop_our_roles(
    client: &mut Client,
    database: &str,
    roles: &[(RoleKind, &str)],
) -> Result<Vec<String>, TenantError> {
    let mut dropped = Vec::new();
    for &(kind, name) in roles {
        let gone = with_role_locks(client, &[name], async |transaction| {
            let existing = fetch_roles(transaction.client(), &[name]).await?;
            let ours = existing
                .first()
                .is_some_and(|row| role_comment_matches(row.comment.as_deref(), database, kind));
            if !ours {
                if !existing.is_empty() {
                    tracing::warn!(
                        role = name,
                        "leaving role alone: it is not a usualstore role of this tenant"
                    );
                }
                return Ok(false);
            }
            tracing::info!(role = name, "dropping group role");
            transaction
                .batch_execute(&format!("DROP ROLE {}", quote_ident(name)))
                .await
                .context(format!("dropping role {name:?}"))?;
            Ok(true)
        })
        .await?;
        if gone {
            dropped.push(name.to_owned());
        }
    }
    Ok(dropped)
}
