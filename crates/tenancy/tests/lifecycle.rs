//! Create, read, update and delete of tenants as a superuser operator, against real PostgreSQL.

mod common;

use common::*;
use tokio::task::JoinSet;
use usualstore_tenancy::{
    RoleNames, Server, ServicePlan, TenantError, TenantSpec, TenantState, create_tenant,
    delete_tenant, quote_ident, quote_literal, read_tenant, update_tenant,
};
use usualstore_testpg::{shared, unique_name};

#[tokio::test]
async fn create_then_read_reports_the_whole_tenant() {
    let server = superuser_server();
    let spec = spec("life", ServicePlan::Professional);
    let created = create_tenant(&server, &spec).await.expect("create");
    let read = read_tenant(&server, &spec.database_name)
        .await
        .expect("read")
        .expect("tenant exists");
    assert_eq!(created, read);

    let roles = RoleNames::for_database(&spec.database_name);
    assert_eq!(read.database_name, spec.database_name);
    assert_eq!(read.tenant_name.as_deref(), Some(spec.tenant_name.as_str()));
    assert_eq!(read.plan, Some(ServicePlan::Professional));
    assert_eq!(read.connection_limit, 25);
    assert_eq!(read.schema_version, usualstore_schema::latest_version());
    assert_eq!(read.owner_role.as_deref(), Some(roles.owner.as_str()));
    assert_eq!(read.admin_role.as_deref(), Some(roles.admin.as_str()));
    assert_eq!(
        read.developer_role.as_deref(),
        Some(roles.developer.as_str())
    );
    assert_eq!(read.customer_role.as_deref(), Some(roles.customer.as_str()));
    assert!(read.privileges_in_sync, "{:#?}", read.drift);
    assert_eq!(read.status, Some(TenantState::Ready));

    // The comment is the documented JSON, quotes and backslashes intact.
    let comment: String = superuser("postgres")
        .await
        .query_one(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            &[&spec.database_name],
        )
        .await
        .expect("comment")
        .get(0);
    let expected = format!(
        r#"{{"usualstore":1,"tenant_name":{},"plan":"professional","status":"ready"}}"#,
        serde_json::to_string(&spec.tenant_name).expect("json")
    );
    assert_eq!(comment, expected);

    // PUBLIC: no CONNECT, no TEMP.
    let public_acl: Vec<String> = superuser("postgres")
        .await
        .query(
            "SELECT a.privilege_type FROM pg_database d, \
             aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) a \
             WHERE d.datname = $1 AND a.grantee = 0",
            &[&spec.database_name],
        )
        .await
        .expect("acl")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(public_acl.is_empty(), "{public_acl:?}");

    // The group roles are NOLOGIN and marked as ours.
    let rows = superuser("postgres")
        .await
        .query(
            "SELECT rolname::text, rolcanlogin, shobj_description(oid, 'pg_authid') \
             FROM pg_roles WHERE starts_with(rolname::text, $1) ORDER BY 1",
            &[&format!("{}_", spec.database_name)],
        )
        .await
        .expect("roles");
    assert_eq!(rows.len(), 4);
    for row in rows {
        let name: String = row.get(0);
        let login: bool = row.get(1);
        let comment: String = row.get(2);
        assert!(!login, "{name} must be NOLOGIN");
        let kind = name.rsplit('_').next().expect("suffix");
        assert_eq!(
            comment,
            format!(
                r#"{{"usualstore":1,"database":"{}","kind":"{kind}"}}"#,
                spec.database_name
            )
        );
    }

    delete_tenant(&server, &spec.database_name)
        .await
        .expect("delete");
}

