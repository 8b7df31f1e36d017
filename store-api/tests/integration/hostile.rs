//! Hostile traffic: floods of sign-ins, password guessing, slow and idle connections, floods of
//! connections. Each test fails on a build without the corresponding bound.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_store-api");

/// The store-api binary on a free loopback port, killed when dropped.
struct Spawned {
    child: tokio::process::Child,
    addr: SocketAddr,
}

impl Spawned {
    /// Starts `store-api` with `env` (plus a loopback address), under `ulimit -n files` if given.
    async fn start(env: &[(&str, &str)], files: Option<u32>) -> Spawned {
        let port = closed_port();
        let mut command = match files {
            Some(files) => {
                let mut command = tokio::process::Command::new("sh");
                command.args(["-c", &format!("ulimit -n {files} && exec \"$0\""), BIN]);
                command
            }
            None => tokio::process::Command::new(BIN),
        };
        command
            .env_clear()
            .env("API_HOST", "127.0.0.1")
            .env("API_PORT", port.to_string())
            .env("LOG_LEVEL", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let child = command.spawn().expect("spawn store-api");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(stream) = TcpStream::connect(addr).await {
                drop(stream);
                break;
            }
            assert!(Instant::now() < deadline, "store-api did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Spawned { child, addr }
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// A line of `/proc/<pid>/status` in kB (VmRSS, VmHWM).
    fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {status}"))
    }

    fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("read /proc fd")
            .count()
    }
}

/// Fifty sign-ins at once with unknown e-mails: each costs Argon2's 19 MiB while it runs. With
/// at most two at a time the process's peak memory stays within a few dozen MiB of where it
/// started (unbounded, it grew by 900 MiB and kept it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_sign_ins_keeps_memory_bounded() {
    let tenant = Tenant::create("memflood").await;
    let dsn = tenant.dsn("admin", "disable");
    let api = Spawned::start(
        &[
            ("DATABASE_DSN", dsn.as_str()),
            ("PASSWORD_HASH_CONCURRENCY", "2"),
            ("PASSWORD_HASH_WAIT_MS", "60000"),
            ("REQUEST_TIMEOUT_SECS", "60"),
            ("SIGNIN_FAILURES_PER_ADDRESS", "1000"),
        ],
        None,
    )
    .await;
    // Warm up: one sign-in (the dummy hash, the pool) before the baseline.
    let first = call(
        api.addr,
        "POST",
        "/api/authenticate",
        None,
        Some(&json!({ "email": "warm@example.com", "password": "not the password" })),
    )
    .await;
    first.expect_error(401, "invalid_credentials");
    let baseline_kb = api.status_kb("VmHWM");

