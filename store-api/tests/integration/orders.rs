//! Placing, reading, refunding and cancelling orders; atomicity under errors and concurrency.

use serde_json::{Value, json};

use crate::common::*;

fn order_for(widget_id: i64, quantity: i32, customer: Value) -> Value {
    let mut body = json!({
        "widget_id": widget_id,
        "quantity": quantity,
        "payment": {
            "currency": "usd", "last_four": "4242", "expiry_month": 12, "expiry_year": 2030,
            "payment_intent": "pi_123", "payment_method": "card", "bank_return_code": "ok"
        }
    });
    match customer {
        Value::Number(id) => body["customer_id"] = Value::Number(id),
        other => body["customer"] = other,
    }
    body
}

/// Rows in the tables an order writes, and the widget's stock.
async fn snapshot(tenant: &Tenant, widget_id: i64) -> (i64, i64, i64, i32) {
    let client = tenant.superuser().await;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM public.orders), \
                    (SELECT count(*) FROM public.transactions), \
                    (SELECT count(*) FROM public.customers), \
                    (SELECT inventory_level FROM public.widgets WHERE id = $1)",
            &[&widget_id],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_writes_payment_order_and_stock_together() {
    let shop = Shop::open("orders").await;
    let app = &shop.app;
    let widget = shop.widget("Sprocket", 1250, 5).await;

    // New customer by name and email.
    let ada = json!({ "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com" });
    let placed = app
        .post(
            "/api/orders",
            Some(&shop.developer),
            order_for(widget, 2, ada.clone()),
        )
        .await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    let order = &placed.json;
    let order_id = order["id"].as_i64().unwrap();
    assert_eq!(
        placed.header("location"),
        Some(format!("/api/orders/{order_id}").as_str())
    );
    assert_eq!(order["status"], "Cleared");
    assert_eq!(order["quantity"], 2);
    assert_eq!(order["amount_cents"], 2500);
    assert_eq!(order["widget"]["inventory_level"], 3);
    assert_eq!(order["customer"]["email"], "ada@example.com");
    assert_eq!(order["transaction"]["amount_cents"], 2500);
    assert_eq!(order["transaction"]["currency"], "USD");
    assert_eq!(order["transaction"]["last_four"], "4242");
    assert_eq!(order["transaction"]["status"], "Cleared");
    let customer_id = order["customer"]["id"].as_i64().unwrap();
    assert_eq!(snapshot(&shop.tenant, widget).await, (1, 1, 1, 3));

    // Same email in another case: the existing customer, not a new one.
    let again = json!({ "first_name": "A.", "last_name": "L.", "email": "ADA@example.com" });
    let second = app
        .post(
            "/api/orders",
            Some(&shop.admin),
            order_for(widget, 1, again),
        )
        .await;
    assert_eq!(second.status, 201, "{}", second.text);
    assert_eq!(second.json["customer"]["id"], customer_id);
    assert_eq!(second.json["customer"]["first_name"], "Ada");

    // By customer id, with the amount the client expects and a pending payment.
    let mut by_id = order_for(widget, 1, json!(customer_id));
    by_id["payment"]["amount_cents"] = json!(1250);
    by_id["payment"]["status"] = json!("pending");
    let third = app.post("/api/orders", Some(&shop.admin), by_id).await;
    assert_eq!(third.status, 201, "{}", third.text);
    assert_eq!(third.json["transaction"]["status"], "Pending");
    assert_eq!(snapshot(&shop.tenant, widget).await, (3, 3, 1, 1));

    // Failures write nothing at all.
    let before = snapshot(&shop.tenant, widget).await;
    let short = app
        .post(
            "/api/orders",
            Some(&shop.admin),
            order_for(widget, 2, json!(customer_id)),
        )
        .await;
    short.expect_error(409, "insufficient_stock");
    assert!(
        short.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 in stock")
    );
    let new_customer =
        json!({ "first_name": "New", "last_name": "Person", "email": "new@example.com" });
    app.post(
        "/api/orders",
        Some(&shop.admin),
        order_for(widget, 5, new_customer.clone()),
    )
    .await
    .expect_error(409, "insufficient_stock");
    let missing_widget = app
        .post(
            "/api/orders",
            Some(&shop.admin),
            order_for(999_999, 1, new_customer.clone()),
        )
        .await;
    missing_widget.expect_error(404, "not_found");
    assert_eq!(missing_widget.field(), Some("widget_id"));
    let missing_customer = app
        .post(
            "/api/orders",
            Some(&shop.admin),
            order_for(widget, 1, json!(999_999)),
        )
        .await;
    missing_customer.expect_error(404, "not_found");
    assert_eq!(missing_customer.field(), Some("customer_id"));
    let mut stale_price = order_for(widget, 1, new_customer.clone());
    stale_price["payment"]["amount_cents"] = json!(999);
    let mismatch = app
        .post("/api/orders", Some(&shop.admin), stale_price)
        .await;
    mismatch.expect_error(409, "amount_mismatch");
    assert_eq!(mismatch.field(), Some("payment.amount_cents"));
    let mut bad_card = order_for(widget, 1, new_customer.clone());
    bad_card["payment"]["last_four"] = json!("42");
    let card = app.post("/api/orders", Some(&shop.admin), bad_card).await;
    card.expect_error(400, "invalid_field");
    assert_eq!(card.field(), Some("payment.last_four"));
    let mut both = order_for(widget, 1, new_customer.clone());
    both["customer_id"] = json!(customer_id);
    app.post("/api/orders", Some(&shop.admin), both)
        .await
        .expect_error(400, "invalid_field");
    let no_customer =
        json!({ "widget_id": widget, "quantity": 1, "payment": { "currency": "EUR" } });
    let neither = app
        .post("/api/orders", Some(&shop.admin), no_customer)
        .await;
    neither.expect_error(400, "missing_field");
    assert_eq!(neither.field(), Some("customer_id"));
    app.post(
        "/api/orders",
        Some(&shop.admin),
        order_for(widget, 0, json!(customer_id)),
    )
    .await
    .expect_error(400, "invalid_field");
    app.post(
        "/api/orders",
        Some(&shop.customer),
        order_for(widget, 1, json!(customer_id)),
    )
    .await
    .expect_error(403, "forbidden");
    assert_eq!(snapshot(&shop.tenant, widget).await, before);

    // Reading.
    let detail = app
        .get(&format!("/api/orders/{order_id}"), Some(&shop.customer))
        .await;
    assert_eq!(detail.status, 200, "{}", detail.text);
    assert_eq!(detail.json["widget"]["name"], "Sprocket");
    assert_eq!(detail.json["customer"]["last_name"], "Lovelace");
    assert_eq!(detail.json["transaction"]["payment_intent"], "pi_123");
    assert_eq!(detail.json["transaction"]["expiry_year"], 2030);
    app.get("/api/orders/999999", Some(&shop.customer))
        .await
        .expect_error(404, "not_found");

    // Refund, then cancel another (which restocks).
    let refunded = app
        .post(
            &format!("/api/orders/{order_id}/refund"),
            Some(&shop.developer),
            json!({}),
        )
        .await;
    assert_eq!(refunded.status, 200, "{}", refunded.text);
    assert_eq!(refunded.json["status"], "Refunded");
    assert_eq!(refunded.json["transaction"]["status"], "Refunded");
    app.post(
        &format!("/api/orders/{order_id}/refund"),
        Some(&shop.developer),
        json!({}),
    )
    .await
    .expect_error(409, "invalid_status");
    app.post(
        &format!("/api/orders/{order_id}/cancel"),
        Some(&shop.customer),
        json!({}),
    )
    .await
    .expect_error(403, "forbidden");
    app.post("/api/orders/999999/refund", Some(&shop.admin), json!({}))
        .await
        .expect_error(404, "not_found");
    let second_id = second.json["id"].as_i64().unwrap();
    let cancelled = app
        .post(
            &format!("/api/orders/{second_id}/cancel"),
            Some(&shop.admin),
            json!({}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.json["status"], "Cancelled");
    assert_eq!(cancelled.json["widget"]["inventory_level"], 2);

    // Lists and filters.
    let all = app.get("/api/orders", Some(&shop.customer)).await;
    assert_eq!(all.json["total"], 3, "{}", all.text);
    assert_eq!(all.json["items"][0]["id"], third.json["id"], "newest first");
    let cleared = app
        .get("/api/orders?status=cleared", Some(&shop.customer))
        .await;
    assert_eq!(cleared.json["total"], 1, "{}", cleared.text);
    assert_eq!(cleared.json["items"][0]["status"], "Cleared");
    let of_ada = app
        .get(
            &format!("/api/orders?customer_id={customer_id}&status=Refunded"),
            Some(&shop.customer),
        )
        .await;
    assert_eq!(of_ada.json["total"], 1);
    assert_eq!(of_ada.json["items"][0]["id"], order_id);
    let unknown = app
        .get("/api/orders?status=Shipped", Some(&shop.customer))
        .await;
    unknown.expect_error(400, "invalid_field");
    assert_eq!(unknown.field(), Some("status"));
    shop.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_orders_never_oversell() {
    let shop = Shop::open("oversell").await;
    let widget = shop.widget("Limited", 100, 6).await;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..15 {
        let addr = shop.app.addr;
        let token = shop.admin.clone();
        tasks.spawn(async move {
            let customer = json!({ "first_name": "C", "last_name": format!("{n}"), "email": format!("c{}@example.com", n % 3) });
            call(
                addr,
                "POST",
                "/api/orders",
                Some(&token),
                Some(&order_for(widget, 1, customer)),
            )
            .await
        });
    }
    let mut created = 0;
    let mut refused = 0;
    let mut buyers = std::collections::BTreeSet::new();
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        match reply.status {
            201 => {
                created += 1;
                buyers.insert(reply.json["customer"]["email"].to_string());
            }
            409 => {
                reply.expect_error(409, "insufficient_stock");
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    assert_eq!((created, refused), (6, 9));
    // Three emails were used concurrently: one customer per email that got an order through (a
    // refused order takes its new customer with it), never two for one email.
    let buyers = i64::try_from(buyers.len()).unwrap();
    assert!((1..=3).contains(&buyers), "{buyers}");
    assert_eq!(snapshot(&shop.tenant, widget).await, (6, 6, buyers, 0));
    shop.app.stop().await;
}