#[tokio::test]
async fn privilege_matrix_and_isolation() {
    let server = superuser_server();
    let a = spec("mata", ServicePlan::Starter);
    let b = spec("matb", ServicePlan::Free);
    create_tenant(&server, &a).await.expect("create a");
    create_tenant(&server, &b).await.expect("create b");

    let b_admin = format!("{}_admin_u", b.database_name);
    let b_password = login_member(&b_admin, &format!("{}_admin", b.database_name)).await;
    check_privilege_matrix(&a.database_name, (&b_admin, &b_password)).await;

    // The tables the test added after create are covered, so Read still finds nothing to fix.
    let read = read_tenant(&server, &a.database_name)
        .await
        .expect("read")
        .expect("exists");
    assert!(read.privileges_in_sync, "{:#?}", read.drift);

    // Tenant A's admin cannot reach tenant B either.
    let a_admin = format!("{}_admin_u", a.database_name);
    let refused = shared()
        .connect_as(&b.database_name, &a_admin, &format!("pw-{a_admin}"))
        .await
        .expect_err("isolation");
    assert_eq!(refused.code().map(|code| code.code()), Some(DENIED));

    for spec in [&a, &b] {
        delete_tenant(&server, &spec.database_name)
            .await
            .expect("delete");
    }
}

#[tokio::test]
async fn update_changes_plan_and_name_in_place() {
    let server = superuser_server();
    let mut spec = spec("upd", ServicePlan::Free);
    create_tenant(&server, &spec).await.expect("create");
    add_probe_tables(&spec.database_name).await;

    spec.plan = ServicePlan::Enterprise;
    spec.tenant_name = "Renamed Shop GmbH".to_owned();
    let updated = update_tenant(&server, &spec).await.expect("update");
    assert_eq!(updated.plan, Some(ServicePlan::Enterprise));
    assert_eq!(updated.connection_limit, 50);
    assert_eq!(updated.tenant_name.as_deref(), Some("Renamed Shop GmbH"));
    assert!(updated.privileges_in_sync, "{:#?}", updated.drift);

    let again = update_tenant(&server, &spec)
        .await
        .expect("idempotent update");
    assert_eq!(again, updated);

    let rows: i64 = superuser(&spec.database_name)
        .await
        .query_one("SELECT count(*) FROM public.probe", &[])
        .await
        .expect("rows")
        .get(0);
    assert_eq!(rows, 2, "data survives an update");

    delete_tenant(&server, &spec.database_name)
        .await
        .expect("delete");
}

#[tokio::test]
async fn delete_removes_everything_and_is_idempotent() {
    let server = superuser_server();
    let spec = spec("del", ServicePlan::Starter);
    create_tenant(&server, &spec).await.expect("create");
    // A member with an open session and a login user in a group must not block the delete.
    let user = format!("{}_admin_u", spec.database_name);
    let password = login_member(&user, &format!("{}_admin", spec.database_name)).await;
    let session = connect_as(&spec.database_name, &user, &password).await;

    delete_tenant(&server, &spec.database_name)
        .await
        .expect("delete");
    assert!(!database_exists(&spec.database_name).await);
    assert_eq!(
        roles_of(&spec.database_name).await,
        vec![user.clone()],
        "only the login user is left"
    );
    assert!(session.is_closed() || session.simple_query("SELECT 1").await.is_err());
    assert_eq!(
        read_tenant(&server, &spec.database_name)
            .await
            .expect("read"),
        None
    );

    delete_tenant(&server, &spec.database_name)
        .await
        .expect("second delete");
    assert!(matches!(
        update_tenant(&server, &spec).await,
        Err(TenantError::NotFound { .. })
    ));
}

#[tokio::test]
async fn delete_with_database_gone_drops_leftover_roles() {
    let server = superuser_server();
    let spec = spec("left", ServicePlan::Starter);
    create_tenant(&server, &spec).await.expect("create");
    superuser("postgres")
        .await
        .batch_execute(&format!(
            "DROP DATABASE {} WITH (FORCE)",
            quote_ident(&spec.database_name)
        ))
        .await
        .expect("drop database behind our back");
    assert_eq!(roles_of(&spec.database_name).await.len(), 4);
    delete_tenant(&server, &spec.database_name)
        .await
        .expect("delete");
    assert!(roles_of(&spec.database_name).await.is_empty());
}

