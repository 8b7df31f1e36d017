//! Bounded waits: every session the provider opens carries `lock_timeout`, and a wait that runs
//! out is reported with the sessions that held what we waited for, so the operator can see who
//! (a tenant's login holding a transaction open, another Terraform run) and decide what to do.

use std::fmt;
use std::time::Duration;

use tokio_postgres::Client;
use tokio_postgres::types::Type;

use crate::error::TenantError;

/// What an operation waited for when its `lock_timeout` ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockTarget {
    /// One of usualstore's advisory locks, in the database the session was connected to.
    Advisory(AdvisoryKey),
    /// Tables and the migration lock of the tenant database the session was connected to.
    TenantObjects,
    /// Something else; every session of that database with a transaction open is a suspect.
    OpenTransactions,
}

/// An advisory lock key as `pg_locks` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdvisoryKey {
    /// `pg_advisory_lock(bigint)`.
    Single(i64),
    /// `pg_advisory_lock(int4, hashtext(name))`, for any of `names`.
    Named { class: i32, names: Vec<String> },
}

/// A session that held a lock we waited for, as `pg_stat_activity` showed it. Columns a
/// non-superuser operator may not see come back empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    pub pid: i32,
    pub user: Option<String>,
    pub database: Option<String>,
    pub application: Option<String>,
    pub state: Option<String>,
    /// How long its transaction (or, without one, its session) had been going.
    pub seconds: Option<i64>,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unknown = "?";
        write!(
            f,
            "pid {} (user {:?}, database {:?}, application {:?}, {}",
            self.pid,
            self.user.as_deref().unwrap_or(unknown),
            self.database.as_deref().unwrap_or(unknown),
            self.application.as_deref().unwrap_or(""),
            self.state.as_deref().unwrap_or("state not visible"),
        )?;
        if let Some(seconds) = self.seconds {
            write!(f, " for {seconds} s")?;
        }
        f.write_str(")")
    }
}

/// The text of a [`TenantError::LockTimeout`].
pub(crate) fn describe_timeout(
    waited_for: &str,
    database: Option<&str>,
    timeout: Option<Duration>,
    holders: &[LockHolder],
) -> String {
    let mut text = match timeout {
        Some(timeout) => format!("gave up {waited_for} after {} s", timeout.as_secs_f64()),
        None => format!("gave up {waited_for}"),
    };
    if let Some(database) = database {
        text.push_str(&format!(" (in database {database:?})"));
    }
    text.push_str(": another session holds the lock. ");
    if holders.is_empty() {
        text.push_str(
            "The session that held it has ended or is not visible to the provider's user; apply \
             again.",
        );
    } else {
        let list: Vec<String> = holders.iter().map(ToString::to_string).collect();
        text.push_str(&format!("Held by {}. ", list.join("; ")));
        let pids: Vec<String> = holders.iter().map(|h| h.pid.to_string()).collect();
        text.push_str(&format!(
            "Wait for it to finish, or end it (SELECT pg_terminate_backend(pid) for pid {}), then \
             apply again.",
            pids.join(", ")
        ));
    }
    text.push_str(" The provider's lock_timeout setting says how long to wait.");
    text
}

/// Fills in who held the lock a [`TenantError::LockTimeout`] waited for, asking through
/// `client`: a session of the database where the wait happened, out of any failed transaction.
/// Other errors pass through unchanged.
pub(crate) async fn explain(
    error: TenantError,
    client: &Client,
    timeout: Option<Duration>,
) -> TenantError {
    let TenantError::LockTimeout {
        waited_for,
        target,
        holders: None,
        ..
    } = error
    else {
        return error;
    };
    let (database, holders) = match find_holders(client, &target).await {
        Ok(found) => found,
        Err(lookup) => {
            tracing::debug!(error = %lookup, "could not look up who holds the lock");
            (None, Vec::new())
        }
    };
    TenantError::LockTimeout {
        waited_for,
        target,
        database,
        timeout,
        holders: Some(holders),
    }
}

