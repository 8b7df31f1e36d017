//! The storefront over plain HTTP: what a browser without JavaScript (or an attacker with curl)
//! gets. Escaping of hostile tenant data, image addresses, paging, error pages, the security
//! headers on every page, static files, and the absence of anything a cross-site request could
//! ride on (cookies, form posts, CORS).

use serde_json::json;

use crate::common::*;

const HOSTILE_NAME: &str =
    "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">";

/// The headers every storefront response must carry.
#[track_caller]
fn assert_locked_down(reply: &Reply) {
    let csp = reply
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("no CSP on {}: {:?}", reply.status, reply.headers));
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "require-trusted-types-for 'script'",
    ] {
        assert!(csp.contains(directive), "CSP lacks {directive}: {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(reply.header("x-frame-options"), Some("DENY"));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(reply.header("referrer-policy"), Some("same-origin"));
    assert_eq!(
        reply.header("cross-origin-opener-policy"),
        Some("same-origin")
    );
    assert!(reply.header("set-cookie").is_none(), "{:?}", reply.headers);
}

/// Nothing in a page that the CSP would have to allow: no inline script, style or handler.
#[track_caller]
fn assert_no_inline_code(html: &str) {
    let lower = html.to_ascii_lowercase();
    for (at, _) in lower.match_indices("<script") {
        let tag_end = lower[at..].find('>').map_or(lower.len(), |end| at + end);
        let tag = &lower[at..tag_end];
        assert!(tag.contains(" src="), "inline script: {tag}");
    }
    assert!(!lower.contains("<style"), "inline stylesheet");
    assert!(!lower.contains(" style="), "style attribute");
    // Attribute syntax only: escaped tenant text may well read `onerror=&#34;…`.
    for handler in [" onerror=\"", " onload=\"", " onclick=\"", "javascript:"] {
        assert!(!lower.contains(handler), "{handler} in page:\n{html}");
    }
}

/// A widget written straight into the database (as a developer with psql might), past the API's
/// checks: what the storefront must still render safely.
async fn insert_widget(shop: &Shop, name: &str, description: &str, stock: i32, image: &str) -> i64 {
    shop.tenant
        .superuser()
        .await
        .query_one(
            "INSERT INTO public.widgets (name, description, price_cents, inventory_level, image) \
             VALUES ($1, $2, 1999, $3, $4) RETURNING id",
            &[&name, &description, &stock, &image],
        )
        .await
        .expect("insert widget")
        .get(0)
}

async fn add_widget(shop: &Shop, body: serde_json::Value) -> i64 {
    let reply = shop.app.post("/api/widgets", Some(&shop.admin), body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json["id"].as_i64().expect("id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogue_pages_escape_tenant_data_page_by_cursor_and_are_locked_down() {
    let shop = Shop::open("front").await;
    let app = &shop.app;
    let hostile = insert_widget(
        &shop,
        HOSTILE_NAME,
        "Say \"hi\" & <b>bold</b>\n\nSecond paragraph",
        3,
        "javascript:alert(1)",
    )
    .await;
    let pictured = add_widget(
        &shop,
        json!({
            "name": "Pictured",
            "price_cents": 5,
            "inventory_level": 0,
            "image": "https://img.example/a.png?x=1&y=\"><script>alert(1)</script>",
        }),
    )
    .await;
    for (image, n) in [
        ("//evil.example/a.png", 0),
        ("data:text/html,<script>alert(1)</script>", 1),
        ("/images/local.png", 2),
    ] {
        insert_widget(&shop, &format!("Image {n}"), "", 50, image).await;
    }
    for n in 0..10 {
        shop.widget(&format!("Filler {n:02}"), 100 + n, 10).await;
    }

    let first = app.get("/", None).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_locked_down(&first);
    assert_eq!(
        first.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = &first.text;
    assert_no_inline_code(html);
    // The tenant's name brands the page, escaped (it holds an apostrophe, & and quotes).
    assert!(
        html.contains("<title>front O&#39;Brien &#38; &#34;Sons&#34;: catalogue</title>"),
        "{html}"
    );
    assert!(
        html.contains("&#60;script&#62;window.__pwned=1&#60;/script&#62;"),
        "{html}"
    );
    assert!(!html.contains("<script>window"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(html.contains("Say &#34;hi&#34; &#38; &#60;b&#62;bold&#60;/b&#62; Second paragraph"));
    // Only http(s) and same-site images are shown; the tricky URL stays inside its attribute.
    assert!(
        html.contains(
            "src=\"https://img.example/a.png?x=1&#38;y=&#34;&#62;&#60;script&#62;alert(1)&#60;/script&#62;\""
        ),
        "{html}"
    );
    assert!(html.contains("src=\"/images/local.png\""), "{html}");
    assert!(
        !html.contains("evil.example") && !html.contains("data:"),
        "{html}"
    );
    // Stock in words; prices in cents.
    assert!(
        html.contains("only 3 left") && html.contains("19.99"),
        "{html}"
    );
    assert!(html.contains("sold out") && html.contains("0.05"), "{html}");
    assert!(html.contains("in stock"));
    assert!(html.contains(">15 widgets<"), "{html}");
    assert_eq!(html.matches("class=\"card\"").count(), 12, "{html}");
    assert!(!html.contains("rel=\"first\""));

    // The next page by the API's cursor: a number, nothing else, goes into the link.
    let next = html
        .split("href=\"/?after=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a next link");
    assert!(next.bytes().all(|b| b.is_ascii_digit()), "{next}");
    let second = app.get(&format!("/?after={next}"), None).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.text.matches("class=\"card\"").count(), 3);
    assert!(second.text.contains("rel=\"first\""));
    assert!(!second.text.contains("rel=\"next\""));
    assert!(second.text.contains("Filler 09"));
    let beyond = app.get("/?after=99999999", None).await;
    assert_eq!(beyond.status, 200);
    assert!(beyond.text.contains("No more widgets"), "{}", beyond.text);

    // A made-up cursor is the API's 400, as a page that names the code.
    let bad = app.get("/?after=%3Cscript%3E", None).await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert_locked_down(&bad);
    assert!(
        bad.text.contains("<code>invalid_field</code>"),
        "{}",
        bad.text
    );
    assert!(!bad.text.contains("<script>"), "{}", bad.text);
    let malformed = app.get("/?after=1&after=2", None).await;
    assert_eq!(malformed.status, 400, "{}", malformed.text);
    assert!(malformed.text.contains("<code>invalid_query</code>"));

    // A page per widget.
    let page = app.get(&format!("/widgets/{hostile}"), None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_locked_down(&page);
    assert_no_inline_code(&page.text);
    assert!(
        page.text.contains("<h1 class=\"name\">&#60;script&#62;"),
        "{}",
        page.text
    );
    assert!(page.text.contains("Second paragraph"));
    assert!(!page.text.contains("<img"), "{}", page.text);
    let pictured_page = app.get(&format!("/widgets/{pictured}"), None).await;
    assert!(pictured_page.text.contains("class=\"hero\""));
    assert!(pictured_page.text.contains("sold out"));
    for missing in ["/widgets/99999999", "/widgets/abc", "/widgets/-1"] {
        let reply = app.get(missing, None).await;
        assert_eq!(reply.status, 404, "{missing}: {}", reply.text);
        assert_locked_down(&reply);
        assert!(
            reply.text.contains("<code>not_found</code>"),
            "{}",
            reply.text
        );
    }

    // The back office's page: a shell that loads the modules, nothing inline, not cached.
    let admin = app.get("/admin", None).await;
    assert_eq!(admin.status, 200);
    assert_locked_down(&admin);
    assert_no_inline_code(&admin.text);
    assert!(
        admin
            .text
            .contains("<script type=\"module\" src=\"/static/admin.js\"></script>")
    );
    assert_eq!(admin.header("cache-control"), Some("no-store"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_files_come_from_the_binary_with_etags() {
    let shop = Shop::open("assets").await;
    let app = &shop.app;
    for (file, kind) in [
        ("admin.js", "text/javascript; charset=utf-8"),
        ("api.js", "text/javascript; charset=utf-8"),
        ("dom.js", "text/javascript; charset=utf-8"),
        ("store.css", "text/css; charset=utf-8"),
    ] {
        let reply = app.get(&format!("/static/{file}"), None).await;
        assert_eq!(reply.status, 200, "{file}");
        assert_locked_down(&reply);
        assert_eq!(reply.header("content-type"), Some(kind), "{file}");
        assert_eq!(reply.header("cache-control"), Some("no-cache"));
        let etag = reply.header("etag").expect("etag").to_owned();
        let again = raw(
            app.addr,
            "GET",
            &format!("/static/{file}"),
            &[("If-None-Match", &etag)],
            b"",
        )
        .await;
        assert_eq!(again.status, 304, "{file}");
        assert!(again.text.is_empty());
    }
    // The JavaScript builds no HTML from strings (the CSP's Trusted Types would refuse it).
    for file in ["admin.js", "api.js", "dom.js"] {
        let source = app.get(&format!("/static/{file}"), None).await.text;
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!source.contains(sink), "{file} uses {sink}");
        }
    }
    for path in [
        "/static/nope.js",
        "/static/..%2fCargo.toml",
        "/static/admin.js%00",
    ] {
        let reply = app.get(path, None).await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.text);
    }
}

/// The back office signs in and calls the API with a bearer token in a header: there is no
/// cookie and no form post a forged cross-site request could use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_a_cross_site_request_could_ride_on() {
    let shop = Shop::open("csrf").await;
    let app = &shop.app;
    // The storefront takes no POST at all.
    for path in ["/", "/admin", "/widgets/1"] {
        let reply = call(app.addr, "POST", path, None, Some(&json!({}))).await;
        assert_eq!(reply.status, 405, "{path}: {}", reply.text);
    }
    // A cross-site <form> can only send urlencoded, multipart or text/plain bodies: the API
    // refuses them before reading a field, sign-in included.
    for content_type in [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
    ] {
        for path in ["/api/authenticate", "/api/widgets", "/api/orders/1/refund"] {
            let reply = raw(
                app.addr,
                "POST",
                path,
                &[
                    ("Content-Type", content_type),
                    ("Origin", "https://evil.example"),
                ],
                b"email=admin%40example.com&password=x",
            )
            .await;
            assert!(
                reply.status == 415 || reply.status == 401,
                "{path} {content_type}: {}",
                reply.text
            );
        }
    }
    // No CORS: another origin's script cannot read answers nor send JSON with credentials.
    let preflight = raw(
        app.addr,
        "OPTIONS",
        "/api/widgets",
        &[
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization, content-type",
            ),
        ],
        b"",
    )
    .await;
    assert!(preflight.header("access-control-allow-origin").is_none());
    let signed_in = raw(
        app.addr,
        "POST",
        "/api/authenticate",
        &[
            ("Content-Type", "application/json"),
            ("Origin", "https://evil.example"),
        ],
        json!({ "email": "admin@example.com", "password": PASSWORD })
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    assert!(signed_in.header("access-control-allow-origin").is_none());
    assert!(signed_in.header("set-cookie").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_a_503_page() {
    let port = closed_port();
    let dsn = format!("host=127.0.0.1 port={port} user=nobody dbname=nothing sslmode=disable");
    let app = App::start(config(&dsn, "Down <Shop>", &[])).await;
    let reply = app.get("/", None).await;
    assert_eq!(reply.status, 503, "{}", reply.text);
    assert_locked_down(&reply);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert!(
        reply.text.contains("<code>database_unavailable</code>"),
        "{}",
        reply.text
    );
    assert!(reply.text.contains("Down &#60;Shop&#62;"), "{}", reply.text);
    // The pages that need no database still work.
    assert_eq!(app.get("/admin", None).await.status, 200);
    assert_eq!(app.get("/static/store.css", None).await.status, 200);
    app.stop().await;
}

/// A browser sent to the API's address gets JSON that nothing can run, frame or sniff as
/// another type, whatever answered: a handler, the unknown-route fallback, a refused method or a
/// refused token. The storefront's own pages keep their richer policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_answers_are_inert_in_a_browser() {
    let shop = Shop::open("inert").await;
    let app = &shop.app;
    let replies = [
        app.get("/api/widgets", None).await,
        app.get("/no/such/page", None).await,
        app.get("/api/orders", Some("not-a-token")).await,
        app.post("/api/statuses", None, json!({})).await,
    ];
    for reply in &replies {
        let csp = reply
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("no CSP on a {} answer: {:?}", reply.status, reply.headers));
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
    }
    assert_eq!(
        replies.iter().map(|reply| reply.status).collect::<Vec<_>>(),
        [200, 404, 401, 405]
    );
    assert_locked_down(&app.get("/", None).await);
}
