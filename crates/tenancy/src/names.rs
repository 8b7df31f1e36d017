//! Validation of the names customers choose, and the role names derived from a database name.

use std::fmt;

/// PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1); a truncated role name would
/// silently alias another tenant's role, so every derived name must fit.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// The longest suffix we append to a database name (`_developer`).
const LONGEST_ROLE_SUFFIX: &str = "_developer";

/// Longest database name whose derived role names all fit in 63 bytes.
pub const MAX_DATABASE_NAME_LEN: usize = MAX_IDENTIFIER_BYTES - LONGEST_ROLE_SUFFIX.len();

/// Longest tenant display name we store in the database comment.
pub const MAX_TENANT_NAME_CHARS: usize = 200;

const RESERVED_DATABASES: [&str; 3] = ["postgres", "template0", "template1"];

/// Why a name was refused. `Display` says what is allowed and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name must not be empty; use lowercase letters, digits and underscores")]
    Empty,
    #[error("name must start with a lowercase letter or underscore, got {name:?}")]
    BadFirstCharacter { name: String },
    #[error(
        "name may contain only lowercase letters (a-z), digits and underscores, got {name:?} \
         (offending character {character:?})"
    )]
    BadCharacter { name: String, character: char },
    #[error(
        "name must be at most {max} bytes long so that the derived role names fit PostgreSQL's \
         63-byte limit, got {len} bytes"
    )]
    TooLong { len: usize, max: usize },
    #[error("database name {name:?} is reserved by PostgreSQL; choose another name")]
    Reserved { name: String },
    #[error("database names starting with \"pg_\" are reserved by PostgreSQL, got {name:?}")]
    ReservedPrefix { name: String },
    #[error(
        "tenant name must be 1 to {max} characters without control characters (after trimming \
         spaces), got {name:?}"
    )]
    BadTenantName { name: String, max: usize },
}

/// Accepts `[a-z_][a-z0-9_]*`, at most [`MAX_DATABASE_NAME_LEN`] bytes.
///
/// The restriction to lowercase ASCII means the name never needs case-folding or quoting
/// surprises; we still quote it everywhere.
pub fn validate_identifier(name: &str) -> Result<(), NameError> {
    let Some(first) = name.chars().next() else {
        return Err(NameError::Empty);
    };
    if !(first.is_ascii_lowercase() || first == '_') {
        return Err(NameError::BadFirstCharacter {
            name: name.to_owned(),
        });
    }
    if let Some(character) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(NameError::BadCharacter {
            name: name.to_owned(),
            character,
        });
    }
    if name.len() > MAX_DATABASE_NAME_LEN {
        return Err(NameError::TooLong {
            len: name.len(),
            max: MAX_DATABASE_NAME_LEN,
        });
    }
    Ok(())
}

/// [`validate_identifier`] plus PostgreSQL's own databases and the `pg_` prefix.
pub fn validate_database_name(name: &str) -> Result<(), NameError> {
    validate_identifier(name)?;
    if RESERVED_DATABASES.contains(&name) {
        return Err(NameError::Reserved {
            name: name.to_owned(),
        });
    }
    if name.starts_with("pg_") {
        return Err(NameError::ReservedPrefix {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// The tenant's display name: free text, but bounded and printable.
pub fn validate_tenant_name(name: &str) -> Result<(), NameError> {
    let trimmed = name.trim();
    let chars = trimmed.chars().count();
    if chars == 0 || chars > MAX_TENANT_NAME_CHARS || trimmed.chars().any(char::is_control) {
        return Err(NameError::BadTenantName {
            name: name.to_owned(),
            max: MAX_TENANT_NAME_CHARS,
        });
    }
    Ok(())
}

/// The four group roles of a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoleKind {
    Owner,
    Admin,
    Developer,
    Customer,
}

impl RoleKind {
    pub const ALL: [RoleKind; 4] = [
        RoleKind::Owner,
        RoleKind::Admin,
        RoleKind::Developer,
        RoleKind::Customer,
    ];

    /// The groups login users join; the owner is not one of them.
    pub const MEMBER_GROUPS: [RoleKind; 3] =
        [RoleKind::Admin, RoleKind::Developer, RoleKind::Customer];

    pub fn as_str(self) -> &'static str {
        match self {
            RoleKind::Owner => "owner",
            RoleKind::Admin => "admin",
            RoleKind::Developer => "developer",
            RoleKind::Customer => "customer",
        }
    }

    pub fn parse(value: &str) -> Option<RoleKind> {
        RoleKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == value)
    }
}

impl fmt::Display for RoleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Role names derived from a database name: `<db>_owner`, `<db>_admin`, `<db>_developer`,
/// `<db>_customer`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoleNames {
    pub owner: String,
    pub admin: String,
    pub developer: String,
    pub customer: String,
}

