//! Helpers shared by the integration tests: servers for both kinds of operator, login users,
//! and statements whose outcome is a SQLSTATE.

#![allow(dead_code)]

use tokio_postgres::Client;
use usualstore_tenancy::{Server, ServicePlan, TenantSpec, quote_ident, quote_literal};
use usualstore_testpg::{shared, unique_name};

pub const DENIED: &str = "42501";

/// A server handle for the shared cluster's superuser.
pub fn superuser_server() -> Server {
    Server::without_tls(shared().config("postgres"))
}

/// A server handle for a fresh managed-PostgreSQL style operator (CREATEDB CREATEROLE, not a
/// superuser).
pub fn managed_server() -> (Server, String) {
    let pg = shared();
    let (user, password) = pg
        .create_managed_admin(&unique_name("ops"))
        .expect("create managed admin");
    let mut config = pg.config("postgres");
    config.user(&user).password(password);
    (Server::without_tls(config), user)
}

pub fn spec(prefix: &str, plan: ServicePlan) -> TenantSpec {
    TenantSpec {
        database_name: unique_name(prefix),
        tenant_name: format!("{prefix} O'Brien \\ \"Shop\" Inc."),
        plan,
    }
}

pub async fn superuser(database: &str) -> Client {
    shared()
        .connect(database)
        .await
        .expect("superuser connects")
}

/// Creates a LOGIN user that is a member of `group` and returns its password.
pub async fn login_member(user: &str, group: &str) -> String {
    let password = format!("pw-{user}");
    superuser("postgres")
        .await
        .batch_execute(&format!(
            "CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}",
            quote_ident(user),
            quote_literal(&password),
            quote_ident(group)
        ))
        .await
        .expect("create login member");
    password
}

pub async fn connect_as(database: &str, user: &str, password: &str) -> Client {
    shared()
        .connect_as(database, user, password)
        .await
        .unwrap_or_else(|error| panic!("{user} should connect to {database}: {error:?}"))
}

/// `None` when the statement succeeds, otherwise its SQLSTATE.
pub async fn outcome(client: &Client, sql: &str) -> Option<String> {
    match client.batch_execute(sql).await {
        Ok(()) => None,
        Err(error) => Some(
            error
                .code()
                .map(|code| code.code().to_owned())
                .unwrap_or_else(|| format!("no SQLSTATE: {error}")),
        ),
    }
}

/// Runs `sql` in the tenant database as its owner role (like a later migration would).
pub async fn as_owner(database: &str, sql: &str) {
    let client = superuser(database).await;
    client
        .batch_execute(&format!(
            "SET ROLE {}; {sql}; RESET ROLE",
            quote_ident(&format!("{database}_owner"))
        ))
        .await
        .unwrap_or_else(|error| panic!("as owner: {sql}: {error:?}"));
}

pub async fn database_exists(database: &str) -> bool {
    superuser("postgres")
        .await
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&database],
        )
        .await
        .expect("query pg_database")
        .get::<_, i64>(0)
        == 1
}

