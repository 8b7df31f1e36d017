//! The privilege model of a tenant database, compared with what the catalog says.
//!
//! The same comparison drives Read (`privileges_in_sync`, `drift`) and Update (the repair
//! statements), so what Read reports is exactly what Update fixes.

use std::collections::{BTreeMap, BTreeSet};

use usualstore_schema::{TableAccess, table_access};

use crate::catalog::{AclEntry, OwnedAcl, Relation, RelationKind, TenantObjects};
use crate::names::RoleNames;
use crate::sql::quote_ident;

const SCHEMA: &str = "public";

/// Privileges per grantee (`None` = PUBLIC). A grantable privilege carries a suffix so that a
/// grant option differs from the plain privilege.
type Grants = BTreeMap<Option<String>, BTreeSet<String>>;

const GRANT_OPTION_SUFFIX: &str = " WITH GRANT OPTION";

/// Something privileges are granted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AclTarget {
    Database(String),
    Schema,
    Relation {
        name: String,
        kind: RelationKind,
    },
    Routine {
        schema: String,
        name: String,
        identity_arguments: String,
    },
    /// `ALTER DEFAULT PRIVILEGES FOR ROLE owner [IN SCHEMA schema] … ON <objtype>`.
    DefaultPrivileges {
        schema: Option<String>,
        objtype: char,
    },
}

impl AclTarget {
    fn describe(&self) -> String {
        match self {
            AclTarget::Database(name) => format!("database {name:?}"),
            AclTarget::Schema => format!("schema {SCHEMA}"),
            AclTarget::Relation { name, kind } => format!("{} {SCHEMA}.{name}", kind.description()),
            AclTarget::Routine {
                schema,
                name,
                identity_arguments,
            } => format!("function {schema}.{name}({identity_arguments})"),
            AclTarget::DefaultPrivileges { schema, objtype } => format!(
                "default privileges on {} {}",
                default_objtype_keyword(*objtype).unwrap_or("objects of unknown type"),
                match schema {
                    Some(schema) => format!("in schema {schema}"),
                    None => "in all schemas".to_owned(),
                }
            ),
        }
    }

    /// The `ON …` clause of GRANT/REVOKE, or `None` where we cannot name the object type.
    fn on_clause(&self) -> Option<String> {
        Some(match self {
            AclTarget::Database(name) => format!("DATABASE {}", quote_ident(name)),
            AclTarget::Schema => format!("SCHEMA {}", quote_ident(SCHEMA)),
            AclTarget::Relation { name, kind } => {
                let keyword = if *kind == RelationKind::Sequence {
                    "SEQUENCE"
                } else {
                    "TABLE"
                };
                format!("{keyword} {}.{}", quote_ident(SCHEMA), quote_ident(name))
            }
            AclTarget::Routine {
                schema,
                name,
                identity_arguments,
            } => format!(
                "ROUTINE {}.{}({identity_arguments})",
                quote_ident(schema),
                quote_ident(name)
            ),
            AclTarget::DefaultPrivileges { objtype, .. } => {
                default_objtype_keyword(*objtype)?.to_owned()
            }
        })
    }

    /// `ALTER DEFAULT PRIVILEGES …` prefix for default-privilege targets, empty otherwise.
    fn statement_prefix(&self, owner: &str) -> String {
        match self {
            AclTarget::DefaultPrivileges { schema, .. } => {
                let mut prefix =
                    format!("ALTER DEFAULT PRIVILEGES FOR ROLE {} ", quote_ident(owner));
                if let Some(schema) = schema {
                    prefix.push_str(&format!("IN SCHEMA {} ", quote_ident(schema)));
                }
                prefix
            }
            _ => String::new(),
        }
    }
}

fn default_objtype_keyword(objtype: char) -> Option<&'static str> {
    match objtype {
        'r' => Some("TABLES"),
        'S' => Some("SEQUENCES"),
        'f' => Some("FUNCTIONS"),
        'T' => Some("TYPES"),
        'n' => Some("SCHEMAS"),
        'L' => Some("LARGE OBJECTS"),
        _ => None,
    }
}

fn grantee_sql(grantee: &Option<String>) -> String {
    match grantee {
        Some(name) => quote_ident(name),
        None => "PUBLIC".to_owned(),
    }
}

fn grantee_label(grantee: &Option<String>) -> String {
    match grantee {
        Some(name) => format!("role {name:?}"),
        None => "PUBLIC".to_owned(),
    }
}

