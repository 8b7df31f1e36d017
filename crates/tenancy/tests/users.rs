//! Login users: create, read, drift, repair, delete, conflicts and concurrency, against a real
//! server, as a superuser and as a managed-PostgreSQL style operator.

mod common;

use common::{DENIED, connect_as, managed_server, outcome, spec, superuser, superuser_server};
use tokio::task::JoinSet;
use usualstore_tenancy::{
    PasswordCheck, Server, ServicePlan, TenantError, UserRole, UserSpec, create_tenant,
    create_user, delete_tenant, delete_user, quote_ident, read_user, update_user,
    verifier_fingerprint,
};
use usualstore_testpg::{shared, unique_name};

fn user(database: &str, prefix: &str, role: UserRole) -> UserSpec {
    UserSpec {
        database: database.to_owned(),
        username: unique_name(prefix),
        role,
        password: "p a'ss\\word \"1\"".to_owned(),
        email: Some("someone@example.com".to_owned()),
        connection_limit: -1,
    }
}

async fn tenant(server: &Server, prefix: &str) -> String {
    let spec = spec(prefix, ServicePlan::Starter);
    create_tenant(server, &spec).await.expect("create tenant");
    spec.database_name
}

async fn role_exists(name: &str) -> bool {
    superuser("postgres")
        .await
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
            &[&name],
        )
        .await
        .expect("query")
        .get(0)
}

#[tokio::test]
async fn users_get_their_group_powers_and_nothing_else() {
    let server = superuser_server();
    let a = tenant(&server, "usra").await;
    let b = tenant(&server, "usrb").await;

    let mut users = Vec::new();
    for role in UserRole::ALL {
        let spec = user(&a, role.as_str(), role);
        let status = create_user(&server, &spec).await.expect("create user");
        assert_eq!(status.role, Some(role));
        assert!(status.privileges_in_sync(), "{:?}", status.drift);
        users.push(spec);
    }
    for spec in &users {
        let client = connect_as(&a, &spec.username, &spec.password).await;
        let email = format!("{}@example.com", spec.username);
        let insert = format!(
            "INSERT INTO public.customers (first_name, last_name, email) VALUES ('A', 'B', '{email}')"
        );
        let update =
            format!("UPDATE public.customers SET first_name = 'C' WHERE email = '{email}'");
        let delete = "DELETE FROM public.customers WHERE false".to_owned();
        let expected = match spec.role {
            UserRole::Admin => [None, None, None],
            UserRole::Developer => [None, None, Some(DENIED.to_owned())],
            UserRole::Customer => [
                Some(DENIED.to_owned()),
                Some(DENIED.to_owned()),
                Some(DENIED.to_owned()),
            ],
        };
        for (sql, expected) in [insert, update, delete].iter().zip(expected) {
            assert_eq!(
                outcome(&client, sql).await,
                expected,
                "{}: {sql}",
                spec.role
            );
        }
        assert_eq!(
            outcome(&client, "SELECT count(*) FROM public.widgets").await,
            None
        );
        assert_eq!(
            outcome(&client, "CREATE TABLE public.mine (id int)").await,
            Some(DENIED.to_owned()),
            "{} must not create tables",
            spec.role
        );
        // Isolation: the user cannot even connect to the other tenant.
        let refused = shared()
            .connect_as(&b, &spec.username, &spec.password)
            .await
            .expect_err("user of A connected to B");
        assert_eq!(refused.code().map(|c| c.code()), Some(DENIED));
    }

    for spec in &users {
        delete_user(&server, &a, &spec.username)
            .await
            .expect("delete user");
        assert!(!role_exists(&spec.username).await);
        // Deleting again is fine.
        delete_user(&server, &a, &spec.username)
            .await
            .expect("delete again");
    }
    for database in [&a, &b] {
        delete_tenant(&server, database)
            .await
            .expect("delete tenant");
    }
}

