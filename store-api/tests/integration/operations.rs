//! healthz, readyz, metrics and the OpenAPI document.

use serde_json::{Value, json};
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

/// Real answers of the documented operations have the shape the document gives them: every
/// required property present, no property the document does not name, and JSON types as
/// documented, following `$ref`, `allOf`, `oneOf` and arrays. A small check of our own instead
/// of a JSON Schema validator crate: the document uses only these few keywords.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_match_the_documented_schemas() {
    let shop = Shop::open("schemas").await;
    let app = &shop.app;
    let doc = app.get("/api/openapi.json", None).await.json;
    let admin = Some(shop.admin.as_str());

    let widget = shop.widget("Documented", 250, 5).await;
    let order = app
        .post(
            "/api/orders",
            admin,
            json!({
                "widget_id": widget,
                "quantity": 1,
                "customer": { "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com" },
                "payment": { "currency": "eur", "last_four": "4242" }
            }),
        )
        .await;
    let order_id = order.json["id"].as_i64().expect("order id");
    let customer_id = order.json["customer_id"].as_i64().expect("customer id");
    let user_id = shop.tenant.add_user("schema@example.com", "customer").await;
    let signed_in = app
        .post(
            "/api/authenticate",
            None,
            json!({ "email": "schema@example.com", "password": PASSWORD }),
        )
        .await;

    let answers = [
        ("/healthz", "get", app.get("/healthz", None).await),
        ("/readyz", "get", app.get("/readyz", None).await),
        ("/api/widgets", "get", app.get("/api/widgets", None).await),
        (
            "/api/widgets/{id}",
            "get",
            app.get(&format!("/api/widgets/{widget}"), None).await,
        ),
        (
            "/api/widgets/{id}",
            "get",
            app.get("/api/widgets/999999", None).await,
        ),
        (
            "/api/customers",
            "get",
            app.get("/api/customers", admin).await,
        ),
        (
            "/api/customers/{id}",
            "get",
            app.get(&format!("/api/customers/{customer_id}"), admin)
                .await,
        ),
        ("/api/orders", "post", order),
        ("/api/orders", "get", app.get("/api/orders", admin).await),
        (
            "/api/orders/{id}",
            "get",
            app.get(&format!("/api/orders/{order_id}"), admin).await,
        ),
        (
            "/api/orders/{id}/refund",
            "post",
            app.post(&format!("/api/orders/{order_id}/refund"), admin, json!({}))
                .await,
        ),
        (
            "/api/statuses",
            "get",
            app.get("/api/statuses", admin).await,
        ),
        (
            "/api/transaction-statuses",
            "get",
            app.get("/api/transaction-statuses", admin).await,
        ),
        ("/api/users", "get", app.get("/api/users", admin).await),
        (
            "/api/users/{id}",
            "get",
            app.get(&format!("/api/users/{user_id}"), admin).await,
        ),
        ("/api/authenticate", "post", signed_in),
        (
            "/api/users",
            "post",
            app.post("/api/users", admin, json!({})).await,
        ),
        (
            "/api/customers",
            "get",
            app.get("/api/customers", None).await,
        ),
    ];
    for (path, method, reply) in answers {
        let status = reply.status.to_string();
        let response = &doc["paths"][path][method]["responses"][status.as_str()];
        assert!(
            response.is_object(),
            "{method} {path} answered {status}, which is not documented: {}",
            reply.text
        );
        let schema = &response["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{method} {path} {status}: no schema");
        conforms(
            &doc,
            schema,
            &reply.json,
            &format!("{method} {path} {status}"),
        );
    }
    shop.app.stop().await;

    // A database without the schema: /readyz's 503 is its own body, as documented.
    let cluster = shared();
    let database = unique_name("bareschema");
    cluster.create_database(&database).await.unwrap();
    let dsn = format!(
        "postgres://postgres:{}@127.0.0.1:{}/{database}?sslmode=disable",
        cluster.superuser_password(),
        cluster.port()
    );
    let bare = App::start(config(&dsn, "Bare", &[])).await;
    let ready = bare.get("/readyz", None).await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    let schema = &doc["paths"]["/readyz"]["get"]["responses"]["503"]["content"]["application/json"]
        ["schema"];
    conforms(&doc, schema, &ready.json, "get /readyz 503");
    bare.stop().await;
}

/// `schema` with `$ref`s followed.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            let target = &doc["components"]["schemas"][name];
            assert!(target.is_object(), "dangling {reference}");
            resolve(doc, target)
        }
        None => schema,
    }
}

/// Every object schema `schema` stands for: itself and, through `allOf`, its parts.
fn parts<'a>(doc: &'a Value, schema: &'a Value, into: &mut Vec<&'a Value>) {
    let schema = resolve(doc, schema);
    into.push(schema);
    for part in schema["allOf"].as_array().into_iter().flatten() {
        parts(doc, part, into);
    }
}

/// Panics, naming the place, where `value` does not fit `schema`.
pub fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) {
    if let Err(mismatch) = check(doc, schema, value, at) {
        panic!("{mismatch}");
    }
}

fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(choices) = schema["oneOf"].as_array() {
        let mut mismatches = Vec::new();
        for choice in choices {
            match check(doc, choice, value, at) {
                Ok(()) => return Ok(()),
                Err(mismatch) => mismatches.push(mismatch),
            }
        }
        return Err(format!("{at}: fits no oneOf choice: {mismatches:?}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_i64() || number.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if !(types.is_empty()
        || types.contains(&actual)
        || (actual == "integer" && types.contains(&"number")))
    {
        return Err(format!(
            "{at}: {value} is {actual}, documented as {types:?}"
        ));
    }
    if let Some(values) = schema["enum"].as_array()
        && !values.contains(value)
    {
        return Err(format!("{at}: {value} is not among {values:?}"));
    }
    if let Value::Array(items) = value {
        for (index, item) in items.iter().enumerate() {
            check(doc, &schema["items"], item, &format!("{at}[{index}]"))?;
        }
    }
    let Value::Object(object) = value else {
        return Ok(());
    };
    let mut all = Vec::new();
    parts(doc, schema, &mut all);
    let mut properties = serde_json::Map::new();
    for part in &all {
        for name in part["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                return Err(format!("{at}: required {name} missing in {value}"));
            }
        }
        if let Some(own) = part["properties"].as_object() {
            properties.extend(own.clone());
        }
    }
    for (name, field) in object {
        let documented = properties
            .get(name)
            .ok_or_else(|| format!("{at}: {name} is not documented"))?;
        check(doc, documented, field, &format!("{at}.{name}"))?;
    }
    Ok(())
}