/// An object whose ACL differs from the model.
#[derive(Debug, Clone)]
pub(crate) struct AclDrift {
    pub target: AclTarget,
    actual: Grants,
    expected: Grants,
}

impl AclDrift {
    pub fn describe(&self) -> Vec<String> {
        let grantees: BTreeSet<&Option<String>> =
            self.actual.keys().chain(self.expected.keys()).collect();
        let empty = BTreeSet::new();
        grantees
            .into_iter()
            .filter_map(|grantee| {
                let actual = self.actual.get(grantee).unwrap_or(&empty);
                let expected = self.expected.get(grantee).unwrap_or(&empty);
                (actual != expected).then(|| {
                    format!(
                        "{}: {} has [{}], expected [{}]",
                        self.target.describe(),
                        grantee_label(grantee),
                        join(actual),
                        join(expected)
                    )
                })
            })
            .collect()
    }

    /// Statements that make the ACL match, to run as the owner role. For each grantee whose
    /// privileges differ: revoke everything (CASCADE also removes grants it passed on), then grant
    /// exactly the model's privileges.
    pub fn repair_statements(&self, owner: &str) -> Vec<String> {
        let Some(on) = self.target.on_clause() else {
            tracing::warn!(target = %self.target.describe(), "cannot repair privileges on an unknown object type");
            return Vec::new();
        };
        let prefix = self.target.statement_prefix(owner);
        let grantees: BTreeSet<&Option<String>> =
            self.actual.keys().chain(self.expected.keys()).collect();
        let empty = BTreeSet::new();
        let mut statements = Vec::new();
        for grantee in grantees {
            let actual = self.actual.get(grantee).unwrap_or(&empty);
            let expected = self.expected.get(grantee).unwrap_or(&empty);
            if actual == expected {
                continue;
            }
            if !actual.is_empty() {
                statements.push(format!(
                    "{prefix}REVOKE ALL ON {on} FROM {} CASCADE",
                    grantee_sql(grantee)
                ));
            }
            if !expected.is_empty() {
                let privileges: Vec<&str> = expected.iter().map(String::as_str).collect();
                statements.push(format!(
                    "{prefix}GRANT {} ON {on} TO {}",
                    privileges.join(", "),
                    grantee_sql(grantee)
                ));
            }
        }
        statements
    }
}

