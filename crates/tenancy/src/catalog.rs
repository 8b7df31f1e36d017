//! Catalog reads: what PostgreSQL says about a tenant's database, roles and objects.
//!
//! Every ACL is read through `aclexplode(COALESCE(acl, acldefault(…)))` so that a NULL ACL
//! (meaning "the built-in defaults", e.g. PUBLIC may CONNECT) is seen as what it grants.

use tokio_postgres::Client;
use tokio_postgres::types::Type;

use crate::error::{DbResultExt, TenantError};

/// One exploded ACL entry. `grantee == None` is PUBLIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AclEntry {
    pub grantee: Option<String>,
    pub privilege: String,
    pub grantable: bool,
}

/// The tenant database as `pg_database` describes it (readable from any database).
#[derive(Debug, Clone)]
pub(crate) struct DatabaseRow {
    pub owner: String,
    pub connection_limit: i32,
    pub comment: Option<String>,
    /// Whether the role reading it (the operator) is a superuser: read in the same round trip,
    /// since what the operator may repair depends on it.
    pub operator_is_superuser: bool,
}

pub(crate) async fn fetch_database(
    client: &Client,
    database: &str,
) -> Result<Option<DatabaseRow>, TenantError> {
    let row = client
        .query_typed_opt(
            "SELECT pg_catalog.pg_get_userbyid(d.datdba)::text, d.datconnlimit, \
                    pg_catalog.shobj_description(d.oid, 'pg_database'), \
                    (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) \
             FROM pg_catalog.pg_database d WHERE d.datname = $1",
            &[(&database, Type::TEXT)],
        )
        .await
        .context(format!("looking up database {database:?}"))?;
    Ok(row.map(|row| DatabaseRow {
        owner: row.get(0),
        connection_limit: row.get(1),
        comment: row.get(2),
        operator_is_superuser: row.get::<_, Option<bool>>(3).unwrap_or(false),
    }))
}

/// A role as `pg_roles` describes it, with the roles it is a member of.
#[derive(Debug, Clone)]
pub(crate) struct RoleRow {
    pub name: String,
    pub comment: Option<String>,
    pub superuser: bool,
    pub inherit: bool,
    pub create_role: bool,
    pub create_db: bool,
    pub login: bool,
    pub replication: bool,
    pub bypass_rls: bool,
    pub connection_limit: i32,
    pub member_of: Vec<String>,
}

/// What a role of ours should be: a NOLOGIN group, or a login user. Neither has any other power.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoleShape {
    Group,
    Login,
}

impl RoleRow {
    /// `ALTER ROLE` options that bring the role back to `shape`. Only differing options are
    /// listed: PostgreSQL 15 refuses even a no-op `NOSUPERUSER` from a non-superuser. A login
    /// user's connection limit is its own setting, compared elsewhere.
    pub fn fixes(&self, shape: RoleShape) -> Vec<&'static str> {
        let mut fixes = Vec::new();
        if self.superuser {
            fixes.push("NOSUPERUSER");
        }
        if !self.inherit {
            fixes.push("INHERIT");
        }
        if self.create_role {
            fixes.push("NOCREATEROLE");
        }
        if self.create_db {
            fixes.push("NOCREATEDB");
        }
        match shape {
            RoleShape::Group if self.login => fixes.extend(["NOLOGIN", "PASSWORD NULL"]),
            RoleShape::Login if !self.login => fixes.push("LOGIN"),
            _ => {}
        }
        if self.replication {
            fixes.push("NOREPLICATION");
        }
        if self.bypass_rls {
            fixes.push("NOBYPASSRLS");
        }
        if shape == RoleShape::Group && self.connection_limit != -1 {
            fixes.push("CONNECTION LIMIT -1");
        }
        fixes
    }
}

pub(crate) async fn fetch_roles(
    client: &Client,
    names: &[&str],
) -> Result<Vec<RoleRow>, TenantError> {
    let rows = client
        .query_typed(
            "SELECT r.rolname::text, pg_catalog.shobj_description(r.oid, 'pg_authid'), \
                    r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin, \
                    r.rolreplication, r.rolbypassrls, r.rolconnlimit, \
                    ARRAY(SELECT g.rolname::text FROM pg_catalog.pg_auth_members m \
                          JOIN pg_catalog.pg_roles g ON g.oid = m.roleid \
                          WHERE m.member = r.oid ORDER BY 1) \
             FROM pg_catalog.pg_roles r WHERE r.rolname::text = ANY($1::text[])",
            &[(&names, Type::TEXT_ARRAY)],
        )
        .await
        .context("looking up the tenant's group roles")?;
    Ok(rows
        .into_iter()
        .map(|row| RoleRow {
            name: row.get(0),
            comment: row.get(1),
            superuser: row.get(2),
            inherit: row.get(3),
            create_role: row.get(4),
            create_db: row.get(5),
            login: row.get(6),
            replication: row.get(7),
            bypass_rls: row.get(8),
            connection_limit: row.get(9),
            member_of: row.get(10),
        })
        .collect())
}

