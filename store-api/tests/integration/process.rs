//! The `store-api` binary itself: configuration errors, `user create`, SIGTERM draining and
//! what its logs contain.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use sha2::Digest;

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_store-api");

fn run(env: &[(&str, &str)]) -> (i32, String) {
    let output = Command::new(BIN)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run store-api");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_settings_stop_it_with_one_line_naming_the_setting() {
    let (code, stderr) = run(&[]);
    assert_eq!(code, 2);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("DATABASE_DSN is not set"), "{stderr}");

    let (code, stderr) = run(&[
        (
            "DATABASE_DSN",
            "postgres://u:hunter2secret@db:notaport/shop",
        ),
        ("TENANT_NAME", "Shop"),
    ]);
    assert_eq!(code, 2);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("DATABASE_DSN is invalid"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let (code, stderr) = run(&[
        (
            "DATABASE_DSN",
            "host=db user=u password=hunter2secret dbname=shop sslmode=verify-full",
        ),
        ("TENANT_NAME", "Shop"),
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains(
            "DATABASE_DSN is invalid: sslmode verify-full checks the server's certificate"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let good = "host=127.0.0.1 user=u password=hunter2secret dbname=shop";
    for (name, value) in [
        ("API_PORT", "70000"),
        ("DB_POOL_SIZE", "none"),
        ("LOG_FORMAT", "yaml"),
    ] {
        let (code, stderr) = run(&[
            ("DATABASE_DSN", good),
            ("TENANT_NAME", "Shop"),
            (name, value),
        ]);
        assert_eq!(code, 2, "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(&format!("{name} is invalid")), "{stderr}");
    }

    // A port already taken: it says so and exits, without a password in sight.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port().to_string();
    let (code, stderr) = run(&[
        ("DATABASE_DSN", good),
        ("TENANT_NAME", "Shop"),
        ("API_HOST", "127.0.0.1"),
        ("API_PORT", &port),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("API_PORT: cannot listen"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_create_makes_the_first_admin() {
    let tenant = Tenant::create("cli").await;
    let dsn = tenant.dsn("admin", "disable");
    let create = |email: &str, stdin: &'static str| {
        let mut child = Command::new(BIN)
            .args([
                "user",
                "create",
                "--email",
                email,
                "--first-name",
                "Bo",
                "--last-name=Ss",
            ])
            .env_clear()
            .env("DATABASE_DSN", &dsn)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().expect("wait")
    };
    let weak = tokio::task::block_in_place(|| create("weak@example.com", "short\n"));
    assert_eq!(weak.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password"));

    let output =
        tokio::task::block_in_place(|| create("boss@example.com", "a good long password\n"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.starts_with("created admin user "), "{stdout}");

    let again =
        tokio::task::block_in_place(|| create("BOSS@example.com", "a good long password\n"));
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let app = App::for_tenant(&tenant, "admin").await;
    let reply = app
        .post(
            "/api/authenticate",
            None,
            json!({ "email": "boss@example.com", "password": "a good long password" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["user"]["role"], "admin");
    let token = reply.json["token"].as_str().unwrap();
    assert_eq!(app.get("/api/users", Some(token)).await.status, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_requests_in_flight_and_logs_carry_no_secrets() {
    let tenant = Tenant::create("drain").await;
    tenant.add_user("admin@example.com", "admin").await;
    let mut api = RunningBinary::start(&[
        ("DATABASE_DSN", tenant.dsn("admin", "disable")),
        ("TENANT_NAME", tenant.name.clone()),
        ("LOG_FORMAT", "json".to_owned()),
        // Above the Enterprise plan's 50 connections: it shrinks to the limit, less the token
        // listener's connection.
        ("DB_POOL_SIZE", "80".to_owned()),
    ])
    .await;
    let addr = api.addr;
    let metrics = call(addr, "GET", "/metrics", None, None).await;
    assert!(
        metrics
            .text
            .contains("store_api_db_pool_max_connections 49\n"),
        "{}",
        metrics.text
    );
    let login = call(
        addr,
        "POST",
        "/api/authenticate",
        None,
        Some(&json!({ "email": "admin@example.com", "password": PASSWORD })),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let token = login.json["token"].as_str().unwrap().to_owned();
    let widget = call(
        addr,
        "POST",
        "/api/widgets",
        Some(&token),
        Some(&json!({ "name": "Last", "price_cents": 5, "inventory_level": 2 })),
    )
    .await
    .json["id"]
        .as_i64()
        .unwrap();

    // Hold the widget's row so the order is still running when SIGTERM arrives.
    let lock = tenant.lock_widget(widget).await;
    let order_token = token.clone();
    let in_flight = tokio::spawn(async move {
        call(
            addr,
            "POST",
            "/api/orders",
            Some(&order_token),
            Some(&json!({
                "widget_id": widget, "quantity": 1,
                "customer": { "first_name": "In", "last_name": "Flight", "email": "if@example.com" },
                "payment": { "currency": "EUR" }
            })),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = api.pid().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        api.child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting connections after SIGTERM"
    );
    lock.release().await;

    let order = in_flight.await.unwrap();
    assert_eq!(order.status, 201, "{}", order.text);
    let status = tokio::time::timeout(Duration::from_secs(10), api.child.wait())
        .await
        .expect("exits after draining")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let logs = api.final_log().await;
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let order_line = lines
        .iter()
        .find(|line| line["fields"]["message"] == "order placed")
        .unwrap_or_else(|| panic!("no order log line in {logs}"));
    assert!(
        order_line["span"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{order_line}"
    );
    assert_eq!(order_line["span"]["tenant"], tenant.name.as_str());
    assert!(logs.contains("SIGTERM received"), "{logs}");
    // The token look-ups started the token listener, which says so, naming its tenant.
    let listening = lines
        .iter()
        .find(|line| {
            line["fields"]["message"]
                .as_str()
                .is_some_and(|message| message.starts_with("token listener listening"))
        })
        .unwrap_or_else(|| panic!("no token listener line in {logs}"));
    assert_eq!(listening["level"], "INFO", "{listening}");
    assert_eq!(listening["span"]["tenant"], tenant.name.as_str());
    let token_hash: String = sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    for secret in [
        token.as_str(),
        token_hash.as_str(),
        PASSWORD,
        tenant.password_of("admin"),
        password_hash(),
    ] {
        assert!(!logs.contains(secret), "a secret reached the log:\n{logs}");
    }
}
