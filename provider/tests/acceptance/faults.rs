//! Failures half-way through an apply: the provider killed, PostgreSQL restarted, the connection dropped during a
//! migration. Each time the next `terraform apply` must converge without error, leave no orphan database or role,
//! and keep the rows existing tenants held. Also: many tenants at high parallelism, and two states applied at once.
//!
//! Runs against Terraform 1.11 (the fault handling is the provider's and PostgreSQL's, not Terraform's); the
//! parallel scenarios run against 1.0.3 too.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::hcl;
use crate::support::pg::{self, block_on};
use crate::support::{Output, Terraform, Workdir};
use tokio::net::{TcpListener, TcpStream};
use tokio_postgres::Client;
use usualstore_testpg::Cluster;

/// A tenant with `users` admin/developer/customer users, unprotected so the test can destroy it.
fn tenant_hcl(database: &str, users: usize) -> String {
    let mut text = format!(
        "resource \"usualstore_tenant\" \"{database}\" {{\n  database_name = {}\n  tenant_name = \"Fault {database}\"\n  \
         deletion_protection = false\n}}\n",
        hcl::string(database)
    );
    for (i, role) in ["admin", "developer", "customer"]
        .iter()
        .cycle()
        .take(users)
        .enumerate()
    {
        text.push_str(&format!(
            "resource \"usualstore_tenant_user\" \"{database}_u{i}\" {{\n  tenant = usualstore_tenant.{database}.database_name\n  \
             username = \"{database}_u{i}\"\n  role = \"{role}\"\n}}\n"
        ));
    }
    text
}

fn config(databases: &[String], users: usize) -> String {
    let mut text = hcl::provider_config("");
    for database in databases {
        text.push_str(&tenant_hcl(database, users));
    }
    text
}

/// Superuser access to whichever cluster the scenario uses.
struct Server<'a> {
    cluster: Option<&'a Cluster>,
}

impl Server<'_> {
    fn connect(&self, database: &str) -> Result<Client, tokio_postgres::Error> {
        let cluster = self.cluster.unwrap_or_else(|| usualstore_testpg::shared());
        block_on(cluster.connect(database))
    }

    fn names(&self, sql: &str, prefix: &str) -> BTreeSet<String> {
        let client = self.connect("postgres").expect("connect");
        block_on(client.query(sql, &[&format!("{prefix}%")]))
            .expect("catalog query")
            .iter()
            .map(|row| row.get(0))
            .collect()
    }

    fn databases(&self, prefix: &str) -> BTreeSet<String> {
        self.names(
            "SELECT datname::text FROM pg_database WHERE datname LIKE $1",
            prefix,
        )
    }

    fn roles(&self, prefix: &str) -> BTreeSet<String> {
        self.names(
            "SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1",
            prefix,
        )
    }

    fn count_rows(&self, database: &str, table: &str) -> i64 {
        let client = self.connect(database).expect("connect");
        block_on(client.query_one(&format!("SELECT count(*) FROM public.{table}"), &[]))
            .expect("count")
            .get(0)
    }

    fn insert_widgets(&self, database: &str, count: i64) {
        let client = self.connect(database).expect("connect");
        block_on(client.execute(
            "INSERT INTO public.widgets (name, description, inventory_level, price_cents) \
             SELECT 'w' || g, 'kept', 5, 100 FROM generate_series(1, $1::int8) g",
            &[&count],
        ))
        .expect("insert widgets");
    }

    /// What the configuration declares and nothing more exists under `prefix`.
    fn assert_exactly(&self, prefix: &str, databases: &[String], users: usize) {
        let expected_databases: BTreeSet<String> = databases.iter().cloned().collect();
        assert_eq!(
            self.databases(prefix),
            expected_databases,
            "databases under {prefix}"
        );
        let mut expected_roles = BTreeSet::new();
        for database in databases {
            for suffix in ["owner", "admin", "developer", "customer"] {
                expected_roles.insert(format!("{database}_{suffix}"));
            }
            for i in 0..users {
                expected_roles.insert(format!("{database}_u{i}"));
            }
        }
        assert_eq!(self.roles(prefix), expected_roles, "roles under {prefix}");
    }
}