#[tokio::test]
async fn drift_is_seen_and_repaired() {
    let server = superuser_server();
    let a = tenant(&server, "udrift").await;
    let other = tenant(&server, "udrifto").await;
    let spec = user(&a, "drifter", UserRole::Developer);
    create_user(&server, &spec).await.expect("create");
    let read = read_user(
        &server,
        &a,
        &spec.username,
        Some(PasswordCheck {
            password: Some(&spec.password),
            fingerprint: None,
        }),
    )
    .await
    .expect("read")
    .expect("exists");
    assert_eq!(read.password_matches, Some(true));
    assert_eq!(read.email.as_deref(), Some("someone@example.com"));

    let su = superuser("postgres").await;
    let name = quote_ident(&spec.username);
    su.batch_execute(&format!(
        "ALTER ROLE {name} CREATEDB CONNECTION LIMIT 3 PASSWORD 'changed-elsewhere'; \
         REVOKE {dev} FROM {name}; GRANT {adm} TO {name}; GRANT {foreign} TO {name}",
        dev = quote_ident(&format!("{a}_developer")),
        adm = quote_ident(&format!("{a}_admin")),
        foreign = quote_ident(&format!("{other}_admin")),
    ))
    .await
    .expect("drift");
    let read = read_user(
        &server,
        &a,
        &spec.username,
        Some(PasswordCheck {
            password: Some(&spec.password),
            fingerprint: None,
        }),
    )
    .await
    .expect("read")
    .expect("exists");
    assert_eq!(read.password_matches, Some(false));
    assert_eq!(read.role, Some(UserRole::Admin));
    assert_eq!(read.connection_limit, 3);
    assert!(!read.privileges_in_sync());
    assert!(
        read.drift
            .iter()
            .any(|d| d.contains(&format!("{other}_admin"))),
        "{:?}",
        read.drift
    );
    assert!(
        read.drift.iter().any(|d| d.contains("NOCREATEDB")),
        "{:?}",
        read.drift
    );

    let repaired = update_user(&server, &spec, true).await.expect("repair");
    assert_eq!(repaired.role, Some(UserRole::Developer));
    assert_eq!(repaired.connection_limit, -1);
    assert!(repaired.privileges_in_sync(), "{:?}", repaired.drift);
    let read = read_user(
        &server,
        &a,
        &spec.username,
        Some(PasswordCheck {
            password: Some(&spec.password),
            fingerprint: None,
        }),
    )
    .await
    .expect("read")
    .expect("exists");
    assert_eq!(read.password_matches, Some(true));
    connect_as(&a, &spec.username, &spec.password).await;
    assert!(
        shared()
            .connect_as(&other, &spec.username, &spec.password)
            .await
            .is_err(),
        "repair left the foreign membership"
    );

    // Role switch and password rotation in place.
    let mut changed = spec.clone();
    changed.role = UserRole::Customer;
    changed.password = "rotated-password".to_owned();
    changed.email = None;
    let status = update_user(&server, &changed, true).await.expect("update");
    assert_eq!(status.role, Some(UserRole::Customer));
    assert_eq!(status.email, None);
    connect_as(&a, &changed.username, &changed.password).await;
    assert!(
        shared()
            .connect_as(&a, &spec.username, &spec.password)
            .await
            .is_err()
    );

    delete_user(&server, &a, &spec.username)
        .await
        .expect("delete");
    for database in [&a, &other] {
        delete_tenant(&server, database)
            .await
            .expect("delete tenant");
    }
}

