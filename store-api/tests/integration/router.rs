//! Router mode: one process serving three tenants by host name, and what must never leak
//! between them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{App, PASSWORD, Reply, RunningBinary, Tenant, closed_port, raw, unique_dir};

/// `host → {dsn, name}`, as `terraform output -json store_api_tenants` prints it.
fn tenants_json(entries: &[(&str, &Tenant, &str)]) -> String {
    let mut map = serde_json::Map::new();
    for (host, tenant, kind) in entries {
        map.insert(
            (*host).to_owned(),
            json!({ "dsn": tenant.dsn(kind, "disable"), "name": tenant.name }),
        );
    }
    Value::Object(map).to_string()
}

struct Router {
    app: App,
    file: PathBuf,
}

impl Router {
    async fn start(file_text: &str, extra: &[(&str, &str)]) -> Router {
        let dir = unique_dir("router");
        let file = dir.join("tenants.json");
        std::fs::write(&file, file_text).expect("write tenants file");
        let path = file.to_string_lossy().into_owned();
        let mut env: Vec<(&str, &str)> = vec![
            ("TENANTS_FILE", &path),
            ("API_HOST", "127.0.0.1"),
            ("OPS_ADDR", "127.0.0.1:0"),
            ("DB_POOL_SIZE", "2"),
            ("DB_MAX_CONNECTIONS", "16"),
        ];
        env.extend_from_slice(extra);
        let map: std::collections::HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let config = store_api::Config::from_lookup(|name| map.get(name).cloned())
            .expect("valid router config");
        Router {
            app: App::start(config).await,
            file,
        }
    }

    async fn at(&self, host: &str, method: &str, path: &str, token: Option<&str>) -> Reply {
        self.send(host, method, path, token, None).await
    }