fn workdir_for(terraform: &Terraform, cluster: Option<&Cluster>, text: &str) -> Workdir {
    match cluster {
        None => Workdir::new(terraform, text),
        Some(cluster) => {
            let mut workdir = Workdir::without_cluster(terraform, text);
            for (key, value) in cluster.pg_env() {
                workdir.set_env(&key, &value);
            }
            workdir
        }
    }
}

/// Waits until `ready` holds, polling; panics with `what` after a minute.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `terraform apply` on a thread while `fault` acts on the world, and returns the apply's output.
fn apply_with_fault(workdir: &Workdir, args: &[&str], fault: impl FnOnce()) -> Output {
    std::thread::scope(|scope| {
        let apply = scope.spawn(|| workdir.try_apply(args));
        fault();
        apply.join().expect("apply thread")
    })
}

/// The provider processes Terraform started for `workdir` (their working directory is the configuration's).
fn provider_pids(workdir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
            comm.starts_with("terraform-provi") && cwd.as_deref() == Some(workdir)
        })
        .collect()
}

/// A converging apply after a fault, then an empty plan.
fn converge(workdir: &Workdir, args: &[&str]) {
    workdir.apply(args);
    workdir.assert_no_changes();
}

fn provider_killed_mid_create(terraform: &Terraform) {
    let prefix = pg::unique_name("kill");
    let server = Server { cluster: None };
    let keep = vec![format!("{prefix}_keep")];
    let workdir = workdir_for(terraform, None, &config(&keep, 3));
    workdir.init();
    workdir.apply(&[]);
    server.insert_widgets(&keep[0], 7);

    let all: Vec<String> = keep
        .iter()
        .cloned()
        .chain((0..8).map(|i| format!("{prefix}_t{i}")))
        .collect();
    workdir.set_config(&config(&all, 3));
    let path = workdir.path();
    let mut killed = 0;
    let crashed = apply_with_fault(&workdir, &["-parallelism=10"], || {
        // As soon as the provider is part-way through the new tenants, kill it.
        wait_for("a new tenant database", || {
            server.databases(&format!("{prefix}_t")).len() >= 2
        });
        for pid in provider_pids(&path) {
            let status = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            killed += usize::from(status.is_ok_and(|s| s.success()));
        }
    });
    assert!(killed > 0, "no provider process was found to kill");
    assert!(
        !crashed.success(),
        "the apply survived the provider's death:\n{crashed}"
    );

    converge(&workdir, &["-parallelism=10"]);
    server.assert_exactly(&prefix, &all, 3);
    assert_eq!(
        server.count_rows(&keep[0], "widgets"),
        7,
        "rows of the existing tenant"
    );
    workdir.destroy();
    server.assert_exactly(&prefix, &[], 0);
}

fn postgres_restarted_mid_apply(terraform: &Terraform) {
    let cluster = Cluster::start().expect("private cluster");
    let server = Server {
        cluster: Some(&cluster),
    };
    let prefix = pg::unique_name("rst");
    let keep = vec![format!("{prefix}_keep")];
    let workdir = workdir_for(terraform, Some(&cluster), &config(&keep, 3));
    workdir.init();
    workdir.apply(&[]);
    server.insert_widgets(&keep[0], 4);

    let all: Vec<String> = keep
        .iter()
        .cloned()
        .chain((0..6).map(|i| format!("{prefix}_t{i}")))
        .collect();
    workdir.set_config(&config(&all, 3));
    let interrupted = apply_with_fault(&workdir, &[], || {
        wait_for("a new tenant database", || {
            server.connect("postgres").is_ok()
                && server.databases(&format!("{prefix}_t")).len() >= 2
        });
        cluster.restart().expect("restart PostgreSQL");
    });
    assert!(
        !interrupted.success(),
        "the apply did not notice the restart:\n{interrupted}"
    );

    converge(&workdir, &[]);
    server.assert_exactly(&prefix, &all, 3);
    assert_eq!(
        server.count_rows(&keep[0], "widgets"),
        4,
        "rows of the existing tenant"
    );
    workdir.destroy();
    server.assert_exactly(&prefix, &[], 0);
    cluster.stop().expect("stop");
}

