//! What a configuration may ask of a login user: its role (group) and the rules its settings
//! follow, which the provider checks at plan time and scripts through `check`.

use std::fmt;
use std::str::FromStr;

use crate::error::{TenantError, UserSetting};
use crate::names::{RoleKind, validate_database_name, validate_identifier};

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

    pub(super) fn from_group(kind: RoleKind) -> Option<UserRole> {
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
