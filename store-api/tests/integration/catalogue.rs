//! Widgets (public reads, admin writes), customers and reference data.

use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widgets_are_public_to_read_and_admin_only_to_change() {
    let shop = Shop::open("widgets").await;
    let app = &shop.app;

    let id = shop.widget("Bolt", 250, 7).await;
    let reply = app.get(&format!("/api/widgets/{id}"), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["name"], "Bolt");
    assert_eq!(reply.json["price_cents"], 250);
    assert_eq!(reply.json["inventory_level"], 7);
    assert_eq!(reply.json["description"], "");
    let created_at = reply.json["created_at"].as_str().unwrap();
    assert!(
        created_at.ends_with('Z') && created_at.len() == 27,
        "{created_at}"
    );

    for n in 0..4 {
        shop.widget(&format!("Nut {n}"), 10 + n, 1).await;
    }
    let page = app.get("/api/widgets?limit=2&offset=1", None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.json["total"], 5);
    assert_eq!(page.json["limit"], 2);
    assert_eq!(page.json["offset"], 1);
    assert_eq!(page.json["tenant"], shop.tenant.name.as_str());
    let names: Vec<&str> = page.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Nut 0", "Nut 1"]);
    app.get("/api/widgets?limit=0", None)
        .await
        .expect_error(400, "invalid_field");
    let bad = app.get("/api/widgets?limit=many", None).await;
    bad.expect_error(400, "invalid_query");
    assert_eq!(bad.field(), Some("limit"), "{}", bad.text);

    app.get("/api/widgets/999999", None)
        .await
        .expect_error(404, "not_found");
    let bad_id = app.get("/api/widgets/abc", None).await;
    bad_id.expect_error(400, "invalid_field");
    assert_eq!(bad_id.field(), Some("id"));

    // Writes: no token 401, wrong role 403, admin 201/200/204.
    let new = json!({ "name": "Gear", "price_cents": 1999 });
    app.post("/api/widgets", None, new.clone())
        .await
        .expect_error(401, "missing_token");
    app.post("/api/widgets", Some(&shop.developer), new.clone())
        .await
        .expect_error(403, "forbidden");
    let created = app.post("/api/widgets", Some(&shop.admin), new).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let gear = created.json["id"].as_i64().unwrap();
    assert_eq!(
        created.header("location"),
        Some(format!("/api/widgets/{gear}").as_str())
    );
    let negative = app
        .post(
            "/api/widgets",
            Some(&shop.admin),
            json!({ "name": "Bad", "price_cents": -1 }),
        )
        .await;
    negative.expect_error(400, "invalid_field");
    assert_eq!(negative.field(), Some("price_cents"));

    let changed = app
        .patch(
            &format!("/api/widgets/{gear}"),
            Some(&shop.admin),
            json!({ "price_cents": 2099, "description": "Steel" }),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.json["price_cents"], 2099);
    assert_eq!(changed.json["description"], "Steel");
    assert_eq!(changed.json["name"], "Gear");
    // Restocking is one atomic change: concurrent ones all count.
    let gear_path = format!("/api/widgets/{gear}");
    let restocks = (0..10).map(|_| {
        app.patch(
            &gear_path,
            Some(&shop.admin),
            json!({ "inventory_delta": 3 }),
        )
    });
    for restocked in futures_util::future::join_all(restocks).await {
        assert_eq!(restocked.status, 200, "{}", restocked.text);
    }
    let level = app.get(&format!("/api/widgets/{gear}"), None).await.json["inventory_level"]
        .as_i64()
        .unwrap();
    let created_level = created.json["inventory_level"].as_i64().unwrap();
    assert_eq!(level, created_level + 30, "concurrent restocks lost units");
    let too_many = app
        .patch(
            &format!("/api/widgets/{gear}"),
            Some(&shop.admin),
            json!({ "inventory_delta": -(level + 1) }),
        )
        .await;
    too_many.expect_error(400, "invalid_value");
    for body in [
        json!({ "inventory_delta": 1, "inventory_level": 4 }),
        json!({ "inventory_delta": 0 }),
        json!({ "inventory_delta": 2_000_000 }),
    ] {
        let refused = app
            .patch(&format!("/api/widgets/{gear}"), Some(&shop.admin), body)
            .await;
        refused.expect_error(400, "invalid_field");
        assert_eq!(refused.field(), Some("inventory_delta"));
    }
    app.patch(
        "/api/widgets/999999",
        Some(&shop.admin),
        json!({ "name": "Ghost" }),
    )
    .await
    .expect_error(404, "not_found");
    app.patch(
        &format!("/api/widgets/{gear}"),
        Some(&shop.customer),
        json!({ "name": "Mine" }),
    )
    .await
    .expect_error(403, "forbidden");

    app.delete(&format!("/api/widgets/{gear}"), Some(&shop.developer))
        .await
        .expect_error(403, "forbidden");
    let deleted = app
        .delete(&format!("/api/widgets/{gear}"), Some(&shop.admin))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    app.delete(&format!("/api/widgets/{gear}"), Some(&shop.admin))
        .await
        .expect_error(404, "not_found");

    // A widget with orders stays: orders keep their history.
    let order = app
        .post(
            "/api/orders",
            Some(&shop.admin),
            json!({
                "widget_id": id, "quantity": 1,
                "customer": { "first_name": "A", "last_name": "B", "email": "ab@example.com" },
                "payment": { "currency": "eur" }
            }),
        )
        .await;
    assert_eq!(order.status, 201, "{}", order.text);
    app.delete(&format!("/api/widgets/{id}"), Some(&shop.admin))
        .await
        .expect_error(409, "widget_has_orders");
    shop.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_are_listed_searched_and_added() {
    let shop = Shop::open("customers").await;
    let app = &shop.app;
    app.get("/api/customers", None)
        .await
        .expect_error(401, "missing_token");

    for (first, last, email) in [
        ("Ada", "Lovelace", "ada@example.com"),
        ("Grace", "Hopper", "grace@navy.example"),
        ("Alan", "Turing", "alan@example.com"),
        ("Percy", "100%_Sure", "percy@example.com"),
    ] {
        let reply = app
            .post(
                "/api/customers",
                Some(&shop.developer),
                json!({ "first_name": first, "last_name": last, "email": email }),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    app.post(
        "/api/customers",
        Some(&shop.customer),
        json!({ "first_name": "No", "last_name": "Way", "email": "no@example.com" }),
    )
    .await
    .expect_error(403, "forbidden");
    let duplicate = app
        .post(
            "/api/customers",
            Some(&shop.admin),
            json!({ "first_name": "Ada", "last_name": "Again", "email": "ADA@example.com" }),
        )
        .await;
    duplicate.expect_error(409, "duplicate");
    assert!(
        duplicate.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("email")
    );
    let bad_email = app
        .post(
            "/api/customers",
            Some(&shop.admin),
            json!({ "first_name": "X", "last_name": "Y", "email": "not-an-email" }),
        )
        .await;
    bad_email.expect_error(400, "invalid_field");
    assert_eq!(bad_email.field(), Some("email"));

    let all = app.get("/api/customers", Some(&shop.customer)).await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(all.json["total"], 4);

    let search = |q: &'static str| {
        let token = shop.customer.clone();
        async move {
            let reply = app
                .get(&format!("/api/customers?q={q}"), Some(&token))
                .await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            reply.json["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["email"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search("lovelace").await, ["ada@example.com"]);
    assert_eq!(search("ada%20love").await, ["ada@example.com"]);
    assert_eq!(search("NAVY").await, ["grace@navy.example"]);
    // % and _ are literal characters in a search, not wildcards.
    assert_eq!(search("100%25_").await, ["percy@example.com"]);
    assert_eq!(search("a%25a").await, Vec::<String>::new());

    let page = app
        .get("/api/customers?limit=1&offset=1", Some(&shop.admin))
        .await;
    assert_eq!(page.json["items"][0]["first_name"], "Grace");
    assert_eq!(page.json["total"], 4);

    let id = all.json["items"][0]["id"].as_i64().unwrap();
    let one = app
        .get(&format!("/api/customers/{id}"), Some(&shop.customer))
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json["email"], "ada@example.com");
    app.get("/api/customers/424242", Some(&shop.customer))
        .await
        .expect_error(404, "not_found");
    shop.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_data_lists_the_seeded_statuses() {
    let shop = Shop::open("reference").await;
    let statuses = shop.app.get("/api/statuses", Some(&shop.customer)).await;
    assert_eq!(statuses.status, 200, "{}", statuses.text);
    let names: Vec<&str> = statuses.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Cleared", "Refunded", "Cancelled"]);

    let payments = shop
        .app
        .get("/api/transaction-statuses", Some(&shop.customer))
        .await;
    let names: Vec<&str> = payments.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Pending",
            "Cleared",
            "Declined",
            "Refunded",
            "Partially refunded"
        ]
    );
    shop.app
        .get("/api/statuses", None)
        .await
        .expect_error(401, "missing_token");
    shop.app.stop().await;
}

/// `offset` is bounded; deeper pages follow `next` (passed back as `after`), which costs the
/// same on every page. The catalogue's total is counted at most once a second, but changes made
/// through the instance show at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_by_cursor_and_bound_offset() {
    let shop = Shop::open("paging").await;
    let app = &shop.app;
    for n in 0..7 {
        shop.widget(&format!("Part {n}"), 100 + n, 1).await;
    }
    let mut names = Vec::new();
    let mut path = "/api/widgets?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let page = app.get(&path, None).await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert_eq!(page.json["total"], 7);
        pages += 1;
        for item in page.json["items"].as_array().unwrap() {
            names.push(item["name"].as_str().unwrap().to_owned());
        }
        match page.json["next"].as_str() {
            Some(next) => path = format!("/api/widgets?limit=3&after={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..7).map(|n| format!("Part {n}")).collect();
    assert_eq!(names, expected);

    let deep = app.get("/api/widgets?offset=1001", None).await;
    deep.expect_error(400, "invalid_field");
    assert_eq!(deep.field(), Some("offset"));
    assert_eq!(app.get("/api/widgets?offset=1000", None).await.status, 200);
    let both = app.get("/api/widgets?offset=2&after=1", None).await;
    assert_eq!(both.field(), Some("after"), "{}", both.text);
    let garbage = app.get("/api/widgets?after=abc", None).await;
    garbage.expect_error(400, "invalid_field");
    assert_eq!(garbage.field(), Some("after"));

    // A widget added by another instance shows in the total within a second or so; one added
    // here, at once.
    shop.tenant
        .superuser()
        .await
        .execute(
            "INSERT INTO public.widgets (name, price_cents) VALUES ('Elsewhere', 1)",
            &[],
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while app.get("/api/widgets", None).await.json["total"] != 8 {
        assert!(
            std::time::Instant::now() < deadline,
            "the total never caught up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    shop.widget("Here", 1, 1).await;
    assert_eq!(app.get("/api/widgets", None).await.json["total"], 9);

    // Orders page newest first, by cursor as well.
    let customer = app
        .post(
            "/api/customers",
            Some(&shop.admin),
            json!({ "first_name": "Pat", "last_name": "Page", "email": "pat@example.com" }),
        )
        .await
        .json["id"]
        .as_i64()
        .unwrap();
    let widget = shop.widget("Stocked", 10, 100).await;
    let mut placed = Vec::new();
    for _ in 0..5 {
        let order = app
            .post(
                "/api/orders",
                Some(&shop.admin),
                json!({ "widget_id": widget, "quantity": 1, "customer_id": customer,
                        "payment": { "currency": "EUR" } }),
            )
            .await;
        assert_eq!(order.status, 201, "{}", order.text);
        placed.push(order.json["id"].as_i64().unwrap());
    }
    placed.reverse();
    let mut seen = Vec::new();
    let mut path = "/api/orders?limit=2".to_owned();
    loop {
        let page = app.get(&path, Some(&shop.customer)).await;
        assert_eq!(page.status, 200, "{}", page.text);
        seen.extend(
            page.json["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_i64().unwrap()),
        );
        match page.json["next"].as_str() {
            Some(next) => path = format!("/api/orders?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, placed);
    app.post(
        "/api/customers",
        Some(&shop.admin),
        json!({ "first_name": "Quinn", "last_name": "Page", "email": "quinn@example.com" }),
    )
    .await;
    let customers = app
        .get("/api/customers?limit=1", Some(&shop.customer))
        .await;
    assert_eq!(customers.json["total"], 2);
    let next = customers.json["next"].as_str().expect("a next page");
    assert_eq!(next, customers.json["items"][0]["id"].to_string());
    let last = app
        .get(
            &format!("/api/customers?limit=1&after={next}"),
            Some(&shop.customer),
        )
        .await;
    assert_eq!(last.json["items"][0]["first_name"], "Quinn");
    assert!(last.json["next"].is_null());
    shop.app.stop().await;
}

/// `?ids=` lists only those rows, so a page of orders needs one request for its widgets and one
/// for its customers; anything but 1 to 100 positive ids is refused, naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_by_ids() {
    let shop = Shop::open("ids").await;
    let app = &shop.app;
    let mut widgets = Vec::new();
    for name in ["Bolt", "Nut", "Washer"] {
        let reply = app
            .post(
                "/api/widgets",
                Some(&shop.admin),
                json!({ "name": name, "price_cents": 100, "inventory_level": 1 }),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        widgets.push(reply.json["id"].as_i64().expect("id"));
    }
    let mut customers = Vec::new();
    for (first, email) in [("Ada", "ada@example.com"), ("Alan", "alan@example.com")] {
        let reply = app
            .post(
                "/api/customers",
                Some(&shop.admin),
                json!({ "first_name": first, "last_name": "L", "email": email }),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        customers.push(reply.json["id"].as_i64().expect("id"));
    }

    let ids = |items: &serde_json::Value| -> Vec<i64> {
        items["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| item["id"].as_i64().expect("id"))
            .collect()
    };
    // A missing id is simply not there; the order is the list's (by id), whatever was asked.
    let path = format!("/api/widgets?ids={},{},999999", widgets[2], widgets[0]);
    let reply = app.get(&path, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(ids(&reply.json), [widgets[0], widgets[2]]);
    assert_eq!(reply.json["total"], 2);
    assert_eq!(reply.json["next"], serde_json::Value::Null);
    // Paged like any list.
    let path = format!("/api/widgets?ids={},{}&limit=1", widgets[0], widgets[1]);
    let first = app.get(&path, None).await;
    assert_eq!(ids(&first.json), [widgets[0]]);
    let next = first.json["next"].as_str().expect("next").to_owned();
    let second = app.get(&format!("{path}&after={next}"), None).await;
    assert_eq!(ids(&second.json), [widgets[1]]);

    let path = format!("/api/customers?ids={}", customers[1]);
    let reply = app.get(&path, Some(&shop.customer)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(ids(&reply.json), [customers[1]]);
    assert_eq!(reply.json["total"], 1);
    app.get(&path, None)
        .await
        .expect_error(401, "missing_token");

    let too_many = (1..=101)
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(",");
    for bad in ["", "1,x", "1,,2", "-3", "0", "1;2", too_many.as_str()] {
        for list in ["/api/widgets", "/api/customers"] {
            let reply = app
                .get(&format!("{list}?ids={bad}"), Some(&shop.admin))
                .await;
            reply.expect_error(400, "invalid_field");
            assert_eq!(reply.field(), Some("ids"), "{}", reply.text);
        }
    }
}

/// An image address the storefront would not show is refused when written, naming the field;
/// the ones it shows, and none, are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_images_are_addresses_the_storefront_shows() {
    let shop = Shop::open("images").await;
    let app = &shop.app;
    for bad in [
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example/a.png",
        "/\\evil.example/a.png",
        "http:///a.png",
        "images/relative.png",
        "https://img.example/a b.png",
    ] {
        let reply = app
            .post(
                "/api/widgets",
                Some(&shop.admin),
                json!({ "name": "Bad", "price_cents": 1, "image": bad }),
            )
            .await;
        reply.expect_error(400, "invalid_field");
        assert_eq!(reply.field(), Some("image"), "{bad}: {}", reply.text);
    }
    assert_eq!(shop.tenant.count("widgets").await, 0);

    let mut id = 0;
    for good in [
        "",
        "https://img.example/a.png?x=1",
        "http://img.example/b.png",
        "/images/c.png",
    ] {
        let reply = app
            .post(
                "/api/widgets",
                Some(&shop.admin),
                json!({ "name": "Good", "price_cents": 1, "image": good }),
            )
            .await;
        assert_eq!(reply.status, 201, "{good}: {}", reply.text);
        assert_eq!(reply.json["image"], good);
        id = reply.json["id"].as_i64().expect("id");
    }
    let reply = app
        .patch(
            &format!("/api/widgets/{id}"),
            Some(&shop.admin),
            json!({ "image": "javascript:alert(1)" }),
        )
        .await;
    reply.expect_error(400, "invalid_field");
    assert_eq!(reply.field(), Some("image"));
    let kept = app.get(&format!("/api/widgets/{id}"), None).await;
    assert_eq!(kept.json["image"], "/images/c.png");
}