/// A TCP relay whose live connections can all be cut at once, like a network failure.
struct Relay {
    port: u16,
    cut: Arc<AtomicBool>,
}

impl Relay {
    fn start(upstream_port: u16) -> Relay {
        let cut = Arc::new(AtomicBool::new(false));
        let listener = block_on(TcpListener::bind("127.0.0.1:0")).expect("bind relay");
        let port = listener.local_addr().expect("relay address").port();
        let flag = Arc::clone(&cut);
        block_on(async move {
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let flag = Arc::clone(&flag);
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await
                        else {
                            return;
                        };
                        let relay = relay(client, server);
                        let watch = async {
                            while !flag.load(Ordering::SeqCst) {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                        };
                        // Dropping both sockets is what the two ends see when the network goes away.
                        tokio::select! {
                            _ = relay => {}
                            _ = watch => {}
                        }
                    });
                }
            });
        });
        Relay { port, cut }
    }

    /// Cuts every connection open now; later connections work again.
    fn cut_now(&self) {
        self.cut.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        self.cut.store(false, Ordering::SeqCst);
    }
}

async fn relay(mut client: TcpStream, mut server: TcpStream) {
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

fn connection_dropped_during_migration(terraform: &Terraform) {
    crate::support::require_test_hooks();
    let shared = usualstore_testpg::shared();
    let server = Server { cluster: None };
    let relay = Relay::start(shared.port());
    let database = pg::unique_name("netdrop");
    let tenants = vec![database.clone()];
    let mut workdir = workdir_for(terraform, None, &config(&tenants, 0));
    workdir.set_env("PGPORT", &relay.port.to_string());
    workdir.init();
    workdir.apply(&[]);
    server.insert_widgets(&database, 5);

    let current = usualstore_schema::latest_version();
    let newer = workdir.path().join("newer-migrations");
    std::fs::create_dir_all(&newer).expect("migrations dir");
    std::fs::write(
        newer.join(format!("{:04}_slow_gift_cards.sql", current + 1)),
        "CREATE TABLE public.gift_cards (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, code text NOT NULL);\n\
         SELECT pg_sleep(2);\n",
    )
    .expect("write migration");
    workdir.set_env(
        usualstore_schema::EXTRA_MIGRATIONS_ENV,
        &newer.display().to_string(),
    );

    let dropped = apply_with_fault(&workdir, &[], || {
        wait_for("the migration to run", || {
            let client = server.connect("postgres").expect("connect");
            let running: i64 = block_on(client.query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%pg_sleep(2)%' \
                 AND pid <> pg_backend_pid()",
                &[&database],
            ))
            .expect("pg_stat_activity")
            .get(0);
            running > 0
        });
        relay.cut_now();
    });
    assert!(
        !dropped.success(),
        "the apply did not notice the dropped connection:\n{dropped}"
    );
    // The migration's transaction was rolled back with the connection.
    let client = server.connect(&database).expect("connect");
    let half_applied: bool =
        block_on(client.query_one("SELECT to_regclass('public.gift_cards') IS NOT NULL", &[]))
            .expect("query")
            .get(0);
    assert!(!half_applied, "the dropped migration left its table behind");

    converge(&workdir, &[]);
    let values = workdir.resource_values(&format!("usualstore_tenant.{database}"));
    assert_eq!(values["schema_version"], i64::from(current + 1));
    assert_eq!(
        server.count_rows(&database, "widgets"),
        5,
        "rows kept across the migration"
    );
    assert_eq!(server.count_rows(&database, "gift_cards"), 0);
    workdir.destroy();
    server.assert_exactly(&database, &[], 0);
}