#[tokio::test]
async fn foreign_database_is_never_touched() {
    let server = superuser_server();
    let database = unique_name("foreign");
    shared()
        .create_database(&database)
        .await
        .expect("foreign database");
    superuser(&database)
        .await
        .batch_execute("CREATE TABLE precious (id int); INSERT INTO precious VALUES (1)")
        .await
        .expect("data");
    let spec = TenantSpec {
        database_name: database.clone(),
        tenant_name: "Someone Else".to_owned(),
        plan: ServicePlan::Starter,
    };

    let error = create_tenant(&server, &spec)
        .await
        .expect_err("create refused");
    assert!(matches!(error, TenantError::NotManaged { .. }), "{error}");
    assert!(error.to_string().contains(&database));
    assert!(matches!(
        read_tenant(&server, &database).await,
        Err(TenantError::NotManaged { .. })
    ));
    assert!(matches!(
        update_tenant(&server, &spec).await,
        Err(TenantError::NotManaged { .. })
    ));
    assert!(matches!(
        delete_tenant(&server, &database).await,
        Err(TenantError::NotManaged { .. })
    ));

    assert!(database_exists(&database).await);
    assert!(
        roles_of(&database).await.is_empty(),
        "no roles were left behind"
    );
    let rows: i64 = superuser(&database)
        .await
        .query_one("SELECT count(*) FROM precious", &[])
        .await
        .expect("data intact")
        .get(0);
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn foreign_role_with_a_tenant_role_name_is_a_conflict() {
    let server = superuser_server();
    let spec = spec("conf", ServicePlan::Starter);
    let role = format!("{}_developer", spec.database_name);
    superuser("postgres")
        .await
        .batch_execute(&format!("CREATE ROLE {}", quote_ident(&role)))
        .await
        .expect("foreign role");

    let error = create_tenant(&server, &spec).await.expect_err("conflict");
    match &error {
        TenantError::RoleConflict { role: reported } => assert_eq!(reported, &role),
        other => panic!("expected RoleConflict, got {other}"),
    }
    assert!(!database_exists(&spec.database_name).await);
    assert_eq!(roles_of(&spec.database_name).await, vec![role.clone()]);

    // Delete leaves a role that is not ours alone.
    delete_tenant(&server, &spec.database_name)
        .await
        .expect("delete");
    assert_eq!(roles_of(&spec.database_name).await, vec![role]);
}

/// Sets up what a create that crashed after CREATE DATABASE leaves: marked roles, the
/// database, and (optionally) the provisioning comment; nothing else.
async fn half_created(spec: &TenantSpec, comment: Option<&str>) {
    let admin = superuser("postgres").await;
    for (kind, name) in RoleNames::for_database(&spec.database_name).iter() {
        let marker = format!(
            r#"{{"usualstore":1,"database":"{}","kind":"{kind}"}}"#,
            spec.database_name
        );
        admin
            .batch_execute(&format!(
                "CREATE ROLE {name} NOLOGIN; COMMENT ON ROLE {name} IS {}",
                quote_literal(&marker),
                name = quote_ident(name)
            ))
            .await
            .expect("role");
    }
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {} OWNER {} TEMPLATE template0",
            quote_ident(&spec.database_name),
            quote_ident(&format!("{}_owner", spec.database_name))
        ))
        .await
        .expect("database");
    if let Some(comment) = comment {
        admin
            .batch_execute(&format!(
                "COMMENT ON DATABASE {} IS {}",
                quote_ident(&spec.database_name),
                quote_literal(comment)
            ))
            .await
            .expect("comment");
    }
}

