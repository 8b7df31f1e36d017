//! The test cluster, seen from the tests: its PG* environment and catalog checks run as its superuser.
//!
//! Everything that touches `usualstore_testpg` lives here, so the rest of the harness does not
//! depend on that crate's shape.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

/// PostgreSQL's identifier limit (NAMEDATALEN - 1), in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 63;
/// The four group roles of a tenant, as suffixes of its database name.
pub const ROLE_SUFFIXES: [&str; 4] = ["_owner", "_admin", "_developer", "_customer"];

/// PG* variables that point libpq-style clients (and the provider) at the test cluster as its
/// superuser. Starts the shared cluster on first use.
pub fn pg_env() -> Vec<(String, String)> {
    usualstore_testpg::shared().pg_env()
}

/// The test cluster's `psql`, for configurations that run it (local-exec provisioners).
pub fn psql() -> std::path::PathBuf {
    usualstore_testpg::shared().bin_dir().join("psql")
}

/// The value of one PG* variable of the test cluster.
pub fn pg_var(name: &str) -> Option<String> {
    pg_env()
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// A database name no other test uses: `<prefix>_<random>`, lowercase, short.
pub fn unique_name(prefix: &str) -> String {
    usualstore_testpg::unique_name(prefix)
}

/// Runs a future to completion from synchronous test code. One runtime for the whole test
/// binary, with a worker thread of its own, keeps every connection's driver task running.
pub fn block_on<F: Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("build the test runtime")
        })
        .block_on(future)
}

/// A superuser session on one database of the test cluster.
pub struct Db {
    name: String,
    client: Client,
}

impl Db {
    pub fn connect(database: &str) -> Db {
        let client = block_on(usualstore_testpg::shared().connect(database))
            .unwrap_or_else(|error| panic!("connect to database {database:?}: {error}"));
        Db {
            name: database.to_owned(),
            client,
        }
    }

    /// A session as `config` says (a cluster of the test's own, a DSN), plain TCP.
    pub fn with_config(config: tokio_postgres::Config) -> Db {
        let name = config.get_dbname().unwrap_or_default().to_owned();
        let client = block_on(async move {
            let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            Ok::<_, tokio_postgres::Error>(client)
        })
        .unwrap_or_else(|error| panic!("connect to database {name:?}: {error}"));
        Db { name, client }
    }

    /// The maintenance database, for cluster-wide catalogs.
    pub fn postgres() -> Db {
        Db::connect("postgres")
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs one or more statements without parameters.
    pub fn batch(&self, sql: &str) {
        block_on(self.client.batch_execute(sql))
            .unwrap_or_else(|error| panic!("on {:?}: {sql}\n{error:?}", self.name));
    }

    pub fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> u64 {
        block_on(self.client.execute(sql, params))
            .unwrap_or_else(|error| panic!("on {:?}: {sql}\n{error:?}", self.name))
    }

    pub fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Vec<tokio_postgres::Row> {
        block_on(self.client.query(sql, params))
            .unwrap_or_else(|error| panic!("on {:?}: {sql}\n{error:?}", self.name))
    }

    pub fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> tokio_postgres::Row {
        block_on(self.client.query_one(sql, params))
            .unwrap_or_else(|error| panic!("on {:?}: {sql}\n{error:?}", self.name))
    }
}

/// Quotes an identifier for SQL the tests write by hand.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal for SQL the tests write by hand.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

pub fn database_exists(name: &str) -> bool {
    Db::postgres()
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&name],
        )
        .get(0)
}

pub fn role_exists(name: &str) -> bool {
    Db::postgres()
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
            &[&name],
        )
        .get(0)
}

