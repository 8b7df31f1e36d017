//! The error shape, request limits and what the database's own permissions turn into.

use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_one_shape_and_the_right_status() {
    let shop = Shop::open("errors").await;
    let app = &shop.app;
    let auth = format!("Bearer {}", shop.admin);
    let send = |body: &'static [u8], content_type: &'static str| {
        let auth = auth.clone();
        async move {
            raw(
                app.addr,
                "POST",
                "/api/customers",
                &[("Authorization", &auth), ("Content-Type", content_type)],
                body,
            )
            .await
        }
    };

    let malformed = send(b"{\"first_name\": ", "application/json").await;
    malformed.expect_error(400, "malformed_json");
    assert_eq!(malformed.json["tenant"], shop.tenant.name.as_str());
    let request_id = malformed.json["error"]["request_id"].as_str().unwrap();
    assert_eq!(malformed.header("x-request-id"), Some(request_id));
    assert_eq!(malformed.header("content-type"), Some("application/json"));

    let missing = send(
        br#"{"first_name": "A", "last_name": "B"}"#,
        "application/json",
    )
    .await;
    missing.expect_error(400, "missing_field");
    assert_eq!(missing.field(), Some("email"));
    assert!(
        missing.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("email")
    );

    let wrong_type = send(
        br#"{"first_name": 5, "last_name": "B", "email": "a@b"}"#,
        "application/json",
    )
    .await;
    wrong_type.expect_error(400, "invalid_field");
    assert_eq!(wrong_type.field(), Some("first_name"));

    let unknown = send(
        br#"{"first_name": "A", "last_name": "B", "email": "a@b", "age": 3}"#,
        "application/json; charset=utf-8",
    )
    .await;
    unknown.expect_error(400, "unknown_field");
    assert_eq!(unknown.field(), Some("age"));

    send(br#"{"first_name": "A"}"#, "text/plain")
        .await
        .expect_error(415, "unsupported_media_type");

    let nested = app
        .post(
            "/api/orders",
            Some(&shop.admin),
            json!({ "widget_id": 1, "quantity": 1, "customer_id": 1, "payment": {} }),
        )
        .await;
    nested.expect_error(400, "missing_field");
    assert_eq!(nested.field(), Some("payment.currency"));

    // Over the 64 KiB limit: 413, and nothing is written.
    let big = format!(
        r#"{{"first_name": "{}", "last_name": "B", "email": "big@example.com"}}"#,
        "x".repeat(100 * 1024)
    );
    let too_large = raw(
        app.addr,
        "POST",
        "/api/customers",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        big.as_bytes(),
    )
    .await;
    too_large.expect_error(413, "payload_too_large");
    assert_eq!(shop.tenant.count("customers").await, 0);

    app.get("/api/nothing-here", None)
        .await
        .expect_error(404, "route_not_found");
    raw(app.addr, "PUT", "/api/widgets", &[], b"")
        .await
        .expect_error(405, "method_not_allowed");

    // A client's request id is kept (for tracing across services); a hostile one is replaced.
    let traced = raw(
        app.addr,
        "GET",
        "/api/widgets/1",
        &[("X-Request-Id", "client-abc.123")],
        b"",
    )
    .await;
    assert_eq!(traced.header("x-request-id"), Some("client-abc.123"));
    let hostile = raw(
        app.addr,
        "GET",
        "/api/widgets/1",
        &[("X-Request-Id", "a b\"c")],
        b"",
    )
    .await;
    assert_ne!(hostile.header("x-request-id"), Some("a b\"c"));
    shop.app.stop().await;
}

/// Instances connected with the read-only `customer` DSN or the no-DELETE `developer` DSN: the
/// database refuses what their role may not do, and the client gets a 403 saying why, never a 500.
/// Sign-in and bearer tokens are the application's login secrets, which only the admin group may
/// read or write: with either DSN the service serves the catalogue and nothing that needs them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_permissions_become_403s() {
    let shop = Shop::open("readonly").await;
    let widget = shop.widget("Thing", 500, 3).await;
    // sslmode=prefer: the TLS connector is in play; the test cluster has no TLS, so it falls
    // back to plain text as libpq does.
    let reader = App::start(config(
        &shop.tenant.dsn("customer", "prefer"),
        &shop.tenant.name,
        &[],
    ))
    .await;
    let developer = App::for_tenant(&shop.tenant, "developer").await;

    assert_eq!(reader.get("/readyz", None).await.status, 200);
    let tokens = shop.tenant.count("tokens").await;
    for app in [&reader, &developer] {
        let read = app.get(&format!("/api/widgets/{widget}"), None).await;
        assert_eq!(read.status, 200, "{}", read.text);
        let login = app
            .post(
                "/api/authenticate",
                None,
                json!({ "email": "admin@example.com", "password": PASSWORD }),
            )
            .await;
        login.expect_error(403, "database_permission_denied");
        assert!(
            login.json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("admin DSN"),
            "{}",
            login.text
        );
        // A token made through the admin instance is unreadable here.
        app.get("/api/customers", Some(&shop.admin))
            .await
            .expect_error(403, "database_permission_denied");
        app.post("/api/logout", Some(&shop.admin), json!({}))
            .await
            .expect_error(403, "database_permission_denied");
    }
    assert_eq!(shop.tenant.count("customers").await, 0);
    assert_eq!(
        shop.tenant.count("tokens").await,
        tokens,
        "no token was made"
    );
    reader.stop().await;
    developer.stop().await;
    shop.app.stop().await;
}