    let mut flood = tokio::task::JoinSet::new();
    for n in 0..50 {
        let addr = api.addr;
        flood.spawn(async move {
            call(
                addr,
                "POST",
                "/api/authenticate",
                None,
                Some(&json!({ "email": format!("nobody{n}@example.com"), "password": "guess guess" })),
            )
            .await
        });
    }
    let mut max_rss_kb = 0;
    while !flood.is_empty() {
        max_rss_kb = max_rss_kb.max(api.status_kb("VmRSS"));
        tokio::select! {
            Some(reply) = flood.join_next() => {
                reply.expect("join").expect_error(401, "invalid_credentials");
            }
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    let peak_kb = api.status_kb("VmHWM");
    let grown_mib = peak_kb.saturating_sub(baseline_kb) / 1024;
    // Two computations of 19 MiB at a time, plus allocator slack.
    assert!(
        grown_mib < 80,
        "peak RSS grew by {grown_mib} MiB (from {baseline_kb} kB to {peak_kb} kB)"
    );
    // And the memory goes back: large blocks are returned to the system.
    let after_kb = api.status_kb("VmRSS");
    assert!(
        after_kb < baseline_kb + 40 * 1024,
        "RSS stayed at {after_kb} kB after the flood (baseline {baseline_kb} kB, max seen {max_rss_kb} kB)"
    );
}

/// Hashing slots are few: a sign-in that cannot get one soon gets 503 `busy` with
/// `Retry-After`, and the request timeout ends a wait as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_beyond_the_hashing_slots_wait_briefly_then_get_503() {
    let tenant = Tenant::create("hashbusy").await;
    let burst = |app: &App| {
        let addr = app.addr;
        async move {
            let mut replies = tokio::task::JoinSet::new();
            for n in 0..12 {
                replies.spawn(async move {
                    call(
                        addr,
                        "POST",
                        "/api/authenticate",
                        None,
                        Some(&json!({ "email": format!("x{n}@example.com"), "password": "guess guess" })),
                    )
                    .await
                });
            }
            let mut out = Vec::new();
            while let Some(reply) = replies.join_next().await {
                out.push(reply.expect("join"));
            }
            out
        }
    };

    let quick = App::start(config(
        &tenant.dsn("admin", "disable"),
        &tenant.name,
        &[
            ("PASSWORD_HASH_CONCURRENCY", "1"),
            ("PASSWORD_HASH_WAIT_MS", "1"),
            ("SIGNIN_FAILURES_PER_ADDRESS", "1000"),
        ],
    ))
    .await;
    let replies = burst(&quick).await;
    let busy: Vec<&Reply> = replies.iter().filter(|r| r.status == 503).collect();
    assert!(!busy.is_empty(), "no sign-in was turned away: {replies:?}");
    for reply in &busy {
        reply.expect_error(503, "busy");
        assert_eq!(reply.header("retry-after"), Some("1"));
    }
    for reply in replies.iter().filter(|r| r.status != 503) {
        reply.expect_error(401, "invalid_credentials");
    }
    quick.stop().await;

    let patient = App::start(config(
        &tenant.dsn("admin", "disable"),
        &tenant.name,
        &[
            ("PASSWORD_HASH_CONCURRENCY", "1"),
            ("PASSWORD_HASH_WAIT_MS", "60000"),
            ("REQUEST_TIMEOUT_SECS", "0.3"),
            ("SIGNIN_FAILURES_PER_ADDRESS", "1000"),
        ],
    ))
    .await;
    let started = Instant::now();
    let replies = burst(&patient).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    let timed_out = replies.iter().filter(|r| r.code() == "timeout").count();
    assert!(timed_out > 0, "no waiting sign-in was ended: {replies:?}");
    for reply in &replies {
        assert!(
            matches!(reply.code(), "timeout" | "invalid_credentials"),
            "{}",
            reply.text
        );
    }
    patient.stop().await;
}

/// Guessing a password: after the limit, 429 `too_many_attempts` with `Retry-After`, the right
/// password included; an unknown e-mail is throttled the same way; the address's own limit
/// catches guesses spread over e-mails; `X-Forwarded-For` is believed from trusted proxies only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_passwords_ends_in_429() {
    let tenant = Tenant::create("guess").await;
    tenant.add_user("admin@example.com", "admin").await;
    let app = App::start(config(
        &tenant.dsn("admin", "disable"),
        &tenant.name,
        &[
            ("SIGNIN_FAILURES_PER_EMAIL", "3"),
            ("SIGNIN_FAILURES_PER_ADDRESS", "7"),
            ("SIGNIN_WINDOW_SECS", "60"),
        ],
    ))
    .await;
    let sign_in = |email: &'static str, password: &'static str, forwarded: Option<&'static str>| {
        let addr = app.addr;
        async move {
            let body =
                serde_json::to_vec(&json!({ "email": email, "password": password })).unwrap();
            let mut headers = vec![("Content-Type", "application/json")];
            if let Some(forwarded) = forwarded {
                headers.push(("X-Forwarded-For", forwarded));
            }
            raw(addr, "POST", "/api/authenticate", &headers, &body).await
        }
    };

    for _ in 0..3 {
        sign_in("admin@example.com", "wrong password", None)
            .await
            .expect_error(401, "invalid_credentials");
    }
    let throttled = sign_in("Admin@Example.com", "wrong password", None).await;
    throttled.expect_error(429, "too_many_attempts");
    let retry: u64 = throttled
        .header("retry-after")
        .and_then(|value| value.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(throttled.json["tenant"], tenant.name.as_str());
    assert!(throttled.json["error"]["request_id"].is_string());
    // The right password does not get through either: guessing stops here.
    sign_in("admin@example.com", PASSWORD, None)
        .await
        .expect_error(429, "too_many_attempts");

    // An e-mail without an account is counted and answered alike.
    for _ in 0..3 {
        sign_in("ghost@example.com", "wrong password", None)
            .await
            .expect_error(401, "invalid_credentials");
    }
    let ghost = sign_in("ghost@example.com", "wrong password", None).await;
    ghost.expect_error(429, "too_many_attempts");
    assert_eq!(ghost.headers.len(), throttled.headers.len());

    // Seven failures from this address in all: an eighth e-mail is refused too, whatever
    // X-Forwarded-For claims (no proxy is trusted).
    sign_in("third@example.com", "wrong password", None)
        .await
        .expect_error(401, "invalid_credentials");
    sign_in("fourth@example.com", "wrong password", Some("203.0.113.5"))
        .await
        .expect_error(429, "too_many_attempts");
    app.stop().await;

    // Behind a trusted proxy each forwarded client has its own count, and a client cannot
    // escape its own by writing addresses of its own into the header.
    let proxied = App::start(config(
        &tenant.dsn("admin", "disable"),
        &tenant.name,
        &[
            ("SIGNIN_FAILURES_PER_EMAIL", "100"),
            ("SIGNIN_FAILURES_PER_ADDRESS", "2"),
            ("TRUSTED_PROXIES", "127.0.0.1/32, ::1"),
        ],
    ))
    .await;
    let via_proxy = |email: &'static str, password: &'static str, forwarded: &'static str| {
        let addr = proxied.addr;
        async move {
            let body =
                serde_json::to_vec(&json!({ "email": email, "password": password })).unwrap();
            raw(
                addr,
                "POST",
                "/api/authenticate",
                &[
                    ("Content-Type", "application/json"),
                    ("X-Forwarded-For", forwarded),
                ],
                &body,
            )
            .await
        }
    };
    for _ in 0..2 {
        via_proxy("admin@example.com", "wrong password", "203.0.113.1")
            .await
            .expect_error(401, "invalid_credentials");
    }
    via_proxy("admin@example.com", "wrong password", "203.0.113.1")
        .await
        .expect_error(429, "too_many_attempts");
    via_proxy(
        "admin@example.com",
        "wrong password",
        "198.51.100.9, 203.0.113.1",
    )
    .await
    .expect_error(429, "too_many_attempts");
    // Another client behind the same proxy is not affected, and signs in.
    let other = via_proxy("admin@example.com", PASSWORD, "203.0.113.2").await;
    assert_eq!(other.status, 200, "{}", other.text);
    proxied.stop().await;
}