    async fn send(
        &self,
        host: &str,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let auth = token.map(|token| format!("Bearer {token}"));
        let mut headers = vec![("Host", host)];
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth.as_str()));
        }
        let bytes = match &body {
            Some(body) => {
                headers.push(("Content-Type", "application/json"));
                serde_json::to_vec(body).unwrap()
            }
            None => Vec::new(),
        };
        raw(self.app.addr, method, path, &headers, &bytes).await
    }

    async fn login(&self, host: &str, email: &str, password: &str) -> Reply {
        self.send(
            host,
            "POST",
            "/api/authenticate",
            None,
            Some(json!({ "email": email, "password": password })),
        )
        .await
    }

    async fn ops(&self, path: &str) -> Reply {
        crate::common::call(self.app.ops_addr.expect("ops"), "GET", path, None, None).await
    }

    fn state_of(&self, name: &str) -> store_api::AppState {
        self.app
            .registry
            .tenants()
            .into_iter()
            .map(|(state, _)| state)
            .find(|state| &**state.tenant.get() == name)
            .expect("tenant listed")
    }

    fn in_use(&self) -> usize {
        self.app.registry.process().budget.in_use()
    }

    /// Waits, at most `limit`, until every tenant has given its connections back.
    async fn wait_until_no_connections(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.in_use() > 0 {
            assert!(
                Instant::now() < deadline,
                "connections still open: {}",
                self.in_use()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn three() -> (Tenant, Tenant, Tenant) {
    (
        Tenant::create("ra").await,
        Tenant::create("rb").await,
        Tenant::create("rc").await,
    )
}

/// [`three`], each with an admin application user `email` (the same password everywhere).
async fn three_with_admin(email: &str) -> (Tenant, Tenant, Tenant) {
    let (a, b, c) = three().await;
    for tenant in [&a, &b, &c] {
        tenant.add_user(email, "admin").await;
    }
    (a, b, c)
}

/// A tenants file serving a, b and c as a.example, b.example and c.example with admin DSNs.
fn admin_hosts(a: &Tenant, b: &Tenant, c: &Tenant) -> String {
    tenants_json(&[
        ("a.example", a, "admin"),
        ("b.example", b, "admin"),
        ("c.example", c, "admin"),
    ])
}

/// Nothing a client of one host is told names another host, a database or a login.
fn assert_reveals_nothing(reply: &Reply, tenants: &[&Tenant]) {
    for tenant in tenants {
        for secret in [
            tenant.database.as_str(),
            tenant.password_of("admin"),
            tenant.password_of("customer"),
        ] {
            assert!(
                !reply.text.contains(secret),
                "leaked {secret}: {}",
                reply.text
            );
        }
    }
    for host in ["a.example", "b.example", "c.example", "dbname", "host="] {
        assert!(!reply.text.contains(host), "named {host}: {}", reply.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_host_serves_its_tenant_and_unknown_hosts_get_404() {
    let (a, b, c) = three().await;
    let file = tenants_json(&[
        ("a.example", &a, "admin"),
        ("www.a.example", &a, "admin"),
        ("b.example", &b, "customer"),
        ("c.example", &c, "admin"),
    ]);
    let router = Router::start(&file, &[]).await;
    // Pools open on a tenant's first request, not before.
    assert_eq!(router.in_use(), 0);
    for (host, tenant) in [
        ("a.example", &a),
        ("www.a.example", &a),
        ("A.Example", &a),
        ("a.example.", &a),
        ("a.example:8443", &a),
        ("b.example", &b),
        ("c.example", &c),
    ] {
        let reply = router.at(host, "GET", "/api/widgets", None).await;
        assert_eq!(reply.status, 200, "{host}: {}", reply.text);
        assert_eq!(reply.json["tenant"], tenant.name.as_str(), "{host}");
    }
    // Both names of a share one state: one pool, one throttle.
    assert_eq!(router.app.registry.tenants().len(), 3);

    for host in [
        "d.example",
        "a.example.evil",
        "evil.a.example",
        "a.example:x",
        "a.example..",
        "user@a.example",
        "",
    ] {
        let reply = router.at(host, "GET", "/api/widgets", None).await;
        reply.expect_error(404, "unknown_tenant");
        assert_eq!(reply.json["tenant"], Value::Null, "{}", reply.text);
        assert_reveals_nothing(&reply, &[&a, &b, &c]);
        let page = router.at(host, "GET", "/", None).await;
        page.expect_error(404, "unknown_tenant");
        // No tenant, so no storefront: the answer is still inert in a browser.
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
        assert!(
            page.header("content-security-policy")
                .is_some_and(|csp| csp.contains("default-src 'none'")),
            "{:?}",
            page.headers
        );
    }
    // Two Host headers, or an absolute URI naming another host, name no tenant.
    let twice = raw(
        router.app.addr,
        "GET",
        "/api/widgets",
        &[("Host", "a.example\r\nHost: b.example")],
        b"",
    )
    .await;
    assert_ne!(twice.status, 200, "{}", twice.text);
    let absolute = raw(
        router.app.addr,
        "GET",
        "http://b.example/api/widgets",
        &[("Host", "a.example")],
        b"",
    )
    .await;
    absolute.expect_error(404, "unknown_tenant");

    // X-Forwarded-Host from a peer that is not a trusted proxy is ignored.
    let forwarded = raw(
        router.app.addr,
        "GET",
        "/api/widgets",
        &[("Host", "a.example"), ("X-Forwarded-Host", "b.example")],
        b"",
    )
    .await;
    assert_eq!(forwarded.json["tenant"], a.name.as_str());

    // The storefront answers per host, with the host's tenant's name.
    // The back office too: its page names the host's tenant, and it calls the API of its own
    // origin, which is that tenant's.
    let admin_b = router.at("b.example", "GET", "/admin", None).await;
    assert_eq!(admin_b.status, 200);
    assert!(admin_b.text.contains("rb O&#39;Brien") || admin_b.text.contains("rb O&#x27;Brien"));
    assert!(!admin_b.text.contains("ra O&"));
    let page_a = router.at("a.example", "GET", "/", None).await;
    let page_b = router.at("b.example", "GET", "/", None).await;
    assert_eq!((page_a.status, page_b.status), (200, 200));
    assert!(page_a.text.contains("ra O&#39;Brien") || page_a.text.contains("ra O&#x27;Brien"));
    assert!(page_b.text.contains("rb O&#39;Brien") || page_b.text.contains("rb O&#x27;Brien"));
    // Liveness answers on any host (load balancers probe by address), naming no tenant.
    let health = router.at("10.0.0.1", "GET", "/healthz", None).await;
    assert_eq!(health.status, 200);
    assert_reveals_nothing(&health, &[&a, &b, &c]);
    // The process's own endpoints are on the operations port only.
    router
        .at("a.example", "GET", "/metrics", None)
        .await
        .expect_error(404, "route_not_found");
    let c_used = router.in_use();
    assert!(c_used >= 3, "three pools opened: {c_used}");
    router.app.stop().await;

    // Behind a trusted proxy, its X-Forwarded-Host names the tenant.
    let proxied = Router::start(&file, &[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    let forwarded = raw(
        proxied.app.addr,
        "GET",
        "/api/widgets",
        &[
            ("Host", "lb.internal"),
            ("X-Forwarded-Host", "spoofed.example, B.example"),
        ],
        b"",
    )
    .await;
    assert_eq!(forwarded.status, 200, "{}", forwarded.text);
    assert_eq!(forwarded.json["tenant"], b.name.as_str());
    proxied.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_throttles_pools_and_metrics_belong_to_one_tenant() {
    // The same e-mail has an account in every tenant, with the same password.
    let (a, b, c) = three_with_admin("same@example.com").await;
    let file = admin_hosts(&a, &b, &c);
    let router = Router::start(&file, &[("SIGNIN_FAILURES_PER_EMAIL", "3")]).await;

    let login = router
        .login("a.example", "same@example.com", PASSWORD)
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.json["tenant"], a.name.as_str());
    let token_a = login.json["token"].as_str().unwrap().to_owned();
    assert_eq!(
        router
            .at("a.example", "GET", "/api/users", Some(&token_a))
            .await
            .status,
        200
    );
    // A's token means nothing to B or C, though the same e-mail is an admin there, and even
    // right after A remembered it in its cache.
    for host in ["b.example", "c.example"] {
        let reply = router.at(host, "GET", "/api/users", Some(&token_a)).await;
        reply.expect_error(401, "invalid_token");
        assert_reveals_nothing(&reply, &[&a]);
    }

    // Failed sign-ins at B lock the e-mail at B only.
    for _ in 0..3 {
        router
            .login("b.example", "same@example.com", "wrong password")
            .await
            .expect_error(401, "invalid_credentials");
    }
    router
        .login("b.example", "same@example.com", PASSWORD)
        .await
        .expect_error(429, "too_many_attempts");
    let at_c = router
        .login("c.example", "same@example.com", PASSWORD)
        .await;
    assert_eq!(at_c.status, 200, "{}", at_c.text);
    let again_a = router
        .login("a.example", "same@example.com", PASSWORD)
        .await;
    assert_eq!(again_a.status, 200, "{}", again_a.text);

    // One pool per tenant, each connected to its own database only.
    let states: Vec<_> = [&a, &b, &c]
        .iter()
        .map(|tenant| router.state_of(&tenant.name))
        .collect();
    assert!(!states[0].same(&states[1]) && !states[1].same(&states[2]));
    for (state, tenant) in states.iter().zip([&a, &b, &c]) {
        let client = state.pool.get().await.expect("connection");
        let database: String = client
            .query_one("SELECT current_database()", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(database, tenant.database);
    }

    // Metrics carry the tenant on every per-tenant series; the 429 is B's alone.
    let metrics = router.ops("/metrics").await;
    assert_eq!(metrics.status, 200);
    let a_label = format!(
        "tenant=\"{}\",host=\"a.example\"",
        a.name.replace('"', "\\\"")
    );
    let b_label = format!(
        "tenant=\"{}\",host=\"b.example\"",
        b.name.replace('"', "\\\"")
    );
    assert!(
        metrics.text.contains(&format!(
            "store_api_http_requests_total{{{b_label},method=\"POST\",route=\"/api/authenticate\",status=\"429\"}} 1"
        )),
        "{}",
        metrics.text
    );
    assert!(
        !metrics.text.contains(&format!(
            "store_api_http_requests_total{{{a_label},method=\"POST\",route=\"/api/authenticate\",status=\"429\"}}"
        )),
        "{}",
        metrics.text
    );
    assert!(
        metrics
            .text
            .contains(&format!("store_api_db_pool_max_connections{{{a_label}}} 2"))
    );
    assert!(metrics.text.contains("store_api_db_max_connections 16\n"));
    assert!(metrics.text.contains("store_api_db_evictions_total 0\n"));
    for tenant in [&a, &b, &c] {
        assert!(!metrics.text.contains(tenant.database.as_str()));
        assert!(!metrics.text.contains(tenant.password_of("admin")));
    }

    // Readiness per tenant, without a DSN in sight.
    let ready = router.ops("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.json["counts"]["ready"], 3, "{}", ready.text);
    // A router's /readyz is on OPS_ADDR, so its served document leaves it out; the full one
    // describes it.
    let doc: Value = serde_json::from_str(store_api::openapi::document(false)).unwrap();
    let schema = &doc["paths"]["/readyz"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    crate::operations::conforms(&doc, schema, &ready.json, "router /readyz");
    for tenant in [&a, &b, &c] {
        assert!(!ready.text.contains(tenant.database.as_str()));
        assert!(!ready.text.contains(tenant.password_of("admin")));
    }
    assert!(!ready.text.contains("dbname") && !ready.text.contains(&a.port.to_string()));
    router.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_budget_is_shared_and_a_down_tenant_slows_no_other() {
    let (a, b, c) = three().await;
    // D's server refuses connections; E's accepts them and never answers.
    let down = Tenant::create("rd").await;
    let refused_port = closed_port();
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            sockets.push(socket);
        }
    });
    let mut map: serde_json::Map<String, Value> = serde_json::from_str(&tenants_json(&[
        ("a.example", &a, "admin"),
        ("b.example", &b, "admin"),
        ("c.example", &c, "admin"),
    ]))
    .unwrap();
    let dsn_at = |port: u16| {
        down.dsn("admin", "disable")
            .replace(&format!("port='{}'", down.port), &format!("port='{port}'"))
            + " connect_timeout=2"
    };
    map.insert(
        "d.example".into(),
        json!({ "dsn": dsn_at(refused_port), "name": "Down" }),
    );
    map.insert(
        "e.example".into(),
        json!({ "dsn": dsn_at(silent_port), "name": "Silent" }),
    );
    let router = Router::start(
        &Value::Object(map).to_string(),
        &[("DB_MAX_CONNECTIONS", "4"), ("DB_SHARED_CONNECTIONS", "0")],
    )
    .await;

    // A and B take two connections each: the budget is full.
    for host in ["a.example", "b.example"] {
        let replies = futures_util::future::join_all(
            (0..6).map(|_| router.at(host, "GET", "/api/widgets", None)),
        )
        .await;
        assert!(replies.iter().all(|reply| reply.status == 200));
    }
    assert!(router.in_use() <= 4);
    // C's request closes the idle connections of the least recently used tenant (A), not B's.
    let reply = router.at("c.example", "GET", "/api/widgets", None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(router.in_use() <= 4, "{}", router.in_use());
    assert_eq!(router.state_of(&a.name).pool.status().size, 0);
    assert!(router.app.registry.process().budget.evicted() >= 1);
    assert!(router.state_of(&b.name).pool.status().size > 0);

    // A refused connection is a 503 at once.
    let started = Instant::now();
    let refused = router.at("d.example", "GET", "/api/widgets", None).await;
    refused.expect_error(503, "database_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_reveals_nothing(&refused, &[&a, &b, &c, &down]);

    // While E's requests wait for a server that never answers, the others are served at once.
    let silent_requests = tokio::spawn({
        let addr = router.app.addr;
        async move {
            futures_util::future::join_all(
                (0..4).map(|_| raw(addr, "GET", "/api/widgets", &[("Host", "e.example")], b"")),
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    for host in ["a.example", "b.example", "c.example"] {
        let started = Instant::now();
        let reply = router.at(host, "GET", "/api/widgets", None).await;
        assert_eq!(reply.status, 200, "{host}: {}", reply.text);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{host} waited {:?} behind a silent tenant",
            started.elapsed()
        );
    }
    for reply in silent_requests.await.unwrap() {
        assert_eq!(reply.status, 503, "{}", reply.text);
    }
    assert!(router.in_use() <= 4);
    router.app.stop().await;
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_fit_the_plan_and_idle_tenants_give_their_connections_back() {
    let (a, b, _) = three().await;
    // B's plan allows 3 connections: its pool, opened lazily, shrinks to that, less the one
    // its token listener would need (an admin login, tokens remembered).
    b.superuser()
        .await
        .batch_execute(&format!(
            "ALTER DATABASE {} CONNECTION LIMIT 3",
            usualstore_tenancy::quote_ident(&b.database)
        ))
        .await
        .unwrap();
    let file = tenants_json(&[("a.example", &a, "admin"), ("b.example", &b, "admin")]);
    let router = Router::start(
        &file,
        &[("DB_IDLE_TIMEOUT_SECS", "1"), ("DB_POOL_SIZE", "4")],
    )
    .await;
    assert_eq!(router.state_of(&b.name).pool.status().max_size, 4);
    assert_eq!(
        router
            .at("b.example", "GET", "/api/widgets", None)
            .await
            .status,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while router.state_of(&b.name).pool.status().max_size != 2 {
        assert!(
            Instant::now() < deadline,
            "B's pool was not fitted to its plan"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(router.state_of(&a.name).pool.status().max_size, 4);
    assert_eq!(
        router
            .at("a.example", "GET", "/api/widgets/1", None)
            .await
            .status,
        404
    );
    assert!(router.in_use() >= 1);
    router
        .wait_until_no_connections(Duration::from_secs(10))
        .await;
    // And the tenant is served again on its next request.
    assert_eq!(
        router
            .at("a.example", "GET", "/api/widgets", None)
            .await
            .status,
        200
    );
    router.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_listeners_hold_places_in_the_budget_and_close_with_their_tenant() {
    let (a, b, c) = three_with_admin("admin@example.com").await;
    let file = admin_hosts(&a, &b, &c);
    // Room for one tenant's pool (2) and listener, and a little of another's.
    let router = Router::start(
        &file,
        &[("DB_MAX_CONNECTIONS", "4"), ("DB_IDLE_TIMEOUT_SECS", "2")],
    )
    .await;
    let budget = router.app.registry.process().budget.clone();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let watch = tokio::spawn({
        let (budget, peak) = (budget.clone(), peak.clone());
        async move {
            loop {
                peak.fetch_max(budget.in_use(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    let logins: Vec<String> = [&a, &b, &c]
        .iter()
        .map(|tenant| tenant.login_of("admin").to_owned())
        .collect();
    let superuser = a.superuser().await;
    // The server's own count of the three logins' sessions settles within the budget.
    let sessions_within_budget = || async {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let sessions: i64 = superuser
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = ANY($1)",
                    &[&logins],
                )
                .await
                .unwrap()
                .get(0);
            if sessions <= 4 {
                return sessions;
            }
            assert!(Instant::now() < deadline, "{sessions} sessions open");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };

    // Each tenant in turn signs in and uses its token: its listener takes a place, closing the
    // least recently used tenant's connections (listener included) when none is left.
    for round in 0..2 {
        for (host, tenant) in [("a.example", &a), ("b.example", &b), ("c.example", &c)] {
            let token = router.login(host, "admin@example.com", PASSWORD).await.json["token"]
                .as_str()
                .expect("token")
                .to_owned();
            for _ in 0..3 {
                let reply = router.at(host, "GET", "/api/users", Some(&token)).await;
                assert_eq!(reply.status, 200, "{host}: {}", reply.text);
            }
            let state = router.state_of(&tenant.name);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !state.listener.is_listening() {
                assert!(
                    Instant::now() < deadline,
                    "{host} never listened (round {round})"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(router.in_use() <= 4, "{}", router.in_use());
            sessions_within_budget().await;
        }
    }
    assert!(
        peak.load(std::sync::atomic::Ordering::Relaxed) <= 4,
        "the budget was exceeded"
    );
    assert!(budget.evicted() >= 1, "no tenant had to make room");

    // Idle tenants give every connection back, their listeners included.
    router
        .wait_until_no_connections(Duration::from_secs(15))
        .await;
    for tenant in [&a, &b, &c] {
        assert!(!router.state_of(&tenant.name).listener.is_running());
    }
    watch.abort();
    router.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_swap_the_map_without_dropping_requests_in_flight() {
    let (a, b, c) = three().await;
    a.add_user("admin@example.com", "admin").await;
    let file = admin_hosts(&a, &b, &c);
    let router = Router::start(&file, &[]).await;
    let token = router
        .login("a.example", "admin@example.com", PASSWORD)
        .await
        .json["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let widget = router
        .send(
            "a.example",
            "POST",
            "/api/widgets",
            Some(&token),
            Some(json!({ "name": "Held", "price_cents": 5, "inventory_level": 3 })),
        )
        .await
        .json["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        router
            .at("c.example", "GET", "/api/widgets", None)
            .await
            .status,
        200
    );

    // An order at A waits on a locked row while the map changes under it.
    let lock = a.lock_widget(widget).await;
    let in_flight = tokio::spawn({
        let addr = router.app.addr;
        let token = token.clone();
        async move {
            let body = serde_json::to_vec(&json!({
                "widget_id": widget, "quantity": 1,
                "customer": { "first_name": "In", "last_name": "Flight", "email": "if@example.com" },
                "payment": { "currency": "EUR" }
            }))
            .unwrap();
            let auth = format!("Bearer {token}");
            raw(
                addr,
                "POST",
                "/api/orders",
                &[
                    ("Host", "a.example"),
                    ("Authorization", &auth),
                    ("Content-Type", "application/json"),
                ],
                &body,
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A malformed file is refused, and the map in use keeps serving.
    std::fs::write(&router.file, "{\"a.example\": {\"dsn\": ").unwrap();
    let refused = router.app.registry.reload().unwrap_err();
    let text = store_api::registry::describe_refusal(&refused);
    assert!(text.contains("TENANTS_FILE is invalid: not JSON"), "{text}");
    assert_eq!(
        router
            .at("c.example", "GET", "/api/widgets", None)
            .await
            .status,
        200
    );

    // A is moved to a new host, C removed, B's DSN changed to its customer login, D added.
    let d = Tenant::create("rd").await;
    std::fs::write(
        &router.file,
        tenants_json(&[
            ("shop.a.example", &a, "admin"),
            ("b.example", &b, "customer"),
            ("d.example", &d, "admin"),
        ]),
    )
    .unwrap();
    router.app.registry.reload().expect("reload");
    router
        .at("c.example", "GET", "/api/widgets", None)
        .await
        .expect_error(404, "unknown_tenant");
    router
        .at("a.example", "GET", "/api/widgets", None)
        .await
        .expect_error(404, "unknown_tenant");
    assert_eq!(
        router
            .at("d.example", "GET", "/api/widgets", None)
            .await
            .status,
        200
    );
    // B's new login is the customer's: it may read but not write.
    let write = router
        .send(
            "b.example",
            "POST",
            "/api/authenticate",
            None,
            Some(json!({ "email": "x@example.com", "password": "whatever1" })),
        )
        .await;
    write.expect_error(403, "database_permission_denied");

    // The order that was running at A finishes on the state it started with.
    lock.release().await;
    let order = in_flight.await.unwrap();
    assert_eq!(order.status, 201, "{}", order.text);
    // A's token is valid at its new host name: same database, new state.
    assert_eq!(
        router
            .at("shop.a.example", "GET", "/api/users", Some(&token))
            .await
            .status,
        200
    );
    router.app.stop().await;
}

/// The binary in router mode: every log line of a request names its tenant, SIGHUP reloads the
/// file (a malformed one is refused with a log line and changes nothing), so does a change of
/// the file without a signal, SIGTERM ends it cleanly, and no DSN or password reaches the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reloads_on_sighup_and_logs_every_tenant() {
    let (a, b, c) = three().await;
    let dir = unique_dir("router-bin");
    let file = dir.join("tenants.json");
    std::fs::write(
        &file,
        tenants_json(&[
            ("a.example", &a, "admin"),
            ("b.example", &b, "admin"),
            ("c.example", &c, "admin"),
        ]),
    )
    .unwrap();
    let ops_port = closed_port();
    let mut api = RunningBinary::start(&[
        ("TENANTS_FILE", file.display().to_string()),
        ("OPS_ADDR", format!("127.0.0.1:{ops_port}")),
        ("LOG_FORMAT", "json".to_owned()),
        ("DB_POOL_SIZE", "2".to_owned()),
        ("DB_MAX_CONNECTIONS", "8".to_owned()),
    ])
    .await;
    let addr = api.addr;
    let get = |host: &'static str| async move {
        raw(addr, "GET", "/api/widgets", &[("Host", host)], b"").await
    };
    for (host, tenant) in [("a.example", &a), ("b.example", &b), ("c.example", &c)] {
        let reply = get(host).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["tenant"], tenant.name.as_str());
    }
    get("nobody.example")
        .await
        .expect_error(404, "unknown_tenant");

    let hangup = |pid: u32| {
        let sent = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    let pid = api.pid();
    let wait_for_log = |needle: &'static str| {
        let api = &api;
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let text = api.log();
                if text.contains(needle) {
                    return text;
                }
                assert!(
                    Instant::now() < deadline,
                    "no {needle:?} in the log:\n{text}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // A broken file: refused, and every tenant is still served.
    std::fs::write(&file, r#"{"a.example": {"dsn": 5, "name": "A"}}"#).unwrap();
    hangup(pid);
    wait_for_log("TENANTS_FILE refused").await;
    for host in ["a.example", "b.example", "c.example"] {
        assert_eq!(get(host).await.status, 200, "{host}");
    }
    // C removed: gone at once; A and B keep being served.
    std::fs::write(
        &file,
        tenants_json(&[("a.example", &a, "admin"), ("b.example", &b, "admin")]),
    )
    .unwrap();
    hangup(pid);
    wait_for_log("\"removed\":1").await;
    get("c.example").await.expect_error(404, "unknown_tenant");
    assert_eq!(get("a.example").await.status, 200);
    // A change of the file is noticed without a signal: C is back.
    std::fs::write(
        &file,
        tenants_json(&[
            ("a.example", &a, "admin"),
            ("b.example", &b, "admin"),
            ("c.example", &c, "admin"),
        ]),
    )
    .unwrap();
    wait_for_log("\"added\":1").await;
    assert_eq!(get("c.example").await.status, 200);

    let ready = crate::common::call(
        std::net::SocketAddr::from(([127, 0, 0, 1], ops_port)),
        "GET",
        "/readyz",
        None,
        None,
    )
    .await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.json["tenants"].as_array().map(Vec::len), Some(3));

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), api.child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let logs = api.final_log().await;
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|line| line["fields"]["message"] == "request")
        .collect();
    for (tenant, host) in [(&a, "a.example"), (&b, "b.example"), (&c, "c.example")] {
        assert!(
            requests
                .iter()
                .any(|line| line["span"]["tenant"] == tenant.name.as_str()
                    && line["span"]["host"] == host),
            "no request line of {host}:\n{logs}"
        );
    }
    assert!(
        requests
            .iter()
            .all(|line| line["span"]["tenant"].is_string()),
        "a request line without its tenant:\n{logs}"
    );
    for tenant in [&a, &b, &c] {
        for secret in [tenant.password_of("admin"), tenant.database.as_str()] {
            assert!(!logs.contains(secret), "{secret} reached the log:\n{logs}");
        }
    }
}