impl RoleNames {
    /// Derives the names; validate the database name first so they fit in 63 bytes.
    pub fn for_database(database: &str) -> RoleNames {
        RoleNames {
            owner: format!("{database}_owner"),
            admin: format!("{database}_admin"),
            developer: format!("{database}_developer"),
            customer: format!("{database}_customer"),
        }
    }

    pub fn get(&self, kind: RoleKind) -> &str {
        match kind {
            RoleKind::Owner => &self.owner,
            RoleKind::Admin => &self.admin,
            RoleKind::Developer => &self.developer,
            RoleKind::Customer => &self.customer,
        }
    }

    /// `(kind, name)` for all four roles, owner first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (RoleKind, &str)> {
        RoleKind::ALL
            .into_iter()
            .map(move |kind| (kind, self.get(kind)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for name in [
            "shop",
            "_x",
            "building_shop_2",
            &"a".repeat(MAX_DATABASE_NAME_LEN),
        ] {
            assert_eq!(validate_database_name(name), Ok(()), "{name}");
        }
        assert_eq!(MAX_DATABASE_NAME_LEN, 53);
    }

    #[test]
    fn rejects_hostile_and_malformed_names() {
        let long = "a".repeat(MAX_DATABASE_NAME_LEN + 1);
        let sixty_four = "b".repeat(64);
        let cases: [(&str, NameError); 11] = [
            ("", NameError::Empty),
            (
                "1shop",
                NameError::BadFirstCharacter {
                    name: "1shop".into(),
                },
            ),
            (
                "Robert'); DROP DATABASE postgres;--",
                NameError::BadFirstCharacter {
                    name: "Robert'); DROP DATABASE postgres;--".into(),
                },
            ),
            (
                "\"quoted\"",
                NameError::BadFirstCharacter {
                    name: "\"quoted\"".into(),
                },
            ),
            (
                "a b",
                NameError::BadCharacter {
                    name: "a b".into(),
                    character: ' ',
                },
            ),
            (
                "shopA",
                NameError::BadCharacter {
                    name: "shopA".into(),
                    character: 'A',
                },
            ),
            (
                "shop-x",
                NameError::BadCharacter {
                    name: "shop-x".into(),
                    character: '-',
                },
            ),
            (&long, NameError::TooLong { len: 54, max: 53 }),
            (&sixty_four, NameError::TooLong { len: 64, max: 53 }),
            (
                "postgres",
                NameError::Reserved {
                    name: "postgres".into(),
                },
            ),
            (
                "pg_shop",
                NameError::ReservedPrefix {
                    name: "pg_shop".into(),
                },
            ),
        ];
        for (name, expected) in cases {
            assert_eq!(validate_database_name(name), Err(expected), "{name:?}");
        }
        for name in ["template0", "template1"] {
            assert!(matches!(
                validate_database_name(name),
                Err(NameError::Reserved { .. })
            ));
        }
        assert_eq!(
            NameError::BadFirstCharacter {
                name: "1shop".into()
            }
            .to_string(),
            "name must start with a lowercase letter or underscore, got \"1shop\""
        );
    }

    #[test]
    fn non_ascii_letters_are_refused() {
        assert!(matches!(
            validate_identifier("caf\u{e9}"),
            Err(NameError::BadCharacter {
                character: '\u{e9}',
                ..
            })
        ));
    }

    #[test]
    fn tenant_names() {
        assert_eq!(validate_tenant_name("Building Shop Inc."), Ok(()));
        assert_eq!(validate_tenant_name("O'Brien \"&\" Söhne"), Ok(()));
        assert!(validate_tenant_name("  ").is_err());
        assert!(validate_tenant_name("a\nb").is_err());
        assert!(validate_tenant_name(&"x".repeat(MAX_TENANT_NAME_CHARS + 1)).is_err());
    }

    #[test]
    fn role_names_fit() {
        let db = "a".repeat(MAX_DATABASE_NAME_LEN);
        let roles = RoleNames::for_database(&db);
        assert!(roles.iter().all(|(_, name)| name.len() <= 63));
        assert_eq!(RoleNames::for_database("shop").developer, "shop_developer");
    }
}