fn join(privileges: &BTreeSet<String>) -> String {
    privileges
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// An object not owned by the tenant's owner role.
#[derive(Debug, Clone)]
pub(crate) struct OwnershipDrift {
    description: String,
    /// `ALTER … OWNER TO owner`, run as the operator; `None` when the object follows another
    /// (identity and serial sequences follow their table).
    pub statement: Option<String>,
}

/// How the tenant database differs from the model.
#[derive(Debug, Clone, Default)]
pub(crate) struct Assessment {
    pub schema_missing: bool,
    pub ownership: Vec<OwnershipDrift>,
    /// Privileges on the tenant's own objects, repaired as its owner role.
    pub acl: Vec<AclDrift>,
    /// Privileges on built-in functions (large-object creators), which only a superuser may
    /// change.
    pub builtin_acl: Vec<AclDrift>,
}

impl Assessment {
    /// Every difference the operator can repair: with `superuser` false, built-in functions'
    /// privileges are left out (see [`Assessment::unrepairable`]).
    pub fn describe(&self, superuser: bool) -> Vec<String> {
        let mut lines = Vec::new();
        if self.schema_missing {
            lines.push(format!("schema {SCHEMA} is missing"));
        }
        lines.extend(self.ownership.iter().map(|drift| drift.description.clone()));
        lines.extend(self.acl.iter().flat_map(AclDrift::describe));
        if superuser {
            lines.extend(self.builtin_acl.iter().flat_map(AclDrift::describe));
        }
        lines
    }

    /// Differences a non-superuser operator cannot repair (built-in functions belong to the
    /// bootstrap superuser), for a warning instead of endless drift.
    pub fn unrepairable(&self, superuser: bool) -> Vec<String> {
        if superuser {
            Vec::new()
        } else {
            self.builtin_acl
                .iter()
                .flat_map(AclDrift::describe)
                .collect()
        }
    }

    /// `REVOKE` statements for the built-in functions, to run as a superuser.
    pub fn builtin_repairs(&self) -> Vec<String> {
        self.builtin_acl
            .iter()
            .flat_map(|drift| drift.repair_statements(""))
            .collect()
    }
}

/// Compares the catalog with the model for the tenant `database` and its roles.
pub(crate) fn assess(database: &str, roles: &RoleNames, objects: &TenantObjects) -> Assessment {
    let model = Model { roles };
    let mut assessment = Assessment::default();

    model.check_acl(
        &mut assessment,
        AclTarget::Database(database.to_owned()),
        &objects.database_acl,
        model.database_grants(),
    );

    match &objects.schema_public {
        None => assessment.schema_missing = true,
        Some(schema) => {
            model.check_owner(
                &mut assessment,
                &schema.owner,
                format!("schema {SCHEMA}"),
                Some(format!(
                    "ALTER SCHEMA {} OWNER TO {}",
                    quote_ident(SCHEMA),
                    quote_ident(&roles.owner)
                )),
            );
            model.check_acl(
                &mut assessment,
                AclTarget::Schema,
                schema,
                model.schema_grants(),
            );
        }
    }

    for relation in &objects.relations {
        let statement = relation.owned_by.is_none().then(|| {
            format!(
                "ALTER {} {}.{} OWNER TO {}",
                relation.kind.alter_keyword(),
                quote_ident(SCHEMA),
                quote_ident(&relation.name),
                quote_ident(&roles.owner)
            )
        });
        model.check_owner(
            &mut assessment,
            &relation.owned.owner,
            format!("{} {SCHEMA}.{}", relation.kind.description(), relation.name),
            statement,
        );
        let expected = model.relation_grants(relation);
        model.check_acl(
            &mut assessment,
            AclTarget::Relation {
                name: relation.name.clone(),
                kind: relation.kind,
            },
            &relation.owned,
            expected,
        );
    }

    for routine in &objects.routines {
        let target = AclTarget::Routine {
            schema: routine.schema.clone(),
            name: routine.name.clone(),
            identity_arguments: routine.identity_arguments.clone(),
        };
        let statement = target
            .on_clause()
            .map(|on| format!("ALTER {on} OWNER TO {}", quote_ident(&roles.owner)));
        model.check_owner(
            &mut assessment,
            &routine.owned.owner,
            target.describe(),
            statement,
        );
        model.check_acl(&mut assessment, target, &routine.owned, Grants::new());
    }

    // Built-ins belong to the bootstrap superuser; the model only asks that nobody else may run
    // them here.
    for routine in &objects.large_object_creators {
        let actual = grants_of(&routine.owned.acl, &routine.owned.owner);
        if !actual.is_empty() {
            assessment.builtin_acl.push(AclDrift {
                target: AclTarget::Routine {
                    schema: routine.schema.clone(),
                    name: routine.name.clone(),
                    identity_arguments: routine.identity_arguments.clone(),
                },
                actual,
                expected: Grants::new(),
            });
        }
    }

    model.check_default_acls(&mut assessment, objects);
    assessment
}

struct Model<'a> {
    roles: &'a RoleNames,
}