/// The names among `<database>_owner|_admin|_developer|_customer` that exist as roles.
pub fn existing_tenant_roles(database: &str) -> Vec<String> {
    let wanted: Vec<String> = ROLE_SUFFIXES
        .iter()
        .map(|suffix| truncate_identifier(&format!("{database}{suffix}")))
        .collect();
    Db::postgres()
        .query(
            "SELECT rolname::text FROM pg_roles WHERE rolname = ANY($1) ORDER BY 1",
            &[&wanted],
        )
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// What PostgreSQL would make of an over-long identifier.
pub fn truncate_identifier(name: &str) -> String {
    let mut end = name.len().min(MAX_IDENTIFIER_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

pub fn database_comment(name: &str) -> Option<String> {
    Db::postgres()
        .query_one(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .get(0)
}

pub fn connection_limit(name: &str) -> i32 {
    Db::postgres()
        .query_one(
            "SELECT datconnlimit FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .get(0)
}

/// Whether PUBLIC holds `privilege` (e.g. `CONNECT`, `TEMPORARY`) on the database. A NULL ACL
/// means the built-in defaults, which give PUBLIC both.
pub fn public_has_database_privilege(name: &str, privilege: &str) -> bool {
    Db::postgres()
        .query_one(
            "SELECT CASE WHEN d.datacl IS NULL THEN true ELSE EXISTS (
                 SELECT 1 FROM aclexplode(d.datacl) AS acl
                 WHERE acl.grantee = 0 AND acl.privilege_type = $2) END
             FROM pg_database AS d WHERE d.datname = $1",
            &[&name, &privilege],
        )
        .get(0)
}

/// Inserts `count` rows into `schema.table`, filling each NOT NULL column that has no default
/// with a value of its type, so the tests need not know the store schema's columns.
pub fn insert_sample_rows(db: &Db, schema: &str, table: &str, count: usize) {
    let columns = db.query(
        "SELECT column_name::text, data_type::text, udt_name::text
         FROM information_schema.columns
         WHERE table_schema = $1 AND table_name = $2
           AND is_nullable = 'NO' AND column_default IS NULL
           AND is_identity = 'NO' AND is_generated = 'NEVER'
         ORDER BY ordinal_position",
        &[&schema, &table],
    );
    let target = format!("{}.{}", quote_ident(schema), quote_ident(table));
    for n in 1..=count {
        let (names, values): (Vec<String>, Vec<String>) = columns
            .iter()
            .map(|column| {
                let name: String = column.get(0);
                let data_type: String = column.get(1);
                let udt: String = column.get(2);
                let value = sample_value(&data_type, &udt, n).unwrap_or_else(|| {
                    panic!("no sample value for {target}.{name} of type {data_type} ({udt})")
                });
                (quote_ident(&name), value)
            })
            .unzip();
        let sql = if names.is_empty() {
            format!("INSERT INTO {target} DEFAULT VALUES")
        } else {
            format!(
                "INSERT INTO {target} ({}) VALUES ({})",
                names.join(", "),
                values.join(", ")
            )
        };
        db.batch(&sql);
    }
}

fn sample_value(data_type: &str, udt: &str, n: usize) -> Option<String> {
    let value = match data_type {
        "text" | "character varying" | "character" | "citext" => {
            quote_literal(&format!("sample {n}"))
        }
        "smallint" | "integer" | "bigint" | "numeric" | "real" | "double precision" => {
            n.to_string()
        }
        "boolean" => "false".to_owned(),
        "timestamp with time zone" | "timestamp without time zone" => "now()".to_owned(),
        "date" => "current_date".to_owned(),
        "uuid" => "gen_random_uuid()".to_owned(),
        "json" | "jsonb" => "'{}'".to_owned(),
        "bytea" => "'\\x00'::bytea".to_owned(),
        "USER-DEFINED" if udt == "citext" => quote_literal(&format!("sample {n}")),
        _ => return None,
    };
    Some(value)
}

/// A login role with CREATEDB and CREATEROLE but no superuser: what managed PostgreSQL hands out.
pub struct ManagedAdmin {
    pub username: String,
    pub password: String,
}

impl ManagedAdmin {
    pub fn create() -> ManagedAdmin {
        let (username, password) = usualstore_testpg::shared()
            .create_managed_admin(&unique_name("madmin"))
            .unwrap_or_else(|error| panic!("create a managed-style admin role: {error}"));
        ManagedAdmin { username, password }
    }
}

impl Drop for ManagedAdmin {
    fn drop(&mut self) {
        // Best effort: a failed test may have left objects it owns; the cluster is throwaway.
        let role = quote_ident(&self.username);
        let _ = block_on(async {
            let client = usualstore_testpg::shared().connect("postgres").await.ok()?;
            client
                .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
                .await
                .ok()
        });
    }
}

/// Every privilege `role` holds in `database`, as sorted `object: privilege` lines: on the
/// database itself, on schema `public` and its relations and functions, and the default
/// privileges granted to it. Read by name, so a dropped and recreated role compares equal.
pub fn privileges_of(database: &str, role: &str) -> Vec<String> {
    let db = Db::connect(database);
    let rows = db.query(
        "WITH r AS (SELECT oid FROM pg_roles WHERE rolname = $1)
         SELECT 'database ' || d.datname || ': ' || a.privilege_type
           FROM pg_database d, aclexplode(d.datacl) a, r
          WHERE d.datname = current_database() AND a.grantee = r.oid
         UNION ALL
         SELECT 'schema ' || n.nspname || ': ' || a.privilege_type
           FROM pg_namespace n, aclexplode(n.nspacl) a, r
          WHERE n.nspname = 'public' AND a.grantee = r.oid
         UNION ALL
         SELECT 'relation ' || c.relname || ': ' || a.privilege_type
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                aclexplode(c.relacl) a, r
          WHERE n.nspname = 'public' AND a.grantee = r.oid
         UNION ALL
         SELECT 'function ' || p.oid::regprocedure::text || ': ' || a.privilege_type
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace,
                aclexplode(p.proacl) a, r
          WHERE n.nspname = 'public' AND a.grantee = r.oid
         UNION ALL
         SELECT 'default ' || da.defaclobjtype::text
                || ' in ' || da.defaclnamespace::regnamespace::text
                || ' by ' || pg_get_userbyid(da.defaclrole) || ': ' || a.privilege_type
           FROM pg_default_acl da, aclexplode(da.defaclacl) a, r
          WHERE a.grantee = r.oid
         ORDER BY 1",
        &[&role],
    );
    rows.iter().map(|row| row.get(0)).collect()
}