#[tokio::test]
async fn foreign_roles_and_group_names_are_never_adopted() {
    let server = superuser_server();
    let a = tenant(&server, "uconf").await;
    let b = tenant(&server, "uconfb").await;

    let foreign = unique_name("handmade");
    superuser("postgres")
        .await
        .batch_execute(&format!("CREATE ROLE {} LOGIN", quote_ident(&foreign)))
        .await
        .expect("create foreign role");
    let mut spec = user(&a, "x", UserRole::Admin);
    spec.username = foreign.clone();
    let error = create_user(&server, &spec)
        .await
        .expect_err("foreign role adopted");
    assert!(
        matches!(error, TenantError::UserConflict { .. }),
        "{error:?}"
    );
    assert_eq!(
        read_user(&server, &a, &foreign, None).await.expect("read"),
        None
    );
    // Delete leaves a foreign role alone.
    delete_user(&server, &a, &foreign).await.expect("delete");
    assert!(role_exists(&foreign).await);

    // Another tenant's group role (or a future tenant's: the name alone is refused), and another
    // tenant's user.
    for name in [format!("{b}_admin"), "not_yet_a_tenant_owner".to_owned()] {
        spec.username = name;
        let error = create_user(&server, &spec)
            .await
            .expect_err("a group role's name accepted");
        assert!(
            matches!(
                error,
                TenantError::InvalidUserSetting {
                    setting: usualstore_tenancy::UserSetting::Username,
                    ..
                }
            ),
            "{error:?}"
        );
    }
    let b_user = user(&b, "buser", UserRole::Customer);
    create_user(&server, &b_user).await.expect("create b user");
    spec.username = b_user.username.clone();
    let error = create_user(&server, &spec)
        .await
        .expect_err("other tenant's user adopted");
    assert!(
        matches!(error, TenantError::UserConflict { .. }),
        "{error:?}"
    );
    assert_eq!(
        read_user(&server, &a, &b_user.username, None)
            .await
            .expect("read"),
        None
    );

    // This tenant's own group names are refused before any SQL.
    spec.username = format!("{a}_owner");
    let error = create_user(&server, &spec)
        .await
        .expect_err("own group name");
    assert!(
        matches!(
            error,
            TenantError::InvalidUserSetting {
                setting: usualstore_tenancy::UserSetting::Username,
                ..
            }
        ),
        "{error:?}"
    );

    // A finished user that no state recorded (a crash right after its commit) is taken over by
    // the next create, with that create's password and role.
    let mut twice = user(&a, "twice", UserRole::Admin);
    create_user(&server, &twice).await.expect("create");
    twice.password = "the password of the retry".to_owned();
    twice.role = UserRole::Customer;
    let adopted = create_user(&server, &twice)
        .await
        .expect("the retry adopts the finished user");
    assert_eq!(adopted.role, Some(UserRole::Customer));
    assert!(adopted.privileges_in_sync(), "{:?}", adopted.drift);
    let retried = connect_as(&a, &twice.username, &twice.password).await;
    assert_eq!(
        outcome(&retried, "DELETE FROM public.widgets WHERE false")
            .await
            .as_deref(),
        Some(DENIED),
        "a customer now, no longer an admin"
    );

    superuser("postgres")
        .await
        .batch_execute(&format!("DROP ROLE {}", quote_ident(&foreign)))
        .await
        .expect("drop foreign");
    delete_user(&server, &b, &b_user.username)
        .await
        .expect("delete");
    delete_user(&server, &a, &twice.username)
        .await
        .expect("delete");
    for database in [&a, &b] {
        delete_tenant(&server, database)
            .await
            .expect("delete tenant");
    }
}