impl Model<'_> {
    /// Privileges per group; a group with none gets no entry.
    fn by_group(&self, admin: &[&str], developer: &[&str], customer: &[&str]) -> Grants {
        [
            (&self.roles.admin, admin),
            (&self.roles.developer, developer),
            (&self.roles.customer, customer),
        ]
        .into_iter()
        .filter(|(_, privileges)| !privileges.is_empty())
        .map(|(role, privileges)| {
            (
                Some(role.clone()),
                privileges.iter().map(|p| (*p).to_owned()).collect(),
            )
        })
        .collect()
    }

    fn database_grants(&self) -> Grants {
        self.by_group(&["CONNECT"], &["CONNECT"], &["CONNECT"])
    }

    fn schema_grants(&self) -> Grants {
        self.by_group(&["USAGE"], &["USAGE"], &["USAGE"])
    }

    /// Tables, by their class of access (see `usualstore_schema::TableAccess`).
    fn table_grants(&self, access: TableAccess) -> Grants {
        const ALL: &[&str] = &["SELECT", "INSERT", "UPDATE", "DELETE"];
        const NO_DELETE: &[&str] = &["SELECT", "INSERT", "UPDATE"];
        const READ: &[&str] = &["SELECT"];
        match access {
            TableAccess::Store => self.by_group(ALL, NO_DELETE, READ),
            TableAccess::Directory => self.by_group(ALL, READ, READ),
            TableAccess::Secrets => self.by_group(ALL, &[], &[]),
            TableAccess::History => self.by_group(READ, READ, READ),
            TableAccess::Operator => self.by_group(READ, &[], &[]),
        }
    }

    /// Sequences follow their table's class: USAGE (nextval) for the groups that may insert into
    /// it, SELECT for those that may read it. Identity columns need neither to insert.
    fn sequence_grants(&self, access: TableAccess) -> Grants {
        const WRITE: &[&str] = &["SELECT", "USAGE"];
        const READ: &[&str] = &["SELECT"];
        match access {
            TableAccess::Store => self.by_group(WRITE, WRITE, READ),
            TableAccess::Directory => self.by_group(WRITE, READ, READ),
            TableAccess::Secrets => self.by_group(WRITE, &[], &[]),
            TableAccess::History => self.by_group(READ, READ, READ),
            TableAccess::Operator => self.by_group(READ, &[], &[]),
        }
    }

    fn relation_grants(&self, relation: &Relation) -> Grants {
        if relation.kind == RelationKind::Sequence {
            let access = relation
                .owned_by
                .as_deref()
                .map_or(TableAccess::Store, table_access);
            self.sequence_grants(access)
        } else {
            self.table_grants(table_access(&relation.name))
        }
    }

    fn check_owner(
        &self,
        assessment: &mut Assessment,
        actual_owner: &str,
        object: String,
        statement: Option<String>,
    ) {
        if actual_owner != self.roles.owner {
            assessment.ownership.push(OwnershipDrift {
                description: format!(
                    "{object} is owned by {actual_owner:?}, expected {:?}",
                    self.roles.owner
                ),
                statement,
            });
        }
    }

    fn check_acl(
        &self,
        assessment: &mut Assessment,
        target: AclTarget,
        owned: &OwnedAcl,
        expected: Grants,
    ) {
        let actual = grants_of(&owned.acl, &owned.owner);
        if actual != expected {
            assessment.acl.push(AclDrift {
                target,
                actual,
                expected,
            });
        }
    }

    fn check_default_acls(&self, assessment: &mut Assessment, objects: &TenantObjects) {
        let owner = &self.roles.owner;
        let find = |schema: Option<&str>, objtype: char| {
            objects
                .default_acls
                .iter()
                .find(|row| row.schema.as_deref() == schema && row.objtype == objtype)
        };
        // The entries the model needs. A missing schema-level entry adds nothing; a missing
        // global function entry means PostgreSQL's built-in default (PUBLIC may EXECUTE).
        let required: [(Option<&str>, char, Grants, Vec<AclEntry>); 3] = [
            (
                Some(SCHEMA),
                'r',
                self.table_grants(TableAccess::Store),
                Vec::new(),
            ),
            (
                Some(SCHEMA),
                'S',
                self.sequence_grants(TableAccess::Store),
                Vec::new(),
            ),
            (
                None,
                'f',
                Grants::new(),
                vec![AclEntry {
                    grantee: None,
                    privilege: "EXECUTE".to_owned(),
                    grantable: false,
                }],
            ),
        ];
        for (schema, objtype, expected, builtin) in required {
            let acl = find(schema, objtype).map_or(builtin, |row| row.acl.clone());
            let owned = OwnedAcl {
                owner: owner.clone(),
                acl,
            };
            self.check_acl(
                assessment,
                AclTarget::DefaultPrivileges {
                    schema: schema.map(str::to_owned),
                    objtype,
                },
                &owned,
                expected,
            );
        }

        // Any other entry of the owner role must grant nothing to anybody, except that PUBLIC
        // keeps its built-in USAGE on new types.
        for row in &objects.default_acls {
            let is_required = matches!(
                (row.schema.as_deref(), row.objtype),
                (Some(SCHEMA), 'r') | (Some(SCHEMA), 'S') | (None, 'f')
            );
            if is_required {
                continue;
            }
            let actual = grants_of(&row.acl, owner);
            let expected: Grants = actual
                .iter()
                .filter(|(grantee, _)| {
                    grantee.is_none() && row.schema.is_none() && row.objtype == 'T'
                })
                .map(|(grantee, privileges)| (grantee.clone(), privileges.clone()))
                .collect();
            if actual != expected {
                assessment.acl.push(AclDrift {
                    target: AclTarget::DefaultPrivileges {
                        schema: row.schema.clone(),
                        objtype: row.objtype,
                    },
                    actual,
                    expected,
                });
            }
        }
    }
}