/// Fifty tenants at `-parallelism=50` through a provider allowed 6 connections: everything succeeds and the
/// provider never holds more than its limit (it queues instead of exhausting the server's connections).
fn fifty_tenants_at_parallelism_fifty(terraform: &Terraform) {
    const LIMIT: i64 = 6;
    // A private cluster: on the shared one, other tests' providers also hold maintenance sessions on
    // `postgres` under the same application name, and the peak would count them.
    let cluster = Cluster::start().expect("private cluster");
    let server = Server {
        cluster: Some(&cluster),
    };
    let prefix = pg::unique_name("fifty");
    let tenants: Vec<String> = (0..50).map(|i| format!("{prefix}_{i}")).collect();
    let text = config(&tenants, 1).replacen(
        &hcl::provider_config(""),
        &hcl::provider_config(&format!("  max_connections = {LIMIT}")),
        1,
    );
    let mut workdir = workdir_for(terraform, Some(&cluster), &text);
    workdir.set_timeout(Duration::from_secs(600));
    workdir.init();
    let done = AtomicBool::new(false);
    let peak = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let client = server.connect("postgres").expect("connect");
            let mut peak = 0i64;
            while !done.load(Ordering::SeqCst) {
                let now: i64 = block_on(client.query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'terraform-provider-usualstore'",
                    &[],
                ))
                .expect("pg_stat_activity")
                .get(0);
                peak = peak.max(now);
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        });
        let applied = workdir.try_apply(&["-parallelism=50"]);
        done.store(true, Ordering::SeqCst);
        assert!(
            applied.success(),
            "apply at parallelism 50 failed:\n{applied}"
        );
        watcher.join().expect("watcher")
    });
    assert!(peak > 0, "the watcher never saw the provider's connections");
    assert!(
        peak <= LIMIT,
        "the provider held {peak} connections, more than max_connections = {LIMIT}"
    );
    workdir.assert_no_changes();
    server.assert_exactly(&prefix, &tenants, 1);
    workdir.run(&[
        "destroy",
        "-no-color",
        "-input=false",
        "-auto-approve",
        "-parallelism=50",
    ]);
    server.assert_exactly(&prefix, &[], 0);
    cluster.stop().expect("stop");
}

fn two_states_applied_at_once(terraform: &Terraform) {
    let server = Server { cluster: None };
    let prefixes = [pg::unique_name("cust_a"), pg::unique_name("cust_b")];
    let tenants: Vec<Vec<String>> = prefixes
        .iter()
        .map(|prefix| (0..4).map(|i| format!("{prefix}_{i}")).collect())
        .collect();
    let workdirs: Vec<Workdir> = tenants
        .iter()
        .map(|databases| {
            let workdir = workdir_for(terraform, None, &config(databases, 3));
            workdir.init();
            workdir
        })
        .collect();
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let running: Vec<_> = workdirs
            .iter()
            .map(|w| scope.spawn(|| w.try_apply(&[])))
            .collect();
        running
            .into_iter()
            .map(|r| r.join().expect("apply thread"))
            .collect()
    });
    for output in &outputs {
        assert!(output.success(), "a concurrent apply failed:\n{output}");
    }
    for ((workdir, prefix), databases) in workdirs.iter().zip(&prefixes).zip(&tenants) {
        workdir.assert_no_changes();
        server.assert_exactly(prefix, databases, 3);
    }
    std::thread::scope(|scope| {
        for workdir in &workdirs {
            scope.spawn(|| workdir.destroy());
        }
    });
    for prefix in &prefixes {
        server.assert_exactly(prefix, &[], 0);
    }
}

#[test]
fn provider_killed_mid_create_converges() {
    crate::support::with_terraform(Terraform::v1_11, "1.11", provider_killed_mid_create);
}

#[test]
fn postgres_restart_mid_apply_converges() {
    crate::support::with_terraform(Terraform::v1_11, "1.11", postgres_restarted_mid_apply);
}

#[test]
fn dropped_connection_during_migration_converges() {
    crate::support::with_terraform(
        Terraform::v1_11,
        "1.11",
        connection_dropped_during_migration,
    );
}

#[test]
fn fifty_tenants_with_parallelism_fifty() {
    crate::support::with_terraform(Terraform::v1_11, "1.11", fifty_tenants_at_parallelism_fifty);
}

#[test]
fn two_customers_applied_at_once_tf1_11() {
    crate::support::with_terraform(Terraform::v1_11, "1.11", two_states_applied_at_once);
}

#[test]
fn two_customers_applied_at_once_tf1_0() {
    crate::support::with_terraform(Terraform::v1_0, "1.0.3", two_states_applied_at_once);
}
