//! Drift made behind usualstore's back is reported by Read and repaired by Update, data intact.

mod common;

use common::*;
use usualstore_tenancy::{
    RoleNames, ServicePlan, TenantStatus, create_tenant, delete_tenant, read_tenant, update_tenant,
};
use usualstore_testpg::unique_name;

/// One way to drift: statements as superuser (`"postgres"` or the tenant database, marked by
/// `None`) and what Read must report afterwards.
struct Scenario {
    name: &'static str,
    sql: Vec<(Option<&'static str>, String)>,
    check: Box<dyn Fn(&TenantStatus)>,
}

fn scenarios(database: &str, stranger: &str) -> Vec<Scenario> {
    let roles = RoleNames::for_database(database);
    let db = database.to_owned();
    let out_of_sync = |needle: String| -> Box<dyn Fn(&TenantStatus)> {
        Box::new(move |status: &TenantStatus| {
            assert!(!status.privileges_in_sync);
            assert!(
                status.drift.iter().any(|line| line.contains(&needle)),
                "expected drift mentioning {needle:?} in {:#?}",
                status.drift
            );
        })
    };
    vec![
        Scenario {
            name: "comment edited",
            sql: vec![(
                Some("postgres"),
                format!(
                    r#"COMMENT ON DATABASE "{db}" IS '{{"usualstore":1,"tenant_name":"Hacked","plan":"free","status":"ready"}}'"#
                ),
            )],
            check: Box::new(|status| {
                assert_eq!(status.tenant_name.as_deref(), Some("Hacked"));
                assert_eq!(status.plan, Some(ServicePlan::Free));
                assert!(status.privileges_in_sync);
            }),
        },
        Scenario {
            name: "comment replaced by free text",
            sql: vec![(
                Some("postgres"),
                format!(r#"COMMENT ON DATABASE "{db}" IS 'our shop'"#),
            )],
            check: Box::new(|status| {
                assert_eq!(status.tenant_name, None);
                assert_eq!(status.plan, None);
            }),
        },
        Scenario {
            name: "connection limit altered",
            sql: vec![(
                Some("postgres"),
                format!(r#"ALTER DATABASE "{db}" CONNECTION LIMIT 99"#),
            )],
            check: Box::new(|status| assert_eq!(status.connection_limit, 99)),
        },
        Scenario {
            name: "PUBLIC may connect again",
            sql: vec![(
                Some("postgres"),
                format!(r#"GRANT CONNECT, TEMPORARY ON DATABASE "{db}" TO PUBLIC"#),
            )],
            check: out_of_sync("PUBLIC has [CONNECT, TEMPORARY]".to_owned()),
        },
        Scenario {
            name: "DELETE granted to developer",
            sql: vec![(
                None,
                format!(r#"GRANT DELETE ON public.probe TO "{}""#, roles.developer),
            )],
            check: out_of_sync(format!(
                "table public.probe: role {:?} has [DELETE",
                roles.developer
            )),
        },
        Scenario {
            name: "TRUNCATE granted to admin on every table",
            sql: vec![(
                None,
                format!(
                    r#"GRANT TRUNCATE ON ALL TABLES IN SCHEMA public TO "{}""#,
                    roles.admin
                ),
            )],
            check: out_of_sync("TRUNCATE".to_owned()),
        },
        Scenario {
            name: "grant option and a stranger",
            sql: vec![(
                None,
                format!(
                    r#"GRANT SELECT ON public.probe TO "{}" WITH GRANT OPTION; GRANT SELECT ON public.probe TO "{stranger}""#,
                    roles.customer
                ),
            )],
            check: out_of_sync(format!("role {stranger:?} has [SELECT]")),
        },
        Scenario {
            name: "customer lost SELECT",
            sql: vec![(
                None,
                format!(r#"REVOKE SELECT ON public.probe FROM "{}""#, roles.customer),
            )],
            check: out_of_sync(format!(
                "role {:?} has [], expected [SELECT]",
                roles.customer
            )),
        },
        Scenario {
            name: "default privileges removed",
            sql: vec![(
                None,
                format!(
                    r#"ALTER DEFAULT PRIVILEGES FOR ROLE "{}" IN SCHEMA public REVOKE ALL ON TABLES FROM "{}""#,
                    roles.owner, roles.admin
                ),
            )],
            check: out_of_sync("default privileges on TABLES in schema public".to_owned()),
        },
        Scenario {
            name: "function executable by PUBLIC",
            sql: vec![(
                None,
                format!(
                    r#"SET ROLE "{}"; CREATE FUNCTION public.answer() RETURNS int LANGUAGE sql AS 'SELECT 42'; RESET ROLE; GRANT EXECUTE ON FUNCTION public.answer() TO PUBLIC"#,
                    roles.owner
                ),
            )],
            check: out_of_sync("function public.answer(): PUBLIC has [EXECUTE]".to_owned()),
        },
        Scenario {
            name: "schema public opened to PUBLIC",
            sql: vec![(
                None,
                "GRANT CREATE, USAGE ON SCHEMA public TO PUBLIC".to_owned(),
            )],
            check: out_of_sync("schema public: PUBLIC has [CREATE, USAGE]".to_owned()),
        },
        Scenario {
            name: "table re-owned",
            sql: vec![(
                None,
                format!(r#"ALTER TABLE public.probe OWNER TO "{stranger}""#),
            )],
            check: out_of_sync(format!("table public.probe is owned by {stranger:?}")),
        },
        Scenario {
            name: "database re-owned",
            sql: vec![(
                Some("postgres"),
                format!(r#"ALTER DATABASE "{db}" OWNER TO "{stranger}""#),
            )],
            check: out_of_sync(format!("is owned by {stranger:?}")),
        },
        Scenario {
            name: "group role given LOGIN and CREATEDB",
            sql: vec![(
                Some("postgres"),
                format!(
                    r#"ALTER ROLE "{}" LOGIN CREATEDB CONNECTION LIMIT 3"#,
                    roles.admin
                ),
            )],
            check: out_of_sync("NOCREATEDB, NOLOGIN".to_owned()),
        },
        Scenario {
            name: "group role made a member of a powerful role",
            sql: vec![(
                Some("postgres"),
                format!(r#"GRANT pg_read_all_data TO "{}""#, roles.customer),
            )],
            check: out_of_sync("is a member of \"pg_read_all_data\"".to_owned()),
        },
        Scenario {
            name: "group role dropped",
            sql: vec![
                (None, format!(r#"DROP OWNED BY "{}""#, roles.developer)),
                (
                    Some("postgres"),
                    format!(r#"DROP ROLE "{}""#, roles.developer),
                ),
            ],
            check: Box::new(|status| {
                assert_eq!(status.developer_role, None);
                assert!(!status.privileges_in_sync);
            }),
        },
    ]
}

async fn drift_is_reported_and_repaired(server: usualstore_tenancy::Server) {
    let spec = spec("drift", ServicePlan::Starter);
    let database = spec.database_name.clone();
    create_tenant(&server, &spec).await.expect("create");
    add_probe_tables(&database).await;
    let stranger = unique_name("mallory");
    superuser("postgres")
        .await
        .batch_execute(&format!(r#"CREATE ROLE "{stranger}""#))
        .await
        .expect("stranger");
    let clean = read_tenant(&server, &database)
        .await
        .expect("read")
        .expect("exists");
    assert!(clean.privileges_in_sync, "{:#?}", clean.drift);

    for scenario in scenarios(&database, &stranger) {
        for (target, sql) in &scenario.sql {
            superuser(target.unwrap_or(&database))
                .await
                .batch_execute(sql)
                .await
                .unwrap_or_else(|error| panic!("{}: {sql}: {error:?}", scenario.name));
        }
        let drifted = read_tenant(&server, &database)
            .await
            .unwrap_or_else(|error| panic!("{}: read: {error}", scenario.name))
            .expect("exists");
        assert_ne!(drifted, clean, "{}: Read must notice", scenario.name);
        (scenario.check)(&drifted);

        let repaired = update_tenant(&server, &spec)
            .await
            .unwrap_or_else(|error| panic!("{}: update: {error}", scenario.name));
        assert_eq!(repaired, clean, "{}: Update must repair", scenario.name);
        let rows: i64 = superuser(&database)
            .await
            .query_one("SELECT count(*) FROM public.probe", &[])
            .await
            .expect("rows")
            .get(0);
        assert_eq!(rows, 2, "{}: rows survive", scenario.name);
    }

    // After all that, the members still get exactly their privileges.
    let other = spec_named("driftb");
    create_tenant(&server, &other).await.expect("create b");
    let outsider = format!("{}_admin_u", other.database_name);
    let password = login_member(&outsider, &format!("{}_admin", other.database_name)).await;
    as_owner(&database, "DROP TABLE public.probe, public.serial_probe").await;
    check_privilege_matrix(&database, (&outsider, &password)).await;

    delete_tenant(&server, &database).await.expect("delete");
    delete_tenant(&server, &other.database_name)
        .await
        .expect("delete b");
}

fn spec_named(prefix: &str) -> usualstore_tenancy::TenantSpec {
    spec(prefix, ServicePlan::Free)
}

#[tokio::test]
async fn drift_as_superuser() {
    drift_is_reported_and_repaired(superuser_server()).await;
}