/// An object with an owner and an ACL.
#[derive(Debug, Clone)]
pub(crate) struct OwnedAcl {
    pub owner: String,
    pub acl: Vec<AclEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelationKind {
    Table,
    PartitionedTable,
    View,
    MaterializedView,
    ForeignTable,
    Sequence,
}

impl RelationKind {
    fn from_relkind(relkind: &str) -> Option<RelationKind> {
        Some(match relkind {
            "r" => RelationKind::Table,
            "p" => RelationKind::PartitionedTable,
            "v" => RelationKind::View,
            "m" => RelationKind::MaterializedView,
            "f" => RelationKind::ForeignTable,
            "S" => RelationKind::Sequence,
            _ => return None,
        })
    }

    /// Keyword for `ALTER … OWNER TO`.
    pub fn alter_keyword(self) -> &'static str {
        match self {
            RelationKind::Table | RelationKind::PartitionedTable => "TABLE",
            RelationKind::View => "VIEW",
            RelationKind::MaterializedView => "MATERIALIZED VIEW",
            RelationKind::ForeignTable => "FOREIGN TABLE",
            RelationKind::Sequence => "SEQUENCE",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            RelationKind::Table | RelationKind::PartitionedTable => "table",
            RelationKind::View => "view",
            RelationKind::MaterializedView => "materialized view",
            RelationKind::ForeignTable => "foreign table",
            RelationKind::Sequence => "sequence",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Relation {
    pub name: String,
    pub kind: RelationKind,
    /// The table an identity or serial sequence belongs to: such a sequence follows its table's
    /// owner (it cannot be re-owned alone) and its table's class of access.
    pub owned_by: Option<String>,
    pub owned: OwnedAcl,
}

#[derive(Debug, Clone)]
pub(crate) struct Routine {
    /// `public` for the tenant's own functions, `pg_catalog` for built-ins the model restricts.
    pub schema: String,
    pub name: String,
    /// `pg_get_function_identity_arguments`, as PostgreSQL renders (and quotes) it.
    pub identity_arguments: String,
    pub owned: OwnedAcl,
}

/// One `pg_default_acl` row of the owner role. `objtype` is PostgreSQL's one-letter code.
#[derive(Debug, Clone)]
pub(crate) struct DefaultAclRow {
    pub schema: Option<String>,
    pub objtype: char,
    pub acl: Vec<AclEntry>,
}

/// Everything inside the tenant database that the privilege model covers.
#[derive(Debug, Clone)]
pub(crate) struct TenantObjects {
    pub database_acl: OwnedAcl,
    /// `None` when schema public was dropped.
    pub schema_public: Option<OwnedAcl>,
    pub relations: Vec<Relation>,
    pub routines: Vec<Routine>,
    /// The built-in functions that create large objects (see [`LARGE_OBJECT_CREATORS`]).
    pub large_object_creators: Vec<Routine>,
    pub default_acls: Vec<DefaultAclRow>,
}

/// Built-in functions that create large objects. PUBLIC may execute them by default, which would
/// let even a read-only login write data into a database; the model takes that away.
pub(crate) const LARGE_OBJECT_CREATORS: [&str; 4] =
    ["lo_create", "lo_creat", "lo_from_bytea", "lo_import"];

/// Objects that belong to an extension are the extension's business (and often owned by the
/// bootstrap superuser); leave them out.
const NOT_EXTENSION_MEMBER: &str = "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e \
     WHERE e.classid = $CLASS::regclass AND e.objid = $OID AND e.deptype = 'e')";

fn not_extension_member(class: &str, oid: &str) -> String {
    NOT_EXTENSION_MEMBER
        .replace("$CLASS", class)
        .replace("$OID", oid)
}

/// SQL fragment turning an exploded ACL entry's grantee into a name (NULL for PUBLIC).
const GRANTEE_NAME: &str =
    "CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END";

/// Reads the tenant database's ACLs and ownership, connected to that database. The queries are
/// independent, so they go out together: one round trip's wait for all of them.
pub(crate) async fn inspect_tenant_objects(
    client: &Client,
    owner_role: &str,
) -> Result<TenantObjects, TenantError> {
    let database_sql = format!(
        "SELECT pg_catalog.pg_get_userbyid(d.datdba)::text, {GRANTEE_NAME}, a.privilege_type, \
                a.is_grantable \
         FROM pg_catalog.pg_database d \
         LEFT JOIN LATERAL pg_catalog.aclexplode(COALESCE(d.datacl, \
             pg_catalog.acldefault('d', d.datdba))) a ON true \
         WHERE d.datname = current_database()"
    );
    let schema_sql = format!(
        "SELECT pg_catalog.pg_get_userbyid(n.nspowner)::text, {GRANTEE_NAME}, a.privilege_type, \
                a.is_grantable \
         FROM pg_catalog.pg_namespace n \
         LEFT JOIN LATERAL pg_catalog.aclexplode(COALESCE(n.nspacl, \
             pg_catalog.acldefault('n', n.nspowner))) a ON true \
         WHERE n.nspname = 'public'"
    );
    let (database_acl, schema_public, relations, routines, large_object_creators, default_acls) = tokio::try_join!(
        grouped_acl_rows(
            client,
            &database_sql,
            0,
            "reading the database's privileges"
        ),
        grouped_acl_rows(client, &schema_sql, 0, "reading schema public's privileges"),
        inspect_relations(client),
        inspect_routines(client, RoutineScope::Public),
        inspect_routines(client, RoutineScope::LargeObjectCreators),
        inspect_default_acls(client, owner_role),
    )?;
    let first = |rows: Vec<(Vec<String>, OwnedAcl)>| rows.into_iter().next().map(|(_, acl)| acl);
    Ok(TenantObjects {
        database_acl: first(database_acl).unwrap_or(OwnedAcl {
            owner: String::new(),
            acl: Vec::new(),
        }),
        schema_public: first(schema_public),
        relations,
        routines,
        large_object_creators,
        default_acls,
    })
}

/// Runs a query whose first columns are `key…, owner` followed by exploded ACL columns
/// (grantee, privilege_type, is_grantable; all NULL for an empty ACL) and groups rows by
/// the leading key columns. `key_columns` counts the columns before the owner.
async fn grouped_acl_rows(
    client: &Client,
    sql: &str,
    key_columns: usize,
    context: &str,
) -> Result<Vec<(Vec<String>, OwnedAcl)>, TenantError> {
    let rows = client.query_typed(sql, &[]).await.context(context)?;
    let mut grouped: Vec<(Vec<String>, OwnedAcl)> = Vec::new();
    for row in rows {
        let key: Vec<String> = (0..key_columns).map(|i| row.get::<_, String>(i)).collect();
        let owner: String = row.get(key_columns);
        let grantee: Option<String> = row.get(key_columns + 1);
        let privilege: Option<String> = row.get(key_columns + 2);
        let grantable: Option<bool> = row.get(key_columns + 3);
        let position = match grouped.last() {
            Some((last_key, _)) if *last_key == key => grouped.len() - 1,
            _ => {
                grouped.push((
                    key,
                    OwnedAcl {
                        owner,
                        acl: Vec::new(),
                    },
                ));
                grouped.len() - 1
            }
        };
        if let Some(privilege) = privilege {
            grouped[position].1.acl.push(AclEntry {
                grantee,
                privilege,
                grantable: grantable.unwrap_or(false),
            });
        }
    }
    Ok(grouped)
}

async fn inspect_relations(client: &Client) -> Result<Vec<Relation>, TenantError> {
    // The owning table of an identity or serial sequence ('' for none): keys are text.
    let sql = format!(
        "SELECT c.relname::text, c.relkind::text, \
                COALESCE((SELECT t.relname::text FROM pg_catalog.pg_depend d \
                          JOIN pg_catalog.pg_class t ON t.oid = d.refobjid \
                          WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid \
                            AND d.refclassid = 'pg_catalog.pg_class'::regclass \
                            AND d.deptype IN ('a', 'i') LIMIT 1), ''), \
                pg_catalog.pg_get_userbyid(c.relowner)::text, {GRANTEE_NAME}, a.privilege_type, \
                a.is_grantable \
         FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' \
         LEFT JOIN LATERAL pg_catalog.aclexplode(COALESCE(c.relacl, pg_catalog.acldefault( \
             CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner))) a ON true \
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND {} \
         ORDER BY c.relname, c.relkind",
        not_extension_member("'pg_catalog.pg_class'", "c.oid")
    );
    let grouped =
        grouped_acl_rows(client, &sql, 3, "reading table and sequence privileges").await?;
    Ok(grouped
        .into_iter()
        .filter_map(|(key, owned)| {
            let [name, relkind, owned_by] = <[String; 3]>::try_from(key).ok()?;
            Some(Relation {
                name,
                kind: RelationKind::from_relkind(&relkind)?,
                owned_by: (!owned_by.is_empty()).then_some(owned_by),
                owned,
            })
        })
        .collect())
}

/// Which functions [`inspect_routines`] reads.
#[derive(Clone, Copy)]
enum RoutineScope {
    /// Every function of schema public outside extensions.
    Public,
    /// The built-ins of [`LARGE_OBJECT_CREATORS`] in pg_catalog.
    LargeObjectCreators,
}

async fn inspect_routines(
    client: &Client,
    scope: RoutineScope,
) -> Result<Vec<Routine>, TenantError> {
    let (schema, filter) = match scope {
        RoutineScope::Public => (
            "public",
            not_extension_member("'pg_catalog.pg_proc'", "p.oid"),
        ),
        RoutineScope::LargeObjectCreators => (
            "pg_catalog",
            format!(
                "p.proname IN ({})",
                LARGE_OBJECT_CREATORS
                    .iter()
                    .map(|name| format!("'{name}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    };
    let sql = format!(
        "SELECT p.proname::text, pg_catalog.pg_get_function_identity_arguments(p.oid), \
                pg_catalog.pg_get_userbyid(p.proowner)::text, {GRANTEE_NAME}, a.privilege_type, \
                a.is_grantable \
         FROM pg_catalog.pg_proc p \
         JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace AND n.nspname = '{schema}' \
         LEFT JOIN LATERAL pg_catalog.aclexplode(COALESCE(p.proacl, \
             pg_catalog.acldefault('f', p.proowner))) a ON true \
         WHERE {filter} \
         ORDER BY p.proname, 2"
    );
    let grouped = grouped_acl_rows(client, &sql, 2, "reading function privileges").await?;
    Ok(grouped
        .into_iter()
        .filter_map(|(key, owned)| {
            let [name, identity_arguments] = <[String; 2]>::try_from(key).ok()?;
            Some(Routine {
                schema: schema.to_owned(),
                name,
                identity_arguments,
                owned,
            })
        })
        .collect())
}

async fn inspect_default_acls(
    client: &Client,
    owner_role: &str,
) -> Result<Vec<DefaultAclRow>, TenantError> {
    let rows = client
        .query_typed(
            &format!(
                "SELECT COALESCE(n.nspname::text, ''), d.defaclobjtype::text, \
                        {GRANTEE_NAME}, a.privilege_type, a.is_grantable \
                 FROM pg_catalog.pg_default_acl d \
                 LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace \
                 LEFT JOIN LATERAL pg_catalog.aclexplode(d.defaclacl) a ON true \
                 WHERE d.defaclrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1) \
                 ORDER BY 1, 2"
            ),
            &[(&owner_role, Type::TEXT)],
        )
        .await
        .context("reading default privileges")?;
    let mut acls: Vec<DefaultAclRow> = Vec::new();
    for row in rows {
        let schema: String = row.get(0);
        let schema = (!schema.is_empty()).then_some(schema);
        let objtype = row.get::<_, String>(1).chars().next().unwrap_or('?');
        let is_same = acls
            .last()
            .is_some_and(|last| last.schema == schema && last.objtype == objtype);
        if !is_same {
            acls.push(DefaultAclRow {
                schema,
                objtype,
                acl: Vec::new(),
            });
        }
        let privilege: Option<String> = row.get(3);
        if let (Some(privilege), Some(last)) = (privilege, acls.last_mut()) {
            last.acl.push(AclEntry {
                grantee: row.get(2),
                privilege,
                grantable: row.get::<_, Option<bool>>(4).unwrap_or(false),
            });
        }
    }
    Ok(acls)
}
