//! The JSON documents kept in `COMMENT ON DATABASE` and `COMMENT ON ROLE`.
//!
//! They are the only marker telling our objects from anybody else's: we never adopt, change or
//! drop a database or role without one.

use serde::{Deserialize, Serialize};

use crate::names::RoleKind;
use crate::service_plan::ServicePlan;

/// Version of the marker format; bump only with a migration path for older comments.
const MARKER_VERSION: u32 = 1;

/// Where a tenant is in its life: `Provisioning` while a create is under way (or crashed
/// half-way, which a later create resumes), `Ready` once converged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TenantState {
    Provisioning,
    Ready,
}

impl TenantState {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantState::Provisioning => "provisioning",
            TenantState::Ready => "ready",
        }
    }

    fn parse(value: &str) -> Option<TenantState> {
        [TenantState::Provisioning, TenantState::Ready]
            .into_iter()
            .find(|state| state.as_str() == value)
    }
}

/// What the database comment says. Fields other than the marker are optional so that a comment
/// edited by hand still reads as ours and is repaired by the next update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DatabaseComment {
    pub tenant_name: Option<String>,
    pub plan: Option<ServicePlan>,
    pub status: Option<TenantState>,
}

#[derive(Serialize, Deserialize)]
struct DatabaseCommentJson {
    usualstore: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plan: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
}

impl DatabaseComment {
    /// `None` when the comment is absent or carries no usualstore marker.
    pub fn parse(comment: Option<&str>) -> Option<DatabaseComment> {
        let parsed: DatabaseCommentJson = serde_json::from_str(comment?).ok()?;
        Some(DatabaseComment {
            tenant_name: parsed.tenant_name,
            plan: parsed.plan.and_then(|plan| plan.parse().ok()),
            status: parsed.status.as_deref().and_then(TenantState::parse),
        })
    }

    pub fn render(tenant_name: &str, plan: ServicePlan, status: TenantState) -> String {
        let json = DatabaseCommentJson {
            usualstore: MARKER_VERSION,
            tenant_name: Some(tenant_name.to_owned()),
            plan: Some(plan.as_str().to_owned()),
            status: Some(status.as_str().to_owned()),
        };
        // Serializing a struct of strings and an integer cannot fail.
        serde_json::to_string(&json).unwrap_or_default()
    }
}

#[derive(Serialize, Deserialize)]
struct RoleCommentJson {
    usualstore: u32,
    database: String,
    kind: String,
}

/// The role comment: which tenant database the role belongs to and which group it is.
pub(crate) fn render_role_comment(database: &str, kind: RoleKind) -> String {
    let json = RoleCommentJson {
        usualstore: MARKER_VERSION,
        database: database.to_owned(),
        kind: kind.as_str().to_owned(),
    };
    serde_json::to_string(&json).unwrap_or_default()
}

/// True when the comment marks the role as ours, for exactly this database and kind.
pub(crate) fn role_comment_matches(comment: Option<&str>, database: &str, kind: RoleKind) -> bool {
    let Some(comment) = comment else {
        return false;
    };
    match serde_json::from_str::<RoleCommentJson>(comment) {
        Ok(parsed) => parsed.database == database && RoleKind::parse(&parsed.kind) == Some(kind),
        Err(_) => false,
    }
}

/// What a login user's role comment says: the tenant it belongs to, whether the tenant keeps an
/// e-mail address for it, and whether its create finished (a `Provisioning` user is one a crashed
/// create left; the next create resumes it).
///
/// Role comments are readable by every login on the server, so the address itself lives in the
/// tenant's database (`usualstore_login_users`). Comments written by earlier versions carry it
/// here as `email`; it is read as [`UserComment::legacy_email`] and moved by the next apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserComment {
    pub database: String,
    pub has_email: bool,
    pub legacy_email: Option<String>,
    pub status: Option<TenantState>,
}

/// `kind` is always "user", which no group [`RoleKind`] parses as, so a user is never taken for a group.
#[derive(Serialize, Deserialize)]
struct UserCommentJson {
    usualstore: u32,
    database: String,
    kind: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    has_email: bool,
    /// Only ever read: where versions before 0.2 kept the address.
    #[serde(default, skip_serializing)]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
}