/// Reads until the server closes the connection (or `limit` passes); how long that took.
async fn time_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(
            limit.saturating_sub(started.elapsed()),
            stream.read(&mut buffer),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

/// A client that sends its headers a byte at a time, one that connects and says nothing, and
/// one that goes quiet after a request are all cut off; a client that keeps talking is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_cut_off() {
    let tenant = Tenant::create("slowloris").await;
    let app = App::start(config(
        &tenant.dsn("admin", "disable"),
        &tenant.name,
        &[
            ("HEADER_READ_TIMEOUT_SECS", "1"),
            ("KEEP_ALIVE_TIMEOUT_SECS", "2"),
        ],
    ))
    .await;

    // Byte by byte, forever: closed about a second after its first byte.
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    let addr = app.addr;
    let dripping = tokio::spawn(async move {
        let head = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Padding: ");
        let started = Instant::now();
        for byte in head.bytes().chain(std::iter::repeat(b'a')) {
            if slow.write_all(&[byte]).await.is_err() {
                return (started.elapsed(), slow);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            if started.elapsed() > Duration::from_secs(8) {
                break;
            }
        }
        (started.elapsed(), slow)
    });
    // Silent from the start.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let silent_closed = time_until_closed(&mut silent, Duration::from_secs(6)).await;
    let silent_closed = silent_closed.expect("a silent connection stayed open");
    assert!(
        silent_closed >= Duration::from_millis(800) && silent_closed < Duration::from_secs(3),
        "{silent_closed:?}"
    );
    let (elapsed, mut slow) = dripping.await.unwrap();
    let cut = match time_until_closed(&mut slow, Duration::from_secs(1)).await {
        Some(_) => elapsed.min(Duration::from_secs(8)),
        None => panic!("a slow-header client was still connected after {elapsed:?}"),
    };
    assert!(cut < Duration::from_secs(4), "cut after {cut:?}");

    // Kept alive and quiet after a request: closed after the keep-alive timeout, not before.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", app.addr).as_bytes())
        .await
        .unwrap();
    let mut buffer = [0u8; 4096];
    let n = idle.read(&mut buffer).await.unwrap();
    assert!(
        buffer[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buffer[..n])
    );
    let idle_closed = time_until_closed(&mut idle, Duration::from_secs(6))
        .await
        .expect("an idle keep-alive connection stayed open");
    assert!(
        idle_closed >= Duration::from_millis(1700) && idle_closed < Duration::from_secs(4),
        "{idle_closed:?}"
    );

    // A client that keeps sending requests keeps its connection well past both timeouts.
    let mut busy = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        busy.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", app.addr).as_bytes())
            .await
            .unwrap();
        let n = busy.read(&mut buffer).await.unwrap();
        assert!(
            buffer[..n].starts_with(b"HTTP/1.1 200"),
            "closed after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
    }

    let metrics = app.get("/metrics", None).await.text;
    assert!(
        metrics.contains("store_api_http_connection_timeouts_total{kind=\"header_read\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("store_api_http_connection_timeouts_total{kind=\"keep_alive\"} 1"),
        "{metrics}"
    );
    app.stop().await;
}

/// One request on a kept-alive connection; the response's first bytes.
async fn ask(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: store\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buffer = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
        .await
        .expect("an answer in time")
        .unwrap();
    String::from_utf8_lossy(&buffer[..n]).into_owned()
}

/// Hundreds of connections that say nothing, against a process allowed 128 open files: it
/// accepts as many as its limit leaves room for and leaves the rest to the kernel, so clients
/// already connected keep being served (even requests that need a new database connection),
/// the operations port keeps answering, and new clients get in once the flood ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_is_refused_without_harm_to_others() {
    let tenant = Tenant::create("connflood").await;
    let superuser = tenant.superuser().await;
    let widget: i64 = superuser
        .query_one(
            "INSERT INTO public.widgets (name, price_cents) VALUES ('Sturdy', 5) RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let dsn = tenant.dsn("admin", "disable");
    let ops_port = closed_port();
    let ops = format!("127.0.0.1:{ops_port}");
    let api = Spawned::start(
        &[
            ("DATABASE_DSN", dsn.as_str()),
            ("DB_POOL_SIZE", "4"),
            ("OPS_ADDR", ops.as_str()),
            ("HEADER_READ_TIMEOUT_SECS", "30"),
            ("KEEP_ALIVE_TIMEOUT_SECS", "30"),
        ],
        Some(128),
    )
    .await;
    let ops_addr: SocketAddr = ops.parse().unwrap();
    let metrics = call(ops_addr, "GET", "/metrics", None, None).await.text;
    let max: usize = metrics
        .lines()
        .find_map(|line| line.strip_prefix("store_api_http_max_connections "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(
        (10..=100).contains(&max),
        "MAX_CONNECTIONS derived from 128 files: {max}"
    );

    // A client connected before the flood, keeping its connection.
    let mut regular = TcpStream::connect(api.addr).await.unwrap();
    let path = format!("/api/widgets/{widget}");
    assert!(ask(&mut regular, &path).await.starts_with("HTTP/1.1 200"));

    let mut flood = Vec::new();
    for _ in 0..400 {
        match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(api.addr)).await {
            Ok(Ok(stream)) => flood.push(stream),
            // The kernel's queue is full: refused, as it should be.
            _ => break,
        }
    }
    assert!(
        flood.len() > max,
        "only {} connections were made",
        flood.len()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let files = api.open_files();
    assert!(files < 128, "{files} files open");

    // The database connections are cut: answering now needs new ones, i.e. file descriptors.
    superuser
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'store-api'",
            &[],
        )
        .await
        .unwrap();
    let mut answered = false;
    for _ in 0..20 {
        let reply = ask(&mut regular, &path).await;
        if reply.starts_with("HTTP/1.1 200") {
            answered = true;
            break;
        }
        assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        answered,
        "the connected client was not served during the flood"
    );
    let metrics = call(ops_addr, "GET", "/metrics", None, None).await;
    assert_eq!(metrics.status, 200, "the operations port is still served");
    assert!(
        metrics
            .text
            .contains(&format!("store_api_http_connections_open {max}\n")),
        "{}",
        metrics.text
    );

    drop(flood);
    let started = Instant::now();
    let fresh = call(api.addr, "GET", &path, None, None).await;
    assert_eq!(fresh.status, 200, "{}", fresh.text);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(api);
}
