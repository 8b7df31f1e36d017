//! The storefront and the back office in a real browser: headless Chromium from Debian's
//! packages, driven over WebDriver (see [`crate::webdriver`]). Screenshots of the catalogue (wide
//! and phone-sized), the orders page and the back office's widgets with the API's 409 explained
//! land in `<target>/tmp/storefront-screenshots/` for a person to look at.
//!
//! Skipped, loudly, only when Chromium cannot be installed on this machine.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::common::*;
use crate::webdriver::{Browser, Driver, loud_note, tools};

const HOSTILE: &str = "<img src=x onerror=\"window.__pwned=1\">Hostile & \"quoted\"";

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("storefront-screenshots")
}

/// Console lines that mean the page broke its own policy or threw.
#[track_caller]
fn assert_clean_console(lines: &[String], page: &str) {
    let bad: Vec<&String> = lines
        .iter()
        .filter(|line| {
            line.contains("Content Security Policy")
                || line.contains("Trusted")
                || line.contains("Uncaught")
        })
        .collect();
    assert!(bad.is_empty(), "{page}: {bad:#?}");
}

async fn assert_not_pwned(browser: &Browser, page: &str) {
    let pwned = browser
        .script("return window.__pwned === undefined", json!([]))
        .await;
    assert_eq!(pwned, Value::Bool(true), "{page}: injected script ran");
}

async fn sign_in(browser: &Browser, base: &str, email: &str, role: &str) {
    browser.goto(&format!("{base}/admin")).await;
    let form = "#sign-in";
    browser.find(form).await;
    let email_field = browser.find("#sign-in input[name=email]").await;
    browser.fill(&email_field, email).await;
    let password = browser.find("#sign-in input[name=password]").await;
    browser.fill(&password, PASSWORD).await;
    let submit = browser.find("#sign-in button[type=submit]").await;
    browser.click(&submit).await;
    browser
        .wait_text("#signed-in-as", &format!("({role})"))
        .await;
}

async fn open_tab(browser: &Browser, tab: &str, ready: &str) {
    let link = browser.find(&format!("a[data-tab={tab}]")).await;
    browser.click(&link).await;
    browser.find(ready).await;
}

/// Clicks a two-step button: once to arm it, once to act.
async fn press_twice(browser: &Browser, css: &str) {
    let button = browser.find(css).await;
    browser.click(&button).await;
    browser.wait_text(css, "Really").await;
    browser.click(&button).await;
}