#[tokio::test]
async fn half_created_user_is_completed_and_grants_elsewhere_do_not_block_delete() {
    let server = superuser_server();
    let a = tenant(&server, "uhalf").await;
    let spec = user(&a, "half", UserRole::Admin);
    // What a crash right after CREATE ROLE leaves: the role with the provisioning marker, no membership.
    superuser("postgres")
        .await
        .batch_execute(&format!(
            "CREATE ROLE {} LOGIN; COMMENT ON ROLE {} IS '{{\"usualstore\":1,\"database\":\"{a}\",\"kind\":\"user\",\"status\":\"provisioning\"}}'",
            quote_ident(&spec.username),
            quote_ident(&spec.username),
        ))
        .await
        .expect("half-created user");
    let read = read_user(&server, &a, &spec.username, None)
        .await
        .expect("read")
        .expect("exists");
    assert!(!read.privileges_in_sync());
    let status = create_user(&server, &spec).await.expect("create completes");
    assert!(status.privileges_in_sync(), "{:?}", status.drift);
    connect_as(&a, &spec.username, &spec.password).await;

    // Privileges granted directly, in the tenant database and on the maintenance database.
    let tenant_db = superuser(&a).await;
    tenant_db
        .batch_execute(&format!(
            "GRANT SELECT ON public.widgets TO {u}; GRANT CONNECT ON DATABASE postgres TO {u}",
            u = quote_ident(&spec.username)
        ))
        .await
        .expect("grants");
    delete_user(&server, &a, &spec.username)
        .await
        .expect("delete with grants");
    assert!(!role_exists(&spec.username).await);
    delete_tenant(&server, &a).await.expect("delete tenant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_users_in_parallel_on_one_tenant() {
    let server = superuser_server();
    let a = tenant(&server, "upar").await;
    let specs: Vec<UserSpec> = (0..20)
        .map(|i| user(&a, &format!("p{i}"), UserRole::ALL[i % 3]))
        .collect();
    for step in ["create", "update", "delete"] {
        let mut tasks = JoinSet::new();
        for spec in specs.clone() {
            let server = server.clone();
            tasks.spawn(async move {
                match step {
                    "create" => create_user(&server, &spec).await.map(drop),
                    "update" => {
                        // Every role moves to the next one, so switches cross in both directions.
                        let next = UserRole::ALL[(UserRole::ALL
                            .iter()
                            .position(|r| *r == spec.role)
                            .unwrap_or(0)
                            + 1)
                            % 3];
                        let changed = UserSpec { role: next, ..spec };
                        update_user(&server, &changed, true).await.map(drop)
                    }
                    _ => delete_user(&server, &spec.database, &spec.username).await,
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined
                .expect("task")
                .unwrap_or_else(|e| panic!("parallel {step}: {e}"));
        }
    }
    delete_tenant(&server, &a).await.expect("delete tenant");
}

#[tokio::test]
async fn managed_operator_manages_users() {
    let (server, _operator) = managed_server();
    let a = tenant(&server, "umgd").await;
    let spec = user(&a, "mgd", UserRole::Developer);
    create_user(&server, &spec)
        .await
        .expect("create as managed operator");
    let read = read_user(
        &server,
        &a,
        &spec.username,
        Some(PasswordCheck {
            password: Some(&spec.password),
            fingerprint: None,
        }),
    )
    .await
    .expect("read")
    .expect("exists");
    // A managed operator cannot read pg_authid, so the password is not checked.
    assert_eq!(read.password_matches, None);
    connect_as(&a, &spec.username, &spec.password).await;
    let mut changed = spec.clone();
    changed.role = UserRole::Admin;
    changed.password = "another-password".to_owned();
    update_user(&server, &changed, true).await.expect("update");
    connect_as(&a, &changed.username, &changed.password).await;
    superuser(&a)
        .await
        .batch_execute(&format!(
            "GRANT SELECT ON public.widgets TO {}",
            quote_ident(&spec.username)
        ))
        .await
        .expect("direct grant");
    delete_user(&server, &a, &spec.username)
        .await
        .expect("delete");
    assert!(!role_exists(&spec.username).await);
    delete_tenant(&server, &a).await.expect("delete tenant");
}

#[tokio::test]
async fn deleting_a_tenant_drops_its_users_and_only_its_users() {
    let server = superuser_server();
    let a = tenant(&server, "udel").await;
    let b = tenant(&server, "udelb").await;
    let a_user = user(&a, "gone", UserRole::Admin);
    let b_user = user(&b, "stays", UserRole::Admin);
    create_user(&server, &a_user).await.expect("create a user");
    create_user(&server, &b_user).await.expect("create b user");
    delete_tenant(&server, &a).await.expect("delete tenant a");
    assert!(
        !role_exists(&a_user.username).await,
        "a's user outlived its tenant"
    );
    assert!(
        role_exists(&b_user.username).await,
        "b's user was dropped with a"
    );
    connect_as(&b, &b_user.username, &b_user.password).await;
    delete_tenant(&server, &b).await.expect("delete tenant b");
    assert!(!role_exists(&b_user.username).await);
}

/// A read that knows the verifier it set needs no key stretching; a verifier set behind its back
/// reads as a changed password even without the password.
#[tokio::test]
async fn a_remembered_verifier_answers_without_the_password() {
    let server = superuser_server();
    let a = tenant(&server, "fprint").await;
    let spec = user(&a, "fprint", UserRole::Customer);
    let created = create_user(&server, &spec).await.expect("create");
    let verifier = created.verifier_set.expect("the create set a verifier");
    let fingerprint = verifier_fingerprint(&verifier);
    let check = PasswordCheck {
        password: None,
        fingerprint: Some(&fingerprint),
    };
    let read = read_user(&server, &a, &spec.username, Some(check))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read.password_matches, Some(true));

    superuser("postgres")
        .await
        .batch_execute(&format!(
            "ALTER ROLE {} PASSWORD 'changed by hand'",
            quote_ident(&spec.username)
        ))
        .await
        .expect("change the password");
    let read = read_user(&server, &a, &spec.username, Some(check))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read.password_matches, Some(false));
    delete_tenant(&server, &a).await.expect("delete tenant");
}
