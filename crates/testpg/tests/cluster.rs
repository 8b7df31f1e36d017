//! Behaviour of real clusters: authentication, isolation of owned clusters, restart, clean-up.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use usualstore_testpg::{Cluster, shared, unique_name};

#[tokio::test]
async fn shared_cluster_runs_password_roles() {
    let pg = shared();
    assert_eq!(pg.host(), "127.0.0.1");
    let admin = pg.connect("postgres").await.unwrap();
    let row = admin
        .query_one(
            "SELECT current_user::text, current_setting('max_connections')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), pg.superuser());
    assert_eq!(row.get::<_, String>(1), "400");

    let role = unique_name("role");
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'right-password'"
        ))
        .await
        .unwrap();
    let user = pg
        .connect_as("postgres", &role, "right-password")
        .await
        .unwrap();
    let who: String = user
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(who, role);

    let refused = pg
        .connect_as("postgres", &role, "wrong-password")
        .await
        .expect_err("a wrong password must be refused");
    assert_eq!(
        refused.code(),
        Some(&SqlState::INVALID_PASSWORD),
        "{refused}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn shared_is_one_cluster_even_when_raced() {
    let handles: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(|| shared() as *const Cluster as usize))
        .collect();
    let addresses: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(addresses.windows(2).all(|pair| pair[0] == pair[1]));
}

#[test]
fn pg_env_describes_the_superuser_connection() {
    let pg = shared();
    let env = pg.pg_env();
    let get = |key: &str| {
        env.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{key} missing"))
    };
    assert_eq!(get("PGHOST"), "127.0.0.1");
    assert_eq!(get("PGPORT"), pg.port().to_string());
    assert_eq!(get("PGUSER"), pg.superuser());
    assert_eq!(get("PGPASSWORD"), pg.superuser_password());
    assert_eq!(get("PGDATABASE"), "postgres");
    assert_eq!(get("PGSSLMODE"), "disable");

    // A libpq client in a child process really gets in with it.
    let psql = pg.bin_dir().join("psql");
    if psql.is_file() {
        let output = Command::new(psql)
            .args(["-XAtc", "SELECT 40 + 2"])
            .env_clear()
            .envs(env)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "42");
    }
}

#[tokio::test]
async fn managed_admin_is_not_a_superuser_but_can_create_databases_and_roles() {
    let pg = shared();
    let (user, password) = pg.create_managed_admin(&unique_name("admin")).unwrap();
    let client = pg.connect_as("postgres", &user, &password).await.unwrap();
    let row = client
        .query_one(
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, bool>(0),
            row.get::<_, bool>(1),
            row.get::<_, bool>(2)
        ),
        (false, true, true)
    );
    let db = unique_name("managed_db");
    let role = unique_name("managed_role");
    client
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    client
        .batch_execute(&format!("CREATE ROLE {role} NOLOGIN"))
        .await
        .unwrap();
    let denied = client
        .batch_execute("ALTER SYSTEM SET work_mem = '8MB'")
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
}

#[tokio::test]
async fn create_database_gives_a_fresh_database() {
    let pg = shared();
    let db = unique_name("fresh");
    pg.create_database(&db).await.unwrap();
    let client = pg.connect(&db).await.unwrap();
    let name: String = client
        .query_one("SELECT current_database()::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, db);
}

#[tokio::test]
async fn owned_clusters_started_in_parallel_are_separate() {
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(Cluster::start);
        let b = scope.spawn(Cluster::start);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert_ne!(a.port(), b.port());
    assert_ne!(a.data_dir(), b.data_dir());
    assert_ne!(a.superuser_password(), b.superuser_password());

    let client_a = a.connect("postgres").await.unwrap();
    client_a
        .batch_execute("CREATE DATABASE only_in_a")
        .await
        .unwrap();
    let client_b = b.connect("postgres").await.unwrap();
    let found = client_b
        .query_opt("SELECT 1 FROM pg_database WHERE datname = 'only_in_a'", &[])
        .await
        .unwrap();
    assert!(found.is_none());

    // Each cluster's password is its own.
    let mut cross = b.config("postgres");
    cross.password(a.superuser_password());
    assert!(cross.connect(tokio_postgres::NoTls).await.is_err());
}

#[tokio::test]
async fn stop_and_restart_keep_port_and_data() {
    let pg = Cluster::start().unwrap();
    let port = pg.port();
    let client = pg.connect("postgres").await.unwrap();
    client
        .batch_execute("CREATE TABLE kept (value text); INSERT INTO kept VALUES ('still here')")
        .await
        .unwrap();

    pg.restart().unwrap();
    assert_eq!(pg.port(), port);
    // The old session was cut by the restart.
    assert!(client.query_one("SELECT 1", &[]).await.is_err());
    let client = pg.connect("postgres").await.unwrap();
    let value: String = client
        .query_one("SELECT value FROM kept", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(value, "still here");

    pg.stop().unwrap();
    pg.stop().unwrap(); // idempotent
    assert!(pg.connect("postgres").await.is_err());
    pg.restart().unwrap();
    pg.connect("postgres").await.unwrap();
}

#[test]
fn drop_stops_the_server_and_removes_its_files() {
    let pg = Cluster::start().unwrap();
    let data_dir = pg.data_dir().to_path_buf();
    let base_dir = data_dir.parent().unwrap().to_path_buf();
    let port = pg.port();
    assert!(data_dir.join("PG_VERSION").is_file());
    assert!(data_dir.join("server.log").is_file());
    drop(pg);
    assert!(!base_dir.exists(), "{} still exists", base_dir.display());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// Runs the `testpg` binary, returning it with the port it printed and its data directory.
fn spawn_testpg(args: &[&str]) -> (std::process::Child, u16, std::path::PathBuf) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_testpg"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The binary keeps stdout open while it runs: read exactly its export lines.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut port = None;
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "stdout ended early"
        );
        let line = line.trim_end();
        assert!(line.starts_with("export PG"), "{line}");
        if let Some(value) = line.strip_prefix("export PGPORT=") {
            port = Some(value.trim_matches('\'').parse().unwrap());
        }
        if line.starts_with("export PGSSLMODE=") {
            break;
        }
    }
    let mut banner = String::new();
    BufReader::new(child.stderr.as_mut().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let data_dir = banner
        .split("data directory ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no data directory in {banner:?}"));
    (child, port.expect("PGPORT line"), data_dir.into())
}

fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn testpg_binary_stops_when_stdin_closes() {
    let (mut child, port, data_dir) = spawn_testpg(&[]);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!data_dir.exists());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn testpg_binary_stops_on_sigterm() {
    let (mut child, port, data_dir) = spawn_testpg(&["--ignore-stdin"]);
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(child.wait().unwrap().success());
    assert!(!data_dir.exists());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn watchdog_cleans_up_after_a_killed_process() {
    let (mut child, port, data_dir) = spawn_testpg(&[]);
    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();
    wait_until("the watchdog removed the cluster", || {
        !data_dir.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    });
}
