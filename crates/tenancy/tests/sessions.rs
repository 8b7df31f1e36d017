//! How operations use sessions: `Server::share_reads` (concurrent reads of tenants and users go through one
//! maintenance session, reopened by itself after a restart) and `with_deferred_closes`.

use tokio::task::JoinSet;
use usualstore_tenancy::{
    Server, ServicePlan, TenantSpec, UserRole, UserSpec, create_tenant, create_user, read_tenant,
    read_user,
};
use usualstore_testpg::{Cluster, unique_name};

const APPLICATION: &str = "usualstore-shared-reads-test";

/// Sessions the server handle holds on the maintenance database.
async fn maintenance_sessions(cluster: &Cluster) -> i64 {
    cluster
        .connect("postgres")
        .await
        .expect("connect")
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = 'postgres'",
            &[&APPLICATION],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_share_one_session_that_survives_a_restart() {
    let cluster = Cluster::start().expect("private cluster");
    let mut config = cluster.config("postgres");
    config.application_name(APPLICATION);
    let server = Server::without_tls(config).share_reads();

    let tenant = TenantSpec {
        database_name: unique_name("shr"),
        tenant_name: "Shared Reads Ltd.".to_owned(),
        plan: ServicePlan::Starter,
    };
    create_tenant(&server, &tenant)
        .await
        .expect("create tenant");
    let user = UserSpec {
        database: tenant.database_name.clone(),
        username: unique_name("shr_user"),
        role: UserRole::Developer,
        password: "a password with spaces".to_owned(),
        email: None,
        connection_limit: -1,
    };
    create_user(&server, &user).await.expect("create user");
    // Writes open sessions of their own and close them.
    assert_eq!(maintenance_sessions(&cluster).await, 0);

    let mut reads = JoinSet::new();
    for _ in 0..20 {
        let (server, database, username, password) = (
            server.clone(),
            tenant.database_name.clone(),
            user.username.clone(),
            user.password.clone(),
        );
        reads.spawn(async move {
            let tenant = read_tenant(&server, &database).await.expect("read tenant");
            let user = read_user(
                &server,
                &database,
                &username,
                Some(usualstore_tenancy::PasswordCheck {
                    password: Some(&password),
                    fingerprint: None,
                }),
            )
            .await
            .expect("read user");
            (tenant, user)
        });
    }
    while let Some(result) = reads.join_next().await {
        let (tenant, user) = result.expect("read task");
        let tenant = tenant.expect("the tenant exists");
        assert!(tenant.privileges_in_sync, "{:?}", tenant.drift);
        let user = user.expect("the user exists");
        assert_eq!(user.role, Some(UserRole::Developer));
        assert_eq!(user.password_matches, Some(true));
    }
    assert_eq!(
        maintenance_sessions(&cluster).await,
        1,
        "forty reads, one shared session"
    );

    cluster.restart().expect("restart PostgreSQL");
    let mut status = None;
    // The old session's end is noticed by its connection task; a read right after the restart
    // may still find it open and fail once, as any read in flight during a restart does.
    for _ in 0..50 {
        match read_tenant(&server, &tenant.database_name).await {
            Ok(found) => {
                status = found;
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    assert!(
        status.is_some(),
        "reads work again after the restart, on a new shared session"
    );
    assert_eq!(maintenance_sessions(&cluster).await, 1);
    cluster.stop().expect("stop");
}

/// Inside `with_deferred_closes` a close returns at once; waiting on what it hands back ends the
/// sessions on the server's side.
#[tokio::test]
async fn deferred_closes_end_when_waited_for() {
    const DEFERRING: &str = "usualstore-deferred-closes-test";
    let cluster = usualstore_testpg::shared();
    let mut config = cluster.config("postgres");
    config.application_name(DEFERRING);
    let server = Server::without_tls(config);
    let ((), pending) = usualstore_tenancy::with_deferred_closes(async {
        for _ in 0..3 {
            let session = server.connect_maintenance().await.expect("connect");
            session.batch_execute("SELECT 1").await.expect("query");
            session.close().await;
        }
    })
    .await;
    assert_eq!(pending.len(), 3, "every close was handed to the caller");
    pending.wait().await;
    let open: i64 = cluster
        .connect("postgres")
        .await
        .expect("connect")
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&DEFERRING],
        )
        .await
        .expect("pg_stat_activity")
        .get(0);
    assert_eq!(open, 0, "the server saw every disconnect");
}