/// The ACL as grants per grantee, leaving out the owner's own entries (owners hold every
/// privilege implicitly; revoking from oneself is not part of the model).
fn grants_of(acl: &[AclEntry], owner: &str) -> Grants {
    let mut grants = Grants::new();
    for entry in acl {
        if entry.grantee.as_deref() == Some(owner) {
            continue;
        }
        let privilege = if entry.grantable {
            format!("{}{GRANT_OPTION_SUFFIX}", entry.privilege)
        } else {
            entry.privilege.clone()
        };
        grants
            .entry(entry.grantee.clone())
            .or_default()
            .insert(privilege);
    }
    grants
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{DefaultAclRow, Relation, Routine};

    fn entry(grantee: Option<&str>, privilege: &str) -> AclEntry {
        AclEntry {
            grantee: grantee.map(str::to_owned),
            privilege: privilege.to_owned(),
            grantable: false,
        }
    }

    fn entries(grantee: &str, privileges: &[&str]) -> Vec<AclEntry> {
        privileges.iter().map(|p| entry(Some(grantee), p)).collect()
    }

    fn clean_objects(roles: &RoleNames) -> TenantObjects {
        let owned = |acl: Vec<AclEntry>| OwnedAcl {
            owner: roles.owner.clone(),
            acl,
        };
        let groups = |privileges: &[&str]| {
            let mut acl = entries(&roles.admin, privileges);
            acl.extend(entries(&roles.developer, privileges));
            acl.extend(entries(&roles.customer, privileges));
            acl
        };
        let mut table_acl = entries(&roles.admin, &["SELECT", "INSERT", "UPDATE", "DELETE"]);
        table_acl.extend(entries(&roles.developer, &["INSERT", "SELECT", "UPDATE"]));
        table_acl.extend(entries(&roles.customer, &["SELECT"]));
        table_acl.extend(entries(&roles.owner, &["SELECT", "TRUNCATE"]));
        let mut sequence_acl = entries(&roles.admin, &["USAGE", "SELECT"]);
        sequence_acl.extend(entries(&roles.developer, &["USAGE", "SELECT"]));
        sequence_acl.extend(entries(&roles.customer, &["SELECT"]));
        TenantObjects {
            database_acl: owned(groups(&["CONNECT"])),
            schema_public: Some(owned(groups(&["USAGE"]))),
            relations: vec![
                Relation {
                    name: "orders".into(),
                    kind: RelationKind::Table,
                    owned_by: None,
                    owned: owned(table_acl.clone()),
                },
                Relation {
                    name: "orders_id_seq".into(),
                    kind: RelationKind::Sequence,
                    owned_by: Some("orders".into()),
                    owned: owned(sequence_acl.clone()),
                },
                Relation {
                    name: "usualstore_schema_migrations".into(),
                    kind: RelationKind::Table,
                    owned_by: None,
                    owned: owned(groups(&["SELECT"])),
                },
                Relation {
                    name: "tokens".into(),
                    kind: RelationKind::Table,
                    owned_by: None,
                    owned: owned(entries(
                        &roles.admin,
                        &["SELECT", "INSERT", "UPDATE", "DELETE"],
                    )),
                },
                Relation {
                    name: "tokens_id_seq".into(),
                    kind: RelationKind::Sequence,
                    owned_by: Some("tokens".into()),
                    owned: owned(entries(&roles.admin, &["SELECT", "USAGE"])),
                },
            ],
            routines: Vec::new(),
            large_object_creators: vec![Routine {
                schema: "pg_catalog".into(),
                name: "lo_create".into(),
                identity_arguments: "oid".into(),
                owned: OwnedAcl {
                    owner: "postgres".into(),
                    acl: entries("postgres", &["EXECUTE"]),
                },
            }],
            default_acls: vec![
                DefaultAclRow {
                    schema: Some("public".into()),
                    objtype: 'r',
                    acl: table_acl,
                },
                DefaultAclRow {
                    schema: Some("public".into()),
                    objtype: 'S',
                    acl: sequence_acl,
                },
                DefaultAclRow {
                    schema: None,
                    objtype: 'f',
                    acl: entries(&roles.owner, &["EXECUTE"]),
                },
            ],
        }
    }

    #[test]
    fn clean_tenant_has_no_drift() {
        let roles = RoleNames::for_database("shop");
        let assessment = assess("shop", &roles, &clean_objects(&roles));
        assert_eq!(assessment.describe(true), Vec::<String>::new());
    }

    #[test]
    fn extra_delete_for_developer_is_reported_and_repaired_precisely() {
        let roles = RoleNames::for_database("shop");
        let mut objects = clean_objects(&roles);
        objects.relations[0]
            .owned
            .acl
            .push(entry(Some("shop_developer"), "DELETE"));
        let assessment = assess("shop", &roles, &objects);
        assert_eq!(
            assessment.describe(true),
            vec![
                "table public.orders: role \"shop_developer\" has [DELETE, INSERT, SELECT, UPDATE], \
                 expected [INSERT, SELECT, UPDATE]"
                    .to_owned()
            ]
        );
        assert_eq!(
            assessment.acl[0].repair_statements(&roles.owner),
            vec![
                "REVOKE ALL ON TABLE \"public\".\"orders\" FROM \"shop_developer\" CASCADE"
                    .to_owned(),
                "GRANT INSERT, SELECT, UPDATE ON TABLE \"public\".\"orders\" TO \"shop_developer\""
                    .to_owned(),
            ]
        );
    }

    #[test]
    fn public_connect_and_missing_function_defaults_are_drift() {
        let roles = RoleNames::for_database("shop");
        let mut objects = clean_objects(&roles);
        objects.database_acl.acl.push(entry(None, "CONNECT"));
        objects.default_acls.retain(|row| row.objtype != 'f');
        let assessment = assess("shop", &roles, &objects);
        let statements: Vec<String> = assessment
            .acl
            .iter()
            .flat_map(|drift| drift.repair_statements(&roles.owner))
            .collect();
        assert_eq!(
            statements,
            vec![
                "REVOKE ALL ON DATABASE \"shop\" FROM PUBLIC CASCADE".to_owned(),
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"shop_owner\" REVOKE ALL ON FUNCTIONS FROM PUBLIC CASCADE"
                    .to_owned(),
            ]
        );
    }

    #[test]
    fn foreign_owner_is_drift_but_owned_sequences_follow_their_table() {
        let roles = RoleNames::for_database("shop");
        let mut objects = clean_objects(&roles);
        for relation in &mut objects.relations[..2] {
            relation.owned.owner = "mallory".into();
        }
        let assessment = assess("shop", &roles, &objects);
        let statements: Vec<Option<String>> = assessment
            .ownership
            .iter()
            .map(|drift| drift.statement.clone())
            .collect();
        assert_eq!(
            statements,
            vec![
                Some("ALTER TABLE \"public\".\"orders\" OWNER TO \"shop_owner\"".to_owned()),
                None
            ]
        );
    }

    #[test]
    fn secrets_are_for_admins_only() {
        let roles = RoleNames::for_database("shop");
        let mut objects = clean_objects(&roles);
        // What default privileges hand a table a migration creates.
        let mut defaults = entries(&roles.admin, &["SELECT", "INSERT", "UPDATE", "DELETE"]);
        defaults.extend(entries(&roles.developer, &["INSERT", "SELECT", "UPDATE"]));
        defaults.extend(entries(&roles.customer, &["SELECT"]));
        objects.relations[3].owned.acl = defaults;
        let assessment = assess("shop", &roles, &objects);
        let statements: Vec<String> = assessment
            .acl
            .iter()
            .flat_map(|drift| drift.repair_statements(&roles.owner))
            .collect();
        assert_eq!(
            statements,
            vec![
                "REVOKE ALL ON TABLE \"public\".\"tokens\" FROM \"shop_customer\" CASCADE"
                    .to_owned(),
                "REVOKE ALL ON TABLE \"public\".\"tokens\" FROM \"shop_developer\" CASCADE"
                    .to_owned(),
            ]
        );
    }

    #[test]
    fn large_object_creators_are_nobody_elses_and_only_a_superuser_repairs_them() {
        let roles = RoleNames::for_database("shop");
        let mut objects = clean_objects(&roles);
        objects.large_object_creators[0]
            .owned
            .acl
            .push(entry(None, "EXECUTE"));
        let assessment = assess("shop", &roles, &objects);
        let line =
            "function pg_catalog.lo_create(oid): PUBLIC has [EXECUTE], expected []".to_owned();
        assert_eq!(assessment.describe(true), vec![line.clone()]);
        assert_eq!(assessment.describe(false), Vec::<String>::new());
        assert_eq!(assessment.unrepairable(false), vec![line]);
        assert_eq!(
            assessment.builtin_repairs(),
            vec![
                "REVOKE ALL ON ROUTINE \"pg_catalog\".\"lo_create\"(oid) FROM PUBLIC CASCADE"
                    .to_owned()
            ]
        );
    }
}