const USER_KIND: &str = "user";

impl UserComment {
    /// `None` when the comment does not mark a usualstore login user.
    pub fn parse(comment: Option<&str>) -> Option<UserComment> {
        let parsed: UserCommentJson = serde_json::from_str(comment?).ok()?;
        (parsed.kind == USER_KIND).then(|| UserComment {
            database: parsed.database,
            has_email: parsed.has_email,
            legacy_email: parsed.email,
            status: parsed.status.as_deref().and_then(TenantState::parse),
        })
    }

    pub fn render(database: &str, has_email: bool, status: TenantState) -> String {
        let json = UserCommentJson {
            usualstore: MARKER_VERSION,
            database: database.to_owned(),
            kind: USER_KIND.to_owned(),
            has_email,
            email: None,
            status: Some(status.as_str().to_owned()),
        };
        serde_json::to_string(&json).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_comment_round_trip() {
        let text = DatabaseComment::render(
            "Building \"Shop\" Inc.",
            ServicePlan::Professional,
            TenantState::Ready,
        );
        assert_eq!(
            text,
            r#"{"usualstore":1,"tenant_name":"Building \"Shop\" Inc.","plan":"professional","status":"ready"}"#
        );
        assert_eq!(
            DatabaseComment::parse(Some(&text)),
            Some(DatabaseComment {
                tenant_name: Some("Building \"Shop\" Inc.".into()),
                plan: Some(ServicePlan::Professional),
                status: Some(TenantState::Ready),
            })
        );
    }

    #[test]
    fn foreign_comments_are_not_ours() {
        for comment in [
            None,
            Some(""),
            Some("a shop"),
            Some("{}"),
            Some(r#"{"tenant_name":"x"}"#),
        ] {
            assert_eq!(DatabaseComment::parse(comment), None, "{comment:?}");
        }
        let edited = DatabaseComment::parse(Some(r#"{"usualstore":1,"plan":"gold"}"#));
        assert_eq!(
            edited,
            Some(DatabaseComment {
                tenant_name: None,
                plan: None,
                status: None
            })
        );
    }

    #[test]
    fn user_comment_round_trip_and_is_never_a_group() {
        let text = UserComment::render("shop", true, TenantState::Ready);
        assert_eq!(
            text,
            r#"{"usualstore":1,"database":"shop","kind":"user","has_email":true,"status":"ready"}"#
        );
        let parsed = UserComment::parse(Some(&text));
        assert_eq!(
            parsed,
            Some(UserComment {
                database: "shop".into(),
                has_email: true,
                legacy_email: None,
                status: Some(TenantState::Ready),
            })
        );
        for kind in RoleKind::ALL {
            assert!(!role_comment_matches(Some(&text), "shop", kind));
        }
        let group = render_role_comment("shop", RoleKind::Admin);
        assert_eq!(UserComment::parse(Some(&group)), None);
    }

    #[test]
    fn comments_never_carry_an_address_but_old_ones_are_still_read() {
        let text = UserComment::render("shop", false, TenantState::Ready);
        assert!(!text.contains("email"), "{text}");
        let old = r#"{"usualstore":1,"database":"shop","kind":"user","email":"a@example.com","status":"ready"}"#;
        let parsed = UserComment::parse(Some(old)).expect("ours");
        assert_eq!(parsed.legacy_email.as_deref(), Some("a@example.com"));
        assert!(!parsed.has_email);
    }

    #[test]
    fn role_comment_names_database_and_kind() {
        let comment = render_role_comment("shop", RoleKind::Admin);
        assert!(role_comment_matches(
            Some(&comment),
            "shop",
            RoleKind::Admin
        ));
        assert!(!role_comment_matches(
            Some(&comment),
            "shop2",
            RoleKind::Admin
        ));
        assert!(!role_comment_matches(
            Some(&comment),
            "shop",
            RoleKind::Owner
        ));
        assert!(!role_comment_matches(
            Some("hand made"),
            "shop",
            RoleKind::Admin
        ));
        assert!(!role_comment_matches(None, "shop", RoleKind::Admin));
    }
}
