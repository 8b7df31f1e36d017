//! Tokens ended on one instance stop working on another at once: a logout, a password or role
//! change and a user's deletion are announced with NOTIFY in the transaction that makes them,
//! and every instance's listener forgets what it remembered. What arrives on the channel is only
//! ever used to forget, whoever sent it.

use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::common::*;

/// Far inside the cache's lifetime (`TOKEN_CACHE_MS=1000`): only a notification ends a
/// remembered token this soon.
const PROMPT: Duration = Duration::from_millis(300);

/// Two instances of one tenant, as two replicas behind a load balancer would be.
struct Pair {
    tenant: Tenant,
    a: App,
    b: App,
}

impl Pair {
    async fn open(prefix: &str) -> Pair {
        let tenant = Tenant::create(prefix).await;
        tenant.add_user("admin@example.com", "admin").await;
        let start = || {
            App::start(config(
                &tenant.dsn("admin", "disable"),
                &tenant.name,
                &[("TOKEN_CACHE_MS", "1000")],
            ))
        };
        let a = start().await;
        let b = start().await;
        Pair { tenant, a, b }
    }

    async fn stop(self) {
        self.a.stop().await;
        self.b.stop().await;
    }
}

/// Until `app` listens for ended tokens (it starts listening when it first looks a token up).
async fn listening(app: &App, token: &str) {
    assert_eq!(app.get("/api/statuses", Some(token)).await.status, 200);
    let state = app.state();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !state.listener.is_listening() {
        assert!(Instant::now() < deadline, "the instance never listened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `app` remembers `token` (asked twice: the second answer comes from its cache).
async fn warm(app: &App, path: &str, token: &str) {
    for _ in 0..2 {
        let reply = app.get(path, Some(token)).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    }
}

/// Asks `app` until it answers `status`; how long after `since` that was.
/// Logs `token` out on A; B, asked for `path`, must refuse it within [`PROMPT`].
async fn logout_reaches_b(pair: &Pair, path: &str, token: &str) {
    let out = pair.a.post("/api/logout", Some(token), json!({})).await;
    assert_eq!(out.status, 204, "{}", out.text);
    let took = refused(&pair.b, path, token, 401, Instant::now()).await;
    assert!(
        took < PROMPT,
        "B accepted the logged-out token for {took:?}"
    );
}

async fn refused(app: &App, path: &str, token: &str, status: u16, since: Instant) -> Duration {
    loop {
        let reply = app.get(path, Some(token)).await;
        if reply.status == status {
            return since.elapsed();
        }
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "{path} still accepted 5 s later"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_instance_ends_the_token_on_another_at_once() {
    let pair = Pair::open("notify_logout").await;
    let token = pair.a.login("admin@example.com").await;
    listening(&pair.b, &token).await;
    warm(&pair.b, "/api/statuses", &token).await;

    logout_reaches_b(&pair, "/api/statuses", &token).await;
    pair.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_and_role_changes_and_deletions_reach_the_other_instance_at_once() {
    let pair = Pair::open("notify_users").await;
    let (a, b) = (&pair.a, &pair.b);
    let admin = a.login("admin@example.com").await;
    let grace = pair.tenant.add_user("grace@example.com", "admin").await;
    let dave = pair.tenant.add_user("dave@example.com", "developer").await;
    let erin = pair.tenant.add_user("erin@example.com", "developer").await;
    let grace_token = a.login("grace@example.com").await;
    let dave_token = a.login("dave@example.com").await;
    let erin_token = a.login("erin@example.com").await;
    listening(b, &admin).await;

    // A role taken away: B's remembered role is not used any more.
    warm(b, "/api/users", &grace_token).await;
    let demoted = a
        .patch(
            &format!("/api/users/{grace}"),
            Some(&admin),
            json!({ "role": "customer" }),
        )
        .await;
    assert_eq!(demoted.status, 200, "{}", demoted.text);
    let took = refused(b, "/api/users", &grace_token, 403, Instant::now()).await;
    assert!(took < PROMPT, "B kept grace's admin role for {took:?}");

    // A new password ends the user's sessions everywhere.
    warm(b, "/api/customers", &dave_token).await;
    let changed = a
        .patch(
            &format!("/api/users/{dave}"),
            Some(&admin),
            json!({ "password": "an entirely new one" }),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let took = refused(b, "/api/customers", &dave_token, 401, Instant::now()).await;
    assert!(took < PROMPT, "B accepted dave's old session for {took:?}");

    // A deleted user's tokens end with them.
    warm(b, "/api/customers", &erin_token).await;
    let deleted = a.delete(&format!("/api/users/{erin}"), Some(&admin)).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let took = refused(b, "/api/customers", &erin_token, 401, Instant::now()).await;
    assert!(took < PROMPT, "B accepted a deleted user for {took:?}");
    pair.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatever_a_login_sends_on_the_channel_only_makes_tokens_be_asked_again() {
    let pair = Pair::open("notify_garbage").await;
    let token = pair.a.login("admin@example.com").await;
    listening(&pair.b, &token).await;
    warm(&pair.b, "/api/users", &token).await;

    // The tenant's least privileged login, as a plain SQL session: anyone with its DSN.
    let hostile = pair.tenant.login_session("customer").await;
    let hash = hex(&Sha256::digest(token.as_bytes()));
    let long = "x".repeat(7_000);
    let payloads = [
        "",
        "token:",
        "token:zz",
        "token:ABCDEF",
        "user:",
        "user:-1",
        "user:+1",
        "user:1.5",
        "user:99999999999999999999999",
        "user:1; DROP TABLE public.tokens",
        "all",
        "*",
        "{\"token\":\"x\"}",
        long.as_str(),
        // Well-formed: the token and its user are forgotten, and asked about again.
        &format!("token:{hash}"),
        "user:1",
    ];
    for payload in payloads {
        hostile
            .execute("SELECT pg_notify('usualstore_tokens', $1)", &[&payload])
            .await
            .expect("any login may notify");
    }
    // A flood, faster than any listener reads.
    hostile
        .batch_execute(
            "SELECT pg_notify('usualstore_tokens', 'user:' || g) FROM generate_series(1, 5000) g",
        )
        .await
        .expect("a flood of notifications");
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Nothing was granted or ended: the token still works (asked again), the listener still
    // listens, and a real logout still ends the token on B at once.
    warm(&pair.b, "/api/users", &token).await;
    assert!(pair.b.state().listener.is_listening());
    let metrics = pair.b.get("/metrics", None).await.text;
    assert!(
        metrics.contains("store_api_token_listener_up 1\n"),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "store_api_token_listener_sessions_total"),
        1
    );
    assert!(
        metric(
            &metrics,
            "store_api_token_notifications_total{outcome=\"ignored\"}"
        ) >= 14,
        "{metrics}"
    );
    logout_reaches_b(&pair, "/api/users", &token).await;
    pair.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_clears_the_cache_and_comes_back() {
    let pair = Pair::open("notify_lost").await;
    let token = pair.a.login("admin@example.com").await;
    listening(&pair.b, &token).await;
    let state = pair.b.state();
    let sessions = state.listener.sessions();
    warm(&pair.b, "/api/statuses", &token).await;
    assert!(!state.tokens.is_empty());

    // The server ends the listeners' sessions (an administrator, a failover, a restart).
    let superuser = pair.tenant.superuser().await;
    let ended: i64 = superuser
        .query_one(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'store-api token listener'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ended >= 1, "no listener session to end");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(state.listener.sessions() > sessions && state.listener.is_listening()) {
        assert!(Instant::now() < deadline, "the listener did not come back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // What was remembered while nobody listened was forgotten.
    assert!(state.tokens.is_empty());
    let metrics = pair.b.get("/metrics", None).await.text;
    assert!(metric(&metrics, "store_api_token_listener_sessions_total") >= 2);

    // And the new session evicts as the first did.
    warm(&pair.b, "/api/statuses", &token).await;
    logout_reaches_b(&pair, "/api/statuses", &token).await;
    pair.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_ended_by_hand_still_ends_within_the_cache_lifetime() {
    // No notification comes from an operator's own SQL: the one-second cap is the promise.
    let pair = Pair::open("notify_by_hand").await;
    let token = pair.a.login("admin@example.com").await;
    listening(&pair.b, &token).await;
    warm(&pair.b, "/api/statuses", &token).await;
    let superuser = pair.tenant.superuser().await;
    superuser
        .execute(
            "DELETE FROM public.tokens WHERE token_hash = $1",
            &[&Sha256::digest(token.as_bytes()).to_vec()],
        )
        .await
        .unwrap();
    let took = refused(&pair.b, "/api/statuses", &token, 401, Instant::now()).await;
    assert!(
        took < Duration::from_millis(1_300),
        "B accepted a deleted token for {took:?}"
    );
    pair.stop().await;
}

/// The value of a series in Prometheus text.
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {text}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
