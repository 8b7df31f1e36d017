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
/// database refuses, and the client gets a 403 saying why, never a 500.
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

    assert_eq!(reader.get("/readyz", None).await.status, 200);
    let read = reader.get(&format!("/api/widgets/{widget}"), None).await;
    assert_eq!(read.status, 200, "{}", read.text);
    // Signing in writes a token row: refused by the database.
    let login = reader
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
            .contains("read-only")
    );
    // Tokens made through a writing instance work here too: reads pass, writes are refused.
    assert_eq!(
        reader.get("/api/customers", Some(&shop.admin)).await.status,
        200
    );
    reader
        .post(
            "/api/customers",
            Some(&shop.admin),
            json!({ "first_name": "A", "last_name": "B", "email": "ro@example.com" }),
        )
        .await
        .expect_error(403, "database_permission_denied");
    reader
        .post(
            "/api/orders",
            Some(&shop.admin),
            json!({
                "widget_id": widget, "quantity": 1,
                "customer": { "first_name": "A", "last_name": "B", "email": "ro@example.com" },
                "payment": { "currency": "EUR" }
            }),
        )
        .await
        .expect_error(403, "database_permission_denied");
    reader
        .patch(
            &format!("/api/widgets/{widget}"),
            Some(&shop.admin),
            json!({ "price_cents": 1 }),
        )
        .await
        .expect_error(403, "database_permission_denied");
    assert_eq!(shop.tenant.count("customers").await, 0);
    assert_eq!(shop.tenant.count("orders").await, 0);

    // developer: writes, but no DELETE. Logout is an UPDATE, so it still works.
    let developer = App::for_tenant(&shop.tenant, "developer").await;
    let dev_token = developer.login("dev@example.com").await;
    developer
        .delete(&format!("/api/widgets/{widget}"), Some(&shop.admin))
        .await
        .expect_error(403, "database_permission_denied");
    let created = developer
        .post(
            "/api/customers",
            Some(&dev_token),
            json!({ "first_name": "D", "last_name": "E", "email": "dev-made@example.com" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        developer
            .post("/api/logout", Some(&dev_token), json!({}))
            .await
            .status,
        204
    );
    reader.stop().await;
    developer.stop().await;
    shop.app.stop().await;
}