/// Role names starting with `<database>_`.
pub async fn roles_of(database: &str) -> Vec<String> {
    superuser("postgres")
        .await
        .query(
            "SELECT rolname::text FROM pg_roles WHERE starts_with(rolname::text, $1) ORDER BY 1",
            &[&format!("{database}_")],
        )
        .await
        .expect("query pg_roles")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Tables the test adds as the owner role after the tenant exists, as a later migration would:
/// only default privileges can have given the groups access to them.
pub async fn add_probe_tables(database: &str) {
    as_owner(
        database,
        "CREATE TABLE public.probe (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text); \
         CREATE TABLE public.serial_probe (id serial PRIMARY KEY, note text); \
         INSERT INTO public.probe (note) VALUES ('seed'), ('second'); \
         INSERT INTO public.serial_probe (note) VALUES ('seed')",
    )
    .await;
}

/// Connects to `database` as a member of each group and tries what each may and may not do.
/// `outsider` is a member of another tenant's admin group (user, password).
pub async fn check_privilege_matrix(database: &str, outsider: (&str, &str)) {
    add_probe_tables(database).await;
    let groups = [
        ("admin", ["SELECT", "INSERT", "UPDATE", "DELETE"].as_slice()),
        ("developer", ["SELECT", "INSERT", "UPDATE"].as_slice()),
        ("customer", ["SELECT"].as_slice()),
    ];
    for (kind, allowed) in groups {
        let user = format!("{database}_{kind}_u");
        let password = login_member(&user, &format!("{database}_{kind}")).await;
        let client = connect_as(database, &user, &password).await;
        let expect = |privilege: &str| {
            if allowed.contains(&privilege) {
                None
            } else {
                Some(DENIED.to_owned())
            }
        };
        for table in ["probe", "serial_probe"] {
            let cases = [
                ("SELECT", format!("SELECT count(*) FROM public.{table}")),
                (
                    "INSERT",
                    format!("INSERT INTO public.{table} (note) VALUES ('{kind}')"),
                ),
                (
                    "UPDATE",
                    format!("UPDATE public.{table} SET note = note || '!' WHERE id = 1"),
                ),
                ("DELETE", format!("DELETE FROM public.{table} WHERE id = 2")),
            ];
            for (privilege, sql) in cases {
                assert_eq!(
                    outcome(&client, &sql).await,
                    expect(privilege),
                    "{kind}: {sql}"
                );
            }
            assert_eq!(
                outcome(&client, &format!("TRUNCATE public.{table}")).await,
                Some(DENIED.to_owned()),
                "{kind} must not TRUNCATE"
            );
        }
        // A store table with the updated_at trigger: members need no EXECUTE on the trigger
        // function, which PUBLIC no longer has.
        let email = format!("{kind}@example.com");
        let store_cases = [
            (
                "INSERT",
                format!(
                    "INSERT INTO public.customers (first_name, last_name, email) \
                     VALUES ('A', 'B', '{email}')"
                ),
            ),
            (
                "UPDATE",
                format!("UPDATE public.customers SET first_name = 'C' WHERE email = '{email}'"),
            ),
            ("SELECT", "SELECT count(*) FROM public.customers".to_owned()),
        ];
        for (privilege, sql) in store_cases {
            assert_eq!(
                outcome(&client, &sql).await,
                expect(privilege),
                "{kind}: {sql}"
            );
        }
        for sql in [
            "CREATE TABLE public.intruder (id int)",
            "CREATE TEMP TABLE scratch (id int)",
            "CREATE SCHEMA intruder",
            "DELETE FROM public.usualstore_schema_migrations",
        ] {
            assert_eq!(
                outcome(&client, sql).await,
                Some(DENIED.to_owned()),
                "{kind}: {sql}"
            );
        }
        assert_eq!(
            outcome(&client, "SELECT * FROM public.usualstore_schema_migrations").await,
            None,
            "{kind} may read the schema version"
        );

        // Every table the store schema created, through the catalog.
        let rows = client
            .query(
                "SELECT c.relname::text, \
                        array_remove(ARRAY[ \
                          CASE WHEN has_table_privilege(c.oid, 'SELECT') THEN 'SELECT' END, \
                          CASE WHEN has_table_privilege(c.oid, 'INSERT') THEN 'INSERT' END, \
                          CASE WHEN has_table_privilege(c.oid, 'UPDATE') THEN 'UPDATE' END, \
                          CASE WHEN has_table_privilege(c.oid, 'DELETE') THEN 'DELETE' END, \
                          CASE WHEN has_table_privilege(c.oid, 'TRUNCATE') THEN 'TRUNCATE' END, \
                          CASE WHEN has_table_privilege(c.oid, 'REFERENCES') THEN 'REFERENCES' END, \
                          CASE WHEN has_table_privilege(c.oid, 'TRIGGER') THEN 'TRIGGER' END], NULL) \
                 FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v')",
                &[],
            )
            .await
            .expect("table privileges");
        assert!(rows.len() > 3, "the store schema has tables");
        for row in rows {
            let table: String = row.get(0);
            let privileges: Vec<String> = row.get(1);
            let expected = expected_table_privileges(kind, &table, allowed);
            assert_eq!(privileges, expected, "{kind} on {table}");
        }
    }

    let (outsider_user, outsider_password) = outsider;
    let refused = shared()
        .connect_as(database, outsider_user, outsider_password)
        .await
        .expect_err("a member of another tenant must not connect");
    assert_eq!(
        refused.code().map(|code| code.code()),
        Some(DENIED),
        "{refused:?}"
    );
}

/// The privilege matrix of docs/resources/tenant.md, written out independently of the model:
/// store tables get `store` (each group's row), the application's login secrets only the admin
/// group, the user directory is read-only below admin, and the provider's records are admin-read
/// (e-mails) or read-only for all (migrations).
pub fn expected_table_privileges<'a>(kind: &str, table: &str, store: &[&'a str]) -> Vec<&'a str> {
    const ALL: [&str; 4] = ["SELECT", "INSERT", "UPDATE", "DELETE"];
    match (table, kind) {
        ("usualstore_schema_migrations", _) => vec!["SELECT"],
        ("users", "admin") => ALL.to_vec(),
        ("users", _) => vec!["SELECT"],
        ("user_credentials" | "tokens" | "sessions", "admin") => ALL.to_vec(),
        ("user_credentials" | "tokens" | "sessions", _) => Vec::new(),
        ("usualstore_login_users", "admin") => vec!["SELECT"],
        ("usualstore_login_users", _) => Vec::new(),
        _ => store.to_vec(),
    }
}
