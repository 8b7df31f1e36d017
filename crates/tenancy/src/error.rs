//! The one error type of this crate. Messages say what to do; none contains a password.

use std::error::Error as _;
use std::fmt::Write as _;
use std::time::Duration;

use tokio_postgres::error::SqlState;

use crate::names::NameError;
use crate::waits::{LockHolder, LockTarget, describe_timeout};

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error(transparent)]
    InvalidName(#[from] NameError),

    #[error(
        "database {database:?} exists but is not managed by usualstore (its comment carries no \
         usualstore marker); choose another database name, or drop or rename that database first"
    )]
    NotManaged { database: String },

    #[error(
        "tenant database {database:?} already exists and is ready; import it instead \
         (terraform import) of creating it again"
    )]
    AlreadyExists { database: String },

    #[error("tenant database {database:?} does not exist; create the tenant first")]
    NotFound { database: String },

    #[error(
        "role {role:?} already exists but was not created by usualstore for this tenant; drop or \
         rename that role, or choose another database name"
    )]
    RoleConflict { role: String },

    #[error("could not connect to PostgreSQL at {target} as user {user:?}: {reason}")]
    Connect {
        /// `host:port/database`, never the password.
        target: String,
        user: String,
        reason: String,
        #[source]
        source: tokio_postgres::Error,
    },

    #[error("{context}: {}", describe(.source))]
    Database {
        context: String,
        /// SQLSTATE of the server's error, when the server sent one.
        sqlstate: Option<String>,
        #[source]
        source: tokio_postgres::Error,
    },

    #[error(
        "role {username:?} already exists and is not a usualstore user of tenant {database:?}; \
         usualstore never adopts a role it did not create: choose another username, or drop or \
         rename that role"
    )]
    UserConflict { username: String, database: String },

    #[error(
        "the {role} group role of tenant {database:?} is missing or not ours; apply the \
         usualstore_tenant first so it repairs its roles"
    )]
    TenantIncomplete { database: String, role: String },

    #[error("{setting}: {reason}")]
    InvalidUserSetting {
        setting: UserSetting,
        reason: String,
    },

    #[error("{what} failed: {fix}")]
    NotPermitted { what: String, fix: String },

    #[error(
        "tenant {database:?} has a store schema older than version {needed}, which this operation \
         needs; apply its usualstore_tenant first so that its migrations run"
    )]
    SchemaTooOld { database: String, needed: i32 },

    #[error("store schema migrations: {}", describe_schema(.0))]
    Schema(usualstore_schema::SchemaError),

    /// A lock wait ran into `lock_timeout` (SQLSTATE 55P03). `holders` is filled in by the
    /// operation that owns the session, which can still ask who held the lock.
    #[error("{}", describe_timeout(.waited_for, .database.as_deref(), *.timeout, .holders.as_deref().unwrap_or_default()))]
    LockTimeout {
        /// What we were doing, e.g. "waiting for the lock on tenant \"shop\"".
        waited_for: String,
        target: LockTarget,
        database: Option<String>,
        timeout: Option<Duration>,
        holders: Option<Vec<LockHolder>>,
    },
}

/// A login user's setting that a value was refused for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSetting {
    Username,
    Password,
    Email,
    ConnectionLimit,
}

impl std::fmt::Display for UserSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UserSetting::Username => "username",
            UserSetting::Password => "password",
            UserSetting::Email => "email",
            UserSetting::ConnectionLimit => "connection limit",
        })
    }
}

impl TenantError {
    /// Whether the tenant's database name is what is wrong: a name that is taken, not ours, or
    /// malformed.
    pub fn is_about_the_name(&self) -> bool {
        matches!(
            self,
            TenantError::NotManaged { .. }
                | TenantError::AlreadyExists { .. }
                | TenantError::InvalidName(_)
                | TenantError::RoleConflict { .. }
        )
    }

    /// The SQLSTATE, for callers that branch on specific server errors.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            TenantError::Database { sqlstate, .. } => sqlstate.as_deref(),
            TenantError::Connect { source, .. } => source.code().map(|code| code.code()),
            TenantError::LockTimeout { .. } => Some(SqlState::LOCK_NOT_AVAILABLE.code()),
            _ => None,
        }
    }

    /// Says which lock a timed-out wait was for, where the call site knows better than "some
    /// open transaction".
    pub(crate) fn waiting_for(self, lock: LockTarget) -> TenantError {
        match self {
            TenantError::LockTimeout {
                waited_for,
                database,
                timeout,
                holders,
                ..
            } => TenantError::LockTimeout {
                waited_for,
                target: lock,
                database,
                timeout,
                holders,
            },
            other => other,
        }
    }
}

/// Wraps a driver error with what we were doing, keeping the SQLSTATE. A lock wait that ran out
/// becomes [`TenantError::LockTimeout`].
pub(crate) fn db_error(context: impl Into<String>, source: tokio_postgres::Error) -> TenantError {
    if source.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
        return TenantError::LockTimeout {
            waited_for: context.into(),
            target: LockTarget::OpenTransactions,
            database: None,
            timeout: None,
            holders: None,
        };
    }
    TenantError::Database {
        context: context.into(),
        sqlstate: source.code().map(|code| code.code().to_owned()),
        source,
    }
}

impl From<usualstore_schema::SchemaError> for TenantError {
    fn from(error: usualstore_schema::SchemaError) -> TenantError {
        if error.sqlstate() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
            return TenantError::LockTimeout {
                waited_for: "applying store schema migrations".to_owned(),
                target: LockTarget::TenantObjects,
                database: None,
                timeout: None,
                holders: None,
            };
        }
        TenantError::Schema(error)
    }
}

/// Extension to attach context to driver results: `.context("creating role x")?`.
pub(crate) trait DbResultExt<T> {
    fn context(self, context: impl Into<String>) -> Result<T, TenantError>;
}

impl<T> DbResultExt<T> for Result<T, tokio_postgres::Error> {
    fn context(self, context: impl Into<String>) -> Result<T, TenantError> {
        self.map_err(|source| db_error(context, source))
    }
}

/// A schema error with the server's words instead of tokio-postgres' bare "db error".
fn describe_schema(error: &usualstore_schema::SchemaError) -> String {
    use usualstore_schema::SchemaError;
    match error {
        SchemaError::MigrationFailed {
            version,
            name,
            source,
        } => format!(
            "migration {version} ({name}) failed and was rolled back: {}",
            describe(source)
        ),
        SchemaError::Database(source) => {
            format!("schema migrations bookkeeping failed: {}", describe(source))
        }
        other => other.to_string(),
    }
}

/// tokio-postgres' own `Display` says only "db error"; spell out the server's message, detail,
/// hint and SQLSTATE, or the underlying I/O cause.
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            let _ = write!(text, "; detail: {detail}");
        }
        if let Some(hint) = db.hint() {
            let _ = write!(text, "; hint: {hint}");
        }
        return text;
    }
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let _ = write!(text, ": {inner}");
        cause = inner.source();
    }
    text
}