async fn find_holders(
    client: &Client,
    target: &LockTarget,
) -> Result<(Option<String>, Vec<LockHolder>), tokio_postgres::Error> {
    const HOLDERS: &str = "SELECT a.pid, a.usename::text, a.datname::text, a.application_name, \
            a.state, pg_catalog.floor(EXTRACT(epoch FROM pg_catalog.now() \
                - COALESCE(a.xact_start, a.backend_start)))::bigint, current_database()::text \
         FROM pg_catalog.pg_stat_activity a \
         WHERE a.pid <> pg_catalog.pg_backend_pid() AND a.pid IN ( \
             SELECT l.pid FROM pg_catalog.pg_locks l \
             WHERE l.granted AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d \
                                               WHERE d.datname = current_database()) \
               AND CONDITION) \
         ORDER BY a.pid";
    let (condition, key): (&str, (i64, Option<String>)) = match target {
        LockTarget::Advisory(AdvisoryKey::Single(key)) => (
            "l.locktype = 'advisory' AND l.objsubid = 1 \
             AND l.classid = ($1 >> 32)::int4::oid AND l.objid = ($1 & 4294967295)::oid",
            (*key, None),
        ),
        LockTarget::Advisory(AdvisoryKey::Named { class, names }) => (
            "l.locktype = 'advisory' AND l.objsubid = 2 AND l.classid = $1::int4::oid \
             AND l.objid IN (SELECT pg_catalog.hashtext(n)::oid \
                             FROM pg_catalog.unnest(pg_catalog.string_to_array($2, ',')) n)",
            (i64::from(*class), Some(names.join(","))),
        ),
        LockTarget::TenantObjects => (
            "((l.locktype = 'relation' AND l.relation IN ( \
                 SELECT c.oid FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = 'public')) \
             OR (l.locktype = 'advisory' AND l.objsubid = 1 \
                 AND l.classid = ($1 >> 32)::int4::oid AND l.objid = ($1 & 4294967295)::oid))",
            (usualstore_schema::MIGRATION_LOCK_KEY, None),
        ),
        LockTarget::OpenTransactions => (
            "l.pid IN ( \
                 SELECT s.pid FROM pg_catalog.pg_stat_activity s WHERE s.xact_start IS NOT NULL)",
            (0, None),
        ),
    };
    let sql = HOLDERS.replace("CONDITION", condition);
    let rows = client
        .query_typed(&sql, &[(&key.0, Type::INT8), (&key.1, Type::TEXT)])
        .await?;
    let database = match rows.first() {
        Some(row) => row.get(6),
        None => None,
    };
    let holders = rows
        .iter()
        .map(|row| LockHolder {
            pid: row.get(0),
            user: row.get(1),
            database: row.get(2),
            application: row
                .get::<_, Option<String>>(3)
                .filter(|name| !name.is_empty()),
            state: row.get(4),
            seconds: row.get(5),
        })
        .collect();
    Ok((database, holders))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_messages_name_the_holder_and_the_way_out() {
        let holder = LockHolder {
            pid: 4242,
            user: Some("shop_admin".into()),
            database: Some("shop".into()),
            application: Some("psql".into()),
            state: Some("idle in transaction".into()),
            seconds: Some(75),
        };
        let text = describe_timeout(
            "waiting for the lock on tenant \"shop\"",
            Some("postgres"),
            Some(Duration::from_secs(30)),
            &[holder],
        );
        for expected in [
            "after 30 s",
            "pid 4242",
            "\"shop_admin\"",
            "idle in transaction for 75 s",
            "pg_terminate_backend",
            "lock_timeout",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from {text}");
        }
        let unseen = describe_timeout("waiting", None, None, &[]);
        assert!(unseen.contains("has ended"), "{unseen}");
    }
}
