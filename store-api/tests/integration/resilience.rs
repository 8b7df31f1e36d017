//! The database going away, coming back, or being slow.

use std::time::{Duration, Instant};

use serde_json::json;
use usualstore_testpg::Cluster;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_gives_fast_503s_then_recovers_by_itself() {
    let cluster = tokio::task::spawn_blocking(Cluster::start)
        .await
        .unwrap()
        .expect("private cluster");
    let tenant = Tenant::create_on(&cluster, "restart").await;
    tenant.add_user("admin@example.com", "admin").await;
    let app = App::start(config(
        &tenant.dsn("admin", "disable"),
        &tenant.name,
        &[("REQUEST_TIMEOUT_SECS", "5")],
    ))
    .await;
    let token = app.login("admin@example.com").await;
    let widget = app
        .post(
            "/api/widgets",
            Some(&token),
            json!({ "name": "Sturdy", "price_cents": 1, "inventory_level": 100 }),
        )
        .await
        .json["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/widgets/{widget}");
    // Fill the pool with connections that the restart will break.
    for _ in 0..4 {
        assert_eq!(app.get(&path, None).await.status, 200);
    }

    let cluster = std::sync::Arc::new(cluster);
    let stopper = cluster.clone();
    tokio::task::spawn_blocking(move || stopper.stop())
        .await
        .unwrap()
        .expect("stop");

    for _ in 0..6 {
        let started = Instant::now();
        let reply = app.get(&path, None).await;
        reply.expect_error(503, "database_unavailable");
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a request hung for {:?} while the database was down",
            started.elapsed()
        );
    }
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json["status"], "database_unavailable");
    assert_eq!(app.get("/healthz", None).await.status, 200);
    app.get("/api/customers", Some(&token))
        .await
        .expect_error(503, "database_unavailable");

    let starter = cluster.clone();
    tokio::task::spawn_blocking(move || starter.restart())
        .await
        .unwrap()
        .expect("restart");

    // No restart of store-api, no manual step: the next requests succeed.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = app.get(&path, None).await;
        if reply.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "did not recover: {}", reply.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..8 {
        assert_eq!(app.get(&path, None).await.status, 200);
    }
    assert_eq!(app.get("/readyz", None).await.status, 200);
    let order = app
        .post(
            "/api/orders",
            Some(&token),
            json!({
                "widget_id": widget, "quantity": 1,
                "customer": { "first_name": "After", "last_name": "Restart", "email": "ar@example.com" },
                "payment": { "currency": "EUR" }
            }),
        )
        .await;
    assert_eq!(order.status, 201, "{}", order.text);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_never_blocks_startup_or_requests() {
    let port = closed_port();
    let app = App::start(config(
        &format!("host=127.0.0.1 port={port} user=u password=secret dbname=d sslmode=disable"),
        "Nowhere",
        &[],
    ))
    .await;
    assert_eq!(app.get("/healthz", None).await.status, 200);
    let started = Instant::now();
    app.get("/api/widgets/1", None)
        .await
        .expect_error(503, "database_unavailable");
    assert_eq!(app.get("/readyz", None).await.status, 503);
    assert!(started.elapsed() < Duration::from_secs(3));
    app.stop().await;

    // sslmode=require against a server without TLS: refused, reported as unavailable.
    let shop_tenant = Tenant::create("nossl").await;
    let strict = App::start(config(
        &shop_tenant.dsn("admin", "require"),
        &shop_tenant.name,
        &[],
    ))
    .await;
    strict
        .get("/api/widgets/1", None)
        .await
        .expect_error(503, "database_unavailable");
    strict.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_request_ends_at_the_timeout() {
    let shop = Shop::open("slow").await;
    let widget = shop.widget("Locked", 100, 5).await;
    let app = App::start(config(
        &shop.tenant.dsn("admin", "disable"),
        &shop.tenant.name,
        &[("REQUEST_TIMEOUT_SECS", "1")],
    ))
    .await;
    // Another session holds the widget's row lock: the order waits for it.
    let lock = shop.tenant.lock_widget(widget).await;
    let started = Instant::now();
    let reply = app
        .post(
            "/api/orders",
            Some(&shop.admin),
            json!({
                "widget_id": widget, "quantity": 1,
                "customer": { "first_name": "W", "last_name": "Ait", "email": "wait@example.com" },
                "payment": { "currency": "EUR" }
            }),
        )
        .await;
    assert_eq!(reply.status, 503, "{}", reply.text);
    assert!(matches!(reply.code(), "timeout"), "{}", reply.text);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    lock.release().await;
    // The abandoned statement did not leave anything behind or poison the pool.
    assert_eq!(shop.tenant.count("orders").await, 0);
    let widget_now = app.get(&format!("/api/widgets/{widget}"), None).await;
    assert_eq!(widget_now.json["inventory_level"], 5);
    app.stop().await;
    shop.app.stop().await;
}

/// Whether every store-api session that ran a statement after `since` was opened after `since`,
/// and how many ran one.
async fn sessions_used_after(tenant: &Tenant, since: &str) -> (bool, i64) {
    let row = tenant
        .superuser()
        .await
        .query_one(
            "SELECT coalesce(bool_and(backend_start > $1::text::timestamptz), true), count(*) \
             FROM pg_catalog.pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'store-api' \
               AND query_start > $1::text::timestamptz",
            &[&since],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Reads on the shared connection and a list on a connection of its own.
async fn read_a_little(app: &App, path: &str) {
    for _ in 0..4 {
        assert_eq!(app.get(path, None).await.status, 200);
        assert_eq!(app.get("/api/widgets", None).await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_replaced_once_they_reach_their_lifetime() {
    let tenant = Tenant::create("lifetime").await;
    let widget: i64 = tenant
        .superuser()
        .await
        .query_one(
            "INSERT INTO public.widgets (name, price_cents, inventory_level) \
             VALUES ('Aged', 1, 1) RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let path = format!("/api/widgets/{widget}");
    for (lifetime, replaced) in [("0.5", true), ("0", false)] {
        let app = App::start(config(
            &tenant.dsn("customer", "disable"),
            &tenant.name,
            &[("DB_MAX_LIFETIME_SECS", lifetime)],
        ))
        .await;
        read_a_little(&app, &path).await;
        let since: String = tenant
            .superuser()
            .await
            .query_one("SELECT now()::text", &[])
            .await
            .unwrap()
            .get(0);
        tokio::time::sleep(Duration::from_millis(700)).await;
        read_a_little(&app, &path).await;
        let (all_new, used) = sessions_used_after(&tenant, &since).await;
        assert!(used >= 2, "lifetime {lifetime}: {used} sessions used");
        assert_eq!(
            all_new, replaced,
            "lifetime {lifetime}: the sessions used after the wait were new: {all_new}"
        );
        app.stop().await;
    }
}
