//! Who may use each table of the store schema. The provider's privilege model turns these classes
//! into grants for a tenant's groups; keeping the classification beside the migrations means a
//! migration that adds a table decides its class in the same change.

/// How a table of schema `public` is shared among a tenant's groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableAccess {
    /// The store's data: admin reads and writes, developer reads, inserts and updates, customer
    /// reads. Every table not named below, including ones later migrations add.
    Store,
    /// The application's user directory (names, e-mail, role): admin manages it, the other groups
    /// read it, so a developer cannot promote anybody.
    Directory,
    /// Login secrets (password hashes, bearer tokens, sessions): the admin group and the owner only.
    Secrets,
    /// The migration history: every group reads it, nobody rewrites it.
    History,
    /// What the provider records about login users (their e-mail): the admin group reads it, only
    /// the owner writes it.
    Operator,
}

/// Tables whose rows let somebody act as a user of the store.
pub const SECRET_TABLES: [&str; 3] = ["user_credentials", "tokens", "sessions"];

/// The provider's record of login users' e-mail addresses, inside the tenant's own database.
pub const LOGIN_USERS_TABLE: &str = "usualstore_login_users";
/// The schema version that created [`LOGIN_USERS_TABLE`].
pub const LOGIN_USERS_SINCE_VERSION: i32 = 3;

/// The class of `table` (a name in schema `public`).
pub fn table_access(table: &str) -> TableAccess {
    if SECRET_TABLES.contains(&table) {
        TableAccess::Secrets
    } else if table == "users" {
        TableAccess::Directory
    } else if Some(table) == crate::MIGRATIONS_TABLE.strip_prefix("public.") {
        TableAccess::History
    } else if table == LOGIN_USERS_TABLE {
        TableAccess::Operator
    } else {
        TableAccess::Store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(table_access("widgets"), TableAccess::Store);
        assert_eq!(table_access("gift_cards"), TableAccess::Store);
        assert_eq!(table_access("users"), TableAccess::Directory);
        for table in ["user_credentials", "tokens", "sessions"] {
            assert_eq!(table_access(table), TableAccess::Secrets, "{table}");
        }
        assert_eq!(
            table_access("usualstore_schema_migrations"),
            TableAccess::History
        );
        assert_eq!(
            table_access("usualstore_login_users"),
            TableAccess::Operator
        );
    }
}
