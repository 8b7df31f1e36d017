//! healthz, readyz, metrics and the OpenAPI document.

use serde_json::json;
use usualstore_testpg::{shared, unique_name};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_metrics_and_the_openapi_document() {
    let shop = Shop::open("ops").await;
    let app = &shop.app;

    let health = app.get("/healthz", None).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json["status"], "ok");
    assert_eq!(health.json["tenant"], shop.tenant.name.as_str());
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.json["status"], "ready");
    assert_eq!(
        ready.json["schema_version"],
        usualstore_schema::latest_version()
    );

    let widget = shop.widget("Metered", 100, 1).await;
    for _ in 0..3 {
        app.get(&format!("/api/widgets/{widget}"), None).await;
    }
    app.get("/api/widgets/999999", None).await;
    let metrics = app.get("/metrics", None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = &metrics.text;
    for expected in [
        r#"store_api_http_requests_total{method="GET",route="/api/widgets/{id}",status="200"} 3"#,
        r#"store_api_http_requests_total{method="GET",route="/api/widgets/{id}",status="404"} 1"#,
        r#"store_api_http_requests_total{method="POST",route="/api/widgets",status="201"} 1"#,
        // prometheus-client writes `le` before the series' own labels (order has no meaning).
        r#"store_api_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/api/widgets/{id}"} 4"#,
        r#"store_api_http_request_duration_seconds_count{method="GET",route="/api/widgets/{id}"} 4"#,
        "# TYPE store_api_http_request_duration_seconds histogram",
        "store_api_db_pool_max_connections 4",
        r#"store_api_db_pool_connections{state="in_use"}"#,
        "store_api_db_pool_waiting 0",
        r#"store_api_info{version=""#,
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(
        text.contains(r#"tenant="ops O'Brien & \"Sons\"""#),
        "tenant label escaped:\n{text}"
    );

    // Every documented operation is routed, and every other method on a documented path is
    // refused with 405: the document and the router describe the same API.
    let doc = app.get("/api/openapi.json", None).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.json["openapi"], "3.1.0");
    let paths = doc.json["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 18);
    let mut operations = 0;
    let mut ordered: Vec<_> = paths.iter().collect();
    // Logging out ends the token the other calls use: last.
    ordered.sort_by_key(|(path, _)| path.as_str() == "/api/logout");
    for (path, item) in ordered {
        let concrete = path.replace("{id}", "1");
        for method in ["get", "post", "patch", "delete", "put"] {
            let upper = method.to_uppercase();
            let body = matches!(method, "post" | "patch").then(|| json!({}));
            let reply = call(
                app.addr,
                &upper,
                &concrete,
                Some(&shop.admin),
                body.as_ref(),
            )
            .await;
            if item.get(method).is_some() {
                operations += 1;
                assert!(
                    !matches!(reply.code(), "route_not_found" | "method_not_allowed"),
                    "{upper} {path} is documented but not routed: {}",
                    reply.text
                );
                for (status, _) in item[method]["responses"].as_object().unwrap() {
                    assert!(status.len() == 3, "{path} {method}: {status}");
                }
            } else {
                assert_eq!(
                    reply.status, 405,
                    "{upper} {path} is routed but not documented: {}",
                    reply.text
                );
            }
        }
    }
    assert_eq!(operations, 26);
    shop.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_refuses_a_database_without_the_schema() {
    let cluster = shared();
    let database = unique_name("bare");
    cluster.create_database(&database).await.unwrap();
    let dsn = format!(
        "postgres://postgres:{}@127.0.0.1:{}/{database}?sslmode=disable",
        cluster.superuser_password(),
        cluster.port()
    );
    let app = App::start(config(&dsn, "Bare", &[])).await;
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.json["status"], "schema_outdated");
    assert_eq!(ready.json["schema_version"], 0);
    assert_eq!(app.get("/healthz", None).await.status, 200);
    app.stop().await;
}

/// With `OPS_ADDR`, `/metrics` and `/readyz` are served there only; the API's port keeps
/// `/healthz`, and its OpenAPI document no longer lists them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_endpoints_move_to_ops_addr() {
    let tenant = Tenant::create("opsaddr").await;
    let app = App::start(config(
        &tenant.dsn("admin", "disable"),
        &tenant.name,
        &[("OPS_ADDR", "127.0.0.1:0")],
    ))
    .await;
    let ops = app.ops_addr.expect("ops listener");
    for path in ["/metrics", "/readyz"] {
        app.get(path, None)
            .await
            .expect_error(404, "route_not_found");
        let reply = call(ops, "GET", path, None, None).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    }
    assert_eq!(app.get("/healthz", None).await.status, 200);
    assert_eq!(call(ops, "GET", "/healthz", None, None).await.status, 200);
    call(ops, "GET", "/api/widgets", None, None)
        .await
        .expect_error(404, "route_not_found");
    let doc = app.get("/api/openapi.json", None).await;
    let paths = doc.json["paths"].as_object().unwrap();
    assert!(!paths.contains_key("/metrics") && !paths.contains_key("/readyz"));
    assert!(paths.contains_key("/healthz"));
    app.stop().await;
}

/// Without `TENANT_NAME`, the name the provider recorded for the tenant is used; the variable
/// still overrides it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_name_comes_from_the_provider_unless_overridden() {
    let tenant = Tenant::create("named").await;
    let app = App::start(config(&tenant.dsn("customer", "disable"), "", &[])).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let health = app.get("/healthz", None).await;
        if health.json["tenant"] == tenant.name.as_str() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tenant name not read: {}",
            health.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let missing = app.get("/api/widgets/424242", None).await;
    assert_eq!(missing.json["tenant"], tenant.name.as_str());
    assert!(
        app.get("/metrics", None)
            .await
            .text
            .contains("store_api_info{version=")
    );
    app.stop().await;

    let renamed = App::start(config(
        &tenant.dsn("customer", "disable"),
        "Override Ltd.",
        &[],
    ))
    .await;
    assert_eq!(
        renamed.get("/healthz", None).await.json["tenant"],
        "Override Ltd."
    );
    renamed.stop().await;
}