async fn stock_of(shop: &Shop, id: i64) -> i64 {
    let reply = shop.app.get(&format!("/api/widgets/{id}"), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json["inventory_level"].as_i64().expect("stock")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storefront_and_back_office_in_a_real_browser() {
    let Some(tools) = tools() else {
        return;
    };
    // On the heap: the scenario's state machine is larger than a test thread's stack in debug
    // builds.
    Box::pin(scenario(tools)).await;
}

async fn scenario(tools: crate::webdriver::Tools) {
    let shop = Shop::open("browser").await;
    // Written past the API (which refuses such an image), as a developer with psql might.
    let hostile_id: i64 = shop
        .tenant
        .superuser()
        .await
        .query_one(
            "INSERT INTO public.widgets (name, description, price_cents, inventory_level, image) \
             VALUES ($1, '<script>window.__pwned=2</script>', 999, 2, 'javascript:window.__pwned=3') \
             RETURNING id",
            &[&HOSTILE],
        )
        .await
        .expect("insert the hostile widget")
        .get(0);
    for n in 0..12 {
        shop.widget(
            &format!("Catalogue item {n:02}"),
            150 * (n + 1),
            20 - n as i32,
        )
        .await;
    }
    let base = format!("http://{}", shop.app.addr);
    let mut driver = Driver::start(&tools).await;
    let browser = driver.browser(1280, 900).await;
    let shots = screenshots();
    Box::pin(catalogue(&shop, &browser, &base, hostile_id)).await;
    let sprocket = Box::pin(admin_adds_sells_and_refunds(&shop, &browser, &base)).await;
    Box::pin(admin_keeps_the_catalogue(&shop, &browser, &base, sprocket)).await;
    Box::pin(other_roles(&browser, &base)).await;
    driver.stop().await;
    loud_note(&format!(
        "screenshots of the catalogue and the orders page are in {}",
        shots.display()
    ));
    shop.app.stop().await;
}

async fn catalogue(shop: &Shop, browser: &Browser, base: &str, hostile_id: i64) {
    let shots = screenshots();
    // The catalogue, as a shopper sees it: branded, paged, hostile names shown as text.
    browser.goto(base).await;
    browser.find(".card").await;
    let title = browser.title().await;
    assert_eq!(title, format!("{}: catalogue", shop.tenant.name));
    let brand = browser.find("header .brand").await;
    assert_eq!(browser.text(&brand).await, shop.tenant.name);
    assert_eq!(browser.all(".card").await.len(), 12);
    let hostile_name = browser
        .find(&format!(".card[data-widget-id=\"{hostile_id}\"] .name"))
        .await;
    assert_eq!(browser.text(&hostile_name).await, HOSTILE);
    assert!(
        browser
            .all(&format!(".card[data-widget-id=\"{hostile_id}\"] img"))
            .await
            .is_empty(),
        "a javascript: image was rendered"
    );
    browser
        .wait_text(
            &format!(".card[data-widget-id=\"{hostile_id}\"] .stock"),
            "only 2 left",
        )
        .await;
    assert_not_pwned(browser, "catalogue").await;
    browser.screenshot(&shots.join("catalogue.png")).await;
    assert_clean_console(&browser.console().await, "catalogue");

    // The policy is enforced, not only sent: script injected into the page (as an XSS would)
    // does not run, and the browser's console says why.
    let injected = browser
        .script(
            "try { const s = document.createElement('script'); s.textContent = 'window.__inline = 1'; \
             document.body.append(s); } catch (e) { return e.name; } return 'appended';",
            json!([]),
        )
        .await;
    let ran = browser
        .script("return window.__inline !== undefined", json!([]))
        .await;
    assert_eq!(ran, Value::Bool(false), "an inline script ran ({injected})");
    assert_eq!(injected, json!("TypeError"));
    // Inline style is refused by the CSP itself (it is no Trusted Types sink): an injected
    // `style` attribute does not apply.
    let display = browser
        .script(
            "const p = document.createElement('p'); p.setAttribute('style', 'display: none'); \
             document.body.append(p); return getComputedStyle(p).display;",
            json!([]),
        )
        .await;
    assert_eq!(display, json!("block"), "an inline style applied");
    let console = browser.wait_console("Content Security Policy").await;
    assert!(
        console.iter().any(|line| line.contains("TrustedScript")),
        "{console:#?}"
    );

    let next = browser.find("a[rel=next]").await;
    browser.click(&next).await;
    browser.find("a[rel=first]").await;
    assert!(browser.url().await.contains("/?after="));
    assert_eq!(browser.all(".card").await.len(), 1);
    let card = browser.find(".card .card-link").await;
    browser.click(&card).await;
    browser.wait_text("h1.name", "Catalogue item 11").await;
    browser.wait_text(".stock", "in stock").await;

    // A phone-sized screen: one column, nothing wider than the screen.
    browser.set_size(390, 844).await;
    browser.goto(base).await;
    browser.find(".card").await;
    let fits = browser
        .script(
            "return [document.documentElement.scrollWidth, window.innerWidth]",
            json!([]),
        )
        .await;
    let (content, screen) = (fits[0].as_i64().unwrap_or(0), fits[1].as_i64().unwrap_or(1));
    assert!(
        content <= screen,
        "the page is {content}px wide on a {screen}px screen"
    );
    let columns = browser
        .script(
            "return getComputedStyle(document.querySelector('.grid')).gridTemplateColumns.split(' ').length",
            json!([]),
        )
        .await;
    assert_eq!(columns, json!(1));
    browser.screenshot(&shots.join("catalogue-phone.png")).await;
    browser.set_size(1280, 900).await;
}

/// Returns the id of the widget it added.
async fn admin_adds_sells_and_refunds(shop: &Shop, browser: &Browser, base: &str) -> i64 {
    let shots = screenshots();
    // The back office: sign in as admin; the token stays in this tab's sessionStorage.
    sign_in(browser, base, "admin@example.com", "admin").await;
    let stored = browser
        .script(
            "return [sessionStorage.getItem('usualstore.session') !== null, document.cookie]",
            json!([]),
        )
        .await;
    assert_eq!(stored, json!([true, ""]));
    browser.find("a[data-tab=users]").await;

    // Add a widget.
    open_tab(browser, "widgets", "#add-widget").await;
    assert_not_pwned(browser, "back office widgets").await;
    let name = browser.find("#add-widget input[name=name]").await;
    browser.fill(&name, "Sprocket").await;
    let price = browser.find("#add-widget input[name=price]").await;
    browser.fill(&price, "12.50").await;
    let stock = browser
        .find("#add-widget input[name=inventory_level]")
        .await;
    browser.fill(&stock, "5").await;
    let image = browser.find("#add-widget input[name=image]").await;
    browser.fill(&image, "javascript:alert(1)").await;
    browser
        .click(&browser.find("#add-widget button[type=submit]").await)
        .await;
    browser.wait_text("#messages .error", "invalid_input").await;
    let image = browser.find("#add-widget input[name=image]").await;
    browser.fill(&image, "").await;
    browser
        .click(&browser.find("#add-widget button[type=submit]").await)
        .await;
    let note = browser.wait_text("#messages .note", "added").await;
    let sprocket: i64 = note
        .split('#')
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no widget id in {note:?}"));
    assert_eq!(stock_of(shop, sprocket).await, 5);
    let row = format!("#widgets tr[data-widget-id=\"{sprocket}\"]");
    browser.wait_text(&format!("{row} .stock-level"), "5").await;

    // Place an order as staff: the stock moves from 5 to 3.
    open_tab(browser, "orders", "#place-order").await;
    let option = browser
        .find(&format!("#place-order option[value=\"{sprocket}\"]"))
        .await;
    browser.click(&option).await;
    for (field, value) in [
        ("quantity", "2"),
        ("email", "ada@example.com"),
        ("first_name", "Ada"),
        ("last_name", "Lovelace"),
    ] {
        let input = browser
            .find(&format!("#place-order input[name={field}]"))
            .await;
        browser.fill(&input, value).await;
    }
    browser
        .click(&browser.find("#place-order button[type=submit]").await)
        .await;
    let note = browser.wait_text("#messages .note", "placed").await;
    assert!(note.contains("2 × Sprocket for 25.00 EUR"), "{note}");
    let order: i64 = note
        .split('#')
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no order id in {note:?}"));
    assert_eq!(stock_of(shop, sprocket).await, 3);
    let order_row = format!("#orders tr[data-order-id=\"{order}\"]");
    browser
        .wait_text(&format!("{order_row} .status"), "Cleared")
        .await;
    browser
        .wait_text(&format!("{order_row} .customer"), "Ada Lovelace")
        .await;
    browser
        .wait_text(&format!("{order_row} .widget"), "Sprocket")
        .await;
    // Newest first.
    let first_row = browser.find("#orders tbody tr").await;
    assert_eq!(
        browser.attribute(&first_row, "data-order-id").await,
        Some(order.to_string())
    );

    // Refund it: the payment goes back, the units do not (they left with the customer).
    press_twice(browser, &format!("{order_row} button.danger")).await;
    browser.wait_text("#messages .note", "refunded").await;
    browser
        .wait_text(&format!("{order_row} .status"), "Refunded")
        .await;
    assert_eq!(stock_of(shop, sprocket).await, 3);
    browser.screenshot(&shots.join("orders.png")).await;
    assert_clean_console(&browser.console().await, "orders");

    // A second order, cancelled: its units come back.
    let option = browser
        .find(&format!("#place-order option[value=\"{sprocket}\"]"))
        .await;
    browser.click(&option).await;
    for (field, value) in [
        ("quantity", "1"),
        ("email", "bob@example.com"),
        ("first_name", "Bob"),
        ("last_name", "Builder"),
    ] {
        let input = browser
            .find(&format!("#place-order input[name={field}]"))
            .await;
        browser.fill(&input, value).await;
    }
    browser
        .click(&browser.find("#place-order button[type=submit]").await)
        .await;
    browser.wait_text("#messages .note", "placed").await;
    assert_eq!(stock_of(shop, sprocket).await, 2);
    let second = browser.find("#orders tbody tr").await;
    let second_id = browser
        .attribute(&second, "data-order-id")
        .await
        .expect("order id");
    let second_row = format!("#orders tr[data-order-id=\"{second_id}\"]");
    press_twice(
        browser,
        &format!("{second_row} button.danger:nth-of-type(2)"),
    )
    .await;
    browser.wait_text("#messages .note", "cancelled").await;
    browser
        .wait_text(&format!("{second_row} .status"), "Cancelled")
        .await;
    assert_eq!(stock_of(shop, sprocket).await, 3);

    // Filtered by status.
    let refunded = browser.find("#status-filter option[value=Refunded]").await;
    browser.click(&refunded).await;
    browser.wait_gone(&second_row).await;
    browser.find(&order_row).await;
    assert!(browser.url().await.contains("status=Refunded"));

    sprocket
}

async fn admin_keeps_the_catalogue(shop: &Shop, browser: &Browser, base: &str, sprocket: i64) {
    let row = format!("#widgets tr[data-widget-id=\"{sprocket}\"]");
    // The shop shows the new stock.
    browser.goto(&format!("{base}/widgets/{sprocket}")).await;
    browser.wait_text(".stock", "only 3 left").await;
    browser.goto(&format!("{base}/admin#/widgets")).await;
    browser.find(&row).await;

    // Delete a widget that orders refer to: the API's 409, explained.
    press_twice(browser, &format!("{row} button.danger")).await;
    let error = browser
        .wait_text("#messages .error", "widget_has_orders")
        .await;
    assert!(error.contains("Orders refer to this widget"), "{error}");
    assert!(error.contains("HTTP 409"), "{error}");
    browser
        .screenshot(&screenshots().join("widgets-409.png"))
        .await;
    assert_eq!(stock_of(shop, sprocket).await, 3);

    // Restock it and edit it.
    let units = browser.find(&format!("{row} input.restock-units")).await;
    browser.fill(&units, "10").await;
    browser
        .click(&browser.find(&format!("{row} button.restock")).await)
        .await;
    browser
        .wait_text("#messages .note", "10 added, stock now 13")
        .await;
    assert_eq!(stock_of(shop, sprocket).await, 13);
    browser
        .click(&browser.find(&format!("{row} button.edit")).await)
        .await;
    let price = browser.find("#edit-widget input[name=price]").await;
    browser.fill(&price, "13").await;
    browser
        .click(&browser.find("#edit-widget button[type=submit]").await)
        .await;
    browser.wait_text("#messages .note", "saved").await;
    let widget = shop
        .app
        .get(&format!("/api/widgets/{sprocket}"), None)
        .await;
    assert_eq!(widget.json["price_cents"], 1300);
    assert_eq!(widget.json["inventory_level"], 13);

    // Customers and users are there for an admin.
    open_tab(browser, "customers", "#customers").await;
    browser.wait_text("#customers", "ada@example.com").await;
    open_tab(browser, "users", "#users").await;
    browser.wait_text("#users", "viewer@example.com").await;
    assert_clean_console(&browser.console().await, "back office");

    // Signing out forgets the token here and ends it at the API.
    let token = browser
        .script(
            "return JSON.parse(sessionStorage.getItem('usualstore.session')).token",
            json!([]),
        )
        .await;
    let token = token.as_str().expect("token").to_owned();
    browser.click(&browser.find("#sign-out").await).await;
    browser.find("#sign-in").await;
    browser.wait_text("#messages .note", "Signed out").await;
    let gone = browser
        .script(
            "return sessionStorage.getItem('usualstore.session')",
            json!([]),
        )
        .await;
    assert_eq!(gone, Value::Null);
    shop.app
        .get("/api/orders", Some(&token))
        .await
        .expect_error(401, "token_expired");
}

async fn other_roles(browser: &Browser, base: &str) {
    // A customer-role user may read, and no more: no users tab, no buttons that would only
    // earn a 403, and the users page itself is the API's 403 in words.
    sign_in(browser, base, "viewer@example.com", "customer").await;
    browser.find("#orders").await;
    assert!(browser.all("a[data-tab=users]").await.is_empty());
    assert!(browser.all("#place-order").await.is_empty());
    assert!(browser.all("#orders button").await.is_empty());
    open_tab(browser, "widgets", "#widgets").await;
    assert!(browser.all("#add-widget").await.is_empty());
    assert!(browser.all("#widgets button").await.is_empty());
    browser.goto(&format!("{base}/admin#/users")).await;
    let error = browser.wait_text("#messages .error", "forbidden").await;
    assert!(error.contains("Your role does not allow this"), "{error}");
    assert!(browser.all("#users").await.is_empty());

    // A developer places and refunds orders but does not change the catalogue.
    browser.click(&browser.find("#sign-out").await).await;
    sign_in(browser, base, "dev@example.com", "developer").await;
    browser.find("#place-order").await;
    open_tab(browser, "widgets", "#widgets").await;
    assert!(browser.all("#add-widget").await.is_empty());
    assert_clean_console(&browser.console().await, "other roles");
}
