//! The whole lifecycle again as a managed-PostgreSQL style operator: CREATEDB CREATEROLE, not a
//! superuser, not a member of the admin/developer/customer groups.

mod common;

use common::*;
use tokio::task::JoinSet;
use usualstore_tenancy::{
    ServicePlan, TenantError, TenantSpec, TenantState, create_tenant, delete_tenant, read_tenant,
    update_tenant,
};

#[tokio::test]
async fn managed_operator_create_read_update_delete() {
    let (server, operator) = managed_server();
    let mut a = spec("mgd", ServicePlan::Starter);
    let b = spec("mgdb", ServicePlan::Free);

    let created = create_tenant(&server, &a)
        .await
        .expect("create as managed operator");
    assert_eq!(created.status, Some(TenantState::Ready));
    assert_eq!(created.schema_version, usualstore_schema::latest_version());
    assert!(created.privileges_in_sync, "{:#?}", created.drift);
    create_tenant(&server, &b).await.expect("create b");

    // The operator belongs to the owner role only.
    let memberships: Vec<String> = superuser("postgres")
        .await
        .query(
            "SELECT g.rolname::text FROM pg_auth_members m \
             JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member \
             WHERE u.rolname = $1 ORDER BY 1",
            &[&operator],
        )
        .await
        .expect("memberships")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        memberships,
        vec![
            format!("{}_owner", a.database_name),
            format!("{}_owner", b.database_name)
        ]
    );

    let b_admin = format!("{}_admin_u", b.database_name);
    let b_password = login_member(&b_admin, &format!("{}_admin", b.database_name)).await;
    check_privilege_matrix(&a.database_name, (&b_admin, &b_password)).await;

    // Drift the operator can repair: privileges, limit, comment, a dropped group role.
    let roles = usualstore_tenancy::RoleNames::for_database(&a.database_name);
    superuser(&a.database_name)
        .await
        .batch_execute(&format!(
            "GRANT DELETE, TRUNCATE ON public.probe TO \"{dev}\"; \
             GRANT CONNECT ON DATABASE \"{db}\" TO PUBLIC; \
             ALTER DATABASE \"{db}\" CONNECTION LIMIT 77; \
             DROP OWNED BY \"{cust}\"",
            dev = roles.developer,
            db = a.database_name,
            cust = roles.customer
        ))
        .await
        .expect("drift");
    superuser("postgres")
        .await
        .batch_execute(&format!(
            "DROP ROLE \"{}\"; ALTER ROLE \"{}\" LOGIN",
            roles.customer, roles.admin
        ))
        .await
        .expect("drop customer role");
    let drifted = read_tenant(&server, &a.database_name)
        .await
        .expect("read")
        .expect("exists");
    assert!(!drifted.privileges_in_sync);
    assert_eq!(drifted.customer_role, None);
    assert_eq!(drifted.connection_limit, 77);

    a.plan = ServicePlan::Professional;
    a.tenant_name = "Managed Renamed".to_owned();
    let repaired = update_tenant(&server, &a)
        .await
        .expect("update as managed operator");
    assert!(repaired.privileges_in_sync, "{:#?}", repaired.drift);
    assert_eq!(repaired.connection_limit, 25);
    assert_eq!(repaired.customer_role, Some(roles.customer.clone()));
    assert_eq!(repaired.tenant_name.as_deref(), Some("Managed Renamed"));
    let rows: i64 = superuser(&a.database_name)
        .await
        .query_one("SELECT count(*) FROM public.probe", &[])
        .await
        .expect("rows")
        .get(0);
    assert!(rows >= 1, "data survives");

    for spec in [&a, &b] {
        delete_tenant(&server, &spec.database_name)
            .await
            .expect("delete as managed operator");
        assert!(!database_exists(&spec.database_name).await);
        let left: Vec<String> = roles_of(&spec.database_name)
            .await
            .into_iter()
            .filter(|role| !role.ends_with("_u"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        delete_tenant(&server, &spec.database_name)
            .await
            .expect("delete again");
    }
}

#[tokio::test]
async fn managed_operator_refuses_a_foreign_database() {
    let (server, _) = managed_server();
    let spec = spec("mgdf", ServicePlan::Free);
    usualstore_testpg::shared()
        .create_database(&spec.database_name)
        .await
        .expect("foreign database");
    assert!(matches!(
        create_tenant(&server, &spec).await,
        Err(TenantError::NotManaged { .. })
    ));
    assert!(database_exists(&spec.database_name).await);
    assert!(roles_of(&spec.database_name).await.is_empty());
}

#[tokio::test]
async fn managed_operator_creates_ten_tenants_concurrently() {
    let (server, _) = managed_server();
    let specs: Vec<TenantSpec> = (0..10).map(|_| spec("mpar", ServicePlan::Free)).collect();
    let mut tasks = JoinSet::new();
    for spec in specs.clone() {
        let server = server.clone();
        tasks.spawn(async move { create_tenant(&server, &spec).await });
    }
    while let Some(joined) = tasks.join_next().await {
        let status = joined.expect("task").expect("create");
        assert!(status.privileges_in_sync, "{:#?}", status.drift);
    }
    for spec in specs {
        delete_tenant(&server, &spec.database_name)
            .await
            .expect("delete");
    }
}

#[tokio::test]
async fn failed_create_drops_only_the_roles_it_made() {
    // An operator that may create roles but not databases fails at CREATE DATABASE.
    let pg = usualstore_testpg::shared();
    let operator = usualstore_testpg::unique_name("nodb");
    superuser("postgres")
        .await
        .batch_execute(&format!(
            "CREATE ROLE \"{operator}\" LOGIN CREATEROLE NOCREATEDB PASSWORD 'nodb-pw'"
        ))
        .await
        .expect("operator without CREATEDB");
    let mut config = pg.config("postgres");
    config.user(&operator).password("nodb-pw");
    let server = usualstore_tenancy::Server::without_tls(config);

    let spec = spec("undo", ServicePlan::Free);
    // One role already exists from an earlier attempt, marked as ours: it must survive.
    let kept = format!("{}_customer", spec.database_name);
    superuser("postgres")
        .await
        .batch_execute(&format!(
            "CREATE ROLE \"{kept}\" NOLOGIN; COMMENT ON ROLE \"{kept}\" IS \
             '{{\"usualstore\":1,\"database\":\"{}\",\"kind\":\"customer\"}}'",
            spec.database_name
        ))
        .await
        .expect("pre-existing role");

    let error = create_tenant(&server, &spec)
        .await
        .expect_err("no CREATEDB");
    assert_eq!(error.sqlstate(), Some(DENIED), "{error}");
    assert!(!database_exists(&spec.database_name).await);
    assert_eq!(roles_of(&spec.database_name).await, vec![kept]);
}