#[tokio::test]
async fn create_resumes_a_half_created_tenant() {
    let server = superuser_server();
    for comment in [
        Some(r#"{"usualstore":1,"tenant_name":"Half","plan":"free","status":"provisioning"}"#),
        None,
    ] {
        let spec = spec("half", ServicePlan::Starter);
        half_created(&spec, comment).await;
        let before = read_tenant(&server, &spec.database_name)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(before.status, Some(TenantState::Provisioning));
        assert!(!before.privileges_in_sync);

        let status = create_tenant(&server, &spec).await.expect("create resumes");
        assert_eq!(status.status, Some(TenantState::Ready));
        assert_eq!(status.plan, Some(ServicePlan::Starter));
        assert_eq!(status.connection_limit, 10);
        assert_eq!(status.schema_version, usualstore_schema::latest_version());
        assert!(status.privileges_in_sync, "{:#?}", status.drift);

        let error = create_tenant(&server, &spec).await.expect_err("ready now");
        assert!(
            matches!(error, TenantError::AlreadyExists { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("import"));
        delete_tenant(&server, &spec.database_name)
            .await
            .expect("delete");
    }
}

#[tokio::test]
async fn ten_tenants_created_concurrently() {
    let server = superuser_server();
    let specs: Vec<TenantSpec> = (0..10).map(|_| spec("par", ServicePlan::Free)).collect();
    let mut tasks = JoinSet::new();
    for spec in specs.clone() {
        let server = server.clone();
        tasks.spawn(async move { create_tenant(&server, &spec).await });
    }
    while let Some(joined) = tasks.join_next().await {
        let status = joined.expect("task").expect("create");
        assert!(status.privileges_in_sync, "{:#?}", status.drift);
    }
    let mut tasks = JoinSet::new();
    for spec in specs {
        let server = server.clone();
        tasks.spawn(async move { delete_tenant(&server, &spec.database_name).await });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("task").expect("delete");
    }
}

#[tokio::test]
async fn hostile_names_are_rejected_before_any_sql() {
    let server = superuser_server();
    let long = "a".repeat(64);
    for name in [
        "Robert'); DROP DATABASE postgres;--",
        "\"quoted\"",
        "a b",
        "Shop",
        long.as_str(),
        "postgres",
        "template1",
        "",
    ] {
        let spec = TenantSpec {
            database_name: name.to_owned(),
            tenant_name: "x".to_owned(),
            plan: ServicePlan::Free,
        };
        assert!(
            matches!(
                create_tenant(&server, &spec).await,
                Err(TenantError::InvalidName(_))
            ),
            "{name:?}"
        );
        assert!(matches!(
            read_tenant(&server, name).await,
            Err(TenantError::InvalidName(_))
        ));
        assert!(matches!(
            delete_tenant(&server, name).await,
            Err(TenantError::InvalidName(_))
        ));
    }
    assert!(database_exists("postgres").await);
}

#[tokio::test]
async fn connection_errors_never_show_the_password() {
    let secret = "hunter2-very-secret";
    let mut config = shared().config("postgres");
    config.password(secret);
    let server = Server::without_tls(config);
    let error = read_tenant(&server, "anything")
        .await
        .expect_err("wrong password");
    assert!(matches!(error, TenantError::Connect { .. }), "{error}");
    let text = format!("{error} {error:?} {server:?}");
    assert!(!text.contains(secret), "{text}");
    assert!(text.contains("password authentication failed"), "{text}");
    assert_eq!(error.sqlstate(), Some("28P01"));
}

#[tokio::test]
async fn quoting_round_trips_through_the_server() {
    let client = superuser("postgres").await;
    let values = [
        "plain",
        "O'Brien",
        r"back\slash \' and \\ two",
        r#"{"tenant_name":"a \"b\" \\ c"}"#,
        "Robert'); DROP DATABASE postgres;--",
        "ünïcödé ✓",
    ];
    for setting in ["on", "off"] {
        client
            .batch_execute(&format!("SET standard_conforming_strings = {setting}"))
            .await
            .expect("set");
        for value in values {
            let row = client
                .simple_query(&format!(
                    "SELECT {} AS v, 1 AS {}",
                    quote_literal(value),
                    quote_ident(value)
                ))
                .await
                .expect("round trip");
            let Some(row) = row.iter().find_map(|message| match message {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
                _ => None,
            }) else {
                panic!("no row for {value:?}");
            };
            assert_eq!(
                row.get(0),
                Some(value),
                "standard_conforming_strings={setting}"
            );
            assert_eq!(row.columns()[1].name(), value);
        }
    }
}
